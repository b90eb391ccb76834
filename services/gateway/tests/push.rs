#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Push notifications and the gateway's metrics, over the real pipeline, on the embedded
//! default (in-process bus, SQLite) and on RabbitMQ (a vhost per test) with PostgreSQL (a
//! database per test). The receiver is a real HTTP server (axum on 127.0.0.1:0) that
//! checks the HMAC of every request: it answers 500 a few times then 200 (every
//! notification delivered once after the retries), or is not there at all (the failure
//! shows in `GET /v1/callback` and in the metrics; the pipeline and the submissions go on;
//! pointing the callback elsewhere delivers what was pending).
//!
//! Fixtures as in tests/api.rs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tamga_bus::{AmqpBus, AmqpOptions, Bus, MemoryBus};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_gateway::callback::{self, CallbackSettings};
use tamga_gateway::metrics::GatewayMetrics;
use tamga_gateway::{router, Gateway, Options, Settings};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, Site, SiteOptions};
use tamga_pipeline::{Config, Stage};
use tamga_store::{GatewayStore, Store, StoreConfig};
use tower::ServiceExt;

// --- fixtures ---------------------------------------------------------------

struct Pki {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        tamga_pki::generate(&tamga_pki::DemoPkiOptions {
            countries: vec!["KZ".into(), "AZ".into(), "TR".into()],
            now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
        })
        .unwrap()
        .write_to(dir.path())
        .unwrap();
        Pki {
            root: dir.path().to_path_buf(),
            _dir: dir,
        }
    })
}

fn config(sqlite: &Path) -> Config {
    let root = &pki().root;
    Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: root.join("trust"),
            policy: None,
            ..TrustConfig::default()
        },
        authority: ["AZ", "TR"]
            .iter()
            .map(|cc| {
                let d = root.join("keys").join(cc);
                AuthorityConfig {
                    country: cc.to_string(),
                    key: d.join("authority.key").display().to_string(),
                    cert: d.join("authority.pem"),
                    chain: vec![d.join("issuing-ca.pem")],
                }
            })
            .collect(),
        worker: WorkerConfig {
            name: "gw-test".into(),
            concurrency: 8,
            ..WorkerConfig::default()
        },
        metrics: MetricsConfig {
            listen: String::new(),
        },
        log: LogConfig::default(),
        embedded: EmbeddedConfig {
            sqlite: sqlite.display().to_string(),
        },
        gateway: Default::default(),
        audit: Default::default(),
    }
}

