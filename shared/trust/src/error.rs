use std::path::PathBuf;

use crate::country::CountryCode;
use crate::eku::oid_to_dotted;

/// Why a signer certificate is not accepted. Each variant is a distinct,
/// reportable reason; nothing here means "maybe".
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The trust list has no folder for the declared country.
    #[error("country {0} is not in the mutual-recognition trust list")]
    UnknownCountry(CountryCode),
    /// No path from the signer to any of the country's trust anchors.
    #[error("the signer certificate does not chain to a trusted CA of the declared country")]
    NoChain,
    /// A certificate in the path (the signer is checked first) was expired at the validation time.
    #[error("a certificate in the path expired at {}", rfc3339(*not_after_unix))]
    Expired {
        /// The offending certificate's notAfter.
        not_after_unix: u64,
    },
    /// A certificate in the path was not yet valid at the validation time.
    #[error("a certificate in the path is not valid before {}", rfc3339(*not_before_unix))]
    NotYetValid {
        /// The offending certificate's notBefore.
        not_before_unix: u64,
    },
    /// A certificate in the path is listed on its issuer's CRL.
    #[error("certificate with serial {serial_hex} is revoked")]
    Revoked {
        /// Serial of the revoked certificate, lower-case hex magnitude.
        serial_hex: String,
    },
    /// Revocation checking was required but no CRL from the issuer covers a certificate in the path.
    #[error("revocation status is unknown: no CRL from the issuing CA is in the trust list")]
    RevocationUnknown,
    /// The issuer's CRL is past its nextUpdate at the validation time.
    #[error("the issuing CA's CRL is out of date (nextUpdate {})", rfc3339(*next_update_unix))]
    CrlExpired {
        /// The CRL's nextUpdate.
        next_update_unix: u64,
    },
    /// A CRL in the trust list cannot be used (bad signature, issuer lacks cRLSign, unsupported form).
    #[error("a CRL needed for this path is unusable: {0}")]
    CrlInvalid(String),
    /// The signer's keyUsage is missing or allows neither digitalSignature nor nonRepudiation.
    #[error("the signer certificate's key usage does not allow digital signatures")]
    KeyUsageNotAllowed,
    /// A certificate in the path has an extended key usage outside the accepted set.
    #[error("a certificate's extended key usage ({}) is not accepted for document signing", present.join(", "))]
    EkuNotAllowed {
        /// Dotted OIDs found in the offending certificate's EKU extension.
        present: Vec<String>,
    },
    /// The signer certificate is a CA certificate (basicConstraints cA=true).
    #[error("the signer certificate is a CA certificate, not an end-entity certificate")]
    SignerIsCa,
    /// A signature in the path uses an algorithm the policy rejects (SHA-1, MD5, DSA, GOST, RSA < 2048 bits, ...).
    #[error(
        "a certificate in the path uses a signature algorithm that is not accepted ({algorithm})"
    )]
    UnsupportedSignatureAlgorithm {
        /// Dotted OID of the signature algorithm, or a description when unknown.
        algorithm: String,
    },
    /// A certificate names a trusted CA as issuer but its signature does not verify
    /// with that CA's key: forged, corrupted, or issued by a same-named impostor.
    #[error("a certificate's signature does not verify with the key of the CA it names as issuer")]
    BadSignature,
    /// Path length or name constraints of a CA in the path are violated.
    #[error("the path violates a CA constraint: {0}")]
    ConstraintViolation(String),
    /// A certificate cannot be parsed.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// A well-formed certificate uses a feature the verifier refuses (v1/v2 outside the
    /// anchors, an unknown critical extension).
    #[error("unsupported certificate: {0}")]
    UnsupportedCertificate(String),
    /// Too many intermediates were supplied, or path search exceeded its work limit.
    #[error("path building budget exceeded")]
    BudgetExceeded,
    /// Anything webpki reports that has no more specific variant.
    #[error("certificate path validation failed: {0}")]
    Other(String),
    /// A CRL published for a CA in the path could not be loaded (malformed,
    /// unsupported form, no CRL number): the status of certificates that CA
    /// issued cannot be established. Other CAs and countries are unaffected.
    #[error("revocation status cannot be established: the CRL {crl} is unusable ({detail})")]
    RevocationUnavailable {
        /// Where the unusable CRL came from (`CC/filename`, or a trusted-list entry).
        crl: String,
        /// Why it is unusable.
        detail: String,
    },
    /// The country's trust material (its folder or its signed trusted list)
    /// could not be used, so none of its anchors are; other countries are unaffected.
    #[error("the trust list of {country} is unusable: {detail}")]
    TrustListInvalid {
        /// The country.
        country: CountryCode,
        /// What is wrong (file and problem, or signature / sequence problem).
        detail: String,
    },
    /// The trusted list lists the CA, but its service was not granted or
    /// recognised at the validation time (withdrawn, not yet granted, …).
    #[error("the CA's trust service was not granted at the validation time (status: {status})")]
    ServiceNotGranted {
        /// The status in force then (`none` before the first).
        status: String,
    },
    /// The country's signed trusted list is past its NextUpdate at the validation time.
    #[error(
        "the trusted list of {country} is out of date (NextUpdate {next_update_unix}, Unix time)"
    )]
    TrustListStale {
        /// The country.
        country: CountryCode,
        /// The list's NextUpdate.
        next_update_unix: u64,
    },
    /// OCSP was to settle a certificate's status and no usable response
    /// could be had (none fetched or carried, responder down, malformed,
    /// wrong nonce), and no CRL covers the certificate either.
    #[error(
        "revocation status cannot be established by OCSP for certificate {serial_hex}: {detail}"
    )]
    OcspUnavailable {
        /// The certificate whose status is unknown.
        serial_hex: String,
        /// What went wrong.
        detail: String,
    },
    /// The OCSP response was signed by neither the issuer nor a responder
    /// the issuer authorised (id-kp-OCSPSigning), or its signature fails.
    #[error("the OCSP response for certificate {serial_hex} is not from an authorised responder: {detail}")]
    OcspUnauthorised {
        /// The certificate asked about.
        serial_hex: String,
        /// Why the responder is not accepted.
        detail: String,
    },
    /// The OCSP response is past its nextUpdate at the validation time.
    #[error("the OCSP response for certificate {serial_hex} is out of date (fresh until {})", rfc3339(*fresh_until_unix))]
    OcspStale {
        /// The certificate asked about.
        serial_hex: String,
        /// nextUpdate (or thisUpdate plus the maximum age).
        fresh_until_unix: u64,
    },
    /// The OCSP responder answered "unknown" and no CRL covers the certificate.
    #[error("the OCSP responder does not know certificate {serial_hex}, and no CRL covers it")]
    CertificateStatusUnknown {
        /// The certificate asked about.
        serial_hex: String,
    },
}

