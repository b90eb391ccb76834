//! Exchanges, queues and bindings, and the Tamga topology itself.
//!
//! The queue arguments are computed in one place ([`QueueSpec::arguments`])
//! and used by the AMQP declarations, by the RabbitMQ definitions file
//! ([`Topology::to_definitions`]) and by the test that holds
//! `infra/rabbitmq/definitions.json` to the code — so the three cannot drift.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{names, BusError};

/// The stage queues' delivery limit in `infra/rabbitmq/definitions.json`.
///
/// Every return to the queue counts (an explicit requeue, and on RabbitMQ
/// 3.10 a consumer whose channel died with the message unacked), so this is
/// how many times a message may crash or be refused by a worker before it is
/// parked in its stage's DLQ. Transient failures (a database outage) must not
/// spend it: the pipeline holds such messages and backs off instead.
pub const DEFAULT_STAGE_DELIVERY_LIMIT: u32 = 10;

/// The kind of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ExchangeKind {
    Direct,
    Topic,
    Fanout,
}

impl ExchangeKind {
    /// The AMQP name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Fanout => "fanout",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(ExchangeKind::Direct),
            "topic" => Some(ExchangeKind::Topic),
            "fanout" => Some(ExchangeKind::Fanout),
            _ => None,
        }
    }
}

/// A durable exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeSpec {
    pub name: String,
    pub kind: ExchangeKind,
}

/// A durable queue.
///
/// Quorum queues get `x-queue-type=quorum`, `x-delivery-limit` when set and,
/// with a dead-letter exchange, `x-dead-letter-strategy=at-least-once` and
/// `x-overflow=reject-publish` — at-least-once dead-lettering needs
/// reject-publish (RabbitMQ 3.10 silently falls back to at-most-once with
/// the default drop-head), and at-most-once loses messages when the DLX
/// cannot route them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSpec {
    pub name: String,
    pub quorum: bool,
    /// Returns to the queue allowed before the message is dead-lettered
    /// (dead-lettered when the delivery count exceeds it). Quorum only;
    /// RabbitMQ 3.10 has no default, so `None` means unlimited.
    pub delivery_limit: Option<u32>,
    pub dead_letter_exchange: Option<String>,
    /// `None`: the message keeps its routing key.
    pub dead_letter_routing_key: Option<String>,
}

/// A binding of a queue to an exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSpec {
    pub exchange: String,
    pub queue: String,
    pub routing_key: String,
}

/// Exchanges, queues and bindings, declared in that order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub exchanges: Vec<ExchangeSpec>,
    pub queues: Vec<QueueSpec>,
    pub bindings: Vec<BindingSpec>,
}

/// An argument value of a queue declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ArgValue {
    Str(String),
    Int(i64),
}

impl QueueSpec {
    /// A quorum queue with no limit and no dead-lettering.
    pub fn quorum(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            quorum: true,
            delivery_limit: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
        }
    }

    /// The `x-` arguments this queue is declared with, in a stable order.
    pub(crate) fn arguments(&self) -> Vec<(&'static str, ArgValue)> {
        let mut args = Vec::new();
        if self.quorum {
            args.push(("x-queue-type", ArgValue::Str("quorum".into())));
        }
        if let Some(limit) = self.delivery_limit {
            args.push(("x-delivery-limit", ArgValue::Int(i64::from(limit))));
        }
        if let Some(dlx) = &self.dead_letter_exchange {
            args.push(("x-dead-letter-exchange", ArgValue::Str(dlx.clone())));
            if let Some(key) = &self.dead_letter_routing_key {
                args.push(("x-dead-letter-routing-key", ArgValue::Str(key.clone())));
            }
            if self.quorum {
                args.push((
                    "x-dead-letter-strategy",
                    ArgValue::Str("at-least-once".into()),
                ));
                args.push(("x-overflow", ArgValue::Str("reject-publish".into())));
            }
        }
        args
    }
}

