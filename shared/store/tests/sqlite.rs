//! The store suite on SQLite, plus what is specific to the embedded backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{event, Backdoor};
use tamga_store::{open_sqlite, stage, Recorded, Store};

struct SqliteDoor {
    conn: Mutex<rusqlite::Connection>,
    path: PathBuf,
}

impl SqliteDoor {
    fn run(&self, sql: &str) -> Result<(), String> {
        self.conn
            .lock()
            .unwrap()
            .execute_batch(sql)
            .map_err(|e| match e.sqlite_error_code() {
                Some(code) => format!("{code:?}: {e}"),
                None => e.to_string(),
            })
    }
}

#[async_trait::async_trait]
impl Backdoor for SqliteDoor {
    async fn exec(&self, sql: &str) -> Result<(), String> {
        self.run(sql)
    }
    async fn disable_guards(&self) {
        self.run("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;")
            .unwrap();
    }
    async fn enable_guards(&self) {
        // opening runs the (idempotent) schema, which recreates the triggers
        open_sqlite(&self.path).unwrap();
    }
    fn truncate_sql(&self) -> &'static str {
        "DELETE FROM audit_events"
    }
    async fn poison(&self, declaration_id: &str) {
        self.run(&format!(
            "CREATE TRIGGER test_poison BEFORE INSERT ON audit_events \
             WHEN NEW.declaration_id = '{declaration_id}' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        ))
        .unwrap();
    }
    async fn unpoison(&self) {
        self.run("DROP TRIGGER test_poison").unwrap();
    }
}

async fn setup() -> (Arc<dyn Store>, Box<dyn Backdoor>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tamga.db");
    let store = open_sqlite(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let door = SqliteDoor {
        conn: Mutex::new(conn),
        path,
    };
    (Arc::new(store), Box::new(door), dir)
}

whole_suite!();

#[tokio::test]
async fn unsettled_sweep() {
    let store = open_sqlite(std::path::Path::new(":memory:")).unwrap();
    common::unsettled_sweep(&store).await;
}

#[tokio::test]
async fn in_memory_works() {
    let store = open_sqlite(std::path::Path::new(":memory:")).unwrap();
    let r = store
        .record(
            "m",
            "d",
            stage::VERIFIED,
            b"r",
            &event("d", stage::VERIFIED),
        )
        .await
        .unwrap();
    assert_eq!(r, Recorded::Inserted);
    assert!(store.verify_chain().await.unwrap().is_intact());
}

#[tokio::test]
async fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let store = open_sqlite(&path).unwrap();
        store
            .append("w", &event("a", stage::RECEIVED))
            .await
            .unwrap();
    }
    let store = open_sqlite(&path).unwrap();
    let e = store
        .append("w", &event("b", stage::RECEIVED))
        .await
        .unwrap();
    assert_eq!(e.seq, 2);
    let report = store.verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 2);
}

/// Two stores on one file behave like two processes: `BEGIN IMMEDIATE` serialises the
/// appends to a shared chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_share_a_chain_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let stores = [open_sqlite(&path).unwrap(), open_sqlite(&path).unwrap()];
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for t in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for n in 0..25 {
                    store
                        .append("shared", &event(&format!("{i}-{t}-{n}"), stage::RECEIVED))
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = stores[0].verify_chain().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 200);
    assert_eq!(report.chains[0].seq, 200);
}
