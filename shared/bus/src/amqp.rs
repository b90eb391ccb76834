//! AMQP 0-9-1 over lapin, for RabbitMQ.
//!
//! # Reconnection: a supervisor of our own, not lapin's automatic recovery
//!
//! lapin 4.x can recover a connection by itself (`enable_auto_recover`): it
//! reopens channels, replays declarations, QoS and consumers. We do not use
//! it, and supervise the connection ourselves instead:
//!
//! * our contract is simpler than transparent recovery and is what the
//!   pipeline needs: after a connection loss consumers *end* and the caller
//!   consumes again; publishes in flight fail with `Unconfirmed` and the
//!   caller publishes again. Nothing pretends to survive the reconnect, so
//!   stale delivery tags and confirms from the old connection cannot be
//!   mistaken for new ones;
//! * lapin's recovery is young (many recovery fixes up to 4.12.3, and its own
//!   docs note that consumers registered during recovery may race the QoS
//!   replay), and by default it gives up after 16 attempts, after which the
//!   connection stays dead. A broker restart that takes a while must not
//!   need a process restart;
//! * a plain loop — wait for the connection to die, then connect with
//!   exponential backoff (capped, 5 s by default) forever — is short enough
//!   to reason about and to test.
//!
//! The supervisor learns of a death from lapin's connection events and, as a
//! fallback, from polling the connection status. Each successful reconnect
//! increments [`AmqpBus::reconnects`].
//!
//! # Publishing
//!
//! A small pool of publisher channels in confirm mode, each carrying at most
//! one unconfirmed publish at a time. One at a time per channel is what
//! makes `mandatory` returns trustworthy: lapin attaches a `basic.return` to
//! whichever pending confirm the next ack resolves, and with several
//! publishes pending on a channel (and RabbitMQ's `multiple` acks) the return
//! can be attached to another publish — which would report the unroutable
//! message as delivered. The pool keeps throughput with concurrent
//! publishers. A channel whose confirm timed out is discarded, so a late
//! confirm cannot be credited to the next publish.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use lapin::message::Delivery as LapinDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, ByteArray, FieldTable, LongString, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ErrorKind};
use tokio::sync::{oneshot, watch, Mutex};

use crate::topology::{ArgValue, ExchangeKind, Topology};
use crate::{
    validate_message, Acker, Bus, BusError, Consumer, ConsumerInner, Delivery, HeaderValue,
    Message, Settlement, TIMESTAMP_MS_HEADER,
};

/// Connection settings of the AMQP bus. Build with `..AmqpOptions::default()`:
/// fields may be added.
#[derive(Clone, Debug)]
pub struct AmqpOptions {
    /// Heartbeat interval proposed to the broker; a dead peer is noticed
    /// after about two intervals. Overrides a `heartbeat` in the URL.
    pub heartbeat_secs: u16,
    /// Limit on one connection attempt, and on waiting for a connection
    /// (while reconnecting) in `consume` and `declare`.
    pub connect_timeout: Duration,
    /// Limit on waiting for a publisher confirm (and for a connection, when
    /// publishing while reconnecting).
    pub confirm_timeout: Duration,
    /// Publisher channels, each with at most one publish awaiting its
    /// confirm: the number of publishes confirmed concurrently.
    pub publisher_channels: usize,
    /// Cap of the exponential backoff between reconnection attempts.
    pub max_reconnect_backoff: Duration,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        Self {
            heartbeat_secs: 10,
            connect_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(10),
            publisher_channels: 8,
            max_reconnect_backoff: Duration::from_secs(5),
        }
    }
}

/// The AMQP bus: one connection, supervised (see the module docs).
pub struct AmqpBus {
    shared: Arc<Shared>,
    /// Dropping the bus drops this, which stops the supervisor and closes
    /// the connection.
    _shutdown: oneshot::Sender<()>,
}

impl fmt::Debug for AmqpBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpBus")
            .field("endpoint", &self.shared.endpoint)
            .field("connected", &self.is_connected())
            .field("reconnects", &self.reconnects())
            .finish()
    }
}