impl PathError {
    /// The path error for an OCSP response that could not be used for a certificate.
    pub fn from_ocsp(serial_hex: String, e: &crate::ocsp::OcspError) -> PathError {
        use crate::ocsp::OcspError as O;
        match e {
            O::Unauthorised(d) | O::BadSignature(d) => PathError::OcspUnauthorised {
                serial_hex,
                detail: d.clone(),
            },
            O::Stale { fresh_until_unix } => PathError::OcspStale {
                serial_hex,
                fresh_until_unix: *fresh_until_unix,
            },
            other => PathError::OcspUnavailable {
                serial_hex,
                detail: other.to_string(),
            },
        }
    }
}

/// An RFC 3339 UTC time for messages: people read dates, not Unix seconds.
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

/// Why the trust list, or one country's part of it, could not be loaded.
///
/// Only problems with the directory itself (unreadable, a folder that is not
/// a country code) refuse the whole list. A bad file inside a country folder
/// becomes that country's [`crate::TrustFault`], carrying this error's sentence:
/// one partner's mistake must not stop the other corridors.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TrustLoadError {
    /// A directory could not be listed.
    #[error("cannot read trust list directory {path}: {source}")]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be read (or its metadata could not be read).
    #[error("cannot read trust list file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A non-hidden top-level directory whose name is not an upper-case two-letter country code.
    #[error("trust list folder {name:?} is not an upper-case ISO 3166 alpha-2 country code")]
    InvalidCountryFolder {
        /// The folder name as found.
        name: String,
    },
    /// A certificate file that does not parse.
    #[error("malformed certificate in {file}: {detail}")]
    MalformedCertificate {
        /// `CC/filename`.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// A certificate in the trust list that cannot issue certificates.
    #[error("certificate {subject} in {file} is not a CA certificate (basicConstraints cA=true is required)")]
    NotACa {
        /// `CC/filename`.
        file: String,
        /// The certificate's subject.
        subject: String,
    },
    /// Two trusted lists claim the same territory.
    #[error("more than one trusted list claims {country}: {sources}")]
    DuplicateTerritory {
        /// The territory.
        country: CountryCode,
        /// Where the lists came from.
        sources: String,
    },
    /// A trusted list was refused (signature, pinning, rollback, form).
    #[error("trusted list {source_name} refused: {detail}")]
    TrustedList {
        /// Where it came from.
        source_name: String,
        /// Why.
        detail: String,
    },
    /// A CRL file that does not parse or uses a form the verifier cannot apply.
    #[error("malformed or unsupported CRL in {file}: {detail}")]
    MalformedCrl {
        /// `CC/filename`.
        file: String,
        /// What is wrong.
        detail: String,
    },
}

