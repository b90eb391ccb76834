//! The dashboard's figures from the hourly summary (`dashboard_hourly`,
//! `dashboard_release_hourly`: `infra/postgres/migrations/0009_dashboard_summary.sql`,
//! `sqlite_dashboard.sql`), with `audit_events` read only for the partial hours at the
//! edges of the range (and anything before the Unix epoch, which is not summarised).
//!
//! The figures are those of the query over the raw events
//! ([`PgStore::dashboard_from_events`], kept as the tests' oracle): the counts are counts,
//! and the release times are a histogram with 1 ms buckets, so the percentiles are computed
//! over the same values. Two cases the summary defines more simply than the raw query did:
//! a release is counted whatever the time between the range's end and the forwarding (the
//! raw query looked one day past the end), and a declaration with two `forwarded` events
//! (the pipeline appends one, with `append_once`) would count twice.

use std::collections::BTreeMap;

use crate::error::{from_pg, from_sqlite};
use crate::pages::{percentile, sqlite_sql, CorridorBucket, DashboardRows, ReleaseTimes};
use crate::{DashboardQuery, PgStore, SqliteStore, StoreError};

const HOUR_MS: i64 = 3_600_000;

/// The whole UTC hours `[start, end)` inside `[from, to)` that the summary answers for
/// (at or after the epoch); `(to, to)` when there are none. The rest of `[from, to)` —
/// `[from, start)` and `[end, to)` — is read from the events.
pub(crate) fn whole_hours(from: i64, to: i64) -> (i64, i64) {
    if to <= 0 {
        return (to, to);
    }
    let lo = from.max(0);
    let start = match lo % HOUR_MS {
        0 => Some(lo),
        r => lo.checked_add(HOUR_MS - r),
    };
    let end = to - to % HOUR_MS;
    match start {
        Some(start) if start < end => (start, end),
        _ => (to, to),
    }
}

/// `$1..$5` are the raw query's parameters; `$6`, `$7` the [`whole_hours`].
const CORRIDOR: &str = "($4::text IS NULL OR origin = $4::text) \
     AND ($5::text IS NULL OR destination = $5::text)";

/// The stages counted, from the summary for whole hours and from the events at the edges.
fn counts_sql() -> String {
    let edge = |range: &str| {
        format!(
            "SELECT origin, destination, (at_ms / $3) * $3, stage, reason, sub_indication, \
             count(*) FROM audit_events \
             WHERE stage IN ('received', 'countersigned', 'rejected', 'dead_lettered') \
             AND {range} AND {CORRIDOR} GROUP BY 1, 2, 3, 4, 5, 6"
        )
    };
    format!(
        "SELECT origin, destination, bucket, stage, reason, sub_indication, sum(n)::bigint \
         FROM (SELECT origin, destination, (hour_ms / $3) * $3 AS bucket, stage, reason, \
         sub_indication, events AS n FROM dashboard_hourly \
         WHERE hour_ms >= $6 AND hour_ms < $7 AND {CORRIDOR} \
         UNION ALL {} UNION ALL {}) c \
         GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 3, 1, 2, 4, 5, 6",
        edge("at_ms >= $1 AND at_ms < $6"),
        edge("at_ms >= $7 AND at_ms < $2")
    )
}

/// The release times of the declarations received at the edges, from the events, as the
/// trigger computes them (first `received` → each `forwarded`, when a `countersigned`
/// exists): (origin, destination, bucket, release_ms, n = 1). Each declaration's events
/// are looked up by `declaration_id` alone (a handful of rows).
const EDGE_RELEASES: &str = "SELECT f.origin, f.destination, (e.r / $3) * $3 AS bucket, \
     f.at_ms - e.r AS release_ms, 1 AS n \
     FROM (SELECT d.declaration_id, \
           (SELECT min(CASE WHEN x.stage = 'received' THEN x.at_ms END) FROM audit_events x \
            WHERE x.declaration_id = d.declaration_id) AS r, \
           (SELECT max(CASE WHEN x.stage = 'countersigned' THEN 1 ELSE 0 END) \
            FROM audit_events x WHERE x.declaration_id = d.declaration_id) AS accepted \
           FROM (SELECT declaration_id FROM audit_events \
                 WHERE stage = 'received' AND at_ms >= $1 AND at_ms < $6 \
                 UNION \
                 SELECT declaration_id FROM audit_events \
                 WHERE stage = 'received' AND at_ms >= $7 AND at_ms < $2) d) e \
     JOIN audit_events f ON f.declaration_id = e.declaration_id AND f.stage = 'forwarded' \
     WHERE e.accepted = 1 AND e.r >= $1 AND e.r < $2 AND NOT (e.r >= $6 AND e.r < $7) \
     AND ($4::text IS NULL OR f.origin = $4::text) \
     AND ($5::text IS NULL OR f.destination = $5::text)";

