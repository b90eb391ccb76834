//! The store suite on PostgreSQL, plus roles, timeouts, outages and migrations.
//!
//! Needs PostgreSQL at `TAMGA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`,
//! a user that may create databases and roles). Each test creates its own database
//! `tamga_test_<random>` and drops it afterwards (best effort, also on failure). When the
//! server is not reachable the tests FAIL: CI starts it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{event, Backdoor};
use tamga_store::{
    connect_postgres, stage, PgStore, Store, StoreConfig, StoreError, CHAIN_LOCK_NAMESPACE,
};
use tokio_postgres::NoTls;

fn base_url() -> String {
    std::env::var("TAMGA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

async fn admin(db: &str) -> tokio_postgres::Client {
    let url = format!("{}/{db}", base_url());
    let connect = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_postgres::connect(&url, NoTls),
    );
    let (client, connection) = match connect.await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            panic!(
                "PostgreSQL is not reachable at {url} ({why}). These tests need a running \
                 server (CI starts one; set TAMGA_TEST_PG_URL to use another)."
            )
        }
        Err(_) => panic!("PostgreSQL at {url} did not answer within 10 s"),
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A fresh database, dropped (WITH FORCE) when this is dropped, even after a failure.
struct TestDb {
    name: String,
}

impl TestDb {
    async fn create() -> Self {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let name = format!("tamga_test_{}", hex::encode(bytes));
        admin("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", base_url(), self.name)
    }

    fn config(&self) -> StoreConfig {
        StoreConfig {
            url: self.url(),
            app_role: Some("tamga_app".into()),
            pool_size: 8,
            wait_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            migrate: true,
            require_boundary: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let url = format!("{}/postgres", base_url());
                if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

struct PgDoor {
    client: tokio_postgres::Client,
}

fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

#[async_trait::async_trait]
impl Backdoor for PgDoor {
    async fn exec(&self, sql: &str) -> Result<(), String> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| describe(&e))
    }
    async fn disable_guards(&self) {
        self.exec("ALTER TABLE audit_events DISABLE TRIGGER USER")
            .await
            .unwrap();
    }
    async fn enable_guards(&self) {
        self.exec("ALTER TABLE audit_events ENABLE TRIGGER USER")
            .await
            .unwrap();
    }
    fn truncate_sql(&self) -> &'static str {
        "TRUNCATE audit_events"
    }
    async fn poison(&self, declaration_id: &str) {
        self.exec(&format!(
            "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN RAISE EXCEPTION 'poisoned' USING ERRCODE = 'check_violation'; END $$; \
             CREATE TRIGGER test_poison BEFORE INSERT ON audit_events FOR EACH ROW \
             WHEN (NEW.declaration_id = '{declaration_id}') EXECUTE FUNCTION test_poison();"
        ))
        .await
        .unwrap();
    }
    async fn unpoison(&self) {
        self.exec("DROP TRIGGER test_poison ON audit_events")
            .await
            .unwrap();
    }
}

async fn setup() -> (Arc<dyn Store>, Box<dyn Backdoor>, TestDb) {
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    let door = PgDoor {
        client: admin(&db.name).await,
    };
    (Arc::new(store), Box::new(door), db)
}

whole_suite!();

/// The same suite with group commit on (`pg_batch.rs`): every outcome as without it.
mod group_commit {
    use super::*;
    use crate::common;

    async fn setup() -> (Arc<dyn Store>, Box<dyn Backdoor>, TestDb) {
        let db = TestDb::create().await;
        let store = connect_postgres(&db.config())
            .await
            .unwrap()
            .with_group_commit(16);
        let door = PgDoor {
            client: admin(&db.name).await,
        };
        (Arc::new(store), Box::new(door), db)
    }

    whole_suite!();

    /// 200 concurrent records, each declaration twice, through claims and plain
    /// records: one winner per declaration, every loser gets the winner's bytes, the
    /// chains verify — and far fewer transactions than records.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batches_keep_every_records_outcome() {
        let db = TestDb::create().await;
        let store = Arc::new(
            connect_postgres(&db.config())
                .await
                .unwrap()
                .with_group_commit(64),
        );
        let results = futures_join_all((0..200u32).map(|i| {
            let store = store.clone();
            async move {
                let id = format!("decl-{}", i / 2);
                let mine = format!("result-{i}").into_bytes();
                let ev = common::event(&id, stage::COUNTERSIGNED);
                let chain = format!("w/{}", i % 3);
                let r = if i % 4 < 2 {
                    store
                        .record(&chain, &id, "decide", &mine, &ev)
                        .await
                        .unwrap()
                } else {
                    // Claims serialise the two deliveries of one declaration.
                    let claim = store.claim(&[&id], &[(&id, "decide")]).await.unwrap();
                    if let Some(stored) = claim.found().first().cloned().flatten() {
                        tamga_store::Recorded::AlreadyPresent(stored)
                    } else {
                        let row = tamga_store::ResultRow {
                            declaration_id: &id,
                            stage: "decide",
                            result: &mine,
                        };
                        claim
                            .record_all(&chain, row, &[], std::slice::from_ref(&ev))
                            .await
                            .unwrap()
                    }
                };
                (id, mine, r)
            }
        }))
        .await;
        let mut winners = std::collections::BTreeMap::new();
        for (id, mine, r) in &results {
            if *r == tamga_store::Recorded::Inserted {
                assert!(
                    winners.insert(id.clone(), mine.clone()).is_none(),
                    "two winners for {id}"
                );
            }
        }
        assert_eq!(winners.len(), 100, "one winner per declaration");
        for (id, _, r) in &results {
            if let tamga_store::Recorded::AlreadyPresent(stored) = r {
                assert_eq!(
                    stored, &winners[id],
                    "{id}: the loser sees the winner's result"
                );
            }
        }
        let report = store.verify_chain().await.unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.events, 100, "one event per winner");
        let (batches, jobs) = store.group_commit_stats().unwrap();
        // 100 plain records, and one per claimed pair (the second finds the first's).
        assert_eq!(jobs, 150);
        assert!(batches < 100, "{batches} transactions for {jobs} records");
        eprintln!("group commit: {jobs} records in {batches} transactions");
    }
}

