//! RFC 3161 time-stamp token verification for XAdES `SignatureTimeStamp`.
//!
//! A time-stamp token is a CMS `ContentInfo` (RFC 5652) whose `SignedData`
//! encapsulates a DER `TSTInfo` (RFC 3161 §2.4.2). [`verify_timestamp`]
//! accepts a token only if **every** check below passes, in this order
//! (the first failure is returned):
//!
//! 1. **Structure** — strict DER (definite, minimal lengths; no trailing data);
//!    ContentInfo is `signedData`, `eContentType` is `id-ct-TSTInfo`, eContent
//!    present; exactly one `SignerInfo`, with signed attributes; TSTInfo v1.
//! 2. **Algorithms** — messageImprint, SignerInfo digest and signature
//!    algorithms are SHA-256/384/512 based (SHA-1, MD5, SHA-224 and unknown
//!    algorithms are [`TimestampError::UnsupportedAlgorithm`]); signatures are
//!    RSA PKCS#1 v1.5, RSA-PSS (MGF1 with the same hash, salt = hash length)
//!    with ≥ 2048-bit keys, or ECDSA P-256/P-384. Unknown critical TSTInfo
//!    extensions are refused.
//! 3. **Signed attributes** — `content-type` = `id-ct-TSTInfo`;
//!    `message-digest` = hash(eContent); a CMS algorithm-protection attribute
//!    (RFC 6211), if present, matches the SignerInfo algorithms.
//! 4. **Signature** — over the DER of the signed attributes re-tagged as
//!    `SET OF` (0x31), with the key of a certificate matching the signer
//!    identifier (IssuerAndSerialNumber or SubjectKeyIdentifier) found in the
//!    token, in `extra_certs_der`, or among the trust anchors.
//! 5. **ESS** — an ESS `signing-certificate` (SHA-1 cert hash, RFC 2634) or
//!    `signing-certificate-v2` (RFC 5035) attribute, when present, names that
//!    very certificate (hash, and issuer/serial when given). The TSTInfo `tsa`
//!    field, when it is a directoryName, must be the certificate's subject.
//! 6. **TSA certificate** — extended key usage present, **critical**, with
//!    `id-kp-timeStamping` (RFC 3161 §2.3); key usage, if present, allows
//!    signing; genTime lies within its validity period; and it is either one
//!    of the trust anchors itself (then valid at `at_unix`), or chains to one
//!    at `at_unix` with rustls-webpki (intermediates from the token and
//!    `extra_certs_der`; any CA on the path that has an EKU must also allow
//!    time-stamping).
//! 7. **Imprint** — messageImprint = hash(`imprint_data`) with the token's
//!    hash algorithm. This comes last so that [`TimestampError::ImprintMismatch`]
//!    is only reported for an otherwise authentic token.
//!
//! **No revocation checking** is done: neither CRLs nor OCSP for the TSA
//! certificate or its CAs (revocation values embedded in the token are
//! ignored). Callers that need it must check the returned
//! [`VerifiedTimestamp::tsa_certificate_der`] themselves.
//!
//! The crate is pure: no clock (the validation time is `at_unix`), no network,
//! no filesystem.

#![forbid(unsafe_code)]

mod alg;
mod cert;
mod cms;
mod der;
mod error;
mod tst;

pub use cert::TsaTrust;
pub use error::TimestampError;
pub use tst::{Accuracy, TstExtension};

use crate::cert::Candidate;
use crate::der::AlgId;

/// What to verify and against what.
#[derive(Clone, Copy, Debug)]
pub struct TimestampRequest<'a> {
    /// The time-stamp token: DER ContentInfo (for XAdES, the base64-decoded
    /// `xades:EncapsulatedTimeStamp` content).
    pub token_der: &'a [u8],
    /// The octets the time-stamp must cover. For a XAdES `SignatureTimeStamp`:
    /// the `ds:SignatureValue` element canonicalised with the time-stamp's
    /// `ds:CanonicalizationMethod`. Hashed with the token's imprint algorithm.
    pub imprint_data: &'a [u8],
    /// Trusted TSA roots (DER certificates). A TSA certificate listed here is
    /// trusted directly.
    pub trust_anchors_der: &'a [&'a [u8]],
    /// Untrusted certificates that may complete the path (e.g. from the document).
    pub extra_certs_der: &'a [&'a [u8]],
    /// Validation time of the TSA certificate path, seconds since the Unix epoch.
    pub at_unix: u64,
}

/// A time-stamp token that passed every check.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTimestamp {
    /// genTime as seconds since the Unix epoch (fraction dropped).
    pub gen_time_unix: i64,
    /// genTime in RFC 3339 (UTC, `Z`; fraction kept as in the token).
    pub gen_time: String,
    /// Subject of the TSA certificate (RFC 4514 style).
    pub tsa_subject: String,
    /// TSTInfo serialNumber, lowercase hex.
    pub serial_hex: String,
    /// messageImprint hash algorithm, e.g. `SHA-256`.
    pub hash_algorithm: String,
    /// TSA policy OID, dotted.
    pub policy_oid: String,
    /// TSTInfo accuracy, if stated.
    pub accuracy: Option<Accuracy>,
    /// TSTInfo nonce, lowercase hex, if present.
    pub nonce_hex: Option<String>,
    /// DER of the TSA certificate whose key verified the token.
    pub tsa_certificate_der: Vec<u8>,
    /// How the TSA certificate was found trustworthy.
    pub trust: TsaTrust,
}

