//! The checker, in the manner of Jepsen's total-queue model: the manifest is
//! what was enqueued (id → expected outcome), the collector's log is what
//! came out (every delivery of every outbound, rejected and dead-letter
//! queue, riding through broker restarts), and the database holds the
//! decisions and the audit trail. From them:
//!
//! * **lost** — a declaration (distinct bytes) with no result anywhere;
//! * **duplicated effect** — one declaration with two different
//!   countersigned documents or receipts (compared by SHA-256), with results
//!   under two message ids, with a delivered result that differs from the
//!   recorded decision, or with two decision events in the audit trail. A
//!   redelivery of the *same* bytes is not an effect and is only counted;
//! * **unexpected** — a result (or a decision) for no declaration sent;
//! * **wrong side** — accepted where it had to be rejected, or the reverse
//!   (or dead-lettered); **misrouted** — the right side on another queue;
//!   **wrong reason** — rejected with another reason code;
//! * `tamga audit verify` on the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tamga_bus::{AmqpBus, Bus, HeaderValue};
use tamga_pipeline::headers;

use crate::corpus::{Entry, Expect};

fn sha(b: &[u8]) -> String {
    tamga_pipeline::engine::sha256_hex(b)
}

/// One delivery the collector received.
#[derive(Debug, Clone)]
pub struct Out {
    pub queue: String,
    /// The declaration id (without the `tamga:` prefix of results).
    pub id: String,
    pub decision: Option<String>,
    pub reason: Option<String>,
    /// SHA-256 of the body (the countersigned document, or the rejection receipt).
    pub body: String,
    /// SHA-256 of the signed receipt header.
    pub receipt: Option<String>,
    pub at: Instant,
}

impl Out {
    /// The side its queue says, unless its `tamga-decision` header says
    /// otherwise.
    fn side(&self) -> &'static str {
        let by_queue = if self.queue.ends_with(".dlq") {
            return "dead-lettered";
        } else if self.queue.starts_with("tamga.outbound.") {
            "accepted"
        } else {
            "rejected"
        };
        match self.decision.as_deref() {
            Some(d) if d == by_queue => by_queue,
            _ => "decision header disagrees with the queue",
        }
    }
}

/// Consumes every result queue of the site into a log.
pub struct Collector {
    pub log: Arc<Mutex<Vec<Out>>>,
    pub reconsumes: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Collector")
    }
}

