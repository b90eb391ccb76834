//! OCSP (RFC 6960): responses are inputs, verdicts are values.
//!
//! Nothing here touches the network. The edge (the pipeline's fetcher,
//! `tamga verify --ocsp fetch`) builds a request with [`build_request`],
//! posts it to a URL from [`ocsp_urls`], and hands the bytes it got back to
//! path validation (or to [`verify_response`] directly).
//!
//! A response is accepted for a certificate when:
//!
//! * it is `successful` and of type `id-pkix-ocsp-basic`;
//! * one of its `SingleResponse`s names the certificate: serial number, and
//!   the issuer's name and key hashes under SHA-1 or SHA-256 (other hash
//!   algorithms are not matched);
//! * it is signed by the issuer itself, or by a responder certificate the
//!   issuer signed that carries `id-kp-OCSPSigning` and is valid at the
//!   validation time (a delegated responder); the signature algorithm is one
//!   path validation accepts (no SHA-1). The responder certificate's own
//!   revocation status is not checked (RFC 6960 §4.2.2.2.1 lets the CA say
//!   so with id-pkix-ocsp-nocheck; most do);
//! * `thisUpdate` is not later than the validation time plus
//!   [`CLOCK_SKEW_SECONDS`], and the validation time is not after
//!   `nextUpdate`; a response without `nextUpdate` is fresh for
//!   [`MAX_AGE_WITHOUT_NEXT_UPDATE`] after its `thisUpdate`;
//! * when the caller sent a nonce, the response carries the same one.
//!
//! Like a CRL entry, a `revoked` status counts whatever its revocation time.

use std::time::Duration;

use der::asn1::{GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::Serialize;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspRequest, OcspResponse, OcspResponseStatus, Request,
    ResponderId, TbsRequest, Version,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use crate::summary::{parse_certificate, serial_hex, sha256_hex};
use crate::validate::accepted_algorithms;

/// How far a response's thisUpdate may lie after the validation time: the
/// validation time is taken before the response is fetched.
pub const CLOCK_SKEW_SECONDS: u64 = 300;

/// How long a response without nextUpdate counts as fresh after thisUpdate.
pub const MAX_AGE_WITHOUT_NEXT_UPDATE: u64 = 24 * 3600;

/// Responses larger than this are refused before parsing.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9), DER content octets for webpki.
const OCSP_SIGNING_DER: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];

/// Why an OCSP response cannot be used for a certificate.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Not a DER OCSPResponse / BasicOCSPResponse, or too large.
    #[error("malformed OCSP response: {0}")]
    Malformed(String),
    /// The responder answered with an error status (tryLater, unauthorized, …).
    #[error("the OCSP responder answered {0}")]
    NotSuccessful(String),
    /// No SingleResponse names this certificate.
    #[error("the OCSP response says nothing about certificate {serial_hex}")]
    NoMatchingResponse {
        /// The certificate asked about.
        serial_hex: String,
    },
    /// Neither the issuer nor a responder it authorised signed the response.
    #[error("the OCSP response is not signed by an authorised responder: {0}")]
    Unauthorised(String),
    /// The signature does not verify, or uses an algorithm that is not accepted.
    #[error("the OCSP response signature is invalid: {0}")]
    BadSignature(String),
    /// The validation time is after nextUpdate (or past the maximum age).
    #[error("the OCSP response is out of date (fresh until {})", rfc3339(*fresh_until_unix))]
    Stale {
        /// nextUpdate, or thisUpdate + [`MAX_AGE_WITHOUT_NEXT_UPDATE`].
        fresh_until_unix: u64,
    },
    /// thisUpdate lies after the validation time.
    #[error("the OCSP response is not yet valid (thisUpdate {})", rfc3339(*this_update_unix))]
    NotYetValid {
        /// thisUpdate.
        this_update_unix: u64,
    },
    /// The request carried a nonce and the response a different one, or none.
    #[error("the OCSP response does not carry the request's nonce")]
    NonceMismatch,
    /// The certificate or its issuer cannot be read.
    #[error("cannot identify the certificate for OCSP: {0}")]
    Certificate(String),
}

/// The status a response gives.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OcspStatus {
    /// Not revoked.
    Good,
    /// Revoked (at `revocation_time_unix`).
    Revoked {
        /// The revocationTime the responder gives.
        revocation_time_unix: u64,
    },
    /// The responder does not know the certificate.
    Unknown,
}

