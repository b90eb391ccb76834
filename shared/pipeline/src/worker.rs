//! The stage workers: consume → call the pure engine → record → publish
//! (confirmed) → ack.
//!
//! A bad signature is a business outcome (receipt, audit, ack). Everything
//! that stops a delivery from being handled is a [`Failure`], sorted by type
//! in `failure.rs`: a store, broker or HSM outage is *transient* — the
//! delivery is held, not acked and not requeued (so no delivery count is
//! burned), and the stage retries with backoff; consumption pauses because
//! every prefetch slot is held. A delivery whose connection died meanwhile
//! (broker restart) is let go instead: the broker already has it back and
//! redelivers it, and the redelivery re-emits the stored result. A *fatal*
//! error stops the site loudly. A *poison* message is dead-lettered with an
//! audit event; a *panic* is retried through requeue until the queue's
//! delivery limit, then dead-lettered the same way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use futures_util::FutureExt;
use tamga_bus::{Bus, BusError, Delivery, HeaderValue, Message};
use tamga_store::{AuditEvent, Recorded, ResultRow, Store};
use tokio::sync::{watch, Semaphore};

use crate::backoff::Backoff;
use crate::engine::{sha256_hex, Decided, Engine, Poison, Verified};
use crate::events::Event;
use crate::failure::{panic_message, Failure, Source};
use crate::metrics::Metrics;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    Verify,
    Countersign,
    Forward,
    /// Verify, countersign and forward in one hop: consumes what `Verify`
    /// consumes and publishes what `Forward` publishes, with one store
    /// commit for the decision and one for the forwarding instead of four,
    /// and no internal messages (see the README's pipeline figures).
    Fused,
}

impl Stage {
    /// The three separate stages, in pipeline order.
    pub const ALL: [Stage; 3] = [Stage::Verify, Stage::Countersign, Stage::Forward];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Verify => "verify",
            Stage::Countersign => "countersign",
            Stage::Forward => "forward",
            Stage::Fused => "fused",
        }
    }

    pub fn queue(self) -> &'static str {
        match self {
            Stage::Verify | Stage::Fused => "tamga.verify",
            Stage::Countersign => "tamga.countersign",
            Stage::Forward => "tamga.forward",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL
            .into_iter()
            .chain([Stage::Fused])
            .find(|st| st.name() == s)
    }
}

/// AMQP header names on `tamga.outbound` and `tamga.rejected` messages (a
/// contract with destination systems and brokers: extend, never rename).
pub mod headers {
    pub const ORIGIN: &str = "tamga-origin";
    pub const DESTINATION: &str = "tamga-destination";
    pub const DECLARATION_ID: &str = "tamga-declaration-id";
    pub const LRN: &str = "tamga-lrn";
    pub const DOCUMENT_SHA256: &str = "tamga-document-sha256";
    pub const DECISION: &str = "tamga-decision";
    pub const REASON: &str = "tamga-reason";
    pub const SUB_INDICATION: &str = "tamga-sub-indication";
    /// The signed receipt, base64.
    pub const RECEIPT: &str = "tamga-receipt";
}

