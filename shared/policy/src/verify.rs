//! `verify_document`: one declaration's bytes in, one report out.
//!
//! The order of checks is deliberate: structure and policy first (cheap,
//! and they refuse hostile shapes before any digest runs), then digests and
//! the signature value, then the certificate path. Each refusal is a
//! [`Reason`]; this file decides *when* to refuse, `reason.rs` decides what
//! the refusal is called.

use tamga_dsig::{
    check_hmac_value, check_references, check_signature_value, find_signatures, parse_signature,
    parse_xades, CryptoError, ExternalResolver, FormatError, PublicKey, ReferenceError,
    ReferenceFailure, ReferenceOutcome, SignatureAlgorithm, SignatureModel, Transform, Xades,
};
use tamga_trust::{CountryCode, PathRequest, TrustList};
use tamga_xml::{Document, Node, ParseLimits, Parsed};

use crate::config::{Policy, Profile};
use crate::reason::Reason;
use crate::report::{ReferenceReport, Report, Signer};

const DSIG_NS: &str = tamga_dsig::algorithms::DSIG_NS;

/// Everything one verification needs. Time is an input: the same request
/// always gives the same report.
pub struct VerifyRequest<'a> {
    pub bytes: &'a [u8],
    pub trust: &'a TrustList,
    /// The declared origin: only this country's anchors count.
    pub origin: CountryCode,
    /// Validation time, Unix seconds.
    pub at_unix: i64,
    pub policy: &'a Policy,
    /// Detached references (generic profile only; the customs profile
    /// refuses them before asking).
    pub resolver: &'a dyn ExternalResolver,
    /// Shared secret for HMAC signatures (generic profile only).
    pub hmac_secret: Option<&'a [u8]>,
}

impl std::fmt::Debug for VerifyRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("bytes", &self.bytes.len())
            .field("origin", &self.origin)
            .field("at_unix", &self.at_unix)
            .finish_non_exhaustive()
    }
}

/// Documents larger than this are verified on the streaming route (see
/// `streaming.rs`): libxml2's tree of a whole declaration costs more than
/// ten times its size, the streaming route the signature's tree, the list
/// of IDs and libxml2's copy of the input. Below it the tree route stays:
/// it is the reference the streaming route is tested against, and memory
/// is no issue there.
pub const STREAMING_THRESHOLD: usize = 256 * 1024;

/// How [`verify_document_with`] verifies a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// The streaming route above [`STREAMING_THRESHOLD`], the tree below.
    #[default]
    Auto,
    /// Always the tree of the whole document.
    Tree,
    /// The streaming route whatever the size (tests compare the routes).
    Streaming,
}

/// The route a verification took. Both give the same report for the same
/// request; the streaming route hands a document it does not handle
/// exactly to the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route {
    Tree,
    Streaming,
    /// The streaming route handed the document to the tree, for this reason.
    TreeAfterStreaming(&'static str),
}

/// Verifies one document and reports, never panicking on hostile input.
pub fn verify_document(req: &VerifyRequest<'_>) -> Report {
    verify_document_with(req, Strategy::Auto).0
}

/// [`verify_document`] by a chosen route; also says which route was taken.
pub fn verify_document_with(req: &VerifyRequest<'_>, strategy: Strategy) -> (Report, Route) {
    verify_document_fetched(req, strategy, &[])
}

/// [`verify_document_with`], plus OCSP responses (DER `OCSPResponse`) the
/// edge fetched for this document's certificates (see [`ocsp_targets`]).
/// They are evidence like the ones the signature carries: each must verify
/// against its certificate's issuer at the validation time.
pub fn verify_document_fetched(
    req: &VerifyRequest<'_>,
    strategy: Strategy,
    fetched_ocsp: &[&[u8]],
) -> (Report, Route) {
    let (report, route, _) = verify(req, strategy, fetched_ocsp, false);
    (report, route)
}

/// [`verify_document_fetched`], also handing back the parsed document when it passed on
/// the tree route (with its element spans), for countersigning to use rather than parse
/// the declaration again.
pub fn verify_document_keeping<'a>(
    req: &VerifyRequest<'a>,
    strategy: Strategy,
    fetched_ocsp: &[&[u8]],
) -> (Report, Route, Option<Parsed<'a>>) {
    verify(req, strategy, fetched_ocsp, true)
}

