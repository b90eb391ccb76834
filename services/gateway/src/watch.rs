//! Which submissions the notifier follows, and when it sweeps the table for others.
//!
//! The notifier used to ask PostgreSQL every half second for every published submission
//! not yet settled: a scan whose cost grew with every submission ever made (and, with
//! stale statistics, hash joins over three whole tables). Now each process follows in
//! memory what it published itself, exactly and at no cost to the database, and sweeps the
//! table only to find what no live process follows:
//!
//! - at start, a **full sweep** (a process that stopped left its submissions unfollowed);
//! - every [`SWEEP_EVERY`], a sweep **from a floor**: the oldest submission the last sweep
//!   found unsettled, or [`SKEW`] before that sweep began if it found none older. What is
//!   older than the floor was settled, or not yet published, when the last sweep ran; a
//!   claim commits within its statement deadline, far less than [`SKEW`], and a retry that
//!   publishes an old claim later is followed by the process that publishes it;
//! - every [`FULL_EVERY`], a full sweep again: the one case the floor misses is a retry
//!   published by a process that died before its next pass, when no process restarts.
//!
//! Pure state: the caller does the I/O and passes the time in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tamga_store::Submission;

/// How often the table is swept from the floor.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often the table is swept whole.
pub const FULL_EVERY: Duration = Duration::from_secs(3600);
/// How far before a sweep the next one starts, at least.
pub const SKEW: Duration = Duration::from_secs(60);
/// At most this many submissions are looked at per pass (round robin): a backlog (the
/// workers stopped, thousands queued) costs each pass the same.
pub const PER_PASS: usize = 1000;

/// The statuses still to be recorded are those not in `recorded`.
#[derive(Debug, Clone)]
pub struct Followed {
    pub submission: Submission,
    /// The statuses this process has seen recorded for it (an insert of the others only:
    /// the insert itself ignores what another process recorded).
    pub recorded: Vec<&'static str>,
}

/// The statuses after which a submission changes no more.
pub const FINAL: [&str; 3] = ["rejected", "forwarded", "dead_lettered"];

#[derive(Debug, Default)]
pub struct Watch {
    followed: BTreeMap<(i64, String), Followed>,
    /// Where the next pass's round starts.
    next: Option<(i64, String)>,
    last_sweep: Option<Instant>,
    last_full: Option<Instant>,
    floor_ms: i64,
}

impl Watch {
    /// Follows `s` from now on (no-op if followed already).
    pub fn follow(&mut self, s: Submission) {
        self.followed
            .entry((s.created_at_ms, s.id.clone()))
            .or_insert(Followed {
                submission: s,
                recorded: Vec::new(),
            });
    }

    /// How many are followed.
    pub fn len(&self) -> usize {
        self.followed.len()
    }

    /// Whether none is followed.
    pub fn is_empty(&self) -> bool {
        self.followed.is_empty()
    }

    /// The floor of the sweep due at `now` (`i64::MIN`: the whole table), if one is.
    pub fn sweep_due(&self, now: Instant) -> Option<i64> {
        let elapsed = |t: Option<Instant>, every: Duration| {
            t.is_none_or(|t| now.saturating_duration_since(t) >= every)
        };
        if elapsed(self.last_full, FULL_EVERY) {
            Some(i64::MIN)
        } else if elapsed(self.last_sweep, SWEEP_EVERY) {
            Some(self.floor_ms)
        } else {
            None
        }
    }

    /// A sweep from `floor`, begun at `started` (`started_ms` on the wall clock), found
    /// `unsettled`: follows them and sets the next floor.
    pub fn swept(
        &mut self,
        started: Instant,
        started_ms: i64,
        floor: i64,
        unsettled: Vec<Submission>,
    ) {
        let skew = i64::try_from(SKEW.as_millis()).unwrap_or(i64::MAX);
        let oldest = unsettled.iter().map(|s| s.created_at_ms).min();
        self.floor_ms = oldest.map_or(started_ms.saturating_sub(skew), |o| {
            o.min(started_ms.saturating_sub(skew))
        });
        for s in unsettled {
            self.follow(s);
        }
        self.last_sweep = Some(started);
        if floor == i64::MIN {
            self.last_full = Some(started);
        }
    }

