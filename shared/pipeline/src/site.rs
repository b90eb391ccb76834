//! Running a site from its configuration: the I/O edges (broker or
//! in-process bus, PostgreSQL or SQLite, the metrics endpoint, signals)
//! around [`crate::start`]. `tamga run` and the per-stage binaries under
//! `services/` all come through here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tamga_bus::{AmqpBus, AmqpOptions, Bus, MemoryBus};
use tamga_store::Store;

use crate::checkpoint::{CheckpointKey, Checkpointer};
use crate::config::Config;
use crate::{build_engine, start, KeyOpener, Metrics, Running, Stage, StartError};

/// How to run.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    /// Force the in-process bus and SQLite even when `[amqp]`/`[database]` are set.
    pub embedded: bool,
    pub stages: Vec<Stage>,
}

/// The tracing filter for `[log] level`: that level, except lapin's warning
/// for every message the broker returns, which prints the whole message —
/// the peer's document as a list of decimal bytes, up to the size limit — and
/// says nothing the worker does not already log (`poison message
/// dead-lettered`, with the routing key and the reason).
pub fn log_filter(level: &str) -> String {
    format!("{level},lapin::returned_messages=error")
}

/// Sets up logging as configured (`text` or `json`). Safe to call twice.
/// `TAMGA_LOG`, when set, replaces the filter entirely.
pub fn init_logging(format: &str, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("TAMGA_LOG").unwrap_or_else(|_| EnvFilter::new(log_filter(level)));
    // Colour only on a terminal: logs read by tools (and `ready` probes)
    // must be plain text.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Connects the bus: the broker in `[amqp]` (retrying while it is down), or
/// the in-process bus.
pub async fn connect_bus(cfg: &Config, embedded: bool) -> Result<Arc<dyn Bus>, StartError> {
    match (&cfg.amqp, embedded) {
        (Some(a), false) => {
            let opts = AmqpOptions {
                heartbeat_secs: a.heartbeat_secs,
                connect_timeout: Duration::from_secs(5),
                confirm_timeout: Duration::from_millis(a.confirm_timeout_ms),
                publisher_channels: a.publisher_channels.max(1),
                ..AmqpOptions::default()
            };
            let mut backoff = crate::Backoff::outage();
            loop {
                match AmqpBus::connect(&a.url, opts.clone()).await {
                    Ok(b) => return Ok(Arc::new(b)),
                    Err(e) if e.is_transient() => {
                        tracing::warn!(url = %crate::config::redact(&a.url), error = %e, "broker unavailable; retrying");
                        backoff.wait().await;
                    }
                    Err(e) => return Err(StartError::Bus(e.to_string())),
                }
            }
        }
        _ => Ok(Arc::new(MemoryBus::new())),
    }
}

/// Connects the store: PostgreSQL in `[database]` (migrated at start,
/// retrying while it is down), or SQLite.
pub async fn connect_store(cfg: &Config, embedded: bool) -> Result<Arc<dyn Store>, StartError> {
    match (&cfg.database, embedded) {
        (Some(d), false) => {
            let sc = d.store_config();
            warn_without_boundary(d);
            let mut backoff = crate::Backoff::outage();
            loop {
                match tamga_store::connect_postgres(&sc).await {
                    Ok(s) => return Ok(Arc::new(s.with_group_commit(d.group_commit))),
                    Err(e) if e.is_transient() => {
                        tracing::warn!(url = %crate::config::redact(&d.url), error = %e, "database unavailable; retrying");
                        backoff.wait().await;
                    }
                    Err(e) => return Err(StartError::Store(e.to_string())),
                }
            }
        }
        _ => tamga_store::open_sqlite(std::path::Path::new(&cfg.embedded.sqlite))
            .map(|s| Arc::new(s) as Arc<dyn Store>)
            .map_err(|e| StartError::Store(e.to_string())),
    }
}

/// One URL for everything: the workers log in as the schema's owner, so `SET ROLE` is a
/// seatbelt, not a boundary. Said once, at start.
pub fn warn_without_boundary(d: &crate::config::DatabaseConfig) {
    if !d.is_split() {
        tracing::warn!(
            "[database] has no migrate_url: the workers log in as the schema's owner and \
             migrate at start; a superuser or owner session can rewrite the audit trail. For \
             a privilege boundary set migrate_url (the owner, for `tamga migrate`) and point \
             url at tamga_worker"
        );
    }
}

/// A started site (bus, store, stages, metrics endpoint).
pub struct Site {
    pub running: Running,
    pub bus: Arc<dyn Bus>,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Signs checkpoints of the audit trail (at `[audit] checkpoint_interval_s` and at
    /// stop); `None` when the store keeps none.
    pub checkpointer: Option<Arc<Checkpointer>>,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// Asks every stage to stop and waits for in-flight work to settle, then signs a
    /// last checkpoint over everything recorded.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.running.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        if let Some(cp) = &self.checkpointer {
            let last = crate::checkpoint::checkpoint_and_report(cp, &self.metrics, "shutdown");
            if tokio::time::timeout(Duration::from_secs(30), last)
                .await
                .is_err()
            {
                tracing::warn!("the shutdown checkpoint did not finish within 30 s");
            }
        }
    }
}