fn verify<'a>(
    req: &VerifyRequest<'a>,
    strategy: Strategy,
    fetched_ocsp: &[&[u8]],
    keep: bool,
) -> (Report, Route, Option<Parsed<'a>>) {
    let digest = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        req.bytes,
    ));
    let profile = match req.policy.profile {
        Profile::Customs => "customs",
        _ => "generic",
    };
    let new_report = || {
        Report::new(
            profile,
            req.origin.to_string(),
            crate::rfc3339(req.at_unix),
            digest.clone(),
            req.bytes.len(),
        )
    };
    let conclude = |report: &mut Report, outcome: Result<String, Reason>| match outcome {
        Ok(message) => report.pass(message),
        Err(reason) => report.reject(&reason),
    };
    let streaming = match strategy {
        Strategy::Tree => false,
        Strategy::Streaming => true,
        Strategy::Auto => req.bytes.len() > STREAMING_THRESHOLD,
    };
    let mut route = Route::Tree;
    if streaming {
        let mut report = new_report();
        match crate::streaming::check(req, fetched_ocsp, &mut report) {
            crate::streaming::Attempt::Done(outcome) => {
                conclude(&mut report, outcome);
                return (report, Route::Streaming, None);
            }
            // Whatever the attempt wrote into its report is dropped.
            crate::streaming::Attempt::Fallback(why) => route = Route::TreeAfterStreaming(why),
        }
    }
    let mut report = new_report();
    let limits = req.policy.parse_limits();
    let (outcome, kept) = if keep {
        match Parsed::parse(req.bytes, &limits) {
            Ok(parsed) => {
                let outcome = check(req, parsed.document(), fetched_ocsp, &mut report);
                let kept = outcome.is_ok().then_some(parsed);
                (outcome, kept)
            }
            Err(e) => (Err(Reason::Xml(e)), None),
        }
    } else {
        match Document::parse(req.bytes, &limits) {
            Ok(doc) => (check(req, &doc, fetched_ocsp, &mut report), None),
            Err(e) => (Err(Reason::Xml(e)), None),
        }
    };
    conclude(&mut report, outcome);
    (report, route, kept)
}

/// The tree route: the whole document as one libxml2 tree.
fn check(
    req: &VerifyRequest<'_>,
    doc: &Document,
    fetched_ocsp: &[&[u8]],
    report: &mut Report,
) -> Result<String, Reason> {
    let policy = req.policy;
    let customs = policy.profile == Profile::Customs;
    let root = doc.root();
    report.declaration = Some(tamga_declaration::identity(doc));

    let all = find_signatures(doc);
    let top: Vec<Node<'_>> = all
        .iter()
        .copied()
        .filter(|s| !has_signature_ancestor(*s))
        .collect();
    let element = match top.as_slice() {
        [] => return Err(Reason::NoSignature),
        [one] => *one,
        many if customs => return Err(Reason::MultipleSignatures { count: many.len() }),
        [first, ..] => *first,
    };
    if customs && element.parent() != Some(root) {
        return Err(Reason::SignatureNotEnveloped {
            path: element.path(),
        });
    }
    check_signature(req, fetched_ocsp, report, doc, element, &all, &TreeDigests)
}

/// How the declarant signature's references are digested.
pub(crate) trait ReferenceDigests {
    fn check(
        &self,
        doc: &Document,
        sig: &SignatureModel<'_>,
        resolver: &dyn ExternalResolver,
        limits: &ParseLimits,
    ) -> Vec<ReferenceOutcome>;
}

/// Over the tree of the whole document.
struct TreeDigests;

impl ReferenceDigests for TreeDigests {
    fn check(
        &self,
        doc: &Document,
        sig: &SignatureModel<'_>,
        resolver: &dyn ExternalResolver,
        limits: &ParseLimits,
    ) -> Vec<ReferenceOutcome> {
        check_references(doc, sig, resolver, limits)
    }
}

