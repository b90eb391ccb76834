//! The broker gateway: brokers submit signed declarations over HTTP, follow their status
//! and fetch the signed receipt, the counter-signed document and the validation report.
//!
//! ```text
//! POST /v1/declarations            (application/xml, X-Tamga-Origin/-Destination, Idempotency-Key)
//!   → claim (broker, key) → publish to tamga.inbound "<from>.<to>" (confirmed) → audit "submitted" → 202
//! GET  /v1/declarations[?lrn&status&since&cursor&limit]   the broker's own, by cursor
//! GET  /v1/declarations/{id}       status from the audit events
//! GET  /v1/declarations/{id}/receipt | /document | /report
//! GET  /v1/notifications?after=SEQ&wait=SECS   status changes, long-polled
//! GET  /v1/callback                the broker's push callback: where, delivered through, failures
//! GET  /openapi.json
//! GET  /check, /declarations/{id}, /dashboard, /v1/trust-bundle   the pages ([`pages`])
//! POST /v1/checks, GET /v1/checks/{id}, POST /v1/checks/offline   the checkpoint's checks
//! ```
//!
//! The HTTP logic is [`router`] over a [`Gateway`] (a store and a bus), testable without a
//! socket; [`serve`] adds the edges (configuration, signals, listener or TLS with client
//! certificates ([`tls`]), the notifier, the callback deliverer ([`callback`]), metrics
//! ([`metrics`]), the workers of `tamga serve`).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod api;
pub mod callback;
pub mod lrn;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod problem;
pub mod rate;
pub mod status;
pub mod tls;
pub mod token;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tamga_bus::{Bus, MemoryBus};
use tamga_pipeline::site::{connect_bus, start_site, SiteOptions};
use tamga_pipeline::{Config, KeyOpener, Stage, StartError};
use tamga_store::{ChecksStore, GatewayStore, Store, StoreError};

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("bus: {0}")]
    Bus(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

/// What the handlers need besides the store and the bus.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The policy's input limit: larger bodies get 413 before being read whole.
    pub max_bytes: usize,
    /// `Retry-After` of a 503.
    pub retry_after_secs: u32,
    /// Names this process in the audit chain of its `submitted` events.
    pub worker: String,
    /// Per-broker rate (submissions per second; 0: unlimited) and burst.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Longest hold of an empty notifications long-poll (capped at [`api::MAX_WAIT_SECS`]).
    pub long_poll_max_secs: u32,
}

impl Settings {
    /// From the site configuration (the policy file, when set, gives the input limit).
    pub fn from_config(cfg: &Config) -> Result<Self, GatewayError> {
        let policy = match &cfg.trust.policy {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| GatewayError::Io {
                    what: p.display().to_string(),
                    source,
                })?;
                tamga_policy::Policy::from_toml(&text)
                    .map_err(|e| GatewayError::Usage(format!("policy: {e}")))?
            }
            None => tamga_policy::Policy::customs(),
        };
        Ok(Self {
            max_bytes: policy.limits.max_bytes,
            retry_after_secs: cfg.gateway.retry_after_secs.max(1),
            worker: cfg.worker.name.clone(),
            rate_per_second: cfg.gateway.rate_per_second,
            rate_burst: cfg.gateway.rate_burst,
            long_poll_max_secs: cfg.gateway.long_poll_max_secs,
        })
    }
}

/// What [`Gateway::with_options`] adds to [`Gateway::new`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The push notifications' deliverer.
    pub callbacks: callback::CallbackSettings,
    /// Shared metrics (default: new ones).
    pub metrics: Option<Arc<metrics::GatewayMetrics>>,
    /// Test hook of the fault tests: the process aborts right after the broker confirmed a
    /// submission's publish, before recording it and answering. Only [`serve`] sets it, from
    /// `TAMGA_TEST_ABORT_AFTER_CONFIRM=1`; unset (always, in production) it does nothing.
    pub abort_after_confirm: bool,
}

/// The gateway's state: shared by every request.
pub struct Gateway {
    pub store: Arc<dyn GatewayStore>,
    pub bus: Arc<dyn Bus>,
    pub settings: Settings,
    pub metrics: Arc<metrics::GatewayMetrics>,
    callbacks: callback::CallbackSettings,
    abort_after_confirm: bool,
    limiter: rate::RateLimiter,
    key_locks: Vec<tokio::sync::Mutex<()>>,
    /// Wakes long-polls of `/v1/notifications` and the callback deliverer when this
    /// process records notifications.
    notified: tokio::sync::Notify,
    /// The submissions the notifier follows (see `watch.rs`): those this process
    /// published, and those its sweeps of the table found unsettled.
    watch: std::sync::Mutex<watch::Watch>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(store: Arc<dyn GatewayStore>, bus: Arc<dyn Bus>, settings: Settings) -> Arc<Self> {
        Self::with_options(store, bus, settings, Options::default())
    }

