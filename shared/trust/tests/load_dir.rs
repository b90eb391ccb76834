//! Loading the trust list from disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use tamga_trust::{CountryCode, FaultKind, PathError, PathRequest, TrustList, TrustLoadError};

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn write(dir: &Path, rel: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn loads_bundles_der_and_crls_in_both_encodings() {
    let kz = Pki::new("KZ");
    let extra_root = Ca::root("KZ Second Root", "KZ", NOW - DAY, NOW + 100 * DAY);
    let tr = Pki::new("TR");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // PEM bundle with two roots and explanatory text around them.
    let bundle = format!(
        "KZ national roots\n{}\nsecond:\n{}",
        pem_cert(&kz.root.der),
        pem_cert(&extra_root.der)
    );
    write(d, "KZ/roots.pem", bundle);
    // PEM CRL and DER CRL.
    write(
        d,
        "KZ/root.crl",
        pem(
            "X509 CRL",
            &crl_der(&kz.root, &[], NOW - DAY, NOW + 30 * DAY),
        ),
    );
    write(
        d,
        "KZ/issuing.crl",
        crl_der(&kz.int, &[], NOW - DAY, NOW + 7 * DAY),
    );
    // Ignored: other extensions, hidden files, subfolders.
    write(d, "KZ/README.txt", "not a certificate");
    write(d, "KZ/.hidden.pem", "garbage");
    write(d, "KZ/archive/old.pem", "garbage");
    // DER .crt and upper-case extensions.
    write(d, "TR/root.CRT", &tr.root.der);
    write(d, "TR/root.der", &tr.root.der); // duplicate content counts once
    write(d, "TR/crls.crl", {
        let mut both = pem(
            "X509 CRL",
            &crl_der(&tr.root, &[], NOW - DAY, NOW + 30 * DAY),
        );
        both.push_str(&pem(
            "X509 CRL",
            &crl_der(&tr.int, &[], NOW - DAY, NOW + 7 * DAY),
        ));
        both
    });
    // PEM .crt.
    write(d, "AZ/root.crt", pem_cert(&Pki::new("AZ").root.der));
    // Ignored at top level.
    write(d, "README.md", "# trust list");
    write(d, ".git/config", "[core]");
    fs::create_dir_all(d.join(".cache")).unwrap();
    // A known country with an empty folder.
    fs::create_dir_all(d.join("KG")).unwrap();

    let list = TrustList::load_dir(d).unwrap();
    assert!(list.faults().is_empty(), "{:?}", list.faults());
    assert!(list.degraded_warning().is_none());
    assert_eq!(
        list.countries(),
        vec![cc("AZ"), cc("KG"), cc("KZ"), cc("TR")]
    );
    assert_eq!(list.anchor_count(cc("KZ")), 2);
    assert_eq!(list.crl_count(cc("KZ")), 2);
    assert_eq!(list.anchor_count(cc("TR")), 1);
    assert_eq!(list.crl_count(cc("TR")), 2);
    assert_eq!(list.anchor_count(cc("AZ")), 1);
    assert_eq!(list.anchor_count(cc("KG")), 0);
    assert_eq!(list.anchor_count(cc("UZ")), 0);
    assert!(list.contains(cc("KG")) && !list.contains(cc("UZ")));
    let crls = list.crls(cc("KZ"));
    assert!(crls.iter().any(|c| c.source == "KZ/root.crl"));
    assert!(crls[0].this_update >= crls[1].this_update);
    assert!(list
        .anchors(cc("KZ"))
        .iter()
        .any(|a| a.subject.contains("KZ Second Root")));

    // The loaded list validates both countries' signers with revocation required.
    let ints = [kz.int.der.as_slice()];
    let r = PathRequest {
        intermediates_der: &ints,
        ..PathRequest::new(cc("KZ"), &kz.leaf, NOW as u64)
    };
    assert!(list.validate_signer(&r).is_ok());
    let ints = [tr.int.der.as_slice()];
    let r = PathRequest {
        intermediates_der: &ints,
        ..PathRequest::new(cc("TR"), &tr.leaf, NOW as u64)
    };
    assert!(list.validate_signer(&r).is_ok());
    // Empty folder: known country, no chain.
    let r = PathRequest {
        intermediates_der: &ints,
        ..PathRequest::new(cc("KG"), &tr.leaf, NOW as u64)
    };
    assert_eq!(list.validate_signer(&r), Err(PathError::NoChain));
}

#[test]
fn bad_folder_names_fail_closed() {
    for name in ["kz", "KAZ", "K1", "Kz", "trusted"] {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(name)).unwrap();
        match TrustList::load_dir(dir.path()) {
            Err(TrustLoadError::InvalidCountryFolder { name: got }) => assert_eq!(got, name),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn malformed_files_are_named() {
    let root = Ca::root("KZ Root CA", "KZ", NOW - DAY, NOW + DAY);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "bad.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        ("empty.pem", Vec::new()),
        ("nocert.pem", b"just text".to_vec()),
        ("truncated.der", root.der[..root.der.len() - 5].to_vec()),
        ("garbage.crt", vec![0x30, 0x03, 0x01, 0x02]),
        (
            "unterminated.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIB\n".to_vec(),
        ),
        (
            "key.pem",
            format!(
                "{}{}",
                pem_cert(&root.der),
                pem("PRIVATE KEY", &[0x30, 0x00])
            )
            .into_bytes(),
        ),
    ];
    for (name, bytes) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &format!("KZ/{name}"), &bytes);
        // The list loads; the file is a fault of KZ that blocks KZ only.
        let list = TrustList::load_dir(dir.path()).unwrap();
        let faults = list.faults();
        assert_eq!(faults.len(), 1, "{name}");
        assert_eq!(faults[0].kind, FaultKind::Anchor);
        assert_eq!(faults[0].source, format!("KZ/{name}"));
        assert!(
            faults[0].detail.starts_with("malformed certificate in KZ/"),
            "{name}: {}",
            faults[0].detail
        );
        assert!(matches!(
            list.validate_signer(&PathRequest::new(cc("KZ"), &root.der, NOW as u64)),
            Err(PathError::TrustListInvalid { .. } | PathError::SignerIsCa)
        ));
    }

    for (name, bytes) in [
        ("bad.crl", vec![0x30, 0x00]),
        ("text.crl", b"hello".to_vec()),
        ("cert-not-crl.crl", pem_cert(&root.der).into_bytes()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &format!("KZ/{name}"), &bytes);
        let list = TrustList::load_dir(dir.path()).unwrap();
        let faults = list.faults();
        assert_eq!(faults.len(), 1, "{name}");
        assert_eq!(faults[0].kind, FaultKind::Crl);
        assert!(
            faults[0]
                .detail
                .starts_with(&format!("malformed or unsupported CRL in KZ/{name}")),
            "{}",
            faults[0].detail
        );
    }
}