#[tokio::test]
async fn pooled_connections_run_as_the_app_role() {
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    assert_eq!(store.current_role().await.unwrap(), "tamga_app");
    let mut cfg = db.config();
    cfg.app_role = None;
    let as_admin = connect_postgres(&cfg).await.unwrap();
    assert_eq!(as_admin.current_role().await.unwrap(), "postgres");
}

/// Even with the triggers off, the application role has no UPDATE, DELETE or TRUNCATE
/// privilege, and cannot turn the triggers off itself.
#[tokio::test]
async fn app_role_cannot_change_the_trail() {
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    store
        .append("r", &event("r-1", stage::RECEIVED))
        .await
        .unwrap();
    store
        .record(
            "r",
            "r-2",
            stage::VERIFIED,
            b"x",
            &event("r-2", stage::VERIFIED),
        )
        .await
        .unwrap();
    let owner = PgDoor {
        client: admin(&db.name).await,
    };
    owner.disable_guards().await;
    let app = PgDoor {
        client: admin(&db.name).await,
    };
    app.exec("SET ROLE tamga_app").await.unwrap();
    for sql in [
        "UPDATE audit_events SET outcome = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE stage_results SET result = 'x'",
        "DELETE FROM stage_results",
        "ALTER TABLE audit_events DISABLE TRIGGER USER",
        "DROP TABLE audit_events",
        "DELETE FROM tamga_schema_migrations",
    ] {
        let err = app.exec(sql).await.expect_err(sql);
        assert!(
            err.starts_with("42501:"),
            "{sql}: expected permission denied, got {err}"
        );
    }
    // what it may do
    app.exec("SELECT count(*) FROM audit_events").await.unwrap();
    assert!(store.verify_chain().await.unwrap().is_intact());
}

