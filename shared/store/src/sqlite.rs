//! The SQLite backend (the embedded default).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::error::from_sqlite;
use crate::{
    event_hash, verify, AuditEvent, ChainReport, Claim, Recorded, ResultRow, Store, StoreError,
    StoredEvent, GENESIS_HASH, VERIFY_PAGE,
};

/// The in-process locks behind [`Store::claim`], by key.
type ClaimLocks = Arc<Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

const SCHEMA: &str = include_str!("sqlite.sql");
const GATEWAY_SCHEMA: &str = include_str!("sqlite_gateway.sql");
const PAGES_SCHEMA: &str = include_str!("sqlite_pages.sql");
const CALLBACK_SCHEMA: &str = include_str!("sqlite_gateway_callbacks.sql");
const CHECKPOINT_SCHEMA: &str = include_str!("sqlite_checkpoints.sql");
/// Run once (it backfills): see [`open_sqlite`].
const DASHBOARD_SCHEMA: &str = include_str!("sqlite_dashboard.sql");
const CHECKS_SCHEMA: &str = include_str!("sqlite_checks.sql");

/// How long a writer waits for another process's write lock on the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) const EVENT_COLUMNS: &str =
    "chain, seq, prev_hash, hash, at_ms, stage, worker, declaration_id, \
     origin, destination, outcome, sub_indication, reason, digest, detail";

/// The SQLite store: one connection behind a mutex; calls run on the blocking pool.
/// Writes use `BEGIN IMMEDIATE`, so several processes may share one file.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    claims: ClaimLocks,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Opens (creating if needed) the database at `path` — or an in-memory one for
/// `":memory:"` — in WAL mode with `synchronous = FULL`, and creates the schema.
pub fn open_sqlite(path: &Path) -> Result<SqliteStore, StoreError> {
    fn err(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
        move |e| from_sqlite(what, &e)
    }
    let in_memory = path.as_os_str() == ":memory:";
    let mut conn = if in_memory {
        Connection::open_in_memory()
    } else {
        Connection::open(path)
    }
    .map_err(err("open SQLite database"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("SQLite busy_timeout"))?;
    if !in_memory {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(err("SQLite journal_mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode = %mode, "SQLite did not switch to WAL");
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err("SQLite synchronous"))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err("SQLite schema"))?;
    tx.execute_batch(SCHEMA).map_err(err("SQLite schema"))?;
    tx.execute_batch(GATEWAY_SCHEMA)
        .map_err(err("SQLite gateway schema"))?;
    tx.execute_batch(PAGES_SCHEMA)
        .map_err(err("SQLite pages schema"))?;
    tx.execute_batch(CALLBACK_SCHEMA)
        .map_err(err("SQLite gateway callback schema"))?;
    tx.execute_batch(CHECKPOINT_SCHEMA)
        .map_err(err("SQLite checkpoint schema"))?;
    // The dashboard's summary is backfilled from the events when it is created, so it is
    // created once (recorded as version 9), not at every open.
    let summarised: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM tamga_schema_migrations WHERE version = 9)",
            [],
            |r| r.get(0),
        )
        .map_err(err("SQLite dashboard schema"))?;
    if !summarised {
        tx.execute_batch(DASHBOARD_SCHEMA)
            .map_err(err("SQLite dashboard schema"))?;
    }
    tx.execute_batch(CHECKS_SCHEMA)
        .map_err(err("SQLite checks schema"))?;
    tx.commit().map_err(err("SQLite schema"))?;
    Ok(SqliteStore {
        conn: Arc::new(Mutex::new(conn)),
        claims: ClaimLocks::default(),
    })
}

impl SqliteStore {
    /// Runs `f` on the connection, on the blocking pool.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock rolled its transaction back (Transaction's
            // Drop), so the connection is usable.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Other(format!("SQLite task: {e}")))?
    }

    async fn record_once(
        &self,
        what: &'static str,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError> {
        let owned = |r: &ResultRow<'_>| {
            (
                r.declaration_id.to_owned(),
                r.stage.to_owned(),
                r.result.to_vec(),
            )
        };
        let chain = chain.to_owned();
        let claim = owned(&claim);
        let also: Vec<_> = also.iter().map(owned).collect();
        let events = events.to_vec();
        self.blocking(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite(what, &e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            let insert = |(id, stage, result): &(String, String, Vec<u8>)| {
                tx.prepare_cached(
                    "INSERT INTO stage_results (declaration_id, stage, result) \
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![id, stage, result]))
                .map_err(err)
            };
            if insert(&claim)? == 0 {
                let stored: Vec<u8> = tx
                    .prepare_cached(
                        "SELECT result FROM stage_results WHERE declaration_id = ?1 AND stage = ?2",
                    )
                    .and_then(|mut s| s.query_row(params![claim.0, claim.1], |r| r.get(0)))
                    .map_err(err)?;
                tx.commit().map_err(err)?;
                return Ok(Recorded::AlreadyPresent(stored));
            }
            for row in &also {
                insert(row)?;
            }
            for event in &events {
                append_tx(&tx, &chain, event)?;
            }
            tx.commit().map_err(err)?;
            Ok(Recorded::Inserted)
        })
        .await
    }
}