/// Maps webpki's verdict to ours. Unsupported-algorithm details are decoded so
/// the operator sees which algorithm, not a byte dump.
pub(crate) fn map_webpki_error(e: webpki::Error) -> PathError {
    use webpki::Error as W;
    #[allow(deprecated)]
    match e {
        W::UnknownIssuer | W::CertDistrusted | W::EndEntityUsedAsCa => PathError::NoChain,
        W::CertExpired { not_after, .. } => PathError::Expired {
            not_after_unix: not_after.as_secs(),
        },
        W::CertNotValidYet { not_before, .. } => PathError::NotYetValid {
            not_before_unix: not_before.as_secs(),
        },
        // The caller replaces the serial with the one actually listed; webpki does not say which.
        W::CertRevoked => PathError::Revoked {
            serial_hex: String::new(),
        },
        W::UnknownRevocationStatus => PathError::RevocationUnknown,
        W::CrlExpired { next_update, .. } => PathError::CrlExpired {
            next_update_unix: next_update.as_secs(),
        },
        W::InvalidCrlSignatureForPublicKey => {
            PathError::CrlInvalid("CRL signature does not verify with the issuer's key".into())
        }
        W::IssuerNotCrlSigner => {
            PathError::CrlInvalid("the CRL issuer's keyUsage does not include cRLSign".into())
        }
        W::UnsupportedCrlSignatureAlgorithm | W::UnsupportedCrlSignatureAlgorithmForPublicKey => {
            PathError::CrlInvalid("CRL signature algorithm not accepted".into())
        }
        W::UnsupportedCrlSignatureAlgorithmContext(cx) => PathError::CrlInvalid(format!(
            "CRL signature algorithm {} not accepted",
            algorithm_name(&cx.signature_algorithm_id)
        )),
        W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(cx) => {
            PathError::CrlInvalid(format!(
                "CRL signature algorithm {} not accepted for the issuer's key",
                algorithm_name(&cx.signature_algorithm_id)
            ))
        }
        e @ (W::UnsupportedCrlVersion
        | W::UnsupportedDeltaCrl
        | W::UnsupportedIndirectCrl
        | W::UnsupportedCrlIssuingDistributionPoint
        | W::UnsupportedRevocationReason
        | W::UnsupportedRevocationReasonsPartitioning
        | W::InvalidCrlNumber) => PathError::CrlInvalid(format!("{e:?}")),
        W::RequiredEkuNotFound => PathError::EkuNotAllowed { present: vec![] },
        W::RequiredEkuNotFoundContext(cx) => PathError::EkuNotAllowed {
            present: cx
                .present
                .iter()
                .map(|arcs| {
                    arcs.iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .collect(),
        },
        W::EmptyEkuExtension => PathError::EkuNotAllowed { present: vec![] },
        W::CaUsedAsEndEntity => PathError::SignerIsCa,
        W::UnsupportedSignatureAlgorithm | W::UnsupportedSignatureAlgorithmForPublicKey => {
            PathError::UnsupportedSignatureAlgorithm {
                algorithm: "unknown".into(),
            }
        }
        W::UnsupportedSignatureAlgorithmContext(cx) => PathError::UnsupportedSignatureAlgorithm {
            algorithm: algorithm_name(&cx.signature_algorithm_id),
        },
        W::UnsupportedSignatureAlgorithmForPublicKeyContext(cx) => {
            PathError::UnsupportedSignatureAlgorithm {
                algorithm: format!(
                    "{} with key {}",
                    algorithm_name(&cx.signature_algorithm_id),
                    algorithm_name(&cx.public_key_algorithm_id)
                ),
            }
        }
        W::InvalidSignatureForPublicKey => PathError::BadSignature,
        W::PathLenConstraintViolated => {
            PathError::ConstraintViolation("basicConstraints pathLenConstraint".into())
        }
        W::NameConstraintViolation => PathError::ConstraintViolation("name constraints".into()),
        W::MaximumSignatureChecksExceeded
        | W::MaximumPathBuildCallsExceeded
        | W::MaximumNameConstraintComparisonsExceeded
        | W::MaximumPathDepthExceeded => PathError::BudgetExceeded,
        W::UnsupportedCertVersion => {
            PathError::UnsupportedCertificate("only X.509 v3 certificates are accepted".into())
        }
        W::UnsupportedCriticalExtension => {
            PathError::UnsupportedCertificate("unknown critical extension".into())
        }
        e @ (W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::MalformedExtensions
        | W::ExtensionValueInvalid
        | W::InvalidSerialNumber
        | W::InvalidCertValidity
        | W::SignatureAlgorithmMismatch
        | W::MalformedNameConstraint
        | W::InvalidNetworkMaskConstraint) => PathError::MalformedCertificate(format!("{e:?}")),
        other => PathError::Other(format!("{other:?}")),
    }
}

/// webpki hands algorithm identifiers as the content of the AlgorithmIdentifier
/// SEQUENCE (OID TLV first); show the OID with a friendly name when we know it.
fn algorithm_name(alg_id: &[u8]) -> String {
    let oid = match alg_id {
        [0x06, len, rest @ ..] if usize::from(*len) <= rest.len() && *len < 0x80 => {
            oid_to_dotted(&rest[..usize::from(*len)])
        }
        _ => None,
    };
    let Some(oid) = oid else {
        return "unrecognised algorithm identifier".into();
    };
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.4" => Some("md5WithRSAEncryption"),
        "1.2.840.113549.1.1.5" => Some("sha1WithRSAEncryption"),
        "1.2.840.10045.4.1" => Some("ecdsa-with-SHA1"),
        "1.2.840.10045.4.3.1" => Some("ecdsa-with-SHA224"),
        "1.2.840.10040.4.3" => Some("dsa-with-sha1"),
        "2.16.840.1.101.3.4.3.2" => Some("dsa-with-sha256"),
        "1.2.643.7.1.1.3.2" => Some("GOST R 34.10-2012 256"),
        "1.2.643.7.1.1.3.3" => Some("GOST R 34.10-2012 512"),
        "1.2.643.2.2.3" => Some("GOST R 34.10-2001"),
        "1.2.840.113549.1.1.1" => Some("rsaEncryption"),
        "1.2.840.10045.2.1" => Some("ecPublicKey"),
        _ => None,
    };
    match name {
        Some(n) => format!("{oid} ({n})"),
        None => oid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names() {
        // sha1WithRSAEncryption + NULL params
        let sha1 = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
        ];
        assert_eq!(
            algorithm_name(&sha1),
            "1.2.840.113549.1.1.5 (sha1WithRSAEncryption)"
        );
        assert_eq!(
            algorithm_name(&[0x06, 0x09]),
            "unrecognised algorithm identifier"
        );
        assert_eq!(algorithm_name(&[]), "unrecognised algorithm identifier");
    }

    #[test]
    fn every_variant_has_a_sentence() {
        let e = PathError::EkuNotAllowed {
            present: vec!["1.3.6.1.5.5.7.3.1".into()],
        };
        assert!(e.to_string().contains("1.3.6.1.5.5.7.3.1"));
        assert!(!PathError::NoChain.to_string().is_empty());
    }

    #[test]
    fn times_are_rfc3339() {
        let e = PathError::Expired {
            not_after_unix: 1_764_951_783,
        };
        assert_eq!(
            e.to_string(),
            "a certificate in the path expired at 2025-12-05T16:23:03Z"
        );
        let e = PathError::CrlExpired {
            next_update_unix: 0,
        };
        assert!(e.to_string().contains("1970-01-01T00:00:00Z"), "{e}");
    }
}
