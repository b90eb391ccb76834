//! The TSA certificate: finding it, checking the signature with its key, ESS
//! binding, time-stamping usage and the path to a trust anchor.

use std::time::Duration;

use aws_lc_rs::digest;
use aws_lc_rs::signature::UnparsedPublicKey;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::X509Name;

use crate::alg::{self, Hash, SigScheme};
use crate::cms::{self, EssCertId, Sid};
use crate::der;
use crate::error::{malformed, TimestampError};

/// id-kp-timeStamping, 1.3.6.1.5.5.7.3.8 (OID content octets).
pub(crate) const EKU_TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// Where a candidate signer certificate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Token,
    Extra,
    Anchor,
}

/// A parsed certificate with its exact DER.
pub(crate) struct Candidate<'a> {
    pub der: &'a [u8],
    pub cert: X509Certificate<'a>,
    pub source: Source,
}

impl std::fmt::Debug for Candidate<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("subject", &self.cert.subject().to_string())
            .field("source", &self.source)
            .finish()
    }
}

/// Parses a DER certificate that must span exactly `der`.
pub(crate) fn parse_cert(der: &[u8]) -> Option<X509Certificate<'_>> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Some(cert),
        _ => None,
    }
}

/// Human-readable Name (RFC 4514 style), or hex if it does not parse.
pub(crate) fn name_to_string(name_der: &[u8]) -> String {
    match X509Name::from_der(name_der) {
        Ok(([], name)) => name.to_string(),
        _ => hex::encode(name_der),
    }
}

fn subject_key_id<'a>(cert: &X509Certificate<'a>) -> Option<&'a [u8]> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(kid) => Some(kid.0),
            _ => None,
        })
}

fn matches_sid(cert: &X509Certificate<'_>, sid: &Sid<'_>) -> bool {
    match sid {
        Sid::IssuerSerial { issuer, serial } => {
            cert.issuer().as_raw() == *issuer && cert.raw_serial() == *serial
        }
        Sid::SubjectKeyId(kid) => subject_key_id(cert) == Some(*kid),
    }
}

