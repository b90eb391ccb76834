#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `make bench` (`cargo bench -p tamga --bench verify`): how fast Tamga
//! verifies a declaration, beside libxmlsec1 (the `xmlsec1` command) on the
//! very same files, plus the pieces that make up the time and the peak
//! memory of verifying a 1 MB declaration.
//!
//! Everything is generated at start-up: a demo PKI for KZ (RSA-2048 and
//! ECDSA P-256 brokers under an ECDSA issuing CA and root, with CRLs), and
//! sample declarations of ~25 KB and ~1 MB signed by those brokers.
//!
//! * Criterion groups: `verify` (Tamga, customs profile, full: parse,
//!   digests, signature value, path validation with CRLs), `xmlsec1`
//!   (`xmlsec1 --verify --repeat N`, start-up removed, see below), `sign`,
//!   `parse`, `c14n`, `path` (trust-list path validation alone).
//! * xmlsec1 per-document time: one run with `--repeat N+k` minus one with
//!   `--repeat k`, so process start-up, library initialisation and key
//!   loading cancel out. Without `xmlsec1` on PATH that part is skipped.
//! * After the groups: a summary with `ratio ...` lines, and the peak RSS of
//!   `tamga verify` (the release binary, in a child process, via `wait4`)
//!   on the 1 MB document against the target "< 4x the document size plus a
//!   fixed few MiB".
//!
//! Default run: well under three minutes on two cores. Set
//! `TAMGA_BENCH_QUICK=1` for a quicker, noisier run.

use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, NoExternal, SignOptions, SigningKey};
use tamga_pki::{BrokerKind, DemoPkiOptions};
use tamga_policy::{verify_document, Policy, VerifyRequest};
use tamga_trust::{CountryCode, PathRequest, RevocationMode, TrustList};
use tamga_xml::{C14nMethod, Canonicalization, Document, ParseLimits, Selection};

const COUNTRY: &str = "KZ";

/// One signed test document, in memory and on disk (for xmlsec1 and the
/// `tamga` binary).
struct Doc {
    label: &'static str,
    bytes: Vec<u8>,
    path: PathBuf,
}

struct Fixture {
    _dir: tempfile::TempDir,
    trust_dir: PathBuf,
    root_pem: PathBuf,
    issuing_pem: PathBuf,
    trust: TrustList,
    policy: Policy,
    origin: CountryCode,
    now: i64,
    rsa: (SigningKey, Vec<Vec<u8>>),
    ecdsa: (SigningKey, Vec<Vec<u8>>),
    unsigned_25k: String,
    rsa_25k: Doc,
    ecdsa_25k: Doc,
    rsa_1m: Doc,
}

fn sign(unsigned: &str, key: &(SigningKey, Vec<Vec<u8>>), xades: bool, now: i64) -> Vec<u8> {
    sign_enveloped(
        unsigned.as_bytes(),
        &key.0,
        &SignOptions {
            certificates: key.1.clone(),
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::from_unix_timestamp(now).unwrap(),
            limits: ParseLimits::default(),
        },
    )
    .unwrap()
}

impl Fixture {
    fn new() -> Self {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = tamga_pki::generate(&DemoPkiOptions::new([COUNTRY], now)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        pki.write_to(dir.path()).unwrap();
        let trust_dir = dir.path().join("trust");
        let keys = dir.path().join("keys").join(COUNTRY);
        let trust = TrustList::load_dir(&trust_dir).unwrap();
        let country = pki.country(COUNTRY).unwrap();
        let broker = |kind| {
            let b = country.broker(kind).unwrap();
            (
                SigningKey::from_pkcs8_der(&b.key_pkcs8_der).unwrap(),
                vec![b.cert_der.clone(), country.issuing.cert_der.clone()],
            )
        };
        let rsa = broker(BrokerKind::Rsa);
        let ecdsa = broker(BrokerKind::Ecdsa);
        let unsigned_25k = sample(&SampleSpec::new(COUNTRY, "AZ", 1, 45));
        let unsigned_1m = sample(&SampleSpec::new(COUNTRY, "AZ", 2, 2000));
        let docs_dir = dir.path().join("docs");
        std::fs::create_dir_all(&docs_dir).unwrap();
        let doc = |label: &'static str, file: &str, bytes: Vec<u8>| {
            let path = docs_dir.join(file);
            std::fs::write(&path, &bytes).unwrap();
            Doc { label, bytes, path }
        };
        let fx = Fixture {
            rsa_25k: doc(
                "25KB RSA",
                "25k-rsa.xml",
                sign(&unsigned_25k, &rsa, false, now),
            ),
            ecdsa_25k: doc(
                "25KB ECDSA",
                "25k-ecdsa.xml",
                sign(&unsigned_25k, &ecdsa, false, now),
            ),
            rsa_1m: doc(
                "1MB RSA",
                "1m-rsa.xml",
                sign(&unsigned_1m, &rsa, false, now),
            ),
            root_pem: keys.join("root-ca.pem"),
            issuing_pem: keys.join("issuing-ca.pem"),
            trust_dir,
            trust,
            policy: Policy::customs(),
            origin: COUNTRY.parse().unwrap(),
            now,
            rsa,
            ecdsa,
            unsigned_25k,
            _dir: dir,
        };
        for d in fx.docs() {
            let report = fx.verify(&d.bytes);
            assert!(report.passed(), "{} does not verify: {report:?}", d.label);
        }
        fx
    }

