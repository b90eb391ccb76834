//! Path validation against test PKIs generated at test time with rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};
use tamga_trust::{
    summarize_certificate, CountryCode, Eku, PathError, PathRequest, RevocationMode, TrustFile,
    TrustList,
};

fn kz() -> CountryCode {
    "KZ".parse().unwrap()
}

fn req<'a>(signer: &'a [u8], intermediates: &'a [&'a [u8]]) -> PathRequest<'a> {
    PathRequest {
        intermediates_der: intermediates,
        ..PathRequest::new(kz(), signer, NOW as u64)
    }
}

#[test]
fn valid_chain_through_intermediate() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    let ints = [pki.int.der.as_slice()];
    let ok = list.validate_signer(&req(&pki.leaf, &ints)).unwrap();

    assert_eq!(ok.chain.len(), 3);
    assert_eq!(ok.chain[0], ok.signer);
    assert!(
        ok.signer.subject.contains("CN=Signer"),
        "{}",
        ok.signer.subject
    );
    assert!(ok.chain[1].subject.contains("CN=KZ Issuing CA"));
    assert!(ok.chain[2].subject.contains("CN=KZ Root CA"));
    assert_eq!(ok.signer.serial, hex(&pki.leaf_serial));
    assert_eq!(ok.signer.country.as_deref(), Some("KZ"));

    let json = serde_json::to_value(&ok).unwrap();
    assert!(json["signer"]["notBefore"].is_i64());
    assert!(json["chain"][2]["sha256"].as_str().unwrap().len() == 64);

    // The other revocation modes accept the same good path.
    for mode in [RevocationMode::IfAvailable, RevocationMode::Off] {
        let r = PathRequest {
            revocation: mode,
            ..req(&pki.leaf, &ints)
        };
        assert!(list.validate_signer(&r).is_ok(), "{mode:?}");
    }
}

#[test]
fn extra_irrelevant_intermediates_are_tolerated() {
    let pki = Pki::new("KZ");
    let other = Pki::new("TR");
    let list = pki.trust_list(true);
    let ints = [other.int.der.as_slice(), pki.int.der.as_slice()];
    assert!(list.validate_signer(&req(&pki.leaf, &ints)).is_ok());
}

#[test]
fn root_sent_in_key_info_is_harmless() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    let ints = [pki.root.der.as_slice(), pki.int.der.as_slice()];
    let ok = list.validate_signer(&req(&pki.leaf, &ints)).unwrap();
    assert_eq!(ok.chain.len(), 3);
    assert_eq!(ok.chain[2].subject, ok.chain[2].issuer);
}

#[test]
fn anchor_may_be_the_issuing_ca_itself() {
    let pki = Pki::new("KZ");
    let list = TrustList::from_files(vec![
        TrustFile {
            country: kz(),
            name: "issuing.pem".into(),
            bytes: pem_cert(&pki.int.der).into_bytes(),
        },
        pki.int_crl_file(),
    ])
    .unwrap();
    let ok = list.validate_signer(&req(&pki.leaf, &[])).unwrap();
    assert_eq!(ok.chain.len(), 2);
}

#[test]
fn wrong_country() {
    let kz_pki = Pki::new("KZ");
    let tr_pki = Pki::new("TR");
    // TR's anchors are present, but only under TR.
    let mut files = kz_pki.files(true);
    files.extend(tr_pki.files(true));
    let list = TrustList::from_files(files).unwrap();
    let ints = [tr_pki.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&tr_pki.leaf, &ints)),
        Err(PathError::NoChain)
    );

    let uz: CountryCode = "uz".parse().unwrap();
    let r = PathRequest {
        country: uz,
        ..req(&tr_pki.leaf, &ints)
    };
    assert_eq!(list.validate_signer(&r), Err(PathError::UnknownCountry(uz)));
}

#[test]
fn untrusted_root() {
    let trusted = Pki::new("KZ");
    let rogue = Pki::new("XK");
    let list = trusted.trust_list(true);
    let ints = [rogue.int.der.as_slice()];
    let r = PathRequest {
        country: kz(),
        ..req(&rogue.leaf, &ints)
    };
    assert_eq!(list.validate_signer(&r), Err(PathError::NoChain));
    // The right PKI, but the intermediate is missing.
    assert_eq!(
        list.validate_signer(&req(&trusted.leaf, &[])),
        Err(PathError::NoChain)
    );
}

