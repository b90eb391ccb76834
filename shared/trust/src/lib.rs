//! Mutual-recognition trust list and certificate path validation for foreign
//! e-signatures on customs declarations.
//!
//! Pure: the validation time is an argument and nothing touches the network.
//! The only I/O is [`TrustList::load_dir`].
//!
//! # What certificates and CRLs must look like
//!
//! Path validation is rustls-webpki's, plus checks of our own:
//!
//! * Trust anchors (the files in `<DIR>/<CC>/`) may be X.509 v1 (webpki's anchor
//!   parser accepts them); a v3 anchor must have basicConstraints `cA=TRUE`.
//!   An anchor is only used while the validation time is inside its own
//!   notBefore..notAfter window.
//! * Intermediates and the signer must be X.509 v3 and must not carry a critical
//!   extension other than keyUsage, extendedKeyUsage, basicConstraints,
//!   subjectAltName, nameConstraints and cRLDistributionPoints (a critical
//!   certificatePolicies or qcStatements is refused). Intermediates need
//!   basicConstraints `cA=TRUE`.
//! * The signer needs a keyUsage extension with digitalSignature or
//!   nonRepudiation, and must not be a CA.
//! * Every certificate in the path that has an extendedKeyUsage extension,
//!   intermediates included, must list one of the accepted EKUs.
//! * Signatures: ECDSA P-256/P-384/P-521, Ed25519, RSA PKCS#1 v1.5 and PSS with
//!   SHA-256/384/512 and 2048-8192-bit keys; GOST R 34.10-2012/2015 256 and 512
//!   with Streebog (TC26, CryptoPro and Kazakh NCA identifiers, `tamga-gost`).
//!   SHA-1, MD5, DSA and GOST R 34.10-2001 / 34.310-2004 are refused.
//! * CRLs must be v2 with a nextUpdate and at least one extension (CRL number);
//!   delta and indirect CRLs are refused. A CRL applies to a certificate when its
//!   issuer name equals the certificate's issuer name and, if it has an issuing
//!   distribution point, that IDP's URI matches one of the certificate's CRL
//!   distribution point URIs (or the certificate has none). The CRL's signature
//!   must verify with the issuer's key, and an intermediate that signs CRLs must
//!   have cRLSign in its keyUsage (if it has a keyUsage). Under
//!   [`RevocationMode::Require`] the root must also publish a CRL covering its
//!   intermediates. A listed serial is revoked regardless of its revocation date.
//! * A CRL without the CRL-number extension is refused (RFC 5280 §5.2.3 makes it
//!   mandatory, and reports cite it as the revocation evidence).
//! * OCSP responses ([`PathRequest::ocsp_responses`], checked by [`ocsp`])
//!   complement CRLs under [`RevocationMode::Require`] and come first under
//!   [`RevocationMode::PreferOcsp`]; [`RevocationMode::CrlOnly`] ignores them.
//!
//! # Faults stay in their country
//!
//! A file that cannot be used does not stop the list from loading: it becomes
//! a [`TrustFault`] of its country (see [`TrustList::faults`]). An unusable CRL
//! makes only the paths through its issuer INDETERMINATE
//! ([`PathError::RevocationUnavailable`]); an unusable certificate file makes
//! the whole country INDETERMINATE ([`PathError::TrustListInvalid`]). Only an
//! unreadable directory or a folder that is not a country code refuses the list.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod country;
mod eku;
mod error;
mod fault;
mod memo;
pub mod ocsp;
mod summary;
mod tl_source;
mod trust_list;
pub mod tsl;
mod validate;

pub use country::{CountryCode, InvalidCountryCode};
pub use eku::{Eku, EkuOid, InvalidEku};
pub use error::{PathError, TrustLoadError};
pub use fault::{FaultKind, TrustFault};
#[doc(hidden)]
pub use memo::forget_verified_signatures;
pub use summary::{summarize_certificate, CertSummary};
pub use tl_source::TrustSource;
pub use trust_list::{summarize_crl, CrlSummary, TrustFile, TrustList};
pub use validate::{OcspTarget, PathRequest, RevocationMode, ValidatedSigner};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_list_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TrustList>();
        assert_send_sync::<PathError>();
        assert_send_sync::<TrustLoadError>();
    }
}
