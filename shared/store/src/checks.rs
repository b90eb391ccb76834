//! What the checkpoint reads: the earlier checks of one declaration (the repeat rule), and
//! the ministry dashboard's checkpoint panels — scans per checkpoint and day, repeated-scan
//! alerts, and the time from forwarding to the first scan per corridor (the border-crossing
//! part of the release time).
//!
//! A check is an ordinary audit event (stage `checked`, appended with the other events
//! through [`crate::Store`]); its checkpoint, officer and offline flag are in the event's
//! JSON `detail`. PostgreSQL: `infra/postgres/migrations/0006_checks.sql` (partial indexes
//! on the `checked` events); SQLite: `sqlite_checks.sql`.

use rusqlite::params;
use serde::Serialize;

use crate::error::{from_pg, from_sqlite};
use crate::{PagesStore, PgStore, SqliteStore, StoreError, StoredEvent};

/// The audit stage of a check.
pub const CHECKED: &str = "checked";

/// The dashboard's question about checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksQuery {
    /// Inclusive, ms since the Unix epoch.
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
    /// Bucket of the scan counts (a day or an hour), aligned on UTC.
    pub bucket_ms: i64,
    pub origin: Option<String>,
    pub destination: Option<String>,
}

/// Checks at one checkpoint in one bucket with one result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanBucket {
    pub bucket_ms: i64,
    pub checkpoint: String,
    /// `accepted`, `rejected`, `not_authentic`, `could_not_check`.
    pub result: String,
    pub offline: bool,
    /// Of which amber or flagged because already presented.
    pub repeated: i64,
    pub count: i64,
}

/// Forwarding → first scan of the accepted declarations forwarded in one corridor.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossingTimes {
    pub origin: String,
    pub destination: String,
    pub count: i64,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

/// Checks of a declaration read at most per call.
pub const MAX_PRIOR: usize = 1_000;

/// Days after the range in which a first scan still counts for a declaration forwarded in
/// it (trucks take days to reach the border).
const CROSSING_LOOKAHEAD_MS: i64 = 14 * 86_400_000;

/// The checkpoint's queries, on both backends.
#[async_trait::async_trait]
pub trait ChecksStore: PagesStore {
    /// The `checked` events of the declaration with this digest, oldest first, at most
    /// [`MAX_PRIOR`].
    async fn prior_checks(&self, digest: &str) -> Result<Vec<StoredEvent>, StoreError>;

    /// Checks per bucket, checkpoint, result and offline flag.
    async fn check_scans(&self, q: &ChecksQuery) -> Result<Vec<ScanBucket>, StoreError>;

