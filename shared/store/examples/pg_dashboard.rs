//! The ministry dashboard's query (`PagesStore::dashboard`) on 1 M audit events in
//! PostgreSQL: 250 000 declarations × 4 events (received, verified or rejected,
//! countersigned or receipt_issued, forwarded) over 30 days in 8 corridors. Reports the
//! median of 5 runs per dashboard page — from the hourly summary (migration 0009, what the
//! page reads) and through the query over the raw events it replaced
//! (`dashboard_from_events`), whose figures must be the same — and, as the reference
//! measured in the same run, a plain `count(*)` over the same table (the ratio says how the
//! dashboard compares with reading the table once).
//!
//! ```sh
//! cargo run --release -p tamga-store --example pg_dashboard -- [DECLARATIONS]
//! ```
//! `TAMGA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`) must allow creating a
//! database; a scratch `tamga_bench_<random>` is created and dropped. Goal (issue 9): a
//! dashboard page in at most 300 ms on 1 M events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use tamga_store::{connect_postgres, DashboardQuery, PagesStore, StoreConfig};
use tokio_postgres::NoTls;

const DAY_MS: i64 = 86_400_000;
const START_MS: i64 = 1_762_000_000_000 - 1_762_000_000_000 % DAY_MS;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn time_ms<F, Fut>(mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f().await;
        runs.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median(runs)
}

