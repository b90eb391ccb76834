//! The PostgreSQL backend.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use deadpool_postgres::{
    GenericClient, Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime,
};
use tokio_postgres::{NoTls, Row};

use crate::error::{from_pg, from_pool};
use crate::pg_batch::Committer;
use crate::{
    event_hash, redact_url, verify, AuditEvent, ChainReport, Claim, Recorded, ResultRow, Store,
    StoreConfig, StoreError, StoredEvent, GENESIS_HASH, VERIFY_PAGE,
};

/// The role the migrations create and grant `SELECT, INSERT` to.
pub(crate) const DEFAULT_APP_ROLE: &str = "tamga_app";

/// First key of the two-key advisory lock that serialises appends to one chain:
/// `pg_advisory_xact_lock(CHAIN_LOCK_NAMESPACE, hashtext(chain))` ("TAMG"). The two-key
/// space does not overlap the one-key space used by the migration lock.
pub const CHAIN_LOCK_NAMESPACE: i32 = 0x5441_4D47;

/// First key of the two-key session advisory lock behind [`Store::claim`]:
/// `pg_advisory_lock(CLAIM_LOCK_NAMESPACE, hashtext(key))` ("TMCL").
pub const CLAIM_LOCK_NAMESPACE: i32 = 0x544D_434C;

/// One-key advisory lock held while migrating ("TAMGMIGR").
const MIGRATION_LOCK: i64 = 0x5441_4D47_4D49_4752;

/// One-key advisory lock held while a checkpoint is inserted ("TAMGCKPT"), so that two
/// checkpointers never both extend the same tree.
pub const CHECKPOINT_LOCK: i64 = 0x5441_4D47_434B_5054;

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number (the file name's prefix).
    pub version: i64,
    /// The file name without `.sql`.
    pub name: &'static str,
    /// The SQL, run as one batch.
    pub sql: &'static str,
}

/// The migrations in `infra/postgres/migrations/`, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_audit",
        sql: include_str!("../../../infra/postgres/migrations/0001_audit.sql"),
    },
    Migration {
        version: 2,
        name: "0002_result_compression",
        sql: include_str!("../../../infra/postgres/migrations/0002_result_compression.sql"),
    },
    Migration {
        version: 3,
        name: "0003_gateway",
        sql: include_str!("../../../infra/postgres/migrations/0003_gateway.sql"),
    },
    Migration {
        version: 4,
        name: "0004_gateway_callbacks",
        sql: include_str!("../../../infra/postgres/migrations/0004_gateway_callbacks.sql"),
    },
    Migration {
        version: 5,
        name: "0005_pages",
        sql: include_str!("../../../infra/postgres/migrations/0005_pages.sql"),
    },
    Migration {
        version: 6,
        name: "0006_checks",
        sql: include_str!("../../../infra/postgres/migrations/0006_checks.sql"),
    },
    Migration {
        version: 7,
        name: "0007_audit_checkpoints",
        sql: include_str!("../../../infra/postgres/migrations/0007_audit_checkpoints.sql"),
    },
    Migration {
        version: 8,
        name: "0008_login_roles",
        sql: include_str!("../../../infra/postgres/migrations/0008_login_roles.sql"),
    },
    Migration {
        version: 9,
        name: "0009_dashboard_summary",
        sql: include_str!("../../../infra/postgres/migrations/0009_dashboard_summary.sql"),
    },
    Migration {
        version: 10,
        name: "0010_gateway_notifier",
        sql: include_str!("../../../infra/postgres/migrations/0010_gateway_notifier.sql"),
    },
];

pub(crate) const EVENT_COLUMNS: &str =
    "chain, seq, prev_hash, hash, at_ms, stage, worker, declaration_id, \
     origin, destination, outcome, sub_indication, reason, digest, detail";

/// The PostgreSQL store: a connection pool whose connections have a `statement_timeout`
/// and (when configured) run as the application role.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The group committer's own connections (see `pg_batch.rs`); opened lazily.
    batch_pool: Pool,
    deadline: Duration,
    committer: Option<Committer>,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore")
            .field("pool", &self.pool.status())
            .field("deadline", &self.deadline)
            .field("group_commit", &self.committer.is_some())
            .finish()
    }
}

