//! The GOST flavour of the demo PKI checked by an independent
//! implementation: OpenSSL with Debian's GOST engine (libengine-gost-openssl,
//! installed by `make deps`) verifies the chain and the GOST-signed CRLs
//! (`openssl verify -crl_check_all`), reads the PKCS#8 keys, verifies raw
//! signatures of the demo signer (`openssl dgst -verify`), and signs with a
//! demo key what tamga-gost then verifies. rustls-webpki with tamga-gost's
//! algorithms builds the same paths.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use tamga_gost::demo::DemoSecretKey;
use tamga_gost::{der, verify_message, Signature};
use tamga_pki::{generate_with_gost, DemoPki, DemoPkiOptions, GostBrokerKind, KeyAlgorithm};
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

struct Fixture {
    dir: tempfile::TempDir,
    pki: DemoPki,
    now: i64,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = generate_with_gost(&DemoPkiOptions::new(["KZ", "AZ"], now), &["kz".to_string()])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        pki.write_to(dir.path()).unwrap();
        Fixture { dir, pki, now }
    })
}

fn openssl(dir: &Path, args: &[&str]) -> Output {
    Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl cannot run ({e}); `make deps` installs it"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn only_the_requested_countries_get_the_gost_flavour() {
    let f = fixture();
    assert!(f.pki.country("AZ").unwrap().gost.is_none());
    let g = f.pki.country("KZ").unwrap().gost.as_ref().unwrap();
    assert_eq!(g.root.algorithm, KeyAlgorithm::Gost2012_512);
    assert_eq!(
        g.broker(GostBrokerKind::Gost256).unwrap().algorithm,
        KeyAlgorithm::Gost2012_256
    );
    for f in [
        "trust/KZ/gost-root-ca.pem",
        "trust/KZ/gost-root-ca.crl",
        "trust/KZ/gost-issuing-ca.crl",
        "keys/KZ/gost-issuing-ca.pem",
        "keys/KZ/broker-gost.key",
        "keys/KZ/broker-gost-256.pem",
        "keys/KZ/broker-gost-revoked.pem",
    ] {
        assert!(fixture().dir.path().join(f).is_file(), "{f}");
    }
    assert!(!fixture()
        .dir
        .path()
        .join("trust/AZ/gost-root-ca.pem")
        .exists());
    assert!(
        generate_with_gost(&DemoPkiOptions::new(["AZ"], f.now), &["KZ".into()])
            .unwrap()
            .countries[0]
            .gost
            .is_none()
    );
}

/// `openssl verify` with the GOST engine: the chain of each broker, every
/// CRL's signature and the revocation status (`-crl_check_all`).
#[test]
fn openssl_verifies_the_gost_chain_and_crls() {
    let d = fixture().dir.path();
    let k = d.join("keys/KZ");
    let t = d.join("trust/KZ");
    let verify = |leaf: &str| {
        openssl(
            d,
            &[
                "verify",
                "-engine",
                "gost",
                "-x509_strict",
                "-crl_check_all",
                "-CAfile",
                t.join("gost-root-ca.pem").to_str().unwrap(),
                "-untrusted",
                k.join("gost-issuing-ca.pem").to_str().unwrap(),
                "-CRLfile",
                t.join("gost-root-ca.crl").to_str().unwrap(),
                "-CRLfile",
                t.join("gost-issuing-ca.crl").to_str().unwrap(),
                k.join(format!("{leaf}.pem")).to_str().unwrap(),
            ],
        )
    };
    for leaf in ["broker-gost", "broker-gost-256", "gost-issuing-ca"] {
        let o = verify(leaf);
        assert!(o.status.success(), "{leaf}: {}", text(&o));
        assert!(text(&o).contains(": OK"), "{leaf}: {}", text(&o));
    }
    let o = verify("broker-gost-revoked");
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("certificate revoked"), "{}", text(&o));
    // A broker of the RSA/ECDSA hierarchy does not chain to the GOST root.
    let o = verify("broker-ecdsa");
    assert!(!o.status.success(), "{}", text(&o));
    // Each CRL's signature on its own. `openssl crl` takes no -engine
    // option: the engine is loaded from a configuration file instead.
    let conf = d.join("openssl-gost.cnf");
    std::fs::write(
        &conf,
        "openssl_conf = openssl_def\n[openssl_def]\nengines = engine_section\n\
         [engine_section]\ngost = gost_section\n\
         [gost_section]\nengine_id = gost\ndefault_algorithms = ALL\n",
    )
    .unwrap();
    for (crl, ca) in [
        ("gost-root-ca.crl", t.join("gost-root-ca.pem")),
        ("gost-issuing-ca.crl", k.join("gost-issuing-ca.pem")),
    ] {
        let o = Command::new("openssl")
            .env("OPENSSL_CONF", &conf)
            .args([
                "crl",
                "-noout",
                "-in",
                t.join(crl).to_str().unwrap(),
                "-CAfile",
                ca.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success() && text(&o).contains("verify OK"),
            "{crl}: {}",
            text(&o)
        );
    }
}

