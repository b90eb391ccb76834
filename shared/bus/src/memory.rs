//! The in-process bus: the embedded default and the unit-test double.
//!
//! It imitates RabbitMQ 3.10 quorum queues, because that is what the
//! pipeline runs on in production and the two must not teach the pipeline
//! different habits:
//!
//! * returned messages (requeue, dropped delivery, dropped consumer) go to a
//!   returns list served before new messages, each return adding one to the
//!   delivery count, and past the delivery limit the message is
//!   dead-lettered (reason `delivery_limit`);
//! * dead-lettering is at-least-once: a message whose dead-letter exchange
//!   routes nowhere is kept (and retried at the next `declare`) rather than
//!   dropped;
//! * publish to an exchange with no matching binding fails with
//!   `Unroutable`, as a mandatory publish comes back from RabbitMQ.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::topology::{ExchangeKind, QueueSpec, Topology};
use crate::{
    death_headers, validate_message, Acker, Bus, BusError, Consumer, ConsumerInner, Delivery,
    HeaderValue, Message, Settlement,
};

/// The in-process bus. Clones share the same exchanges and queues.
#[derive(Clone, Default)]
pub struct MemoryBus {
    shared: Arc<Shared>,
}

impl fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("MemoryBus")
            .field("exchanges", &state.exchanges.len())
            .field("queues", &state.queues.len())
            .finish()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a few field updates); keep going rather than poison
        // the whole bus.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    exchanges: HashMap<String, MemExchange>,
    queues: HashMap<String, MemQueue>,
    consumers: HashMap<u64, ConsumerState>,
    next_consumer: u64,
    next_tag: u64,
}

struct MemExchange {
    kind: ExchangeKind,
    /// (binding key, queue)
    bindings: Vec<(String, String)>,
}

struct MemQueue {
    spec: QueueSpec,
    /// Returned messages, served first (quorum queue order).
    returns: VecDeque<Stored>,
    ready: VecDeque<Stored>,
    unacked: BTreeMap<u64, Unacked>,
    /// Dead-lettered messages the DLX could not route yet.
    dead_letter_pending: Vec<Stored>,
    /// Wakes consumers: a message arrived or a prefetch slot freed.
    notify: Arc<Notify>,
}

impl MemQueue {
    fn new(spec: QueueSpec) -> Self {
        Self {
            spec,
            returns: VecDeque::new(),
            ready: VecDeque::new(),
            unacked: BTreeMap::new(),
            dead_letter_pending: Vec::new(),
            notify: Arc::new(Notify::new()),
        }
    }
}

#[derive(Clone)]
struct Stored {
    message: Message,
    exchange: String,
    delivery_count: u32,
}

struct Unacked {
    consumer: u64,
    stored: Stored,
}

struct ConsumerState {
    queue: String,
    prefetch: u16,
    in_flight: usize,
}

/// Why a message is dead-lettered (RabbitMQ's words).
#[derive(Clone, Copy)]
enum DeathReason {
    Rejected,
    DeliveryLimit,
}

impl DeathReason {
    fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }
}

impl MemoryBus {
    /// An empty bus: declare a topology before publishing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages ready for delivery in `queue` (0 for an unknown queue).
    pub fn queue_depth(&self, queue: &str) -> usize {
        self.shared
            .lock()
            .queues
            .get(queue)
            .map_or(0, |q| q.returns.len() + q.ready.len())
    }

    /// Messages delivered from `queue` and not yet settled.
    pub fn unacked(&self, queue: &str) -> usize {
        self.shared
            .lock()
            .queues
            .get(queue)
            .map_or(0, |q| q.unacked.len())
    }
}

