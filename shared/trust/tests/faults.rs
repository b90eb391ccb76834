//! Per-country fault isolation: one partner's unusable CRL, certificate file
//! or out-of-date CRL affects only its own CA / country.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rcgen::SigningKey as _;
use tamga_trust::{
    CountryCode, FaultKind, PathError, PathRequest, RevocationMode, TrustFile, TrustList,
};
use x509_parser::prelude::FromDer;

fn cc(s: &str) -> CountryCode {
    s.parse().unwrap()
}

fn validate(list: &TrustList, pki: &Pki, leaf: &[u8]) -> Result<(), PathError> {
    let ints = [pki.int.der.as_slice()];
    list.validate_signer(&PathRequest {
        intermediates_der: &ints,
        ..PathRequest::new(cc(&pki.cc), leaf, NOW as u64)
    })
    .map(|_| ())
}

// --- a hand-made CRL, for forms rcgen will not produce ---------------------

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else if n < 0x100 {
        out.extend([0x81, n as u8]);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn utc_time(secs: i64) -> Vec<u8> {
    let t = ts(secs);
    let s = format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}Z",
        t.year() % 100,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    tlv(0x17, s.as_bytes())
}

/// A v2 CRL signed by `issuer` (ECDSA P-256 / SHA-256) with exactly the
/// given extensions (`None`: no extensions field at all, which is what
/// `openssl ca -gencrl` writes without a crlnumber file and crl_extensions).
fn handmade_crl(issuer: &Ca, extensions: Option<Vec<u8>>) -> Vec<u8> {
    let ecdsa_sha256 = tlv(
        0x30,
        &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
    );
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&issuer.der).unwrap();
    let mut tbs = Vec::new();
    tbs.extend(tlv(0x02, &[0x01]));
    tbs.extend(&ecdsa_sha256);
    tbs.extend(cert.subject().as_raw());
    tbs.extend(utc_time(NOW - DAY));
    tbs.extend(utc_time(NOW + 7 * DAY));
    if let Some(exts) = extensions {
        tbs.extend(tlv(0xa0, &tlv(0x30, &exts)));
    }
    let tbs = tlv(0x30, &tbs);
    let sig = issuer.key.sign(&tbs).unwrap();
    let mut bits = vec![0u8];
    bits.extend(sig);
    let mut body = tbs;
    body.extend(ecdsa_sha256);
    body.extend(tlv(0x03, &bits));
    tlv(0x30, &body)
}

/// A non-critical extension Tamga does not know (OID 1.3.6.1.4.1.99999.1).
fn harmless_extension() -> Vec<u8> {
    let oid = tlv(
        0x06,
        &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01],
    );
    let value = tlv(0x04, &tlv(0x05, &[]));
    tlv(0x30, &[oid, value].concat())
}

fn two_countries(kz_crls: Vec<TrustFile>) -> (Pki, Pki, TrustList) {
    let kz = Pki::new("KZ");
    let tr = Pki::new("TR");
    let mut files = vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
    ];
    files.extend(kz_crls);
    files.extend(tr.files(true));
    let list = TrustList::from_files(files).unwrap();
    (kz, tr, list)
}

// --- CRL number: the decision ----------------------------------------------

