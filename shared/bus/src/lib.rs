//! The message bus of the Tamga pipeline.
//!
//! One small trait, [`Bus`], with two implementations that keep the same
//! semantics:
//!
//! * [`AmqpBus`] — AMQP 0-9-1 over `lapin`, for RabbitMQ (quorum queues,
//!   publisher confirms, at-least-once dead-lettering);
//! * [`MemoryBus`] — an in-process bus, the embedded default for the quick
//!   start and for unit tests.
//!
//! The rules both follow, because the pipeline's "lose nothing" promise rests
//! on them:
//!
//! * [`Bus::publish`] returns `Ok` only once the broker has taken
//!   responsibility for the message (a publisher confirm for a message that
//!   was routed to at least one queue). Anything else is an error, and
//!   [`BusError::Unconfirmed`] means "unknown, publish again": duplicates are
//!   possible, loss is not. Consumers deduplicate by `message_id`.
//!   [`BusError::Unroutable`] means "certainly not enqueued, and publishing
//!   again cannot help until a queue is bound for that routing key".
//! * A [`Delivery`] is settled exactly once: [`Delivery::ack`],
//!   [`Delivery::requeue`] or [`Delivery::dead_letter`]. A delivery dropped
//!   unsettled is requeued, and so is every unsettled delivery of a dropped
//!   [`Consumer`] (like a closed AMQP channel).
//! * Every return to the queue (requeue, drop, lost consumer) counts toward the
//!   queue's delivery limit; past it the message goes to the queue's
//!   dead-letter exchange (RabbitMQ 3.10 quorum queue semantics).
//! * When the connection is lost, consumers end ([`Consumer::next`] gives an
//!   error, then `None`) and the caller consumes again after a backoff; the
//!   broker redelivers whatever was in flight.
#![forbid(unsafe_code)]

mod amqp;
mod memory;
mod topology;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

pub use amqp::{AmqpBus, AmqpOptions};
pub use memory::MemoryBus;
pub use topology::{
    tamga_topology, BindingSpec, ExchangeKind, ExchangeSpec, QueueSpec, Topology,
    DEFAULT_STAGE_DELIVERY_LIMIT,
};

/// Exchange names of the Tamga topology (a contract with tools outside the
/// project: brokers publish to `tamga.inbound`, destinations consume from
/// queues they bind to `tamga.outbound` and `tamga.rejected`).
pub mod names {
    /// Topic exchange brokers publish to, routing key `<from>.<to>`.
    pub const INBOUND: &str = "tamga.inbound";
    /// Direct exchange between the pipeline's stages.
    pub const STAGES: &str = "tamga.stages";
    /// Direct exchange the stage queues dead-letter to.
    pub const DLX: &str = "tamga.dlx";
    /// Topic exchange for countersigned documents, routing key `<to>`.
    pub const OUTBOUND: &str = "tamga.outbound";
    /// Topic exchange for signed rejection receipts, routing key `<from>.<to>`.
    pub const REJECTED: &str = "tamga.rejected";
    /// Stage queue: verification.
    pub const VERIFY: &str = "tamga.verify";
    /// Stage queue: counter-signature.
    pub const COUNTERSIGN: &str = "tamga.countersign";
    /// Stage queue: forwarding.
    pub const FORWARD: &str = "tamga.forward";
    /// Routing key on `tamga.stages` for the countersign queue.
    pub const COUNTERSIGN_KEY: &str = "countersign";
    /// Routing key on `tamga.stages` for the forward queue.
    pub const FORWARD_KEY: &str = "forward";
    /// Suffix of each stage queue's dead-letter queue.
    pub const DLQ_SUFFIX: &str = ".dlq";
}

/// Header carrying [`Message::timestamp_ms`] exactly: the AMQP `timestamp`
/// property only has whole seconds.
pub const TIMESTAMP_MS_HEADER: &str = "tamga-timestamp-ms";

