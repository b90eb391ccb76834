use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::NonNull;
use std::sync::Once;

use libxml::bindings as ffi;

use crate::error::ParseError;
use crate::ids::IdIndex;
use crate::limits::ParseLimits;
use crate::node::{Node, NodeKind};

/// A parsed, immutable, hardened XML document.
///
/// Owns the libxml2 tree; [`Node`]s borrow from it. Not `Send`: libxml2 trees
/// belong to the thread that built them, and verification is per-document
/// work, so this costs nothing.
#[derive(Debug)]
pub struct Document {
    doc: NonNull<ffi::xmlDoc>,
    ids: IdIndex,
    /// Some element declares a namespace URI that libxml2's canonicaliser
    /// refuses (see [`declares_relative_namespace`]). Canonicalisation then
    /// always walks the whole tree, as libxml2 alone would, so that it fails
    /// the same way whatever part of the document is selected.
    relative_namespace: bool,
    /// Element spans by node, when parsed by [`Document::parse_with_spans`].
    spans: HashMap<usize, ElementSpan>,
}

static INIT: Once = Once::new();

/// libxml2's nesting limit without `XML_PARSE_HUGE`: a `max_depth` above it
/// cannot take effect.
pub const LIBXML2_MAX_DEPTH: usize = 256;

/// Parser options: no recovery (fail closed), no network, no DTD loading or
/// defaulted attributes, no entity substitution, no XInclude, no diagnostics on
/// stderr (errors are returned instead), line numbers beyond 65535, and short
/// text nodes stored inside the node (`COMPACT`: fewer allocations, a smaller
/// tree; it forbids modifying the tree, which Tamga never does).
const OPTIONS: c_int = (ffi::xmlParserOption_XML_PARSE_NONET
    | ffi::xmlParserOption_XML_PARSE_NOERROR
    | ffi::xmlParserOption_XML_PARSE_NOWARNING
    | ffi::xmlParserOption_XML_PARSE_NOXINCNODE
    | ffi::xmlParserOption_XML_PARSE_BIG_LINES
    | ffi::xmlParserOption_XML_PARSE_COMPACT) as c_int;

/// Set by the DOCTYPE hook so the caller can tell a forbidden DOCTYPE from an
/// ordinary syntax error (xmlStopParser reports both as a failed parse).
struct ParseFlags {
    saw_doctype: bool,
    /// Where the parser stood at each element's start and end callbacks,
    /// when the caller asked for element spans.
    positions: Option<HashMap<usize, RawPosition>>,
}

/// The parser's input offsets at an element's two SAX2 callbacks.
#[derive(Debug, Clone, Copy, Default)]
struct RawPosition {
    /// At `startElementNs`: the `>` or `/>` closing the start tag.
    start_tag_close: Option<usize>,
    /// At `endElementNs`: just after the element.
    end: Option<usize>,
}

/// Where one element sits in the bytes it was parsed from, as libxml2's own
/// parse of them saw it (see [`Document::parse_with_spans`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementSpan {
    /// Offset of the start tag's `<`.
    pub start: usize,
    /// Offset of the start tag's `>` (or of `/` in `/>`): where an attribute
    /// can be added.
    pub start_tag_close: usize,
    /// Offset just after the start tag.
    pub start_tag_end: usize,
    /// Offset of the end tag's `<` (`start_tag_end` for an empty element).
    pub end_tag_start: usize,
    /// Offset just after the element.
    pub end: usize,
    /// Written `<a/>`.
    pub empty: bool,
}

/// The parser's offset in its input, as a byte offset into `bytes`.
///
/// # Safety
/// `ctxt` must be a live parser context parsing `bytes` from memory.
///
/// Not `xmlByteConsumed`: with an encoder installed (Tamga declares the
/// input UTF-8, so libxml2 installs its UTF-8 one) it re-encodes the
/// decoded bytes not yet parsed through a 32,000-byte buffer and, in
/// libxml2 2.9, counts only the first buffer-full, so its offsets drift on
/// documents larger than that. A UTF-8 to UTF-8 decoder copies bytes (the
/// byte-order mark is skipped in the decoded buffer, and so counted as
/// consumed), so the bytes not yet parsed are exactly those left in the
/// decoded buffer.
unsafe fn input_offset(ctxt: ffi::xmlParserCtxtPtr) -> Option<usize> {
    // SAFETY: guaranteed by the caller; the input and its buffer are live
    // while the parser runs, and `cur` and `end` point into one buffer.
    unsafe {
        let input = (*ctxt).input;
        if input.is_null() || (*input).cur.is_null() || (*input).end.is_null() {
            return None;
        }
        let unparsed = usize::try_from((*input).end.offset_from((*input).cur)).ok()?;
        let buf = (*input).buf;
        if !buf.is_null() && !(*buf).encoder.is_null() {
            let name = (*(*buf).encoder).name;
            if name.is_null()
                || !CStr::from_ptr(name)
                    .to_bytes()
                    .eq_ignore_ascii_case(b"UTF-8")
            {
                return None;
            }
            return usize::try_from((*buf).rawconsumed)
                .ok()?
                .checked_sub(unparsed);
        }
        let parsed = usize::try_from((*input).cur.offset_from((*input).base)).ok()?;
        usize::try_from((*input).consumed).ok()?.checked_add(parsed)
    }
}

