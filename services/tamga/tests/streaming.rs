//! The streaming route (large documents verified without libxml2's tree of
//! the whole document) against the tree route, which is the reference:
//!
//! * canonical XML: `tamga_xml::stream::canonicalize` must write the bytes
//!   `Document::canonicalize` writes, for every algorithm, comment mode,
//!   InclusiveNamespaces list, selection (document, document element) and
//!   exclusion of a child of the document element — over every conformance
//!   and attack fixture, generated declarations, and random documents;
//! * the scan's skeleton must canonicalise like the full tree wherever it
//!   holds the same elements, and see the same IDs;
//! * verification: `verify_document_with(.., Strategy::Streaming)` must
//!   give the same report as the tree route, field for field, over every
//!   fixture under both profiles, and over signed declarations, intact and
//!   tampered. (The conformance and attack suites also run both routes on
//!   every one of their cases.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, NoExternal, SignOptions, SigningKey};
use tamga_pki::{generate, BrokerKind, DemoPki, DemoPkiOptions};
use tamga_policy::{
    verify_document_with, Policy, Report, Route, Strategy, VerifyRequest, STREAMING_THRESHOLD,
};
use tamga_trust::{CountryCode, TrustFile, TrustList};
use tamga_xml::stream::{self, ExcludeChild, KeepChild, NoVisitor, StreamError, StreamSelection};
use tamga_xml::{C14nMethod, Canonicalization, Document, Node, ParseLimits, Selection};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
const SIGNATURE: KeepChild<'static> = KeepChild {
    namespace: DS,
    local_name: "Signature",
};

// ---------------------------------------------------------------------------
// Canonical XML
// ---------------------------------------------------------------------------

fn specs() -> Vec<Canonicalization> {
    let mut specs = Vec::new();
    for method in [
        C14nMethod::Inclusive10,
        C14nMethod::Inclusive11,
        C14nMethod::Exclusive10,
    ] {
        for with_comments in [false, true] {
            specs.push(Canonicalization::new(method, with_comments));
        }
    }
    for list in [
        &["#default"][..],
        &["a", "ds"],
        &["", "xml", "p", "undeclared"],
    ] {
        let mut spec = Canonicalization::new(C14nMethod::Exclusive10, false);
        spec.inclusive_prefixes = list.iter().map(|s| s.to_string()).collect();
        specs.push(spec);
    }
    specs
}

/// How one document compared.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Canonical forms compared byte for byte.
    compared: usize,
    /// Documents the tree refuses (the scan must refuse them too).
    refused: usize,
    /// Documents the streaming passes hand to the tree.
    unsupported: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Self) {
        self.compared += o.compared;
        self.refused += o.refused;
        self.unsupported += o.unsupported;
    }
}

