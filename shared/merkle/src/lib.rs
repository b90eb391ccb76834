//! Merkle hash trees as RFC 9162 §2.1 defines them (the trees of Certificate Transparency):
//! the tree head of an ordered list of leaves, audit paths (inclusion proofs), consistency
//! proofs between two sizes of one append-only list, and their verification.
//!
//! * leaf hash: `SHA-256(0x00 || leaf)`; interior node: `SHA-256(0x01 || left || right)`;
//! * `MTH(D[n])` for `n > 1` splits at `k`, the largest power of two smaller than `n`:
//!   `SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))`; the empty tree's head is `SHA-256()`.
//!
//! Everything here works on **leaf hashes** (the caller hashes its leaves with
//! [`leaf_hash`] once) and is pure: slices in, hashes or errors out. Verification follows
//! the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, and refuses proofs of the
//! wrong length rather than ignoring extra hashes.
//!
//! [`CompactTree`] keeps only the perfect subtrees along the right edge (`log2 n` hashes),
//! so a log can be extended and its head recomputed without reading its old leaves again.
#![forbid(unsafe_code)]

use aws_lc_rs::digest;

/// Bytes in a hash (SHA-256).
pub const HASH_LEN: usize = 32;

/// A SHA-256 value.
pub type Hash = [u8; HASH_LEN];

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("tree size {old} is larger than tree size {new}")]
    SizesReversed { old: u64, new: u64 },
    /// The proof has too few or too many hashes for the sizes given.
    #[error("the proof has the wrong number of hashes ({got})")]
    WrongLength { got: usize },
    /// The proof leads to another root than the one given.
    #[error("the proof does not lead to the given root hash")]
    RootMismatch,
    /// A consistency proof that does not lead to the older tree's root.
    #[error("the proof does not lead to the older tree's root hash")]
    OldRootMismatch,
    /// A compact tree's right-edge hashes do not fit its size.
    #[error("a tree of {size} leaves has {want} right-edge subtrees, not {got}")]
    BadPeaks { size: u64, want: u32, got: usize },
    /// The tree cannot grow any more (2^64 − 1 leaves).
    #[error("the tree is full")]
    Full,
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; HASH_LEN];
    // Invariant: a SHA-256 digest is HASH_LEN bytes, so the lengths agree.
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `SHA-256(0x00 || data)`: the hash of one leaf.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// `SHA-256(0x01 || left || right)`: an interior node.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The head of the empty tree: `SHA-256()` of nothing.
#[must_use]
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The largest power of two smaller than `n` (`n > 1`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k < n - k {
        k <<= 1;
    }
    k
}

/// `MTH(D[n])` of the leaves whose hashes are `leaves`, in order.
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

fn to_index(v: u64, size: usize) -> Result<usize, ProofError> {
    usize::try_from(v).map_err(|_| ProofError::IndexOutOfRange {
        index: v,
        size: size as u64,
    })
}

/// The audit path `PATH(index, D[n])` of leaf `index` in the tree of `leaves`
/// (RFC 9162 §2.1.3.1): the sibling hashes from the leaf up to the root.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let m = to_index(index, leaves.len())?;
    if m >= leaves.len() {
        return Err(ProofError::IndexOutOfRange {
            index,
            size: leaves.len() as u64,
        });
    }
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split(d.len());
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(m, leaves, &mut out);
    Ok(out)
}

/// The consistency proof `PROOF(old_size, D[n])` between the first `old_size` leaves and
/// all of `leaves` (RFC 9162 §2.1.4.1); empty when `old_size` is 0 or `n`.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let n = leaves.len();
    let m = usize::try_from(old_size).map_err(|_| ProofError::SizesReversed {
        old: old_size,
        new: n as u64,
    })?;
    if m > n {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: n as u64,
        });
    }
    fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
        if m == d.len() {
            if !complete {
                out.push(root(d));
            }
            return;
        }
        let k = split(d.len());
        if m <= k {
            subproof(m, &d[..k], complete, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

/// Shifts `f` and `s` right together until `f` is odd or zero.
fn shift_to_odd(f: &mut u64, s: &mut u64) {
    while *f & 1 == 0 && *f != 0 {
        *f >>= 1;
        *s >>= 1;
    }
}

/// Checks that `leaf` (a leaf hash) is leaf `index` of the tree of `size` leaves whose head
/// is `root`, by the audit path `proof` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength { got: proof.len() });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                shift_to_odd(&mut f, &mut s);
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength { got: proof.len() });
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with head `old_root` is a prefix of the tree
/// of `new_size` leaves with head `new_root`, by `proof` (RFC 9162 §2.1.4.2). Equal sizes
/// need equal heads and an empty proof; the empty tree is a prefix of every tree.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesReversed {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength { got: proof.len() });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    let (first, rest): (&Hash, &[Hash]) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (first, rest),
            None => return Err(ProofError::WrongLength { got: 0 }),
        }
    };
    if proof.is_empty() {
        return Err(ProofError::WrongLength { got: 0 });
    }
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength { got: proof.len() });
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                shift_to_odd(&mut f, &mut s);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength { got: proof.len() });
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A tree kept as the roots of the perfect subtrees along its right edge ("peaks"), left
/// to right: one per bit set in its size, largest first. Enough to append leaves and to
/// compute the head, in `O(log n)` space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactTree {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactTree {
    /// The empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of `size` leaves from its peaks (as [`CompactTree::peaks`] gave them).
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Result<Self, ProofError> {
        let want = size.count_ones();
        if peaks.len() != want as usize {
            return Err(ProofError::BadPeaks {
                size,
                want,
                got: peaks.len(),
            });
        }
        Ok(Self { size, peaks })
    }

    /// Number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right-edge subtree roots, largest (leftmost) first.
    #[must_use]
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf (its leaf hash).
    pub fn push(&mut self, leaf: Hash) -> Result<(), ProofError> {
        let next = self.size.checked_add(1).ok_or(ProofError::Full)?;
        // Each trailing one bit of the old size is a peak of the same height as the
        // node being carried: merge them, as in a binary counter.
        let mut node = leaf;
        let mut carry = self.size;
        while carry & 1 == 1 {
            let Some(left) = self.peaks.pop() else {
                // Unreachable while peaks.len() == size.count_ones() (every constructor
                // checks it); refusing keeps a corrupted tree from growing.
                return Err(ProofError::BadPeaks {
                    size: self.size,
                    want: self.size.count_ones(),
                    got: 0,
                });
            };
            node = node_hash(&left, &node);
            carry >>= 1;
        }
        self.peaks.push(node);
        self.size = next;
        Ok(())
    }

    /// `MTH` of the leaves appended so far.
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |right, left| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1025, 1024)] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn compact_tree_agrees_with_mth() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut t = CompactTree::new();
        assert_eq!(t.root(), empty_root());
        for (i, l) in leaves.iter().enumerate() {
            t.push(*l).unwrap();
            assert_eq!(t.root(), root(&leaves[..=i]), "size {}", i + 1);
            assert_eq!(t.peaks().len(), (i + 1).count_ones() as usize);
        }
        let again = CompactTree::from_peaks(t.size(), t.peaks().to_vec()).unwrap();
        assert_eq!(again, t);
        assert!(CompactTree::from_peaks(7, vec![[0; 32]; 2]).is_err());
    }
}