/// Everything a worker needs, shared by its stages.
pub struct Runtime {
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub metrics: Arc<Metrics>,
    /// Names this process in audit events and hash chains.
    pub worker: String,
    pub prefetch: u16,
    pub concurrency: usize,
    pub delivery_limit: u32,
    /// Audit hash chains per stage (appends within one chain are serialised).
    pub chains_per_stage: usize,
    pub shutdown: watch::Receiver<bool>,
    /// Set (once) by the first [`Failure::Fatal`]: every stage stops
    /// consuming and the site exits with the reason.
    pub fatal: watch::Sender<Option<String>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

fn forwarded_key(id: &str) -> String {
    format!("forwarded:{id}")
}

pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Runtime {
    /// True once shutdown was asked for or a fatal error stopped the site.
    fn stopping(&self) -> bool {
        *self.shutdown.borrow() || self.fatal.borrow().is_some()
    }

    /// Records the first fatal error; every stage stops on it.
    fn set_fatal(&self, why: String) {
        self.fatal.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(why);
                true
            } else {
                false
            }
        });
    }

    fn chain(&self, stage: Stage, key: &str) -> String {
        let shards = self.chains_per_stage.max(1);
        let shard = key
            .bytes()
            .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize))
            % shards;
        format!("{}/{}/{}", self.worker, stage.name(), shard)
    }

    /// Counts and logs `e` (after its audit record, if any, committed).
    fn emit(&self, e: Event<'_>) {
        e.emit(&self.metrics);
    }

    /// The audit record of `e`, stamped now by this worker.
    fn audit(&self, e: &Event<'_>) -> AuditEvent {
        // Invariant: only called with events that have a record.
        e.audit(&self.worker, now_ms())
            .unwrap_or_else(|| unreachable!("audit() of an event without a record: {e:?}"))
    }

    /// Re-emits a decision stored earlier (a redelivery, or the same
    /// declaration decided by another delivery first).
    async fn forward_stored(&self, d: &Delivery, stored: &[u8]) -> Result<(), Failure> {
        self.emit(Event::Suppressed { stage: "fused" });
        let dcd = Decided::decode(stored).map_err(|e| Failure::Fatal {
            at: Source::Store,
            why: format!("a stored decision does not decode: {e}"),
        })?;
        self.forward_decided(d, &dcd, true).await
    }

    /// True when `id` was already forwarded (confirmed) — a duplicate
    /// submission or a late redelivery needs no re-emission at all.
    async fn already_forwarded(&self, id: &str) -> Result<bool, Failure> {
        Ok(self
            .store
            .stage_result(&forwarded_key(id), tamga_store::APPEND_ONCE_STAGE)
            .await?
            .is_some())
    }

    /// Publishes what `d` leads to and waits for the broker's confirm; a
    /// nack or a timeout means "unknown", so it publishes again. Gives up
    /// once `d` can no longer be settled (its connection died): the broker
    /// redelivers it, and the redelivery re-emits the stored result.
    ///
    /// A result the broker returns as unroutable (no queue bound for its
    /// routing key: a rejection for an origin that is not in the trust list,
    /// so no partner's queue exists) can never be delivered by trying again;
    /// held, it would occupy a processing slot for ever — and enough of them
    /// would stop the worker. It is poison: dead-lettered with an audit
    /// event, where an operator sees it. An internal stage queue missing is
    /// a broken topology: fatal.
    async fn publish(&self, d: &Delivery, exchange: &str, message: Message) -> Result<(), Failure> {
        let mut backoff = Backoff::publish();
        for _ in 0..6 {
            if !d.is_settleable() {
                return Err(Failure::transient(
                    Source::Bus,
                    "the delivery's channel is gone",
                ));
            }
            match self.bus.publish(exchange, message.clone()).await {
                Ok(()) => {
                    self.emit(Event::Published {
                        exchange,
                        confirmed: true,
                    });
                    return Ok(());
                }
                Err(BusError::Unconfirmed(why)) => {
                    tracing::debug!(exchange, why, "unconfirmed");
                    self.emit(Event::Published {
                        exchange,
                        confirmed: false,
                    });
                    backoff.wait().await;
                }
                Err(BusError::Unroutable(why)) => {
                    self.emit(Event::Published {
                        exchange,
                        confirmed: false,
                    });
                    let what = format!(
                        "no queue takes {exchange} `{}`, so the result cannot be delivered: {why}",
                        message.routing_key
                    );
                    return Err(if exchange == "tamga.stages" {
                        Failure::Fatal {
                            at: Source::Bus,
                            why: what,
                        }
                    } else {
                        Poison(what).into()
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Failure::transient(
            Source::Bus,
            format!("publish to {exchange} not confirmed"),
        ))
    }

    async fn verify(&self, d: &Delivery) -> Result<(), Failure> {
        let m = &d.message;
        let received_at = now_ms();
        let digest = sha256_hex(&m.body);
        let identity = m.message_id.clone().unwrap_or_else(|| digest.clone());
        let next = |body: Vec<u8>| Message {
            body,
            routing_key: Stage::Countersign.name().into(),
            message_id: Some(identity.clone()),
            correlation_id: None,
            headers: BTreeMap::new(),
            timestamp_ms: Some(received_at),
        };
        if let Some(stored) = self.store.stage_result(&identity, "verify").await? {
            self.emit(Event::Suppressed { stage: "verify" });
            return self.publish(d, "tamga.stages", next(stored)).await;
        }
        // The same bytes under another message id are the same declaration.
        let (origin, destination) = match crate::engine::parse_route(&m.routing_key) {
            Ok((o, t)) => (o.to_string(), t.to_string()),
            Err(p) => return Err(p.into()),
        };
        let received = self.audit(&Event::Received {
            id: &identity,
            origin: &origin,
            destination: &destination,
            digest: &digest,
            at_ms: received_at,
        });
        if let Recorded::AlreadyPresent(first) = self
            .store
            .record(
                &self.chain(Stage::Verify, &digest),
                &digest,
                "received",
                identity.as_bytes(),
                &received,
            )
            .await?
        {
            let first = String::from_utf8_lossy(&first).into_owned();
            if first != identity {
                if let Some(stored) = self.store.stage_result(&first, "verify").await? {
                    self.emit(Event::Suppressed { stage: "verify" });
                    return self.publish(d, "tamga.stages", next(stored)).await;
                }
            }
        }
        let engine = self.engine.clone();
        let body = m.body.clone();
        let routing_key = m.routing_key.clone();
        let message_id = m.message_id.clone();
        let verified = tokio::task::spawn_blocking(move || {
            engine.verify(
                &body,
                &routing_key,
                message_id.as_deref(),
                received_at,
                now_ms(),
            )
        })
        .await
        .map_err(Failure::from_join)??;
        let event = self.audit(&Event::Verified(&verified));
        let bytes = serde_json::to_vec(&verified).map_err(|e| Poison(e.to_string()))?;
        let to_publish = match self
            .store
            .record(
                &self.chain(Stage::Verify, &identity),
                &identity,
                "verify",
                &bytes,
                &event,
            )
            .await?
        {
            Recorded::Inserted => {
                self.emit(Event::Verified(&verified));
                bytes
            }
            Recorded::AlreadyPresent(stored) => {
                self.emit(Event::Suppressed { stage: "verify" });
                stored
            }
            _ => bytes,
        };
        self.publish(d, "tamga.stages", next(to_publish)).await
    }

    async fn countersign(&self, d: &Delivery) -> Result<(), Failure> {
        let v: Verified = serde_json::from_slice(&d.message.body)
            .map_err(|e| Poison(format!("not a verified envelope: {e}")))?;
        let next = |body: Vec<u8>| Message {
            body,
            routing_key: Stage::Forward.name().into(),
            message_id: Some(v.id.clone()),
            correlation_id: None,
            headers: BTreeMap::new(),
            timestamp_ms: Some(v.received_at_ms),
        };
        // Claimed before signing (see `fused`).
        let claim = self.store.claim(&[&v.id], &[(&v.id, "decide")]).await?;
        if let Some(stored) = claim.found().first().cloned().flatten() {
            drop(claim);
            self.emit(Event::Suppressed {
                stage: "countersign",
            });
            return self.publish(d, "tamga.stages", next(stored)).await;
        }
        let engine = self.engine.clone();
        let env = v.clone();
        let decided = tokio::task::spawn_blocking(move || engine.decide(&env, now_ms()))
            .await
            .map_err(Failure::from_join)??;
        let event = self.audit(&Event::Decided(&decided));
        let bytes = decided.encode();
        let row = ResultRow {
            declaration_id: &v.id,
            stage: "decide",
            result: &bytes,
        };
        let receipt_key = crate::engine::receipt_key(&decided.receipt_id);
        let receipt = ResultRow {
            declaration_id: &receipt_key,
            stage: crate::engine::RECEIPT_STAGE,
            result: v.id.as_bytes(),
        };
        let to_publish = match claim
            .record_all(
                &self.chain(Stage::Countersign, &v.id),
                row,
                &[receipt],
                std::slice::from_ref(&event),
            )
            .await?
        {
            Recorded::AlreadyPresent(stored) => {
                self.emit(Event::Suppressed {
                    stage: "countersign",
                });
                stored
            }
            _ => {
                self.emit(Event::Decided(&decided));
                bytes
            }
        };
        self.publish(d, "tamga.stages", next(to_publish)).await
    }

    async fn forward(&self, d: &Delivery) -> Result<(), Failure> {
        let dcd = Decided::decode(&d.message.body)?;
        self.forward_decided(d, &dcd, true).await
    }

    /// Publishes `dcd` to the destination (or back to the broker), then
    /// records the forwarding once. `check_first`: look for an earlier
    /// forwarding before publishing (a fused stage that has just decided
    /// knows there was none).
    async fn forward_decided(
        &self,
        d: &Delivery,
        dcd: &Decided,
        check_first: bool,
    ) -> Result<(), Failure> {
        if check_first && self.already_forwarded(&dcd.id).await? {
            self.emit(Event::Suppressed { stage: "forward" });
            return Ok(());
        }
        let accepted = dcd.accepted();
        let receipt = dcd.receipt.clone();
        let mut h = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            h.insert(k.to_string(), HeaderValue::Str(v.to_string()));
        };
        put(headers::ORIGIN, &dcd.origin);
        put(headers::DESTINATION, &dcd.destination);
        put(headers::DECLARATION_ID, &dcd.id);
        put(headers::DOCUMENT_SHA256, &dcd.document_sha256);
        put(headers::DECISION, dcd.decision.as_str());
        if let Some(lrn) = &dcd.lrn {
            put(headers::LRN, lrn);
        }
        if let Some(r) = &dcd.reason {
            put(headers::REASON, r);
        }
        if let Some(s) = &dcd.sub_indication {
            put(headers::SUB_INDICATION, s);
        }
        put(
            headers::RECEIPT,
            &base64::engine::general_purpose::STANDARD.encode(&receipt),
        );
        let (exchange, routing_key, body) = if accepted {
            (
                "tamga.outbound",
                dcd.destination.to_ascii_lowercase(),
                dcd.countersigned
                    .clone()
                    .ok_or_else(|| Poison("accepted without a countersigned document".into()))?,
            )
        } else {
            (
                "tamga.rejected",
                format!(
                    "{}.{}",
                    dcd.origin.to_ascii_lowercase(),
                    dcd.destination.to_ascii_lowercase()
                ),
                receipt,
            )
        };
        self.publish(
            d,
            exchange,
            Message {
                body,
                routing_key,
                // Stable, so destinations can drop the rare duplicate a crash
                // between confirm and ack produces.
                message_id: Some(format!("tamga:{}", dcd.id)),
                correlation_id: Some(dcd.correlation_id.clone()),
                headers: h,
                timestamp_ms: Some(now_ms()),
            },
        )
        .await?;
        let event = self.audit(&Event::Forwarded {
            decided: dcd,
            first: true,
        });
        let first = self
            .store
            .append_once(
                &self.chain(Stage::Forward, &dcd.id),
                &format!("forwarded:{}", dcd.id),
                &event,
            )
            .await?;
        self.emit(Event::Forwarded {
            decided: dcd,
            first,
        });
        Ok(())
    }

    /// The fused stage: verify, decide and forward in one hop.
    async fn fused(&self, d: &Delivery) -> Result<(), Failure> {
        let m = &d.message;
        let received_at = now_ms();
        let digest = sha256_hex(&m.body);
        let identity = m.message_id.clone().unwrap_or_else(|| digest.clone());
        // A bad route is poison whatever else is known about these bytes.
        let (origin, destination) = match crate::engine::parse_route(&m.routing_key) {
            Ok((o, t)) => (o.to_string(), t.to_string()),
            Err(p) => return Err(p.into()),
        };
        // Claimed before any private-key operation: a concurrent delivery of
        // the same declaration (or the same bytes under another message id)
        // waits here, then finds this one's result instead of signing again.
        let mut claim = self
            .store
            .claim(
                &[&identity, &digest],
                &[(&identity, "decide"), (&digest, "received")],
            )
            .await?;
        // A redelivery (or the same bytes under another message id): re-emit
        // what was decided, never decide again.
        let mut stored = claim.found().first().cloned().flatten();
        let first_seen_as = claim.found().get(1).cloned().flatten();
        if stored.is_none() {
            if let Some(first) = first_seen_as {
                let first = String::from_utf8_lossy(&first).into_owned();
                if first != identity {
                    stored = claim.stage_result(&first, "decide").await?;
                }
            }
        }
        if let Some(stored) = stored {
            drop(claim);
            return self.forward_stored(d, &stored).await;
        }
        let engine = self.engine.clone();
        let body = m.body.clone();
        let routing_key = m.routing_key.clone();
        let message_id = m.message_id.clone();
        let (verified, decided) = tokio::task::spawn_blocking(move || {
            engine.verify_and_decide(
                &body,
                &routing_key,
                message_id.as_deref(),
                received_at,
                now_ms(),
            )
        })
        .await
        .map_err(Failure::from_join)??;
        let happened = [
            Event::Received {
                id: &identity,
                origin: &origin,
                destination: &destination,
                digest: &digest,
                at_ms: received_at,
            },
            Event::Verified(&verified),
            Event::Decided(&decided),
        ];
        let events: Vec<AuditEvent> = happened.iter().map(|e| self.audit(e)).collect();

        let bytes = decided.encode();
        let decision = ResultRow {
            declaration_id: &identity,
            stage: "decide",
            result: &bytes,
        };
        let seen = ResultRow {
            declaration_id: &digest,
            stage: "received",
            result: identity.as_bytes(),
        };
        let receipt_key = crate::engine::receipt_key(&decided.receipt_id);
        let receipt = ResultRow {
            declaration_id: &receipt_key,
            stage: crate::engine::RECEIPT_STAGE,
            result: identity.as_bytes(),
        };
        match claim
            .record_all(
                &self.chain(Stage::Fused, &identity),
                decision,
                &[seen, receipt],
                &events,
            )
            .await?
        {
            // Another delivery of the same declaration decided first.
            Recorded::AlreadyPresent(stored) => self.forward_stored(d, &stored).await,
            _ => {
                for e in happened {
                    self.emit(e);
                }
                self.forward_decided(d, &decided, false).await
            }
        }
    }

    async fn process(&self, stage: Stage, d: &Delivery) -> Result<(), Failure> {
        match stage {
            Stage::Verify => self.verify(d).await,
            Stage::Countersign => self.countersign(d).await,
            Stage::Forward => self.forward(d).await,
            Stage::Fused => self.fused(d).await,
        }
    }

    /// Handles one delivery to the end: acked, dead-lettered, or (on
    /// shutdown, a fatal error or a lost connection) left for the broker to
    /// redeliver.
    async fn handle(self: Arc<Self>, stage: Stage, d: Delivery) {
        let started = Instant::now();
        let gauge = self.metrics.in_flight.with_label_values(&[stage.name()]);
        gauge.inc();
        let mut backoff = Backoff::outage();
        loop {
            let result = std::panic::AssertUnwindSafe(self.process(stage, &d))
                .catch_unwind()
                .await
                .unwrap_or_else(|p| Err(Failure::Panicked(panic_message(p.as_ref()))));
            let failure = match result {
                Ok(()) => {
                    if let Err(e) = d.ack().await {
                        tracing::warn!(stage = stage.name(), error = %e, "ack failed; the broker will redeliver");
                    }
                    break;
                }
                Err(f) => f,
            };
            self.emit(Event::Failed {
                stage,
                failure: &failure,
            });
            match failure {
                Failure::Transient { why, .. } => {
                    if !d.is_settleable() {
                        // Its channel died (a broker restart): the broker has
                        // the message back and redelivers it. Retrying this
                        // copy would only race the redelivery.
                        tracing::info!(
                            stage = stage.name(),
                            why,
                            "the delivery went with its connection; the broker redelivers it"
                        );
                        break;
                    }
                    tracing::debug!(
                        stage = stage.name(),
                        backoff_ms = backoff.current().as_millis() as u64,
                        "backing off"
                    );
                    if self.stopping() {
                        break;
                    }
                    backoff.wait().await;
                }
                Failure::Fatal { at, why } => {
                    self.set_fatal(format!("{} ({}): {why}", stage.name(), at.as_str()));
                    // Dropped unsettled: the broker keeps it for after the fix.
                    break;
                }
                Failure::Poison(p) => {
                    self.dead_letter(stage, d, &p.0).await;
                    break;
                }
                Failure::Panicked(why) => {
                    // Maybe this message, maybe a bug. Requeue until the
                    // delivery limit, then treat it as poison.
                    if d.delivery_count + 1 >= self.delivery_limit {
                        self.dead_letter(
                            stage,
                            d,
                            &format!("processing panicked at every delivery: {why}"),
                        )
                        .await;
                    } else if let Err(e) = d.requeue().await {
                        tracing::warn!(error = %e, "requeue failed");
                    }
                    break;
                }
            }
        }
        gauge.dec();
        self.metrics
            .stage_seconds
            .with_label_values(&[stage.name()])
            .observe(started.elapsed().as_secs_f64());
    }

    async fn dead_letter(&self, stage: Stage, d: Delivery, why: &str) {
        let m = &d.message;
        let digest = sha256_hex(&m.body);
        let id = m.message_id.clone().unwrap_or_else(|| digest.clone());
        let happened = Event::DeadLettered {
            stage,
            id: &id,
            digest: &digest,
            why,
        };
        let event = self.audit(&happened);
        let key = format!("dead_lettered:{}:{}", stage.name(), digest);
        // The audit event must land before the message moves; wait for the
        // store like any transient failure.
        let mut backoff = Backoff::outage();
        while let Err(e) = self
            .store
            .append_once(&self.chain(stage, &id), &key, &event)
            .await
        {
            tracing::warn!(error = %e, "cannot record dead-lettering yet");
            if self.stopping() || !d.is_settleable() {
                return;
            }
            backoff.wait().await;
        }
        self.emit(happened);
        if let Err(e) = d.dead_letter().await {
            tracing::warn!(error = %e, "dead-lettering failed; the broker will redeliver");
        }
    }
}

/// Consumes `stage` until shutdown, re-consuming with backoff whenever the
/// consumer ends (broker restart, connection loss). Sends on `ready` once
/// consuming.
pub async fn run_stage(rt: Arc<Runtime>, stage: Stage, ready: tokio::sync::mpsc::Sender<Stage>) {
    let mut shutdown = rt.shutdown.clone();
    let mut fatal = rt.fatal.subscribe();
    let mut backoff = Backoff::outage();
    let mut announced = false;
    let permits = Arc::new(Semaphore::new(rt.concurrency.max(1)));
    let tag = format!("{}-{}", rt.worker, stage.name());
    loop {
        if rt.stopping() {
            break;
        }
        let mut consumer = match rt.bus.consume(stage.queue(), rt.prefetch, &tag).await {
            Ok(c) => c,
            Err(e) => {
                let f = Failure::from(e);
                rt.emit(Event::Failed { stage, failure: &f });
                if let Failure::Fatal { why, .. } = &f {
                    tracing::error!(
                        stage = stage.name(),
                        why,
                        "cannot consume: fatal; stopping the site"
                    );
                    rt.set_fatal(format!("{}: {why}", stage.name()));
                    break;
                }
                tracing::warn!(stage = stage.name(), error = %f, "cannot consume; retrying");
                tokio::select! {
                    _ = backoff.wait() => {}
                    _ = shutdown.changed() => {}
                    _ = fatal.changed() => {}
                }
                continue;
            }
        };
        if announced {
            rt.emit(Event::ConsumingAgain { stage });
        } else {
            announced = true;
            let _ = ready.send(stage).await;
        }
        backoff.reset();
        loop {
            if rt.stopping() {
                break;
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => break,
                _ = fatal.changed() => break,
            };
            let next = tokio::select! {
                d = consumer.next() => d,
                _ = shutdown.changed() => break,
                _ = fatal.changed() => break,
            };
            match next {
                Some(Ok(d)) => {
                    let rt = rt.clone();
                    tokio::spawn(async move {
                        rt.handle(stage, d).await;
                        drop(permit);
                    });
                }
                Some(Err(e)) => {
                    tracing::warn!(stage = stage.name(), error = %e, "consumer failed; re-consuming");
                    break;
                }
                None => {
                    tracing::warn!(stage = stage.name(), "consumer ended; re-consuming");
                    break;
                }
            }
        }
    }
    // Let in-flight deliveries finish (or be released) before returning.
    let _ = permits.acquire_many(rt.concurrency.max(1) as u32).await;
}