    fn docs(&self) -> [&Doc; 3] {
        [&self.rsa_25k, &self.ecdsa_25k, &self.rsa_1m]
    }

    fn verify(&self, bytes: &[u8]) -> tamga_policy::Report {
        verify_document(&VerifyRequest {
            bytes,
            trust: &self.trust,
            origin: self.origin,
            at_unix: self.now,
            policy: &self.policy,
            resolver: &NoExternal,
            hmac_secret: None,
        })
    }
}

fn settings(c: Criterion, quick: bool) -> Criterion {
    let (warm, measure) = if quick { (300, 1000) } else { (1000, 3000) };
    c.sample_size(10)
        .warm_up_time(Duration::from_millis(warm))
        .measurement_time(Duration::from_millis(measure))
}

fn bench_verify(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("verify");
    for d in fx.docs() {
        g.throughput(Throughput::Bytes(d.bytes.len() as u64));
        g.bench_function(BenchmarkId::new("tamga", d.label), |b| {
            b.iter(|| {
                let report = fx.verify(black_box(&d.bytes));
                debug_assert!(report.passed());
                report
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- xmlsec1

fn xmlsec1_available() -> bool {
    Command::new("xmlsec1")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Wall time of one `xmlsec1 --verify --repeat N` process.
fn xmlsec1_run(fx: &Fixture, file: &Path, repeat: u64) -> Duration {
    let start = Instant::now();
    let status = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--repeat")
        .arg(repeat.to_string())
        .arg("--trusted-pem")
        .arg(&fx.root_pem)
        .arg("--untrusted-pem")
        .arg(&fx.issuing_pem)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("running xmlsec1");
    let elapsed = start.elapsed();
    assert!(status.success(), "xmlsec1 refused {}", file.display());
    elapsed
}

/// Per-document time: the difference between a large and a small repeat
/// count, so start-up and key loading cancel out.
fn xmlsec1_per_doc(fx: &Fixture, file: &Path, small: u64, large: u64) -> Duration {
    let t_large = xmlsec1_run(fx, file, large);
    let t_small = xmlsec1_run(fx, file, small);
    t_large.saturating_sub(t_small) / u32::try_from(large - small).unwrap()
}

fn bench_xmlsec1(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("verify");
    for d in fx.docs() {
        g.throughput(Throughput::Bytes(d.bytes.len() as u64));
        g.bench_function(BenchmarkId::new("xmlsec1", d.label), |b| {
            b.iter_custom(|iters| {
                // `iters` verifications, minus the cost of a 1-document run
                // (process start-up, initialisation, key loading).
                let with = xmlsec1_run(fx, &d.path, iters + 1);
                let base = xmlsec1_run(fx, &d.path, 1);
                with.saturating_sub(base)
            })
        });
    }
    g.finish();
}

// ------------------------------------------------------ where the time goes

const EXCLUSIVE: Canonicalization = Canonicalization {
    method: C14nMethod::Exclusive10,
    with_comments: false,
    inclusive_prefixes: Vec::new(),
};

fn bench_sign(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("sign");
    g.throughput(Throughput::Bytes(fx.unsigned_25k.len() as u64));
    for (label, key, xades) in [
        ("25KB ECDSA", &fx.ecdsa, false),
        ("25KB RSA", &fx.rsa, false),
        ("25KB ECDSA XAdES", &fx.ecdsa, true),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| sign(black_box(&fx.unsigned_25k), key, xades, fx.now))
        });
    }
    g.finish();
}

fn bench_parse_c14n(c: &mut Criterion, fx: &Fixture) {
    let limits = ParseLimits::default();
    let mut g = c.benchmark_group("parse");
    for d in [&fx.rsa_25k, &fx.rsa_1m] {
        g.throughput(Throughput::Bytes(d.bytes.len() as u64));
        g.bench_function(d.label, |b| {
            b.iter(|| Document::parse(black_box(&d.bytes), &limits).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("c14n");
    for d in [&fx.rsa_25k, &fx.rsa_1m] {
        let doc = Document::parse(&d.bytes, &limits).unwrap();
        let signature = doc
            .root()
            .element_children()
            .last()
            .expect("the signature is the last child");
        g.throughput(Throughput::Bytes(d.bytes.len() as u64));
        // The whole document, exclusive c14n: libxml2 alone, no node-set.
        g.bench_function(BenchmarkId::new("exclusive whole doc", d.label), |b| {
            b.iter(|| {
                doc.canonicalize(Selection::Document, None, &EXCLUSIVE, &mut io::sink())
                    .unwrap()
            })
        });
        // What the enveloped reference costs: the same minus the signature.
        g.bench_function(BenchmarkId::new("exclusive enveloped", d.label), |b| {
            b.iter(|| {
                doc.canonicalize(
                    Selection::Document,
                    Some(signature),
                    &EXCLUSIVE,
                    &mut io::sink(),
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

fn bench_path(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("path");
    for (label, key) in [("RSA signer", &fx.rsa), ("ECDSA signer", &fx.ecdsa)] {
        let intermediates: Vec<&[u8]> = key.1[1..].iter().map(Vec::as_slice).collect();
        let req = PathRequest {
            intermediates_der: &intermediates,
            revocation: RevocationMode::Require,
            ..PathRequest::new(fx.origin, &key.1[0], u64::try_from(fx.now).unwrap())
        };
        fx.trust.validate_signer(&req).unwrap();
        g.bench_function(label, |b| {
            b.iter(|| fx.trust.validate_signer(black_box(&req)).unwrap())
        });
    }
    g.finish();
}

// ------------------------------------------------------------------ summary

/// Mean time of one Tamga verification, over at least `min_iters` runs and
/// `min_time`.
fn tamga_per_doc(fx: &Fixture, d: &Doc, min_iters: u32, min_time: Duration) -> Duration {
    for _ in 0..3 {
        black_box(fx.verify(&d.bytes));
    }
    let start = Instant::now();
    let mut n = 0u32;
    while n < min_iters || start.elapsed() < min_time {
        black_box(fx.verify(black_box(&d.bytes)));
        n += 1;
    }
    start.elapsed() / n
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn summary(fx: &Fixture, quick: bool, xmlsec: bool) {
    println!();
    println!("== Tamga vs xmlsec1: per-document verification time ==");
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    for d in fx.docs() {
        let big = d.bytes.len() > 200_000;
        let tamga = tamga_per_doc(fx, d, if big { 5 } else { 50 }, budget);
        let (small, large) = match (big, quick) {
            (true, true) => (1, 6),
            (true, false) => (2, 22),
            (false, true) => (5, 105),
            (false, false) => (10, 410),
        };
        let size = format!("{} bytes", d.bytes.len());
        if xmlsec {
            let reference = xmlsec1_per_doc(fx, &d.path, small, large);
            let ratio = reference.as_secs_f64() / tamga.as_secs_f64();
            println!(
                "ratio {}: tamga {:.0} µs vs xmlsec1 {:.0} µs => {ratio:.2}x  ({size}; xmlsec1 --repeat {large} minus --repeat {small})",
                d.label,
                micros(tamga),
                micros(reference),
            );
        } else {
            println!(
                "{}: tamga {:.0} µs ({size}); xmlsec1 skipped",
                d.label,
                micros(tamga)
            );
        }
    }
    println!("(ratio > 1: Tamga is faster; target on 25 KB: >= 2x)");
}

// ------------------------------------------------------------- peak memory

/// Runs `cmd` to completion and returns its exit code and peak RSS in KiB,
/// from `wait4`'s resource usage for exactly that child.
fn peak_rss_kib(cmd: &mut Command) -> (i32, i64) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the child");
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own, not yet reaped child; both out-pointers are
    // valid for writes. Reaping it here means `child` must not wait again
    // (it is dropped without waiting, which does not reap).
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(rc, pid, "wait4: {}", io::Error::last_os_error());
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    // Linux reports ru_maxrss in KiB.
    (code, usage.ru_maxrss)
}

fn tamga_verify_cmd(fx: &Fixture, file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tamga"));
    cmd.arg("verify")
        .arg("--trust")
        .arg(&fx.trust_dir)
        .arg("--from")
        .arg(COUNTRY)
        .arg(file);
    cmd
}

fn peak_memory(fx: &Fixture, xmlsec: bool) {
    println!();
    println!("== Peak RSS (child process, wait4 ru_maxrss) ==");
    let mib = |kib: i64| kib as f64 / 1024.0;
    let size = fx.rsa_1m.bytes.len() as f64 / (1024.0 * 1024.0);
    let (code_small, fixed) = peak_rss_kib(&mut tamga_verify_cmd(fx, &fx.rsa_25k.path));
    let (code_big, peak) = peak_rss_kib(&mut tamga_verify_cmd(fx, &fx.rsa_1m.path));
    assert_eq!((code_small, code_big), (0, 0), "tamga verify failed");
    let growth = mib(peak - fixed);
    println!(
        "tamga verify, 25 KB document: {:.1} MiB (the fixed part: binary, libraries, trust list)",
        mib(fixed)
    );
    println!(
        "tamga verify, 1 MB document ({size:.2} MiB): peak {:.1} MiB = fixed + {growth:.1} MiB = fixed + {:.2}x the document",
        mib(peak),
        growth / size
    );
    let verdict = if growth < 4.0 * size {
        "MET"
    } else {
        "NOT MET"
    };
    println!(
        "target < 4x the document ({:.1} MiB) plus a fixed few MiB: {verdict}",
        4.0 * size
    );
    if xmlsec {
        let mut cmd = Command::new("xmlsec1");
        cmd.arg("--verify")
            .arg("--trusted-pem")
            .arg(&fx.root_pem)
            .arg("--untrusted-pem")
            .arg(&fx.issuing_pem);
        let (_, small) = peak_rss_kib(cmd.arg(&fx.rsa_25k.path));
        let mut cmd = Command::new("xmlsec1");
        cmd.arg("--verify")
            .arg("--trusted-pem")
            .arg(&fx.root_pem)
            .arg("--untrusted-pem")
            .arg(&fx.issuing_pem);
        let (_, big) = peak_rss_kib(cmd.arg(&fx.rsa_1m.path));
        println!(
            "xmlsec1 for comparison: 25 KB {:.1} MiB, 1 MB {:.1} MiB (fixed + {:.2}x the document)",
            mib(small),
            mib(big),
            mib(big - small) / size
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; without it (`cargo test --benches`)
    // criterion runs each benchmark once, and the summary is skipped.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let quick = std::env::var_os("TAMGA_BENCH_QUICK").is_some();
    let fx = Fixture::new();
    let xmlsec = xmlsec1_available();
    if !xmlsec {
        eprintln!(
            "xmlsec1 is not on PATH: skipping the reference (libxmlsec1) measurements. \
             Install the Debian package `xmlsec1` to compare (make deps does)."
        );
    }
    println!(
        "documents: {}",
        fx.docs()
            .iter()
            .map(|d| format!("{} = {} bytes", d.label, d.bytes.len()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut c = settings(Criterion::default(), quick).configure_from_args();
    bench_verify(&mut c, &fx);
    if xmlsec {
        bench_xmlsec1(&mut c, &fx);
    }
    bench_sign(&mut c, &fx);
    bench_parse_c14n(&mut c, &fx);
    bench_path(&mut c, &fx);
    c.final_summary();

    if bench_mode {
        summary(&fx, quick, xmlsec);
        peak_memory(&fx, xmlsec);
    }
}
