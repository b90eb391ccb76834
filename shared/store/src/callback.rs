//! What the gateway's push notifications keep: each broker's callback (URL and HMAC
//! secret; its latest row is in force) and every delivery attempt. The notifications
//! themselves are the outbox (`gateway_notifications`, ordered by `seq`); the cursor of a
//! callback is the `last_seq` of its latest delivered attempt, so nothing is lost across
//! restarts and a notification is delivered again only when its POST was not answered 2xx.
//!
//! PostgreSQL: `infra/postgres/migrations/0004_gateway_callbacks.sql`; SQLite:
//! `sqlite_gateway_callbacks.sql`.

use rusqlite::{params, OptionalExtension};

use crate::error::{from_pg, from_sqlite};
use crate::{PgStore, SqliteStore, StoreError};

/// A broker's callback in force, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackState {
    /// The configuration row (changes when the callback is set again).
    pub callback_seq: i64,
    pub broker: String,
    /// `None`: cleared.
    pub url: Option<String>,
    pub secret: Option<String>,
    pub created_at_ms: i64,
    /// Notifications with a larger `seq` are still to be delivered.
    pub cursor: i64,
    /// Notifications of the broker after the cursor.
    pub pending: i64,
    /// The latest delivered attempt.
    pub last_delivered_at_ms: Option<i64>,
    /// Failed attempts since the latest delivered one.
    pub failures_since_delivery: i64,
    /// The latest attempt, delivered or not.
    pub last_attempt: Option<CallbackAttempt>,
}

impl std::fmt::Display for CallbackState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        write!(
            f,
            "callback {} of {} at {:?}",
            self.callback_seq, self.broker, self.url
        )
    }
}

/// One POST of notifications `first_seq..=last_seq` to a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    pub first_seq: i64,
    pub last_seq: i64,
    pub at_ms: i64,
    /// The receiver answered 2xx.
    pub delivered: bool,
    pub http_status: Option<i32>,
    pub error: Option<String>,
}

/// The callback queries, on both backends.
#[async_trait::async_trait]
pub trait CallbackStore: Send + Sync {
    /// Sets (`Some((url, secret))`) or clears (`None`) `broker`'s callback. It delivers the
    /// notifications after `start_after` (`None`: after the broker's latest one).
    async fn set_callback(
        &self,
        broker: &str,
        target: Option<(&str, &str)>,
        start_after: Option<i64>,
        at_ms: i64,
    ) -> Result<CallbackState, StoreError>;

    /// `broker`'s latest callback row, with its state (`None`: never set).
    async fn callback_state(&self, broker: &str) -> Result<Option<CallbackState>, StoreError>;

    /// Every broker's callback in force (not cleared), with its state.
    async fn active_callbacks(&self) -> Result<Vec<CallbackState>, StoreError>;

    /// Records one attempt of callback `callback_seq`.
    async fn record_callback_attempt(
        &self,
        callback_seq: i64,
        attempt: &CallbackAttempt,
    ) -> Result<(), StoreError>;
}

const INSERT_CALLBACK: &str = "INSERT INTO gateway_callbacks \
     (broker, url, secret, start_after, created_at_ms) \
     VALUES ($1, $2, $3, COALESCE($5, (SELECT COALESCE(MAX(n.seq), 0) \
     FROM gateway_notifications n WHERE n.broker = $1)), $4) RETURNING seq";

const INSERT_ATTEMPT: &str = "INSERT INTO gateway_callback_attempts \
     (callback_seq, first_seq, last_seq, at_ms, delivered, http_status, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The state of the latest callback row of each broker (`$1`: one broker, or NULL for
