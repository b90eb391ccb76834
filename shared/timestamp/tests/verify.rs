#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use tamga_timestamp::{
    parse_timestamp, verify_timestamp, SignerId, TimestampError, TimestampRequest, TsaTrust,
    VerifiedTimestamp,
};

fn verify_full(
    token: &[u8],
    data: &[u8],
    anchors: &[&[u8]],
    extra: &[&[u8]],
    at: u64,
) -> Result<VerifiedTimestamp, TimestampError> {
    verify_timestamp(&TimestampRequest {
        token_der: token,
        imprint_data: data,
        trust_anchors_der: anchors,
        extra_certs_der: extra,
        at_unix: at,
    })
}

fn verify_with(pki: &Pki, token: &[u8], data: &[u8]) -> Result<VerifiedTimestamp, TimestampError> {
    verify_full(token, data, &[&pki.root_der], &[], AT)
}

fn check(pki: &Pki, t: &Token) -> Result<VerifiedTimestamp, TimestampError> {
    verify_with(pki, &t.build(pki), &t.data)
}

fn rsa_pki() -> &'static Pki {
    static P: std::sync::OnceLock<Pki> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        pki(
            &TsaOptions {
                key: KeyAlg::Rsa,
                ..Default::default()
            },
            "Tamga RSA Root",
            0,
        )
    })
}

// ------------------------------------------------------------------ valid

#[test]
fn valid_token_ecdsa_p256() {
    let p = default_pki();
    let t = Token::default();
    let v = check(p, &t).unwrap();
    assert_eq!(v.gen_time, "2025-03-15T12:00:00Z");
    assert_eq!(v.gen_time_unix, 1_742_040_000);
    assert_eq!(v.serial_hex, "01020304");
    assert_eq!(v.hash_algorithm, "SHA-256");
    assert_eq!(v.policy_oid, "1.2.3.4.5");
    assert!(
        v.tsa_subject.contains("CN=Tamga Test TSA"),
        "{}",
        v.tsa_subject
    );
    assert_eq!(v.nonce_hex.as_deref(), Some("4242"));
    let acc = v.accuracy.unwrap();
    assert_eq!((acc.seconds, acc.millis, acc.micros), (1, 500, 0));
    assert_eq!(v.tsa_certificate_der, p.tsa_der);
    assert_eq!(v.trust, TsaTrust::Chain);
}

#[test]
fn valid_token_rsa_variants() {
    let p = rsa_pki();
    for (sig, digest, imprint) in [
        (Sig::RsaPkcs1(H::Sha256), H::Sha256, H::Sha256),
        (Sig::RsaPkcs1(H::Sha384), H::Sha384, H::Sha384),
        (Sig::RsaPkcs1(H::Sha512), H::Sha256, H::Sha512),
        (Sig::RsaBare, H::Sha512, H::Sha256),
        (Sig::RsaPss(H::Sha256), H::Sha256, H::Sha256),
        (Sig::RsaPss(H::Sha384), H::Sha384, H::Sha384),
        (Sig::RsaPss(H::Sha512), H::Sha512, H::Sha512),
    ] {
        let t = Token {
            sig: Some(sig),
            digest,
            imprint_hash: imprint,
            ..Default::default()
        };
        let v = check(p, &t).unwrap_or_else(|e| panic!("{sig:?}/{digest:?}: {e}"));
        assert_eq!(
            v.hash_algorithm,
            match imprint {
                H::Sha256 => "SHA-256",
                H::Sha384 => "SHA-384",
                H::Sha512 => "SHA-512",
                H::Sha1 => unreachable!(),
            }
        );
    }
}

#[test]
fn valid_token_ecdsa_p384() {
    let p = pki(
        &TsaOptions {
            key: KeyAlg::EcP384,
            ..Default::default()
        },
        "Tamga P-384 Root",
        0,
    );
    let t = Token {
        digest: H::Sha384,
        imprint_hash: H::Sha512,
        ..Default::default()
    };
    check(&p, &t).unwrap();
}

#[test]
fn valid_with_ess_variants() {
    let p = default_pki();
    for ess in [
        Ess::None,
        Ess::V1,
        Ess::V2,
        Ess::V2Sha512,
        Ess::V2WithIssuerSerial,
    ] {
        let t = Token {
            ess,
            ..Default::default()
        };
        check(p, &t).unwrap_or_else(|e| panic!("{ess:?}: {e}"));
    }
}

