//! The customs profile: what Tamga accepts, and the report it gives.
//!
//! Mechanism lives in `tamga-dsig` (XML-DSig) and `tamga-trust` (paths);
//! this crate is policy. Every rejection reason is a variant of [`Reason`]
//! in `reason.rs`; `verify.rs` decides the order in which they are checked.
#![forbid(unsafe_code)]

mod config;
mod counter;
mod reason;
mod report;
mod streaming;
mod tl;
mod verify;

pub use config::{
    algorithm_family, default_countries, Algorithms as AlgorithmPolicy, Budgets, Certificates,
    CountryRules, Limits, Policy, Profile, DEFAULT_ALGORITHM_FAMILIES, GOST_FAMILIES,
};
pub use reason::{Indication, Reason, SubIndication};
pub use report::{
    Algorithms, CounterSignatureReport, ReferenceReport, Report, RevocationEvidence, Signer,
    TimestampReport,
};
pub use tl::TlSignatureEngine;
pub use verify::{
    ocsp_targets, verify_document, verify_document_fetched, verify_document_keeping,
    verify_document_with, Route, Strategy, VerifyRequest, STREAMING_THRESHOLD,
};

/// RFC 3339 UTC time for a Unix timestamp (out-of-range values clamp to the epoch).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
