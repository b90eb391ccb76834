#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Counter-signatures and receipts: round trips over the demo PKI for every
//! country and key type, xmlsec1 checking Tamga's output independently, the
//! `tamga countersign` contract, and receipts for every refusal class.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{countersign, sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_policy::{verify_document, Indication, Policy, VerifyRequest};
use tamga_trust::TrustList;

const COUNTRIES: [&str; 4] = ["AZ", "KZ", "TR", "KG"];

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    now: i64,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = tamga_pki::generate(&tamga_pki::DemoPkiOptions {
            countries: COUNTRIES.iter().map(|s| s.to_string()).collect(),
            now_unix: now,
        })
        .unwrap();
        pki.write_to(dir.path()).unwrap();
        Fixture {
            root: dir.path().to_path_buf(),
            _dir: dir,
            now,
        }
    })
}

fn keys(cc: &str) -> PathBuf {
    fixture().root.join("keys").join(cc)
}

fn trust() -> TrustList {
    TrustList::load_dir(&fixture().root.join("trust")).unwrap()
}

fn certs(cc: &str, name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for f in [format!("{name}.pem"), "issuing-ca.pem".to_string()] {
        out.extend(
            tamga_dsig::certificates_from_pem(&std::fs::read(keys(cc).join(f)).unwrap()).unwrap(),
        );
    }
    out
}

fn key(cc: &str, name: &str) -> SigningKey {
    SigningKey::from_pkcs8_pem(&std::fs::read(keys(cc).join(format!("{name}.key"))).unwrap())
        .unwrap()
}

fn options(cc: &str, name: &str, xades: bool) -> SignOptions {
    SignOptions {
        certificates: certs(cc, name),
        digest: DigestAlgorithm::Sha256,
        xades,
        signing_time: time::OffsetDateTime::from_unix_timestamp(fixture().now).unwrap(),
        limits: Default::default(),
    }
}

fn signed(from: &str, to: &str, broker: &str, xades: bool, seq: u64) -> Vec<u8> {
    let doc = sample(&SampleSpec::new(from, to, seq, 12));
    sign_enveloped(
        doc.as_bytes(),
        &key(from, broker),
        &options(from, broker, xades),
    )
    .unwrap()
}

fn verify(bytes: &[u8], from: &str) -> tamga_policy::Report {
    verify_document(&VerifyRequest {
        bytes,
        trust: &trust(),
        origin: from.parse().unwrap(),
        at_unix: fixture().now,
        policy: &Policy::customs(),
        resolver: &tamga_dsig::NoExternal,
        hmac_secret: None,
    })
}

fn xmlsec1() -> &'static str {
    let ok = Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "xmlsec1 is required for interop tests: apt-get install xmlsec1 (make deps does)"
    );
    "xmlsec1"
}

fn xmlsec_verify(file: &Path, cc: &str, extra: &[&str]) -> bool {
    let out = Command::new(xmlsec1())
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(fixture().root.join("trust").join(cc).join("root-ca.pem"))
        .arg("--untrusted-pem")
        .arg(keys(cc).join("issuing-ca.pem"))
        .args([
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
        ])
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    out.status.success()
}

#[test]
fn round_trips_for_every_country_and_key_type() {
    let mut seq = 0;
    for (i, from) in COUNTRIES.iter().enumerate() {
        let to = COUNTRIES[(i + 1) % COUNTRIES.len()];
        for broker in ["broker-rsa", "broker-ecdsa"] {
            for authority in ["authority", "authority-rsa"] {
                seq += 1;
                let doc = signed(from, to, broker, seq % 2 == 0, seq);
                let out =
                    countersign(&doc, &key(to, authority), &options(to, authority, true)).unwrap();
                let r = verify(&out, from);
                assert_eq!(
                    r.indication,
                    Indication::TotalPassed,
                    "{from}->{to} {broker} {authority}: {}",
                    r.message
                );
                assert_eq!(r.counter_signatures.len(), 1);
                assert_eq!(r.counter_signatures[0].indication, Indication::TotalPassed);
                assert_eq!(
                    r.counter_signatures[0]
                        .signer
                        .as_ref()
                        .unwrap()
                        .country
                        .as_deref(),
                    Some(to)
                );
                // Counter-signing twice (two authorities) keeps both valid.
                let twice = countersign(
                    &out,
                    &key(from, "authority"),
                    &options(from, "authority", true),
                )
                .unwrap();
                let r2 = verify(&twice, from);
                assert_eq!(r2.indication, Indication::TotalPassed, "{}", r2.message);
                assert_eq!(r2.counter_signatures.len(), 2);
            }
        }
    }
}

