//! Signature-value checks over aws-lc-rs.
//!
//! aws-lc-rs was chosen over ring for P-521 (which the customs profile must
//! accept) and RSA key generation (the demo PKI); both verify RSA-2048 in
//! ~15 µs, so crypto is not where the time goes.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey as X509PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::algorithms::{DigestAlgorithm, GostDialect, SignatureAlgorithm};
use crate::error::CryptoError;
use crate::model::KeyValue;

const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

/// An elliptic curve.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Curve {
    P256,
    P384,
    P521,
    Other(String),
}

impl Curve {
    fn from_oid(oid: &str) -> Self {
        match oid {
            OID_P256 => Curve::P256,
            OID_P384 => Curve::P384,
            OID_P521 => Curve::P521,
            other => Curve::Other(other.to_string()),
        }
    }

    pub fn bits(&self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
            Curve::Other(_) => 0,
        }
    }

    fn field_bytes(&self) -> usize {
        self.bits().div_ceil(8)
    }
}

/// A public key, from a certificate or a `KeyValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// PKCS#1 RSAPublicKey DER.
    Rsa {
        der: Vec<u8>,
        bits: usize,
    },
    /// Uncompressed point.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
    /// GOST R 34.10-2012/2015, validated (on the curve, of order q).
    Gost(tamga_gost::PublicKey),
    Unsupported(String),
}

impl PublicKey {
    /// The key in a DER X.509 certificate.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, CryptoError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| CryptoError::BadKey(format!("certificate does not parse: {e}")))?;
        Self::from_spki(cert.public_key())
    }

    /// The key in a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, CryptoError> {
        let (_, spki) = SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| CryptoError::BadKey(format!("SubjectPublicKeyInfo: {e}")))?;
        Self::from_spki(&spki)
    }

    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, CryptoError> {
        let oid = spki.algorithm.algorithm.to_id_string();
        if tamga_gost::der::is_gost_key_algorithm(&oid) {
            return match tamga_gost::der::public_key_from_spki(spki.raw) {
                Ok(k) => Ok(PublicKey::Gost(k)),
                Err(tamga_gost::GostError::UnsupportedKeyAlgorithm(_)) => {
                    Ok(PublicKey::Unsupported(format!("GOST key {oid} (legacy)")))
                }
                Err(e) => Err(CryptoError::BadKey(e.to_string())),
            };
        }
        let raw = spki.subject_public_key.data.to_vec();
        match spki.parsed() {
            Ok(X509PublicKey::RSA(rsa)) => Ok(PublicKey::Rsa {
                bits: rsa.key_size(),
                der: raw,
            }),
            Ok(X509PublicKey::EC(_)) => {
                let oid = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                Ok(PublicKey::Ec {
                    curve: Curve::from_oid(&oid),
                    point: raw,
                })
            }
            Ok(X509PublicKey::Unknown(_))
                if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" =>
            {
                Ok(PublicKey::Ed25519(raw))
            }
            Ok(X509PublicKey::DSA(_)) => Ok(PublicKey::Unsupported("DSA".into())),
            Ok(_) => Ok(PublicKey::Unsupported(
                spki.algorithm.algorithm.to_id_string(),
            )),
            Err(e) => Err(CryptoError::BadKey(format!("public key: {e}"))),
        }
    }

    /// The key in a `KeyValue` element.
    pub fn from_key_value(kv: &KeyValue) -> Result<Self, CryptoError> {
        match kv {
            KeyValue::Rsa { modulus, exponent } => {
                let m = strip_leading_zeros(modulus);
                let bits = if m.is_empty() {
                    0
                } else {
                    (m.len() - 1) * 8 + (8 - m[0].leading_zeros() as usize)
                };
                let der = der_sequence(&[der_integer(modulus), der_integer(exponent)]);
                Ok(PublicKey::Rsa { der, bits })
            }
            KeyValue::Ec { curve_oid, point } => Ok(PublicKey::Ec {
                curve: Curve::from_oid(curve_oid),
                point: point.clone(),
            }),
            KeyValue::Spki(der) => Self::from_spki_der(der),
            KeyValue::Other(name) => Ok(PublicKey::Unsupported(name.clone())),
        }
    }

    /// `RSA-2048`, `EC P-256`, `Ed25519`.
    pub fn describe(&self) -> String {
        match self {
            PublicKey::Rsa { bits, .. } => format!("RSA-{bits}"),
            PublicKey::Ec { curve, .. } => match curve {
                Curve::Other(oid) => format!("EC {oid}"),
                c => format!("EC P-{}", c.bits()),
            },
            PublicKey::Ed25519(_) => "Ed25519".into(),
            PublicKey::Gost(k) => {
                format!("GOST R 34.10-2012 {} ({})", k.bits(), k.param_set().name())
            }
            PublicKey::Unsupported(s) => s.clone(),
        }
    }

    /// Key strength in bits (modulus size, curve size).
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa { bits, .. } => *bits,
            PublicKey::Ec { curve, .. } => curve.bits(),
            PublicKey::Ed25519(_) => 256,
            PublicKey::Gost(k) => k.bits(),
            PublicKey::Unsupported(_) => 0,
        }
    }
}