/// Creates the pool and makes every pooled connection set its `statement_timeout` and
/// `SET ROLE` to `cfg.app_role`. With `cfg.migrate` the embedded migrations are applied
/// first, as the connecting user; without, the schema must already be current. With
/// `cfg.require_boundary` the login must not be able to rewrite the trail. One connection
/// is opened before returning, so a missing role or an unreachable server is reported
/// here ([`StoreError::Unavailable`] for the latter).
pub async fn connect_postgres(cfg: &StoreConfig) -> Result<PgStore, StoreError> {
    let pg = pg_config(cfg)?;
    if cfg.migrate {
        migrate(&pg, cfg).await?;
    }

    let deadline = cfg.wait_timeout + cfg.create_timeout + cfg.statement_timeout * 4;
    let setup: Arc<str> = session_setup(cfg, deadline).into();
    let make_pool = |size: usize| {
        let setup = Arc::clone(&setup);
        let manager = Manager::from_config(
            pg.clone(),
            NoTls,
            ManagerConfig {
                // `Verified` runs an empty query before handing a pooled connection out
                // again, so a connection the server closed is dropped instead of failing a
                // call. (`Clean` would RESET the role.)
                recycling_method: RecyclingMethod::Verified,
            },
        );
        Pool::builder(manager)
            .max_size(size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(cfg.wait_timeout))
            .create_timeout(Some(cfg.create_timeout))
            .recycle_timeout(Some(cfg.statement_timeout))
            .post_create(Hook::async_fn(move |client, _| {
                let setup = Arc::clone(&setup);
                Box::pin(async move {
                    client
                        .batch_execute(&setup)
                        .await
                        .map_err(HookError::Backend)
                })
            }))
            .build()
            .map_err(|e| StoreError::Other(format!("PostgreSQL pool: {e}")))
    };
    let pool = make_pool(cfg.pool_size)?;
    // One committer, one connection in use at a time; a second for reconnecting while
    // the first is being dropped.
    let batch_pool = make_pool(2)?;
    let store = PgStore {
        pool,
        batch_pool,
        deadline,
        committer: None,
    };
    let role = store.current_role().await?;
    if !cfg.migrate {
        store.check_schema().await?;
    }
    if cfg.require_boundary {
        store.check_boundary().await?;
    }
    tracing::info!(
        url = %redact_url(&cfg.url),
        role = %role,
        pool_size = cfg.pool_size,
        "PostgreSQL store ready"
    );
    Ok(store)
}

/// Applies the missing embedded migrations as `cfg.url`'s user — the schema's owner — and
/// returns the names of those applied now (`tamga migrate`). `cfg.migrate` is not read.
pub async fn migrate_postgres(cfg: &StoreConfig) -> Result<Vec<&'static str>, StoreError> {
    let pg = pg_config(cfg)?;
    migrate(&pg, cfg).await
}

/// The connection settings of `cfg`, checked.
fn pg_config(cfg: &StoreConfig) -> Result<tokio_postgres::Config, StoreError> {
    if cfg.pool_size == 0
        || cfg.wait_timeout.is_zero()
        || cfg.create_timeout.is_zero()
        || cfg.statement_timeout.is_zero()
    {
        return Err(StoreError::Other(
            "invalid store configuration: pool_size and every timeout must be > 0".into(),
        ));
    }
    let mut pg: tokio_postgres::Config = cfg.url.parse().map_err(|e| {
        StoreError::Other(format!(
            "invalid PostgreSQL URL {}: {e}",
            redact_url(&cfg.url)
        ))
    })?;
    pg.connect_timeout(cfg.create_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if pg.get_application_name().is_none() {
        pg.application_name("tamga");
    }
    Ok(pg)
}

/// The SQL each new pooled connection runs once.
fn session_setup(cfg: &StoreConfig, deadline: Duration) -> String {
    // `jit = off`: every statement here is a short one. PostgreSQL JIT-compiles any plan
    // whose estimate passes `jit_above_cost`, and on tables not yet analysed a key probe
    // repeated per array element is estimated far above it: 120 ms of compiling for a
    // 4 ms query, measured on the notifier's batched read of events.
    let mut sql = format!(
        "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}; SET jit = off;",
        cfg.statement_timeout.as_millis(),
        deadline.as_millis()
    );
    if let Some(role) = &cfg.app_role {
        sql.push_str(&format!(" SET ROLE {};", quote_ident(role)));
    }
    sql
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn sha256_hex(s: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, s.as_bytes()).as_ref())
}

