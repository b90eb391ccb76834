//! Adding to a signed document without re-serialising it: everything Tamga
//! does not touch stays byte for byte as submitted.
//!
//! Where to insert comes from the same libxml2 parse that the signature was
//! read (and verified) from: [`Document::parse_with_spans`] notes the
//! parser's input offset at each element's start and end, so a byte-order
//! mark, CRLF line ends, comments or processing instructions around the
//! document element, prefixes or default namespaces cannot make the splice
//! and the tree disagree about which element is where.

use tamga_xml::{Document, ElementSpan, Node};

use crate::sign::SignError;

/// The span of `node` in the bytes `doc` was parsed from (with spans).
pub(crate) fn span_of(doc: &Document, node: Node<'_>) -> Result<ElementSpan, SignError> {
    doc.span(node).ok_or(SignError::Splice)
}

/// Applies insertions (offset, text); offsets refer to `input`.
pub(crate) fn insert_all(input: &[u8], mut edits: Vec<(usize, String)>) -> Vec<u8> {
    edits.sort_by_key(|(at, _)| *at);
    let extra: usize = edits.iter().map(|(_, s)| s.len()).sum();
    let mut out = Vec::with_capacity(input.len() + extra);
    let mut from = 0;
    for (at, text) in edits {
        out.extend_from_slice(&input[from..at]);
        out.extend_from_slice(text.as_bytes());
        from = at;
    }
    out.extend_from_slice(&input[from..]);
    out
}

/// Inserts `fragment` as the last child of the document element of `doc`
/// (parsed from `input` with spans), leaving every other byte as it was.
pub(crate) fn splice_before_root_end(
    input: &[u8],
    doc: &Document,
    fragment: &str,
) -> Result<Vec<u8>, SignError> {
    let root = span_of(doc, doc.root())?;
    if !root.empty {
        return Ok(insert_all(
            input,
            vec![(root.end_tag_start, fragment.to_string())],
        ));
    }
    // `<root/>`: same canonical form as `<root></root>`.
    let tag = input
        .get(root.start..root.start_tag_close)
        .ok_or(SignError::Splice)?;
    let name_end = tag
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(tag.len());
    let name = std::str::from_utf8(tag.get(1..name_end).ok_or(SignError::Splice)?)
        .map_err(|_| SignError::Splice)?;
    let mut out = Vec::with_capacity(input.len() + fragment.len() + name.len() + 3);
    out.extend_from_slice(&input[..root.start_tag_close]);
    out.push(b'>');
    out.extend_from_slice(fragment.as_bytes());
    out.extend_from_slice(format!("</{name}>").as_bytes());
    out.extend_from_slice(&input[root.end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tamga_xml::ParseLimits;

    fn splice(input: &[u8], fragment: &str) -> Vec<u8> {
        let doc = Document::parse_with_spans(input, &ParseLimits::default()).unwrap();
        splice_before_root_end(input, &doc, fragment).unwrap()
    }

    #[test]
    fn splices_before_the_root_end_keeping_other_bytes() {
        let input = b"<?xml version='1.0'?>\n<a x='1'><b/>text</a >\n<!-- tail -->\n";
        assert_eq!(
            splice(input, "<S/>"),
            b"<?xml version='1.0'?>\n<a x='1'><b/>text<S/></a >\n<!-- tail -->\n".to_vec()
        );
        for (empty, expected) in [
            (&b"<a/>"[..], &b"<a><S/></a>"[..]),
            (b"<p:a xmlns:p='u' />", b"<p:a xmlns:p='u' ><S/></p:a>"),
            (
                b"\xEF\xBB\xBF<?pi x?>\r\n<!--c--><a b='&gt;'/><!--d-->",
                b"\xEF\xBB\xBF<?pi x?>\r\n<!--c--><a b='&gt;'><S/></a><!--d-->",
            ),
        ] {
            assert_eq!(
                String::from_utf8_lossy(&splice(empty, "<S/>")),
                String::from_utf8_lossy(expected)
            );
        }
    }

    #[test]
    fn spans_follow_the_parse() {
        let input = "\u{feff}<?xml version=\"1.0\"?>\r\n<!-- <x> -->\r\n<p:a xmlns:p=\"u\" t=\"a>b\"><b/><c  >x<![CDATA[</c>]]></c\r\n></p:a>\r\n<?after <y/>?>";
        let doc = Document::parse_with_spans(input.as_bytes(), &ParseLimits::default()).unwrap();
        let root = doc.root();
        let text = |s: ElementSpan| &input[s.start..s.end];
        assert_eq!(
            text(span_of(&doc, root).unwrap()),
            &input[input.find("<p:a").unwrap()..input.find("\r\n<?after").unwrap()]
        );
        let kids: Vec<_> = root.element_children().collect();
        let b = span_of(&doc, kids[0]).unwrap();
        assert!(b.empty);
        assert_eq!(text(b), "<b/>");
        let c = span_of(&doc, kids[1]).unwrap();
        assert_eq!(text(c), "<c  >x<![CDATA[</c>]]></c\r\n>");
        assert_eq!(&input[c.start..c.start_tag_end], "<c  >");
        assert_eq!(&input[c.end_tag_start..c.end], "</c\r\n>");
        assert_eq!(
            &input[span_of(&doc, root).unwrap().start_tag_close..][..1],
            ">"
        );
        // Without asking, no spans.
        let plain = Document::parse(input.as_bytes(), &ParseLimits::default()).unwrap();
        assert!(plain.span(plain.root()).is_none());
    }
}