/// all), `$2`: only those not cleared (1) or all (0).
const STATE: &str = "WITH latest AS ( \
       SELECT c.* FROM gateway_callbacks c \
       WHERE c.broker = COALESCE($1, c.broker) \
         AND c.seq = (SELECT MAX(c2.seq) FROM gateway_callbacks c2 WHERE c2.broker = c.broker) \
         AND ($2 = 0 OR c.url IS NOT NULL) \
     ), state AS ( \
       SELECT l.*, \
         (SELECT MAX(a.attempt) FROM gateway_callback_attempts a \
            WHERE a.callback_seq = l.seq AND a.delivered) AS delivered_attempt, \
         (SELECT MAX(a.attempt) FROM gateway_callback_attempts a \
            WHERE a.callback_seq = l.seq) AS last_attempt \
       FROM latest l \
     ) \
     SELECT s.seq, s.broker, s.url, s.secret, s.created_at_ms, \
       COALESCE(d.last_seq, s.start_after) AS cursor, \
       (SELECT COUNT(*) FROM gateway_notifications n WHERE n.broker = s.broker \
          AND n.seq > COALESCE(d.last_seq, s.start_after)) AS pending, \
       d.at_ms AS delivered_at, \
       (SELECT COUNT(*) FROM gateway_callback_attempts f WHERE f.callback_seq = s.seq \
          AND NOT f.delivered AND f.attempt > COALESCE(s.delivered_attempt, 0)) AS failures, \
       a.first_seq, a.last_seq, a.at_ms, a.delivered, a.http_status, a.error \
     FROM state s \
     LEFT JOIN gateway_callback_attempts d ON d.attempt = s.delivered_attempt \
     LEFT JOIN gateway_callback_attempts a ON a.attempt = s.last_attempt \
     ORDER BY s.broker";

fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

fn pg_state(r: &tokio_postgres::Row) -> Result<CallbackState, tokio_postgres::Error> {
    let last_at: Option<i64> = r.try_get(11)?;
    Ok(CallbackState {
        callback_seq: r.try_get(0)?,
        broker: r.try_get(1)?,
        url: r.try_get(2)?,
        secret: r.try_get(3)?,
        created_at_ms: r.try_get(4)?,
        cursor: r.try_get(5)?,
        pending: r.try_get(6)?,
        last_delivered_at_ms: r.try_get(7)?,
        failures_since_delivery: r.try_get(8)?,
        last_attempt: match last_at {
            Some(at_ms) => Some(CallbackAttempt {
                first_seq: r.try_get(9)?,
                last_seq: r.try_get(10)?,
                at_ms,
                delivered: r.try_get(12)?,
                http_status: r.try_get(13)?,
                error: r.try_get(14)?,
            }),
            None => None,
        },
    })
}

fn sqlite_state(r: &rusqlite::Row<'_>) -> rusqlite::Result<CallbackState> {
    let last_at: Option<i64> = r.get(11)?;
    Ok(CallbackState {
        callback_seq: r.get(0)?,
        broker: r.get(1)?,
        url: r.get(2)?,
        secret: r.get(3)?,
        created_at_ms: r.get(4)?,
        cursor: r.get(5)?,
        pending: r.get(6)?,
        last_delivered_at_ms: r.get(7)?,
        failures_since_delivery: r.get(8)?,
        last_attempt: match last_at {
            Some(at_ms) => Some(CallbackAttempt {
                first_seq: r.get(9)?,
                last_seq: r.get(10)?,
                at_ms,
                delivered: r.get(12)?,
                http_status: r.get(13)?,
                error: r.get(14)?,
            }),
            None => None,
        },
    })
}

#[async_trait::async_trait]
impl CallbackStore for PgStore {
    async fn set_callback(
        &self,
        broker: &str,
        target: Option<(&str, &str)>,
        start_after: Option<i64>,
        at_ms: i64,
    ) -> Result<CallbackState, StoreError> {
        let (url, secret) = target.map_or((None, None), |(u, s)| (Some(u), Some(s)));
        self.within("set_callback", async {
            let client = self.client().await?;
            client
                .query_one(
                    INSERT_CALLBACK,
                    &[&broker, &url, &secret, &at_ms, &start_after],
                )
                .await
                .map_err(|e| from_pg("set_callback", &e))?;
            Ok(())
        })
        .await?;
        self.callback_state(broker).await?.ok_or_else(|| {
            StoreError::Integrity("set_callback: the inserted row is not found".into())
        })
    }