/// The children of the document element to try leaving out: all of them in
/// a small document, else the first and last few and every signature.
fn exclusions<'d>(root: Node<'d>) -> Vec<(usize, Node<'d>)> {
    let children: Vec<(usize, Node<'d>)> = root.element_children().enumerate().collect();
    if children.len() <= 12 {
        return children;
    }
    let n = children.len();
    children
        .into_iter()
        .filter(|(i, c)| *i < 4 || *i + 4 >= n || c.is(DS, "Signature"))
        .collect()
}

/// Streaming against tree, for everything the streaming passes can be
/// asked; `Err` describes the first difference.
fn differential(bytes: &[u8]) -> Result<Tally, String> {
    let limits = ParseLimits::default();
    let show = || {
        String::from_utf8_lossy(bytes)
            .chars()
            .take(3000)
            .collect::<String>()
    };
    let scanned = stream::scan(bytes, &limits, SIGNATURE, &mut NoVisitor);
    let doc = match Document::parse(bytes, &limits) {
        Ok(doc) => doc,
        Err(e) => {
            return match scanned {
                Err(StreamError::Parse(s)) if s == e => Ok(Tally {
                    refused: 1,
                    ..Tally::default()
                }),
                Err(StreamError::Unsupported(_)) => Ok(Tally {
                    refused: 1,
                    ..Tally::default()
                }),
                other => Err(format!(
                    "the tree refuses ({e}) but the scan gives {other:?}\n{}",
                    show()
                )),
            };
        }
    };
    let mut tally = Tally::default();
    let scan = match scanned {
        Ok(scan) => Some(scan),
        Err(StreamError::Unsupported(_)) => {
            tally.unsupported = 1;
            None
        }
        Err(e) => {
            return Err(format!(
                "the tree accepts, the scan refuses: {e}\n{}",
                show()
            ))
        }
    };
    if let Some(scan) = &scan {
        tally.compared +=
            skeleton_differential(&doc, scan).map_err(|e| format!("{e}\n{}", show()))?;
    }
    let root = doc.root();
    for spec in specs() {
        for (selection, tree_selection) in [
            (StreamSelection::Document, Selection::Document),
            (StreamSelection::DocumentElement, Selection::Subtree(root)),
        ] {
            let cases = std::iter::once(None).chain(exclusions(root).into_iter().map(Some));
            for case in cases {
                let tree = doc.canonicalize_to_vec(tree_selection, case.map(|(_, n)| n), &spec);
                let names = case.map(|(i, n)| (i, n.namespace().unwrap_or(""), n.local_name()));
                let mut streamed = Vec::new();
                let got = stream::canonicalize(
                    bytes,
                    &limits,
                    selection,
                    names.map(|(ordinal, namespace, local_name)| ExcludeChild {
                        ordinal,
                        namespace,
                        local_name,
                    }),
                    &spec,
                    &mut streamed,
                );
                let what = || {
                    format!(
                        "{spec:?}, {selection:?}, leaving out child {:?}",
                        case.map(|(i, n)| (i, n.local_name()))
                    )
                };
                match (tree, got) {
                    (Ok(t), Ok(())) if t == streamed => tally.compared += 1,
                    (Ok(t), Ok(())) => {
                        return Err(format!(
                            "{}:\n tree:   {}\n stream: {}\nof\n{}",
                            what(),
                            String::from_utf8_lossy(&t),
                            String::from_utf8_lossy(&streamed),
                            show()
                        ))
                    }
                    // Both refuse (a relative namespace URI), or streaming
                    // hands over what the scan hands over too.
                    (Err(_), Err(_)) => {}
                    (_, Err(StreamError::Unsupported(_))) if scan.is_none() => {}
                    (t, s) => {
                        return Err(format!(
                            "{}: tree {:?}, stream {s:?}\n{}",
                            what(),
                            t.map(|b| String::from_utf8_lossy(&b).into_owned()),
                            show()
                        ))
                    }
                }
            }
        }
    }
    Ok(tally)
}

/// The skeleton against the tree: same IDs as the full document has, and
/// every element of the kept signature canonicalises as in the full tree
/// (the skeleton's document element with its attributes and namespaces
/// stands in for the real one), with the same path.
fn skeleton_differential(doc: &Document, scan: &stream::Scan) -> Result<usize, String> {
    if scan.id_count() != doc.ids().len() {
        return Err(format!(
            "the scan saw {} IDs, the tree {}",
            scan.id_count(),
            doc.ids().len()
        ));
    }
    let skeleton = scan.skeleton();
    let (sroot, root) = (skeleton.root(), doc.root());
    if sroot.attributes().count() != root.attributes().count() || sroot.path() != root.path() {
        return Err("the skeleton's document element differs".into());
    }
    let Some(ordinal) = scan.kept_ordinal() else {
        return Ok(0);
    };
    let kept = root
        .element_children()
        .nth(ordinal)
        .ok_or("no kept child")?;
    let skept = sroot
        .element_children()
        .next()
        .ok_or("no kept child in the skeleton")?;
    let full: Vec<Node<'_>> = std::iter::once(kept).chain(kept.descendants()).collect();
    let skel: Vec<Node<'_>> = std::iter::once(skept).chain(skept.descendants()).collect();
    if full.len() != skel.len() {
        return Err("the skeleton's signature has other elements".into());
    }
    let mut compared = 0;
    for (f, s) in full.iter().zip(&skel).take(64) {
        if f.path() != s.path() || f.text() != s.text() {
            return Err(format!("{} differs in the skeleton", f.path()));
        }
        for spec in specs() {
            let a = doc.canonicalize_to_vec(Selection::Subtree(*f), None, &spec);
            let b = skeleton.canonicalize_to_vec(Selection::Subtree(*s), None, &spec);
            if a != b {
                return Err(format!(
                    "{} canonicalises differently in the skeleton ({spec:?}):\n tree:     {:?}\n skeleton: {:?}",
                    f.path(),
                    a.map(|v| String::from_utf8_lossy(&v).into_owned()),
                    b.map(|v| String::from_utf8_lossy(&v).into_owned())
                ));
            }
            compared += 1;
        }
        for attr in f.attributes().filter(|a| a.is_id()) {
            if skeleton.element_by_id(&attr.value()) != Some(*s) {
                return Err(format!("ID {} is not in the skeleton", attr.value()));
            }
        }
    }
    Ok(compared)
}

fn xml_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "xml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(Path::new(FIXTURES), &mut files);
    files.sort();
    assert!(files.len() > 60, "only {} fixture files", files.len());
    files
}