/// `startElementNs` that builds the tree as libxml2's own handler does and
/// notes where the start tag ends.
unsafe extern "C" fn start_element_with_position(
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
    // SAFETY: libxml2 passes its own parser context and arguments, handed
    // on unchanged; `_private` is the live `ParseFlags` of `Document::parse`.
    unsafe {
        ffi::xmlSAX2StartElementNs(
            ctx,
            localname,
            prefix,
            uri,
            nb_namespaces,
            namespaces,
            nb_attributes,
            nb_defaulted,
            attributes,
        );
        let ctxt = ctx as ffi::xmlParserCtxtPtr;
        let flags = (*ctxt)._private as *mut ParseFlags;
        let node = (*ctxt).node;
        if flags.is_null() || node.is_null() {
            return;
        }
        if let Some(positions) = (*flags).positions.as_mut() {
            positions.entry(node as usize).or_default().start_tag_close = input_offset(ctxt);
        }
    }
}

/// `endElementNs` that notes where the element ends, then closes it in the
/// tree as libxml2's own handler does.
unsafe extern "C" fn end_element_with_position(
    ctx: *mut c_void,
    localname: *const ffi::xmlChar,
    prefix: *const ffi::xmlChar,
    uri: *const ffi::xmlChar,
) {
    // SAFETY: as in `start_element_with_position`; `ctxt.node` is the
    // element being closed until libxml2's handler pops it.
    unsafe {
        let ctxt = ctx as ffi::xmlParserCtxtPtr;
        let flags = (*ctxt)._private as *mut ParseFlags;
        let node = (*ctxt).node;
        if !flags.is_null() && !node.is_null() {
            if let Some(positions) = (*flags).positions.as_mut() {
                positions.entry(node as usize).or_default().end = input_offset(ctxt);
            }
        }
        ffi::xmlSAX2EndElementNs(ctx, localname, prefix, uri);
    }
}

/// The span of an element from the parser's offsets, checked against the
/// bytes: the start callback stands on the `>` or `/>` closing the start
/// tag, the end callback just after the element's last `>`. Neither a start
/// tag nor an end tag can contain `<` (not even in attribute values), so
/// each tag's `<` is the last one before where it closes.
fn element_span(bytes: &[u8], at: RawPosition) -> Option<ElementSpan> {
    let close = at.start_tag_close?;
    let end = at.end?;
    let start = bytes.get(..close)?.iter().rposition(|b| *b == b'<')?;
    let (empty, start_tag_end) = match (bytes.get(close), bytes.get(close + 1)) {
        (Some(b'/'), Some(b'>')) => (true, close + 2),
        (Some(b'>'), _) => (false, close + 1),
        _ => return None,
    };
    if end < start_tag_end || bytes.get(end.checked_sub(1)?) != Some(&b'>') {
        return None;
    }
    let end_tag_start = if empty {
        if end != start_tag_end {
            return None;
        }
        start_tag_end
    } else {
        let at = bytes.get(..end)?.iter().rposition(|b| *b == b'<')?;
        if at < start_tag_end || bytes.get(at + 1) != Some(&b'/') {
            return None;
        }
        at
    };
    Some(ElementSpan {
        start,
        start_tag_close: close,
        start_tag_end,
        end_tag_start,
        end,
        empty,
    })
}