    async fn callback_state(&self, broker: &str) -> Result<Option<CallbackState>, StoreError> {
        self.within("callback_state", async {
            let pg = |e: tokio_postgres::Error| from_pg("callback_state", &e);
            let client = self.client().await?;
            let stmt = client.prepare_cached(STATE).await.map_err(pg)?;
            let all = 0i32;
            client
                .query_opt(&stmt, &[&Some(broker), &all])
                .await
                .map_err(pg)?
                .map(|r| pg_state(&r).map_err(pg))
                .transpose()
        })
        .await
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackState>, StoreError> {
        self.within("active_callbacks", async {
            let pg = |e: tokio_postgres::Error| from_pg("active_callbacks", &e);
            let client = self.client().await?;
            let stmt = client.prepare_cached(STATE).await.map_err(pg)?;
            let active = 1i32;
            let rows = client
                .query(&stmt, &[&None::<&str>, &active])
                .await
                .map_err(pg)?;
            rows.iter().map(|r| pg_state(r).map_err(pg)).collect()
        })
        .await
    }

    async fn record_callback_attempt(
        &self,
        callback_seq: i64,
        a: &CallbackAttempt,
    ) -> Result<(), StoreError> {
        self.within("record_callback_attempt", async {
            let pg = |e: tokio_postgres::Error| from_pg("record_callback_attempt", &e);
            let client = self.client().await?;
            let stmt = client.prepare_cached(INSERT_ATTEMPT).await.map_err(pg)?;
            client
                .execute(
                    &stmt,
                    &[
                        &callback_seq,
                        &a.first_seq,
                        &a.last_seq,
                        &a.at_ms,
                        &a.delivered,
                        &a.http_status,
                        &a.error,
                    ],
                )
                .await
                .map_err(pg)?;
            Ok(())
        })
        .await
    }
}

#[async_trait::async_trait]
impl CallbackStore for SqliteStore {
    async fn set_callback(
        &self,
        broker: &str,
        target: Option<(&str, &str)>,
        start_after: Option<i64>,
        at_ms: i64,
    ) -> Result<CallbackState, StoreError> {
        let b = broker.to_owned();
        let (url, secret) = target.map_or((None, None), |(u, s)| {
            (Some(u.to_owned()), Some(s.to_owned()))
        });
        self.blocking(move |conn| {
            conn.prepare_cached(&sqlite_sql(INSERT_CALLBACK))
                .and_then(|mut s| {
                    s.query_row(params![b, url, secret, at_ms, start_after], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .map(|_| ())
                .map_err(|e| from_sqlite("set_callback", &e))
        })
        .await?;
        self.callback_state(broker).await?.ok_or_else(|| {
            StoreError::Integrity("set_callback: the inserted row is not found".into())
        })
    }

    async fn callback_state(&self, broker: &str) -> Result<Option<CallbackState>, StoreError> {
        let b = broker.to_owned();
        self.blocking(move |conn| {
            conn.prepare_cached(&sqlite_sql(STATE))
                .and_then(|mut s| s.query_row(params![b, 0], sqlite_state).optional())
                .map_err(|e| from_sqlite("callback_state", &e))
        })
        .await
    }

    async fn active_callbacks(&self) -> Result<Vec<CallbackState>, StoreError> {
        self.blocking(move |conn| {
            conn.prepare_cached(&sqlite_sql(STATE))
                .and_then(|mut s| {
                    s.query_map(params![None::<String>, 1], sqlite_state)?
                        .collect()
                })
                .map_err(|e| from_sqlite("active_callbacks", &e))
        })
        .await
    }

    async fn record_callback_attempt(
        &self,
        callback_seq: i64,
        a: &CallbackAttempt,
    ) -> Result<(), StoreError> {
        let a = a.clone();
        self.blocking(move |conn| {
            conn.prepare_cached(&sqlite_sql(INSERT_ATTEMPT))
                .and_then(|mut s| {
                    s.execute(params![
                        callback_seq,
                        a.first_seq,
                        a.last_seq,
                        a.at_ms,
                        a.delivered,
                        a.http_status,
                        a.error
                    ])
                })
                .map(|_| ())
                .map_err(|e| from_sqlite("record_callback_attempt", &e))
        })
        .await
    }
}
