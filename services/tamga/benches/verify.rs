#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `make bench` (`cargo bench -p tamga --bench verify`): how fast Tamga
//! verifies a declaration, beside libxmlsec1 (the `xmlsec1` command) on the
//! very same files, plus the pieces that make up the time and the peak
//! memory of verifying a 1 MB declaration.
//!
//! Everything is generated at start-up: a demo PKI for KZ (RSA-2048 and
//! ECDSA P-256 brokers under an ECDSA issuing CA and root, with CRLs, and
//! the GOST flavour: a GOST R 34.10-2015 512-bit broker under a GOST-512
//! issuing CA and root, with GOST-signed CRLs), and sample declarations of
//! ~25 KB and ~1 MB signed by those brokers (the GOST one in the Kazakh NCA
//! form, Streebog-512 digests).
//!
//! * Criterion groups: `verify` (`tamga`: customs profile, full: parse,
//!   digests, signature value, path validation with CRLs; `tamga cold`: the
//!   same with tamga-trust's memo of verified CA/CRL signatures emptied
//!   before every document; `xmlsec1`: `xmlsec1 --verify --repeat N` on the
//!   same file, start-up removed, see below; xmlsec1 has no GOST, so the
//!   25 KB GOST-512 declaration is measured by Tamga only), `gost` (one
//!   GOST-512 certificate signature: tamga-gost, and OpenSSL's GOST engine
//!   measured as below), `sign`, `parse`, `c14n`
//!   (whole document; the enveloped reference; `SignedInfo` walked from its
//!   apex and, for comparison, through the whole tree as libxml2 alone
//!   does), `path` (trust-list path validation alone).
//! * xmlsec1 per-document time: one run with `--repeat N+k` minus one with
//!   `--repeat k`, so process start-up, library initialisation and key
//!   loading cancel out. Without `xmlsec1` on PATH that part is skipped.
//! * OpenSSL's GOST engine per verification: `openssl verify -engine gost`
//!   given the GOST issuing CA's certificate N times in one process (one
//!   GOST-512 signature check each, by the root's key), a run of N+k minus a
//!   run of k, so start-up and engine loading cancel out; the same with the
//!   certificate itself as a `-partial_chain` anchor (no signature checked)
//!   gives the per-certificate parsing and path-building overhead, which is
//!   subtracted. (`openssl speed` has no GOST signature entry, and a loop
//!   of `openssl dgst -verify` processes would time process start-up.)
//! * After the groups: a summary with `ratio ...` lines, and the peak RSS of
//!   `tamga verify` (the release binary, in a child process, read with
//!   `getrusage(RUSAGE_CHILDREN)`) on the 1 MB document against the target
//!   "< 4x the document size plus a fixed few MiB".
//!
//! Default run: well under three minutes on two cores. Set
//! `TAMGA_BENCH_QUICK=1` for a quicker, noisier run.
//!
//! Profiling: `TAMGA_BENCH_PROFILE="25KB RSA"` (or `25KB ECDSA`, `1MB RSA`,
//! `25KB GOST-512`)
//! skips criterion and verifies that document `TAMGA_BENCH_PROFILE_ITERS`
//! times (default 20) inside `profile_loop`, e.g.
//! `TAMGA_BENCH_PROFILE="25KB RSA" valgrind --tool=callgrind
//! --toggle-collect='*profile_loop*' target/release/deps/verify-<hash> --bench`.

use std::hint::black_box;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{default_digest, sign_enveloped, NoExternal, SignOptions, SigningKey};
use tamga_pki::{BrokerKind, DemoPkiOptions, GostBrokerKind};
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
    /// Signed by the GOST-512 broker in the Kazakh NCA form.
    gost_25k: Doc,
    /// The GOST issuing CA's certificate (signed by the GOST root) and the
    /// root's public key: one GOST-512 certificate signature.
    gost_cert: GostCert,
}

struct GostCert {
    pem: PathBuf,
    root_pem: PathBuf,
    tbs: Vec<u8>,
    signature: tamga_gost::Signature,
    root_key: tamga_gost::PublicKey,
}

/// Splits a DER certificate: (tbsCertificate TLV, signature BIT STRING value).
fn split_certificate(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, body, _) = tamga_gost::der::read_tlv(der).unwrap();
    let (_, _, after_tbs) = tamga_gost::der::read_tlv(body).unwrap();
    let tbs = body[..body.len() - after_tbs.len()].to_vec();
    let (_, _, after_alg) = tamga_gost::der::read_tlv(after_tbs).unwrap();
    let (_, bits, _) = tamga_gost::der::read_tlv(after_alg).unwrap();
    (tbs, bits[1..].to_vec())
}

