//! The streaming route: verifying a large declaration without libxml2's
//! tree of the whole document (a tree costs more than ten times the size of
//! a markup-heavy declaration; this route costs the signature's tree and
//! the list of IDs).
//!
//! 1. [`tamga_xml::stream::scan`] parses the document once: the checks of
//!    `Document::parse`, every ID, every `ds:Signature`, the declaration's
//!    identity ([`IdentityReader`]), and a *skeleton*: the document element
//!    with the enveloped `ds:Signature` as its only child.
//! 2. Every check of the tree route then runs on the skeleton, through the
//!    same code (`verify::check_signature`): the signature, its XAdES
//!    properties, its counter-signatures and everything they reference
//!    are in the skeleton, exactly as in the whole document, and so is the
//!    document element with its attributes and namespace declarations.
//! 3. The references to the document itself (`URI=""`, `#id` of the
//!    document element) are digested by [`tamga_xml::stream::canonicalize`]
//!    in a second parse, straight into the digest.
//!
//! The skeleton must not hide anything a check of the whole document would
//! see. So the route only handles documents whose signatures all sit in
//! one `ds:Signature` child of the document element, whose references by
//! ID point into the skeleton, and whose document references use only the
//! enveloped-signature and canonicalisation transforms; anything else —
//! and whatever the parse leaves to the tree (limits, duplicate IDs) — is
//! handed to the tree route, which decides as it always did. A document
//! the parser refuses is refused here with the parser's error.

use std::cell::Cell;
use std::io::Write;

use tamga_dsig::reference::{digest_reference, reference_digest};
use tamga_dsig::{
    find_signatures, ExternalResolver, ReferenceError, ReferenceFailure, ReferenceOutcome,
    SignatureModel, Transform,
};
use tamga_xml::stream::{
    self, ElementStart, ExcludeChild, KeepChild, StreamError, StreamSelection, Visitor,
};
use tamga_xml::{C14nMethod, Canonicalization, Document, Node, ParseLimits};

use crate::config::Profile;
use crate::reason::Reason;
use crate::report::Report;
use crate::verify::{check_signature, ReferenceDigests, VerifyRequest};

const DSIG_NS: &str = tamga_dsig::algorithms::DSIG_NS;

const SIGNATURE: KeepChild<'static> = KeepChild {
    namespace: DSIG_NS,
    local_name: "Signature",
};

/// What the streaming route made of a document.
pub(crate) enum Attempt {
    /// The verdict (the same the tree route gives).
    Done(Result<String, Reason>),
    /// Not handled here, for this reason: the tree route decides.
    Fallback(&'static str),
}

fn fallback(e: StreamError) -> Attempt {
    match e {
        StreamError::Parse(e) => Attempt::Done(Err(Reason::Xml(e))),
        StreamError::Unsupported(why) => Attempt::Fallback(why),
        _ => Attempt::Fallback("the streaming parse failed"),
    }
}

pub(crate) fn check(
    req: &VerifyRequest<'_>,
    fetched_ocsp: &[&[u8]],
    report: &mut Report,
) -> Attempt {
    let policy = req.policy;
    let customs = policy.profile == Profile::Customs;
    let limits = policy.parse_limits();
    let mut identity = IdentityReader::default();
    let scan = match stream::scan(req.bytes, &limits, SIGNATURE, &mut identity) {
        Ok(scan) => scan,
        Err(e) => return fallback(e),
    };
    report.declaration = Some(identity.finish());

    // Where the signatures are: as the tree route decides, from counts.
    match scan.top_level() {
        0 => return Attempt::Done(Err(Reason::NoSignature)),
        1 => {}
        count if customs => return Attempt::Done(Err(Reason::MultipleSignatures { count })),
        _ => return Attempt::Fallback("several signatures"),
    }
    if scan.first_top_level_depth() != Some(2) {
        return Attempt::Fallback("the signature is not a child of the document element");
    }
    let (Some(ordinal), doc) = (scan.kept_ordinal(), scan.skeleton()) else {
        return Attempt::Fallback("no signature was kept");
    };
    let root = doc.root();
    let Some(element) = root.element_children().next() else {
        return Attempt::Fallback("no signature was kept");
    };
    let all = find_signatures(doc);
    if !element.is(DSIG_NS, "Signature") || all.len() != scan.matching() {
        return Attempt::Fallback("a signature outside the kept one");
    }
    if let Some(why) = outside_references(doc, &scan) {
        return Attempt::Fallback(why);
    }

    let digests = StreamedDigests {
        bytes: req.bytes,
        signature: element,
        exclude: ExcludeChild {
            ordinal,
            namespace: DSIG_NS,
            local_name: "Signature",
        },
        abort: Cell::new(None),
    };
    let outcome = check_signature(req, fetched_ocsp, report, doc, element, &all, &digests);
    match digests.abort.get() {
        Some(why) => Attempt::Fallback(why),
        None => Attempt::Done(outcome),
    }
}

/// A reason to hand the document to the tree if some `Reference` in the
/// skeleton names, by ID, an element of the document the skeleton does not
/// hold: the checks would not find it where the tree route does.
fn outside_references(doc: &Document, scan: &stream::Scan) -> Option<&'static str> {
    let root = doc.root();
    for n in std::iter::once(root).chain(root.descendants()) {
        if n.local_name() != "Reference" {
            continue;
        }
        let Some(uri) = n.attribute("URI") else {
            continue;
        };
        let Some(fragment) = uri.strip_prefix('#') else {
            continue;
        };
        let mut ids = vec![fragment];
        if let Some(inner) = xpointer_id(fragment) {
            ids.push(inner);
        }
        if ids
            .iter()
            .any(|id| scan.has_id(id) && doc.element_by_id(id).is_none())
        {
            return Some("a reference to an element outside the signature");
        }
    }
    None
}