/// Everything after the signature is found, for both routes. `doc` is the
/// whole document (tree route) or the skeleton (streaming route): the
/// document element with the signature as its only child, which every
/// check here reads exactly as it would read the whole document, except
/// the digests of references to the document, which `digests` computes.
/// `all` is every `ds:Signature` of the document.
pub(crate) fn check_signature<'d>(
    req: &VerifyRequest<'_>,
    fetched_ocsp: &[&[u8]],
    report: &mut Report,
    doc: &'d Document,
    element: Node<'d>,
    all: &[Node<'d>],
    digests: &dyn ReferenceDigests,
) -> Result<String, Reason> {
    let policy = req.policy;
    let customs = policy.profile == Profile::Customs;
    let root = doc.root();
    let sig = parse_signature(element, &policy.budget()).map_err(format_reason)?;
    describe_algorithms(&sig, report);

    // Algorithms, before any digest or crypto runs.
    if let Err(uri) = &sig.c14n {
        return Err(Reason::AlgorithmNotAllowed {
            algorithm: uri.clone(),
        });
    }
    policy.signature_allowed(&sig.signature_method)?;
    policy.country_allows(req.origin.as_str(), &sig.signature_method)?;
    for r in &sig.references {
        policy.digest_allowed(&r.digest)?;
    }

    let xades = parse_xades(&sig).map_err(|e| match e {
        FormatError::Budget { .. } => Reason::Budget(e.to_string()),
        _ => Reason::MalformedSignature(e.to_string()),
    })?;
    let has_signed_properties = xades
        .as_ref()
        .is_some_and(|x| x.signed_properties.is_some());
    if let Some(x) = &xades {
        // The signing-certificate binding is a digest like any other: the
        // policy's digest rules apply (no SHA-1 outside a legacy policy; MD5
        // is weak, not a "mismatch").
        for cd in &x.signing_certificates {
            policy.digest_allowed(&cd.digest)?;
        }
        report.signing_time = x.signing_time.clone();
        report.signature_format = Some(if !has_signed_properties {
            "XML-DSig"
        } else if x.signature_timestamps.is_empty() {
            "XAdES-B-B"
        } else {
            "XAdES-B-T"
        });
        if x.counter_signatures.len() > policy.budgets.max_counter_signatures {
            return Err(Reason::Budget(format!(
                "{} counter-signatures (limit {})",
                x.counter_signatures.len(),
                policy.budgets.max_counter_signatures
            )));
        }
    } else {
        report.signature_format = Some("XML-DSig");
    }
    for (r, out) in sig.references.iter().zip(report.references.iter_mut()) {
        out.target =
            reference_target(doc, &sig, xades.as_ref(), r.uri.as_deref()).map(|t| t.name());
    }
    if policy.require_xades && !has_signed_properties {
        return Err(Reason::SignedPropertiesNotSigned);
    }

    // Manifest references are not part of core validation: a verifier that
    // accepts a Manifest without checking it vouches for unchecked data. No
    // profile accepts one.
    if element.descendants().any(|n| n.is(DSIG_NS, "Manifest")) {
        return Err(Reason::IndirectionForbidden {
            what: "ds:Manifest".into(),
        });
    }
    // Shapes: what is signed, and how.
    if customs {
        check_customs_shape(doc, &sig, xades.as_ref())?;
        // Any other signature must be a counter-signature of this one.
        for s in all.iter().filter(|s| **s != element) {
            let is_counter = xades
                .as_ref()
                .is_some_and(|x| x.counter_signatures.contains(s));
            if !is_counter {
                return Err(Reason::UnexpectedSignature { path: s.path() });
            }
        }
    } else {
        check_generic_shape(&sig)?;
    }
    check_signed_properties(doc, &sig, xades.as_ref())?;

    // HMAC (generic profile only: customs refused it above).
    if let SignatureAlgorithm::Hmac(_) = sig.signature_method {
        check_digests(doc, &sig, req, report, digests)?;
        let secret = req.hmac_secret.ok_or(Reason::NoSigningCertificate(
            "an HMAC signature needs a shared secret, and none was supplied".into(),
        ))?;
        check_hmac_value(doc, &sig, secret).map_err(crypto_reason)?;
        report.signature_intact = true;
        return Ok("The HMAC signature is valid with the supplied secret.".into());
    }

    // The key: from a certificate, never from the document alone.
    let key_info = sig.key_info.as_ref();
    if let Some(ki) = key_info {
        if customs && ki.retrieval_method {
            return Err(Reason::IndirectionForbidden {
                what: "KeyInfo/RetrievalMethod".into(),
            });
        }
        if customs && ki.key_info_reference {
            return Err(Reason::IndirectionForbidden {
                what: "KeyInfo/KeyInfoReference".into(),
            });
        }
    }
    let certificates: &[Vec<u8>] = key_info.map_or(&[], |k| k.certificates.as_slice());
    if certificates.is_empty() {
        let key_values = key_info.map_or(&[][..], |k| k.key_values.as_slice());
        if customs || key_values.is_empty() {
            return Err(match key_info {
                None => Reason::NoSigningCertificate("the signature has no KeyInfo".into()),
                Some(k) if !k.key_values.is_empty() => Reason::KeyValueOnly,
                Some(k) if k.certificate_pointers > 0 => Reason::NoSigningCertificate(
                    "KeyInfo names a certificate but does not carry it".into(),
                ),
                Some(k) if k.key_info_reference || k.retrieval_method => {
                    Reason::NoSigningCertificate(
                        "KeyInfo points elsewhere (KeyInfoReference/RetrievalMethod), which is not followed"
                            .into(),
                    )
                }
                Some(_) => Reason::NoSigningCertificate("KeyInfo carries no certificate".into()),
            });
        }
        // Generic profile: check the signature with the bare key, then say
        // plainly that nothing vouches for it.
        let key = PublicKey::from_key_value(&key_values[0]).map_err(crypto_reason)?;
        check_key_strength(policy, &key)?;
        check_digests(doc, &sig, req, report, digests)?;
        check_signature_value(doc, &sig, &key).map_err(crypto_reason)?;
        report.signature_intact = true;
        return Err(Reason::KeyNotTrusted);
    }

    let signer_index = identify_signer(certificates, xades.as_ref())?;
    let signer_der = &certificates[signer_index];
    let key = PublicKey::from_certificate_der(signer_der).map_err(|e| {
        Reason::NoSigningCertificate(format!("the signer certificate is unusable: {e}"))
    })?;
    if let Ok(summary) = tamga_trust::summarize_certificate(signer_der) {
        report.signer = Some(Signer::from_summary(&summary, Some(key.describe())));
    }
    if customs {
        if let Some(ki) = key_info {
            for kv in &ki.key_values {
                if PublicKey::from_key_value(kv).ok().as_ref() != Some(&key) {
                    return Err(Reason::MalformedSignature(
                        "KeyInfo/KeyValue does not match the signer certificate".into(),
                    ));
                }
            }
        }
    }
    check_key_strength(policy, &key)?;

    check_digests(doc, &sig, req, report, digests)?;
    check_signature_value(doc, &sig, &key).map_err(crypto_reason)?;
    report.signature_intact = true;

    if let Some(x) = &xades {
        check_timestamps(doc, &sig, x, certificates, req, report)?;
        report.counter_signatures = x
            .counter_signatures
            .iter()
            .map(|cs| crate::counter::verify_counter_signature(doc, &sig, *cs, req))
            .collect();
    }

    let intermediates: Vec<&[u8]> = certificates
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != signer_index)
        .map(|(_, c)| c.as_slice())
        .collect();
    // KeyInfo/X509CRL and xades:RevocationValues/CRLValues alike.
    let document_crls: Vec<&[u8]> = key_info
        .iter()
        .flat_map(|k| k.crls.iter())
        .chain(xades.iter().flat_map(|x| x.crl_values.iter()))
        .map(Vec::as_slice)
        .collect();
    let ocsp_responses: Vec<&[u8]> = xades
        .iter()
        .flat_map(|x| x.ocsp_values.iter())
        .map(Vec::as_slice)
        .chain(fetched_ocsp.iter().copied())
        .collect();
    let path = PathRequest {
        document_crls: &document_crls,
        ocsp_responses: &ocsp_responses,
        country: req.origin,
        signer_der,
        intermediates_der: &intermediates,
        at_unix: u64::try_from(req.at_unix).unwrap_or(0),
        revocation: policy.certificates.revocation,
        accepted_ekus: &policy.certificates.accepted_ekus,
        max_intermediates: policy.budgets.max_intermediates,
    };
    report.trust_source = req.trust.source(req.origin);
    let validated = req.trust.validate_signer(&path).map_err(Reason::Path)?;
    if policy.certificates.revocation != tamga_trust::RevocationMode::Off {
        let key_info_crls = key_info.map_or(0, |k| k.crls.len());
        report.revocation = revocation_evidence(req, &validated, &document_crls, key_info_crls);
    }
    report.chain = validated
        .chain
        .iter()
        .map(|c| Signer::from_summary(c, None))
        .collect();
    // The origin the authenticated document states must be the one its
    // signer was trusted for: a KZ-certified declaration must not say "from
    // TR". Only for the bundled declaration format, whose <Origin> is known
    // to mean the dispatching country; national formats need their own
    // mapping before such a rule can apply.
    if customs && root.namespace() == Some(tamga_declaration::NAMESPACE) {
        if let Some(stated) = report.declaration.as_ref().and_then(|d| d.origin.clone()) {
            if !stated.eq_ignore_ascii_case(req.origin.as_str()) {
                return Err(Reason::OriginMismatch {
                    stated,
                    declared: req.origin.to_string(),
                });
            }
        }
    }
    if let Some((index, cs)) = report
        .counter_signatures
        .iter()
        .enumerate()
        .find(|(_, cs)| cs.indication != crate::Indication::TotalPassed)
    {
        return Err(Reason::CounterSignature {
            index: index + 1,
            detail: cs.message.clone(),
        });
    }

    Ok(format!(
        "The signature is valid and the signer ({}) chains to a trusted CA of {} at {}.",
        validated.signer.subject,
        req.origin,
        crate::rfc3339(req.at_unix)
    ))
}