    /// The next `max` followed submissions, round robin from where the last pass stopped.
    pub fn batch(&mut self, max: usize) -> Vec<Followed> {
        let start = self.next.take();
        let mut out: Vec<Followed> = match &start {
            Some(k) => self
                .followed
                .range(k.clone()..)
                .take(max)
                .map(|(_, f)| f.clone())
                .collect(),
            None => Vec::new(),
        };
        if out.len() < max {
            // Wrap around to the oldest, up to where this round began.
            let wrap = self
                .followed
                .iter()
                .take_while(|(k, _)| start.as_ref().is_none_or(|s| *k < s))
                .take(max - out.len())
                .map(|(_, f)| f.clone());
            out.extend(wrap);
        }
        if let Some(last) = out.last() {
            let key = (last.submission.created_at_ms, last.submission.id.clone());
            self.next = self
                .followed
                .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                .next()
                .map(|(k, _)| k.clone());
        }
        out
    }

    /// After a pass recorded them: `passed` is every status `s` has reached; it is
    /// followed no more once one is final.
    pub fn passed(&mut self, s: &Submission, passed: Vec<&'static str>) {
        let key = (s.created_at_ms, s.id.clone());
        if passed.iter().any(|p| FINAL.contains(p)) {
            self.followed.remove(&key);
        } else if let Some(f) = self.followed.get_mut(&key) {
            f.recorded = passed;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sub(id: &str, at: i64) -> Submission {
        Submission {
            broker: "b".into(),
            idempotency_key: id.into(),
            id: id.into(),
            body_sha256: String::new(),
            origin: "KZ".into(),
            destination: "AZ".into(),
            lrn: None,
            created_at_ms: at,
        }
    }

    fn ids(v: &[Followed]) -> Vec<&str> {
        v.iter().map(|f| f.submission.id.as_str()).collect()
    }

    #[test]
    fn sweeps_full_first_then_from_the_floor() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        assert_eq!(w.sweep_due(t0), Some(i64::MIN));
        w.swept(
            t0,
            100_000,
            i64::MIN,
            vec![sub("x", 90_000), sub("y", 99_000)],
        );
        assert_eq!(w.len(), 2);
        assert_eq!(w.sweep_due(t0 + Duration::from_secs(1)), None);
        // A minute before the last sweep…
        assert_eq!(w.sweep_due(t0 + SWEEP_EVERY), Some(40_000));
        w.swept(t0 + SWEEP_EVERY, 160_000, 40_000, vec![sub("z", 20_000)]);
        // …or the oldest it found unsettled, if older.
        assert_eq!(w.sweep_due(t0 + 2 * SWEEP_EVERY), Some(20_000));
        w.swept(t0 + 2 * SWEEP_EVERY, 220_000, 20_000, vec![]);
        assert_eq!(w.sweep_due(t0 + 3 * SWEEP_EVERY), Some(160_000));
        assert_eq!(w.sweep_due(t0 + FULL_EVERY), Some(i64::MIN));
    }

    #[test]
    fn rounds_cover_everyone_and_settled_ones_leave() {
        let mut w = Watch::default();
        for (i, id) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            w.follow(sub(id, i as i64));
        }
        w.follow(sub("a", 0));
        assert_eq!(w.len(), 5);
        assert_eq!(ids(&w.batch(2)), ["a", "b"]);
        assert_eq!(ids(&w.batch(2)), ["c", "d"]);
        // From "e", wrapping to the oldest.
        assert_eq!(ids(&w.batch(2)), ["e", "a"]);
        w.passed(&sub("b", 1), vec!["received", "verified"]);
        w.passed(&sub("c", 2), vec!["received", "rejected"]);
        assert_eq!(w.len(), 4);
        let all = w.batch(10);
        assert_eq!(ids(&all), ["b", "d", "e", "a"]);
        assert_eq!(all[0].recorded, ["received", "verified"]);
        // A new one joins the round.
        w.follow(sub("f", 10));
        assert_eq!(ids(&w.batch(10)), ["b", "d", "e", "f", "a"]);
    }
}
