//! Regenerates the seed corpus: `cargo run --manifest-path fuzz/Cargo.toml
//! --example gen_seeds`.
//!
//! A fresh demo PKI for KZ (its public half goes to `seeds/trust/KZ`, the
//! validation time to `seeds/trust/AT_UNIX`; private keys are not kept),
//! small sample declarations signed by its brokers, and the attacks Tamga
//! must refuse. Small on purpose: libFuzzer mutates small inputs faster.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pki::{BrokerKind, DemoPkiOptions};

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let pki = tamga_pki::generate(&DemoPkiOptions::new(["KZ"], now)).unwrap();
    let kz = pki.country("KZ").unwrap();

    let trust = seeds.join("trust");
    std::fs::create_dir_all(trust.join("KZ")).unwrap();
    std::fs::write(trust.join("KZ/root-ca.pem"), &kz.root.cert_pem).unwrap();
    std::fs::write(trust.join("KZ/root-ca.crl"), &kz.root_crl_pem).unwrap();
    std::fs::write(trust.join("KZ/issuing-ca.crl"), &kz.issuing_crl_pem).unwrap();
    // A minute after signing: every certificate and CRL is current.
    std::fs::write(trust.join("AT_UNIX"), format!("{}\n", now + 60)).unwrap();

    let sign = |kind: BrokerKind, xades: bool, seq: u64, items: usize| {
        let broker = kz.broker(kind).unwrap();
        let key = SigningKey::from_pkcs8_der(&broker.key_pkcs8_der).unwrap();
        let doc = sample(&SampleSpec::new("KZ", "AZ", seq, items));
        let signed = sign_enveloped(
            doc.as_bytes(),
            &key,
            &SignOptions {
                certificates: vec![broker.cert_der.clone(), kz.issuing.cert_der.clone()],
                digest: DigestAlgorithm::Sha256,
                xades,
                signing_time: time::OffsetDateTime::from_unix_timestamp(now).unwrap(),
                limits: Default::default(),
            },
        )
        .unwrap();
        String::from_utf8(signed).unwrap()
    };

    let rsa = sign(BrokerKind::Rsa, false, 1, 1);
    let ecdsa_xades = sign(BrokerKind::Ecdsa, true, 2, 1);
    let body = rsa.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let seeds_verify = seeds.join("verify");
    std::fs::create_dir_all(&seeds_verify).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("01-rsa.xml", rsa.clone()),
        ("02-ecdsa-xades.xml", ecdsa_xades.clone()),
        (
            "03-forged-quantity.xml",
            rsa.replacen("<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9", 1),
        ),
        (
            "04-wrapped-xsw.xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Declaration xmlns=\"urn:tamga:declaration:1\"><Header><LRN>FORGED</LRN></Header><Extension>{body}</Extension></Declaration>\n"
            ),
        ),
        ("05-expired.xml", sign(BrokerKind::Expired, false, 3, 1)),
        ("06-revoked.xml", sign(BrokerKind::Revoked, true, 4, 1)),
        (
            "07-doctype.xml",
            "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>".into(),
        ),
        (
            "08-two-signatures.xml",
            {
                let sig_start = rsa.find("<ds:Signature").unwrap();
                let sig_end = rsa.rfind("</ds:Signature>").unwrap() + "</ds:Signature>".len();
                let sig = &rsa[sig_start..sig_end];
                format!("{}{sig}{}", &rsa[..sig_end], &rsa[sig_end..])
            },
        ),
        ("09-unsigned.xml", sample(&SampleSpec::new("KZ", "AZ", 5, 1))),
    ];
    for (name, text) in &cases {
        std::fs::write(seeds_verify.join(name), text).unwrap();
    }
    // c14n: the same documents; canonicalisation does not care about trust.
    let seeds_c14n = seeds.join("c14n");
    std::fs::create_dir_all(&seeds_c14n).unwrap();
    std::fs::write(seeds_c14n.join("01-rsa.xml"), &rsa).unwrap();
    std::fs::write(seeds_c14n.join("02-ecdsa-xades.xml"), &ecdsa_xades).unwrap();
    std::fs::write(
        seeds_c14n.join("03-namespaces.xml"),
        concat!(
            "<?xml version='1.0'?>\n<!--c--><?pi x?>\n",
            "<r xmlns='urn:d' xmlns:a='urn:a' xml:lang='kk' xml:base='http://e.org/d/' Id='r'>",
            "<a:x Id='x' a:k='v'><y xmlns='' a:q='1'>t &amp; &lt;\r</y><![CDATA[<>]]>",
            "<z xmlns:c='urn:c' xml:space='preserve'><c:w xml:id='w' xml:base='s/'> Қазақ </c:w></z></a:x>",
            "<!--in--><s Id='s'/></r>\n<!--after-->"
        ),
    )
    .unwrap();
    println!(
        "seeds written to {} (AT_UNIX {})",
        seeds.display(),
        now + 60
    );
}
