//! What the pages (checkpoint, auditor, dashboard) read and keep: page tokens with a role
//! (separate from the brokers' API tokens), look-ups of any broker's declaration by id, LRN
//! or document digest, a declaration's events with their chain positions, a chain's range
//! for verification, and the dashboard's aggregates.
//!
//! PostgreSQL: `infra/postgres/migrations/0005_pages.sql`; SQLite: `sqlite_pages.sql`. The
//! dashboard reads the hourly summary (`dashboard.rs`, migration 0009).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use crate::error::{from_pg, from_sqlite};
use crate::{GatewayStore, PgStore, SqliteStore, StoreError, StoredEvent, Submission};

/// Who may open which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PageRole {
    /// Checkpoint officer: `/check`.
    Officer,
    /// Auditor: `/check`, `/declarations/{id}`, `/dashboard`.
    Auditor,
    /// Ministry analyst: `/dashboard`.
    Analyst,
}

impl PageRole {
    /// The name stored and given on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Officer => "officer",
            Self::Auditor => "auditor",
            Self::Analyst => "analyst",
        }
    }

    /// From [`PageRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "officer" => Some(Self::Officer),
            "auditor" => Some(Self::Auditor),
            "analyst" => Some(Self::Analyst),
            _ => None,
        }
    }
}

/// A valid page token's holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTokenOwner {
    pub holder: String,
    pub role: PageRole,
}

/// The dashboard's question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardQuery {
    /// Inclusive, ms since the Unix epoch.
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
    /// 3 600 000 (hour) or 86 400 000 (day): buckets aligned on UTC.
    pub bucket_ms: i64,
    pub origin: Option<String>,
    pub destination: Option<String>,
}

/// Events of one stage (and reason) in one corridor and bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CorridorBucket {
    pub origin: String,
    pub destination: String,
    pub bucket_ms: i64,
    /// `received`, `countersigned`, `rejected` or `dead_lettered`.
    pub stage: String,
    pub reason: Option<String>,
    pub sub_indication: Option<String>,
    pub count: i64,
}

/// Release time (received → forwarded) of the accepted declarations received in one
/// corridor and bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseTimes {
    pub origin: String,
    pub destination: String,
    pub bucket_ms: i64,
    pub count: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// The dashboard's rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DashboardRows {
    pub counts: Vec<CorridorBucket>,
    pub release: Vec<ReleaseTimes>,
}

/// The stages the dashboard counts.
pub const DASHBOARD_STAGES: [&str; 4] = ["received", "countersigned", "rejected", "dead_lettered"];