fn signed(from: &str, to: &str, seq: u64) -> Vec<u8> {
    let d = pki().root.join("keys").join(from);
    let key =
        SigningKey::from_pkcs8_pem(&std::fs::read(d.join("broker-ecdsa.key")).unwrap()).unwrap();
    let mut certs =
        tamga_dsig::certificates_from_pem(&std::fs::read(d.join("broker-ecdsa.pem")).unwrap())
            .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(d.join("issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    let doc = sample(&SampleSpec::new(from, to, seq, 3));
    sign_enveloped(
        doc.as_bytes(),
        &key,
        &SignOptions {
            certificates: certs,
            digest: DigestAlgorithm::Sha256,
            xades: false,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

fn forged(from: &str, to: &str, seq: u64) -> Vec<u8> {
    String::from_utf8(signed(from, to, seq))
        .unwrap()
        .replacen("<HSCode>", "<HSCode>9", 1)
        .into_bytes()
}

// --- environments -----------------------------------------------------------

struct Env {
    store: Arc<dyn GatewayStore>,
    bus: Arc<dyn Bus>,
    gw: Arc<Gateway>,
    site: Option<Site>,
    app: axum::Router,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
    cleanup: Vec<Box<dyn FnOnce() + Send>>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in self.cleanup.drain(..) {
            c();
        }
    }
}

fn settings() -> Settings {
    Settings {
        max_bytes: 256 * 1024,
        retry_after_secs: 2,
        worker: "push-test".into(),
        rate_per_second: 1000,
        rate_burst: 1000,
        long_poll_max_secs: 30,
    }
}

fn unique(prefix: &str) -> String {
    let n = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{prefix}_{}_{:x}", std::process::id(), n)
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl is required (make services)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn embedded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = tamga_store::open_sqlite(&dir.path().join("audit.sqlite")).unwrap();
    finish(Arc::new(store), Arc::new(MemoryBus::new()), dir, Vec::new()).await
}

async fn real() -> Env {
    let vhost = unique("tamga-push");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let bus = AmqpBus::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        AmqpOptions::default(),
    )
    .await
    .expect("RabbitMQ must run on 127.0.0.1:5672 (make services)");
    let db = unique("tamga_push");
    let (admin, conn) = tokio_postgres::connect(
        "host=127.0.0.1 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL must run on 127.0.0.1:5432 (make services)");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let store = tamga_store::connect_postgres(&StoreConfig {
        app_role: Some("tamga_app".into()),
        ..StoreConfig::new(format!("postgres://postgres@127.0.0.1:5432/{db}"))
    })
    .await
    .unwrap();
    let (v, d) = (vhost.clone(), db.clone());
    finish(
        Arc::new(store),
        Arc::new(bus),
        tempfile::tempdir().unwrap(),
        vec![Box::new(move || {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_vhost", &v])
                .output();
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {d} WITH (FORCE)"))
                .output();
        })],
    )
    .await
}

async fn finish(
    store: Arc<dyn GatewayStore>,
    bus: Arc<dyn Bus>,
    dir: tempfile::TempDir,
    cleanup: Vec<Box<dyn FnOnce() + Send>>,
) -> Env {
    let site = start_site(
        &config(&dir.path().join("unused.sqlite")),
        &SiteOptions {
            embedded: false,
            stages: vec![Stage::Fused],
        },
        &tamga_pipeline::open_key,
        Some(bus.clone()),
        Some(store.clone() as Arc<dyn Store>),
    )
    .await
    .unwrap();
    let gw = Gateway::with_options(
        store.clone(),
        bus.clone(),
        settings(),
        Options {
            callbacks: CallbackSettings {
                timeout: Duration::from_secs(5),
                retry_first: Duration::from_millis(50),
                retry_max: Duration::from_millis(400),
                poll: Duration::from_millis(50),
                extra_roots: Vec::new(),
            },
            metrics: Some(Arc::new(GatewayMetrics::new())),
            abort_after_confirm: false,
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(
        gw.clone()
            .run_notifier(Duration::from_millis(50), stopped.clone()),
    );
    tokio::spawn(gw.clone().run_deliverer(stopped));
    let app = router(gw.clone());
    Env {
        store,
        bus,
        gw,
        site: Some(site),
        app,
        _stop: stop,
        _dir: dir,
        cleanup,
    }
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let r = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = r.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

fn json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {}", String::from_utf8_lossy(body));
    })
}

fn submission(token: &str, key: &str, route: (&str, &str), body: Vec<u8>) -> Request<Body> {
    Request::post("/v1/declarations")
        .header(header::CONTENT_TYPE, "application/xml")
        .header("X-Tamga-Origin", route.0)
        .header("X-Tamga-Destination", route.1)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Idempotency-Key", key)
        .body(Body::from(body))
        .unwrap()
}

impl Env {
    async fn token(&self, broker: &str) -> String {
        tamga_gateway::create_token(self.store.as_ref(), broker, None)
            .await
            .unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        send(
            &self.app,
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    async fn submit(&self, token: &str, key: &str, body: Vec<u8>) -> String {
        let r = send(&self.app, submission(token, key, ("KZ", "AZ"), body)).await;
        assert_eq!(
            r.0,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&r.2)
        );
        json(&r.2)["id"].as_str().unwrap().to_owned()
    }

    async fn wait_for(&self, token: &str, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, _, body) = self.get(token, &format!("/v1/declarations/{id}")).await;
            assert_eq!(status, StatusCode::OK);
            if json(&body)["status"] == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id} still {}", json(&body));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET /v1/callback` until `ok` holds for it.
    async fn callback_until(&self, token: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, _, body) = self.get(token, "/v1/callback").await;
            assert_eq!(status, StatusCode::OK);
            let v = json(&body);
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "callback state: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the metric `line_start` has `value`.
    async fn metric_until(&self, line_start: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.gw.metrics.render();
            if metric(&text, line_start) == value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{line_start} is not {value}: {text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(site) = self.site.take() {
            site.stop().await;
        }
    }
}

// --- the receiver -----------------------------------------------------------

/// What the receiver got: each request's body, whether its signature held, the status it
/// answered.
#[derive(Debug, Clone)]
struct Received {
    items: Vec<Value>,
    signed: bool,
    answered: u16,
}

#[derive(Default)]
struct Receiver {
    secret: Mutex<String>,
    /// Answer 500 to this many requests first.
    fail_first: Mutex<usize>,
    got: Mutex<Vec<Received>>,
}

impl Receiver {
    fn delivered_items(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.answered == 200)
            .flat_map(|r| r.items.clone())
            .collect()
    }
}

/// An HTTP receiver on 127.0.0.1:0 checking `X-Tamga-Timestamp` / `X-Tamga-Signature`.
async fn receiver(r: Arc<Receiver>) -> String {
    let app = axum::Router::new().route(
        "/hooks/tamga",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let r = r.clone();
            async move {
                let ts: i64 = headers
                    .get("x-tamga-timestamp")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let sig = headers
                    .get("x-tamga-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let secret = r.secret.lock().unwrap().clone();
                // What a receiver must do: the MAC, and a fresh timestamp (replays refused).
                let fresh = (tamga_pipeline::now_ms() / 1000 - ts).abs() <= 300;
                let signed = fresh && callback::verify_signature(&secret, ts, &body, sig);
                let typed = headers
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|v| v == "application/json");
                let answered = {
                    let mut fail = r.fail_first.lock().unwrap();
                    if !signed || !typed {
                        401
                    } else if *fail > 0 {
                        *fail -= 1;
                        500
                    } else {
                        200
                    }
                };
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                r.got.lock().unwrap().push(Received {
                    items: v["items"].as_array().cloned().unwrap_or_default(),
                    signed,
                    answered,
                });
                StatusCode::from_u16(answered).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hooks/tamga")
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// --- scenarios --------------------------------------------------------------

/// The receiver answers 500 three times, then 200: every notification of an accepted and
/// a rejected declaration is delivered once (in 2xx-answered requests), signed, in order,
/// the same JSON as the pull feed; the failures are counted and then healed.
async fn retried_then_delivered_once(env: Env) {
    let token = env.token("kz-broker").await;
    let r = Arc::new(Receiver::default());
    *r.fail_first.lock().unwrap() = 3;
    let url = receiver(r.clone()).await;
    let (status, _, body) = env.get(&token, "/v1/callback").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["configured"], false);
    let secret = callback::set_callback(env.store.as_ref(), "kz-broker", &url)
        .await
        .unwrap();
    assert!(secret.starts_with("tmgcb_"));
    *r.secret.lock().unwrap() = secret;

    let ok = env.submit(&token, "push-1", signed("KZ", "AZ", 1)).await;
    let bad = env.submit(&token, "push-2", forged("KZ", "AZ", 2)).await;
    env.wait_for(&token, &ok, "forwarded").await;
    env.wait_for(&token, &bad, "rejected").await;

    let want: Vec<(String, &str)> = ["received", "verified", "countersigned", "forwarded"]
        .iter()
        .map(|s| (ok.clone(), *s))
        .chain(["received", "rejected"].iter().map(|s| (bad.clone(), *s)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = r.delivered_items();
        let pairs: Vec<(String, String)> = got
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_owned(),
                    i["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if want
            .iter()
            .all(|(id, s)| pairs.contains(&(id.clone(), (*s).to_owned())))
        {
            break;
        }
        assert!(Instant::now() < deadline, "delivered so far: {pairs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let a stray duplicate show up, if the deliverer were to send one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = r.got.lock().unwrap().clone();
    assert!(got.iter().all(|g| g.signed), "every request is signed");
    assert_eq!(
        got.iter().filter(|g| g.answered == 500).count(),
        3,
        "three refusals: {got:?}"
    );
    assert!(got[..3].iter().all(|g| g.answered == 500));
    // The refused batches are what the first accepted one carries (a retry, not a loss).
    let first_ok = got.iter().find(|g| g.answered == 200).unwrap();
    assert_eq!(got[0].items[0]["seq"], first_ok.items[0]["seq"]);
    let delivered = r.delivered_items();
    let mut seqs: Vec<i64> = delivered
        .iter()
        .map(|i| i["seq"].as_i64().unwrap())
        .collect();
    let n = seqs.len();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    seqs.dedup();
    assert_eq!(seqs.len(), n, "each notification delivered once");
    assert_eq!(n, want.len(), "{delivered:?}");
    // The same JSON as the pull feed.
    let (_, _, body) = env.get(&token, "/v1/notifications?after=0").await;
    assert_eq!(json(&body)["items"].as_array().unwrap(), &delivered);

    let last = seqs.last().unwrap().to_string();
    let v = env
        .callback_until(&token, |v| v["deliveredThrough"] == last.as_str())
        .await;
    assert_eq!(v["configured"], true);
    assert_eq!(v["url"], url.as_str());
    assert_eq!(v["pending"], 0);
    assert_eq!(v["healthy"], true);
    assert_eq!(v["failuresSinceLastDelivery"], 0);
    assert_eq!(v["lastAttempt"]["delivered"], true);
    assert_eq!(v["lastAttempt"]["httpStatus"], 200);
    assert!(
        v.get("secret").is_none() && !v.to_string().contains("tmgcb_"),
        "never the secret"
    );
    let text = env.gw.metrics.render();
    assert_eq!(
        metric(
            &text,
            "tamga_gateway_callback_failures_total{broker=\"kz-broker\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            "tamga_gateway_callback_notifications_total{broker=\"kz-broker\"}"
        ),
        n as f64
    );
    assert!(
        metric(
            &text,
            "tamga_gateway_callback_deliveries_total{broker=\"kz-broker\",result=\"delivered\"}"
        ) >= 1.0
    );
    assert_eq!(
        metric(
            &text,
            "tamga_gateway_callback_consecutive_failures{broker=\"kz-broker\"}"
        ),
        0.0
    );

    // Another broker sees its own (absent) callback.
    let other = env.token("other-broker").await;
    let (_, _, body) = env.get(&other, "/v1/callback").await;
    assert_eq!(json(&body)["configured"], false);
    // Cleared: nothing more is pushed; the pull feed goes on.
    callback::clear_callback(env.store.as_ref(), "kz-broker")
        .await
        .unwrap();
    env.callback_until(&token, |v| v["configured"] == false)
        .await;
    let before = r.got.lock().unwrap().len();
    let third = env.submit(&token, "push-3", signed("KZ", "AZ", 3)).await;
    env.wait_for(&token, &third, "forwarded").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        r.got.lock().unwrap().len(),
        before,
        "nothing pushed once cleared"
    );
    env.stop().await;
}

/// The receiver is not there: submissions are accepted and decided as ever, the failure
/// shows in `GET /v1/callback` and in the metrics; pointing the callback at a live
/// receiver delivers everything that was pending, once.
async fn receiver_down(env: Env) {
    let token = env.token("kz-broker").await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hooks/tamga", l.local_addr().unwrap())
    };
    callback::set_callback(env.store.as_ref(), "kz-broker", &dead)
        .await
        .unwrap();
    let ids = [
        env.submit(&token, "down-1", signed("KZ", "AZ", 11)).await,
        env.submit(&token, "down-2", signed("KZ", "AZ", 12)).await,
    ];
    for id in &ids {
        env.wait_for(&token, id, "forwarded").await;
    }
    let v = env
        .callback_until(&token, |v| {
            v["failuresSinceLastDelivery"].as_i64().unwrap_or(0) >= 2 && v["pending"] == 8
        })
        .await;
    assert_eq!(v["healthy"], false);
    assert_eq!(v["deliveredThrough"], "0");
    assert_eq!(v["lastAttempt"]["delivered"], false);
    assert!(v["lastAttempt"]["httpStatus"].is_null());
    assert!(
        v["lastAttempt"]["error"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "{v}"
    );
    assert!(v["lastDeliveredAt"].is_null());
    let text = env.gw.metrics.render();
    assert!(
        metric(
            &text,
            "tamga_gateway_callback_failures_total{broker=\"kz-broker\"}"
        ) >= 2.0
    );
    assert!(
        metric(
            &text,
            "tamga_gateway_callback_consecutive_failures{broker=\"kz-broker\"}"
        ) >= 2.0
    );
    // The gauge is refreshed at each attempt.
    env.metric_until("tamga_gateway_callback_pending{broker=\"kz-broker\"}", 8.0)
        .await;
    // The pipeline did not wait for it: both were forwarded above, and the audit trail
    // holds one of each step.
    for id in &ids {
        let events = env.store.declaration_events(id).await.unwrap();
        let mut by_stage = BTreeMap::new();
        for e in &events {
            *by_stage.entry(e.stage.clone()).or_insert(0) += 1;
        }
        for stage in ["submitted", "received", "countersigned", "forwarded"] {
            assert_eq!(by_stage.get(stage), Some(&1), "{stage}: {by_stage:?}");
        }
    }

    // A live receiver: what was pending arrives there, once, signed with the new secret.
    let r = Arc::new(Receiver::default());
    let url = receiver(r.clone()).await;
    let secret = callback::set_callback(env.store.as_ref(), "kz-broker", &url)
        .await
        .unwrap();
    *r.secret.lock().unwrap() = secret;
    env.callback_until(&token, |v| v["pending"] == 0 && v["healthy"] == true)
        .await;
    let delivered = r.delivered_items();
    assert_eq!(delivered.len(), 8, "{delivered:?}");
    assert!(r.got.lock().unwrap().iter().all(|g| g.signed));
    env.metric_until("tamga_gateway_callback_pending{broker=\"kz-broker\"}", 0.0)
        .await;
    env.stop().await;
}

/// The request metrics: by route template and status, submit latency, 503s without a
/// confirm, 429s by broker.
async fn request_metrics(env: Env) {
    let token = env.token("kz-broker").await;
    let id = env.submit(&token, "m-1", signed("KZ", "AZ", 21)).await;
    let (status, _, _) = env.get(&token, &format!("/v1/declarations/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = env.get("tmg_nope", "/v1/declarations").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = env.get(&token, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // No confirm (a bus without tamga.inbound), and a broker above its rate, counted in
    // the same metrics.
    let broken = router(Gateway::with_options(
        env.store.clone(),
        Arc::new(MemoryBus::new()),
        settings(),
        Options {
            metrics: Some(env.gw.metrics.clone()),
            ..Options::default()
        },
    ));
    let r = send(
        &broken,
        submission(&token, "m-2", ("KZ", "AZ"), signed("KZ", "AZ", 22)),
    )
    .await;
    assert_eq!(r.0, StatusCode::SERVICE_UNAVAILABLE);
    let tight = router(Gateway::with_options(
        env.store.clone(),
        env.bus.clone(),
        Settings {
            rate_per_second: 1,
            rate_burst: 1,
            ..settings()
        },
        Options {
            metrics: Some(env.gw.metrics.clone()),
            ..Options::default()
        },
    ));
    let r = send(
        &tight,
        submission(&token, "m-3", ("KZ", "AZ"), signed("KZ", "AZ", 23)),
    )
    .await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    let r = send(
        &tight,
        submission(&token, "m-4", ("KZ", "AZ"), signed("KZ", "AZ", 24)),
    )
    .await;
    assert_eq!(r.0, StatusCode::TOO_MANY_REQUESTS);

    let text = env.gw.metrics.render();
    let m = |s: &str| metric(&text, s);
    assert_eq!(
        m("tamga_gateway_requests_total{method=\"POST\",route=\"/v1/declarations\",status=\"202\"}"),
        2.0,
        "{text}"
    );
    assert_eq!(
        m("tamga_gateway_requests_total{method=\"GET\",route=\"/v1/declarations/{id}\",status=\"200\"}"),
        1.0
    );
    assert_eq!(
        m("tamga_gateway_requests_total{method=\"GET\",route=\"/v1/declarations\",status=\"401\"}"),
        1.0
    );
    assert_eq!(
        m("tamga_gateway_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"),
        1.0
    );
    assert_eq!(
        m("tamga_gateway_requests_total{method=\"POST\",route=\"/v1/declarations\",status=\"503\"}"),
        1.0
    );
    assert_eq!(m("tamga_gateway_submit_duration_seconds_count"), 4.0);
    assert_eq!(m("tamga_gateway_publish_unconfirmed_total"), 1.0);
    assert_eq!(
        m("tamga_gateway_rate_limited_total{broker=\"kz-broker\"}"),
        1.0
    );
    assert!(m("tamga_gateway_authenticated_total{via=\"token\"}") >= 5.0);
    // Served with the workers' metrics: registered in the site's registry.
    let site = env.site.as_ref().unwrap();
    env.gw.metrics.register(&site.metrics.registry).unwrap();
    let all = site.metrics.render();
    assert!(all.contains("tamga_outbox_backlog"), "the workers' metrics");
    assert!(all.contains("tamga_gateway_submit_duration_seconds_bucket"));
    env.stop().await;
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod embedded_default {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::embedded().await).await;
                }
            )*
        }
        mod rabbitmq_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::real().await).await;
                }
            )*
        }
    };
}

on_both!(retried_then_delivered_once, receiver_down, request_metrics);