/// The certificates of this document's signer path that OCSP can be asked
/// about (with their issuers and AIA OCSP URLs), for an edge fetcher to call
/// before [`verify_document_fetched`]. Empty when the policy does not use
/// OCSP, or when the document or path is unusable (verification says why).
pub fn ocsp_targets(req: &VerifyRequest<'_>) -> Vec<tamga_trust::OcspTarget> {
    use tamga_trust::RevocationMode as M;
    if !matches!(
        req.policy.certificates.revocation,
        M::Require | M::PreferOcsp
    ) {
        return Vec::new();
    }
    let limits = req.policy.parse_limits();
    let Ok(doc) = Document::parse(req.bytes, &limits) else {
        return Vec::new();
    };
    let Some(element) = find_signatures(&doc)
        .into_iter()
        .find(|s| !has_signature_ancestor(*s))
    else {
        return Vec::new();
    };
    let Ok(sig) = parse_signature(element, &req.policy.budget()) else {
        return Vec::new();
    };
    let xades = parse_xades(&sig).ok().flatten();
    let certificates: &[Vec<u8>] = sig
        .key_info
        .as_ref()
        .map_or(&[], |k| k.certificates.as_slice());
    let Ok(signer_index) = identify_signer(certificates, xades.as_ref()) else {
        return Vec::new();
    };
    let intermediates: Vec<&[u8]> = certificates
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != signer_index)
        .map(|(_, c)| c.as_slice())
        .collect();
    req.trust.ocsp_targets(&PathRequest {
        document_crls: &[],
        ocsp_responses: &[],
        country: req.origin,
        signer_der: &certificates[signer_index],
        intermediates_der: &intermediates,
        at_unix: u64::try_from(req.at_unix).unwrap_or(0),
        revocation: req.policy.certificates.revocation,
        accepted_ekus: &req.policy.certificates.accepted_ekus,
        max_intermediates: req.policy.budgets.max_intermediates,
    })
}