#[tokio::test]
async fn unreachable_database_is_transient_and_quick() {
    let cfg = StoreConfig {
        url: "postgres://postgres@127.0.0.1:1/tamga".into(),
        app_role: Some("tamga_app".into()),
        pool_size: 2,
        wait_timeout: Duration::from_secs(1),
        create_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(1),
        migrate: true,
        require_boundary: false,
    };
    let start = Instant::now();
    let err = connect_postgres(&cfg).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // a host that never answers (TEST-NET-1, RFC 5737): the create timeout bounds it
    let cfg = StoreConfig {
        url: "postgres://postgres@192.0.2.1:5432/tamga".into(),
        ..cfg
    };
    let start = Instant::now();
    let err = connect_postgres(&cfg).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn bad_configuration_is_not_transient() {
    let db = TestDb::create().await;
    let mut cfg = db.config();
    cfg.url = "postgres://nobody_here@127.0.0.1:5432/nope".into();
    let err = connect_postgres(&cfg).await.unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    let mut cfg = db.config();
    cfg.app_role = Some("no_such_role_tamga".into());
    let err = connect_postgres(&cfg).await.unwrap_err();
    assert!(!err.is_transient(), "{err:?}");
    let mut cfg = db.config();
    cfg.url = "postgres://[::1".into();
    assert!(matches!(
        connect_postgres(&cfg).await.unwrap_err(),
        StoreError::Other(_)
    ));
}

/// A chain lock held elsewhere: the append hits `statement_timeout` (57014), which is
/// transient, and the rolled-back attempt leaves no gap.
#[tokio::test]
async fn statement_timeout_is_transient() {
    let db = TestDb::create().await;
    let mut cfg = db.config();
    cfg.statement_timeout = Duration::from_millis(500);
    let store = connect_postgres(&cfg).await.unwrap();
    let holder = admin(&db.name).await;
    holder
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&CHAIN_LOCK_NAMESPACE, &"busy"],
        )
        .await
        .unwrap();
    let start = Instant::now();
    let err = store
        .append("busy", &event("b-1", stage::RECEIVED))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(ref m) if m.contains("57014")),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    // other chains are not blocked
    assert_eq!(
        store
            .append("free", &event("f-1", stage::RECEIVED))
            .await
            .unwrap()
            .seq,
        1
    );
    holder
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&CHAIN_LOCK_NAMESPACE, &"busy"],
        )
        .await
        .unwrap();
    let e = store
        .append("busy", &event("b-1", stage::RECEIVED))
        .await
        .unwrap();
    assert_eq!(e.seq, 1);
}

/// All connections busy: the pool's wait timeout is transient too.
#[tokio::test]
async fn pool_wait_timeout_is_transient() {
    let db = TestDb::create().await;
    let mut cfg = db.config();
    cfg.pool_size = 1;
    cfg.wait_timeout = Duration::from_millis(300);
    cfg.statement_timeout = Duration::from_secs(3);
    let store = Arc::new(connect_postgres(&cfg).await.unwrap());
    let holder = admin(&db.name).await;
    holder
        .execute(
            "SELECT pg_advisory_lock($1, hashtext($2))",
            &[&CHAIN_LOCK_NAMESPACE, &"busy"],
        )
        .await
        .unwrap();
    let blocked = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.append("busy", &event("x", stage::RECEIVED)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let err = store.stage_result("x", stage::VERIFIED).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Unavailable(ref m) if m.contains("Wait")),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    holder
        .execute("SELECT pg_advisory_unlock_all()", &[])
        .await
        .unwrap();
    assert_eq!(blocked.await.unwrap().unwrap().seq, 1);
}

/// The server kills every connection (admin shutdown, failover): calls fail transiently
/// at worst, and the pool reconnects.
#[tokio::test]
async fn killed_connections_recover() {
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    store
        .append("k", &event("k-1", stage::RECEIVED))
        .await
        .unwrap();
    let killer = admin(&db.name).await;
    let killed = killer
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(!killed.is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ok = 0;
    for i in 2..=6 {
        match store
            .append("k", &event(&format!("k-{i}"), stage::RECEIVED))
            .await
        {
            Ok(_) => ok += 1,
            Err(e) => assert!(e.is_transient(), "{e:?}"),
        }
    }
    assert!(ok >= 4, "the pool did not recover");
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.chains[0].seq, i64::from(ok) + 1);
}

