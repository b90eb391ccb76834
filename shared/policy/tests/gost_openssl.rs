#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A Kazakh-style GOST declaration made end to end by an independent
//! implementation: the document digest by `gost12sum`, the signature by
//! OpenSSL's GOST engine with the broker key of the GOST test PKI
//! (`tests/fixtures/gost-pki`, TC26-256-A), written in the NCA's XML form
//! (`pkigovkz` URIs, r‖s little-endian). Tamga must pass it under the
//! customs profile with the GOST root as KZ anchor, and refuse it elsewhere.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use tamga_dsig::NoExternal;
use tamga_policy::{verify_document, Indication, Policy, Report, SubIndication, VerifyRequest};
use tamga_trust::{TrustFile, TrustList};

const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/gost-pki");
/// 2027-06-01T00:00:00Z.
const AT: i64 = 1_811_808_000;
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} cannot run ({e}); `make deps` installs it"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pem_body(name: &str) -> String {
    let text = std::fs::read_to_string(Path::new(PKI).join(name)).unwrap();
    text.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The signed declaration. Every element is written in its canonical
/// (exclusive c14n) form, so the octets to digest and sign are known
/// without Tamga's canonicaliser.
fn signed_declaration(dir: &Path) -> Vec<u8> {
    signed_declaration_in(dir, Dialect::Kazakh)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Kazakh,
    CryptoPro,
}

fn signed_declaration_in(dir: &Path, dialect: Dialect) -> Vec<u8> {
    let body = "<Declaration xmlns=\"urn:tamga:declaration:1\" Id=\"decl-1\">\
                <LRN>KZ-GOST-0001</LRN><Origin>KZ</Origin><Destination>AZ</Destination>\
                <Goods>Пшеница, 25 т</Goods>";
    let document_c14n = format!("{body}</Declaration>");
    std::fs::write(dir.join("doc"), &document_c14n).unwrap();
    let out = String::from_utf8(run(Command::new("gost12sum").arg(dir.join("doc")))).unwrap();
    let digest = hex::decode(out.split_whitespace().next().unwrap()).unwrap();
    let (ns, sig_uri, digest_uri) = match dialect {
        Dialect::Kazakh => (
            "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:",
            "gostr34102015-gostr34112015-256",
            "gostr34112015-256",
        ),
        Dialect::CryptoPro => (
            "urn:ietf:params:xml:ns:cpxmlsec:algorithms:",
            "gostr34102012-gostr34112012-256",
            "gostr34112012-256",
        ),
    };
    let signed_info_inner = format!(
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></ds:CanonicalizationMethod>\
         <ds:SignatureMethod Algorithm=\"{ns}{sig_uri}\"></ds:SignatureMethod>\
         <ds:Reference URI=\"\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>\
         <ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></ds:Transform>\
         </ds:Transforms><ds:DigestMethod Algorithm=\"{ns}{digest_uri}\"></ds:DigestMethod>\
         <ds:DigestValue>{}</ds:DigestValue></ds:Reference>",
        b64(&digest)
    );
    let signed_info_c14n =
        format!("<ds:SignedInfo xmlns:ds=\"{DS}\">{signed_info_inner}</ds:SignedInfo>");
    std::fs::write(dir.join("si"), &signed_info_c14n).unwrap();
    run(Command::new("openssl")
        .args(["dgst", "-engine", "gost", "-md_gost12_256", "-sign"])
        .arg(Path::new(PKI).join("broker.key"))
        .arg("-out")
        .arg(dir.join("sig"))
        .arg(dir.join("si")));
    // OpenSSL writes RFC 4491's s‖r big-endian; the NCA's XML form is its
    // byte reverse, r‖s little-endian.
    let mut value = std::fs::read(dir.join("sig")).unwrap();
    if dialect == Dialect::Kazakh {
        value.reverse();
    }
    format!(
        "{body}<ds:Signature xmlns:ds=\"{DS}\"><ds:SignedInfo>{signed_info_inner}</ds:SignedInfo>\
         <ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>\
         <ds:X509Certificate>{}</ds:X509Certificate><ds:X509Certificate>{}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></ds:Signature></Declaration>",
        b64(&value),
        pem_body("broker.pem"),
        pem_body("ca.pem"),
    )
    .into_bytes()
}

fn trust() -> TrustList {
    let f = |cc: &str, name: &str| TrustFile {
        country: cc.parse().unwrap(),
        name: name.into(),
        bytes: std::fs::read(Path::new(PKI).join(name)).unwrap_or_default(),
    };
    TrustList::from_files(vec![
        f("KZ", "root.pem"),
        f("KZ", "root.crl"),
        f("KZ", "ca.crl"),
        f("AZ", "README.txt"),
    ])
    .unwrap()
}

fn verify(bytes: &[u8], origin: &str, policy: &Policy) -> Report {
    verify_document(&VerifyRequest {
        bytes,
        trust: &trust(),
        origin: origin.parse().unwrap(),
        at_unix: AT,
        policy,
        resolver: &NoExternal,
        hmac_secret: None,
    })
}

