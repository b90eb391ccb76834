//! The repeated-scan rule: a printed receipt's QR can be photocopied onto another truck.
//! When the same declaration was already presented at another checkpoint, or after it was
//! recorded as having left (an accepted scan at an exit checkpoint), a new scan is amber
//! "already presented at POST at TIME" — never green. Which repeats count is the site's
//! choice (`[gateway.checks]`).

use serde::Deserialize;

use crate::{CheckResult, Presented};

/// Which second scans turn amber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RepeatMode {
    /// A scan at another checkpoint than an earlier presentation (the same post scanning
    /// again is the officer's second look), or any scan after it left.
    #[default]
    OtherCheckpoint,
    /// Also the same checkpoint, once the grace time after the earlier scan has passed.
    Any,
    /// Never (a site whose trucks pass several posts with one receipt).
    Off,
}

/// The site's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatRule {
    pub mode: RepeatMode,
    /// In [`RepeatMode::Any`]: a scan at the same checkpoint within this time of the
    /// earlier one is not a repeat.
    pub grace_ms: i64,
    /// Checkpoints where an accepted scan records the declaration as having left.
    pub exit_checkpoints: Vec<String>,
}

impl Default for RepeatRule {
    fn default() -> Self {
        Self {
            mode: RepeatMode::OtherCheckpoint,
            grace_ms: 30 * 60 * 1000,
            exit_checkpoints: Vec::new(),
        }
    }
}

/// An earlier check of the same declaration, as its audit event tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prior {
    pub check_id: String,
    pub checkpoint: String,
    pub at_ms: i64,
    pub result: CheckResult,
    /// The earlier check was itself amber for a repeat (the paper was presented then too).
    pub repeated: bool,
}

impl Prior {
    /// Whether this check presented the declaration (an authentic receipt of an accepted
    /// declaration was shown): red and other amber scans did not.
    fn presented(&self) -> bool {
        self.result == CheckResult::Accepted || self.repeated
    }
}

impl RepeatRule {
    /// The earlier presentation that makes a scan at `checkpoint` at `at_ms` a repeat, if
    /// any: a departure first (it is the strongest sign of a copy), else the earliest
    /// presentation that counts.
    pub fn repeated_of(&self, prior: &[Prior], checkpoint: &str, at_ms: i64) -> Option<Presented> {
        if self.mode == RepeatMode::Off {
            return None;
        }
        let mut presented: Vec<&Prior> = prior
            .iter()
            .filter(|p| p.presented() && p.at_ms <= at_ms)
            .collect();
        presented.sort_by(|a, b| (a.at_ms, &a.check_id).cmp(&(b.at_ms, &b.check_id)));
        let left = presented.iter().find(|p| {
            p.result == CheckResult::Accepted
                && self.exit_checkpoints.iter().any(|e| e == &p.checkpoint)
                && !(p.checkpoint == checkpoint && at_ms - p.at_ms < self.grace_ms)
        });
        let counts = |p: &&&Prior| {
            p.checkpoint != checkpoint
                || (self.mode == RepeatMode::Any && at_ms - p.at_ms >= self.grace_ms)
        };
        left.or_else(|| presented.iter().find(counts))
            .map(|p| Presented {
                check_id: p.check_id.clone(),
                checkpoint: p.checkpoint.clone(),
                at_ms: p.at_ms,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn p(id: &str, cp: &str, at_min: i64, result: CheckResult) -> Prior {
        Prior {
            check_id: id.into(),
            checkpoint: cp.into(),
            at_ms: at_min * MIN,
            result,
            repeated: false,
        }
    }

    #[test]
    fn other_checkpoint_by_default() {
        let r = RepeatRule::default();
        let prior = [
            p("a", "ALAT", 0, CheckResult::Accepted),
            p("b", "ASTARA", 5, CheckResult::NotAuthentic),
        ];
        // The same post scanning again: fine, even hours later.
        assert_eq!(r.repeated_of(&prior, "ALAT", 300 * MIN), None);
        // Another post: amber, citing the first presentation.
        let hit = r.repeated_of(&prior, "ASTARA", 10 * MIN).unwrap();
        assert_eq!(
            (hit.check_id.as_str(), hit.checkpoint.as_str()),
            ("a", "ALAT")
        );
        // A red scan elsewhere is not a presentation.
        let only_red = [p("b", "ASTARA", 5, CheckResult::NotAuthentic)];
        assert_eq!(r.repeated_of(&only_red, "ALAT", 10 * MIN), None);
        assert_eq!(r.repeated_of(&[], "ALAT", 0), None);
    }

    #[test]
    fn any_mode_grace_and_departures() {
        let mut r = RepeatRule {
            mode: RepeatMode::Any,
            grace_ms: 30 * MIN,
            exit_checkpoints: vec!["EXIT".into()],
        };
        let prior = [p("a", "ALAT", 0, CheckResult::Accepted)];
        assert_eq!(r.repeated_of(&prior, "ALAT", 29 * MIN), None);
        assert!(r.repeated_of(&prior, "ALAT", 30 * MIN).is_some());
        // Recorded as having left: any later scan, the exit included once the grace passed.
        r.mode = RepeatMode::OtherCheckpoint;
        let left = [p("x", "EXIT", 10, CheckResult::Accepted)];
        assert_eq!(r.repeated_of(&left, "EXIT", 12 * MIN), None);
        assert_eq!(
            r.repeated_of(&left, "EXIT", 90 * MIN).unwrap().check_id,
            "x"
        );
        assert_eq!(
            r.repeated_of(&left, "ALAT", 20 * MIN).unwrap().check_id,
            "x"
        );
        // A departure is cited before an earlier presentation elsewhere.
        let both = [
            p("a", "ALAT", 0, CheckResult::Accepted),
            p("x", "EXIT", 10, CheckResult::Accepted),
        ];
        assert_eq!(
            r.repeated_of(&both, "ASTARA", 20 * MIN).unwrap().check_id,
            "x"
        );
        // A repeat is itself a presentation.
        let mut rep = p("r", "OTHER", 3, CheckResult::CouldNotCheck);
        rep.repeated = true;
        assert_eq!(
            r.repeated_of(&[rep], "ALAT", 5 * MIN).unwrap().check_id,
            "r"
        );
        r.mode = RepeatMode::Off;
        assert_eq!(r.repeated_of(&left, "ELSEWHERE", 100 * MIN), None);
    }
}
