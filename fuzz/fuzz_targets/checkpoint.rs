//! Fuzzes what `tamga audit verify` reads from outside the database: the signed checkpoint
//! files a witness or backup collected (`tamga_audit_log::parse_checkpoint`,
//! `verify_checkpoint` with the seed authority's certificate pinned), their file names,
//! and the Merkle proofs' verifiers (`tamga_merkle::verify_inclusion`,
//! `verify_consistency`, `CompactTree::from_peaks`) on sizes, indices and hashes taken from
//! the input. Every input is an error or a value, never a panic; a checkpoint that verifies
//! is one that parses, to the same value.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tamga_audit_log::checkpoint::size_of_file_name;
use tamga_audit_log::{parse_checkpoint, verify_checkpoint};
use tamga_merkle::{verify_consistency, verify_inclusion, CompactTree, Hash};

/// The seed checkpoints' authority (`seeds/checkpoint-trust/authority.der`, written with
/// the seeds by `TAMGA_WRITE_FUZZ_SEEDS=1 cargo test -p tamga-audit-log --test log fuzz_seeds`);
/// read at start-up rather than included, so the target builds before its seeds exist.
fn pinned() -> &'static [Vec<u8>] {
    static PINNED: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    PINNED.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/seeds/checkpoint-trust/authority.der"
        );
        vec![std::fs::read(path).expect("seeds/checkpoint-trust/authority.der is readable")]
    })
}

fn hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect()
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in bytes.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    // Small sizes reach the interesting branches; the top bit keeps the huge ones.
    let v = u64::from_le_bytes(b);
    if v & 1 == 0 {
        v % 4096
    } else {
        v
    }
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_checkpoint(data);
    if let Ok(verified) = verify_checkpoint(data, pinned()) {
        assert_eq!(
            parsed.as_ref().ok(),
            Some(&verified),
            "a verified checkpoint parses to the same value"
        );
        // The heads it states add up to the size it states.
        let covered: u64 = verified.chains.iter().map(|c| c.seq.unsigned_abs()).sum();
        assert_eq!(verified.tree_size, covered);
    }
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(size) = size_of_file_name(name) {
            assert_eq!(tamga_audit_log::checkpoint::file_name(size), name);
        }
    }
    // The proofs: [a: u64][b: u64][root 32][other root 32][leaf 32][proof hashes …]
    if data.len() >= 16 + 96 {
        let (a, b) = (u64_at(data, 0), u64_at(data, 8));
        let h = hashes(&data[16..]);
        let (root, other, leaf, proof) = (&h[0], &h[1], &h[2], &h[3..]);
        let _ = verify_inclusion(leaf, a, b, proof, root);
        let _ = verify_consistency(a, b, root, other, proof);
        let _ = CompactTree::from_peaks(a, proof.to_vec()).map(|t| (t.size(), t.peaks().len()));
    }
});