/// SQLite: every (origin, destination, bucket, release_ms, n): the summary's histogram
/// for the whole hours, then the edges.
fn release_values_sql() -> String {
    format!(
        "SELECT origin, destination, (hour_ms / $3) * $3, release_ms, declarations \
         FROM dashboard_release_hourly WHERE hour_ms >= $6 AND hour_ms < $7 AND {CORRIDOR} \
         UNION ALL {EDGE_RELEASES}"
    )
}

/// PostgreSQL: the same values as arrays, one row per hour and corridor (grouped in the
/// primary key's order: no sort) and per edge bucket. The percentiles are computed here,
/// as `percentile_cont` computes them ([`percentile`]): cheaper than sorting every value
/// on the server, and no `work_mem` to spill out of.
fn release_pg() -> String {
    format!(
        "SELECT origin, destination, (hour_ms / $3) * $3, array_agg(release_ms), \
         array_agg(declarations) FROM dashboard_release_hourly \
         WHERE hour_ms >= $6 AND hour_ms < $7 AND {CORRIDOR} \
         GROUP BY hour_ms, origin, destination \
         UNION ALL \
         SELECT origin, destination, bucket, array_agg(release_ms), array_agg(n::bigint) \
         FROM ({EDGE_RELEASES}) e GROUP BY 1, 2, 3"
    )
}

/// Release times per (bucket, origin, destination).
#[derive(Default)]
struct Releases(BTreeMap<(i64, String, String), Vec<i64>>);

impl Releases {
    /// `n` declarations released in `ms` (`n` > 0: a CHECK on the summary).
    fn add(&mut self, key: (i64, String, String), ms: i64, n: i64) {
        self.add_all(key, std::iter::once((ms, n)));
    }

    /// [`Releases::add`] for each `(ms, n)`.
    fn add_all(&mut self, key: (i64, String, String), values: impl Iterator<Item = (i64, i64)>) {
        let v = self.0.entry(key).or_default();
        for (ms, n) in values {
            v.extend(std::iter::repeat_n(ms, usize::try_from(n).unwrap_or(0)));
        }
    }

    /// The page's rows, in the raw query's order (bucket, origin, destination).
    fn times(self) -> Vec<ReleaseTimes> {
        self.0
            .into_iter()
            .map(|((bucket_ms, origin, destination), mut v)| {
                v.sort_unstable();
                ReleaseTimes {
                    origin,
                    destination,
                    bucket_ms,
                    count: i64::try_from(v.len()).unwrap_or(i64::MAX),
                    p50_ms: percentile(&v, 0.5),
                    p95_ms: percentile(&v, 0.95),
                }
            })
            .collect()
    }
}

fn count_row(row: &tokio_postgres::Row) -> Result<CorridorBucket, tokio_postgres::Error> {
    Ok(CorridorBucket {
        origin: row.try_get(0)?,
        destination: row.try_get(1)?,
        bucket_ms: row.try_get(2)?,
        stage: row.try_get(3)?,
        reason: row.try_get(4)?,
        sub_indication: row.try_get(5)?,
        count: row.try_get(6)?,
    })
}

