#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Interoperability with xmlsec1 (the reference C implementation), both ways:
//!
//! * declarations signed by `tamga_dsig::sign_enveloped` (RSA and ECDSA,
//!   XML-DSig and XAdES-B-B) verify with `xmlsec1 --verify` against the
//!   demo root, and tampered ones do not;
//! * declarations signed by `xmlsec1 --sign` from a template verify in Tamga
//!   (customs profile) with TOTAL_PASSED, and tampered ones do not.
//!
//! xmlsec1 is required (Debian/Ubuntu: `apt-get install xmlsec1`); without
//! it these tests fail rather than silently pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, NoExternal, SignOptions, SigningKey};
use tamga_pki::{generate, BrokerKind, CountryPki, DemoPki, DemoPkiOptions};
use tamga_policy::{verify_document, Indication, Policy, Report, VerifyRequest};
use tamga_trust::TrustList;
use tamga_xml::ParseLimits;

const XADES_ID_ATTR: &str = "http://uri.etsi.org/01903/v1.3.2#:SignedProperties";

struct Pki {
    now: i64,
    pki: DemoPki,
}

/// The demo PKI, generated once per test binary (in memory).
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Pki {
            now,
            pki: generate(&DemoPkiOptions::new(["KZ"], now)).expect("demo PKI"),
        }
    })
}

fn kz() -> &'static CountryPki {
    pki().pki.country("KZ").expect("KZ")
}

/// The demo PKI written out (`trust/`, `keys/`) in a fresh temporary
/// directory that lives as long as the returned guard.
fn on_disk() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    pki().pki.write_to(dir.path()).expect("write demo PKI");
    dir
}

fn keys(dir: &Path) -> PathBuf {
    dir.join("keys").join("KZ")
}

/// `xmlsec1` on PATH, or a failure telling how to get it.
fn xmlsec1() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("xmlsec1"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "xmlsec1 is not on PATH: these interop tests need it. Install it \
             (Debian/Ubuntu: `apt-get install xmlsec1`; CI installs it)."
        ),
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running xmlsec1")
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn declaration(seq: u64) -> String {
    sample(&SampleSpec::new("KZ", "AZ", seq, 3))
}

fn tamga_sign(kind: BrokerKind, xades: bool, doc: &str) -> Vec<u8> {
    let c = kz();
    let b = c.broker(kind).expect("broker");
    sign_enveloped(
        doc.as_bytes(),
        &SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).expect("key"),
        &SignOptions {
            certificates: vec![b.cert_der.clone(), c.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::from_unix_timestamp(pki().now).unwrap(),
            limits: ParseLimits::default(),
        },
    )
    .expect("sign_enveloped")
}

fn tamga_verify(dir: &Path, bytes: &[u8]) -> Report {
    let trust = TrustList::load_dir(&dir.join("trust")).expect("trust list");
    verify_document(&VerifyRequest {
        bytes,
        trust: &trust,
        origin: "KZ".parse().unwrap(),
        at_unix: pki().now,
        policy: &Policy::customs(),
        resolver: &NoExternal,
        hmac_secret: None,
    })
}

/// `xmlsec1 --verify` against the demo root, with the issuing CA as an
/// untrusted intermediate and the XAdES SignedProperties Id registered.
fn xmlsec_verify(dir: &Path, file: &Path) -> Output {
    let k = keys(dir);
    run(Command::new(xmlsec1())
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(k.join("root-ca.pem"))
        .arg("--untrusted-pem")
        .arg(k.join("issuing-ca.pem"))
        .arg("--id-attr:Id")
        .arg(XADES_ID_ATTR)
        .arg(file))
}

fn tamper(doc: &[u8]) -> Vec<u8> {
    let s = String::from_utf8(doc.to_vec()).unwrap();
    assert!(s.contains("<Quantity unit=\"pcs\">"));
    s.replacen("<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9", 1)
        .into_bytes()
}