impl OcspStatus {
    /// `good`, `revoked` or `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OcspStatus::Good => "good",
            OcspStatus::Revoked { .. } => "revoked",
            OcspStatus::Unknown => "unknown",
        }
    }
}

/// A verified OCSP answer about one certificate: what a report cites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OcspEvidence {
    /// The certificate's serial, lower-case hex.
    pub certificate_serial: String,
    /// The status given.
    pub status: OcspStatus,
    /// The responder certificate's subject DN (the issuer's when it signs itself).
    pub responder: String,
    /// True when a delegated responder (not the issuer) signed.
    pub delegated: bool,
    /// producedAt, Unix seconds.
    pub produced_at: u64,
    /// thisUpdate, Unix seconds.
    pub this_update: u64,
    /// nextUpdate, Unix seconds, if given.
    pub next_update: Option<u64>,
    /// Lower-case hex SHA-256 of the response DER.
    pub sha256: String,
}

impl OcspEvidence {
    /// Until when the response may be reused (cache lifetime).
    pub fn fresh_until(&self) -> u64 {
        self.next_update
            .unwrap_or(self.this_update.saturating_add(MAX_AGE_WITHOUT_NEXT_UPDATE))
    }
}

/// One question: is `response_der` a usable answer about `cert_der`?
#[derive(Clone, Copy, Debug)]
pub struct OcspCheck<'a> {
    /// The OCSPResponse, DER.
    pub response_der: &'a [u8],
    /// The certificate asked about, DER.
    pub cert_der: &'a [u8],
    /// Its issuer's certificate, DER.
    pub issuer_der: &'a [u8],
    /// Validation time, Unix seconds.
    pub at_unix: u64,
    /// The nonce the request carried, if any.
    pub expected_nonce: Option<&'a [u8]>,
}

/// Parses an OCSPResponse down to its BasicOCSPResponse (the fuzzed surface).
pub fn parse_response(der: &[u8]) -> Result<BasicOcspResponse, OcspError> {
    if der.len() > MAX_RESPONSE_BYTES {
        return Err(OcspError::Malformed(format!(
            "{} bytes (limit {MAX_RESPONSE_BYTES})",
            der.len()
        )));
    }
    let resp = OcspResponse::from_der(der).map_err(|e| OcspError::Malformed(e.to_string()))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::NotSuccessful(
            format!("{:?}", resp.response_status).to_lowercase(),
        ));
    }
    let bytes = resp
        .response_bytes
        .ok_or_else(|| OcspError::Malformed("successful response without responseBytes".into()))?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return Err(OcspError::Malformed(format!(
            "response type {} is not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    BasicOcspResponse::from_der(bytes.response.as_bytes())
        .map_err(|e| OcspError::Malformed(format!("BasicOCSPResponse: {e}")))
}

/// Verifies one response for one certificate at the validation time.
pub fn verify_response(check: &OcspCheck<'_>) -> Result<OcspEvidence, OcspError> {
    let basic = parse_response(check.response_der)?;
    let cert = parse_certificate(check.cert_der)
        .map_err(|e| OcspError::Certificate(format!("certificate: {e}")))?;
    let issuer = parse_certificate(check.issuer_der)
        .map_err(|e| OcspError::Certificate(format!("issuer: {e}")))?;
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(OcspError::Certificate(
            "the issuer certificate's subject is not the certificate's issuer".into(),
        ));
    }

    let tbs = &basic.tbs_response_data;
    let single = tbs
        .responses
        .iter()
        .find(|s| cert_id_matches(&s.cert_id, &cert, &issuer))
        .ok_or_else(|| OcspError::NoMatchingResponse {
            serial_hex: serial_hex(cert.raw_serial()),
        })?;

    // Who signed: the issuer, or a responder certificate in the response.
    let (responder_der, delegated) = find_responder(&basic, &issuer, check.issuer_der)?;
    let tbs_der = tbs
        .to_der()
        .map_err(|e| OcspError::Malformed(format!("ResponseData: {e}")))?;
    verify_signature(&basic, &responder_der, &tbs_der)?;
    if delegated {
        authorise_delegate(&responder_der, check.issuer_der, check.at_unix)?;
    }
    let responder = parse_certificate(&responder_der)
        .map(|c| c.subject().to_string())
        .unwrap_or_default();

    if let Some(nonce) = check.expected_nonce {
        if response_nonce(&basic).as_deref() != Some(nonce) {
            return Err(OcspError::NonceMismatch);
        }
    }

    let this_update = unix(&single.this_update.0);
    let next_update = single.next_update.map(|t| unix(&t.0));
    if this_update > check.at_unix.saturating_add(CLOCK_SKEW_SECONDS) {
        return Err(OcspError::NotYetValid {
            this_update_unix: this_update,
        });
    }
    let fresh_until =
        next_update.unwrap_or(this_update.saturating_add(MAX_AGE_WITHOUT_NEXT_UPDATE));
    if check.at_unix > fresh_until {
        return Err(OcspError::Stale {
            fresh_until_unix: fresh_until,
        });
    }

    let status = match &single.cert_status {
        CertStatus::Good(_) => OcspStatus::Good,
        CertStatus::Revoked(info) => OcspStatus::Revoked {
            revocation_time_unix: unix(&info.revocation_time.0),
        },
        CertStatus::Unknown(_) => OcspStatus::Unknown,
    };
    Ok(OcspEvidence {
        certificate_serial: serial_hex(cert.raw_serial()),
        status,
        responder,
        delegated,
        produced_at: unix(&tbs.produced_at.0),
        this_update,
        next_update,
        sha256: sha256_hex(check.response_der),
    })
}

/// The nonce extension of a response, if any.
pub fn response_nonce(basic: &BasicOcspResponse) -> Option<Vec<u8>> {
    let ext = basic
        .tbs_response_data
        .response_extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)?;
    // RFC 8954: the value is an OCTET STRING; some responders put the raw
    // bytes, so take the inner octets when they parse and the raw ones if not.
    let raw = ext.extn_value.as_bytes();
    Some(match OctetString::from_der(raw) {
        Ok(inner) => inner.as_bytes().to_vec(),
        Err(_) => raw.to_vec(),
    })
}

