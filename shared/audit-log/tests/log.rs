//! Checkpoints end to end without a database: events in chains, checkpoints signed over
//! them, the attacker who rewrites history and recomputes every hash, proofs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use tamga_audit_log::{
    check_checkpoints, parse_checkpoint, prove_consistency, prove_inclusion, verify_checkpoint,
    Checkpoint, CheckpointAuthority, CheckpointError, Cut, CutProblem, ExtendError, Extension,
    Leaves,
};
use tamga_dsig::SigningKey;
use tamga_store::{event_hash, AuditEvent, ChainHead, CheckpointRow, StoredEvent, GENESIS_HASH};

struct Key {
    signer: SigningKey,
    cert: Vec<u8>,
    other_cert: Vec<u8>,
    rsa: SigningKey,
    rsa_cert: Vec<u8>,
}

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let pki = tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["AZ", "KZ"], 1_780_000_000))
            .unwrap();
        let az = &pki.countries[0];
        Key {
            signer: SigningKey::from_pkcs8_der(&az.authority.key_pkcs8_der).unwrap(),
            cert: az.authority.cert_der.clone(),
            other_cert: pki.countries[1].authority.cert_der.clone(),
            rsa: SigningKey::from_pkcs8_der(&az.authority_rsa.key_pkcs8_der).unwrap(),
            rsa_cert: az.authority_rsa.cert_der.clone(),
        }
    })
}

fn authority(cert: &[u8]) -> CheckpointAuthority {
    CheckpointAuthority {
        country: "AZ".into(),
        subject: "CN=AZ customs authority & \"friends\"".into(),
        certificate_sha256: tamga_audit_log::checkpoint::sha256_hex(cert),
    }
}

fn event(chain: &str, seq: i64) -> AuditEvent {
    AuditEvent {
        at_ms: 1_780_000_000_000 + seq,
        stage: "countersigned".into(),
        worker: "w".into(),
        declaration_id: format!("{chain}-{seq}"),
        origin: "KZ".into(),
        destination: "AZ".into(),
        outcome: "accepted".into(),
        sub_indication: None,
        reason: None,
        digest: "ab".repeat(32),
        detail: None,
    }
}

/// The database: chains of stored events, (chain, seq) order on demand.
#[derive(Default, Clone)]
struct Db {
    chains: std::collections::BTreeMap<String, Vec<StoredEvent>>,
}

impl Db {
    fn append(&mut self, chain: &str, n: usize) {
        let v = self.chains.entry(chain.into()).or_default();
        for _ in 0..n {
            let seq = v.len() as i64 + 1;
            let prev = v.last().map_or(GENESIS_HASH.to_owned(), |e| e.hash.clone());
            let event = event(chain, seq);
            let hash = event_hash(chain, seq, &prev, &event);
            v.push(StoredEvent {
                chain: chain.into(),
                seq,
                prev_hash: prev,
                hash,
                event,
            });
        }
    }

    fn heads(&self) -> Vec<ChainHead> {
        self.chains
            .iter()
            .filter_map(|(c, v)| {
                v.last().map(|e| ChainHead {
                    chain: c.clone(),
                    seq: e.seq,
                    hash: e.hash.clone(),
                })
            })
            .collect()
    }

    fn leaves(&self) -> Leaves {
        let mut l = Leaves::new();
        for v in self.chains.values() {
            for e in v {
                l.push(e);
            }
        }
        l
    }

    /// What the checkpointer does: extend the previous tree with the new events, sign.
    fn checkpoint(
        &self,
        previous: Option<&CheckpointRow>,
        at_ms: i64,
    ) -> Result<CheckpointRow, ExtendError> {
        let heads = self.heads();
        let prev = previous.map(|p| {
            (
                p.tree_size,
                p.root.as_str(),
                p.frontier.as_slice(),
                p.heads.as_slice(),
            )
        });
        let mut ext = Extension::new(prev, &heads)?;
        for r in ext.ranges().to_vec() {
            for e in &self.chains[&r.chain][r.after as usize..r.upto as usize] {
                ext.push(e)?;
            }
        }
        let tree = ext.finish()?;
        let k = key();
        let cp = Checkpoint {
            tree_size: tree.size(),
            root: tree.root(),
            issued_at_ms: at_ms,
            authority: authority(&k.cert),
            chains: heads.clone(),
        };
        let signed = cp.sign(&k.signer, std::slice::from_ref(&k.cert)).unwrap();
        Ok(CheckpointRow {
            tree_size: tree.size(),
            root: cp.root_hex(),
            at_ms,
            heads,
            frontier: tree.peaks().iter().map(hex::encode).collect(),
            signed,
        })
    }

