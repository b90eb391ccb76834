#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The QR contract, through the built binary (issue 9):
//!
//! * `tamga receipt qr RECEIPT [--svg FILE]` prints one line starting `TMG1:`;
//! * `tamga receipt verify-qr --trust DIR [--bundle FILE] PAYLOAD` prints JSON with `valid`,
//!   `decision`, `documentSha256`, `receiptId`; exit 0 authentic, 1 not (tampered, wrong
//!   key, unknown authority, malformed), 2 on usage errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

fn run(args: &[&str]) -> Output {
    Command::new(TAMGA).args(args).output().expect("run tamga")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

/// `tamga countersign` of a fresh KZ declaration by the AZ authority: the receipt.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        let o = run(&["demo", "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        Self { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("demo").join(rel)
    }
    fn trust(&self) -> String {
        self.path("pki/trust").display().to_string()
    }
    fn receipt(&self) -> String {
        self.path("declarations/kz-az-receipt.xml")
            .display()
            .to_string()
    }
}

fn qr(receipt: &str, extra: &[&str]) -> String {
    let mut args = vec!["receipt", "qr"];
    args.extend_from_slice(extra);
    args.push(receipt);
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    text.trim_end().to_owned()
}

fn copy_dir(from: &Path, to: &Path, skip: &str) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name.to_string_lossy() == skip {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(&name), skip);
        } else {
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

#[test]
fn qr_prints_one_line_and_verifies_offline() {
    let f = Fixture::new();
    let svg = f.dir.path().join("qr.svg");
    let payload = qr(&f.receipt(), &["--svg", svg.to_str().unwrap()]);
    assert!(payload.starts_with("TMG1:"));
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(
        picture.contains("<svg"),
        "{}",
        &picture[..100.min(picture.len())]
    );

    let o = run(&["receipt", "verify-qr", "--trust", &f.trust(), &payload]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let v = json(&o);
    assert_eq!(v["valid"], true);
    assert_eq!(v["decision"], "accepted");
    assert_eq!(v["documentSha256"].as_str().unwrap().len(), 64);
    assert!(v["receiptId"].as_str().unwrap().starts_with("rcpt-"));
    // The receipt says the same.
    let receipt = std::fs::read_to_string(f.receipt()).unwrap();
    assert!(receipt.contains(v["receiptId"].as_str().unwrap()));
    assert!(receipt.contains(v["documentSha256"].as_str().unwrap()));
}

#[test]
fn verify_qr_refuses_tampered_malformed_and_unknown() {
    let f = Fixture::new();
    let payload = qr(&f.receipt(), &[]);
    let chars: Vec<char> = payload.chars().collect();
    // A character in the middle changed (signature or claims), the end cut, another prefix.
    let mut tampered = chars.clone();
    let mid = chars.len() / 2;
    tampered[mid] = if tampered[mid] == '0' { '1' } else { '0' };
    let tampered: String = tampered.into_iter().collect();
    for bad in [
        tampered.as_str(),
        &payload[..payload.len() - 4],
        &payload.replacen("TMG1:", "HC1:", 1),
        "TMG1:",
        "hello",
    ] {
        let o = run(&["receipt", "verify-qr", "--trust", &f.trust(), bad]);
        assert_eq!(o.status.code(), Some(1), "{bad:?}");
        let v = json(&o);
        assert_eq!(v["valid"], false);
        assert_eq!(v["state"], "not_authentic");
        assert!(v["decision"].is_null(), "no claims stated for a refused QR");
    }
    // A trust directory without the authority's country: could not check, exit 1.
    let partial = f.dir.path().join("partial");
    copy_dir(&f.path("pki/trust"), &partial, "AZ");
    let o = run(&[
        "receipt",
        "verify-qr",
        "--trust",
        partial.to_str().unwrap(),
        &payload,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v["valid"], false);
    assert_eq!(v["state"], "could_not_check");
    assert_eq!(v["code"], "unknown_authority");
}

#[test]
fn a_rejection_receipt_has_a_qr_that_says_rejected_with_the_reason() {
    let f = Fixture::new();
    let receipt = f.path("declarations/kz-forged-receipt.xml");
    let payload = qr(receipt.to_str().unwrap(), &[]);
    let o = run(&["receipt", "verify-qr", "--trust", &f.trust(), &payload]);
    assert_eq!(o.status.code(), Some(0));
    let v = json(&o);
    assert_eq!(v["valid"], true);
    assert_eq!(v["decision"], "rejected");
    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new();
    for args in [
        vec!["receipt", "verify-qr", "--trust", &f.trust()],
        vec!["receipt", "verify-qr", "TMG1:00"],
        vec![
            "receipt",
            "verify-qr",
            "--trust",
            "/nonexistent/dir",
            "TMG1:00",
        ],
        vec!["receipt", "qr"],
        vec!["receipt", "qr", "/nonexistent/receipt.xml"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("tamga: error:"));
    }
    let bundle = f.dir.path().join("garbage.cose");
    std::fs::write(&bundle, b"not a bundle").unwrap();
    let payload = qr(&f.receipt(), &[]);
    let o = run(&[
        "receipt",
        "verify-qr",
        "--trust",
        &f.trust(),
        "--bundle",
        bundle.to_str().unwrap(),
        &payload,
    ]);
    assert_eq!(o.status.code(), Some(2));
}