/// The OCSP responder URLs of a certificate's Authority Information Access.
pub fn ocsp_urls(cert_der: &[u8]) -> Vec<String> {
    let Ok(cert) = parse_certificate(cert_der) else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for ad in &aia.accessdescs {
                if ad.access_method.to_id_string() == "1.3.6.1.5.5.7.48.1" {
                    if let GeneralName::URI(uri) = &ad.access_location {
                        urls.push((*uri).to_owned());
                    }
                }
            }
        }
    }
    urls
}

/// A DER OCSPRequest for one certificate (SHA-1 CertID, which every
/// responder answers; RFC 6960 §4.3), with the nonce when given.
pub fn build_request(
    cert_der: &[u8],
    issuer_der: &[u8],
    nonce: Option<&[u8]>,
) -> Result<Vec<u8>, OcspError> {
    let cert = parse_certificate(cert_der)
        .map_err(|e| OcspError::Certificate(format!("certificate: {e}")))?;
    let issuer = parse_certificate(issuer_der)
        .map_err(|e| OcspError::Certificate(format!("issuer: {e}")))?;
    let cert_id = make_cert_id(&cert, &issuer, ID_SHA1)?;
    let request_extensions = match nonce {
        Some(n) => {
            let value = OctetString::new(n)
                .and_then(|o| o.to_der())
                .and_then(OctetString::new)
                .map_err(|e| OcspError::Malformed(e.to_string()))?;
            Some(vec![x509_cert::ext::Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: value,
            }])
        }
        None => None,
    };
    let request = OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    };
    request
        .to_der()
        .map_err(|e| OcspError::Malformed(e.to_string()))
}

/// A stable key for caching answers about one certificate: SHA-256 of the
/// issuer's name and key and the serial (the CertID's content).
pub fn cache_key(cert_der: &[u8], issuer_der: &[u8]) -> Result<String, OcspError> {
    let cert = parse_certificate(cert_der)
        .map_err(|e| OcspError::Certificate(format!("certificate: {e}")))?;
    let issuer = parse_certificate(issuer_der)
        .map_err(|e| OcspError::Certificate(format!("issuer: {e}")))?;
    let id = make_cert_id(&cert, &issuer, ID_SHA256)?;
    Ok(format!(
        "{}:{}:{}",
        hex::encode(id.issuer_name_hash.as_bytes()),
        hex::encode(id.issuer_key_hash.as_bytes()),
        serial_hex(cert.raw_serial())
    ))
}