    /// The attacker with the database's superuser role: rewrites one event's field, then
    /// recomputes that chain's hashes from there on so every link holds again.
    fn rewrite(&mut self, chain: &str, seq: i64, outcome: &str) {
        let v = self.chains.get_mut(chain).unwrap();
        v[seq as usize - 1].event.outcome = outcome.into();
        let mut prev = if seq == 1 {
            GENESIS_HASH.to_owned()
        } else {
            v[seq as usize - 2].hash.clone()
        };
        for e in &mut v[seq as usize - 1..] {
            e.prev_hash = prev.clone();
            e.hash = e.expected_hash();
            prev = e.hash.clone();
        }
    }

    fn chain_report(&self) -> tamga_store::ChainReport {
        let mut v = tamga_store::ChainVerifier::new();
        for c in self.chains.values() {
            for e in c {
                v.push(e);
            }
        }
        v.finish()
    }
}

fn files(rows: &[CheckpointRow]) -> Vec<(String, Vec<u8>)> {
    rows.iter()
        .map(|r| {
            (
                format!("/witness/{}", tamga_audit_log::file_name(r.tree_size)),
                r.signed.clone(),
            )
        })
        .collect()
}

/// Three checkpoints over three chains that grow at different rates.
fn history() -> (Db, Vec<CheckpointRow>) {
    let mut db = Db::default();
    db.append("site-1/fused/0", 3);
    db.append("site-1/fused/1", 2);
    let c1 = db.checkpoint(None, 1_780_000_001_000).unwrap();
    db.append("site-1/fused/0", 2);
    db.append("site-1.trust", 1);
    let c2 = db.checkpoint(Some(&c1), 1_780_000_002_000).unwrap();
    db.append("site-1/fused/1", 4);
    db.append("site-2/fused/0", 1);
    let c3 = db.checkpoint(Some(&c2), 1_780_000_003_000).unwrap();
    (db, vec![c1, c2, c3])
}

#[test]
fn signed_checkpoints_round_trip_and_pin_their_signer() {
    let k = key();
    let (_, rows) = history();
    let cp = verify_checkpoint(&rows[2].signed, std::slice::from_ref(&k.cert)).unwrap();
    assert_eq!(cp.tree_size, 13);
    assert_eq!(cp.chains.len(), 4);
    assert_eq!(cp.authority, authority(&k.cert));
    assert_eq!(cp.issued_at(), "2026-05-28T20:26:43Z");
    assert_eq!(parse_checkpoint(&rows[2].signed).unwrap(), cp);
    // Another authority's certificate is not trusted for this one.
    let e = verify_checkpoint(&rows[2].signed, std::slice::from_ref(&k.other_cert)).unwrap_err();
    assert!(matches!(e, CheckpointError::UnknownSigner { .. }), "{e}");
    // One changed byte of what is signed.
    let text = String::from_utf8(rows[2].signed.clone()).unwrap();
    let forged = text.replacen("<TreeSize>13</TreeSize>", "<TreeSize>14</TreeSize>", 1);
    assert!(verify_checkpoint(forged.as_bytes(), std::slice::from_ref(&k.cert)).is_err());
    let forged = text.replacen("seq=\"5\"", "seq=\"4\"", 1);
    assert!(verify_checkpoint(forged.as_bytes(), std::slice::from_ref(&k.cert)).is_err());
    // Without its signature.
    let start = text.find("<ds:Signature").unwrap();
    let end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let bare = format!("{}{}", &text[..start], &text[end..]);
    assert!(matches!(
        verify_checkpoint(bare.as_bytes(), std::slice::from_ref(&k.cert)),
        Err(CheckpointError::Signature(_))
    ));
    // Not a checkpoint at all, and hostile bytes: errors, not panics.
    for junk in [
        &b""[..],
        b"<a/>",
        b"\xff\xfe",
        b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
    ] {
        assert!(verify_checkpoint(junk, std::slice::from_ref(&k.cert)).is_err());
    }
}

