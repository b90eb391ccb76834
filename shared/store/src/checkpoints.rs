//! Signed checkpoints of the audit trail, as rows (table `audit_checkpoints`, migration
//! 0007; its SQLite twin `sqlite_checkpoints.sql`), and the reads that make them.
//!
//! What a checkpoint means — the Merkle tree over every event, its order, the signed
//! document — is `tamga-audit-log`'s business; this module stores and reads.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

use crate::error::{from_pg, from_sqlite};
use crate::pg::CHECKPOINT_LOCK;
use crate::{ChainHead, PagesStore, PgStore, SqliteStore, StoreError};

/// One checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRow {
    /// Events covered (leaves of the tree).
    pub tree_size: u64,
    /// The tree's root hash, lower-case hex.
    pub root: String,
    /// When it was signed, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Every chain's head at that point, ordered by chain name (byte order).
    pub heads: Vec<ChainHead>,
    /// The roots of the perfect subtrees along the tree's right edge, largest first
    /// (lower-case hex): enough to extend the tree.
    pub frontier: Vec<String>,
    /// The signed checkpoint document, byte for byte as written outside the database.
    pub signed: Vec<u8>,
}

/// The checkpoint table and the reads the checkpointer needs.
#[async_trait::async_trait]
pub trait CheckpointStore: PagesStore {
    /// Every checkpoint, by tree size.
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError>;

    /// The checkpoint with the largest tree size.
    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError>;

    /// Inserts `row` if the largest stored tree size is still `previous` (`None`: no
    /// checkpoint yet), under a lock, so that two checkpointers never both extend the
    /// same tree. `Ok(false)` when another one got there first.
    async fn insert_checkpoint(
        &self,
        previous: Option<u64>,
        row: &CheckpointRow,
    ) -> Result<bool, StoreError>;

    /// Every chain's newest event, ordered by chain name (byte order).
    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError>;
}

const COLUMNS: &str = "tree_size, root, at_ms, heads, frontier, signed";

/// A row's columns, checked: a row someone edited by hand is an integrity error, never a
/// panic.
fn row_from(
    tree_size: i64,
    root: String,
    at_ms: i64,
    heads: &str,
    frontier: &str,
    signed: Vec<u8>,
) -> Result<CheckpointRow, StoreError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::Integrity(format!("checkpoint of tree size {tree_size}: {what}: {e}"))
    };
    Ok(CheckpointRow {
        tree_size: u64::try_from(tree_size).map_err(|e| bad("tree_size", &e))?,
        root,
        at_ms,
        heads: serde_json::from_str(heads).map_err(|e| bad("heads", &e))?,
        frontier: serde_json::from_str(frontier).map_err(|e| bad("frontier", &e))?,
        signed,
    })
}

fn columns_of(row: &CheckpointRow) -> Result<(i64, String, String), StoreError> {
    let size = i64::try_from(row.tree_size)
        .map_err(|_| StoreError::Other(format!("tree size {} is too large", row.tree_size)))?;
    let json = |e: serde_json::Error| StoreError::Other(format!("checkpoint row: {e}"));
    Ok((
        size,
        serde_json::to_string(&row.heads).map_err(json)?,
        serde_json::to_string(&row.frontier).map_err(json)?,
    ))
}

fn pg_row(row: &tokio_postgres::Row) -> Result<CheckpointRow, StoreError> {
    let pg = |e: tokio_postgres::Error| from_pg("checkpoints", &e);
    let heads: String = row.try_get(3).map_err(pg)?;
    let frontier: String = row.try_get(4).map_err(pg)?;
    row_from(
        row.try_get(0).map_err(pg)?,
        row.try_get(1).map_err(pg)?,
        row.try_get(2).map_err(pg)?,
        &heads,
        &frontier,
        row.try_get(5).map_err(pg)?,
    )
}

