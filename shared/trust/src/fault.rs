//! Per-country fault isolation.
//!
//! A partner that publishes a broken CRL, certificate or trusted list must
//! lose only its own corridor. Loading therefore records what could not be
//! used as a [`TrustFault`] of that country instead of refusing the whole
//! list, and path validation turns the fault into a precise INDETERMINATE
//! reason for exactly the declarations that depend on it:
//!
//! * an unusable **CRL** whose issuer can still be read affects only paths
//!   through that issuer ([`PathError::RevocationUnavailable`]); one whose
//!   issuer cannot be read affects every revocation check of the country;
//! * an unusable **certificate file** or **trusted list** makes the whole
//!   country [`PathError::TrustListInvalid`] (trusting "what was left" would
//!   be guessing what the partner meant);
//! * a **stale** trusted list makes the country [`PathError::TrustListStale`].

use serde::Serialize;

use crate::country::CountryCode;
use crate::error::PathError;

/// What kind of trust material a fault is about.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A CRL file or entry.
    Crl,
    /// A trust-anchor certificate file.
    Anchor,
    /// The country's signed trusted list (signature, sequence, freshness, form).
    TrustList,
}

impl FaultKind {
    /// Stable label (metrics, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Crl => "crl",
            FaultKind::Anchor => "anchor",
            FaultKind::TrustList => "trust_list",
        }
    }
}

/// One piece of a country's trust material that could not be used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustFault {
    /// The country it belongs to (and the only one it affects).
    pub country: CountryCode,
    /// What kind of material.
    pub kind: FaultKind,
    /// Where it came from: `CC/filename` or the trusted list's location.
    pub source: String,
    /// Why it is unusable, one sentence.
    pub detail: String,
    /// For a CRL whose issuer could be read: the issuer DN (only that CA's
    /// certificates are affected).
    pub issuer: Option<String>,
}

impl std::fmt::Display for TrustFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.country,
            self.kind.as_str(),
            self.detail
        )
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FaultEntry {
    pub(crate) fault: TrustFault,
    /// DER of the CRL issuer's Name, when it could be read.
    pub(crate) issuer_raw: Option<Vec<u8>>,
}

impl FaultEntry {
    pub(crate) fn revocation_error(&self) -> PathError {
        PathError::RevocationUnavailable {
            crl: self.fault.source.clone(),
            detail: self.fault.detail.clone(),
        }
    }

    /// Whether this (CRL) fault can hide the status of a certificate with this issuer.
    pub(crate) fn covers_issuer(&self, issuer_raw: &[u8]) -> bool {
        self.fault.kind == FaultKind::Crl
            && self
                .issuer_raw
                .as_deref()
                .is_none_or(|mine| mine == issuer_raw)
    }
}
