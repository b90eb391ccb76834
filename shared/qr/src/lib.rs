//! The signed QR code of a Tamga receipt, and the signed offline trust bundle.
//!
//! A receipt's QR payload (format: `schemas/qr.md`) is, like the EU Digital COVID
//! Certificate's, `TMG1:` + Base45( zlib( COSE_Sign1 ) ): the COSE payload is a small CBOR
//! map (receipt id, decision, document SHA-256, LRN, origin, destination, issued-at,
//! authority certificate SHA-256, rejection reason), signed by the receiving authority's
//! key through the [`tamga_dsig::Signer`] abstraction (so a PKCS#11 key signs QR codes as
//! it signs receipts), with the authority's certificate path in the unprotected `x5chain`
//! header so that a checkpoint with only the trust directory can check it offline.
//!
//! Pure: bytes in, values out. Hostile input is bounded before it is expanded: the text
//! length before Base45, the compressed length, and the inflated length (a zip bomb stops at
//! [`MAX_COSE_BYTES`]).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod base45;
pub mod bundle;
mod cose;

use std::io::Read;

use ciborium::value::Value;
use serde::Serialize;
use tamga_dsig::Signer;
use tamga_trust::{CertSummary, CountryCode, PathError, PathRequest, RevocationMode, TrustList};

pub use cose::{cose_algorithm, CoseAlgorithm};

/// The prefix of every payload (format version 1).
pub const PREFIX: &str = "TMG1:";
/// Longest payload text accepted (characters after the prefix), checked before decoding.
pub const MAX_PAYLOAD_CHARS: usize = 6_000;
/// Longest COSE_Sign1 accepted after inflating; the inflater stops reading past it.
pub const MAX_COSE_BYTES: usize = 8_192;
/// Longest text field in the claims.
const MAX_TEXT: usize = 256;
/// Most certificates in `x5chain`.
const MAX_CHAIN: usize = 4;

/// What a receipt QR states (the COSE payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub receipt_id: String,
    /// `accepted` or `rejected`.
    pub decision: String,
    /// SHA-256 of the submitted bytes, lower-case hex.
    pub document_sha256: String,
    pub lrn: Option<String>,
    pub origin: String,
    pub destination: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// SHA-256 of the authority's certificate, lower-case hex.
    pub authority_certificate_sha256: String,
    /// The Tamga reason code of a rejection.
    pub reason: Option<String>,
}

/// Why a payload could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    #[error("not a Tamga QR payload (it must start with {PREFIX})")]
    WrongPrefix,
    #[error("the payload is larger than a Tamga QR can be")]
    Oversize,
    #[error("the payload is not valid Base45: {0}")]
    Base45(String),
    #[error("the payload does not inflate: {0}")]
    Inflate(String),
    #[error("the payload is not a COSE_Sign1: {0}")]
    Cose(String),
    #[error("the payload's claims are malformed: {0}")]
    Claims(String),
    #[error("the authority key's algorithm {0} has no COSE identifier")]
    UnsupportedAlgorithm(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

/// How a check ended: the three states the checkpoint shows, never confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum State {
    /// Signed by an authority the trust list recognises: the claims can be believed.
    Authentic,
    /// Forged, altered, malformed, signed by a revoked or expired key.
    NotAuthentic,
    /// Could not be decided: the authority is unknown to this trust list, revocation
    /// information is missing or stale.
    CouldNotCheck,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub state: State,
    /// A stable code: `authentic`, `malformed`, `bad_signature`, `certificate_mismatch`,
    /// `unknown_authority`, `revocation_unavailable`, `untrusted_authority`.
    pub code: &'static str,
    pub message: String,
    /// The claims when the payload could be read (believe them only when authentic).
    pub claims: Option<Claims>,
    /// The authority certificate that signed, when known.
    pub authority: Option<CertSummary>,
    /// The validated path (authority first, trust anchor last), when authentic.
    pub chain: Vec<CertSummary>,
}

/// A payload read without any trust decision.
#[derive(Debug, Clone)]
pub struct Opened {
    pub claims: Claims,
    pub algorithm: CoseAlgorithm,
    /// `kid`: the first 8 bytes of the authority certificate's SHA-256.
    pub kid: Vec<u8>,
    /// `x5chain`, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    sign1: coset::CoseSign1,
}

