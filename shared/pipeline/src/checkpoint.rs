//! Signed checkpoints of the audit trail at the I/O edges (the pure part is
//! `tamga-audit-log`): the checkpointer that a running site calls at an interval and at
//! shutdown (and `tamga audit checkpoint` once), the external checkpoint directory, and
//! reading the whole trail for `tamga audit verify` and `tamga audit prove`.
//!
//! Taking a checkpoint: the latest checkpoint in the database must carry a valid signature
//! by a trusted certificate and agree with its row and with the external directory's copy
//! (a directory holding a newer checkpoint than the database means checkpoints were
//! removed from the database); every chain's events since then must link to the signed
//! heads and hash to their stored hashes. Only then is the extended tree signed — the
//! checkpointer never signs over a past that no longer matches what it signed before.
//! The row goes into the database first (under a lock, on top of the latest only), then
//! the file into the directory (written to a temporary name, synced, linked to its final
//! name, never overwritten); a file missing after a crash is written on the next run.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tamga_audit_log::{
    file_name, size_of_file_name, verify_checkpoint, Checkpoint, CheckpointAuthority, Extension,
    Leaves,
};
use tamga_dsig::Signer;
use tamga_store::{ChainReport, ChainVerifier, CheckpointRow, Store, StoreError};

use crate::engine::Engine;
use crate::metrics::Metrics;

/// Signs a checkpoint document with an authority's key.
pub type SignFn = Arc<dyn Fn(&Checkpoint) -> Result<Vec<u8>, String> + Send + Sync>;

/// The key that signs checkpoints, and who it is.
#[derive(Clone)]
pub struct CheckpointKey {
    pub authority: CheckpointAuthority,
    pub sign: SignFn,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

fn authority_of(info: &tamga_receipt::Authority) -> CheckpointAuthority {
    CheckpointAuthority {
        country: info.country.clone(),
        subject: info.subject.clone(),
        certificate_sha256: info.certificate_sha256.clone(),
    }
}

impl CheckpointKey {
    /// The key of a running site's authority: `wanted` (a country), else the first.
    pub fn from_engine(engine: &Arc<Engine>, wanted: Option<&str>) -> Result<Self, String> {
        let country = match wanted.map(str::trim).filter(|w| !w.is_empty()) {
            Some(w) => w.to_ascii_uppercase(),
            None => engine
                .authorities
                .keys()
                .next()
                .cloned()
                .ok_or("no [[authority]] to sign checkpoints")?,
        };
        let a = engine.authorities.get(&country).ok_or_else(|| {
            format!("[audit] authority = {country:?} is not one of the configured [[authority]]")
        })?;
        let authority = authority_of(&a.info);
        let engine = Arc::clone(engine);
        Ok(Self {
            authority,
            sign: Arc::new(move |cp: &Checkpoint| {
                let a = engine
                    .authorities
                    .get(&country)
                    .ok_or_else(|| format!("authority {country} is gone"))?;
                cp.sign(a.signer.as_ref(), &a.certificates)
                    .map_err(|e| e.to_string())
            }),
        })
    }

    /// A key opened on its own (`tamga audit checkpoint`): the signer, its certificate
    /// first then its chain, and the country to name when the certificate has none.
    pub fn from_signer(
        signer: Box<dyn Signer + Send + Sync>,
        certificates: Vec<Vec<u8>>,
        country: &str,
    ) -> Result<Self, String> {
        let cert = certificates.first().ok_or("no certificate")?;
        let info = tamga_receipt::Authority::from_certificate(cert, &country.to_ascii_uppercase())
            .map_err(|e| e.to_string())?;
        Ok(Self {
            authority: authority_of(&info),
            sign: Arc::new(move |cp: &Checkpoint| {
                cp.sign(signer.as_ref(), &certificates)
                    .map_err(|e| e.to_string())
            }),
        })
    }
}

/// Why no checkpoint was taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointFailure {
    /// The store could not be read or written (transient or not): try again later.
    #[error("audit store: {0}")]
    Store(#[from] StoreError),
    /// The database disagrees with what was signed before: nothing is signed until an
    /// auditor has looked (`tamga audit verify`).
    #[error("refusing to sign a checkpoint: {0}")]
    Refused(String),
    /// The key could not sign (a token outage, say): try again later.
    #[error("signing the checkpoint: {0}")]
    Sign(String),
    /// The external directory could not be written: the checkpoint is in the database and
    /// its file is written on the next run.
    #[error("checkpoint directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

impl CheckpointFailure {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            CheckpointFailure::Refused(_) => "refused",
            _ => "failed",
        }
    }
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Taken {
    /// A checkpoint was signed and stored (and written to the directory).
    Signed(CheckpointRow),
    /// Nothing was appended since the latest checkpoint.
    NothingNew,
    /// Another process stored a checkpoint first; this one's signature was discarded.
    Raced,
}

/// Takes checkpoints of one store.
#[derive(Clone)]
pub struct Checkpointer {
    store: Arc<dyn Store>,
    key: CheckpointKey,
    dir: Option<PathBuf>,
    /// Certificates whose signatures on earlier checkpoints are trusted.
    pinned: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("key", &self.key)
            .field("dir", &self.dir)
            .field("pinned", &self.pinned.len())
            .finish_non_exhaustive()
    }
}