/// Headers set when a message is dead-lettered (RabbitMQ sets them; the
/// in-process bus sets the same ones so that DLQ tooling sees one shape).
pub mod death_headers {
    /// Why the message was dead-lettered first: `rejected` (dead_letter()) or
    /// `delivery_limit`.
    pub const REASON: &str = "x-first-death-reason";
    /// The queue it was dead-lettered from first.
    pub const QUEUE: &str = "x-first-death-queue";
    /// The exchange it had been published to.
    pub const EXCHANGE: &str = "x-first-death-exchange";
}

/// A message as published. Always published persistent (delivery mode 2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub body: Vec<u8>,
    pub routing_key: String,
    /// The pipeline's identity for effects-once processing; set it.
    pub message_id: Option<String>,
    pub correlation_id: Option<String>,
    pub headers: BTreeMap<String, HeaderValue>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

impl Message {
    /// A message with a body and a routing key and nothing else.
    pub fn new(routing_key: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            routing_key: routing_key.into(),
            ..Self::default()
        }
    }
}

/// A header value. AMQP field tables have many more types; these three are
/// what Tamga writes, and what others' values are read as (integers of any
/// width and booleans as `Int`, strings as `Str`, byte arrays and non-UTF-8
/// long strings as `Bytes`; nested tables and arrays are skipped).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderValue {
    Str(String),
    Int(i64),
    Bytes(Vec<u8>),
}

impl HeaderValue {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            HeaderValue::Int(i) => Some(*i),
            _ => None,
        }
    }
}

/// What went wrong on the bus.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// Transient: connection refused or lost, channel closed. Back off and
    /// try again (for a consumer: consume again).
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The broker did not take responsibility for a published message
    /// (nack, timeout, or the connection died while waiting). It may or may
    /// not have been enqueued: publish it again.
    #[error("publish not confirmed: {0}")]
    Unconfirmed(String),
    /// The broker returned a mandatory publish: no queue is bound to the
    /// exchange for its routing key. It was certainly not enqueued, and
    /// publishing it again gives the same answer until the topology changes,
    /// so it is not transient: a caller that retried it would hold the
    /// message for ever.
    #[error("publish unroutable: {0}")]
    Unroutable(String),
    /// Fatal: the topology is wrong (PRECONDITION_FAILED on a re-declaration
    /// with other arguments, a missing exchange or queue, access refused).
    /// Waiting does not fix it.
    #[error("topology error: {0}")]
    Topology(String),
    /// Anything else (a bug, a protocol error). Not retried automatically.
    #[error("bus error: {0}")]
    Other(String),
}

impl BusError {
    /// True when waiting and trying again can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, BusError::Unavailable(_) | BusError::Unconfirmed(_))
    }
}

/// A message handed to a consumer. Settle it exactly once with
/// [`ack`](Delivery::ack), [`requeue`](Delivery::requeue) or
/// [`dead_letter`](Delivery::dead_letter); dropping it unsettled requeues it.
#[derive(Debug)]
pub struct Delivery {
    pub message: Message,
    /// The exchange the message was published to (for a dead-lettered
    /// message: the dead-letter exchange).
    pub exchange: String,
    /// True when this message was delivered before (to any consumer).
    pub redelivered: bool,
    /// 0 on first delivery; the number of earlier returns to the queue. From
    /// `x-delivery-count` on quorum queues; tracked by the in-process bus.
    pub delivery_count: u32,
    acker: Acker,
}

impl Delivery {
    /// Done with it: the broker forgets the message.
    pub async fn ack(self) -> Result<(), BusError> {
        self.acker.settle(Settlement::Ack).await
    }

    /// Put it back at the head of the queue (nack with requeue). Counts
    /// toward the queue's delivery limit; past it the message is
    /// dead-lettered.
    pub async fn requeue(self) -> Result<(), BusError> {
        self.acker.settle(Settlement::Requeue).await
    }

    /// Send it to the queue's dead-letter exchange now (nack without
    /// requeue). Without a dead-letter exchange the message is dropped.
    pub async fn dead_letter(self) -> Result<(), BusError> {
        self.acker.settle(Settlement::DeadLetter).await
    }

