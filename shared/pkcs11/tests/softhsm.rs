//! Signing with keys generated inside a SoftHSM2 token.
//!
//! Needs SoftHSM2 (`apt-get install softhsm2`); without it every test here
//! fails saying so. The tests of this binary share one token directory and
//! one set of keys, made once (see `fixture`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use tamga_dsig::{
    check_references, check_signature_value, find_signatures, parse_signature, sign_enveloped,
    verify_signature, Budget, Curve, DigestAlgorithm, NoExternal, PublicKey, SignError,
    SignOptions, SignatureAlgorithm, Signer,
};
use tamga_pkcs11::softhsm::{KeySpec, SoftHsm};
use tamga_pkcs11::{percent_encode, Pkcs11Error, Pkcs11Signer, Pkcs11Uri};
use tamga_xml::{Document, ParseLimits};

const TOKEN: &str = "tamga-test";
const OTHER_TOKEN: &str = "tamga-other";
const SO_PIN: &str = "so-secret-9157";
const PIN: &str = "user-secret-4826";
const OTHER_PIN: &str = "other-secret-3391";
const WRONG_PIN: &str = "wrong-secret-7702";

const EC: &str = "az-authority-ec";
const RSA: &str = "az-authority-rsa";
const P384: &str = "az-authority-p384";
const EC_ID: &[u8] = &[0xa1, 0x01];
const RSA_ID: &[u8] = &[0xa1, 0x02];
const P384_ID: &[u8] = &[0xa1, 0x03];

struct Fixture {
    hsm: &'static SoftHsm,
    ec: PublicKey,
    rsa: PublicKey,
    p384: PublicKey,
    other_ec: PublicKey,
}

fn setup() -> Result<Fixture, Pkcs11Error> {
    let hsm = SoftHsm::shared_in(env!("CARGO_TARGET_TMPDIR"))?;
    hsm.init_token(TOKEN, SO_PIN, PIN)?;
    let ec = hsm.generate_key_pair(TOKEN, PIN, KeySpec::EcP256, EC, EC_ID)?;
    let rsa = hsm.generate_key_pair(TOKEN, PIN, KeySpec::Rsa2048, RSA, RSA_ID)?;
    let p384 = hsm.generate_key_pair(TOKEN, PIN, KeySpec::EcP384, P384, P384_ID)?;
    // A second token holding a key with the same label and id.
    hsm.init_token(OTHER_TOKEN, SO_PIN, OTHER_PIN)?;
    let other_ec = hsm.generate_key_pair(OTHER_TOKEN, OTHER_PIN, KeySpec::EcP256, EC, EC_ID)?;
    Ok(Fixture {
        hsm,
        ec,
        rsa,
        p384,
        other_ec,
    })
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Result<Fixture, String>> = OnceLock::new();
    match FIXTURE.get_or_init(|| setup().map_err(|e| e.to_string())) {
        Ok(f) => f,
        Err(e) => panic!("SoftHSM2 test token setup failed: {e}"),
    }
}

fn open(object: &str) -> Pkcs11Signer {
    let f = fixture();
    Pkcs11Signer::open_uri(&f.hsm.uri(TOKEN, object, PIN)).unwrap_or_else(|e| panic!("{e}"))
}

fn open_err(uri: &str) -> Pkcs11Error {
    match Pkcs11Signer::open_uri(uri) {
        Ok(s) => panic!("{uri} opened {s:?}"),
        Err(e) => e,
    }
}

fn assert_no_pin(e: &Pkcs11Error) {
    for shown in [e.to_string(), format!("{e:?}")] {
        for pin in [PIN, WRONG_PIN, SO_PIN, OTHER_PIN] {
            assert!(!shown.contains(pin), "PIN in error: {shown}");
        }
    }
}

const MESSAGE: &[u8] = b"<ds:SignedInfo>canonical octets</ds:SignedInfo>";

fn sign_and_verify(signer: &Pkcs11Signer) -> Vec<u8> {
    let sig = signer.sign(MESSAGE).unwrap();
    verify_signature(&signer.algorithm(), &signer.public_key(), MESSAGE, &sig)
        .expect("token signature verifies");
    assert!(
        verify_signature(&signer.algorithm(), &signer.public_key(), b"other", &sig).is_err(),
        "signature verified over another message"
    );
    sig
}