/// Applies the missing embedded migrations on a dedicated connection (as the connecting
/// user), in one transaction under an advisory lock, bounded in time; returns those applied.
async fn migrate(
    pg: &tokio_postgres::Config,
    cfg: &StoreConfig,
) -> Result<Vec<&'static str>, StoreError> {
    let statement_timeout = cfg.statement_timeout.max(Duration::from_secs(60));
    let deadline = cfg.create_timeout + statement_timeout * 2;
    let run = async {
        let (mut client, connection) = pg
            .connect(NoTls)
            .await
            .map_err(|e| from_pg("PostgreSQL connect", &e))?;
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "migration connection ended");
            }
        });
        let result = apply_migrations(&mut client, statement_timeout).await;
        drop(client);
        let _ = task.await;
        result
    };
    tokio::time::timeout(deadline, run).await.map_err(|_| {
        StoreError::Unavailable(format!(
            "PostgreSQL migration did not finish within {deadline:?}"
        ))
    })?
}

async fn apply_migrations(
    client: &mut tokio_postgres::Client,
    statement_timeout: Duration,
) -> Result<Vec<&'static str>, StoreError> {
    let migration_err = |what: String, e: &tokio_postgres::Error| {
        let err = from_pg(&what, e);
        if err.is_transient() {
            err
        } else {
            StoreError::Migration(err.to_string())
        }
    };
    client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            statement_timeout.as_millis()
        ))
        .await
        .map_err(|e| from_pg("PostgreSQL session set-up", &e))?;
    let tx = client
        .transaction()
        .await
        .map_err(|e| from_pg("begin migration", &e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| migration_err("migration lock".into(), &e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS tamga_schema_migrations (
             version    BIGINT      PRIMARY KEY,
             name       TEXT        NOT NULL,
             sha256     TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         );
         REVOKE ALL ON tamga_schema_migrations FROM PUBLIC;",
    )
    .await
    .map_err(|e| migration_err("create tamga_schema_migrations".into(), &e))?;
    let mut applied = BTreeMap::new();
    for row in tx
        .query(
            "SELECT version, name, sha256 FROM tamga_schema_migrations",
            &[],
        )
        .await
        .map_err(|e| migration_err("read tamga_schema_migrations".into(), &e))?
    {
        let version: i64 = row
            .try_get(0)
            .map_err(|e| migration_err("version".into(), &e))?;
        let name: String = row
            .try_get(1)
            .map_err(|e| migration_err("name".into(), &e))?;
        let sha: String = row
            .try_get(2)
            .map_err(|e| migration_err("sha256".into(), &e))?;
        applied.insert(version, (name, sha));
    }
    let mut done = Vec::new();
    for m in MIGRATIONS {
        let sha = sha256_hex(m.sql);
        if let Some((name, applied_sha)) = applied.remove(&m.version) {
            if applied_sha != sha {
                return Err(StoreError::Migration(format!(
                    "migration {} ({name}) was applied with SHA-256 {applied_sha}, but the \
                     embedded {}.sql has {sha}: applied migrations must never change",
                    m.version, m.name
                )));
            }
            continue;
        }
        tx.batch_execute(m.sql)
            .await
            .map_err(|e| migration_err(format!("migration {}", m.name), &e))?;
        tx.execute(
            "INSERT INTO tamga_schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &sha],
        )
        .await
        .map_err(|e| migration_err(format!("record migration {}", m.name), &e))?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        done.push(m.name);
    }
    for (version, (name, _)) in &applied {
        tracing::warn!(
            version,
            name = %name,
            "the database has a migration this build does not know (a newer build migrated it)"
        );
    }
    tx.commit()
        .await
        .map_err(|e| migration_err("commit migration".into(), &e))?;
    Ok(done)
}

impl PgStore {
    /// Turns on group commit (`pg_batch.rs`): every `record_all` and `append_once` —
    /// and a claim's final record — goes through one committer that writes up to
    /// `max_batch` callers' rows in one transaction. `0` leaves it off. Needs a Tokio
    /// runtime (the committer is a task).
    #[must_use]
    pub fn with_group_commit(mut self, max_batch: usize) -> Self {
        self.committer = (max_batch > 0)
            .then(|| Committer::start(self.batch_pool.clone(), max_batch, self.deadline));
        self
    }

    /// Group commit through `other`'s committer (off if `other`'s is): two stores of one
    /// process — the gateway's and its workers', each with its own pool so that neither
    /// waits for the other's connections — whose writes share transactions and flushes.
    #[must_use]
    pub fn sharing_group_commit(mut self, other: &PgStore) -> Self {
        self.committer = other.committer.clone();
        self
    }

    /// The group committer, when on.
    pub(crate) fn committer(&self) -> Option<&Committer> {
        self.committer.as_ref()
    }

    /// Group commit so far: (transactions, records they carried); `None` when off.
    pub fn group_commit_stats(&self) -> Option<(u64, u64)> {
        self.committer.as_ref().map(Committer::stats)
    }

    /// Runs `fut` under the client-side deadline (a pooled connection can be stuck on a
    /// dead peer longer than any server-side timeout).
    pub(crate) async fn within<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.deadline, fut).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "{what}: no answer from PostgreSQL within {:?}",
                self.deadline
            ))),
        }
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| from_pool(&e))
    }

    /// The role the pooled connections run as (`current_user`): `tamga_app` when
    /// `app_role` is set. Also a cheap health check.
    pub async fn current_role(&self) -> Result<String, StoreError> {
        self.within("current_role", async {
            let client = self.client().await?;
            let row = client
                .query_one("SELECT current_user::text", &[])
                .await
                .map_err(|e| from_pg("current_role", &e))?;
            row.try_get(0).map_err(|e| from_pg("current_role", &e))
        })
        .await
    }

    /// Fails unless every embedded migration is applied, unchanged (the owner migrates:
    /// `tamga migrate`).
    async fn check_schema(&self) -> Result<(), StoreError> {
        let applied = self
            .within("schema check", async {
                let pg = |e: tokio_postgres::Error| from_pg("schema check", &e);
                let client = self.client().await?;
                let rows = client
                    .query("SELECT version, sha256 FROM tamga_schema_migrations", &[])
                    .await
                    .map_err(|e| {
                        let err = pg(e);
                        if err.is_transient() {
                            err
                        } else {
                            StoreError::Migration(format!(
                                "{err} (has `tamga migrate` run on this database?)"
                            ))
                        }
                    })?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            r.try_get::<_, i64>(0).map_err(pg)?,
                            r.try_get(1).map_err(pg)?,
                        ))
                    })
                    .collect::<Result<BTreeMap<i64, String>, StoreError>>()
            })
            .await?;
        for m in MIGRATIONS {
            match applied.get(&m.version) {
                None => {
                    return Err(StoreError::Migration(format!(
                        "migration {} is not applied: run `tamga migrate` (as the owner, \
                         [database] migrate_url) before starting the workers",
                        m.name
                    )))
                }
                Some(sha) if *sha != sha256_hex(m.sql) => {
                    return Err(StoreError::Migration(format!(
                        "migration {} was applied with SHA-256 {sha}, which is not the embedded \
                         file's: applied migrations must never change",
                        m.name
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Fails when the login role (`session_user`, what `RESET ROLE` returns to) or any
    /// role it may `SET ROLE` to is a superuser, owns an audit table, or may `UPDATE`,
    /// `DELETE` or `TRUNCATE` one: such a login is no privilege boundary.
    async fn check_boundary(&self) -> Result<(), StoreError> {
        let found = self
            .within("privilege check", async {
                let pg = |e: tokio_postgres::Error| from_pg("privilege check", &e);
                let client = self.client().await?;
                let rows = client
                    .query(
                        "SELECT session_user::text, r.rolname::text, c.relname::text,                                 r.rolsuper, r.oid = c.relowner                          FROM pg_roles r CROSS JOIN pg_class c                          WHERE c.oid IN ('audit_events'::regclass, 'audit_checkpoints'::regclass)                            AND pg_has_role(session_user, r.oid, 'MEMBER')                            AND (r.rolsuper OR r.oid = c.relowner                                 OR has_table_privilege(r.oid, c.oid, 'UPDATE, DELETE, TRUNCATE'))                          ORDER BY r.rolname = session_user DESC, r.rolname, c.relname LIMIT 1",
                        &[],
                    )
                    .await
                    .map_err(pg)?;
                rows.first()
                    .map(|r| -> Result<_, StoreError> {
                        Ok((
                            r.try_get::<_, String>(0).map_err(pg)?,
                            r.try_get::<_, String>(1).map_err(pg)?,
                            r.try_get::<_, String>(2).map_err(pg)?,
                            r.try_get::<_, bool>(3).map_err(pg)?,
                            r.try_get::<_, bool>(4).map_err(pg)?,
                        ))
                    })
                    .transpose()
            })
            .await?;
        match found {
            None => Ok(()),
            Some((login, role, table, superuser, owner)) => {
                let how = if superuser {
                    format!("{role} is a superuser")
                } else if owner {
                    format!("{role} owns {table}")
                } else {
                    format!("{role} may UPDATE, DELETE or TRUNCATE {table}")
                };
                let via = if login == role {
                    String::new()
                } else {
                    format!(" (through SET ROLE {role})")
                };
                Err(StoreError::Other(format!(
                    "the database login {login} could rewrite the audit trail{via}: {how}. \
                     Log the workers in as tamga_worker ([database] url) and migrate as the \
                     owner ([database] migrate_url, `tamga migrate`)"
                )))
            }
        }
    }

    /// Closes the pool: connections are closed as they are returned.
    pub fn close(&self) {
        self.pool.close();
    }

    async fn record_once(
        &self,
        what: &str,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError> {
        self.within(what, async {
            let mut client = self.client().await?;
            record_on(&mut client, what, chain, claim, also, events).await
        })
        .await
    }

    /// The stage results for `keys` on `client` (one round trip).
    async fn results_on(
        client: &deadpool_postgres::Object,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let pg = |e: tokio_postgres::Error| from_pg("stage_results", &e);
        let select = client.prepare_cached(RESULT_BY_KEY).await.map_err(pg)?;
        // One round trip: the look-ups are pipelined on the connection. Each is the same
        // two-parameter statement, so PostgreSQL settles on one generic plan (a primary-key
        // probe) instead of planning every call, as it did for one statement over arrays.
        let select = &select;
        let lookups = keys
            .iter()
            .map(|(id, stage)| async move { client.query_opt(select, &[id, stage]).await });
        futures_util::future::try_join_all(lookups)
            .await
            .map_err(pg)?
            .into_iter()
            .map(|row| row.map(|r| r.try_get(0)).transpose().map_err(pg))
            .collect()
    }
}

/// One stage result by its key.
const RESULT_BY_KEY: &str =
    "SELECT result FROM stage_results WHERE declaration_id = $1 AND stage = $2";

/// Stage results by `(declaration_id, stage)` keys in one statement (the group
/// committer's look-up of claims that conflicted): one primary-key probe per key, whatever
/// the statistics say. The same look-up written as `(declaration_id, stage) IN
/// (SELECT * FROM unnest(…))` was planned, on tables not yet analysed (a new database,
/// or one growing faster than autovacuum looks), as a hash join over a sequential scan of
/// every stage result: 1.1 ms and 111 buffers per claim at 20,000 rows in
/// `gateway_load`, PostgreSQL's biggest cost per declaration, and growing with the table.
/// A LATERAL subquery with a LIMIT cannot be pulled up into a join (a plain one was, and
/// hashed the same way), so it runs per key: equality on the key is an index probe.
pub(crate) const RESULTS_BY_KEY: &str = "SELECT k.id, k.stage, r.result \
     FROM unnest($1::text[], $2::text[]) AS k(id, stage) \
     CROSS JOIN LATERAL (SELECT s.result FROM stage_results s \
     WHERE s.declaration_id = k.id AND s.stage = k.stage LIMIT 1) r";

/// [`PgStore::record_once`] on a given connection (a claim's).
async fn record_on(
    client: &mut deadpool_postgres::Object,
    what: &str,
    chain: &str,
    claim: ResultRow<'_>,
    also: &[ResultRow<'_>],
    events: &[AuditEvent],
) -> Result<Recorded, StoreError> {
    let pg = |e: tokio_postgres::Error| from_pg(what, &e);
    let tx = client.transaction().await.map_err(pg)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO stage_results (declaration_id, stage, result) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg)?;
    let inserted = tx
        .execute(
            &insert,
            &[&claim.declaration_id, &claim.stage, &claim.result],
        )
        .await
        .map_err(pg)?;
    if inserted == 0 {
        let select = tx
            .prepare_cached(
                "SELECT result FROM stage_results WHERE declaration_id = $1 AND stage = $2",
            )
            .await
            .map_err(pg)?;
        let row = tx
            .query_opt(&select, &[&claim.declaration_id, &claim.stage])
            .await
            .map_err(pg)?
            .ok_or_else(|| {
                StoreError::Other(format!(
                    "{what}: ({:?}, {:?}) conflicted but is not readable",
                    claim.declaration_id, claim.stage
                ))
            })?;
        let stored: Vec<u8> = row.try_get(0).map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        return Ok(Recorded::AlreadyPresent(stored));
    }
    for row in also {
        tx.execute(&insert, &[&row.declaration_id, &row.stage, &row.result])
            .await
            .map_err(pg)?;
    }
    append_all_tx(&tx, chain, events).await?;
    tx.commit().await.map_err(pg)?;
    Ok(Recorded::Inserted)
}

/// A claim held by session advisory locks on one pooled connection.
struct PgClaim<'a> {
    store: &'a PgStore,
    /// `None` once released.
    client: Option<deadpool_postgres::Object>,
    found: Vec<Option<Vec<u8>>>,
}

impl Drop for PgClaim<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Released without recording (an error, a panic, an HSM outage): the
            // connection still holds the session locks, so it must not go back to the
            // pool. Detaching it closes it, and PostgreSQL releases the locks.
            drop(deadpool_postgres::Object::take(client));
        }
    }
}

#[async_trait::async_trait]
impl Claim for PgClaim<'_> {
    fn found(&self) -> &[Option<Vec<u8>>] {
        &self.found
    }

    async fn stage_result(
        &mut self,
        declaration_id: &str,
        stage: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| StoreError::Other("claim already released".into()))?;
        let found = self
            .store
            .within(
                "claim stage_result",
                PgStore::results_on(client, &[(declaration_id, stage)]),
            )
            .await?;
        Ok(found.into_iter().next().flatten())
    }

    async fn record_all(
        mut self: Box<Self>,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError> {
        let store = self.store;
        let mut client = self
            .client
            .take()
            .ok_or_else(|| StoreError::Other("claim already released".into()))?;
        let recorded = store
            .within("claim record", async {
                let recorded = match &store.committer {
                    // The claim's locks stay held on `client` until the batch committed.
                    Some(c) => c.record_all(chain, claim, also, events).await?,
                    None => record_on(&mut client, "record", chain, claim, also, events).await?,
                };
                client
                    .batch_execute("SELECT pg_advisory_unlock_all()")
                    .await
                    .map_err(|e| from_pg("claim release", &e))?;
                Ok(recorded)
            })
            .await;
        match recorded {
            // Released: the connection may be reused.
            Ok(r) => Ok(r),
            Err(e) => {
                drop(deadpool_postgres::Object::take(client));
                Err(e)
            }
        }
    }
}

/// Appends `event` to `chain` inside `tx`.
async fn append_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    chain: &str,
    event: &AuditEvent,
) -> Result<StoredEvent, StoreError> {
    append_all_tx(tx, chain, std::slice::from_ref(event))
        .await?
        .pop()
        .ok_or_else(|| StoreError::Other("append: nothing was appended".into()))
}