impl State {
    fn declare(&mut self, topology: &Topology) -> Result<(), BusError> {
        for e in &topology.exchanges {
            match self.exchanges.get(&e.name) {
                Some(existing) if existing.kind != e.kind => {
                    return Err(BusError::Topology(format!(
                        "PRECONDITION_FAILED: exchange {} exists with type {}, not {}",
                        e.name,
                        existing.kind.as_str(),
                        e.kind.as_str()
                    )))
                }
                Some(_) => {}
                None => {
                    self.exchanges.insert(
                        e.name.clone(),
                        MemExchange {
                            kind: e.kind,
                            bindings: Vec::new(),
                        },
                    );
                }
            }
        }
        for q in &topology.queues {
            match self.queues.get(&q.name) {
                Some(existing) if existing.spec != *q => {
                    return Err(BusError::Topology(format!(
                        "PRECONDITION_FAILED: queue {} exists with other arguments",
                        q.name
                    )))
                }
                Some(_) => {}
                None => {
                    self.queues.insert(q.name.clone(), MemQueue::new(q.clone()));
                }
            }
        }
        for b in &topology.bindings {
            if !self.queues.contains_key(&b.queue) {
                return Err(BusError::Topology(format!(
                    "NOT_FOUND: no queue {}",
                    b.queue
                )));
            }
            let Some(exchange) = self.exchanges.get_mut(&b.exchange) else {
                return Err(BusError::Topology(format!(
                    "NOT_FOUND: no exchange {}",
                    b.exchange
                )));
            };
            let binding = (b.routing_key.clone(), b.queue.clone());
            if !exchange.bindings.contains(&binding) {
                exchange.bindings.push(binding);
            }
        }
        self.retry_pending_dead_letters();
        Ok(())
    }

    /// The queues a message published to `exchange` with `routing_key`
    /// reaches, each once. `None` when the exchange does not exist.
    fn route(&self, exchange: &str, routing_key: &str) -> Option<Vec<String>> {
        if exchange.is_empty() {
            // The default exchange: straight to the queue of that name.
            return Some(
                self.queues
                    .contains_key(routing_key)
                    .then(|| routing_key.to_string())
                    .into_iter()
                    .collect(),
            );
        }
        let ex = self.exchanges.get(exchange)?;
        let mut queues: Vec<String> = Vec::new();
        for (key, queue) in &ex.bindings {
            let hit = match ex.kind {
                ExchangeKind::Direct => key == routing_key,
                ExchangeKind::Topic => topic_matches(key, routing_key),
                ExchangeKind::Fanout => true,
            };
            if hit && !queues.contains(queue) {
                queues.push(queue.clone());
            }
        }
        Some(queues)
    }

    fn enqueue(&mut self, queues: &[String], stored: &Stored) {
        for name in queues {
            if let Some(q) = self.queues.get_mut(name) {
                q.ready.push_back(stored.clone());
                q.notify.notify_waiters();
            }
        }
    }

    /// Takes a delivered message back into `queue`: one more delivery, then
    /// either the head of the queue or, past the limit, the DLX.
    fn return_to_queue(&mut self, queue: &str, mut stored: Stored) {
        stored.delivery_count = stored.delivery_count.saturating_add(1);
        let Some(q) = self.queues.get_mut(queue) else {
            return;
        };
        if let Some(limit) = q.spec.delivery_limit {
            if stored.delivery_count > limit {
                self.dead_letter(queue, stored, DeathReason::DeliveryLimit);
                return;
            }
        }
        q.returns.push_back(stored);
        q.notify.notify_waiters();
    }

    fn dead_letter(&mut self, queue: &str, stored: Stored, reason: DeathReason) {
        let Some(q) = self.queues.get(queue) else {
            return;
        };
        let Some(dlx) = q.spec.dead_letter_exchange.clone() else {
            // No DLX: RabbitMQ drops the message; so do we.
            tracing::debug!(queue, "message dropped: no dead-letter exchange");
            return;
        };
        let mut message = stored.message;
        let mut first = |k: &str, v: &str| {
            message
                .headers
                .entry(k.to_string())
                .or_insert_with(|| HeaderValue::Str(v.to_string()));
        };
        first(death_headers::REASON, reason.as_str());
        first(death_headers::QUEUE, queue);
        first(death_headers::EXCHANGE, &stored.exchange);
        if let Some(key) = &q.spec.dead_letter_routing_key {
            message.routing_key = key.clone();
        }
        let dead = Stored {
            message,
            exchange: dlx,
            delivery_count: 0,
        };
        self.route_dead_letter(queue, dead);
    }

    fn route_dead_letter(&mut self, from: &str, dead: Stored) {
        let targets = self
            .route(&dead.exchange, &dead.message.routing_key)
            .unwrap_or_default();
        if targets.is_empty() {
            // At-least-once: hold it until the DLX can route it.
            tracing::warn!(
                queue = from,
                dlx = dead.exchange,
                "dead-letter exchange routes nowhere; holding the message"
            );
            if let Some(q) = self.queues.get_mut(from) {
                q.dead_letter_pending.push(dead);
            }
            return;
        }
        self.enqueue(&targets, &dead);
    }