#[test]
fn ec_p256_key_signs_ecdsa_sha256() {
    let f = fixture();
    let signer = open(EC);
    assert_eq!(
        signer.algorithm(),
        SignatureAlgorithm::Ecdsa(DigestAlgorithm::Sha256)
    );
    assert_eq!(signer.public_key(), f.ec);
    assert!(matches!(
        signer.public_key(),
        PublicKey::Ec { curve: Curve::P256, ref point } if point.len() == 65 && point[0] == 4
    ));
    assert_eq!(signer.token_label(), TOKEN);
    assert_eq!(signer.key_label(), Some(EC));
    assert_eq!(signer.key_id(), EC_ID);
    let sig = sign_and_verify(&signer);
    assert_eq!(sig.len(), 64, "raw r || s");
    // ECDSA is randomised: two signatures differ, both verify.
    assert_ne!(sig, sign_and_verify(&signer));
}

#[test]
fn ec_p384_key_signs_ecdsa_sha384() {
    let f = fixture();
    let signer = open(P384);
    assert_eq!(
        signer.algorithm(),
        SignatureAlgorithm::Ecdsa(DigestAlgorithm::Sha384)
    );
    assert_eq!(signer.public_key(), f.p384);
    assert_eq!(sign_and_verify(&signer).len(), 96);
}

#[test]
fn rsa_2048_key_signs_rsa_sha256() {
    let f = fixture();
    let signer = open(RSA);
    assert_eq!(
        signer.algorithm(),
        SignatureAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256)
    );
    assert_eq!(signer.public_key(), f.rsa);
    assert!(matches!(
        signer.public_key(),
        PublicKey::Rsa { bits: 2048, .. }
    ));
    let sig = sign_and_verify(&signer);
    assert_eq!(sig.len(), 256);
    // PKCS#1 v1.5 is deterministic.
    assert_eq!(sig, signer.sign(MESSAGE).unwrap());
}

#[test]
fn key_is_selected_by_id_alone() {
    let f = fixture();
    let uri = format!(
        "pkcs11:token={TOKEN};id={}?module-path={}&pin-value={PIN}",
        percent_encode(RSA_ID),
        f.hsm.module_path().display()
    );
    let signer = Pkcs11Signer::open_uri(&uri).unwrap();
    assert_eq!(signer.public_key(), f.rsa);
    // Label and id together must both match.
    let uri = format!(
        "pkcs11:token={TOKEN};object={EC};id={}?module-path={}&pin-value={PIN}",
        percent_encode(RSA_ID),
        f.hsm.module_path().display()
    );
    assert!(matches!(open_err(&uri), Pkcs11Error::KeyNotFound { .. }));
}

#[test]
fn token_attributes_select_the_token() {
    let f = fixture();
    let other = Pkcs11Signer::open_uri(&f.hsm.uri(OTHER_TOKEN, EC, OTHER_PIN)).unwrap();
    assert_eq!(other.public_key(), f.other_ec);
    assert_ne!(other.public_key(), f.ec);
    sign_and_verify(&other);

    // Manufacturer and model must match too.
    let base = format!(
        "?module-path={}&pin-value={PIN}",
        f.hsm.module_path().display()
    );
    let ok = format!("pkcs11:token={TOKEN};manufacturer=SoftHSM%20project;object={EC}{base}");
    assert_eq!(Pkcs11Signer::open_uri(&ok).unwrap().public_key(), f.ec);
    let wrong = format!("pkcs11:token={TOKEN};manufacturer=Thales;object={EC}{base}");
    assert!(matches!(
        open_err(&wrong),
        Pkcs11Error::TokenNotFound { .. }
    ));

    // Without a token attribute two tokens match.
    let any = format!("pkcs11:object={EC}{base}");
    assert!(matches!(
        open_err(&any),
        Pkcs11Error::AmbiguousToken { count: 2, .. }
    ));
}

#[test]
fn pin_from_a_file() {
    let f = fixture();
    let path = f.hsm.dir().join("user-pin");
    std::fs::write(&path, format!("{PIN}\n")).unwrap();
    let uri = format!(
        "pkcs11:token={TOKEN};object={EC};type=private?module-path={}&pin-source=file:{}",
        f.hsm.module_path().display(),
        path.display()
    );
    let signer = Pkcs11Signer::open_uri(&uri).unwrap();
    sign_and_verify(&signer);
}

