//! End-to-end checks of the demo PKI: path building and CRL checking with
//! rustls-webpki (the same library family the verifier relies on), the
//! certificate profile as parsed by x509-parser, key/cert consistency and the
//! on-disk layout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use rcgen::{PublicKeyData, SigningKey};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use tamga_pki::{
    generate, BrokerKind, CountryPki, DemoPki, DemoPkiOptions, Issued, KeyAlgorithm, PkiError,
};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{parse_x509_certificate, parse_x509_crl, X509Certificate};
use x509_parser::public_key::PublicKey;

/// 2025-06-15T14:13:20Z; pinned so failures are reproducible.
const NOW: i64 = 1_750_000_000;
const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;
const YEAR: i64 = 365 * DAY;

/// id-kp-emailProtection, DER content bytes. The demo certs carry no EKU, so
/// `required_if_present` of any purpose must pass; this mirrors how the
/// verifier treats EKU-less signers.
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

fn pki() -> &'static DemoPki {
    static PKI: OnceLock<DemoPki> = OnceLock::new();
    PKI.get_or_init(|| generate(&DemoPkiOptions::new(["kz", "AZ"], NOW)).unwrap())
}

fn kz() -> &'static CountryPki {
    pki().country("KZ").unwrap()
}

fn az() -> &'static CountryPki {
    pki().country("AZ").unwrap()
}

fn at(unix: i64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(unix).unwrap()))
}

/// Verifies `ee` (issued under `issuing_of`) against `anchor_of`'s root, with
/// `crls` and the strict revocation policy the verifier uses.
fn verify_with(
    anchor_of: &CountryPki,
    issuing_of: &CountryPki,
    ee: &Issued,
    crls: &[&[u8]],
    time: i64,
) -> Result<(), webpki::Error> {
    let root_der = CertificateDer::from(anchor_of.root.cert_der.as_slice());
    let anchors = [webpki::anchor_from_trusted_cert(&root_der)
        .unwrap()
        .to_owned()];
    let intermediates = [CertificateDer::from(issuing_of.issuing.cert_der.clone())];
    let crls: Vec<CertRevocationList<'_>> = crls
        .iter()
        .map(|der| BorrowedCertRevocationList::from_der(der).unwrap().into())
        .collect();
    let crl_refs: Vec<&CertRevocationList<'_>> = crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs)
        .unwrap()
        .with_depth(RevocationCheckDepth::Chain)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .with_expiration_policy(ExpirationPolicy::Enforce)
        .build();
    let ee_der = CertificateDer::from(ee.cert_der.as_slice());
    let ee_cert = EndEntityCert::try_from(&ee_der).unwrap();
    ee_cert
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            at(time),
            webpki::KeyUsage::required_if_present(EKU_EMAIL_PROTECTION),
            Some(revocation),
            None,
        )
        .map(|_| ())
}

/// Verifies within one country with both of its CRLs.
fn verify(c: &CountryPki, ee: &Issued, time: i64) -> Result<(), webpki::Error> {
    verify_with(c, c, ee, &[&c.root_crl_der, &c.issuing_crl_der], time)
}

fn parse(issued: &Issued) -> X509Certificate<'_> {
    parse_x509_certificate(&issued.cert_der).unwrap().1
}

fn ski<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0),
            _ => None,
        })
        .expect("SKI present")
}

fn aki<'a>(cert: &'a X509Certificate<'_>) -> &'a [u8] {
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        })
        .expect("AKI present")
}

#[test]
fn countries_are_normalised_and_in_request_order() {
    let names: Vec<&str> = pki().countries.iter().map(|c| c.country.as_str()).collect();
    assert_eq!(names, ["KZ", "AZ"]);
    assert!(pki().country("kz").is_some());
    assert!(pki().country("TR").is_none());
}

