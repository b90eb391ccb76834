//! Signed checkpoints of Tamga's audit trail, in the manner of Certificate Transparency's
//! signed tree heads (RFC 9162): every audit event is a leaf of one Merkle tree
//! ([`log`]: the leaf, and an order the checkpoints fix), and at intervals the authority's
//! key signs a checkpoint ([`checkpoint`]) over the tree's size and root and every chain's
//! head. Checkpoints are kept in the database and, above all, outside it (a directory a
//! backup or a witness collects): whoever can rewrite the database — and recompute every
//! hash in it — cannot re-sign, so [`verify::check_checkpoints`] sees a rewrite of
//! anything behind the last external checkpoint, and events removed from behind it.
//!
//! Pure: bytes, events and certificates in, values out. Reading the store and the
//! checkpoint directory is the caller's (`tamga-pipeline`, `tamga audit`).
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod checkpoint;
pub mod log;
pub mod verify;

pub use checkpoint::{
    file_name, parse_checkpoint, size_of_file_name, verify_checkpoint, Checkpoint,
    CheckpointAuthority, CheckpointError, NAMESPACE,
};
pub use log::{
    event_leaf, prove_consistency, prove_inclusion, ranges, ConsistencyProof, Cut, CutProblem,
    ExtendError, Extension, InclusionProof, Leaves, OrderError, ProveError, Range,
};
pub use verify::{
    check_checkpoints, trusted_checkpoints, Broken, Checked, CheckpointReport, Trusted,
};