/// Starts a site from `cfg`. When `bus`/`store` are given they are used
/// (the demo and tests share an in-process bus with the process that
/// publishes); otherwise they come from the configuration.
pub async fn start_site(
    cfg: &Config,
    options: &SiteOptions,
    open_key: &KeyOpener,
    bus: Option<Arc<dyn Bus>>,
    store: Option<Arc<dyn Store>>,
) -> Result<Site, StartError> {
    start_site_with_fault_hook(cfg, options, open_key, bus, store, None).await
}

/// [`start_site`] with a [`crate::engine::FaultHook`] run on every document
/// before verification: how the fault tests inject a panic into the engine.
#[doc(hidden)]
pub async fn start_site_with_fault_hook(
    cfg: &Config,
    options: &SiteOptions,
    open_key: &KeyOpener,
    bus: Option<Arc<dyn Bus>>,
    store: Option<Arc<dyn Store>>,
    fault_hook: Option<crate::engine::FaultHook>,
) -> Result<Site, StartError> {
    let metrics = Arc::new(Metrics::new());
    if !cfg.metrics.listen.is_empty() {
        let m = metrics.clone();
        let listen = cfg.metrics.listen.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(&listen, m).await {
                tracing::warn!(listen, error = %e, "metrics endpoint unavailable");
            }
        });
    }
    let mut engine = build_engine(cfg, open_key)?;
    engine.fault_hook = fault_hook;
    let engine = Arc::new(engine);
    metrics.set_trust_state(&engine.trust.current());
    let bus = match bus {
        Some(b) => b,
        None => connect_bus(cfg, options.embedded).await?,
    };
    let store = match store {
        Some(s) => s,
        None => connect_store(cfg, options.embedded).await?,
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (prefetch, limit) = cfg
        .amqp
        .as_ref()
        .map_or((64, 5), |a| (a.prefetch, a.delivery_limit));
    let checkpoint_key = CheckpointKey::from_engine(&engine, cfg.audit.authority.as_deref())
        .map_err(|detail| StartError::Authority {
            country: cfg.audit.authority.clone().unwrap_or_else(|| "-".into()),
            detail,
        })?;
    let pinned =
        crate::checkpoint::pinned_certificates(cfg).map_err(|detail| StartError::Authority {
            country: "-".into(),
            detail: format!("[audit] certificates: {detail}"),
        })?;
    let running = start(
        engine,
        bus.clone(),
        store.clone(),
        metrics.clone(),
        &cfg.worker.name,
        prefetch,
        cfg.worker.concurrency,
        limit,
        cfg.worker.audit_chains,
        &options.stages,
        rx,
    )
    .await?;
    let checkpointer = store.checkpoint_store().is_some().then(|| {
        Arc::new(Checkpointer::new(
            store.clone(),
            checkpoint_key,
            cfg.audit.dir().map(Path::to_path_buf),
            pinned,
        ))
    });
    let mut running = running;
    if let Some(cp) = &checkpointer {
        if cfg.audit.dir().is_none() {
            tracing::warn!(
                "[audit] checkpoint_dir is not set: checkpoints are kept in the database only, \
                 which anchors nothing against whoever can rewrite it"
            );
        }
        if cfg.audit.checkpoint_interval_s > 0 {
            running
                .tasks
                .push(tokio::spawn(crate::checkpoint::run_periodic(
                    cp.clone(),
                    metrics.clone(),
                    Duration::from_secs(cfg.audit.checkpoint_interval_s),
                    running.runtime.shutdown.clone(),
                )));
        }
    }
    Ok(Site {
        running,
        bus,
        store,
        metrics,
        shutdown: tx,
        checkpointer,
    })
}

/// SIGTERM and SIGINT, listened for from the moment this is created.
///
/// Create it before anything announces readiness: a signal that arrives
/// between the `ready` line and the first wait is then remembered (tokio
/// records it on the stream) instead of killing the process by the signal's
/// default action — exactly what an orchestrator does on a rolling update
/// right after a readiness probe. Every binary that logs `ready` goes
/// through this.
#[derive(Debug)]
pub struct StopSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Installs the handlers (needs a running tokio runtime with signals enabled).
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first SIGTERM or SIGINT received since [`Self::install`].
    pub async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Runs until SIGINT or SIGTERM. The handlers are installed before the site