/// Appends `events` to `chain` inside `tx`: takes the chain's advisory lock, reads the head
/// once, inserts seq + 1, seq + 2, …
async fn append_all_tx(
    tx: &deadpool_postgres::Transaction<'_>,
    chain: &str,
    events: &[AuditEvent],
) -> Result<Vec<StoredEvent>, StoreError> {
    let pg = |e: tokio_postgres::Error| from_pg("append", &e);
    if chain.is_empty() {
        return Err(StoreError::Other("append: the chain name is empty".into()));
    }
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .await
        .map_err(pg)?;
    tx.execute(&lock, &[&CHAIN_LOCK_NAMESPACE, &chain])
        .await
        .map_err(pg)?;
    let head = tx
        .prepare_cached(
            "SELECT seq, hash FROM audit_events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
        )
        .await
        .map_err(pg)?;
    let (mut seq, mut prev_hash) = match tx.query_opt(&head, &[&chain]).await.map_err(pg)? {
        Some(row) => (
            row.try_get::<_, i64>(0).map_err(pg)?,
            row.try_get(1).map_err(pg)?,
        ),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let insert = tx
        .prepare_cached(&format!(
            "INSERT INTO audit_events ({EVENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .await
        .map_err(pg)?;
    let mut stored = Vec::with_capacity(events.len());
    for event in events {
        seq = seq
            .checked_add(1)
            .ok_or_else(|| StoreError::Integrity(format!("append: chain {chain:?} is full")))?;
        let hash = event_hash(chain, seq, &prev_hash, event);
        tx.execute(
            &insert,
            &[
                &chain,
                &seq,
                &prev_hash,
                &hash,
                &event.at_ms,
                &event.stage,
                &event.worker,
                &event.declaration_id,
                &event.origin,
                &event.destination,
                &event.outcome,
                &event.sub_indication,
                &event.reason,
                &event.digest,
                &event.detail,
            ],
        )
        .await
        .map_err(pg)?;
        stored.push(StoredEvent {
            chain: chain.to_owned(),
            seq,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
            event: event.clone(),
        });
    }
    Ok(stored)
}

pub(crate) fn stored_event(row: &Row) -> Result<StoredEvent, tokio_postgres::Error> {
    Ok(StoredEvent {
        chain: row.try_get(0)?,
        seq: row.try_get(1)?,
        prev_hash: row.try_get(2)?,
        hash: row.try_get(3)?,
        event: AuditEvent {
            at_ms: row.try_get(4)?,
            stage: row.try_get(5)?,
            worker: row.try_get(6)?,
            declaration_id: row.try_get(7)?,
            origin: row.try_get(8)?,
            destination: row.try_get(9)?,
            outcome: row.try_get(10)?,
            sub_indication: row.try_get(11)?,
            reason: row.try_get(12)?,
            digest: row.try_get(13)?,
            detail: row.try_get(14)?,
        },
    })
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn stage_result(
        &self,
        declaration_id: &str,
        stage: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.within("stage_result", async {
            let pg = |e: tokio_postgres::Error| from_pg("stage_result", &e);
            let client = self.client().await?;
            let select = client
                .prepare_cached(
                    "SELECT result FROM stage_results WHERE declaration_id = $1 AND stage = $2",
                )
                .await
                .map_err(pg)?;
            match client
                .query_opt(&select, &[&declaration_id, &stage])
                .await
                .map_err(pg)?
            {
                Some(row) => Ok(Some(row.try_get(0).map_err(pg)?)),
                None => Ok(None),
            }
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
        match &self.committer {
            Some(c) => {
                self.within("record", c.record_all(chain, claim, also, events))
                    .await
            }
            None => self.record_once("record", chain, claim, also, events).await,
        }
    }

    async fn stage_results(
        &self,
        keys: &[(&str, &str)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.within("stage_results", async {
            let client = self.client().await?;
            PgStore::results_on(&client, keys).await
        })
        .await
    }

    async fn claim(
        &self,
        keys: &[&str],
        lookup: &[(&str, &str)],
    ) -> Result<Box<dyn Claim + '_>, StoreError> {
        let mut sorted: Vec<&str> = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut claim = PgClaim {
            store: self,
            client: None,
            found: Vec::new(),
        };
        let found = self
            .within("claim", async {
                let client = self.client().await?;
                // Held by `claim` from here on: any early return detaches it.
                let client = claim.client.insert(client);
                // Every key in one round trip, taken in the array's (sorted) order;
                // were two claims ever to lock in different orders, PostgreSQL's
                // deadlock detector fails one of them (40P01, transient: retried).
                let lock = client
                    .prepare_cached(
                        "SELECT pg_advisory_lock($1, hashtext(k)) FROM unnest($2::text[]) AS k",
                    )
                    .await
                    .map_err(|e| from_pg("claim", &e))?;
                client
                    .execute(&lock, &[&CLAIM_LOCK_NAMESPACE, &sorted])
                    .await
                    .map_err(|e| from_pg("claim", &e))?;
                PgStore::results_on(client, lookup).await
            })
            .await?;
        claim.found = found;
        Ok(Box::new(claim))
    }

    async fn append(&self, chain: &str, event: &AuditEvent) -> Result<StoredEvent, StoreError> {
        self.within("append", async {
            let pg = |e: tokio_postgres::Error| from_pg("append", &e);
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            let stored = append_tx(&tx, chain, event).await?;
            tx.commit().await.map_err(pg)?;
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
        self.within("events", async {
            let pg = |e: tokio_postgres::Error| from_pg("events", &e);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let client = self.client().await?;
            let rows = match &after {
                Some((chain, seq)) => {
                    let stmt = client
                        .prepare_cached(&format!(
                            "SELECT {EVENT_COLUMNS} FROM audit_events \
                             WHERE (chain, seq) > ($1, $2) ORDER BY chain, seq LIMIT $3"
                        ))
                        .await
                        .map_err(pg)?;
                    client.query(&stmt, &[chain, seq, &limit]).await
                }
                None => {
                    let stmt = client
                        .prepare_cached(&format!(
                            "SELECT {EVENT_COLUMNS} FROM audit_events ORDER BY chain, seq LIMIT $1"
                        ))
                        .await
                        .map_err(pg)?;
                    client.query(&stmt, &[&limit]).await
                }
            }
            .map_err(pg)?;
            rows.iter()
                .map(|row| stored_event(row).map_err(pg))
                .collect()
        })
        .await
    }

    async fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.within("counts", async {
            let pg = |e: tokio_postgres::Error| from_pg("counts", &e);
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT stage, count(*) FROM audit_events GROUP BY stage",
                    &[],
                )
                .await
                .map_err(pg)?;
            let mut counts = BTreeMap::new();
            for row in rows {
                let stage: String = row.try_get(0).map_err(pg)?;
                let n: i64 = row.try_get(1).map_err(pg)?;
                counts.insert(stage, u64::try_from(n).unwrap_or(0));
            }
            Ok(counts)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in infra/postgres/migrations is embedded, in order of their numbers
    /// (numbers are handed out per branch, so a branch may have gaps until merged).
    #[test]
    fn migrations_match_the_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../infra/postgres/migrations");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let embedded: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, embedded);
        // Numbers are handed out to parallel branches ahead of time, so one may land
        // before a smaller one: strictly increasing, not necessarily contiguous.
        let mut previous = 0;
        for m in MIGRATIONS {
            assert!(m.version > previous, "{} is out of order", m.name);
            previous = m.version;
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            let on_disk = std::fs::read_to_string(dir.join(format!("{}.sql", m.name))).unwrap();
            assert_eq!(on_disk, m.sql);
        }
    }

    #[test]
    fn session_setup_quotes_the_role() {
        let mut cfg = StoreConfig::new("postgres://x@h/d");
        cfg.statement_timeout = Duration::from_millis(1500);
        cfg.app_role = Some("odd\"role".into());
        let sql = session_setup(&cfg, Duration::from_secs(20));
        assert_eq!(
            sql,
            "SET statement_timeout = 1500; SET idle_in_transaction_session_timeout = 20000; \
             SET jit = off; SET ROLE \"odd\"\"role\";"
        );
        cfg.app_role = None;
        assert!(!session_setup(&cfg, Duration::from_secs(1)).contains("ROLE"));
    }
}