fn sign(unsigned: &str, key: &(SigningKey, Vec<Vec<u8>>), xades: bool, now: i64) -> Vec<u8> {
    sign_enveloped(
        unsigned.as_bytes(),
        &key.0,
        &SignOptions {
            certificates: key.1.clone(),
            // SHA-256, or Streebog for the GOST broker.
            digest: default_digest(&key.0),
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
        let pki = tamga_pki::generate_with_gost(
            &DemoPkiOptions::new([COUNTRY], now),
            &[COUNTRY.to_string()],
        )
        .unwrap();
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
        let gost = country.gost.as_ref().unwrap();
        let gost_broker = {
            let b = gost.broker(GostBrokerKind::Gost512).unwrap();
            (
                SigningKey::from_pkcs8_der(&b.key_pkcs8_der).unwrap(),
                vec![b.cert_der.clone(), gost.issuing.cert_der.clone()],
            )
        };
        let (tbs, sig_bits) = split_certificate(&gost.issuing.cert_der);
        let gost_cert = GostCert {
            pem: keys.join("gost-issuing-ca.pem"),
            root_pem: keys.join("gost-root-ca.pem"),
            tbs,
            signature: tamga_gost::Signature::from_rfc4491(
                &sig_bits,
                tamga_gost::ParamSet::Tc26_512A,
            )
            .unwrap(),
            root_key: tamga_gost::demo::DemoSecretKey::from_pkcs8_der(&gost.root.key_pkcs8_der)
                .unwrap()
                .public_key()
                .clone(),
        };
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
            gost_25k: doc(
                "25KB GOST-512",
                "25k-gost512.xml",
                sign(&unsigned_25k, &gost_broker, false, now),
            ),
            gost_cert,
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
        for d in fx.all_docs() {
            let report = fx.verify(&d.bytes);
            assert!(report.passed(), "{} does not verify: {report:?}", d.label);
        }
        fx
    }

    /// The documents xmlsec1 can verify too.
    fn docs(&self) -> [&Doc; 3] {
        [&self.rsa_25k, &self.ecdsa_25k, &self.rsa_1m]
    }

    /// Every document, the GOST one included.
    fn all_docs(&self) -> [&Doc; 4] {
        [&self.rsa_25k, &self.ecdsa_25k, &self.gost_25k, &self.rsa_1m]
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
    let (warm, measure) = if quick { (300, 1000) } else { (800, 2500) };
    c.sample_size(10)
        .warm_up_time(Duration::from_millis(warm))
        .measurement_time(Duration::from_millis(measure))
}

/// `warm`: the steady state of a running verifier, where the CA
/// certificates' and CRLs' signature checks are remembered from earlier
/// documents (tamga-trust's memo). `cold`: the memo emptied before every
/// document, so every signature of the path is verified again, as for the
/// first document from a new CA or signer (and as xmlsec1 always does).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Memo {
    Warm,
    Cold,
}

fn verify_once(fx: &Fixture, bytes: &[u8], memo: Memo) -> tamga_policy::Report {
    if memo == Memo::Cold {
        tamga_trust::forget_verified_signatures();
    }
    fx.verify(bytes)
}

fn bench_verify(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("verify");
    for (name, memo) in [("tamga", Memo::Warm), ("tamga cold", Memo::Cold)] {
        for d in fx.all_docs() {
            g.throughput(Throughput::Bytes(d.bytes.len() as u64));
            g.bench_function(BenchmarkId::new(name, d.label), |b| {
                b.iter(|| {
                    let report = verify_once(fx, black_box(&d.bytes), memo);
                    debug_assert!(report.passed());
                    report
                })
            });
        }
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
                // `iters` verifications: a run of `iters + 2` minus a run of
                // 2 (process start-up, initialisation, key loading). When
                // start-up jitter swamps a tiny `iters` (warm-up), measure
                // again; as a last resort charge the whole run pro rata.
                let mut total = Duration::ZERO;
                for _ in 0..4 {
                    total = xmlsec1_run(fx, &d.path, iters + 2);
                    let base = xmlsec1_run(fx, &d.path, 2);
                    if total > base {
                        return total - base;
                    }
                }
                total.mul_f64(iters as f64 / (iters + 2) as f64)
            })
        });
    }
    g.finish();
}

// ------------------------------------------------- GOST-512 (issue 10)