/// SAX hook for `<!DOCTYPE`: stop parsing before the internal subset (and so
/// any entity declaration) is read.
unsafe extern "C" fn refuse_doctype(
    ctx: *mut c_void,
    _name: *const ffi::xmlChar,
    _external_id: *const ffi::xmlChar,
    _system_id: *const ffi::xmlChar,
) {
    let ctxt = ctx as ffi::xmlParserCtxtPtr;
    if ctxt.is_null() {
        return;
    }
    // SAFETY: libxml2 passes the parser context we created; `_private` was set
    // to a live `ParseFlags` for the duration of `xmlCtxtReadMemory`.
    unsafe {
        let flags = (*ctxt)._private as *mut ParseFlags;
        if !flags.is_null() {
            (*flags).saw_doctype = true;
        }
        ffi::xmlStopParser(ctxt);
    }
}

/// A document parsed with its element spans, held with the very bytes it was parsed
/// from: what verification hands to countersigning, so that a declaration is parsed
/// once (the pair cannot be mismatched: only [`Parsed::parse`] makes one).
pub struct Parsed<'a> {
    bytes: &'a [u8],
    doc: Document,
}

impl<'a> Parsed<'a> {
    /// [`Document::parse_with_spans`] of `bytes`, kept with them.
    pub fn parse(bytes: &'a [u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        Ok(Parsed {
            bytes,
            doc: Document::parse_with_spans(bytes, limits)?,
        })
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn document(&self) -> &Document {
        &self.doc
    }
}

