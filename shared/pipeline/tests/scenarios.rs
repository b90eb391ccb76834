#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The scenario suite, run twice: on the embedded default (in-process bus,
//! SQLite) and on real infrastructure (RabbitMQ with a vhost per test,
//! PostgreSQL with a fresh database per test). Every scenario counts in
//! against out: each declaration gets exactly one result, and the audit
//! chain verifies.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tamga_bus::{AmqpBus, AmqpOptions, Bus, HeaderValue, MemoryBus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, Signer, SigningKey};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, start_site_with_fault_hook, Site, SiteOptions};
use tamga_pipeline::{headers, Config, Stage};
use tamga_store::{Store, StoreConfig};

// --- fixtures -------------------------------------------------------------

struct Pki {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        tamga_pki::generate(&tamga_pki::DemoPkiOptions {
            countries: vec!["KZ".into(), "AZ".into(), "TR".into(), "UZ".into()],
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
    config_with_trust(sqlite, &pki().root.join("trust"))
}

fn config_with_trust(sqlite: &Path, trust: &Path) -> Config {
    let root = &pki().root;
    Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: trust.to_path_buf(),
            policy: None,
            ..TrustConfig::default()
        },
        // UZ is in the trust list but not served: its declarations are refused.
        authority: ["KZ", "AZ", "TR"]
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
            name: "scenario".into(),
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

fn signed(from: &str, to: &str, seq: u64, broker: &str) -> Vec<u8> {
    let d = pki().root.join("keys").join(from);
    let key = SigningKey::from_pkcs8_pem(&std::fs::read(d.join(format!("{broker}.key"))).unwrap())
        .unwrap();
    let mut certs =
        tamga_dsig::certificates_from_pem(&std::fs::read(d.join(format!("{broker}.pem"))).unwrap())
            .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(d.join("issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    let doc = sample(&SampleSpec::new(from, to, seq, 4));
    sign_enveloped(
        doc.as_bytes(),
        &key,
        &SignOptions {
            certificates: certs,
            digest: DigestAlgorithm::Sha256,
            xades: seq.is_multiple_of(2),
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

// --- environments ---------------------------------------------------------

struct Env {
    bus: Arc<dyn Bus>,
    store: Arc<dyn Store>,
    sqlite: PathBuf,
    /// The PostgreSQL database, when there is one.
    db: Option<String>,
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

async fn embedded() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("audit.sqlite");
    let store = tamga_store::open_sqlite(&sqlite).unwrap();
    Env {
        bus: Arc::new(MemoryBus::new()),
        store: Arc::new(store),
        sqlite,
        db: None,
        _dir: dir,
        cleanup: Vec::new(),
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
        .expect("rabbitmqctl is required (RabbitMQ from Debian: make services)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn real() -> Env {
    // A vhost per test.
    let vhost = unique("tamga-scenario");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let bus = AmqpBus::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        AmqpOptions::default(),
    )
    .await
    .expect("RabbitMQ must run on 127.0.0.1:5672 (make services)");
    // A fresh database per test.
    let db = unique("tamga_scenario");
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
    let dir = tempfile::tempdir().unwrap();
    let v = vhost.clone();
    let d = db.clone();
    Env {
        bus: Arc::new(bus),
        store: Arc::new(store),
        sqlite: dir.path().join("unused.sqlite"),
        db: Some(db),
        _dir: dir,
        cleanup: vec![Box::new(move || {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_vhost", &v])
                .output();
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {d} WITH (FORCE)"))
                .output();
        })],
    }
}

/// As `real`, but the way issue 13 wants production: the owner migrates (`tamga
/// migrate`), the workers log in as `tamga_worker` and refuse a login that could rewrite
/// the trail.
async fn real_as_worker() -> Env {
    let mut env = real().await;
    let Some(db) = env.db.clone() else {
        unreachable!("real() makes a database")
    };
    let store = tamga_store::connect_postgres(&StoreConfig {
        migrate: false,
        require_boundary: true,
        ..StoreConfig::new(format!("postgres://tamga_worker@127.0.0.1:5432/{db}"))
    })
    .await
    .unwrap();
    env.store = Arc::new(store);
    env
}

async fn start(env: &Env, stages: &[Stage]) -> Site {
    start_with(env, stages, &config(&env.sqlite)).await
}

async fn start_with(env: &Env, stages: &[Stage], config: &Config) -> Site {
    start_site(
        config,
        &SiteOptions {
            embedded: false,
            stages: stages.to_vec(),
        },
        &tamga_pipeline::open_key,
        Some(env.bus.clone()),
        Some(env.store.clone()),
    )
    .await
    .unwrap()
}

/// A result seen by a destination or a broker.
#[derive(Debug, Clone)]
struct Outcome {
    queue: String,
    accepted: bool,
    reason: Option<String>,
    correlation_id: String,
    message_id: String,
    /// SHA-256 of the body (the counter-signed document, or the receipt).
    body_sha256: String,
}

async fn collect(env: &Env, want: usize, within: Duration) -> Vec<Outcome> {
    collect_until(env, within, |out| out.len() >= want).await
}

/// Collects results until `done` says so (or `within` passes), then lingers
/// briefly: anything more would be a duplicate.
async fn collect_until(
    env: &Env,
    within: Duration,
    done: impl Fn(&[Outcome]) -> bool,
) -> Vec<Outcome> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for cc in ["kz", "az", "tr", "uz"] {
        for (q, accepted) in [
            (format!("tamga.outbound.{cc}"), true),
            (format!("tamga.rejected.{cc}"), false),
        ] {
            let Ok(mut consumer) = env.bus.consume(&q, 64, "scenario-collector").await else {
                continue;
            };
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(Ok(d)) = consumer.next().await {
                    let m = d.message.clone();
                    let _ = d.ack().await;
                    let reason = match m.headers.get(headers::REASON) {
                        Some(HeaderValue::Str(s)) => Some(s.clone()),
                        _ => None,
                    };
                    let _ = tx.send(Outcome {
                        queue: q.clone(),
                        accepted,
                        reason,
                        correlation_id: m.correlation_id.clone().unwrap_or_default(),
                        message_id: m.message_id.clone().unwrap_or_default(),
                        body_sha256: tamga_pipeline::engine::sha256_hex(&m.body),
                    });
                }
            }));
        }
    }
    drop(tx);
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    while !done(&out) && Instant::now() < deadline {
        if let Ok(Some(o)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            out.push(o);
        }
    }
    // Linger briefly: anything more would be a duplicate.
    while let Ok(Some(o)) = tokio::time::timeout(Duration::from_millis(700), rx.recv()).await {
        out.push(o);
    }
    for t in tasks {
        t.abort();
    }
    out
}

async fn publish(env: &Env, route: &str, id: Option<&str>, body: Vec<u8>) {
    env.bus
        .publish(
            "tamga.inbound",
            Message {
                body,
                routing_key: route.into(),
                message_id: id.map(str::to_string),
                correlation_id: None,
                headers: BTreeMap::new(),
                timestamp_ms: Some(tamga_pipeline::now_ms()),
            },
        )
        .await
        .unwrap();
}

async fn audit_ok(env: &Env) -> BTreeMap<String, u64> {
    let report = env.store.verify_chain().await.unwrap();
    assert!(
        report.problem.is_none(),
        "audit chain: {:?}",
        report.problem
    );
    env.store.counts().await.unwrap()
}

// --- scenarios --------------------------------------------------------------

/// (id, route, body, accepted, reason)
type Case = (String, &'static str, Vec<u8>, bool, Option<&'static str>);

/// Good, forged, wrapped, wrong-country and unserved-destination
/// declarations: each gets exactly one, correct, result.
async fn mixed_batch(env: Env, stages: &[Stage]) {
    let site = start(&env, stages).await;
    let good = signed("KZ", "AZ", 1, "broker-ecdsa");
    let mut cases: Vec<Case> = vec![
        ("good-1".into(), "kz.az", good.clone(), true, None),
        (
            "good-2".into(),
            "az.tr",
            signed("AZ", "TR", 2, "broker-rsa"),
            true,
            None,
        ),
        (
            "good-3".into(),
            "tr.kz",
            signed("TR", "KZ", 3, "broker-ecdsa"),
            true,
            None,
        ),
        (
            "forged".into(),
            "kz.az",
            String::from_utf8(signed("KZ", "AZ", 4, "broker-ecdsa"))
                .unwrap()
                .replacen("<HSCode>", "<HSCode>9", 1)
                .into_bytes(),
            false,
            Some("digest_mismatch"),
        ),
        (
            "wrapped".into(),
            "kz.az",
            format!(
                "<Wrapper>{}</Wrapper>",
                String::from_utf8(signed("KZ", "AZ", 5, "broker-ecdsa"))
                    .unwrap()
                    .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            )
            .into_bytes(),
            false,
            Some("signature_wrapping"),
        ),
        (
            "wrong-country".into(),
            "tr.az",
            signed("KZ", "AZ", 6, "broker-ecdsa"),
            false,
            Some("untrusted_signer"),
        ),
        (
            "revoked".into(),
            "kz.tr",
            signed("KZ", "TR", 7, "broker-revoked"),
            false,
            Some("certificate_revoked"),
        ),
        (
            "unserved".into(),
            "kz.uz",
            signed("KZ", "UZ", 8, "broker-ecdsa"),
            false,
            Some("destination_not_served"),
        ),
        (
            "hostile".into(),
            "az.kz",
            b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><x>&a;</x>".to_vec(),
            false,
            Some("doctype_forbidden"),
        ),
    ];
    for i in 0..6 {
        cases.push((
            format!("bulk-{i}"),
            "az.kz",
            signed("AZ", "KZ", 100 + i, "broker-ecdsa"),
            true,
            None,
        ));
    }
    for (id, route, body, _, _) in &cases {
        publish(&env, route, Some(id), body.clone()).await;
    }
    let out = collect(&env, cases.len(), Duration::from_secs(60)).await;
    let by_id: HashMap<&str, Vec<&Outcome>> = out.iter().fold(HashMap::new(), |mut m, o| {
        m.entry(o.correlation_id.as_str()).or_default().push(o);
        m
    });
    for (id, route, _, accepted, reason) in &cases {
        let got = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id}: no result"));
        assert_eq!(got.len(), 1, "{id}: {} results", got.len());
        assert_eq!(got[0].accepted, *accepted, "{id}: {:?}", got[0]);
        assert_eq!(got[0].reason.as_deref(), *reason, "{id}");
        assert_eq!(got[0].message_id, format!("tamga:{id}"));
        let to = route.split('.').nth(1).unwrap();
        let from = route.split('.').next().unwrap();
        let expected_queue = if *accepted {
            format!("tamga.outbound.{to}")
        } else {
            format!("tamga.rejected.{from}")
        };
        assert_eq!(got[0].queue, expected_queue, "{id}");
    }
    assert_eq!(out.len(), cases.len(), "no duplicates");
    site.stop().await;
    let counts = audit_ok(&env).await;
    let n = cases.len() as u64;
    assert_eq!(counts.get("received").copied().unwrap_or(0), n);
    assert_eq!(
        counts.get("verified").copied().unwrap_or(0) + counts.get("rejected").copied().unwrap_or(0),
        n
    );
    assert_eq!(
        counts.get("countersigned").copied().unwrap_or(0)
            + counts.get("receipt_issued").copied().unwrap_or(0),
        n
    );
    assert_eq!(counts.get("forwarded").copied().unwrap_or(0), n);
}

/// The same message twice, and the same bytes under another message id:
/// processed once, answered once.
async fn duplicates(env: Env, stages: &[Stage]) {
    let site = start(&env, stages).await;
    let doc = signed("AZ", "KZ", 20, "broker-rsa");
    publish(&env, "az.kz", Some("dup-1"), doc.clone()).await;
    let first = collect(&env, 1, Duration::from_secs(30)).await;
    assert_eq!(first.len(), 1);
    publish(&env, "az.kz", Some("dup-1"), doc.clone()).await;
    publish(&env, "az.kz", Some("dup-1-again-other-id"), doc.clone()).await;
    publish(&env, "az.kz", None, doc.clone()).await;
    let again = collect(&env, 0, Duration::from_secs(3)).await;
    assert!(
        again.is_empty(),
        "duplicates must not be re-forwarded: {again:?}"
    );
    site.stop().await;
    let counts = audit_ok(&env).await;
    assert_eq!(
        counts.get("countersigned").copied().unwrap_or(0),
        1,
        "signed once"
    );
    assert_eq!(counts.get("forwarded").copied().unwrap_or(0), 1);
}

/// A message that can never be processed ends in the stage's dead-letter
/// queue, with an audit event.
async fn poison(env: Env, stages: &[Stage]) {
    let site = start(&env, stages).await;
    publish(&env, "nonsense", Some("poison-1"), b"<x/>".to_vec()).await;
    let mut dlq = env
        .bus
        .consume("tamga.verify.dlq", 1, "scenario-dlq")
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(30), dlq.next())
        .await
        .expect("the poison message reaches tamga.verify.dlq")
        .unwrap()
        .unwrap();
    assert_eq!(d.message.message_id.as_deref(), Some("poison-1"));
    d.ack().await.unwrap();
    site.stop().await;
    let counts = audit_ok(&env).await;
    assert_eq!(counts.get("dead_lettered").copied().unwrap_or(0), 1);
}

/// Declarations routed from an origin outside the trust list (`ge.az`) are
/// verified and refused (`origin_not_trusted`), but no queue takes their
/// rejection: no such partner exists. The worker used to retry that publish
/// for ever, each one holding a processing slot — with as many of them as
/// slots, nothing else was decided again (found by the chaos soak,
/// `services/tamga/tests/soak`). Each is now dead-lettered with an audit
/// event, and the valid declarations behind them are decided.
async fn origin_outside_trust_list(env: Env, stages: &[Stage]) {
    let mut cfg = config(&env.sqlite);
    cfg.worker.concurrency = 2;
    let site = start_with(&env, stages, &cfg).await;
    for i in 0..3 {
        let body = signed("KZ", "AZ", 700 + i, "broker-ecdsa");
        publish(&env, "ge.az", Some(&format!("ge-{i}")), body).await;
    }
    for i in 0..2 {
        let body = signed("KZ", "AZ", 710 + i, "broker-ecdsa");
        publish(&env, "kz.az", Some(&format!("kz-{i}")), body).await;
    }
    let out = collect(&env, 2, Duration::from_secs(60)).await;
    let mut ids: Vec<&str> = out.iter().map(|o| o.message_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["tamga:kz-0", "tamga:kz-1"], "{out:?}");
    assert!(out.iter().all(|o| o.accepted), "{out:?}");
    // Dead-lettered by the stage that publishes the result.
    let dlq = if stages == [Stage::Fused] {
        "tamga.verify.dlq"
    } else {
        "tamga.forward.dlq"
    };
    let mut consumer = env.bus.consume(dlq, 8, "scenario-dlq").await.unwrap();
    let mut dead = std::collections::BTreeSet::new();
    while dead.len() < 3 {
        let d = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .unwrap_or_else(|_| panic!("three dead-lettered in {dlq}, got {dead:?}"))
            .unwrap()
            .unwrap();
        dead.insert(d.message.message_id.clone().unwrap_or_default());
        d.ack().await.unwrap();
    }
    assert_eq!(
        dead,
        ["ge-0", "ge-1", "ge-2"]
            .map(String::from)
            .into_iter()
            .collect()
    );
    site.stop().await;
    let counts = audit_ok(&env).await;
    assert_eq!(counts.get("dead_lettered").copied(), Some(3), "{counts:?}");
    // Refused with a signed receipt (kept, as every decision), not delivered.
    assert_eq!(counts.get("receipt_issued").copied(), Some(3), "{counts:?}");
    assert_eq!(counts.get("countersigned").copied(), Some(2), "{counts:?}");
}

// --- the authority's key, watched -------------------------------------------

/// The configured key, with its private-key operations counted, and failing
/// (as a PKCS#11 token that is unplugged or restarting does:
/// `CryptoError::Signing`) while `down` is set.
#[derive(Clone, Default)]
struct KeyWatch {
    signs: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
}

struct Watched {
    inner: Box<dyn Signer + Send + Sync>,
    watch: KeyWatch,
}

impl Signer for Watched {
    fn algorithm(&self) -> tamga_dsig::SignatureAlgorithm {
        self.inner.algorithm()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, tamga_dsig::CryptoError> {
        if self.watch.down.load(Ordering::SeqCst) {
            return Err(tamga_dsig::CryptoError::Signing(
                "C_Sign: CKR_DEVICE_REMOVED (test outage)".into(),
            ));
        }
        self.watch.signs.fetch_add(1, Ordering::SeqCst);
        self.inner.sign(message)
    }
    fn public_key(&self) -> tamga_dsig::PublicKey {
        self.inner.public_key()
    }
}

impl KeyWatch {
    fn opener(&self) -> impl Fn(&str) -> Result<Box<dyn Signer + Send + Sync>, String> {
        let watch = self.clone();
        move |spec: &str| {
            let inner = tamga_pipeline::open_key(spec)?;
            Ok(Box::new(Watched {
                inner,
                watch: watch.clone(),
            }) as Box<dyn Signer + Send + Sync>)
        }
    }
    fn signs(&self) -> usize {
        self.signs.load(Ordering::SeqCst)
    }
}

async fn start_watched(
    env: &Env,
    stages: &[Stage],
    worker: &str,
    key: &KeyWatch,
    hook: Option<tamga_pipeline::engine::FaultHook>,
) -> Site {
    let mut cfg = config(&env.sqlite);
    cfg.worker.name = worker.into();
    start_site_with_fault_hook(
        &cfg,
        &SiteOptions {
            embedded: false,
            stages: stages.to_vec(),
        },
        &key.opener(),
        Some(env.bus.clone()),
        Some(env.store.clone()),
        hook,
    )
    .await
    .unwrap()
}

/// Every declaration delivered twice at once, to two workers: the decision
/// is claimed before any private-key operation, so each declaration is
/// signed exactly once (one counter-signature and one receipt), whoever
/// wins. Before the claim, both deliveries signed and one result was thrown
/// away.
async fn concurrent_twins(env: Env, stages: &[Stage], n: u64) {
    let key = KeyWatch::default();
    let a = start_watched(&env, stages, "twin-a", &key, None).await;
    let b = start_watched(&env, stages, "twin-b", &key, None).await;
    let docs: Vec<Vec<u8>> = (0..n)
        .map(|i| signed("KZ", "AZ", 5_000 + i, "broker-ecdsa"))
        .collect();
    for (i, doc) in docs.iter().enumerate() {
        let id = format!("twin-{i}");
        publish(&env, "kz.az", Some(&id), doc.clone()).await;
        publish(&env, "kz.az", Some(&id), doc.clone()).await;
    }
    let want = usize::try_from(n).unwrap();
    let out = collect_until(&env, Duration::from_secs(600), |out| {
        out.iter()
            .map(|o| &o.correlation_id)
            .collect::<std::collections::HashSet<_>>()
            .len()
            >= want
    })
    .await;
    a.stop().await;
    b.stop().await;
    let mut bodies: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    for o in &out {
        assert!(o.accepted, "{o:?}");
        bodies
            .entry(o.correlation_id.as_str())
            .or_default()
            .insert(o.body_sha256.as_str());
    }
    assert_eq!(bodies.len(), want, "every declaration answered");
    for (id, b) in &bodies {
        assert_eq!(
            b.len(),
            1,
            "{id}: {} different counter-signed documents",
            b.len()
        );
    }
    // Three private-key operations per declaration: the counter-signature, the
    // receipt and the receipt's signed QR (COSE_Sign1) — plus one per audit checkpoint
    // the sites signed when they stopped (one after the other: no race discarded one).
    let checkpoints = env
        .store
        .checkpoint_store()
        .unwrap()
        .checkpoints()
        .await
        .unwrap()
        .len();
    assert_eq!(
        key.signs() - checkpoints,
        3 * want,
        "one counter-signature, one receipt and one QR per declaration, no more"
    );
    let counts = audit_ok(&env).await;
    assert_eq!(counts.get("countersigned").copied().unwrap_or(0), n);
    assert_eq!(counts.get("forwarded").copied().unwrap_or(0), n);
}

/// The authority's key fails for a while (an HSM outage): declarations are
/// held, never dead-lettered, and all go through once the key is back.
async fn key_outage(env: Env, stages: &[Stage]) {
    let key = KeyWatch::default();
    key.down.store(true, Ordering::SeqCst);
    let site = start_watched(&env, stages, "outage", &key, None).await;
    let stage = if stages.contains(&Stage::Fused) {
        "fused"
    } else {
        "countersign"
    };
    let n = 12;
    for i in 0..n {
        publish(
            &env,
            "az.kz",
            Some(&format!("held-{i}")),
            signed("AZ", "KZ", 7_000 + i, "broker-rsa"),
        )
        .await;
    }
    // Wait until the outage has been met (a metric, not a log line), then
    // for a few more retries.
    let key_failures = || {
        site.metrics
            .failures
            .with_label_values(&[stage, "transient", "key"])
            .get()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while key_failures() < 3 {
        assert!(Instant::now() < deadline, "the outage was never met");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let early = collect(&env, 0, Duration::from_millis(10)).await;
    assert!(
        early.is_empty(),
        "nothing can be decided without the key: {early:?}"
    );
    key.down.store(false, Ordering::SeqCst);
    let out = collect(&env, n as usize, Duration::from_secs(120)).await;
    assert_eq!(out.len(), n as usize, "{out:?}");
    assert!(out.iter().all(|o| o.accepted), "{out:?}");
    assert_eq!(
        site.metrics.dead_lettered.with_label_values(&[stage]).get(),
        0
    );
    site.stop().await;
    let counts = audit_ok(&env).await;
    assert_eq!(counts.get("dead_lettered").copied().unwrap_or(0), 0);
    assert_eq!(counts.get("forwarded").copied().unwrap_or(0), n);
}

/// A panic in the engine (injected through the test hook) is retried up to
/// the delivery limit, then dead-lettered with an audit event; the other
/// declarations flow. Before, a panic was retried for ever.
async fn engine_panic(env: Env, stages: &[Stage]) {
    let key = KeyWatch::default();
    let hook: tamga_pipeline::engine::FaultHook = Arc::new(|body: &[u8]| {
        if body.windows(8).any(|w| w == b"PANIC-ME") {
            panic!("injected by the test hook");
        }
    });
    let site = start_watched(&env, stages, "panicky", &key, Some(hook)).await;
    let stage = if stages.contains(&Stage::Fused) {
        "fused"
    } else {
        "verify"
    };
    publish(&env, "kz.az", Some("panics"), b"<x>PANIC-ME</x>".to_vec()).await;
    publish(
        &env,
        "kz.az",
        Some("fine"),
        signed("KZ", "AZ", 7_500, "broker-ecdsa"),
    )
    .await;
    let mut dlq = env
        .bus
        .consume("tamga.verify.dlq", 1, "scenario-dlq")
        .await
        .unwrap();
    let d = tokio::time::timeout(Duration::from_secs(60), dlq.next())
        .await
        .expect("the panicking message reaches tamga.verify.dlq")
        .unwrap()
        .unwrap();
    assert_eq!(d.message.message_id.as_deref(), Some("panics"));
    d.ack().await.unwrap();
    let out = collect(&env, 1, Duration::from_secs(60)).await;
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].correlation_id, "fine");
    assert!(
        site.metrics
            .failures
            .with_label_values(&[stage, "panic", "engine"])
            .get()
            >= 1
    );
    assert_eq!(
        site.metrics.dead_lettered.with_label_values(&[stage]).get(),
        1
    );
    site.stop().await;
    let counts = audit_ok(&env).await;
    assert_eq!(counts.get("dead_lettered").copied().unwrap_or(0), 1);
}

/// One partner publishes a CRL that cannot be read: the site starts, says
/// which country is degraded, and only that country's declarations come out
/// INDETERMINATE (`revocation_unavailable`); the other corridors flow.
async fn broken_crl_one_country(env: Env, stages: &[Stage]) {
    let trust = env._dir.path().join("trust");
    copy_dir(&pki().root.join("trust"), &trust);
    std::fs::write(
        trust.join("KZ").join("issuing-ca.crl"),
        "-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    let site = start_with(&env, stages, &config_with_trust(&env.sqlite, &trust)).await;
    let metrics = site.metrics.render();
    assert!(
        metrics.contains("tamga_trust_degraded{country=\"KZ\",kind=\"crl\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("tamga_trust_degraded{country=\"AZ\""),
        "{metrics}"
    );
    let mut cases: Vec<Case> = vec![
        (
            "kz-1".into(),
            "kz.az",
            signed("KZ", "AZ", 31, "broker-ecdsa"),
            false,
            Some("revocation_unavailable"),
        ),
        (
            "kz-2".into(),
            "kz.tr",
            signed("KZ", "TR", 32, "broker-rsa"),
            false,
            Some("revocation_unavailable"),
        ),
    ];
    for (i, (from, to, route)) in [
        ("AZ", "TR", "az.tr"),
        ("TR", "KZ", "tr.kz"),
        ("AZ", "KZ", "az.kz"),
    ]
    .into_iter()
    .enumerate()
    {
        cases.push((
            format!("ok-{i}"),
            route,
            signed(from, to, 40 + i as u64, "broker-ecdsa"),
            true,
            None,
        ));
    }
    for (id, route, body, _, _) in &cases {
        publish(&env, route, Some(id), body.clone()).await;
    }
    let out = collect(&env, cases.len(), Duration::from_secs(60)).await;
    for (id, route, _, accepted, reason) in &cases {
        let got: Vec<&Outcome> = out.iter().filter(|o| &o.correlation_id == id).collect();
        assert_eq!(got.len(), 1, "{id}: {got:?}");
        assert_eq!(got[0].accepted, *accepted, "{id}: {:?}", got[0]);
        assert_eq!(got[0].reason.as_deref(), *reason, "{id}");
        let from = route.split('.').next().unwrap();
        if !accepted {
            assert_eq!(got[0].queue, format!("tamga.rejected.{from}"), "{id}");
        }
    }
    assert_eq!(out.len(), cases.len(), "no duplicates");
    let metrics = site.metrics.render();
    assert!(
        metrics.contains("tamga_rejections_total{origin=\"KZ\",sub_indication=\"TRY_LATER\"} 2"),
        "{metrics}"
    );
    site.stop().await;
    audit_ok(&env).await;
}

/// While the site runs, KZ's issuing CA publishes a malformed CRL, then an
/// expired one, then one whose signature is not the CA's; each is put in
/// force by a trust reload (as SIGHUP or the periodic reload would). Each
/// time only KZ's declarations are refused, with that fault's reason; AZ's
/// and TR's keep flowing; a good CRL brings KZ back.
async fn crl_faults_while_running(env: Env, stages: &[Stage]) {
    let trust = env._dir.path().join("trust");
    copy_dir(&pki().root.join("trust"), &trust);
    let cfg = config_with_trust(&env.sqlite, &trust);
    let site = start_with(&env, stages, &cfg).await;
    let crl = trust.join("KZ").join("issuing-ca.crl");
    let good = std::fs::read(&crl).unwrap();
    let keys = pki().root.join("keys").join("KZ");

    // An expired CRL of the real issuing CA (openssl ca: lastUpdate and
    // nextUpdate in the past), and the good CRL with its signature broken.
    let work = env._dir.path().join("ca");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("index.txt"), "").unwrap();
    std::fs::write(work.join("crlnumber"), "1000\n").unwrap();
    std::fs::write(
        work.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
             default_md = sha256\ncertificate = {}\nprivate_key = {}\n",
            keys.join("issuing-ca.pem").display(),
            keys.join("issuing-ca.key").display()
        ),
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    openssl(&[
        "ca",
        "-config",
        "ca.cnf",
        "-gencrl",
        "-crl_lastupdate",
        "20200101000000Z",
        "-crl_nextupdate",
        "20200201000000Z",
        "-out",
        "expired.crl",
    ]);
    let expired = std::fs::read(work.join("expired.crl")).unwrap();
    let mut forged = openssl(&["crl", "-in", &crl.display().to_string(), "-outform", "DER"]);
    let last = forged.len() - 1;
    forged[last] ^= 0x01;

    let phases: [(&str, Vec<u8>, Option<&'static str>); 4] = [
        (
            "malformed",
            b"-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n".to_vec(),
            Some("revocation_unavailable"),
        ),
        ("expired", expired, Some("crl_expired")),
        ("forged", forged, Some("crl_invalid")),
        ("restored", good, None),
    ];
    for (n, (phase, bytes, kz_reason)) in phases.into_iter().enumerate() {
        std::fs::write(&crl, bytes).unwrap();
        tamga_pipeline::site::reload_trust(&cfg, &site, phase)
            .await
            .unwrap();
        let seq = 100 + 10 * n as u64;
        let cases: Vec<Case> = vec![
            (
                format!("{phase}-kz"),
                "kz.az",
                signed("KZ", "AZ", seq, "broker-ecdsa"),
                kz_reason.is_none(),
                kz_reason,
            ),
            (
                format!("{phase}-az"),
                "az.tr",
                signed("AZ", "TR", seq + 1, "broker-ecdsa"),
                true,
                None,
            ),
            (
                format!("{phase}-tr"),
                "tr.kz",
                signed("TR", "KZ", seq + 2, "broker-rsa"),
                true,
                None,
            ),
        ];
        for (id, route, body, _, _) in &cases {
            publish(&env, route, Some(id), body.clone()).await;
        }
        let out = collect(&env, cases.len(), Duration::from_secs(60)).await;
        for (id, _, _, accepted, reason) in &cases {
            let got: Vec<&Outcome> = out.iter().filter(|o| &o.correlation_id == id).collect();
            assert_eq!(got.len(), 1, "{id}: {out:?}");
            assert_eq!(got[0].accepted, *accepted, "{id}: {:?}", got[0]);
            assert_eq!(got[0].reason.as_deref(), *reason, "{id}");
        }
        assert_eq!(out.len(), cases.len(), "{phase}: no duplicates");
    }
    site.stop().await;
    audit_ok(&env).await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Every scenario on both paths (in-process bus + SQLite; RabbitMQ +
/// PostgreSQL), each with the fused stage and with the three separate ones.
macro_rules! both {
    ($($name:ident),*) => {
        mod embedded {
            use tamga_pipeline::Stage;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::embedded().await, &Stage::ALL).await
                }
            )*
            mod fused {
                use tamga_pipeline::Stage;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::super::$name(super::super::embedded().await, &[Stage::Fused]).await
                    }
                )*
            }
        }
        mod rabbitmq_postgres {
            use tamga_pipeline::Stage;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::real().await, &Stage::ALL).await
                }
            )*
            mod fused {
                use tamga_pipeline::Stage;
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        super::super::$name(super::super::real().await, &[Stage::Fused]).await
                    }
                )*
            }
        }
    };
}