#[tokio::test]
async fn migrations_run_once_even_concurrently() {
    let db = TestDb::create().await;
    let cfg = db.config();
    let stores: Vec<Result<PgStore, StoreError>> = futures_join_all((0..4).map(|_| {
        let cfg = cfg.clone();
        async move { connect_postgres(&cfg).await }
    }))
    .await;
    for s in &stores {
        assert!(s.is_ok(), "{s:?}");
    }
    // and again, on an up-to-date database
    connect_postgres(&cfg).await.unwrap();
    let client = admin(&db.name).await;
    let rows = client
        .query(
            "SELECT version, name FROM tamga_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), tamga_store::MIGRATIONS.len());
    assert_eq!(rows[0].get::<_, i64>(0), 1);
    assert_eq!(rows[0].get::<_, String>(1), "0001_audit");
    // Debian's PostgreSQL is built with lz4: stage results use it (0002).
    let compression: String = client
        .query_one(
            "SELECT attcompression::text FROM pg_attribute \
             WHERE attrelid = 'stage_results'::regclass AND attname = 'result'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(compression, "l", "stage_results.result compression");

    // an applied migration that no longer matches the embedded one stops the start
    client
        .execute(
            "UPDATE tamga_schema_migrations SET sha256 = repeat('0', 64) WHERE version = 1",
            &[],
        )
        .await
        .unwrap();
    let err = connect_postgres(&cfg).await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
}

/// `join_all` without pulling in futures-util.
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------
// The privilege boundary (issue 13, item 2): workers log in as tamga_worker.

/// `url` with its user replaced by `user` (the tests' server trusts local connections).
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let rest = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{rest}")
}

impl TestDb {
    /// How the workers connect: as tamga_worker, without migrating, refusing a login that
    /// could rewrite the trail.
    fn worker_config(&self) -> StoreConfig {
        StoreConfig {
            url: as_user(&self.url(), "tamga_worker"),
            migrate: false,
            require_boundary: true,
            ..self.config()
        }
    }
}

async fn connect_as(db: &TestDb, user: &str) -> PgDoor {
    let url = as_user(&db.url(), user);
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    PgDoor { client }
}

async fn denied(door: &PgDoor, sql: &str) {
    let err = door.exec(sql).await.expect_err(sql);
    assert!(
        err.starts_with("42501:"),
        "{sql}: expected permission denied, got {err}"
    );
}

/// The worker's own login cannot change a row of the trail, turn its triggers off, or
/// gain a role that could — not with the triggers off, not after `RESET ROLE`, not with
/// `SET ROLE` — and the reader can only read.
#[tokio::test]
async fn the_worker_login_cannot_change_the_trail() {
    let db = TestDb::create().await;
    connect_postgres(&db.config()).await.unwrap(); // the owner migrates
    let worker = connect_postgres(&db.worker_config()).await.unwrap();
    // What the pipeline does, it may do.
    worker
        .append("w", &event("w-1", stage::RECEIVED))
        .await
        .unwrap();
    worker
        .record(
            "w",
            "w-2",
            stage::VERIFIED,
            b"x",
            &event("w-2", stage::VERIFIED),
        )
        .await
        .unwrap();
    let cps = worker.checkpoint_store().unwrap();
    let heads = cps.chain_heads().await.unwrap();
    let row = tamga_store::CheckpointRow {
        tree_size: 2,
        root: "ab".repeat(32),
        at_ms: 1,
        heads,
        frontier: vec!["ab".repeat(32)],
        signed: b"<x/>".to_vec(),
    };
    assert!(cps.insert_checkpoint(None, &row).await.unwrap());

    // The attacker's easy way is closed: the owner turns the triggers off, so only
    // privileges stand between the worker and the rows.
    let owner = PgDoor {
        client: admin(&db.name).await,
    };
    owner.disable_guards().await;
    owner
        .exec("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        .await
        .unwrap();
    let w = connect_as(&db, "tamga_worker").await;
    let rewrites = [
        "UPDATE audit_events SET outcome = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE audit_checkpoints SET root = repeat('0', 64)",
        "DELETE FROM audit_checkpoints",
        "TRUNCATE audit_checkpoints",
        "UPDATE stage_results SET result = 'x'",
        "DELETE FROM stage_results",
    ];
    for sql in rewrites {
        denied(&w, sql).await;
    }
    for sql in [
        "ALTER TABLE audit_events ENABLE TRIGGER USER",
        "ALTER TABLE audit_events DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_events_append_only ON audit_events",
        "ALTER TABLE audit_events OWNER TO tamga_worker",
        "DROP TABLE audit_events",
        "CREATE TABLE shadow (i int)",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "INSERT INTO tamga_schema_migrations (version, name, sha256) VALUES (99, 'x', 'x')",
        "SET session_replication_role = replica",
        "SET SESSION AUTHORIZATION postgres",
        "SET ROLE postgres",
        "ALTER ROLE tamga_worker SUPERUSER",
        "CREATE ROLE tamga_shadow",
        "COPY audit_events FROM PROGRAM 'true'",
    ] {
        denied(&w, sql).await;
    }
    // A GRANT it has no right to make is only a warning: it grants nothing.
    w.exec("GRANT UPDATE, DELETE, TRUNCATE ON audit_events TO tamga_worker")
        .await
        .unwrap();
    // RESET ROLE returns it to itself; SET ROLE tamga_app (the old seatbelt) has the
    // same rights.
    for reset in ["RESET ROLE", "SET ROLE tamga_app", "RESET ALL"] {
        w.exec(reset).await.unwrap();
        for sql in rewrites {
            denied(&w, sql).await;
        }
    }
    let who = w
        .client
        .query_one("SELECT session_user::text, current_user::text", &[])
        .await
        .unwrap();
    assert_eq!(who.get::<_, String>(0), "tamga_worker");

    // The reader reads the trail and nothing else.
    let r = connect_as(&db, "tamga_reader").await;
    r.exec("SELECT count(*) FROM audit_events, audit_checkpoints")
        .await
        .unwrap();
    for sql in [
        "SELECT count(*) FROM stage_results",
        "SELECT count(*) FROM gateway_tokens",
        "SELECT count(*) FROM gateway_callbacks",
        "INSERT INTO audit_events SELECT * FROM audit_events",
        "UPDATE audit_events SET outcome = 'x'",
        "DELETE FROM audit_checkpoints",
    ] {
        denied(&r, sql).await;
    }

    owner.enable_guards().await;
    owner
        .exec("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")
        .await
        .unwrap();
    let report = worker.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 2);
    assert_eq!(cps.checkpoints().await.unwrap(), vec![row]);
}

/// A worker configured to require the boundary refuses a login that could rewrite the
/// trail: a superuser, or a login granted UPDATE behind a role it may SET.
#[tokio::test]
async fn workers_refuse_a_login_that_could_rewrite_the_trail() {
    let db = TestDb::create().await;
    connect_postgres(&db.config()).await.unwrap();
    let as_superuser = StoreConfig {
        migrate: false,
        require_boundary: true,
        ..db.config()
    };
    let err = connect_postgres(&as_superuser).await.unwrap_err();
    let text = err.to_string();
    assert!(!err.is_transient(), "{err:?}");
    assert!(
        text.contains("could rewrite the audit trail") && text.contains("superuser"),
        "{text}"
    );

    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let (login, power) = (
        format!("tamga_test_login_{}", hex::encode(bytes)),
        format!("tamga_test_power_{}", hex::encode(bytes)),
    );
    let owner = PgDoor {
        client: admin(&db.name).await,
    };
    owner
        .exec(&format!(
            "CREATE ROLE {power} NOLOGIN; GRANT UPDATE ON audit_events TO {power}; \
             CREATE ROLE {login} LOGIN NOINHERIT; GRANT tamga_app, {power} TO {login}"
        ))
        .await
        .unwrap();
    let cfg = StoreConfig {
        url: as_user(&db.url(), &login),
        ..db.worker_config()
    };
    let result = connect_postgres(&cfg).await;
    // Clean up the cluster-wide roles before asserting.
    let _ = owner
        .exec(&format!(
            "DROP OWNED BY {login}, {power}; DROP ROLE {login}; DROP ROLE {power}"
        ))
        .await;
    let text = result.unwrap_err().to_string();
    assert!(
        text.contains(&format!("through SET ROLE {power}"))
            && text.contains("may UPDATE, DELETE or TRUNCATE audit_events"),
        "{text}"
    );
    // And the real worker login passes.
    connect_postgres(&db.worker_config()).await.unwrap();
}

/// Workers do not migrate: an unmigrated database stops them with a pointer to
/// `tamga migrate`, which the owner runs once (then has nothing left to do).
#[tokio::test]
async fn the_owner_migrates_and_workers_need_it_done() {
    let first = TestDb::create().await;
    connect_postgres(&first.config()).await.unwrap(); // the roles exist in the cluster
    let db = TestDb::create().await;
    let err = connect_postgres(&db.worker_config()).await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err:?}");
    assert!(err.to_string().contains("tamga migrate"), "{err}");

    let applied = tamga_store::migrate_postgres(&db.config()).await.unwrap();
    let all: Vec<&str> = tamga_store::MIGRATIONS.iter().map(|m| m.name).collect();
    assert_eq!(applied, all);
    assert!(tamga_store::migrate_postgres(&db.config())
        .await
        .unwrap()
        .is_empty());
    let worker = connect_postgres(&db.worker_config()).await.unwrap();
    assert_eq!(worker.current_role().await.unwrap(), "tamga_app");
    let mut cfg = db.worker_config();
    cfg.app_role = None;
    let worker = connect_postgres(&cfg).await.unwrap();
    assert_eq!(worker.current_role().await.unwrap(), "tamga_worker");
}