#[test]
fn everything_outside_the_declarant_signature_is_unchanged() {
    let doc = signed("KZ", "AZ", "broker-ecdsa", false, 900);
    let out = countersign(
        &doc,
        &key("AZ", "authority"),
        &options("AZ", "authority", true),
    )
    .unwrap();
    let start = doc.windows(13).position(|w| w == b"<ds:Signature").unwrap();
    let end = doc
        .windows(15)
        .rposition(|w| w == b"</ds:Signature>")
        .unwrap()
        + 15;
    assert_eq!(out[..start], doc[..start]);
    assert_eq!(out[out.len() - (doc.len() - end)..], doc[end..]);
}

#[test]
fn counter_signature_tampering_is_detected() {
    let doc = signed("KZ", "AZ", "broker-rsa", true, 901);
    let out = String::from_utf8(
        countersign(
            &doc,
            &key("AZ", "authority"),
            &options("AZ", "authority", true),
        )
        .unwrap(),
    )
    .unwrap();
    // Break the counter-signature's own SignatureValue (the last one in the document).
    let at = out.rfind("<ds:SignatureValue").unwrap();
    let value_start = out[at..].find('>').unwrap() + at + 1;
    let mut bad = out.clone().into_bytes();
    bad[value_start + 4] = if bad[value_start + 4] == b'A' {
        b'B'
    } else {
        b'A'
    };
    let r = verify(&bad, "KZ");
    assert_ne!(r.indication, Indication::TotalPassed);
    assert_eq!(r.reason, Some("countersignature_invalid"));
    assert_eq!(r.counter_signatures[0].reason, Some("signature_invalid"));
}

#[test]
fn xmlsec1_verifies_countersignature_declarant_and_receipts() {
    let dir = tempfile::tempdir().unwrap();
    for (broker, authority, xades) in [
        ("broker-rsa", "authority", true),
        ("broker-ecdsa", "authority-rsa", false),
    ] {
        let doc = signed("KZ", "AZ", broker, xades, 950);
        let out =
            countersign(&doc, &key("AZ", authority), &options("AZ", authority, true)).unwrap();
        let file = dir.path().join(format!("{broker}-cs.xml"));
        std::fs::write(&file, &out).unwrap();
        assert!(
            xmlsec_verify(
                &file,
                "AZ",
                &[
                    "--node-xpath",
                    "//*[local-name()='CounterSignature']/*[local-name()='Signature']",
                    "--id-attr:Id",
                    "http://www.w3.org/2000/09/xmldsig#:SignatureValue",
                ]
            ),
            "xmlsec1 refused the counter-signature ({broker}, {authority})"
        );
        assert!(
            xmlsec_verify(
                &file,
                "KZ",
                &["--node-xpath", "/*/*[local-name()='Signature']"]
            ),
            "xmlsec1 refused the declarant's signature after counter-signing ({broker})"
        );
    }
    // Receipts, both kinds, through the CLI.
    let good = dir.path().join("good.xml");
    std::fs::write(&good, signed("KZ", "AZ", "broker-ecdsa", true, 951)).unwrap();
    let (code, stdout, _) = countersign_cli(&good, "KZ", &dir.path().join("r1.xml"));
    assert_eq!(code, 0);
    assert!(!stdout.is_empty());
    assert!(xmlsec_verify(&dir.path().join("r1.xml"), "AZ", &[]));
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, b"<Declaration>unsigned</Declaration>").unwrap();
    let (code, stdout, _) = countersign_cli(&bad, "KZ", &dir.path().join("r2.xml"));
    assert_eq!(code, 1);
    assert!(stdout.is_empty());
    assert!(xmlsec_verify(&dir.path().join("r2.xml"), "AZ", &[]));
}

