//! The pipeline: stage workers over a bus and a store, from one config.
//!
//! ```text
//! tamga.inbound "<from>.<to>" → tamga.verify → [verifier] → tamga.countersign → [countersigner]
//!   → tamga.forward → [forwarder] → tamga.outbound "<to>"  |  tamga.rejected "<from>.<to>"
//! ```
//! Each stage: consume → pure engine → record (result + audit event, one
//! transaction, `ON CONFLICT DO NOTHING`) → publish (confirmed) → ack. A
//! redelivery finds the stored result and re-emits it: effects (signatures)
//! happen once. The services under `services/` and `tamga run` all start
//! stages through [`start`].
#![forbid(unsafe_code)]

pub mod backoff;
pub mod checkpoint;
pub mod config;
pub mod engine;
pub mod events;
pub mod failure;
mod http_fetch;
pub mod metrics;
pub mod ocsp_fetch;
pub mod site;
pub mod trust_source;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use backoff::Backoff;
pub use config::Config;
pub use engine::{Authority, Decided, Engine, EngineError, Poison, Verified};
pub use events::Event;
pub use failure::{Failure, Source};
pub use metrics::Metrics;
pub use worker::{headers, now_ms, run_stage, Runtime, Stage};

use tamga_bus::Bus;
use tamga_dsig::Signer;
use tamga_policy::Policy;
use tamga_store::Store;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("trust list: {0}")]
    Trust(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("authority {country}: {detail}")]
    Authority { country: String, detail: String },
    #[error("bus: {0}")]
    Bus(String),
    #[error("store: {0}")]
    Store(String),
    #[error("signal handlers: {0}")]
    Signal(String),
    #[error("stopped by a fatal error: {0}")]
    Fatal(String),
}

/// Opens a signing key from its configured form (PEM path or `pkcs11:` URI).
pub type KeyOpener = dyn Fn(&str) -> Result<Box<dyn Signer + Send + Sync>, String>;

/// Opens a PKCS#8 PEM key file, warning when others can read it.
pub fn open_pem_key(path: &str) -> Result<Box<dyn Signer + Send + Sync>, String> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path,
                "key file is readable by group or others (chmod 600 it)"
            );
        }
    }
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    tamga_dsig::SigningKey::from_pkcs8_pem(&pem)
        .map(|k| Box::new(k) as Box<dyn Signer + Send + Sync>)
        .map_err(|e| format!("{path}: {e}"))
}

/// Opens `--key`/`key =`: a `pkcs11:` URI goes to the token, anything else
/// is a PKCS#8 PEM path.
pub fn open_key(spec: &str) -> Result<Box<dyn Signer + Send + Sync>, String> {
    if spec.starts_with("pkcs11:") {
        return tamga_pkcs11::Pkcs11Signer::open_uri(spec)
            .map(|s| Box::new(s) as Box<dyn Signer + Send + Sync>)
            .map_err(|e| e.to_string());
    }
    open_pem_key(spec)
}

/// Builds the engine: trust list, policy and the authorities' keys.
pub fn build_engine(cfg: &Config, open_key: &KeyOpener) -> Result<Engine, StartError> {
    let trust = trust_source::load_trust(&cfg.trust, now_ms().div_euclid(1000))
        .map_err(|e| StartError::Trust(e.to_string()))?;
    let policy = match &cfg.trust.policy {
        Some(p) => Policy::from_toml(
            &std::fs::read_to_string(p)
                .map_err(|e| StartError::Policy(format!("{}: {e}", p.display())))?,
        )
        .map_err(StartError::Policy)?,
        None => Policy::customs(),
    };
    let mut authorities = BTreeMap::new();
    for a in &cfg.authority {
        let country = a.country.to_ascii_uppercase();
        let err = |detail: String| StartError::Authority {
            country: country.clone(),
            detail,
        };
        let signer = open_key(&a.key).map_err(err)?;
        let mut certificates = Vec::new();
        for (i, p) in std::iter::once(&a.cert).chain(a.chain.iter()).enumerate() {
            let bytes = std::fs::read(p).map_err(|e| err(format!("{}: {e}", p.display())))?;
            let found =
                tamga_dsig::certificates_from_pem(&bytes).map_err(|e| err(e.to_string()))?;
            certificates.extend(found.into_iter().take(if i == 0 { 1 } else { usize::MAX }));
        }
        let info = tamga_receipt::Authority::from_certificate(&certificates[0], &country)
            .map_err(|e| err(e.to_string()))?;
        authorities.insert(
            country,
            Authority {
                signer,
                certificates,
                info,
            },
        );
    }
    if authorities.is_empty() {
        return Err(StartError::Authority {
            country: "-".into(),
            detail: "at least one [[authority]] is required to sign receipts".into(),
        });
    }
    Ok(Engine {
        trust: engine::SharedTrust::new(trust),
        policy,
        authorities,
        fault_hook: None,
        ocsp: cfg
            .trust
            .ocsp
            .fetch
            .then(|| Arc::new(ocsp_fetch::OcspFetcher::new(&cfg.trust.ocsp))),
    })
}