/// Checks `signature` over `message` with `key` under `algorithm`.
pub fn verify_signature(
    algorithm: &SignatureAlgorithm,
    key: &PublicKey,
    message: &[u8],
    signature_value: &[u8],
) -> Result<(), CryptoError> {
    use DigestAlgorithm as D;
    let mismatch = || CryptoError::KeyMismatch {
        key: key.describe(),
        algorithm: algorithm.name(),
    };
    let unsupported = || CryptoError::UnsupportedAlgorithm(algorithm.name());
    match (algorithm, key) {
        (SignatureAlgorithm::RsaPkcs1(d), PublicKey::Rsa { der, bits }) => {
            let legacy = *bits < 2048;
            let alg: &'static dyn VerificationAlgorithm = match (d, legacy) {
                (D::Sha1, true) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                (D::Sha1, false) => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                (D::Sha256, true) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                (D::Sha256, false) => &signature::RSA_PKCS1_2048_8192_SHA256,
                (D::Sha384, false) => &signature::RSA_PKCS1_2048_8192_SHA384,
                (D::Sha512, true) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                (D::Sha512, false) => &signature::RSA_PKCS1_2048_8192_SHA512,
                _ => return Err(unsupported()),
            };
            check(alg, der, message, signature_value)
        }
        (SignatureAlgorithm::RsaPss(d), PublicKey::Rsa { der, .. }) => {
            let alg: &'static dyn VerificationAlgorithm = match d {
                D::Sha256 => &signature::RSA_PSS_2048_8192_SHA256,
                D::Sha384 => &signature::RSA_PSS_2048_8192_SHA384,
                D::Sha512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(unsupported()),
            };
            check(alg, der, message, signature_value)
        }
        (SignatureAlgorithm::Ecdsa(d), PublicKey::Ec { curve, point }) => {
            let alg: &'static dyn VerificationAlgorithm = match (curve, d) {
                (Curve::P256, D::Sha1) => &signature::ECDSA_P256_SHA1_ASN1,
                (Curve::P256, D::Sha256) => &signature::ECDSA_P256_SHA256_ASN1,
                (Curve::P256, D::Sha384) => &signature::ECDSA_P256_SHA384_ASN1,
                (Curve::P256, D::Sha512) => &signature::ECDSA_P256_SHA512_ASN1,
                (Curve::P384, D::Sha256) => &signature::ECDSA_P384_SHA256_ASN1,
                (Curve::P384, D::Sha384) => &signature::ECDSA_P384_SHA384_ASN1,
                (Curve::P384, D::Sha512) => &signature::ECDSA_P384_SHA512_ASN1,
                (Curve::P521, D::Sha1) => &signature::ECDSA_P521_SHA1_ASN1,
                (Curve::P521, D::Sha256) => &signature::ECDSA_P521_SHA256_ASN1,
                (Curve::P521, D::Sha384) => &signature::ECDSA_P521_SHA384_ASN1,
                (Curve::P521, D::Sha512) => &signature::ECDSA_P521_SHA512_ASN1,
                _ => return Err(unsupported()),
            };
            // XML-DSig carries r || s, each the field size; anything else is
            // malformed rather than "a signature that did not verify".
            let n = curve.field_bytes();
            if signature_value.len() != 2 * n {
                return Err(CryptoError::BadSignature);
            }
            let (r, s) = signature_value.split_at(n);
            let der = der_sequence(&[der_integer(r), der_integer(s)]);
            check(alg, point, message, &der)
        }
        (SignatureAlgorithm::Ed25519, PublicKey::Ed25519(k)) => {
            check(&signature::ED25519, k, message, signature_value)
        }
        (SignatureAlgorithm::Gost { bits, dialect }, PublicKey::Gost(k)) => {
            if usize::from(*bits) != k.bits() {
                return Err(mismatch());
            }
            verify_gost(*dialect, k, message, signature_value)
        }
        (SignatureAlgorithm::Hmac(_), _) => Err(CryptoError::NoKey),
        (
            SignatureAlgorithm::DsaSha1
            | SignatureAlgorithm::Gost34310
            | SignatureAlgorithm::Unknown(_),
            _,
        ) => Err(unsupported()),
        (_, PublicKey::Unsupported(k)) => {
            Err(CryptoError::BadKey(format!("{k} keys are not supported")))
        }
        _ => Err(mismatch()),
    }
}

/// A GOST signature value in the dialect's byte order; a value of the
/// wrong length or with r, s out of range is malformed, which is reported
/// like any signature that does not verify.
fn verify_gost(
    dialect: GostDialect,
    key: &tamga_gost::PublicKey,
    message: &[u8],
    signature_value: &[u8],
) -> Result<(), CryptoError> {
    let set = key.param_set();
    let signature = match dialect {
        GostDialect::Kazakh => tamga_gost::Signature::from_kz_xml(signature_value, set),
        GostDialect::CryptoPro => tamga_gost::Signature::from_cryptopro_xml(signature_value, set),
    }
    .map_err(|_| CryptoError::BadSignature)?;
    tamga_gost::verify_message(key, message, &signature).map_err(|_| CryptoError::BadSignature)
}

