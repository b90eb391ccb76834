//! Every reason Tamga refuses a signature, in one place.
//!
//! Each [`Reason`] has a stable machine-readable `code` (brokers' systems
//! switch on it), the ETSI EN 319 102-1 sub-indication it maps to (which
//! fixes the indication), and one human sentence. Adding a rejection means
//! adding a variant here; nothing else in Tamga invents a sub-indication.

use serde::Serialize;
use tamga_trust::PathError;
use tamga_xml::ParseError;

/// ETSI EN 319 102-1 main indication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Indication {
    TotalPassed,
    TotalFailed,
    Indeterminate,
}

impl Indication {
    pub fn as_str(self) -> &'static str {
        match self {
            Indication::TotalPassed => "TOTAL_PASSED",
            Indication::TotalFailed => "TOTAL_FAILED",
            Indication::Indeterminate => "INDETERMINATE",
        }
    }
}

/// ETSI EN 319 102-1 sub-indications used by Tamga.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum SubIndication {
    FormatFailure,
    HashFailure,
    SigCryptoFailure,
    Revoked,
    NotYetValid,
    SignedDataNotFound,
    NoSigningCertificateFound,
    NoCertificateChainFound,
    OutOfBoundsNoPoe,
    CryptoConstraintsFailure,
    SigConstraintsFailure,
    ChainConstraintsFailure,
    CertificateChainGeneralFailure,
    TryLater,
}

impl SubIndication {
    /// The indication this sub-indication belongs to (EN 319 102-1 table 5).
    pub fn indication(self) -> Indication {
        use SubIndication::*;
        match self {
            FormatFailure | HashFailure | SigCryptoFailure | Revoked | NotYetValid => {
                Indication::TotalFailed
            }
            _ => Indication::Indeterminate,
        }
    }

    pub fn as_str(self) -> &'static str {
        use SubIndication::*;
        match self {
            FormatFailure => "FORMAT_FAILURE",
            HashFailure => "HASH_FAILURE",
            SigCryptoFailure => "SIG_CRYPTO_FAILURE",
            Revoked => "REVOKED",
            NotYetValid => "NOT_YET_VALID",
            SignedDataNotFound => "SIGNED_DATA_NOT_FOUND",
            NoSigningCertificateFound => "NO_SIGNING_CERTIFICATE_FOUND",
            NoCertificateChainFound => "NO_CERTIFICATE_CHAIN_FOUND",
            OutOfBoundsNoPoe => "OUT_OF_BOUNDS_NO_POE",
            CryptoConstraintsFailure => "CRYPTO_CONSTRAINTS_FAILURE",
            SigConstraintsFailure => "SIG_CONSTRAINTS_FAILURE",
            ChainConstraintsFailure => "CHAIN_CONSTRAINTS_FAILURE",
            CertificateChainGeneralFailure => "CERTIFICATE_CHAIN_GENERAL_FAILURE",
            TryLater => "TRY_LATER",
        }
    }
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// The bytes are not acceptable XML (size, encoding, DOCTYPE, syntax, limits, IDs).
    Xml(ParseError),
    /// No `ds:Signature` at all.
    NoSignature,
    /// More than one signature where the profile allows one.
    MultipleSignatures { count: usize },
    /// The signature is not a child of the document element.
    SignatureNotEnveloped { path: String },
    /// A `ds:Signature` sits somewhere it cannot be a declarant signature or
    /// a counter-signature.
    UnexpectedSignature { path: String },
    /// No reference covers the document element.
    DocumentNotCovered,
    /// A reference points at something the profile does not sign.
    UnexpectedReference { uri: String },
    /// A reference points inside the signature itself, at something other
    /// than its own `SignedProperties` or `KeyInfo` (`SignatureValue`, an
    /// `Object`, …).
    ReferenceIntoSignature { uri: String, element: String },
    /// The signed XAdES properties are not the ones in this signature's
    /// `QualifyingProperties`.
    SignedPropertiesWrapped { uri: String },
    /// `QualifyingProperties` present but its `SignedProperties` is not signed.
    SignedPropertiesNotSigned,
    /// The signature's structure breaks the XML-DSig or XAdES schema.
    MalformedSignature(String),
    /// A budget was exceeded.
    Budget(String),
    /// A transform the profile forbids (XSLT, XPath, XPointer URIs, …).
    ForbiddenTransform { name: String },
    /// A reference URI pointing outside the document.
    ExternalReference { uri: String },
    /// `ds:Manifest`, `RetrievalMethod` or `KeyInfoReference`.
    IndirectionForbidden { what: String },
    /// HMAC: a shared secret cannot identify a declarant.
    HmacForbidden,
    /// Only a bare `KeyValue`: a declarant is identified by a certificate.
    KeyValueOnly,
    /// No (or no unambiguous) signer certificate in `KeyInfo`.
    NoSigningCertificate(String),
    /// XAdES `SigningCertificate(V2)` does not name the certificate used.
    SigningCertificateMismatch,
    /// SHA-1, MD5 and the like.
    WeakAlgorithm { algorithm: String },
    /// An algorithm Tamga does not implement or the policy does not list.
    AlgorithmNotAllowed { algorithm: String },
    /// An algorithm Tamga recognises but does not implement (GOST 34.310-2004):
    /// the signature cannot be checked, so it is never passed.
    UnsupportedAlgorithm { algorithm: String },
    /// The policy does not let signers of this country use this algorithm
    /// (`[country.XX] algorithms`).
    AlgorithmNotAllowedForCountry { algorithm: String, country: String },
    /// RSA < 2048, EC < 256 (or the policy's minimums).
    WeakKey { key: String, minimum: usize },
    /// A reference digest does not match: the signed content was changed.
    DigestMismatch { uri: String },
    /// A reference could not be found or computed.
    ReferenceUnresolved { uri: String, detail: String },
    /// The signature value does not verify.
    SignatureInvalid(String),
    /// The certificate path was refused.
    Path(PathError),
    /// The signature checks out but its key is not vouched for by any
    /// certificate (generic profile only).
    KeyNotTrusted,
    /// A counter-signature on the declarant's signature failed.
    CounterSignature { index: usize, detail: String },
    /// A counter-signature does not sign its parent's `SignatureValue`.
    CounterSignatureTarget { uri: String },
    /// A XAdES signature time-stamp (RFC 3161) does not verify.
    TimestampInvalid { detail: String },
    /// The (signed) declaration states another origin than it was submitted as.
    OriginMismatch { stated: String, declared: String },
    /// The signature verified, but no customs authority for the declaration's
    /// destination is configured at this site: nobody here may counter-sign
    /// it. Decided at the decision step, not by verification.
    DestinationNotServed { destination: String },
}