/// Collects every certificate that matches the signer identifier, token
/// certificates first, then `extra`, then the trust anchors; duplicates
/// (same DER) are listed once.
pub(crate) fn signer_candidates<'a>(
    sid: &Sid<'_>,
    token_certs: &[&'a [u8]],
    extra: &[&'a [u8]],
    anchors: &[&'a [u8]],
) -> Result<Vec<Candidate<'a>>, TimestampError> {
    let mut out: Vec<Candidate<'a>> = Vec::new();
    let sources = token_certs
        .iter()
        .map(|d| (*d, Source::Token))
        .chain(extra.iter().map(|d| (*d, Source::Extra)))
        .chain(anchors.iter().map(|d| (*d, Source::Anchor)));
    for (der, source) in sources {
        let Some(cert) = parse_cert(der) else {
            if source == Source::Token {
                // The token's own certificate set must be well-formed.
                return Err(malformed("SignedData.certificates: unparsable certificate"));
            }
            continue;
        };
        if matches_sid(&cert, sid) && !out.iter().any(|c| c.der == der) {
            out.push(Candidate { der, cert, source });
        }
    }
    Ok(out)
}

/// Verifies the SignerInfo signature over `signed_attrs` with the first
/// candidate whose key verifies it; returns that candidate's index.
pub(crate) fn verify_signature(
    candidates: &[Candidate<'_>],
    scheme: SigScheme,
    signed_attrs: &[u8],
    signature: &[u8],
) -> Result<usize, TimestampError> {
    if candidates.is_empty() {
        return Err(TimestampError::SignerCertificateNotFound);
    }
    let mut unsupported: Option<TimestampError> = None;
    for (i, cand) in candidates.iter().enumerate() {
        let spki = cand.cert.public_key();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .filter(|p| p.tag() == asn1_rs::Tag::Oid)
            .map(|p| p.data);
        let Some(kind) = alg::key_kind(spki.algorithm.algorithm.as_bytes(), curve) else {
            unsupported.get_or_insert_with(|| {
                TimestampError::UnsupportedAlgorithm(format!(
                    "TSA public key {}",
                    spki.algorithm.algorithm.to_id_string()
                ))
            });
            continue;
        };
        let Some(valg) = alg::verification_algorithm(scheme, kind) else {
            unsupported.get_or_insert_with(|| {
                TimestampError::UnsupportedAlgorithm(format!(
                    "signature scheme {scheme:?} with a {kind:?} key"
                ))
            });
            continue;
        };
        let key = UnparsedPublicKey::new(valg, spki.subject_public_key.data.as_ref());
        if key.verify(signed_attrs, signature).is_ok() {
            return Ok(i);
        }
    }
    // A key that could be tried and failed is a bad signature; only if no key
    // could be tried at all is the algorithm the problem.
    let tried = candidates.iter().any(|c| {
        let spki = c.cert.public_key();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .filter(|p| p.tag() == asn1_rs::Tag::Oid)
            .map(|p| p.data);
        alg::key_kind(spki.algorithm.algorithm.as_bytes(), curve)
            .and_then(|k| alg::verification_algorithm(scheme, k))
            .is_some()
    });
    match unsupported {
        Some(e) if !tried => Err(e),
        _ => Err(TimestampError::SignatureInvalid),
    }
}

/// Checks an ESS signing-certificate(-v2) entry against the signer certificate.
pub(crate) fn check_ess(
    ess: &EssCertId<'_>,
    v2: bool,
    signer: &Candidate<'_>,
) -> Result<(), TimestampError> {
    let computed = if v2 {
        let hash = match &ess.hash_alg {
            None => Hash::Sha256,
            Some(a) => alg::hash_from_alg(a, "ESSCertIDv2.hashAlgorithm")?,
        };
        hash.digest(signer.der)
    } else {
        // RFC 2634 fixes SHA-1 for ESSCertID. It only names the certificate
        // here; the signature itself is verified with the certificate's key.
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, signer.der)
            .as_ref()
            .to_vec()
    };
    if computed != ess.cert_hash {
        return Err(TimestampError::SigningCertificateMismatch);
    }
    if let Some((names, serial)) = ess.issuer_serial {
        if serial != signer.cert.raw_serial() {
            return Err(TimestampError::SigningCertificateMismatch);
        }
        let dirs = cms::directory_names(names)?;
        if !dirs.is_empty() && !dirs.iter().any(|n| *n == signer.cert.issuer().as_raw()) {
            return Err(TimestampError::SigningCertificateMismatch);
        }
    }
    Ok(())
}

/// RFC 3161 §2.4.2: a `tsa` directoryName must name the signer certificate's subject.
pub(crate) fn check_tsa_name(
    tsa: Option<der::Tlv<'_>>,
    signer: &Candidate<'_>,
) -> Result<(), TimestampError> {
    let Some(gn) = tsa else { return Ok(()) };
    if gn.tag != der::ctx_cons(4) {
        // Other GeneralName forms (URI, DNS, ...) are reported, not compared.
        return Ok(());
    }
    let name = cms::directory_name(gn)?;
    let subject = signer.cert.subject();
    if name == subject.as_raw() || name_to_string(name) == subject.to_string() {
        Ok(())
    } else {
        Err(TimestampError::TsaNameMismatch)
    }
}

/// RFC 3161 §2.3: the TSA certificate has a critical EKU with id-kp-timeStamping;
/// a key usage, if present, allows signatures.
pub(crate) fn check_tsa_usage(signer: &Candidate<'_>) -> Result<(), TimestampError> {
    let eku = signer
        .cert
        .extended_key_usage()
        .map_err(|e| TimestampError::TsaCertificateInvalid(format!("extended key usage: {e}")))?;
    match eku {
        Some(ext) if ext.critical && ext.value.time_stamping => {}
        _ => return Err(TimestampError::TsaNotForTimestamping),
    }
    let ku = signer
        .cert
        .key_usage()
        .map_err(|e| TimestampError::TsaCertificateInvalid(format!("key usage: {e}")))?;
    if let Some(ku) = ku {
        if !ku.value.digital_signature() && !ku.value.non_repudiation() {
            return Err(TimestampError::TsaCertificateInvalid(
                "key usage allows neither digitalSignature nor nonRepudiation".into(),
            ));
        }
    }
    Ok(())
}

/// The token's genTime must fall within the TSA certificate's validity: a
/// TSA key used outside its certificate's lifetime is not to be believed,
/// whatever the path validation time.
pub(crate) fn check_gen_time_within_validity(
    signer: &Candidate<'_>,
    gen_time_unix: i64,
) -> Result<(), TimestampError> {
    let at = ASN1Time::from_timestamp(gen_time_unix)
        .map_err(|_| TimestampError::TsaCertificateInvalid("genTime out of range".into()))?;
    if signer.cert.validity().is_valid_at(at) {
        Ok(())
    } else {
        Err(TimestampError::TsaCertificateInvalid(
            "genTime is outside the TSA certificate's validity period".into(),
        ))
    }
}

/// How the TSA certificate was found trustworthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TsaTrust {
    /// The TSA certificate chains to a trust anchor (webpki path validation).
    Chain,
    /// The TSA certificate is itself one of the trust anchors, as in EU
    /// trusted lists that publish a TSA's own certificate as its service identity.
    DirectAnchor,
}

