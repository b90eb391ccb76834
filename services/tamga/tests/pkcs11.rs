#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tamga countersign --key pkcs11:…`: the authority's key lives in a
//! SoftHSM2 token (generated there, never extractable); the result verifies
//! in Tamga and with xmlsec1.

use std::process::Command;

use tamga_pkcs11::softhsm::{KeySpec, SoftHsm};

mod common;
use common::token;

#[test]
fn countersign_with_a_key_that_never_leaves_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["AZ".into(), "KZ".into()],
        now_unix: now,
    })
    .unwrap()
    .write_to(dir.path())
    .unwrap();
    let keys = dir.path().join("keys");

    // The token and the key, generated inside it.
    let hsm = SoftHsm::shared_in(dir.path().join("hsm")).unwrap();
    hsm.init_token("az-customs", "so-pin-1234", "user-pin-1234")
        .unwrap();
    let mut handles = Vec::new();
    for (label, spec) in [("seal-ec", KeySpec::EcP256), ("seal-rsa", KeySpec::Rsa2048)] {
        let cert_path = token::certified_token_key(
            hsm,
            "az-customs",
            "user-pin-1234",
            spec,
            label,
            &keys,
            "AZ",
            dir.path(),
        );
        handles.push((label, cert_path));
    }

    // A KZ declaration.
    let doc = tamga_declaration::sample(&tamga_declaration::SampleSpec::new("KZ", "AZ", 1, 5));
    let broker = tamga_dsig::SigningKey::from_pkcs8_pem(
        &std::fs::read(keys.join("KZ/broker-ecdsa.key")).unwrap(),
    )
    .unwrap();
    let mut certs = tamga_dsig::certificates_from_pem(
        &std::fs::read(keys.join("KZ/broker-ecdsa.pem")).unwrap(),
    )
    .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(keys.join("KZ/issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    let signed = tamga_dsig::sign_enveloped(
        doc.as_bytes(),
        &broker,
        &tamga_dsig::SignOptions {
            certificates: certs,
            digest: tamga_dsig::DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap();
    let input = dir.path().join("in.xml");
    std::fs::write(&input, signed).unwrap();

    for (label, cert) in handles {
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, "user-pin-1234\n").unwrap();
        let uri = format!(
            "pkcs11:token=az-customs;object={label};type=private?module-path={}&pin-source=file:{}",
            hsm.module_path().display(),
            pin_file.display()
        );
        let receipt = dir.path().join(format!("{label}-receipt.xml"));
        let out = Command::new(env!("CARGO_BIN_EXE_tamga"))
            .args(["countersign", "--key", &uri, "--cert"])
            .arg(&cert)
            .arg("--chain")
            .arg(keys.join("AZ/issuing-ca.pem"))
            .arg("--trust")
            .arg(dir.path().join("trust"))
            .args(["--from", "KZ", "--receipt"])
            .arg(&receipt)
            .arg(&input)
            .env("SOFTHSM2_CONF", hsm.dir().join("softhsm2.conf"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: {stderr}");
        assert!(
            !stderr.contains("user-pin-1234"),
            "the PIN must never be printed"
        );
        let countersigned = dir.path().join(format!("{label}-cs.xml"));
        std::fs::write(&countersigned, &out.stdout).unwrap();

        let v = Command::new(env!("CARGO_BIN_EXE_tamga"))
            .args(["verify", "--trust"])
            .arg(dir.path().join("trust"))
            .args(["--from", "KZ"])
            .arg(&countersigned)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert_eq!(report["indication"], "TOTAL_PASSED", "{label}: {report}");
        assert_eq!(report["counterSignatures"][0]["indication"], "TOTAL_PASSED");
        assert!(report["counterSignatures"][0]["signer"]["subject"]
            .as_str()
            .unwrap()
            .contains("HSM"));

        let x = Command::new("xmlsec1")
            .arg("--verify")
            .arg("--trusted-pem")
            .arg(dir.path().join("trust/AZ/root-ca.pem"))
            .arg("--untrusted-pem")
            .arg(keys.join("AZ/issuing-ca.pem"))
            .args([
                "--node-xpath",
                "//*[local-name()='CounterSignature']/*[local-name()='Signature']",
            ])
            .args([
                "--id-attr:Id",
                "http://www.w3.org/2000/09/xmldsig#:SignatureValue",
            ])
            .args([
                "--id-attr:Id",
                "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            ])
            .arg(&countersigned)
            .output()
            .expect("xmlsec1 is required: apt-get install xmlsec1");
        assert!(
            x.status.success(),
            "{label}: {}",
            String::from_utf8_lossy(&x.stderr)
        );
    }
}
