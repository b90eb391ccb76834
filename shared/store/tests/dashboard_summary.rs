//! The dashboard's hourly summary (migration 0009, `sqlite_dashboard.sql`) gives the same
//! figures as the query over the raw events it replaced (`dashboard_from_events`, kept as
//! the oracle): the same seeded declarations — written one statement per event, through
//! the group committer's batches, concurrently — are asked the same questions (day and
//! hour buckets, ranges with partial hours at both ends, shorter than an hour, across the
//! Unix epoch, per corridor) through both. Then the summary is dropped and the migration
//! run again on the existing trail: its backfill must give the same tables.
//!
//! PostgreSQL at `TAMGA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`), one
//! fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use tamga_store::{
    connect_postgres, open_sqlite, AuditEvent, DashboardQuery, DashboardRows, PagesStore, PgStore,
    ResultRow, SqliteStore, Store, StoreConfig,
};
use tokio_postgres::NoTls;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: i64 = 1_764_892_800_000; // a UTC midnight

/// splitmix64: the same declarations on every run and backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next() % n).unwrap()
    }
}

/// One declaration's writes: the decision (received, verified or rejected, countersigned
/// or receipt_issued) in one `record_all`, then maybe its forwarding (`append_once`).
struct Declaration {
    id: String,
    decision: Vec<AuditEvent>,
    forwarded: Option<AuditEvent>,
    dead_lettered: Option<AuditEvent>,
}

fn ev(stage: &str, id: &str, corridor: (&str, &str), at_ms: i64) -> AuditEvent {
    AuditEvent {
        at_ms,
        stage: stage.into(),
        worker: "t".into(),
        declaration_id: id.into(),
        origin: corridor.0.into(),
        destination: corridor.1.into(),
        outcome: "x".into(),
        sub_indication: None,
        reason: None,
        digest: "ab".repeat(32),
        detail: None,
    }
}

fn declarations(n: usize) -> Vec<Declaration> {
    const CORRIDORS: [(&str, &str); 4] = [("KZ", "AZ"), ("TR", "AZ"), ("KZ", "TR"), ("UZ", "KZ")];
    const REASONS: [(&str, Option<&str>); 3] = [
        ("digest_mismatch", Some("HASH_FAILURE")),
        ("certificate_revoked", Some("REVOKED")),
        ("document_too_large", None),
    ];
    let mut rng = Rng(9);
    (0..n)
        .map(|i| {
            let id = format!("d{i}");
            let corridor = CORRIDORS[i % CORRIDORS.len()];
            // Three days from T0, and a few around the Unix epoch.
            let r = if i % 50 == 7 {
                rng.below(6 * HOUR as u64) - 3 * HOUR
            } else {
                T0 + rng.below(3 * DAY as u64)
            };
            let rejected = rng.below(5) == 0;
            let mut verdict = ev(
                if rejected { "rejected" } else { "verified" },
                &id,
                corridor,
                r + 1 + rng.below(500),
            );
            if rejected {
                let (reason, sub) = REASONS[usize::try_from(rng.below(3)).unwrap()];
                verdict.reason = Some(reason.into());
                verdict.sub_indication = sub.map(Into::into);
            }
            let decided_at = verdict.at_ms + rng.below(1_000);
            let mut decided = ev(
                if rejected {
                    "receipt_issued"
                } else {
                    "countersigned"
                },
                &id,
                corridor,
                decided_at,
            );
            decided.reason = verdict.reason.clone();
            decided.sub_indication = verdict.sub_indication.clone();
            // Release times up to 2 h (across hour ends), some of them equal (a histogram
            // bucket of more than one declaration); 1 in 10 is never forwarded.
            let release = if rng.below(3) == 0 {
                5_000 * (1 + rng.below(4))
            } else {
                1 + rng.below(2 * HOUR as u64)
            };
            let forwarded = (rng.below(10) != 0)
                .then(|| ev("forwarded", &id, corridor, (r + release).max(decided_at)));
            let dead_lettered = (i % 37 == 5).then(|| {
                let mut e = ev("dead_lettered", &format!("poison-{i}"), ("", ""), r + 3);
                e.outcome = "dead_lettered".into();
                e
            });
            Declaration {
                decision: vec![ev("received", &id, corridor, r), verdict, decided],
                id,
                forwarded,
                dead_lettered,
            }
        })
        .collect()
}