/// How the SignerInfo identifies the TSA certificate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerId {
    /// IssuerAndSerialNumber.
    IssuerAndSerialNumber {
        /// Issuer Name, RFC 4514 style.
        issuer: String,
        /// Serial number, lowercase hex.
        serial_hex: String,
    },
    /// SubjectKeyIdentifier, lowercase hex.
    SubjectKeyIdentifier(String),
}

/// The contents of a time-stamp token, parsed but **not verified**: for
/// reports and diagnostics only.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampInfo {
    /// genTime as seconds since the Unix epoch (fraction dropped).
    pub gen_time_unix: i64,
    /// genTime in RFC 3339.
    pub gen_time: String,
    /// TSA policy OID, dotted.
    pub policy_oid: String,
    /// TSTInfo serialNumber, lowercase hex.
    pub serial_hex: String,
    /// messageImprint hash algorithm name (`SHA-256`, `SHA-1`, or a dotted OID).
    pub hash_algorithm: String,
    /// messageImprint hashedMessage.
    pub hashed_message: Vec<u8>,
    /// TSTInfo accuracy.
    pub accuracy: Option<Accuracy>,
    /// TSTInfo ordering flag.
    pub ordering: bool,
    /// TSTInfo nonce, lowercase hex.
    pub nonce_hex: Option<String>,
    /// TSTInfo `tsa` name: a directoryName as RFC 4514 text, other forms as
    /// `GeneralName[n]:hex`.
    pub tsa_name: Option<String>,
    /// TSTInfo extensions.
    pub extensions: Vec<TstExtension>,
    /// The signer identifier.
    pub signer: SignerId,
    /// SignerInfo digestAlgorithm name.
    pub digest_algorithm: String,
    /// SignerInfo signatureAlgorithm name.
    pub signature_algorithm: String,
    /// DER X.509 certificates carried in the token.
    pub certificates_der: Vec<Vec<u8>>,
}

/// Parses a token without verifying anything beyond its structure.
pub fn parse_timestamp(token_der: &[u8]) -> Result<TimestampInfo, TimestampError> {
    let sd = cms::parse_signed_data(token_der)?;
    let tst = tst::parse_tst_info(sd.econtent)?;
    let signer = match sd.signer.sid {
        cms::Sid::IssuerSerial { issuer, serial } => SignerId::IssuerAndSerialNumber {
            issuer: cert::name_to_string(issuer),
            serial_hex: der::positive_integer_hex(serial),
        },
        cms::Sid::SubjectKeyId(kid) => SignerId::SubjectKeyIdentifier(hex::encode(kid)),
    };
    let tsa_name = match tst.tsa {
        Some(gn) if gn.tag == der::ctx_cons(4) => {
            Some(cert::name_to_string(cms::directory_name(gn)?))
        }
        Some(gn) => Some(format!(
            "GeneralName[{}]:{}",
            gn.tag & 0x1f,
            hex::encode(gn.value)
        )),
        None => None,
    };
    Ok(TimestampInfo {
        gen_time_unix: tst.gen_time.unix,
        gen_time: tst.gen_time.rfc3339.clone(),
        policy_oid: der::oid_to_string(tst.policy),
        serial_hex: der::positive_integer_hex(tst.serial),
        hash_algorithm: tst::imprint_alg_name(&tst),
        hashed_message: tst.hashed_message.to_vec(),
        accuracy: tst.accuracy,
        ordering: tst.ordering,
        nonce_hex: tst.nonce.map(hex::encode),
        tsa_name,
        extensions: tst.extensions.clone(),
        signer,
        digest_algorithm: alg::digest_name(sd.signer.digest_alg.oid),
        signature_algorithm: alg::signature_name(sd.signer.signature_alg.oid),
        certificates_der: sd.certs.iter().map(|c| c.to_vec()).collect(),
    })
}

