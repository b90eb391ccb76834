//! Everything the pipeline reports, as one type (vector's internal events):
//! each [`Event`] knows its audit record, its metrics and its log line, so
//! the three cannot drift apart and a newcomer finds them in one place.
//!
//! Why the audit record is not written by [`Event::emit`] itself: an audit
//! event must commit in the *same transaction* as the effect it describes (a
//! decision row and its `verified`/`countersigned` events land together or
//! not at all). So the worker asks each event for its record
//! ([`Event::audit`]), hands the records to the store call that commits the
//! effect, and calls [`Event::emit`] once that commit succeeded — counting
//! and logging only what is durably true. Events without a record
//! (suppressed redeliveries, failures, reconnects) just `emit`.

use tamga_store::{stage as audit_stage, AuditEvent};

use crate::engine::{Decided, Verified};
use crate::failure::Failure;
use crate::metrics::Metrics;
use crate::worker::Stage;

/// One thing that happened to a declaration or a stage.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A declaration arrived (its bytes' digest and route are known).
    Received {
        id: &'a str,
        origin: &'a str,
        destination: &'a str,
        digest: &'a str,
        at_ms: i64,
    },
    /// Verification concluded (passed or rejected).
    Verified(&'a Verified),
    /// The authority decided: counter-signed (accepted) or a rejection
    /// receipt issued.
    Decided(&'a Decided),
    /// The decision was published (confirmed) to the destination or back to
    /// the broker. `first`: this is the first forwarding recorded (not a
    /// redelivery's re-emission).
    Forwarded { decided: &'a Decided, first: bool },
    /// A poison message (or one that panicked at every delivery) moved to
    /// the stage's dead-letter queue.
    DeadLettered {
        stage: Stage,
        id: &'a str,
        digest: &'a str,
        why: &'a str,
    },
    /// A redelivery or duplicate answered from the stored result: no new
    /// effect.
    Suppressed { stage: &'static str },
    /// Handling a delivery failed (see `failure.rs` for what happens next).
    Failed { stage: Stage, failure: &'a Failure },
    /// A stage consumes again after its consumer ended (broker restart).
    ConsumingAgain { stage: Stage },
    /// A publish the broker confirmed (`true`) or did not (`false`).
    Published { exchange: &'a str, confirmed: bool },
    /// A checkpoint officer checked a receipt (on the page, through the API, or offline
    /// and uploaded later): the `checked` audit event (contract: `checkpoint`, `officer`,
    /// `bundleVersion`, `result`, `offline` in its detail).
    Checked(&'a tamga_check::Check),
}

/// Which declaration a record is about.
struct About<'a> {
    id: &'a str,
    origin: &'a str,
    destination: &'a str,
    digest: &'a str,
}

fn record(worker: &str, at_ms: i64, stage: &str, outcome: &str, about: About<'_>) -> AuditEvent {
    let About {
        id,
        origin,
        destination,
        digest,
    } = about;
    AuditEvent {
        at_ms,
        stage: stage.into(),
        worker: worker.into(),
        declaration_id: id.into(),
        origin: origin.into(),
        destination: destination.into(),
        outcome: outcome.into(),
        sub_indication: None,
        reason: None,
        digest: digest.into(),
        detail: None,
    }
}

impl Event<'_> {
    /// The audit record this event commits with its effect, if it has one.
    /// `now_ms` is the time of the record (times are passed in).
    pub fn audit(&self, worker: &str, now_ms: i64) -> Option<AuditEvent> {
        match *self {
            Event::Received {
                id,
                origin,
                destination,
                digest,
                at_ms,
            } => Some(record(
                worker,
                at_ms,
                audit_stage::RECEIVED,
                "received",
                About {
                    id,
                    origin,
                    destination,
                    digest,
                },
            )),
            Event::Verified(v) => {
                let mut e = record(
                    worker,
                    now_ms,
                    if v.passed() {
                        audit_stage::VERIFIED
                    } else {
                        audit_stage::REJECTED
                    },
                    verify_outcome(v),
                    About {
                        id: &v.id,
                        origin: &v.origin,
                        destination: &v.destination,
                        digest: &v.document_sha256,
                    },
                );
                e.sub_indication = v.sub_indication().map(str::to_string);
                e.reason = v.reason().map(str::to_string);
                Some(e)
            }
            Event::Decided(d) => {
                let mut e = record(
                    worker,
                    now_ms,
                    if d.accepted() {
                        audit_stage::COUNTERSIGNED
                    } else {
                        audit_stage::RECEIPT_ISSUED
                    },
                    d.decision.as_str(),
                    About {
                        id: &d.id,
                        origin: &d.origin,
                        destination: &d.destination,
                        digest: &d.document_sha256,
                    },
                );
                e.sub_indication = d.sub_indication.clone();
                e.reason = d.reason.clone();
                Some(e)
            }
            Event::Forwarded { decided: d, .. } => Some(record(
                worker,
                now_ms,
                audit_stage::FORWARDED,
                d.decision.as_str(),
                About {
                    id: &d.id,
                    origin: &d.origin,
                    destination: &d.destination,
                    digest: &d.document_sha256,
                },
            )),
            Event::DeadLettered {
                stage,
                id,
                digest,
                why,
            } => {
                let mut e = record(
                    worker,
                    now_ms,
                    audit_stage::DEAD_LETTERED,
                    "dead_lettered",
                    About {
                        id,
                        origin: "",
                        destination: "",
                        digest,
                    },
                );
                e.detail = Some(format!("{}: {why}", stage.queue()));
                Some(e)
            }
            Event::Checked(c) => {
                let (origin, destination, id) = match &c.subject {
                    Some(s) => (
                        s.origin.as_str(),
                        s.destination.as_str(),
                        s.declaration_id.as_deref().unwrap_or(&s.document_sha256),
                    ),
                    None => ("", "", c.input_sha256.as_str()),
                };
                // The check's own time: an offline check happened before its upload.
                let mut e = record(
                    worker,
                    c.at_ms,
                    tamga_check::STAGE,
                    c.result.as_str(),
                    About {
                        id,
                        origin,
                        destination,
                        digest: c.key(),
                    },
                );
                e.reason = c.reason.clone();
                e.detail = Some(c.detail_json());
                Some(e)
            }
            Event::Suppressed { .. }
            | Event::Failed { .. }
            | Event::ConsumingAgain { .. }
            | Event::Published { .. } => None,
        }
    }

    /// Counts and logs the event. For events with an audit record: call it
    /// only after the record committed.
    pub fn emit(&self, m: &Metrics) {
        match *self {
            Event::Received { id, digest, .. } => {
                tracing::debug!(id, digest, "received");
            }
            Event::Verified(v) => {
                let outcome = verify_outcome(v);
                m.declarations.with_label_values(&["verify", outcome]).inc();
                if !v.passed() {
                    m.rejections
                        .with_label_values(&[v.sub_indication().unwrap_or("NONE"), &v.origin])
                        .inc();
                }
                tracing::debug!(id = v.id, outcome, reason = v.reason(), "verified");
            }
            Event::Decided(d) => {
                m.declarations
                    .with_label_values(&["countersign", d.decision.as_str()])
                    .inc();
                tracing::debug!(id = d.id, decision = d.decision.as_str(), "decided");
            }
            Event::Forwarded { decided: d, first } => {
                if first {
                    m.declarations
                        .with_label_values(&["forward", d.decision.as_str()])
                        .inc();
                    let secs = (crate::worker::now_ms() - d.received_at_ms).max(0) as f64 / 1000.0;
                    m.end_to_end_seconds
                        .with_label_values(&[d.decision.as_str()])
                        .observe(secs);
                    tracing::debug!(id = d.id, decision = d.decision.as_str(), "forwarded");
                } else {
                    m.redeliveries_suppressed
                        .with_label_values(&["forward"])
                        .inc();
                }
            }
            Event::DeadLettered { stage, id, why, .. } => {
                m.dead_lettered.with_label_values(&[stage.name()]).inc();
                tracing::error!(
                    stage = stage.name(),
                    id,
                    why,
                    "poison message dead-lettered"
                );
            }
            Event::Suppressed { stage } => {
                m.redeliveries_suppressed.with_label_values(&[stage]).inc();
            }
            Event::Failed { stage, failure } => {
                let source = failure.source().as_str();
                m.failures
                    .with_label_values(&[stage.name(), failure.class(), source])
                    .inc();
                match failure {
                    Failure::Transient { why, .. } => {
                        m.transient_errors
                            .with_label_values(&[stage.name(), source])
                            .inc();
                        tracing::warn!(
                            stage = stage.name(),
                            source,
                            why,
                            "transient failure; backing off (a delivery in hand is held, not requeued)"
                        );
                    }
                    Failure::Fatal { why, .. } => tracing::error!(
                        stage = stage.name(),
                        source,
                        why,
                        "fatal error: stopping the site (a delivery in hand goes back to the broker)"
                    ),
                    Failure::Poison(p) => {
                        tracing::warn!(stage = stage.name(), why = p.0, "poison message")
                    }
                    Failure::Panicked(why) => {
                        tracing::error!(stage = stage.name(), why, "processing panicked")
                    }
                }
            }
            Event::ConsumingAgain { stage } => {
                m.reconnects.inc();
                tracing::info!(stage = stage.name(), "consuming again");
            }
            Event::Checked(c) => {
                m.checks
                    .with_label_values(&[
                        c.result.as_str(),
                        if c.offline { "true" } else { "false" },
                    ])
                    .inc();
                if let Some(p) = &c.repeated_of {
                    m.repeated_scans.with_label_values(&[&c.checkpoint]).inc();
                    tracing::warn!(
                        check = c.id,
                        checkpoint = c.checkpoint,
                        first_checkpoint = p.checkpoint,
                        first_at_ms = p.at_ms,
                        "declaration already presented: possibly a copy"
                    );
                }
                tracing::info!(
                    check = c.id,
                    checkpoint = c.checkpoint,
                    officer = c.officer,
                    result = c.result.as_str(),
                    offline = c.offline,
                    "checked"
                );
            }
            Event::Published {
                exchange,
                confirmed,
            } => {
                m.publish_confirms
                    .with_label_values(&[if confirmed { "ack" } else { "unconfirmed" }])
                    .inc();
                if !confirmed {
                    tracing::warn!(exchange, "publish not confirmed; publishing again");
                }
            }
        }
    }
}

fn verify_outcome(v: &Verified) -> &'static str {
    if v.passed() {
        "passed"
    } else {
        "rejected"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_by_class_and_source() {
        let m = Metrics::new();
        let f = Failure::Transient {
            at: crate::failure::Source::Store,
            why: "down".into(),
        };
        Event::Failed {
            stage: Stage::Fused,
            failure: &f,
        }
        .emit(&m);
        Event::ConsumingAgain {
            stage: Stage::Fused,
        }
        .emit(&m);
        let text = m.render();
        assert!(text.contains(
            "tamga_failures_total{class=\"transient\",source=\"store\",stage=\"fused\"} 1"
        ));
        assert!(text.contains("tamga_transient_errors_total{kind=\"store\",stage=\"fused\"} 1"));
        assert!(text.contains("tamga_bus_reconnects_total 1"));
    }

    #[test]
    fn a_check_is_a_checked_event_with_the_contract_fields() {
        let check = tamga_check::Check {
            id: "chk-0123456789abcdef0123456789abcdef".into(),
            at_ms: 1_000,
            checkpoint: "AZ-ASTARA".into(),
            officer: "officer-2".into(),
            device: "handheld-1".into(),
            offline: true,
            bundle_version: Some(77),
            result: tamga_check::CheckResult::CouldNotCheck,
            reason: Some("already_presented".into()),
            input_kind: tamga_check::InputKind::Qr,
            input_sha256: "cd".repeat(32),
            subject: Some(tamga_check::Subject {
                receipt_id: "rcpt-1".into(),
                document_sha256: "ab".repeat(32),
                lrn: Some("LRN-1".into()),
                origin: "KZ".into(),
                destination: "AZ".into(),
                declaration_id: Some("decl-1".into()),
            }),
            repeated_of: Some(tamga_check::Presented {
                check_id: "chk-ffffffffffffffffffffffffffffffff".into(),
                checkpoint: "AZ-ALAT".into(),
                at_ms: 500,
            }),
        };
        // The check's own time, not the upload's.
        let e = Event::Checked(&check).audit("gw/checks", 9_999).unwrap();
        assert_eq!(
            (e.stage.as_str(), e.at_ms, e.outcome.as_str()),
            ("checked", 1_000, "could_not_check")
        );
        assert_eq!(e.declaration_id, "decl-1");
        assert_eq!(e.digest, "ab".repeat(32));
        assert_eq!(e.reason.as_deref(), Some("already_presented"));
        let d: serde_json::Value = serde_json::from_str(e.detail.as_deref().unwrap()).unwrap();
        assert_eq!(d["checkpoint"], "AZ-ASTARA");
        assert_eq!(d["officer"], "officer-2");
        assert_eq!(d["bundleVersion"], 77);
        assert_eq!(d["result"], "could_not_check");
        assert_eq!(d["offline"], true);
        assert_eq!(d["repeatedOf"]["checkpoint"], "AZ-ALAT");
        let m = Metrics::new();
        Event::Checked(&check).emit(&m);
        let text = m.render();
        assert!(text.contains("tamga_checks_total{offline=\"true\",result=\"could_not_check\"} 1"));
        assert!(text.contains("tamga_repeated_scans_total{checkpoint=\"AZ-ASTARA\"} 1"));
    }

    #[test]
    fn only_effects_have_audit_records() {
        let f = Failure::Panicked("x".into());
        for e in [
            Event::Suppressed { stage: "fused" },
            Event::Failed {
                stage: Stage::Fused,
                failure: &f,
            },
            Event::ConsumingAgain {
                stage: Stage::Verify,
            },
        ] {
            assert!(e.audit("w", 0).is_none());
        }
        let e = Event::DeadLettered {
            stage: Stage::Verify,
            id: "id",
            digest: "d",
            why: "bad route",
        }
        .audit("w", 7)
        .unwrap();
        assert_eq!(e.stage, "dead_lettered");
        assert_eq!(e.detail.as_deref(), Some("tamga.verify: bad route"));
        assert_eq!(e.at_ms, 7);
    }
}
