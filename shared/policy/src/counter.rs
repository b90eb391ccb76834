//! Verifying counter-signatures of the declarant's signature (the receiving
//! authority's, or anyone's): same mechanism, with the one reference that
//! matters pointing at the parent's own `ds:SignatureValue` element.

use tamga_dsig::{
    check_references, check_signature_value, parse_signature, parse_xades, PublicKey,
    SignatureModel, Transform,
};
use tamga_trust::{CountryCode, PathError, PathRequest};
use tamga_xml::{Document, Node};

use crate::reason::{Indication, Reason};
use crate::report::{CounterSignatureReport, Signer};
use crate::verify::{
    check_key_strength, check_signed_properties, crypto_reason, digest_verdict, format_reason,
    identify_signer, VerifyRequest,
};

pub(crate) fn verify_counter_signature(
    doc: &Document,
    parent: &SignatureModel<'_>,
    node: Node<'_>,
    req: &VerifyRequest<'_>,
) -> CounterSignatureReport {
    let mut out = CounterSignatureReport {
        indication: Indication::Indeterminate,
        sub_indication: None,
        reason: None,
        message: String::new(),
        signer: None,
        signing_time: None,
    };
    match check(doc, parent, node, req, &mut out) {
        Ok(message) => {
            out.indication = Indication::TotalPassed;
            out.message = message;
        }
        Err(reason) => {
            out.indication = reason.indication();
            out.sub_indication = Some(reason.sub_indication());
            out.reason = Some(reason.code());
            out.message = reason.sentence();
        }
    }
    out
}

fn check(
    doc: &Document,
    parent: &SignatureModel<'_>,
    node: Node<'_>,
    req: &VerifyRequest<'_>,
    out: &mut CounterSignatureReport,
) -> Result<String, Reason> {
    let policy = req.policy;
    let sig = parse_signature(node, &policy.budget()).map_err(format_reason)?;
    if let Err(uri) = &sig.c14n {
        return Err(Reason::AlgorithmNotAllowed {
            algorithm: uri.clone(),
        });
    }
    policy.signature_allowed(&sig.signature_method)?;
    for r in &sig.references {
        policy.digest_allowed(&r.digest)?;
        for t in &r.transforms {
            if !matches!(t, Transform::C14n(_)) {
                return Err(Reason::ForbiddenTransform { name: t.name() });
            }
        }
    }
    let xades = parse_xades(&sig).map_err(format_reason)?;
    if let Some(x) = &xades {
        // Same digest rules as the declarant's signing-certificate binding.
        for cd in &x.signing_certificates {
            policy.digest_allowed(&cd.digest)?;
        }
        out.signing_time = x.signing_time.clone();
    }
    check_signed_properties(doc, &sig, xades.as_ref())?;

    // Exactly the parent's SignatureValue element, found by Id among unique
    // Ids, must be covered: not a copy injected elsewhere, not a data object.
    let props = xades.as_ref().and_then(|x| x.signed_properties);
    let mut covers_parent = false;
    for r in &sig.references {
        let uri = r.uri.clone().unwrap_or_default();
        let target = uri
            .strip_prefix('#')
            .filter(|f| !f.starts_with("xpointer("))
            .and_then(|id| doc.element_by_id(id));
        match target {
            Some(t) if t == parent.signature_value_node => covers_parent = true,
            Some(t) if Some(t) == props => {}
            _ => return Err(Reason::CounterSignatureTarget { uri }),
        }
    }
    if !covers_parent {
        return Err(Reason::CounterSignatureTarget {
            uri: "(no reference to the parent SignatureValue)".into(),
        });
    }

    let certificates: &[Vec<u8>] = sig
        .key_info
        .as_ref()
        .map_or(&[], |k| k.certificates.as_slice());
    if certificates.is_empty() {
        return Err(Reason::NoSigningCertificate(
            "the counter-signature's KeyInfo carries no certificate".into(),
        ));
    }
    let signer_index = identify_signer(certificates, xades.as_ref())?;
    let signer_der = &certificates[signer_index];
    let key = PublicKey::from_certificate_der(signer_der).map_err(|e| {
        Reason::NoSigningCertificate(format!("the counter-signer certificate is unusable: {e}"))
    })?;
    let summary = tamga_trust::summarize_certificate(signer_der).ok();
    if let Some(s) = &summary {
        out.signer = Some(Signer::from_summary(s, Some(key.describe())));
    }
    check_key_strength(policy, &key)?;
    let limits = policy.parse_limits();
    digest_verdict(check_references(doc, &sig, req.resolver, &limits))?;
    check_signature_value(doc, &sig, &key).map_err(crypto_reason)?;

    // The counter-signer is typically the destination's customs authority:
    // its own country's anchors decide (from the certificate's C=), else
    // any partner's.
    let intermediates: Vec<&[u8]> = certificates
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != signer_index)
        .map(|(_, c)| c.as_slice())
        .collect();
    let own: Option<CountryCode> = summary
        .as_ref()
        .and_then(|s| s.country.as_deref())
        .and_then(|c| c.parse().ok())
        .filter(|c| req.trust.contains(*c));
    let candidates: Vec<CountryCode> = match own {
        Some(c) => vec![c],
        None => req.trust.countries(),
    };
    let mut first_error = None;
    for country in candidates {
        let path = PathRequest {
            country,
            signer_der,
            intermediates_der: &intermediates,
            at_unix: u64::try_from(req.at_unix).unwrap_or(0),
            revocation: policy.certificates.revocation,
            accepted_ekus: &policy.certificates.accepted_ekus,
            max_intermediates: policy.budgets.max_intermediates,
            document_crls: &[],
            ocsp_responses: &[],
        };
        match req.trust.validate_signer(&path) {
            Ok(v) => {
                return Ok(format!(
                    "The counter-signature by {} is valid and chains to a trusted CA of {country}.",
                    v.signer.subject
                ))
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(Reason::Path(first_error.unwrap_or(PathError::NoChain)))
}