/// The newest CRL of each non-anchor certificate's issuer: the one path
/// validation applied (CRLs are kept newest first and the first match is used).
fn revocation_evidence(
    req: &VerifyRequest<'_>,
    validated: &tamga_trust::ValidatedSigner,
    document_crls: &[&[u8]],
    key_info_crls: usize,
) -> Vec<crate::report::RevocationEvidence> {
    let mut crls = req.trust.crls(req.origin);
    // `document_crls` is KeyInfo's first, then RevocationValues'.
    crls.extend(document_crls.iter().enumerate().filter_map(|(i, der)| {
        let source = if i < key_info_crls {
            "KeyInfo/X509CRL"
        } else {
            "xades:CRLValues"
        };
        tamga_trust::summarize_crl(der, source)
    }));
    crls.sort_by_key(|c| std::cmp::Reverse(c.this_update));
    let below_anchor = validated.chain.len().saturating_sub(1);
    let mut evidence = Vec::new();
    for cert in validated.chain.iter().take(below_anchor) {
        if let Some(ev) = validated
            .ocsp
            .iter()
            .find(|o| o.certificate_serial == cert.serial)
        {
            evidence.push(crate::report::RevocationEvidence {
                certificate_serial: cert.serial.clone(),
                kind: "ocsp",
                issuer: cert.issuer.clone(),
                crl_number: None,
                this_update: crate::rfc3339(i64::try_from(ev.this_update).unwrap_or(i64::MAX)),
                next_update: ev
                    .next_update
                    .map(|t| crate::rfc3339(i64::try_from(t).unwrap_or(i64::MAX)))
                    .unwrap_or_default(),
                source: if ev.delegated {
                    "OCSP (delegated responder)".into()
                } else {
                    "OCSP (issuer)".into()
                },
                sha256: ev.sha256.clone(),
                status: Some(ev.status.as_str()),
                responder: Some(ev.responder.clone()),
                produced_at: Some(crate::rfc3339(
                    i64::try_from(ev.produced_at).unwrap_or(i64::MAX),
                )),
            });
        }
        if !validated.crl_checked.contains(&cert.serial) {
            continue;
        }
        if let Some(c) = crls.iter().find(|c| c.issuer == cert.issuer) {
            evidence.push(crate::report::RevocationEvidence {
                certificate_serial: cert.serial.clone(),
                kind: "crl",
                issuer: c.issuer.clone(),
                crl_number: c.crl_number.clone(),
                this_update: crate::rfc3339(c.this_update),
                next_update: crate::rfc3339(c.next_update),
                source: c.source.clone(),
                sha256: c.sha256.clone(),
                status: None,
                responder: None,
                produced_at: None,
            });
        }
    }
    evidence
}

/// Every XAdES `SignatureTimeStamp` must verify: over this signature's
/// `SignatureValue`, issued by a TSA that chains to the origin's anchors, at
/// the validation time. A time-stamp that does not verify is refused rather
/// than ignored: it claims something about the signature.
fn check_timestamps(
    doc: &Document,
    sig: &SignatureModel<'_>,
    x: &Xades<'_>,
    certificates: &[Vec<u8>],
    req: &VerifyRequest<'_>,
    report: &mut Report,
) -> Result<(), Reason> {
    if x.signature_timestamps.is_empty() {
        return Ok(());
    }
    let anchors = req.trust.anchor_certificates(req.origin);
    let anchors: Vec<&[u8]> = anchors.iter().map(Vec::as_slice).collect();
    let extra: Vec<&[u8]> = certificates.iter().map(Vec::as_slice).collect();
    let mut first_failure = None;
    for ts in &x.signature_timestamps {
        let gen_time = tamga_timestamp::parse_timestamp(&ts.token)
            .ok()
            .map(|i| i.gen_time);
        let outcome = match &ts.c14n {
            Err(uri) => Err(format!("canonicalisation {uri} is not supported")),
            Ok(c14n) => doc
                .canonicalize_to_vec(
                    tamga_xml::Selection::Subtree(sig.signature_value_node),
                    None,
                    c14n,
                )
                .map_err(|e| e.to_string())
                .and_then(|imprint| {
                    tamga_timestamp::verify_timestamp(&tamga_timestamp::TimestampRequest {
                        token_der: &ts.token,
                        imprint_data: &imprint,
                        trust_anchors_der: &anchors,
                        extra_certs_der: &extra,
                        at_unix: u64::try_from(req.at_unix).unwrap_or(0),
                    })
                    .map_err(|e| e.to_string())
                })
                .and_then(|v| check_gen_time(v, x.signing_time.as_deref(), req.at_unix)),
        };
        match outcome {
            Ok(v) => report.timestamps.push(crate::TimestampReport {
                gen_time: Some(v.gen_time.clone()),
                tsa: Some(v.tsa_subject.clone()),
                verified: true,
                message: format!("Time-stamped at {} by {}.", v.gen_time, v.tsa_subject),
            }),
            Err(e) => {
                report.timestamps.push(crate::TimestampReport {
                    gen_time,
                    tsa: None,
                    verified: false,
                    message: e.clone(),
                });
                first_failure.get_or_insert(e);
            }
        }
    }
    match first_failure {
        Some(detail) => Err(Reason::TimestampInvalid { detail }),
        None => Ok(()),
    }
}

