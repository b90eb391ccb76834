//! Differential fuzzing of the streaming canonicaliser (documents above the
//! streaming threshold are digested without a tree): whenever both the tree
//! and the stream produce canonical XML, it must be the same bytes, for every
//! algorithm, both selections, and each element child of the document
//! element left out (the enveloped-signature shape). The stream may hand a
//! document over (`Unsupported`, the tree decides) but never write different
//! bytes, and its scan accepts nothing `Document::parse` refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga_xml::stream::{self, ExcludeChild, KeepChild, NoVisitor, StreamError, StreamSelection};
use tamga_xml::{C14nMethod, Canonicalization, Document, ParseLimits, Selection};

/// Left-out children tried per input: keeps each run fast.
const MAX_EXCLUSIONS: usize = 6;

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
    let mut prefixed = Canonicalization::new(C14nMethod::Exclusive10, false);
    prefixed.inclusive_prefixes = vec!["#default".into(), "ds".into(), "p".into()];
    specs.push(prefixed);
    specs
}

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits {
        max_bytes: 1 << 20,
        max_nodes: 100_000,
        ..ParseLimits::default()
    };
    let doc = match Document::parse(data, &limits) {
        Ok(doc) => doc,
        Err(_) => {
            // Refused by the tree: the streaming scan (which runs before any
            // streamed digest) must not accept it either.
            let keep = KeepChild {
                namespace: "http://www.w3.org/2000/09/xmldsig#",
                local_name: "Signature",
            };
            let got = stream::scan(data, &limits, keep, &mut NoVisitor);
            assert!(
                got.is_err(),
                "the streaming scan accepted what the tree refused"
            );
            return;
        }
    };
    let root = doc.root();
    let children: Vec<_> = root.element_children().take(MAX_EXCLUSIONS).collect();
    for spec in specs() {
        for (selection, tree_selection) in [
            (StreamSelection::Document, Selection::Document),
            (StreamSelection::DocumentElement, Selection::Subtree(root)),
        ] {
            let cases = std::iter::once(None).chain(children.iter().copied().enumerate().map(Some));
            for case in cases {
                let tree = doc.canonicalize_to_vec(tree_selection, case.map(|(_, n)| n), &spec);
                let exclude = case.map(|(ordinal, n)| ExcludeChild {
                    ordinal,
                    namespace: n.namespace().unwrap_or(""),
                    local_name: n.local_name(),
                });
                let mut streamed = Vec::new();
                let got =
                    stream::canonicalize(data, &limits, selection, exclude, &spec, &mut streamed);
                match (tree, got) {
                    (Ok(t), Ok(())) => assert!(
                        t == streamed,
                        "stream and tree differ ({spec:?}, {selection:?}, {exclude:?})"
                    ),
                    (_, Err(StreamError::Unsupported(_))) | (Err(_), Err(_)) => {}
                    (t, s) => panic!(
                        "tree {:?} but stream {s:?} ({spec:?}, {selection:?}, {exclude:?})",
                        t.map(|b| b.len())
                    ),
                }
            }
        }
    }
});
