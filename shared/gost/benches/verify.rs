//! GOST R 34.10-2012 verification: tamga-gost beside OpenSSL's GOST engine
//! in the same run.
//!
//! OpenSSL has no `speed` entry for GOST signatures, so its cost is taken
//! from the command line: the mean time of `openssl dgst -verify` minus the
//! mean time of `openssl dgst` hashing the same file (process start, engine
//! load and key parsing cancel out; what remains is the verification).
//! Skipped with a note when the GOST engine is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tamga_gost::{der, verify_message, Signature};

struct Material {
    dir: tempfile::TempDir,
    key: tamga_gost::PublicKey,
    sig: Signature,
    message: Vec<u8>,
    digest: &'static str,
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
        dir,
        key,
        sig,
        message,
        digest,
    })
}

fn mean_run(dir: &Path, args: &[&str], n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        openssl(dir, args).expect("openssl");
    }
    start.elapsed() / n
}

fn bench(c: &mut Criterion) {
    let mut lines = Vec::new();
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
        let start = Instant::now();
        let n = 200u32;
        for _ in 0..n {
            verify_message(&m.key, &m.message, &m.sig).unwrap();
        }
        let tamga = start.elapsed() / n;
        let p = m.dir.path();
        let runs = 40;
        let verify = mean_run(
            p,
            &[
                "dgst",
                "-engine",
                "gost",
                m.digest,
                "-verify",
                "pub.pem",
                "-signature",
                "sig",
                "msg",
            ],
            runs,
        );
        let hash = mean_run(p, &["dgst", "-engine", "gost", m.digest, "msg"], runs);
        let ossl = verify.saturating_sub(hash);
        lines.push(format!(
            "{label}: tamga-gost {:.0} µs, openssl gost engine {:.0} µs (verify run {:.0} µs - hash run {:.0} µs), ratio {:.2}",
            tamga.as_secs_f64() * 1e6,
            ossl.as_secs_f64() * 1e6,
            verify.as_secs_f64() * 1e6,
            hash.as_secs_f64() * 1e6,
            tamga.as_secs_f64() / ossl.as_secs_f64().max(1e-9),
        ));
    }
    for l in lines {
        println!("{l}");
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
