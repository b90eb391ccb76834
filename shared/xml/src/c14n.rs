//! Canonical XML through libxml2's canonicaliser, streamed into any writer.
//!
//! Never through the `libxml` crate's `canonicalize` wrappers: they decode
//! each output chunk lossily and corrupt multibyte text split across chunks.
//! The canonical bytes go straight to a `Write` (a digest, usually), so a
//! reference over a large document never holds a second copy in memory.

use std::ffi::{c_char, c_int, c_void, CString};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use libxml::bindings as ffi;

use crate::document::Document;
use crate::error::C14nError;
use crate::node::Node;

/// The canonicalisation algorithms XML-DSig names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum C14nMethod {
    /// Canonical XML 1.0 (inclusive).
    Inclusive10,
    /// Canonical XML 1.1 (inclusive, with the xml:id / xml:base fix-ups).
    Inclusive11,
    /// Exclusive XML Canonicalization 1.0.
    Exclusive10,
}

/// A fully specified canonicalisation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Canonicalization {
    pub method: C14nMethod,
    pub with_comments: bool,
    /// Exclusive c14n's InclusiveNamespaces PrefixList (`#default` allowed).
    pub inclusive_prefixes: Vec<String>,
}

impl Canonicalization {
    pub fn new(method: C14nMethod, with_comments: bool) -> Self {
        Self {
            method,
            with_comments,
            inclusive_prefixes: Vec::new(),
        }
    }
}

/// Which part of the document to canonicalise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'d> {
    /// The whole document (as for a `URI=""` reference).
    Document,
    /// An element and everything below it (as for a `#id` reference), with
    /// its in-scope namespaces as the algorithm requires.
    Subtree(Node<'d>),
}

struct Visibility {
    /// Null: the whole document.
    root: *mut ffi::xmlNode,
    /// Null: nothing excluded. Otherwise this subtree is invisible (the
    /// enveloped-signature transform).
    exclude: *mut ffi::xmlNode,
}

/// libxml2's node-set callback: is `node` (whose element is `parent` for
/// namespace nodes) in the selected node-set?
unsafe extern "C" fn is_visible(
    user: *mut c_void,
    node: *mut ffi::xmlNode,
    parent: *mut ffi::xmlNode,
) -> c_int {
    if user.is_null() || node.is_null() {
        return 0;
    }
    // SAFETY: `user` is the `Visibility` passed to xmlC14NExecute and lives for
    // the call. `node` may be an xmlNs, xmlAttr or xmlNode: all three put
    // `type_` at the same offset (libxml2 relies on this itself), and only
    // xmlAttr/xmlNode are followed through `parent`, which they share.
    unsafe {
        let vis = &*(user as *const Visibility);
        let kind = std::ptr::addr_of!((*node).type_).read();
        let mut cur = if kind == ffi::xmlElementType_XML_NAMESPACE_DECL {
            parent
        } else {
            node
        };
        loop {
            if cur.is_null() {
                return c_int::from(vis.root.is_null());
            }
            if cur == vis.exclude {
                return 0;
            }
            if cur == vis.root {
                return 1;
            }
            cur = std::ptr::addr_of!((*cur).parent).read();
        }
    }
}

struct Sink<'a> {
    out: &'a mut dyn Write,
    failed: bool,
}

