#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Verify and countersign agree: every byte-level variant of a valid
//! declaration that `verify` passes is counter-signed (library, CLI and the
//! embedded pipeline, which forwards it rather than dead-lettering it), and
//! a tampered one is refused by both with the same reason.
//!
//! The variants are the ones real senders produce: a UTF-8 byte-order mark
//! (Windows tools), CRLF line ends, whitespace, comments and processing
//! instructions before and after the document element, the signature as the
//! first child, a default-namespace signature (no `ds:` prefix), and base64
//! with line breaks (as most Java and .NET producers write it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tamga_bus::{Bus, HeaderValue, MemoryBus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::reference::digest_reference;
use tamga_dsig::{
    countersign, find_signatures, parse_signature, sign_enveloped, signed_info_octets, Budget,
    DigestAlgorithm, NoExternal, SignOptions, Signer, SigningKey,
};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{headers, Config, Stage};
use tamga_policy::{
    verify_document_with, Indication, Policy, Report, Strategy as VerifyRoute, VerifyRequest,
};
use tamga_trust::TrustList;
use tamga_xml::{Document, ParseLimits};

const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    now: i64,
    trust: TrustList,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        tamga_pki::generate(&tamga_pki::DemoPkiOptions::new(["KZ", "AZ"], now))
            .unwrap()
            .write_to(dir.path())
            .unwrap();
        let trust = TrustList::load_dir(&dir.path().join("trust")).unwrap();
        World {
            root: dir.path().to_path_buf(),
            _dir: dir,
            now,
            trust,
        }
    })
}

fn keys(cc: &str) -> PathBuf {
    world().root.join("keys").join(cc)
}

fn key(cc: &str, name: &str) -> SigningKey {
    SigningKey::from_pkcs8_pem(&std::fs::read(keys(cc).join(format!("{name}.key"))).unwrap())
        .unwrap()
}

fn options(cc: &str, name: &str, xades: bool) -> SignOptions {
    let mut certificates = Vec::new();
    for f in [format!("{name}.pem"), "issuing-ca.pem".to_string()] {
        certificates.extend(
            tamga_dsig::certificates_from_pem(&std::fs::read(keys(cc).join(f)).unwrap()).unwrap(),
        );
    }
    SignOptions {
        certificates,
        digest: DigestAlgorithm::Sha256,
        xades,
        signing_time: time::OffsetDateTime::from_unix_timestamp(world().now).unwrap(),
        limits: ParseLimits::default(),
    }
}

// --- the variants -------------------------------------------------------------

/// Markup outside the document element.
#[derive(Debug, Clone, Copy)]
enum Misc {
    Space,
    Newline,
    Comment,
    Pi,
}

impl Misc {
    fn text(self) -> &'static str {
        match self {
            Misc::Space => "  \t",
            Misc::Newline => "\n",
            Misc::Comment => "<!-- exported by BrokerSoft 7 <Declaration> -->",
            Misc::Pi => "<?broker-soft version=\"7\"?>",
        }
    }
}

#[derive(Debug, Clone)]
struct Variant {
    seq: u64,
    rsa: bool,
    xades: bool,
    bom: bool,
    crlf: bool,
    before: Vec<Misc>,
    after: Vec<Misc>,
    signature_first: bool,
    default_namespace: bool,
    base64_breaks: bool,
}

impl Variant {
    fn plain(seq: u64) -> Self {
        Variant {
            seq,
            rsa: false,
            xades: false,
            bom: false,
            crlf: false,
            before: Vec::new(),
            after: Vec::new(),
            signature_first: false,
            default_namespace: false,
            base64_breaks: false,
        }
    }
}

fn misc() -> impl Strategy<Value = Misc> {
    prop_oneof![
        Just(Misc::Space),
        Just(Misc::Newline),
        Just(Misc::Comment),
        Just(Misc::Pi)
    ]
}

fn variant() -> impl Strategy<Value = Variant> {
    (
        (1u64..1000, any::<bool>(), any::<bool>(), any::<bool>()),
        (
            any::<bool>(),
            proptest::collection::vec(misc(), 0..3),
            proptest::collection::vec(misc(), 0..3),
        ),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                (seq, rsa, xades, bom),
                (crlf, before, after),
                (signature_first, default_namespace, base64_breaks),
            )| Variant {
                seq,
                rsa,
                xades,
                bom,
                crlf,
                before,
                after,
                signature_first,
                default_namespace,
                base64_breaks,
            },
        )
}

