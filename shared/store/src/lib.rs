//! Tamga's persistence: **stage results** (so that effects are applied once under
//! at-least-once delivery) and the **audit trail** (append-only, hash-chained per writer).
//!
//! One async trait, [`Store`], with two backends:
//!
//! * [`PgStore`] — PostgreSQL through a `deadpool-postgres` pool (production, integration
//!   tests). Migrations from `infra/postgres/migrations/` are embedded; the owner applies
//!   them ([`migrate_postgres`], `tamga migrate`) and the workers log in as `tamga_worker`,
//!   which may only `SELECT` and `INSERT` ([`StoreConfig::require_boundary`] refuses a
//!   login that could do more) — or, in the one-URL quick start, they are applied at
//!   connect and every pooled connection runs `SET ROLE tamga_app`, a seatbelt that
//!   `RESET ROLE` undoes.
//! * [`SqliteStore`] — SQLite (the embedded default), one connection behind a mutex, blocking
//!   calls run on `tokio::task::spawn_blocking`.
//!
//! # Effects once
//!
//! [`Store::record`] inserts `(declaration_id, stage) → result` with `ON CONFLICT DO NOTHING`.
//! The first caller gets [`Recorded::Inserted`] and its audit event is appended **in the same
//! transaction**; every later caller (a redelivery) gets [`Recorded::AlreadyPresent`] with the
//! bytes that were stored, re-emits them and never signs again.
//!
//! # The audit trail
//!
//! Events are grouped in **chains**, one per writer (`"verifier-1"`, `"verifier-1/3"`), so
//! many processes append at once without a global lock. Within a chain, appends are serialised
//! (PostgreSQL: a transaction-scoped advisory lock on the chain name; SQLite: the connection
//! mutex and `BEGIN IMMEDIATE`) in the transaction that reads the chain head, so `seq` runs
//! 1, 2, 3… without gaps even when transactions roll back. Each event stores the hash of its
//! predecessor (`prev_hash`, 64 zeros for seq 1) and its own [`event_hash`]. Triggers refuse
//! `UPDATE`, `DELETE` and `TRUNCATE`; [`Store::verify_chain`] recomputes everything and names
//! the first altered, removed or reordered event.
//!
//! What a hash chain cannot show by itself: the removal of the *newest* events of a chain
//! (or the rewrite of a whole chain by someone who can bypass the triggers). The signed
//! checkpoints ([`CheckpointStore`], `tamga-audit-log`) anchor every chain's head, and a
//! Merkle tree over all events, outside the database.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod callback;
mod checkpoints;
mod checks;
mod dashboard;
mod error;
mod gateway;
mod hash;
mod pages;
mod pg;
mod pg_batch;
mod sqlite;
mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use callback::{CallbackAttempt, CallbackState, CallbackStore};
pub use checkpoints::{CheckpointRow, CheckpointStore};
pub use checks::{ChecksQuery, ChecksStore, CrossingTimes, ScanBucket, CHECKED, MAX_PRIOR};
pub use error::StoreError;
pub use gateway::{
    declarations_events_pg, submitted_key, GatewayStore, ListFilter, Notification, Submission,
    SubmissionClaim, TokenOwner, SUBMITTED, UNSETTLED_PG as UNSETTLED_SWEEP_SQL,
};
pub use hash::{event_hash, GENESIS_HASH};
pub use pages::{
    CorridorBucket, DashboardQuery, DashboardRows, PageRole, PageTokenOwner, PagesStore,
    ReleaseTimes, DASHBOARD_STAGES,
};
pub use pg::{
    connect_postgres, migrate_postgres, Migration, PgStore, CHAIN_LOCK_NAMESPACE, CHECKPOINT_LOCK,
    CLAIM_LOCK_NAMESPACE, MIGRATIONS,
};
pub use sqlite::{open_sqlite, SqliteStore};
pub use verify::{verify_store, ChainVerifier};