#[tokio::main]
async fn main() {
    let declarations: i64 = std::env::args()
        .nth(1)
        .map_or(250_000, |a| a.parse().unwrap());
    let base = std::env::var("TAMGA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let base = base.trim_end_matches('/');
    let (admin, conn) = tokio_postgres::connect(&format!("{base}/postgres"), NoTls)
        .await
        .expect("PostgreSQL reachable");
    tokio::spawn(conn);
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let db = format!("tamga_bench_{}", hex::encode(bytes));
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let cfg = StoreConfig {
        url: format!("{base}/{db}"),
        app_role: None,
        pool_size: 4,
        wait_timeout: Duration::from_secs(10),
        create_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(120),
        migrate: true,
        require_boundary: false,
    };
    println!("scratch database {db}");
    let store = connect_postgres(&cfg).await.unwrap();
    let (c, conn) = tokio_postgres::connect(&cfg.url, NoTls).await.unwrap();
    tokio::spawn(conn);
    let t = Instant::now();
    // Seeded with SQL (the hash chain's content is not what is measured): declaration i is
    // received at a pseudo-random time in 30 days, in corridor i % 8; 1 in 5 is rejected
    // for one of 4 reasons; release takes 1–120 s.
    c.batch_execute(&format!(
        "DROP TRIGGER audit_events_append_only ON audit_events;
         CREATE TEMP TABLE d AS SELECT i,
           {START_MS} + (hashint8(i) & 281474976710655) % (30::bigint * {DAY_MS}) AS at,
           (ARRAY['KZ','TR','KG','UZ','KZ','TR','AZ','KZ'])[1 + i % 8] AS o,
           (ARRAY['AZ','AZ','AZ','AZ','TR','KZ','KZ','KG'])[1 + i % 8] AS ds,
           (i % 5 = 0) AS rej,
           (ARRAY['digest_mismatch','certificate_revoked','untrusted_signer','signature_wrapping'])[1 + (i / 5) % 4] AS reason,
           (ARRAY['HASH_FAILURE','REVOKED','NO_CERTIFICATE_CHAIN_FOUND','FORMAT_FAILURE'])[1 + (i / 5) % 4] AS sub,
           1000 + (hashint8(i + 7) & 2147483647) % 119000 AS rel
           FROM generate_series(1::bigint, {declarations}) AS i;
         INSERT INTO audit_events (chain, seq, prev_hash, hash, at_ms, stage, worker, declaration_id,
             origin, destination, outcome, sub_indication, reason, digest, detail)
         SELECT 'bench/' || (i % 4), 4 * i + k, md5(i::text) || md5(k::text), md5(k::text) || md5(i::text),
             at + CASE k WHEN 0 THEN 0 WHEN 1 THEN rel / 3 WHEN 2 THEN rel / 2 ELSE rel END,
             CASE k WHEN 0 THEN 'received' WHEN 1 THEN CASE WHEN rej THEN 'rejected' ELSE 'verified' END
                    WHEN 2 THEN CASE WHEN rej THEN 'receipt_issued' ELSE 'countersigned' END ELSE 'forwarded' END,
             'bench', 'd' || i, o, ds, 'x',
             CASE WHEN rej AND k IN (1, 2) THEN sub END, CASE WHEN rej AND k IN (1, 2) THEN reason END,
             md5(i::text) || md5(i::text), NULL
         FROM d, generate_series(0, 3) AS k;
"
    ))
    .await
    // One statement each: VACUUM cannot run in a multi-statement string.
    .and(c.batch_execute("VACUUM ANALYZE audit_events").await)
    .and(c.batch_execute("VACUUM ANALYZE dashboard_hourly").await)
    .and(c.batch_execute("VACUUM ANALYZE dashboard_release_hourly").await)
    .unwrap_or_else(|e| {
        let _ = std::process::Command::new("psql")
            .args([&format!("{base}/postgres"), "-c", &format!("DROP DATABASE {db} WITH (FORCE)")])
            .status();
        panic!("seeding: {e}")
    });
    let events: i64 = c
        .query_one("SELECT count(*) FROM audit_events", &[])
        .await
        .unwrap()
        .get(0);
    let summary: (i64, i64) = {
        let row = c
            .query_one(
                "SELECT (SELECT count(*) FROM dashboard_hourly), \
                 (SELECT count(*) FROM dashboard_release_hourly)",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    println!(
        "seeded {events} events ({declarations} declarations) in {:.1} s (summary kept by \
         the trigger: {} count rows, {} release-time rows)",
        t.elapsed().as_secs_f64(),
        summary.0,
        summary.1
    );
    let reference = time_ms(|| async {
        c.query_one("SELECT count(*) FROM audit_events", &[])
            .await
            .unwrap();
    })
    .await;
    println!("reference: SELECT count(*) FROM audit_events: {reference:.1} ms");
    let pages = [
        (
            "7 days per day, every corridor (the default page)",
            23,
            7,
            DAY_MS,
            None,
        ),
        ("30 days per day, every corridor", 0, 30, DAY_MS, None),
        (
            "7 days per hour, KZ -> AZ",
            23,
            7,
            3_600_000,
            Some(("KZ", "AZ")),
        ),
        ("1 day per hour, every corridor", 29, 1, 3_600_000, None),
    ];
    for (label, from_day, days, bucket, corridor) in pages {
        let q = DashboardQuery {
            from_ms: START_MS + from_day * DAY_MS,
            to_ms: START_MS + (from_day + days) * DAY_MS,
            bucket_ms: bucket,
            origin: corridor.map(|c: (&str, &str)| c.0.to_owned()),
            destination: corridor.map(|c: (&str, &str)| c.1.to_owned()),
        };
        let ms = time_ms(|| async {
            store.dashboard(&q).await.unwrap();
        })
        .await;
        let raw_ms = time_ms(|| async {
            store.dashboard_from_events(&q).await.unwrap();
        })
        .await;
        let r = store.dashboard(&q).await.unwrap();
        let mut raw = store.dashboard_from_events(&q).await.unwrap();
        let mut counts = r.counts.clone();
        for c in [&mut counts, &mut raw.counts] {
            c.sort_by(|a, b| {
                (a.bucket_ms, &a.origin, &a.destination, &a.stage, &a.reason).cmp(&(
                    b.bucket_ms,
                    &b.origin,
                    &b.destination,
                    &b.stage,
                    &b.reason,
                ))
            });
        }
        let same = counts == raw.counts && r.release == raw.release;
        let rows = (r.counts.len(), r.release.len());
        println!(
            "{label:>52}: {ms:7.1} ms ({:.2} × the reference; {} count rows, {} release rows){}",
            ms / reference,
            rows.0,
            rows.1,
            if ms <= 300.0 {
                ""
            } else {
                "  — above the 300 ms goal"
            }
        );
        println!(
            "{:>52}  raw-event query (before 0009): {raw_ms:7.1} ms ({:.2} × the reference); \
             figures {}",
            "",
            raw_ms / reference,
            if same { "identical" } else { "DIFFERENT" }
        );
        assert!(
            same,
            "the summary's figures differ from the raw query's for {label}"
        );
    }
    drop(store);
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
}