unsafe extern "C" fn write_sink(ctx: *mut c_void, buf: *const c_char, len: c_int) -> c_int {
    if ctx.is_null() || len < 0 {
        return -1;
    }
    // SAFETY: `ctx` is the live `Sink` given to xmlOutputBufferCreateIO;
    // libxml2 passes `len` readable bytes at `buf`.
    let (sink, bytes) = unsafe {
        (
            &mut *(ctx as *mut Sink<'_>),
            std::slice::from_raw_parts(buf.cast::<u8>(), len as usize),
        )
    };
    // A panic must not unwind into C.
    let ok = catch_unwind(AssertUnwindSafe(|| sink.out.write_all(bytes).is_ok())).unwrap_or(false);
    if ok {
        len
    } else {
        sink.failed = true;
        -1
    }
}

/// A throw-away document whose only top-level node is `apex`, a node of
/// another document, so that libxml2's canonicaliser starts its walk there.
///
/// `xmlC14NExecute` always walks from the document's children and asks
/// `is_visible` about every node, attribute and namespace of the whole tree,
/// even when only a small subtree (`SignedInfo`) is selected: for a 1 MB
/// declaration that is a second full walk per signature. Walking from the
/// apex gives the same bytes: the nodes skipped (the apex's ancestors, their
/// attributes and namespaces, and whatever precedes or follows them) are all
/// invisible, and libxml2 neither writes nor remembers anything for an
/// invisible node (its rendered-namespace stack only grows at visible nodes
/// and is restored after each element; `parent_is_doc` and the position only
/// change at visible ones). Ancestors are still read through the apex's
/// `parent` pointers, for in-scope namespaces and inherited `xml:*`
/// attributes, exactly as before. The one thing libxml2 checks on invisible
/// elements, relative namespace URIs, is why a document with one always
/// takes the full walk ([`Document::relative_namespace`]).
///
/// The original document is not touched; this one is detached from the
/// apex again before it is freed, so freeing it frees nothing else.
struct ApexDocument(*mut ffi::xmlDoc);

impl ApexDocument {
    fn new(apex: *mut ffi::xmlNode) -> Result<Self, C14nError> {
        // SAFETY: xmlNewDoc returns a new document we own (or null); it has
        // no children, so pointing `children`/`last` at the apex is the only
        // link, and `drop` removes it.
        unsafe {
            let doc = ffi::xmlNewDoc(c"1.0".as_ptr().cast());
            if doc.is_null() {
                return Err(C14nError::Output);
            }
            (*doc).children = apex;
            (*doc).last = apex;
            Ok(Self(doc))
        }
    }
}

impl Drop for ApexDocument {
    fn drop(&mut self) {
        // SAFETY: we own the document; detached, it frees only itself.
        unsafe {
            (*self.0).children = std::ptr::null_mut();
            (*self.0).last = std::ptr::null_mut();
            ffi::xmlFreeDoc(self.0);
        }
    }
}

impl Document {
    /// Canonicalises `selection`, minus the `exclude` subtree if given, into
    /// `out`.
    pub fn canonicalize(
        &self,
        selection: Selection<'_>,
        exclude: Option<Node<'_>>,
        c14n: &Canonicalization,
        out: &mut dyn Write,
    ) -> Result<(), C14nError> {
        self.canonicalize_walk(selection, exclude, c14n, out, true)
    }

    /// [`Document::canonicalize`] the way libxml2 alone does it: always a
    /// walk of the whole tree, whatever is selected. Same bytes, slower; the
    /// reference that tests and the `c14n` fuzz target compare with.
    #[doc(hidden)]
    pub fn canonicalize_full_walk(
        &self,
        selection: Selection<'_>,
        exclude: Option<Node<'_>>,
        c14n: &Canonicalization,
        out: &mut dyn Write,
    ) -> Result<(), C14nError> {
        self.canonicalize_walk(selection, exclude, c14n, out, false)
    }

    /// With `from_apex`, a subtree is walked from its apex (see
    /// [`ApexDocument`]); without, from the document's children.
    fn canonicalize_walk(
        &self,
        selection: Selection<'_>,
        exclude: Option<Node<'_>>,
        c14n: &Canonicalization,
        out: &mut dyn Write,
        from_apex: bool,
    ) -> Result<(), C14nError> {
        let vis = Visibility {
            root: match selection {
                Selection::Document => std::ptr::null_mut(),
                Selection::Subtree(n) => n.raw(),
            },
            exclude: exclude.map_or(std::ptr::null_mut(), |n| n.raw()),
        };
        let whole = vis.root.is_null() && vis.exclude.is_null();

        let prefixes: Vec<CString> = if c14n.method == C14nMethod::Exclusive10 {
            c14n.inclusive_prefixes
                .iter()
                .map(|p| CString::new(p.as_str()).map_err(|_| C14nError::BadPrefix))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let mut prefix_ptrs: Vec<*mut ffi::xmlChar> = prefixes
            .iter()
            .map(|p| p.as_ptr() as *mut ffi::xmlChar)
            .collect();
        prefix_ptrs.push(std::ptr::null_mut());

        let mode = match c14n.method {
            C14nMethod::Inclusive10 => ffi::xmlC14NMode_XML_C14N_1_0,
            C14nMethod::Inclusive11 => ffi::xmlC14NMode_XML_C14N_1_1,
            C14nMethod::Exclusive10 => ffi::xmlC14NMode_XML_C14N_EXCLUSIVE_1_0,
        } as c_int;

        let apex = match selection {
            Selection::Subtree(n) if from_apex && !self.relative_namespace() => {
                Some(ApexDocument::new(n.raw())?)
            }
            _ => None,
        };
        let walk_from = apex.as_ref().map_or(self.raw(), |a| a.0);

        let mut sink = Sink { out, failed: false };
        // SAFETY: the output buffer, visibility record, sink, prefix list and
        // apex document all outlive the xmlC14NExecute call; the buffer is
        // closed (and so flushed and freed) before they go out of scope.
        let (rc, closed) = unsafe {
            let buf = ffi::xmlOutputBufferCreateIO(
                Some(write_sink),
                None,
                (&mut sink as *mut Sink<'_>).cast(),
                std::ptr::null_mut(),
            );
            if buf.is_null() {
                return Err(C14nError::Output);
            }
            let rc = ffi::xmlC14NExecute(
                walk_from,
                if whole { None } else { Some(is_visible) },
                if whole {
                    std::ptr::null_mut()
                } else {
                    (&vis as *const Visibility as *mut Visibility).cast()
                },
                mode,
                if prefixes.is_empty() {
                    std::ptr::null_mut()
                } else {
                    prefix_ptrs.as_mut_ptr()
                },
                c_int::from(c14n.with_comments),
                buf,
            );
            let closed = ffi::xmlOutputBufferClose(buf);
            (rc, closed)
        };
        drop(apex);
        if sink.failed || closed < 0 {
            return Err(C14nError::Output);
        }
        if rc < 0 {
            return Err(C14nError::Failed);
        }
        Ok(())
    }

    /// [`Document::canonicalize`] into a new vector.
    pub fn canonicalize_to_vec(
        &self,
        selection: Selection<'_>,
        exclude: Option<Node<'_>>,
        c14n: &Canonicalization,
    ) -> Result<Vec<u8>, C14nError> {
        let mut out = Vec::new();
        self.canonicalize(selection, exclude, c14n, &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseLimits;

    fn doc(s: &str) -> Document {
        Document::parse(s.as_bytes(), &ParseLimits::default()).unwrap()
    }

    fn c(method: C14nMethod) -> Canonicalization {
        Canonicalization::new(method, false)
    }

    #[test]
    fn subtree_inherits_namespaces_inclusive_but_not_exclusive() {
        let d = doc("<a xmlns='urn:a' xmlns:p='urn:p'><b Id='x'><c/></b></a>");
        let b = d.element_by_id("x").unwrap();
        let inc = d
            .canonicalize_to_vec(Selection::Subtree(b), None, &c(C14nMethod::Inclusive10))
            .unwrap();
        assert_eq!(
            String::from_utf8(inc).unwrap(),
            r#"<b xmlns="urn:a" xmlns:p="urn:p" Id="x"><c></c></b>"#
        );
        let exc = d
            .canonicalize_to_vec(Selection::Subtree(b), None, &c(C14nMethod::Exclusive10))
            .unwrap();
        assert_eq!(
            String::from_utf8(exc).unwrap(),
            r#"<b xmlns="urn:a" Id="x"><c></c></b>"#
        );
    }

    #[test]
    fn exclusion_and_comments() {
        let d = doc("<a><!--c--><s><x/></s><b>t</b></a>");
        let s = d.root().element_children().next().unwrap();
        let out = d
            .canonicalize_to_vec(Selection::Document, Some(s), &c(C14nMethod::Inclusive10))
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "<a><b>t</b></a>");
        let with = Canonicalization::new(C14nMethod::Inclusive10, true);
        let out = d
            .canonicalize_to_vec(Selection::Document, None, &with)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<a><!--c--><s><x></x></s><b>t</b></a>"
        );
    }

    #[test]
    fn long_multibyte_text_survives_intact() {
        // The libxml crate's wrapper corrupts this (lossy decode per chunk).
        let text = "Қазақстан Türkiye Azərbaycan ".repeat(2000);
        let d = doc(&format!("<a>{text}</a>"));
        let out = d
            .canonicalize_to_vec(Selection::Document, None, &c(C14nMethod::Exclusive10))
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("<a>{text}</a>"));
    }

    /// The walk from the apex must give exactly the bytes of libxml2's own
    /// full walk, for every element, algorithm, comment mode, prefix list and
    /// exclusion.
    #[test]
    fn walk_from_apex_matches_full_walk() {
        let d = doc(concat!(
            "<?xml version='1.0'?>\n<!--before--><?pi before?>\n",
            "<r xmlns='urn:default' xmlns:a='urn:a' xmlns:b='urn:b' xml:lang='kk' ",
            "xml:space='preserve' xml:base='http://example.org/dir/' Id='root'>\n",
            "  <a:x Id='x' b:attr='v' xml:lang='az'><!-- c1 --><y xmlns='' a:q='1'>t &amp; &lt; m\r</y>",
            "<?pi inside?>\n    <z xmlns:c='urn:c' Id='z'><c:w xml:base='sub/' xml:id='w'> Қазақ </c:w>",
            "<![CDATA[cd<>]]><b:e a:k='&#x9;'/></z>\n  </a:x>\n",
            "  <s Id='s'><t xmlns:a='urn:other' a:u='2'/></s>\n</r>\n<!--after--><?pi after?>"
        ));
        let root = d.root();
        let elements: Vec<Node<'_>> = std::iter::once(root).chain(root.descendants()).collect();
        assert!(elements.len() >= 8);
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
        let mut prefixed = Canonicalization::new(C14nMethod::Exclusive10, true);
        prefixed.inclusive_prefixes = vec!["a".into(), "#default".into()];
        specs.push(prefixed);
        let mut compared = 0;
        for apex in &elements {
            for exclude in std::iter::once(None).chain(elements.iter().map(|e| Some(*e))) {
                for spec in &specs {
                    let selection = Selection::Subtree(*apex);
                    let mut fast = Vec::new();
                    let fast = d
                        .canonicalize(selection, exclude, spec, &mut fast)
                        .map(|()| fast);
                    let mut full = Vec::new();
                    let full = d
                        .canonicalize_full_walk(selection, exclude, spec, &mut full)
                        .map(|()| full);
                    assert_eq!(fast, full, "apex {apex:?}, exclude {exclude:?}, {spec:?}");
                    compared += 1;
                }
            }
        }
        assert!(compared > 500);
    }

    #[test]
    fn relative_namespace_anywhere_fails_any_selection() {
        for text in [
            "<r xmlns:p='relative/uri'><s Id='s'/></r>",
            "<r><q xmlns='also-relative'/><s Id='s'/></r>",
        ] {
            let d = doc(text);
            let s = d.element_by_id("s").unwrap();
            let spec = c(C14nMethod::Exclusive10);
            let selection = Selection::Subtree(s);
            let mut out = Vec::new();
            assert_eq!(
                d.canonicalize(selection, None, &spec, &mut out),
                Err(C14nError::Failed),
                "{text}"
            );
            assert_eq!(
                d.canonicalize_full_walk(selection, None, &spec, &mut out),
                Err(C14nError::Failed),
                "{text}"
            );
        }
        // An absolute URI anywhere is fine.
        let d = doc("<r xmlns:p='urn:absolute'><s Id='s'/></r>");
        let s = d.element_by_id("s").unwrap();
        assert_eq!(
            d.canonicalize_to_vec(Selection::Subtree(s), None, &c(C14nMethod::Exclusive10))
                .unwrap(),
            b"<s Id=\"s\"></s>"
        );
    }

    #[test]
    fn inclusive_prefix_list() {
        let d = doc("<a xmlns:p='urn:p' xmlns:q='urn:q'><b Id='x'/></a>");
        let b = d.element_by_id("x").unwrap();
        let mut spec = c(C14nMethod::Exclusive10);
        spec.inclusive_prefixes = vec!["q".into()];
        let out = d
            .canonicalize_to_vec(Selection::Subtree(b), None, &spec)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<b xmlns:q="urn:q" Id="x"></b>"#
        );
    }
}
