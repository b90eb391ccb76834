//! The log: every audit event is a leaf of one Merkle tree (RFC 9162 §2.1), in an order
//! the checkpoints themselves fix.
//!
//! **Leaf.** The leaf of an event is the 32 bytes of its event hash (`tamga_store::event_hash`,
//! recomputed from its fields: chain, seq, predecessor's hash and every field), so the
//! tree commits to each event's content and to its chain links; leaf hash
//! `SHA-256(0x00 || event hash)`.
//!
//! **Order.** Writers append to their own chains concurrently (and the group committer
//! commits many at once), so commit order is neither global nor reproducible. Within a
//! chain, though, appends are serialised and committed in seq order, so any snapshot
//! sees every chain as a prefix `1..=head`. A checkpoint records every chain's head; the
//! leaves it adds to the tree are, chain by chain in byte order of the chain name, the
//! events after the previous checkpoint's head of that chain up to its own, in seq order.
//! Given the checkpoints, the tree is rebuilt from the database alone; each checkpoint's
//! tree is a prefix of the next one's, so two checkpoints have a consistency proof.

use std::collections::BTreeMap;

use tamga_merkle::{
    consistency_proof, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion,
    CompactTree, Hash, ProofError,
};
use tamga_store::{ChainHead, StoredEvent, GENESIS_HASH};

use crate::checkpoint::hash_from_hex;

/// The leaf hash of an event: `SHA-256(0x00 || event hash)`, the event hash recomputed from
/// its fields.
#[must_use]
pub fn event_leaf(e: &StoredEvent) -> Hash {
    leaf_of_hash(&event_hash_bytes(e))
}

fn event_hash_bytes(e: &StoredEvent) -> Hash {
    // Invariant: event_hash returns 64 lower-case hex digits.
    hash_from_hex(&e.expected_hash()).unwrap_or([0; 32])
}

fn leaf_of_hash(h: &Hash) -> Hash {
    leaf_hash(h)
}

/// The events one checkpoint adds for one chain: seqs `after + 1 ..= upto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub chain: String,
    /// The previous checkpoint's head of the chain (0: none).
    pub after: i64,
    /// This checkpoint's head.
    pub upto: i64,
}

impl Range {
    /// Number of events.
    #[must_use]
    pub fn len(&self) -> u64 {
        (self.upto - self.after).unsigned_abs()
    }

    /// True when the chain did not grow.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.upto == self.after
    }
}

/// Why one set of heads cannot follow another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// A chain of the earlier heads is missing from the later ones.
    #[error("chain {chain:?} (head seq {seq} before) is missing")]
    ChainMissing { chain: String, seq: i64 },
    /// A chain's head went backwards.
    #[error("chain {chain:?} went back from seq {before} to seq {after}")]
    Backwards {
        chain: String,
        before: i64,
        after: i64,
    },
    /// Heads not in byte order of the chain name, or repeated.
    #[error("chain heads are not in byte order of their names without repeats ({0:?})")]
    Unordered(String),
}

/// The leaves `next` adds after `prev`, in tree order (both ordered by chain name).
pub fn ranges(prev: &[ChainHead], next: &[ChainHead]) -> Result<Vec<Range>, OrderError> {
    for w in next.windows(2) {
        if w[0].chain.as_bytes() >= w[1].chain.as_bytes() {
            return Err(OrderError::Unordered(w[1].chain.clone()));
        }
    }
    let before: BTreeMap<&str, i64> = prev.iter().map(|h| (h.chain.as_str(), h.seq)).collect();
    let after: BTreeMap<&str, i64> = next.iter().map(|h| (h.chain.as_str(), h.seq)).collect();
    for (chain, seq) in &before {
        if !after.contains_key(chain) {
            return Err(OrderError::ChainMissing {
                chain: (*chain).to_owned(),
                seq: *seq,
            });
        }
    }
    let mut out = Vec::new();
    for h in next {
        let was = before.get(h.chain.as_str()).copied().unwrap_or(0);
        if h.seq < was {
            return Err(OrderError::Backwards {
                chain: h.chain.clone(),
                before: was,
                after: h.seq,
            });
        }
        if h.seq > was {
            out.push(Range {
                chain: h.chain.clone(),
                after: was,
                upto: h.seq,
            });
        }
    }
    Ok(out)
}