#[test]
fn wrong_pin_is_refused_without_showing_it() {
    let f = fixture();
    // Whether or not another session of this process is logged in to the
    // token, a wrong PIN must not open the key.
    for _ in 0..2 {
        let e = open_err(&f.hsm.uri(TOKEN, EC, WRONG_PIN));
        assert!(matches!(e, Pkcs11Error::PinIncorrect), "{e}");
        assert_no_pin(&e);
    }
    // Even while a good signer holds a logged-in session on the token
    // (PKCS#11 would say "already logged in" without checking the PIN).
    let good = open(EC);
    let e = open_err(&f.hsm.uri(TOKEN, EC, WRONG_PIN));
    assert!(matches!(e, Pkcs11Error::PinIncorrect), "{e}");
    assert_no_pin(&e);
    // The right PIN still works alongside, and the first signer still signs.
    let second = open(EC);
    sign_and_verify(&second);
    sign_and_verify(&good);
}

#[test]
fn missing_pin_is_an_error() {
    if std::env::var_os(tamga_pkcs11::PIN_ENV).is_some() {
        return; // the environment supplies one
    }
    let f = fixture();
    let uri = format!(
        "pkcs11:token={TOKEN};object={EC}?module-path={}",
        f.hsm.module_path().display()
    );
    assert!(matches!(open_err(&uri), Pkcs11Error::NoPin));
}

#[test]
fn missing_token_is_an_error() {
    let f = fixture();
    let e = open_err(&f.hsm.uri("no-such-token", EC, PIN));
    assert!(matches!(e, Pkcs11Error::TokenNotFound { .. }), "{e}");
    let shown = e.to_string();
    assert!(shown.contains("no-such-token"), "{shown}");
    assert!(shown.contains(TOKEN), "lists the tokens present: {shown}");
    assert_no_pin(&e);
}

#[test]
fn missing_object_is_an_error() {
    let f = fixture();
    let e = open_err(&f.hsm.uri(TOKEN, "no-such-key", PIN));
    assert!(matches!(e, Pkcs11Error::KeyNotFound { .. }), "{e}");
    assert!(e.to_string().contains("no-such-key"));
    assert_no_pin(&e);

    let uri = format!(
        "pkcs11:token={TOKEN};id=%ff%ff?module-path={}&pin-value={PIN}",
        f.hsm.module_path().display()
    );
    assert!(matches!(open_err(&uri), Pkcs11Error::KeyNotFound { .. }));

    // Several keys and nothing to choose between them.
    let uri = format!(
        "pkcs11:token={TOKEN}?module-path={}&pin-value={PIN}",
        f.hsm.module_path().display()
    );
    assert!(matches!(
        open_err(&uri),
        Pkcs11Error::AmbiguousKey { count: 3, .. }
    ));
}

#[test]
fn non_private_object_types_are_refused() {
    let f = fixture();
    let uri = f
        .hsm
        .uri(TOKEN, EC, PIN)
        .replace("type=private", "type=cert");
    assert!(matches!(
        open_err(&uri),
        Pkcs11Error::WrongObjectType("cert")
    ));
}

#[test]
fn missing_module_is_an_error() {
    let e = open_err(&format!(
        "pkcs11:token={TOKEN};object={EC}?module-path=/nonexistent/libpkcs11.so&pin-value={PIN}"
    ));
    assert!(matches!(e, Pkcs11Error::Module { .. }), "{e}");
    assert_no_pin(&e);
}

#[test]
fn private_keys_are_sensitive_and_never_extractable() {
    for object in [EC, RSA, P384] {
        let p = open(object).key_protection().unwrap();
        assert!(p.sensitive, "{object}: CKA_SENSITIVE");
        assert!(!p.extractable, "{object}: CKA_EXTRACTABLE");
        assert!(p.always_sensitive, "{object}: CKA_ALWAYS_SENSITIVE");
        assert!(p.never_extractable, "{object}: CKA_NEVER_EXTRACTABLE");
        assert!(p.local, "{object}: CKA_LOCAL (generated on the token)");
    }
}

#[test]
fn debug_shows_no_pin() {
    let signer = open(EC);
    let shown = format!("{signer:?}");
    assert!(shown.contains(TOKEN) && shown.contains(EC), "{shown}");
    assert!(!shown.contains(PIN), "{shown}");
    let uri = Pkcs11Uri::parse(&fixture().hsm.uri(TOKEN, EC, PIN)).unwrap();
    assert!(!format!("{uri:?}").contains(PIN));
}