    fn retry_pending_dead_letters(&mut self) {
        let pending: Vec<(String, Stored)> = self
            .queues
            .iter_mut()
            .flat_map(|(name, q)| {
                std::mem::take(&mut q.dead_letter_pending)
                    .into_iter()
                    .map(move |s| (name.clone(), s))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (from, dead) in pending {
            self.route_dead_letter(&from, dead);
        }
    }

    /// Settles delivery `tag` of `queue`.
    fn settle(&mut self, queue: &str, tag: u64, how: Settlement) -> Result<(), BusError> {
        let Some(q) = self.queues.get_mut(queue) else {
            return Err(gone());
        };
        let Some(unacked) = q.unacked.remove(&tag) else {
            return Err(gone());
        };
        q.notify.notify_waiters();
        if let Some(c) = self.consumers.get_mut(&unacked.consumer) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        match how {
            Settlement::Ack => {}
            Settlement::Requeue => self.return_to_queue(queue, unacked.stored),
            Settlement::DeadLetter => {
                self.dead_letter(queue, unacked.stored, DeathReason::Rejected)
            }
        }
        Ok(())
    }

    /// A consumer went away: like a closed channel, every delivery it had not
    /// settled goes back, in delivery order, and counts as a delivery.
    fn close_consumer(&mut self, id: u64) {
        let Some(c) = self.consumers.remove(&id) else {
            return;
        };
        let Some(q) = self.queues.get_mut(&c.queue) else {
            return;
        };
        let tags: Vec<u64> = q
            .unacked
            .iter()
            .filter(|(_, u)| u.consumer == id)
            .map(|(t, _)| *t)
            .collect();
        let mut returned = Vec::with_capacity(tags.len());
        for t in tags {
            if let Some(u) = q.unacked.remove(&t) {
                returned.push(u.stored);
            }
        }
        for stored in returned {
            self.return_to_queue(&c.queue, stored);
        }
    }
}

fn gone() -> BusError {
    BusError::Unavailable(
        "delivery no longer valid: its consumer was closed and the message requeued".into(),
    )
}

/// AMQP topic matching: words separated by `.`, `*` matches exactly one
/// word, `#` zero or more.
pub(crate) fn topic_matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('.').collect();
    let key: Vec<&str> = key.split('.').collect();
    fn go(p: &[&str], k: &[&str]) -> bool {
        match p.split_first() {
            None => k.is_empty(),
            Some((&"#", rest)) => (0..=k.len()).any(|skip| go(rest, &k[skip..])),
            Some((&"*", rest)) => !k.is_empty() && go(rest, &k[1..]),
            Some((word, rest)) => k.first() == Some(word) && go(rest, &k[1..]),
        }
    }
    go(&pattern, &key)
}

#[async_trait]
impl Bus for MemoryBus {
    async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        topology.validate()?;
        self.shared.lock().declare(topology)
    }

    async fn publish(&self, exchange: &str, message: Message) -> Result<(), BusError> {
        validate_message(&message)?;
        let mut state = self.shared.lock();
        let Some(queues) = state.route(exchange, &message.routing_key) else {
            // RabbitMQ closes the channel with NOT_FOUND.
            return Err(BusError::Topology(format!(
                "NOT_FOUND: no exchange {exchange}"
            )));
        };
        if queues.is_empty() {
            return Err(BusError::Unroutable(format!(
                "returned: NO_ROUTE (no queue bound to {exchange} for {})",
                message.routing_key
            )));
        }
        let stored = Stored {
            message,
            exchange: exchange.to_string(),
            delivery_count: 0,
        };
        state.enqueue(&queues, &stored);
        Ok(())
    }

    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        consumer_tag: &str,
    ) -> Result<Consumer, BusError> {
        let mut state = self.shared.lock();
        let Some(q) = state.queues.get(queue) else {
            return Err(BusError::Topology(format!("NOT_FOUND: no queue {queue}")));
        };
        let notify = q.notify.clone();
        let id = state.next_consumer;
        state.next_consumer += 1;
        state.consumers.insert(
            id,
            ConsumerState {
                queue: queue.to_string(),
                prefetch,
                in_flight: 0,
            },
        );
        Ok(Consumer {
            inner: ConsumerInner::Memory(MemoryConsumer {
                shared: self.shared.clone(),
                id,
                queue: queue.to_string(),
                tag: consumer_tag.to_string(),
                notify,
            }),
        })
    }
}