#[test]
fn canonical_xml_matches_the_tree_on_every_fixture() {
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for path in xml_files() {
        match differential(&std::fs::read(&path).unwrap()) {
            Ok(t) => tally += t,
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    eprintln!("fixtures: {tally:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(tally.compared > 10_000, "{tally:?}");
}

#[test]
fn canonical_xml_matches_the_tree_on_generated_declarations() {
    let w = world();
    let mut tally = Tally::default();
    for (seq, items) in [(1, 1), (2, 45), (3, 300)] {
        let unsigned = sample(&SampleSpec::new("KZ", "AZ", seq, items));
        for doc in [
            unsigned.clone(),
            sign(w, &unsigned, BrokerKind::Rsa, false),
            sign(w, &unsigned, BrokerKind::Ecdsa, true),
        ] {
            tally += differential(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert_eq!(tally.unsupported + tally.refused, 0, "{tally:?}");
}

// ---------------------------------------------------------------------------
// Random documents
// ---------------------------------------------------------------------------

/// A small, deterministic generator of XML documents that exercise what
/// canonicalisation must get right; most are well-formed.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn coin(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn document(&mut self) -> String {
        let mut s = String::new();
        if self.coin(40) {
            s.push_str(self.pick(&[
                "<?xml version=\"1.0\"?>",
                "<?xml version='1.0' encoding='UTF-8'?>\n",
                "<?xml version=\"1.0\" standalone=\"yes\"?>\r\n",
            ]));
        }
        for _ in 0..self.below(3) {
            self.misc(&mut s);
        }
        self.element(&mut s, 0, &mut vec![]);
        for _ in 0..self.below(3) {
            self.misc(&mut s);
        }
        s
    }

    fn misc(&mut self, s: &mut String) {
        match self.below(3) {
            0 => self.comment(s),
            1 => self.pi(s),
            _ => s.push_str(self.pick(&[" ", "\n", "\r\n", "\t"])),
        }
    }

    fn comment(&mut self, s: &mut String) {
        s.push_str("<!--");
        s.push_str(self.pick(&["", " c ", "a\r\nb", "<&>\"'", "Қазақ", "- x"]));
        s.push_str("-->");
    }

    fn pi(&mut self, s: &mut String) {
        s.push_str("<?");
        s.push_str(self.pick(&["pi", "x-y", "a.b"]));
        s.push_str(self.pick(&["", " ", " data", "  two words ", " a\r\nb", " <&>?"]));
        s.push_str("?>");
    }

    fn text(&mut self, s: &mut String) {
        for _ in 0..1 + self.below(3) {
            s.push_str(self.pick(&[
                "t", " ", "\n", "\r\n", "\r", "\t", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;",
                "&#13;", "&#xD;", "&#9;", "&#38;", "&#x3C;", ">", "]]", "Əz", "𝄞", "\"'",
            ]));
        }
    }

    fn attribute_value(&mut self, s: &mut String, quote: char) {
        for _ in 0..self.below(4) {
            let piece = self.pick(&[
                "v",
                " ",
                "\t",
                "\n",
                "\r\n",
                "&amp;",
                "&lt;",
                "&gt;",
                "&quot;",
                "&apos;",
                "&#9;",
                "&#10;",
                "&#13;",
                "&#38;",
                "&#x26;",
                "&amp;#38;",
                ">",
                "Ə",
                "𝄞",
            ]);
            s.push_str(piece);
        }
        s.push(if quote == '"' { '\'' } else { '"' });
    }

    /// `scope`: prefixes declared by ancestors.
    fn element(&mut self, s: &mut String, depth: usize, scope: &mut Vec<String>) {
        const URIS: &[&str] = &[
            "urn:a",
            "urn:b",
            "http://example.org/x",
            "urn:a&amp;b",
            DS,
            "http://www.w3.org/2001/10/xml-exc-c14n#",
            "urn:x:y?q=1",
        ];
        let mut decls = Vec::new();
        let mut own: Vec<String> = Vec::new();
        for _ in 0..self.below(if depth == 0 { 4 } else { 3 }) {
            let prefix = self.pick(&["", "", "a", "b", "ds", "p"]);
            if own.iter().any(|p| p == prefix) {
                continue;
            }
            let uri = if prefix.is_empty() && self.coin(30) {
                ""
            } else {
                self.pick(URIS)
            };
            own.push(prefix.to_string());
            decls.push(if prefix.is_empty() {
                format!("xmlns=\"{uri}\"")
            } else {
                format!("xmlns:{prefix}=\"{uri}\"")
            });
        }
        let declared: Vec<String> = scope
            .iter()
            .chain(own.iter())
            .filter(|p| !p.is_empty())
            .cloned()
            .collect();
        let prefix = if !declared.is_empty() && self.coin(40) {
            declared[self.below(declared.len())].clone()
        } else {
            String::new()
        };
        let signature = depth == 1 && self.coin(30);
        if signature && !own.iter().any(|p| p == "ds") {
            own.push("ds".into());
            decls.push(format!("xmlns:ds=\"{DS}\""));
        }
        let prefix = if signature { "ds".to_string() } else { prefix };
        let local = if signature {
            "Signature"
        } else {
            self.pick(&["r", "e", "LRN", "x", "Signature", "Reference"])
        };
        let name = if prefix.is_empty() {
            local.to_string()
        } else {
            format!("{prefix}:{local}")
        };
        s.push('<');
        s.push_str(&name);
        let mut used: Vec<String> = Vec::new();
        let mut items: Vec<String> = decls;
        for _ in 0..self.below(4) {
            let attr = if !declared.is_empty() && self.coin(30) {
                format!(
                    "{}:{}",
                    declared[self.below(declared.len())],
                    self.pick(&["a", "z", "Id"])
                )
            } else {
                self.pick(&[
                    "Id",
                    "ID",
                    "a",
                    "b",
                    "z",
                    "A",
                    "xml:lang",
                    "xml:space",
                    "xml:base",
                    "xml:id",
                ])
                .to_string()
            };
            if used.contains(&attr) {
                continue;
            }
            let value_is_id = attr == "Id" || attr == "ID" || attr == "xml:id";
            let mut item = format!("{attr}=");
            let quote = if self.coin(50) { '"' } else { '\'' };
            item.push(quote);
            if value_is_id {
                item.push_str(&format!("id{}", self.below(1000)));
                item.push(quote);
            } else if attr == "xml:space" {
                item.push_str(self.pick(&["preserve", "default"]));
                item.push(quote);
            } else {
                let mut value = String::new();
                self.attribute_value(&mut value, quote);
                // attribute_value closed with the other quote character:
                // replace it by the right one.
                value.pop();
                item.push_str(&value);
                item.push(quote);
            }
            used.push(attr);
            items.push(item);
        }
        // Declarations and attributes in any order.
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
        for item in items {
            s.push_str(self.pick(&[" ", "\n  ", "\t", " \r\n"]));
            s.push_str(&item);
        }
        if depth >= 4 || self.coin(15) {
            s.push_str(self.pick(&["/>", " />"]));
            return;
        }
        s.push('>');
        let before = scope.len();
        scope.extend(own);
        for _ in 0..self.below(5) {
            match self.below(6) {
                0 => self.comment(s),
                1 => self.pi(s),
                2 => {
                    s.push_str("<![CDATA[");
                    s.push_str(self.pick(&["", "cd", "<&>\r\n\"'", "]]", "Ə ]"]));
                    s.push_str("]]>");
                }
                3 => self.text(s),
                _ => self.element(s, depth + 1, scope),
            }
        }
        scope.truncate(before);
        s.push_str("</");
        s.push_str(&name);
        s.push_str(self.pick(&[">", " >"]));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1500,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn canonical_xml_matches_the_tree_on_random_documents(seed in any::<u64>()) {
        let doc = Gen(seed | 1).document();
        if let Err(e) = differential(doc.as_bytes()) {
            prop_assert!(false, "seed {seed}: {e}");
        }
    }
}

/// The generator must mostly make documents both routes accept, with
/// kept signatures, or the property above tests little.
#[test]
fn random_documents_are_mostly_well_formed() {
    let mut tally = Tally::default();
    let mut kept = 0;
    for seed in 1..400u64 {
        let doc = Gen((seed * 7919) | 1).document();
        tally += differential(doc.as_bytes()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        if let Ok(scan) = stream::scan(
            doc.as_bytes(),
            &ParseLimits::default(),
            SIGNATURE,
            &mut NoVisitor,
        ) {
            kept += usize::from(scan.kept_ordinal().is_some());
        }
    }
    eprintln!("random documents: {tally:?}, {kept} with a kept signature");
    assert!(tally.refused + tally.unsupported < 200, "{tally:?}");
    assert!(kept > 20, "{kept}");
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

struct World {
    now: i64,
    pki: DemoPki,
    trust: TrustList,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let pki = generate(&DemoPkiOptions::new(["KZ"], now)).expect("demo PKI");
        let dir = tempfile::tempdir().expect("tempdir");
        pki.write_to(dir.path()).expect("write demo PKI");
        let trust = TrustList::load_dir(&dir.path().join("trust")).expect("trust list");
        World { now, pki, trust }
    })
}

fn sign(w: &World, doc: &str, kind: BrokerKind, xades: bool) -> String {
    let kz = w.pki.country("KZ").unwrap();
    let broker = kz.broker(kind).unwrap();
    let key = SigningKey::from_pkcs8_der(&broker.key_pkcs8_der).unwrap();
    let out = sign_enveloped(
        doc.as_bytes(),
        &key,
        &SignOptions {
            certificates: vec![broker.cert_der.clone(), kz.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::from_unix_timestamp(w.now).unwrap(),
            limits: ParseLimits::default(),
        },
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// Both routes on one request; the streaming route's report must be the
/// tree's.
fn both_routes(req: &VerifyRequest<'_>, what: &str) -> (Report, Route) {
    let (tree, route) = verify_document_with(req, Strategy::Tree);
    assert_eq!(route, Route::Tree);
    let (streamed, route) = verify_document_with(req, Strategy::Streaming);
    assert_eq!(
        streamed, tree,
        "{what}: the streaming route ({route:?}) disagrees with the tree"
    );
    (tree, route)
}

#[test]
fn verification_matches_the_tree_on_every_fixture() {
    let zz: CountryCode = "ZZ".parse().unwrap();
    let trust = TrustList::from_files(vec![TrustFile {
        country: zz,
        name: "README.txt".into(),
        bytes: Vec::new(),
    }])
    .unwrap();
    let at = 1_790_000_000;
    let mut streamed = 0;
    let mut handed_over: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for path in xml_files() {
        let bytes = std::fs::read(&path).unwrap();
        for policy in [Policy::customs(), Policy::generic()] {
            let req = VerifyRequest {
                bytes: &bytes,
                trust: &trust,
                origin: zz,
                at_unix: at,
                policy: &policy,
                resolver: &NoExternal,
                hmac_secret: None,
            };
            match both_routes(&req, &path.display().to_string()).1 {
                Route::Streaming => streamed += 1,
                Route::TreeAfterStreaming(why) => *handed_over.entry(why).or_default() += 1,
                other => panic!("{other:?}"),
            }
        }
    }
    eprintln!("fixtures: {streamed} verified on the streaming route; handed to the tree: {handed_over:#?}");
    assert!(streamed > 60, "{streamed}");
}

#[test]
fn verification_matches_the_tree_on_signed_declarations() {
    let w = world();
    let policy = Policy::customs();
    let kz: CountryCode = "KZ".parse().unwrap();
    let unsigned = sample(&SampleSpec::new("KZ", "AZ", 7, 3));
    let mut docs: Vec<(String, String)> = Vec::new();
    for (kind, xades) in [
        (BrokerKind::Rsa, false),
        (BrokerKind::Ecdsa, true),
        (BrokerKind::Revoked, false),
    ] {
        let signed = sign(w, &unsigned, kind, xades);
        docs.push((format!("{kind:?} xades={xades}"), signed.clone()));
        // Tampering, inside and outside the signature.
        docs.push((
            "changed LRN".into(),
            signed.replacen("KZ26TMG", "KZ26TMH", 1),
        ));
        docs.push((
            "comment after the root".into(),
            format!("{signed}<!--x--><?pi after?>"),
        ));
        docs.push((
            "whitespace in the signature".into(),
            signed.replacen("<ds:SignedInfo>", "<ds:SignedInfo> ", 1),
        ));
        docs.push((
            "a second signature elsewhere".into(),
            signed.replacen(
                "</Header>",
                "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/></Header>",
                1,
            ),
        ));
        docs.push((
            "duplicate ID".into(),
            signed.replacen("<Header", "<Header Id=\"decl-KZ26TMG0000000007\"", 1),
        ));
        docs.push(("truncated".into(), signed[..signed.len() - 5].to_string()));
    }
    let mut streamed = 0;
    for (what, doc) in &docs {
        let req = VerifyRequest {
            bytes: doc.as_bytes(),
            trust: &w.trust,
            origin: kz,
            at_unix: w.now,
            policy: &policy,
            resolver: &NoExternal,
            hmac_secret: None,
        };
        let (report, route) = both_routes(&req, what);
        if what.starts_with("Rsa") || what.starts_with("Ecdsa") {
            assert!(report.passed(), "{what}: {report:?}");
        }
        streamed += usize::from(route == Route::Streaming);
    }
    assert!(streamed >= 12, "{streamed} of {}", docs.len());
}

/// Above the threshold the streaming route is the default, and it verifies
/// a large declaration; below, the tree.
#[test]
fn large_declarations_take_the_streaming_route() {
    let w = world();
    let policy = Policy::customs();
    let kz: CountryCode = "KZ".parse().unwrap();
    for (items, want) in [(45, Route::Tree), (600, Route::Streaming)] {
        let doc = sign(
            w,
            &sample(&SampleSpec::new("KZ", "AZ", 9, items)),
            BrokerKind::Rsa,
            true,
        );
        assert_eq!(doc.len() > STREAMING_THRESHOLD, want == Route::Streaming);
        let req = VerifyRequest {
            bytes: doc.as_bytes(),
            trust: &w.trust,
            origin: kz,
            at_unix: w.now,
            policy: &policy,
            resolver: &NoExternal,
            hmac_secret: None,
        };
        let (report, route) = verify_document_with(&req, Strategy::Auto);
        assert_eq!(route, want);
        assert!(report.passed(), "{report:?}");
        assert_eq!(both_routes(&req, "large").0, report);
    }
}