struct Shared {
    uri: AMQPUri,
    /// The URI without credentials, for messages and logs.
    endpoint: String,
    opts: AmqpOptions,
    /// The live connection; `None` while reconnecting.
    live: watch::Sender<Option<Arc<Live>>>,
    reconnects: AtomicU64,
}

/// One connection and its publisher channels. Replaced whole on reconnect.
struct Live {
    connection: Connection,
    publishers: Vec<Mutex<Option<Channel>>>,
    next_publisher: AtomicUsize,
}

impl AmqpBus {
    /// Connects to `url` (`amqp://user:pass@host:port/vhost`, vhost
    /// URL-encoded: `%2f` for `/`). Fails if the first connection cannot be
    /// made within `connect_timeout`; later losses are repaired in the
    /// background.
    pub async fn connect(url: &str, opts: AmqpOptions) -> Result<Self, BusError> {
        let mut uri =
            AMQPUri::from_str(url).map_err(|e| BusError::Other(format!("bad AMQP URL: {e}")))?;
        uri.query.heartbeat = Some(opts.heartbeat_secs);
        let endpoint = format!(
            "{}://{}:{}/{}",
            if matches!(uri.scheme, lapin::uri::AMQPScheme::AMQPS) {
                "amqps"
            } else {
                "amqp"
            },
            uri.authority.host,
            uri.authority.port,
            uri.vhost
        );
        let (live_tx, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            uri,
            endpoint,
            opts,
            live: live_tx,
            reconnects: AtomicU64::new(0),
        });
        let first = shared.open().await?;
        shared.live.send_replace(Some(first));
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        tokio::spawn(supervise(shared.clone(), shutdown_rx));
        Ok(Self {
            shared,
            _shutdown: shutdown_tx,
        })
    }

    /// Successful reconnections since `connect`.
    pub fn reconnects(&self) -> u64 {
        self.shared.reconnects.load(Ordering::Relaxed)
    }

    /// True while a connection is up (for health checks).
    pub fn is_connected(&self) -> bool {
        self.shared
            .live
            .borrow()
            .as_ref()
            .is_some_and(|l| l.connection.status().connected())
    }
}

impl Shared {
    /// One connection attempt, bounded by `connect_timeout`.
    async fn open(&self) -> Result<Arc<Live>, BusError> {
        let props = ConnectionProperties::default()
            .with_connection_name(format!("tamga-bus pid {}", std::process::id()).into());
        let attempt = Connection::connect_uri(self.uri.clone(), props);
        let connection = match tokio::time::timeout(self.opts.connect_timeout, attempt).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let e = map_err(&e);
                return Err(with_context(
                    e,
                    &format!("cannot connect to {}", self.endpoint),
                ));
            }
            Err(_) => {
                return Err(BusError::Unavailable(format!(
                    "cannot connect to {}: no answer within {:?}",
                    self.endpoint, self.opts.connect_timeout
                )))
            }
        };
        let publishers = (0..self.opts.publisher_channels.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        Ok(Arc::new(Live {
            connection,
            publishers,
            next_publisher: AtomicUsize::new(0),
        }))
    }

    /// The live connection, waiting up to `wait` for a reconnect.
    async fn live(&self, wait: Duration) -> Result<Arc<Live>, BusError> {
        let mut rx = self.live.subscribe();
        let got = tokio::time::timeout(wait, async {
            rx.wait_for(|l| {
                l.as_ref()
                    .is_some_and(|l| l.connection.status().connected())
            })
            .await
            .ok()
            .and_then(|l| l.clone())
        })
        .await;
        match got {
            Ok(Some(live)) => Ok(live),
            _ => Err(BusError::Unavailable(format!(
                "not connected to {} (reconnecting)",
                self.endpoint
            ))),
        }
    }
}

