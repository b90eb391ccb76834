use std::borrow::Cow;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

use libxml::bindings as ffi;

use crate::document::Document;
use crate::XML_NAMESPACE;

/// What a node is. Entity references and DTD nodes never survive parsing,
/// but are named so the scan can refuse them explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeKind {
    Element,
    Text,
    CData,
    Comment,
    ProcessingInstruction,
    EntityRef,
    Other,
}

/// A read-only view of a node in a [`Document`].
#[derive(Clone, Copy)]
pub struct Node<'d> {
    ptr: NonNull<ffi::xmlNode>,
    _doc: PhantomData<&'d Document>,
}

impl PartialEq for Node<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl Eq for Node<'_> {}

impl std::fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({} line {})", self.path(), self.line())
    }
}

/// # Safety (module-wide)
/// A `Node<'d>` is only ever built from a pointer into a live `Document` that
/// is borrowed for `'d`, and documents are never mutated after parsing, so
/// every dereference below reads valid, unchanging memory.
fn cstr<'a>(p: *const ffi::xmlChar) -> Option<Cow<'a, str>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: libxml2 strings are NUL-terminated and live as long as the tree.
    Some(unsafe { CStr::from_ptr(p.cast()) }.to_string_lossy())
}

fn cstr_str<'a>(p: *const ffi::xmlChar) -> &'a str {
    if p.is_null() {
        return "";
    }
    // SAFETY: as above. Names are validated UTF-8 by the parser.
    unsafe { CStr::from_ptr(p.cast()) }.to_str().unwrap_or("")
}

impl<'d> Node<'d> {
    pub(crate) fn from_raw(ptr: *mut ffi::xmlNode) -> Option<Self> {
        NonNull::new(ptr).map(|ptr| Node {
            ptr,
            _doc: PhantomData,
        })
    }

    pub(crate) fn raw(&self) -> *mut ffi::xmlNode {
        self.ptr.as_ptr()
    }