/// The `stage` values the pipeline writes into audit events.
pub mod stage {
    /// A declaration was taken off the inbound queue.
    pub const RECEIVED: &str = "received";
    /// The foreign signature verified (`TOTAL_PASSED`).
    pub const VERIFIED: &str = "verified";
    /// The declaration was refused; a rejection receipt was issued.
    pub const REJECTED: &str = "rejected";
    /// The receiving authority counter-signed.
    pub const COUNTERSIGNED: &str = "countersigned";
    /// A signed receipt was issued.
    pub const RECEIPT_ISSUED: &str = "receipt_issued";
    /// The declaration was forwarded to the destination's customs.
    pub const FORWARDED: &str = "forwarded";
    /// The message was given up on and dead-lettered.
    pub const DEAD_LETTERED: &str = "dead_lettered";
    /// Every stage above, in pipeline order.
    pub const ALL: [&str; 7] = [
        RECEIVED,
        VERIFIED,
        REJECTED,
        COUNTERSIGNED,
        RECEIPT_ISSUED,
        FORWARDED,
        DEAD_LETTERED,
    ];
}

/// The `stage` under which [`Store::append_once`] keeps its marker rows in `stage_results`
/// (`declaration_id` = the key, `result` = empty).
pub const APPEND_ONCE_STAGE: &str = "audit_once";

/// Rows read per page by [`Store::verify_chain`].
pub const VERIFY_PAGE: usize = 2_000;

/// One thing that happened to one declaration, as the caller describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened, milliseconds since the Unix epoch (the caller's clock).
    pub at_ms: i64,
    /// One of [`stage`]'s values.
    pub stage: String,
    /// Which worker did it (host/process/task).
    pub worker: String,
    /// The declaration's identity (broker message id, else SHA-256 of the bytes).
    pub declaration_id: String,
    /// Declared origin country (ISO 3166 alpha-2).
    pub origin: String,
    /// Destination country (ISO 3166 alpha-2).
    pub destination: String,
    /// The ETSI indication or the stage's outcome (`TOTAL_PASSED`, `TOTAL_FAILED`, `ok`, …).
    pub outcome: String,
    /// ETSI sub-indication, when there is one.
    pub sub_indication: Option<String>,
    /// Tamga's stable reason code, when there is one.
    pub reason: Option<String>,
    /// SHA-256 (hex) of the bytes this event is about.
    pub digest: String,
    /// Free-form detail (JSON or a sentence).
    pub detail: Option<String>,
}

/// An event as stored: its place in its chain and its hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The writer's chain.
    pub chain: String,
    /// 1, 2, 3… within the chain.
    pub seq: i64,
    /// The previous event's `hash` ([`GENESIS_HASH`] for seq 1).
    pub prev_hash: String,
    /// [`event_hash`] of this event.
    pub hash: String,
    /// What happened.
    pub event: AuditEvent,
}

impl StoredEvent {
    /// The hash this event should have, recomputed from its fields.
    #[must_use]
    pub fn expected_hash(&self) -> String {
        event_hash(&self.chain, self.seq, &self.prev_hash, &self.event)
    }
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// First time: the result was stored and the audit event appended.
    Inserted,
    /// A redelivery: the result stored earlier (emit it again; do not recompute).
    AlreadyPresent(Vec<u8>),
}

/// One `(declaration_id, stage) → result` row for [`Store::record_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultRow<'a> {
    /// The declaration (or dedup key) the result belongs to.
    pub declaration_id: &'a str,
    /// Which step produced it.
    pub stage: &'a str,
    /// The stored bytes, re-emitted on a redelivery.
    pub result: &'a [u8],
}

/// An exclusive claim on a piece of work, taken with [`Store::claim`] before the work and
/// released by [`Claim::record_all`] (or by dropping it: nothing is recorded then).
///
/// This is what keeps two concurrent deliveries of one declaration — a redelivery racing
/// a slow first attempt, or two workers given the same bytes under two message ids — from
/// both signing: the second waits for the first's claim, then finds its result.
#[async_trait::async_trait]
pub trait Claim: Send {
    /// The results of the `lookup` keys given to [`Store::claim`], read once the claim was
    /// held, in the order asked.
    fn found(&self) -> &[Option<Vec<u8>>];