both!(
    mixed_batch,
    duplicates,
    poison,
    origin_outside_trust_list,
    key_outage,
    engine_panic,
    broken_crl_one_country,
    crl_faults_while_running
);

/// An existing scenario, end to end, with the workers logged in as `tamga_worker`
/// (INSERT and SELECT only): everything the pipeline does, it may do.
mod as_worker {
    use tamga_pipeline::Stage;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mixed_batch_fused() {
        super::mixed_batch(super::real_as_worker().await, &[Stage::Fused]).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mixed_batch_staged() {
        super::mixed_batch(super::real_as_worker().await, &Stage::ALL).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn duplicates_fused() {
        super::duplicates(super::real_as_worker().await, &[Stage::Fused]).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints() {
        super::signed_checkpoints(super::real_as_worker().await).await
    }

    /// The same on the embedded default (SQLite keeps checkpoints too).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_embedded() {
        super::signed_checkpoints(super::embedded().await).await
    }
}

/// The site signs checkpoints at its interval and when it stops, into the database and
/// the external directory; the trail verifies against them, and every event has an
/// inclusion proof.
async fn signed_checkpoints(env: Env) {
    let dir = env._dir.path().join("witness");
    let mut cfg = config(&env.sqlite);
    cfg.audit.checkpoint_dir = Some(dir.clone());
    cfg.audit.checkpoint_interval_s = 1;
    let site = start_with(&env, &[Stage::Fused], &cfg).await;
    for i in 0..6 {
        publish(
            &env,
            "kz.az",
            Some(&format!("cp-{i}")),
            signed("KZ", "AZ", 9_000 + i, "broker-ecdsa"),
        )
        .await;
    }
    let out = collect(&env, 6, Duration::from_secs(120)).await;
    assert_eq!(out.len(), 6);
    // At least one checkpoint at the interval, while running (a metric, not a sleep).
    let deadline = Instant::now() + Duration::from_secs(60);
    while site
        .metrics
        .audit_checkpoints
        .with_label_values(&["signed"])
        .get()
        == 0
    {
        assert!(Instant::now() < deadline, "no checkpoint within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = site
        .metrics
        .audit_checkpoints
        .with_label_values(&["refused"])
        .get();
    site.stop().await;
    assert_eq!(refused, 0);

    let cps = env.store.checkpoint_store().unwrap();
    let rows = cps.checkpoints().await.unwrap();
    let files = tamga_pipeline::checkpoint::read_checkpoint_dir(&dir).unwrap();
    assert!(!rows.is_empty());
    assert_eq!(
        files.len(),
        rows.len(),
        "every checkpoint is also outside the database"
    );
    let (chains, leaves) = tamga_pipeline::checkpoint::read_trail(env.store.as_ref())
        .await
        .unwrap();
    assert!(chains.is_intact());
    let pinned = tamga_pipeline::checkpoint::pinned_certificates(&cfg).unwrap();
    let report = tamga_audit_log::check_checkpoints(&leaves, &rows, &files, &pinned);
    assert!(
        report.is_intact(),
        "{:?} {:?}",
        report.problems,
        report.broken
    );
    assert_eq!(
        report.uncovered, 0,
        "the shutdown checkpoint covers everything"
    );
    let (trusted, _) = tamga_audit_log::trusted_checkpoints(&rows, &files, &pinned);
    let cuts: Vec<_> = trusted.iter().map(tamga_audit_log::Trusted::cut).collect();
    for e in env.store.events(None, 10_000).await.unwrap() {
        tamga_audit_log::prove_inclusion(&leaves, &cuts, &e.chain, e.seq).unwrap();
    }
}

/// The claim-before-signing check, 1,000 declarations each delivered twice
/// at once to two workers (fused, on both paths), and 200 through the three
/// separate stages.
mod twins {
    use tamga_pipeline::Stage;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_fused() {
        super::concurrent_twins(super::embedded().await, &[Stage::Fused], 1_000).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rabbitmq_postgres_fused() {
        super::concurrent_twins(super::real().await, &[Stage::Fused], 1_000).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rabbitmq_postgres_staged() {
        super::concurrent_twins(super::real().await, &Stage::ALL, 200).await
    }
}
