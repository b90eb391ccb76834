//! `tamga audit verify|prove|checkpoint` and `tamga migrate`.
//!
//! Contract (extend, never rename):
//! * `tamga audit verify --config FILE [--embedded] [--checkpoints DIR] [--authority-cert
//!   PEM]...` — exit 0 when every hash chain and every signed checkpoint holds, 1 naming the
//!   first altered, removed or reordered event or the first checkpoint the database no
//!   longer reproduces, 2 on usage or I/O errors.
//! * `tamga audit prove --config FILE (CHAIN:SEQ | --declaration ID | --receipt FILE |
//!   --consistency OLD NEW)` — prints JSON (inclusion proofs against the latest checkpoint,
//!   or a consistency proof between two), verified; exit 0 proven, 1 not (not covered yet,
//!   or the database does not reproduce the checkpoints), 2 usage.
//! * `tamga audit checkpoint --config FILE [--embedded]` — signs a checkpoint now; exit 0
//!   signed or nothing new, 1 refused (the database disagrees with what was signed).
//! * `tamga migrate --config FILE` — applies the schema migrations as the owner
//!   (`[database] migrate_url`, else `url`); exit 0.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use tamga_audit_log::{
    check_checkpoints, prove_consistency, prove_inclusion, trusted_checkpoints, Cut, Leaves,
    Trusted,
};
use tamga_pipeline::checkpoint::{
    pinned_certificates, read_checkpoint_dir, read_trail, CheckpointKey, Checkpointer, Taken,
};
use tamga_pipeline::Config;
use tamga_store::{CheckpointStore, Store, StoredEvent};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