impl Topology {
    /// Checks what both implementations would refuse, so that they refuse it
    /// alike and before declaring anything.
    pub fn validate(&self) -> Result<(), BusError> {
        let bad = |what: String| Err(BusError::Topology(what));
        for e in &self.exchanges {
            check_name("exchange", &e.name)?;
        }
        for q in &self.queues {
            check_name("queue", &q.name)?;
            if !q.quorum && q.delivery_limit.is_some() {
                // Classic queues ignore x-delivery-limit: a limit that does
                // nothing is worse than an error.
                return bad(format!(
                    "queue {}: a delivery limit needs a quorum queue",
                    q.name
                ));
            }
            if q.dead_letter_exchange.is_none() && q.dead_letter_routing_key.is_some() {
                return bad(format!(
                    "queue {}: a dead-letter routing key without a dead-letter exchange",
                    q.name
                ));
            }
        }
        for b in &self.bindings {
            check_name("queue", &b.queue)?;
            if b.exchange.is_empty() {
                return bad(format!(
                    "queue {}: cannot bind to the default exchange",
                    b.queue
                ));
            }
            if b.routing_key.len() > 255 {
                return bad(format!(
                    "binding of {}: routing key longer than 255 bytes",
                    b.queue
                ));
            }
        }
        Ok(())
    }

    /// The topology in RabbitMQ's definitions format (what
    /// `rabbitmqctl import_definitions` and the management API take).
    pub fn to_definitions(&self, vhost: &str) -> Value {
        let exchanges: Vec<Value> = self
            .exchanges
            .iter()
            .map(|e| {
                json!({
                    "name": e.name, "vhost": vhost, "type": e.kind.as_str(),
                    "durable": true, "auto_delete": false, "internal": false, "arguments": {}
                })
            })
            .collect();
        let queues: Vec<Value> = self
            .queues
            .iter()
            .map(|q| {
                let args: serde_json::Map<String, Value> = q
                    .arguments()
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            ArgValue::Str(s) => Value::from(s),
                            ArgValue::Int(i) => Value::from(i),
                        };
                        (k.to_string(), v)
                    })
                    .collect();
                json!({
                    "name": q.name, "vhost": vhost, "durable": true, "auto_delete": false,
                    "arguments": args
                })
            })
            .collect();
        let bindings: Vec<Value> = self
            .bindings
            .iter()
            .map(|b| {
                json!({
                    "source": b.exchange, "vhost": vhost, "destination": b.queue,
                    "destination_type": "queue", "routing_key": b.routing_key, "arguments": {}
                })
            })
            .collect();
        json!({
            "vhosts": [{ "name": vhost }],
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
        })
    }

    /// Reads a topology back from RabbitMQ definitions (the inverse of
    /// [`to_definitions`](Self::to_definitions); other sections are ignored).
    /// Queue arguments the bus does not know are refused, so that a
    /// hand-edited file cannot quietly disagree with the code.
    pub fn from_definitions(defs: &Value) -> Result<Self, BusError> {
        let bad = |what: &str| BusError::Topology(format!("definitions: {what}"));
        let list = |key: &str| -> Result<Vec<Value>, BusError> {
            match defs.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(a)) => Ok(a.clone()),
                Some(_) => Err(bad(&format!("{key} is not a list"))),
            }
        };
        let text = |v: &Value, key: &str| -> Result<String, BusError> {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(&format!("{key} missing or not a string")))
        };
        let mut topology = Topology::default();
        for e in list("exchanges")? {
            let name = text(&e, "name")?;
            let kind = ExchangeKind::parse(&text(&e, "type")?)
                .ok_or_else(|| bad(&format!("exchange {name}: unknown type")))?;
            if e.get("durable") != Some(&Value::Bool(true)) {
                return Err(bad(&format!("exchange {name} is not durable")));
            }
            topology.exchanges.push(ExchangeSpec { name, kind });
        }
        for q in list("queues")? {
            let name = text(&q, "name")?;
            if q.get("durable") != Some(&Value::Bool(true)) {
                return Err(bad(&format!("queue {name} is not durable")));
            }
            let empty = serde_json::Map::new();
            let args = q
                .get("arguments")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let arg_str = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
            let spec = QueueSpec {
                quorum: arg_str("x-queue-type").as_deref() == Some("quorum"),
                delivery_limit: match args.get("x-delivery-limit") {
                    None => None,
                    Some(v) => Some(
                        v.as_u64()
                            .and_then(|n| u32::try_from(n).ok())
                            .ok_or_else(|| bad(&format!("queue {name}: bad x-delivery-limit")))?,
                    ),
                },
                dead_letter_exchange: arg_str("x-dead-letter-exchange"),
                dead_letter_routing_key: arg_str("x-dead-letter-routing-key"),
                name,
            };
            // The spec must reproduce exactly these arguments.
            let expected: serde_json::Map<String, Value> = spec
                .arguments()
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        ArgValue::Str(s) => Value::from(s),
                        ArgValue::Int(i) => Value::from(i),
                    };
                    (k.to_string(), v)
                })
                .collect();
            if &expected != args {
                return Err(bad(&format!(
                    "queue {}: arguments {} are not what the bus declares ({})",
                    spec.name,
                    Value::Object(args.clone()),
                    Value::Object(expected)
                )));
            }
            topology.queues.push(spec);
        }
        for b in list("bindings")? {
            if b.get("destination_type").and_then(Value::as_str) != Some("queue") {
                return Err(bad("only bindings to queues are supported"));
            }
            topology.bindings.push(BindingSpec {
                exchange: text(&b, "source")?,
                queue: text(&b, "destination")?,
                routing_key: text(&b, "routing_key")?,
            });
        }
        Ok(topology)
    }
}

