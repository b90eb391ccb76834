//! Issue 13 through the command line: signed checkpoints of the audit trail, and the
//! attacker who can rewrite the database.
//!
//! Each test writes events, has `tamga audit checkpoint` sign checkpoints into the
//! database and an external directory, then plays the attacker with the database's
//! superuser role (or the SQLite file): rewrites an early event and recomputes every hash
//! after it, so that the hash chains are consistent again — `tamga audit verify` must
//! still exit 1, naming the first checkpoint broken. Also: the tail of a chain removed,
//! inclusion and consistency proofs, `tamga migrate` as the owner with the workers logged
//! in as `tamga_worker`. PostgreSQL at 127.0.0.1:5432 (a database per test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tamga_pki::{generate, DemoPki, DemoPkiOptions};
use tamga_store::{event_hash, AuditEvent, Store, StoreConfig, GENESIS_HASH};

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

fn pki() -> &'static DemoPki {
    static PKI: OnceLock<DemoPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        generate(&DemoPkiOptions::new(["AZ", "KZ"], now)).expect("demo PKI")
    })
}

fn tamga(args: &[&str]) -> Output {
    tamga_with(args, &[])
}

/// With only these `TAMGA_*` variables (the caller's are removed).
fn tamga_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(TAMGA);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TAMGA_") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied());
    c.args(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn event(id: &str) -> AuditEvent {
    AuditEvent {
        at_ms: 1_780_000_000_000,
        stage: "countersigned".into(),
        worker: "site-1".into(),
        declaration_id: id.into(),
        origin: "KZ".into(),
        destination: "AZ".into(),
        outcome: "accepted".into(),
        sub_indication: None,
        reason: None,
        digest: "ab".repeat(32),
        detail: None,
    }
}

/// A site directory: the demo PKI and a configuration.
struct SiteDir {
    dir: tempfile::TempDir,
}

impl SiteDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        pki().write_to(dir.path()).unwrap();
        Self { dir }
    }

    fn witness(&self) -> PathBuf {
        self.dir.path().join("witness")
    }

    fn sqlite(&self) -> PathBuf {
        self.dir.path().join("audit.sqlite")
    }

    /// `database`: a `[database]` section, or "" for the embedded store.
    fn config(&self, database: &str) -> PathBuf {
        let root = self.dir.path();
        let k = root.join("keys").join("AZ");
        let toml = format!(
            "{database}\n[trust]\ndir = \"{}\"\n\n\
             [[authority]]\ncountry = \"AZ\"\nkey = \"{}\"\ncert = \"{}\"\nchain = [\"{}\"]\n\n\
             [embedded]\nsqlite = \"{}\"\n\n\
             [audit]\ncheckpoint_dir = \"{}\"\n",
            root.join("trust").display(),
            k.join("authority.key").display(),
            k.join("authority.pem").display(),
            k.join("issuing-ca.pem").display(),
            self.sqlite().display(),
            self.witness().display(),
        );
        let path = root.join("site.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn append(store: &dyn Store, chain: &str, n: usize) {
    for i in 0..n {
        store
            .append(chain, &event(&format!("{chain}-{i}")))
            .await
            .unwrap();
    }
}

fn checkpoint(config: &Path) -> u64 {
    let o = tamga(&["audit", "checkpoint", "--config", s(config)]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["treeSize"].as_u64().unwrap()
}

/// Events in three chains and three checkpoints (sizes 5, 8, 13).
async fn history(store: &dyn Store, config: &Path) {
    append(store, "site-1/fused/0", 3).await;
    append(store, "site-1/fused/1", 2).await;
    assert_eq!(checkpoint(config), 5);
    append(store, "site-1/fused/0", 2).await;
    append(store, "site-1.trust", 1).await;
    assert_eq!(checkpoint(config), 8);
    append(store, "site-1/fused/1", 4).await;
    append(store, "site-2/fused/0", 1).await;
    assert_eq!(checkpoint(config), 13);
    let again = tamga(&["audit", "checkpoint", "--config", s(config)]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing new"));
}

/// Before the attack: verify passes; proofs verify.
fn intact(config: &Path, witness: &Path) {
    let o = tamga(&["audit", "verify", "--config", s(config)]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("audit trail intact"), "{out}");
    assert!(
        out.contains("anchored outside the database: the first 13 events"),
        "{out}"
    );
    assert!(out.contains(s(witness)), "{out}");

    let o = tamga(&["audit", "prove", "--config", s(config), "site-1/fused/0:4"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["checkpoint"]["treeSize"], 13);
    let p = &v["inclusions"][0];
    assert_eq!(p["firstCoveredBy"], 8);
    assert_eq!(p["treeSize"], 13);
    assert!(p["proof"].as_array().unwrap().len() >= 3);

    let o = tamga(&[
        "audit",
        "prove",
        "--config",
        s(config),
        "--consistency",
        "5",
        "13",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["consistency"]["oldSize"], 5);
    assert_eq!(
        v["old"]["file"]
            .as_str()
            .map(|f| f.ends_with("checkpoint-00000000000000000005.xml")),
        Some(true)
    );

    let o = tamga(&[
        "audit",
        "prove",
        "--config",
        s(config),
        "--declaration",
        "site-1.trust-0",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // Not an event; and a usage error.
    let o = tamga(&["audit", "prove", "--config", s(config), "site-1/fused/0:99"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = tamga(&["audit", "prove", "--config", s(config), "no-seq"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// After the attack: the hash chains are consistent, the checkpoint is not.
fn rewrite_detected(config: &Path, witness: &Path) {
    let o = tamga(&["audit", "verify", "--config", s(config)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        !out.contains("FIRST PROBLEM"),
        "the chains alone look intact: {out}"
    );
    assert!(out.contains("the hash chains are consistent"), "{out}");
    assert!(
        out.contains("CHECKPOINT BROKEN: checkpoint of tree size 5 ")
            && out.contains(s(&witness.join("checkpoint-00000000000000000005.xml")))
            && out.contains("history behind it was rewritten"),
        "{out}"
    );
    let o = tamga(&["audit", "prove", "--config", s(config), "site-1/fused/0:4"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The checkpointer will not sign over it either.
    let o = tamga(&["audit", "checkpoint", "--config", s(config)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("refusing to sign"), "{}", text(&o));
}

// --- PostgreSQL ---------------------------------------------------------------

async fn pg(db: &str, user: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 user={user} dbname={db}"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL must run on 127.0.0.1:5432 (make services)");
    tokio::spawn(conn);
    client
}

struct Db(String);

impl Db {
    async fn create() -> Self {
        let n = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let name = format!("tamga_auditlog_{}_{:x}", std::process::id(), n);
        pg("postgres", "postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Db(name)
    }

    /// Workers as tamga_worker, migrations by the owner.
    fn section(&self) -> String {
        format!(
            "[database]\nurl = \"postgres://tamga_worker@127.0.0.1:5432/{0}\"\n\
             migrate_url = \"postgres://postgres@127.0.0.1:5432/{0}\"\n",
            self.0
        )
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

/// The attacker: the superuser turns the triggers off, rewrites one event, and
/// recomputes the hash and prev_hash of every later event of that chain.
async fn rewrite_pg(client: &tokio_postgres::Client, chain: &str, seq: i64) {
    client
        .batch_execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        .await
        .unwrap();
    client
        .execute(
            "UPDATE audit_events SET outcome = 'rejected' WHERE chain = $1 AND seq = $2",
            &[&chain, &seq],
        )
        .await
        .unwrap();
    let rows = client
        .query(
            "SELECT seq, at_ms, stage, worker, declaration_id, origin, destination, outcome, \
             sub_indication, reason, digest, detail FROM audit_events WHERE chain = $1 ORDER BY seq",
            &[&chain],
        )
        .await
        .unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    for r in rows {
        let seq: i64 = r.get(0);
        let e = AuditEvent {
            at_ms: r.get(1),
            stage: r.get(2),
            worker: r.get(3),
            declaration_id: r.get(4),
            origin: r.get(5),
            destination: r.get(6),
            outcome: r.get(7),
            sub_indication: r.get(8),
            reason: r.get(9),
            digest: r.get(10),
            detail: r.get(11),
        };
        let hash = event_hash(chain, seq, &prev, &e);
        client
            .execute(
                "UPDATE audit_events SET prev_hash = $3, hash = $4 WHERE chain = $1 AND seq = $2",
                &[&chain, &seq, &prev, &hash],
            )
            .await
            .unwrap();
        prev = hash;
    }
    client
        .batch_execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rewrite_behind_a_checkpoint_is_detected() {
    let site = SiteDir::new();
    let db = Db::create().await;
    let config = site.config(&db.section());
    // The owner migrates; the workers (and these commands) log in as tamga_worker.
    let o = tamga(&["migrate", "--config", s(&config)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("applied 0008_login_roles"),
        "{}",
        text(&o)
    );
    let o = tamga(&["migrate", "--config", s(&config)]);
    assert!(text(&o).contains("up to date"), "{}", text(&o));
    let store = tamga_store::connect_postgres(&StoreConfig {
        migrate: false,
        require_boundary: true,
        ..StoreConfig::new(format!("postgres://tamga_worker@127.0.0.1:5432/{}", db.0))
    })
    .await
    .unwrap();
    history(&store, &config).await;
    intact(&config, &site.witness());
    // An auditor's own login: tamga_reader reads the trail and its checkpoints.
    let reader = format!("postgres://tamga_reader@127.0.0.1:5432/{}", db.0);
    let o = tamga_with(
        &["audit", "verify", "--config", s(&config)],
        &[("TAMGA_DATABASE_URL", &reader)],
    );
    assert!(o.status.success(), "{}", text(&o));

    rewrite_pg(&pg(&db.0, "postgres").await, "site-1/fused/0", 2).await;
    assert!(
        store.verify_chain().await.unwrap().is_intact(),
        "the old check is fooled"
    );
    rewrite_detected(&config, &site.witness());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tail_removed_behind_a_checkpoint_is_detected() {
    let site = SiteDir::new();
    let db = Db::create().await;
    let config = site.config(&db.section());
    assert!(tamga(&["migrate", "--config", s(&config)]).status.success());
    let store = tamga_store::connect_postgres(&StoreConfig {
        migrate: false,
        require_boundary: true,
        ..StoreConfig::new(format!("postgres://tamga_worker@127.0.0.1:5432/{}", db.0))
    })
    .await
    .unwrap();
    history(&store, &config).await;
    // The superuser deletes the last three events of a chain — and the database's own
    // checkpoints with them.
    pg(&db.0, "postgres")
        .await
        .batch_execute(
            "ALTER TABLE audit_events DISABLE TRIGGER USER; \
             ALTER TABLE audit_checkpoints DISABLE TRIGGER USER; \
             DELETE FROM audit_events WHERE chain = 'site-1/fused/1' AND seq > 3; \
             DELETE FROM audit_checkpoints; \
             ALTER TABLE audit_events ENABLE TRIGGER USER; \
             ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;",
        )
        .await
        .unwrap();
    assert!(store.verify_chain().await.unwrap().is_intact());
    let o = tamga(&["audit", "verify", "--config", s(&config)]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("CHECKPOINT BROKEN: checkpoint of tree size 13 ")
            && out.contains("events were removed"),
        "{out}"
    );
    // The checkpointer sees the external directory ahead of the database and refuses.
    let o = tamga(&["audit", "checkpoint", "--config", s(&config)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("checkpoints were removed from the database"),
        "{}",
        text(&o)
    );
}

// --- SQLite (the embedded default) ------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rewrite_behind_a_checkpoint_is_detected() {
    let site = SiteDir::new();
    let config = site.config("");
    let store = tamga_store::open_sqlite(&site.sqlite()).unwrap();
    history(&store, &config).await;
    intact(&config, &site.witness());
    drop(store);

    // The attacker has the file: drops the triggers, rewrites, recomputes.
    let conn = rusqlite::Connection::open(site.sqlite()).unwrap();
    conn.execute_batch(
        "DROP TRIGGER audit_events_no_update; \
         UPDATE audit_events SET outcome = 'rejected' WHERE chain = 'site-1/fused/0' AND seq = 2;",
    )
    .unwrap();
    let store = tamga_store::open_sqlite(&site.sqlite()).unwrap();
    let events: Vec<_> = store
        .events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.chain == "site-1/fused/0")
        .collect();
    drop(store);
    conn.execute_batch("DROP TRIGGER audit_events_no_update")
        .unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    for e in events {
        let hash = event_hash(&e.chain, e.seq, &prev, &e.event);
        conn.execute(
            "UPDATE audit_events SET prev_hash = ?1, hash = ?2 WHERE chain = ?3 AND seq = ?4",
            rusqlite::params![prev, hash, e.chain, e.seq],
        )
        .unwrap();
        prev = hash;
    }
    drop(conn);
    let store = tamga_store::open_sqlite(&site.sqlite()).unwrap();
    assert!(store.verify_chain().await.unwrap().is_intact());
    drop(store);
    rewrite_detected(&config, &site.witness());
}

/// A receipt's events are found by the receipt's document digest (the pipeline keeps
/// "these bytes were first seen as declaration X").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_finds_its_checkpoint() {
    let site = SiteDir::new();
    let config = site.config("");
    let store = tamga_store::open_sqlite(&site.sqlite()).unwrap();
    let az = &pki().countries[0];
    let signer = tamga_dsig::SigningKey::from_pkcs8_der(&az.authority.key_pkcs8_der).unwrap();
    let content = tamga_receipt::ReceiptContent {
        receipt_id: "rcpt-1".into(),
        issued_at: "2026-05-28T20:26:40Z".into(),
        authority: tamga_receipt::Authority::from_certificate(&az.authority.cert_der, "AZ")
            .unwrap(),
        document_sha256: "cd".repeat(32),
        document_size: 10,
        lrn: None,
        document_id: None,
        origin: "KZ".into(),
        destination: "AZ".into(),
        decision: tamga_receipt::Decision::Accepted,
        indication: "TOTAL_PASSED".into(),
        sub_indication: None,
        reason: None,
        message: "ok".into(),
        countersigned_sha256: None,
        validation_report: "{}".into(),
        qr: None,
    };
    let receipt = tamga_receipt::issue_receipt(
        &content,
        &signer,
        vec![az.authority.cert_der.clone()],
        1_780_000_000,
    )
    .unwrap();
    let path = site.dir.path().join("receipt.xml");
    std::fs::write(&path, receipt).unwrap();
    // What the fused stage records: the bytes' digest names the declaration.
    store
        .record_all(
            "site-1/fused/0",
            tamga_store::ResultRow {
                declaration_id: "msg-77",
                stage: "decide",
                result: b"d",
            },
            &[tamga_store::ResultRow {
                declaration_id: &"cd".repeat(32),
                stage: "received",
                result: b"msg-77",
            }],
            &[event("msg-77"), event("msg-77")],
        )
        .await
        .unwrap();
    append(&store, "site-1/fused/1", 2).await;
    let o = tamga(&[
        "audit",
        "prove",
        "--config",
        s(&config),
        "--receipt",
        s(&path),
    ]);
    assert_eq!(o.status.code(), Some(1), "not covered yet: {}", text(&o));
    assert_eq!(checkpoint(&config), 4);
    let o = tamga(&[
        "audit",
        "prove",
        "--config",
        s(&config),
        "--receipt",
        s(&path),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let inc = v["inclusions"].as_array().unwrap();
    assert_eq!(inc.len(), 2);
    assert!(inc
        .iter()
        .all(|p| p["chain"] == "site-1/fused/0" && p["firstCoveredBy"] == 4));
}

/// A checkpoint file is valid by `schemas/checkpoint.xsd` and its signature verifies in
/// xmlsec1 (the reference implementation) against the authority's root; a changed tree
/// size does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_files_validate_and_verify_in_xmlsec1() {
    let site = SiteDir::new();
    let config = site.config("");
    let store = tamga_store::open_sqlite(&site.sqlite()).unwrap();
    append(&store, "site-1/fused/0", 3).await;
    append(&store, "a \"quoted\" & <odd> chain", 1).await;
    assert_eq!(checkpoint(&config), 4);
    let file = site.witness().join(tamga_audit_log::file_name(4));
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/checkpoint.xsd");
    let o = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint is required: apt-get install libxml2-utils (make deps does)");
    assert!(o.status.success(), "{}", text(&o));

    let keys = site.dir.path().join("keys").join("AZ");
    let xmlsec = |f: &Path| {
        Command::new("xmlsec1")
            .arg("--verify")
            .arg("--trusted-pem")
            .arg(keys.join("root-ca.pem"))
            .arg("--untrusted-pem")
            .arg(keys.join("issuing-ca.pem"))
            .arg("--id-attr:Id")
            .arg("http://uri.etsi.org/01903/v1.3.2#:SignedProperties")
            .arg(f)
            .output()
            .expect("xmlsec1 is required: apt-get install xmlsec1 (make deps does)")
    };
    let o = xmlsec(&file);
    assert!(o.status.success(), "{}", text(&o));
    let forged = site.dir.path().join("forged.xml");
    let bytes = String::from_utf8(std::fs::read(&file).unwrap()).unwrap();
    std::fs::write(
        &forged,
        bytes.replacen("<TreeSize>4</TreeSize>", "<TreeSize>3</TreeSize>", 1),
    )
    .unwrap();
    let o = xmlsec(&forged);
    assert!(!o.status.success(), "{}", text(&o));
}