/// Verifies a time-stamp token: see the crate documentation for every check.
pub fn verify_timestamp(req: &TimestampRequest<'_>) -> Result<VerifiedTimestamp, TimestampError> {
    // 1. Structure.
    let sd = cms::parse_signed_data(req.token_der)?;
    let tst = tst::parse_tst_info(sd.econtent)?;
    let si = &sd.signer;

    // 2. Algorithms and TSTInfo extensions.
    let imprint_hash = alg::hash_from_alg(&tst.imprint_alg, "messageImprint.hashAlgorithm")?;
    if tst.hashed_message.len() != imprint_hash.output_len() {
        return Err(error::malformed(format!(
            "messageImprint.hashedMessage is {} bytes, {} needs {}",
            tst.hashed_message.len(),
            imprint_hash.name(),
            imprint_hash.output_len()
        )));
    }
    if let Some(ext) = tst.extensions.iter().find(|e| e.critical) {
        return Err(TimestampError::UnsupportedCriticalExtension(
            ext.oid.clone(),
        ));
    }
    let digest_hash = alg::hash_from_alg(&si.digest_alg, "SignerInfo.digestAlgorithm")?;
    let scheme = alg::signature_scheme(&si.signature_alg, digest_hash)?;

    // 3. Signed attributes.
    check_signed_attributes(si, digest_hash, sd.econtent)?;

    // 4. Signer certificate and signature.
    let candidates = cert::signer_candidates(
        &si.sid,
        &sd.certs,
        req.extra_certs_der,
        req.trust_anchors_der,
    )?;
    let idx = cert::verify_signature(&candidates, scheme, &si.signed_attrs_der, si.signature)?;
    let signer: &Candidate<'_> = candidates
        .get(idx)
        .ok_or(TimestampError::SignerCertificateNotFound)?;

    // 5. ESS binding and tsa name.
    if let Some(v) = si.single_attr(cms::OID_ATTR_SIGNING_CERTIFICATE, "signing-certificate")? {
        cert::check_ess(&cms::parse_signing_certificate(v, false)?, false, signer)?;
    }
    if let Some(v) = si.single_attr(
        cms::OID_ATTR_SIGNING_CERTIFICATE_V2,
        "signing-certificate-v2",
    )? {
        cert::check_ess(&cms::parse_signing_certificate(v, true)?, true, signer)?;
    }
    cert::check_tsa_name(tst.tsa, signer)?;

    // 6. TSA certificate usage and trust.
    cert::check_tsa_usage(signer)?;
    cert::check_gen_time_within_validity(signer, tst.gen_time.unix)?;
    let trust = cert::validate_path(
        signer,
        &sd.certs,
        req.extra_certs_der,
        req.trust_anchors_der,
        req.at_unix,
    )?;

    // 7. Imprint.
    if imprint_hash.digest(req.imprint_data) != tst.hashed_message {
        return Err(TimestampError::ImprintMismatch);
    }

    Ok(VerifiedTimestamp {
        gen_time_unix: tst.gen_time.unix,
        gen_time: tst.gen_time.rfc3339.clone(),
        tsa_subject: signer.cert.subject().to_string(),
        serial_hex: der::positive_integer_hex(tst.serial),
        hash_algorithm: imprint_hash.name().to_owned(),
        policy_oid: der::oid_to_string(tst.policy),
        accuracy: tst.accuracy,
        nonce_hex: tst.nonce.map(hex::encode),
        tsa_certificate_der: signer.der.to_vec(),
        trust,
    })
}

fn check_signed_attributes(
    si: &cms::SignerInfo<'_>,
    digest_hash: alg::Hash,
    econtent: &[u8],
) -> Result<(), TimestampError> {
    let ct = si
        .single_attr(cms::OID_ATTR_CONTENT_TYPE, "content-type")?
        .ok_or_else(|| error::malformed("signed attribute content-type is missing"))?;
    if der::oid(ct, "content-type attribute")? != cms::OID_CT_TST_INFO {
        return Err(error::malformed(
            "content-type attribute is not id-ct-TSTInfo",
        ));
    }
    let md = si
        .single_attr(cms::OID_ATTR_MESSAGE_DIGEST, "message-digest")?
        .ok_or_else(|| error::malformed("signed attribute message-digest is missing"))?;
    let md = der::octet_string(md, "message-digest attribute")?;
    if md != digest_hash.digest(econtent) {
        return Err(TimestampError::MessageDigestMismatch);
    }
    if let Some(p) = si.single_attr(
        cms::OID_ATTR_ALGORITHM_PROTECTION,
        "cms-algorithm-protection",
    )? {
        check_algorithm_protection(p, si)?;
    }
    Ok(())
}

/// RFC 6211 `CMSAlgorithmProtection ::= SEQUENCE { digestAlgorithm,
/// signatureAlgorithm [1] IMPLICIT OPTIONAL, macAlgorithm [2] IMPLICIT OPTIONAL }`.
fn check_algorithm_protection(
    value: der::Tlv<'_>,
    si: &cms::SignerInfo<'_>,
) -> Result<(), TimestampError> {
    let what = "CMSAlgorithmProtection";
    let mut r = value.expect_tag(der::TAG_SEQUENCE, what)?.reader(what);
    let digest = AlgId::parse(r.read()?, what)?;
    let sig = r
        .optional(der::ctx_cons(1))?
        .ok_or(TimestampError::AlgorithmProtectionMismatch)?;
    let sig = AlgId::from_contents(sig, what)?;
    if r.optional(der::ctx_cons(2))?.is_some() {
        return Err(TimestampError::AlgorithmProtectionMismatch);
    }
    r.finish()?;
    if digest.same_as(&si.digest_alg) && sig.same_as(&si.signature_alg) {
        Ok(())
    } else {
        Err(TimestampError::AlgorithmProtectionMismatch)
    }
}