/// Validates the TSA certificate at `at_unix`: either it is itself a trust
/// anchor (then only its validity period is checked), or webpki builds a path
/// to an anchor. No revocation checking.
pub(crate) fn validate_path(
    signer: &Candidate<'_>,
    token_certs: &[&[u8]],
    extra: &[&[u8]],
    anchors_der: &[&[u8]],
    at_unix: u64,
) -> Result<TsaTrust, TimestampError> {
    let anchor_ders: Vec<CertificateDer<'_>> = anchors_der
        .iter()
        .map(|d| CertificateDer::from(*d))
        .collect();
    let mut anchors: Vec<TrustAnchor<'_>> = Vec::with_capacity(anchor_ders.len());
    for (i, d) in anchor_ders.iter().enumerate() {
        let a = webpki::anchor_from_trusted_cert(d)
            .map_err(|e| TimestampError::InvalidTrustAnchor(format!("anchor #{i}: {e}")))?;
        anchors.push(a);
    }
    if anchors.is_empty() {
        return Err(TimestampError::UntrustedTsa(
            "no trust anchors configured".into(),
        ));
    }

    if anchors_der.contains(&signer.der) {
        let at = i64::try_from(at_unix)
            .ok()
            .and_then(|t| ASN1Time::from_timestamp(t).ok())
            .ok_or_else(|| {
                TimestampError::TsaCertificateInvalid("validation time out of range".into())
            })?;
        if !signer.cert.validity().is_valid_at(at) {
            return Err(TimestampError::TsaCertificateInvalid(
                "the directly trusted TSA certificate is not valid at the validation time".into(),
            ));
        }
        return Ok(TsaTrust::DirectAnchor);
    }

    let ee_der = CertificateDer::from(signer.der);
    let ee = EndEntityCert::try_from(&ee_der)
        .map_err(|e| TimestampError::TsaCertificateInvalid(format!("{e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = token_certs
        .iter()
        .chain(extra.iter())
        .filter(|d| **d != signer.der)
        .map(|d| CertificateDer::from(*d))
        .collect();
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at_unix));
    // webpki applies the EKU validator to every certificate on the path, and
    // CA certificates normally carry no EKU. So the path is validated with
    // "timeStamping if an EKU is present" (a CA restricted to other purposes
    // still fails), and the end-entity requirement — EKU present, critical,
    // with timeStamping — is enforced separately by `check_tsa_usage`.
    let usage = KeyUsage::required_if_present(EKU_TIME_STAMPING);
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        time,
        usage,
        None,
        None,
    )
    .map_err(map_webpki_error)?;
    Ok(TsaTrust::Chain)
}

fn map_webpki_error(e: webpki::Error) -> TimestampError {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => {
            TimestampError::UntrustedTsa("no path to a configured trust anchor".into())
        }
        E::CertDistrusted => TimestampError::UntrustedTsa("distrusted certificate".into()),
        E::RequiredEkuNotFoundContext(_) => TimestampError::TsaNotForTimestamping,
        other => TimestampError::TsaCertificateInvalid(format!("{other}")),
    }
}