/// A consumer of the in-process bus.
pub(crate) struct MemoryConsumer {
    shared: Arc<Shared>,
    id: u64,
    queue: String,
    tag: String,
    notify: Arc<Notify>,
}

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("queue", &self.queue)
            .field("tag", &self.tag)
            .finish()
    }
}

impl MemoryConsumer {
    pub(crate) async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        loop {
            // Register for a wake-up *before* looking, so that a publish
            // between the look and the wait is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(delivery) = self.try_take() {
                return delivery;
            }
            notified.await;
        }
    }

    /// One delivery if the prefetch window and the queue allow; no await
    /// between taking the message and returning it (cancel safety).
    fn try_take(&self) -> Option<Option<Result<Delivery, BusError>>> {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        let Some(consumer) = state.consumers.get_mut(&self.id) else {
            return Some(None);
        };
        if consumer.prefetch != 0 && consumer.in_flight >= usize::from(consumer.prefetch) {
            return None;
        }
        let Some(q) = state.queues.get_mut(&self.queue) else {
            return Some(None);
        };
        let stored = q.returns.pop_front().or_else(|| q.ready.pop_front())?;
        consumer.in_flight += 1;
        let tag = state.next_tag;
        state.next_tag += 1;
        let delivery = Delivery {
            message: stored.message.clone(),
            exchange: stored.exchange.clone(),
            redelivered: stored.delivery_count > 0,
            delivery_count: stored.delivery_count,
            acker: Acker::Memory(MemoryAcker {
                shared: self.shared.clone(),
                queue: self.queue.clone(),
                tag,
                settled: false,
            }),
        };
        q.unacked.insert(
            tag,
            Unacked {
                consumer: self.id,
                stored,
            },
        );
        Some(Some(Ok(delivery)))
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        self.shared.lock().close_consumer(self.id);
    }
}

/// Settles one delivery of the in-process bus; requeues it when dropped
/// unsettled.
pub(crate) struct MemoryAcker {
    shared: Arc<Shared>,
    queue: String,
    tag: u64,
    settled: bool,
}

impl fmt::Debug for MemoryAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryAcker")
            .field("queue", &self.queue)
            .field("tag", &self.tag)
            .finish()
    }
}

impl MemoryAcker {
    pub(crate) fn settle(mut self, how: Settlement) -> Result<(), BusError> {
        self.settled = true;
        self.shared.lock().settle(&self.queue, self.tag, how)
    }

    /// Still unacked on its queue (not taken back with its consumer).
    pub(crate) fn is_settleable(&self) -> bool {
        !self.settled
            && self
                .shared
                .lock()
                .queues
                .get(&self.queue)
                .is_some_and(|q| q.unacked.contains_key(&self.tag))
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        if !self.settled {
            // Already gone when its consumer was dropped first: nothing to do.
            let _ = self
                .shared
                .lock()
                .settle(&self.queue, self.tag, Settlement::Requeue);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn topic_wildcards() {
        assert!(topic_matches("#", "kz.az"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("kz.*", "kz.az"));
        assert!(!topic_matches("kz.*", "kz"));
        assert!(!topic_matches("kz.*", "kz.az.x"));
        assert!(topic_matches("*.az", "kz.az"));
        assert!(topic_matches("kz.#", "kz"));
        assert!(topic_matches("kz.#", "kz.az.x"));
        assert!(topic_matches("#.az", "az"));
        assert!(topic_matches("#.az", "kz.tr.az"));
        assert!(!topic_matches("#.az", "kz.tr"));
        assert!(topic_matches("kz.#.az", "kz.az"));
        assert!(topic_matches("kz.#.az", "kz.x.y.az"));
        assert!(topic_matches("az", "az"));
        assert!(!topic_matches("az", "kz"));
        assert!(!topic_matches("*", "kz.az"));
        assert!(topic_matches("*.*", "kz.az"));
    }
}