/// Where the trail and its checkpoints are.
#[derive(Debug, Args)]
struct Source {
    /// Site configuration: the [database] (or the embedded SQLite file) to check, the
    /// [[authority]] certificates and [audit] checkpoint_dir.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Check the embedded SQLite store even when [database] is configured.
    #[arg(long)]
    embedded: bool,
    /// The external checkpoint directory (default: [audit] checkpoint_dir).
    #[arg(long, value_name = "DIR")]
    checkpoints: Option<PathBuf>,
    /// Trust checkpoints signed with this certificate (PEM) too; repeatable. The
    /// configured [[authority]] and [audit] certificates are always trusted.
    #[arg(long = "authority-cert", value_name = "PEM")]
    authority_cert: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute every audit hash chain and check it against the signed checkpoints; exit 1
    /// naming the first altered, removed or reordered event, or the first checkpoint broken.
    Verify {
        #[command(flatten)]
        source: Source,
    },
    /// Print (JSON) and verify a Merkle inclusion proof of an event against the latest
    /// checkpoint, or a consistency proof between two checkpoints.
    Prove {
        #[command(flatten)]
        source: Source,
        /// The event: CHAIN:SEQ (the chain name, a colon, the sequence number).
        #[arg(value_name = "EVENT", required_unless_present_any = ["declaration", "receipt", "consistency"])]
        event: Option<String>,
        /// Every event of this declaration.
        #[arg(long, value_name = "ID", conflicts_with_all = ["event", "receipt", "consistency"])]
        declaration: Option<String>,
        /// The events of the declaration this signed receipt is about.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["event", "consistency"])]
        receipt: Option<PathBuf>,
        /// Two checkpoints' tree sizes: prove the older tree is a prefix of the newer.
        #[arg(long, num_args = 2, value_names = ["OLD", "NEW"], conflicts_with = "event")]
        consistency: Option<Vec<u64>>,
    },
    /// Sign a checkpoint of the audit trail now, with [audit] authority's key (else the
    /// first [[authority]]), into the database and [audit] checkpoint_dir.
    Checkpoint {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Use the embedded SQLite store even when [database] is configured.
        #[arg(long)]
        embedded: bool,
    },
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Site configuration: [database] migrate_url (the schema's owner), else url.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The store, for reading: no `SET ROLE` (a `tamga_reader` login may read the trail).
async fn open_store(cfg: &Config, embedded: bool) -> anyhow::Result<Arc<dyn Store>> {
    match (&cfg.database, embedded) {
        (Some(d), false) => {
            let mut sc = d.store_config();
            sc.app_role = None;
            Ok(Arc::new(
                tamga_store::connect_postgres(&sc)
                    .await
                    .context("opening the audit store")?,
            ))
        }
        _ => Ok(Arc::new(
            tamga_store::open_sqlite(std::path::Path::new(&cfg.embedded.sqlite))
                .context("opening the audit store")?,
        )),
    }
}

fn checkpoint_store(store: &dyn Store) -> anyhow::Result<&dyn CheckpointStore> {
    store
        .checkpoint_store()
        .context("this store keeps no checkpoints")
}

/// Everything a check needs: the events, the chain report, the checkpoints' rows and
/// files, and the trusted certificates.
struct Trail {
    store: Arc<dyn Store>,
    chains: tamga_store::ChainReport,
    leaves: Leaves,
    rows: Vec<tamga_store::CheckpointRow>,
    files: Vec<(String, Vec<u8>)>,
    dir: Option<PathBuf>,
    pinned: Vec<Vec<u8>>,
}

async fn load(source: &Source) -> anyhow::Result<Trail> {
    let cfg = Config::load(&source.config)?;
    let mut pinned = pinned_certificates(&cfg).map_err(anyhow::Error::msg)?;
    for p in &source.authority_cert {
        let bytes = std::fs::read(p).with_context(|| format!("{}", p.display()))?;
        let certs = tamga_dsig::certificates_from_pem(&bytes)
            .with_context(|| format!("{}", p.display()))?;
        pinned.extend(certs.into_iter().take(1));
    }
    let dir = source
        .checkpoints
        .clone()
        .or_else(|| cfg.audit.dir().map(std::path::Path::to_path_buf));
    let files = match &dir {
        Some(d) => read_checkpoint_dir(d)
            .with_context(|| format!("reading the checkpoint directory {}", d.display()))?,
        None => Vec::new(),
    };
    let store = open_store(&cfg, source.embedded || cfg.database.is_none()).await?;
    let (chains, leaves) = read_trail(store.as_ref())
        .await
        .context("reading the audit trail")?;
    let rows = checkpoint_store(store.as_ref())?
        .checkpoints()
        .await
        .context("reading the checkpoints")?;
    Ok(Trail {
        store,
        chains,
        leaves,
        rows,
        files,
        dir,
        pinned,
    })
}

pub fn audit(a: &AuditArgs) -> anyhow::Result<Outcome> {
    match &a.command {
        AuditCommand::Verify { source } => runtime()?.block_on(verify(source)),
        AuditCommand::Prove {
            source,
            event,
            declaration,
            receipt,
            consistency,
        } => runtime()?.block_on(prove(
            source,
            event.as_deref(),
            declaration.as_deref(),
            receipt.as_deref(),
            consistency.as_deref(),
        )),
        AuditCommand::Checkpoint { config, embedded } => {
            runtime()?.block_on(checkpoint(config, *embedded))
        }
    }
}

async fn verify(source: &Source) -> anyhow::Result<Outcome> {
    let t = load(source).await?;
    let report = &t.chains;
    println!("events: {}", report.events);
    for h in &report.chains {
        println!("chain {} head seq {} hash {}", h.chain, h.seq, h.hash);
    }
    let cps = check_checkpoints(&t.leaves, &t.rows, &t.files, &t.pinned);
    match (&t.dir, cps.external_files) {
        (None, _) => println!(
            "checkpoints: no external checkpoint directory ([audit] checkpoint_dir or \
             --checkpoints): only the database's own copies were checked, which anchor \
             nothing against whoever can rewrite the database"
        ),
        (Some(d), 0) => println!(
            "checkpoints: the external directory {} holds no checkpoint yet",
            d.display()
        ),
        (Some(d), n) => println!(
            "checkpoints: {n} external in {}, {} in the database",
            d.display(),
            cps.database_rows
        ),
    }
    if let Some(latest) = cps.checked.last() {
        println!(
            "checkpoints reproduced by the database: {} (latest: tree size {}, root {}, signed \
             {} by {}{})",
            cps.checked.len(),
            latest.tree_size,
            latest.root_hash,
            latest.issued_at,
            latest.authority,
            latest
                .file
                .as_deref()
                .map_or_else(|| ", in the database only".to_owned(), |f| format!(", {f}"))
        );
    }
    if let Some(anchor) = cps.latest_external() {
        println!(
            "anchored outside the database: the first {} events",
            anchor.tree_size
        );
    }
    println!(
        "events after the latest checkpoint (not yet anchored): {}",
        cps.uncovered
    );
    for p in &cps.problems {
        println!("CHECKPOINT PROBLEM: {p}");
    }
    if let Some(b) = &cps.broken {
        println!("CHECKPOINT BROKEN: {b}");
    }
    match &report.problem {
        None if cps.is_intact() => {
            println!("audit trail intact");
            Ok(Outcome::Passed)
        }
        None => {
            println!(
                "the hash chains are consistent, but the signed checkpoints show that history \
                 was rewritten or removed (or a checkpoint is not trustworthy): see above"
            );
            Ok(Outcome::Failed)
        }
        Some(p) => {
            println!(
                "FIRST PROBLEM: {:?} event at chain {} seq {}{}: {}",
                p.kind,
                p.chain,
                p.seq,
                p.declaration_id
                    .as_deref()
                    .map(|d| format!(" (declaration {d})"))
                    .unwrap_or_default(),
                p.detail
            );
            Ok(Outcome::Failed)
        }
    }
}

/// `CHAIN:SEQ`, split at the last colon (chain names may contain colons).
fn parse_event(s: &str) -> anyhow::Result<(String, i64)> {
    let (chain, seq) = s
        .rsplit_once(':')
        .filter(|(c, _)| !c.is_empty())
        .with_context(|| format!("EVENT {s:?} is not CHAIN:SEQ"))?;
    let seq: i64 = seq
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .with_context(|| format!("EVENT {s:?}: {seq:?} is not a sequence number ≥ 1"))?;
    Ok((chain.to_owned(), seq))
}

fn checkpoint_json(t: &Trusted) -> serde_json::Value {
    serde_json::json!({
        "treeSize": t.checkpoint.tree_size,
        "rootHash": t.checkpoint.root_hex(),
        "issuedAt": t.checkpoint.issued_at(),
        "authority": t.checkpoint.authority,
        "file": t.file,
        "inDatabase": t.in_database,
    })
}

async fn prove(
    source: &Source,
    event: Option<&str>,
    declaration: Option<&str>,
    receipt: Option<&std::path::Path>,
    consistency: Option<&[u64]>,
) -> anyhow::Result<Outcome> {
    let target = event.map(parse_event).transpose()?;
    let t = load(source).await?;
    let (trusted, problems) = trusted_checkpoints(&t.rows, &t.files, &t.pinned);
    for p in &problems {
        eprintln!("tamga: checkpoint problem: {p}");
    }
    let cuts: Vec<Cut<'_>> = trusted.iter().map(Trusted::cut).collect();
    let Some(latest) = trusted.last() else {
        eprintln!("tamga: no trusted checkpoint yet: nothing to prove against");
        return Ok(Outcome::Failed);
    };
    if let Some(sizes) = consistency {
        let [old, new] = sizes else {
            bail!("--consistency takes two tree sizes");
        };
        let find = |size: u64| trusted.iter().find(|t| t.checkpoint.tree_size == size);
        return Ok(match prove_consistency(&t.leaves, &cuts, *old, *new) {
            Ok(p) => {
                let out = serde_json::json!({
                    "old": find(*old).map(checkpoint_json),
                    "new": find(*new).map(checkpoint_json),
                    "consistency": p,
                    "verified": true,
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
                Outcome::Passed
            }
            Err(e) => {
                eprintln!("tamga: no consistency proof: {e}");
                Outcome::Failed
            }
        });
    }
    let events: Vec<(String, i64)> = match (target, declaration, receipt) {
        (Some(t), _, _) => vec![t],
        (None, Some(id), _) => declaration_events(t.store.as_ref(), id).await?,
        (None, None, Some(path)) => receipt_events(t.store.as_ref(), path).await?,
        (None, None, None) => bail!("give EVENT, --declaration, --receipt or --consistency"),
    };
    if events.is_empty() {
        eprintln!("tamga: no audit event found");
        return Ok(Outcome::Failed);
    }
    let mut proofs = Vec::new();
    let mut outcome = Outcome::Passed;
    for (chain, seq) in &events {
        match prove_inclusion(&t.leaves, &cuts, chain, *seq) {
            Ok(p) => proofs.push(serde_json::to_value(p)?),
            Err(e) => {
                eprintln!("tamga: {chain}:{seq}: no inclusion proof: {e}");
                proofs.push(
                    serde_json::json!({ "chain": chain, "seq": seq, "error": e.to_string() }),
                );
                outcome = Outcome::Failed;
            }
        }
    }
    let out = serde_json::json!({
        "checkpoint": checkpoint_json(latest),
        "inclusions": proofs,
        "verified": outcome == Outcome::Passed,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(outcome)
}

fn keys(events: Vec<StoredEvent>) -> Vec<(String, i64)> {
    events.into_iter().map(|e| (e.chain, e.seq)).collect()
}

async fn declaration_events(store: &dyn Store, id: &str) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(keys(
        checkpoint_store(store)?
            .declaration_stored_events(id)
            .await
            .context("reading the declaration's events")?,
    ))
}

/// The events of the declaration a receipt is about: the pipeline keeps "these bytes were
/// first seen as declaration X" under the bytes' SHA-256.
async fn receipt_events(
    store: &dyn Store,
    path: &std::path::Path,
) -> anyhow::Result<Vec<(String, i64)>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let receipt =
        tamga_receipt::parse_receipt(&bytes).with_context(|| format!("{}", path.display()))?;
    let digest = receipt.document_sha256;
    let id = match store
        .stage_result(&digest, tamga_store::stage::RECEIVED)
        .await
        .context("finding the receipt's declaration")?
    {
        Some(id) => String::from_utf8(id).unwrap_or_else(|_| digest.clone()),
        None => digest.clone(),
    };
    declaration_events(store, &id).await
}

async fn checkpoint(config: &std::path::Path, embedded: bool) -> anyhow::Result<Outcome> {
    let cfg = Config::load(config)?;
    let wanted = cfg
        .audit
        .authority
        .as_deref()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty());
    let mut authorities: Vec<_> = cfg.authority.iter().collect();
    authorities.sort_by_key(|a| a.country.to_ascii_uppercase());
    let a = match &wanted {
        Some(c) => authorities
            .iter()
            .find(|a| a.country.eq_ignore_ascii_case(c))
            .with_context(|| {
                format!("[audit] authority = {c:?} is not a configured [[authority]]")
            })?,
        None => authorities
            .first()
            .context("no [[authority]] to sign checkpoints")?,
    };
    let signer = tamga_pipeline::open_key(&a.key).map_err(anyhow::Error::msg)?;
    let mut certificates = Vec::new();
    for (i, p) in std::iter::once(&a.cert).chain(a.chain.iter()).enumerate() {
        let bytes = std::fs::read(p).with_context(|| format!("{}", p.display()))?;
        let found = tamga_dsig::certificates_from_pem(&bytes)
            .with_context(|| format!("{}", p.display()))?;
        certificates.extend(found.into_iter().take(if i == 0 { 1 } else { usize::MAX }));
    }
    let key =
        CheckpointKey::from_signer(signer, certificates, &a.country).map_err(anyhow::Error::msg)?;
    let pinned = pinned_certificates(&cfg).map_err(anyhow::Error::msg)?;
    let store = match (&cfg.database, embedded || cfg.database.is_none()) {
        (Some(d), false) => Arc::new(
            tamga_store::connect_postgres(&d.store_config())
                .await
                .context("opening the audit store")?,
        ) as Arc<dyn Store>,
        _ => open_store(&cfg, true).await?,
    };
    let cp = Checkpointer::new(
        store,
        key,
        cfg.audit.dir().map(std::path::Path::to_path_buf),
        pinned,
    );
    match cp.checkpoint(tamga_pipeline::now_ms()).await {
        Ok(Taken::Signed(row)) => {
            let file = cfg
                .audit
                .dir()
                .map(|d| d.join(tamga_audit_log::file_name(row.tree_size)));
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "treeSize": row.tree_size,
                    "rootHash": row.root,
                    "chains": row.heads.len(),
                    "file": file,
                }))?
            );
            Ok(Outcome::Passed)
        }
        Ok(_) => {
            println!("nothing new since the latest checkpoint");
            Ok(Outcome::Passed)
        }
        Err(e @ tamga_pipeline::checkpoint::CheckpointFailure::Refused(_)) => {
            eprintln!("tamga: {e}");
            Ok(Outcome::Failed)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn migrate(a: &MigrateArgs) -> anyhow::Result<Outcome> {
    let cfg = Config::load(&a.config)?;
    let Some(d) = &cfg.database else {
        // The embedded store creates its schema when it opens.
        tamga_store::open_sqlite(std::path::Path::new(&cfg.embedded.sqlite))
            .context("opening the embedded store")?;
        println!("embedded store {} is up to date", cfg.embedded.sqlite);
        return Ok(Outcome::Passed);
    };
    let applied = runtime()?
        .block_on(tamga_store::migrate_postgres(&d.migrate_config()))
        .context("migrating the database")?;
    if applied.is_empty() {
        println!("the database is up to date");
    }
    for name in applied {
        println!("applied {name}");
    }
    Ok(Outcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_chain_colon_seq() {
        assert_eq!(
            parse_event("site-1/fused/3:12").unwrap(),
            ("site-1/fused/3".into(), 12)
        );
        assert_eq!(parse_event("a:b:7").unwrap(), ("a:b".into(), 7));
        for bad in ["nochain", ":3", "c:0", "c:-1", "c:x", ""] {
            assert!(parse_event(bad).is_err(), "{bad}");
        }
    }
}