#[test]
fn impostor_root_with_the_same_name() {
    // An attacker's PKI copying every name of the real one: the chain reaches a
    // trusted subject name, but the signature under the real key fails.
    let trusted = Pki::new("KZ");
    let impostor = Pki::new("KZ");
    let list = trusted.trust_list(true);
    let ints = [impostor.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&impostor.leaf, &ints)),
        Err(PathError::BadSignature)
    );
}

#[test]
fn expired_signer_is_reported_as_expired_even_without_a_chain() {
    let pki = Pki::new("KZ");
    let not_after = NOW - DAY;
    let leaf = pki.leaf_with(|p| {
        p.not_before = ts(NOW - 400 * DAY);
        p.not_after = ts(not_after);
    });
    let list = pki.trust_list(true);
    let ints = [pki.int.der.as_slice()];
    let want = Err(PathError::Expired {
        not_after_unix: not_after as u64,
    });
    assert_eq!(list.validate_signer(&req(&leaf, &ints)), want);
    // Untrusted issuer and unknown country do not mask the signer's own problem.
    let empty = TrustList::default();
    assert_eq!(empty.validate_signer(&req(&leaf, &[])), want);
}

#[test]
fn not_yet_valid_signer() {
    let pki = Pki::new("KZ");
    let not_before = NOW + DAY;
    let leaf = pki.leaf_with(|p| p.not_before = ts(not_before));
    let list = pki.trust_list(true);
    let ints = [pki.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&leaf, &ints)),
        Err(PathError::NotYetValid {
            not_before_unix: not_before as u64
        })
    );
}

#[test]
fn expired_intermediate() {
    let root = Ca::root("KZ Root CA", "KZ", NOW - 3650 * DAY, NOW + 3650 * DAY);
    let int = Ca::intermediate(
        "KZ Issuing CA",
        "KZ",
        &root,
        NOW - 400 * DAY,
        NOW - DAY,
        None,
    );
    let leaf = leaf_cert(&int, next_serial(), |_| {});
    let list = TrustList::from_files(vec![cert_file("KZ", "root.pem", &root.der)]).unwrap();
    let ints = [int.der.as_slice()];
    let r = PathRequest {
        revocation: RevocationMode::Off,
        ..req(&leaf, &ints)
    };
    assert_eq!(
        list.validate_signer(&r),
        Err(PathError::Expired {
            not_after_unix: (NOW - DAY) as u64
        })
    );
}

#[test]
fn expired_anchor() {
    let root = Ca::root("KZ Root CA", "KZ", NOW - 3650 * DAY, NOW - DAY);
    let int = Ca::intermediate(
        "KZ Issuing CA",
        "KZ",
        &root,
        NOW - 400 * DAY,
        NOW + 400 * DAY,
        None,
    );
    let leaf = leaf_cert(&int, next_serial(), |_| {});
    let list = TrustList::from_files(vec![cert_file("KZ", "root.pem", &root.der)]).unwrap();
    let ints = [int.der.as_slice()];
    let r = PathRequest {
        revocation: RevocationMode::Off,
        ..req(&leaf, &ints)
    };
    assert_eq!(
        list.validate_signer(&r),
        Err(PathError::Expired {
            not_after_unix: (NOW - DAY) as u64
        })
    );
}

#[test]
fn revoked_signer() {
    let pki = Pki::new("KZ");
    let mut files = pki.files(false);
    files.push(pki.root_crl_file(&[]));
    files.push(crl_file(
        "KZ",
        "issuing.crl",
        &crl_der(&pki.int, &[&pki.leaf_serial], NOW - DAY, NOW + 7 * DAY),
    ));
    let list = TrustList::from_files(files).unwrap();
    let ints = [pki.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::Revoked {
            serial_hex: hex(&pki.leaf_serial)
        })
    );
    // IfAvailable still refuses a listed certificate.
    let r = PathRequest {
        revocation: RevocationMode::IfAvailable,
        ..req(&pki.leaf, &ints)
    };
    assert!(matches!(
        list.validate_signer(&r),
        Err(PathError::Revoked { .. })
    ));
}

