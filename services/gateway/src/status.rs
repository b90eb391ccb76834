//! A declaration's status, from its audit events (pure).
//!
//! `received → verified | rejected → countersigned → forwarded`, or `dead_lettered`. A
//! rejected declaration stays `rejected` (its signed rejection receipt is still forwarded
//! back, which shows in `history`).

use tamga_store::AuditEvent;

/// The statuses of the contract.
pub const STATUSES: [&str; 6] = [
    "received",
    "verified",
    "rejected",
    "countersigned",
    "forwarded",
    "dead_lettered",
];

/// What the events say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// One of [`STATUSES`].
    pub status: &'static str,
    /// `(stage, at_ms)`, oldest first, each stage once.
    pub history: Vec<(String, i64)>,
    /// From the rejection event.
    pub sub_indication: Option<String>,
    /// From the rejection event.
    pub reason: Option<String>,
}

/// Where a stage comes in a declaration's life (unknown stages last).
fn step_rank(stage: &str) -> usize {
    [
        tamga_store::SUBMITTED,
        "received",
        "verified",
        "rejected",
        "countersigned",
        "receipt_issued",
        "forwarded",
        "dead_lettered",
    ]
    .iter()
    .position(|s| *s == stage)
    .unwrap_or(usize::MAX)
}

/// The status `events` (of one declaration, any order) add up to.
pub fn derive(events: &[AuditEvent]) -> Derived {
    // Steps of one hop can share a millisecond (the fused stage verifies, decides and
    // forwards in well under one on the embedded default): within a millisecond, the
    // pipeline's order decides.
    let mut sorted: Vec<&AuditEvent> = events.iter().collect();
    sorted.sort_by_key(|e| (e.at_ms, step_rank(&e.stage)));
    let mut history: Vec<(String, i64)> = Vec::new();
    let has = |stage: &str| events.iter().any(|e| e.stage == stage);
    // A checkpoint's check is the border's business, not a step of the broker's
    // declaration (it is in the audit trail, and on the pages).
    sorted.retain(|e| e.stage != tamga_check::STAGE);
    for e in &sorted {
        // The gateway's `submitted` and the pipeline's `received` are one step for a broker.
        let step = if e.stage == tamga_store::SUBMITTED {
            "received"
        } else {
            e.stage.as_str()
        };
        if !history.iter().any(|(s, _)| s == step) {
            history.push((step.to_owned(), e.at_ms));
        }
    }
    let rejected = events.iter().find(|e| e.stage == "rejected");
    let status = if rejected.is_some() {
        "rejected"
    } else if has("forwarded") {
        "forwarded"
    } else if has("countersigned") {
        "countersigned"
    } else if has("dead_lettered") {
        "dead_lettered"
    } else if has("verified") {
        "verified"
    } else {
        "received"
    };
    Derived {
        status,
        history,
        sub_indication: rejected.and_then(|e| e.sub_indication.clone()),
        reason: rejected.and_then(|e| e.reason.clone()),
    }
}

/// True when the pipeline wrote anything about this declaration (not only the gateway).
pub fn pipeline_saw(events: &[AuditEvent]) -> bool {
    events
        .iter()
        .any(|e| e.stage != tamga_store::SUBMITTED && e.stage != tamga_check::STAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(stage: &str, at: i64) -> AuditEvent {
        AuditEvent {
            at_ms: at,
            stage: stage.into(),
            worker: "w".into(),
            declaration_id: "d".into(),
            origin: "KZ".into(),
            destination: "AZ".into(),
            outcome: "x".into(),
            sub_indication: (stage == "rejected").then(|| "HASH_FAILURE".into()),
            reason: (stage == "rejected").then(|| "digest_mismatch".into()),
            digest: "00".into(),
            detail: None,
        }
    }

    #[test]
    fn the_steps() {
        assert_eq!(derive(&[ev("submitted", 1)]).status, "received");
        let accepted = [
            ev("forwarded", 5),
            ev("submitted", 1),
            ev("received", 2),
            ev("verified", 3),
            ev("countersigned", 4),
        ];
        let d = derive(&accepted);
        assert_eq!(d.status, "forwarded");
        assert_eq!(
            d.history.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            ["received", "verified", "countersigned", "forwarded"]
        );
        assert_eq!(d.history[0].1, 1);
        assert_eq!(derive(&accepted[1..4]).status, "verified");
        // One hop within one millisecond: the pipeline's order, whatever the rows' order.
        let same_ms = [
            ev("forwarded", 7),
            ev("countersigned", 7),
            ev("received", 7),
            ev("verified", 7),
        ];
        assert_eq!(
            derive(&same_ms)
                .history
                .iter()
                .map(|h| h.0.as_str())
                .collect::<Vec<_>>(),
            ["received", "verified", "countersigned", "forwarded"]
        );
        let rejected = [
            ev("submitted", 1),
            ev("rejected", 3),
            ev("receipt_issued", 3),
            ev("forwarded", 4),
        ];
        let d = derive(&rejected);
        assert_eq!(d.status, "rejected");
        assert_eq!(d.reason.as_deref(), Some("digest_mismatch"));
        assert_eq!(d.sub_indication.as_deref(), Some("HASH_FAILURE"));
        assert_eq!(
            derive(&[ev("submitted", 1), ev("dead_lettered", 2)]).status,
            "dead_lettered"
        );
        assert!(!pipeline_saw(&[ev("submitted", 1)]));
        // Checks at the border are not the broker's steps.
        let checked = [
            ev("submitted", 1),
            ev("received", 2),
            ev("verified", 3),
            ev("countersigned", 4),
            ev("forwarded", 5),
            ev("checked", 6),
        ];
        let d = derive(&checked);
        assert_eq!(d.status, "forwarded");
        assert!(d.history.iter().all(|h| h.0 != "checked"));
        assert!(!pipeline_saw(&[ev("submitted", 1), ev("checked", 2)]));
        for s in STATUSES {
            assert!(!s.is_empty());
        }
    }
}