#[test]
fn valid_with_fractional_gen_time_and_no_optional_fields() {
    let p = default_pki();
    let t = Token {
        gen_time: "20250315120000.125Z".into(),
        nonce: None,
        accuracy: false,
        ..Default::default()
    };
    let v = check(p, &t).unwrap();
    assert_eq!(v.gen_time, "2025-03-15T12:00:00.125Z");
    assert_eq!(v.gen_time_unix, 1_742_040_000);
    assert_eq!(v.nonce_hex, None);
    assert_eq!(v.accuracy, None);
}

#[test]
fn signer_by_subject_key_identifier() {
    let p = pki(
        &TsaOptions {
            ski: Some(vec![0x5a; 20]),
            ..Default::default()
        },
        "Tamga SKI Root",
        0,
    );
    let t = Token {
        sid: SidKind::Ski,
        ..Default::default()
    };
    check(&p, &t).unwrap();
    let info = parse_timestamp(&t.build(&p)).unwrap();
    assert_eq!(info.signer, SignerId::SubjectKeyIdentifier("5a".repeat(20)));
}

#[test]
fn certificates_from_extra_certs() {
    let p = default_pki();
    let t = Token {
        include_certs: false,
        ..Default::default()
    };
    let tok = t.build(p);
    assert_eq!(
        verify_with(p, &tok, &t.data).unwrap_err(),
        TimestampError::SignerCertificateNotFound
    );
    verify_full(&tok, &t.data, &[&p.root_der], &[&p.tsa_der], AT).unwrap();
    // Garbage among the extra certificates is skipped.
    verify_full(&tok, &t.data, &[&p.root_der], &[b"junk", &p.tsa_der], AT).unwrap();
}

#[test]
fn tsa_certificate_as_direct_trust_anchor() {
    let p = default_pki();
    let t = Token {
        include_certs: false,
        ..Default::default()
    };
    let tok = t.build(p);
    let v = verify_full(&tok, &t.data, &[&p.tsa_der], &[], AT).unwrap();
    assert_eq!(v.trust, TsaTrust::DirectAnchor);
    // Still time-bound.
    assert!(matches!(
        verify_full(&tok, &t.data, &[&p.tsa_der], &[], 2_300_000_000),
        Err(TimestampError::TsaCertificateInvalid(_))
    ));
}

#[test]
fn intermediate_ca_without_eku_is_accepted() {
    let p = pki(
        &TsaOptions {
            intermediate: Some(None),
            ..Default::default()
        },
        "Tamga Root With Intermediate",
        1,
    );
    let t = Token::default();
    let tok = t.build(&p);
    verify_with(&p, &tok, &t.data).unwrap();
    // Without the intermediate the path cannot be built.
    let t2 = Token {
        include_certs: false,
        ..Default::default()
    };
    let tok2 = t2.build(&p);
    assert!(matches!(
        verify_full(&tok2, &t2.data, &[&p.root_der], &[&p.tsa_der], AT),
        Err(TimestampError::UntrustedTsa(_))
    ));
    verify_full(
        &tok2,
        &t2.data,
        &[&p.root_der],
        &[&p.tsa_der, p.intermediate_der.as_ref().unwrap()],
        AT,
    )
    .unwrap();
}

#[test]
fn intermediate_ca_restricted_to_other_purposes_is_refused() {
    let p = pki(
        &TsaOptions {
            intermediate: Some(Some(EKU_SERVER_AUTH)),
            ..Default::default()
        },
        "Tamga Root With TLS Intermediate",
        2,
    );
    let t = Token::default();
    assert_eq!(
        check(&p, &t).unwrap_err(),
        TimestampError::TsaNotForTimestamping
    );
}

// ------------------------------------------------------------------ failures

#[test]
fn imprint_over_different_data() {
    let p = default_pki();
    let t = Token::default();
    let tok = t.build(p);
    assert_eq!(
        verify_with(p, &tok, b"other data").unwrap_err(),
        TimestampError::ImprintMismatch
    );
    assert_eq!(
        verify_with(p, &tok, b"").unwrap_err(),
        TimestampError::ImprintMismatch
    );
}

#[test]
fn tampered_tst_info() {
    let p = default_pki();
    let t = Token {
        tamper_tst_after_digest: true,
        ..Default::default()
    };
    assert_eq!(
        check(p, &t).unwrap_err(),
        TimestampError::MessageDigestMismatch
    );
    let t = Token {
        tamper_tst_and_digest: true,
        ..Default::default()
    };
    assert_eq!(check(p, &t).unwrap_err(), TimestampError::SignatureInvalid);
}