impl std::fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parsed")
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl Document {
    /// Parses `bytes` under `limits`, refusing anything that is not plain,
    /// well-formed UTF-8 XML, and indexes its IDs (`Id`, `ID`, `xml:id`).
    pub fn parse(bytes: &[u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        Self::parse_inner(bytes, limits, false)
    }

    /// [`Document::parse`], noting where each element sits in `bytes`, as
    /// this very parse read them (see [`Document::span`]): so that Tamga can
    /// add to a signed document exactly where the tree it verified says,
    /// whatever the bytes around (byte-order mark, line ends, comments).
    pub fn parse_with_spans(bytes: &[u8], limits: &ParseLimits) -> Result<Self, ParseError> {
        Self::parse_inner(bytes, limits, true)
    }

    /// Where `node` (an element of this document) sits in the bytes it was
    /// parsed from; `None` unless parsed by [`Document::parse_with_spans`].
    pub fn span(&self, node: Node<'_>) -> Option<ElementSpan> {
        self.spans.get(&(node.raw() as usize)).copied()
    }

    fn parse_inner(bytes: &[u8], limits: &ParseLimits, spans: bool) -> Result<Self, ParseError> {
        precheck(bytes, limits)?;
        init_libxml2();
        let len = c_int::try_from(bytes.len()).map_err(|_| ParseError::TooLarge {
            size: bytes.len(),
            limit: c_int::MAX as usize,
        })?;
        let mut flags = ParseFlags {
            saw_doctype: false,
            positions: spans.then(HashMap::new),
        };
        // SAFETY: the context is created, used and freed in this block; the
        // SAX handler is the context's own copy; `flags` outlives the parse.
        let (doc, error) = unsafe {
            let ctxt = ffi::xmlNewParserCtxt();
            if ctxt.is_null() {
                return Err(ParseError::Allocation);
            }
            if !(*ctxt).sax.is_null() {
                (*(*ctxt).sax).internalSubset = Some(refuse_doctype);
                if spans {
                    (*(*ctxt).sax).startElementNs = Some(start_element_with_position);
                    (*(*ctxt).sax).endElementNs = Some(end_element_with_position);
                }
            }
            let (doc, error) =
                read_memory(ctxt, bytes, len, (&mut flags as *mut ParseFlags).cast());
            ffi::xmlFreeParserCtxt(ctxt);
            (doc, error)
        };
        let doc = NonNull::new(doc);
        if flags.saw_doctype {
            free_doc(doc);
            return Err(ParseError::Doctype);
        }
        if let Some(error) = error {
            free_doc(doc);
            return Err(parser_failure(error, limits));
        }
        let Some(doc) = doc else {
            return Err(ParseError::Malformed {
                line: 0,
                column: 0,
                message: "no document".into(),
            });
        };
        let mut document = Self::from_parsed(doc, limits)?;
        if let Some(positions) = flags.positions {
            // Every element must have a span that reads right from the
            // bytes, or none does: a caller never splices by a guess.
            let mut spans = HashMap::with_capacity(positions.len());
            for (node, at) in positions {
                match element_span(bytes, at) {
                    Some(span) => spans.insert(node, span),
                    None => {
                        return Err(ParseError::Malformed {
                            line: 0,
                            column: 0,
                            message: "the parser's element offsets do not match the input".into(),
                        })
                    }
                };
            }
            document.spans = spans;
        }
        Ok(document)
    }

    /// Takes ownership of a tree libxml2 built from well-formed input, and
    /// applies the same checks as [`Document::parse`] after parsing (no DTD,
    /// the structural limits, unique IDs). The streaming scan builds its
    /// skeleton this way.
    pub(crate) fn from_parsed(
        doc: NonNull<ffi::xmlDoc>,
        limits: &ParseLimits,
    ) -> Result<Self, ParseError> {
        let mut document = Document {
            doc,
            ids: IdIndex::default(),
            relative_namespace: false,
            spans: HashMap::new(),
        };
        // SAFETY: doc is a valid document we own.
        let has_dtd =
            unsafe { !(*doc.as_ptr()).intSubset.is_null() || !(*doc.as_ptr()).extSubset.is_null() };
        if has_dtd {
            return Err(ParseError::Doctype);
        }
        (document.ids, document.relative_namespace) = document.scan(limits)?;
        Ok(document)
    }

    /// The document element.
    pub fn root(&self) -> Node<'_> {
        // SAFETY: the document is valid; `scan` proved a document element exists.
        let ptr = unsafe { ffi::xmlDocGetRootElement(self.doc.as_ptr()) };
        // The scan in `parse` refuses documents without a root, so this is never null.
        Node::from_raw(ptr).unwrap_or_else(|| unreachable_root())
    }

    /// The element carrying ID `id`, if any (IDs are unique: `parse` refuses
    /// duplicates).
    pub fn element_by_id(&self, id: &str) -> Option<Node<'_>> {
        self.ids.get(id).and_then(Node::from_raw)
    }

    /// The ID index built at parse time.
    pub fn ids(&self) -> &IdIndex {
        &self.ids
    }

    pub(crate) fn raw(&self) -> *mut ffi::xmlDoc {
        self.doc.as_ptr()
    }

    /// See the field of the same name.
    pub(crate) fn relative_namespace(&self) -> bool {
        self.relative_namespace
    }

    /// One pass over the tree: enforces the structural limits and builds the
    /// ID index, refusing duplicates; also notes whether any element declares
    /// a namespace the canonicaliser refuses.
    fn scan(&self, limits: &ParseLimits) -> Result<(IdIndex, bool), ParseError> {
        // SAFETY: the document is valid.
        let root = unsafe { ffi::xmlDocGetRootElement(self.doc.as_ptr()) };
        let Some(root) = Node::from_raw(root) else {
            return Err(ParseError::NoDocumentElement);
        };
        let mut ids = IdIndex::default();
        let mut relative_namespace = false;
        let mut nodes = 0usize;
        // Top-level siblings of the root (comments, PIs) count as nodes too.
        // SAFETY: walking the document's own child list.
        let mut top = unsafe { (*self.doc.as_ptr()).children };
        while !top.is_null() {
            nodes += 1;
            // SAFETY: `top` is a live node of this document.
            let kind = unsafe { (*top).type_ };
            if kind == ffi::xmlElementType_XML_DTD_NODE
                || kind == ffi::xmlElementType_XML_ENTITY_DECL
            {
                return Err(ParseError::Doctype);
            }
            top = unsafe { (*top).next };
        }
        // Iterative depth-first walk: recursion depth must not depend on input.
        let mut stack: Vec<(Node<'_>, usize)> = vec![(root, 1)];
        while let Some((node, depth)) = stack.pop() {
            nodes += 1;
            if nodes > limits.max_nodes {
                return Err(ParseError::TooManyNodes {
                    limit: limits.max_nodes,
                });
            }
            match node.kind() {
                NodeKind::Element => {
                    if depth > limits.max_depth {
                        return Err(ParseError::TooDeep {
                            depth,
                            limit: limits.max_depth,
                        });
                    }
                    let mut count = 0usize;
                    for attr in node.attributes() {
                        count += 1;
                        if count > limits.max_attributes_per_element {
                            return Err(ParseError::TooManyAttributes {
                                count,
                                limit: limits.max_attributes_per_element,
                            });
                        }
                        if attr.is_id() {
                            ids.insert(attr.value(), node.raw())?;
                        }
                    }
                    if !relative_namespace {
                        relative_namespace = declares_relative_namespace(node.raw());
                    }
                    for child in node.children_raw() {
                        stack.push((child, depth + 1));
                    }
                }
                NodeKind::Text | NodeKind::CData => {
                    let size = node.content_len();
                    if size > limits.max_text_bytes {
                        return Err(ParseError::TextTooLarge {
                            size,
                            limit: limits.max_text_bytes,
                        });
                    }
                }
                NodeKind::EntityRef => return Err(ParseError::EntityReference),
                NodeKind::Comment | NodeKind::ProcessingInstruction => {}
                NodeKind::Other => return Err(ParseError::EntityReference),
            }
        }
        Ok((ids, relative_namespace))
    }
}

