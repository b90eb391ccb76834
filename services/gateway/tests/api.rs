#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gateway's HTTP API without a socket (`tower::ServiceExt::oneshot`), over the real
//! pipeline: on the embedded default (in-process bus, SQLite) and on RabbitMQ (a vhost per
//! test) with PostgreSQL (a database per test). Every scenario runs on both.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tamga_bus::{AmqpBus, AmqpOptions, Bus, MemoryBus};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_gateway::{router, Gateway, Settings};
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

fn lrn(from: &str, to: &str, seq: u64) -> String {
    SampleSpec::new(from, to, seq, 3).lrn()
}

// --- environments -----------------------------------------------------------

struct Env {
    store: Arc<dyn GatewayStore>,
    bus: Arc<dyn Bus>,
    site: Option<Site>,
    app: axum::Router,
    _notifier: tokio::sync::watch::Sender<bool>,
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
        worker: "gw-test".into(),
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
    real_with(0).await
}

/// As `tamga serve` and `tamga-gateway` run it: claims and markers through the group
/// committer (`[database] group_commit`).
async fn real_group_commit() -> Env {
    real_with(16).await
}

async fn real_with(group_commit: usize) -> Env {
    let vhost = unique("tamga-gateway");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let bus = AmqpBus::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        AmqpOptions::default(),
    )
    .await
    .expect("RabbitMQ must run on 127.0.0.1:5672 (make services)");
    let db = unique("tamga_gateway");
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
    .unwrap()
    .with_group_commit(group_commit);
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
    let gw = Gateway::new(store.clone(), bus.clone(), settings());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(gw.clone().run_notifier(Duration::from_millis(50), stopped));
    let app = router(gw);
    Env {
        store,
        bus,
        site: Some(site),
        app,
        _notifier: stop,
        _dir: dir,
        cleanup,
    }
}

impl Env {
    async fn token(&self, broker: &str, country: Option<&str>) -> String {
        tamga_gateway::create_token(self.store.as_ref(), broker, country)
            .await
            .unwrap()
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        send(&self.app, req).await
    }