/// Decision (documented in the crate docs and README): a CRL without the RFC
/// 5280 CRL-number extension is refused, for its issuer only. With no
/// extensions at all (the reported case) or with other extensions only.
#[test]
fn crl_without_crl_number_is_refused_for_its_issuer_only() {
    for (what, exts) in [
        ("no extensions", None),
        ("extensions but no CRL number", Some(harmless_extension())),
    ] {
        let kz = Pki::new("KZ");
        let tr = Pki::new("TR");
        let bad = handmade_crl(&kz.int, exts);
        let mut files = vec![
            cert_file("KZ", "root.pem", &kz.root.der),
            kz.root_crl_file(&[]),
            crl_file("KZ", "issuing.crl", &bad),
        ];
        files.extend(tr.files(true));
        let list = TrustList::from_files(files).unwrap();
        // (`a_well_formed_handmade_crl_with_a_number_is_accepted`: the
        // encoder is not what is refused, the missing number is.)
        let faults = list.faults();
        assert_eq!(faults.len(), 1, "{what}: {faults:?}");
        assert_eq!(faults[0].country, cc("KZ"));
        assert_eq!(faults[0].kind, FaultKind::Crl);
        assert_eq!(faults[0].source, "KZ/issuing.crl");
        assert!(
            faults[0].detail.contains("CRL number"),
            "{what}: {faults:?}"
        );
        assert!(
            faults[0]
                .issuer
                .as_deref()
                .unwrap()
                .contains("KZ Issuing CA"),
            "{what}: the issuer is still known: {faults:?}"
        );
        assert_eq!(list.degraded_countries(), vec![cc("KZ")]);

        match validate(&list, &kz, &kz.leaf) {
            Err(PathError::RevocationUnavailable { crl, detail }) => {
                assert_eq!(crl, "KZ/issuing.crl");
                assert!(detail.contains("CRL number"), "{detail}");
            }
            other => panic!("{what}: {other:?}"),
        }
        // The other country is untouched.
        assert_eq!(validate(&list, &tr, &tr.leaf), Ok(()), "{what}");
        // Without revocation checking, the path itself is fine.
        let ints = [kz.int.der.as_slice()];
        let off = PathRequest {
            intermediates_der: &ints,
            revocation: RevocationMode::Off,
            ..PathRequest::new(cc("KZ"), &kz.leaf, NOW as u64)
        };
        assert!(list.validate_signer(&off).is_ok(), "{what}");
    }
}

#[test]
fn a_well_formed_handmade_crl_with_a_number_is_accepted() {
    let kz = Pki::new("KZ");
    // cRLNumber (2.5.29.20) = 7
    let number = tlv(
        0x30,
        &[tlv(0x06, &[0x55, 0x1d, 0x14]), tlv(0x04, &tlv(0x02, &[7]))].concat(),
    );
    let good = handmade_crl(&kz.int, Some(number));
    let list = TrustList::from_files(vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
        crl_file("KZ", "issuing.crl", &good),
    ])
    .unwrap();
    assert!(list.faults().is_empty(), "{:?}", list.faults());
    assert_eq!(validate(&list, &kz, &kz.leaf), Ok(()));
    assert_eq!(
        list.crls(cc("KZ"))
            .iter()
            .find(|c| c.source == "KZ/issuing.crl")
            .unwrap()
            .crl_number
            .as_deref(),
        Some("07")
    );
}

// --- unreadable CRLs -------------------------------------------------------

#[test]
fn garbage_crl_blocks_revocation_for_its_country_only() {
    for (name, bytes) in [
        ("bad.crl", vec![0x30, 0x00]),
        ("text.crl", b"hello".to_vec()),
        (
            "truncated.crl",
            b"-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n".to_vec(),
        ),
    ] {
        let (kz, tr, list) = two_countries(vec![crl_file("KZ", name, &bytes)]);
        let faults = list.faults();
        assert_eq!(faults.len(), 1, "{name}");
        assert_eq!(faults[0].issuer, None, "{name}: issuer unreadable");
        assert!(
            faults[0].detail.contains(&format!("KZ/{name}")),
            "{faults:?}"
        );
        // Issuer unknown: every KZ revocation check is affected.
        assert!(
            matches!(
                validate(&list, &kz, &kz.leaf),
                Err(PathError::RevocationUnavailable { ref crl, .. }) if crl == &format!("KZ/{name}")
            ),
            "{name}: {:?}",
            validate(&list, &kz, &kz.leaf)
        );
        assert_eq!(validate(&list, &tr, &tr.leaf), Ok(()), "{name}");
        let warning = list.degraded_warning().unwrap();
        assert_eq!(warning.lines().count(), 1);
        assert!(
            warning.contains("KZ") && !warning.contains("TR ("),
            "{warning}"
        );
    }
}

