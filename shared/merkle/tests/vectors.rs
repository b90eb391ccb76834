//! Known-answer tests and corruption probes.
//!
//! The leaves, roots, inclusion and consistency proofs below are the RFC 6962 / RFC 9162
//! test vectors of transparency-dev/merkle, `proof/verify_test.go` (Apache-2.0, Copyright
//! 2017 Google LLC; they descend from the certificate-transparency C++ log's
//! `merkle_tree_test.cc`). Copied as data; the probes mirror that file's
//! `corruptInclusionProof` and `corruptConsistencyProof`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tamga_merkle::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, root, verify_consistency,
    verify_inclusion, CompactTree, Hash, ProofError,
};

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// MTH of the first 1..=8 leaves.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf, 1-based as in the source; tree size; proof)
const INCLUSION: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof)
const CONSISTENCY: &[(u64, u64, &[&str])] = &[
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";
const EMPTY_TREE: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn leaf_hashes() -> Vec<Hash> {
    LEAVES
        .iter()
        .map(|l| leaf_hash(&hex::decode(l).unwrap()))
        .collect()
}

fn hashes(v: &[&str]) -> Vec<Hash> {
    v.iter().map(|s| h(s)).collect()
}

#[test]
fn empty_tree_head() {
    assert_eq!(empty_root(), h(EMPTY_TREE));
    assert_eq!(root(&[]), h(EMPTY_TREE));
}

#[test]
fn roots_of_every_prefix() {
    let leaves = leaf_hashes();
    let mut compact = CompactTree::new();
    for (i, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..=i]), h(want), "size {}", i + 1);
        compact.push(leaves[i]).unwrap();
        assert_eq!(compact.root(), h(want), "compact, size {}", i + 1);
    }
}

#[test]
fn inclusion_proofs_are_the_known_ones() {
    let leaves = leaf_hashes();
    for (leaf, size, proof) in INCLUSION {
        let index = leaf - 1;
        let made = inclusion_proof(&leaves[..*size as usize], index).unwrap();
        assert_eq!(made, hashes(proof), "leaf {index} of {size}");
    }
}

#[test]
fn consistency_proofs_are_the_known_ones() {
    let leaves = leaf_hashes();
    for (old, new, proof) in CONSISTENCY {
        let made = consistency_proof(&leaves[..*new as usize], *old).unwrap();
        assert_eq!(made, hashes(proof), "{old} -> {new}");
    }
}

/// The valid proof verifies; every corruption of it does not.
#[test]
fn inclusion_verification_and_corruptions() {
    let leaves = leaf_hashes();
    let some = h(SOME_HASH);
    let empty = h(EMPTY_TREE);
    for (leaf, size, proof) in INCLUSION {
        let (index, size) = (leaf - 1, *size);
        let proof = hashes(proof);
        let r = h(ROOTS[size as usize - 1]);
        let lh = leaves[index as usize];
        verify_inclusion(&lh, index, size, &proof, &r).unwrap();

        let mut probes: Vec<(String, u64, u64, Hash, Vec<Hash>, Hash)> = vec![
            (
                "index - 1".into(),
                index.wrapping_sub(1),
                size,
                lh,
                proof.clone(),
                r,
            ),
            ("index + 1".into(), index + 1, size, lh, proof.clone(), r),
            ("index ^ 2".into(), index ^ 2, size, lh, proof.clone(), r),
            ("size * 2".into(), index, size * 2, lh, proof.clone(), r),
            ("size / 2".into(), index, size / 2, lh, proof.clone(), r),
            (
                "wrong leaf".into(),
                index,
                size,
                leaf_hash(b"WrongLeaf"),
                proof.clone(),
                r,
            ),
            ("empty root".into(), index, size, lh, proof.clone(), empty),
            ("random root".into(), index, size, lh, proof.clone(), some),
            (
                "trailing root".into(),
                index,
                size,
                lh,
                [proof.clone(), vec![r]].concat(),
                r,
            ),
            (
                "preceding root".into(),
                index,
                size,
                lh,
                [vec![r], proof.clone()].concat(),
                r,
            ),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 8;
            probes.push((format!("modified proof[{i}] bit 3"), index, size, lh, p, r));
        }
        if !proof.is_empty() {
            let p = proof[..proof.len() - 1].to_vec();
            probes.push(("removed component".into(), index, size, lh, p, r));
        }
        if proof.len() > 1 {
            let p = [vec![proof[0], some], proof[1..].to_vec()].concat();
            probes.push(("inserted component".into(), index, size, lh, p, r));
        }
        for (desc, i, s, l, p, root) in probes {
            assert!(
                verify_inclusion(&l, i, s, &p, &root).is_err(),
                "leaf {index} of {size}: verified despite {desc}"
            );
        }
    }
}

