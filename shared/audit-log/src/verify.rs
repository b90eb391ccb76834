//! Checking the database against the signed checkpoints.
//!
//! The checkpoints come from two places: the external directory (the anchor: copies the
//! database's superuser cannot reach) and the database's own table. Every one must carry
//! a valid signature by a pinned authority certificate; a database row must agree with its
//! signed document and with the external copy of the same size. Then the tree is rebuilt
//! from the events in the database, in the order the checkpoints fix, and every
//! checkpoint's root must be the root of the tree prefix of its size. The first one that
//! is not names where history was rewritten or removed.

use std::collections::BTreeMap;

use tamga_store::CheckpointRow;

use crate::checkpoint::{size_of_file_name, verify_checkpoint, Checkpoint};
use crate::log::{Cut, CutProblem, Leaves};

/// A checkpoint that the database reproduces.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub tree_size: u64,
    pub root_hash: String,
    pub issued_at: String,
    /// The signing authority's country.
    pub authority: String,
    /// The external file, when there is one.
    pub file: Option<String>,
    /// True when the database has it too.
    pub in_database: bool,
}

/// The first checkpoint the database does not reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub tree_size: u64,
    pub issued_at: String,
    /// The external file, when there is one.
    pub file: Option<String>,
    pub problem: CutProblem,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checkpoint of tree size {} (signed {}, {}): {}",
            self.tree_size,
            self.issued_at,
            self.file.as_deref().map_or_else(
                || "in the database only".to_owned(),
                |p| format!("file {p}")
            ),
            self.problem
        )
    }
}

/// What [`check_checkpoints`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckpointReport {
    /// The checkpoints the database reproduces, ascending (all of them before the first
    /// broken one).
    pub checked: Vec<Checked>,
    /// Checkpoints that could not be trusted or that disagree with one another (bad
    /// signature, unknown signer, a database row unlike its signed document or unlike the
    /// external copy), one sentence each.
    pub problems: Vec<String>,
    /// The first checkpoint the database does not reproduce.
    pub broken: Option<Broken>,
    /// External checkpoint files read (signature valid or not).
    pub external_files: usize,
    /// Checkpoint rows in the database.
    pub database_rows: usize,
    /// Events after the latest checkpoint: not yet anchored.
    pub uncovered: u64,
}

impl CheckpointReport {
    /// True when every checkpoint is trusted and reproduced.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty() && self.broken.is_none()
    }

    /// The largest tree size an external checkpoint covers and the database reproduces.
    #[must_use]
    pub fn latest_external(&self) -> Option<&Checked> {
        self.checked.iter().rev().find(|c| c.file.is_some())
    }
}

/// A checkpoint whose signature verified, and where it was found.
#[derive(Debug, Clone)]
pub struct Trusted {
    pub checkpoint: Checkpoint,
    pub bytes: Vec<u8>,
    /// The external file, when there is one.
    pub file: Option<String>,
    /// True when the database has it too.
    pub in_database: bool,
}

impl Trusted {
    /// What it fixes about the tree.
    #[must_use]
    pub fn cut(&self) -> Cut<'_> {
        Cut {
            tree_size: self.checkpoint.tree_size,
            root: self.checkpoint.root,
            heads: &self.checkpoint.chains,
        }
    }
}

/// The checkpoints of the database's rows and the external files (`(path, bytes)`) whose
/// signatures verify against `pinned` (DER), one per tree size, ascending — and a sentence
/// for each one that does not, or that disagrees with another copy.
#[must_use]
pub fn trusted_checkpoints(
    rows: &[CheckpointRow],
    files: &[(String, Vec<u8>)],
    pinned: &[Vec<u8>],
) -> (Vec<Trusted>, Vec<String>) {
    let mut problems = Vec::new();
    let mut by_size: BTreeMap<u64, Trusted> = BTreeMap::new();
    for (path, bytes) in files {
        let cp = match verify_checkpoint(bytes, pinned) {
            Ok(cp) => cp,
            Err(e) => {
                problems.push(format!("checkpoint file {path}: {e}"));
                continue;
            }
        };
        let name = std::path::Path::new(path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if size_of_file_name(name) != Some(cp.tree_size) {
            problems.push(format!(
                "checkpoint file {path} holds the checkpoint of tree size {}: its name says otherwise",
                cp.tree_size
            ));
            continue;
        }
        by_size.insert(
            cp.tree_size,
            Trusted {
                checkpoint: cp,
                bytes: bytes.clone(),
                file: Some(path.clone()),
                in_database: false,
            },
        );
    }
    for row in rows {
        let cp = match verify_checkpoint(&row.signed, pinned) {
            Ok(cp) => cp,
            Err(e) => {
                problems.push(format!(
                    "the database's checkpoint of tree size {}: {e}",
                    row.tree_size
                ));
                continue;
            }
        };
        if cp.tree_size != row.tree_size || cp.root_hex() != row.root || cp.chains != row.heads {
            problems.push(format!(
                "the database's checkpoint row of tree size {} does not agree with its own \
                 signed document (tree size {}, root {}): the row was edited",
                row.tree_size,
                cp.tree_size,
                cp.root_hex()
            ));
            continue;
        }
        match by_size.get_mut(&cp.tree_size) {
            Some(e) if e.bytes == row.signed => e.in_database = true,
            Some(e) => problems.push(format!(
                "the database's checkpoint of tree size {} is not the one in {}",
                cp.tree_size,
                e.file.as_deref().unwrap_or("the external directory")
            )),
            None => {
                by_size.insert(
                    cp.tree_size,
                    Trusted {
                        checkpoint: cp,
                        bytes: row.signed.clone(),
                        file: None,
                        in_database: true,
                    },
                );
            }
        }
    }
    (by_size.into_values().collect(), problems)
}

/// Checks `leaves` (every event in the database) against the checkpoint rows of the
/// database and the external checkpoint files (`(path, bytes)`), trusting signatures by
/// the `pinned` certificates (DER) only.
#[must_use]
pub fn check_checkpoints(
    leaves: &Leaves,
    rows: &[CheckpointRow],
    files: &[(String, Vec<u8>)],
    pinned: &[Vec<u8>],
) -> CheckpointReport {
    let (entries, problems) = trusted_checkpoints(rows, files, pinned);
    let mut report = CheckpointReport {
        external_files: files.len(),
        database_rows: rows.len(),
        problems,
        ..CheckpointReport::default()
    };
    let cuts: Vec<Cut<'_>> = entries.iter().map(Trusted::cut).collect();
    let good = match leaves.replay(&cuts, |_, _, _, _| {}) {
        Ok(_) => entries.len(),
        Err((i, problem)) => {
            if let Some(e) = entries.get(i) {
                report.broken = Some(Broken {
                    tree_size: e.checkpoint.tree_size,
                    issued_at: e.checkpoint.issued_at(),
                    file: e.file.clone(),
                    problem,
                });
            }
            i
        }
    };
    report.checked = entries
        .iter()
        .take(good)
        .map(|e| Checked {
            tree_size: e.checkpoint.tree_size,
            root_hash: e.checkpoint.root_hex(),
            issued_at: e.checkpoint.issued_at(),
            authority: e.checkpoint.authority.country.clone(),
            file: e.file.clone(),
            in_database: e.in_database,
        })
        .collect();
    let covered = entries.last().map_or(0, |e| e.checkpoint.tree_size);
    report.uncovered = leaves.events().saturating_sub(covered);
    report
}