    fn get(&self) -> &'d ffi::xmlNode {
        // SAFETY: see the module note: the node lives as long as 'd.
        unsafe { &*self.ptr.as_ptr() }
    }

    pub fn kind(&self) -> NodeKind {
        match self.get().type_ {
            ffi::xmlElementType_XML_ELEMENT_NODE => NodeKind::Element,
            ffi::xmlElementType_XML_TEXT_NODE => NodeKind::Text,
            ffi::xmlElementType_XML_CDATA_SECTION_NODE => NodeKind::CData,
            ffi::xmlElementType_XML_COMMENT_NODE => NodeKind::Comment,
            ffi::xmlElementType_XML_PI_NODE => NodeKind::ProcessingInstruction,
            ffi::xmlElementType_XML_ENTITY_REF_NODE | ffi::xmlElementType_XML_ENTITY_NODE => {
                NodeKind::EntityRef
            }
            _ => NodeKind::Other,
        }
    }

    pub fn is_element(&self) -> bool {
        self.kind() == NodeKind::Element
    }

    /// The local name (no prefix) of an element.
    pub fn local_name(&self) -> &'d str {
        cstr_str(self.get().name)
    }

    /// The namespace URI of an element, if it has one.
    pub fn namespace(&self) -> Option<&'d str> {
        let ns = self.get().ns;
        if ns.is_null() {
            return None;
        }
        // SAFETY: namespace records live as long as the tree.
        Some(cstr_str(unsafe { (*ns).href }))
    }

    /// The prefix an element was written with, if any.
    pub fn prefix(&self) -> Option<&'d str> {
        let ns = self.get().ns;
        if ns.is_null() {
            return None;
        }
        // SAFETY: as above.
        let p = unsafe { (*ns).prefix };
        (!p.is_null()).then(|| cstr_str(p))
    }

    /// The namespace declarations written on this element, as (prefix, URI); `None` is
    /// the default namespace (an empty URI undeclares it).
    pub fn namespace_declarations(&self) -> Vec<(Option<&'d str>, &'d str)> {
        let mut out = Vec::new();
        if !self.is_element() {
            return out;
        }
        let mut ns = self.get().nsDef;
        while !ns.is_null() {
            // SAFETY: namespace records and their strings live as long as the tree.
            let (prefix, href, next) = unsafe { ((*ns).prefix, (*ns).href, (*ns).next) };
            out.push((
                (!prefix.is_null()).then(|| cstr_str(prefix)),
                cstr_str(href),
            ));
            ns = next;
        }
        out
    }

    /// True for an element with this namespace URI and local name.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.is_element() && self.local_name() == local && self.namespace() == Some(namespace)
    }

    /// The parent element, or `None` for the document element.
    pub fn parent(&self) -> Option<Node<'d>> {
        let p = self.get().parent;
        let node = Node::from_raw(p)?;
        node.is_element().then_some(node)
    }

    /// All children, of every kind, in document order.
    pub fn children_raw(&self) -> impl Iterator<Item = Node<'d>> {
        let mut next = self.get().children;
        std::iter::from_fn(move || {
            let node = Node::from_raw(next)?;
            next = node.get().next;
            Some(node)
        })
    }

    /// Element children in document order.
    pub fn element_children(&self) -> impl Iterator<Item = Node<'d>> {
        self.children_raw().filter(|n| n.is_element())
    }

    /// The first element child with this name.
    pub fn child(&self, namespace: &str, local: &str) -> Option<Node<'d>> {
        self.element_children().find(|c| c.is(namespace, local))
    }

    /// Attributes (namespace declarations are not attributes).
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'d>> {
        let mut next = if self.is_element() {
            self.get().properties
        } else {
            std::ptr::null_mut()
        };
        std::iter::from_fn(move || {
            let attr = NonNull::new(next)?;
            // SAFETY: attribute records live as long as the tree.
            next = unsafe { (*attr.as_ptr()).next };
            Some(Attribute {
                ptr: attr,
                _doc: PhantomData,
            })
        })
    }

    /// The value of the un-namespaced attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes()
            .find(|a| a.namespace().is_none() && a.local_name() == name)
            .map(|a| a.value())
    }

    /// The concatenated text and CDATA children (not descendants). Comments
    /// are skipped, as canonicalisation without comments would skip them.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in self.children_raw() {
            if matches!(c.kind(), NodeKind::Text | NodeKind::CData) {
                if let Some(s) = cstr(c.get().content) {
                    out.push_str(&s);
                }
            }
        }
        out
    }

    /// Every text and CDATA descendant, concatenated in document order (the
    /// XPath string-value; comments and PIs are not text), skipping the
    /// subtree `exclude` if given.
    pub fn string_value(&self, exclude: Option<Node<'d>>) -> String {
        let mut out = String::new();
        // Iterative: the walk's depth must not depend on input.
        let mut stack = vec![*self];
        while let Some(n) = stack.pop() {
            if Some(n) == exclude {
                continue;
            }
            match n.kind() {
                NodeKind::Text | NodeKind::CData => {
                    if let Some(s) = cstr(n.get().content) {
                        out.push_str(&s);
                    }
                }
                NodeKind::Element => {
                    let kids: Vec<Node<'d>> = n.children_raw().collect();
                    stack.extend(kids.into_iter().rev());
                }
                _ => {}
            }
        }
        out
    }

    /// True when the node has text or CDATA children that are not whitespace.
    pub fn has_significant_text(&self) -> bool {
        self.children_raw().any(|c| {
            matches!(c.kind(), NodeKind::Text | NodeKind::CData)
                && cstr(c.get().content).is_some_and(|s| !s.trim().is_empty())
        })
    }

    pub(crate) fn content_len(&self) -> usize {
        let p = self.get().content;
        if p.is_null() {
            return 0;
        }
        // SAFETY: NUL-terminated content string.
        unsafe { CStr::from_ptr(p.cast()) }.to_bytes().len()
    }

    /// The source line, for messages.
    pub fn line(&self) -> u32 {
        // SAFETY: valid node.
        let n = unsafe { ffi::xmlGetLineNo(self.ptr.as_ptr()) };
        u32::try_from(n).unwrap_or(0)
    }

    /// True when `self` is `other` or one of its ancestors.
    pub fn contains(&self, other: Node<'d>) -> bool {
        let mut cur = Some(other);
        while let Some(n) = cur {
            if n == *self {
                return true;
            }
            cur = Node::from_raw(n.get().parent);
        }
        false
    }

    /// Depth below the document element (the document element is 0).
    pub fn depth(&self) -> usize {
        let mut d = 0;
        let mut cur = self.parent();
        while let Some(n) = cur {
            d += 1;
            cur = n.parent();
        }
        d
    }

    /// A readable location such as `/Declaration/ds:Signature[1]`, for messages.
    pub fn path(&self) -> String {
        let mut parts = Vec::new();
        let mut cur = Some(*self);
        while let Some(n) = cur {
            if !n.is_element() {
                break;
            }
            let name = match n.prefix() {
                Some(p) => format!("{p}:{}", n.local_name()),
                None => n.local_name().to_string(),
            };
            let index = n.element_index_among_same_name();
            parts.push(if index > 1 {
                format!("{name}[{index}]")
            } else {
                name
            });
            cur = n.parent();
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    fn element_index_among_same_name(&self) -> usize {
        let mut index = 1;
        let mut prev = self.get().prev;
        while let Some(p) = Node::from_raw(prev) {
            if p.is_element()
                && p.local_name() == self.local_name()
                && p.namespace() == self.namespace()
            {
                index += 1;
            }
            prev = p.get().prev;
        }
        index
    }

    /// All descendant elements (not self) in document order.
    ///
    /// Walks the tree's own links (first child, next sibling, parent), so it
    /// allocates nothing and its memory does not depend on the input.
    pub fn descendants(&self) -> impl Iterator<Item = Node<'d>> {
        let root = *self;
        let mut next = root.element_children().next();
        std::iter::from_fn(move || {
            let current = next?;
            next = current.element_children().next().or_else(|| {
                // No element child: the next element sibling of the nearest
                // node on the way back up that has one, stopping at `root`.
                let mut n = current;
                loop {
                    if let Some(sibling) = n.next_element_sibling() {
                        return Some(sibling);
                    }
                    let parent = Node::from_raw(n.get().parent)?;
                    if parent == root {
                        return None;
                    }
                    n = parent;
                }
            });
            Some(current)
        })
    }

    fn next_element_sibling(&self) -> Option<Node<'d>> {
        let mut next = self.get().next;
        while let Some(n) = Node::from_raw(next) {
            if n.is_element() {
                return Some(n);
            }
            next = n.get().next;
        }
        None
    }
}