impl Collector {
    pub fn start(bus: Arc<AmqpBus>, queues: Vec<String>) -> Self {
        let log: Arc<Mutex<Vec<Out>>> = Arc::default();
        let reconsumes = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for q in queues {
            let (bus, log, reconsumes) = (bus.clone(), log.clone(), reconsumes.clone());
            tasks.push(tokio::spawn(async move {
                let mut first = true;
                loop {
                    // Declared by the first worker; re-consumed after a broker restart.
                    if let Ok(mut c) = bus.consume(&q, 256, "soak-collector").await {
                        if !first {
                            reconsumes.fetch_add(1, Ordering::Relaxed);
                        }
                        first = false;
                        while let Some(Ok(d)) = c.next().await {
                            let m = &d.message;
                            let header = |k: &str| match m.headers.get(k) {
                                Some(HeaderValue::Str(s)) => Some(s.clone()),
                                _ => None,
                            };
                            let id = m.message_id.clone().unwrap_or_default();
                            let out = Out {
                                queue: q.clone(),
                                id: id.strip_prefix("tamga:").unwrap_or(&id).to_string(),
                                decision: header(headers::DECISION),
                                reason: header(headers::REASON),
                                body: sha(&m.body),
                                receipt: header(headers::RECEIPT).map(|r| sha(r.as_bytes())),
                                at: Instant::now(),
                            };
                            log.lock().unwrap().push(out);
                            // Recorded before the ack: a lost ack is a redelivery, counted.
                            let _ = d.ack().await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }));
        }
        Collector {
            log,
            reconsumes,
            tasks,
        }
    }

    /// Distinct ids seen so far.
    pub fn ids(&self) -> BTreeSet<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|o| o.id.clone())
            .collect()
    }

    pub fn snapshot(&self) -> Vec<Out> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Declarations (distinct bytes) that have at least one result.
pub fn resolved(entries: &[Entry], seen: &BTreeSet<String>) -> usize {
    let mut groups: HashMap<&str, bool> = HashMap::new();
    for e in entries {
        let g = groups.entry(&e.group).or_insert(false);
        *g |= seen.contains(&e.id);
    }
    groups.values().filter(|v| **v).count()
}

pub fn declarations(entries: &[Entry]) -> usize {
    entries
        .iter()
        .map(|e| e.group.as_str())
        .collect::<BTreeSet<_>>()
        .len()
}

/// A decision as the database recorded it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub accepted: bool,
    pub countersigned: Option<String>,
    pub receipt: String,
}

/// What the database says: decisions by id, decision events per id.
#[derive(Debug, Default)]
pub struct Database {
    pub decisions: HashMap<String, Recorded>,
    /// `countersigned` + `receipt_issued` audit events per declaration id.
    pub decision_events: HashMap<String, u64>,
    pub dead_lettered_events: HashMap<String, u64>,
    pub audit_counts: BTreeMap<String, u64>,
}

pub async fn read_database(url: &str) -> Database {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the soak's PostgreSQL");
    tokio::spawn(conn);
    let mut db = Database::default();
    for row in client
        .query(
            "SELECT declaration_id, result FROM stage_results WHERE stage = 'decide'",
            &[],
        )
        .await
        .unwrap()
    {
        let id: String = row.get(0);
        let bytes: Vec<u8> = row.get(1);
        let d = tamga_pipeline::Decided::decode(&bytes).expect("a stored decision decodes");
        db.decisions.insert(
            id,
            Recorded {
                accepted: d.accepted(),
                countersigned: d.countersigned.as_deref().map(sha),
                receipt: sha(base64_std(&d.receipt).as_bytes()),
            },
        );
    }
    for row in client
        .query(
            "SELECT declaration_id, stage, count(*) FROM audit_events \
             WHERE stage IN ('countersigned', 'receipt_issued', 'dead_lettered') GROUP BY 1, 2",
            &[],
        )
        .await
        .unwrap()
    {
        let id: String = row.get(0);
        let stage: String = row.get(1);
        let n: i64 = row.get(2);
        let map = if stage == "dead_lettered" {
            &mut db.dead_lettered_events
        } else {
            &mut db.decision_events
        };
        *map.entry(id).or_default() += n as u64;
    }
    for row in client
        .query("SELECT stage, count(*) FROM audit_events GROUP BY 1", &[])
        .await
        .unwrap()
    {
        let n: i64 = row.get(1);
        db.audit_counts.insert(row.get(0), n as u64);
    }
    db
}

/// The receipt header is the receipt in base64: the collector hashes the
/// header's text, so the database's receipt is hashed the same way.
fn base64_std(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The figures, and up to 20 examples of each problem.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    pub declarations: usize,
    pub messages: usize,
    pub results_delivered: usize,
    pub redeliveries: usize,
    pub lost: usize,
    pub duplicated_effects: usize,
    pub unexpected: usize,
    pub wrong_side: usize,
    pub misrouted: usize,
    pub wrong_reason: usize,
    pub by_class: BTreeMap<String, ClassFigures>,
    pub examples: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassFigures {
    pub declarations: usize,
    pub expected: String,
    pub ok: usize,
    pub problems: usize,
}

impl Findings {
    fn note(&mut self, what: &str, example: String) {
        let list = self.examples.entry(what.to_string()).or_default();
        if list.len() < 20 {
            list.push(example);
        }
    }
}

pub fn check(entries: &[Entry], outs: &[Out], db: &Database) -> Findings {
    let mut f = Findings {
        declarations: declarations(entries),
        messages: entries.len(),
        results_delivered: outs.len(),
        ..Findings::default()
    };
    let mut by_id: HashMap<&str, Vec<&Out>> = HashMap::new();
    for o in outs {
        by_id.entry(o.id.as_str()).or_default().push(o);
    }
    let mut groups: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
    for e in entries {
        groups.entry(e.group.as_str()).or_default().push(e);
    }
    for members in groups.values() {
        let first = members[0];
        let class = f
            .by_class
            .entry(first.class.name().to_string())
            .or_default();
        class.declarations += 1;
        class.expected = match first.expect() {
            Expect::Rejected(code) => format!("rejected: {code}"),
            other => other.side().to_string(),
        };
        let problems_before =
            f.lost + f.duplicated_effects + f.wrong_side + f.misrouted + f.wrong_reason;
        let with_results: Vec<&Entry> = members
            .iter()
            .copied()
            .filter(|e| by_id.contains_key(e.id.as_str()))
            .collect();
        let results: Vec<&Out> = with_results
            .iter()
            .flat_map(|e| by_id[e.id.as_str()].iter().copied())
            .collect();
        let ids: Vec<&str> = members.iter().map(|e| e.id.as_str()).collect();
        if results.is_empty() {
            f.lost += 1;
            f.note(
                "lost",
                format!("{ids:?} ({}, route {})", first.class.name(), first.route),
            );
        } else {
            let effects: BTreeSet<(&str, Option<&str>)> = results
                .iter()
                .map(|o| (o.body.as_str(), o.receipt.as_deref()))
                .collect();
            f.redeliveries += results.len() - effects.len().min(results.len());
            let mut dup = Vec::new();
            if effects.len() > 1 {
                dup.push(format!("{} different results", effects.len()));
            }
            // Two decisions for the same bytes. (Two messages with those
            // bytes that are both poison are both dead-lettered: no effect.)
            let decided_ids = with_results
                .iter()
                .filter(|e| {
                    by_id[e.id.as_str()]
                        .iter()
                        .any(|o| o.side() != "dead-lettered")
                })
                .count();
            if decided_ids > 1 {
                dup.push(format!(
                    "results under {decided_ids} message ids of the same bytes"
                ));
            }
            for e in &with_results {
                let events = db.decision_events.get(&e.id).copied().unwrap_or(0);
                if events > 1 {
                    dup.push(format!("{} decision audit events for {}", events, e.id));
                }
                if let Some(rec) = db.decisions.get(&e.id) {
                    for o in &by_id[e.id.as_str()] {
                        if o.side() == "dead-lettered" {
                            continue;
                        }
                        let stored_body = if rec.accepted {
                            rec.countersigned.as_deref()
                        } else {
                            None
                        };
                        let differs = o.receipt.as_deref() != Some(rec.receipt.as_str())
                            || (rec.accepted && Some(o.body.as_str()) != stored_body);
                        if differs {
                            dup.push(format!(
                                "a delivered result of {} is not the recorded decision",
                                e.id
                            ));
                            break;
                        }
                    }
                } else if by_id[e.id.as_str()]
                    .iter()
                    .any(|o| o.side() != "dead-lettered")
                {
                    dup.push(format!("a result for {} with no recorded decision", e.id));
                }
            }
            if !dup.is_empty() {
                f.duplicated_effects += 1;
                f.note(
                    "duplicatedEffects",
                    format!("{ids:?} ({}): {}", first.class.name(), dup.join("; ")),
                );
            }
            let want_side = first.expect().side();
            let mut sides: BTreeSet<&str> = results.iter().map(|o| o.side()).collect();
            // Dead-lettered by the pipeline leaves an audit event; by the
            // broker (past the delivery limit) it does not.
            if sides.contains("dead-lettered")
                && with_results
                    .iter()
                    .all(|e| db.dead_lettered_events.get(&e.id).copied().unwrap_or(0) == 0)
            {
                sides.remove("dead-lettered");
                sides.insert("dead-lettered by the broker (no audit event)");
            }
            if sides.iter().any(|s| *s != want_side) {
                f.wrong_side += 1;
                f.note(
                    "wrongSide",
                    format!(
                        "{ids:?} ({}): expected {want_side}, got {sides:?} on {:?}",
                        first.class.name(),
                        results
                            .iter()
                            .map(|o| o.queue.as_str())
                            .collect::<BTreeSet<_>>()
                    ),
                );
            } else {
                let want_queue = first.expected_queue();
                if results.iter().any(|o| o.queue != want_queue) {
                    f.misrouted += 1;
                    f.note(
                        "misrouted",
                        format!(
                            "{ids:?}: expected {want_queue}, got {:?}",
                            results
                                .iter()
                                .map(|o| o.queue.as_str())
                                .collect::<BTreeSet<_>>()
                        ),
                    );
                }
                if let Expect::Rejected(code) = first.expect() {
                    let reasons: BTreeSet<Option<&str>> =
                        results.iter().map(|o| o.reason.as_deref()).collect();
                    if reasons != BTreeSet::from([Some(code)]) {
                        f.wrong_reason += 1;
                        f.note(
                            "wrongReason",
                            format!(
                                "{ids:?} ({}): expected {code}, got {reasons:?}",
                                first.class.name()
                            ),
                        );
                    }
                }
            }
        }
        let problems_after =
            f.lost + f.duplicated_effects + f.wrong_side + f.misrouted + f.wrong_reason;
        let class = f
            .by_class
            .entry(first.class.name().to_string())
            .or_default();
        if problems_after > problems_before {
            class.problems += 1;
        } else {
            class.ok += 1;
        }
    }
    // Outbound without inbound: results, or decisions, for ids never sent.
    let known: BTreeSet<&str> = entries.iter().map(|e| e.id.as_str()).collect();
    let mut unexpected: BTreeSet<String> = outs
        .iter()
        .filter(|o| !known.contains(o.id.as_str()))
        .map(|o| format!("result {} on {}", o.id, o.queue))
        .collect();
    unexpected.extend(
        db.decisions
            .keys()
            .filter(|id| !known.contains(id.as_str()))
            .map(|id| format!("decision {id} in the database")),
    );
    f.unexpected = unexpected.len();
    for u in unexpected {
        f.note("unexpected", u);
    }
    f
}