    pub fn with_options(
        store: Arc<dyn GatewayStore>,
        bus: Arc<dyn Bus>,
        settings: Settings,
        options: Options,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            bus,
            limiter: rate::RateLimiter::new(settings.rate_per_second, settings.rate_burst),
            settings,
            metrics: options.metrics.unwrap_or_default(),
            callbacks: options.callbacks,
            abort_after_confirm: options.abort_after_confirm,
            key_locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
            notified: tokio::sync::Notify::new(),
            watch: std::sync::Mutex::default(),
        })
    }
}

/// Every `(method, path)` the API serves: [`router`] and the OpenAPI document must both
/// have exactly these (the tests check).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/declarations"),
    ("get", "/v1/declarations"),
    ("get", "/v1/declarations/{id}"),
    ("get", "/v1/declarations/{id}/receipt"),
    ("get", "/v1/declarations/{id}/document"),
    ("get", "/v1/declarations/{id}/report"),
    ("get", "/v1/notifications"),
    ("get", "/v1/callback"),
    ("get", "/openapi.json"),
];

/// The API's routes.
pub fn router(gw: Arc<Gateway>) -> Router {
    let counted = gw.metrics.clone();
    Router::new()
        .route("/v1/declarations", get(api::list).post(api::submit))
        .route("/v1/declarations/{id}", get(api::status))
        .route("/v1/declarations/{id}/receipt", get(api::receipt))
        .route("/v1/declarations/{id}/document", get(api::document))
        .route("/v1/declarations/{id}/report", get(api::report))
        .route("/v1/notifications", get(api::notifications))
        .route("/v1/callback", get(api::callback))
        .route("/openapi.json", get(openapi::serve_json))
        .fallback(api::no_route)
        .method_not_allowed_fallback(api::method_not_allowed)
        .with_state(gw)
        .layer(axum::middleware::from_fn_with_state(
            counted,
            metrics::track,
        ))
}

/// The store of `cfg`: PostgreSQL from `[database]`, else the embedded SQLite file.
pub async fn connect_store(
    cfg: &Config,
    embedded: bool,
) -> Result<Arc<dyn ChecksStore>, GatewayError> {
    match (&cfg.database, embedded) {
        (Some(d), false) => {
            tamga_pipeline::site::warn_without_boundary(d);
            // The submission's record shares the workers' group committer settings:
            // one transaction for many concurrent submissions.
            Ok(Arc::new(
                connect_postgres(d).await?.with_group_commit(d.group_commit),
            ))
        }
        _ => Ok(Arc::new(tamga_store::open_sqlite(std::path::Path::new(
            &cfg.embedded.sqlite,
        ))?)),
    }
}

/// The gateway's store and its workers' (`tamga serve`). On PostgreSQL, two pools — a
/// worker's claim holds a pooled connection while it signs, so submissions must never
/// queue behind them (sharing one pool, the gateway accepted at the workers' pace) — but
/// one group committer: a submission's claim and marker ride in the workers'
/// transactions (fewer commits and WAL flushes per declaration). On the embedded default,
/// one store.
pub async fn connect_stores(
    cfg: &Config,
    embedded: bool,
) -> Result<(Arc<dyn ChecksStore>, Arc<dyn Store>), GatewayError> {
    match (&cfg.database, embedded) {
        (Some(d), false) => {
            tamga_pipeline::site::warn_without_boundary(d);
            let gateway = connect_postgres(d).await?.with_group_commit(d.group_commit);
            let workers = connect_postgres(d).await?.sharing_group_commit(&gateway);
            Ok((Arc::new(gateway), Arc::new(workers)))
        }
        _ => {
            let store = connect_store(cfg, embedded).await?;
            Ok((store.clone(), store))
        }
    }
}