#[test]
fn flipped_signature() {
    for p in [default_pki(), rsa_pki()] {
        let t = Token {
            flip_signature: true,
            ..Default::default()
        };
        assert_eq!(check(p, &t).unwrap_err(), TimestampError::SignatureInvalid);
    }
    let t = Token {
        sig: Some(Sig::RsaPss(H::Sha256)),
        flip_signature: true,
        ..Default::default()
    };
    assert_eq!(
        check(rsa_pki(), &t).unwrap_err(),
        TimestampError::SignatureInvalid
    );
}

#[test]
fn signature_scheme_must_fit_the_key() {
    // An ECDSA key with an RSA signature algorithm identifier.
    let t = Token {
        sig_alg_override: Some(sig_alg_der(Sig::RsaPkcs1(H::Sha256))),
        ..Default::default()
    };
    assert!(matches!(
        check(default_pki(), &t),
        Err(TimestampError::UnsupportedAlgorithm(_))
    ));
    // An RSA key with an ECDSA identifier.
    let t = Token {
        sig_alg_override: Some(sig_alg_der(Sig::Ecdsa(H::Sha256))),
        ..Default::default()
    };
    assert!(matches!(
        check(rsa_pki(), &t),
        Err(TimestampError::UnsupportedAlgorithm(_))
    ));
    // PKCS#1 v1.5 signature declared as PSS: the signature does not verify.
    let t = Token {
        sig_alg_override: Some(sig_alg_der(Sig::RsaPss(H::Sha256))),
        ..Default::default()
    };
    assert_eq!(
        check(rsa_pki(), &t).unwrap_err(),
        TimestampError::SignatureInvalid
    );
}

#[test]
fn tsa_not_under_the_anchors() {
    let p = default_pki();
    let other = pki(&TsaOptions::default(), "Some Other Root", 7);
    let t = Token::default();
    let tok = t.build(p);
    assert!(matches!(
        verify_full(&tok, &t.data, &[&other.root_der], &[], AT),
        Err(TimestampError::UntrustedTsa(_))
    ));
    // The token's own root, shipped inside the token, does not make it trusted.
    let tok_other = t.build(&other);
    assert!(matches!(
        verify_with(p, &tok_other, &t.data),
        Err(TimestampError::UntrustedTsa(_))
    ));
    // No anchors at all.
    assert!(matches!(
        verify_full(&tok, &t.data, &[], &[], AT),
        Err(TimestampError::UntrustedTsa(_))
    ));
}

#[test]
fn tsa_without_time_stamping_eku() {
    for (eku, slot) in [
        (Eku::Absent, 3),
        (Eku::NonCriticalTimeStamping, 4),
        (Eku::ServerAuthOnly, 5),
    ] {
        let p = pki(
            &TsaOptions {
                eku,
                ..Default::default()
            },
            "Tamga EKU Root",
            slot,
        );
        let t = Token::default();
        assert_eq!(
            check(&p, &t).unwrap_err(),
            TimestampError::TsaNotForTimestamping,
            "{eku:?}"
        );
    }
}

#[test]
fn tsa_key_usage_must_allow_signing() {
    let p = pki(
        &TsaOptions {
            key_usage: vec![rcgen::KeyUsagePurpose::KeyEncipherment],
            ..Default::default()
        },
        "Tamga KU Root",
        6,
    );
    assert!(matches!(
        check(&p, &Token::default()),
        Err(TimestampError::TsaCertificateInvalid(_))
    ));
}

#[test]
fn tsa_certificate_outside_validity() {
    let p = pki(
        &TsaOptions {
            not_before: (2021, 1, 1),
            not_after: (2022, 1, 1),
            ..Default::default()
        },
        "Tamga Expired Root",
        8,
    );
    let t = Token {
        gen_time: "20210601000000Z".into(),
        ..Default::default()
    };
    let tok = t.build(&p);
    // Expired at AT (2025).
    assert!(matches!(
        verify_with(&p, &tok, &t.data),
        Err(TimestampError::TsaCertificateInvalid(_))
    ));
    // Not yet valid in 2020.
    assert!(matches!(
        verify_full(&tok, &t.data, &[&p.root_der], &[], 1_590_000_000),
        Err(TimestampError::TsaCertificateInvalid(_))
    ));
    // Valid mid-2021.
    verify_full(&tok, &t.data, &[&p.root_der], &[], 1_625_000_000).unwrap();
    // A genTime after the certificate expired is refused even when the path
    // is validated at a time the certificate was valid.
    let late = Token::default(); // genTime 2025
    assert!(matches!(
        verify_full(&late.build(&p), &late.data, &[&p.root_der], &[], 1_625_000_000),
        Err(TimestampError::TsaCertificateInvalid(m)) if m.contains("genTime")
    ));
}

