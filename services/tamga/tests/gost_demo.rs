#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The GOST flavour of `tamga pki demo`, end to end: a Kazakh declaration
//! signed by `tamga sign` with a demo broker's GOST R 34.10-2015 512-bit key
//! (the NCA's XML form: pkigovkz URIs, r‖s little-endian, XAdES with a
//! Streebog-512 SigningCertificateV2 digest), checked by independent tools
//! (xmllint's exclusive c14n, gost12sum, OpenSSL's GOST engine), then
//! through `tamga verify` (TOTAL_PASSED), `tamga countersign` (the AZ
//! authority's ECDSA counter-signature and a signed receipt) and the
//! pipeline, embedded and on RabbitMQ + PostgreSQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use tamga_bus::{AmqpBus, AmqpOptions, Bus, HeaderValue, MemoryBus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{default_digest, sign_enveloped, SignOptions, SigningKey};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{headers, Config, Stage};
use tamga_store::{Store, StoreConfig};

const KZ_SIG_512: &str =
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512";
const KZ_DIGEST_512: &str = "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512";

fn tamga<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(args)
        .output()
        .unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Pki {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// `tamga pki demo --countries KZ,AZ` (the GOST flavour for KZ by default),
/// once per test binary.
fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pki");
        let o = tamga([
            "pki",
            "demo",
            "--out",
            root.to_str().unwrap(),
            "--countries",
            "KZ,AZ",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("GOST R 34.10-2015 flavour for KZ"));
        Pki { _dir: dir, root }
    })
}

fn keys(cc: &str) -> PathBuf {
    pki().root.join("keys").join(cc)
}

fn trust() -> PathBuf {
    pki().root.join("trust")
}

/// `tamga sign` with a KZ GOST broker; the signed bytes.
fn sign_cli(dir: &Path, broker: &str, xades: bool, seq: u64) -> (PathBuf, PathBuf) {
    let decl = dir.join(format!("decl-{seq}.xml"));
    std::fs::write(&decl, sample(&SampleSpec::new("KZ", "AZ", seq, 45))).unwrap();
    let k = keys("KZ");
    let mut args: Vec<std::ffi::OsString> = vec![
        "sign".into(),
        "--key".into(),
        k.join(format!("{broker}.key")).into(),
        "--cert".into(),
        k.join(format!("{broker}.pem")).into(),
        "--chain".into(),
        k.join("gost-issuing-ca.pem").into(),
    ];
    if xades {
        args.push("--xades".into());
    }
    args.push(decl.clone().into());
    let o = tamga(&args);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("GOST demo key"),
        "{}",
        show(&o)
    );
    let signed = dir.join(format!("signed-{seq}.xml"));
    std::fs::write(&signed, &o.stdout).unwrap();
    (decl, signed)
}

fn verify_cli(file: &Path, from: &str) -> (Option<i32>, serde_json::Value) {
    let o = tamga([
        "verify".as_ref(),
        "--trust".as_ref(),
        trust().as_os_str(),
        "--from".as_ref(),
        from.as_ref(),
        file.as_os_str(),
    ]);
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    (o.status.code(), report)
}

/// The text between the first `open` (an element start, attributes
/// allowed) and the next `close`, both included.
fn element<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).unwrap();
    let end = start + text[start..].find(close).unwrap() + close.len();
    &text[start..end]
}

fn inner<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let e = element(text, open, close);
    let from = e.find('>').unwrap() + 1;
    &e[from..e.len() - close.len()]
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s.split_whitespace().collect::<String>())
        .unwrap()
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (`make deps` installs it)"));
    assert!(o.status.success(), "{cmd:?}: {}", show(&o));
    o.stdout
}

fn gost12sum_512(path: &Path) -> Vec<u8> {
    let out = run(Command::new("gost12sum").arg("-l").arg(path));
    hex::decode(
        String::from_utf8(out)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap(),
    )
    .unwrap()
}

fn exc_c14n(path: &Path) -> Vec<u8> {
    run(Command::new("xmllint").arg("--exc-c14n").arg(path))
}