#[test]
fn end_entity_certificate_is_not_an_anchor() {
    let pki = Pki::new("KZ");
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "KZ/signer.pem", pem_cert(&pki.leaf));
    let list = TrustList::load_dir(dir.path()).unwrap();
    let faults = list.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].source, "KZ/signer.pem");
    assert!(
        faults[0].detail.contains("is not a CA certificate"),
        "{faults:?}"
    );
    assert!(matches!(
        list.validate_signer(&PathRequest::new(cc("KZ"), &pki.leaf, NOW as u64)),
        Err(PathError::TrustListInvalid { .. })
    ));
}

#[test]
fn unreadable_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("does-not-exist");
    assert!(matches!(
        TrustList::load_dir(&missing),
        Err(TrustLoadError::ReadDir { .. })
    ));
    // A file where the directory should be.
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    assert!(matches!(
        TrustList::load_dir(&file),
        Err(TrustLoadError::ReadDir { .. })
    ));
}

#[cfg(unix)]
#[test]
fn dangling_symlink_fails_closed_for_its_country() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("KZ")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/root.pem", dir.path().join("KZ/root.pem")).unwrap();
    let tr = Pki::new("TR");
    write(dir.path(), "TR/root.pem", pem_cert(&tr.root.der));
    let list = TrustList::load_dir(dir.path()).unwrap();
    let faults = list.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].country, cc("KZ"));
    assert!(
        faults[0].detail.contains("cannot read trust list file"),
        "{faults:?}"
    );
    assert_eq!(list.degraded_countries(), vec![cc("KZ")]);
    let ints = [tr.int.der.as_slice()];
    let r = PathRequest {
        intermediates_der: &ints,
        revocation: tamga_trust::RevocationMode::Off,
        ..PathRequest::new(cc("TR"), &tr.leaf, NOW as u64)
    };
    assert!(list.validate_signer(&r).is_ok());
}

#[test]
fn empty_directory_is_an_empty_list() {
    let dir = tempfile::tempdir().unwrap();
    let list = TrustList::load_dir(dir.path()).unwrap();
    assert!(list.countries().is_empty());
    let pki = Pki::new("KZ");
    assert_eq!(
        list.validate_signer(&PathRequest::new(cc("KZ"), &pki.leaf, NOW as u64)),
        Err(PathError::UnknownCountry(cc("KZ")))
    );
}