#[test]
fn valid_signers_chain_to_their_root_with_revocation_checking() {
    for c in [kz(), az()] {
        for kind in [BrokerKind::Rsa, BrokerKind::Ecdsa] {
            verify(c, c.broker(kind).unwrap(), NOW)
                .unwrap_or_else(|e| panic!("{} broker {kind}: {e:?}", c.country));
        }
        verify(c, &c.authority, NOW).unwrap_or_else(|e| panic!("{} authority: {e:?}", c.country));
        verify(c, &c.authority_rsa, NOW)
            .unwrap_or_else(|e| panic!("{} authority-rsa: {e:?}", c.country));
        // Path building and CRLs do not look at keyUsage of the end entity;
        // rejecting this one is the verifier's job (checked in the profile test).
        verify(c, c.broker(BrokerKind::NoSigningKeyUsage).unwrap(), NOW).unwrap();
    }
}

#[test]
fn revoked_broker_is_reported_revoked() {
    for c in [kz(), az()] {
        let err = verify(c, c.broker(BrokerKind::Revoked).unwrap(), NOW).unwrap_err();
        assert_eq!(err, webpki::Error::CertRevoked, "{}", c.country);
    }
}

#[test]
fn expired_broker_is_reported_expired() {
    for c in [kz(), az()] {
        let err = verify(c, c.broker(BrokerKind::Expired).unwrap(), NOW).unwrap_err();
        assert!(
            matches!(err, webpki::Error::CertExpired { .. }),
            "{}: {err:?}",
            c.country
        );
    }
}

#[test]
fn brokers_do_not_chain_to_another_countrys_root() {
    let all_crls: [&[u8]; 4] = [
        &kz().root_crl_der,
        &kz().issuing_crl_der,
        &az().root_crl_der,
        &az().issuing_crl_der,
    ];
    for ee in [kz().broker(BrokerKind::Ecdsa).unwrap(), &kz().authority] {
        // Even handing over KZ's own issuing CA as an intermediate.
        let err = verify_with(az(), kz(), ee, &all_crls, NOW).unwrap_err();
        assert_eq!(err, webpki::Error::UnknownIssuer);
        let err = verify_with(az(), az(), ee, &all_crls, NOW).unwrap_err();
        assert_eq!(err, webpki::Error::UnknownIssuer);
    }
}

#[test]
fn both_crls_are_needed_and_expire() {
    let c = kz();
    let ee = c.broker(BrokerKind::Ecdsa).unwrap();
    // Without the root CRL the issuing CA's status is unknown, which shows the
    // root CRL is what webpki used for the intermediate at depth Chain.
    let err = verify_with(c, c, ee, &[&c.issuing_crl_der], NOW).unwrap_err();
    assert_eq!(err, webpki::Error::UnknownRevocationStatus);
    let err = verify_with(c, c, ee, &[&c.root_crl_der], NOW).unwrap_err();
    assert_eq!(err, webpki::Error::UnknownRevocationStatus);
    // nextUpdate is now+30d.
    verify(c, ee, NOW + 29 * DAY).unwrap();
    let err = verify(c, ee, NOW + 31 * DAY).unwrap_err();
    assert!(matches!(err, webpki::Error::CrlExpired { .. }), "{err:?}");
}