    /// Another result read under the claim.
    async fn stage_result(
        &mut self,
        declaration_id: &str,
        stage: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// [`Store::record_all`] under the claim, then releases it.
    async fn record_all(
        self: Box<Self>,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError>;
}

/// The newest event of one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// The chain's name.
    pub chain: String,
    /// Its highest seq.
    pub seq: i64,
    /// The stored hash of that event.
    pub hash: String,
}

/// What is wrong with a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The event's fields no longer hash to its stored hash.
    Altered,
    /// One or more seqs are missing.
    Removed,
    /// The event does not link to its predecessor (moved, forked, or the predecessor was
    /// rewritten together with its hash).
    Reordered,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Altered => "altered",
            Self::Removed => "removed",
            Self::Reordered => "reordered",
        })
    }
}

/// The first problem [`Store::verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProblem {
    /// The chain.
    pub chain: String,
    /// The seq at which the chain breaks (for [`ProblemKind::Removed`]: the first missing one).
    pub seq: i64,
    /// The declaration of the event at that seq (`None` when the event is missing).
    pub declaration_id: Option<String>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// One sentence for people.
    pub detail: String,
}

/// The outcome of [`Store::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChainReport {
    /// Events read.
    pub events: u64,
    /// Every chain's head, ordered by chain name (byte order).
    pub chains: Vec<ChainHead>,
    /// The first problem, if any.
    pub problem: Option<ChainProblem>,
}