#[test]
fn refused_hash_algorithms() {
    let p = default_pki();
    let t = Token {
        imprint_hash: H::Sha1,
        ..Default::default()
    };
    assert!(matches!(
        check(p, &t),
        Err(TimestampError::UnsupportedAlgorithm(m)) if m.contains("SHA-1")
    ));
    let t = Token {
        imprint_oid: Some(MD5),
        imprint_override: Some(vec![0; 16]),
        ..Default::default()
    };
    assert!(matches!(
        check(p, &t),
        Err(TimestampError::UnsupportedAlgorithm(m)) if m.contains("MD5")
    ));
    let t = Token {
        digest: H::Sha1,
        ..Default::default()
    };
    assert!(matches!(
        check(p, &t),
        Err(TimestampError::UnsupportedAlgorithm(m)) if m.contains("SHA-1")
    ));
    let t = Token {
        sig: Some(Sig::RsaPkcs1(H::Sha1)),
        ..Default::default()
    };
    assert!(matches!(
        check(rsa_pki(), &t),
        Err(TimestampError::UnsupportedAlgorithm(m)) if m.contains("sha1WithRSA")
    ));
}

#[test]
fn imprint_of_wrong_length() {
    let p = default_pki();
    let t = Token {
        imprint_override: Some(vec![0; 20]),
        ..Default::default()
    };
    assert!(matches!(check(p, &t), Err(TimestampError::Malformed(_))));
}

#[test]
fn ess_naming_another_certificate() {
    let p = default_pki();
    let t = Token {
        ess: Ess::V2Wrong,
        ..Default::default()
    };
    assert_eq!(
        check(p, &t).unwrap_err(),
        TimestampError::SigningCertificateMismatch
    );
}

#[test]
fn tsa_name_must_match_signer() {
    let p = default_pki();
    let subject = cert_info(&p.tsa_der).subject_raw;
    let t = Token {
        tsa_name: Some(subject),
        ..Default::default()
    };
    check(p, &t).unwrap();
    let issuer = cert_info(&p.tsa_der).issuer_raw;
    let t = Token {
        tsa_name: Some(issuer),
        ..Default::default()
    };
    assert_eq!(check(p, &t).unwrap_err(), TimestampError::TsaNameMismatch);
}

#[test]
fn critical_tst_extension_refused() {
    let p = default_pki();
    let t = Token {
        critical_extension: true,
        ..Default::default()
    };
    assert!(matches!(
        check(p, &t),
        Err(TimestampError::UnsupportedCriticalExtension(o)) if o == "1.2.3.9"
    ));
}

#[test]
fn algorithm_protection_attribute() {
    let p = default_pki();
    let good = Token {
        alg_protection: Some((
            alg(SHA256, Some(&null())),
            sig_alg_der(Sig::Ecdsa(H::Sha256)),
        )),
        ..Default::default()
    };
    check(p, &good).unwrap();
    let bad = Token {
        alg_protection: Some((
            alg(SHA512, Some(&null())),
            sig_alg_der(Sig::Ecdsa(H::Sha256)),
        )),
        ..Default::default()
    };
    assert_eq!(
        check(p, &bad).unwrap_err(),
        TimestampError::AlgorithmProtectionMismatch
    );
}

#[test]
fn content_types() {
    let p = default_pki();
    let t = Token {
        content_type_attr: ID_DATA.to_vec(),
        ..Default::default()
    };
    assert!(matches!(check(p, &t), Err(TimestampError::Malformed(_))));
    let t = Token {
        econtent_type: ID_DATA.to_vec(),
        ..Default::default()
    };
    assert_eq!(check(p, &t).unwrap_err(), TimestampError::NotATimestamp);
    // A ContentInfo that is not signedData.
    let ci = seq(&[&oid(ID_DATA), &explicit(0, &octets(b"hello"))]);
    assert_eq!(
        verify_with(p, &ci, b"").unwrap_err(),
        TimestampError::NotATimestamp
    );
}