/// A read-only view of an attribute.
#[derive(Clone, Copy)]
pub struct Attribute<'d> {
    ptr: NonNull<ffi::xmlAttr>,
    _doc: PhantomData<&'d Document>,
}

impl std::fmt::Debug for Attribute<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Attribute({}={:?})", self.local_name(), self.value())
    }
}

impl<'d> Attribute<'d> {
    fn get(&self) -> &'d ffi::xmlAttr {
        // SAFETY: see the module note.
        unsafe { &*self.ptr.as_ptr() }
    }

    pub fn local_name(&self) -> &'d str {
        cstr_str(self.get().name)
    }

    pub fn namespace(&self) -> Option<&'d str> {
        let ns = self.get().ns;
        if ns.is_null() {
            return None;
        }
        // SAFETY: namespace records live as long as the tree.
        Some(cstr_str(unsafe { (*ns).href }))
    }

    /// The attribute's value (its text children, concatenated).
    pub fn value(&self) -> String {
        let mut out = String::new();
        let mut child = self.get().children;
        while let Some(c) = Node::from_raw(child) {
            if let Some(s) = cstr(c.get().content) {
                out.push_str(&s);
            }
            child = c.get().next;
        }
        out
    }

    /// `Id`, `ID` (un-namespaced) or `xml:id`: the attributes Tamga treats as IDs.
    pub fn is_id(&self) -> bool {
        match self.namespace() {
            None => matches!(self.local_name(), "Id" | "ID"),
            Some(ns) => ns == XML_NAMESPACE && self.local_name() == "id",
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Document, ParseLimits};

    #[test]
    fn descendants_are_elements_in_document_order() {
        let doc = Document::parse(
            b"<a>t<b><c/>x<d><e/></d></b><!--k--><f><g/></f><h/></a>",
            &ParseLimits::default(),
        )
        .unwrap();
        let names = |n: crate::Node<'_>| -> String {
            n.descendants()
                .map(|d| d.local_name())
                .collect::<Vec<_>>()
                .join(",")
        };
        let root = doc.root();
        assert_eq!(names(root), "b,c,d,e,f,g,h");
        let b = root.element_children().next().unwrap();
        assert_eq!(names(b), "c,d,e");
        let h = root.element_children().last().unwrap();
        assert_eq!(names(h), "");
        // Deep documents: no recursion, no stack.
        let deep = format!("{}{}", "<x>".repeat(200), "</x>".repeat(200));
        let doc = Document::parse(deep.as_bytes(), &ParseLimits::default()).unwrap();
        assert_eq!(doc.root().descendants().count(), 199);
    }

    #[test]
    fn string_value_is_in_document_order_without_comments() {
        let doc = Document::parse(
            b"<a>1<b>2<!--x--><c>3</c></b><![CDATA[4]]><d>5</d>6</a>",
            &ParseLimits::default(),
        )
        .unwrap();
        let root = doc.root();
        assert_eq!(root.string_value(None), "123456");
        let b = root.element_children().next().unwrap();
        assert_eq!(root.string_value(Some(b)), "1456");
        assert_eq!(root.text(), "146");
    }

    #[test]
    fn namespace_declarations_are_those_written_on_the_element() {
        let doc = Document::parse(
            b"<a xmlns='urn:d' xmlns:p='urn:p'><p:b xmlns=''/></a>",
            &ParseLimits::default(),
        )
        .unwrap();
        let root = doc.root();
        let mut decls = root.namespace_declarations();
        decls.sort();
        assert_eq!(decls, vec![(None, "urn:d"), (Some("p"), "urn:p")]);
        let b = root.element_children().next().unwrap();
        assert_eq!(b.namespace_declarations(), vec![(None, "")]);
    }
}