/// Roles are cluster-wide: several databases migrating at once all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn databases_migrate_in_parallel() {
    let mut dbs = Vec::new();
    for _ in 0..4 {
        dbs.push(TestDb::create().await);
    }
    let results = futures_join_all(dbs.iter().map(|db| {
        let cfg = db.config();
        async move { tamga_store::migrate_postgres(&cfg).await }
    }))
    .await;
    for r in results {
        assert_eq!(r.unwrap().len(), tamga_store::MIGRATIONS.len());
    }
    for db in &dbs {
        connect_postgres(&db.worker_config()).await.unwrap();
    }
}

/// The gateway notifier's batched reads and writes: every declaration's events in one
/// query, grouped in the order one declaration's query gives; every status in one insert,
/// in order, each (id, status) once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_notifier_statements() {
    use tamga_store::GatewayStore;
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    for (id, stages) in [
        (
            "d1",
            &[stage::RECEIVED, stage::VERIFIED, stage::COUNTERSIGNED][..],
        ),
        ("d2", &[stage::RECEIVED][..]),
    ] {
        for s in stages {
            store
                .append(&format!("w-{id}"), &event(id, s))
                .await
                .unwrap();
        }
    }
    let all = store
        .declarations_events(&["d1", "d2", "none", "d1"])
        .await
        .unwrap();
    for id in ["d1", "d2"] {
        let batched: Vec<_> = all.iter().filter(|e| e.declaration_id == id).collect();
        let one = store.declaration_events(id).await.unwrap();
        assert_eq!(batched, one.iter().collect::<Vec<_>>(), "{id}");
    }
    assert_eq!(all.len(), 4);
    assert!(store.declarations_events(&[]).await.unwrap().is_empty());

    let rows = [
        ("b", "d1", "received", 1),
        ("b", "d1", "verified", 2),
        ("b", "d2", "received", 3),
        ("b", "d1", "received", 1),
    ];
    assert_eq!(store.notify_all(&rows).await.unwrap(), 3);
    assert_eq!(store.notify_all(&rows[..2]).await.unwrap(), 0);
    assert_eq!(store.notify_all(&[]).await.unwrap(), 0);
    let feed: Vec<(String, String)> = store
        .notifications("b", 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.id, n.status))
        .collect();
    assert_eq!(
        feed,
        [
            ("d1".to_owned(), "received".to_owned()),
            ("d1".into(), "verified".into()),
            ("d2".into(), "received".into())
        ]
    );
}