fn openssl_gost_available() -> bool {
    Command::new("openssl")
        .args(["engine", "gost"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Wall time of one `openssl verify -engine gost` over `n` copies of the
/// GOST issuing CA's certificate: with the GOST root as the anchor (one
/// GOST-512 signature checked per copy), or with the certificate itself as
/// a `-partial_chain` anchor (none checked: parsing and path building).
fn openssl_verify_run(cert: &GostCert, n: usize, check_signature: bool) -> Duration {
    let anchor = if check_signature {
        &cert.root_pem
    } else {
        &cert.pem
    };
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-engine", "gost"]);
    if !check_signature {
        cmd.arg("-partial_chain");
    }
    cmd.arg("-CAfile").arg(anchor);
    for _ in 0..n {
        cmd.arg(&cert.pem);
    }
    let start = Instant::now();
    let out = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .expect("running openssl");
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "openssl verify refused the GOST chain"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(": OK").count(),
        n,
        "openssl verify did not check every copy"
    );
    elapsed
}

/// Per certificate: a run of `large` copies minus a run of `small`.
fn openssl_verify_per_cert(cert: &GostCert, small: usize, large: usize, sig: bool) -> Duration {
    for _ in 0..3 {
        let t_large = openssl_verify_run(cert, large, sig);
        let t_small = openssl_verify_run(cert, small, sig);
        if t_large > t_small {
            return (t_large - t_small) / u32::try_from(large - small).unwrap();
        }
    }
    Duration::ZERO
}

/// One GOST-512 certificate signature (Streebog-512 of the ~600-byte TBS,
/// then the verification): tamga-gost in criterion, and the comparison with
/// OpenSSL's GOST engine for the summary (empty unless `bench_mode`).
fn bench_gost(c: &mut Criterion, fx: &Fixture, quick: bool, bench_mode: bool) -> Vec<String> {
    let cert = &fx.gost_cert;
    let once = || tamga_gost::verify_message(&cert.root_key, black_box(&cert.tbs), &cert.signature);
    once().unwrap();
    let digest = tamga_gost::Streebog::S512.digest(&cert.tbs);
    let mut g = c.benchmark_group("gost");
    g.bench_function("tamga-gost GOST-512 certificate signature", |b| {
        b.iter(&once)
    });
    g.bench_function("tamga-gost GOST-512 verify (digest given)", |b| {
        b.iter(|| tamga_gost::verify_digest(&cert.root_key, black_box(&digest), &cert.signature))
    });
    g.finish();
    let mut lines = Vec::new();
    if !bench_mode {
        return lines;
    }
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let mean = |f: &dyn Fn()| {
        for _ in 0..3 {
            f();
        }
        let start = Instant::now();
        let mut n = 0u32;
        while n < 50 || start.elapsed() < budget {
            f();
            n += 1;
        }
        start.elapsed() / n
    };
    let tamga = mean(&|| {
        black_box(once()).unwrap();
    });
    let bare = mean(&|| {
        black_box(tamga_gost::verify_digest(
            &cert.root_key,
            &digest,
            &cert.signature,
        ))
        .unwrap();
    });
    if !openssl_gost_available() {
        lines.push(format!(
            "GOST-512 certificate signature: tamga-gost {:.0} µs (bare verification {:.0} µs); \
             OpenSSL's GOST engine not available (make deps installs libengine-gost-openssl)",
            micros(tamga),
            micros(bare)
        ));
        return lines;
    }
    let (small, large) = if quick { (20, 220) } else { (50, 1050) };
    let with_sig = openssl_verify_per_cert(cert, small, large, true);
    let overhead = openssl_verify_per_cert(cert, small, large, false);
    let ossl = with_sig.saturating_sub(overhead);
    lines.push(format!(
        "ratio GOST-512 certificate signature: tamga-gost {:.0} µs vs OpenSSL gost engine {:.0} µs => {:.2}x \
         (openssl verify {:.0} µs per certificate minus {:.0} µs parsing/path building without a signature check; \
         {large} minus {small} certificates per process; tamga-gost bare verification without Streebog: {:.0} µs)",
        micros(tamga),
        micros(ossl),
        ossl.as_secs_f64() / tamga.as_secs_f64(),
        micros(with_sig),
        micros(overhead),
        micros(bare),
    ));
    lines
}

fn gost_summary(fx: &Fixture, quick: bool, lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!();
    println!(
        "== GOST R 34.10-2015 512 (TC26-512-A, Streebog-512): Tamga vs OpenSSL's GOST engine =="
    );
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let d = &fx.gost_25k;
    let warm = tamga_per_doc(fx, d, Memo::Warm, 50, budget);
    let cold = tamga_per_doc(fx, d, Memo::Cold, 50, budget);
    println!(
        "{}: tamga {:.0} µs (cold {:.0} µs: the GOST issuing CA's and the CRLs' GOST signatures checked again; {} bytes); xmlsec1 has no GOST",
        d.label,
        micros(warm),
        micros(cold),
        d.bytes.len()
    );
    for l in lines {
        println!("{l}");
    }
    println!(
        "(ratio > 1: Tamga is faster; goal: >= 0.5x, i.e. within 2x of OpenSSL's GOST engine)"
    );
}

// ------------------------------------------- countersign + receipt (issue 3)

/// The authority's work per accepted declaration: the counter-signature and
/// the signed receipt (verification excluded: that is the `verify` group).
///
/// The reference is what a site would do with xmlsec1: two `xmlsec1 --sign` runs, the
/// counter-signature's and the receipt's, same keys. Their templates are Tamga's own
/// outputs with the new signature's DigestValues, SignatureValue and certificates
/// emptied, so xmlsec1 does the same work (it computes the same digests: checked on
/// every run); the counter-signature run starts at that signature
/// (`--node-id`, with the Ids registered). Each is timed per document as a run of
/// `large` minus a run of `small` repeats, divided by the difference, so process
/// start-up and key loading cancel out (large counts: small ones were swamped by
/// start-up jitter), and criterion is handed the sum. The earlier reference, one
/// enveloped signature over the whole 25 KB document, is reported beside it. Returns
/// the `ratio countersign+receipt ...` lines for the summary (empty unless `bench_mode`).
fn bench_countersign(
    c: &mut Criterion,
    fx: &Fixture,
    xmlsec: bool,
    quick: bool,
    bench_mode: bool,
) -> Vec<String> {
    let keys = fx.root_pem.parent().unwrap().to_path_buf();
    let report = fx.verify(&fx.rsa_25k.bytes);
    let mut lines = Vec::new();
    let mut g = c.benchmark_group("countersign");
    g.throughput(Throughput::Bytes(fx.rsa_25k.bytes.len() as u64));
    for (label, name, alg) in COUNTERSIGN_CASES {
        let cs = Countersigner::new(fx, name);
        let both = || cs.both(fx, &report);
        let once = || both().1;
        g.bench_function(BenchmarkId::new("tamga", label), |b| b.iter(&once));
        let tamga = bench_mode.then(|| {
            let budget = Duration::from_millis(if quick { 300 } else { 1500 });
            for _ in 0..3 {
                black_box(once());
            }
            let start = Instant::now();
            let mut n = 0u32;
            while n < 50 || start.elapsed() < budget {
                black_box(once());
                n += 1;
            }
            start.elapsed() / n
        });
        if !xmlsec {
            if let Some(t) = tamga {
                lines.push(format!(
                    "countersign+receipt {label}: tamga {:.0} µs; xmlsec1 skipped",
                    micros(t)
                ));
            }
            continue;
        }
        // The issue's reference: xmlsec1 making the counter-signature and the receipt.
        let (countersigned, receipt) = both();
        let (small, large) = match (bench_mode, quick) {
            (false, _) => (2, 22),
            (true, true) => (50, 350),
            (true, false) => (100, 1100),
        };
        let Xmlsec1Reference {
            key_arg,
            cs_path,
            cs_args,
            receipt_path,
        } = xmlsec1_reference(&keys, name, &countersigned, &receipt);
        let cs_doc = xmlsec1_sign_per_doc(&key_arg, &cs_path, &cs_args, small, large);
        let receipt_doc = xmlsec1_sign_per_doc(&key_arg, &receipt_path, &[], small, large);
        let pair = cs_doc + receipt_doc;
        g.bench_function(
            BenchmarkId::new("xmlsec1 counter-signature + receipt", label),
            |b| b.iter_custom(|iters| pair.mul_f64(iters as f64)),
        );

        // The earlier reference: xmlsec1 signing the same 25 KB document (an enveloped
        // template).
        let template = fx.unsigned_25k.replacen(
            "</Declaration>",
            &format!(
                concat!(
                    r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
                    r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
                    r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#{alg}"/>"#,
                    r#"<ds:Reference URI=""><ds:Transforms>"#,
                    r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
                    r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
                    r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/>"#,
                    r#"</ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>"#,
                    r#"</ds:Signature></Declaration>"#
                ),
                alg = alg
            ),
            1,
        );
        let tmpl = keys.join(format!("{name}-template.xml"));
        std::fs::write(&tmpl, template).unwrap();
        let per_doc = xmlsec1_sign_per_doc(&key_arg, &tmpl, &[], small, large);
        g.bench_function(BenchmarkId::new("xmlsec1 sign", label), |b| {
            b.iter_custom(|iters| per_doc.mul_f64(iters as f64))
        });
        if let Some(t) = tamga {
            lines.push(format!(
                "ratio countersign+receipt {label}: tamga {:.0} µs vs xmlsec1 counter-signature {:.0} µs + receipt {:.0} µs => {:.2}x  (xmlsec1 --sign --repeat {large} minus --repeat {small}, each)",
                micros(t),
                micros(cs_doc),
                micros(receipt_doc),
                pair.as_secs_f64() / t.as_secs_f64(),
            ));
            lines.push(format!(
                "  (earlier reference, one enveloped xmlsec1 signature over the whole 25 KB document: {:.0} µs => {:.2}x)",
                micros(per_doc),
                per_doc.as_secs_f64() / t.as_secs_f64(),
            ));
        }
    }
    g.finish();
    lines
}

/// The countersign benchmark's authorities: (label, key file stem, xmlsec1 algorithm).
const COUNTERSIGN_CASES: [(&str, &str, &str); 2] = [
    ("25KB ECDSA P-256 authority", "authority", "ecdsa-sha256"),
    ("25KB RSA-2048 authority", "authority-rsa", "rsa-sha256"),
];

/// One authority counter-signing the 25 KB declaration and issuing its receipt, as the
/// pipeline does (both signatures made and self-checked).
struct Countersigner {
    key: SigningKey,
    certs: Vec<Vec<u8>>,
    authority: tamga_receipt::Authority,
    options: tamga_dsig::SignOptions,
}

impl Countersigner {
    fn new(fx: &Fixture, name: &str) -> Self {
        let keys = fx.root_pem.parent().unwrap();
        let key =
            SigningKey::from_pkcs8_pem(&std::fs::read(keys.join(format!("{name}.key"))).unwrap())
                .unwrap();
        let mut certs = tamga_dsig::certificates_from_pem(
            &std::fs::read(keys.join(format!("{name}.pem"))).unwrap(),
        )
        .unwrap();
        certs.push(
            std::fs::read(&fx.issuing_pem)
                .map(|p| tamga_dsig::certificates_from_pem(&p).unwrap().remove(0))
                .unwrap(),
        );
        let authority = tamga_receipt::Authority::from_certificate(&certs[0], COUNTRY).unwrap();
        let options = tamga_dsig::SignOptions {
            certificates: certs.clone(),
            digest: tamga_dsig::DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::from_unix_timestamp(fx.now).unwrap(),
            limits: Default::default(),
        };
        Self {
            key,
            certs,
            authority,
            options,
        }
    }

    /// (counter-signed declaration, signed receipt).
    fn both(&self, fx: &Fixture, report: &tamga_policy::Report) -> (Vec<u8>, Vec<u8>) {
        let out = tamga_dsig::countersign(black_box(&fx.rsa_25k.bytes), &self.key, &self.options)
            .unwrap();
        let content = tamga_receipt::ReceiptContent::for_report(
            report,
            self.authority.clone(),
            fx.now,
            Some(&out),
        )
        .unwrap();
        let receipt =
            tamga_receipt::issue_receipt(&content, &self.key, self.certs.clone(), fx.now).unwrap();
        (out, receipt)
    }
}

/// What `xmlsec1 --sign` needs to make the same two signatures Tamga made.
struct Xmlsec1Reference {
    /// `--privkey-pem KEY,CERT`.
    key_arg: String,
    /// Tamga's counter-signed declaration with the counter-signature's values emptied.
    cs_path: PathBuf,
    /// The id attributes and `--node-id` that point xmlsec1 at the counter-signature.
    cs_args: Vec<String>,
    /// Tamga's receipt with its signature's values emptied.
    receipt_path: PathBuf,
}

/// Writes the templates into `dir` (where the authority's key files are) and checks the
/// fairness condition: xmlsec1's counter-signature carries the digests Tamga's does.
fn xmlsec1_reference(
    dir: &Path,
    name: &str,
    countersigned: &[u8],
    receipt: &[u8],
) -> Xmlsec1Reference {
    let key_arg = format!(
        "{},{}",
        dir.join(format!("{name}.key")).display(),
        dir.join(format!("{name}.pem")).display()
    );
    let (cs_template, cs_id) = countersignature_template(countersigned);
    let cs_path = dir.join(format!("{name}-countersignature-template.xml"));
    std::fs::write(&cs_path, &cs_template).unwrap();
    let receipt_path = dir.join(format!("{name}-receipt-template.xml"));
    std::fs::write(&receipt_path, blank_signature_values(receipt)).unwrap();
    let cs_args = vec![
        "--id-attr:Id".to_string(),
        "http://www.w3.org/2000/09/xmldsig#:Signature".into(),
        "--id-attr:Id".into(),
        "http://www.w3.org/2000/09/xmldsig#:SignatureValue".into(),
        "--id-attr:Id".into(),
        "http://uri.etsi.org/01903/v1.3.2#:SignedProperties".into(),
        "--node-id".into(),
        cs_id,
    ];
    // Fair only if xmlsec1 does the same work: its counter-signature must carry the
    // digests Tamga's does (the signature values differ: ECDSA is randomised).
    let signed_by_xmlsec = dir.join(format!("{name}-countersignature-xmlsec1.xml"));
    let status = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(&key_arg)
        .args(&cs_args)
        .arg("--output")
        .arg(&signed_by_xmlsec)
        .arg(&cs_path)
        .stderr(Stdio::null())
        .status()
        .expect("running xmlsec1");
    assert!(
        status.success(),
        "xmlsec1 refused the counter-signature template"
    );
    let digests = |xml: &str| -> Vec<String> {
        xml.split("<ds:DigestValue>")
            .skip(1)
            .map(|d| d[..d.find('<').unwrap()].to_string())
            .collect()
    };
    assert_eq!(
        digests(&std::fs::read_to_string(&signed_by_xmlsec).unwrap()),
        digests(std::str::from_utf8(countersigned).unwrap()),
        "xmlsec1's counter-signature digests differ from Tamga's: not the same work"
    );
    Xmlsec1Reference {
        key_arg,
        cs_path,
        cs_args,
        receipt_path,
    }
}

/// `TAMGA_BENCH_PROFILE="countersign ECDSA"` (or `"countersign RSA"`): Tamga's
/// countersign + receipt `iterations` times inside `countersign_profile_loop` (for
/// callgrind's `--toggle-collect`), after writing xmlsec1's inputs for the same two
/// signatures into `TAMGA_BENCH_XMLSEC1_DIR` when it is set: `countersign.xml`,
/// `receipt.xml`, the key files, and `args` (the `--privkey-pem` value, then the
/// counter-signature's extra arguments, one a line). `infra/dev/countersign-callgrind.sh`
/// runs both under callgrind.
fn countersign_profile(fx: &Fixture, which: &str, iterations: usize) {
    let (_, name, _) = COUNTERSIGN_CASES
        .into_iter()
        .find(|(label, _, _)| label.contains(which))
        .unwrap_or_else(|| panic!("countersign {which:?}: say ECDSA or RSA"));
    let report = fx.verify(&fx.rsa_25k.bytes);
    let cs = Countersigner::new(fx, name);
    if let Some(out) = std::env::var_os("TAMGA_BENCH_XMLSEC1_DIR") {
        let out = PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        let keys = fx.root_pem.parent().unwrap();
        let (countersigned, receipt) = cs.both(fx, &report);
        let r = xmlsec1_reference(keys, name, &countersigned, &receipt);
        for ext in ["key", "pem"] {
            std::fs::copy(
                keys.join(format!("{name}.{ext}")),
                out.join(format!("authority.{ext}")),
            )
            .unwrap();
        }
        std::fs::copy(&r.cs_path, out.join("countersign.xml")).unwrap();
        std::fs::copy(&r.receipt_path, out.join("receipt.xml")).unwrap();
        let key_arg = format!(
            "{},{}",
            out.join("authority.key").display(),
            out.join("authority.pem").display()
        );
        let mut args = vec![key_arg];
        args.extend(r.cs_args);
        std::fs::write(out.join("args"), args.join("\n") + "\n").unwrap();
    }
    countersign_profile_loop(fx, &cs, &report, iterations);
}

#[inline(never)]
fn countersign_profile_loop(
    fx: &Fixture,
    cs: &Countersigner,
    report: &tamga_policy::Report,
    iterations: usize,
) {
    for _ in 0..iterations {
        black_box(cs.both(fx, report));
    }
}

/// Tamga's counter-signed output as an xmlsec1 template: the counter-signature's values
/// and certificates emptied (the declarant's signature untouched); and its Id.
fn countersignature_template(countersigned: &[u8]) -> (String, String) {
    let text = std::str::from_utf8(countersigned).unwrap();
    let start = text.find("<xades:CounterSignature").unwrap();
    let end = text.find("</xades:CounterSignature>").unwrap();
    let inner = &text[start..end];
    let id_at = inner.find(" Id=\"").unwrap() + 5;
    let id = inner[id_at..id_at + inner[id_at..].find('"').unwrap()].to_string();
    let blanked = blank_signature_values(inner.as_bytes());
    (format!("{}{}{}", &text[..start], blanked, &text[end..]), id)
}

/// Empties the `ds:DigestValue`s of every `ds:SignedInfo` (not those of the XAdES
/// certificate digests, which are signed content) and every `ds:SignatureValue`, and
/// turns `ds:X509Data` into an empty element: an xmlsec1 signing template of what Tamga
/// signed.
fn blank_signature_values(xml: &[u8]) -> String {
    let text = String::from_utf8(xml.to_vec()).unwrap();
    // The DigestValues, within each SignedInfo only.
    let mut s = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(a) = rest.find("<ds:SignedInfo") {
        let b = rest[a..].find("</ds:SignedInfo>").unwrap() + a;
        s.push_str(&rest[..a]);
        s.push_str(&blank_elements(
            &rest[a..b],
            "<ds:DigestValue",
            "</ds:DigestValue>",
            None,
        ));
        rest = &rest[b..];
    }
    s.push_str(rest);
    let s = blank_elements(&s, "<ds:SignatureValue", "</ds:SignatureValue>", None);
    blank_elements(
        &s,
        "<ds:X509Data>",
        "</ds:X509Data>",
        Some("<ds:X509Data/>"),
    )
}

/// Empties every `open`…`close` element of `s` (keeping its start tag), or replaces it
/// with `replacement`.
fn blank_elements(s: &str, open: &str, close: &str, replacement: Option<&str>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(a) = rest.find(open) {
        let b = rest[a..].find(close).unwrap() + a;
        match replacement {
            Some(r) => {
                out.push_str(&rest[..a]);
                out.push_str(r);
            }
            None => {
                let tag_end = rest[a..].find('>').unwrap() + a + 1;
                out.push_str(&rest[..tag_end]);
                out.push_str(close);
            }
        }
        rest = &rest[b + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Per-document time of `xmlsec1 --sign` on `template` (`large` minus `small` repeats).
fn xmlsec1_sign_per_doc(
    key: &str,
    template: &Path,
    extra: &[String],
    small: u64,
    large: u64,
) -> Duration {
    let run = |repeat: u64| {
        let start = Instant::now();
        let status = Command::new("xmlsec1")
            .arg("--sign")
            .arg("--repeat")
            .arg(repeat.to_string())
            .arg("--privkey-pem")
            .arg(key)
            .args(extra)
            .arg("--output")
            .arg("/dev/null")
            .arg(template)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("running xmlsec1");
        assert!(
            status.success(),
            "xmlsec1 --sign {} failed",
            template.display()
        );
        start.elapsed()
    };
    for _ in 0..3 {
        let t_large = run(large);
        let t_small = run(small);
        if t_large > t_small {
            return (t_large - t_small) / u32::try_from(large - small).unwrap();
        }
    }
    Duration::ZERO
}

/// Prints what [`bench_countersign`] measured.
fn countersign_summary(lines: &[String]) {
    if lines.is_empty() {
        return;
    }
    println!();
    println!("== Tamga countersign + receipt vs xmlsec1 signing the same document ==");
    for l in lines {
        println!("{l}");
    }
    println!(
        "(ratio > 1: Tamga is faster; target >= 2x. Both make the same two signatures; \
         Tamga also checks both)"
    );
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
        // What the signature value covers: SignedInfo, walked from its apex
        // (Tamga) or through the whole tree (libxml2 alone): same bytes.
        let signed_info = Selection::Subtree(signature.element_children().next().unwrap());
        g.bench_function(BenchmarkId::new("SignedInfo", d.label), |b| {
            b.iter(|| {
                doc.canonicalize(signed_info, None, &EXCLUSIVE, &mut io::sink())
                    .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("SignedInfo full walk", d.label), |b| {
            b.iter(|| {
                doc.canonicalize_full_walk(signed_info, None, &EXCLUSIVE, &mut io::sink())
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
fn tamga_per_doc(
    fx: &Fixture,
    d: &Doc,
    memo: Memo,
    min_iters: u32,
    min_time: Duration,
) -> Duration {
    for _ in 0..3 {
        black_box(verify_once(fx, &d.bytes, memo));
    }
    let start = Instant::now();
    let mut n = 0u32;
    while n < min_iters || start.elapsed() < min_time {
        black_box(verify_once(fx, black_box(&d.bytes), memo));
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
        let min_iters = if big { 5 } else { 50 };
        let warm = tamga_per_doc(fx, d, Memo::Warm, min_iters, budget);
        let cold = tamga_per_doc(fx, d, Memo::Cold, min_iters, budget);
        let (small, large) = match (big, quick) {
            (true, true) => (1, 6),
            (true, false) => (2, 22),
            (false, true) => (5, 105),
            (false, false) => (10, 410),
        };
        let size = d.bytes.len();
        if xmlsec {
            let reference = xmlsec1_per_doc(fx, &d.path, small, large);
            let ratio = |t: Duration| reference.as_secs_f64() / t.as_secs_f64();
            println!(
                "ratio {}: tamga {:.0} µs vs xmlsec1 {:.0} µs => {:.2}x  (cold: tamga {:.0} µs => {:.2}x; {size} bytes; xmlsec1 --repeat {large} minus --repeat {small})",
                d.label,
                micros(warm),
                micros(reference),
                ratio(warm),
                micros(cold),
                ratio(cold),
            );
        } else {
            println!(
                "{}: tamga {:.0} µs (cold {:.0} µs; {size} bytes); xmlsec1 skipped",
                d.label,
                micros(warm),
                micros(cold)
            );
        }
    }
    println!(
        "(ratio > 1: Tamga is faster; target on 25 KB: >= 2x. \
         Warm: CA/CRL signature checks remembered from earlier documents; \
         cold: every path signature verified again, as xmlsec1 does)"
    );
}

// ------------------------------------------------------------- peak memory

/// The helper mode of this very binary: `verify-<hash> --rss-of CMD ARGS...`
/// runs CMD, waits for it, and prints its exit code and peak RSS (KiB).
///
/// Why a helper: a child forked from the benchmark process inherits the
/// benchmark's own (tens of MiB) high-water mark in `ru_maxrss` (Linux
/// records the pre-`exec` address space), so it must be spawned from a
/// small, freshly started process. The helper reads
/// `getrusage(RUSAGE_CHILDREN)`, which covers only its waited-for children.
const RSS_HELPER: &str = "--rss-of";

fn rss_helper(args: &[String]) -> ! {
    let status = Command::new(&args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawning the measured command");
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid for writes; RUSAGE_CHILDREN is a valid target.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(rc, 0, "getrusage: {}", io::Error::last_os_error());
    // Linux reports ru_maxrss in KiB.
    println!("{} {}", status.code().unwrap_or(-1), usage.ru_maxrss);
    std::process::exit(0)
}

/// Runs `program args` through the helper: (exit code, peak RSS in KiB).
fn peak_rss_kib(program: &Path, args: &[&std::ffi::OsStr]) -> (i32, i64) {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .arg(RSS_HELPER)
        .arg(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("running the RSS helper");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split_whitespace().map(|f| f.parse::<i64>().ok());
    match (fields.next().flatten(), fields.next().flatten()) {
        (Some(code), Some(kib)) => (i32::try_from(code).unwrap_or(-1), kib),
        _ => panic!("the RSS helper said {text:?}"),
    }
}

fn peak_memory(fx: &Fixture, xmlsec: bool) {
    println!();
    println!("== Peak RSS (child process, getrusage(RUSAGE_CHILDREN) ru_maxrss) ==");
    let mib = |kib: i64| kib as f64 / 1024.0;
    let size = fx.rsa_1m.bytes.len() as f64 / (1024.0 * 1024.0);
    let tamga = Path::new(env!("CARGO_BIN_EXE_tamga"));
    let tamga_verify = |doc: &Doc| {
        let (code, kib) = peak_rss_kib(
            tamga,
            &[
                "verify".as_ref(),
                "--trust".as_ref(),
                fx.trust_dir.as_os_str(),
                "--from".as_ref(),
                COUNTRY.as_ref(),
                doc.path.as_os_str(),
            ],
        );
        assert_eq!(code, 0, "tamga verify refused {}", doc.label);
        kib
    };
    let fixed = tamga_verify(&fx.rsa_25k);
    let peak = tamga_verify(&fx.rsa_1m);
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
    // Above the threshold `tamga verify` takes the streaming route (no tree
    // of the whole document); the 25 KB document takes the tree route.
    println!(
        "(documents over {} KiB are verified on the streaming route: the 1 MB one is, the 25 KB one is not)",
        tamga_policy::STREAMING_THRESHOLD / 1024
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
        let xmlsec1 = |doc: &Doc| {
            peak_rss_kib(
                Path::new("xmlsec1"),
                &[
                    "--verify".as_ref(),
                    "--trusted-pem".as_ref(),
                    fx.root_pem.as_os_str(),
                    "--untrusted-pem".as_ref(),
                    fx.issuing_pem.as_os_str(),
                    doc.path.as_os_str(),
                ],
            )
            .1
        };
        let small = xmlsec1(&fx.rsa_25k);
        let big = xmlsec1(&fx.rsa_1m);
        println!(
            "xmlsec1 for comparison: 25 KB {:.1} MiB, 1 MB {:.1} MiB (fixed + {:.2}x the document)",
            mib(small),
            mib(big),
            mib(big - small) / size
        );
    }
}

/// The loop `TAMGA_BENCH_PROFILE` runs: one symbol to scope a profiler to.
#[inline(never)]
fn profile_loop(fx: &Fixture, doc: &Doc, iterations: usize) {
    for _ in 0..iterations {
        black_box(fx.verify(black_box(&doc.bytes)));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(RSS_HELPER) {
        rss_helper(&args[2..]);
    }
    // `cargo bench` passes --bench; without it (`cargo test --benches`)
    // criterion runs each benchmark once, and the summary is skipped, as it
    // is under `--profile-time` (profiling one benchmark).
    let bench_mode =
        args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--profile-time");
    let quick = std::env::var_os("TAMGA_BENCH_QUICK").is_some();
    let fx = Fixture::new();
    if let Ok(label) = std::env::var("TAMGA_BENCH_PROFILE") {
        if let Some(which) = label.strip_prefix("countersign ") {
            let iterations = std::env::var("TAMGA_BENCH_PROFILE_ITERS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(20);
            countersign_profile(&fx, which, iterations);
            return;
        }
        let doc = fx
            .all_docs()
            .into_iter()
            .find(|d| d.label == label)
            .unwrap_or_else(|| panic!("TAMGA_BENCH_PROFILE={label:?}: no such document"));
        let iterations = std::env::var("TAMGA_BENCH_PROFILE_ITERS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(20);
        profile_loop(&fx, doc, iterations);
        return;
    }
    let xmlsec = xmlsec1_available();
    if !xmlsec {
        eprintln!(
            "xmlsec1 is not on PATH: skipping the reference (libxmlsec1) measurements. \
             Install the Debian package `xmlsec1` to compare (make deps does)."
        );
    }
    println!(
        "documents: {}",
        fx.all_docs()
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
    let gost_lines = bench_gost(&mut c, &fx, quick, bench_mode);
    bench_sign(&mut c, &fx);
    let countersign_lines = bench_countersign(&mut c, &fx, xmlsec, quick, bench_mode);
    bench_parse_c14n(&mut c, &fx);
    bench_path(&mut c, &fx);
    c.final_summary();

    if bench_mode {
        summary(&fx, quick, xmlsec);
        gost_summary(&fx, quick, &gost_lines);
        countersign_summary(&countersign_lines);
        peak_memory(&fx, xmlsec);
    }
}