#[test]
fn one_signer_signs_from_many_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Pkcs11Signer>();

    let signer = Arc::new(open(EC));
    let rsa = Arc::new(open(RSA));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let signer = if i % 2 == 0 {
                Arc::clone(&signer)
            } else {
                Arc::clone(&rsa)
            };
            std::thread::spawn(move || {
                for j in 0..5 {
                    let msg = format!("message {i}/{j}");
                    let sig = signer.sign(msg.as_bytes()).unwrap();
                    verify_signature(
                        &signer.algorithm(),
                        &signer.public_key(),
                        msg.as_bytes(),
                        &sig,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Full XML round trip with a certificate for the token's key.

/// The token's public key, for rcgen to certify.
struct TokenKey(PublicKey);

impl PublicKeyData for TokenKey {
    fn der_bytes(&self) -> &[u8] {
        match &self.0 {
            PublicKey::Ec { point, .. } => point,
            PublicKey::Rsa { der, .. } => der,
            other => panic!("no certificate for {other:?}"),
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match &self.0 {
            PublicKey::Ec {
                curve: Curve::P256, ..
            } => &rcgen::PKCS_ECDSA_P256_SHA256,
            PublicKey::Ec {
                curve: Curve::P384, ..
            } => &rcgen::PKCS_ECDSA_P384_SHA384,
            PublicKey::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
            other => panic!("no certificate for {other:?}"),
        }
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "AZ");
    dn.push(DnType::OrganizationName, "Tamga test customs authority");
    dn.push(DnType::CommonName, cn);
    dn
}

/// A test CA, and a certificate it issues for `key` (leaf first).
fn certificate_chain(key: &PublicKey) -> Vec<Vec<u8>> {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = dn("Tamga Test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = dn("AZ customs authority countersigning key");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    let cert = leaf.signed_by(&TokenKey(key.clone()), &ca).unwrap();
    vec![cert.der().to_vec(), ca.as_ref().der().to_vec()]
}

const DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>
<Declaration xmlns="urn:tamga:test:declaration" id="AZ-2025-000042">
  <Declarant country="AZ">Example Trading LLC</Declarant>
  <Goods hs="8471.30" value="12000.00" currency="USD">Laptops</Goods>
</Declaration>
"#;

fn options(certificates: Vec<Vec<u8>>, xades: bool) -> SignOptions {
    SignOptions {
        certificates,
        digest: DigestAlgorithm::Sha256,
        xades,
        signing_time: time::OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
        limits: ParseLimits::default(),
    }
}

fn round_trip(object: &str, xades: bool) {
    let signer = open(object);
    let chain = certificate_chain(&signer.public_key());
    let signed = sign_enveloped(DECLARATION, &signer, &options(chain.clone(), xades))
        .unwrap_or_else(|e| panic!("{object}: {e}"));

    // Everything before the signature is byte for byte the input.
    let end = DECLARATION
        .windows(14)
        .position(|w| w == b"</Declaration>")
        .unwrap();
    assert_eq!(&signed[..end], &DECLARATION[..end]);

    // Check it again from the outside.
    let limits = ParseLimits::default();
    let doc = Document::parse(&signed, &limits).unwrap();
    let sigs = find_signatures(&doc);
    assert_eq!(sigs.len(), 1);
    let sig = parse_signature(sigs[0], &Budget::default()).unwrap();
    assert_eq!(sig.signature_method, signer.algorithm());
    let outcomes = check_references(&doc, &sig, &NoExternal, &limits);
    assert_eq!(outcomes.len(), if xades { 2 } else { 1 });
    for r in outcomes {
        assert!(
            r.result.is_ok(),
            "{object}: reference {}: {:?}",
            r.index,
            r.result
        );
    }
    let cert_key = PublicKey::from_certificate_der(&chain[0]).unwrap();
    assert_eq!(cert_key, signer.public_key());
    check_signature_value(&doc, &sig, &cert_key).unwrap();

    // Tampering with the signed declaration breaks the reference digest.
    let tampered = String::from_utf8(signed)
        .unwrap()
        .replace("12000.00", "1200.00");
    let doc = Document::parse(tampered.as_bytes(), &limits).unwrap();
    let sig = parse_signature(find_signatures(&doc)[0], &Budget::default()).unwrap();
    assert!(check_references(&doc, &sig, &NoExternal, &limits)
        .iter()
        .any(|r| r.result.is_err()));
}

#[test]
fn xml_round_trip_ec_p256() {
    round_trip(EC, false);
}

#[test]
fn xml_round_trip_rsa_2048_xades() {
    round_trip(RSA, true);
}

#[test]
fn xml_round_trip_ec_p384_xades() {
    round_trip(P384, true);
}

#[test]
fn certificate_for_another_key_is_refused() {
    let f = fixture();
    let signer = open(EC);
    let chain = certificate_chain(&f.rsa);
    let e = sign_enveloped(DECLARATION, &signer, &options(chain, false)).unwrap_err();
    assert!(matches!(e, SignError::CertificateMismatch), "{e}");
}
