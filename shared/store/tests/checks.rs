//! The checkpoint's queries (`ChecksStore`) on both backends: the earlier checks of one
//! declaration, scans per checkpoint and day by result (offline and repeated counted), the
//! repeated-scan alerts, and forwarding → first scan per corridor. PostgreSQL at
//! `TAMGA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`), one fresh database per
//! test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tamga_store::{connect_postgres, AuditEvent, ChecksQuery, ChecksStore, StoreConfig};
use tokio_postgres::NoTls;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const T0: i64 = 1_764_892_800_000; // a UTC midnight

fn forwarded(id: &str, origin: &str, at_ms: i64, outcome: &str) -> AuditEvent {
    AuditEvent {
        at_ms,
        stage: "forwarded".into(),
        worker: "w".into(),
        declaration_id: id.into(),
        origin: origin.into(),
        destination: "AZ".into(),
        outcome: outcome.into(),
        sub_indication: None,
        reason: None,
        digest: format!("{id:0>64}"),
        detail: None,
    }
}

/// A `checked` event as the gateway writes it (the detail's contract fields).
fn checked(
    id: &str,
    checkpoint: &str,
    at_ms: i64,
    result: &str,
    reason: Option<&str>,
    offline: bool,
) -> AuditEvent {
    AuditEvent {
        at_ms,
        stage: "checked".into(),
        worker: "w/checks".into(),
        declaration_id: id.into(),
        origin: "KZ".into(),
        destination: "AZ".into(),
        outcome: result.into(),
        sub_indication: None,
        reason: reason.map(Into::into),
        digest: format!("{id:0>64}"),
        detail: Some(
            serde_json::json!({
                "checkId": format!("chk-{at_ms}"),
                "checkpoint": checkpoint,
                "officer": "o",
                "device": "d",
                "bundleVersion": 1,
                "result": result,
                "offline": offline,
                "lrn": format!("LRN-{id}"),
            })
            .to_string(),
        ),
    }
}

async fn exercise(s: &dyn ChecksStore) {
    // d1 forwarded at T0 + 1 h, first scanned at T0 + 5 h (ALAT), then at ASTARA (repeat);
    // d2 forwarded at T0 + 2 h, first scanned offline at T0 + 3 h (EXIT); d3 forwarded but
    // never scanned; d4 rejected (its receipt forwarded) and scanned: not a crossing; a red
    // scan of unknown bytes; a check on the next day.
    let events = [
        forwarded("d1", "KZ", T0 + HOUR, "accepted"),
        forwarded("d2", "KZ", T0 + 2 * HOUR, "accepted"),
        forwarded("d3", "TR", T0 + 2 * HOUR, "accepted"),
        forwarded("d4", "KZ", T0 + 2 * HOUR, "rejected"),
        checked("d1", "ALAT", T0 + 5 * HOUR, "accepted", None, false),
        checked(
            "d1",
            "ASTARA",
            T0 + 6 * HOUR,
            "could_not_check",
            Some("already_presented"),
            false,
        ),
        checked("d2", "EXIT", T0 + 3 * HOUR, "accepted", None, true),
        checked(
            "d4",
            "ALAT",
            T0 + 4 * HOUR,
            "rejected",
            Some("digest_mismatch"),
            false,
        ),
        checked(
            "xx",
            "ALAT",
            T0 + 4 * HOUR,
            "not_authentic",
            Some("bad_signature"),
            false,
        ),
        checked("d2", "ALAT", T0 + DAY + HOUR, "accepted", None, false),
    ];
    for e in &events {
        s.append("w", e).await.unwrap();
    }
    let prior = s.prior_checks(&format!("{:0>64}", "d1")).await.unwrap();
    assert_eq!(
        prior
            .iter()
            .map(|e| e.event.outcome.as_str())
            .collect::<Vec<_>>(),
        ["accepted", "could_not_check"],
        "oldest first, only checked events"
    );
    assert!(s.prior_checks(&"f".repeat(64)).await.unwrap().is_empty());

    let q = ChecksQuery {
        from_ms: T0,
        to_ms: T0 + 2 * DAY,
        bucket_ms: DAY,
        origin: None,
        destination: None,
    };
    let scans = s.check_scans(&q).await.unwrap();
    let find = |bucket: i64, cp: &str, result: &str| {
        scans
            .iter()
            .find(|b| b.bucket_ms == bucket && b.checkpoint == cp && b.result == result)
            .unwrap_or_else(|| panic!("{bucket} {cp} {result}: {scans:?}"))
    };
    assert_eq!(find(T0, "ALAT", "accepted").count, 1);
    assert_eq!(find(T0, "ALAT", "rejected").count, 1);
    assert_eq!(find(T0, "ALAT", "not_authentic").count, 1);
    let repeat = find(T0, "ASTARA", "could_not_check");
    assert_eq!(
        (repeat.count, repeat.repeated, repeat.offline),
        (1, 1, false)
    );
    let offline = find(T0, "EXIT", "accepted");
    assert!(offline.offline);
    assert_eq!(find(T0 + DAY, "ALAT", "accepted").count, 1);
    assert_eq!(scans.iter().map(|b| b.count).sum::<i64>(), 6);

    let alerts = s.repeated_scans(&q, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].event.declaration_id, "d1");
    let mut tr = q.clone();
    tr.origin = Some("TR".into());
    assert!(s.repeated_scans(&tr, 10).await.unwrap().is_empty());

    // Forwarding → first scan: d1 4 h, d2 1 h (KZ → AZ); d3 never scanned; d4 rejected.
    let crossing = s.crossing_times(&q).await.unwrap();
    assert_eq!(crossing.len(), 1, "{crossing:?}");
    let kz = &crossing[0];
    assert_eq!((kz.origin.as_str(), kz.count), ("KZ", 2));
    assert!((kz.p50_ms - 2.5 * HOUR as f64).abs() < 1.0, "{kz:?}");
    assert!((kz.p95_ms - 3.85 * HOUR as f64).abs() < 1.0, "{kz:?}");
    // A range that holds no forwarding: nothing.
    let later = ChecksQuery {
        from_ms: T0 + DAY,
        ..q.clone()
    };
    assert!(s.crossing_times(&later).await.unwrap().is_empty());
}

#[tokio::test]
async fn checks_queries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let s = tamga_store::open_sqlite(&dir.path().join("c.sqlite")).unwrap();
    exercise(&s).await;
}

#[tokio::test]
async fn checks_queries_on_postgres() {
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
