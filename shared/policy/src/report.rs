//! The validation report (JSON schema: `schemas/validation-report.schema.json`).

use serde::Serialize;
use tamga_trust::CertSummary;

use crate::reason::{Indication, Reason, SubIndication};

/// The signer, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex.
    pub serial: String,
    /// ISO 3166 alpha-2 from the subject's C= attribute.
    pub country: Option<String>,
    pub not_before: String,
    pub not_after: String,
    /// SHA-256 of the certificate DER, lower-case hex.
    pub certificate_sha256: String,
    /// `RSA-2048`, `EC P-256`, …
    pub key: Option<String>,
}

impl Signer {
    pub fn from_summary(s: &CertSummary, key: Option<String>) -> Self {
        Self {
            subject: s.subject.clone(),
            issuer: s.issuer.clone(),
            serial: s.serial.clone(),
            country: s.country.clone(),
            not_before: crate::rfc3339(s.not_before),
            not_after: crate::rfc3339(s.not_after),
            certificate_sha256: s.sha256.clone(),
            key,
        }
    }
}

/// The algorithms the signature used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Algorithms {
    pub canonicalization: Option<String>,
    pub signature: Option<String>,
    pub digests: Vec<String>,
}

/// One reference and whether its digest matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceReport {
    pub uri: Option<String>,
    #[serde(rename = "type")]
    pub type_uri: Option<String>,
    pub digest_algorithm: String,
    pub transforms: Vec<String>,
    /// What the reference points at in this document: `document`,
    /// `SignedProperties`, `KeyInfo`, `KeyInfo/X509Data`,
    /// `KeyInfo/X509Data/X509Certificate`, `signature:<element>` or the
    /// path of another element; `None` when it does not resolve.
    pub target: Option<String>,
    /// `None` when the digest was not computed (checks stopped earlier).
    pub intact: Option<bool>,
}

/// One piece of revocation evidence: the CRL or OCSP response that covered
/// one certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationEvidence {
    /// Serial of the certificate it covered.
    pub certificate_serial: String,
    /// `crl` or `ocsp`.
    pub kind: &'static str,
    /// The certificate's issuer (the CRL's issuer, or the CA the OCSP answer is for).
    pub issuer: String,
    /// CRL number, lower-case hex (CRLs only).
    pub crl_number: Option<String>,
    pub this_update: String,
    /// Empty for an OCSP response without nextUpdate.
    pub next_update: String,
    /// `CC/filename`, `KeyInfo/X509CRL`, `OCSP (issuer)` or `OCSP (delegated responder)`.
    pub source: String,
    /// SHA-256 of the CRL or OCSP response DER.
    pub sha256: String,
    /// OCSP only: `good` (a revoked or unknown answer refuses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// OCSP only: the responder certificate's subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub responder: Option<String>,
    /// OCSP only: producedAt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produced_at: Option<String>,
}

/// One XAdES signature time-stamp (RFC 3161).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimestampReport {
    /// genTime, when the token could be read.
    pub gen_time: Option<String>,
    /// The TSA certificate's subject, when verified.
    pub tsa: Option<String>,
    pub verified: bool,
    pub message: String,
}

/// The verdict on one counter-signature of the declarant's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSignatureReport {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    pub reason: Option<&'static str>,
    pub message: String,
    pub signer: Option<Signer>,
    pub signing_time: Option<String>,
}

/// A validation report in the vocabulary of ETSI EN 319 102-1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub indication: Indication,
    pub sub_indication: Option<SubIndication>,
    /// Stable machine-readable reason code (`signature_wrapping`,
    /// `certificate_revoked`, …); `None` when TOTAL_PASSED.
    pub reason: Option<&'static str>,
    /// One human sentence.
    pub message: String,
    pub profile: &'static str,
    /// The origin country the declaration was checked against.
    pub declared_origin: String,
    pub validation_time: String,
    /// SHA-256 of the exact input bytes, lower-case hex.
    pub document_sha256: String,
    pub document_size: usize,
    /// `XML-DSig`, `XAdES-B-B`, `XAdES-B-T`.
    pub signature_format: Option<&'static str>,
    pub signer: Option<Signer>,
    /// The certificate path, signer first, trust anchor last.
    pub chain: Vec<Signer>,
    /// XAdES SigningTime (claimed by the signer; not a proof of existence).
    pub signing_time: Option<String>,
    /// XAdES signature time-stamps, each verified against the origin's anchors.
    pub timestamps: Vec<TimestampReport>,
    pub algorithms: Algorithms,
    pub references: Vec<ReferenceReport>,
    /// True when every reference digest and the signature value verified
    /// (whether or not the key is trusted).
    pub signature_intact: bool,
    /// The declaration's identity (LRN, document Id, origin, destination) as
    /// the verified document states it.
    pub declaration: Option<tamga_declaration::Identity>,
    pub counter_signatures: Vec<CounterSignatureReport>,
    /// Where the origin's trust came from: its folder, or a signed trusted
    /// list (sequence number, NextUpdate, signer).
    pub trust_source: Option<tamga_trust::TrustSource>,
    /// The CRLs the accepted path's revocation checks rested on.
    pub revocation: Vec<RevocationEvidence>,
    pub engine: &'static str,
}

impl Report {
    pub(crate) fn new(
        profile: &'static str,
        origin: String,
        validation_time: String,
        digest: String,
        size: usize,
    ) -> Self {
        Self {
            indication: Indication::Indeterminate,
            sub_indication: None,
            reason: None,
            message: String::new(),
            profile,
            declared_origin: origin,
            validation_time,
            document_sha256: digest,
            document_size: size,
            signature_format: None,
            signer: None,
            chain: Vec::new(),
            signing_time: None,
            timestamps: Vec::new(),
            algorithms: Algorithms::default(),
            references: Vec::new(),
            signature_intact: false,
            declaration: None,
            counter_signatures: Vec::new(),
            trust_source: None,
            revocation: Vec::new(),
            engine: concat!("tamga ", env!("CARGO_PKG_VERSION")),
        }
    }

    pub(crate) fn reject(&mut self, reason: &Reason) {
        self.indication = reason.indication();
        self.sub_indication = Some(reason.sub_indication());
        self.reason = Some(reason.code());
        self.message = reason.sentence();
    }

    pub(crate) fn pass(&mut self, message: String) {
        self.indication = Indication::TotalPassed;
        self.sub_indication = None;
        self.reason = None;
        self.message = message;
    }

    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}