impl ChainReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Stage results and the audit trail.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// The result stored for `(declaration_id, stage)`, if any.
    async fn stage_result(
        &self,
        declaration_id: &str,
        stage: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `result` for `(declaration_id, stage)` and appends `event` to `chain`, in one
    /// transaction — or, when a result is already stored, appends nothing and returns it.
    async fn record(
        &self,
        chain: &str,
        declaration_id: &str,
        stage: &str,
        result: &[u8],
        event: &AuditEvent,
    ) -> Result<Recorded, StoreError> {
        let claim = ResultRow {
            declaration_id,
            stage,
            result,
        };
        self.record_all(chain, claim, &[], std::slice::from_ref(event))
            .await
    }

    /// [`Store::record`] for a step that produces several rows and events at once (the
    /// fused stage): `claim` decides exactly as in `record`. When it is inserted, every row
    /// of `also` is inserted unless already present (its conflict is not an error: it is a
    /// secondary index such as "these bytes were first seen as declaration X"), and `events`
    /// are appended to `chain` in order — all in one transaction, so one commit (one WAL
    /// flush) instead of one per row.
    async fn record_all(
        &self,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError>;

    /// Claims `keys` exclusively (zero2prod's idempotency pattern, with a lock instead of a
    /// placeholder row so that a crashed holder cannot leave a claim behind): waits while
    /// another caller holds any of them, then reads the `lookup` results. Keys are taken in
    /// sorted order, so claims never deadlock one another. PostgreSQL: session advisory locks
    /// on one pooled connection, released with it if the process dies; SQLite: in-process
    /// locks (the embedded default is one process).
    async fn claim(
        &self,
        keys: &[&str],
        lookup: &[(&str, &str)],
    ) -> Result<Box<dyn Claim + '_>, StoreError>;

    /// The results stored for several `(declaration_id, stage)` keys, in the order asked
    /// (PostgreSQL: one round trip).
    async fn stage_results(
        &self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (id, stage) in keys {
            out.push(self.stage_result(id, stage).await?);
        }
        Ok(out)
    }

    /// Appends a standalone event. Not idempotent: when a retry is possible after an
    /// ambiguous failure (e.g. the connection dropped during commit), use
    /// [`Store::append_once`].
    async fn append(&self, chain: &str, event: &AuditEvent) -> Result<StoredEvent, StoreError>;

    /// Appends `event` unless an event was already appended under `key` (e.g.
    /// `"forwarded:<id>"`); the marker row (`declaration_id` = `key`, stage
    /// [`APPEND_ONCE_STAGE`]) is written in the same transaction. True when appended now.
    async fn append_once(
        &self,
        chain: &str,
        key: &str,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let marker = ResultRow {
            declaration_id: key,
            stage: APPEND_ONCE_STAGE,
            result: &[],
        };
        let recorded = self
            .record_all(chain, marker, &[], std::slice::from_ref(event))
            .await?;
        Ok(matches!(recorded, Recorded::Inserted))
    }

    /// Recomputes every chain (page by page) and reports the first problem.
    async fn verify_chain(&self) -> Result<ChainReport, StoreError>;

    /// Events ordered by (chain, seq), strictly after `after`, at most `limit`.
    async fn events(
        &self,
        after: Option<(String, i64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Number of events per stage.
    async fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError>;

    /// The signed checkpoints of the trail and the reads that make them, when the backend
    /// keeps them (PostgreSQL and SQLite both do).
    fn checkpoint_store(&self) -> Option<&dyn CheckpointStore> {
        None
    }
}

/// How to reach PostgreSQL.
#[derive(Clone)]
pub struct StoreConfig {
    /// `postgres://user[:password]@host:port/db` or `host=… user=… dbname=…`. With
    /// `migrate`, the user must be able to migrate (own the tables, create the roles).
    pub url: String,
    /// Role every pooled connection switches to (`SET ROLE`) after the migrations ran;
    /// `Some("tamga_app")` in production, `None` to stay the connecting user.
    pub app_role: Option<String>,
    /// Pool size.
    pub pool_size: usize,
    /// Longest wait for a free pooled connection.
    pub wait_timeout: Duration,
    /// Longest time to open a new connection (also the TCP connect timeout).
    pub create_timeout: Duration,
    /// Server-side `statement_timeout` on every pooled connection (and the lock waits it
    /// includes). Each store call also has a client-side deadline of
    /// `wait_timeout + create_timeout + 4 × statement_timeout`.
    pub statement_timeout: Duration,
    /// Apply the embedded migrations at connect, as the connecting user (the one-URL quick
    /// start). `false`: the owner applied them ([`migrate_postgres`], `tamga migrate`);
    /// connecting fails when one is missing or differs.
    pub migrate: bool,
    /// Refuse to connect when the login role could rewrite the audit trail — a superuser,
    /// the tables' owner, or a member of a role that may `UPDATE`, `DELETE` or `TRUNCATE`
    /// them (what `RESET ROLE` would regain). For workers that log in as `tamga_worker`.
    pub require_boundary: bool,
}

impl StoreConfig {
    /// Production defaults: role `tamga_app`, 8 connections, 5 s waits, 10 s statements.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            app_role: Some(pg::DEFAULT_APP_ROLE.to_owned()),
            pool_size: 8,
            wait_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            migrate: true,
            require_boundary: false,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &redact_url(&self.url))
            .field("app_role", &self.app_role)
            .field("pool_size", &self.pool_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("create_timeout", &self.create_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("migrate", &self.migrate)
            .field("require_boundary", &self.require_boundary)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs.
#[must_use]
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
        return url.to_owned();
    }
    // key=value form
    url.split_whitespace()
        .map(|kv| {
            if kv.to_ascii_lowercase().starts_with("password=") {
                "password=***".to_owned()
            } else {
                kv.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://tamga:s3cret@db:5432/tamga"),
            "postgres://tamga:***@db:5432/tamga"
        );
        assert_eq!(
            redact_url("postgres://tamga@db/tamga"),
            "postgres://tamga@db/tamga"
        );
        assert_eq!(
            redact_url("host=db user=tamga password=s3cret"),
            "host=db user=tamga password=***"
        );
        let cfg = StoreConfig::new("postgres://a:b@h/d");
        assert!(!format!("{cfg:?}").contains(":b@"));
    }
}