/// A time-stamp proves existence at genTime: one from after the validation
/// time, or from before the signer's own claimed SigningTime, contradicts
/// the signature it is about (clock skew of five minutes allowed).
fn check_gen_time(
    v: tamga_timestamp::VerifiedTimestamp,
    signing_time: Option<&str>,
    at_unix: i64,
) -> Result<tamga_timestamp::VerifiedTimestamp, String> {
    const SKEW: i64 = 300;
    if v.gen_time_unix > at_unix + SKEW {
        return Err(format!(
            "its genTime {} is after the validation time",
            v.gen_time
        ));
    }
    if let Some(claimed) = signing_time.and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    }) {
        if v.gen_time_unix + SKEW < claimed.unix_timestamp() {
            return Err(format!(
                "its genTime {} precedes the claimed SigningTime {}",
                v.gen_time,
                signing_time.unwrap_or_default()
            ));
        }
    }
    Ok(v)
}

pub(crate) fn has_signature_ancestor(n: Node<'_>) -> bool {
    let mut cur = n.parent();
    while let Some(p) = cur {
        if p.is(DSIG_NS, "Signature") {
            return true;
        }
        cur = p.parent();
    }
    false
}

pub(crate) fn format_reason(e: FormatError) -> Reason {
    match e {
        FormatError::Budget { .. } => Reason::Budget(e.to_string()),
        _ => Reason::MalformedSignature(e.to_string()),
    }
}

pub(crate) fn crypto_reason(e: CryptoError) -> Reason {
    match e {
        CryptoError::UnsupportedAlgorithm(a) => Reason::AlgorithmNotAllowed { algorithm: a },
        CryptoError::HmacTooShort { bits } => Reason::WeakAlgorithm {
            algorithm: format!("HMAC truncated to {bits} bits"),
        },
        other => Reason::SignatureInvalid(other.to_string()),
    }
}

fn describe_algorithms(sig: &SignatureModel<'_>, report: &mut Report) {
    report.algorithms.canonicalization = Some(match &sig.c14n {
        Ok(c) => tamga_dsig::algorithms::c14n_name(c).to_string(),
        Err(uri) => uri.clone(),
    });
    report.algorithms.signature = Some(sig.signature_method.name());
    let mut digests: Vec<String> = sig
        .references
        .iter()
        .map(|r| r.digest.name().to_string())
        .collect();
    digests.dedup();
    report.algorithms.digests = digests;
    report.references = sig
        .references
        .iter()
        .map(|r| ReferenceReport {
            uri: r.uri.clone(),
            type_uri: r.type_uri.clone(),
            digest_algorithm: r.digest.name().to_string(),
            transforms: r.transforms.iter().map(Transform::name).collect(),
            target: None,
            intact: None,
        })
        .collect();
}