/// The partner topology plus one outbound queue per destination this site
/// serves and one rejected queue per origin in the trust list, so that
/// nothing published is dropped for want of a binding.
pub fn site_topology(engine: &Engine, delivery_limit: u32) -> tamga_bus::Topology {
    let mut t = tamga_bus::tamga_topology(delivery_limit);
    for cc in engine.authorities.keys() {
        let cc = cc.to_ascii_lowercase();
        t.queues.push(tamga_bus::QueueSpec {
            name: format!("tamga.outbound.{cc}"),
            quorum: true,
            delivery_limit: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
        });
        t.bindings.push(tamga_bus::BindingSpec {
            exchange: "tamga.outbound".into(),
            queue: format!("tamga.outbound.{cc}"),
            routing_key: cc,
        });
    }
    for cc in engine.trust.current().countries() {
        let cc = cc.as_str().to_ascii_lowercase();
        t.queues.push(tamga_bus::QueueSpec {
            name: format!("tamga.rejected.{cc}"),
            quorum: true,
            delivery_limit: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
        });
        t.bindings.push(tamga_bus::BindingSpec {
            exchange: "tamga.rejected".into(),
            queue: format!("tamga.rejected.{cc}"),
            routing_key: format!("{cc}.*"),
        });
    }
    t
}

/// Handles of a running site.
#[derive(Debug)]
pub struct Running {
    pub runtime: Arc<Runtime>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Resolves with the reason once a [`Failure::Fatal`] stopped the stages.
    pub async fn fatal(&self) -> String {
        let mut rx = self.runtime.fatal.subscribe();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `runtime`, which `self` holds: never.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Starts `stages` over `bus` and `store`; returns once every stage consumes
/// (and logs `ready`).
#[allow(clippy::too_many_arguments)]
pub async fn start(
    engine: Arc<Engine>,
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    worker: &str,
    prefetch: u16,
    concurrency: usize,
    delivery_limit: u32,
    audit_chains: usize,
    stages: &[Stage],
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<Running, StartError> {
    let topology = site_topology(&engine, delivery_limit);
    let mut backoff = Backoff::outage();
    loop {
        match bus.declare(&topology).await {
            Ok(()) => break,
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "broker unavailable; retrying");
                backoff.wait().await;
            }
            Err(e) => return Err(StartError::Bus(e.to_string())),
        }
    }
    let runtime = Arc::new(Runtime {
        bus,
        store,
        engine,
        metrics,
        worker: worker.to_string(),
        prefetch,
        concurrency,
        delivery_limit,
        chains_per_stage: audit_chains.max(1),
        shutdown,
        fatal: tokio::sync::watch::channel(None).0,
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel(stages.len().max(1));
    let mut tasks = Vec::new();
    for stage in stages {
        tasks.push(tokio::spawn(run_stage(runtime.clone(), *stage, tx.clone())));
    }
    drop(tx);
    let mut ready = 0;
    while ready < stages.len() {
        match rx.recv().await {
            Some(s) => {
                tracing::debug!(stage = s.name(), "consuming");
                ready += 1;
            }
            None => break,
        }
    }
    tracing::info!(worker, stages = ?stages.iter().map(|s| s.name()).collect::<Vec<_>>(), "ready");
    // Keep the backlog gauge current (decided minus forwarded).
    let rt = runtime.clone();
    tasks.push(tokio::spawn(async move {
        let mut shutdown = rt.shutdown.clone();
        loop {
            if let Ok(counts) = rt.store.counts().await {
                let decided = counts.get("countersigned").copied().unwrap_or(0)
                    + counts.get("receipt_issued").copied().unwrap_or(0);
                let forwarded = counts.get("forwarded").copied().unwrap_or(0);
                rt.metrics
                    .outbox_backlog
                    .set(i64::try_from(decided.saturating_sub(forwarded)).unwrap_or(i64::MAX));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = shutdown.changed() => break,
            }
        }
    }));
    Ok(Running { runtime, tasks })
}