fn hash(alg: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest;
    let algorithm = if alg == ID_SHA1 {
        // CertID hashing only (RFC 6960 §4.3 makes SHA-1 the default); no
        // signature made with SHA-1 is accepted.
        &digest::SHA1_FOR_LEGACY_USE_ONLY
    } else if alg == ID_SHA256 {
        &digest::SHA256
    } else {
        return None;
    };
    Some(digest::digest(algorithm, data).as_ref().to_vec())
}

fn make_cert_id(
    cert: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    alg: ObjectIdentifier,
) -> Result<CertId, OcspError> {
    let name_hash = hash(alg, issuer.subject().as_raw()).unwrap_or_default();
    let key_hash = hash(alg, &issuer.public_key().subject_public_key.data).unwrap_or_default();
    let bad = |e: der::Error| OcspError::Certificate(e.to_string());
    Ok(CertId {
        hash_algorithm: spki::AlgorithmIdentifierOwned {
            oid: alg,
            parameters: Some(der::Any::null()),
        },
        issuer_name_hash: OctetString::new(name_hash).map_err(bad)?,
        issuer_key_hash: OctetString::new(key_hash).map_err(bad)?,
        serial_number: x509_cert::serial_number::SerialNumber::new(cert.raw_serial())
            .map_err(bad)?,
    })
}

fn cert_id_matches(id: &CertId, cert: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    let alg = id.hash_algorithm.oid;
    let (Some(name_hash), Some(key_hash)) = (
        hash(alg, issuer.subject().as_raw()),
        hash(alg, &issuer.public_key().subject_public_key.data),
    ) else {
        return false;
    };
    // Serials compare as numbers: strip DER sign padding on both sides.
    serial_hex(id.serial_number.as_bytes()) == serial_hex(cert.raw_serial())
        && id.issuer_name_hash.as_bytes() == name_hash.as_slice()
        && id.issuer_key_hash.as_bytes() == key_hash.as_slice()
}

/// The certificate whose key signed the response, and whether it is a
/// delegate (not the issuer itself).
fn find_responder(
    basic: &BasicOcspResponse,
    issuer: &X509Certificate<'_>,
    issuer_der: &[u8],
) -> Result<(Vec<u8>, bool), OcspError> {
    let names = |c: &X509Certificate<'_>| match &basic.tbs_response_data.responder_id {
        ResponderId::ByName(name) => name.to_der().is_ok_and(|n| n == c.subject().as_raw()),
        ResponderId::ByKey(key_hash) => hash(ID_SHA1, &c.public_key().subject_public_key.data)
            .is_some_and(|h| h == key_hash.as_bytes()),
    };
    if names(issuer) {
        return Ok((issuer_der.to_vec(), false));
    }
    for cert in basic.certs.iter().flatten() {
        let der = cert
            .to_der()
            .map_err(|e| OcspError::Malformed(format!("responder certificate: {e}")))?;
        let Ok(parsed) = parse_certificate(&der) else {
            continue;
        };
        if names(&parsed) {
            return Ok((der, true));
        }
    }
    Err(OcspError::Unauthorised(
        "the responder named in the response is neither the issuer nor a certificate the response carries".into(),
    ))
}

fn verify_signature(
    basic: &BasicOcspResponse,
    signer_der: &[u8],
    tbs_der: &[u8],
) -> Result<(), OcspError> {
    let signer = parse_certificate(signer_der)
        .map_err(|e| OcspError::Unauthorised(format!("responder certificate: {e}")))?;
    // webpki's algorithms compare AlgorithmIdentifier contents (no SEQUENCE header).
    let sig_alg = basic
        .signature_algorithm
        .to_der()
        .map_err(|e| OcspError::Malformed(e.to_string()))?;
    let sig_alg_content = strip_sequence(&sig_alg).unwrap_or_default();
    let spki = signer.public_key();
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| OcspError::BadSignature("signature has unused bits".into()))?;
    let key = spki.subject_public_key.data.as_ref();
    let mut known = false;
    for alg in accepted_algorithms() {
        if alg.signature_alg_id().as_ref() != sig_alg_content {
            continue;
        }
        // The key's AlgorithmIdentifier (OID and parameters) must match
        // too, so an EC curve or an RSA key type is never mistaken.
        if alg.public_key_alg_id().as_ref() != spki_alg_content(spki.raw).unwrap_or_default() {
            continue;
        }
        known = true;
        if alg.verify_signature(key, tbs_der, signature).is_ok() {
            return Ok(());
        }
    }
    Err(OcspError::BadSignature(if known {
        "does not verify with the responder's key".into()
    } else {
        format!(
            "signature algorithm {} is not accepted for the responder's key",
            basic.signature_algorithm.oid
        )
    }))
}

