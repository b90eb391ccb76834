//! What signed audit checkpoints cost on PostgreSQL, against the hash-chain check of the
//! same trail measured in the same run: the first checkpoint (reads and re-hashes every
//! event), an incremental one (only the events since), and `tamga audit verify`'s new
//! work (every event, every checkpoint rebuilt).
//!
//! ```sh
//! cargo run -p tamga-pipeline --example checkpoint_cost -- [EVENTS]
//! ```
//! `TAMGA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`) must allow creating a
//! database; a scratch `tamga_cpcost_<pid>` is created and dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use tamga_pipeline::checkpoint::{read_trail, CheckpointKey, Checkpointer, Taken};
use tamga_store::{connect_postgres, AuditEvent, ResultRow, Store, StoreConfig};

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        at_ms: 1_760_000_000_000 + i as i64,
        stage: "countersigned".into(),
        worker: "bench".into(),
        declaration_id: format!("decl-{i}"),
        origin: "KZ".into(),
        destination: "AZ".into(),
        outcome: "accepted".into(),
        sub_indication: None,
        reason: None,
        digest: "ab".repeat(32),
        detail: Some("{\"n\":1}".into()),
    }
}

async fn fill(store: &dyn Store, from: usize, n: usize) {
    // 16 chains, 100 events per transaction.
    for (b, start) in (from..from + n).step_by(100).enumerate() {
        let events: Vec<AuditEvent> = (start..(start + 100).min(from + n)).map(event).collect();
        let key = format!("fill-{start}");
        store
            .record_all(
                &format!("bench/{}", b % 16),
                ResultRow {
                    declaration_id: &key,
                    stage: "bench",
                    result: b"",
                },
                &[],
                &events,
            )
            .await
            .unwrap();
    }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let base = std::env::var("TAMGA_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let db = format!("tamga_cpcost_{}", std::process::id());
    let (admin, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(
        connect_postgres(&StoreConfig::new(format!("{base}/{db}")))
            .await
            .unwrap(),
    );
    fill(store.as_ref(), 0, n).await;

    let pki = tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ"], 1_780_000_000)).unwrap();
    let az = &pki.countries[0];
    let signer = tamga_dsig::SigningKey::from_pkcs8_der(&az.authority.key_pkcs8_der).unwrap();
    let key =
        CheckpointKey::from_signer(Box::new(signer), vec![az.authority.cert_der.clone()], "AZ")
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cp = Checkpointer::new(
        store.clone(),
        key,
        Some(dir.path().to_owned()),
        vec![az.authority.cert_der.clone()],
    );

    let t = Instant::now();
    assert!(store.verify_chain().await.unwrap().is_intact());
    let chains = t.elapsed().as_secs_f64();

    let t = Instant::now();
    assert!(matches!(cp.checkpoint(1).await.unwrap(), Taken::Signed(_)));
    let first = t.elapsed().as_secs_f64();

    let more = n / 10;
    fill(store.as_ref(), n, more).await;
    let t = Instant::now();
    assert!(matches!(cp.checkpoint(2).await.unwrap(), Taken::Signed(_)));
    let incremental = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let (report, leaves) = read_trail(store.as_ref()).await.unwrap();
    let rows = store
        .checkpoint_store()
        .unwrap()
        .checkpoints()
        .await
        .unwrap();
    let files = tamga_pipeline::checkpoint::read_checkpoint_dir(dir.path()).unwrap();
    let checked = tamga_audit_log::check_checkpoints(
        &leaves,
        &rows,
        &files,
        std::slice::from_ref(&az.authority.cert_der),
    );
    let verify = t.elapsed().as_secs_f64();
    assert!(report.is_intact() && checked.is_intact());

    println!("{n} events (then {more} more), 16 chains, PostgreSQL");
    println!("reference: hash-chain check of {n} events   {chains:>8.2} s (1.00×)");
    println!(
        "first checkpoint over {n} events          {first:>8.2} s ({:.2}×)",
        first / chains
    );
    println!(
        "incremental checkpoint over {more} events  {incremental:>8.2} s ({:.2}×)",
        incremental / chains
    );
    println!(
        "verify: chains + checkpoints, {} events   {verify:>8.2} s ({:.2}×)",
        n + more,
        verify / chains
    );
    drop(store);
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
}