/// starts, so a stop requested during start-up is honoured (cleanly) as soon
/// as start-up finishes.
pub async fn run_until_signal(
    cfg: &Config,
    options: &SiteOptions,
    open_key: &KeyOpener,
) -> Result<(), StartError> {
    // Handlers first (see `StopSignal`): a SIGTERM right after `ready`
    // must stop cleanly and a SIGHUP reload, never kill.
    let mut stop = StopSignal::install().map_err(|e| StartError::Signal(e.to_string()))?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|e| StartError::Signal(e.to_string()))?;
    let site = start_site(cfg, options, open_key, None, None).await?;
    let period = (cfg.trust.reload_secs > 0).then(|| Duration::from_secs(cfg.trust.reload_secs));
    let fatal = loop {
        let tick = async {
            match period {
                Some(p) => tokio::time::sleep(p).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.wait() => break None,
            why = site.running.fatal() => break Some(why),
            _ = hup.recv() => {
                let _ = reload_trust(cfg, &site, "SIGHUP").await;
            }
            _ = tick => {
                let _ = reload_trust(cfg, &site, "periodic").await;
            }
        }
    };
    tracing::info!("shutting down");
    site.stop().await;
    match fatal {
        None => Ok(()),
        Some(why) => Err(StartError::Fatal(why)),
    }
}

/// Audit `stage` of a trust reload.
pub const TRUST_RELOADED: &str = "trust_reloaded";

/// Reloads the trust source and puts it in force without a restart; every
/// attempt is audited (outcome `ok` or `failed`, the degraded countries and
/// the lists' sequence numbers in `detail`). A reload that cannot load at
/// all keeps the list in force.
pub async fn reload_trust(cfg: &Config, site: &Site, why: &str) -> Result<(), String> {
    let trust_cfg = cfg.trust.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        crate::trust_source::load_trust(&trust_cfg, crate::now_ms().div_euclid(1000))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.0));
    let engine = &site.running.runtime.engine;
    let (outcome, detail, digest) = match &loaded {
        Ok(trust) => {
            let sources: serde_json::Map<String, serde_json::Value> = trust
                .countries()
                .into_iter()
                .filter_map(|cc| {
                    trust
                        .source(cc)
                        .and_then(|s| serde_json::to_value(s).ok())
                        .map(|v| (cc.to_string(), v))
                })
                .collect();
            let detail = serde_json::json!({
                "trigger": why,
                "sources": sources,
                "faults": trust.faults(),
            });
            let digest = crate::engine::sha256_hex(detail.to_string().as_bytes());
            ("ok", detail, digest)
        }
        Err(e) => {
            let detail = serde_json::json!({ "trigger": why, "error": e });
            let digest = crate::engine::sha256_hex(detail.to_string().as_bytes());
            ("failed", detail, digest)
        }
    };
    let event = tamga_store::AuditEvent {
        at_ms: crate::now_ms(),
        stage: TRUST_RELOADED.into(),
        worker: site.running.runtime.worker.clone(),
        declaration_id: format!("trust-reload-{}", crate::now_ms()),
        origin: "-".into(),
        destination: "-".into(),
        outcome: outcome.into(),
        sub_indication: None,
        reason: None,
        digest,
        detail: Some(detail.to_string()),
    };
    let chain = format!("{}.trust", site.running.runtime.worker);
    if let Err(e) = site.store.append(&chain, &event).await {
        tracing::warn!(error = %e, "trust reload could not be audited");
    }
    match loaded {
        Ok(trust) => {
            site.metrics.set_trust_state(&trust);
            tracing::info!(
                trigger = why,
                countries = trust.countries().len(),
                faults = trust.faults().len(),
                "trust reloaded"
            );
            engine.trust.replace(trust);
            Ok(())
        }
        Err(e) => {
            tracing::warn!(trigger = why, error = %e, "trust reload failed; the list in force is kept");
            Err(e)
        }
    }
}

/// `main` of a per-stage binary (`verifier`, `countersigner`, `forwarder`):
/// `<name> --config FILE`, the stage alone, until SIGINT/SIGTERM.
pub fn stage_main(name: &str, stage: Stage) -> std::process::ExitCode {
    use std::process::ExitCode;
    let args: Vec<String> = std::env::args().collect();
    let Some(config) = args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
    else {
        eprintln!(
            "usage: {name} --config FILE   (environment: TAMGA_AMQP_URL, TAMGA_DATABASE_URL, …)"
        );
        return ExitCode::from(2);
    };
    let cfg = match Config::load(std::path::Path::new(config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.log.format, &cfg.log.level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = SiteOptions {
        embedded: false,
        stages: vec![stage],
    };
    match rt.block_on(run_until_signal(&cfg, &options, &crate::open_key)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_log_filter_keeps_the_level_and_quiets_lapins_dump_of_returned_messages() {
        for level in ["info", "warn", "tamga_pipeline=debug,info"] {
            let filter = super::log_filter(level);
            assert!(
                tracing_subscriber::EnvFilter::try_new(&filter).is_ok(),
                "{filter}"
            );
            assert!(filter.starts_with(level), "{filter}");
            assert!(
                filter.ends_with(",lapin::returned_messages=error"),
                "{filter}"
            );
        }
    }
}
