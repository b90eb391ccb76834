//! The pages' queries (`PagesStore`) on both backends: page tokens with roles and their
//! revocation, a declaration's events with chain positions, a chain's range, and the
//! dashboard's counts and release-time percentiles. PostgreSQL at `TAMGA_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432`), one fresh database per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tamga_store::{
    connect_postgres, AuditEvent, DashboardQuery, PageRole, PagesStore, StoreConfig,
};
use tokio_postgres::NoTls;

const DAY: i64 = 86_400_000;
const T0: i64 = 1_764_892_800_000; // a UTC midnight

/// A declaration: id, origin, received at, the later stages (stage, ms after), reason.
type Step<'a> = (&'a str, &'a str, i64, &'a [(&'a str, i64)], Option<&'a str>);

fn ev(stage: &str, id: &str, origin: &str, at_ms: i64, reason: Option<&str>) -> AuditEvent {
    AuditEvent {
        at_ms,
        stage: stage.into(),
        worker: "t".into(),
        declaration_id: id.into(),
        origin: origin.into(),
        destination: "AZ".into(),
        outcome: "x".into(),
        sub_indication: reason.map(|_| "HASH_FAILURE".into()),
        reason: reason.map(Into::into),
        digest: "ab".repeat(32),
        detail: None,
    }
}

async fn exercise(s: &dyn PagesStore) {
    // Tokens: a role each, revocation by holder; an unknown hash is nobody.
    let h = |c: char| c.to_string().repeat(64);
    s.create_page_token(&h('a'), "officer-1", PageRole::Officer, 1)
        .await
        .unwrap();
    s.create_page_token(&h('b'), "auditor-1", PageRole::Auditor, 1)
        .await
        .unwrap();
    assert_eq!(
        s.page_token(&h('a')).await.unwrap().unwrap().role,
        PageRole::Officer
    );
    assert_eq!(s.page_token(&h('c')).await.unwrap(), None);
    assert_eq!(s.revoke_page_tokens("officer-1", 2).await.unwrap(), 1);
    assert_eq!(s.page_token(&h('a')).await.unwrap(), None);
    assert_eq!(
        s.page_token(&h('b')).await.unwrap().unwrap().holder,
        "auditor-1"
    );

    // Day 0: KZ d1 accepted (released in 10 s), d2 accepted (30 s), d3 rejected; TR d4
    // accepted (2 s). Day 1: KZ d5 received only. Outside the range: d6.
    let plan: &[Step<'_>] = &[
        (
            "d1",
            "KZ",
            T0 + 1_000,
            &[("verified", 1), ("countersigned", 2), ("forwarded", 10_000)],
            None,
        ),
        (
            "d2",
            "KZ",
            T0 + 3_600_000,
            &[("verified", 1), ("countersigned", 2), ("forwarded", 30_000)],
            None,
        ),
        (
            "d3",
            "KZ",
            T0 + 7_200_000,
            &[("rejected", 1), ("receipt_issued", 2), ("forwarded", 3)],
            Some("digest_mismatch"),
        ),
        (
            "d4",
            "TR",
            T0 + 5_000,
            &[("verified", 1), ("countersigned", 2), ("forwarded", 2_000)],
            None,
        ),
        ("d5", "KZ", T0 + DAY + 5, &[], None),
        ("d6", "KZ", T0 - DAY, &[("verified", 1)], None),
    ];
    for (i, (id, origin, at, rest, reason)) in plan.iter().enumerate() {
        let chain = format!("w/{}", i % 2);
        s.append(&chain, &ev("received", id, origin, *at, None))
            .await
            .unwrap();
        for (stage, after) in *rest {
            let r = if *stage == "rejected" { *reason } else { None };
            s.append(&chain, &ev(stage, id, origin, at + after, r))
                .await
                .unwrap();
        }
    }
    let q = DashboardQuery {
        from_ms: T0,
        to_ms: T0 + 2 * DAY,
        bucket_ms: DAY,
        origin: None,
        destination: None,
    };
    let rows = s.dashboard(&q).await.unwrap();
    let count = |origin: &str, bucket: i64, stage: &str| -> i64 {
        rows.counts
            .iter()
            .filter(|c| c.origin == origin && c.bucket_ms == bucket && c.stage == stage)
            .map(|c| c.count)
            .sum()
    };
    assert_eq!(count("KZ", T0, "received"), 3);
    assert_eq!(count("KZ", T0, "countersigned"), 2);
    assert_eq!(count("KZ", T0, "rejected"), 1);
    assert_eq!(count("TR", T0, "received"), 1);
    assert_eq!(count("KZ", T0 + DAY, "received"), 1);
    assert_eq!(count("KZ", T0 - DAY, "received"), 0, "outside the range");
    let rejected = rows.counts.iter().find(|c| c.stage == "rejected").unwrap();
    assert_eq!(rejected.reason.as_deref(), Some("digest_mismatch"));
    assert_eq!(rejected.sub_indication.as_deref(), Some("HASH_FAILURE"));
    let kz = rows.release.iter().find(|r| r.origin == "KZ").unwrap();
    assert_eq!(
        kz.count, 2,
        "only accepted declarations have a release time"
    );
    assert!((kz.p50_ms - 20_000.0).abs() < 1e-6, "{kz:?}");
    assert!((kz.p95_ms - 29_000.0).abs() < 1e-6, "{kz:?}");
    // One corridor, per hour.
    let rows = s
        .dashboard(&DashboardQuery {
            bucket_ms: 3_600_000,
            origin: Some("TR".into()),
            destination: Some("AZ".into()),
            ..q
        })
        .await
        .unwrap();
    assert!(rows.counts.iter().all(|c| c.origin == "TR"));
    assert_eq!(rows.release.len(), 1);
    assert_eq!(rows.release[0].p50_ms, 2_000.0);

    // A declaration's events with their chain positions, and a chain's range.
    let evs = s.declaration_stored_events("d1").await.unwrap();
    assert_eq!(evs.len(), 4);
    assert!(evs
        .iter()
        .all(|e| e.chain == "w/0" && e.hash == e.expected_hash()));
    let range = s.chain_range("w/0", 1, 3, 100).await.unwrap();
    assert_eq!(range.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(range[1].prev_hash, range[0].hash);
    assert_eq!(s.chain_range("w/0", 1, 100, 2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn pages_queries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = tamga_store::open_sqlite(&dir.path().join("p.sqlite")).unwrap();
    exercise(&s).await;
}

#[tokio::test]
async fn pages_queries_on_postgres() {
    let base = std::env::var("TAMGA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let base = base.trim_end_matches('/').to_owned();
    let (admin, conn) = tokio_postgres::connect(&format!("{base}/postgres"), NoTls)
        .await
        .expect("PostgreSQL reachable (CI starts it)");
    tokio::spawn(conn);
    let mut bytes = [0u8; 8];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    let db = format!("tamga_test_{}", hex::encode(bytes));
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let store = connect_postgres(&StoreConfig {
        url: format!("{base}/{db}"),
        app_role: Some("tamga_app".into()),
        pool_size: 4,
        wait_timeout: Duration::from_secs(5),
        create_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
        migrate: true,
        require_boundary: false,
    })
    .await
    .unwrap();
    let result = tokio::spawn(async move {
        exercise(&store).await;
    })
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    result.unwrap();
}
