//! Large documents without their tree: the same hardened libxml2 parse as
//! [`Document::parse`], read through SAX callbacks instead.
//!
//! libxml2's tree costs about 240 bytes per element and text node, more than
//! ten times the size of a markup-heavy declaration. Verifying an enveloped
//! signature needs the tree of the signature only; the rest of the document
//! is needed once, as canonical octets for the digest. So:
//!
//! * [`scan`] parses once, checks what [`Document::parse`] checks (limits,
//!   unique IDs) without a tree, and returns a *skeleton*: a [`Document`]
//!   holding the document element (its attributes and namespace
//!   declarations) and, as its only child, one chosen child element (the
//!   `ds:Signature`), built by libxml2's own SAX2 tree builder exactly as
//!   the full parse would build them.
//! * [`canonicalize`] parses again and writes the canonical form of the
//!   whole document, or of its document element, optionally without one
//!   child of the document element (the enveloped-signature transform),
//!   straight into a writer.
//!
//! The parser is libxml2 in both passes, called the way `Document::parse`
//! calls it (same entry point, options, DOCTYPE hook and well-formedness
//! test); only the canonical serialisation is Tamga's own, and it follows
//! libxml2's `c14n.c` decision by decision so that its bytes are those of
//! [`Document::canonicalize`] (the differential tests hold it to that).
//!
//! Whatever the streaming passes do not handle exactly — a limit exceeded, a
//! duplicate ID, a namespace error, a relative namespace URI — is
//! [`StreamError::Unsupported`]: the caller then uses the tree, which gives
//! the answer (usually a refusal) the tree always gave.

use std::collections::{HashMap, HashSet};
use std::ffi::{c_int, c_void, CStr};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use libxml::bindings as ffi;

use crate::c14n::{C14nMethod, Canonicalization};
use crate::document::{init_libxml2, parser_failure, precheck, read_memory, Document};
use crate::error::ParseError;
use crate::limits::ParseLimits;
use crate::XML_NAMESPACE;

/// Why a streaming pass gave no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The document is refused, with the error [`Document::parse`] gives
    /// (the same parser, the same options, the same input).
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Not handled without the tree; [`Document::parse`] and the tree
    /// decide. Never a verdict by itself.
    #[error("not handled by the streaming path: {0}")]
    Unsupported(&'static str),
    /// The writer refused canonical output.
    #[error("writing canonical output failed")]
    Output,
}

/// The element a [`scan`] keeps in its skeleton: the first child of the
/// document element with this name. Elements with this name anywhere are
/// counted (see [`Scan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepChild<'a> {
    pub namespace: &'a str,
    pub local_name: &'a str,
}

/// An attribute of an element, as the tree would hold it (namespace
/// declarations are not attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAttribute<'a> {
    pub local_name: &'a str,
    pub namespace: Option<&'a str>,
    pub value: String,
}

/// An element start, for a [`Visitor`].
#[derive(Debug)]
pub struct ElementStart<'a> {
    /// The document element is depth 1.
    pub depth: usize,
    pub local_name: &'a str,
    pub namespace: Option<&'a str>,
    pub attributes: &'a [StreamAttribute<'a>],
}

impl ElementStart<'_> {
    /// The value of the un-namespaced attribute `name`, as
    /// [`crate::Node::attribute`] gives it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.local_name == name)
            .map(|a| a.value.as_str())
    }
}

/// Sees the document's elements and text during [`scan`], in document order.
pub trait Visitor {
    fn start_element(&mut self, element: &ElementStart<'_>);
    fn end_element(&mut self);
    /// Character data or a CDATA section, in the element last started and
    /// not yet ended (possibly in several pieces).
    fn text(&mut self, text: &[u8]);
}

/// A [`Visitor`] that looks at nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVisitor;

impl Visitor for NoVisitor {
    fn start_element(&mut self, _element: &ElementStart<'_>) {}
    fn end_element(&mut self) {}
    fn text(&mut self, _text: &[u8]) {}
}

/// What one streaming pass over a document found.
#[derive(Debug)]
pub struct Scan {
    skeleton: Document,
    ids: HashSet<Box<str>>,
    kept: Option<usize>,
    matching: usize,
    top_level: usize,
    first_top_level_depth: Option<usize>,
}

impl Scan {
    /// The document element, with the kept child (if any) as its only
    /// child. Its IDs are those of the full document's document element and
    /// kept child.
    pub fn skeleton(&self) -> &Document {
        &self.skeleton
    }

    /// Which element child of the document element (0 = the first) was
    /// kept, if one was.
    pub fn kept_ordinal(&self) -> Option<usize> {
        self.kept
    }

    /// True when some element of the full document has this ID.
    pub fn has_id(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// How many IDs the full document has.
    pub fn id_count(&self) -> usize {
        self.ids.len()
    }

    /// Elements named like the kept child, anywhere in the document.
    pub fn matching(&self) -> usize {
        self.matching
    }

    /// Of those, the ones with no such element among their ancestors.
    pub fn top_level(&self) -> usize {
        self.top_level
    }

    /// The depth (document element = 1) of the first top-level one.
    pub fn first_top_level_depth(&self) -> Option<usize> {
        self.first_top_level_depth
    }
}

/// Which part of the document [`canonicalize`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamSelection {
    /// The whole document, as [`crate::Selection::Document`].
    Document,
    /// The document element and its descendants, as
    /// [`crate::Selection::Subtree`] of the root.
    DocumentElement,
}

/// A child of the document element left out of the canonical form (the
/// enveloped-signature transform), named so that a mismatch between the two
/// passes is an error rather than a wrong digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExcludeChild<'a> {
    /// Index among the document element's element children, from 0.
    pub ordinal: usize,
    /// Empty for an element in no namespace.
    pub namespace: &'a str,
    pub local_name: &'a str,
}

/// Parses `bytes` once without a tree: the checks of [`Document::parse`],
/// every ID, the elements named `keep`, and a skeleton holding the document
/// element and its first child named `keep`. `visitor` sees every element
/// and text.
pub fn scan(
    bytes: &[u8],
    limits: &ParseLimits,
    keep: KeepChild<'_>,
    visitor: &mut dyn Visitor,
) -> Result<Scan, StreamError> {
    let mut scanner = Scanner {
        limits,
        keep,
        visitor,
        depth: 0,
        nodes: 0,
        last: Last::Other,
        text_run: 0,
        ids: HashSet::new(),
        root_children: 0,
        kept: None,
        in_kept: false,
        match_depths: Vec::new(),
        matching: 0,
        top_level: 0,
        first_top_level_depth: None,
    };
    let doc = drive(bytes, limits, &mut scanner)?;
    let Some(doc) = doc else {
        return Err(StreamError::Unsupported("no skeleton was built"));
    };
    let skeleton = Document::from_parsed(doc, limits).map_err(|_| {
        // The full document passed these checks; its skeleton cannot fail
        // them, but if it did the tree decides.
        StreamError::Unsupported("the skeleton does not pass the document checks")
    })?;
    Ok(Scan {
        skeleton,
        ids: scanner.ids,
        kept: scanner.kept,
        matching: scanner.matching,
        top_level: scanner.top_level,
        first_top_level_depth: scanner.first_top_level_depth,
    })
}

/// Writes the canonical form of `selection` of `bytes`, without `exclude`,
/// into `out`: the bytes [`Document::canonicalize`] writes for the same
/// selection and exclusion, without building the tree.
pub fn canonicalize(
    bytes: &[u8],
    limits: &ParseLimits,
    selection: StreamSelection,
    exclude: Option<ExcludeChild<'_>>,
    c14n: &Canonicalization,
    out: &mut dyn Write,
) -> Result<(), StreamError> {
    let mut canon = Canonicalizer::new(selection, exclude, c14n, out)?;
    let doc = drive(bytes, limits, &mut canon)?;
    if let Some(doc) = doc {
        // SAFETY: the document libxml2 returned is ours; this pass adds no
        // nodes to it, so it is an empty shell.
        unsafe { ffi::xmlFreeDoc(doc.as_ptr()) }
    }
    if canon.skipped.is_some() || canon.depth != 0 || !canon.saw_root {
        return Err(StreamError::Unsupported("the document ended unexpectedly"));
    }
    if exclude.is_some() && !canon.excluded {
        return Err(StreamError::Unsupported(
            "the element to exclude was not found",
        ));
    }
    canon.out.flush()
}

// ---------------------------------------------------------------------------
// The SAX driver
// ---------------------------------------------------------------------------

/// One element start as libxml2's SAX2 interface reports it.
struct RawStart {
    localname: *const ffi::xmlChar,
    prefix: *const ffi::xmlChar,
    uri: *const ffi::xmlChar,
    nb_namespaces: c_int,
    namespaces: *mut *const ffi::xmlChar,
    nb_attributes: c_int,
    nb_defaulted: c_int,
    attributes: *mut *const ffi::xmlChar,
}

/// A namespace declaration: prefix (empty for the default namespace) and
/// URI, both exactly as libxml2 stores them in the tree.
struct RawNs<'a> {
    prefix: &'a [u8],
    uri: &'a [u8],
}