// ---------------------------------------------------------------------------
// (a) Tamga signs, xmlsec1 verifies.
// ---------------------------------------------------------------------------

#[test]
fn tamga_signatures_verify_in_xmlsec1() {
    let dir = on_disk();
    let mut seq = 10;
    for kind in [BrokerKind::Rsa, BrokerKind::Ecdsa] {
        for xades in [false, true] {
            seq += 1;
            let label = format!("{kind} xades={xades}");
            let signed = tamga_sign(kind, xades, &declaration(seq));
            let file = dir.path().join(format!("tamga-{kind}-{xades}.xml"));
            std::fs::write(&file, &signed).unwrap();
            let o = xmlsec_verify(dir.path(), &file);
            assert!(
                o.status.success(),
                "{label}: xmlsec1 refused a Tamga signature\n{}",
                describe(&o)
            );
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let refs = if xades { "2/2" } else { "1/1" };
            assert!(
                all.contains("OK")
                    && all.contains(&format!("SignedInfo References (ok/all): {refs}")),
                "{label}: {all}"
            );

            // Tampered content: xmlsec1 must refuse it too.
            let bad = dir
                .path()
                .join(format!("tamga-{kind}-{xades}-tampered.xml"));
            std::fs::write(&bad, tamper(&signed)).unwrap();
            let o = xmlsec_verify(dir.path(), &bad);
            assert!(
                !o.status.success(),
                "{label}: xmlsec1 accepted tampered content\n{}",
                describe(&o)
            );
        }
    }
}

#[test]
fn xmlsec1_refuses_a_tamga_signature_without_the_trusted_root() {
    // Sanity check of the harness: xmlsec1 really validates the chain.
    let dir = on_disk();
    let file = dir.path().join("signed.xml");
    std::fs::write(
        &file,
        tamga_sign(BrokerKind::Ecdsa, false, &declaration(20)),
    )
    .unwrap();
    let o = run(Command::new(xmlsec1())
        .arg("--verify")
        .arg("--untrusted-pem")
        .arg(keys(dir.path()).join("issuing-ca.pem"))
        .arg(&file));
    assert!(!o.status.success(), "{}", describe(&o));
}

// ---------------------------------------------------------------------------
// (b) xmlsec1 signs, Tamga verifies.
// ---------------------------------------------------------------------------

/// An enveloped-signature template (exc-c14n, the given algorithms, empty
/// X509Data) spliced in before `</Declaration>`, indented as a human would.
fn template(doc: &str, signature_method: &str, digest_method: &str) -> String {
    let tmpl = format!(
        r#"
  <ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="xmlsec-sig">
    <ds:SignedInfo>
      <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <ds:SignatureMethod Algorithm="{signature_method}"/>
      <ds:Reference URI="">
        <ds:Transforms>
          <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
          <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        </ds:Transforms>
        <ds:DigestMethod Algorithm="{digest_method}"/>
        <ds:DigestValue/>
      </ds:Reference>
    </ds:SignedInfo>
    <ds:SignatureValue/>
    <ds:KeyInfo>
      <ds:X509Data/>
    </ds:KeyInfo>
  </ds:Signature>
"#
    );
    let i = doc.rfind("</Declaration>").expect("root end");
    format!("{}{tmpl}{}", &doc[..i], &doc[i..])
}

/// `xmlsec1 --sign --privkey-pem KEY,CERT,ISSUING`: the key with its
/// certificate chain, which xmlsec1 writes into the empty X509Data.
fn xmlsec_sign(dir: &Path, broker: &str, tmpl: &str, name: &str) -> Vec<u8> {
    let k = keys(dir);
    let t = dir.join(format!("{name}-tmpl.xml"));
    let out = dir.join(format!("{name}-signed.xml"));
    std::fs::write(&t, tmpl).unwrap();
    let key_and_chain = format!(
        "{},{},{}",
        k.join(format!("{broker}.key")).display(),
        k.join(format!("{broker}.pem")).display(),
        k.join("issuing-ca.pem").display()
    );
    let o = run(Command::new(xmlsec1())
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(key_and_chain)
        .arg("--output")
        .arg(&out)
        .arg(&t));
    assert!(
        o.status.success(),
        "xmlsec1 --sign failed\n{}",
        describe(&o)
    );
    std::fs::read(&out).unwrap()
}

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