/// Waits for the connection to die, then reconnects with backoff, forever,
/// until the bus is dropped.
async fn supervise(shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    loop {
        let Some(live) = shared.live.borrow().clone() else {
            return;
        };
        tokio::select! {
            _ = &mut shutdown => {
                shared.live.send_replace(None);
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    live.connection.close(200, "bus dropped".into()),
                )
                .await;
                return;
            }
            why = wait_for_death(&live) => {
                tracing::warn!(endpoint = %shared.endpoint, why, "AMQP connection lost; reconnecting");
            }
        }
        shared.live.send_replace(None);
        // Make sure the old connection is really over, so its consumers end
        // and its pending confirms fail rather than hang.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            live.connection.close(320, "reconnecting".into()),
        )
        .await;
        drop(live);

        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = tokio::select! {
                _ = &mut shutdown => return,
                r = shared.open() => r,
            };
            match attempt {
                Ok(new) => {
                    shared.reconnects.fetch_add(1, Ordering::Relaxed);
                    shared.live.send_replace(Some(new));
                    tracing::info!(endpoint = %shared.endpoint, "AMQP connection re-established");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "AMQP reconnect failed");
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(shared.opts.max_reconnect_backoff);
                }
            }
        }
    }
}

/// Resolves when the connection is no longer usable.
///
/// lapin reports channel errors (a refused declaration, a publish to a
/// missing exchange) as connection events too, so an error event only
/// prompts a look at the connection's own state; the periodic look catches
/// whatever sends no event.
async fn wait_for_death(live: &Live) -> String {
    let mut events = live.connection.events_listener();
    let mut poll = tokio::time::interval(Duration::from_millis(500));
    let mut last_error = String::new();
    let mut events_open = true;
    loop {
        tokio::select! {
            event = events.next(), if events_open => match event {
                Some(lapin::Event::Error(e)) => {
                    last_error = e.to_string();
                    // Let lapin finish its bookkeeping before looking.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Some(_) => {}
                // No more events: polling alone from now on.
                None => events_open = false,
            },
            _ = poll.tick() => {}
        }
        let status = live.connection.status();
        if !status.connected() {
            let state = if status.errored() {
                "errored"
            } else if status.closed() {
                "closed"
            } else {
                "not connected"
            };
            return format!("connection {state} {last_error}");
        }
    }
}

/// lapin's error as ours: transient, topology, or other.
fn map_err(e: &lapin::Error) -> BusError {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(
                AMQPSoftError::PRECONDITIONFAILED
                | AMQPSoftError::NOTFOUND
                | AMQPSoftError::ACCESSREFUSED
                | AMQPSoftError::RESOURCELOCKED,
            ) => BusError::Topology(text),
            AMQPErrorKind::Hard(
                AMQPHardError::CONNECTIONFORCED
                | AMQPHardError::RESOURCEERROR
                | AMQPHardError::INTERNALERROR,
            ) => BusError::Unavailable(text),
            // NOT_ALLOWED is a vhost the user may not open: configuration.
            AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED) => BusError::Topology(text),
            _ => BusError::Other(text),
        },
        ErrorKind::IOError(_)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidConnectionState(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::RuntimeShutdownError(_) => BusError::Unavailable(text),
        _ => BusError::Other(text),
    }
}

fn with_context(e: BusError, context: &str) -> BusError {
    match e {
        BusError::Unavailable(m) => BusError::Unavailable(format!("{context}: {m}")),
        BusError::Unconfirmed(m) => BusError::Unconfirmed(format!("{context}: {m}")),
        BusError::Unroutable(m) => BusError::Unroutable(format!("{context}: {m}")),
        BusError::Topology(m) => BusError::Topology(format!("{context}: {m}")),
        BusError::Other(m) => BusError::Other(format!("{context}: {m}")),
    }
}

fn exchange_kind(kind: ExchangeKind) -> lapin::ExchangeKind {
    match kind {
        ExchangeKind::Direct => lapin::ExchangeKind::Direct,
        ExchangeKind::Topic => lapin::ExchangeKind::Topic,
        ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
    }
}