#[test]
fn exactly_one_signer_info() {
    let p = default_pki();
    let t = Token {
        two_signer_infos: true,
        ..Default::default()
    };
    assert!(matches!(check(p, &t), Err(TimestampError::Malformed(m)) if m.contains("exactly one")));
}

#[test]
fn invalid_trust_anchor_is_reported() {
    let p = default_pki();
    let t = Token::default();
    let tok = t.build(p);
    assert!(matches!(
        verify_full(&tok, &t.data, &[&p.root_der, b"not a certificate"], &[], AT),
        Err(TimestampError::InvalidTrustAnchor(_))
    ));
}

// ------------------------------------------------------------------ malformed input

#[test]
fn garbage_truncated_and_empty() {
    let p = default_pki();
    let t = Token::default();
    let tok = t.build(p);
    let run = |bytes: &[u8]| verify_with(p, bytes, &t.data);

    assert!(matches!(run(b""), Err(TimestampError::Malformed(_))));
    assert!(matches!(
        parse_timestamp(b""),
        Err(TimestampError::Malformed(_))
    ));
    assert!(matches!(run(b"garbage"), Err(TimestampError::Malformed(_))));
    assert!(matches!(
        run(&[0x30, 0x80, 0, 0]),
        Err(TimestampError::Malformed(_))
    ));
    assert!(matches!(
        run(&[0xff; 64]),
        Err(TimestampError::Malformed(_))
    ));
    assert!(matches!(
        run(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
        Err(TimestampError::Malformed(_))
    ));
    for len in 0..tok.len() {
        let r = run(&tok[..len]);
        assert!(
            matches!(r, Err(TimestampError::Malformed(_))),
            "len {len}: {r:?}"
        );
        assert!(parse_timestamp(&tok[..len]).is_err());
    }
    let mut trailing = tok.clone();
    trailing.push(0);
    assert!(matches!(run(&trailing), Err(TimestampError::Malformed(_))));
    // Oversized input.
    let big = vec![0x30; 2 << 20];
    assert!(matches!(run(&big), Err(TimestampError::Malformed(_))));
}

#[test]
fn every_single_byte_flip_is_handled() {
    let p = default_pki();
    let t = Token::default();
    let tok = t.build(p);
    let good = verify_with(p, &tok, &t.data).unwrap();
    for i in 0..tok.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut m = tok.clone();
            m[i] ^= mask;
            let _ = parse_timestamp(&m);
            if let Ok(v) = verify_with(p, &m, &t.data) {
                // Only unsigned bytes may change without failing, and then the
                // verified content must be exactly the original.
                assert_eq!(v, good, "byte {i} ^ {mask:#x} changed verified content");
            }
        }
    }
}

#[test]
fn parse_timestamp_reports_fields() {
    let p = default_pki();
    let t = Token {
        tsa_name: Some(cert_info(&p.tsa_der).subject_raw),
        ..Default::default()
    };
    let tok = t.build(p);
    let info = parse_timestamp(&tok).unwrap();
    assert_eq!(info.gen_time, "2025-03-15T12:00:00Z");
    assert_eq!(info.policy_oid, "1.2.3.4.5");
    assert_eq!(info.serial_hex, "01020304");
    assert_eq!(info.hash_algorithm, "SHA-256");
    assert_eq!(info.hashed_message, sha256(&t.data));
    assert_eq!(info.nonce_hex.as_deref(), Some("4242"));
    assert!(!info.ordering);
    assert_eq!(info.digest_algorithm, "SHA-256");
    assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(
        info.certificates_der,
        vec![p.tsa_der.clone(), p.root_der.clone()]
    );
    assert!(info.tsa_name.unwrap().contains("CN=Tamga Test TSA"));
    match info.signer {
        SignerId::IssuerAndSerialNumber { issuer, serial_hex } => {
            assert!(issuer.contains("CN=Tamga Test TSA Root"), "{issuer}");
            assert_eq!(serial_hex, "c0ffee");
        }
        other => panic!("{other:?}"),
    }
    // parse_timestamp does not judge algorithms: a SHA-1 token is reported.
    let sha1 = Token {
        imprint_hash: H::Sha1,
        ..Default::default()
    };
    assert_eq!(
        parse_timestamp(&sha1.build(p)).unwrap().hash_algorithm,
        "SHA-1"
    );
}