/// An attribute with its value still as the parser reported it.
struct RawAttr<'a> {
    local: &'a [u8],
    prefix: Option<&'a [u8]>,
    uri: Option<&'a [u8]>,
    value: &'a [u8],
}

impl RawStart {
    fn local(&self) -> &[u8] {
        bytes_of(self.localname)
    }

    fn prefix(&self) -> Option<&[u8]> {
        (!self.prefix.is_null()).then(|| bytes_of(self.prefix))
    }

    fn uri(&self) -> Option<&[u8]> {
        (!self.uri.is_null()).then(|| bytes_of(self.uri))
    }

    fn namespaces(&self) -> impl Iterator<Item = RawNs<'_>> {
        let n = usize::try_from(self.nb_namespaces).unwrap_or(0);
        (0..n).map(move |i| {
            // SAFETY: libxml2 passes `nb_namespaces` (prefix, URI) pairs.
            let (prefix, uri) =
                unsafe { (*self.namespaces.add(2 * i), *self.namespaces.add(2 * i + 1)) };
            RawNs {
                prefix: if prefix.is_null() {
                    b""
                } else {
                    bytes_of(prefix)
                },
                uri: if uri.is_null() { b"" } else { bytes_of(uri) },
            }
        })
    }

    fn attributes(&self) -> impl Iterator<Item = RawAttr<'_>> {
        let n = usize::try_from(self.nb_attributes).unwrap_or(0);
        (0..n).map(move |i| {
            // SAFETY: libxml2 passes `nb_attributes` records of five
            // pointers: local name, prefix, URI, value start, value end.
            unsafe {
                let rec = self.attributes.add(5 * i);
                let (local, prefix, uri, start, end) =
                    (*rec, *rec.add(1), *rec.add(2), *rec.add(3), *rec.add(4));
                let len = usize::try_from(end.offset_from(start)).unwrap_or(0);
                RawAttr {
                    local: bytes_of(local),
                    prefix: (!prefix.is_null()).then(|| bytes_of(prefix)),
                    uri: (!uri.is_null()).then(|| bytes_of(uri)),
                    value: if start.is_null() {
                        b""
                    } else {
                        std::slice::from_raw_parts(start, len)
                    },
                }
            }
        })
    }
}

/// A NUL-terminated libxml2 string as bytes (empty for null).
fn bytes_of<'a>(p: *const ffi::xmlChar) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: libxml2 strings passed to SAX callbacks are NUL-terminated and
    // live at least until the callback returns.
    unsafe { CStr::from_ptr(p.cast()) }.to_bytes()
}