/// PostgreSQL per `d`, retried while it is unavailable; without a group committer (the
/// caller starts one or shares another's).
async fn connect_postgres(
    d: &tamga_pipeline::config::DatabaseConfig,
) -> Result<tamga_store::PgStore, GatewayError> {
    let sc = d.store_config();
    let mut backoff = tamga_pipeline::Backoff::outage();
    loop {
        match tamga_store::connect_postgres(&sc).await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "database unavailable; retrying");
                backoff.wait().await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A new API token for `broker` (optionally restricted to submitting from `country`).
/// Returns the token: it is shown once, only its SHA-256 is stored.
pub async fn create_token(
    store: &dyn GatewayStore,
    broker: &str,
    country: Option<&str>,
) -> Result<String, GatewayError> {
    check_broker(broker)?;
    let country = match country {
        Some(cc) => {
            let upper = cc.to_ascii_uppercase();
            if upper.parse::<tamga_trust::CountryCode>().is_err() {
                return Err(GatewayError::Usage(format!(
                    "--country {cc:?} is not an ISO 3166 alpha-2 code"
                )));
            }
            Some(upper)
        }
        None => None,
    };
    let token = token::generate().map_err(GatewayError::Usage)?;
    store
        .create_token(
            &token::hash(&token),
            broker,
            country.as_deref(),
            tamga_pipeline::now_ms(),
        )
        .await?;
    Ok(token)
}

/// A broker's name: 1 to 128 characters, no control characters.
pub(crate) fn check_broker(broker: &str) -> Result<(), GatewayError> {
    if broker.is_empty() || broker.len() > 128 || broker.chars().any(char::is_control) {
        return Err(GatewayError::Usage(
            "--broker must be 1 to 128 characters, no control characters".into(),
        ));
    }
    Ok(())
}

/// Revokes every token of `broker`; returns how many.
pub async fn revoke_tokens(store: &dyn GatewayStore, broker: &str) -> Result<u64, GatewayError> {
    Ok(store
        .revoke_tokens(broker, tamga_pipeline::now_ms())
        .await?)
}

/// What [`serve`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// `tamga-gateway`: the gateway alone, against RabbitMQ and PostgreSQL.
    GatewayOnly,
    /// `tamga serve`: the gateway and the workers (these stages) in one process; the
    /// embedded default when the configuration has no `[amqp]`/`[database]`.
    WithWorkers(Vec<Stage>),
}

/// The listen address: `[gateway] listen` (or `TAMGA_GATEWAY_LISTEN`, applied when the
/// configuration was loaded).
fn listen_addr(cfg: &Config) -> String {
    cfg.gateway.listen.clone()
}

/// The test hook's environment variable (see [`Options::abort_after_confirm`]).
pub const TEST_ABORT_AFTER_CONFIRM: &str = "TAMGA_TEST_ABORT_AFTER_CONFIRM";

