//! The offline check log: one JSON object per line, appended by `tamga receipt verify-qr
//! --log FILE` (and kept by the checkpoint page's offline verifier), recorded later by
//! `tamga checkpoint upload --config FILE LOG` as `checked` events marked offline.
//!
//! A line's check id is derived from its content ([`Entry::check_id`]), so uploading the
//! same log twice records each check once.

use serde::{Deserialize, Serialize};

use crate::{sha256_hex, valid_name, Check, CheckError, CheckResult, InputKind, Subject};

/// Longest log line read (a QR payload is at most ~6 000 characters).
pub const MAX_LINE: usize = 16 * 1024;
/// Most lines one upload reads.
pub const MAX_LINES: usize = 100_000;

/// One offline check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// Format version: 1.
    pub v: u32,
    /// When the officer checked: RFC 3339 (the device's clock).
    pub at: String,
    pub checkpoint: String,
    pub officer: String,
    pub device: String,
    /// What was scanned: the `TMG1:` payload.
    pub payload: String,
    /// What the device showed.
    pub result: CheckResult,
    /// The verifier's code (`authentic`, `bad_signature`, `unknown_authority`,
    /// `bundle_stale`, …; `tamga_qr::Checked::code`).
    pub code: String,
    /// The trust bundle the device used (its issue time), if any.
    #[serde(default)]
    pub bundle_version: Option<i64>,
}

impl Entry {
    /// The line as written (no trailing newline).
    pub fn to_line(&self) -> String {
        // Serialising a struct of strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads one line, refusing what a check cannot be recorded from.
    pub fn parse(line: &str) -> Result<Self, CheckError> {
        let bad = |m: String| CheckError::Invalid(m);
        if line.len() > MAX_LINE {
            return Err(bad("the line is too long".into()));
        }
        let e: Entry = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if e.v != 1 {
            return Err(bad(format!("unknown log version {}", e.v)));
        }
        for (what, v) in [
            ("checkpoint", &e.checkpoint),
            ("officer", &e.officer),
            ("device", &e.device),
        ] {
            if !valid_name(v) {
                return Err(bad(format!("the {what} {v:?} is not a valid name")));
            }
        }
        if e.code.is_empty() || e.code.len() > 64 || !e.code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("the code is not a code".into()));
        }
        if e.payload.trim().is_empty() {
            return Err(bad("no payload".into()));
        }
        e.at_ms()?;
        Ok(e)
    }

    /// `at` in milliseconds.
    pub fn at_ms(&self) -> Result<i64, CheckError> {
        let t = time::OffsetDateTime::parse(
            &self.at,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|_| CheckError::Invalid(format!("{:?} is not an RFC 3339 time", self.at)))?;
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| CheckError::Invalid("the time is out of range".into()))
    }

    /// `chk-` + the first 32 hex digits of the SHA-256 of [`Entry::to_line`]: the same
    /// check always gets the same id.
    pub fn check_id(&self) -> String {
        format!("chk-{}", &sha256_hex(self.to_line().as_bytes())[..32])
    }

    /// The check this line records. `subject`: what the payload states, when the device
    /// found it authentic (read by the caller with `tamga_qr::open`); `officer` overrides
    /// the line's (an upload through the API records the token's holder).
    pub fn to_check(
        &self,
        subject: Option<Subject>,
        officer: Option<&str>,
    ) -> Result<Check, CheckError> {
        let payload = self.payload.trim();
        let authentic = matches!(self.result, CheckResult::Accepted | CheckResult::Rejected);
        let c = Check {
            id: self.check_id(),
            at_ms: self.at_ms()?,
            checkpoint: self.checkpoint.clone(),
            officer: officer.unwrap_or(&self.officer).to_owned(),
            device: self.device.clone(),
            offline: true,
            bundle_version: self.bundle_version,
            result: self.result,
            reason: (self.result != CheckResult::Accepted).then(|| self.code.clone()),
            input_kind: InputKind::of(payload),
            input_sha256: sha256_hex(payload.as_bytes()),
            subject: subject.filter(|_| authentic),
            repeated_of: None,
        };
        c.validate()?;
        Ok(c)
    }
}

/// Reads a log: every non-empty line, in order, with its number (1-based) and what it
/// holds. At most [`MAX_LINES`] lines are read.
pub fn parse_log(text: &str) -> Vec<(usize, Result<Entry, CheckError>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .take(MAX_LINES)
        .map(|(i, l)| (i + 1, Entry::parse(l.trim())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            v: 1,
            at: "2026-12-05T10:00:00.250Z".into(),
            checkpoint: "AZ-ALAT".into(),
            officer: "officer-alat".into(),
            device: "handheld-3".into(),
            payload: "TMG1:ABC".into(),
            result: CheckResult::Accepted,
            code: "authentic".into(),
            bundle_version: Some(1_780_000_000),
        }
    }

    #[test]
    fn lines_round_trip_with_stable_ids() {
        let e = entry();
        let line = e.to_line();
        let back = Entry::parse(&line).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.check_id(), e.check_id());
        assert!(crate::valid_id(&e.check_id()));
        let mut other = e.clone();
        other.at = "2026-12-05T10:00:01Z".into();
        assert_ne!(other.check_id(), e.check_id());
        assert_eq!(e.at_ms().unwrap(), 1_796_464_800_250);
        let subject = Subject {
            receipt_id: "rcpt-1".into(),
            document_sha256: "ab".repeat(32),
            lrn: None,
            origin: "KZ".into(),
            destination: "AZ".into(),
            declaration_id: None,
        };
        let c = e.to_check(Some(subject.clone()), None).unwrap();
        assert!(c.offline && c.reason.is_none() && c.subject.is_some());
        let mut red = e.clone();
        red.result = CheckResult::NotAuthentic;
        red.code = "bad_signature".into();
        let c = red.to_check(Some(subject), Some("uploader")).unwrap();
        assert!(
            c.subject.is_none(),
            "an unauthentic payload's claims are not recorded"
        );
        assert_eq!(c.reason.as_deref(), Some("bad_signature"));
        assert_eq!(c.officer, "uploader");
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        let good = entry().to_line();
        let text = format!(
            "{good}\n\nnot json\n{}\n{}\n",
            good.replace("\"v\":1", "\"v\":2"),
            good.replace("AZ-ALAT", "")
        );
        let parsed = parse_log(&text);
        assert_eq!(parsed.len(), 4);
        assert!(parsed[0].1.is_ok());
        assert_eq!(parsed[1].0, 3);
        assert!(parsed[1..].iter().all(|(_, r)| r.is_err()));
        assert!(Entry::parse(&good.replace("authentic", "x y")).is_err());
        assert!(Entry::parse(&good.replace("\"v\":1", "\"v\":1,\"extra\":0")).is_err());
    }
}