/// Events read per store call.
const PAGE: usize = 2_000;

impl Checkpointer {
    /// `pinned`: every certificate an earlier checkpoint may have been signed with (the
    /// configured authorities' and `[audit] certificates`).
    pub fn new(
        store: Arc<dyn Store>,
        key: CheckpointKey,
        dir: Option<PathBuf>,
        pinned: Vec<Vec<u8>>,
    ) -> Self {
        Self {
            store,
            key,
            dir,
            pinned,
        }
    }

    /// Signs a checkpoint over everything appended since the latest one, if anything was.
    pub async fn checkpoint(&self, now_ms: i64) -> Result<Taken, CheckpointFailure> {
        let refuse = |why: String| CheckpointFailure::Refused(why);
        let cps = self
            .store
            .checkpoint_store()
            .ok_or_else(|| refuse("this store keeps no checkpoints".into()))?;
        let latest = cps.latest_checkpoint().await?;
        if let Some(l) = &latest {
            let cp = verify_checkpoint(&l.signed, &self.pinned).map_err(|e| {
                refuse(format!(
                    "the database's latest checkpoint (tree size {}): {e}",
                    l.tree_size
                ))
            })?;
            if cp.tree_size != l.tree_size || cp.root_hex() != l.root || cp.chains != l.heads {
                return Err(refuse(format!(
                    "the database's checkpoint row of tree size {} does not agree with its \
                     signed document",
                    l.tree_size
                )));
            }
        }
        if let Some(dir) = &self.dir {
            self.agree_with_dir(dir, latest.as_ref()).await?;
        }
        let heads = cps.chain_heads().await?;
        let previous = latest.as_ref().map(|l| {
            (
                l.tree_size,
                l.root.as_str(),
                l.frontier.as_slice(),
                l.heads.as_slice(),
            )
        });
        let mut ext = Extension::new(previous, &heads).map_err(|e| refuse(e.to_string()))?;
        if ext.is_empty() {
            return Ok(Taken::NothingNew);
        }
        for r in ext.ranges().to_vec() {
            let mut from = r.after + 1;
            while from <= r.upto {
                let page = cps.chain_range(&r.chain, from, r.upto, PAGE).await?;
                let Some(last) = page.last() else {
                    return Err(refuse(format!(
                        "chain {:?}: events from seq {from} to its head {} are missing",
                        r.chain, r.upto
                    )));
                };
                from = last.seq + 1;
                for e in &page {
                    ext.push(e).map_err(|e| refuse(e.to_string()))?;
                }
            }
        }
        let tree = ext.finish().map_err(|e| refuse(e.to_string()))?;
        let checkpoint = Checkpoint {
            tree_size: tree.size(),
            root: tree.root(),
            issued_at_ms: now_ms,
            authority: self.key.authority.clone(),
            chains: heads.clone(),
        };
        let sign = Arc::clone(&self.key.sign);
        let to_sign = checkpoint.clone();
        // A PKCS#11 token blocks: off the async workers.
        let signed = tokio::task::spawn_blocking(move || sign(&to_sign))
            .await
            .map_err(|e| CheckpointFailure::Sign(e.to_string()))?
            .map_err(CheckpointFailure::Sign)?;
        let row = CheckpointRow {
            tree_size: tree.size(),
            root: checkpoint.root_hex(),
            at_ms: now_ms,
            heads,
            frontier: tree.peaks().iter().map(hex::encode).collect(),
            signed,
        };
        if !cps
            .insert_checkpoint(latest.map(|l| l.tree_size), &row)
            .await?
        {
            return Ok(Taken::Raced);
        }
        if let Some(dir) = &self.dir {
            write_checkpoint(dir, &row).await?;
        }
        Ok(Taken::Signed(row))
    }