#[test]
fn an_openssl_signed_gost_declaration_passes_and_its_forgeries_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let doc = signed_declaration(dir.path());
    let report = verify(&doc, "KZ", &Policy::customs());
    assert_eq!(
        report.indication,
        Indication::TotalPassed,
        "{}",
        report.message
    );
    assert_eq!(report.algorithms.signature.as_deref(), Some("gost2012-256"));
    assert_eq!(report.chain.len(), 3);
    let key = report.signer.as_ref().unwrap().key.clone().unwrap();
    assert!(key.contains("paramSetA"), "{key}");

    // Changed goods: digest mismatch.
    let text = String::from_utf8(doc.clone()).unwrap();
    let forged = text.replace("25 т", "95 т");
    let r = verify(forged.as_bytes(), "KZ", &Policy::customs());
    assert_eq!(r.sub_indication, Some(SubIndication::HashFailure));

    // SignatureValue read in the CryptoPro byte order (s‖r big-endian)
    // does not verify: the byte order comes from the URI, never a guess.
    let cp = text.replace(
        "pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-256",
        "cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
    );
    let r = verify(cp.as_bytes(), "KZ", &Policy::customs());
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::SigCryptoFailure),
        "{}",
        r.message
    );

    // A 512 URI over the 256-bit key.
    let wrong_size = text.replace(
        "gostr34102015-gostr34112015-256",
        "gostr34102015-gostr34112015-512",
    );
    let r = verify(wrong_size.as_bytes(), "KZ", &Policy::customs());
    assert_eq!(r.reason, Some("signature_invalid"), "{}", r.message);

    // Digest algorithm mismatch: the reference claims Streebog-512.
    let wrong_digest = text.replace(
        "algorithms:gostr34112015-256",
        "algorithms:gostr34112015-512",
    );
    let r = verify(wrong_digest.as_bytes(), "KZ", &Policy::customs());
    assert_eq!(
        r.sub_indication,
        Some(SubIndication::HashFailure),
        "{}",
        r.message
    );

    // Same document, declared as from AZ: GOST is not allowed there.
    let r = verify(&doc, "AZ", &Policy::customs());
    assert_eq!(r.reason, Some("algorithm_not_allowed_for_country"));
}

/// The CryptoPro form (`cpxmlsec` URIs, SignatureValue s‖r big-endian as
/// OpenSSL writes it) passes too, and its byte reverse does not.
#[test]
fn the_cryptopro_form_passes_and_its_reverse_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let doc = signed_declaration_in(dir.path(), Dialect::CryptoPro);
    let report = verify(&doc, "KZ", &Policy::customs());
    assert_eq!(
        report.indication,
        Indication::TotalPassed,
        "{}",
        report.message
    );
    let text = String::from_utf8(doc).unwrap();
    let start = text.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let end = text.find("</ds:SignatureValue>").unwrap();
    let mut value = base64::engine::general_purpose::STANDARD
        .decode(&text[start..end])
        .unwrap();
    value.reverse();
    let reversed = format!("{}{}{}", &text[..start], b64(&value), &text[end..]);
    let r = verify(reversed.as_bytes(), "KZ", &Policy::customs());
    assert_eq!(r.sub_indication, Some(SubIndication::SigCryptoFailure));
}

fn der_of(pem: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(pem)
        .unwrap()
}

/// Attack cases on the GOST material itself: a key off the curve, an
/// unknown parameter set, r or s zero or not below q.
#[test]
fn hostile_gost_keys_and_signature_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = String::from_utf8(signed_declaration(dir.path())).unwrap();
    let broker_b64 = pem_body("broker.pem");
    let broker = der_of(&broker_b64);
    let with_cert = |der: &[u8]| text.replace(&broker_b64, &b64(der));

    // The 64 key octets follow `04 40` inside the BIT STRING.
    let at = broker.windows(2).position(|w| w == [0x04, 0x40]).unwrap() + 2;
    let mut off_curve = broker.clone();
    off_curve[at + 40] ^= 0x01;
    let r = verify(with_cert(&off_curve).as_bytes(), "KZ", &Policy::customs());
    assert_eq!(r.reason, Some("no_signing_certificate"), "{}", r.message);
    assert!(r.message.contains("not on the curve"), "{}", r.message);

    // id-tc26-gost-3410-2012-256-paramSetA (…1.1.1) turned into …1.1.9.
    let oid = [0x2a, 0x85, 0x03, 0x07, 0x01, 0x02, 0x01, 0x01, 0x01];
    let p = broker.windows(oid.len()).position(|w| w == oid).unwrap();
    let mut unknown_set = broker.clone();
    unknown_set[p + oid.len() - 1] = 0x09;
    let r = verify(with_cert(&unknown_set).as_bytes(), "KZ", &Policy::customs());
    assert_eq!(r.reason, Some("no_signing_certificate"), "{}", r.message);
    assert!(r.message.contains("parameter set"), "{}", r.message);

    // SignatureValue (r‖s little-endian, 32 bytes each) with r = 0, s = 0,
    // r = 2^256 - 1 (≥ q) and s = 2^256 - 1.
    let start = text.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let end = text.find("</ds:SignatureValue>").unwrap();
    let value = base64::engine::general_purpose::STANDARD
        .decode(&text[start..end])
        .unwrap();
    for (what, range, byte) in [
        ("r = 0", 0..32, 0x00),
        ("s = 0", 32..64, 0x00),
        ("r >= q", 0..32, 0xff),
        ("s >= q", 32..64, 0xff),
    ] {
        let mut v = value.clone();
        v[range].fill(byte);
        let forged = format!("{}{}{}", &text[..start], b64(&v), &text[end..]);
        let r = verify(forged.as_bytes(), "KZ", &Policy::customs());
        assert_eq!(
            r.sub_indication,
            Some(SubIndication::SigCryptoFailure),
            "{what}"
        );
    }
    // A truncated value is malformed, not a pass.
    let forged = format!("{}{}{}", &text[..start], b64(&value[..63]), &text[end..]);
    let r = verify(forged.as_bytes(), "KZ", &Policy::customs());
    assert_eq!(r.sub_indication, Some(SubIndication::SigCryptoFailure));
}