#[test]
fn certificate_profile() {
    for c in [kz(), az()] {
        let cc = c.country.as_str();
        let root = parse(&c.root);
        let issuing = parse(&c.issuing);

        // Root CA.
        assert_eq!(
            c.root.subject,
            format!("C={cc}, O={cc} Demo PKI, CN={cc} Demo Root CA")
        );
        assert_eq!(root.issuer(), root.subject());
        let bc = root.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(1));
        let ku = root.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign() && !ku.digital_signature());
        assert_eq!(c.root.algorithm, KeyAlgorithm::EcdsaP384);
        assert_eq!(root.public_key().parsed().unwrap().key_size(), 384);
        assert_eq!(ski(&root), aki(&root));
        assert_eq!(c.root.not_before_unix, NOW - DAY);
        assert_eq!(c.root.not_after_unix, NOW + 10 * YEAR);

        // Issuing CA.
        assert_eq!(
            c.issuing.subject,
            format!("C={cc}, O={cc} Demo PKI, CN={cc} Demo Issuing CA")
        );
        assert_eq!(issuing.issuer(), root.subject());
        let bc = issuing.basic_constraints().unwrap().unwrap().value;
        assert!(bc.ca);
        assert_eq!(bc.path_len_constraint, Some(0));
        let ku = issuing.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert_eq!(issuing.public_key().parsed().unwrap().key_size(), 256);
        assert_eq!(aki(&issuing), ski(&root));
        assert_eq!(c.issuing.not_after_unix, NOW + 5 * YEAR);

        // End entities.
        let mut ees: Vec<(&Issued, String, String, KeyAlgorithm)> = c
            .brokers
            .iter()
            .map(|b| {
                let alg = if b.kind == BrokerKind::Rsa {
                    KeyAlgorithm::Rsa2048
                } else {
                    KeyAlgorithm::EcdsaP256
                };
                (
                    &b.issued,
                    format!("{cc} Customs Broker LLC"),
                    format!("{cc} Broker {}", b.kind),
                    alg,
                )
            })
            .collect();
        for (issued, alg) in [
            (&c.authority, KeyAlgorithm::EcdsaP256),
            (&c.authority_rsa, KeyAlgorithm::Rsa2048),
        ] {
            ees.push((
                issued,
                format!("{cc} Customs Authority"),
                format!("{cc} Customs Authority Seal"),
                alg,
            ));
        }
        assert_eq!(ees.len(), 7);
        for (issued, org, cn, alg) in ees {
            let cert = parse(issued);
            assert_eq!(issued.subject, format!("C={cc}, O={org}, CN={cn}"));
            assert_eq!(cert.issuer(), issuing.subject());
            assert_eq!(issued.algorithm, alg, "{cn}");
            let bits = match cert.public_key().parsed().unwrap() {
                PublicKey::RSA(rsa) => {
                    assert_eq!(alg, KeyAlgorithm::Rsa2048);
                    rsa.key_size()
                }
                PublicKey::EC(ec) => {
                    assert_eq!(alg, KeyAlgorithm::EcdsaP256);
                    ec.key_size()
                }
                other => panic!("{cn}: unexpected key {other:?}"),
            };
            assert_eq!(
                bits,
                if alg == KeyAlgorithm::Rsa2048 {
                    2048
                } else {
                    256
                },
                "{cn}"
            );
            assert!(!cert.basic_constraints().unwrap().unwrap().value.ca, "{cn}");
            assert!(
                cert.extended_key_usage().unwrap().is_none(),
                "{cn} has an EKU"
            );
            assert_eq!(aki(&cert), ski(&issuing), "{cn}");
            assert_ne!(ski(&cert), ski(&issuing), "{cn}");
            let ku = cert.key_usage().unwrap().unwrap();
            assert!(ku.critical);
            let ku = ku.value;
            assert!(!ku.key_cert_sign() && !ku.crl_sign(), "{cn}");
            if cn.ends_with("no-key-usage") {
                assert!(ku.key_encipherment() && !ku.digital_signature() && !ku.non_repudiation());
            } else {
                assert!(
                    ku.digital_signature() && ku.non_repudiation() && !ku.key_encipherment(),
                    "{cn}"
                );
            }
            if cn.ends_with("expired") {
                assert_eq!(
                    (issued.not_before_unix, issued.not_after_unix),
                    (NOW - 2 * YEAR, NOW - YEAR)
                );
            } else {
                assert_eq!(
                    (issued.not_before_unix, issued.not_after_unix),
                    (NOW - DAY, NOW + 2 * YEAR),
                    "{cn}"
                );
            }
        }
    }
}