/// The events' recomputed hashes as the database holds them, chain by chain, fed in
/// (chain, seq) order. A chain is kept up to its first gap.
#[derive(Debug, Default)]
pub struct Leaves {
    chains: BTreeMap<String, Vec<Hash>>,
    /// Chains with a gap: the first seq that was not where expected.
    gaps: BTreeMap<String, i64>,
    events: u64,
}

impl Leaves {
    /// Nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The next event, in (chain, seq) order.
    pub fn push(&mut self, e: &StoredEvent) {
        self.events += 1;
        if self.gaps.contains_key(&e.chain) {
            return;
        }
        let hashes = self.chains.entry(e.chain.clone()).or_default();
        let want = hashes.len() as i64 + 1;
        if e.seq != want {
            self.gaps.insert(e.chain.clone(), want);
            return;
        }
        hashes.push(event_hash_bytes(e));
    }

    /// Events pushed.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The recomputed hash of `chain`'s event `seq`, if it is there (before any gap).
    #[must_use]
    pub fn event_hash(&self, chain: &str, seq: i64) -> Option<&Hash> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.chains.get(chain)?.get(i)
    }

    /// Replays the tree through `cuts` (ascending tree sizes), calling `leaf(chain, seq,
    /// index, leaf hash)` for every leaf, and checks each cut's size and root. Stops at
    /// the first cut that does not match: `Err((its position in cuts, why))`.
    pub fn replay(
        &self,
        cuts: &[Cut<'_>],
        mut leaf: impl FnMut(&str, i64, u64, &Hash),
    ) -> Result<CompactTree, (usize, CutProblem)> {
        let mut tree = CompactTree::new();
        let mut prev: &[ChainHead] = &[];
        for (i, cut) in cuts.iter().enumerate() {
            let fail = |p| Err((i, p));
            let rs = match ranges(prev, cut.heads) {
                Ok(rs) => rs,
                Err(e) => return fail(CutProblem::Order(e)),
            };
            for r in &rs {
                for seq in r.after + 1..=r.upto {
                    let Some(h) = self.event_hash(&r.chain, seq) else {
                        return fail(CutProblem::Missing {
                            chain: r.chain.clone(),
                            seq,
                            database_head: self.present_head(&r.chain),
                        });
                    };
                    let lh = leaf_of_hash(h);
                    leaf(&r.chain, seq, tree.size(), &lh);
                    if tree.push(lh).is_err() {
                        return fail(CutProblem::SizeMismatch {
                            heads_add_up_to: u64::MAX,
                            stated: cut.tree_size,
                        });
                    }
                }
            }
            if tree.size() != cut.tree_size {
                return fail(CutProblem::SizeMismatch {
                    heads_add_up_to: tree.size(),
                    stated: cut.tree_size,
                });
            }
            let computed = tree.root();
            if computed != cut.root {
                let head = cut.heads.iter().find_map(|h| {
                    let database = self.event_hash(&h.chain, h.seq).map(hex::encode)?;
                    (database != h.hash).then(|| HeadMismatch {
                        chain: h.chain.clone(),
                        seq: h.seq,
                        signed: h.hash.clone(),
                        database,
                    })
                });
                return fail(CutProblem::RootMismatch { computed, head });
            }
            prev = cut.heads;
        }
        Ok(tree)
    }

    /// The last seq of `chain` present without a gap (0 when none).
    fn present_head(&self, chain: &str) -> i64 {
        self.chains.get(chain).map_or(0, |v| v.len() as i64)
    }
}

/// What a checkpoint fixes about the tree.
#[derive(Debug, Clone, Copy)]
pub struct Cut<'a> {
    pub tree_size: u64,
    pub root: Hash,
    /// Every chain's head, ordered by chain name.
    pub heads: &'a [ChainHead],
}

/// A head the database no longer agrees with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadMismatch {
    pub chain: String,
    pub seq: i64,
    /// The head hash the checkpoint signed.
    pub signed: String,
    /// The hash the database's event at that seq has now (recomputed from its fields).
    pub database: String,
}