    /// Checks flagged as already presented (reason `already_presented`), newest first, at
    /// most `limit`.
    async fn repeated_scans(
        &self,
        q: &ChecksQuery,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Per corridor: from the `forwarded` event of each accepted declaration forwarded in
    /// the range to its first `checked` event (within 14 days).
    async fn crossing_times(&self, q: &ChecksQuery) -> Result<Vec<CrossingTimes>, StoreError>;
}

fn events_sql(filter: &str) -> String {
    format!(
        "SELECT {} FROM audit_events WHERE stage = 'checked' AND {filter}",
        crate::pg::EVENT_COLUMNS
    )
}

const PRIOR: &str = "digest = $1 ORDER BY at_ms, chain, seq LIMIT $2";

const REPEATED: &str = "reason = 'already_presented' AND at_ms >= $1 AND at_ms < $2 \
     AND ($3::text IS NULL OR origin = $3::text) AND ($4::text IS NULL OR destination = $4::text) \
     ORDER BY at_ms DESC, chain, seq LIMIT $5";

const SCANS_PG: &str =
    "SELECT (at_ms / $3) * $3 AS bucket, detail::jsonb ->> 'checkpoint', outcome, \
     coalesce((detail::jsonb ->> 'offline')::boolean, false), \
     count(*) FILTER (WHERE reason = 'already_presented'), count(*) \
     FROM audit_events WHERE stage = 'checked' AND at_ms >= $1 AND at_ms < $2 \
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";

const SCANS_SQLITE: &str = "SELECT (at_ms / ?3) * ?3 AS bucket, \
     coalesce(json_extract(detail, '$.checkpoint'), ''), outcome, \
     coalesce(json_extract(detail, '$.offline'), 0) = 1, \
     sum(reason IS 'already_presented'), count(*) \
     FROM audit_events WHERE stage = 'checked' AND at_ms >= ?1 AND at_ms < ?2 \
     GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4";

/// The first check of each declaration checked in the range (and the look-ahead), joined
/// to its accepted `forwarded` event in the range: one row per declaration.
const CROSSING: &str = "WITH c AS (SELECT declaration_id, min(at_ms) AS s FROM audit_events \
     WHERE stage = 'checked' AND at_ms >= $1 AND at_ms < $2::bigint + $3::bigint \
     GROUP BY declaration_id) \
     SELECT f.origin, f.destination, c.s - min(f.at_ms) FROM c JOIN audit_events f \
     ON f.declaration_id = c.declaration_id AND f.stage = 'forwarded' AND f.outcome = 'accepted' \
     WHERE f.at_ms >= $1 AND f.at_ms < $2 \
     AND ($4::text IS NULL OR f.origin = $4::text) AND ($5::text IS NULL OR f.destination = $5::text) \
     GROUP BY f.origin, f.destination, c.declaration_id, c.s HAVING c.s >= min(f.at_ms) \
     ORDER BY 1, 2";

fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
        .replace("::text", "")
        .replace("::bigint", "")
}

fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Linearly interpolated percentile of sorted values (as PostgreSQL's `percentile_cont`).
fn percentile(sorted: &[i64], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let pos = p * last as f64;
    let (lo, hi) = (pos.floor() as usize, (pos.ceil() as usize).min(last));
    let (a, b) = (sorted[lo] as f64, sorted[hi] as f64);
    a + (b - a) * (pos - lo as f64)
}

impl PgStore {
    async fn checked_events(
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

impl SqliteStore {
    async fn checked_events(
        &self,
        what: &'static str,
        sql: String,
        args: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.blocking(move |conn| {
            conn.prepare_cached(&sql)
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

/// Per corridor: count and percentiles (as `percentile_cont`) of the durations.
fn crossing(rows: Vec<(String, String, i64)>) -> Vec<CrossingTimes> {
    let mut groups: std::collections::BTreeMap<(String, String), Vec<i64>> =
        std::collections::BTreeMap::new();
    for (o, d, ms) in rows {
        groups.entry((o, d)).or_default().push(ms);
    }
    groups
        .into_iter()
        .map(|((origin, destination), mut v)| {
            v.sort_unstable();
            CrossingTimes {
                origin,
                destination,
                count: limit_i64(v.len()),
                p50_ms: percentile(&v, 0.5),
                p95_ms: percentile(&v, 0.95),
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl ChecksStore for PgStore {
    async fn prior_checks(&self, digest: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.checked_events(
            "prior_checks",
            &events_sql(PRIOR),
            &[&digest, &limit_i64(MAX_PRIOR)],
        )
        .await
    }

    async fn check_scans(&self, q: &ChecksQuery) -> Result<Vec<ScanBucket>, StoreError> {
        self.within("check_scans", async {
            let pg = |e: tokio_postgres::Error| from_pg("check_scans", &e);
            let client = self.client().await?;
            let stmt = client.prepare_cached(SCANS_PG).await.map_err(pg)?;
            client
                .query(&stmt, &[&q.from_ms, &q.to_ms, &q.bucket_ms])
                .await
                .map_err(pg)?
                .iter()
                .map(|row| {
                    Ok(ScanBucket {
                        bucket_ms: row.try_get(0)?,
                        checkpoint: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                        result: row.try_get(2)?,
                        offline: row.try_get(3)?,
                        repeated: row.try_get(4)?,
                        count: row.try_get(5)?,
                    })
                })
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(pg)
        })
        .await
    }

    async fn repeated_scans(
        &self,
        q: &ChecksQuery,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.checked_events(
            "repeated_scans",
            &events_sql(REPEATED),
            &[
                &q.from_ms,
                &q.to_ms,
                &q.origin,
                &q.destination,
                &limit_i64(limit),
            ],
        )
        .await
    }

    async fn crossing_times(&self, q: &ChecksQuery) -> Result<Vec<CrossingTimes>, StoreError> {
        let rows = self
            .within("crossing_times", async {
                let pg = |e: tokio_postgres::Error| from_pg("crossing_times", &e);
                let client = self.client().await?;
                let stmt = client.prepare_cached(CROSSING).await.map_err(pg)?;
                client
                    .query(
                        &stmt,
                        &[
                            &q.from_ms,
                            &q.to_ms,
                            &CROSSING_LOOKAHEAD_MS,
                            &q.origin,
                            &q.destination,
                        ],
                    )
                    .await
                    .map_err(pg)?
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                    .map_err(pg)
            })
            .await?;
        Ok(crossing(rows))
    }
}

#[async_trait::async_trait]
impl ChecksStore for SqliteStore {
    async fn prior_checks(&self, digest: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.checked_events(
            "prior_checks",
            sqlite_sql(&events_sql(PRIOR)),
            vec![digest.to_owned().into(), limit_i64(MAX_PRIOR).into()],
        )
        .await
    }

    async fn check_scans(&self, q: &ChecksQuery) -> Result<Vec<ScanBucket>, StoreError> {
        let q = q.clone();
        self.blocking(move |conn| {
            conn.prepare_cached(SCANS_SQLITE)
                .and_then(|mut s| {
                    s.query_map(params![q.from_ms, q.to_ms, q.bucket_ms], |row| {
                        Ok(ScanBucket {
                            bucket_ms: row.get(0)?,
                            checkpoint: row.get(1)?,
                            result: row.get(2)?,
                            offline: row.get(3)?,
                            repeated: row.get(4)?,
                            count: row.get(5)?,
                        })
                    })?
                    .collect()
                })
                .map_err(|e| from_sqlite("check_scans", &e))
        })
        .await
    }

    async fn repeated_scans(
        &self,
        q: &ChecksQuery,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.checked_events(
            "repeated_scans",
            sqlite_sql(&events_sql(REPEATED)),
            vec![
                q.from_ms.into(),
                q.to_ms.into(),
                q.origin.clone().into(),
                q.destination.clone().into(),
                limit_i64(limit).into(),
            ],
        )
        .await
    }

    async fn crossing_times(&self, q: &ChecksQuery) -> Result<Vec<CrossingTimes>, StoreError> {
        let q = q.clone();
        let rows = self
            .blocking(move |conn| {
                conn.prepare_cached(&sqlite_sql(CROSSING))
                    .and_then(|mut s| {
                        s.query_map(
                            params![
                                q.from_ms,
                                q.to_ms,
                                CROSSING_LOOKAHEAD_MS,
                                q.origin,
                                q.destination
                            ],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )?
                        .collect()
                    })
                    .map_err(|e| from_sqlite("crossing_times", &e))
            })
            .await?;
        Ok(crossing(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_percentiles_per_corridor() {
        let rows = vec![
            ("KZ".to_string(), "AZ".to_string(), 1000),
            ("KZ".to_string(), "AZ".to_string(), 3000),
            ("TR".to_string(), "AZ".to_string(), 50),
        ];
        let c = crossing(rows);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].origin.as_str(), c[0].count), ("KZ", 2));
        assert_eq!(c[0].p50_ms, 2000.0);
        assert_eq!(c[1].p95_ms, 50.0);
        assert!(sqlite_sql(CROSSING).contains("?2 + ?3"));
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2.5);
    }
}