/// Two issuing CAs under one root: the broken CRL of one does not affect
/// signers of the other.
#[test]
fn broken_crl_affects_only_its_issuer() {
    let kz = Pki::new("KZ");
    let other_int = Ca::intermediate(
        "KZ Second Issuing CA",
        "KZ",
        &kz.root,
        NOW - 100 * DAY,
        NOW + 1000 * DAY,
        Some(0),
    );
    let other_leaf = leaf_cert(&other_int, next_serial(), |_| {});
    let list = TrustList::from_files(vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
        kz.int_crl_file(),
        crl_file("KZ", "second.crl", &handmade_crl(&other_int, None)),
    ])
    .unwrap();
    assert_eq!(validate(&list, &kz, &kz.leaf), Ok(()));
    let ints = [other_int.der.as_slice()];
    let r = PathRequest {
        intermediates_der: &ints,
        ..PathRequest::new(cc("KZ"), &other_leaf, NOW as u64)
    };
    assert!(matches!(
        list.validate_signer(&r),
        Err(PathError::RevocationUnavailable { ref crl, .. }) if crl == "KZ/second.crl"
    ));
    // Even under IfAvailable: the CRL exists, it just cannot be read.
    let r = PathRequest {
        revocation: RevocationMode::IfAvailable,
        ..r
    };
    assert!(matches!(
        list.validate_signer(&r),
        Err(PathError::RevocationUnavailable { .. })
    ));
}

/// An unusable newer CRL next to a usable older one of the same issuer:
/// the older one might miss a revocation, so fail closed.
#[test]
fn broken_and_good_crls_of_one_issuer_fail_closed() {
    let kz = Pki::new("KZ");
    let list = TrustList::from_files(vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
        kz.int_crl_file(),
        crl_file("KZ", "newer.crl", &handmade_crl(&kz.int, None)),
    ])
    .unwrap();
    assert!(matches!(
        validate(&list, &kz, &kz.leaf),
        Err(PathError::RevocationUnavailable { ref crl, .. }) if crl == "KZ/newer.crl"
    ));
}

// --- expired and wrongly signed CRLs: detected per path ---------------------

#[test]
fn expired_crl_is_indeterminate_for_its_country_only() {
    let kz = Pki::new("KZ");
    let expired = crl_der(&kz.int, &[], NOW - 30 * DAY, NOW - DAY);
    let (_, tr, _) = two_countries(vec![]);
    let mut files = vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
        crl_file("KZ", "issuing.crl", &expired),
    ];
    files.extend(tr.files(true));
    let list = TrustList::from_files(files).unwrap();
    assert!(
        list.faults().is_empty(),
        "expiry is a property of the time, not the file"
    );
    assert!(matches!(
        validate(&list, &kz, &kz.leaf),
        Err(PathError::CrlExpired { .. })
    ));
    assert_eq!(validate(&list, &tr, &tr.leaf), Ok(()));
}

#[test]
fn wrongly_signed_crl_is_refused_for_its_country_only() {
    let kz = Pki::new("KZ");
    // Same issuer name, another key.
    let impostor = Ca::intermediate(
        "KZ Issuing CA",
        "KZ",
        &kz.root,
        NOW - 100 * DAY,
        NOW + 100 * DAY,
        Some(0),
    );
    let forged = crl_der(&impostor, &[], NOW - DAY, NOW + 7 * DAY);
    let tr = Pki::new("TR");
    let mut files = vec![
        cert_file("KZ", "root.pem", &kz.root.der),
        kz.root_crl_file(&[]),
        crl_file("KZ", "issuing.crl", &forged),
    ];
    files.extend(tr.files(true));
    let list = TrustList::from_files(files).unwrap();
    assert!(matches!(
        validate(&list, &kz, &kz.leaf),
        Err(PathError::CrlInvalid(_))
    ));
    assert_eq!(validate(&list, &tr, &tr.leaf), Ok(()));
}

// --- unusable certificate files: the whole country ---------------------------

#[test]
fn malformed_anchor_file_blocks_its_country_only() {
    let kz = Pki::new("KZ");
    let tr = Pki::new("TR");
    let mut files = kz.files(true);
    files.push(TrustFile {
        country: cc("KZ"),
        name: "broken.pem".into(),
        bytes: b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec(),
    });
    files.extend(tr.files(true));
    let list = TrustList::from_files(files).unwrap();
    let faults = list.faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].kind, FaultKind::Anchor);
    match validate(&list, &kz, &kz.leaf) {
        Err(PathError::TrustListInvalid { country, detail }) => {
            assert_eq!(country, cc("KZ"));
            assert!(detail.contains("KZ/broken.pem"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(validate(&list, &tr, &tr.leaf), Ok(()));
    assert_eq!(list.degraded_countries(), vec![cc("KZ")]);
}