#[async_trait::async_trait]
impl CheckpointStore for PgStore {
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        self.within("checkpoints", async {
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!("SELECT {COLUMNS} FROM audit_checkpoints ORDER BY tree_size"),
                    &[],
                )
                .await
                .map_err(|e| from_pg("checkpoints", &e))?;
            rows.iter().map(pg_row).collect()
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        self.within("latest_checkpoint", async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    &format!(
                        "SELECT {COLUMNS} FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1"
                    ),
                    &[],
                )
                .await
                .map_err(|e| from_pg("latest_checkpoint", &e))?;
            row.as_ref().map(pg_row).transpose()
        })
        .await
    }

    async fn insert_checkpoint(
        &self,
        previous: Option<u64>,
        row: &CheckpointRow,
    ) -> Result<bool, StoreError> {
        let (size, heads, frontier) = columns_of(row)?;
        self.within("insert_checkpoint", async {
            let pg = |e: tokio_postgres::Error| from_pg("insert_checkpoint", &e);
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CHECKPOINT_LOCK])
                .await
                .map_err(pg)?;
            let latest: Option<i64> = tx
                .query_one("SELECT max(tree_size) FROM audit_checkpoints", &[])
                .await
                .map_err(pg)?
                .try_get(0)
                .map_err(pg)?;
            if latest.and_then(|l| u64::try_from(l).ok()) != previous {
                return Ok(false);
            }
            tx.execute(
                &format!(
                    "INSERT INTO audit_checkpoints ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                ),
                &[&size, &row.root, &row.at_ms, &heads, &frontier, &row.signed],
            )
            .await
            .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            Ok(true)
        })
        .await
    }

    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError> {
        self.within("chain_heads", async {
            let pg = |e: tokio_postgres::Error| from_pg("chain_heads", &e);
            let client = self.client().await?;
            // A loose index scan over the primary key (chain, seq): one probe per chain,
            // not a scan of every event.
            let stmt = client
                .prepare_cached(
                    "WITH RECURSIVE c(chain) AS ( \
                       (SELECT chain FROM audit_events ORDER BY chain LIMIT 1) \
                       UNION ALL \
                       SELECT (SELECT e.chain FROM audit_events e WHERE e.chain > c.chain \
                               ORDER BY e.chain LIMIT 1) \
                       FROM c WHERE c.chain IS NOT NULL) \
                     SELECT c.chain, h.seq, h.hash FROM c CROSS JOIN LATERAL \
                       (SELECT seq, hash FROM audit_events e WHERE e.chain = c.chain \
                        ORDER BY seq DESC LIMIT 1) h \
                     WHERE c.chain IS NOT NULL ORDER BY c.chain",
                )
                .await
                .map_err(pg)?;
            client
                .query(&stmt, &[])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| {
                    Ok(ChainHead {
                        chain: r.try_get(0).map_err(pg)?,
                        seq: r.try_get(1).map_err(pg)?,
                        hash: r.try_get(2).map_err(pg)?,
                    })
                })
                .collect()
        })
        .await
    }
}

fn sqlite_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, i64, String, String, Vec<u8>)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn sqlite_checked(
    raw: (i64, String, i64, String, String, Vec<u8>),
) -> Result<CheckpointRow, StoreError> {
    let (size, root, at_ms, heads, frontier, signed) = raw;
    row_from(size, root, at_ms, &heads, &frontier, signed)
}

#[async_trait::async_trait]
impl CheckpointStore for SqliteStore {
    async fn checkpoints(&self) -> Result<Vec<CheckpointRow>, StoreError> {
        let raw = self
            .blocking(|conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM audit_checkpoints ORDER BY tree_size"
                ))
                .and_then(|mut s| s.query_map([], sqlite_row)?.collect::<Result<Vec<_>, _>>())
                .map_err(|e| from_sqlite("checkpoints", &e))
            })
            .await?;
        raw.into_iter().map(sqlite_checked).collect()
    }

    async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, StoreError> {
        let raw = self
            .blocking(|conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1"
                ))
                .and_then(|mut s| s.query_row([], sqlite_row).optional())
                .map_err(|e| from_sqlite("latest_checkpoint", &e))
            })
            .await?;
        raw.map(sqlite_checked).transpose()
    }

    async fn insert_checkpoint(
        &self,
        previous: Option<u64>,
        row: &CheckpointRow,
    ) -> Result<bool, StoreError> {
        let (size, heads, frontier) = columns_of(row)?;
        let (root, at_ms, signed) = (row.root.clone(), row.at_ms, row.signed.clone());
        self.blocking(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("insert_checkpoint", &e);
            // IMMEDIATE: the write lock is held from the read of the latest size on.
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            let latest: Option<i64> = tx
                .query_row("SELECT max(tree_size) FROM audit_checkpoints", [], |r| {
                    r.get(0)
                })
                .map_err(err)?;
            if latest.and_then(|l| u64::try_from(l).ok()) != previous {
                return Ok(false);
            }
            tx.execute(
                &format!(
                    "INSERT INTO audit_checkpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![size, root, at_ms, heads, frontier, signed],
            )
            .map_err(err)?;
            tx.commit().map_err(err)?;
            Ok(true)
        })
        .await
    }

    async fn chain_heads(&self) -> Result<Vec<ChainHead>, StoreError> {
        self.blocking(|conn| {
            conn.prepare_cached(
                "SELECT e.chain, e.seq, e.hash FROM audit_events e \
                 JOIN (SELECT chain, max(seq) AS seq FROM audit_events GROUP BY chain) m \
                 ON e.chain = m.chain AND e.seq = m.seq ORDER BY e.chain",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(ChainHead {
                        chain: r.get(0)?,
                        seq: r.get(1)?,
                        hash: r.get(2)?,
                    })
                })?
                .collect()
            })
            .map_err(|e| from_sqlite("chain_heads", &e))
        })
        .await
    }
}