/// Checks an HMAC signature value with a shared secret (only ever used by the
/// generic profile's conformance runs: the customs profile refuses HMAC).
pub fn verify_hmac(
    digest: &DigestAlgorithm,
    key: &[u8],
    output_bits: Option<u32>,
    message: &[u8],
    signature_value: &[u8],
) -> Result<(), CryptoError> {
    use aws_lc_rs::{constant_time, hmac};
    let alg = match digest {
        DigestAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        DigestAlgorithm::Sha256 => hmac::HMAC_SHA256,
        DigestAlgorithm::Sha384 => hmac::HMAC_SHA384,
        DigestAlgorithm::Sha512 => hmac::HMAC_SHA512,
        other => {
            return Err(CryptoError::UnsupportedAlgorithm(format!(
                "hmac-{}",
                other.name()
            )))
        }
    };
    let tag = hmac::sign(&hmac::Key::new(alg, key), message);
    let full_bits = tag.as_ref().len() * 8;
    let bits = output_bits.map_or(full_bits, |b| b as usize);
    // CVE-2009-0217: truncation below half the output (and below 80 bits)
    // makes forgery practical.
    if bits > full_bits || bits < 80 || bits < full_bits / 2 || !bits.is_multiple_of(8) {
        return Err(CryptoError::HmacTooShort {
            bits: u32::try_from(bits).unwrap_or(u32::MAX),
        });
    }
    let expected = &tag.as_ref()[..bits / 8];
    if signature_value.len() == expected.len()
        && constant_time::verify_slices_are_equal(expected, signature_value).is_ok()
    {
        Ok(())
    } else {
        Err(CryptoError::BadSignature)
    }
}

fn check(
    alg: &'static dyn VerificationAlgorithm,
    key: &[u8],
    message: &[u8],
    signature_value: &[u8],
) -> Result<(), CryptoError> {
    UnparsedPublicKey::new(alg, key)
        .verify(message, signature_value)
        .map_err(|_| CryptoError::BadSignature)
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A DER INTEGER from an unsigned big-endian magnitude.
pub(crate) fn der_integer(magnitude: &[u8]) -> Vec<u8> {
    let m = strip_leading_zeros(magnitude);
    let mut body = Vec::with_capacity(m.len() + 1);
    if m.is_empty() || m[0] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(m);
    let mut out = vec![0x02];
    der_len(body.len(), &mut out);
    out.extend_from_slice(&body);
    out
}

pub(crate) fn der_sequence(items: &[Vec<u8>]) -> Vec<u8> {
    let len = items.iter().map(Vec::len).sum();
    let mut out = vec![0x30];
    der_len(len, &mut out);
    for i in items {
        out.extend_from_slice(i);
    }
    out
}

/// Converts a DER ECDSA signature (SEQUENCE of two INTEGERs) to XML-DSig's
/// fixed-width r || s.
pub(crate) fn ecdsa_der_to_raw(der: &[u8], field_bytes: usize) -> Option<Vec<u8>> {
    fn read_len(b: &[u8]) -> Option<(usize, &[u8])> {
        let (&first, rest) = b.split_first()?;
        if first < 0x80 {
            return Some((first as usize, rest));
        }
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        Some((len, &rest[n..]))
    }
    fn read_int(b: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&tag, rest) = b.split_first()?;
        if tag != 0x02 {
            return None;
        }
        let (len, rest) = read_len(rest)?;
        if rest.len() < len {
            return None;
        }
        Some((strip_leading_zeros(&rest[..len]), &rest[len..]))
    }
    let (&tag, rest) = der.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (len, body) = read_len(rest)?;
    if body.len() != len {
        return None;
    }
    let (r, rest) = read_int(body)?;
    let (s, _) = read_int(rest)?;
    if r.len() > field_bytes || s.len() > field_bytes {
        return None;
    }
    let mut out = vec![0u8; 2 * field_bytes];
    out[field_bytes - r.len()..field_bytes].copy_from_slice(r);
    out[2 * field_bytes - s.len()..].copy_from_slice(s);
    Some(out)
}

pub(crate) fn curve_field_bytes(curve: &Curve) -> usize {
    curve.field_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integer_pads_high_bit() {
        assert_eq!(der_integer(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(&[0x00, 0x01]), vec![0x02, 0x01, 0x01]);
        assert_eq!(der_integer(&[]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn ecdsa_raw_der_round_trip() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80;
        raw[31] = 1;
        raw[63] = 7;
        let der = der_sequence(&[der_integer(&raw[..32]), der_integer(&raw[32..])]);
        assert_eq!(ecdsa_der_to_raw(&der, 32).unwrap(), raw);
    }

    #[test]
    fn hmac_truncation_below_80_bits_is_refused() {
        let err = verify_hmac(&DigestAlgorithm::Sha1, b"secret", Some(40), b"m", &[0; 5]);
        assert_eq!(err, Err(CryptoError::HmacTooShort { bits: 40 }));
    }
}