/// Whether `element` declares a namespace that libxml2's canonicaliser
/// refuses: a non-empty URI that does not parse, or parses without a scheme.
/// The same test as libxml2's `xmlC14NCheckForRelativeNamespaces`, which it
/// applies to every element it walks.
fn declares_relative_namespace(element: *mut ffi::xmlNode) -> bool {
    // SAFETY: `element` is a live element of a document being scanned; its
    // namespace declarations and their strings live as long as the tree; the
    // parsed URI is ours and freed here.
    unsafe {
        let mut ns = (*element).nsDef;
        while !ns.is_null() {
            let href = (*ns).href;
            if !href.is_null() && *href != 0 {
                let uri = ffi::xmlParseURI(href.cast());
                if uri.is_null() {
                    return true;
                }
                let scheme = (*uri).scheme;
                let relative = scheme.is_null() || *scheme == 0;
                ffi::xmlFreeURI(uri);
                if relative {
                    return true;
                }
            }
            ns = (*ns).next;
        }
    }
    false
}

#[cold]
fn unreachable_root() -> ! {
    // Invariant: `Document::parse` only returns documents with a root element.
    std::process::abort()
}

fn free_doc(doc: Option<NonNull<ffi::xmlDoc>>) {
    if let Some(doc) = doc {
        // SAFETY: we own the document and nothing borrows it yet.
        unsafe { ffi::xmlFreeDoc(doc.as_ptr()) }
    }
}

impl Drop for Document {
    fn drop(&mut self) {
        // SAFETY: we own the document; borrows of it (Nodes) cannot outlive self.
        unsafe { ffi::xmlFreeDoc(self.doc.as_ptr()) }
    }
}

/// Runs libxml2's parser over `bytes` with Tamga's [`OPTIONS`], the input
/// declared UTF-8 (already checked by [`precheck`]), and `private` reachable
/// from the SAX callbacks for the duration of the parse. The tree parse and
/// the streaming passes both come through here, so they cannot drift apart
/// in what they accept. Returns the document libxml2 built (possibly null or
/// partial) and the error when the input was not well-formed.
///
/// # Safety
/// `ctxt` must be a live parser context whose SAX callbacks, if they read
/// `_private`, expect what `private` points to; `private` must outlive the
/// call (it is unhooked before returning).
pub(crate) unsafe fn read_memory(
    ctxt: ffi::xmlParserCtxtPtr,
    bytes: &[u8],
    len: c_int,
    private: *mut std::ffi::c_void,
) -> (*mut ffi::xmlDoc, Option<ParseError>) {
    // SAFETY: guaranteed by the caller (see above); `bytes` is valid for
    // `len` bytes, and the names are NUL-terminated literals.
    unsafe {
        (*ctxt)._private = private;
        let doc = ffi::xmlCtxtReadMemory(
            ctxt,
            bytes.as_ptr() as *const c_char,
            len,
            c"tamga:input".as_ptr(),
            c"UTF-8".as_ptr(),
            OPTIONS,
        );
        (*ctxt)._private = std::ptr::null_mut();
        let error = if doc.is_null() || (*ctxt).wellFormed == 0 {
            Some(last_error(ctxt))
        } else {
            None
        };
        (doc, error)
    }
}

/// One-time global initialisation, required before libxml2 is used from
/// several threads.
pub(crate) fn init_libxml2() {
    INIT.call_once(|| {
        // SAFETY: called once, before any other libxml2 use by Tamga.
        unsafe { ffi::xmlInitParser() }
    });
}