    /// The external directory must not be ahead of the database, and must hold the
    /// database's latest checkpoint byte for byte (written now if a crash left it out).
    async fn agree_with_dir(
        &self,
        dir: &Path,
        latest: Option<&CheckpointRow>,
    ) -> Result<(), CheckpointFailure> {
        let d = dir.to_owned();
        let newest = tokio::task::spawn_blocking(move || newest_file(&d))
            .await
            .map_err(|e| CheckpointFailure::Dir {
                path: dir.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(|source| CheckpointFailure::Dir {
                path: dir.display().to_string(),
                source,
            })?;
        let db_size = latest.map_or(0, |l| l.tree_size);
        match (newest, latest) {
            (Some((size, _)), _) if size > db_size => Err(CheckpointFailure::Refused(format!(
                "{} holds the checkpoint of tree size {size}, the database's latest is of size \
                 {db_size}: checkpoints were removed from the database (run `tamga audit verify`)",
                dir.display()
            ))),
            (Some((size, bytes)), Some(l)) if size == l.tree_size && bytes != l.signed => {
                Err(CheckpointFailure::Refused(format!(
                    "the database's checkpoint of tree size {size} is not the one in {}",
                    dir.display()
                )))
            }
            (_, Some(l)) => write_checkpoint(dir, l).await,
            (_, None) => Ok(()),
        }
    }
}

async fn write_checkpoint(dir: &Path, row: &CheckpointRow) -> Result<(), CheckpointFailure> {
    let (d, name, bytes) = (dir.to_owned(), file_name(row.tree_size), row.signed.clone());
    let path = dir.join(&name);
    tokio::task::spawn_blocking(move || write_new(&d, &name, &bytes))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(|source| CheckpointFailure::Dir {
            path: path.display().to_string(),
            source,
        })
}

/// Writes `bytes` to `dir/name` unless that file exists with exactly these bytes: to a
/// temporary name first (synced), then linked to the final name, which fails rather than
/// replace a file; then the directory is synced so the name survives a crash.
pub fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::ErrorKind;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let same_or_refuse = |path: &Path| -> std::io::Result<()> {
        if std::fs::read(path)? == bytes {
            Ok(())
        } else {
            Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{} exists with other bytes: checkpoint files are never overwritten",
                    path.display()
                ),
            ))
        }
    };
    if path.exists() {
        return same_or_refuse(&path);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let tmp = dir.join(format!(".{name}.{}.{nanos}.tmp", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    let linked = match std::fs::hard_link(&tmp, &path) {
        Err(e) if e.kind() == ErrorKind::Unsupported || e.kind() == ErrorKind::PermissionDenied => {
            // A file system without hard links: rename, having checked the name is free
            // (a race with another writer of the same checkpoint is then possible, and
            // harmless: both write the database's bytes).
            if path.exists() {
                Err(std::io::Error::from(ErrorKind::AlreadyExists))
            } else {
                std::fs::rename(&tmp, &path)
            }
        }
        other => other,
    };
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return same_or_refuse(&path),
        Err(e) => return Err(e),
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Largest checkpoint file read (the XML parser's limit is 16 MiB).
const MAX_FILE: u64 = 16 * 1024 * 1024 + 1;

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Every checkpoint file in `dir` (`checkpoint-<20 digits>.xml`; other names are not
/// read), by tree size: `(path, bytes)`. A missing directory has none.
pub fn read_checkpoint_dir(dir: &Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(size) = name.to_str().and_then(size_of_file_name) {
            found.push((size, entry.path()));
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|(_, p)| Ok((p.display().to_string(), read_capped(&p)?)))
        .collect()
}

fn newest_file(dir: &Path) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut newest: Option<(u64, PathBuf)> = None;
    for entry in entries {
        let entry = entry?;
        if let Some(size) = entry.file_name().to_str().and_then(size_of_file_name) {
            if newest.as_ref().is_none_or(|(s, _)| size > *s) {
                newest = Some((size, entry.path()));
            }
        }
    }
    newest
        .map(|(size, p)| Ok((size, read_capped(&p)?)))
        .transpose()
}

/// Takes one checkpoint and reports it in the metrics and the log.
pub async fn checkpoint_and_report(cp: &Checkpointer, metrics: &Metrics, why: &str) {
    match cp.checkpoint(crate::now_ms()).await {
        Ok(Taken::Signed(row)) => {
            metrics
                .audit_checkpoints
                .with_label_values(&["signed"])
                .inc();
            metrics
                .audit_checkpoint_tree_size
                .set(i64::try_from(row.tree_size).unwrap_or(i64::MAX));
            metrics
                .audit_checkpoint_timestamp
                .set(row.at_ms.div_euclid(1000));
            tracing::info!(
                trigger = why,
                tree_size = row.tree_size,
                root = %row.root,
                chains = row.heads.len(),
                "audit checkpoint signed"
            );
        }
        Ok(Taken::NothingNew) => {
            metrics
                .audit_checkpoints
                .with_label_values(&["nothing_new"])
                .inc();
            tracing::debug!(trigger = why, "no audit checkpoint: nothing new");
        }
        Ok(Taken::Raced) => {
            metrics
                .audit_checkpoints
                .with_label_values(&["lost_race"])
                .inc();
            tracing::debug!(trigger = why, "another process stored the checkpoint first");
        }
        Err(e) => {
            metrics
                .audit_checkpoints
                .with_label_values(&[e.label()])
                .inc();
            match e {
                CheckpointFailure::Refused(_) => {
                    tracing::error!(trigger = why, error = %e, "audit checkpoint refused")
                }
                _ => {
                    tracing::warn!(trigger = why, error = %e, "audit checkpoint failed; retried at the next one")
                }
            }
        }
    }
}

/// Takes a checkpoint every `interval` until `shutdown` (the final one is the site's, at
/// stop, after the stages have settled).
pub async fn run_periodic(
    cp: Arc<Checkpointer>,
    metrics: Arc<Metrics>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        checkpoint_and_report(&cp, &metrics, "interval").await;
    }
}

/// Reads every event of `store` once, for both checks: the hash chains, and the leaves
/// of the checkpoint tree.
pub async fn read_trail(store: &dyn Store) -> Result<(ChainReport, Leaves), StoreError> {
    let mut chains = ChainVerifier::new();
    let mut leaves = Leaves::new();
    let mut after = None;
    loop {
        let page = store.events(after.take(), tamga_store::VERIFY_PAGE).await?;
        for e in &page {
            chains.push(e);
            leaves.push(e);
        }
        match page.last() {
            Some(last) if page.len() == tamga_store::VERIFY_PAGE => {
                after = Some((last.chain.clone(), last.seq));
            }
            _ => break,
        }
    }
    Ok((chains.finish(), leaves))
}

/// The certificates checkpoints are trusted from: the first certificate of each
/// configured authority and every `[audit] certificates` file.
pub fn pinned_certificates(cfg: &crate::Config) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for path in cfg
        .authority
        .iter()
        .map(|a| &a.cert)
        .chain(cfg.audit.certificates.iter())
    {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let certs = tamga_dsig::certificates_from_pem(&bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        out.extend(certs.into_iter().take(1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_written_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("witness");
        write_new(&sub, &file_name(7), b"<a/>").unwrap();
        write_new(&sub, &file_name(7), b"<a/>").unwrap();
        let err = write_new(&sub, &file_name(7), b"<b/>").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(sub.join(file_name(7))).unwrap(), b"<a/>");
        write_new(&sub, &file_name(12), b"<c/>").unwrap();
        std::fs::write(sub.join("notes.txt"), b"x").unwrap();
        let all = read_checkpoint_dir(&sub).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].0.ends_with("checkpoint-00000000000000000007.xml"));
        assert_eq!(all[1].1, b"<c/>");
        assert_eq!(newest_file(&sub).unwrap(), Some((12, b"<c/>".to_vec())));
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        assert!(read_checkpoint_dir(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
    }
}
