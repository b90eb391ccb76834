#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A Kazakh GOST declaration through `tamga verify` and `tamga countersign`:
//! `tests/fixtures/gost-pki/declaration-kz-gost256.xml`, signed by OpenSSL's
//! GOST engine (TC26-256-A broker under a GOST-512 issuing CA and root),
//! verified with the GOST root and its CRLs as KZ's trust folder, and
//! counter-signed by an AZ authority of the demo PKI (RSA/ECDSA).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/gost-pki");

fn tamga(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tamga"))
        .args(args)
        .output()
        .unwrap()
}

fn os(s: &str) -> &std::ffi::OsStr {
    std::ffi::OsStr::new(s)
}

/// A demo PKI for AZ (the authority) plus a KZ folder with the GOST root.
fn setup(dir: &Path) -> PathBuf {
    let out = dir.join("pki");
    let o = tamga(&[
        os("pki"),
        os("demo"),
        os("--out"),
        out.as_os_str(),
        os("--countries"),
        os("AZ"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let kz = out.join("trust").join("KZ");
    std::fs::create_dir_all(&kz).unwrap();
    for f in ["root.pem", "root.crl", "ca.crl"] {
        std::fs::copy(Path::new(PKI).join(f), kz.join(f)).unwrap();
    }
    out
}

#[test]
fn a_gost_declaration_verifies_and_is_countersigned() {
    let dir = tempfile::tempdir().unwrap();
    let pki = setup(dir.path());
    let doc = Path::new(PKI).join("declaration-kz-gost256.xml");
    let trust = pki.join("trust");

    let v = tamga(&[
        os("verify"),
        os("--trust"),
        trust.as_os_str(),
        os("--from"),
        os("KZ"),
        doc.as_os_str(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v.status.code(), Some(0), "{report}");
    assert_eq!(report["indication"], "TOTAL_PASSED");
    assert_eq!(report["algorithms"]["signature"], "gost2012-256");

    let keys = pki.join("keys").join("AZ");
    let receipt = dir.path().join("receipt.xml");
    let c = tamga(&[
        os("countersign"),
        os("--key"),
        keys.join("authority.key").as_os_str(),
        os("--cert"),
        keys.join("authority.pem").as_os_str(),
        os("--chain"),
        keys.join("issuing-ca.pem").as_os_str(),
        os("--trust"),
        trust.as_os_str(),
        os("--from"),
        os("KZ"),
        os("--receipt"),
        receipt.as_os_str(),
        doc.as_os_str(),
    ]);
    assert_eq!(
        c.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&c.stderr)
    );
    assert!(!c.stdout.is_empty());
    assert!(receipt.is_file());

    // The same declaration said to come from AZ: GOST is not allowed there.
    let v = tamga(&[
        os("verify"),
        os("--trust"),
        trust.as_os_str(),
        os("--from"),
        os("AZ"),
        doc.as_os_str(),
    ]);
    assert_eq!(v.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(report["reason"], "algorithm_not_allowed_for_country");
}