/// The ID in `xpointer(id('x'))`, as `tamga_dsig::resolve_uri` reads it.
fn xpointer_id(fragment: &str) -> Option<&str> {
    fragment
        .strip_prefix("xpointer(id(")
        .and_then(|s| s.strip_suffix("))"))
        .map(|inner| inner.trim_matches(|c| c == '\'' || c == '"'))
}

/// The digests of the declarant signature's references: those of the
/// document by a second streaming parse, the others (which point into the
/// signature) by the tree mechanism on the skeleton.
struct StreamedDigests<'a, 'd> {
    bytes: &'a [u8],
    /// The skeleton's signature: the one whose references these are.
    signature: Node<'d>,
    exclude: ExcludeChild<'static>,
    /// Set when a reference needs what only the tree route does; the
    /// outcome is then discarded.
    abort: Cell<Option<&'static str>>,
}

/// Inclusive c14n without comments: what a node-set becomes when no
/// transform canonicalises it (as `tamga_dsig::reference`).
const DEFAULT_C14N: Canonicalization = Canonicalization {
    method: C14nMethod::Inclusive10,
    with_comments: false,
    inclusive_prefixes: Vec::new(),
};

impl StreamedDigests<'_, '_> {
    /// Whether `uri` points at the whole document or its document element,
    /// and whether comments survive (as `tamga_dsig::resolve_uri` decides).
    fn document_target(doc: &Document, uri: &str) -> Option<(StreamSelection, bool)> {
        if uri.is_empty() {
            return Some((StreamSelection::Document, false));
        }
        let fragment = uri.strip_prefix('#')?;
        if fragment == "xpointer(/)" {
            return Some((StreamSelection::Document, true));
        }
        let (id, comments) = match xpointer_id(fragment) {
            Some(id) => (id, true),
            None if fragment.starts_with("xpointer(") => return None,
            None => (fragment, false),
        };
        (doc.element_by_id(id) == Some(doc.root()))
            .then_some((StreamSelection::DocumentElement, comments))
    }

    fn give_up(&self, why: &'static str) -> Result<Vec<u8>, ReferenceError> {
        self.abort.set(Some(why));
        Err(ReferenceError::NoUri)
    }

