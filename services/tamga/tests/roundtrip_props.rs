#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Properties of sign → verify over generated declarations:
//!
//! * any declaration (random item count, random multilingual text with
//!   `&<>"'` and astral-plane characters, in text and in attributes) signed
//!   by a demo broker verifies with TOTAL_PASSED;
//! * any single-byte change inside the document element's signed content
//!   (outside the signature) is rejected.
//!
//! "Change" means a change of the signed content. Replacing one XML
//! whitespace byte by another (space, tab, CR, LF) can leave the canonical
//! form untouched (whitespace between attributes, attribute-value
//! normalisation, CR→LF line-end normalisation): such a substitution is not a
//! change of what was signed, so it is excluded from the second property.

use std::sync::OnceLock;

use proptest::prelude::*;
use tamga_dsig::{sign_enveloped, DigestAlgorithm, NoExternal, SignOptions, SigningKey};
use tamga_pki::{generate, BrokerKind, DemoPki, DemoPkiOptions};
use tamga_policy::{verify_document, Indication, Policy, Report, VerifyRequest};
use tamga_trust::TrustList;
use tamga_xml::ParseLimits;

struct World {
    now: i64,
    pki: DemoPki,
    trust: TrustList,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = generate(&DemoPkiOptions::new(["UZ"], now)).expect("demo PKI");
        let dir = tempfile::tempdir().expect("tempdir");
        pki.write_to(dir.path()).expect("write demo PKI");
        let trust = TrustList::load_dir(&dir.path().join("trust")).expect("trust list");
        World { now, pki, trust }
    })
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn escape_attr(s: &str) -> String {
    escape_text(s).replace('"', "&quot;")
}

/// Text drawn from the five countries' scripts, XML specials, and
/// characters outside the BMP (Old Turkic, mathematical letters, emoji).
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.&<>\"'/«»ƏəŞşĞğİıÖöÜüÇçҚқҒғҰұҮүӘәІіЎўЁёЖжНнӨө中文𐰴𐰇𐱅𐰜𝕏𝔄😀🛃\t]{0,40}"
}

#[derive(Debug, Clone)]
struct Item {
    description: String,
    note: String,
    quantity: u32,
}

fn item() -> impl Strategy<Value = Item> {
    (text(), text(), 0u32..100_000).prop_map(|(description, note, quantity)| Item {
        description,
        note,
        quantity,
    })
}

/// A declaration in the sample format's namespace with generated content.
fn declaration(lrn: &str, party: &str, items: &[Item]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Declaration xmlns=\"urn:tamga:declaration:1\" Id=\"decl-{lrn}\">\n  <Header><LRN>{lrn}</LRN><Declarant note=\"{}\"><Name>{}</Name></Declarant></Header>\n  <GoodsItems count=\"{}\">\n",
        escape_attr(party),
        escape_text(party),
        items.len()
    );
    for (i, it) in items.iter().enumerate() {
        s.push_str(&format!(
            "    <GoodsItem seq=\"{}\" note=\"{}\"><Description>{}</Description><Quantity unit=\"pcs\">{}</Quantity></GoodsItem>\n",
            i + 1,
            escape_attr(&it.note),
            escape_text(&it.description),
            it.quantity
        ));
    }
    s.push_str("  </GoodsItems>\n</Declaration>\n");
    s
}

fn sign(doc: &str, rsa: bool, xades: bool) -> Vec<u8> {
    let uz = world().pki.country("UZ").unwrap();
    let b = uz
        .broker(if rsa {
            BrokerKind::Rsa
        } else {
            BrokerKind::Ecdsa
        })
        .unwrap();
    sign_enveloped(
        doc.as_bytes(),
        &SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![b.cert_der.clone(), uz.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::from_unix_timestamp(world().now).unwrap(),
            limits: ParseLimits::default(),
        },
    )
    .expect("signing a well-formed declaration")
}

fn verify(bytes: &[u8]) -> Report {
    let w = world();
    verify_document(&VerifyRequest {
        bytes,
        trust: &w.trust,
        origin: "UZ".parse().unwrap(),
        at_unix: w.now,
        policy: &Policy::customs(),
        resolver: &NoExternal,
        hmac_secret: None,
    })
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The signed content: from `<Declaration` to the start of `<ds:Signature`.
fn signed_region(signed: &[u8]) -> std::ops::Range<usize> {
    let find = |pat: &[u8]| {
        signed
            .windows(pat.len())
            .position(|w| w == pat)
            .expect("pattern in signed document")
    };
    find(b"<Declaration")..find(b"<ds:Signature")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn sign_then_verify_passes(
        lrn in "UZ26TMG[0-9]{10}",
        party in text(),
        items in prop::collection::vec(item(), 0..6),
        rsa in any::<bool>(),
        xades in any::<bool>(),
    ) {
        let doc = declaration(&lrn, &party, &items);
        let signed = sign(&doc, rsa, xades);
        let r = verify(&signed);
        prop_assert_eq!(r.indication, Indication::TotalPassed, "{:?}: {}\n{}", r.reason, r.message, doc);
        prop_assert!(r.signature_intact);
        prop_assert_eq!(r.signature_format, Some(if xades { "XAdES-B-B" } else { "XML-DSig" }));
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        party in text(),
        items in prop::collection::vec(item(), 1..4),
        rsa in any::<bool>(),
        xades in any::<bool>(),
        position in any::<prop::sample::Index>(),
        new_byte in any::<u8>(),
    ) {
        let doc = declaration("UZ26TMG0000000042", &party, &items);
        let signed = sign(&doc, rsa, xades);
        let region = signed_region(&signed);
        let at = region.start + position.index(region.len());
        let old = signed[at];
        prop_assume!(new_byte != old);
        prop_assume!(!(is_xml_space(old) && is_xml_space(new_byte)));
        let mut changed = signed.clone();
        changed[at] = new_byte;
        let r = verify(&changed);
        prop_assert_ne!(
            r.indication,
            Indication::TotalPassed,
            "byte {} changed from {:?} to {:?} and still verified:\n{}",
            at,
            old as char,
            new_byte as char,
            String::from_utf8_lossy(&changed)
        );
        prop_assert!(r.reason.is_some());
    }
}