#[test]
fn revoked_intermediate() {
    let pki = Pki::new("KZ");
    let mut files = pki.files(false);
    files.push(pki.root_crl_file(&[&pki.int.serial]));
    files.push(pki.int_crl_file());
    let list = TrustList::from_files(files).unwrap();
    let ints = [pki.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::Revoked {
            serial_hex: hex(&pki.int.serial)
        })
    );
}

#[test]
fn require_without_crls() {
    let pki = Pki::new("KZ");
    let ints = [pki.int.der.as_slice()];

    // No CRLs at all.
    let list = pki.trust_list(false);
    assert_eq!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::RevocationUnknown)
    );
    let r = PathRequest {
        revocation: RevocationMode::IfAvailable,
        ..req(&pki.leaf, &ints)
    };
    assert!(list.validate_signer(&r).is_ok());

    // The issuing CA's CRL alone does not cover the intermediate itself.
    let mut files = pki.files(false);
    files.push(pki.int_crl_file());
    let list = TrustList::from_files(files).unwrap();
    assert_eq!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::RevocationUnknown)
    );

    // And the root's CRL alone does not cover the signer.
    let mut files = pki.files(false);
    files.push(pki.root_crl_file(&[]));
    let list = TrustList::from_files(files).unwrap();
    assert_eq!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::RevocationUnknown)
    );
}

#[test]
fn stale_crl() {
    let pki = Pki::new("KZ");
    let next_update = NOW - DAY;
    let mut files = pki.files(false);
    files.push(pki.root_crl_file(&[]));
    files.push(crl_file(
        "KZ",
        "issuing.crl",
        &crl_der(&pki.int, &[], NOW - 10 * DAY, next_update),
    ));
    let list = TrustList::from_files(files).unwrap();
    let ints = [pki.int.der.as_slice()];
    let want = Err(PathError::CrlExpired {
        next_update_unix: next_update as u64,
    });
    assert_eq!(list.validate_signer(&req(&pki.leaf, &ints)), want);
    let r = PathRequest {
        revocation: RevocationMode::IfAvailable,
        ..req(&pki.leaf, &ints)
    };
    assert_eq!(list.validate_signer(&r), want);
    // Validating at a time before nextUpdate accepts it.
    let r = PathRequest {
        at_unix: (NOW - 2 * DAY) as u64,
        ..req(&pki.leaf, &ints)
    };
    assert!(list.validate_signer(&r).is_ok());
}

#[test]
fn newest_crl_wins() {
    let pki = Pki::new("KZ");
    let ints = [pki.int.der.as_slice()];
    let stale = crl_der(&pki.int, &[], NOW - 20 * DAY, NOW - 10 * DAY);
    let fresh = crl_der(&pki.int, &[], NOW - DAY, NOW + 7 * DAY);
    let fresh_revoking = crl_der(&pki.int, &[&pki.leaf_serial], NOW - DAY / 2, NOW + 7 * DAY);

    // File order puts the stale CRL first; it must not shadow the fresh one.
    let mut files = pki.files(false);
    files.push(pki.root_crl_file(&[]));
    files.push(crl_file("KZ", "a-old.crl", &stale));
    files.push(crl_file("KZ", "b-new.crl", &fresh));
    let list = TrustList::from_files(files.clone()).unwrap();
    assert_eq!(list.crl_count(kz()), 3);
    assert!(list.validate_signer(&req(&pki.leaf, &ints)).is_ok());

    // A newer CRL that lists the signer overrides an older one that does not.
    files.push(crl_file("KZ", "c-newest.crl", &fresh_revoking));
    let list = TrustList::from_files(files).unwrap();
    assert!(matches!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::Revoked { .. })
    ));
}

