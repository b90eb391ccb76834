//! The signature of an ETSI TS 119 612 trusted list, checked by the same
//! engine as a declaration's.
//!
//! A trusted list is an XML document with one enveloped XAdES signature over
//! the whole list: exactly the shape the customs profile demands of a
//! declaration (one signature, child of the document element, one reference
//! to the document element with the enveloped-signature transform, nothing
//! external, no XSLT), so that profile is used, with XAdES required, rather
//! than the generic one, which would also accept SHA-1, RSA-1024, detached
//! and multiple signatures. Trust in the signer is not a path to a CA here
//! but pinning: the engine runs with an empty trust list, and a list whose
//! signature is intact stops at exactly one place, "origin not trusted";
//! the caller then compares the signer with the pinned certificates.

use tamga_dsig::NoExternal;
use tamga_trust::tsl::TlSignatureCheck;
use tamga_trust::{CountryCode, RevocationMode, TrustList};

use crate::config::{Policy, Profile};
use crate::verify::{verify_document, VerifyRequest};

/// [`TlSignatureCheck`] by Tamga's verification engine.
#[derive(Debug, Clone)]
pub struct TlSignatureEngine {
    policy: Policy,
}

impl Default for TlSignatureEngine {
    fn default() -> Self {
        let mut policy = Policy::customs();
        policy.profile = Profile::Customs;
        policy.require_xades = true;
        // The signer is pinned, not chained: there is no CA whose CRL applies.
        policy.certificates.revocation = RevocationMode::Off;
        Self { policy }
    }
}

impl TlSignatureCheck for TlSignatureEngine {
    fn signer_sha256(&self, xml: &[u8], at_unix: i64) -> Result<String, String> {
        let nobody = TrustList::default();
        let origin = CountryCode::from_upper("ZZ").map_err(|e| e.to_string())?;
        let report = verify_document(&VerifyRequest {
            bytes: xml,
            trust: &nobody,
            origin,
            at_unix,
            policy: &self.policy,
            resolver: &NoExternal,
            hmac_secret: None,
        });
        match (report.signature_intact, report.reason, report.signer) {
            (true, Some("origin_not_trusted"), Some(signer)) => Ok(signer.certificate_sha256),
            (_, reason, _) => Err(format!(
                "{} ({})",
                report.message.trim_end_matches('.'),
                reason.unwrap_or("no reason")
            )),
        }
    }
}