/// OpenSSL reads the demo PKCS#8 keys (the public key it derives is the
/// certificate's), verifies the demo signer's raw signatures (RFC 4491 form),
/// refuses a corrupted one, and signs with a demo key what tamga-gost verifies.
#[test]
fn openssl_and_the_demo_signer_agree() {
    let f = fixture();
    let d = f.dir.path();
    let g = f.pki.country("KZ").unwrap().gost.as_ref().unwrap();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    for kind in [GostBrokerKind::Gost512, GostBrokerKind::Gost256] {
        let issued = g.broker(kind).unwrap();
        let key = DemoSecretKey::from_pkcs8_der(&issued.key_pkcs8_der).unwrap();
        let key_file = d.join("keys/KZ").join(format!("{}.key", kind.stem()));
        let spki = openssl(
            w,
            &[
                "pkey",
                "-engine",
                "gost",
                "-in",
                key_file.to_str().unwrap(),
                "-pubout",
                "-outform",
                "DER",
            ],
        );
        assert!(spki.status.success(), "{}", text(&spki));
        assert_eq!(
            &der::public_key_from_spki(&spki.stdout).unwrap(),
            key.public_key()
        );
        let cert_file = d.join("keys/KZ").join(format!("{}.pem", kind.stem()));
        let o = openssl(
            w,
            &[
                "x509",
                "-engine",
                "gost",
                "-in",
                cert_file.to_str().unwrap(),
                "-pubkey",
                "-noout",
                "-out",
                "pub.pem",
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let md = if key.param_set().bits() == 512 {
            "-md_gost12_512"
        } else {
            "-md_gost12_256"
        };
        for i in 0..3u8 {
            let message: Vec<u8> = (0..500u32 + u32::from(i) * 77)
                .map(|b| (b * 7 + u32::from(i)) as u8)
                .collect();
            std::fs::write(w.join("msg"), &message).unwrap();
            let sig = key.sign_message(&message).unwrap();
            let raw = sig.to_rfc4491(key.param_set());
            std::fs::write(w.join("sig"), &raw).unwrap();
            let args = [
                "dgst",
                "-engine",
                "gost",
                md,
                "-verify",
                "pub.pem",
                "-signature",
                "sig",
                "msg",
            ];
            let o = openssl(w, &args);
            assert!(o.status.success(), "{kind:?} #{i}: {}", text(&o));
            assert!(text(&o).contains("Verified OK"));
            // The Kazakh XML form is the byte reverse of what OpenSSL read.
            let mut kz = sig.to_kz_xml(key.param_set());
            kz.reverse();
            assert_eq!(kz, raw);
            let mut bad = raw.clone();
            bad[usize::from(i) * 5] ^= 0x40;
            std::fs::write(w.join("sig"), &bad).unwrap();
            assert!(!openssl(w, &args).status.success());
            // OpenSSL signs with the demo key; tamga-gost verifies.
            let o = openssl(
                w,
                &[
                    "dgst",
                    "-engine",
                    "gost",
                    md,
                    "-sign",
                    key_file.to_str().unwrap(),
                    "-out",
                    "sig2",
                    "msg",
                ],
            );
            assert!(o.status.success(), "{}", text(&o));
            let theirs =
                Signature::from_rfc4491(&std::fs::read(w.join("sig2")).unwrap(), key.param_set())
                    .unwrap();
            verify_message(key.public_key(), &message, &theirs).unwrap();
        }
    }
}

/// rustls-webpki with tamga-gost's algorithms: the same chains and CRLs.
#[test]
fn webpki_builds_the_gost_paths() {
    let f = fixture();
    let g = f.pki.country("KZ").unwrap().gost.as_ref().unwrap();
    let algs: Vec<&dyn SignatureVerificationAlgorithm> =
        tamga_gost::webpki::certificate_algorithms()
            .iter()
            .map(|a| a as &dyn SignatureVerificationAlgorithm)
            .collect();
    let root = CertificateDer::from(g.root.cert_der.as_slice());
    let anchors = [webpki::anchor_from_trusted_cert(&root).unwrap().to_owned()];
    let intermediates = [CertificateDer::from(g.issuing.cert_der.clone())];
    let crls: Vec<CertRevocationList<'_>> = [&g.root_crl_der, &g.issuing_crl_der]
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
    let now = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(f.now).unwrap()));
    let check = |kind| {
        let der = CertificateDer::from(g.broker(kind).unwrap().cert_der.as_slice());
        let ee = EndEntityCert::try_from(&der).unwrap();
        ee.verify_for_usage(
            &algs,
            &anchors,
            &intermediates,
            now,
            webpki::KeyUsage::required_if_present(&[0x2b, 6, 1, 5, 5, 7, 3, 4]),
            Some(revocation),
            None,
        )
        .map(|_| ())
    };
    check(GostBrokerKind::Gost512).unwrap();
    check(GostBrokerKind::Gost256).unwrap();
    assert!(matches!(
        check(GostBrokerKind::Revoked),
        Err(webpki::Error::CertRevoked)
    ));
}