fn sha256(b: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

impl Claims {
    /// The CBOR map (integer keys, `schemas/qr.md`).
    fn to_cbor(&self) -> Result<Vec<u8>, QrError> {
        let hexbytes = |h: &str| {
            hex::decode(h)
                .map(Value::Bytes)
                .map_err(|_| QrError::Claims(format!("{h:?} is not hex")))
        };
        let mut map = vec![
            (Value::from(1), Value::from(1)),
            (Value::from(2), text(&self.receipt_id)),
            (Value::from(3), text(&self.decision)),
            (Value::from(4), hexbytes(&self.document_sha256)?),
        ];
        if let Some(l) = &self.lrn {
            map.push((Value::from(5), text(l)));
        }
        map.push((Value::from(6), text(&self.origin)));
        map.push((Value::from(7), text(&self.destination)));
        map.push((Value::from(8), Value::from(self.issued_at)));
        map.push((
            Value::from(9),
            hexbytes(&self.authority_certificate_sha256)?,
        ));
        if let Some(r) = &self.reason {
            map.push((Value::from(10), text(r)));
        }
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out)
            .map_err(|e| QrError::Claims(e.to_string()))?;
        Ok(out)
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self, QrError> {
        let bad = |m: &str| QrError::Claims(m.to_owned());
        let value: Value = ciborium::from_reader(bytes).map_err(|e| bad(&e.to_string()))?;
        let Value::Map(map) = value else {
            return Err(bad("not a map"));
        };
        let get = |k: i64| {
            map.iter()
                .find(|(key, _)| key.as_integer().and_then(|i| i64::try_from(i).ok()) == Some(k))
                .map(|(_, v)| v)
        };
        let txt = |k: i64, name: &str| -> Result<Option<String>, QrError> {
            match get(k) {
                None => Ok(None),
                Some(Value::Text(t)) if t.len() <= MAX_TEXT && !t.chars().any(char::is_control) => {
                    Ok(Some(t.clone()))
                }
                Some(_) => Err(bad(&format!("{name} is not a short text"))),
            }
        };
        let need =
            |k: i64, name: &str| txt(k, name)?.ok_or_else(|| bad(&format!("{name} missing")));
        let digest = |k: i64, name: &str| match get(k) {
            Some(Value::Bytes(b)) if b.len() == 32 => Ok(hex::encode(b)),
            _ => Err(bad(&format!("{name} is not a SHA-256"))),
        };
        match get(1).and_then(Value::as_integer).map(i128::from) {
            Some(1) => {}
            _ => return Err(bad("unknown claims version")),
        }
        let decision = need(3, "decision")?;
        if decision != "accepted" && decision != "rejected" {
            return Err(bad("decision must be accepted or rejected"));
        }
        let issued_at = get(8)
            .and_then(Value::as_integer)
            .and_then(|i| i64::try_from(i).ok())
            .ok_or_else(|| bad("issued-at is not a time"))?;
        Ok(Self {
            receipt_id: need(2, "receipt id")?,
            decision,
            document_sha256: digest(4, "document SHA-256")?,
            lrn: txt(5, "LRN")?,
            origin: need(6, "origin")?,
            destination: need(7, "destination")?,
            issued_at,
            authority_certificate_sha256: digest(9, "authority certificate SHA-256")?,
            reason: txt(10, "reason")?,
        })
    }
}

/// Signs `claims` with the authority's key; `chain` is the authority's certificate first,
/// then its intermediates (DER). Returns the one-line `TMG1:` payload.
pub fn sign(claims: &Claims, signer: &dyn Signer, chain: &[Vec<u8>]) -> Result<String, QrError> {
    let leaf = chain
        .first()
        .ok_or_else(|| QrError::Sign("no authority certificate".into()))?;
    if hex::encode(sha256(leaf)) != claims.authority_certificate_sha256 {
        return Err(QrError::Sign(
            "the claims name another certificate than the signer's".into(),
        ));
    }
    let cose = cose::sign1(&claims.to_cbor()?, signer, chain)?;
    Ok(encode_envelope(&cose))
}

/// `TMG1:` + Base45(zlib(bytes)).
fn encode_envelope(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let compressed: Vec<u8> = z
        .write_all(bytes)
        .and_then(|()| z.finish())
        .unwrap_or_default();
    format!("{PREFIX}{}", base45::encode(&compressed))
}

/// Reads a payload: prefix, size limits, Base45, bounded inflate, COSE_Sign1, claims. No
/// signature or trust check.
pub fn open(payload: &str) -> Result<Opened, QrError> {
    let payload = payload.trim();
    let body = payload.strip_prefix(PREFIX).ok_or(QrError::WrongPrefix)?;
    if body.len() > MAX_PAYLOAD_CHARS {
        return Err(QrError::Oversize);
    }
    let compressed = base45::decode(body).map_err(QrError::Base45)?;
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(MAX_COSE_BYTES as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| QrError::Inflate(e.to_string()))?;
    if inflated.len() > MAX_COSE_BYTES {
        return Err(QrError::Oversize);
    }
    let (sign1, algorithm, kid, chain) = cose::parse(&inflated, MAX_CHAIN)?;
    let claims = Claims::from_cbor(sign1.payload.as_deref().unwrap_or_default())?;
    Ok(Opened {
        claims,
        algorithm,
        kid,
        chain,
        sign1,
    })
}

/// Checks a payload offline: the signature with the certificate it names (from its
/// `x5chain`, or by `kid` among `known_authorities`, e.g. a trust bundle's), that this is
/// the certificate the claims name, and the certificate's path to the destination
/// country's anchors in `trust` at `at_unix`.
pub fn verify(
    payload: &str,
    trust: &TrustList,
    known_authorities: &[Vec<u8>],
    at_unix: i64,
) -> Checked {
    let opened = match open(payload) {
        Ok(o) => o,
        Err(e) => return failed(State::NotAuthentic, "malformed", e.to_string(), None, None),
    };
    let claims = opened.claims.clone();
    let mut chain: Vec<Vec<u8>> = opened.chain.clone();
    if chain.is_empty() {
        if let Some(c) = known_authorities
            .iter()
            .find(|c| sha256(c).get(..8) == Some(opened.kid.as_slice()))
        {
            chain.push(c.clone());
        }
    }
    let Some(leaf) = chain.first().cloned() else {
        return failed(
            State::CouldNotCheck,
            "unknown_authority",
            "The authority that signed this QR is not in the trust list here.".into(),
            Some(claims),
            None,
        );
    };
    let summary = tamga_trust::summarize_certificate(&leaf).ok();
    if hex::encode(sha256(&leaf)) != claims.authority_certificate_sha256
        || sha256(&leaf).get(..8) != Some(opened.kid.as_slice())
    {
        return failed(
            State::NotAuthentic,
            "certificate_mismatch",
            "The QR is signed by another certificate than the one it names.".into(),
            Some(claims),
            summary,
        );
    }
    if let Err(e) = cose::check_signature(&opened.sign1, opened.algorithm, &leaf) {
        return failed(
            State::NotAuthentic,
            "bad_signature",
            format!("The QR's signature does not verify: {e}"),
            Some(claims),
            summary,
        );
    }
    let country: CountryCode = match claims.destination.to_ascii_uppercase().parse() {
        Ok(c) => c,
        Err(_) => {
            return failed(
                State::NotAuthentic,
                "malformed",
                "The destination is not a country code.".into(),
                Some(claims),
                summary,
            )
        }
    };
    let intermediates: Vec<&[u8]> = chain.iter().skip(1).map(Vec::as_slice).collect();
    let mut req = PathRequest::new(country, &leaf, u64::try_from(at_unix).unwrap_or(0));
    req.intermediates_der = &intermediates;
    req.revocation = RevocationMode::Require;
    match trust.validate_signer(&req) {
        Ok(v) => Checked {
            state: State::Authentic,
            code: "authentic",
            message: format!(
                "Signed by the {} customs authority ({}).",
                claims.destination, v.signer.subject
            ),
            claims: Some(claims),
            authority: Some(v.signer.clone()),
            chain: v.chain,
        },
        Err(e) => {
            let (state, code) = classify(&e);
            failed(
                state,
                code,
                format!("The authority's certificate is not accepted: {e}"),
                Some(claims),
                summary,
            )
        }
    }
}

/// A trust-path failure as one of the three states: an authority this list does not know,
/// or missing/stale revocation data, cannot be decided here (amber); a revoked, expired or
/// misused certificate is a definite no.
fn classify(e: &PathError) -> (State, &'static str) {
    match e {
        PathError::UnknownCountry(_) | PathError::NoChain => {
            (State::CouldNotCheck, "unknown_authority")
        }
        PathError::RevocationUnknown
        | PathError::RevocationUnavailable { .. }
        | PathError::CrlExpired { .. }
        | PathError::TrustListStale { .. }
        | PathError::TrustListInvalid { .. } => (State::CouldNotCheck, "revocation_unavailable"),
        _ => (State::NotAuthentic, "untrusted_authority"),
    }
}

fn failed(
    state: State,
    code: &'static str,
    message: String,
    claims: Option<Claims>,
    authority: Option<CertSummary>,
) -> Checked {
    Checked {
        state,
        code,
        message,
        claims,
        authority,
        chain: Vec::new(),
    }
}

/// The payload as an SVG QR code (error correction M, alphanumeric mode for Base45).
pub fn svg(payload: &str) -> Result<String, QrError> {
    let code = qrcode::QrCode::with_error_correction_level(payload.as_bytes(), qrcode::EcLevel::M)
        .map_err(|_| QrError::Oversize)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests;