    async fn submit(
        &self,
        token: &str,
        key: &str,
        route: (&str, &str),
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.send(submission(token, key, route, body)).await
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        self.send(
            Request::get(path)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Polls the status until it is one of `want`.
    async fn wait_for(&self, token: &str, id: &str, want: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, _, body) = self.get(token, &format!("/v1/declarations/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
            let v: Value = serde_json::from_slice(&body).unwrap();
            if want.contains(&v["status"].as_str().unwrap()) {
                return v;
            }
            assert!(Instant::now() < deadline, "still {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(site) = self.site.take() {
            site.stop().await;
        }
        let report = self.store.verify_chain().await.unwrap();
        assert!(report.problem.is_none(), "{:?}", report.problem);
    }
}

fn submission(token: &str, key: &str, route: (&str, &str), body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post("/v1/declarations")
        .header(header::CONTENT_TYPE, "application/xml")
        .header("X-Tamga-Origin", route.0)
        .header("X-Tamga-Destination", route.1);
    if !token.is_empty() {
        b = b.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if !key.is_empty() {
        b = b.header("Idempotency-Key", key);
    }
    b.body(Body::from(body)).unwrap()
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

/// A problem+json answer with this status and type.
fn assert_problem(r: &(StatusCode, HeaderMap, Vec<u8>), status: StatusCode, slug: &str) -> Value {
    assert_eq!(r.0, status, "{}", String::from_utf8_lossy(&r.2));
    assert_eq!(
        r.1.get(header::CONTENT_TYPE).unwrap(),
        "application/problem+json"
    );
    let v = json(&r.2);
    assert_eq!(v["type"], format!("urn:tamga:problem:{slug}"));
    assert_eq!(v["status"], status.as_u16());
    v
}

// --- scenarios --------------------------------------------------------------

/// Submit → status → receipt, document and report, for an accepted and a rejected one.
async fn accepted_and_rejected(env: Env) {
    let token = env.token("kz-broker", Some("KZ")).await;
    let r = env
        .submit(&token, "k-accepted", ("KZ", "AZ"), signed("KZ", "AZ", 1))
        .await;
    assert_eq!(
        r.0,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.2)
    );
    let v = json(&r.2);
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"], "received");
    assert_eq!(
        r.1.get(header::LOCATION).unwrap().to_str().unwrap(),
        format!("/v1/declarations/{id}")
    );
    let v = env.wait_for(&token, &id, &["forwarded"]).await;
    assert_eq!(v["declaration"]["lrn"], lrn("KZ", "AZ", 1));
    assert_eq!(v["declaration"]["origin"], "KZ");
    assert_eq!(v["declaration"]["destination"], "AZ");
    assert_eq!(v["indication"], "TOTAL_PASSED");
    let steps: Vec<&str> = v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["received", "verified", "countersigned", "forwarded"]
    );

    let (status, headers, receipt) = env
        .get(&token, &format!("/v1/declarations/{id}/receipt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers.get(header::CONTENT_TYPE).unwrap(),
        "application/xml"
    );
    let parsed = tamga_receipt::parse_receipt(&receipt).unwrap();
    assert_eq!(parsed.decision, tamga_receipt::Decision::Accepted);
    let (status, _, doc) = env
        .get(&token, &format!("/v1/declarations/{id}/document"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(doc)
        .unwrap()
        .contains(&lrn("KZ", "AZ", 1)));
    let (status, _, report) = env
        .get(&token, &format!("/v1/declarations/{id}/report"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&report)["indication"], "TOTAL_PASSED");

    // A forgery: rejected, with the report's reason code everywhere.
    let r = env
        .submit(&token, "k-forged", ("KZ", "AZ"), forged("KZ", "AZ", 2))
        .await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    let bad = json(&r.2)["id"].as_str().unwrap().to_owned();
    let v = env.wait_for(&token, &bad, &["rejected"]).await;
    assert_eq!(v["reason"], "digest_mismatch");
    assert_eq!(v["subIndication"], "HASH_FAILURE");
    assert_eq!(v["indication"], "TOTAL_FAILED");
    let (status, _, receipt) = env
        .get(&token, &format!("/v1/declarations/{bad}/receipt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let parsed = tamga_receipt::parse_receipt(&receipt).unwrap();
    assert_eq!(parsed.decision, tamga_receipt::Decision::Rejected);
    assert_eq!(parsed.reason.as_deref(), Some("digest_mismatch"));
    let r = env
        .get(&token, &format!("/v1/declarations/{bad}/document"))
        .await;
    let p = assert_problem(&r, StatusCode::CONFLICT, "rejected");
    assert_eq!(p["reason"], "digest_mismatch");
    let (_, _, report) = env
        .get(&token, &format!("/v1/declarations/{bad}/report"))
        .await;
    assert_eq!(json(&report)["reason"], "digest_mismatch");

    // Notifications: every status each declaration reached, once, in order, long-polled.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut after = "0".to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(seen.contains(&(id.clone(), "forwarded".into()))
        && seen.contains(&(bad.clone(), "rejected".into())))
    {
        assert!(Instant::now() < deadline, "{seen:?}");
        let (status, _, body) = env
            .get(&token, &format!("/v1/notifications?after={after}&wait=2"))
            .await;
        assert_eq!(status, StatusCode::OK);
        let v = json(&body);
        for n in v["items"].as_array().unwrap() {
            seen.push((
                n["id"].as_str().unwrap().to_owned(),
                n["status"].as_str().unwrap().to_owned(),
            ));
        }
        after = v["next"].as_str().unwrap().to_owned();
    }
    let of = |x: &str| -> Vec<String> {
        seen.iter()
            .filter(|(i, _)| i == x)
            .map(|(_, s)| s.clone())
            .collect()
    };
    assert_eq!(
        of(&id),
        ["received", "verified", "countersigned", "forwarded"]
    );
    assert_eq!(of(&bad), ["received", "rejected"]);
    // Nothing new: the long-poll ends empty, with the same cursor.
    let (_, _, body) = env
        .get(&token, &format!("/v1/notifications?after={after}&wait=1"))
        .await;
    let v = json(&body);
    assert!(v["items"].as_array().unwrap().is_empty());
    assert_eq!(v["next"], after.as_str());
    let other = env.token("other-broker", None).await;
    let (_, _, body) = env.get(&other, "/v1/notifications").await;
    assert!(json(&body)["items"].as_array().unwrap().is_empty());
    let r = env.get(&token, "/v1/notifications?wait=31").await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-query");

    // The audit trail names the submitting broker.
    let events = env.store.declaration_events(&id).await.unwrap();
    let submitted: Vec<_> = events.iter().filter(|e| e.stage == "submitted").collect();
    assert_eq!(submitted.len(), 1);
    assert!(submitted[0]
        .detail
        .as_deref()
        .unwrap()
        .contains("\"kz-broker\""));

    // The list: the broker's own, filtered and paginated.
    let (status, _, body) = env.get(&token, "/v1/declarations?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    let page = json(&body);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], id.as_str());
    let cursor = page["next"].as_str().unwrap();
    let (_, _, body) = env
        .get(&token, &format!("/v1/declarations?limit=1&cursor={cursor}"))
        .await;
    let page = json(&body);
    assert_eq!(page["items"][0]["id"], bad.as_str());
    let (_, _, body) = env.get(&token, "/v1/declarations?status=rejected").await;
    let items = json(&body)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], bad.as_str());
    let (_, _, body) = env
        .get(
            &token,
            &format!("/v1/declarations?lrn={}", lrn("KZ", "AZ", 1)),
        )
        .await;
    let items = json(&body)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    let (_, _, body) = env
        .get(&token, "/v1/declarations?since=2999-01-01T00:00:00Z")
        .await;
    assert!(json(&body)["items"].as_array().unwrap().is_empty());
    env.stop().await;
}

/// Same key and bytes: the same 202 and id, published once (also concurrently); same key,
/// other bytes: 422; same bytes, new key: a new id the pipeline answers as the first.
async fn idempotent_retries(env: Env) {
    let token = env.token("az-broker", None).await;
    let body = signed("AZ", "TR", 3);
    let first = env
        .submit(&token, "retry-1", ("AZ", "TR"), body.clone())
        .await;
    assert_eq!(first.0, StatusCode::ACCEPTED);
    let id = json(&first.2)["id"].as_str().unwrap().to_owned();
    let again = env
        .submit(&token, "retry-1", ("AZ", "TR"), body.clone())
        .await;
    assert_eq!(again.0, StatusCode::ACCEPTED);
    assert_eq!(json(&again.2)["id"], id.as_str());
    assert_eq!(again.1.get("idempotent-replayed").unwrap(), "true");

    // Concurrent retries of a fresh key: one id.
    let body2 = signed("AZ", "TR", 4);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = env.app.clone();
        let req = submission(&token, "retry-2", ("AZ", "TR"), body2.clone());
        tasks.push(tokio::spawn(async move { send(&app, req).await }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(
            r.0,
            StatusCode::ACCEPTED,
            "{}",
            String::from_utf8_lossy(&r.2)
        );
        ids.insert(json(&r.2)["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id2 = ids.into_iter().next().unwrap();

    // Same key, other bytes (or another corridor): 422.
    let r = env
        .submit(&token, "retry-1", ("AZ", "TR"), signed("AZ", "TR", 5))
        .await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    let r = env
        .submit(&token, "retry-1", ("AZ", "KZ"), body.clone())
        .await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );

    env.wait_for(&token, &id, &["forwarded"]).await;
    env.wait_for(&token, &id2, &["forwarded"]).await;
    // Published once each: one `submitted`, one `received`, one `forwarded` event.
    for id in [&id, &id2] {
        let events = env.store.declaration_events(id).await.unwrap();
        for stage in ["submitted", "received", "countersigned", "forwarded"] {
            assert_eq!(
                events.iter().filter(|e| e.stage == stage).count(),
                1,
                "{stage} of {id}: {events:?}"
            );
        }
    }

    // The same bytes under a new key: a new id, answered with the first decision.
    let r = env.submit(&token, "retry-3", ("AZ", "TR"), body).await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    let id3 = json(&r.2)["id"].as_str().unwrap().to_owned();
    assert_ne!(id3, id);
    let v = env.wait_for(&token, &id3, &["forwarded"]).await;
    assert_eq!(v["duplicateOf"], id.as_str());
    let (status, _, _) = env
        .get(&token, &format!("/v1/declarations/{id3}/receipt"))
        .await;
    assert_eq!(status, StatusCode::OK);
    env.stop().await;
}

/// Tokens: none, malformed, unknown, revoked → 401; another broker's id → 404; a token
/// restricted to a country submits from it only → 403.
async fn who_may_do_what(env: Env) {
    let kz = env.token("kz-broker", Some("KZ")).await;
    let other = env.token("other-broker", None).await;
    let body = signed("KZ", "AZ", 6);
    let r = env.submit("", "k", ("KZ", "AZ"), body.clone()).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(r.1.get(header::WWW_AUTHENTICATE).is_some());
    let r = env
        .submit("tmg_nope", "k", ("KZ", "AZ"), body.clone())
        .await;
    let p = assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        !p.to_string().contains("tmg_nope"),
        "the token is never echoed"
    );
    let r = env
        .send(
            Request::get("/v1/declarations")
                .header(header::AUTHORIZATION, "Basic a2F6OnB3")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");

    let r = env.submit(&kz, "k-6", ("TR", "AZ"), body.clone()).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "origin-not-allowed");
    let r = env.submit(&kz, "k-6", ("KZ", "AZ"), body.clone()).await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    let id = json(&r.2)["id"].as_str().unwrap().to_owned();

    for path in ["", "/receipt", "/document", "/report"] {
        let r = env
            .get(&other, &format!("/v1/declarations/{id}{path}"))
            .await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not-found");
    }
    let (_, _, body) = env.get(&other, "/v1/declarations").await;
    assert!(json(&body)["items"].as_array().unwrap().is_empty());
    let r = env.get(&kz, "/v1/declarations/no-such-id").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not-found");

    // Revoked: every token of the broker stops working at once.
    let second = env.token("kz-broker", Some("KZ")).await;
    assert_eq!(
        tamga_gateway::revoke_tokens(env.store.as_ref(), "kz-broker")
            .await
            .unwrap(),
        2
    );
    for t in [&kz, &second] {
        let r = env.get(t, &format!("/v1/declarations/{id}")).await;
        assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let (status, _, _) = env.get(&other, "/v1/declarations").await;
    assert_eq!(status, StatusCode::OK);
    env.stop().await;
}

/// Limits and malformed requests, all answered before the body is read whole.
async fn limits(env: Env) {
    let token = env.token("kz-broker", None).await;
    let body = signed("KZ", "AZ", 7);
    let r = env.submit(&token, "", ("KZ", "AZ"), body.clone()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "idempotency-key-missing");
    let r = env.submit(&token, "k", ("KZ", ""), body.clone()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-corridor");
    let r = env.submit(&token, "k", ("KZ", "AZ"), Vec::new()).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "empty-body");
    let r = env
        .send(
            Request::post("/v1/declarations")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", "k")
                .header("X-Tamga-Origin", "KZ")
                .header("X-Tamga-Destination", "AZ")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    // Oversize: by Content-Length, and by counting a body that has none.
    let big = vec![b' '; settings().max_bytes + 1];
    let r = env
        .send(
            Request::post("/v1/declarations")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/xml")
                .header(header::CONTENT_LENGTH, big.len())
                .header("Idempotency-Key", "k-big")
                .header("X-Tamga-Origin", "KZ")
                .header("X-Tamga-Destination", "AZ")
                .body(Body::from(big.clone()))
                .unwrap(),
        )
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    let chunks = futures_stream(big);
    let r = env
        .send(
            Request::post("/v1/declarations")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/xml")
                .header("Idempotency-Key", "k-big-2")
                .header("X-Tamga-Origin", "KZ")
                .header("X-Tamga-Destination", "AZ")
                .body(chunks)
                .unwrap(),
        )
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    // Nothing of the refused requests was stored.
    let (_, _, list) = env.get(&token, "/v1/declarations").await;
    assert!(json(&list)["items"].as_array().unwrap().is_empty());

    // Rate: a gateway allowing 2 at once, per broker.
    let tight = router(Gateway::new(
        env.store.clone(),
        env.bus.clone(),
        Settings {
            rate_per_second: 1,
            rate_burst: 2,
            ..settings()
        },
    ));
    for i in 0..2 {
        let r = send(
            &tight,
            submission(
                &token,
                &format!("rate-{i}"),
                ("KZ", "AZ"),
                signed("KZ", "AZ", 20 + i),
            ),
        )
        .await;
        assert_eq!(r.0, StatusCode::ACCEPTED);
    }
    let r = send(
        &tight,
        submission(&token, "rate-2", ("KZ", "AZ"), signed("KZ", "AZ", 22)),
    )
    .await;
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    assert!(r.1.get(header::RETRY_AFTER).is_some());
    // Another broker has its own bucket.
    let other = env.token("az-broker", None).await;
    let r = send(
        &tight,
        submission(&other, "rate-0", ("AZ", "TR"), signed("AZ", "TR", 23)),
    )
    .await;
    assert_eq!(r.0, StatusCode::ACCEPTED);

    let r = env.get(&token, "/v1/nothing").await;
    assert_problem(&r, StatusCode::NOT_FOUND, "no-route");
    let r = env
        .send(
            Request::delete("/v1/declarations")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
    let r = env.get(&token, "/v1/declarations?limit=0").await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid-query");
    env.stop().await;
}

/// A body without Content-Length, in 8 KiB chunks.
fn futures_stream(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

/// No confirm from the bus: 503 with Retry-After, and the retry with the same key (once
/// the bus is back) gets one id, published once.
async fn no_confirm_is_503(env: Env) {
    let token = env.token("kz-broker", None).await;
    // A bus with no tamga.inbound: every publish comes back unconfirmed.
    let broken = router(Gateway::new(
        env.store.clone(),
        Arc::new(MemoryBus::new()),
        settings(),
    ));
    let body = signed("KZ", "AZ", 30);
    let r = send(
        &broken,
        submission(&token, "k-503", ("KZ", "AZ"), body.clone()),
    )
    .await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(r.1.get(header::RETRY_AFTER).unwrap(), "2");
    let (_, _, list) = env.get(&token, "/v1/declarations").await;
    let listed = json(&list)["items"].as_array().unwrap().len();
    let r = env.submit(&token, "k-503", ("KZ", "AZ"), body).await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    let id = json(&r.2)["id"].as_str().unwrap().to_owned();
    env.wait_for(&token, &id, &["forwarded"]).await;
    let events = env.store.declaration_events(&id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.stage == "received").count(), 1);
    assert_eq!(listed, 0, "a claim without a confirm is not shown");
    env.stop().await;
}

/// The gateway dies between the broker's confirm and its answer (the claim and the message
/// exist, the `submitted` marker does not): the retry with the same key gets the same id,
/// and the pipeline decides the declaration once.
async fn crash_between_confirm_and_answer(env: Env) {
    let token = env.token("kz-broker", None).await;
    let body = signed("KZ", "AZ", 40);
    let digest = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body));
    let id = "0123456789abcdef0123456789abcdef".to_owned();
    let claim = tamga_store::Submission {
        broker: "kz-broker".into(),
        idempotency_key: "k-crash".into(),
        id: id.clone(),
        body_sha256: digest,
        origin: "KZ".into(),
        destination: "AZ".into(),
        lrn: None,
        created_at_ms: tamga_pipeline::now_ms(),
    };
    assert_eq!(
        env.store.claim_submission(&claim).await.unwrap(),
        tamga_store::SubmissionClaim::New
    );
    let mut message = tamga_bus::Message::new("kz.az", body.clone());
    message.message_id = Some(id.clone());
    env.bus.publish("tamga.inbound", message).await.unwrap();
    // Not visible before the retry.
    let r = env.get(&token, &format!("/v1/declarations/{id}")).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not-found");

    let r = env.submit(&token, "k-crash", ("KZ", "AZ"), body).await;
    assert_eq!(
        r.0,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.2)
    );
    assert_eq!(json(&r.2)["id"], id.as_str());
    env.wait_for(&token, &id, &["forwarded"]).await;
    // Give a second copy time to be consumed, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = env.store.declaration_events(&id).await.unwrap();
    for stage in ["submitted", "received", "countersigned", "forwarded"] {
        assert_eq!(
            events.iter().filter(|e| e.stage == stage).count(),
            1,
            "{stage}: {events:?}"
        );
    }
    env.stop().await;
}

/// What no live process follows is found by a sweep: a submission made through a
/// gateway whose notifier never runs (a process that stopped) is notified by the next
/// process's first pass, a full sweep; once settled it is followed no more.
async fn notifier_sweeps_what_nobody_follows(env: Env) {
    let token = env.token("kz-broker", None).await;
    let stopped = Gateway::new(env.store.clone(), env.bus.clone(), settings());
    let r = send(
        &router(stopped.clone()),
        submission(&token, "swept-1", ("KZ", "AZ"), signed("KZ", "AZ", 40)),
    )
    .await;
    assert_eq!(r.0, StatusCode::ACCEPTED);
    let id = json(&r.2)["id"].as_str().unwrap().to_owned();
    assert_eq!(stopped.followed(), 1);
    env.wait_for(&token, &id, &["forwarded"]).await;
    // A process started now: its first pass sweeps the whole table.
    let next = Gateway::new(env.store.clone(), env.bus.clone(), settings());
    next.notify_pending().await.unwrap();
    let (_, _, body) = env.get(&token, "/v1/notifications?after=0").await;
    let statuses: Vec<String> = json(&body)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["id"] == id.as_str())
        .map(|n| n["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        ["received", "verified", "countersigned", "forwarded"]
    );
    assert_eq!(next.followed(), 0, "settled: followed no more");
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
        mod rabbitmq_postgres_group_commit {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::real_group_commit().await).await;
                }
            )*
        }
    };
}

on_both!(
    accepted_and_rejected,
    idempotent_retries,
    who_may_do_what,
    limits,
    no_confirm_is_503,
    crash_between_confirm_and_answer,
    notifier_sweeps_what_nobody_follows,
);
