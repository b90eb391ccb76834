//! The checkpoint's act, as values: what one check of a receipt found ([`Check`]), the
//! signed check record the authority issues for it ([`record`], XSD `schemas/check.xsd`,
//! namespace `urn:tamga:check:1`), the offline check log that `tamga receipt verify-qr
//! --log` writes and `tamga checkpoint upload` records ([`log`]), and the rule that turns a
//! second presentation of the same declaration amber ([`repeat`]).
//!
//! Pure: bytes and values in, values out; no clock, no store. The gateway and the CLI do
//! the I/O.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod log;
pub mod record;
pub mod repeat;

use serde::{Deserialize, Serialize};

/// The audit stage of a check (`tamga_store::AuditEvent::stage`).
pub const STAGE: &str = "checked";

/// The reason codes of checks that are not plain verdicts of a receipt (a rejection keeps
/// its receipt's reason code; an unreadable or untrusted QR keeps `tamga_qr`'s code).
pub mod reason {
    /// The same declaration was already presented at another checkpoint, or after it was
    /// recorded as having left (the site's repeat rule): possibly a copy.
    pub const ALREADY_PRESENTED: &str = "already_presented";
    /// Nothing on the server matches the LRN, declaration id or receipt id typed.
    pub const NOT_FOUND: &str = "not_found";
    /// The declaration is known but not decided yet.
    pub const NOT_DECIDED: &str = "not_decided";
    /// The offline device had no trust bundle and could not reach the server.
    pub const NO_BUNDLE: &str = "no_bundle";
    /// The trust bundle the check used is past its next update.
    pub const BUNDLE_STALE: &str = "bundle_stale";
    /// Offline, only a QR code can be checked (an LRN or id needs the server).
    pub const NEEDS_SERVER: &str = "needs_server";
}

/// What a check concluded: the four results of the `checked` audit event (contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckResult {
    /// Green: an authentic receipt of an accepted declaration.
    Accepted,
    /// Red: an authentic receipt of a rejected declaration.
    Rejected,
    /// Red: forged, altered, unreadable, or signed by a revoked or expired key.
    NotAuthentic,
    /// Amber: no decision could be made here (unknown authority, stale trust material, no
    /// record, not decided yet, already presented). Never shown as "invalid".
    CouldNotCheck,
}

impl CheckResult {
    /// Every result, in the order of the contract.
    pub const ALL: [CheckResult; 4] = [
        Self::Accepted,
        Self::Rejected,
        Self::NotAuthentic,
        Self::CouldNotCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotAuthentic => "not_authentic",
            Self::CouldNotCheck => "could_not_check",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What the officer typed or scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InputKind {
    /// A `TMG1:` QR payload.
    Qr,
    /// A receipt id (`rcpt-…`), typed when the QR is unreadable.
    ReceiptId,
    /// A declaration id (32 hex digits).
    DeclarationId,
    /// Anything else: looked up as an LRN.
    Lrn,
}

impl InputKind {
    /// Which kind `input` (trimmed) is.
    pub fn of(input: &str) -> Self {
        if input
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("TMG1:"))
        {
            Self::Qr
        } else if input.starts_with("rcpt-") {
            Self::ReceiptId
        } else if input.len() == 32 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            Self::DeclarationId
        } else {
            Self::Lrn
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qr => "qr",
            Self::ReceiptId => "receipt_id",
            Self::DeclarationId => "declaration_id",
            Self::Lrn => "lrn",
        }
    }
}

/// The declaration a check is about, as an authentic receipt states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub receipt_id: String,
    /// SHA-256 of the submitted bytes (the declaration's key across checks).
    pub document_sha256: String,
    pub lrn: Option<String>,
    pub origin: String,
    pub destination: String,
    /// This server's id of the declaration, when it has a record.
    pub declaration_id: Option<String>,
}

/// An earlier presentation of the same declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presented {
    pub check_id: String,
    pub checkpoint: String,
    pub at_ms: i64,
}