#[test]
fn crl_signed_by_another_key_is_refused() {
    let pki = Pki::new("KZ");
    // Same subject name as the issuing CA, different key.
    let impostor = Ca::intermediate("KZ Issuing CA", "KZ", &pki.root, NOW - DAY, NOW + DAY, None);
    let mut files = pki.files(false);
    files.push(pki.root_crl_file(&[]));
    files.push(crl_file(
        "KZ",
        "issuing.crl",
        &crl_der(&impostor, &[], NOW - DAY, NOW + 7 * DAY),
    ));
    let list = TrustList::from_files(files).unwrap();
    let ints = [pki.int.der.as_slice()];
    assert!(matches!(
        list.validate_signer(&req(&pki.leaf, &ints)),
        Err(PathError::CrlInvalid(_))
    ));
}

#[test]
fn crl_issuer_without_crl_sign_is_refused() {
    let root = Ca::root("KZ Root CA", "KZ", NOW - 3650 * DAY, NOW + 3650 * DAY);
    let int = Ca::intermediate_with(&root, |p| {
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    });
    let leaf = leaf_cert(&int, next_serial(), |_| {});
    let list = TrustList::from_files(vec![
        cert_file("KZ", "root.pem", &root.der),
        crl_file(
            "KZ",
            "root.crl",
            &crl_der(&root, &[], NOW - DAY, NOW + 7 * DAY),
        ),
        // rcgen refuses to sign a CRL for an issuer without cRLSign, so sign it
        // with the same name and key but no declared key usages.
        crl_file(
            "KZ",
            "issuing.crl",
            &crl_der_ignoring_ku(&int, &[], NOW - DAY, NOW + 7 * DAY),
        ),
    ])
    .unwrap();
    let ints = [int.der.as_slice()];
    match list.validate_signer(&req(&leaf, &ints)) {
        Err(PathError::CrlInvalid(msg)) => assert!(msg.contains("cRLSign"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn issuing_distribution_point_scoping() {
    let pki = Pki::new("KZ");
    let dp = "http://crl.example.kz/issuing.crl";
    let leaf_with_dp = pki.leaf_with(|p| {
        p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: vec![dp.into()],
        }]
    });
    let ints = [pki.int.der.as_slice()];
    let with_int_crl = |crl: Vec<u8>| {
        let mut files = pki.files(false);
        files.push(pki.root_crl_file(&[]));
        files.push(crl_file("KZ", "issuing.crl", &crl));
        TrustList::from_files(files).unwrap()
    };
    let (t, n) = (NOW - DAY, NOW + 7 * DAY);

    // IDP URI equal to the certificate's CRL DP URI: applies.
    let list = with_int_crl(crl_der_with_idp(&pki.int, dp, None, t, n));
    assert!(list.validate_signer(&req(&leaf_with_dp, &ints)).is_ok());
    // A certificate without a CRL DP is covered by any IDP of its issuer.
    assert!(list.validate_signer(&req(&pki.leaf, &ints)).is_ok());

    // Different URI: the CRL does not cover the certificate.
    let list = with_int_crl(crl_der_with_idp(&pki.int, "http://other/x.crl", None, t, n));
    assert_eq!(
        list.validate_signer(&req(&leaf_with_dp, &ints)),
        Err(PathError::RevocationUnknown)
    );

    // A CA-only scoped CRL does not cover end-entity certificates.
    let list = with_int_crl(crl_der_with_idp(
        &pki.int,
        dp,
        Some(rcgen::CrlScope::CaCertsOnly),
        t,
        n,
    ));
    assert_eq!(
        list.validate_signer(&req(&leaf_with_dp, &ints)),
        Err(PathError::RevocationUnknown)
    );
}

#[test]
fn key_usage_must_allow_signatures() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    let ints = [pki.int.der.as_slice()];

    let enc_only = pki.leaf_with(|p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]);
    assert_eq!(
        list.validate_signer(&req(&enc_only, &ints)),
        Err(PathError::KeyUsageNotAllowed)
    );
    let no_ku = pki.leaf_with(|p| p.key_usages = vec![]);
    assert_eq!(
        list.validate_signer(&req(&no_ku, &ints)),
        Err(PathError::KeyUsageNotAllowed)
    );
    let non_repudiation =
        pki.leaf_with(|p| p.key_usages = vec![KeyUsagePurpose::ContentCommitment]);
    assert!(list.validate_signer(&req(&non_repudiation, &ints)).is_ok());
}