/// The error for a parse libxml2 refused. libxml2 enforces its own nesting
/// limit (256 without XML_PARSE_HUGE, which Tamga never sets) before our
/// scan runs: that one is reported as the limit it is.
pub(crate) fn parser_failure(error: ParseError, limits: &ParseLimits) -> ParseError {
    if let ParseError::Malformed { message, .. } = &error {
        if message.contains("Excessive depth") {
            return ParseError::TooDeep {
                depth: LIBXML2_MAX_DEPTH + 1,
                limit: limits.max_depth.min(LIBXML2_MAX_DEPTH),
            };
        }
    }
    error
}

/// Cheap checks on the raw bytes, before libxml2 sees them.
pub(crate) fn precheck(bytes: &[u8], limits: &ParseLimits) -> Result<(), ParseError> {
    if bytes.is_empty() || bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ParseError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(ParseError::NotUtf8 {
            offset: e.valid_up_to(),
            declared: declared_encoding(bytes).or_else(|| utf16_encoding(bytes)),
        });
    }
    if let Some(declared) = declared_encoding(bytes) {
        if !declared.eq_ignore_ascii_case("UTF-8") && !declared.eq_ignore_ascii_case("UTF8") {
            return Err(ParseError::UnsupportedEncoding { declared });
        }
    }
    Ok(())
}

/// The `encoding` pseudo-attribute of the XML declaration, if there is one.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let decl = body.strip_prefix(b"<?xml")?;
    let end = decl.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&decl[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let rest = rest.trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value = &rest[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_string())
}

/// What a UTF-16 document declares: the encoding of its XML declaration,
/// read from the ASCII characters of its first bytes, else "UTF-16" when
/// it starts with a UTF-16 byte-order mark or `<?` in UTF-16.
fn utf16_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..4)?;
    let utf16 = head.starts_with(b"\xFF\xFE")
        || head.starts_with(b"\xFE\xFF")
        || head == b"<\0?\0"
        || head == b"\0<\0?";
    if !utf16 {
        return None;
    }
    let ascii: Vec<u8> = bytes
        .iter()
        .take(400)
        .copied()
        .filter(|b| *b != 0 && b.is_ascii())
        .collect();
    Some(declared_encoding(&ascii).unwrap_or_else(|| "UTF-16".into()))
}