/// Why the database does not reproduce a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CutProblem {
    /// Its heads cannot follow the previous checkpoint's.
    Order(OrderError),
    /// An event it covers is not in the database (deleted, or the chain truncated).
    Missing {
        chain: String,
        seq: i64,
        /// The chain's last event present without a gap.
        database_head: i64,
    },
    /// Its heads add up to another size than it states.
    SizeMismatch { heads_add_up_to: u64, stated: u64 },
    /// The events it covers hash to another root: history behind it was rewritten.
    RootMismatch {
        computed: Hash,
        /// The first chain head whose event now hashes differently, when one does.
        head: Option<HeadMismatch>,
    },
}

impl std::fmt::Display for CutProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutProblem::Order(e) => write!(
                f,
                "its chain heads cannot follow the previous checkpoint's: {e}"
            ),
            CutProblem::Missing {
                chain,
                seq,
                database_head,
            } => write!(
                f,
                "it covers chain {chain:?} up to at least seq {seq}, but the database's chain \
                 {}: events were removed",
                if *database_head == 0 {
                    "has no events".to_owned()
                } else {
                    format!("ends at seq {database_head} (or has a gap after it)")
                }
            ),
            CutProblem::SizeMismatch {
                heads_add_up_to,
                stated,
            } => write!(
                f,
                "its chain heads add up to {heads_add_up_to} events but it states {stated}"
            ),
            CutProblem::RootMismatch { computed, head } => {
                write!(
                    f,
                    "the events it covers now hash to root {}, not to the signed root: \
                     history behind it was rewritten",
                    hex::encode(computed)
                )?;
                if let Some(h) = head {
                    write!(
                        f,
                        " (chain {:?} seq {}: signed head hash {}, the database's event hashes \
                         to {})",
                        h.chain, h.seq, h.signed, h.database
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Why the tree could not be extended with new events (the checkpointer refuses to sign
/// then: signing over a rewritten past would launder it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtendError {
    /// The previous checkpoint's stored frontier or root is not usable or does not match.
    #[error("the previous checkpoint (tree size {tree_size}) is inconsistent: {why}")]
    Previous { tree_size: u64, why: String },
    /// The current heads cannot follow the previous checkpoint's.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// An event is not the one expected next, does not link to its predecessor, or no
    /// longer hashes to its stored hash.
    #[error("chain {chain:?} seq {seq}: {why}")]
    Event {
        chain: String,
        seq: i64,
        why: String,
    },
    /// Fewer events than the heads promise.
    #[error("chain {chain:?}: expected events up to seq {upto}, got up to {got}")]
    Short { chain: String, upto: i64, got: i64 },
    #[error("the tree is full")]
    Full,
}

/// Extends the tree of the latest checkpoint with the events after it, checking each one.
#[derive(Debug)]
pub struct Extension {
    tree: CompactTree,
    prev_heads: Vec<ChainHead>,
    ranges: Vec<Range>,
    /// Position in `ranges`, and the last seq and hash taken in it.
    at: usize,
    last: Option<(i64, String)>,
}

impl Extension {
    /// From the latest checkpoint (`None`: the empty tree): its size, root, frontier and
    /// heads as stored, and the chains' heads now. The frontier must give the root.
    pub fn new(
        previous: Option<(u64, &str, &[String], &[ChainHead])>,
        current: &[ChainHead],
    ) -> Result<Self, ExtendError> {
        let (tree, prev_heads) = match previous {
            None => (CompactTree::new(), Vec::new()),
            Some((size, root, frontier, heads)) => {
                let bad = |why: String| ExtendError::Previous {
                    tree_size: size,
                    why,
                };
                let peaks = frontier
                    .iter()
                    .map(|h| hash_from_hex(h).ok_or_else(|| bad(format!("frontier hash {h:?}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                let tree = CompactTree::from_peaks(size, peaks).map_err(|e| bad(e.to_string()))?;
                if hex::encode(tree.root()) != root {
                    return Err(bad(
                        "its frontier does not hash to its root (the row was edited)".into(),
                    ));
                }
                let covered: u64 = heads.iter().map(|h| h.seq.unsigned_abs()).sum();
                if covered != size {
                    return Err(bad(format!("its heads add up to {covered} events")));
                }
                (tree, heads.to_vec())
            }
        };
        let ranges = ranges(&prev_heads, current)?;
        // A chain that did not grow must still end in the event the checkpoint signed: its
        // head rewritten in place is not something to sign over.
        for h in current {
            if let Some(p) = prev_heads.iter().find(|p| p.chain == h.chain) {
                if p.seq == h.seq && p.hash != h.hash {
                    return Err(ExtendError::Event {
                        chain: h.chain.clone(),
                        seq: h.seq,
                        why: format!(
                            "the checkpoint signed head hash {}, the database now has {}",
                            p.hash, h.hash
                        ),
                    });
                }
            }
        }
        Ok(Self {
            tree,
            prev_heads,
            ranges,
            at: 0,
            last: None,
        })
    }

    /// The ranges of events to read and [`Extension::push`], in this order.
    #[must_use]
    pub fn ranges(&self) -> &[Range] {
        &self.ranges
    }

    /// True when there is nothing new.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn prev_hash_of(&self, chain: &str) -> String {
        self.prev_heads
            .iter()
            .find(|h| h.chain == chain)
            .map_or_else(|| GENESIS_HASH.to_owned(), |h| h.hash.clone())
    }

    /// The next event, in the order of [`Extension::ranges`].
    pub fn push(&mut self, e: &StoredEvent) -> Result<(), ExtendError> {
        let bad = |why: String| ExtendError::Event {
            chain: e.chain.clone(),
            seq: e.seq,
            why,
        };
        loop {
            let Some(r) = self.ranges.get(self.at) else {
                return Err(bad("not expected: every range is complete".into()));
            };
            if self.last.as_ref().is_some_and(|(seq, _)| *seq == r.upto) {
                self.at += 1;
                self.last = None;
                continue;
            }
            if r.chain != e.chain {
                return Err(bad(format!(
                    "expected chain {:?} seq {}",
                    r.chain,
                    self.last.as_ref().map_or(r.after, |l| l.0) + 1
                )));
            }
            let (want_seq, want_prev) = match &self.last {
                Some((seq, hash)) => (seq + 1, hash.clone()),
                None => (r.after + 1, self.prev_hash_of(&r.chain)),
            };
            if e.seq != want_seq {
                return Err(bad(format!("expected seq {want_seq}")));
            }
            if e.prev_hash != want_prev {
                return Err(bad(format!(
                    "does not link to its predecessor (prev_hash {}, the predecessor's hash \
                     is {want_prev})",
                    e.prev_hash
                )));
            }
            let expected = e.expected_hash();
            if e.hash != expected {
                return Err(bad(format!(
                    "its fields hash to {expected}, the stored hash is {}",
                    e.hash
                )));
            }
            self.tree
                .push(event_leaf(e))
                .map_err(|_| ExtendError::Full)?;
            self.last = Some((e.seq, e.hash.clone()));
            return Ok(());
        }
    }

    /// The extended tree, once every range was pushed.
    pub fn finish(mut self) -> Result<CompactTree, ExtendError> {
        loop {
            let Some(r) = self.ranges.get(self.at) else {
                return Ok(self.tree);
            };
            let got = self.last.as_ref().map_or(r.after, |l| l.0);
            if got != r.upto {
                return Err(ExtendError::Short {
                    chain: r.chain.clone(),
                    upto: r.upto,
                    got,
                });
            }
            self.at += 1;
            self.last = None;
        }
    }
}

/// An event's inclusion in a checkpoint's tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    pub chain: String,
    pub seq: i64,
    /// Its recomputed event hash (the leaf's data), hex.
    pub event_hash: String,
    /// `SHA-256(0x00 || event hash)`, hex.
    pub leaf_hash: String,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The checkpoint's root, hex.
    pub root_hash: String,
    /// The audit path, leaf to root, hex.
    pub proof: Vec<String>,
    /// The smallest checkpoint that covers the event.
    pub first_covered_by: u64,
}

/// A consistency proof between two checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub old_root_hash: String,
    pub new_size: u64,
    pub new_root_hash: String,
    pub proof: Vec<String>,
}

/// Why a proof could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError {
    /// No checkpoint covers the event yet.
    #[error("chain {chain:?} seq {seq} is not covered by any checkpoint yet (the latest covers {latest} events)")]
    NotCovered {
        chain: String,
        seq: i64,
        latest: u64,
    },
    /// The event is not in the database.
    #[error("chain {chain:?} has no event seq {seq}")]
    NoSuchEvent { chain: String, seq: i64 },
    /// No checkpoint of that size.
    #[error("no checkpoint of tree size {0}")]
    NoSuchCheckpoint(u64),
    /// The database does not reproduce a checkpoint: no proof against it can hold.
    #[error("checkpoint of tree size {tree_size} does not match the database: {problem}")]
    Broken { tree_size: u64, problem: CutProblem },
    /// The proof made does not verify (it cannot, unless the database changed meanwhile).
    #[error("the proof does not verify: {0}")]
    Proof(#[from] ProofError),
}

fn hexes(v: &[Hash]) -> Vec<String> {
    v.iter().map(hex::encode).collect()
}

/// Replays every cut, keeping the leaf hashes in tree order.
fn all_leaves(leaves: &Leaves, cuts: &[Cut<'_>]) -> Result<Vec<Hash>, ProveError> {
    let mut out = Vec::new();
    leaves
        .replay(cuts, |_, _, _, lh| out.push(*lh))
        .map_err(|(i, problem)| ProveError::Broken {
            tree_size: cuts.get(i).map_or(0, |c| c.tree_size),
            problem,
        })?;
    Ok(out)
}

/// The inclusion proof of `chain`'s event `seq` in the tree of the last of `cuts`
/// (ascending), verified before it is returned.
pub fn prove_inclusion(
    leaves: &Leaves,
    cuts: &[Cut<'_>],
    chain: &str,
    seq: i64,
) -> Result<InclusionProof, ProveError> {
    let event_hash = *leaves
        .event_hash(chain, seq)
        .ok_or_else(|| ProveError::NoSuchEvent {
            chain: chain.to_owned(),
            seq,
        })?;
    let mut index = None;
    let mut ordered = Vec::new();
    leaves
        .replay(cuts, |c, s, i, lh| {
            if c == chain && s == seq {
                index = Some(i);
            }
            ordered.push(*lh);
        })
        .map_err(|(i, problem)| ProveError::Broken {
            tree_size: cuts.get(i).map_or(0, |c| c.tree_size),
            problem,
        })?;
    let latest = cuts.last().map_or(0, |c| c.tree_size);
    let (Some(index), Some(last)) = (index, cuts.last()) else {
        return Err(ProveError::NotCovered {
            chain: chain.to_owned(),
            seq,
            latest,
        });
    };
    let proof = inclusion_proof(&ordered, index)?;
    let lh = leaf_of_hash(&event_hash);
    verify_inclusion(&lh, index, last.tree_size, &proof, &last.root)?;
    let first_covered_by = cuts
        .iter()
        .find(|c| c.tree_size > index)
        .map_or(last.tree_size, |c| c.tree_size);
    Ok(InclusionProof {
        chain: chain.to_owned(),
        seq,
        event_hash: hex::encode(event_hash),
        leaf_hash: hex::encode(lh),
        leaf_index: index,
        tree_size: last.tree_size,
        root_hash: hex::encode(last.root),
        proof: hexes(&proof),
        first_covered_by,
    })
}

/// The consistency proof between the checkpoints of `old_size` and `new_size` leaves
/// (both among `cuts`), verified against their signed roots before it is returned.
pub fn prove_consistency(
    leaves: &Leaves,
    cuts: &[Cut<'_>],
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, ProveError> {
    let find = |size: u64| {
        cuts.iter()
            .find(|c| c.tree_size == size)
            .ok_or(ProveError::NoSuchCheckpoint(size))
    };
    let (old, new) = (find(old_size)?, find(new_size)?);
    let upto: Vec<Cut<'_>> = cuts
        .iter()
        .filter(|c| c.tree_size <= new_size)
        .copied()
        .collect();
    let ordered = all_leaves(leaves, &upto)?;
    let n = usize::try_from(new_size).map_err(|_| ProveError::NoSuchCheckpoint(new_size))?;
    let prefix = ordered
        .get(..n)
        .ok_or(ProveError::NoSuchCheckpoint(new_size))?;
    let proof = consistency_proof(prefix, old_size)?;
    verify_consistency(old_size, new_size, &old.root, &new.root, &proof)?;
    Ok(ConsistencyProof {
        old_size,
        old_root_hash: hex::encode(old.root),
        new_size,
        new_root_hash: hex::encode(new.root),
        proof: hexes(&proof),
    })
}