/// The plan PostgreSQL makes for `prepare` (`PREPARE q(…) AS …`) under `mode`
/// (`plan_cache_mode`), executed as `execute` (`EXECUTE q(…)`).
async fn plan_of(
    admin: &tokio_postgres::Client,
    mode: &str,
    prepare: &str,
    execute: &str,
) -> Vec<String> {
    admin
        .batch_execute(&format!("SET plan_cache_mode = {mode}; {prepare}"))
        .await
        .unwrap();
    admin
        .query(&format!("EXPLAIN {execute}"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn unsettled_sweep() {
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    common::unsettled_sweep(&store).await;
}

/// The notifier's sweep is a range of the time index and key probes per row, whatever
/// the tables' statistics (never analysed here, with 20,000 rows each): it once planned
/// hash joins over every submission, marker and notification, every half second.
#[tokio::test]
async fn unsettled_sweep_probes_the_keys() {
    let db = TestDb::create().await;
    let _store = connect_postgres(&db.config()).await.unwrap();
    let admin = admin(&db.name).await;
    admin
        .batch_execute(
            "INSERT INTO gateway_submissions (broker, idempotency_key, id, body_sha256, origin, \
               destination, created_at_ms) \
             SELECT 'b', 'k-' || i, 'id-' || i, 'x', 'KZ', 'AZ', i FROM generate_series(1, 20000) AS i; \
             INSERT INTO stage_results (declaration_id, stage, result) \
             SELECT 'submitted:id-' || i, 'audit_once', '\\x00' FROM generate_series(1, 20000) AS i; \
             INSERT INTO gateway_notifications (broker, id, status, at_ms) \
             SELECT 'b', 'id-' || i, 'forwarded', i FROM generate_series(1, 19990) AS i",
        )
        .await
        .unwrap();
    let plan = plan_of(
        &admin,
        "force_generic_plan",
        &format!(
            "PREPARE q(bigint, text, bigint) AS {}",
            tamga_store::UNSETTLED_SWEEP_SQL
        ),
        "EXECUTE q(19000, '', 500)",
    )
    .await;
    assert!(
        !plan
            .iter()
            .any(|l| l.contains("Seq Scan") || l.contains("Hash")),
        "{plan:#?}"
    );
    let found: Vec<String> = admin
        .query("EXECUTE q(19000, '', 500)", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(2))
        .collect();
    assert_eq!(
        found,
        (19991..=20000)
            .map(|i| format!("id-{i}"))
            .collect::<Vec<_>>()
    );
}

/// The notifier's read of many declarations' events is an index probe per id on a young
/// table too (never analysed, 20,000 events, a custom plan for 900 ids): written as
/// `declaration_id = ANY($1)` it was a sequential scan of every event.
#[tokio::test]
async fn declarations_events_probe_the_index() {
    let db = TestDb::create().await;
    let _store = connect_postgres(&db.config()).await.unwrap();
    let admin = admin(&db.name).await;
    admin
        .batch_execute(
            "INSERT INTO audit_events (chain, seq, prev_hash, hash, at_ms, stage, worker, \
               declaration_id, origin, destination, outcome, digest) \
             SELECT 'c', i, repeat('0', 64), repeat('a', 64), i, 'received', 'w', 'd-' || (i / 5), \
               'KZ', 'AZ', 'ok', repeat('b', 64) FROM generate_series(1, 20000) AS i",
        )
        .await
        .unwrap();
    let ids: Vec<String> = (1000..1900).map(|i| format!("d-{i}")).collect();
    let plan = plan_of(
        &admin,
        "force_custom_plan",
        &format!(
            "PREPARE q(text[]) AS {}",
            tamga_store::declarations_events_pg()
        ),
        &format!("EXECUTE q('{{{}}}')", ids.join(",")),
    )
    .await;
    assert!(
        plan.iter().any(|l| l.contains("Nested Loop"))
            && !plan.iter().any(|l| l.contains("Seq Scan")),
        "{plan:#?}"
    );
}

/// The claims' look-up of stage results is one primary-key probe per key, in the order
/// asked, whatever the table's statistics: planned over arrays it had become a hash join
/// over every row on a table not yet analysed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_result_lookups_probe_the_key() {
    let db = TestDb::create().await;
    let store = connect_postgres(&db.config()).await.unwrap();
    let admin = admin(&db.name).await;
    // A table that has grown since it was last analysed (never, here).
    admin
        .batch_execute(
            "INSERT INTO stage_results (declaration_id, stage, result) \
             SELECT 'bulk-' || i, 'decide', '\\x00' FROM generate_series(1, 20000) AS i",
        )
        .await
        .unwrap();
    for i in [7, 299] {
        store
            .record(
                "w",
                &format!("id-{i}"),
                "decide",
                format!("r-{i}").as_bytes(),
                &event(&format!("id-{i}"), stage::COUNTERSIGNED),
            )
            .await
            .unwrap();
    }
    let got = store
        .stage_results(&[("id-7", "decide"), ("nope", "decide"), ("id-299", "decide")])
        .await
        .unwrap();
    assert_eq!(got, [Some(b"r-7".to_vec()), None, Some(b"r-299".to_vec())]);
    // The plan PostgreSQL settles on after its first custom plans: generic, a key probe.
    let plan = plan_of(
        &admin,
        "force_generic_plan",
        "PREPARE q(text, text) AS \
         SELECT result FROM stage_results WHERE declaration_id = $1 AND stage = $2",
        "EXECUTE q('id-7', 'decide')",
    )
    .await;
    assert!(plan.iter().any(|l| l.contains("Index Scan")), "{plan:#?}");
}

/// Claims through the group committer: concurrent claims of one key give one `New` and
/// the winner's row to every other (in one batch or across batches); a taken id fails
/// that claim alone; a claim rides in a batch with records.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claims_through_the_group_committer() {
    use tamga_store::{GatewayStore, Submission, SubmissionClaim};
    let db = TestDb::create().await;
    let store = Arc::new(
        connect_postgres(&db.config())
            .await
            .unwrap()
            .with_group_commit(16),
    );
    let claim = |key: &str, id: &str| Submission {
        broker: "b".into(),
        idempotency_key: key.into(),
        id: id.into(),
        body_sha256: "0f".repeat(32),
        origin: "KZ".into(),
        destination: "AZ".into(),
        lrn: (key == "k-0").then(|| "LRN-1".to_owned()),
        created_at_ms: 1_000,
    };
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = store.clone();
        let c = claim(&format!("k-{}", i % 3), &format!("id-{i}"));
        tasks.push(tokio::spawn(async move {
            (c.clone(), s.claim_submission(&c).await.unwrap())
        }));
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("r-{i}");
            store
                .record("w", &id, "decide", b"x", &event(&id, stage::RECEIVED))
                .await
                .unwrap();
            (claim("none", "none"), SubmissionClaim::New)
        }));
    }
    let mut winners: std::collections::BTreeMap<String, String> = Default::default();
    let mut outcomes = Vec::new();
    for t in tasks {
        let (c, got) = t.await.unwrap();
        if c.id == "none" {
            continue;
        }
        if got == SubmissionClaim::New {
            assert!(
                winners
                    .insert(c.idempotency_key.clone(), c.id.clone())
                    .is_none(),
                "two winners of {}",
                c.idempotency_key
            );
        }
        outcomes.push((c, got));
    }
    assert_eq!(winners.len(), 3);
    for (c, got) in outcomes {
        let winner = &winners[&c.idempotency_key];
        match got {
            SubmissionClaim::New => assert_eq!(&c.id, winner),
            SubmissionClaim::Existing(s) => {
                assert_eq!(&s.id, winner);
                assert_eq!(
                    s.lrn.as_deref(),
                    (c.idempotency_key == "k-0").then_some("LRN-1")
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // A new key whose id is taken: that claim fails, alone.
    let taken = store
        .claim_submission(&claim("k-new", winners.values().next().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(taken, StoreError::Integrity(_)), "{taken:?}");
    let (batches, jobs) = store.group_commit_stats().unwrap();
    assert!(jobs >= 48, "{jobs}");
    assert!(batches < jobs, "{batches} batches for {jobs} jobs");
    assert!(store.verify_chain().await.unwrap().is_intact());
}