/// An attribute value as the tree holds it.
///
/// Without entity substitution (Tamga never asks for it) libxml2 reports an
/// attribute value with every `&` written as the character reference
/// `&#38;`, and its tree builder decodes that reference when it makes the
/// attribute's text; nothing else can be escaped, since there are no
/// entities. Any other `&` means the input is not what this code expects.
fn attribute_value(raw: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, StreamError> {
    const AMP: &[u8] = b"&#38;";
    if !raw.contains(&b'&') {
        return Ok(std::borrow::Cow::Borrowed(raw));
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.iter().position(|&b| b == b'&') {
        out.extend_from_slice(&rest[..at]);
        if !rest[at..].starts_with(AMP) {
            return Err(StreamError::Unsupported(
                "an attribute value holds an unexpected reference",
            ));
        }
        out.push(b'&');
        rest = &rest[at + AMP.len()..];
    }
    out.extend_from_slice(rest);
    Ok(std::borrow::Cow::Owned(out))
}

fn utf8(bytes: &[u8]) -> Result<&str, StreamError> {
    std::str::from_utf8(bytes).map_err(|_| StreamError::Unsupported("a name is not UTF-8"))
}

/// A pass over the document: what the SAX callbacks call.
trait Handler {
    fn start(&mut self, ctx: *mut c_void, e: &RawStart) -> Result<(), StreamError>;
    fn end(
        &mut self,
        ctx: *mut c_void,
        localname: *const ffi::xmlChar,
        prefix: *const ffi::xmlChar,
        uri: *const ffi::xmlChar,
    ) -> Result<(), StreamError>;
    fn characters(
        &mut self,
        ctx: *mut c_void,
        text: *const ffi::xmlChar,
        len: c_int,
    ) -> Result<(), StreamError>;
    fn cdata(
        &mut self,
        ctx: *mut c_void,
        text: *const ffi::xmlChar,
        len: c_int,
    ) -> Result<(), StreamError>;
    fn comment(&mut self, ctx: *mut c_void, text: *const ffi::xmlChar) -> Result<(), StreamError>;
    fn pi(
        &mut self,
        ctx: *mut c_void,
        target: *const ffi::xmlChar,
        data: *const ffi::xmlChar,
    ) -> Result<(), StreamError>;
}

/// Lives in the parser context's `_private` for the duration of a parse.
struct Driver<'h> {
    handler: &'h mut dyn Handler,
    saw_doctype: bool,
    failure: Option<StreamError>,
}

/// Runs `f` on the pass behind `ctx`, unless a callback already failed; a
/// failure (or a panic, which must not unwind into C) stops the parser.
fn dispatch(ctx: *mut c_void, f: impl FnOnce(&mut dyn Handler) -> Result<(), StreamError>) {
    let ctxt = ctx as ffi::xmlParserCtxtPtr;
    if ctxt.is_null() {
        return;
    }
    // SAFETY: libxml2 passes the context `drive` created as the user data;
    // `_private` points at `drive`'s live `Driver` until the parse returns.
    let driver = unsafe { (*ctxt)._private as *mut Driver<'_> };
    if driver.is_null() {
        return;
    }
    // SAFETY: as above; libxml2 calls back on this thread, one at a time.
    let driver = unsafe { &mut *driver };
    if driver.failure.is_some() {
        return;
    }
    let handler = &mut *driver.handler;
    let failure = match catch_unwind(AssertUnwindSafe(|| f(handler))) {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e,
        Err(_) => StreamError::Unsupported("internal error while streaming"),
    };
    driver.failure = Some(failure);
    // SAFETY: the live context this callback was called with.
    unsafe { ffi::xmlStopParser(ctxt) }
}

/// SAX hook for `<!DOCTYPE`: as `Document::parse`'s, stop before the
/// internal subset is read.
unsafe extern "C" fn on_doctype(
    ctx: *mut c_void,
    _name: *const ffi::xmlChar,
    _external_id: *const ffi::xmlChar,
    _system_id: *const ffi::xmlChar,
) {
    let ctxt = ctx as ffi::xmlParserCtxtPtr;
    if ctxt.is_null() {
        return;
    }
    // SAFETY: as in `dispatch`.
    unsafe {
        let driver = (*ctxt)._private as *mut Driver<'_>;
        if !driver.is_null() {
            (*driver).saw_doctype = true;
        }
        ffi::xmlStopParser(ctxt);
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn on_start(
    ctx: *mut c_void,
    localname: *const ffi::xmlChar,
    prefix: *const ffi::xmlChar,
    uri: *const ffi::xmlChar,
    nb_namespaces: c_int,
    namespaces: *mut *const ffi::xmlChar,
    nb_attributes: c_int,
    nb_defaulted: c_int,
    attributes: *mut *const ffi::xmlChar,
) {
    let raw = RawStart {
        localname,
        prefix,
        uri,
        nb_namespaces,
        namespaces,
        nb_attributes,
        nb_defaulted,
        attributes,
    };
    dispatch(ctx, |h| h.start(ctx, &raw));
}

unsafe extern "C" fn on_end(
    ctx: *mut c_void,
    localname: *const ffi::xmlChar,
    prefix: *const ffi::xmlChar,
    uri: *const ffi::xmlChar,
) {
    dispatch(ctx, |h| h.end(ctx, localname, prefix, uri));
}

/// Also the whitespace callback: the tree parse uses one function for
/// both, which makes libxml2 treat no whitespace as ignorable; the same
/// function pointer here keeps that behaviour.
unsafe extern "C" fn on_characters(ctx: *mut c_void, text: *const ffi::xmlChar, len: c_int) {
    dispatch(ctx, |h| h.characters(ctx, text, len));
}

unsafe extern "C" fn on_cdata(ctx: *mut c_void, text: *const ffi::xmlChar, len: c_int) {
    dispatch(ctx, |h| h.cdata(ctx, text, len));
}

unsafe extern "C" fn on_comment(ctx: *mut c_void, text: *const ffi::xmlChar) {
    dispatch(ctx, |h| h.comment(ctx, text));
}

unsafe extern "C" fn on_pi(
    ctx: *mut c_void,
    target: *const ffi::xmlChar,
    data: *const ffi::xmlChar,
) {
    dispatch(ctx, |h| h.pi(ctx, target, data));
}

/// An entity reference reaching the SAX interface: impossible without a
/// DTD, and refused by the tree's scan if it were not.
unsafe extern "C" fn on_reference(ctx: *mut c_void, _name: *const ffi::xmlChar) {
    dispatch(ctx, |_| {
        Err(StreamError::Unsupported(
            "an entity reference reached the parser's output",
        ))
    });
}

/// Parses `bytes` exactly as `Document::parse` does, with `handler` behind
/// the SAX callbacks instead of libxml2's tree builder; returns the document
/// libxml2 built, if the handler had it build any.
fn drive(
    bytes: &[u8],
    limits: &ParseLimits,
    handler: &mut dyn Handler,
) -> Result<Option<NonNull<ffi::xmlDoc>>, StreamError> {
    precheck(bytes, limits)?;
    init_libxml2();
    let len = c_int::try_from(bytes.len()).map_err(|_| ParseError::TooLarge {
        size: bytes.len(),
        limit: c_int::MAX as usize,
    })?;
    let mut driver = Driver {
        handler,
        saw_doctype: false,
        failure: None,
    };
    // SAFETY: the context is created, used and freed in this block; the SAX
    // handler is the context's own copy (its other callbacks stay libxml2's
    // defaults, as in the tree parse); `driver` outlives the parse and is
    // unhooked before the context is freed.
    let (doc, error, ns_error) = unsafe {
        let ctxt = ffi::xmlNewParserCtxt();
        if ctxt.is_null() {
            return Err(ParseError::Allocation.into());
        }
        let sax = (*ctxt).sax;
        if sax.is_null() {
            ffi::xmlFreeParserCtxt(ctxt);
            return Err(ParseError::Allocation.into());
        }
        (*sax).internalSubset = Some(on_doctype);
        (*sax).startElementNs = Some(on_start);
        (*sax).endElementNs = Some(on_end);
        (*sax).characters = Some(on_characters);
        (*sax).ignorableWhitespace = Some(on_characters);
        (*sax).cdataBlock = Some(on_cdata);
        (*sax).comment = Some(on_comment);
        (*sax).processingInstruction = Some(on_pi);
        (*sax).reference = Some(on_reference);
        let (doc, error) = read_memory(ctxt, bytes, len, (&mut driver as *mut Driver<'_>).cast());
        let ns_error = (*ctxt).nsWellFormed == 0;
        ffi::xmlFreeParserCtxt(ctxt);
        (NonNull::new(doc), error, ns_error)
    };
    let free = |doc: Option<NonNull<ffi::xmlDoc>>| {
        if let Some(doc) = doc {
            // SAFETY: the document is ours and nothing refers to it.
            unsafe { ffi::xmlFreeDoc(doc.as_ptr()) }
        }
    };
    if driver.saw_doctype {
        free(doc);
        return Err(ParseError::Doctype.into());
    }
    if let Some(failure) = driver.failure {
        free(doc);
        return Err(failure);
    }
    if let Some(error) = error {
        free(doc);
        return Err(parser_failure(error, limits).into());
    }
    if ns_error {
        // The tree parse accepts namespace errors (an undeclared prefix
        // makes a name with a colon in it); this code does not model them.
        free(doc);
        return Err(StreamError::Unsupported("a namespace error"));
    }
    Ok(doc)
}

/// Whether a namespace URI is one libxml2's canonicaliser refuses (the test
/// of `xmlC14NCheckForRelativeNamespaces`, as `Document` applies it).
fn is_relative_namespace(uri: &[u8]) -> bool {
    if uri.is_empty() {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(uri) else {
        return true;
    };
    // SAFETY: a NUL-terminated string we own; the parsed URI is freed here.
    unsafe {
        let parsed = ffi::xmlParseURI(c.as_ptr());
        if parsed.is_null() {
            return true;
        }
        let scheme = (*parsed).scheme;
        let relative = scheme.is_null() || *scheme == 0;
        ffi::xmlFreeURI(parsed);
        relative
    }
}

fn slice<'a>(text: *const ffi::xmlChar, len: c_int) -> &'a [u8] {
    let len = usize::try_from(len).unwrap_or(0);
    if text.is_null() || len == 0 {
        return b"";
    }
    // SAFETY: libxml2 passes `len` readable bytes at `text`.
    unsafe { std::slice::from_raw_parts(text, len) }
}

// ---------------------------------------------------------------------------
// Pass 1: the scan
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Text,
    Other,
}

struct Scanner<'a> {
    limits: &'a ParseLimits,
    keep: KeepChild<'a>,
    visitor: &'a mut dyn Visitor,
    depth: usize,
    /// At least as many as the tree scan counts.
    nodes: usize,
    last: Last,
    /// Bytes of the current run of character data or CDATA: at least the
    /// size of the text node the tree makes of it.
    text_run: usize,
    ids: HashSet<Box<str>>,
    root_children: usize,
    kept: Option<usize>,
    /// Inside the kept child: libxml2's tree builder sees these events.
    in_kept: bool,
    /// Depths of the open elements named `keep`.
    match_depths: Vec<usize>,
    matching: usize,
    top_level: usize,
    first_top_level_depth: Option<usize>,
}

impl Scanner<'_> {
    fn count_node(&mut self) -> Result<(), StreamError> {
        self.nodes += 1;
        // The tree scan counts top-level nodes once more.
        if self.depth == 0 {
            self.nodes += 1;
        }
        if self.nodes > self.limits.max_nodes {
            return Err(StreamError::Unsupported("too many nodes"));
        }
        Ok(())
    }

    fn count_text(&mut self, len: usize) -> Result<(), StreamError> {
        if self.last != Last::Text {
            self.text_run = 0;
        }
        self.last = Last::Text;
        self.text_run += len;
        self.count_node()?;
        if self.text_run > self.limits.max_text_bytes {
            return Err(StreamError::Unsupported("a text node over the limit"));
        }
        Ok(())
    }
}

impl Handler for Scanner<'_> {
    fn start(&mut self, ctx: *mut c_void, e: &RawStart) -> Result<(), StreamError> {
        self.last = Last::Other;
        self.count_node()?;
        self.depth += 1;
        let depth = self.depth;
        if depth > self.limits.max_depth {
            return Err(StreamError::Unsupported("elements nested over the limit"));
        }
        if usize::try_from(e.nb_attributes).unwrap_or(usize::MAX)
            > self.limits.max_attributes_per_element
        {
            return Err(StreamError::Unsupported(
                "an element with too many attributes",
            ));
        }
        if e.nb_defaulted != 0 {
            return Err(StreamError::Unsupported("defaulted attributes"));
        }
        for ns in e.namespaces() {
            if is_relative_namespace(ns.uri) {
                return Err(StreamError::Unsupported("a relative namespace URI"));
            }
        }
        let mut attributes = Vec::new();
        for a in e.attributes() {
            let local = utf8(a.local)?;
            let namespace = a.uri.map(utf8).transpose()?;
            let value = String::from_utf8(attribute_value(a.value)?.into_owned())
                .map_err(|_| StreamError::Unsupported("an attribute value is not UTF-8"))?;
            let is_id = match namespace {
                None => matches!(local, "Id" | "ID"),
                Some(ns) => ns == XML_NAMESPACE && local == "id",
            };
            if is_id && !self.ids.insert(value.clone().into_boxed_str()) {
                return Err(StreamError::Unsupported("a duplicate ID"));
            }
            attributes.push(StreamAttribute {
                local_name: local,
                namespace,
                value,
            });
        }
        let local = utf8(e.local())?;
        let namespace = e.uri().map(utf8).transpose()?;
        self.visitor.start_element(&ElementStart {
            depth,
            local_name: local,
            namespace,
            attributes: &attributes,
        });

        let is_match = namespace == Some(self.keep.namespace) && local == self.keep.local_name;
        if is_match {
            self.matching += 1;
            if self.match_depths.is_empty() {
                self.top_level += 1;
                self.first_top_level_depth.get_or_insert(depth);
            }
            self.match_depths.push(depth);
        }
        let mut build = depth == 1 || self.in_kept;
        if depth == 2 {
            if is_match && self.kept.is_none() {
                self.kept = Some(self.root_children);
                self.in_kept = true;
                build = true;
            }
            self.root_children += 1;
        }
        if build {
            // SAFETY: forwarding this very callback's arguments to libxml2's
            // own tree builder, with the parser context it was called with.
            unsafe {
                ffi::xmlSAX2StartElementNs(
                    ctx,
                    e.localname,
                    e.prefix,
                    e.uri,
                    e.nb_namespaces,
                    e.namespaces,
                    e.nb_attributes,
                    e.nb_defaulted,
                    e.attributes,
                )
            }
        }
        Ok(())
    }

    fn end(
        &mut self,
        ctx: *mut c_void,
        localname: *const ffi::xmlChar,
        prefix: *const ffi::xmlChar,
        uri: *const ffi::xmlChar,
    ) -> Result<(), StreamError> {
        self.last = Last::Other;
        let depth = self.depth;
        if self.match_depths.last() == Some(&depth) {
            self.match_depths.pop();
        }
        self.visitor.end_element();
        if depth == 1 || self.in_kept {
            // SAFETY: as in `start`.
            unsafe { ffi::xmlSAX2EndElementNs(ctx, localname, prefix, uri) }
        }
        if depth == 2 {
            self.in_kept = false;
        }
        self.depth = depth.saturating_sub(1);
        Ok(())
    }

    fn characters(
        &mut self,
        ctx: *mut c_void,
        text: *const ffi::xmlChar,
        len: c_int,
    ) -> Result<(), StreamError> {
        let bytes = slice(text, len);
        self.count_text(bytes.len())?;
        self.visitor.text(bytes);
        if self.in_kept {
            // SAFETY: as in `start`.
            unsafe { ffi::xmlSAX2Characters(ctx, text, len) }
        }
        Ok(())
    }

    fn cdata(
        &mut self,
        ctx: *mut c_void,
        text: *const ffi::xmlChar,
        len: c_int,
    ) -> Result<(), StreamError> {
        let bytes = slice(text, len);
        // CDATA runs merge into one node as text runs do; counting them in
        // one run with neighbouring text only over-estimates.
        self.count_text(bytes.len())?;
        self.visitor.text(bytes);
        if self.in_kept {
            // SAFETY: as in `start`.
            unsafe { ffi::xmlSAX2CDataBlock(ctx, text, len) }
        }
        Ok(())
    }

    fn comment(&mut self, ctx: *mut c_void, text: *const ffi::xmlChar) -> Result<(), StreamError> {
        self.last = Last::Other;
        self.count_node()?;
        if self.in_kept {
            // SAFETY: as in `start`.
            unsafe { ffi::xmlSAX2Comment(ctx, text) }
        }
        Ok(())
    }

    fn pi(
        &mut self,
        ctx: *mut c_void,
        target: *const ffi::xmlChar,
        data: *const ffi::xmlChar,
    ) -> Result<(), StreamError> {
        self.last = Last::Other;
        self.count_node()?;
        if self.in_kept {
            // SAFETY: as in `start`.
            unsafe { ffi::xmlSAX2ProcessingInstruction(ctx, target, data) }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Pass 2: canonical XML
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    Before,
    Inside,
    After,
}

/// A namespace declaration in scope. The prefix is empty for the default
/// namespace (libxml2's NULL prefix).
struct Binding {
    prefix: Vec<u8>,
    uri: Vec<u8>,
}

/// What a prefix resolves to (libxml2's `xmlSearchNs`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    /// The `xml` prefix: never rendered.
    Xml,
    Binding(usize),
}

/// Per open element: what to undo at its end.
struct Frame {
    bindings: usize,
    saved: (usize, usize, usize),
}

/// Buffered output: libxml2 writes small pieces through an output buffer;
/// so does this, in larger chunks.
struct Out<'w> {
    buf: Vec<u8>,
    inner: &'w mut dyn Write,
}

impl Out<'_> {
    const CHUNK: usize = 64 * 1024;

    fn put(&mut self, bytes: &[u8]) -> Result<(), StreamError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= Self::CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        if !self.buf.is_empty() {
            self.inner
                .write_all(&self.buf)
                .map_err(|_| StreamError::Output)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// libxml2's `xmlC11NNormalizeText`.
    fn text(&mut self, text: &[u8]) -> Result<(), StreamError> {
        self.escaped(text, |b| match b {
            b'&' => Some(b"&amp;"),
            b'<' => Some(b"&lt;"),
            b'>' => Some(b"&gt;"),
            b'\r' => Some(b"&#xD;"),
            _ => None,
        })
    }

    /// libxml2's `xmlC11NNormalizeAttr`.
    fn attribute(&mut self, value: &[u8]) -> Result<(), StreamError> {
        self.escaped(value, |b| match b {
            b'&' => Some(b"&amp;"),
            b'<' => Some(b"&lt;"),
            b'"' => Some(b"&quot;"),
            b'\t' => Some(b"&#x9;"),
            b'\n' => Some(b"&#xA;"),
            b'\r' => Some(b"&#xD;"),
            _ => None,
        })
    }

    /// libxml2's `xmlC11NNormalizeComment` and `xmlC11NNormalizePI`.
    fn comment_or_pi(&mut self, text: &[u8]) -> Result<(), StreamError> {
        self.escaped(text, |b| (b == b'\r').then_some(b"&#xD;".as_slice()))
    }

    fn escaped(
        &mut self,
        text: &[u8],
        escape: impl Fn(u8) -> Option<&'static [u8]>,
    ) -> Result<(), StreamError> {
        let mut start = 0;
        for (i, &b) in text.iter().enumerate() {
            if let Some(rep) = escape(b) {
                self.buf.extend_from_slice(&text[start..i]);
                self.buf.extend_from_slice(rep);
                start = i + 1;
            }
        }
        self.put(&text[start..])
    }

    fn qname(&mut self, prefix: &[u8], local: &[u8]) -> Result<(), StreamError> {
        if !prefix.is_empty() {
            self.put(prefix)?;
            self.put(b":")?;
        }
        self.put(local)
    }

    /// libxml2's `xmlC14NPrintNamespaces`: the URI is written as stored.
    fn namespace(&mut self, prefix: &[u8], uri: &[u8]) -> Result<(), StreamError> {
        if prefix.is_empty() {
            self.put(b" xmlns=\"")?;
        } else {
            self.put(b" xmlns:")?;
            self.put(prefix)?;
            self.put(b"=\"")?;
        }
        self.put(uri)?;
        self.put(b"\"")
    }
}

/// The streaming canonicaliser: the decisions of libxml2's `c14n.c` for a
/// node-set that is the whole document (or its document element) minus at
/// most one complete subtree, so every element it writes has every
/// ancestor written too. Its namespace bookkeeping is libxml2's "visible
/// namespace stack" (`ns_rendered`), reproduced operation by operation,
/// quirks included.
struct Canonicalizer<'w> {
    out: Out<'w>,
    method: C14nMethod,
    comments: bool,
    /// Exclusive c14n's InclusiveNamespaces PrefixList; empty = default.
    inclusive_prefixes: Vec<Vec<u8>>,
    whole_document: bool,
    exclude: Option<(usize, Vec<u8>, Vec<u8>)>,
    excluded: bool,
    saw_root: bool,
    depth: usize,
    root_children: usize,
    /// Inside the excluded subtree: the depth of its element.
    skipped: Option<usize>,
    pos: Position,
    bindings: Vec<Binding>,
    /// For each prefix, the indices of its bindings, innermost last.
    scope: HashMap<Vec<u8>, Vec<usize>>,
    frames: Vec<Frame>,
    /// `ns_rendered`: indices into `bindings`.
    rendered: Vec<usize>,
    cur_end: usize,
    prev_start: usize,
    prev_end: usize,
}

impl<'w> Canonicalizer<'w> {
    fn new(
        selection: StreamSelection,
        exclude: Option<ExcludeChild<'_>>,
        c14n: &Canonicalization,
        out: &'w mut dyn Write,
    ) -> Result<Self, StreamError> {
        let inclusive_prefixes = if c14n.method == C14nMethod::Exclusive10 {
            let mut list = Vec::new();
            for p in &c14n.inclusive_prefixes {
                if p.contains('\0') {
                    return Err(StreamError::Unsupported("a NUL in a prefix"));
                }
                list.push(if p == "#default" {
                    Vec::new()
                } else {
                    p.as_bytes().to_vec()
                });
            }
            list
        } else {
            Vec::new()
        };
        Ok(Self {
            out: Out {
                buf: Vec::with_capacity(Out::CHUNK + 1024),
                inner: out,
            },
            method: c14n.method,
            comments: c14n.with_comments,
            inclusive_prefixes,
            whole_document: selection == StreamSelection::Document,
            exclude: exclude.map(|e| {
                (
                    e.ordinal,
                    e.namespace.as_bytes().to_vec(),
                    e.local_name.as_bytes().to_vec(),
                )
            }),
            excluded: false,
            saw_root: false,
            depth: 0,
            root_children: 0,
            skipped: None,
            pos: Position::Before,
            bindings: Vec::new(),
            scope: HashMap::new(),
            frames: Vec::new(),
            rendered: Vec::new(),
            cur_end: 0,
            prev_start: 0,
            prev_end: 0,
        })
    }

    /// `xmlSearchNs` from the current element.
    fn search(&self, prefix: &[u8]) -> Option<Ns> {
        if prefix == b"xml" {
            return Some(Ns::Xml);
        }
        self.scope
            .get(prefix)
            .and_then(|s| s.last())
            .map(|&i| Ns::Binding(i))
    }

    /// `find(binding)` or `exc_find(binding)`, and whether the binding is
    /// of the default namespace.
    fn probe(&self, binding: usize, find: fn(&Self, &[u8], &[u8]) -> bool) -> Option<(bool, bool)> {
        let b = self.bindings.get(binding)?;
        Some((find(self, &b.prefix, &b.uri), b.prefix.is_empty()))
    }

    /// `xmlC14NVisibleNsStackAdd`.
    fn add(&mut self, binding: usize) {
        self.rendered.truncate(self.cur_end);
        self.rendered.push(binding);
        self.cur_end += 1;
    }

    /// `xmlC14NVisibleNsStackFind` for (prefix, uri).
    fn find(&self, prefix: &[u8], uri: &[u8]) -> bool {
        let empty = prefix.is_empty() && uri.is_empty();
        let start = if empty { 0 } else { self.prev_start };
        self.search_rendered(start, prefix)
            .map_or(empty, |b| b.uri == uri)
    }

    /// `xmlExcC14NVisibleNsStackFind` for (prefix, uri); every node on the
    /// stack is visible here.
    fn exc_find(&self, prefix: &[u8], uri: &[u8]) -> bool {
        self.search_rendered(0, prefix)
            .map_or(prefix.is_empty() && uri.is_empty(), |b| b.uri == uri)
    }

    /// The innermost declaration of `prefix` on the stack from `start`.
    /// The stack only holds declarations of open elements (an element's
    /// entries are dropped with it), so every index is live.
    fn search_rendered(&self, start: usize, prefix: &[u8]) -> Option<&Binding> {
        let entries = self.rendered.get(start..self.cur_end).unwrap_or_default();
        entries
            .iter()
            .rev()
            .filter_map(|&i| self.bindings.get(i))
            .find(|b| b.prefix == prefix)
    }

    /// `xmlC14NProcessNamespacesAxis` for a visible element whose visible
    /// ancestors are all its ancestors.
    fn inclusive_namespaces(&mut self) -> Result<(), StreamError> {
        let mut in_scope: Vec<usize> = self
            .scope
            .values()
            .filter_map(|s| s.last().copied())
            .collect();
        in_scope.sort_unstable();
        let mut list = Vec::new();
        let mut has_empty_ns = false;
        for i in in_scope {
            let Some((already, empty_prefix)) = self.probe(i, Self::find) else {
                continue;
            };
            self.add(i);
            if !already {
                list.push(i);
            }
            if empty_prefix {
                has_empty_ns = true;
            }
        }
        if !has_empty_ns && !self.find(b"", b"") {
            self.out.namespace(b"", b"")?;
        }
        self.write_namespaces(list)
    }

    /// `xmlExcC14NProcessNamespacesAxis` for a visible element with visible
    /// attributes.
    fn exclusive_namespaces(&mut self, e: &RawStart) -> Result<(), StreamError> {
        let mut list: Vec<usize> = Vec::new();
        let mut has_empty_ns = false;
        let mut has_visibly_utilized_empty_ns = false;
        let mut has_empty_ns_in_inclusive_list = false;

        for k in 0..self.inclusive_prefixes.len() {
            let prefix = &self.inclusive_prefixes[k];
            if prefix.is_empty() {
                has_empty_ns_in_inclusive_list = true;
            }
            if let Some(Ns::Binding(i)) = self.search(prefix) {
                let Some((already, empty_prefix)) = self.probe(i, Self::find) else {
                    continue;
                };
                self.add(i);
                if !already && !list.contains(&i) {
                    list.push(i);
                }
                if empty_prefix {
                    has_empty_ns = true;
                }
            }
        }

        let element_ns = if e.uri.is_null() {
            has_visibly_utilized_empty_ns = true;
            self.search(b"")
        } else {
            self.search(e.prefix().unwrap_or(b""))
        };
        let probed = match element_ns {
            Some(Ns::Binding(i)) => self.probe(i, Self::exc_find).map(|p| (i, p)),
            _ => None,
        };
        if let Some((i, (already, empty_prefix))) = probed {
            if !already && !list.contains(&i) {
                list.push(i);
            }
            self.add(i);
            if empty_prefix {
                has_empty_ns = true;
            }
        }

        for a in e.attributes() {
            let Some(prefix) = a.prefix.filter(|_| a.uri.is_some()) else {
                continue;
            };
            let Some(Ns::Binding(i)) = self.search(prefix) else {
                continue;
            };
            let Some((already, empty_prefix)) = self.probe(i, Self::exc_find) else {
                continue;
            };
            self.add(i);
            if !already && !list.contains(&i) {
                list.push(i);
            }
            if empty_prefix {
                has_empty_ns = true;
            }
        }

        if has_visibly_utilized_empty_ns && !has_empty_ns && !has_empty_ns_in_inclusive_list {
            if !self.exc_find(b"", b"") {
                self.out.namespace(b"", b"")?;
            }
        } else if !has_empty_ns && has_empty_ns_in_inclusive_list && !self.find(b"", b"") {
            self.out.namespace(b"", b"")?;
        }
        self.write_namespaces(list)
    }

    /// The rendered declarations, in prefix order (`xmlC14NNsCompare`).
    fn write_namespaces(&mut self, list: Vec<usize>) -> Result<(), StreamError> {
        let mut list: Vec<&Binding> = list.iter().filter_map(|&i| self.bindings.get(i)).collect();
        list.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        for Binding { prefix, uri } in list {
            self.out.namespace(prefix, uri)?;
        }
        Ok(())
    }

    /// `xmlC14NProcessAttrsAxis` for a visible element whose parent is
    /// visible (or is the document).
    fn attributes(&mut self, e: &RawStart) -> Result<(), StreamError> {
        let mut attrs = Vec::with_capacity(usize::try_from(e.nb_attributes).unwrap_or(0));
        for a in e.attributes() {
            let value = attribute_value(a.value)?;
            // C14N 1.1 rebuilds xml:base from the hidden ancestors' values
            // (there are none here) and drops it when that is empty.
            if self.method == C14nMethod::Inclusive11
                && a.uri == Some(XML_NAMESPACE.as_bytes())
                && a.local == b"base"
                && value.is_empty()
            {
                continue;
            }
            attrs.push((a, value));
        }
        // `xmlC14NAttrsCompare`: un-namespaced first, then by namespace URI,
        // then by local name.
        attrs.sort_by(|(a, _), (b, _)| {
            (a.uri.is_some(), a.uri, a.local).cmp(&(b.uri.is_some(), b.uri, b.local))
        });
        for (a, value) in attrs {
            self.out.put(b" ")?;
            match (a.uri, a.prefix) {
                (Some(_), Some(prefix)) => self.out.qname(prefix, a.local)?,
                _ => self.out.put(a.local)?,
            }
            self.out.put(b"=\"")?;
            self.out.attribute(&value)?;
            self.out.put(b"\"")?;
        }
        Ok(())
    }

    fn visible_top_level(&self) -> bool {
        self.whole_document && self.depth == 0
    }
}

impl Handler for Canonicalizer<'_> {
    fn start(&mut self, _ctx: *mut c_void, e: &RawStart) -> Result<(), StreamError> {
        self.depth += 1;
        let depth = self.depth;
        // libxml2's canonicaliser refuses a relative namespace URI anywhere in the
        // document, in a left-out subtree too; so does this pass, on its own (the scan
        // that precedes it in the verifier refuses them as well). Found by the
        // `stream_c14n` fuzz target: a relative URI inside the excluded child.
        if e.namespaces().any(|ns| is_relative_namespace(ns.uri)) {
            return Err(StreamError::Unsupported("a relative namespace URI"));
        }
        if self.skipped.is_some() {
            return Ok(());
        }
        if depth == 1 {
            if self.saw_root {
                return Err(StreamError::Unsupported("a second document element"));
            }
            self.saw_root = true;
            self.pos = Position::Inside;
        }
        if depth == 2 {
            let ordinal = self.root_children;
            self.root_children += 1;
            if let Some((at, ns, local)) = &self.exclude {
                if *at == ordinal {
                    if e.uri().unwrap_or(b"") != ns.as_slice() || e.local() != local.as_slice() {
                        return Err(StreamError::Unsupported(
                            "the element to exclude is not where the scan found it",
                        ));
                    }
                    self.excluded = true;
                    self.skipped = Some(depth);
                    return Ok(());
                }
            }
        }
        if e.nb_defaulted != 0 {
            return Err(StreamError::Unsupported("defaulted attributes"));
        }

        let saved = (self.cur_end, self.prev_start, self.prev_end);
        let mut pushed = 0;
        for ns in e.namespaces() {
            // libxml2 keeps no declaration of the `xml` prefix.
            if ns.prefix == b"xml" {
                continue;
            }
            let index = self.bindings.len();
            self.bindings.push(Binding {
                prefix: ns.prefix.to_vec(),
                uri: ns.uri.to_vec(),
            });
            self.scope
                .entry(ns.prefix.to_vec())
                .or_default()
                .push(index);
            pushed += 1;
        }
        self.frames.push(Frame {
            bindings: pushed,
            saved,
        });

        self.out.put(b"<")?;
        self.out.qname(e.prefix().unwrap_or(b""), e.local())?;
        match self.method {
            C14nMethod::Exclusive10 => self.exclusive_namespaces(e)?,
            _ => self.inclusive_namespaces()?,
        }
        // `xmlC14NVisibleNsStackShift`.
        self.prev_start = self.prev_end;
        self.prev_end = self.cur_end;
        self.attributes(e)?;
        self.out.put(b">")
    }

    fn end(
        &mut self,
        _ctx: *mut c_void,
        localname: *const ffi::xmlChar,
        prefix: *const ffi::xmlChar,
        _uri: *const ffi::xmlChar,
    ) -> Result<(), StreamError> {
        let depth = self.depth;
        self.depth = depth.saturating_sub(1);
        if let Some(at) = self.skipped {
            if at == depth {
                self.skipped = None;
            }
            return Ok(());
        }
        self.out.put(b"</")?;
        self.out.qname(bytes_of(prefix), bytes_of(localname))?;
        self.out.put(b">")?;
        let Some(frame) = self.frames.pop() else {
            return Err(StreamError::Unsupported("unbalanced elements"));
        };
        for _ in 0..frame.bindings {
            if let Some(b) = self.bindings.pop() {
                if let Some(stack) = self.scope.get_mut(&b.prefix) {
                    stack.pop();
                    if stack.is_empty() {
                        self.scope.remove(&b.prefix);
                    }
                }
            }
        }
        (self.cur_end, self.prev_start, self.prev_end) = frame.saved;
        if depth == 1 {
            self.pos = Position::After;
        }
        Ok(())
    }

    fn characters(
        &mut self,
        _ctx: *mut c_void,
        text: *const ffi::xmlChar,
        len: c_int,
    ) -> Result<(), StreamError> {
        if self.skipped.is_some() || self.depth == 0 {
            return Ok(());
        }
        self.out.text(slice(text, len))
    }

    fn cdata(
        &mut self,
        ctx: *mut c_void,
        text: *const ffi::xmlChar,
        len: c_int,
    ) -> Result<(), StreamError> {
        self.characters(ctx, text, len)
    }

    fn comment(&mut self, _ctx: *mut c_void, text: *const ffi::xmlChar) -> Result<(), StreamError> {
        if !self.comments || self.skipped.is_some() {
            return Ok(());
        }
        if self.depth == 0 && !self.visible_top_level() {
            return Ok(());
        }
        if self.pos == Position::After {
            self.out.put(b"\n")?;
        }
        self.out.put(b"<!--")?;
        self.out.comment_or_pi(bytes_of(text))?;
        self.out.put(b"-->")?;
        if self.pos == Position::Before {
            self.out.put(b"\n")?;
        }
        Ok(())
    }

    fn pi(
        &mut self,
        _ctx: *mut c_void,
        target: *const ffi::xmlChar,
        data: *const ffi::xmlChar,
    ) -> Result<(), StreamError> {
        if self.skipped.is_some() {
            return Ok(());
        }
        if self.depth == 0 && !self.visible_top_level() {
            return Ok(());
        }
        if self.pos == Position::After {
            self.out.put(b"\n")?;
        }
        self.out.put(b"<?")?;
        self.out.put(bytes_of(target))?;
        let data = bytes_of(data);
        if !data.is_empty() {
            self.out.put(b" ")?;
            self.out.comment_or_pi(data)?;
        }
        self.out.put(b"?>")?;
        if self.pos == Position::Before {
            self.out.put(b"\n")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Node, Selection};

    const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
    const KEEP: KeepChild<'static> = KeepChild {
        namespace: DSIG,
        local_name: "Signature",
    };

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
        for list in [&["a", "#default"][..], &["b"], &["", "xml", "zz"]] {
            let mut prefixed = Canonicalization::new(C14nMethod::Exclusive10, false);
            prefixed.inclusive_prefixes = list.iter().map(|s| s.to_string()).collect();
            specs.push(prefixed);
        }
        specs
    }

    /// Streaming output against the tree's for every selection, exclusion
    /// and algorithm; returns how many comparisons ran.
    fn compare(xml: &str) -> usize {
        let limits = ParseLimits::default();
        let doc = Document::parse(xml.as_bytes(), &limits).unwrap();
        let root = doc.root();
        let children: Vec<Node<'_>> = root.element_children().collect();
        let mut compared = 0;
        for spec in specs() {
            for (selection, tree_selection) in [
                (StreamSelection::Document, Selection::Document),
                (StreamSelection::DocumentElement, Selection::Subtree(root)),
            ] {
                let exclusions = std::iter::once(None).chain((0..children.len()).map(Some));
                for ordinal in exclusions {
                    let exclude = ordinal.map(|k| children[k]);
                    let tree = doc.canonicalize_to_vec(tree_selection, exclude, &spec);
                    let names = exclude.map(|n| {
                        (
                            n.namespace().unwrap_or("").to_string(),
                            n.local_name().to_string(),
                        )
                    });
                    let mut streamed = Vec::new();
                    let got = canonicalize(
                        xml.as_bytes(),
                        &limits,
                        selection,
                        ordinal
                            .zip(names.as_ref())
                            .map(|(k, (ns, local))| ExcludeChild {
                                ordinal: k,
                                namespace: ns,
                                local_name: local,
                            }),
                        &spec,
                        &mut streamed,
                    );
                    match (tree, got) {
                        (Ok(t), Ok(())) => assert_eq!(
                            String::from_utf8_lossy(&streamed),
                            String::from_utf8_lossy(&t),
                            "{spec:?} {selection:?} exclude {ordinal:?} of\n{xml}"
                        ),
                        (Err(_), Err(_)) => {}
                        (t, s) => panic!(
                            "{spec:?} {selection:?} {ordinal:?}: tree {t:?} stream {s:?}\n{xml}"
                        ),
                    }
                    compared += 1;
                }
            }
        }
        compared
    }

    #[test]
    fn matches_the_tree_on_a_namespace_heavy_document() {
        compare(concat!(
            "<?xml version='1.0'?>\n<!--before--><?pi before?>\n",
            "<r xmlns='urn:default' xmlns:a='urn:a' xmlns:b='urn:b' xml:lang='kk' ",
            "xml:space='preserve' xml:base='http://example.org/dir/' Id='root'>\n",
            "  <a:x Id='x' b:attr='v' xml:lang='az'><!-- c1 --><y xmlns='' a:q='1'>t &amp; &lt; m\r</y>",
            "<?pi inside?>\n    <z xmlns:c='urn:c' Id='z'><c:w xml:base='sub/' xml:id='w'> Қазақ </c:w>",
            "<![CDATA[cd<>]]><b:e a:k='&#x9;'/></z>\n  </a:x>\n",
            "  <s Id='s'><t xmlns:a='urn:other' a:u='2'/></s>\n</r>\n<!--after--><?pi after?>"
        ));
    }

    #[test]
    fn matches_the_tree_on_escapes_and_undeclarations() {
        compare("<a xmlns='urn:x' at=\"&amp;&lt;&quot;&#9;&#10;&#13;>'\"><b xmlns=''><c xmlns='urn:y' p:d='1' xmlns:p='urn:p'>&amp;&lt;&gt;&#13;\t\n</c></b><p:e xmlns:p='urn:q' f='g'/></a>");
        compare("<a><b xmlns='urn:b'><c xmlns=''/></b><d xmlns:p='urn:p'><p:e xmlns:p='urn:p' p:f='1' g='2'/></d></a>");
        compare("<x:a xmlns:x='urn:x' xmlns='urn:d' xml:base=''><b xml:base='' c=''/><x:c xmlns='' d='1'/></x:a>");
        compare("<a>&#38;&amp;#38;<b c='&#38;&amp;#38;&amp;amp;'/><![CDATA[]]><?p?><?q  r ?></a>");
    }

    #[test]
    fn matches_the_tree_on_a_signed_shape() {
        compare(concat!(
            "<D xmlns='urn:decl' Id='d'><H><LRN>L1</LRN></H>",
            "<ds:Signature xmlns:ds='http://www.w3.org/2000/09/xmldsig#' Id='sig'><ds:SignedInfo/>",
            "<ds:Object><q xmlns='urn:q'/></ds:Object></ds:Signature><T>x</T></D>"
        ));
    }

    #[test]
    fn scan_keeps_root_and_signature() {
        let xml = concat!(
            "<D xmlns='urn:decl' xmlns:ds='http://www.w3.org/2000/09/xmldsig#' xml:lang='kk' Id='d'><H Id='h'><LRN>L1</LRN></H>",
            "<ds:Signature Id='sig'><ds:SignedInfo Id='si'/><ds:Object><ds:Signature/></ds:Object></ds:Signature><T>x</T></D>"
        );
        let scan = scan(
            xml.as_bytes(),
            &ParseLimits::default(),
            KEEP,
            &mut NoVisitor,
        )
        .unwrap();
        assert_eq!(scan.kept_ordinal(), Some(1));
        assert_eq!(scan.matching(), 2);
        assert_eq!(scan.top_level(), 1);
        assert_eq!(scan.first_top_level_depth(), Some(2));
        assert!(scan.has_id("h") && scan.has_id("si") && scan.has_id("d"));
        assert_eq!(scan.id_count(), 4);
        let skeleton = scan.skeleton();
        assert!(skeleton.element_by_id("h").is_none());
        let si = skeleton.element_by_id("si").unwrap();
        let full = Document::parse(xml.as_bytes(), &ParseLimits::default()).unwrap();
        let full_si = full.element_by_id("si").unwrap();
        for spec in specs() {
            assert_eq!(
                skeleton
                    .canonicalize_to_vec(Selection::Subtree(si), None, &spec)
                    .unwrap(),
                full.canonicalize_to_vec(Selection::Subtree(full_si), None, &spec)
                    .unwrap()
            );
        }
        assert_eq!(si.path(), full_si.path());
    }

    #[test]
    fn scan_refers_hard_cases_to_the_tree() {
        let limits = ParseLimits::default();
        let unsupported = |xml: &str| {
            matches!(
                scan(xml.as_bytes(), &limits, KEEP, &mut NoVisitor),
                Err(StreamError::Unsupported(_))
            )
        };
        assert!(unsupported("<a><b Id='x'/><c xml:id='x'/></a>"));
        assert!(unsupported("<a xmlns:p='rel/ative'/>"));
        assert!(unsupported("<a><p:b/></a>"));
        let tight = ParseLimits {
            max_depth: 2,
            ..ParseLimits::default()
        };
        assert!(matches!(
            scan(b"<a><b><c/></b></a>", &tight, KEEP, &mut NoVisitor),
            Err(StreamError::Unsupported(_))
        ));
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
            "<a>&e;</a>",
        ] {
            let tree = Document::parse(bad.as_bytes(), &limits).unwrap_err();
            let streamed = scan(bad.as_bytes(), &limits, KEEP, &mut NoVisitor).unwrap_err();
            assert_eq!(streamed, StreamError::Parse(tree), "{bad}");
        }
    }
}
