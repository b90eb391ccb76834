use aws_lc_rs::digest;
use serde::Serialize;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::error::PathError;

/// What a report shows about one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    /// Subject DN, attributes in certificate order (e.g. `C=KZ, O=..., CN=...`).
    pub subject: String,
    /// Issuer DN, same format as `subject`.
    pub issuer: String,
    /// Serial number as lower-case hex of its magnitude (no DER sign padding).
    pub serial: String,
    /// The subject's `C=` attribute, verbatim, if there is one.
    pub country: Option<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Lower-case hex SHA-256 of the certificate DER: the identifier operators compare.
    pub sha256: String,
}

/// Summarises a DER certificate without any trust decision, so a report can name
/// the signer even when its path fails.
pub fn summarize_certificate(der: &[u8]) -> Result<CertSummary, PathError> {
    let cert = parse_certificate(der)?;
    Ok(summary_of(&cert, der))
}

/// Parses a complete DER certificate; trailing bytes are refused because two
/// parsers (x509-parser here, webpki later) must see the same object.
pub(crate) fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, PathError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(PathError::MalformedCertificate(
            "trailing bytes after the certificate".into(),
        )),
        Err(e) => Err(PathError::MalformedCertificate(e.to_string())),
    }
}

pub(crate) fn summary_of(cert: &X509Certificate<'_>, der: &[u8]) -> CertSummary {
    let country = cert
        .subject()
        .iter_country()
        .next()
        .and_then(|attr| attr.as_str().ok())
        .map(str::to_owned);
    CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        serial: serial_hex(cert.raw_serial()),
        country,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha256: sha256_hex(der),
    }
}

/// Hex of an INTEGER's content octets with sign-padding zeros removed, so the same
/// number prints the same whether it came from a certificate or a CRL entry.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let first_significant = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    let magnitude = &raw[first_significant..];
    if magnitude.is_empty() {
        "00".to_owned()
    } else {
        hex::encode(magnitude)
    }
}

pub(crate) fn sha256_hex(der: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, der).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_hex_strips_sign_padding() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x01]), "01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[]), "00");
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bad in [&b""[..], b"\x30", b"\x30\x03\x02\x01\x01", b"not a cert"] {
            assert!(matches!(
                summarize_certificate(bad),
                Err(PathError::MalformedCertificate(_))
            ));
        }
    }
}