/// A delegated responder: issued (signed) by the certificate's issuer,
/// extendedKeyUsage id-kp-OCSPSigning, valid at the validation time.
fn authorise_delegate(
    responder_der: &[u8],
    issuer_der: &[u8],
    at_unix: u64,
) -> Result<(), OcspError> {
    let issuer = CertificateDer::from(issuer_der);
    let anchor = webpki::anchor_from_trusted_cert(&issuer)
        .map_err(|e| OcspError::Unauthorised(format!("issuer certificate: {e:?}")))?;
    let responder = CertificateDer::from(responder_der);
    let ee = webpki::EndEntityCert::try_from(&responder)
        .map_err(|e| OcspError::Unauthorised(format!("responder certificate: {e:?}")))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at_unix));
    ee.verify_for_usage(
        accepted_algorithms(),
        &[anchor],
        &[],
        time,
        webpki::KeyUsage::required(OCSP_SIGNING_DER),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| {
        OcspError::Unauthorised(match e {
            webpki::Error::RequiredEkuNotFoundContext(_) => {
                "the responder certificate lacks id-kp-OCSPSigning".into()
            }
            webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey => {
                "the responder certificate was not issued by the certificate's issuer".into()
            }
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                "the responder certificate is not valid at the validation time".into()
            }
            other => format!("the responder certificate is not acceptable ({other:?})"),
        })
    })
}

/// The content octets of a DER SEQUENCE (definite length).
pub(crate) fn strip_sequence(der: &[u8]) -> Option<&[u8]> {
    let (tag, rest) = der.split_first()?;
    if *tag != 0x30 {
        return None;
    }
    let (len, rest) = der_length(rest)?;
    rest.get(..len).filter(|c| c.len() == rest.len())
}

/// The AlgorithmIdentifier content of a SubjectPublicKeyInfo.
fn spki_alg_content(spki_der: &[u8]) -> Option<&[u8]> {
    let outer = strip_sequence(spki_der)?;
    let (tag, rest) = outer.split_first()?;
    if *tag != 0x30 {
        return None;
    }
    let (len, rest) = der_length(rest)?;
    rest.get(..len)
}

fn der_length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (first, rest) = bytes.split_first()?;
    if *first < 0x80 {
        return Some((usize::from(*first), rest));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 || rest.len() < n {
        return None;
    }
    let mut len = 0usize;
    for b in &rest[..n] {
        len = len.checked_mul(256)?.checked_add(usize::from(*b))?;
    }
    Some((len, &rest[n..]))
}

fn unix(t: &GeneralizedTime) -> u64 {
    t.to_unix_duration().as_secs()
}

fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "an unrepresentable time".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\x30", b"\x30\x03\x0a\x01\x00", &[0u8; 100][..]] {
            assert!(parse_response(bytes).is_err());
        }
    }

    #[test]
    fn error_statuses_are_named() {
        // OCSPResponse { responseStatus tryLater(3) }
        let e = parse_response(&[0x30, 0x03, 0x0a, 0x01, 0x03]).unwrap_err();
        assert_eq!(e, OcspError::NotSuccessful("trylater".into()));
    }

    #[test]
    fn der_helpers_refuse_truncation() {
        assert_eq!(
            strip_sequence(&[0x30, 0x02, 0x05, 0x00]),
            Some(&[5u8, 0][..])
        );
        assert_eq!(strip_sequence(&[0x30, 0x03, 0x05, 0x00]), None);
        assert_eq!(der_length(&[0x85, 1, 2, 3, 4, 5]), None);
    }
}