#[test]
fn any_authority_key_signs_and_odd_names_survive() {
    let k = key();
    let cp = Checkpoint {
        tree_size: 2,
        root: [7; 32],
        issued_at_ms: 1_780_000_000_123,
        authority: authority(&k.rsa_cert),
        chains: vec![
            ChainHead {
                chain: "a\t\"<&>\"".into(),
                seq: 1,
                hash: "cd".repeat(32),
            },
            ChainHead {
                chain: "b/ü/Қ".into(),
                seq: 1,
                hash: "ef".repeat(32),
            },
        ],
    };
    let signed = cp.sign(&k.rsa, std::slice::from_ref(&k.rsa_cert)).unwrap();
    let back = verify_checkpoint(&signed, std::slice::from_ref(&k.rsa_cert)).unwrap();
    assert_eq!(back, cp);
    assert_eq!(back.issued_at(), "2026-05-28T20:26:40.123Z");
    // The wrong certificate for the key.
    assert!(cp
        .sign(&k.signer, std::slice::from_ref(&k.rsa_cert))
        .is_err());
    let mut odd = cp.clone();
    odd.chains[0].chain = "bell\u{7}".into();
    assert!(matches!(
        odd.sign(&k.rsa, std::slice::from_ref(&k.rsa_cert)),
        Err(CheckpointError::Unencodable(_))
    ));
}