#[test]
fn the_gost_flavour_is_optional() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let o = tamga([
        "pki",
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--countries",
        "KZ",
        "--gost",
        "none",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(out.join("keys/KZ/broker-ecdsa.key").is_file());
    assert!(!out.join("keys/KZ/broker-gost.key").exists());
    assert!(!out.join("trust/KZ/gost-root-ca.pem").exists());
    let bad = dir.path().join("bad");
    let o = tamga([
        "pki",
        "demo",
        "--out",
        bad.to_str().unwrap(),
        "--gost",
        "KZZ",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--gost"));
    assert!(!bad.exists());
}

/// `tamga sign` makes the NCA form, and tools independent of Tamga agree
/// with every digest and the signature value.
#[test]
fn tamga_sign_makes_the_kazakh_form_and_independent_tools_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (decl, signed) = sign_cli(dir.path(), "broker-gost", true, 1);
    let text = std::fs::read_to_string(&signed).unwrap();
    assert!(text.contains(&format!(r#"<ds:SignatureMethod Algorithm="{KZ_SIG_512}">"#)));
    assert_eq!(
        text.matches(&format!(r#"<ds:DigestMethod Algorithm="{KZ_DIGEST_512}">"#))
            .count(),
        2
    );

    // Document digest: xmllint's exclusive c14n of the unsigned declaration
    // (what the enveloped transform leaves), hashed by gost12sum.
    let c14n = dir.path().join("doc.c14n");
    std::fs::write(&c14n, exc_c14n(&decl)).unwrap();
    let reference = element(&text, "<ds:Reference URI=\"\">", "</ds:Reference>");
    assert_eq!(
        b64(inner(reference, "<ds:DigestValue>", "</ds:DigestValue>")),
        gost12sum_512(&c14n)
    );

    // SigningCertificateV2: Streebog-512 of the broker certificate (DER).
    let cert_pem = std::fs::read(keys("KZ").join("broker-gost.pem")).unwrap();
    let cert_der = tamga_dsig::certificates_from_pem(&cert_pem)
        .unwrap()
        .remove(0);
    std::fs::write(dir.path().join("cert.der"), &cert_der).unwrap();
    let cert_digest = element(&text, "<xades:CertDigest>", "</xades:CertDigest>");
    assert!(cert_digest.contains(KZ_DIGEST_512), "{cert_digest}");
    assert_eq!(
        b64(inner(cert_digest, "<ds:DigestValue", "</ds:DigestValue>")),
        gost12sum_512(&dir.path().join("cert.der"))
    );

    // SignatureValue: SignedInfo canonicalised by xmllint on its own (the
    // namespace declaration it inherits written on it), and the Kazakh r‖s
    // little-endian value byte-reversed into OpenSSL's s‖r big-endian.
    let signed_info = element(&text, "<ds:SignedInfo>", "</ds:SignedInfo>").replacen(
        "<ds:SignedInfo>",
        r#"<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#,
        1,
    );
    std::fs::write(dir.path().join("si.xml"), signed_info).unwrap();
    let si = exc_c14n(&dir.path().join("si.xml"));
    std::fs::write(dir.path().join("si.c14n"), &si).unwrap();
    let mut value = b64(inner(&text, "<ds:SignatureValue", "</ds:SignatureValue>"));
    assert_eq!(value.len(), 128);
    value.reverse();
    std::fs::write(dir.path().join("sig"), &value).unwrap();
    run(Command::new("openssl").current_dir(dir.path()).args([
        "x509",
        "-engine",
        "gost",
        "-in",
        keys("KZ").join("broker-gost.pem").to_str().unwrap(),
        "-pubkey",
        "-noout",
        "-out",
        "pub.pem",
    ]));
    let verify = |sig: &str| {
        Command::new("openssl")
            .current_dir(dir.path())
            .args([
                "dgst",
                "-engine",
                "gost",
                "-md_gost12_512",
                "-verify",
                "pub.pem",
                "-signature",
                sig,
                "si.c14n",
            ])
            .output()
            .unwrap()
    };
    let o = verify("sig");
    assert!(o.status.success(), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Verified OK"));
    value[10] ^= 1;
    std::fs::write(dir.path().join("bad-sig"), &value).unwrap();
    assert!(!verify("bad-sig").status.success());
}

#[test]
fn a_gost_512_declaration_verifies_and_is_countersigned_by_the_ecdsa_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (_, signed) = sign_cli(dir.path(), "broker-gost", true, 2);
    let (code, report) = verify_cli(&signed, "KZ");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["indication"], "TOTAL_PASSED");
    assert_eq!(report["algorithms"]["signature"], "gost2012-512");

    let az = keys("AZ");
    let receipt = dir.path().join("receipt.xml");
    let c = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .arg("countersign")
        .arg("--key")
        .arg(az.join("authority.key"))
        .arg("--cert")
        .arg(az.join("authority.pem"))
        .arg("--chain")
        .arg(az.join("issuing-ca.pem"))
        .arg("--trust")
        .arg(trust())
        .args(["--from", "KZ", "--receipt"])
        .arg(&receipt)
        .arg(&signed)
        .output()
        .unwrap();
    assert_eq!(c.status.code(), Some(0), "{}", show(&c));
    let out = String::from_utf8(c.stdout.clone()).unwrap();
    // The broker's GOST signature stays; the counter-signature is ECDSA.
    let counter = element(&out, "<xades:CounterSignature", "</xades:CounterSignature>");
    assert!(
        counter.contains("http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"),
        "{counter}"
    );
    assert!(!counter.contains("pkigovkz"));
    assert!(out.contains(KZ_SIG_512));
    let countersigned = dir.path().join("countersigned.xml");
    std::fs::write(&countersigned, &c.stdout).unwrap();

    let r = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(["receipt", "verify", "--trust"])
        .arg(trust())
        .arg("--document")
        .arg(&signed)
        .arg(&receipt)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", show(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["receipt"]["decision"], "accepted", "{v}");
}

#[test]
fn gost_256_revoked_and_wrong_country() {
    let dir = tempfile::tempdir().unwrap();
    let (_, signed) = sign_cli(dir.path(), "broker-gost-256", false, 3);
    let (code, report) = verify_cli(&signed, "KZ");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["algorithms"]["signature"], "gost2012-256");

    let (_, revoked) = sign_cli(dir.path(), "broker-gost-revoked", true, 4);
    let (code, report) = verify_cli(&revoked, "KZ");
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["reason"], "certificate_revoked", "{report}");

    let (code, report) = verify_cli(&signed, "AZ");
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["reason"], "algorithm_not_allowed_for_country");
}

// ------------------------------------------------------------- pipeline

fn signed_in_process(broker: &str, seq: u64) -> Vec<u8> {
    let k = keys("KZ");
    let key = SigningKey::from_pkcs8_pem(&std::fs::read(k.join(format!("{broker}.key"))).unwrap())
        .unwrap();
    let mut certs =
        tamga_dsig::certificates_from_pem(&std::fs::read(k.join(format!("{broker}.pem"))).unwrap())
            .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(k.join("gost-issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    sign_enveloped(
        sample(&SampleSpec::new("KZ", "AZ", seq, 8)).as_bytes(),
        &key,
        &SignOptions {
            certificates: certs,
            digest: default_digest(&key),
            xades: seq.is_multiple_of(2),
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

fn config(sqlite: &Path) -> Config {
    Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: trust(),
            policy: None,
            ..TrustConfig::default()
        },
        authority: ["KZ", "AZ"]
            .iter()
            .map(|cc| {
                let d = keys(cc);
                AuthorityConfig {
                    country: cc.to_string(),
                    key: d.join("authority.key").display().to_string(),
                    cert: d.join("authority.pem"),
                    chain: vec![d.join("issuing-ca.pem")],
                }
            })
            .collect(),
        worker: WorkerConfig {
            name: "gost-demo".into(),
            concurrency: 4,
            ..WorkerConfig::default()
        },
        metrics: MetricsConfig {
            listen: String::new(),
        },
        log: LogConfig::default(),
        embedded: EmbeddedConfig {
            sqlite: sqlite.display().to_string(),
        },
        gateway: Default::default(),
        audit: Default::default(),
    }
}

/// Publishes GOST declarations (512 and 256, one revoked, one claimed as
/// from AZ) and checks each outcome and the audit chain.
async fn pipeline_round(bus: Arc<dyn Bus>, store: Arc<dyn Store>, sqlite: &Path, stages: &[Stage]) {
    let site = start_site(
        &config(sqlite),
        &SiteOptions {
            embedded: false,
            stages: stages.to_vec(),
        },
        &tamga_pipeline::open_key,
        Some(bus.clone()),
        Some(store.clone()),
    )
    .await
    .unwrap();
    // (id, route, body, expected queue, expected reason)
    type Case = (
        &'static str,
        &'static str,
        Vec<u8>,
        &'static str,
        Option<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "gost512-a",
            "kz.az",
            signed_in_process("broker-gost", 10),
            "tamga.outbound.az",
            None,
        ),
        (
            "gost512-b",
            "kz.az",
            signed_in_process("broker-gost", 11),
            "tamga.outbound.az",
            None,
        ),
        (
            "gost256",
            "kz.az",
            signed_in_process("broker-gost-256", 12),
            "tamga.outbound.az",
            None,
        ),
        (
            "gost-revoked",
            "kz.az",
            signed_in_process("broker-gost-revoked", 13),
            "tamga.rejected.kz",
            Some("certificate_revoked"),
        ),
        (
            "gost-as-az",
            "az.kz",
            signed_in_process("broker-gost", 14),
            "tamga.rejected.az",
            Some("algorithm_not_allowed_for_country"),
        ),
    ];
    let mut consumers = Vec::new();
    for q in [
        "tamga.outbound.az",
        "tamga.outbound.kz",
        "tamga.rejected.kz",
        "tamga.rejected.az",
    ] {
        consumers.push((q, bus.consume(q, 16, "gost-demo-collector").await.unwrap()));
    }
    for (id, route, body, _, _) in &cases {
        bus.publish(
            "tamga.inbound",
            Message {
                body: body.clone(),
                routing_key: (*route).into(),
                message_id: Some((*id).into()),
                correlation_id: None,
                headers: BTreeMap::new(),
                timestamp_ms: Some(tamga_pipeline::now_ms()),
            },
        )
        .await
        .unwrap();
    }
    let mut seen: BTreeMap<String, (String, Option<String>, Vec<u8>)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < cases.len() && Instant::now() < deadline {
        for (q, c) in consumers.iter_mut() {
            if let Ok(Some(Ok(d))) =
                tokio::time::timeout(Duration::from_millis(100), c.next()).await
            {
                let m = d.message.clone();
                let _ = d.ack().await;
                let reason = match m.headers.get(headers::REASON) {
                    Some(HeaderValue::Str(s)) => Some(s.clone()),
                    _ => None,
                };
                seen.insert(
                    m.correlation_id.clone().unwrap_or_default(),
                    (q.to_string(), reason, m.body.clone()),
                );
            }
        }
    }
    site.stop().await;
    for (id, _, _, queue, reason) in &cases {
        let (q, r, body) = seen
            .get(*id)
            .unwrap_or_else(|| panic!("{id}: no outcome; seen {:?}", seen.keys()));
        assert_eq!(q, queue, "{id}: {r:?}");
        assert_eq!(r.as_deref(), *reason, "{id}");
        if reason.is_none() {
            // Forwarded: the GOST signature with the AZ authority's
            // ECDSA counter-signature inside.
            let text = String::from_utf8_lossy(body);
            assert!(text.contains("pkigovkz"), "{id}");
            let counter = element(
                &text,
                "<xades:CounterSignature",
                "</xades:CounterSignature>",
            );
            assert!(counter.contains("ecdsa-sha256"), "{id}: {counter}");
        }
    }
    let report = store.verify_chain().await.unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert!(report.events > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gost_declarations_through_the_embedded_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("audit.sqlite");
    let store: Arc<dyn Store> = Arc::new(tamga_store::open_sqlite(&sqlite).unwrap());
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    pipeline_round(bus, store, &sqlite, &[Stage::Fused]).await;
}

fn unique(prefix: &str) -> String {
    let n = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{prefix}_{}_{:x}", std::process::id(), n)
}

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl is required (RabbitMQ from Debian: make services)");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// RabbitMQ (a vhost of its own) and PostgreSQL (a database of its own),
/// three separate stages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gost_declarations_through_rabbitmq_and_postgresql() {
    let vhost = unique("tamga-gost");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let db = unique("tamga_gost");
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_vhost", &self.0])
                .output();
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.1))
                .output();
        }
    }
    let _cleanup = Cleanup(vhost.clone(), db.clone());
    let bus = AmqpBus::connect(
        &format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
        AmqpOptions::default(),
    )
    .await
    .expect("RabbitMQ must run on 127.0.0.1:5672 (make services)");
    let (admin, conn) = tokio_postgres::connect(
        "host=127.0.0.1 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL must run on 127.0.0.1:5432 (make services)");
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();
    let store = tamga_store::connect_postgres(&StoreConfig {
        app_role: Some("tamga_app".into()),
        ..StoreConfig::new(format!("postgres://postgres@127.0.0.1:5432/{db}"))
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    pipeline_round(
        Arc::new(bus),
        Arc::new(store),
        &dir.path().join("unused.sqlite"),
        Stage::ALL.as_slice(),
    )
    .await;
}