/// The signature element's text: from `<ds:Signature` (or `<Signature`) to
/// its end tag.
fn signature_range(doc: &str) -> (usize, usize) {
    let (open, close) = if doc.contains("<ds:Signature") {
        ("<ds:Signature", "</ds:Signature>")
    } else {
        ("<Signature", "</Signature>")
    };
    let a = doc.find(open).unwrap();
    let b = doc.rfind(close).unwrap() + close.len();
    (a, b)
}

/// The text ranges of the elements with local name `local` (prefix `ds:` or
/// none), in document order.
fn texts_of(doc: &str, local: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, _) in doc.match_indices(local) {
        let before = &doc[..i];
        let after = doc[i + local.len()..].chars().next();
        if !(before.ends_with('<') || before.ends_with("<ds:")) || !matches!(after, Some('>' | ' '))
        {
            continue;
        }
        let a = i + doc[i..].find('>').unwrap() + 1;
        let b = a + doc[a..].find('<').unwrap();
        out.push((a, b));
    }
    out
}

/// Recomputes every reference digest of the signature and its value, after
/// a change to signed markup (the default-namespace rewrite).
fn resign(doc: &str, key: &SigningKey) -> String {
    let limits = ParseLimits::default();
    let mut out = doc.to_string();
    let digests: Vec<String> = {
        let parsed = Document::parse(doc.as_bytes(), &limits).unwrap();
        let sig_el = find_signatures(&parsed)[0];
        let model = parse_signature(sig_el, &Budget::default()).unwrap();
        model
            .references
            .iter()
            .map(|r| b64(&digest_reference(&parsed, sig_el, r, &NoExternal, &limits).unwrap()))
            .collect()
    };
    // SignedInfo's DigestValues come first, in reference order (XAdES
    // CertDigest values follow in the Object); replaced from the last.
    let ranges = texts_of(&out, "DigestValue");
    for (d, (a, b)) in digests.iter().zip(ranges).rev() {
        out.replace_range(a..b, d);
    }
    let value = {
        let parsed = Document::parse(out.as_bytes(), &limits).unwrap();
        let model = parse_signature(find_signatures(&parsed)[0], &Budget::default()).unwrap();
        b64(&key
            .sign(&signed_info_octets(&parsed, &model).unwrap())
            .unwrap())
    };
    let (a, b) = texts_of(&out, "SignatureValue")[0];
    out.replace_range(a..b, &value);
    out
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Breaks the text of every `local` element into lines of 64 characters.
fn break_lines(doc: &str, local: &str) -> String {
    let mut out = doc.to_string();
    for (a, b) in texts_of(doc, local).into_iter().rev() {
        let lines: Vec<&str> = doc.as_bytes()[a..b]
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        out.replace_range(a..b, &format!("\n{}\n", lines.join("\n")));
    }
    out
}

fn build(v: &Variant) -> Vec<u8> {
    let broker = if v.rsa { "broker-rsa" } else { "broker-ecdsa" };
    let unsigned = sample(&SampleSpec::new("KZ", "AZ", v.seq, 2));
    let decl_end = unsigned.find("?>").unwrap() + 2;
    let before: String = v.before.iter().map(|m| m.text()).collect();
    let after: String = v.after.iter().map(|m| m.text()).collect();
    let unsigned = format!(
        "{}{before}{}{after}",
        &unsigned[..decl_end],
        &unsigned[decl_end..]
    );
    let k = key("KZ", broker);
    let mut doc = String::from_utf8(
        sign_enveloped(unsigned.as_bytes(), &k, &options("KZ", broker, v.xades)).unwrap(),
    )
    .unwrap();
    if v.default_namespace {
        let (a, b) = signature_range(&doc);
        let sig = doc[a..b]
            .replace("<ds:", "<")
            .replace("</ds:", "</")
            .replace(&format!("xmlns:ds=\"{DS}\""), &format!("xmlns=\"{DS}\""));
        doc.replace_range(a..b, &sig);
        doc = resign(&doc, &k);
    }
    if v.signature_first {
        let (a, b) = signature_range(&doc);
        let sig = doc[a..b].to_string();
        doc.replace_range(a..b, "");
        let root = doc.find("<Declaration xmlns").unwrap();
        let at = root + doc[root..].find('>').unwrap() + 1;
        doc.insert_str(at, &sig);
    }
    if v.base64_breaks {
        doc = break_lines(&doc, "SignatureValue");
        doc = break_lines(&doc, "X509Certificate");
    }
    if v.crlf {
        doc = doc.replace('\n', "\r\n");
    }
    let mut bytes = Vec::new();
    if v.bom {
        bytes.extend_from_slice(b"\xEF\xBB\xBF");
    }
    bytes.extend_from_slice(doc.as_bytes());
    bytes
}

/// A change of the signed content: the declared value.
fn tamper(doc: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(doc.to_vec()).unwrap();
    let at = s.find("<LRN>").unwrap() + "<LRN>".len();
    let mut t = s.clone();
    t.replace_range(at..at + 1, "X");
    t.into_bytes()
}

// --- the checks -----------------------------------------------------------------

fn verify(bytes: &[u8], strategy: VerifyRoute) -> Report {
    verify_document_with(
        &VerifyRequest {
            bytes,
            trust: &world().trust,
            origin: "KZ".parse().unwrap(),
            at_unix: world().now,
            policy: &Policy::customs(),
            resolver: &NoExternal,
            hmac_secret: None,
        },
        strategy,
    )
    .0
}

fn authority() -> (SigningKey, SignOptions) {
    (key("AZ", "authority"), options("AZ", "authority", true))
}

/// Verify (both routes) and countersign agree on `bytes`: both accept, and
/// the counter-signed document verifies with its counter-signature, every
/// byte outside the signature kept.
fn agree(bytes: &[u8]) -> Result<(), TestCaseError> {
    let tree = verify(bytes, VerifyRoute::Tree);
    let streamed = verify(bytes, VerifyRoute::Streaming);
    prop_assert_eq!(&tree, &streamed);
    prop_assert_eq!(tree.indication, Indication::TotalPassed, "{}", tree.message);
    let (k, o) = authority();
    let out = countersign(bytes, &k as &dyn Signer, &o);
    prop_assert!(out.is_ok(), "countersign: {}", out.unwrap_err());
    let out = out.unwrap();
    let report = verify(&out, VerifyRoute::Tree);
    prop_assert_eq!(
        report.indication,
        Indication::TotalPassed,
        "{}",
        report.message
    );
    prop_assert_eq!(report.counter_signatures.len(), 1);
    prop_assert_eq!(
        report.counter_signatures[0].indication,
        Indication::TotalPassed
    );
    prop_assert!(out.starts_with(&bytes[..bytes.len().min(3)]));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn verify_and_countersign_agree_on_byte_level_variants(v in variant()) {
        let bytes = build(&v);
        agree(&bytes)?;
        // Refused alike: the tampered copy fails verification, and
        // countersigning (which verifies first) says the same.
        let bad = tamper(&bytes);
        let report = verify(&bad, VerifyRoute::Tree);
        prop_assert_eq!(report.reason, Some("digest_mismatch"));
    }
}

/// One variant per kind, and all of them at once: the fixed list the CLI
/// and the pipeline run.
fn fixed_variants() -> Vec<(&'static str, Variant)> {
    let p = Variant::plain;
    vec![
        ("bom", Variant { bom: true, ..p(11) }),
        (
            "bom-xades-rsa",
            Variant {
                bom: true,
                xades: true,
                rsa: true,
                ..p(12)
            },
        ),
        (
            "crlf",
            Variant {
                crlf: true,
                ..p(13)
            },
        ),
        (
            "misc-around",
            Variant {
                before: vec![Misc::Newline, Misc::Comment, Misc::Pi],
                after: vec![Misc::Newline, Misc::Pi, Misc::Comment],
                ..p(14)
            },
        ),
        (
            "signature-first",
            Variant {
                signature_first: true,
                xades: true,
                ..p(15)
            },
        ),
        (
            "default-namespace",
            Variant {
                default_namespace: true,
                ..p(16)
            },
        ),
        (
            "default-namespace-xades",
            Variant {
                default_namespace: true,
                xades: true,
                rsa: true,
                ..p(17)
            },
        ),
        (
            "base64-breaks",
            Variant {
                base64_breaks: true,
                xades: true,
                ..p(18)
            },
        ),
        (
            "everything",
            Variant {
                seq: 19,
                rsa: true,
                xades: true,
                bom: true,
                crlf: true,
                before: vec![Misc::Space, Misc::Newline, Misc::Comment, Misc::Pi],
                after: vec![Misc::Pi, Misc::Comment, Misc::Newline],
                signature_first: true,
                default_namespace: true,
                base64_breaks: true,
            },
        ),
    ]
}

#[test]
fn fixed_variants_agree_in_the_library() {
    for (name, v) in fixed_variants() {
        agree(&build(&v)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

fn tamga() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tamga"))
}

#[test]
fn fixed_variants_agree_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let trust = world().root.join("trust");
    let az = keys("AZ");
    for (name, v) in fixed_variants() {
        let good = build(&v);
        for (label, bytes, pass) in [
            ("good", good.clone(), true),
            ("tampered", tamper(&good), false),
        ] {
            let file = dir.path().join(format!("{name}-{label}.xml"));
            std::fs::write(&file, &bytes).unwrap();
            let verified = tamga()
                .args(["verify", "--from", "KZ", "--trust"])
                .arg(&trust)
                .arg(&file)
                .output()
                .unwrap();
            let report: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
            let receipt = dir.path().join(format!("{name}-{label}.receipt.xml"));
            let countersigned = tamga()
                .args(["countersign", "--from", "KZ", "--key"])
                .arg(az.join("authority.key"))
                .arg("--cert")
                .arg(az.join("authority.pem"))
                .arg("--chain")
                .arg(az.join("issuing-ca.pem"))
                .arg("--trust")
                .arg(&trust)
                .arg("--receipt")
                .arg(&receipt)
                .arg(&file)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&countersigned.stderr);
            if pass {
                assert_eq!(verified.status.code(), Some(0), "{name}: {report}");
                assert_eq!(countersigned.status.code(), Some(0), "{name}: {stderr}");
                assert!(!countersigned.stdout.is_empty(), "{name}");
            } else {
                assert_eq!(verified.status.code(), Some(1), "{name}: {report}");
                assert_eq!(countersigned.status.code(), Some(1), "{name}: {stderr}");
                assert!(countersigned.stdout.is_empty(), "{name}");
                let refused: serde_json::Value =
                    serde_json::from_str(&stderr[stderr.find('{').unwrap_or(0)..])
                        .unwrap_or_default();
                assert_eq!(refused["reason"], report["reason"], "{name}: {stderr}");
            }
        }
    }
}

/// The embedded pipeline (in-process bus, SQLite): every good variant is
/// counter-signed and forwarded, every tampered one rejected with the
/// reason `verify` gives; nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_variants_agree_in_the_embedded_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("audit.sqlite");
    let store: Arc<dyn tamga_store::Store> = Arc::new(tamga_store::open_sqlite(&sqlite).unwrap());
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let site = start_site(
        &pipeline_config(&sqlite),
        &SiteOptions {
            embedded: false,
            stages: vec![Stage::Verify, Stage::Countersign, Stage::Forward],
        },
        &tamga_pipeline::open_key,
        Some(bus.clone()),
        Some(store.clone()),
    )
    .await
    .unwrap();
    let mut expected = BTreeMap::new();
    for (name, v) in fixed_variants() {
        let good = build(&v);
        let bad = tamper(&good);
        let reason = verify(&bad, VerifyRoute::Tree).reason.map(str::to_string);
        for (id, body, want) in [
            (format!("{name}-good"), good, None),
            (format!("{name}-tampered"), bad, reason),
        ] {
            expected.insert(id.clone(), want);
            bus.publish(
                "tamga.inbound",
                Message {
                    body,
                    routing_key: "kz.az".into(),
                    message_id: Some(id),
                    correlation_id: None,
                    headers: BTreeMap::new(),
                    timestamp_ms: Some(tamga_pipeline::now_ms()),
                },
            )
            .await
            .unwrap();
        }
    }
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut outbound = bus
        .consume("tamga.outbound.az", 64, "agreement")
        .await
        .unwrap();
    let mut rejected = bus
        .consume("tamga.rejected.kz", 64, "agreement")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < expected.len() && Instant::now() < deadline {
        tokio::select! {
            Some(Ok(d)) = outbound.next() => {
                let id = d.message.correlation_id.clone().unwrap_or_default();
                let _ = d.ack().await;
                seen.insert(id, None);
            }
            Some(Ok(d)) = rejected.next() => {
                let id = d.message.correlation_id.clone().unwrap_or_default();
                let reason = match d.message.headers.get(headers::REASON) {
                    Some(HeaderValue::Str(s)) => Some(s.clone()),
                    _ => None,
                };
                let _ = d.ack().await;
                seen.insert(id, reason);
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    let _ = site.shutdown.send(true);
    assert_eq!(seen, expected);
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts.get("dead_lettered").copied().unwrap_or(0),
        0,
        "{counts:?}"
    );
}

fn pipeline_config(sqlite: &Path) -> Config {
    let root = &world().root;
    Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: root.join("trust"),
            policy: None,
            ..TrustConfig::default()
        },
        authority: vec![AuthorityConfig {
            country: "AZ".into(),
            key: keys("AZ").join("authority.key").display().to_string(),
            cert: keys("AZ").join("authority.pem"),
            chain: vec![keys("AZ").join("issuing-ca.pem")],
        }],
        worker: WorkerConfig {
            name: "agreement".into(),
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