/// What a reference of the declarant signature points at, as the customs
/// profile sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'d> {
    /// The document element (`URI=""` or its `#id`).
    Document,
    /// This signature's own XAdES `SignedProperties`.
    SignedProperties,
    /// This signature's `KeyInfo`, an `X509Data` in it or a certificate in
    /// one of those (`name` says which): signed by XAdES producers (signxml's
    /// `XAdESSigner`, EN 319 132-1 allows it) to bind the certificate; it
    /// proves nothing about the document.
    KeyInfo { name: &'static str },
    /// Another element inside this signature (`SignatureValue`, an
    /// `Object`, …).
    InsideSignature(Node<'d>),
    /// An element of the document outside this signature.
    Elsewhere(Node<'d>),
}

impl Target<'_> {
    /// The name the report gives the target.
    pub(crate) fn name(&self) -> String {
        match self {
            Target::Document => "document".into(),
            Target::SignedProperties => "SignedProperties".into(),
            Target::KeyInfo { name } => (*name).into(),
            Target::InsideSignature(n) => format!("signature:{}", n.local_name()),
            Target::Elsewhere(n) => n.path(),
        }
    }
}

/// Where a same-document reference of `sig` points (`None` for a reference
/// without URI, an external URI, an XPointer or an unknown ID: the customs
/// shape check names those).
pub(crate) fn reference_target<'d>(
    doc: &'d Document,
    sig: &SignatureModel<'d>,
    xades: Option<&Xades<'d>>,
    uri: Option<&str>,
) -> Option<Target<'d>> {
    let uri = uri?;
    let root = doc.root();
    let target = if uri.is_empty() {
        root
    } else {
        let frag = uri.strip_prefix('#')?;
        if frag.starts_with("xpointer(") {
            return None;
        }
        doc.element_by_id(frag)?
    };
    if target == root {
        return Some(Target::Document);
    }
    if Some(target) == xades.and_then(|x| x.signed_properties) {
        return Some(Target::SignedProperties);
    }
    if !sig.element.contains(target) {
        return Some(Target::Elsewhere(target));
    }
    let key_info = sig.element.child(DSIG_NS, "KeyInfo");
    let parent = target.parent();
    let grandparent = parent.and_then(|p| p.parent());
    let name = if key_info.is_none() {
        None
    } else if Some(target) == key_info {
        Some("KeyInfo")
    } else if target.is(DSIG_NS, "X509Data") && parent == key_info {
        Some("KeyInfo/X509Data")
    } else if target.is(DSIG_NS, "X509Certificate")
        && parent.is_some_and(|p| p.is(DSIG_NS, "X509Data"))
        && grandparent == key_info
    {
        Some("KeyInfo/X509Data/X509Certificate")
    } else {
        None
    };
    Some(match name {
        Some(name) => Target::KeyInfo { name },
        None => Target::InsideSignature(target),
    })
}

/// The customs profile: one reference covering the document element with
/// the enveloped-signature transform; optionally one signing this
/// signature's own XAdES SignedProperties and ones signing its own KeyInfo
/// (canonicalisation only); nothing else.
fn check_customs_shape(
    doc: &Document,
    sig: &SignatureModel<'_>,
    xades: Option<&Xades<'_>>,
) -> Result<(), Reason> {
    let mut document_refs = 0;
    // A reference into the signature is named only once the document is
    // known to be covered: without that, it is signature wrapping (the
    // signed original hidden in a ds:Object).
    let mut into_signature = None;
    for r in &sig.references {
        let uri = r.uri.clone().ok_or(Reason::UnexpectedReference {
            uri: "(a detached reference without URI)".into(),
        })?;
        if let Some(frag) = uri.strip_prefix('#') {
            if frag.starts_with("xpointer(") {
                return Err(Reason::ForbiddenTransform {
                    name: format!("XPointer {frag}"),
                });
            }
            if doc.element_by_id(frag).is_none() {
                return Err(Reason::ReferenceUnresolved {
                    uri: uri.clone(),
                    detail: "no element has this ID".into(),
                });
            }
        } else if !uri.is_empty() {
            return Err(Reason::ExternalReference { uri });
        }
        let only_c14n = || {
            r.transforms
                .iter()
                .find(|t| !matches!(t, Transform::C14n(_)))
                .map_or(Ok(()), |t| {
                    Err(Reason::ForbiddenTransform { name: t.name() })
                })
        };
        match reference_target(doc, sig, xades, Some(&uri)) {
            Some(Target::Document) => {
                document_refs += 1;
                let mut enveloped = false;
                for t in &r.transforms {
                    match t {
                        Transform::Enveloped => enveloped = true,
                        Transform::C14n(_) => {}
                        other => return Err(Reason::ForbiddenTransform { name: other.name() }),
                    }
                }
                if !enveloped {
                    return Err(Reason::DocumentNotCovered);
                }
            }
            Some(Target::SignedProperties) => only_c14n()?,
            _ if r.type_uri.as_deref() == Some(tamga_dsig::xades::SIGNED_PROPERTIES_TYPE) => {
                return Err(Reason::SignedPropertiesWrapped { uri });
            }
            Some(Target::KeyInfo { .. }) => only_c14n()?,
            Some(Target::InsideSignature(n)) => {
                into_signature.get_or_insert(Reason::ReferenceIntoSignature {
                    uri,
                    element: n.local_name().to_string(),
                });
            }
            Some(Target::Elsewhere(_)) => return Err(Reason::UnexpectedReference { uri }),
            None => return Err(Reason::DocumentNotCovered),
        }
    }
    match document_refs {
        1 => into_signature.map_or(Ok(()), Err),
        0 => Err(Reason::DocumentNotCovered),
        _ => Err(Reason::UnexpectedReference {
            uri: "a second reference to the document element".into(),
        }),
    }
}

/// The generic profile still refuses transforms Tamga will never run.
fn check_generic_shape(sig: &SignatureModel<'_>) -> Result<(), Reason> {
    for r in &sig.references {
        for t in &r.transforms {
            if !matches!(
                t,
                Transform::Enveloped | Transform::C14n(_) | Transform::Base64
            ) {
                return Err(Reason::ForbiddenTransform { name: t.name() });
            }
        }
    }
    Ok(())
}