impl PgStore {
    /// The dashboard's rows from the summary (see the module's documentation).
    pub(crate) async fn dashboard_summary(
        &self,
        q: &DashboardQuery,
    ) -> Result<DashboardRows, StoreError> {
        self.within("dashboard", async {
            let pg = |e: tokio_postgres::Error| from_pg("dashboard", &e);
            let (start, end) = whole_hours(q.from_ms, q.to_ms);
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                &q.from_ms,
                &q.to_ms,
                &q.bucket_ms,
                &q.origin,
                &q.destination,
                &start,
                &end,
            ];
            let client = self.client().await?;
            // Two connections: the two statements run in parallel on the server. Unnamed
            // statements, planned for these parameters each time: a cached generic plan
            // cannot tell a day from a month, and its estimates switched JIT on (+75 ms).
            let other = self.client().await?;
            let (counts, release) = (counts_sql(), release_pg());
            let (c, r) = tokio::try_join!(
                client.query(counts.as_str(), &args),
                other.query(release.as_str(), &args)
            )
            .map_err(pg)?;
            let mut releases = Releases::default();
            for row in &r {
                let key = (
                    row.try_get(2).map_err(pg)?,
                    row.try_get::<_, String>(0).map_err(pg)?,
                    row.try_get::<_, String>(1).map_err(pg)?,
                );
                let ms: Vec<i64> = row.try_get(3).map_err(pg)?;
                let n: Vec<i64> = row.try_get(4).map_err(pg)?;
                releases.add_all(key, ms.into_iter().zip(n));
            }
            Ok(DashboardRows {
                counts: c
                    .iter()
                    .map(count_row)
                    .collect::<Result<_, _>>()
                    .map_err(pg)?,
                release: releases.times(),
            })
        })
        .await
    }
}

impl SqliteStore {
    /// The dashboard's rows from the summary (see the module's documentation).
    pub(crate) async fn dashboard_summary(
        &self,
        q: &DashboardQuery,
    ) -> Result<DashboardRows, StoreError> {
        let q = q.clone();
        self.blocking(move |conn| {
            let err = |e: rusqlite::Error| from_sqlite("dashboard", &e);
            let (start, end) = whole_hours(q.from_ms, q.to_ms);
            let args = rusqlite::params![
                q.from_ms,
                q.to_ms,
                q.bucket_ms,
                q.origin,
                q.destination,
                start,
                end
            ];
            let counts = conn
                .prepare_cached(&sqlite_sql(&counts_sql()))
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
            let mut releases = Releases::default();
            let mut s = conn
                .prepare_cached(&sqlite_sql(&release_values_sql()))
                .map_err(err)?;
            let mut rows = s.query(args).map_err(err)?;
            while let Some(row) = rows.next().map_err(err)? {
                let key = (
                    row.get(2).map_err(err)?,
                    row.get(0).map_err(err)?,
                    row.get(1).map_err(err)?,
                );
                releases.add(key, row.get(3).map_err(err)?, row.get(4).map_err(err)?);
            }
            Ok(DashboardRows {
                counts,
                release: releases.times(),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_hours_inside_the_range() {
        const DAY: i64 = 24 * HOUR_MS;
        let t0 = 1_764_892_800_000; // a UTC midnight
        assert_eq!(whole_hours(t0, t0 + DAY), (t0, t0 + DAY));
        assert_eq!(
            whole_hours(t0 + 1, t0 + DAY - 1),
            (t0 + HOUR_MS, t0 + DAY - HOUR_MS)
        );
        // Less than one whole hour: all from the events.
        assert_eq!(
            whole_hours(t0 + 1, t0 + HOUR_MS + 5),
            (t0 + HOUR_MS + 5, t0 + HOUR_MS + 5)
        );
        assert_eq!(
            whole_hours(t0, t0 + HOUR_MS - 1),
            (t0 + HOUR_MS - 1, t0 + HOUR_MS - 1)
        );
        // Nothing before the epoch is summarised.
        assert_eq!(whole_hours(-5 * HOUR_MS - 7, 2 * HOUR_MS), (0, 2 * HOUR_MS));
        assert_eq!(whole_hours(-5 * HOUR_MS, -HOUR_MS), (-HOUR_MS, -HOUR_MS));
        // Empty or reversed ranges, and the ends of i64.
        assert_eq!(whole_hours(t0, t0), (t0, t0));
        assert_eq!(whole_hours(t0 + DAY, t0), (t0, t0));
        assert_eq!(whole_hours(i64::MAX - 5, i64::MAX), (i64::MAX, i64::MAX));
        assert_eq!(whole_hours(i64::MIN, i64::MAX).0, 0);
        assert_eq!(whole_hours(i64::MIN, i64::MIN), (i64::MIN, i64::MIN));
    }
}