#[test]
fn ca_as_signer_is_refused() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    // A CA certificate that also has digitalSignature: still not a signer.
    let ca_signer = Ca::intermediate_with(&pki.int, |p| {
        p.key_usages.push(KeyUsagePurpose::DigitalSignature);
    });
    let ints = [pki.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&ca_signer.der, &ints)),
        Err(PathError::SignerIsCa)
    );
    assert_eq!(
        list.validate_signer(&req(&pki.int.der, &[])),
        Err(PathError::SignerIsCa)
    );
}

#[test]
fn eku_rules() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    let ints = [pki.int.der.as_slice()];

    let server =
        pki.leaf_with(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]);
    assert_eq!(
        list.validate_signer(&req(&server, &ints)),
        Err(PathError::EkuNotAllowed {
            present: vec!["1.3.6.1.5.5.7.3.1".into()]
        })
    );

    let email =
        pki.leaf_with(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection]);
    assert!(list.validate_signer(&req(&email, &ints)).is_ok());

    let doc = pki.leaf_with(|p| {
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 36]),
        ]
    });
    assert!(list.validate_signer(&req(&doc, &ints)).is_ok());

    // A national purpose OID is accepted only when configured.
    let national = pki.leaf_with(|p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
            1, 2, 398, 3, 3, 4, 1, 1,
        ])]
    });
    assert!(matches!(
        list.validate_signer(&req(&national, &ints)),
        Err(PathError::EkuNotAllowed { .. })
    ));
    let accepted = [Eku::DocumentSigning, "1.2.398.3.3.4.1.1".parse().unwrap()];
    let r = PathRequest {
        accepted_ekus: &accepted,
        ..req(&national, &ints)
    };
    assert!(list.validate_signer(&r).is_ok());

    // EKU on an intermediate constrains the path too.
    let int = Ca::intermediate_with(&pki.root, |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let leaf = leaf_cert(&int, next_serial(), |_| {});
    let ints = [int.der.as_slice()];
    let r = PathRequest {
        revocation: RevocationMode::Off,
        ..req(&leaf, &ints)
    };
    assert!(matches!(
        list.validate_signer(&r),
        Err(PathError::EkuNotAllowed { .. })
    ));
}

#[test]
fn budget_is_enforced_before_parsing() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    let garbage: &[u8] = b"not a certificate";
    let ints = [pki.int.der.as_slice(), garbage, garbage];
    let r = PathRequest {
        max_intermediates: 2,
        ..req(b"also garbage", &ints)
    };
    assert_eq!(list.validate_signer(&r), Err(PathError::BudgetExceeded));
    let r = PathRequest {
        max_intermediates: 0,
        ..req(&pki.leaf, &ints[..1])
    };
    assert_eq!(list.validate_signer(&r), Err(PathError::BudgetExceeded));
}