/// The parser's last error as a [`ParseError`].
///
/// # Safety
/// `ctxt` must be a live parser context.
unsafe fn last_error(ctxt: ffi::xmlParserCtxtPtr) -> ParseError {
    // SAFETY: guaranteed by the caller.
    let err = unsafe { ffi::xmlCtxtGetLastError(ctxt.cast()) };
    if err.is_null() {
        return ParseError::Malformed {
            line: 0,
            column: 0,
            message: "unknown parse error".into(),
        };
    }
    // SAFETY: libxml2 returns a pointer to the context's own error record.
    let (line, column, message) = unsafe {
        let message = if (*err).message.is_null() {
            String::from("unknown parse error")
        } else {
            CStr::from_ptr((*err).message)
                .to_string_lossy()
                .trim()
                .to_string()
        };
        ((*err).line, (*err).int2, message)
    };
    ParseError::Malformed {
        line: u32::try_from(line).unwrap_or(0),
        column: u32::try_from(column).unwrap_or(0),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Document, ParseError> {
        Document::parse(s.as_bytes(), &ParseLimits::default())
    }

    #[test]
    fn parses_plain_document() {
        let doc = parse("<a xmlns='urn:x'><b Id='one'>t</b></a>").unwrap();
        assert_eq!(doc.root().local_name(), "a");
        assert_eq!(doc.element_by_id("one").unwrap().local_name(), "b");
    }

    #[test]
    fn refuses_doctype_before_entities() {
        let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert_eq!(parse(bomb).unwrap_err(), ParseError::Doctype);
        assert_eq!(
            parse(r#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd"><html/>"#).unwrap_err(),
            ParseError::Doctype
        );
    }

    #[test]
    fn refuses_undeclared_entity() {
        assert!(matches!(
            parse("<a>&ext;</a>").unwrap_err(),
            ParseError::Malformed { .. }
        ));
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        assert_eq!(parse("").unwrap_err(), ParseError::Empty);
        assert!(matches!(
            parse("<a><b></a>").unwrap_err(),
            ParseError::Malformed { .. }
        ));
        assert!(matches!(
            parse("<a>").unwrap_err(),
            ParseError::Malformed { .. }
        ));
        assert!(matches!(
            Document::parse(b"<a>\xff</a>", &ParseLimits::default()).unwrap_err(),
            ParseError::NotUtf8 {
                offset: 3,
                declared: None
            }
        ));
        let cp1251 = Document::parse(
            b"<?xml version='1.0' encoding='windows-1251'?><a>\xcf\xf0</a>",
            &ParseLimits::default(),
        )
        .unwrap_err();
        assert_eq!(
            cp1251.to_string(),
            "the document is not valid UTF-8 (first bad byte at offset 48); it declares the encoding \"windows-1251\"; only UTF-8 is accepted"
        );
        let utf16: Vec<u8> = "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(matches!(
            Document::parse(&utf16, &ParseLimits::default()).unwrap_err(),
            ParseError::NotUtf8 { declared: Some(e), .. } if e == "UTF-16"
        ));
        assert!(matches!(
            parse("<?xml version='1.0' encoding='ISO-8859-1'?><a/>").unwrap_err(),
            ParseError::UnsupportedEncoding { .. }
        ));
        assert!(matches!(
            Document::parse(b"\0\x01\x02binary", &ParseLimits::default()).unwrap_err(),
            ParseError::Malformed { .. }
        ));
    }

    #[test]
    fn enforces_limits() {
        let limits = ParseLimits {
            max_depth: 3,
            max_attributes_per_element: 2,
            max_text_bytes: 4,
            max_bytes: 100,
            ..ParseLimits::default()
        };
        let p = |s: &str| Document::parse(s.as_bytes(), &limits);
        assert!(matches!(
            p("<a><b><c><d/></c></b></a>").unwrap_err(),
            ParseError::TooDeep { depth: 4, .. }
        ));
        assert!(matches!(
            p("<a x='1' y='2' z='3'/>").unwrap_err(),
            ParseError::TooManyAttributes { .. }
        ));
        assert!(matches!(
            p("<a>12345</a>").unwrap_err(),
            ParseError::TextTooLarge { .. }
        ));
        assert!(matches!(
            p(&format!("<a>{}</a>", " ".repeat(200))).unwrap_err(),
            ParseError::TooLarge { .. }
        ));
    }

    #[test]
    fn refuses_duplicate_ids_across_spellings() {
        assert!(matches!(
            parse("<a><b Id='x'/><c ID='x'/></a>").unwrap_err(),
            ParseError::DuplicateId { .. }
        ));
        assert!(matches!(
            parse("<a xml:id='x'><b Id='x'/></a>").unwrap_err(),
            ParseError::DuplicateId { .. }
        ));
    }

    #[test]
    fn deep_nesting_beyond_libxml_default_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert!(matches!(
            parse(&deep).unwrap_err(),
            ParseError::TooDeep { .. }
        ));
        let deep = format!("{}{}", "<a>".repeat(300), "</a>".repeat(300));
        assert!(matches!(
            parse(&deep).unwrap_err(),
            ParseError::TooDeep { .. }
        ));
    }
}

#[cfg(test)]
mod span_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Far larger than libxml2's read-ahead and its 32,000-byte conversion
    /// buffer, with a byte-order mark, CRLF and multi-byte text: every
    /// element's span reads back as that element.
    #[test]
    fn spans_of_a_large_document() {
        let mut xml = String::from(
            "\u{feff}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<r xmlns=\"urn:x\">\r\n",
        );
        for i in 0..20_000 {
            xml.push_str(&format!(
                "  <item n=\"{i}\" t=\"a&gt;b\">Қазақстан {i}<b/></item >\r\n"
            ));
        }
        xml.push_str("</r>\r\n");
        let bytes = xml.as_bytes();
        let limits = ParseLimits {
            max_nodes: 1_000_000,
            ..ParseLimits::default()
        };
        let doc = Document::parse_with_spans(bytes, &limits).unwrap();
        let root = doc.root();
        let span = doc.span(root).unwrap();
        assert_eq!(&xml[span.start..span.start_tag_end], "<r xmlns=\"urn:x\">");
        assert_eq!(&xml[span.end_tag_start..], "</r>\r\n");
        for (i, item) in root.element_children().enumerate() {
            let span = doc.span(item).unwrap();
            let text = &xml[span.start..span.end];
            assert!(text.starts_with(&format!("<item n=\"{i}\" ")), "{text}");
            assert!(text.ends_with("<b/></item >"), "{text}");
            let b = doc.span(item.element_children().next().unwrap()).unwrap();
            assert!(b.empty);
            assert_eq!(&xml[b.start..b.end], "<b/>");
        }
    }
}