/// Writes every declaration: `writers` tasks at once, round-robin over `stores`.
async fn seed(stores: &[Arc<dyn Store>], all: Vec<Declaration>, writers: usize) {
    let all = Arc::new(all);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = stores[w % stores.len()].clone();
        let all = all.clone();
        tasks.push(tokio::spawn(async move {
            for d in all.iter().skip(w).step_by(writers) {
                let chain = format!("w/{w}");
                let claim = ResultRow {
                    declaration_id: &d.id,
                    stage: "decide",
                    result: b"x",
                };
                store
                    .record_all(&chain, claim, &[], &d.decision)
                    .await
                    .unwrap();
                if let Some(f) = &d.forwarded {
                    assert!(store
                        .append_once(&chain, &format!("forwarded:{}", d.id), f)
                        .await
                        .unwrap());
                }
                if let Some(e) = &d.dead_lettered {
                    store.append(&chain, e).await.unwrap();
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn questions() -> Vec<DashboardQuery> {
    let q = |from_ms: i64, to_ms: i64, bucket_ms: i64| DashboardQuery {
        from_ms,
        to_ms,
        bucket_ms,
        origin: None,
        destination: None,
    };
    let mut all = vec![
        q(T0, T0 + 3 * DAY, DAY),
        q(T0, T0 + 3 * DAY, HOUR),
        q(T0 - 7 * DAY, T0 + 30 * DAY, DAY),
        // Partial hours at both ends.
        q(T0 + 17 * 60_000 + 3, T0 + 2 * DAY + 5 * HOUR + 3, DAY),
        q(T0 + 17 * 60_000 + 3, T0 + 2 * DAY + 5 * HOUR + 3, HOUR),
        q(T0 + HOUR + 1, T0 + 2 * HOUR + 1, HOUR),
        // Less than an hour: no whole hour at all.
        q(T0 + DAY + 10 * 60_000, T0 + DAY + 50 * 60_000, HOUR),
        q(T0 + DAY + 10 * 60_000, T0 + DAY + 10 * 60_000, HOUR),
        // Across the Unix epoch (nothing before it is summarised).
        q(-3 * HOUR - 1, 3 * HOUR + 1, HOUR),
        q(-3 * HOUR, 3 * HOUR, DAY),
    ];
    for (origin, destination) in [
        (Some("KZ"), Some("AZ")),
        (Some("KZ"), None),
        (None, Some("AZ")),
        (Some("XX"), None),
    ] {
        for base in [
            q(T0, T0 + 3 * DAY, DAY),
            q(T0 + 5 * 60_000, T0 + DAY + 61 * 60_000, HOUR),
        ] {
            all.push(DashboardQuery {
                origin: origin.map(Into::into),
                destination: destination.map(Into::into),
                ..base
            });
        }
    }
    all
}

/// Row order within a bucket and stage is not part of the raw query's answer.
fn normalised(mut rows: DashboardRows) -> DashboardRows {
    rows.counts.sort_by(|a, b| {
        (
            a.bucket_ms,
            &a.origin,
            &a.destination,
            &a.stage,
            &a.reason,
            &a.sub_indication,
        )
            .cmp(&(
                b.bucket_ms,
                &b.origin,
                &b.destination,
                &b.stage,
                &b.reason,
                &b.sub_indication,
            ))
    });
    rows
}

fn assert_same(q: &DashboardQuery, summary: DashboardRows, oracle: DashboardRows) {
    assert!(
        !oracle.counts.is_empty() || q.origin.as_deref() == Some("XX") || q.from_ms == q.to_ms,
        "the question has data: {q:?}"
    );
    let (summary, oracle) = (normalised(summary), normalised(oracle));
    assert_eq!(summary.counts, oracle.counts, "counts for {q:?}");
    assert_eq!(summary.release.len(), oracle.release.len(), "{q:?}");
    for (s, o) in summary.release.iter().zip(&oracle.release) {
        // Bit for bit: the same values through the same percentile.
        assert_eq!(
            (s.p50_ms.to_bits(), s.p95_ms.to_bits()),
            (o.p50_ms.to_bits(), o.p95_ms.to_bits()),
            "{s:?} vs {o:?} for {q:?}"
        );
        assert_eq!(s, o, "{q:?}");
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

fn base_url() -> String {
    std::env::var("TAMGA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_owned()
}

async fn admin(db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&format!("{}/{db}", base_url()), NoTls)
        .await
        .expect("PostgreSQL reachable (CI starts it)");
    tokio::spawn(conn);
    client
}

/// A fresh database, dropped when this is dropped.
struct TestDb(String);

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
        Self(name)
    }

    fn config(&self) -> StoreConfig {
        StoreConfig {
            url: format!("{}/{}", base_url(), self.0),
            app_role: Some("tamga_app".into()),
            pool_size: 4,
            wait_timeout: Duration::from_secs(10),
            create_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(20),
            migrate: true,
            require_boundary: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = admin("postgres")
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// Both summary tables, in key order, as text (to compare incremental and backfilled).
async fn pg_tables(c: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT format('%s %s %s %s %s %s %s', hour_ms, origin, destination, stage, reason, \
         sub_indication, events) FROM dashboard_hourly \
         ORDER BY hour_ms, origin, destination, stage, reason, sub_indication",
        "SELECT format('%s %s %s %s %s', hour_ms, origin, destination, release_ms, \
         declarations) FROM dashboard_release_hourly \
         ORDER BY hour_ms, origin, destination, release_ms",
    ] {
        for row in c.query(sql, &[]).await.unwrap() {
            out.push(row.get(0));
        }
    }
    out
}

async fn pg_compare(store: &PgStore) {
    for q in questions() {
        let summary = store.dashboard(&q).await.unwrap();
        let oracle = store.dashboard_from_events(&q).await.unwrap();
        assert_same(&q, summary, oracle);
    }
}

#[tokio::test]
async fn summary_gives_the_raw_querys_figures_on_postgres() {
    let db = TestDb::create().await;
    let plain = connect_postgres(&db.config()).await.unwrap();
    let batched = connect_postgres(&db.config())
        .await
        .unwrap()
        .with_group_commit(16);
    let stores: Vec<Arc<dyn Store>> = vec![Arc::new(plain.clone()), Arc::new(batched.clone())];
    seed(&stores, declarations(600), 8).await;
    let (batches, jobs) = batched.group_commit_stats().unwrap();
    assert!(jobs > batches, "some batches carried several declarations");
    pg_compare(&plain).await;

    // The migration's backfill on the existing trail gives the same tables.
    let owner = admin(&db.0).await;
    let incremental = pg_tables(&owner).await;
    assert!(incremental.len() > 600, "{}", incremental.len());
    owner
        .batch_execute("SELECT tamga_dashboard_rebuild()")
        .await
        .unwrap();
    assert_eq!(pg_tables(&owner).await, incremental);
    owner
        .batch_execute(
            "DROP TRIGGER audit_events_dashboard_summary ON audit_events;
             DROP FUNCTION tamga_dashboard_summarise(), tamga_dashboard_rebuild();
             DROP TABLE dashboard_hourly, dashboard_release_hourly;
             DELETE FROM tamga_schema_migrations WHERE version = 9;",
        )
        .await
        .unwrap();
    drop((plain, batched, stores));
    let again = connect_postgres(&db.config()).await.unwrap();
    assert_eq!(pg_tables(&owner).await, incremental);
    pg_compare(&again).await;
    // And the application role may read the summary, not write it.
    owner.batch_execute("SET ROLE tamga_app").await.unwrap();
    for sql in [
        "UPDATE dashboard_hourly SET events = 1",
        "DELETE FROM dashboard_release_hourly",
        "INSERT INTO dashboard_hourly VALUES (0, 'KZ', 'AZ', 'received', NULL, NULL, 1)",
        "SELECT tamga_dashboard_rebuild()",
    ] {
        let e = owner.batch_execute(sql).await.expect_err(sql);
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// SQLite

fn sqlite_tables(path: &std::path::Path) -> Vec<String> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT printf('%d %s %s %s %s %s %d', hour_ms, origin, destination, stage, reason, \
         sub_indication, events) FROM dashboard_hourly \
         ORDER BY hour_ms, origin, destination, stage, reason, sub_indication",
        "SELECT printf('%d %s %s %d %d', hour_ms, origin, destination, release_ms, \
         declarations) FROM dashboard_release_hourly \
         ORDER BY hour_ms, origin, destination, release_ms",
    ] {
        let mut s = c.prepare(sql).unwrap();
        let rows = s.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

async fn sqlite_compare(store: &SqliteStore) {
    for q in questions() {
        let summary = store.dashboard(&q).await.unwrap();
        let oracle = store.dashboard_from_events(&q).await.unwrap();
        assert_same(&q, summary, oracle);
    }
}

#[tokio::test]
async fn summary_gives_the_raw_querys_figures_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sqlite");
    let store = open_sqlite(&path).unwrap();
    let stores: Vec<Arc<dyn Store>> = vec![Arc::new(store.clone())];
    seed(&stores, declarations(600), 4).await;
    sqlite_compare(&store).await;
    let incremental = sqlite_tables(&path);
    assert!(incremental.len() > 600, "{}", incremental.len());
    drop((store, stores));

    // A trail written before the summary existed: opening it backfills.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER audit_events_dashboard_count;
             DROP TRIGGER audit_events_dashboard_release;
             DROP TABLE dashboard_hourly;
             DROP TABLE dashboard_release_hourly;
             DELETE FROM tamga_schema_migrations WHERE version = 9;",
        )
        .unwrap();
    let store = open_sqlite(&path).unwrap();
    assert_eq!(sqlite_tables(&path), incremental);
    sqlite_compare(&store).await;
    // Opening again neither backfills nor changes anything.
    drop(store);
    let store = open_sqlite(&path).unwrap();
    assert_eq!(sqlite_tables(&path), incremental);
    sqlite_compare(&store).await;
}