#[test]
fn xmlsec1_signatures_verify_in_tamga() {
    let dir = on_disk();
    let cases = [
        (
            "broker-rsa",
            RSA_SHA256,
            SHA256,
            "rsa-sha256",
            "KZ Broker rsa",
        ),
        (
            "broker-ecdsa",
            ECDSA_SHA256,
            SHA256,
            "ecdsa-sha256",
            "KZ Broker ecdsa",
        ),
        (
            "broker-rsa",
            RSA_SHA512,
            SHA512,
            "rsa-sha512",
            "KZ Broker rsa",
        ),
    ];
    for (i, (broker, sm, dm, alg, cn)) in cases.into_iter().enumerate() {
        let doc = declaration(30 + i as u64);
        let signed = xmlsec_sign(
            dir.path(),
            broker,
            &template(&doc, sm, dm),
            &format!("xmlsec-{i}"),
        );
        let text = String::from_utf8_lossy(&signed);
        assert_eq!(
            text.matches("<ds:X509Certificate>").count(),
            2,
            "{alg}: xmlsec1 should write the signer and issuing CA certificates:\n{text}"
        );
        let r = tamga_verify(dir.path(), &signed);
        assert_eq!(
            r.indication,
            Indication::TotalPassed,
            "{alg}: Tamga refused an xmlsec1 signature: {:?} {}",
            r.reason,
            r.message
        );
        assert!(r.signature_intact);
        assert_eq!(r.signature_format, Some("XML-DSig"));
        assert_eq!(r.algorithms.signature.as_deref(), Some(alg));
        let signer = r.signer.as_ref().expect("signer");
        assert!(
            signer.subject.contains(cn),
            "{alg}: signer {}",
            signer.subject
        );
        // KeyInfo carried signer + issuing CA; the path ends at the trusted root.
        assert_eq!(r.chain.len(), 3, "{alg}: chain {:?}", r.chain);

        // Tampered content, and a tampered signature value.
        let r = tamga_verify(dir.path(), &tamper(&signed));
        assert_eq!(r.reason, Some("digest_mismatch"), "{alg}: {}", r.message);
        let mut bad = signed.clone();
        let start = text.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
        let at = (start..bad.len())
            .find(|&i| bad[i].is_ascii_alphanumeric())
            .unwrap()
            + 2;
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        let r = tamga_verify(dir.path(), &bad);
        assert_eq!(r.reason, Some("signature_invalid"), "{alg}: {}", r.message);
    }
}

#[test]
fn xmlsec1_sha1_signature_is_refused_by_the_customs_policy() {
    // xmlsec1 happily makes an RSA-SHA1 signature with SHA-1 digests; it is
    // intact, but the customs policy refuses SHA-1 before any crypto runs.
    let dir = on_disk();
    let doc = declaration(40);
    let signed = xmlsec_sign(
        dir.path(),
        "broker-rsa",
        &template(&doc, RSA_SHA1, SHA1),
        "xmlsec-sha1",
    );
    let r = tamga_verify(dir.path(), &signed);
    assert_eq!(r.reason, Some("weak_algorithm"), "{}", r.message);
    assert_eq!(
        r.sub_indication.map(|s| s.as_str()),
        Some("CRYPTO_CONSTRAINTS_FAILURE")
    );
    // ... and xmlsec1 itself still verifies it (the refusal is policy).
    let file = dir.path().join("xmlsec-sha1-signed.xml");
    let o = xmlsec_verify(dir.path(), &file);
    assert!(o.status.success(), "{}", describe(&o));
}