/// Appends `event` to `chain` inside `tx` (an IMMEDIATE transaction: the write lock is
/// held while the head is read).
fn append_tx(
    tx: &Transaction<'_>,
    chain: &str,
    event: &AuditEvent,
) -> Result<StoredEvent, StoreError> {
    let err = |e: rusqlite::Error| from_sqlite("append", &e);
    if chain.is_empty() {
        return Err(StoreError::Other("append: the chain name is empty".into()));
    }
    let head: Option<(i64, String)> = tx
        .prepare_cached(
            "SELECT seq, hash FROM audit_events WHERE chain = ?1 ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![chain], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(err)?;
    let (seq, prev_hash) = match head {
        Some((seq, hash)) => (
            seq.checked_add(1)
                .ok_or_else(|| StoreError::Integrity(format!("append: chain {chain:?} is full")))?,
            hash,
        ),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = event_hash(chain, seq, &prev_hash, event);
    tx.prepare_cached(&format!(
        "INSERT INTO audit_events ({EVENT_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))
    .and_then(|mut s| {
        s.execute(params![
            chain,
            seq,
            prev_hash,
            hash,
            event.at_ms,
            event.stage,
            event.worker,
            event.declaration_id,
            event.origin,
            event.destination,
            event.outcome,
            event.sub_indication,
            event.reason,
            event.digest,
            event.detail,
        ])
    })
    .map_err(err)?;
    Ok(StoredEvent {
        chain: chain.to_owned(),
        seq,
        prev_hash,
        hash,
        event: event.clone(),
    })
}

pub(crate) fn stored_event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        chain: row.get(0)?,
        seq: row.get(1)?,
        prev_hash: row.get(2)?,
        hash: row.get(3)?,
        event: AuditEvent {
            at_ms: row.get(4)?,
            stage: row.get(5)?,
            worker: row.get(6)?,
            declaration_id: row.get(7)?,
            origin: row.get(8)?,
            destination: row.get(9)?,
            outcome: row.get(10)?,
            sub_indication: row.get(11)?,
            reason: row.get(12)?,
            digest: row.get(13)?,
            detail: row.get(14)?,
        },
    })
}

/// A claim held by in-process locks (the embedded default runs in one process).
struct SqliteClaim<'a> {
    store: &'a SqliteStore,
    guards: Vec<(String, tokio::sync::OwnedMutexGuard<()>)>,
    found: Vec<Option<Vec<u8>>>,
}

impl Drop for SqliteClaim<'_> {
    fn drop(&mut self) {
        let keys: Vec<String> = self.guards.drain(..).map(|(k, _guard)| k).collect();
        let mut locks = self
            .store
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for k in keys {
            // Forget locks nobody else holds or waits for.
            if locks.get(&k).is_some_and(|l| Arc::strong_count(l) == 1) {
                locks.remove(&k);
            }
        }
    }
}

#[async_trait::async_trait]
impl Claim for SqliteClaim<'_> {
    fn found(&self) -> &[Option<Vec<u8>>] {
        &self.found
    }

    async fn stage_result(
        &mut self,
        declaration_id: &str,
        stage: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.stage_result(declaration_id, stage).await
    }

    async fn record_all(
        self: Box<Self>,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError> {
        self.store.record_all(chain, claim, also, events).await
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn stage_result(
        &self,
        declaration_id: &str,
        stage: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (declaration_id, stage) = (declaration_id.to_owned(), stage.to_owned());
        self.blocking(move |conn| {
            conn.prepare_cached(
                "SELECT result FROM stage_results WHERE declaration_id = ?1 AND stage = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![declaration_id, stage], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| from_sqlite("stage_result", &e))
        })
        .await
    }

    async fn record_all(
        &self,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError> {
        self.record_once("record", chain, claim, also, events).await
    }

    async fn claim(
        &self,
        keys: &[&str],
        lookup: &[(&str, &str)],
    ) -> Result<Box<dyn Claim + '_>, StoreError> {
        let mut sorted: Vec<&str> = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut claim = SqliteClaim {
            store: self,
            guards: Vec::with_capacity(sorted.len()),
            found: Vec::new(),
        };
        for key in sorted {
            let lock = Arc::clone(
                self.claims
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(key.to_owned())
                    .or_default(),
            );
            claim.guards.push((key.to_owned(), lock.lock_owned().await));
        }
        claim.found = self.stage_results(lookup).await?;
        Ok(Box::new(claim))
    }

    async fn append(&self, chain: &str, event: &AuditEvent) -> Result<StoredEvent, StoreError> {
        let (chain, event) = (chain.to_owned(), event.clone());
        self.blocking(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("append", &e);
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            let stored = append_tx(&tx, &chain, &event)?;
            tx.commit().map_err(err)?;
            Ok(stored)
        })
        .await
    }

    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        verify::verify_store(self, VERIFY_PAGE).await
    }

    fn checkpoint_store(&self) -> Option<&dyn crate::CheckpointStore> {
        Some(self)
    }

    async fn events(
        &self,
        after: Option<(String, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.blocking(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("events", &e);
            match after {
                Some((chain, seq)) => conn
                    .prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM audit_events \
                         WHERE (chain, seq) > (?1, ?2) ORDER BY chain, seq LIMIT ?3"
                    ))
                    .and_then(|mut s| {
                        s.query_map(params![chain, seq, limit], stored_event)?
                            .collect()
                    }),
                None => conn
                    .prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY chain, seq LIMIT ?1"
                    ))
                    .and_then(|mut s| s.query_map(params![limit], stored_event)?.collect()),
            }
            .map_err(err)
        })
        .await
    }

    async fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.blocking(|conn| {
            conn.prepare_cached("SELECT stage, count(*) FROM audit_events GROUP BY stage")
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        let n: i64 = r.get(1)?;
                        Ok((r.get::<_, String>(0)?, u64::try_from(n).unwrap_or(0)))
                    })?
                    .collect()
                })
                .map_err(|e| from_sqlite("counts", &e))
        })
        .await
    }
}