/// Runs until SIGINT or SIGTERM. Order: signal handlers, then the store and the bus, then
/// the listener, then (with workers) the pipeline, then the `ready` line with the address.
pub async fn serve(cfg: &Config, mode: Mode, open_key: &KeyOpener) -> Result<(), GatewayError> {
    use tokio::signal::unix::{signal, SignalKind};
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| GatewayError::Io { what, source }
    };
    let mut term = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;

    let embedded = cfg.is_embedded();
    if mode == Mode::GatewayOnly && (cfg.amqp.is_none() || cfg.database.is_none()) {
        return Err(GatewayError::Usage(
            "tamga-gateway needs [amqp] and [database]; `tamga serve` runs the embedded default"
                .into(),
        ));
    }
    let settings = Settings::from_config(cfg)?;
    let tls = cfg
        .gateway
        .tls
        .as_ref()
        .map(tls::server_config)
        .transpose()?;
    let abort_after_confirm = std::env::var(TEST_ABORT_AFTER_CONFIRM).is_ok_and(|v| v == "1");
    if abort_after_confirm {
        tracing::warn!(
            "{TEST_ABORT_AFTER_CONFIRM}=1: a test hook — this process aborts after its first confirmed submission"
        );
    }
    let (store, workers_store) = match &mode {
        Mode::WithWorkers(_) => connect_stores(cfg, embedded).await?,
        _ => {
            let store = connect_store(cfg, embedded).await?;
            (store.clone(), store as Arc<dyn Store>)
        }
    };
    let bus: Arc<dyn Bus> = if embedded {
        Arc::new(MemoryBus::new())
    } else {
        connect_bus(cfg, false).await?
    };
    if mode == Mode::GatewayOnly {
        declare_inbound(bus.as_ref(), cfg).await?;
    }
    let listen = listen_addr(cfg);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(io(&format!("cannot listen on {listen}")))?;
    let addr: SocketAddr = listener.local_addr().map_err(io("listener address"))?;
    let site = match &mode {
        Mode::WithWorkers(stages) => {
            // Their own pool, one group committer (see `connect_stores`).
            Some(
                start_site(
                    cfg,
                    &SiteOptions {
                        embedded,
                        stages: stages.clone(),
                    },
                    open_key,
                    Some(bus.clone()),
                    Some(workers_store),
                )
                .await?,
            )
        }
        _ => None,
    };
    // The gateway's metrics beside the workers' at [metrics] listen; the checkpoint's
    // (`checked` events) in the site's registry.
    let metrics = Arc::new(metrics::GatewayMetrics::new());
    let site_metrics = match &site {
        Some(site) => {
            if let Err(e) = metrics.register(&site.metrics.registry) {
                tracing::warn!(error = %e, "gateway metrics not registered");
            }
            site.metrics.clone()
        }
        None => {
            let host = Arc::new(tamga_pipeline::Metrics::new());
            if let Err(e) = metrics.register(&host.registry) {
                tracing::warn!(error = %e, "gateway metrics not registered");
            }
            if !cfg.metrics.listen.is_empty() {
                let listen = cfg.metrics.listen.clone();
                let served = host.clone();
                tokio::spawn(async move {
                    if let Err(e) = tamga_pipeline::metrics::serve(&listen, served).await {
                        tracing::warn!(listen, error = %e, "metrics endpoint unavailable");
                    }
                });
            }
            host
        }
    };
    let gw = Gateway::with_options(
        store.clone(),
        bus,
        settings,
        Options {
            callbacks: callback::CallbackSettings::from_config(cfg),
            metrics: Some(metrics.clone()),
            abort_after_confirm,
        },
    );
    let pages = pages::Pages::new(
        gw.clone(),
        store,
        &cfg.trust.dir,
        pages_authorities(cfg, open_key),
        tamga_pipeline::now_ms().div_euclid(1000),
        cfg.gateway.checks.clone(),
        site_metrics,
    )?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let notifier = tokio::spawn(
        gw.clone()
            .run_notifier(Duration::from_millis(500), stop_rx.clone()),
    );
    let deliverer = tokio::spawn(gw.clone().run_deliverer(stop_rx.clone()));
    let app = router(gw).merge(pages::router(pages));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let server = match tls {
        Some(config) => tokio::spawn(tls::serve_tls(
            listener,
            config,
            app,
            metrics,
            stop_rx.clone(),
        )),
        None => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.changed().await;
                })
                .await
            {
                tracing::error!(error = %e, "server stopped");
            }
        }),
    };
    tracing::info!(listen = %addr, embedded, "gateway ready on {scheme}://{addr}");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), notifier).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), deliverer).await;
    if let Some(site) = site {
        site.stop().await;
    }
    Ok(())
}

/// The site's authority keys, for the pages (the first signs trust bundles and check
/// records). One that cannot be opened is left out with a warning: the gateway serves
/// without it (the trust bundle answers 503), as it did before the pages.
pub fn pages_authorities(cfg: &Config, open_key: &KeyOpener) -> Vec<pages::BundleSigner> {
    let mut out = Vec::new();
    for a in &cfg.authority {
        let load = || -> Result<pages::BundleSigner, String> {
            let signer = open_key(&a.key)?;
            let mut chain = Vec::new();
            for (i, p) in std::iter::once(&a.cert).chain(a.chain.iter()).enumerate() {
                let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
                let found = tamga_dsig::certificates_from_pem(&bytes)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                chain.extend(found.into_iter().take(if i == 0 { 1 } else { usize::MAX }));
            }
            Ok(pages::BundleSigner {
                signer,
                chain,
                country: a.country.to_ascii_uppercase(),
            })
        };
        match load() {
            Ok(b) => out.push(b),
            Err(e) => {
                tracing::warn!(country = %a.country, error = %e, "pages: authority key not usable for trust bundles")
            }
        }
    }
    out
}

/// The partner topology (tamga.inbound and the stage queues), retrying while the broker is
/// down, so that a submission is never published to a missing exchange.
async fn declare_inbound(bus: &dyn Bus, cfg: &Config) -> Result<(), GatewayError> {
    let limit = cfg.amqp.as_ref().map_or(5, |a| a.delivery_limit);
    let topology = tamga_bus::tamga_topology(limit);
    let mut backoff = tamga_pipeline::Backoff::outage();
    loop {
        match bus.declare(&topology).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "broker unavailable; retrying");
                backoff.wait().await;
            }
            Err(e) => return Err(GatewayError::Bus(e.to_string())),
        }
    }
}
