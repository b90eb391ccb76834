//! CPU cost of the pure stages, per declaration, without any I/O:
//! `cargo run --release -p tamga-pipeline --example engine_cost [N] [ITEMS]`.
//! This is the floor under the pipeline's throughput on one core.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pipeline::config::{
    AuthorityConfig, Config, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(300);
    let items: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(45);
    let dir = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: now,
    })
    .unwrap()
    .write_to(dir.path())
    .unwrap();
    let keys = dir.path().join("keys");
    let cfg = Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: dir.path().join("trust"),
            policy: None,
            ..TrustConfig::default()
        },
        authority: vec![AuthorityConfig {
            country: "AZ".into(),
            key: keys.join("AZ/authority.key").display().to_string(),
            cert: keys.join("AZ/authority.pem"),
            chain: vec![keys.join("AZ/issuing-ca.pem")],
        }],
        worker: WorkerConfig::default(),
        metrics: MetricsConfig {
            listen: String::new(),
        },
        log: LogConfig::default(),
        embedded: EmbeddedConfig::default(),
        gateway: Default::default(),
        audit: Default::default(),
    };
    let engine = tamga_pipeline::build_engine(&cfg, &tamga_pipeline::open_key).unwrap();
    let broker =
        SigningKey::from_pkcs8_pem(&std::fs::read(keys.join("KZ/broker-ecdsa.key")).unwrap())
            .unwrap();
    let mut certs = tamga_dsig::certificates_from_pem(
        &std::fs::read(keys.join("KZ/broker-ecdsa.pem")).unwrap(),
    )
    .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(keys.join("KZ/issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    let docs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let d = sample(&SampleSpec::new("KZ", "AZ", i as u64, items));
            sign_enveloped(
                d.as_bytes(),
                &broker,
                &SignOptions {
                    certificates: certs.clone(),
                    digest: DigestAlgorithm::Sha256,
                    xades: false,
                    signing_time: time::OffsetDateTime::now_utc(),
                    limits: Default::default(),
                },
            )
            .unwrap()
        })
        .collect();
    let size = docs[0].len();
    let now_ms = now * 1000;
    let t = Instant::now();
    let verified: Vec<_> = docs
        .iter()
        .map(|d| engine.verify(d, "kz.az", None, now_ms, now_ms).unwrap())
        .collect();
    let verify = t.elapsed().as_secs_f64() / n as f64;
    assert!(verified.iter().all(|v| v.passed()));
    let t = Instant::now();
    let enc: Vec<Vec<u8>> = verified
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let _: Vec<tamga_pipeline::Verified> = enc
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    let json = t.elapsed().as_secs_f64() / n as f64;
    let t = Instant::now();
    for v in &verified {
        engine.decide(v, now_ms).unwrap();
    }
    let decide = t.elapsed().as_secs_f64() / n as f64;
    // The fused stage (the default): verification's parse reused by countersigning.
    let t = Instant::now();
    for d in &docs {
        let (v, _) = engine
            .verify_and_decide(d, "kz.az", None, now_ms, now_ms)
            .unwrap();
        assert!(v.passed());
    }
    let fused = t.elapsed().as_secs_f64() / n as f64;
    println!(
        "{n} declarations of {size} bytes: verify {:.0} µs, decide (countersign + receipt) {:.0} µs, envelope JSON round trip {:.0} µs => {:.0} declarations/s per core; fused verify+decide {:.0} µs => {:.0} declarations/s per core",
        verify * 1e6,
        decide * 1e6,
        json * 1e6,
        1.0 / (verify + decide + json),
        fused * 1e6,
        1.0 / fused
    );
}
