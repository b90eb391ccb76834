//! Group commit for PostgreSQL: many callers' `record_all` in one transaction.
//!
//! Each declaration used to cost two transactions of ~8 statements each (its decision,
//! then its forwarding), each ending in a WAL flush. Under load most of PostgreSQL's CPU
//! per declaration went to statement overhead and commits, not to the rows. The committer
//! takes whatever jobs are queued when it is free (natural batching: no timer, so no
//! latency is added when the load is light; under load a batch grows to what arrived
//! during the previous commit, up to `max_batch`) and writes them with one statement per
//! kind of row: seven statements and one flush for the whole batch.
//!
//! Semantics per job are exactly [`crate::Store::record_all`]'s: the claim row decides;
//! a job whose claim row is already present (in the table, or earlier in the same batch)
//! appends nothing and gets the stored result. A failed batch fails every job in it with
//! the same error (nothing of it committed), so each caller retries as before.
//!
//! The committer has its own small pool: a caller holding a claim (a pooled connection
//! with session locks) waits for the committer, so sharing the claims' pool could
//! exhaust it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};

use crate::error::from_pg;
use crate::pg::{CHAIN_LOCK_NAMESPACE, EVENT_COLUMNS};
use crate::{
    event_hash, AuditEvent, Recorded, ResultRow, StoreError, Submission, SubmissionClaim,
    GENESIS_HASH,
};

/// What the committer is asked to write.
enum Work {
    Record(Job),
    Claim(ClaimJob),
}

/// One caller's `record_all`, owned.
struct Job {
    chain: String,
    claim: (String, String, Vec<u8>),
    also: Vec<(String, String, Vec<u8>)>,
    events: Vec<AuditEvent>,
    reply: oneshot::Sender<Result<Recorded, StoreError>>,
}

fn owned(r: &ResultRow<'_>) -> (String, String, Vec<u8>) {
    (
        r.declaration_id.to_owned(),
        r.stage.to_owned(),
        r.result.to_vec(),
    )
}

/// One gateway's `claim_submission`, owned: claims ride in the same transactions as the
/// records (a submission's claim and another's `submitted` marker, one flush).
struct ClaimJob {
    submission: Submission,
    reply: oneshot::Sender<Result<SubmissionClaim, StoreError>>,
}

/// The handle the store keeps; the committer task runs until every handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Committer {
    jobs: mpsc::Sender<Work>,
    stats: Arc<Stats>,
}

/// Transactions committed and jobs they carried (for tests and metrics).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) batches: AtomicU64,
    pub(crate) jobs: AtomicU64,
}

impl Committer {
    /// Starts the committer on `pool` (its own).
    pub(crate) fn start(pool: Pool, max_batch: usize, deadline: Duration) -> Committer {
        let (tx, rx) = mpsc::channel(max_batch.max(1) * 4);
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(pool, rx, max_batch.max(1), deadline, stats.clone()));
        Committer { jobs: tx, stats }
    }

    /// (batches committed, jobs committed in them) so far.
    pub(crate) fn stats(&self) -> (u64, u64) {
        (
            self.stats.batches.load(Ordering::Relaxed),
            self.stats.jobs.load(Ordering::Relaxed),
        )
    }

    /// `record_all` through the committer.
    pub(crate) async fn record_all(
        &self,
        chain: &str,
        claim: ResultRow<'_>,
        also: &[ResultRow<'_>],
        events: &[AuditEvent],
    ) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            chain: chain.to_owned(),
            claim: owned(&claim),
            also: also.iter().map(owned).collect(),
            events: events.to_vec(),
            reply,
        };
        self.send(Work::Record(job), answer).await
    }

    /// `claim_submission` through the committer (`gateway.rs` has its semantics).
    pub(crate) async fn claim_submission(
        &self,
        submission: &Submission,
    ) -> Result<SubmissionClaim, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = ClaimJob {
            submission: submission.clone(),
            reply,
        };
        self.send(Work::Claim(job), answer).await
    }

    async fn send<T>(
        &self,
        work: Work,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.jobs
            .send(work)
            .await
            .map_err(|_| StoreError::Unavailable("the group committer has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("the group committer dropped a job (shutting down)".into())
        })?
    }
}