impl Reason {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        use Reason::*;
        match self {
            Xml(e) => match e {
                ParseError::Empty => "empty_document",
                ParseError::TooLarge { .. } => "document_too_large",
                ParseError::NotUtf8 { .. } => "not_utf8",
                ParseError::UnsupportedEncoding { .. } => "unsupported_encoding",
                ParseError::Doctype => "doctype_forbidden",
                ParseError::TooDeep { .. } => "too_deep",
                ParseError::TooManyAttributes { .. } => "too_many_attributes",
                ParseError::TextTooLarge { .. } => "text_too_large",
                ParseError::TooManyNodes { .. } => "too_many_nodes",
                ParseError::EntityReference => "entity_forbidden",
                ParseError::DuplicateId { .. } => "duplicate_id",
                _ => "malformed_xml",
            },
            NoSignature => "no_signature",
            MultipleSignatures { .. } => "multiple_signatures",
            SignatureNotEnveloped { .. } => "signature_wrapping",
            UnexpectedSignature { .. } => "signature_wrapping",
            DocumentNotCovered => "signature_wrapping",
            UnexpectedReference { .. } => "unexpected_reference",
            ReferenceIntoSignature { .. } => "reference_into_signature",
            SignedPropertiesWrapped { .. } => "signature_wrapping",
            SignedPropertiesNotSigned => "signed_properties_not_signed",
            MalformedSignature(_) => "malformed_signature",
            Budget(_) => "budget_exceeded",
            ForbiddenTransform { .. } => "forbidden_transform",
            ExternalReference { .. } => "external_reference",
            IndirectionForbidden { .. } => "indirection_forbidden",
            HmacForbidden => "hmac_forbidden",
            KeyValueOnly => "key_value_only",
            NoSigningCertificate(_) => "no_signing_certificate",
            SigningCertificateMismatch => "signing_certificate_mismatch",
            WeakAlgorithm { .. } => "weak_algorithm",
            AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            AlgorithmNotAllowedForCountry { .. } => "algorithm_not_allowed_for_country",
            WeakKey { .. } => "weak_key",
            DigestMismatch { .. } => "digest_mismatch",
            ReferenceUnresolved { .. } => "reference_unresolved",
            SignatureInvalid(_) => "signature_invalid",
            Path(p) => match p {
                PathError::UnknownCountry(_) => "origin_not_trusted",
                PathError::NoChain => "untrusted_signer",
                PathError::Expired { .. } => "certificate_expired",
                PathError::NotYetValid { .. } => "certificate_not_yet_valid",
                PathError::Revoked { .. } => "certificate_revoked",
                PathError::RevocationUnknown => "revocation_unknown",
                PathError::CrlExpired { .. } => "crl_expired",
                PathError::CrlInvalid(_) => "crl_invalid",
                PathError::KeyUsageNotAllowed => "key_usage_not_allowed",
                PathError::EkuNotAllowed { .. } => "eku_not_allowed",
                PathError::SignerIsCa => "signer_is_ca",
                PathError::UnsupportedSignatureAlgorithm { .. } => "certificate_weak_algorithm",
                PathError::BadSignature => "certificate_signature_invalid",
                PathError::ConstraintViolation(_) => "chain_constraint_violated",
                PathError::MalformedCertificate(_) => "malformed_certificate",
                PathError::UnsupportedCertificate(_) => "unsupported_certificate",
                PathError::BudgetExceeded => "budget_exceeded",
                PathError::RevocationUnavailable { .. } => "revocation_unavailable",
                PathError::TrustListInvalid { .. } => "trust_list_invalid",
                PathError::TrustListStale { .. } => "trust_list_stale",
                PathError::ServiceNotGranted { .. } => "trust_service_not_granted",
                PathError::OcspUnavailable { .. } => "ocsp_unavailable",
                PathError::OcspUnauthorised { .. } => "ocsp_unauthorised",
                PathError::OcspStale { .. } => "ocsp_stale",
                PathError::CertificateStatusUnknown { .. } => "certificate_status_unknown",
                _ => "path_validation_failed",
            },
            KeyNotTrusted => "key_not_trusted",
            CounterSignature { .. } => "countersignature_invalid",
            CounterSignatureTarget { .. } => "countersignature_target_mismatch",
            TimestampInvalid { .. } => "timestamp_invalid",
            OriginMismatch { .. } => "origin_mismatch",
            DestinationNotServed { .. } => "destination_not_served",
        }
    }

    /// The ETSI sub-indication.
    pub fn sub_indication(&self) -> SubIndication {
        use Reason::*;
        use SubIndication as S;
        match self {
            Xml(_)
            | NoSignature
            | MultipleSignatures { .. }
            | MalformedSignature(_)
            | Budget(_) => S::FormatFailure,
            SignatureNotEnveloped { .. }
            | UnexpectedSignature { .. }
            | DocumentNotCovered
            | SignedPropertiesWrapped { .. }
            | ReferenceUnresolved { .. } => S::SignedDataNotFound,
            UnexpectedReference { .. }
            | ReferenceIntoSignature { .. }
            | SignedPropertiesNotSigned
            | ForbiddenTransform { .. }
            | ExternalReference { .. }
            | IndirectionForbidden { .. } => S::SigConstraintsFailure,
            HmacForbidden
            | WeakAlgorithm { .. }
            | AlgorithmNotAllowed { .. }
            | UnsupportedAlgorithm { .. }
            | AlgorithmNotAllowedForCountry { .. }
            | WeakKey { .. } => S::CryptoConstraintsFailure,
            KeyValueOnly | NoSigningCertificate(_) | SigningCertificateMismatch => {
                S::NoSigningCertificateFound
            }
            DigestMismatch { .. } => S::HashFailure,
            SignatureInvalid(_) => S::SigCryptoFailure,
            KeyNotTrusted => S::NoCertificateChainFound,
            CounterSignature { .. } => S::SigConstraintsFailure,
            CounterSignatureTarget { .. } => S::SignedDataNotFound,
            TimestampInvalid { .. } => S::SigConstraintsFailure,
            OriginMismatch { .. } | DestinationNotServed { .. } => S::SigConstraintsFailure,
            Path(p) => match p {
                PathError::UnknownCountry(_)
                | PathError::NoChain
                | PathError::BadSignature
                | PathError::ServiceNotGranted { .. } => S::NoCertificateChainFound,
                PathError::Expired { .. } => S::OutOfBoundsNoPoe,
                PathError::NotYetValid { .. } => S::NotYetValid,
                PathError::Revoked { .. } => S::Revoked,
                // The partner's material is unusable or out of date: the
                // signature may be fine, nobody can tell until it is fixed.
                PathError::RevocationUnknown
                | PathError::CrlExpired { .. }
                | PathError::RevocationUnavailable { .. }
                | PathError::TrustListStale { .. }
                // OCSP as for CRLs: no fresh evidence yet (responder down,
                // stale answer, an answer not from the CA's responder, or a
                // responder that does not know the certificate).
                | PathError::OcspUnavailable { .. }
                | PathError::OcspUnauthorised { .. }
                | PathError::OcspStale { .. }
                | PathError::CertificateStatusUnknown { .. } => S::TryLater,
                PathError::TrustListInvalid { .. } => S::CertificateChainGeneralFailure,
                PathError::KeyUsageNotAllowed
                | PathError::EkuNotAllowed { .. }
                | PathError::SignerIsCa
                | PathError::ConstraintViolation(_) => S::ChainConstraintsFailure,
                PathError::UnsupportedSignatureAlgorithm { .. } => S::CryptoConstraintsFailure,
                PathError::MalformedCertificate(_) => S::FormatFailure,
                _ => S::CertificateChainGeneralFailure,
            },
        }
    }

    pub fn indication(&self) -> Indication {
        self.sub_indication().indication()
    }

    /// One human sentence.
    pub fn sentence(&self) -> String {
        use Reason::*;
        match self {
            Xml(e) => format!("The document was refused before signature checks: {e}."),
            NoSignature => "The document carries no XML signature.".into(),
            MultipleSignatures { count } => format!(
                "The document carries {count} signatures; a declaration must carry exactly one declarant signature."
            ),
            SignatureNotEnveloped { path } => format!(
                "The signature at {path} is not enveloped in the document element; this is signature wrapping."
            ),
            UnexpectedSignature { path } => format!(
                "A signature at {path} is neither the declarant's nor a counter-signature of it; this is signature wrapping."
            ),
            DocumentNotCovered => "No reference of the signature covers the document element (URI=\"\" or its #Id with the enveloped-signature transform); what was signed is not this declaration (signature wrapping).".into(),
            UnexpectedReference { uri } => format!(
                "The signature references {uri:?}, which the customs profile does not allow to be signed."
            ),
            ReferenceIntoSignature { uri, element } => format!(
                "The signature references {uri:?}, its own {element} element; inside its signature a declaration may sign only the XAdES SignedProperties and the KeyInfo."
            ),
            SignedPropertiesWrapped { uri } => format!(
                "The signed XAdES properties ({uri}) are not the ones in the signature's QualifyingProperties; this is signature wrapping."
            ),
            SignedPropertiesNotSigned => "The signature has XAdES properties but no reference signs them.".into(),
            MalformedSignature(d) => format!("The signature is malformed: {d}."),
            Budget(d) => format!("The signature exceeds a processing budget: {d}."),
            ForbiddenTransform { name } => format!("The transform {name} is not allowed; only enveloped-signature and canonicalisation are."),
            ExternalReference { uri } => format!("The reference {uri:?} points outside the document; nothing is ever fetched."),
            IndirectionForbidden { what } => format!("{what} is not allowed: every signed byte must be in the declaration itself."),
            HmacForbidden => "HMAC signatures are not accepted: a declarant is identified by a certificate, not a shared secret.".into(),
            KeyValueOnly => "The signature carries only a bare public key; a declarant is identified by a certificate.".into(),
            NoSigningCertificate(d) => format!("No signing certificate could be identified: {d}."),
            SigningCertificateMismatch => "The XAdES signing-certificate digest does not match the certificate in KeyInfo.".into(),
            WeakAlgorithm { algorithm } => format!("The algorithm {algorithm} is too weak for the policy."),
            AlgorithmNotAllowed { algorithm } => format!("The algorithm {algorithm} is not supported or not allowed by the policy."),
            UnsupportedAlgorithm { algorithm } => format!("The algorithm {algorithm} is recognised but not implemented, so the signature cannot be checked."),
            AlgorithmNotAllowedForCountry { algorithm, country } => format!("The policy does not allow signers from {country} to use {algorithm}."),
            WeakKey { key, minimum } => format!("The signer's key ({key}) is below the policy's minimum of {minimum} bits."),
            DigestMismatch { uri } => format!("The content referenced by {uri:?} was changed after signing (digest mismatch)."),
            ReferenceUnresolved { uri, detail } => format!("The reference {uri:?} could not be resolved: {detail}."),
            SignatureInvalid(d) => format!("The signature value is invalid: {d}."),
            Path(p) => format!("The signer's certificate was not accepted: {p}."),
            KeyNotTrusted => "The signature is intact, but its key is not certified by any trusted CA.".into(),
            CounterSignature { index, detail } => format!("Counter-signature {index} is invalid: {}", detail.trim_end_matches('.').to_string() + "."),
            CounterSignatureTarget { uri } => format!("The counter-signature's reference {uri:?} does not cover its parent's SignatureValue."),
            TimestampInvalid { detail } => format!("The signature time-stamp is not valid: {detail}."),
            OriginMismatch { stated, declared } => format!("The declaration states origin {stated} but was submitted as from {declared}."),
            DestinationNotServed { destination } => format!("This site has no customs authority configured for destination {destination}."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of 9 or more digits outside an RFC 3339 time: a bare Unix time
    /// (or something people cannot read either).
    fn bare_number(message: &str) -> Option<String> {
        let mut run = String::new();
        for c in message.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_digit() {
                run.push(c);
            } else {
                if run.len() >= 9 {
                    return Some(run);
                }
                run.clear();
            }
        }
        None
    }

    /// OCSP problems are INDETERMINATE like their CRL counterparts; an OCSP
    /// "revoked" is the same `certificate_revoked` as a CRL listing.
    #[test]
    fn ocsp_reasons_match_the_crl_ones() {
        let serial_hex = || "0a".to_string();
        let cases = [
            (
                PathError::OcspUnavailable {
                    serial_hex: serial_hex(),
                    detail: "responder down".into(),
                },
                "ocsp_unavailable",
            ),
            (
                PathError::OcspUnauthorised {
                    serial_hex: serial_hex(),
                    detail: "no id-kp-OCSPSigning".into(),
                },
                "ocsp_unauthorised",
            ),
            (
                PathError::OcspStale {
                    serial_hex: serial_hex(),
                    fresh_until_unix: 0,
                },
                "ocsp_stale",
            ),
            (
                PathError::CertificateStatusUnknown {
                    serial_hex: serial_hex(),
                },
                "certificate_status_unknown",
            ),
        ];
        let crl = Reason::Path(PathError::RevocationUnknown);
        for (e, code) in cases {
            let r = Reason::Path(e);
            assert_eq!(r.code(), code);
            assert_eq!(r.sub_indication(), crl.sub_indication());
            assert_eq!(r.indication(), Indication::Indeterminate);
        }
        let revoked = Reason::Path(PathError::Revoked {
            serial_hex: serial_hex(),
        });
        assert_eq!(revoked.indication(), Indication::TotalFailed);
        assert_eq!(revoked.sub_indication(), SubIndication::Revoked);
    }

    /// Every reason whose sentence can carry a time, with times of today.
    #[test]
    fn no_message_carries_a_bare_unix_time() {
        let t: u64 = 1_764_951_783;
        let reasons = [
            Reason::Path(PathError::Expired { not_after_unix: t }),
            Reason::Path(PathError::NotYetValid { not_before_unix: t }),
            Reason::Path(PathError::CrlExpired {
                next_update_unix: t,
            }),
            Reason::Path(PathError::OcspStale {
                serial_hex: "0a".into(),
                fresh_until_unix: t,
            }),
            Reason::Xml(ParseError::NotUtf8 {
                offset: 12,
                declared: Some("windows-1251".into()),
            }),
            Reason::TimestampInvalid {
                detail: tamga_timestamp::TimestampError::UntrustedTsa(
                    PathError::Expired { not_after_unix: t }.to_string(),
                )
                .to_string(),
            },
        ];
        for r in &reasons {
            let sentence = r.sentence();
            assert_eq!(bare_number(&sentence), None, "{sentence}");
        }
        assert!(reasons[0].sentence().contains("2025-12-05T16:23:03Z"));
        assert!(reasons[4].sentence().contains("windows-1251"));
        assert_eq!(
            bare_number("at 1764951783 (Unix time)").as_deref(),
            Some("1764951783")
        );
    }
}