#[test]
fn an_intact_history_verifies_and_proves() {
    let k = key();
    let (db, rows) = history();
    assert!(db.chain_report().is_intact());
    let r = check_checkpoints(
        &db.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    assert!(r.is_intact(), "{:?} {:?}", r.problems, r.broken);
    assert_eq!(r.checked.len(), 3);
    assert!(r.checked.iter().all(|c| c.in_database && c.file.is_some()));
    assert_eq!(r.uncovered, 0);

    // Every event proves its inclusion in the latest checkpoint; each pair of
    // checkpoints proves consistency.
    let parsed: Vec<Checkpoint> = rows
        .iter()
        .map(|r| parse_checkpoint(&r.signed).unwrap())
        .collect();
    let cuts: Vec<Cut<'_>> = parsed
        .iter()
        .map(|c| Cut {
            tree_size: c.tree_size,
            root: c.root,
            heads: &c.chains,
        })
        .collect();
    let leaves = db.leaves();
    let mut indexes = Vec::new();
    for (chain, events) in &db.chains {
        for e in events {
            let p = prove_inclusion(&leaves, &cuts, chain, e.seq).unwrap();
            assert_eq!(p.tree_size, 13);
            assert_eq!(p.event_hash, e.hash);
            indexes.push(p.leaf_index);
            assert!(p.first_covered_by > p.leaf_index);
        }
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (0..13).collect::<Vec<_>>());
    // seq 4 of fused/0 came with the second checkpoint (size 8).
    let p = prove_inclusion(&leaves, &cuts, "site-1/fused/0", 4).unwrap();
    assert_eq!(p.first_covered_by, 8);
    for (a, b) in [(5, 8), (5, 13), (8, 13), (13, 13)] {
        let c = prove_consistency(&leaves, &cuts, a, b).unwrap();
        assert_eq!((c.old_size, c.new_size), (a, b));
    }
    assert!(prove_consistency(&leaves, &cuts, 6, 13).is_err());

    // Events after the latest checkpoint are reported, not yet provable.
    let mut more = db.clone();
    more.append("site-1/fused/0", 2);
    let r = check_checkpoints(
        &more.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    assert!(r.is_intact());
    assert_eq!(r.uncovered, 2);
    assert!(prove_inclusion(&more.leaves(), &cuts, "site-1/fused/0", 7).is_err());
}

/// The attack of issue 13: rewrite an event behind a checkpoint and recompute every hash.
/// The hash chains are intact again; the checkpoints are not.
#[test]
fn a_rewrite_with_every_hash_recomputed_is_named() {
    let k = key();
    let (mut db, rows) = history();
    db.rewrite("site-1/fused/0", 2, "rejected");
    assert!(
        db.chain_report().is_intact(),
        "the attacker made the chains consistent again"
    );
    let r = check_checkpoints(
        &db.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    let broken = r.broken.expect("the rewrite is detected");
    assert_eq!(
        broken.tree_size, 5,
        "the first checkpoint behind which the event lies"
    );
    assert!(r.checked.is_empty());
    match &broken.problem {
        CutProblem::RootMismatch { head: Some(h), .. } => {
            assert_eq!((h.chain.as_str(), h.seq), ("site-1/fused/0", 3));
        }
        other => panic!("{other:?}"),
    }
    let text = broken.to_string();
    assert!(text.contains("checkpoint of tree size 5"), "{text}");
    assert!(
        text.contains("/witness/checkpoint-00000000000000000005.xml"),
        "{text}"
    );

    // A rewrite after the first checkpoint: the first one still holds.
    let (mut db, rows) = history();
    db.rewrite("site-1/fused/1", 5, "rejected");
    let r = check_checkpoints(
        &db.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    assert_eq!(r.broken.unwrap().tree_size, 13);
    assert_eq!(r.checked.len(), 2);

    // The checkpointer refuses to sign over a rewritten past.
    let (mut db, rows) = history();
    db.rewrite("site-1/fused/0", 5, "rejected");
    db.append("site-1/fused/0", 1);
    assert!(matches!(
        db.checkpoint(Some(&rows[2]), 1_780_000_004_000),
        Err(ExtendError::Event { .. })
    ));
    let (mut db, rows) = history();
    db.rewrite("site-2/fused/0", 1, "rejected");
    assert!(matches!(
        db.checkpoint(Some(&rows[2]), 1_780_000_004_000),
        Err(ExtendError::Event { .. })
    ));
}

#[test]
fn events_removed_behind_a_checkpoint_are_named() {
    let k = key();
    // The tail of a chain.
    let (mut db, rows) = history();
    db.chains.get_mut("site-1/fused/1").unwrap().truncate(3);
    assert!(
        db.chain_report().is_intact(),
        "a truncated tail looks intact to the chain"
    );
    let r = check_checkpoints(
        &db.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    let b = r.broken.unwrap();
    assert_eq!(b.tree_size, 13);
    assert!(
        matches!(
            b.problem,
            CutProblem::Missing { ref chain, seq: 4, database_head: 3 } if chain == "site-1/fused/1"
        ),
        "{:?}",
        b.problem
    );
    // A whole chain.
    let (mut db, rows) = history();
    db.chains.remove("site-1.trust");
    let r = check_checkpoints(
        &db.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    assert_eq!(r.broken.unwrap().tree_size, 8);
    // Everything, checkpoints included, in the database: the external files remain.
    let (db, rows) = history();
    let empty = Db::default();
    let r = check_checkpoints(
        &empty.leaves(),
        &[],
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    assert_eq!(r.broken.unwrap().tree_size, 5);
    drop(db);
}

#[test]
fn checkpoint_rows_that_disagree_are_named() {
    let k = key();
    let (db, rows) = history();
    // A row whose columns were edited.
    let mut edited = rows.clone();
    edited[1].root = "00".repeat(32);
    let r = check_checkpoints(
        &db.leaves(),
        &edited,
        &files(&rows),
        std::slice::from_ref(&k.cert),
    );
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(r.problems[0].contains("tree size 8"), "{:?}", r.problems);
    // A file renamed, a file replaced by another checkpoint's bytes.
    let mut f = files(&rows);
    f[0].0 = "/witness/checkpoint-00000000000000000006.xml".into();
    let r = check_checkpoints(&db.leaves(), &rows, &f, std::slice::from_ref(&k.cert));
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("its name says otherwise")),
        "{:?}",
        r.problems
    );
    // Another signature over the same tree (re-signed later): the database and the file
    // disagree.
    let again = db.checkpoint(None, 1_780_000_009_000).unwrap();
    let mut f = files(&rows);
    f.push((
        format!("/witness/{}", tamga_audit_log::file_name(13)),
        again.signed.clone(),
    ));
    f.remove(2);
    let r = check_checkpoints(&db.leaves(), &rows, &f, std::slice::from_ref(&k.cert));
    assert!(
        r.problems.iter().any(|p| p.contains("is not the one in")),
        "{:?}",
        r.problems
    );
    // Untrusted signer.
    let r = check_checkpoints(
        &db.leaves(),
        &rows,
        &files(&rows),
        std::slice::from_ref(&k.other_cert),
    );
    assert_eq!(r.problems.len(), 6);
    assert!(r.checked.is_empty());
}

/// The `checkpoint` fuzz target's committed seeds (`fuzz/seeds/checkpoint/`) are still
/// what the target needs: signed checkpoints that verify against the certificate it pins
/// (`fuzz/seeds/checkpoint-trust/authority.der`), an RSA-signed one that parses, a
/// checkpoint file name, and an inclusion proof in the target's layout that verifies. With
/// `TAMGA_WRITE_FUZZ_SEEDS=1` it first writes them anew (when the checkpoint format
/// changes): `TAMGA_WRITE_FUZZ_SEEDS=1 cargo test -p tamga-audit-log --test log fuzz_seeds`.
#[test]
fn fuzz_seeds_are_current() {
    use std::fs;
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let (seeds, trust) = (fuzz.join("checkpoint"), fuzz.join("checkpoint-trust"));
    if std::env::var_os("TAMGA_WRITE_FUZZ_SEEDS").is_some() {
        write_fuzz_seeds(&seeds, &trust);
    }
    let pinned = fs::read(trust.join("authority.der")).unwrap();
    for i in 0..3 {
        let bytes = fs::read(seeds.join(format!("ecdsa-{i}.xml"))).unwrap();
        verify_checkpoint(&bytes, std::slice::from_ref(&pinned)).unwrap();
    }
    parse_checkpoint(&fs::read(seeds.join("rsa.xml")).unwrap()).unwrap();
    let name = fs::read_to_string(seeds.join("file-name")).unwrap();
    assert!(tamga_audit_log::checkpoint::size_of_file_name(&name).is_some());
    let proof = fs::read(seeds.join("inclusion-proof")).unwrap();
    let u64_at = |at: usize| u64::from_le_bytes(proof[at..at + 8].try_into().unwrap());
    let hashes: Vec<tamga_merkle::Hash> = proof[16..]
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap())
        .collect();
    tamga_merkle::verify_inclusion(&hashes[2], u64_at(0), u64_at(8), &hashes[3..], &hashes[0])
        .unwrap();
}

fn write_fuzz_seeds(seeds: &std::path::Path, trust: &std::path::Path) {
    use std::fs;
    fs::create_dir_all(seeds).unwrap();
    fs::create_dir_all(trust).unwrap();
    let k = key();
    fs::write(trust.join("authority.der"), &k.cert).unwrap();
    let (_, rows) = history();
    for (i, r) in rows.iter().enumerate() {
        fs::write(seeds.join(format!("ecdsa-{i}.xml")), &r.signed).unwrap();
    }
    let cp = parse_checkpoint(&rows[0].signed).unwrap();
    let rsa = Checkpoint {
        authority: authority(&k.rsa_cert),
        ..cp.clone()
    };
    let signed = rsa.sign(&k.rsa, std::slice::from_ref(&k.rsa_cert)).unwrap();
    fs::write(seeds.join("rsa.xml"), signed).unwrap();
    fs::write(
        seeds.join("file-name"),
        tamga_audit_log::checkpoint::file_name(cp.tree_size),
    )
    .unwrap();
    // [index u64 LE][size u64 LE][root][other root][leaf][audit path …]
    let leaves: Vec<tamga_merkle::Hash> =
        (0u8..13).map(|i| tamga_merkle::leaf_hash(&[i])).collect();
    let root = tamga_merkle::root(&leaves);
    let proof = tamga_merkle::inclusion_proof(&leaves, 6).unwrap();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&6u64.to_le_bytes());
    bytes.extend_from_slice(&13u64.to_le_bytes());
    bytes.extend_from_slice(&root);
    bytes.extend_from_slice(&tamga_merkle::root(&leaves[..7]));
    bytes.extend_from_slice(&leaves[6]);
    for p in &proof {
        bytes.extend_from_slice(p);
    }
    fs::write(seeds.join("inclusion-proof"), bytes).unwrap();
}

/// Found by reading, not yet by the fuzzer: chain heads whose sequence numbers add up past
/// 2^64 must be refused, not wrapped into a TreeSize they do not cover.
#[test]
fn heads_that_overflow_the_tree_size_are_refused() {
    let max = i64::MAX;
    // 3 × (2^63 − 1) wraps to 2^63 − 3.
    let wrapped = max.unsigned_abs().wrapping_mul(3);
    let chains: String = ["a", "b", "c"]
        .iter()
        .map(|c| {
            format!(
                r#"<Chain hash="{}" name="{c}" seq="{max}"/>"#,
                "ab".repeat(32)
            )
        })
        .collect();
    let doc = format!(
        r#"<Checkpoint xmlns="urn:tamga:checkpoint:1" Id="cp" version="1"><TreeSize>{wrapped}</TreeSize><RootHash>{}</RootHash><IssuedAt>2026-12-05T10:00:00Z</IssuedAt><Authority><Country>AZ</Country><Subject>CN=x</Subject><CertificateSha256>{}</CertificateSha256></Authority><Chains>{chains}</Chains></Checkpoint>"#,
        "cd".repeat(32),
        "ef".repeat(32)
    );
    let e = parse_checkpoint(doc.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("2^64"), "{e}");
    // The same shape with heads that add up is read.
    let fine = doc
        .replace(&format!("seq=\"{max}\""), "seq=\"2\"")
        .replace(&format!("<TreeSize>{wrapped}<"), "<TreeSize>6<");
    parse_checkpoint(fine.as_bytes()).unwrap();
}