fn check_name(what: &str, name: &str) -> Result<(), BusError> {
    if name.is_empty() || name.len() > 255 {
        return Err(BusError::Topology(format!(
            "{what} name {name:?} must be 1 to 255 bytes"
        )));
    }
    if name.starts_with("amq.") {
        // RabbitMQ refuses these with ACCESS_REFUSED; refuse them in both
        // implementations.
        return Err(BusError::Topology(format!(
            "{what} name {name:?}: amq. is reserved"
        )));
    }
    Ok(())
}

/// The Tamga topology (a contract with tools outside the project: keep the
/// names exactly).
///
/// * `tamga.inbound` (topic): brokers publish signed declarations with routing
///   key `<from>.<to>`; bound with `#` to the quorum queue `tamga.verify`.
/// * `tamga.stages` (direct, internal to Tamga but not AMQP-`internal`: the
///   stages publish to it): `countersign` → `tamga.countersign`, `forward` →
///   `tamga.forward`.
/// * `tamga.dlx` (direct): each stage queue has `x-delivery-limit` and
///   dead-letters at-least-once here with its own name as routing key, bound
///   to `<stage queue>.dlq` (quorum, no limit).
/// * `tamga.outbound` (topic, routing key `<to>`) and `tamga.rejected` (topic,
///   routing key `<from>.<to>`): their queues belong to the destinations.
pub fn tamga_topology(stage_delivery_limit: u32) -> Topology {
    let exchange = |name: &str, kind| ExchangeSpec {
        name: name.into(),
        kind,
    };
    let stage = |name: &str| QueueSpec {
        name: name.into(),
        quorum: true,
        delivery_limit: Some(stage_delivery_limit),
        dead_letter_exchange: Some(names::DLX.into()),
        dead_letter_routing_key: Some(name.into()),
    };
    let bind = |exchange: &str, queue: &str, routing_key: &str| BindingSpec {
        exchange: exchange.into(),
        queue: queue.into(),
        routing_key: routing_key.into(),
    };
    let stages = [names::VERIFY, names::COUNTERSIGN, names::FORWARD];
    let dlq = |q: &str| format!("{q}{}", names::DLQ_SUFFIX);

    let mut t = Topology {
        exchanges: vec![
            exchange(names::INBOUND, ExchangeKind::Topic),
            exchange(names::STAGES, ExchangeKind::Direct),
            exchange(names::DLX, ExchangeKind::Direct),
            exchange(names::OUTBOUND, ExchangeKind::Topic),
            exchange(names::REJECTED, ExchangeKind::Topic),
        ],
        queues: Vec::new(),
        bindings: vec![
            bind(names::INBOUND, names::VERIFY, "#"),
            bind(names::STAGES, names::COUNTERSIGN, names::COUNTERSIGN_KEY),
            bind(names::STAGES, names::FORWARD, names::FORWARD_KEY),
        ],
    };
    for q in stages {
        t.queues.push(stage(q));
    }
    for q in stages {
        t.queues.push(QueueSpec::quorum(dlq(q)));
        t.bindings.push(bind(names::DLX, &dlq(q), q));
    }
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const DEFINITIONS: &str = include_str!("../../../infra/rabbitmq/definitions.json");

    #[test]
    fn definitions_json_is_the_tamga_topology() {
        let file: Value = serde_json::from_str(DEFINITIONS).expect("definitions.json parses");
        let code = tamga_topology(DEFAULT_STAGE_DELIVERY_LIMIT);
        // Read independently: every exchange, queue (with exactly the
        // arguments the bus declares) and binding agrees.
        assert_eq!(Topology::from_definitions(&file).unwrap(), code);
        // And byte-for-byte in meaning: nothing extra in the file.
        assert_eq!(file, code.to_definitions("/"));
    }

    #[test]
    fn stage_queues_have_limits_and_at_least_once_dead_lettering() {
        let t = tamga_topology(7);
        t.validate().unwrap();
        let verify = t.queues.iter().find(|q| q.name == "tamga.verify").unwrap();
        let args = verify.arguments();
        for (k, v) in [
            ("x-queue-type", ArgValue::Str("quorum".into())),
            ("x-delivery-limit", ArgValue::Int(7)),
            ("x-dead-letter-exchange", ArgValue::Str("tamga.dlx".into())),
            (
                "x-dead-letter-routing-key",
                ArgValue::Str("tamga.verify".into()),
            ),
            (
                "x-dead-letter-strategy",
                ArgValue::Str("at-least-once".into()),
            ),
            ("x-overflow", ArgValue::Str("reject-publish".into())),
        ] {
            assert!(args.contains(&(k, v.clone())), "{k} = {v:?} missing");
        }
        let dlq = t
            .queues
            .iter()
            .find(|q| q.name == "tamga.verify.dlq")
            .unwrap();
        assert_eq!(
            dlq.arguments(),
            vec![("x-queue-type", ArgValue::Str("quorum".into()))]
        );
        assert!(t.bindings.contains(&BindingSpec {
            exchange: "tamga.dlx".into(),
            queue: "tamga.verify.dlq".into(),
            routing_key: "tamga.verify".into(),
        }));
    }

    #[test]
    fn validation_refuses_what_rabbitmq_would_ignore_or_refuse() {
        let mut t = Topology::default();
        t.queues.push(QueueSpec {
            quorum: false,
            delivery_limit: Some(3),
            ..QueueSpec::quorum("classic")
        });
        assert!(matches!(t.validate(), Err(BusError::Topology(_))));
        let t = Topology {
            exchanges: vec![ExchangeSpec {
                name: "amq.mine".into(),
                kind: ExchangeKind::Direct,
            }],
            ..Topology::default()
        };
        assert!(matches!(t.validate(), Err(BusError::Topology(_))));
    }

    #[test]
    fn hand_edited_arguments_are_refused() {
        let mut defs = tamga_topology(3).to_definitions("/");
        defs["queues"][0]["arguments"]
            .as_object_mut()
            .unwrap()
            .remove("x-overflow");
        let err = Topology::from_definitions(&defs).unwrap_err();
        assert!(err.to_string().contains("tamga.verify"), "{err}");
    }
}