#[test]
fn malformed_inputs() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    for bad in [&b""[..], b"\x30\x82", b"garbage"] {
        assert!(matches!(
            list.validate_signer(&req(bad, &[])),
            Err(PathError::MalformedCertificate(_))
        ));
    }
    let mut trailing = pki.leaf.clone();
    trailing.push(0);
    assert!(matches!(
        list.validate_signer(&req(&trailing, &[])),
        Err(PathError::MalformedCertificate(_))
    ));
    let ints: [&[u8]; 2] = [pki.int.der.as_slice(), b"\x30\x03\x02\x01\x01"];
    match list.validate_signer(&req(&pki.leaf, &ints)) {
        Err(PathError::MalformedCertificate(msg)) => assert!(msg.contains("#1"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn weak_signature_algorithm_is_refused() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    // Re-label ecdsa-with-SHA256 as ecdsa-with-SHA224 (same length) in both the
    // TBS and outer AlgorithmIdentifier: a structurally valid cert webpki must refuse.
    let sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let mut leaf = pki.leaf.clone();
    let mut n = 0;
    let mut i = 0;
    while i + sha256.len() <= leaf.len() {
        if leaf[i..i + sha256.len()] == sha256 {
            leaf[i + 7] = 0x01;
            n += 1;
        }
        i += 1;
    }
    assert_eq!(n, 2);
    let ints = [pki.int.der.as_slice()];
    match list.validate_signer(&req(&leaf, &ints)) {
        Err(PathError::UnsupportedSignatureAlgorithm { algorithm }) => {
            assert!(algorithm.contains("1.2.840.10045.4.3.1"), "{algorithm}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tampered_signature_is_refused() {
    let pki = Pki::new("KZ");
    let list = pki.trust_list(true);
    let mut leaf = pki.leaf.clone();
    let last = leaf.len() - 1;
    leaf[last] ^= 0x01;
    let ints = [pki.int.der.as_slice()];
    assert_eq!(
        list.validate_signer(&req(&leaf, &ints)),
        Err(PathError::BadSignature)
    );
}

#[test]
fn path_length_constraints() {
    let check = |root: &Ca, ints: &[&Ca], leaf: &[u8]| {
        let list = TrustList::from_files(vec![cert_file("KZ", "root.pem", &root.der)]).unwrap();
        let ders: Vec<&[u8]> = ints.iter().map(|c| c.der.as_slice()).collect();
        let r = PathRequest {
            revocation: RevocationMode::Off,
            ..req(leaf, &ders)
        };
        list.validate_signer(&r)
    };

    // On an intermediate: webpki enforces it.
    let root = Ca::root("KZ Root CA", "KZ", NOW - 3650 * DAY, NOW + 3650 * DAY);
    let int1 = Ca::intermediate_with(&root, |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    });
    let int2 = Ca::intermediate_with(&int1, |_| {});
    let leaf = leaf_cert(&int2, next_serial(), |_| {});
    let got = check(&root, &[&int2, &int1], &leaf);
    assert!(
        matches!(got, Err(PathError::ConstraintViolation(_))),
        "{got:?}"
    );

    // On the anchor: webpki drops it, we enforce it.
    let root0 = Ca::root_with("KZ Root CA", "KZ", |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    });
    let int = Ca::intermediate_with(&root0, |_| {});
    let leaf = leaf_cert(&int, next_serial(), |_| {});
    let got = check(&root0, &[&int], &leaf);
    assert!(
        matches!(got, Err(PathError::ConstraintViolation(_))),
        "{got:?}"
    );

    let root1 = Ca::root_with("KZ Root CA", "KZ", |p| {
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
    });
    let int = Ca::intermediate_with(&root1, |_| {});
    let leaf = leaf_cert(&int, next_serial(), |_| {});
    assert!(check(&root1, &[&int], &leaf).is_ok());
    let int_b = Ca::intermediate_with(&int, |_| {});
    let leaf = leaf_cert(&int_b, next_serial(), |_| {});
    let got = check(&root1, &[&int_b, &int], &leaf);
    assert!(
        matches!(got, Err(PathError::ConstraintViolation(_))),
        "{got:?}"
    );
}

#[test]
fn summarize_without_trust_list() {
    let pki = Pki::new("AZ");
    let s = summarize_certificate(&pki.leaf).unwrap();
    assert_eq!(s.country.as_deref(), Some("AZ"));
    assert_eq!(s.serial, hex(&pki.leaf_serial));
    assert!(s.issuer.contains("CN=AZ Issuing CA"));
    assert_eq!(s.not_before, NOW - 30 * DAY);
    assert_eq!(s.sha256.len(), 64);
    assert!(s
        .sha256
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    let json = serde_json::to_value(&s).unwrap();
    for key in [
        "subject",
        "issuer",
        "serial",
        "country",
        "notBefore",
        "notAfter",
        "sha256",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

#[test]
fn error_messages_are_sentences() {
    let errors = [
        PathError::NoChain,
        PathError::RevocationUnknown,
        PathError::KeyUsageNotAllowed,
        PathError::SignerIsCa,
        PathError::BudgetExceeded,
        PathError::Expired { not_after_unix: 1 },
        PathError::UnknownCountry(kz()),
    ];
    for e in errors {
        let s = e.to_string();
        assert!(s.len() > 10 && !s.contains("Error"), "{s}");
    }
}