/// The pages' queries, on both backends.
#[async_trait::async_trait]
pub trait PagesStore: GatewayStore {
    /// Stores a new page token's hash.
    async fn create_page_token(
        &self,
        token_sha256: &str,
        holder: &str,
        role: PageRole,
        at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Revokes every page token of `holder`; returns how many were revoked now.
    async fn revoke_page_tokens(&self, holder: &str, at_ms: i64) -> Result<u64, StoreError>;

    /// The holder of an unrevoked page token, by its hash.
    async fn page_token(&self, token_sha256: &str) -> Result<Option<PageTokenOwner>, StoreError>;

    /// Any broker's published submission `id`.
    async fn submission_by_id(&self, id: &str) -> Result<Option<Submission>, StoreError>;

    /// Published submissions with this LRN (newest first), at most `limit`.
    async fn submissions_by_lrn(
        &self,
        lrn: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError>;

    /// Published submissions of these exact bytes (oldest first), at most `limit`.
    async fn submissions_by_digest(
        &self,
        sha256: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError>;

    /// Every event of `declaration_id` with its chain position, oldest first.
    async fn declaration_stored_events(
        &self,
        declaration_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Events `from_seq..=to_seq` of `chain`, in order, at most `limit`.
    async fn chain_range(
        &self,
        chain: &str,
        from_seq: i64,
        to_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The dashboard's aggregates.
    async fn dashboard(&self, q: &DashboardQuery) -> Result<DashboardRows, StoreError>;
}

const SUBMISSION_COLUMNS: &str =
    "broker, idempotency_key, id, body_sha256, origin, destination, lrn, created_at_ms";

/// Only submissions whose publication was confirmed (their `submitted` marker is stored).
const PUBLISHED: &str = "EXISTS (SELECT 1 FROM stage_results m WHERE m.declaration_id = \
     'submitted:' || gateway_submissions.id AND m.stage = 'audit_once')";

/// By LRN or id: newest first (the latest submission of an LRN). By digest: oldest first
/// (the first submission of the same bytes is the one the pipeline decided).
fn by(column: &str) -> String {
    let order = if column == "body_sha256" {
        "ASC"
    } else {
        "DESC"
    };
    format!(
        "SELECT {SUBMISSION_COLUMNS} FROM gateway_submissions WHERE {column} = $1 AND {PUBLISHED} \
         ORDER BY created_at_ms {order}, id LIMIT $2"
    )
}

fn events_sql(filter: &str) -> String {
    format!(
        "SELECT {} FROM audit_events WHERE {filter}",
        crate::pg::EVENT_COLUMNS
    )
}

const COUNTS: &str = "SELECT origin, destination, (at_ms / $3) * $3 AS bucket, stage, reason, \
     sub_indication, count(*) FROM audit_events \
     WHERE stage IN ('received', 'countersigned', 'rejected', 'dead_lettered') \
     AND at_ms >= $1 AND at_ms < $2 \
     AND ($4::text IS NULL OR origin = $4::text) AND ($5::text IS NULL OR destination = $5::text) \
     GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 3, 1, 2, 4";

/// Received → forwarded of accepted declarations (a `countersigned` event exists), in one
/// pass over the dashboard index: the three stages' events from the range (and a day after
/// it, for declarations forwarded later), grouped per declaration, then per corridor and
/// bucket. No join back to the table.
const RELEASE_PER_DECLARATION: &str =
    "SELECT min(origin) AS origin, min(destination) AS destination, \
     min(at_ms) FILTER (WHERE stage = 'received') AS r, \
     max(at_ms) FILTER (WHERE stage = 'forwarded') AS f, \
     bool_or(stage = 'countersigned') AS accepted \
     FROM audit_events WHERE stage IN ('received', 'countersigned', 'forwarded') \
     AND at_ms >= $1 AND at_ms < $2::bigint + 86400000 \
     AND ($4::text IS NULL OR origin = $4::text) AND ($5::text IS NULL OR destination = $5::text) \
     GROUP BY declaration_id";

fn release_pg() -> String {
    format!(
        "SELECT origin, destination, (r / $3) * $3 AS bucket, count(*), \
         percentile_cont(0.5) WITHIN GROUP (ORDER BY f - r), \
         percentile_cont(0.95) WITHIN GROUP (ORDER BY f - r) \
         FROM ({RELEASE_PER_DECLARATION}) d \
         WHERE accepted AND f IS NOT NULL AND r >= $1 AND r < $2 \
         GROUP BY 1, 2, 3 ORDER BY 3, 1, 2"
    )
}

fn release_sqlite() -> String {
    sqlite_sql(&format!(
        "SELECT origin, destination, (r / $3) * $3 AS bucket, f - r \
         FROM ({}) d \
         WHERE accepted AND f IS NOT NULL AND r >= $1 AND r < $2 ORDER BY 3, 1, 2",
        RELEASE_PER_DECLARATION
            .replace(
                "min(at_ms) FILTER (WHERE stage = 'received')",
                "min(CASE WHEN stage = 'received' THEN at_ms END)"
            )
            .replace(
                "max(at_ms) FILTER (WHERE stage = 'forwarded')",
                "max(CASE WHEN stage = 'forwarded' THEN at_ms END)"
            )
            .replace(
                "bool_or(stage = 'countersigned')",
                "max(stage = 'countersigned')"
            )
    ))
}

pub(crate) fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
        .replace("::text", "")
        .replace("::bigint", "")
}

/// Nearest-rank-interpolated percentile of sorted values (as `percentile_cont`).
pub(crate) fn percentile(sorted: &[i64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (sorted[lo] as f64, sorted[hi.min(sorted.len() - 1)] as f64);
    a + (b - a) * (pos - lo as f64)
}

fn pg_submission(row: &tokio_postgres::Row) -> Result<Submission, tokio_postgres::Error> {
    Ok(Submission {
        broker: row.try_get(0)?,
        idempotency_key: row.try_get(1)?,
        id: row.try_get(2)?,
        body_sha256: row.try_get(3)?,
        origin: row.try_get(4)?,
        destination: row.try_get(5)?,
        lrn: row.try_get(6)?,
        created_at_ms: row.try_get(7)?,
    })
}

fn sqlite_submission(row: &rusqlite::Row<'_>) -> rusqlite::Result<Submission> {
    Ok(Submission {
        broker: row.get(0)?,
        idempotency_key: row.get(1)?,
        id: row.get(2)?,
        body_sha256: row.get(3)?,
        origin: row.get(4)?,
        destination: row.get(5)?,
        lrn: row.get(6)?,
        created_at_ms: row.get(7)?,
    })
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl PgStore {
    async fn pg_submissions(
        &self,
        what: &'static str,
        sql: &str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError> {
        self.within(what, async {
            let pg = |e: tokio_postgres::Error| from_pg(what, &e);
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(pg)?;
            client
                .query(&stmt, &[&key, &limit_i64(limit)])
                .await
                .map_err(pg)?
                .iter()
                .map(|r| pg_submission(r).map_err(pg))
                .collect()
        })
        .await
    }

    async fn pg_events(
        &self,
        what: &'static str,
        sql: &str,
        args: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.within(what, async {
            let pg = |e: tokio_postgres::Error| from_pg(what, &e);
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(pg)?;
            client
                .query(&stmt, args)
                .await
                .map_err(pg)?
                .iter()
                .map(|r| crate::pg::stored_event(r).map_err(pg))
                .collect()
        })
        .await
    }
}

#[async_trait::async_trait]
impl PagesStore for PgStore {
    async fn create_page_token(
        &self,
        token_sha256: &str,
        holder: &str,
        role: PageRole,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.within("create_page_token", async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO page_tokens (token_sha256, holder, role, created_at_ms) \
                     VALUES ($1, $2, $3, $4)",
                    &[&token_sha256, &holder, &role.as_str(), &at_ms],
                )
                .await
                .map_err(|e| from_pg("create_page_token", &e))?;
            Ok(())
        })
        .await
    }

    async fn revoke_page_tokens(&self, holder: &str, at_ms: i64) -> Result<u64, StoreError> {
        self.within("revoke_page_tokens", async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO page_token_revocations (token_sha256, revoked_at_ms) \
                     SELECT token_sha256, $2 FROM page_tokens WHERE holder = $1 \
                     ON CONFLICT DO NOTHING",
                    &[&holder, &at_ms],
                )
                .await
                .map_err(|e| from_pg("revoke_page_tokens", &e))
        })
        .await
    }

    async fn page_token(&self, token_sha256: &str) -> Result<Option<PageTokenOwner>, StoreError> {
        self.within("page_token", async {
            let pg = |e: tokio_postgres::Error| from_pg("page_token", &e);
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "SELECT t.holder, t.role FROM page_tokens t WHERE t.token_sha256 = $1 \
                     AND NOT EXISTS (SELECT 1 FROM page_token_revocations r \
                     WHERE r.token_sha256 = t.token_sha256)",
                )
                .await
                .map_err(pg)?;
            match client
                .query_opt(&stmt, &[&token_sha256])
                .await
                .map_err(pg)?
            {
                Some(row) => {
                    let role: String = row.try_get(1).map_err(pg)?;
                    Ok(PageRole::parse(&role).map(|role| PageTokenOwner {
                        holder: row.try_get(0).unwrap_or_default(),
                        role,
                    }))
                }
                None => Ok(None),
            }
        })
        .await
    }

    async fn submission_by_id(&self, id: &str) -> Result<Option<Submission>, StoreError> {
        Ok(self
            .pg_submissions("submission_by_id", &by("id"), id, 1)
            .await?
            .into_iter()
            .next())
    }

    async fn submissions_by_lrn(
        &self,
        lrn: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError> {
        self.pg_submissions("submissions_by_lrn", &by("lrn"), lrn, limit)
            .await
    }

    async fn submissions_by_digest(
        &self,
        sha256: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError> {
        self.pg_submissions("submissions_by_digest", &by("body_sha256"), sha256, limit)
            .await
    }

    async fn declaration_stored_events(
        &self,
        declaration_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.pg_events(
            "declaration_stored_events",
            &events_sql("declaration_id = $1 ORDER BY at_ms, chain, seq"),
            &[&declaration_id],
        )
        .await
    }

    async fn chain_range(
        &self,
        chain: &str,
        from_seq: i64,
        to_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.pg_events(
            "chain_range",
            &events_sql("chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4"),
            &[&chain, &from_seq, &to_seq, &limit_i64(limit)],
        )
        .await
    }

    async fn dashboard(&self, q: &DashboardQuery) -> Result<DashboardRows, StoreError> {
        self.dashboard_summary(q).await
    }
}

impl PgStore {
    /// The dashboard's rows computed from the raw events, as before the hourly summary
    /// (`crate::dashboard`): slow on a large trail, kept as the oracle the tests compare
    /// the summary with.
    #[doc(hidden)]
    pub async fn dashboard_from_events(
        &self,
        q: &DashboardQuery,
    ) -> Result<DashboardRows, StoreError> {
        self.within("dashboard", async {
            let pg = |e: tokio_postgres::Error| from_pg("dashboard", &e);
            let client = self.client().await?;
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
                &q.from_ms,
                &q.to_ms,
                &q.bucket_ms,
                &q.origin,
                &q.destination,
            ];
            let counts = client.prepare_cached(COUNTS).await.map_err(pg)?;
            // Two connections: the two statements run in parallel on the server.
            let other = self.client().await?;
            let release = other.prepare_cached(&release_pg()).await.map_err(pg)?;
            let (c, r) =
                tokio::try_join!(client.query(&counts, &args), other.query(&release, &args))
                    .map_err(pg)?;
            let counts = c
                .iter()
                .map(|row| {
                    Ok(CorridorBucket {
                        origin: row.try_get(0)?,
                        destination: row.try_get(1)?,
                        bucket_ms: row.try_get(2)?,
                        stage: row.try_get(3)?,
                        reason: row.try_get(4)?,
                        sub_indication: row.try_get(5)?,
                        count: row.try_get(6)?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(pg)?;
            let release = r
                .iter()
                .map(|row| {
                    Ok(ReleaseTimes {
                        origin: row.try_get(0)?,
                        destination: row.try_get(1)?,
                        bucket_ms: row.try_get(2)?,
                        count: row.try_get(3)?,
                        p50_ms: row.try_get(4)?,
                        p95_ms: row.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(pg)?;
            Ok(DashboardRows { counts, release })
        })
        .await
    }
}

impl SqliteStore {
    async fn sqlite_submissions(
        &self,
        what: &'static str,
        column: &'static str,
        key: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError> {
        let key = key.to_owned();
        self.blocking(move |conn| {
            conn.prepare_cached(&sqlite_sql(&by(column)))
                .and_then(|mut s| {
                    s.query_map(params![key, limit_i64(limit)], sqlite_submission)?
                        .collect()
                })
                .map_err(|e| from_sqlite(what, &e))
        })
        .await
    }

    async fn sqlite_events(
        &self,
        what: &'static str,
        filter: &'static str,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.blocking(move |conn| {
            conn.prepare_cached(&sqlite_sql(&events_sql(filter)))
                .and_then(|mut s| {
                    s.query_map(rusqlite::params_from_iter(args), |row| {
                        crate::sqlite::stored_event(row)
                    })?
                    .collect()
                })
                .map_err(|e| from_sqlite(what, &e))
        })
        .await
    }
}

#[async_trait::async_trait]
impl PagesStore for SqliteStore {
    async fn create_page_token(
        &self,
        token_sha256: &str,
        holder: &str,
        role: PageRole,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let (t, h) = (token_sha256.to_owned(), holder.to_owned());
        self.blocking(move |conn| {
            conn.execute(
                "INSERT INTO page_tokens (token_sha256, holder, role, created_at_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![t, h, role.as_str(), at_ms],
            )
            .map(|_| ())
            .map_err(|e| from_sqlite("create_page_token", &e))
        })
        .await
    }

    async fn revoke_page_tokens(&self, holder: &str, at_ms: i64) -> Result<u64, StoreError> {
        let h = holder.to_owned();
        self.blocking(move |conn| {
            conn.execute(
                "INSERT INTO page_token_revocations (token_sha256, revoked_at_ms) \
                 SELECT token_sha256, ?2 FROM page_tokens WHERE holder = ?1 \
                 ON CONFLICT DO NOTHING",
                params![h, at_ms],
            )
            .map(|n| n as u64)
            .map_err(|e| from_sqlite("revoke_page_tokens", &e))
        })
        .await
    }

    async fn page_token(&self, token_sha256: &str) -> Result<Option<PageTokenOwner>, StoreError> {
        let t = token_sha256.to_owned();
        self.blocking(move |conn| {
            conn.prepare_cached(
                "SELECT t.holder, t.role FROM page_tokens t WHERE t.token_sha256 = ?1 \
                 AND NOT EXISTS (SELECT 1 FROM page_token_revocations r \
                 WHERE r.token_sha256 = t.token_sha256)",
            )
            .and_then(|mut s| {
                s.query_row(params![t], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .optional()
            })
            .map(|o| {
                o.and_then(|(holder, role)| {
                    PageRole::parse(&role).map(|role| PageTokenOwner { holder, role })
                })
            })
            .map_err(|e| from_sqlite("page_token", &e))
        })
        .await
    }

    async fn submission_by_id(&self, id: &str) -> Result<Option<Submission>, StoreError> {
        Ok(self
            .sqlite_submissions("submission_by_id", "id", id, 1)
            .await?
            .into_iter()
            .next())
    }

    async fn submissions_by_lrn(
        &self,
        lrn: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError> {
        self.sqlite_submissions("submissions_by_lrn", "lrn", lrn, limit)
            .await
    }

    async fn submissions_by_digest(
        &self,
        sha256: &str,
        limit: usize,
    ) -> Result<Vec<Submission>, StoreError> {
        self.sqlite_submissions("submissions_by_digest", "body_sha256", sha256, limit)
            .await
    }

    async fn declaration_stored_events(
        &self,
        declaration_id: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.sqlite_events(
            "declaration_stored_events",
            "declaration_id = $1 ORDER BY at_ms, chain, seq",
            vec![declaration_id.to_owned().into()],
        )
        .await
    }

    async fn chain_range(
        &self,
        chain: &str,
        from_seq: i64,
        to_seq: i64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.sqlite_events(
            "chain_range",
            "chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4",
            vec![
                chain.to_owned().into(),
                from_seq.into(),
                to_seq.into(),
                limit_i64(limit).into(),
            ],
        )
        .await
    }

    async fn dashboard(&self, q: &DashboardQuery) -> Result<DashboardRows, StoreError> {
        self.dashboard_summary(q).await
    }
}

impl SqliteStore {
    /// As [`PgStore::dashboard_from_events`]: the oracle of the summary's tests.
    #[doc(hidden)]
    pub async fn dashboard_from_events(
        &self,
        q: &DashboardQuery,
    ) -> Result<DashboardRows, StoreError> {
        let q = q.clone();
        self.blocking(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("dashboard", &e);
            let args = params![q.from_ms, q.to_ms, q.bucket_ms, q.origin, q.destination];
            let counts = conn
                .prepare_cached(&sqlite_sql(COUNTS))
                .and_then(|mut s| {
                    s.query_map(args, |row| {
                        Ok(CorridorBucket {
                            origin: row.get(0)?,
                            destination: row.get(1)?,
                            bucket_ms: row.get(2)?,
                            stage: row.get(3)?,
                            reason: row.get(4)?,
                            sub_indication: row.get(5)?,
                            count: row.get(6)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(err)?;
            let durations = conn
                .prepare_cached(&release_sqlite())
                .and_then(|mut s| {
                    s.query_map(args, |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(err)?;
            let mut groups: std::collections::BTreeMap<(i64, String, String), Vec<i64>> =
                std::collections::BTreeMap::new();
            for (o, d, b, ms) in durations {
                groups.entry((b, o, d)).or_default().push(ms);
            }
            let release = groups
                .into_iter()
                .map(|((bucket_ms, origin, destination), mut v)| {
                    v.sort_unstable();
                    ReleaseTimes {
                        origin,
                        destination,
                        bucket_ms,
                        count: limit_i64(v.len()),
                        p50_ms: percentile(&v, 0.5),
                        p95_ms: percentile(&v, 0.95),
                    }
                })
                .collect();
            Ok(DashboardRows { counts, release })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_as_postgres() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[10], 0.95), 10.0);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2.5);
        assert!((percentile(&[0, 100], 0.95) - 95.0).abs() < 1e-9);
        assert_eq!(sqlite_sql("a = $1::text"), "a = ?1");
        assert_eq!(PageRole::parse("auditor"), Some(PageRole::Auditor));
        assert_eq!(PageRole::parse("broker"), None);
    }
}