async fn run(
    pool: Pool,
    mut rx: mpsc::Receiver<Work>,
    max_batch: usize,
    deadline: Duration,
    stats: Arc<Stats>,
) {
    let mut records = Vec::with_capacity(max_batch);
    let mut claims = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut take = |w: Work| match w {
            Work::Record(j) => records.push(j),
            Work::Claim(c) => claims.push(c),
        };
        take(first);
        let mut n = 1;
        while n < max_batch {
            match rx.try_recv() {
                Ok(w) => take(w),
                Err(_) => break,
            }
            n += 1;
        }
        let outcome = match tokio::time::timeout(deadline, commit(&pool, &records, &claims)).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "group commit: no answer from PostgreSQL within {deadline:?}"
            ))),
        };
        match outcome {
            Ok((recorded, claimed)) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.jobs.fetch_add(n as u64, Ordering::Relaxed);
                for (job, result) in records.drain(..).zip(recorded) {
                    let _ = job.reply.send(Ok(result));
                }
                for (job, result) in claims.drain(..).zip(claimed) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                for job in records.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
                for job in claims.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// What one batch's transaction gave: an outcome per record job, one per claim (a claim
/// whose id was taken fails alone).
type Outcomes = (Vec<Recorded>, Vec<Result<SubmissionClaim, StoreError>>);

/// Writes the records and the claims in one transaction; outcomes in job order.
async fn commit(pool: &Pool, records: &[Job], claims: &[ClaimJob]) -> Result<Outcomes, StoreError> {
    let pg = |e: tokio_postgres::Error| from_pg("group commit", &e);
    let mut client = pool.get().await.map_err(|e| crate::error::from_pool(&e))?;
    let tx = client.transaction().await.map_err(pg)?;
    let recorded = if records.is_empty() {
        Vec::new()
    } else {
        write_records(&tx, records).await?
    };
    let claimed = if claims.is_empty() {
        Vec::new()
    } else {
        let subs: Vec<&Submission> = claims.iter().map(|c| &c.submission).collect();
        crate::gateway::claim_batch(&tx, &subs).await?
    };
    tx.commit().await.map_err(pg)?;
    Ok((recorded, claimed))
}

/// Writes the record jobs of a batch in `tx`; one outcome per job, in order (valid once
/// `tx` commits).
async fn write_records(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &[Job],
) -> Result<Vec<Recorded>, StoreError> {
    let pg = |e: tokio_postgres::Error| from_pg("group commit", &e);

    // The first job with a given claim key is the one that may insert it.
    let mut first_with: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, job) in batch.iter().enumerate() {
        first_with
            .entry((job.claim.0.as_str(), job.claim.1.as_str()))
            .or_insert(i);
    }
    let leaders: Vec<usize> = {
        let mut v: Vec<usize> = first_with.values().copied().collect();
        v.sort_unstable();
        v
    };

    // 1. The claim rows: which were new?
    let ids: Vec<&str> = leaders.iter().map(|&i| batch[i].claim.0.as_str()).collect();
    let stages: Vec<&str> = leaders.iter().map(|&i| batch[i].claim.1.as_str()).collect();
    let results: Vec<&[u8]> = leaders
        .iter()
        .map(|&i| batch[i].claim.2.as_slice())
        .collect();
    let insert = tx
        .prepare_cached(
            "INSERT INTO stage_results (declaration_id, stage, result) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) \
             ON CONFLICT DO NOTHING RETURNING declaration_id, stage",
        )
        .await
        .map_err(pg)?;
    let rows = tx
        .query(&insert, &[&ids, &stages, &results])
        .await
        .map_err(pg)?;
    let mut inserted = std::collections::HashSet::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get(0).map_err(pg)?;
        let stage: String = row.try_get(1).map_err(pg)?;
        inserted.insert((id, stage));
    }
    let is_new = |job: &Job| inserted.contains(&(job.claim.0.clone(), job.claim.1.clone()));

    // 2. What is stored for the claims that were not new.
    let present: Vec<usize> = leaders
        .iter()
        .copied()
        .filter(|&i| !is_new(&batch[i]))
        .collect();
    let mut stored: HashMap<(String, String), Vec<u8>> = HashMap::new();
    if !present.is_empty() {
        let ids: Vec<&str> = present.iter().map(|&i| batch[i].claim.0.as_str()).collect();
        let stages: Vec<&str> = present.iter().map(|&i| batch[i].claim.1.as_str()).collect();
        let select = tx
            .prepare_cached(crate::pg::RESULTS_BY_KEY)
            .await
            .map_err(pg)?;
        for row in tx.query(&select, &[&ids, &stages]).await.map_err(pg)? {
            stored.insert(
                (row.try_get(0).map_err(pg)?, row.try_get(1).map_err(pg)?),
                row.try_get(2).map_err(pg)?,
            );
        }
    }

    // 3. The secondary rows of the new claims.
    let new_jobs: Vec<&Job> = leaders
        .iter()
        .map(|&i| &batch[i])
        .filter(|j| is_new(j))
        .collect();
    let also: Vec<&(String, String, Vec<u8>)> =
        new_jobs.iter().flat_map(|j| j.also.iter()).collect();
    if !also.is_empty() {
        let ids: Vec<&str> = also.iter().map(|r| r.0.as_str()).collect();
        let stages: Vec<&str> = also.iter().map(|r| r.1.as_str()).collect();
        let results: Vec<&[u8]> = also.iter().map(|r| r.2.as_slice()).collect();
        let insert_also = tx
            .prepare_cached(
                "INSERT INTO stage_results (declaration_id, stage, result) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) \
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(pg)?;
        tx.execute(&insert_also, &[&ids, &stages, &results])
            .await
            .map_err(pg)?;
    }

    // 4. The new claims' events, chain by chain, in batch order within a chain.
    let mut by_chain: BTreeMap<&str, Vec<&AuditEvent>> = BTreeMap::new();
    for job in &new_jobs {
        if job.chain.is_empty() && !job.events.is_empty() {
            return Err(StoreError::Other("append: the chain name is empty".into()));
        }
        by_chain
            .entry(job.chain.as_str())
            .or_default()
            .extend(job.events.iter());
    }
    by_chain.retain(|_, events| !events.is_empty());
    if !by_chain.is_empty() {
        let chains: Vec<&str> = by_chain.keys().copied().collect();
        // Sorted (BTreeMap): every writer locks chains in the same order.
        let lock = tx
            .prepare_cached(
                "SELECT pg_advisory_xact_lock($1, hashtext(c)) \
                 FROM unnest($2::text[]) WITH ORDINALITY AS t(c, n) ORDER BY n",
            )
            .await
            .map_err(pg)?;
        tx.execute(&lock, &[&CHAIN_LOCK_NAMESPACE, &chains])
            .await
            .map_err(pg)?;
        let heads = tx
            .prepare_cached(
                "SELECT c, h.seq, h.hash FROM unnest($1::text[]) AS c \
                 LEFT JOIN LATERAL (SELECT seq, hash FROM audit_events \
                 WHERE chain = c ORDER BY seq DESC LIMIT 1) h ON true",
            )
            .await
            .map_err(pg)?;
        let mut head: HashMap<String, (i64, String)> = HashMap::new();
        for row in tx.query(&heads, &[&chains]).await.map_err(pg)? {
            let chain: String = row.try_get(0).map_err(pg)?;
            let seq: Option<i64> = row.try_get(1).map_err(pg)?;
            let hash: Option<String> = row.try_get(2).map_err(pg)?;
            head.insert(
                chain,
                (
                    seq.unwrap_or(0),
                    hash.unwrap_or_else(|| GENESIS_HASH.to_owned()),
                ),
            );
        }
        let n: usize = by_chain.values().map(Vec::len).sum();
        let mut c_chain = Vec::with_capacity(n);
        let mut c_seq = Vec::with_capacity(n);
        let mut c_prev = Vec::with_capacity(n);
        let mut c_hash = Vec::with_capacity(n);
        for (chain, events) in &by_chain {
            let (mut seq, mut prev) = head.remove(*chain).unwrap_or((0, GENESIS_HASH.to_owned()));
            for event in events {
                seq = seq.checked_add(1).ok_or_else(|| {
                    StoreError::Integrity(format!("append: chain {chain:?} is full"))
                })?;
                let hash = event_hash(chain, seq, &prev, event);
                c_chain.push(*chain);
                c_seq.push(seq);
                c_prev.push(std::mem::replace(&mut prev, hash.clone()));
                c_hash.push(hash);
            }
        }
        let events: Vec<&AuditEvent> = by_chain.values().flatten().copied().collect();
        let at: Vec<i64> = events.iter().map(|e| e.at_ms).collect();
        let col =
            |f: fn(&AuditEvent) -> &str| -> Vec<&str> { events.iter().map(|e| f(e)).collect() };
        let opt = |f: fn(&AuditEvent) -> Option<&str>| -> Vec<Option<&str>> {
            events.iter().map(|e| f(e)).collect()
        };
        let insert_events = tx
            .prepare_cached(&format!(
                "INSERT INTO audit_events ({EVENT_COLUMNS}) SELECT * FROM unnest(\
                 $1::text[], $2::int8[], $3::text[], $4::text[], $5::int8[], $6::text[], \
                 $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                 $13::text[], $14::text[], $15::text[])"
            ))
            .await
            .map_err(pg)?;
        tx.execute(
            &insert_events,
            &[
                &c_chain,
                &c_seq,
                &c_prev,
                &c_hash,
                &at,
                &col(|e| &e.stage),
                &col(|e| &e.worker),
                &col(|e| &e.declaration_id),
                &col(|e| &e.origin),
                &col(|e| &e.destination),
                &col(|e| &e.outcome),
                &opt(|e| e.sub_indication.as_deref()),
                &opt(|e| e.reason.as_deref()),
                &col(|e| &e.digest),
                &opt(|e| e.detail.as_deref()),
            ],
        )
        .await
        .map_err(pg)?;
    }
    // Outcomes, in job order.
    let mut out = Vec::with_capacity(batch.len());
    for (i, job) in batch.iter().enumerate() {
        let key = (job.claim.0.as_str(), job.claim.1.as_str());
        let leader = first_with.get(&key).copied().unwrap_or(i);
        let recorded = if leader == i && is_new(job) {
            Recorded::Inserted
        } else if leader != i && is_new(&batch[leader]) {
            // Inserted earlier in this batch: the leader's result is what is stored.
            Recorded::AlreadyPresent(batch[leader].claim.2.clone())
        } else {
            let stored = stored
                .get(&(job.claim.0.clone(), job.claim.1.clone()))
                .cloned()
                .ok_or_else(|| {
                    StoreError::Other(format!(
                        "group commit: ({:?}, {:?}) conflicted but is not readable",
                        job.claim.0, job.claim.1
                    ))
                })?;
            Recorded::AlreadyPresent(stored)
        };
        out.push(recorded);
    }
    Ok(out)
}