#[test]
fn consistency_verification_and_corruptions() {
    let some = h(SOME_HASH);
    for (old, new, proof) in CONSISTENCY {
        let (old, new) = (*old, *new);
        let proof = hashes(proof);
        let r1 = h(ROOTS[old as usize - 1]);
        let r2 = h(ROOTS[new as usize - 1]);
        verify_consistency(old, new, &r1, &r2, &proof).unwrap();
        if proof.is_empty() {
            continue;
        }
        let wrong = leaf_hash(b"WrongRoot");
        let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            ("old - 1".into(), old - 1, new, r1, r2, proof.clone()),
            ("old + 1".into(), old + 1, new, r1, r2, proof.clone()),
            ("old ^ 2".into(), old ^ 2, new, r1, r2, proof.clone()),
            ("new * 2".into(), old, new * 2, r1, r2, proof.clone()),
            ("new / 2".into(), old, new / 2, r1, r2, proof.clone()),
            ("wrong root1".into(), old, new, wrong, r2, proof.clone()),
            ("wrong root2".into(), old, new, r1, wrong, proof.clone()),
            ("swapped roots".into(), old, new, r2, r1, proof.clone()),
            ("empty proof".into(), old, new, r1, r2, vec![]),
            (
                "trailing root1".into(),
                old,
                new,
                r1,
                r2,
                [proof.clone(), vec![r1]].concat(),
            ),
            (
                "trailing root2".into(),
                old,
                new,
                r1,
                r2,
                [proof.clone(), vec![r2]].concat(),
            ),
            (
                "preceding root1".into(),
                old,
                new,
                r1,
                r2,
                [vec![r1], proof.clone()].concat(),
            ),
            (
                "preceding root2".into(),
                old,
                new,
                r1,
                r2,
                [vec![r2], proof.clone()].concat(),
            ),
            (
                "preceding proof[0]".into(),
                old,
                new,
                r1,
                r2,
                [vec![proof[0]], proof.clone()].concat(),
            ),
            (
                "truncated".into(),
                old,
                new,
                r1,
                r2,
                proof[..proof.len() - 1].to_vec(),
            ),
            (
                "random".into(),
                old,
                new,
                r1,
                r2,
                [proof.clone(), vec![some]].concat(),
            ),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 16;
            probes.push((format!("modified proof[{i}] bit 4"), old, new, r1, r2, p));
        }
        for (desc, o, n, a, b, p) in probes {
            assert!(
                verify_consistency(o, n, &a, &b, &p).is_err(),
                "{old} -> {new}: verified despite {desc}"
            );
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    // Sizes that are always consistent (with an empty proof).
    verify_consistency(0, 0, &a, &a, &[]).unwrap();
    verify_consistency(0, 1, &a, &b, &[]).unwrap();
    verify_consistency(1, 1, &b, &b, &[]).unwrap();
    // Equal sizes, other roots; back in time; a proof where none belongs.
    assert_eq!(
        verify_consistency(1, 1, &a, &b, &[]),
        Err(ProofError::RootMismatch)
    );
    assert!(matches!(
        verify_consistency(2, 1, &a, &b, &[]),
        Err(ProofError::SizesReversed { .. })
    ));
    assert!(verify_consistency(1, 2, &a, &b, &[]).is_err());
    assert!(verify_consistency(1, 1, &a, &a, &[a]).is_err());
    assert!(verify_consistency(0, 1, &a, &a, &[a]).is_err());
    let empty = empty_root();
    assert!(verify_inclusion(&a, 0, 0, &[], &empty).is_err());
    assert!(inclusion_proof(&[a], 1).is_err());
    assert!(consistency_proof(&[a], 2).is_err());
}

proptest! {
    /// Every leaf of every tree up to 200 leaves proves its inclusion, every prefix its
    /// consistency, and a proof never verifies for a neighbouring leaf.
    #[test]
    fn proofs_round_trip(n in 1usize..200, seed in any::<u64>()) {
        let leaves: Vec<Hash> = (0..n as u64)
            .map(|i| leaf_hash(&(i ^ seed).to_be_bytes()))
            .collect();
        let head = root(&leaves);
        let mut compact = CompactTree::new();
        for l in &leaves {
            compact.push(*l).unwrap();
        }
        prop_assert_eq!(compact.root(), head);
        for m in [0, n / 3, n / 2, n - 1] {
            let p = inclusion_proof(&leaves, m as u64).unwrap();
            prop_assert!(verify_inclusion(&leaves[m], m as u64, n as u64, &p, &head).is_ok());
            if n > 1 {
                let other = (m + 1) % n;
                prop_assert!(verify_inclusion(&leaves[other], m as u64, n as u64, &p, &head).is_err());
            }
            let c = consistency_proof(&leaves, m as u64).unwrap();
            let old = root(&leaves[..m]);
            prop_assert!(verify_consistency(m as u64, n as u64, &old, &head, &c).is_ok());
            if m > 0 && m < n {
                let forged = root(&leaves[1..=m]);
                prop_assert!(verify_consistency(m as u64, n as u64, &forged, &head, &c).is_err());
            }
        }
    }
}