fn properties(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    for (k, v) in &message.headers {
        let v = match v {
            HeaderValue::Str(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
            HeaderValue::Int(i) => AMQPValue::LongLongInt(*i),
            HeaderValue::Bytes(b) => AMQPValue::ByteArray(ByteArray::from(b.as_slice())),
        };
        headers.insert(ShortString::from(k.as_str()), v);
    }
    // delivery_mode 2: persistent. Quorum queues persist everything anyway,
    // but a classic queue bound by a destination would not.
    let mut props = BasicProperties::default().with_delivery_mode(2);
    if let Some(ms) = message.timestamp_ms {
        // The AMQP property has whole seconds (what other tools show); the
        // header keeps the milliseconds.
        headers.insert(TIMESTAMP_MS_HEADER.into(), AMQPValue::LongLongInt(ms));
        if let Ok(secs) = u64::try_from(ms.div_euclid(1000)) {
            props = props.with_timestamp(secs);
        }
    }
    if let Some(id) = &message.message_id {
        props = props.with_message_id(id.as_str().into());
    }
    if let Some(id) = &message.correlation_id {
        props = props.with_correlation_id(id.as_str().into());
    }
    props.with_headers(headers)
}

fn header_int(v: &AMQPValue) -> Option<i64> {
    match v {
        AMQPValue::Boolean(b) => Some(i64::from(*b)),
        AMQPValue::ShortShortInt(i) => Some(i64::from(*i)),
        AMQPValue::ShortShortUInt(i) => Some(i64::from(*i)),
        AMQPValue::ShortInt(i) => Some(i64::from(*i)),
        AMQPValue::ShortUInt(i) => Some(i64::from(*i)),
        AMQPValue::LongInt(i) => Some(i64::from(*i)),
        AMQPValue::LongUInt(i) => Some(i64::from(*i)),
        AMQPValue::LongLongInt(i) => Some(*i),
        AMQPValue::Timestamp(i) => i64::try_from(*i).ok(),
        _ => None,
    }
}

fn header_value(v: &AMQPValue) -> Option<HeaderValue> {
    if let Some(i) = header_int(v) {
        return Some(HeaderValue::Int(i));
    }
    match v {
        AMQPValue::ShortString(s) => Some(HeaderValue::Str(s.as_str().to_string())),
        // RabbitMQ and most clients send strings as long strings (bytes).
        AMQPValue::LongString(s) => Some(match std::str::from_utf8(s.as_bytes()) {
            Ok(text) => HeaderValue::Str(text.to_string()),
            Err(_) => HeaderValue::Bytes(s.as_bytes().to_vec()),
        }),
        AMQPValue::ByteArray(b) => Some(HeaderValue::Bytes(b.as_slice().to_vec())),
        // Nested tables and arrays (x-death), floats, decimals: not carried.
        _ => None,
    }
}

/// A lapin delivery as ours.
fn delivery(d: LapinDelivery) -> Delivery {
    let props = &d.properties;
    let mut headers = std::collections::BTreeMap::new();
    let mut delivery_count = 0u32;
    let mut timestamp_ms = props
        .timestamp()
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| s.checked_mul(1000));
    if let Some(table) = props.headers() {
        for (k, v) in table.inner() {
            match k.as_str() {
                // Quorum queues count returns in this header; it is the
                // delivery's, not the message's.
                "x-delivery-count" => {
                    delivery_count = header_int(v)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0);
                }
                TIMESTAMP_MS_HEADER if header_int(v).is_some() => timestamp_ms = header_int(v),
                name => {
                    if let Some(v) = header_value(v) {
                        headers.insert(name.to_string(), v);
                    }
                }
            }
        }
    }
    let message = Message {
        body: d.data,
        routing_key: d.routing_key.as_str().to_string(),
        message_id: props.message_id().as_ref().map(|s| s.as_str().to_string()),
        correlation_id: props
            .correlation_id()
            .as_ref()
            .map(|s| s.as_str().to_string()),
        headers,
        timestamp_ms,
    };
    Delivery {
        message,
        exchange: d.exchange.as_str().to_string(),
        redelivered: d.redelivered,
        delivery_count,
        acker: Acker::Amqp(AmqpAcker {
            acker: d.acker,
            settled: false,
        }),
    }
}

impl Live {
    async fn publisher_channel(&self) -> Result<Channel, lapin::Error> {
        let ch = self.connection.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(ch)
    }
}

