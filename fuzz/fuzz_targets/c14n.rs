//! Fuzzes hardened parsing and canonicalisation (`tamga_xml`): every input
//! either is refused by `Document::parse` or canonicalises under every
//! algorithm without panicking; and canonicalising a subtree, with or
//! without an excluded subtree, gives exactly the bytes of libxml2's own
//! whole-tree walk (the reference for Tamga's walk from the subtree's apex).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tamga_xml::{C14nMethod, Canonicalization, Document, Node, ParseLimits, Selection};

/// Subtrees compared per input: keeps each run fast on large inputs.
const MAX_SUBTREES: usize = 24;

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
    let Ok(doc) = Document::parse(data, &limits) else {
        return;
    };
    let root = doc.root();
    let specs = specs();
    for spec in &specs {
        let mut out = Vec::new();
        let _ = doc.canonicalize(Selection::Document, None, spec, &mut out);
    }
    // The enveloped-signature shape: the whole document minus its last
    // element child.
    let last = root.element_children().last();
    let subtrees: Vec<Node<'_>> = std::iter::once(root)
        .chain(root.descendants())
        .take(MAX_SUBTREES)
        .collect();
    for (i, apex) in subtrees.iter().enumerate() {
        let spec = &specs[i % specs.len()];
        for exclude in [None, last, subtrees.get(i + 1).copied()] {
            let mut fast = Vec::new();
            let fast = doc
                .canonicalize(Selection::Subtree(*apex), exclude, spec, &mut fast)
                .map(|()| fast);
            let mut full = Vec::new();
            let full = doc
                .canonicalize_full_walk(Selection::Subtree(*apex), exclude, spec, &mut full)
                .map(|()| full);
            if fast != full {
                panic!("apex walk differs from the full walk at {apex:?} (exclude {exclude:?}, {spec:?})");
            }
        }
    }
});
