//! Chain verification, independent of the backend: events are fed in (chain, seq) order.

use crate::{
    ChainHead, ChainProblem, ChainReport, ProblemKind, Store, StoreError, StoredEvent, GENESIS_HASH,
};

/// Checks events fed in (chain, seq) order and keeps the first problem.
///
/// For each event, in this order: its seq must follow its predecessor's
/// ([`ProblemKind::Removed`] otherwise), its `prev_hash` must be the predecessor's stored
/// hash ([`ProblemKind::Reordered`]), and its fields must hash to its stored hash
/// ([`ProblemKind::Altered`]).
#[derive(Debug, Default)]
pub struct ChainVerifier {
    report: ChainReport,
    current: Option<ChainHead>,
}

impl ChainVerifier {
    /// A verifier that has seen nothing.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event.
    pub fn push(&mut self, e: &StoredEvent) {
        self.report.events += 1;
        let (expected_seq, expected_prev) = match &self.current {
            Some(head) if head.chain == e.chain => (head.seq.saturating_add(1), head.hash.clone()),
            _ => {
                if let Some(head) = self.current.take() {
                    self.report.chains.push(head);
                }
                (1, GENESIS_HASH.to_owned())
            }
        };
        if self.report.problem.is_none() {
            self.report.problem = check(e, expected_seq, &expected_prev);
        }
        self.current = Some(ChainHead {
            chain: e.chain.clone(),
            seq: e.seq,
            hash: e.hash.clone(),
        });
    }

    /// The report over everything pushed.
    #[must_use]
    pub fn finish(mut self) -> ChainReport {
        if let Some(head) = self.current.take() {
            self.report.chains.push(head);
        }
        self.report
    }
}

fn check(e: &StoredEvent, expected_seq: i64, expected_prev: &str) -> Option<ChainProblem> {
    let problem = |seq, declaration_id: Option<&str>, kind, detail: String| ChainProblem {
        chain: e.chain.clone(),
        seq,
        declaration_id: declaration_id.map(str::to_owned),
        kind,
        detail,
    };
    if e.seq > expected_seq {
        let missing = if e.seq - expected_seq == 1 {
            format!("seq {expected_seq} is missing")
        } else {
            format!("seqs {expected_seq}..={} are missing", e.seq - 1)
        };
        return Some(problem(
            expected_seq,
            None,
            ProblemKind::Removed,
            format!(
                "chain {:?}: {missing}; the next event present is seq {} (declaration {:?})",
                e.chain, e.seq, e.event.declaration_id
            ),
        ));
    }
    if e.seq < expected_seq {
        return Some(problem(
            e.seq,
            Some(&e.event.declaration_id),
            ProblemKind::Reordered,
            format!(
                "chain {:?}: seq {} where seq {expected_seq} was expected",
                e.chain, e.seq
            ),
        ));
    }
    if e.prev_hash != expected_prev {
        return Some(problem(
            e.seq,
            Some(&e.event.declaration_id),
            ProblemKind::Reordered,
            format!(
                "chain {:?}: seq {} (declaration {:?}) does not link to seq {}: prev_hash {} \
                 but the previous event's hash is {expected_prev} (events moved, forked, or \
                 the previous one rewritten)",
                e.chain,
                e.seq,
                e.event.declaration_id,
                e.seq - 1,
                e.prev_hash
            ),
        ));
    }
    let expected_hash = e.expected_hash();
    if e.hash != expected_hash {
        return Some(problem(
            e.seq,
            Some(&e.event.declaration_id),
            ProblemKind::Altered,
            format!(
                "chain {:?}: seq {} (declaration {:?}, stage {:?}) was altered: its fields hash \
                 to {expected_hash}, the stored hash is {}",
                e.chain, e.seq, e.event.declaration_id, e.event.stage, e.hash
            ),
        ));
    }
    None
}

/// Reads every event through [`Store::events`], `page` events at a time, and verifies it
/// ([`Store::verify_chain`] uses pages of [`crate::VERIFY_PAGE`]).
pub async fn verify_store<S: Store + ?Sized>(
    store: &S,
    page: usize,
) -> Result<ChainReport, StoreError> {
    let page_size = page.max(1);
    let mut verifier = ChainVerifier::new();
    let mut after = None;
    loop {
        let page = store.events(after.take(), page_size).await?;
        for e in &page {
            verifier.push(e);
        }
        match page.last() {
            Some(last) if page.len() == page_size => after = Some((last.chain.clone(), last.seq)),
            _ => break,
        }
    }
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event_hash, AuditEvent};

    fn chain(name: &str, n: i64) -> Vec<StoredEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let event = AuditEvent {
                    at_ms: seq,
                    stage: "verified".into(),
                    worker: "w".into(),
                    declaration_id: format!("{name}-{seq}"),
                    origin: "KZ".into(),
                    destination: "AZ".into(),
                    outcome: "TOTAL_PASSED".into(),
                    sub_indication: None,
                    reason: None,
                    digest: "00".repeat(32),
                    detail: None,
                };
                let hash = event_hash(name, seq, &prev, &event);
                StoredEvent {
                    chain: name.into(),
                    seq,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                    event,
                }
            })
            .collect()
    }

    fn run(events: &[StoredEvent]) -> ChainReport {
        let mut v = ChainVerifier::new();
        events.iter().for_each(|e| v.push(e));
        v.finish()
    }

    #[test]
    fn intact_chains() {
        let mut all = chain("a", 3);
        all.extend(chain("b", 2));
        let r = run(&all);
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.events, 5);
        assert_eq!(r.chains.len(), 2);
        assert_eq!((r.chains[0].seq, r.chains[1].seq), (3, 2));
        assert_eq!(r.chains[1].hash, all[4].hash);
        assert_eq!(run(&[]), ChainReport::default());
    }

    #[test]
    fn names_the_first_problem() {
        let mut all = chain("a", 6);
        all[4].event.outcome = "TOTAL_FAILED".into();
        all.remove(2);
        let r = run(&all);
        let p = r
            .problem
            .as_ref()
            .map(|p| (p.kind, p.seq, p.declaration_id.clone()));
        assert_eq!(p, Some((ProblemKind::Removed, 3, None)));
        assert_eq!(r.chains[0].seq, 6);

        let mut all = chain("a", 6);
        all.swap(3, 4);
        let (s3, s4) = (all[3].seq, all[4].seq);
        all[3].seq = s4;
        all[4].seq = s3;
        let r = run(&all);
        let p = r.problem.map(|p| (p.kind, p.seq, p.declaration_id));
        assert_eq!(p, Some((ProblemKind::Reordered, 4, Some("a-5".into()))));

        let mut all = chain("a", 6);
        all[1].event.outcome = "TOTAL_FAILED".into();
        let p = run(&all).problem.map(|p| (p.kind, p.seq, p.declaration_id));
        assert_eq!(p, Some((ProblemKind::Altered, 2, Some("a-2".into()))));

        // rewritten together with its hash: the next event no longer links
        let mut all = chain("a", 6);
        all[1].event.outcome = "TOTAL_FAILED".into();
        all[1].hash = all[1].expected_hash();
        let p = run(&all).problem.map(|p| (p.kind, p.seq));
        assert_eq!(p, Some((ProblemKind::Reordered, 3)));

        // a chain that does not start at 1
        let all = chain("a", 3);
        let p = run(&all[1..]).problem.map(|p| (p.kind, p.seq));
        assert_eq!(p, Some((ProblemKind::Removed, 1)));
    }
}