#[test]
fn serials_are_unique_across_everything() {
    let mut seen = HashSet::new();
    for c in &pki().countries {
        let all = [&c.root, &c.issuing, &c.authority, &c.authority_rsa]
            .into_iter()
            .chain(c.brokers.iter().map(|b| &b.issued));
        for issued in all {
            assert_eq!(issued.serial_hex, hex(parse(issued).raw_serial()));
            assert!(
                seen.insert(issued.serial_hex.clone()),
                "duplicate serial {}",
                issued.serial_hex
            );
        }
    }
    assert_eq!(seen.len(), 2 * 9);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn crls_match_the_profile() {
    for c in [kz(), az()] {
        let root = parse(&c.root);
        let issuing = parse(&c.issuing);

        let (_, root_crl) = parse_x509_crl(&c.root_crl_der).unwrap();
        assert_eq!(root_crl.issuer(), root.subject());
        assert_eq!(root_crl.iter_revoked_certificates().count(), 0);
        assert_eq!(
            root_crl.crl_number().map(|n| n.to_string()),
            Some(NOW.to_string())
        );
        assert_eq!(root_crl.last_update().timestamp(), NOW - HOUR);
        assert_eq!(root_crl.next_update().unwrap().timestamp(), NOW + 30 * DAY);
        assert!(c.root_crl_pem.starts_with("-----BEGIN X509 CRL-----"));

        let (_, crl) = parse_x509_crl(&c.issuing_crl_der).unwrap();
        assert_eq!(crl.issuer(), issuing.subject());
        assert!(crl.crl_number().is_some());
        let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
        assert_eq!(revoked.len(), 1);
        assert_eq!(
            hex(revoked[0].raw_serial()),
            c.broker(BrokerKind::Revoked).unwrap().serial_hex
        );
        assert_eq!(revoked[0].revocation_date.timestamp(), NOW - HOUR);
        assert_eq!(
            revoked[0].reason_code().map(|(_, r)| r),
            Some(x509_parser::x509::ReasonCode::KeyCompromise)
        );
        for crl_der in [&c.root_crl_der, &c.issuing_crl_der] {
            let (_, crl) = parse_x509_crl(crl_der).unwrap();
            let aki = crl
                .extensions()
                .iter()
                .find_map(|e| match e.parsed_extension() {
                    ParsedExtension::AuthorityKeyIdentifier(a) => {
                        a.key_identifier.as_ref().map(|k| k.0)
                    }
                    _ => None,
                })
                .unwrap();
            let issuer = if crl_der == &c.root_crl_der {
                &root
            } else {
                &issuing
            };
            assert_eq!(aki, ski(issuer));
        }
        // PEM and DER carry the same CRL.
        let (_, pem) = x509_parser::pem::parse_x509_pem(c.issuing_crl_pem.as_bytes()).unwrap();
        assert_eq!(pem.label, "X509 CRL");
        assert_eq!(pem.contents, c.issuing_crl_der);
    }
}

/// The exported PKCS#8 keys load and produce signatures the certificates verify.
#[test]
fn private_keys_match_their_certificates() {
    let c = kz();
    let all = [&c.root, &c.issuing, &c.authority, &c.authority_rsa]
        .into_iter()
        .chain(c.brokers.iter().map(|b| &b.issued));
    for issued in all {
        assert!(issued
            .key_pkcs8_pem
            .starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        let key = rcgen::KeyPair::from_pem(&issued.key_pkcs8_pem).unwrap();
        assert_eq!(key.serialized_der(), issued.key_pkcs8_der.as_slice());
        assert_eq!(
            key.subject_public_key_info(),
            parse(issued).public_key().raw
        );

        let msg = b"<Declaration Id=\"KZ-1\"/>";
        let sig = key.sign(msg).unwrap();
        let alg: &dyn SignatureVerificationAlgorithm = match issued.algorithm {
            KeyAlgorithm::EcdsaP256 => webpki::aws_lc_rs::ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => webpki::aws_lc_rs::ECDSA_P384_SHA384,
            KeyAlgorithm::Rsa2048 => webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
            other => panic!("unexpected {other:?}"),
        };
        let der = CertificateDer::from(issued.cert_der.as_slice());
        let cert = EndEntityCert::try_from(&der).unwrap();
        cert.verify_signature(alg, msg, &sig).unwrap();
        assert!(cert.verify_signature(alg, b"tampered", &sig).is_err());
    }
}

#[test]
fn debug_output_does_not_leak_keys() {
    let dbg = format!("{:?}", kz());
    assert!(dbg.contains("[redacted]"));
    assert!(!dbg.contains("PRIVATE KEY"));
    let body: String = kz()
        .authority
        .key_pkcs8_pem
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(!dbg.contains(&body));
}

#[test]
fn invalid_countries_are_rejected() {
    for bad in ["KAZ", "k1"] {
        let err = generate(&DemoPkiOptions::new([bad], NOW)).unwrap_err();
        assert!(
            matches!(&err, PkiError::InvalidCountry(c) if c == bad),
            "{err:?}"
        );
    }
    assert!(matches!(
        generate(&DemoPkiOptions::new(["KZ", "kz"], NOW)),
        Err(PkiError::DuplicateCountry(_))
    ));
}

#[cfg(unix)]
#[test]
fn write_to_produces_the_layout() {
    use std::os::unix::fs::{symlink, PermissionsExt};

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    pki().write_to(&out).unwrap();

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let mut expected = vec!["README.txt".to_owned()];
    for cc in ["KZ", "AZ"] {
        for f in ["root-ca.pem", "root-ca.crl", "issuing-ca.crl"] {
            expected.push(format!("trust/{cc}/{f}"));
        }
        let mut stems = vec!["root-ca".to_owned(), "issuing-ca".to_owned()];
        stems.extend(BrokerKind::ALL.iter().map(|k| format!("broker-{k}")));
        stems.extend(["authority".to_owned(), "authority-rsa".to_owned()]);
        for stem in stems {
            expected.push(format!("keys/{cc}/{stem}.pem"));
            expected.push(format!("keys/{cc}/{stem}.key"));
        }
        assert_eq!(mode(&out.join("keys").join(cc)), 0o700);
    }
    for rel in &expected {
        let p = out.join(rel);
        assert!(p.is_file(), "{rel} missing");
        if rel.ends_with(".key") {
            assert_eq!(mode(&p), 0o600, "{rel}");
        }
    }
    // Nothing unexpected.
    let mut found = Vec::new();
    let mut stack = vec![out.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.strip_prefix(&out).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    expected.sort();
    assert_eq!(found, expected);

    let read = |rel: &str| std::fs::read_to_string(out.join(rel)).unwrap();
    assert_eq!(read("trust/KZ/root-ca.pem"), kz().root.cert_pem);
    assert_eq!(read("trust/AZ/issuing-ca.crl"), az().issuing_crl_pem);
    assert_eq!(read("keys/KZ/issuing-ca.pem"), kz().issuing.cert_pem);
    assert_eq!(
        read("keys/KZ/broker-no-key-usage.key"),
        kz().broker(BrokerKind::NoSigningKeyUsage)
            .unwrap()
            .key_pkcs8_pem
    );
    assert_eq!(
        read("keys/AZ/authority-rsa.pem"),
        az().authority_rsa.cert_pem
    );
    assert!(read("README.txt").contains("trust/<CC>/root-ca.pem"));

    // Rewriting over an existing tree tightens a loosened key file and does
    // not write through a planted symlink.
    let key = out.join("keys/KZ/authority.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let link = out.join("keys/KZ/broker-rsa.key");
    std::fs::remove_file(&link).unwrap();
    symlink(&victim, &link).unwrap();

    pki().write_to(&out).unwrap();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(!std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(mode(&link), 0o600);
}