fn countersign_cli(file: &Path, from: &str, receipt: &Path) -> (i32, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tamga"))
        .arg("countersign")
        .arg("--key")
        .arg(keys("AZ").join("authority.key"))
        .arg("--cert")
        .arg(keys("AZ").join("authority.pem"))
        .arg("--chain")
        .arg(keys("AZ").join("issuing-ca.pem"))
        .arg("--trust")
        .arg(fixture().root.join("trust"))
        .args(["--from", from])
        .arg("--receipt")
        .arg(receipt)
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn receipt_verify_cli(receipt: &Path, document: Option<&Path>) -> (i32, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tamga"));
    cmd.args(["receipt", "verify", "--trust"])
        .arg(fixture().root.join("trust"));
    if let Some(d) = document {
        cmd.arg("--document").arg(d);
    }
    let out = cmd.arg(receipt).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

#[test]
fn every_refusal_class_gives_exit_1_empty_stdout_and_a_signed_rejection_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let good = String::from_utf8(signed("KZ", "AZ", "broker-rsa", true, 960)).unwrap();
    let other_body = sample(&SampleSpec::new("KZ", "AZ", 961, 3));
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "parse",
            "KZ",
            b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'x'>]><x>&e;</x>".to_vec(),
            "doctype_forbidden",
        ),
        ("unsigned", "KZ", other_body.into_bytes(), "no_signature"),
        (
            "tampered",
            "KZ",
            good.replacen("<HSCode>", "<HSCode>1", 1).into_bytes(),
            "digest_mismatch",
        ),
        (
            "wrapped",
            "KZ",
            format!(
                "<Wrapper>{}</Wrapper>",
                good.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            )
            .into_bytes(),
            "signature_wrapping",
        ),
        (
            "wrong-country",
            "TR",
            good.clone().into_bytes(),
            "untrusted_signer",
        ),
        (
            "expired",
            "KZ",
            signed("KZ", "AZ", "broker-expired", false, 962),
            "certificate_expired",
        ),
        (
            "revoked",
            "KZ",
            signed("KZ", "AZ", "broker-revoked", false, 963),
            "certificate_revoked",
        ),
        (
            "no-key-usage",
            "KZ",
            signed("KZ", "AZ", "broker-no-key-usage", false, 964),
            "key_usage_not_allowed",
        ),
        (
            "sha1",
            "KZ",
            good.replace(
                "http://www.w3.org/2001/04/xmlenc#sha256",
                "http://www.w3.org/2000/09/xmldsig#sha1",
            )
            .into_bytes(),
            "weak_algorithm",
        ),
    ];
    for (name, from, bytes, reason) in cases {
        let file = dir.path().join(format!("{name}.xml"));
        std::fs::write(&file, &bytes).unwrap();
        let receipt = dir.path().join(format!("{name}-receipt.xml"));
        let (code, stdout, stderr) = countersign_cli(&file, from, &receipt);
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: stdout must be empty");
        let report: serde_json::Value = serde_json::from_str(&stderr).unwrap();
        assert_eq!(report["reason"], reason, "{name}");
        let (code, v) = receipt_verify_cli(&receipt, Some(&file));
        assert_eq!(code, 0, "{name}: {v}");
        assert_eq!(v["valid"], true);
        assert_eq!(v["documentMatches"], true);
        assert_eq!(v["receipt"]["decision"], "rejected");
        assert_eq!(v["receipt"]["reason"], reason, "{name}");
    }
}

#[test]
fn receipt_is_bound_to_the_exact_bytes_and_to_its_signer() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    let bytes = signed("KG", "AZ", "broker-ecdsa", true, 970);
    std::fs::write(&doc, &bytes).unwrap();
    let receipt = dir.path().join("r.xml");
    let (code, countersigned, _) = countersign_cli(&doc, "KG", &receipt);
    assert_eq!(code, 0);
    // Both the submitted and the counter-signed bytes match the receipt.
    let cs = dir.path().join("cs.xml");
    std::fs::write(&cs, &countersigned).unwrap();
    assert_eq!(receipt_verify_cli(&receipt, Some(&doc)).0, 0);
    assert_eq!(receipt_verify_cli(&receipt, Some(&cs)).0, 0);
    // Another document does not.
    let other = dir.path().join("other.xml");
    std::fs::write(&other, [bytes.as_slice(), b"\n"].concat()).unwrap();
    let (code, v) = receipt_verify_cli(&receipt, Some(&other));
    assert_eq!(code, 1);
    assert_eq!(v["documentMatches"], false);
    // A tampered receipt fails.
    let text = std::fs::read_to_string(&receipt).unwrap();
    let forged = dir.path().join("forged.xml");
    std::fs::write(
        &forged,
        text.replace(
            "<Decision>accepted</Decision>",
            "<Decision>rejected</Decision>",
        ),
    )
    .unwrap();
    let (code, v) = receipt_verify_cli(&forged, None);
    assert_eq!(code, 1);
    assert_eq!(v["valid"], false);
    assert_eq!(v["signature"]["reason"], "digest_mismatch");
}

#[test]
fn receipts_and_countersigned_documents_match_the_schemas() {
    let ok = Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "xmllint is required: apt-get install libxml2-utils (make deps does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("doc.xml");
    std::fs::write(&doc, signed("TR", "AZ", "broker-rsa", true, 980)).unwrap();
    let receipt = dir.path().join("r.xml");
    let (_, countersigned, _) = countersign_cli(&doc, "TR", &receipt);
    let cs = dir.path().join("cs.xml");
    std::fs::write(&cs, countersigned).unwrap();
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    for (xsd, file) in [
        ("receipt.xsd", &receipt),
        ("declaration.xsd", &cs),
        ("declaration.xsd", &doc),
    ] {
        let out = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schemas.join(xsd))
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{xsd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
