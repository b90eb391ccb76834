//! Every way handling a delivery can fail, sorted in one place by the
//! error's own type (linkerd2-proxy's `recover` idea): what waiting fixes,
//! what it never fixes, and what is the message's own fault.
//!
//! | class | examples | what the worker does |
//! |---|---|---|
//! | [`Failure::Transient`] | store or broker unreachable, HSM/token unavailable, publish not confirmed | holds the delivery (no ack, no requeue), backs off, retries; counted and logged as a warning |
//! | [`Failure::Fatal`] | migration or integrity error, wrong topology, access refused | stops the site loudly (error log, metric, non-zero exit); the delivery goes back to the broker |
//! | [`Failure::Poison`] | bad routing key, undecodable envelope, a document the engine cannot countersign, a result the broker returns as unroutable (no queue for its origin or destination) | dead-lettered with an audit event |
//! | [`Failure::Panicked`] | a bug, or a message that triggers one | requeued until the delivery limit, then dead-lettered with an audit event |

use tamga_bus::BusError;
use tamga_store::StoreError;

use crate::engine::{EngineError, Poison};

/// Where a failure came from: the `source` label of `tamga_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// PostgreSQL or SQLite.
    Store,
    /// RabbitMQ or the in-process bus.
    Bus,
    /// The authority's signing key (PKCS#11 token, HSM, key file).
    Key,
    /// The message itself.
    Message,
    /// The engine (a panic).
    Engine,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Store => "store",
            Source::Bus => "bus",
            Source::Key => "key",
            Source::Message => "message",
            Source::Engine => "engine",
        }
    }
}

/// Why one delivery could not be handled (yet).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// Waiting fixes it: hold the delivery, back off, try again.
    #[error("{} unavailable: {why}", at.as_str())]
    Transient { at: Source, why: String },
    /// Waiting does not fix it and the message is not to blame: stop.
    #[error("fatal {} error: {why}", at.as_str())]
    Fatal { at: Source, why: String },
    /// The message can never be processed.
    #[error(transparent)]
    Poison(#[from] Poison),
    /// Processing panicked.
    #[error("processing panicked: {0}")]
    Panicked(String),
}

impl Failure {
    /// The `class` label of `tamga_failures_total`.
    pub fn class(&self) -> &'static str {
        match self {
            Failure::Transient { .. } => "transient",
            Failure::Fatal { .. } => "fatal",
            Failure::Poison(_) => "poison",
            Failure::Panicked(_) => "panic",
        }
    }

    /// The `source` label of `tamga_failures_total`.
    pub fn source(&self) -> Source {
        match self {
            Failure::Transient { at, .. } | Failure::Fatal { at, .. } => *at,
            Failure::Poison(_) => Source::Message,
            Failure::Panicked(_) => Source::Engine,
        }
    }

    pub(crate) fn transient(source: Source, why: impl Into<String>) -> Self {
        Failure::Transient {
            at: source,
            why: why.into(),
        }
    }

    /// From a `spawn_blocking` join error: a panic in the engine is a
    /// [`Failure::Panicked`] (retried only up to the delivery limit), never a
    /// transient error retried for ever.
    pub(crate) fn from_join(e: tokio::task::JoinError) -> Self {
        if e.is_panic() {
            Failure::Panicked(panic_message(e.into_panic().as_ref()))
        } else {
            // Cancelled: the runtime is shutting down.
            Failure::transient(Source::Engine, "the engine task was cancelled")
        }
    }
}

/// The text of a panic payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            Failure::Transient {
                at: Source::Store,
                why: e.to_string(),
            }
        } else {
            // Migration, integrity and configuration errors do not heal by
            // waiting; retrying them for ever hid them behind a healthy-looking
            // backlog.
            Failure::Fatal {
                at: Source::Store,
                why: e.to_string(),
            }
        }
    }
}

impl From<BusError> for Failure {
    fn from(e: BusError) -> Self {
        if e.is_transient() {
            Failure::Transient {
                at: Source::Bus,
                why: e.to_string(),
            }
        } else {
            Failure::Fatal {
                at: Source::Bus,
                why: e.to_string(),
            }
        }
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Poison(p) => Failure::Poison(p),
            // An HSM outage must hold declarations, not dead-letter every one
            // that arrives during it.
            EngineError::KeyUnavailable(why) => Failure::Transient {
                at: Source::Key,
                why,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_the_errors_own_classification() {
        let f: Failure = StoreError::Unavailable("down".into()).into();
        assert_eq!((f.class(), f.source()), ("transient", Source::Store));
        let f: Failure = StoreError::Migration("differs".into()).into();
        assert_eq!((f.class(), f.source()), ("fatal", Source::Store));
        let f: Failure = StoreError::Integrity("trigger".into()).into();
        assert_eq!(f.class(), "fatal");
        let f: Failure = BusError::Unconfirmed("nack".into()).into();
        assert_eq!((f.class(), f.source()), ("transient", Source::Bus));
        let f: Failure = BusError::Topology("PRECONDITION_FAILED".into()).into();
        assert_eq!((f.class(), f.source()), ("fatal", Source::Bus));
        let f: Failure = EngineError::KeyUnavailable("token removed".into()).into();
        assert_eq!((f.class(), f.source()), ("transient", Source::Key));
        let f: Failure = EngineError::Poison(Poison("bad route".into())).into();
        assert_eq!((f.class(), f.source()), ("poison", Source::Message));
    }

    #[test]
    fn an_engine_panic_is_not_transient() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(async {
                tokio::task::spawn_blocking(|| -> () { std::panic::panic_any("injected") }).await
            })
            .unwrap_err();
        let f = Failure::from_join(e);
        assert_eq!(f, Failure::Panicked("injected".into()));
    }
}
