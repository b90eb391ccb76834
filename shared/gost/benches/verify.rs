//! GOST R 34.10-2012 verification: tamga-gost beside OpenSSL's GOST engine
//! in the same run.
//!
//! OpenSSL has no `speed` entry for GOST signatures, and a loop of `openssl
//! dgst -verify` processes times process start-up more than the signature.
//! So OpenSSL's cost is taken inside one process: `openssl verify -engine
//! gost` given the test PKI's GOST-512 issuing CA certificate
//! (tests/fixtures/gost-pki/ca.pem, signed by root.pem) N times checks N
//! GOST-512 signatures; a run of N+k minus a run of k cancels start-up and
//! engine loading, and the same runs with the certificate as its own
//! `-partial_chain` anchor (no signature checked) give the parsing and
//! path-building overhead, which is subtracted. tamga-gost verifies the same
//! certificate signature (Streebog-512 of the TBS, then the verification).
//! Skipped with a note when the GOST engine is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tamga_gost::{der, verify_message, Signature};

struct Material {
    _dir: tempfile::TempDir,
    key: tamga_gost::PublicKey,
    sig: Signature,
    message: Vec<u8>,
}

fn openssl(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

fn material(alg: &str, paramset: &str, digest: &'static str) -> Option<Material> {
    let dir = tempfile::tempdir().ok()?;
    let p = dir.path();
    let pkeyopt = format!("paramset:{paramset}");
    openssl(
        p,
        &[
            "genpkey",
            "-engine",
            "gost",
            "-algorithm",
            alg,
            "-pkeyopt",
            &pkeyopt,
            "-out",
            "key.pem",
        ],
    )?;
    openssl(
        p,
        &[
            "pkey", "-engine", "gost", "-in", "key.pem", "-pubout", "-out", "pub.pem",
        ],
    )?;
    let spki = openssl(
        p,
        &[
            "pkey", "-engine", "gost", "-in", "key.pem", "-pubout", "-outform", "DER",
        ],
    )?;
    // A 25 KB message, the size of a typical declaration.
    let message: Vec<u8> = (0..25_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(p.join("msg"), &message).ok()?;
    openssl(
        p,
        &[
            "dgst", "-engine", "gost", digest, "-sign", "key.pem", "-out", "sig", "msg",
        ],
    )?;
    let key = der::public_key_from_spki(&spki).ok()?;
    let sig = Signature::from_rfc4491(&std::fs::read(p.join("sig")).ok()?, key.param_set()).ok()?;
    Some(Material {
        _dir: dir,
        key,
        sig,
        message,
    })
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/gost-pki");

/// Wall time of one `openssl verify` over `n` copies of ca.pem.
fn openssl_verify_run(n: usize, check_signature: bool) -> Duration {
    let dir = Path::new(FIXTURES);
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(["verify", "-engine", "gost"]);
    if check_signature {
        cmd.args(["-CAfile", "root.pem"]);
    } else {
        cmd.args(["-partial_chain", "-CAfile", "ca.pem"]);
    }
    for _ in 0..n {
        cmd.arg("ca.pem");
    }
    let start = Instant::now();
    let out = cmd.output().expect("openssl");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "openssl verify refused the fixture chain"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(": OK").count(),
        n
    );
    elapsed
}

fn openssl_per_cert(small: usize, large: usize, check_signature: bool) -> Duration {
    for _ in 0..3 {
        let t_large = openssl_verify_run(large, check_signature);
        let t_small = openssl_verify_run(small, check_signature);
        if t_large > t_small {
            return (t_large - t_small) / u32::try_from(large - small).unwrap();
        }
    }
    Duration::ZERO
}

/// (TBS, signature, root key) of the fixture's issuing CA certificate.
fn fixture_certificate() -> (Vec<u8>, Signature, tamga_gost::PublicKey) {
    let der = |name: &str| {
        let pem = std::fs::read_to_string(Path::new(FIXTURES).join(name)).unwrap();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64_decode(&b64)
    };
    let split = |cert: &[u8]| {
        let (_, body, _) = der::read_tlv(cert).unwrap();
        let (_, _, after_tbs) = der::read_tlv(body).unwrap();
        let tbs = body[..body.len() - after_tbs.len()].to_vec();
        let (_, _, after_alg) = der::read_tlv(after_tbs).unwrap();
        let (_, bits, _) = der::read_tlv(after_alg).unwrap();
        (tbs, bits[1..].to_vec())
    };
    let (tbs, sig) = split(&der("ca.pem"));
    let (root_tbs, _) = split(&der("root.pem"));
    // The root's SubjectPublicKeyInfo: the 7th field of its TBS.
    let (_, mut fields, _) = der::read_tlv(&root_tbs).unwrap();
    for _ in 0..6 {
        fields = der::read_tlv(fields).unwrap().2;
    }
    let (_, _, after_spki) = der::read_tlv(fields).unwrap();
    let spki = &fields[..fields.len() - after_spki.len()];
    let key = der::public_key_from_spki(spki).unwrap();
    let sig = Signature::from_rfc4491(&sig, key.param_set()).unwrap();
    (tbs, sig, key)
}

fn base64_decode(s: &str) -> Vec<u8> {
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let mut out = Vec::new();
    let bytes: Vec<u8> = s.bytes().filter(|b| *b != b'=').collect();
    for chunk in bytes.chunks(4) {
        let mut v = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            v |= table(*c) << (18 - 6 * i);
        }
        out.extend_from_slice(&v.to_be_bytes()[1..chunk.len()]);
    }
    out
}

fn mean<F: FnMut()>(mut f: F) -> Duration {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u32;
    while n < 100 || start.elapsed() < Duration::from_millis(1500) {
        f();
        n += 1;
    }
    start.elapsed() / n
}

fn bench(c: &mut Criterion) {
    for (label, alg, paramset, digest) in [
        (
            "GOST-512 (TC26-512-A)",
            "gost2012_512",
            "A",
            "-md_gost12_512",
        ),
        (
            "GOST-256 (TC26-256-A)",
            "gost2012_256",
            "TCA",
            "-md_gost12_256",
        ),
    ] {
        let Some(m) = material(alg, paramset, digest) else {
            eprintln!("note: OpenSSL's GOST engine is not available; `make deps` installs it");
            return;
        };
        assert_eq!(verify_message(&m.key, &m.message, &m.sig), Ok(()));
        let mut g = c.benchmark_group("gost verify 25 KB");
        g.bench_function(format!("tamga-gost {label}"), |b| {
            b.iter(|| verify_message(&m.key, &m.message, &m.sig))
        });
        g.finish();
    }
    let (tbs, sig, key) = fixture_certificate();
    verify_message(&key, &tbs, &sig).unwrap();
    let mut g = c.benchmark_group("gost certificate signature");
    g.bench_function("tamga-gost GOST-512", |b| {
        b.iter(|| verify_message(&key, &tbs, &sig))
    });
    g.finish();
    let tamga = mean(|| verify_message(&key, &tbs, &sig).unwrap());
    let with_sig = openssl_per_cert(50, 1050, true);
    let overhead = openssl_per_cert(50, 1050, false);
    let ossl = with_sig.saturating_sub(overhead);
    println!(
        "GOST-512 certificate signature: tamga-gost {:.0} µs, OpenSSL gost engine {:.0} µs \
         (openssl verify {:.0} µs per certificate minus {:.0} µs without a signature check; 1050 minus 50 per process), \
         ratio tamga/openssl {:.2} (goal <= 2)",
        tamga.as_secs_f64() * 1e6,
        ossl.as_secs_f64() * 1e6,
        with_sig.as_secs_f64() * 1e6,
        overhead.as_secs_f64() * 1e6,
        tamga.as_secs_f64() / ossl.as_secs_f64().max(1e-9),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