#[async_trait]
impl Bus for AmqpBus {
    async fn declare(&self, topology: &Topology) -> Result<(), BusError> {
        topology.validate()?;
        let live = self.shared.live(self.shared.opts.connect_timeout).await?;
        // A channel of its own: a refused declaration closes the channel,
        // and must not take a publisher or consumer with it.
        let ch = live
            .connection
            .create_channel()
            .await
            .map_err(|e| with_context(map_err(&e), "opening a channel"))?;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        for e in &topology.exchanges {
            ch.exchange_declare(
                e.name.as_str().into(),
                exchange_kind(e.kind),
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(|err| {
                with_context(map_err(&err), &format!("declaring exchange {}", e.name))
            })?;
        }
        for q in &topology.queues {
            let mut args = FieldTable::default();
            for (k, v) in q.arguments() {
                let v = match v {
                    ArgValue::Str(s) => AMQPValue::LongString(LongString::from(s.into_bytes())),
                    ArgValue::Int(i) => AMQPValue::LongLongInt(i),
                };
                args.insert(k.into(), v);
            }
            let opts = QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            };
            ch.queue_declare(q.name.as_str().into(), opts, args)
                .await
                .map_err(|err| {
                    with_context(map_err(&err), &format!("declaring queue {}", q.name))
                })?;
        }
        for b in &topology.bindings {
            ch.queue_bind(
                b.queue.as_str().into(),
                b.exchange.as_str().into(),
                b.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|err| {
                with_context(
                    map_err(&err),
                    &format!(
                        "binding {} to {} with {}",
                        b.queue, b.exchange, b.routing_key
                    ),
                )
            })?;
        }
        let _ = ch.close(200, "declared".into()).await;
        Ok(())
    }

    async fn publish(&self, exchange: &str, message: Message) -> Result<(), BusError> {
        validate_message(&message)?;
        let live = self.shared.live(self.shared.opts.confirm_timeout).await?;
        // A free publisher channel if there is one, else wait for one.
        let n = live.publishers.len();
        let start = live.next_publisher.fetch_add(1, Ordering::Relaxed) % n;
        let mut slot = None;
        for i in 0..n {
            if let Some(p) = live.publishers.get((start + i) % n) {
                if let Ok(guard) = p.try_lock() {
                    slot = Some(guard);
                    break;
                }
            }
        }
        let mut slot = match (slot, live.publishers.get(start)) {
            (Some(guard), _) => guard,
            (None, Some(p)) => p.lock().await,
            (None, None) => return Err(BusError::Other("no publisher channel".into())),
        };
        let channel = match slot.as_ref() {
            Some(ch) if ch.status().connected() => ch.clone(),
            _ => {
                let ch = live
                    .publisher_channel()
                    .await
                    .map_err(|e| with_context(map_err(&e), "opening a publisher channel"))?;
                *slot = Some(ch.clone());
                ch
            }
        };
        let props = properties(&message);
        let options = BasicPublishOptions {
            mandatory: true,
            immediate: false,
        };
        let confirm = match channel
            .basic_publish(
                exchange.into(),
                message.routing_key.as_str().into(),
                options,
                &message.body,
                props,
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                *slot = None;
                return Err(with_context(map_err(&e), "publish not sent"));
            }
        };
        match tokio::time::timeout(self.shared.opts.confirm_timeout, confirm).await {
            Ok(Ok(Confirmation::Ack(None))) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(BusError::Unroutable(format!(
                "returned: {} {} (no queue bound to {exchange} for {})",
                returned.reply_code, returned.reply_text, message.routing_key
            ))),
            Ok(Ok(Confirmation::Nack(_))) => {
                Err(BusError::Unconfirmed("nacked by the broker".into()))
            }
            Ok(Ok(Confirmation::NotRequested)) => {
                *slot = None;
                Err(BusError::Unconfirmed("channel not in confirm mode".into()))
            }
            Ok(Err(e)) => {
                // The channel died with the publish pending. NOT_FOUND (no
                // such exchange) is a topology error; anything else leaves the
                // outcome unknown.
                *slot = None;
                match map_err(&e) {
                    BusError::Topology(m) => Err(BusError::Topology(m)),
                    other => Err(BusError::Unconfirmed(other.to_string())),
                }
            }
            Err(_) => {
                // A late confirm must not be credited to the next publish on
                // this channel: drop the channel (lapin closes it).
                *slot = None;
                Err(BusError::Unconfirmed(format!(
                    "no confirm within {:?}",
                    self.shared.opts.confirm_timeout
                )))
            }
        }
    }

    async fn consume(
        &self,
        queue: &str,
        prefetch: u16,
        consumer_tag: &str,
    ) -> Result<Consumer, BusError> {
        let live = self.shared.live(self.shared.opts.connect_timeout).await?;
        let channel = live
            .connection
            .create_channel()
            .await
            .map_err(|e| with_context(map_err(&e), "opening a consumer channel"))?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| with_context(map_err(&e), "setting prefetch"))?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                consumer_tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| with_context(map_err(&e), &format!("consuming {queue}")))?;
        Ok(Consumer {
            inner: ConsumerInner::Amqp(Box::new(AmqpConsumer {
                consumer,
                _channel: channel,
                queue: queue.to_string(),
                ended: false,
            })),
        })
    }
}