/// One check, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `chk-` + 32 lower-case hex digits.
    pub id: String,
    /// When the officer checked (ms since the Unix epoch; for offline checks, the
    /// device's clock).
    pub at_ms: i64,
    pub checkpoint: String,
    /// Who checked (the page token's holder; offline: the log's officer).
    pub officer: String,
    pub device: String,
    /// Checked on the device without the server, recorded later.
    pub offline: bool,
    /// The trust bundle's version (its issue time, Unix seconds); for checks on the
    /// server, when the server loaded its trust list.
    pub bundle_version: Option<i64>,
    pub result: CheckResult,
    /// Why, when not accepted (a reason code, see [`reason`]).
    pub reason: Option<String>,
    pub input_kind: InputKind,
    /// SHA-256 of the input as typed or scanned (binds the record to it without stating
    /// what an unauthentic input claims).
    pub input_sha256: String,
    /// Only when an authentic receipt was found: what it states.
    pub subject: Option<Subject>,
    /// Set when the repeat rule turned this check amber.
    pub repeated_of: Option<Presented>,
}

/// Why a check's values were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    #[error("{0}")]
    Invalid(String),
    #[error("the check record is not a Tamga check record: {0}")]
    NotARecord(String),
    #[error("signing the check record failed: {0}")]
    Sign(#[from] tamga_dsig::SignError),
}

/// Longest checkpoint, officer and device names.
pub const MAX_NAME: usize = 64;

/// A checkpoint, officer or device name: 1 to 64 characters, no control characters, no
/// leading or trailing space (they name metrics labels and audit fields).
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= MAX_NAME
        && !s.chars().any(char::is_control)
        && s.trim() == s
}

/// `chk-` + 32 lower-case hex digits.
pub fn valid_id(s: &str) -> bool {
    s.strip_prefix("chk-").is_some_and(|h| {
        h.len() == 32
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A check id from 16 random bytes.
pub fn new_id() -> Result<String, CheckError> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| CheckError::Invalid("no randomness".into()))?;
    Ok(format!("chk-{}", hex::encode(b)))
}

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b))
}

impl Check {
    /// Checks the fields a record and an audit event rely on.
    pub fn validate(&self) -> Result<(), CheckError> {
        let bad = |m: String| Err(CheckError::Invalid(m));
        if !valid_id(&self.id) {
            return bad(format!("{:?} is not a check id", self.id));
        }
        for (what, v) in [
            ("checkpoint", &self.checkpoint),
            ("officer", &self.officer),
            ("device", &self.device),
        ] {
            if !valid_name(v) {
                return bad(format!(
                    "the {what} must be 1 to {MAX_NAME} characters without control characters"
                ));
            }
        }
        if self.input_sha256.len() != 64 {
            return bad("the input digest is not a SHA-256".into());
        }
        if self.subject.is_none() && matches!(self.result, CheckResult::Accepted) {
            return bad("an accepted check names its declaration".into());
        }
        Ok(())
    }

    /// The digest that identifies the declaration across checks (what the repeat rule and
    /// the audit event's `digest` use): the document's when known, else the input's.
    pub fn key(&self) -> &str {
        self.subject
            .as_ref()
            .map_or(self.input_sha256.as_str(), |s| s.document_sha256.as_str())
    }

    /// The audit event's `detail`: the contract's fields (`checkpoint`, `officer`,
    /// `bundleVersion`, `result`, `offline`) and the rest of what was checked.
    pub fn detail_json(&self) -> String {
        serde_json::json!({
            "checkId": self.id,
            "checkpoint": self.checkpoint,
            "officer": self.officer,
            "device": self.device,
            "bundleVersion": self.bundle_version,
            "result": self.result.as_str(),
            "offline": self.offline,
            "input": self.input_kind.as_str(),
            "receiptId": self.subject.as_ref().map(|s| s.receipt_id.clone()),
            "lrn": self.subject.as_ref().and_then(|s| s.lrn.clone()),
            "repeatedOf": self.repeated_of,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_kinds() {
        assert!(valid_name("AZ-ALAT") && valid_name("Ələt post 2"));
        assert!(!valid_name("") && !valid_name(" x") && !valid_name("a\nb"));
        assert!(!valid_name(&"x".repeat(65)));
        let id = new_id().unwrap();
        assert!(valid_id(&id), "{id}");
        assert!(!valid_id("chk-ABCDEF00000000000000000000000000"));
        assert_eq!(InputKind::of("tmg1:XYZ"), InputKind::Qr);
        assert_eq!(InputKind::of("rcpt-0123"), InputKind::ReceiptId);
        assert_eq!(
            InputKind::of("0123456789abcdef0123456789abcdef"),
            InputKind::DeclarationId
        );
        assert_eq!(InputKind::of("KZ26TMG0000000001"), InputKind::Lrn);
        for r in CheckResult::ALL {
            assert_eq!(CheckResult::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            serde_json::to_string(&CheckResult::CouldNotCheck).unwrap(),
            "\"could_not_check\""
        );
    }
}