/// XAdES, any profile: the SignedProperties that is signed must be the one
/// in this signature's QualifyingProperties, and it must be signed.
pub(crate) fn check_signed_properties(
    doc: &Document,
    sig: &SignatureModel<'_>,
    xades: Option<&Xades<'_>>,
) -> Result<(), Reason> {
    let Some(x) = xades else {
        return Ok(());
    };
    let mut signed = false;
    for r in &sig.references {
        let typed = r.type_uri.as_deref() == Some(tamga_dsig::xades::SIGNED_PROPERTIES_TYPE);
        let target = r
            .uri
            .as_deref()
            .and_then(|u| u.strip_prefix('#'))
            .and_then(|id| doc.element_by_id(id));
        let is_props = target.is_some() && target == x.signed_properties;
        if is_props {
            signed = true;
        } else if typed {
            return Err(Reason::SignedPropertiesWrapped {
                uri: r.uri.clone().unwrap_or_default(),
            });
        }
    }
    // QualifyingProperties with only unsigned properties is how a plain
    // XML-DSig signature carries counter-signatures: fine, if nothing
    // claims to sign properties that are not there.
    if x.signed_properties.is_some() && !signed {
        return Err(Reason::SignedPropertiesNotSigned);
    }
    Ok(())
}

/// Which KeyInfo certificate is the signer's: the one XAdES names, or else
/// the only one that issued none of the others.
pub(crate) fn identify_signer(
    certs: &[Vec<u8>],
    xades: Option<&Xades<'_>>,
) -> Result<usize, Reason> {
    if let Some(x) = xades {
        if let Some(first) = x.signing_certificates.first() {
            return certs
                .iter()
                .position(|c| first.matches(c))
                .ok_or(Reason::SigningCertificateMismatch);
        }
    }
    if certs.len() == 1 {
        return Ok(0);
    }
    let parsed: Vec<_> = certs
        .iter()
        .map(|c| x509_parser::parse_x509_certificate(c).map(|(_, p)| p))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            Reason::NoSigningCertificate(format!("a KeyInfo certificate does not parse: {e}"))
        })?;
    let leaves: Vec<usize> = (0..parsed.len())
        .filter(|&i| {
            !parsed.iter().enumerate().any(|(j, other)| {
                j != i && other.issuer() == parsed[i].subject() && other.subject() != other.issuer()
            })
        })
        .collect();
    match leaves.as_slice() {
        [one] => Ok(*one),
        _ => Err(Reason::NoSigningCertificate(
            "KeyInfo carries several candidate signer certificates".into(),
        )),
    }
}

pub(crate) fn check_key_strength(policy: &Policy, key: &PublicKey) -> Result<(), Reason> {
    let minimum = match key {
        PublicKey::Rsa { .. } => policy.algorithms.min_rsa_bits,
        PublicKey::Ec { .. } => policy.algorithms.min_ec_bits,
        PublicKey::Ed25519(_) => 0,
        // 256 and 512 are the only GOST R 34.10-2012 sizes.
        PublicKey::Gost(_) => policy.algorithms.min_ec_bits,
        _ => {
            return Err(Reason::AlgorithmNotAllowed {
                algorithm: key.describe(),
            })
        }
    };
    if key.bits() < minimum {
        return Err(Reason::WeakKey {
            key: key.describe(),
            minimum,
        });
    }
    Ok(())
}

fn check_digests(
    doc: &Document,
    sig: &SignatureModel<'_>,
    req: &VerifyRequest<'_>,
    report: &mut Report,
    digests: &dyn ReferenceDigests,
) -> Result<(), Reason> {
    let limits = req.policy.parse_limits();
    let outcomes = digests.check(doc, sig, req.resolver, &limits);
    for o in &outcomes {
        if let Some(r) = report.references.get_mut(o.index) {
            r.intact = Some(o.result.is_ok());
        }
    }
    digest_verdict(outcomes)
}

/// The first failed reference as a reason.
pub(crate) fn digest_verdict(outcomes: Vec<tamga_dsig::ReferenceOutcome>) -> Result<(), Reason> {
    for o in outcomes {
        let uri = o.uri.unwrap_or_default();
        match o.result {
            Ok(()) => {}
            Err(ReferenceFailure::DigestMismatch) => return Err(Reason::DigestMismatch { uri }),
            Err(ReferenceFailure::Error(e)) => {
                return Err(match e {
                    ReferenceError::External { uri } => Reason::ExternalReference { uri },
                    ReferenceError::UnsupportedTransform { name } => {
                        Reason::ForbiddenTransform { name }
                    }
                    ReferenceError::UnsupportedDigest { uri } => {
                        Reason::AlgorithmNotAllowed { algorithm: uri }
                    }
                    other => Reason::ReferenceUnresolved {
                        uri,
                        detail: other.to_string(),
                    },
                })
            }
            Err(_) => {
                return Err(Reason::ReferenceUnresolved {
                    uri,
                    detail: "unknown failure".into(),
                })
            }
        }
    }
    Ok(())
}