    /// False once this delivery can no longer be settled because its channel
    /// or connection is gone (or its consumer was dropped): the broker has
    /// taken the message back and redelivers it, so working on this copy any
    /// further only duplicates that work.
    pub fn is_settleable(&self) -> bool {
        self.acker.is_settleable()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settlement {
    Ack,
    Requeue,
    DeadLetter,
}

/// Settles a delivery on the implementation it came from. Each variant
/// requeues on drop when unsettled.
#[derive(Debug)]
enum Acker {
    Memory(memory::MemoryAcker),
    Amqp(amqp::AmqpAcker),
}

impl Acker {
    async fn settle(self, how: Settlement) -> Result<(), BusError> {
        match self {
            Acker::Memory(a) => a.settle(how),
            Acker::Amqp(a) => a.settle(how).await,
        }
    }

    fn is_settleable(&self) -> bool {
        match self {
            Acker::Memory(a) => a.is_settleable(),
            Acker::Amqp(a) => a.is_settleable(),
        }
    }
}

/// A stream of deliveries from one queue.
///
/// [`next`](Consumer::next) is cancel-safe: a `select!` that drops its future
/// loses no message. It yields `None` (possibly after one `Err`) when the
/// channel or connection died — and never a delivery buffered before that
/// can no longer be settled (the broker redelivers those); consume again
/// after a backoff. Dropping the consumer requeues its unsettled
/// deliveries, as closing an AMQP channel does.
pub struct Consumer {
    inner: ConsumerInner,
}

enum ConsumerInner {
    Memory(memory::MemoryConsumer),
    // Boxed: a lapin consumer is several hundred bytes.
    Amqp(Box<amqp::AmqpConsumer>),
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            ConsumerInner::Memory(c) => c.fmt(f),
            ConsumerInner::Amqp(c) => c.fmt(f),
        }
    }
}

impl Consumer {
    /// The next delivery; `None` or `Err` when the consumer is gone.
    pub async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        match &mut self.inner {
            ConsumerInner::Memory(c) => c.next().await,
            ConsumerInner::Amqp(c) => c.next().await,
        }
    }
}

/// Checks what AMQP cannot carry, in both implementations alike: short
/// strings (routing key, ids, header names) are at most 255 bytes.
pub(crate) fn validate_message(message: &Message) -> Result<(), BusError> {
    let short = |what: &str, s: &str| {
        if s.len() > 255 {
            Err(BusError::Other(format!("{what} is longer than 255 bytes")))
        } else {
            Ok(())
        }
    };
    short("routing key", &message.routing_key)?;
    if let Some(id) = &message.message_id {
        short("message_id", id)?;
    }
    if let Some(id) = &message.correlation_id {
        short("correlation_id", id)?;
    }
    for name in message.headers.keys() {
        short("header name", name)?;
    }
    Ok(())
}

/// The bus. Object-safe: the pipeline holds an `Arc<dyn Bus>`.
#[async_trait]
pub trait Bus: Send + Sync {
    /// Declares exchanges, queues and bindings. Idempotent: declaring the
    /// same topology again is fine; declaring a queue again with other
    /// arguments is a [`BusError::Topology`].
    async fn declare(&self, topology: &Topology) -> Result<(), BusError>;

    /// Publishes persistently, mandatory, and returns once the broker
    /// confirmed. Nack or timeout: [`BusError::Unconfirmed`] — publish
    /// again. Returned (no queue bound for the routing key):
    /// [`BusError::Unroutable`].
    async fn publish(&self, exchange: &str, message: Message) -> Result<(), BusError>;

    /// Starts consuming `queue` with at most `prefetch` unsettled deliveries
    /// (0: no limit).
    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        consumer_tag: &str,
    ) -> Result<Consumer, BusError>;
}

#[async_trait]
impl<T: Bus + ?Sized> Bus for std::sync::Arc<T> {
    async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        (**self).declare(topology).await
    }

    async fn publish(&self, exchange: &str, message: Message) -> Result<(), BusError> {
        (**self).publish(exchange, message).await
    }

    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        consumer_tag: &str,
    ) -> Result<Consumer, BusError> {
        (**self).consume(queue, prefetch, consumer_tag).await
    }
}
