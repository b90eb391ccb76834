#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Differential tests against independent implementations from Debian
//! (installed by `make deps`): `gost12sum` (package gostsum) for Streebog,
//! and OpenSSL with the GOST engine (libengine-gost-openssl) signing random
//! messages with TC26 keys that tamga-gost must verify, and refuse once
//! corrupted.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use tamga_gost::{der, verify_message, Signature, Streebog};

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot run ({e}); `make deps` installs it"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn gost12sum(path: &Path, long: bool) -> Vec<u8> {
    let mut cmd = Command::new("gost12sum");
    if long {
        cmd.arg("-l");
    }
    let out = run(cmd.arg(path));
    let text = String::from_utf8(out).unwrap();
    hex::decode(text.split_whitespace().next().unwrap()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// Streebog-256 and -512 equal gost12sum's on generated inputs (lengths
    /// around the 64-byte block boundary included).
    #[test]
    fn streebog_equals_gost12sum(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m");
        std::fs::write(&path, &data).unwrap();
        prop_assert_eq!(Streebog::S256.digest(&data), gost12sum(&path, false));
        prop_assert_eq!(Streebog::S512.digest(&data), gost12sum(&path, true));
    }
}

/// (OpenSSL algorithm, paramset option, digest option) for the TC26 sets.
const KEYS: &[(&str, &str, &str)] = &[
    ("gost2012_512", "A", "-md_gost12_512"),
    ("gost2012_512", "B", "-md_gost12_512"),
    ("gost2012_512", "C", "-md_gost12_512"),
    ("gost2012_256", "TCA", "-md_gost12_256"),
    ("gost2012_256", "A", "-md_gost12_256"),
    ("gost2012_256", "B", "-md_gost12_256"),
    ("gost2012_256", "C", "-md_gost12_256"),
];

fn openssl(dir: &Path) -> Command {
    let mut c = Command::new("openssl");
    c.current_dir(dir);
    c
}

struct Key {
    dir: tempfile::TempDir,
    digest: &'static str,
    public: tamga_gost::PublicKey,
}

fn generate(alg: &str, paramset: &str, digest: &'static str) -> Key {
    let dir = tempfile::tempdir().unwrap();
    run(openssl(dir.path()).args([
        "genpkey",
        "-engine",
        "gost",
        "-algorithm",
        alg,
        "-pkeyopt",
        &format!("paramset:{paramset}"),
        "-out",
        "key.pem",
    ]));
    let spki = run(openssl(dir.path()).args([
        "pkey", "-engine", "gost", "-in", "key.pem", "-pubout", "-outform", "DER",
    ]));
    let public = der::public_key_from_spki(&spki)
        .unwrap_or_else(|e| panic!("{alg} {paramset}: SPKI refused: {e}"));
    Key {
        dir,
        digest,
        public,
    }
}

impl Key {
    /// OpenSSL's signature over `message`: RFC 4491's s||r big-endian.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        std::fs::write(self.dir.path().join("msg"), message).unwrap();
        run(openssl(self.dir.path()).args([
            "dgst",
            "-engine",
            "gost",
            self.digest,
            "-sign",
            "key.pem",
            "-out",
            "sig",
            "msg",
        ]));
        std::fs::read(self.dir.path().join("sig")).unwrap()
    }
}

#[test]
fn openssl_gost_signatures_verify_and_corrupted_ones_do_not() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 3,
        ..ProptestConfig::default()
    });
    for (alg, paramset, digest) in KEYS {
        let key = generate(alg, paramset, digest);
        let set = key.public.param_set();
        runner
            .run(
                &(
                    prop::collection::vec(any::<u8>(), 0..200),
                    any::<prop::sample::Index>(),
                    1u8..=255,
                ),
                |(message, at, flip)| {
                    let raw = key.sign(&message);
                    let sig = Signature::from_rfc4491(&raw, set).unwrap();
                    prop_assert_eq!(verify_message(&key.public, &message, &sig), Ok(()));
                    // Any changed signature octet is refused.
                    let mut bad = raw.clone();
                    let i = at.index(bad.len());
                    bad[i] ^= flip;
                    if let Ok(bad) = Signature::from_rfc4491(&bad, set) {
                        prop_assert!(verify_message(&key.public, &message, &bad).is_err());
                    }
                    // So is another message.
                    let mut other = message.clone();
                    other.push(flip);
                    prop_assert!(verify_message(&key.public, &other, &sig).is_err());
                    // The Kazakh XML form is the byte reverse of the CMS form.
                    let mut reversed = raw.clone();
                    reversed.reverse();
                    prop_assert_eq!(Signature::from_kz_xml(&reversed, set).unwrap(), sig);
                    Ok(())
                },
            )
            .unwrap_or_else(|e| panic!("{alg} {paramset}: {e}"));
    }
}