    /// `tamga_dsig::reference::digest_reference` for a reference to the
    /// document, with the node-set transforms it runs there.
    fn digest_document(
        &self,
        reference: &tamga_dsig::Reference<'_>,
        selection: StreamSelection,
        comments: bool,
        limits: &ParseLimits,
    ) -> Result<Vec<u8>, ReferenceError> {
        let context = reference_digest(reference)?;
        let last = reference.transforms.len().checked_sub(1);
        let mut enveloped = false;
        let mut spec = DEFAULT_C14N;
        for (i, t) in reference.transforms.iter().enumerate() {
            match t {
                Transform::Enveloped => enveloped = true,
                Transform::C14n(c) if Some(i) == last => {
                    spec = c.clone();
                    spec.with_comments = c.with_comments && comments;
                }
                _ => return self.give_up("a document reference with other transforms"),
            }
        }
        let mut sink = DigestWriter(context);
        let exclude = enveloped.then_some(self.exclude);
        match stream::canonicalize(self.bytes, limits, selection, exclude, &spec, &mut sink) {
            Ok(()) => Ok(sink.0.finish().as_ref().to_vec()),
            Err(_) => self.give_up("the streaming canonicalisation failed"),
        }
    }
}

impl ReferenceDigests for StreamedDigests<'_, '_> {
    fn check(
        &self,
        doc: &Document,
        sig: &SignatureModel<'_>,
        resolver: &dyn ExternalResolver,
        limits: &ParseLimits,
    ) -> Vec<ReferenceOutcome> {
        if sig.element != self.signature {
            self.abort.set(Some("digests of another signature"));
            return Vec::new();
        }
        sig.references
            .iter()
            .enumerate()
            .map(|(index, r)| {
                let target = r
                    .uri
                    .as_deref()
                    .and_then(|uri| Self::document_target(doc, uri));
                let digest = match target {
                    Some((selection, comments)) => {
                        self.digest_document(r, selection, comments, limits)
                    }
                    None => digest_reference(doc, sig.element, r, resolver, limits),
                };
                let result = match digest {
                    Ok(d) if constant_eq(&d, &r.digest_value) => Ok(()),
                    Ok(_) => Err(ReferenceFailure::DigestMismatch),
                    Err(e) => Err(ReferenceFailure::Error(e)),
                };
                ReferenceOutcome {
                    index,
                    uri: r.uri.clone(),
                    result,
                }
            })
            .collect()
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Streams into a digest without buffering the canonical form.
struct DigestWriter(tamga_dsig::algorithms::DigestContext);

impl Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `tamga_declaration::identity`, read from the parse events: the document
/// element's `Id` (or `ID`), and the text of the first `LRN`, `Origin` and
/// `Destination` elements (any namespace) outside any `ds:Signature`, in
/// the tree walk's order (document order, not looking inside those three or
/// inside a signature).
#[derive(Debug, Default)]
pub(crate) struct IdentityReader {
    identity: tamga_declaration::Identity,
    depth: usize,
    /// Depth of the element whose subtree the walk does not enter.
    skip: Option<usize>,
    collecting: Option<Collect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Lrn,
    Origin,
    Destination,
}

/// The trimmed text of one element's own text children, up to the 128
/// bytes the identity keeps, without holding more of it than that.
#[derive(Debug)]
struct Collect {
    slot: Slot,
    /// Bytes of an incomplete UTF-8 sequence at the end of the last piece.
    pending: Vec<u8>,
    /// Still skipping leading whitespace.
    leading: bool,
    /// The first bytes of the text after the leading whitespace.
    kept: Vec<u8>,
    /// Length of that text so far, and up to its last non-whitespace
    /// character.
    len: usize,
    trimmed: usize,
}

/// The most of an identity field the tree route keeps.
const FIELD_LIMIT: usize = 128;

impl Collect {
    fn new(slot: Slot) -> Self {
        Self {
            slot,
            pending: Vec::new(),
            leading: true,
            kept: Vec::new(),
            len: 0,
            trimmed: 0,
        }
    }

    fn push(&mut self, piece: &[u8]) {
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.extend_from_slice(piece);
        let mut rest: &[u8] = &bytes;
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    self.chars(text);
                    return;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    self.chars(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // Completed by the next piece.
                        None => {
                            self.pending = tail.to_vec();
                            return;
                        }
                        // Read as U+FFFD, as the tree's lossy conversion
                        // does (libxml2 only hands out UTF-8: never here).
                        Some(n) => {
                            self.chars("\u{FFFD}");
                            rest = tail.get(n..).unwrap_or_default();
                        }
                    }
                }
            }
        }
    }

    fn chars(&mut self, text: &str) {
        for c in text.chars() {
            if self.leading && c.is_whitespace() {
                continue;
            }
            self.leading = false;
            let at = self.len;
            self.len += c.len_utf8();
            if !c.is_whitespace() {
                self.trimmed = self.len;
            }
            if at < FIELD_LIMIT {
                let mut buf = [0u8; 4];
                self.kept
                    .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }

    fn finish(mut self) -> Option<String> {
        if !self.pending.is_empty() {
            self.pending.clear();
            self.chars("\u{FFFD}");
        }
        if self.trimmed == 0 || self.trimmed > FIELD_LIMIT {
            return None;
        }
        let text = self.kept.get(..self.trimmed)?;
        String::from_utf8(text.to_vec()).ok()
    }
}

impl IdentityReader {
    pub(crate) fn finish(self) -> tamga_declaration::Identity {
        self.identity
    }

    fn slot(&mut self, slot: Slot) -> &mut Option<String> {
        match slot {
            Slot::Lrn => &mut self.identity.lrn,
            Slot::Origin => &mut self.identity.origin,
            Slot::Destination => &mut self.identity.destination,
        }
    }
}

impl Visitor for IdentityReader {
    fn start_element(&mut self, e: &ElementStart<'_>) {
        self.depth = e.depth;
        if e.depth == 1 {
            self.identity.document_id = e
                .attribute("Id")
                .or_else(|| e.attribute("ID"))
                .map(str::to_string);
            return;
        }
        if self.skip.is_some() {
            return;
        }
        if e.namespace == Some(DSIG_NS) && e.local_name == "Signature" {
            self.skip = Some(e.depth);
            return;
        }
        let slot = match e.local_name {
            "LRN" => Slot::Lrn,
            "Origin" => Slot::Origin,
            "Destination" => Slot::Destination,
            _ => return,
        };
        self.skip = Some(e.depth);
        if self.slot(slot).is_none() {
            self.collecting = Some(Collect::new(slot));
        }
    }

    fn end_element(&mut self) {
        if self.skip == Some(self.depth) {
            self.skip = None;
            if let Some(c) = self.collecting.take() {
                let slot = c.slot;
                if let Some(text) = c.finish() {
                    *self.slot(slot) = Some(text);
                }
            }
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn text(&mut self, text: &[u8]) {
        // Only the collected element's own text children count.
        if let (Some(c), Some(at)) = (self.collecting.as_mut(), self.skip) {
            if self.depth == at {
                c.push(text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(xml: &str) -> (tamga_declaration::Identity, tamga_declaration::Identity) {
        let limits = ParseLimits::default();
        let doc = Document::parse(xml.as_bytes(), &limits).unwrap();
        let mut reader = IdentityReader::default();
        stream::scan(xml.as_bytes(), &limits, SIGNATURE, &mut reader).unwrap();
        (tamga_declaration::identity(&doc), reader.finish())
    }

    #[test]
    fn identity_matches_the_tree_walk() {
        let long = "x".repeat(FIELD_LIMIT);
        let cases = [
            "<D Id='d'><H><LRN> L1 </LRN><Origin>KZ</Origin></H><Destination>AZ</Destination></D>".to_string(),
            "<D ID='d'><LRN>  </LRN><LRN>second<x>no</x> part</LRN></D>".to_string(),
            "<D xmlns:ds='http://www.w3.org/2000/09/xmldsig#'><ds:Signature><LRN>in</LRN></ds:Signature><LRN>out</LRN></D>".to_string(),
            "<D><LRN><Origin>inner</Origin></LRN><Origin><![CDATA[ c ]]>d<!--x-->e</Origin></D>".to_string(),
            format!("<D><LRN>{long}</LRN><Origin> {long}y </Origin><Destination>{}{long}</Destination></D>", " ".repeat(300)),
            format!("<D><LRN>\u{3000}Қазақстан {}\u{a0}</LRN></D>", "Ə".repeat(63)),
            format!("<D><LRN>{}</LRN></D>", "Ə".repeat(65)),
            "<LRN><LRN>root</LRN></LRN>".to_string(),
        ];
        for xml in &cases {
            let (tree, streamed) = both(xml);
            assert_eq!(tree, streamed, "{xml}");
        }
    }
}