/// A consumer on its own channel. Dropping it drops the channel, which lapin
/// closes; RabbitMQ then requeues every unacked delivery of the channel.
pub(crate) struct AmqpConsumer {
    consumer: lapin::Consumer,
    _channel: Channel,
    queue: String,
    ended: bool,
}

impl fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConsumer")
            .field("queue", &self.queue)
            .field("tag", &self.consumer.tag())
            .field("ended", &self.ended)
            .finish()
    }
}

impl AmqpConsumer {
    pub(crate) async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        if self.ended {
            return None;
        }
        // lapin hands out the deliveries it buffered (up to the prefetch)
        // before reporting that their channel died. Those can no longer be
        // settled and the broker has already requeued them: skip them, or
        // the caller would process each message twice (this copy and the
        // redelivery) and hold its slots with dead work after a reconnect.
        let mut next = self.consumer.next().await;
        while let Some(Ok(d)) = &next {
            if d.acker.usable() {
                break;
            }
            // Dropping a lapin delivery sends nothing.
            next = self.consumer.next().await;
        }
        match next {
            Some(Ok(d)) => Some(Ok(delivery(d))),
            Some(Err(e)) => {
                self.ended = true;
                Some(Err(with_context(
                    map_err(&e),
                    &format!("consumer of {}", self.queue),
                )))
            }
            None => {
                self.ended = true;
                None
            }
        }
    }
}

/// Settles one AMQP delivery; nacks it with requeue when dropped unsettled.
pub(crate) struct AmqpAcker {
    acker: lapin::Acker,
    settled: bool,
}

impl fmt::Debug for AmqpAcker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpAcker")
            .field("settled", &self.settled)
            .finish()
    }
}

impl AmqpAcker {
    /// Not settled yet and its channel still open.
    pub(crate) fn is_settleable(&self) -> bool {
        !self.settled && self.acker.usable()
    }

    pub(crate) async fn settle(mut self, how: Settlement) -> Result<(), BusError> {
        self.settled = true;
        let result = match how {
            Settlement::Ack => self.acker.ack(BasicAckOptions::default()).await,
            Settlement::Requeue => {
                self.acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await
            }
            Settlement::DeadLetter => {
                self.acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: false,
                    })
                    .await
            }
        };
        match result {
            Ok(true) => Ok(()),
            // lapin answers false when the channel is gone: the broker has
            // already requeued the message, and our settlement did not happen.
            Ok(false) => Err(BusError::Unavailable(
                "channel closed: the broker requeued the message".into(),
            )),
            Err(e) => Err(map_err(&e)),
        }
    }
}

impl Drop for AmqpAcker {
    fn drop(&mut self) {
        if self.settled || !self.acker.usable() {
            return;
        }
        // Give it back now rather than when the channel closes: the same as
        // the in-process bus, and the message does not sit unacked behind a
        // consumer that forgot it. Without a runtime the channel's close
        // requeues it later; nothing is lost either way.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let acker = self.acker.clone();
            handle.spawn(async move {
                let _ = acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await;
            });
        }
    }
}
