//! Measures audit appends per second on PostgreSQL: one chain (every append waits for the
//! chain's advisory lock) against several chains (one per worker task), with the server's
//! `synchronous_commit` as configured (on by default).
//!
//! ```sh
//! cargo run --release -p tamga-store --example pg_append_throughput -- [EVENTS] [TASKS]
//! ```
//! `TAMGA_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`) must allow creating a
//! database; a scratch `tamga_bench_<random>` is created and dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tamga_store::{connect_postgres, stage, AuditEvent, Store, StoreConfig};
use tokio_postgres::NoTls;

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        at_ms: 1_760_000_000_000 + i as i64,
        stage: stage::VERIFIED.into(),
        worker: "bench".into(),
        declaration_id: format!("decl-{i}"),
        origin: "KZ".into(),
        destination: "AZ".into(),
        outcome: "TOTAL_PASSED".into(),
        sub_indication: None,
        reason: None,
        digest: "ab".repeat(32),
        detail: None,
    }
}

async fn run(store: Arc<dyn Store>, label: &str, chains: usize, tasks: usize, events: usize) {
    let start = Instant::now();
    let per_task = events / tasks;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let store = Arc::clone(&store);
            let chain = format!("{label}/{}", t % chains);
            tokio::spawn(async move {
                for i in 0..per_task {
                    store
                        .append(&chain, &event(t * per_task + i))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = per_task * tasks;
    println!(
        "{label:>28}: {n} appends, {chains} chain(s), {tasks} task(s): {:>7.0} events/s ({:.2} ms/append/task)",
        n as f64 / secs,
        secs * 1000.0 / per_task as f64
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args.next().map_or(4000, |a| a.parse().unwrap());
    let tasks: usize = args.next().map_or(16, |a| a.parse().unwrap());
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
    let sync: String = admin
        .query_one("SHOW synchronous_commit", &[])
        .await
        .unwrap()
        .get(0);
    let fsync: String = admin.query_one("SHOW fsync", &[]).await.unwrap().get(0);
    println!("synchronous_commit = {sync}, fsync = {fsync}, pool = {tasks}");

    let cfg = StoreConfig {
        url: format!("{base}/{db}"),
        app_role: Some("tamga_app".into()),
        pool_size: tasks,
        wait_timeout: Duration::from_secs(10),
        create_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(10),
        migrate: true,
        require_boundary: false,
    };
    let store: Arc<dyn Store> = Arc::new(connect_postgres(&cfg).await.unwrap());
    // warm the pool and the statement caches
    run(Arc::clone(&store), "warm-up", tasks, tasks, tasks * 10).await;
    run(Arc::clone(&store), "1 chain, 1 task", 1, 1, events / 4).await;
    run(Arc::clone(&store), "1 chain, many tasks", 1, tasks, events).await;
    run(Arc::clone(&store), "4 chains, many tasks", 4, tasks, events).await;
    run(Arc::clone(&store), "1 chain per task", tasks, tasks, events).await;
    let report = store.verify_chain().await.unwrap();
    let start = Instant::now();
    let again = store.verify_chain().await.unwrap();
    println!(
        "verify_chain: {} events in {} chains, intact = {}, {:.0} events/s",
        again.events,
        again.chains.len(),
        report.is_intact() && again.is_intact(),
        again.events as f64 / start.elapsed().as_secs_f64()
    );
    drop(store);
    admin
        .batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
}
