//! Byte positions of elements, so that Tamga can add to a signed document
//! without re-serialising it: everything it does not touch stays byte for
//! byte as submitted.
//!
//! libxml2 does not keep byte offsets, so a second, lexical pass (quick-xml)
//! finds them. The two are tied together by pre-order element index and
//! cross-checked by local name; any disagreement fails closed.

use quick_xml::events::Event;
use tamga_xml::Node;

use crate::sign::SignError;

/// Where one element sits in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElementSpan<'a> {
    /// Offset of `<` of the start tag.
    pub start: usize,
    /// Offset just after the start tag's `>`.
    pub start_tag_end: usize,
    /// Offset of `<` of the end tag (equals `start_tag_end` for `<a/>`).
    pub end_tag_start: usize,
    /// Offset just after the element.
    pub end: usize,
    pub empty: bool,
    /// Borrowed from the input: one scan of a 25 KB declaration makes a few
    /// hundred spans, and a `String` each was a third of the scan's cost.
    pub local_name: &'a str,
}

/// Every element of a well-formed document, in pre-order.
pub(crate) fn element_spans(input: &[u8]) -> Result<Vec<ElementSpan<'_>>, SignError> {
    let mut reader = quick_xml::Reader::from_reader(input);
    let mut spans: Vec<ElementSpan> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        let before = pos(&reader)?;
        let event = reader.read_event().map_err(|_| SignError::Splice)?;
        let after = pos(&reader)?;
        match event {
            Event::Start(_) => {
                open.push(spans.len());
                spans.push(ElementSpan {
                    start: before,
                    start_tag_end: after,
                    end_tag_start: after,
                    end: after,
                    empty: false,
                    local_name: local_name_at(input, before)?,
                });
            }
            Event::Empty(_) => spans.push(ElementSpan {
                start: before,
                start_tag_end: after,
                end_tag_start: after,
                end: after,
                empty: true,
                local_name: local_name_at(input, before)?,
            }),
            Event::End(_) => {
                let i = open.pop().ok_or(SignError::Splice)?;
                spans[i].end_tag_start = before;
                spans[i].end = after;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(SignError::Splice);
    }
    Ok(spans)
}

/// The local name of the start tag whose `<` is at `start`, read from the
/// input itself (quick-xml's names borrow from the event, not the input).
fn local_name_at(input: &[u8], start: usize) -> Result<&str, SignError> {
    let tag = input.get(start + 1..).ok_or(SignError::Splice)?;
    let end = tag
        .iter()
        .position(|b| b.is_ascii_whitespace() || *b == b'/' || *b == b'>')
        .ok_or(SignError::Splice)?;
    let qname = std::str::from_utf8(&tag[..end]).map_err(|_| SignError::Splice)?;
    Ok(qname.rsplit_once(':').map_or(qname, |(_, local)| local))
}

fn pos(reader: &quick_xml::Reader<&[u8]>) -> Result<usize, SignError> {
    usize::try_from(reader.buffer_position()).map_err(|_| SignError::Splice)
}

/// The span of `node`, found by its pre-order index among the document's
/// elements and checked by name.
pub(crate) fn span_of<'a, 'i>(
    spans: &'a [ElementSpan<'i>],
    root: Node<'_>,
    node: Node<'_>,
) -> Result<&'a ElementSpan<'i>, SignError> {
    let index = std::iter::once(root)
        .chain(root.descendants())
        .position(|n| n == node)
        .ok_or(SignError::Splice)?;
    let span = spans.get(index).ok_or(SignError::Splice)?;
    if span.local_name != node.local_name() {
        return Err(SignError::Splice);
    }
    Ok(span)
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

/// Offset at which an attribute can be added to a start tag: just before
/// its closing `>` or `/>`.
pub(crate) fn attribute_insertion_point(input: &[u8], span: &ElementSpan<'_>) -> usize {
    let close = span.start_tag_end - 1;
    if span.empty && close > 0 && input[close - 1] == b'/' {
        close - 1
    } else {
        close
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::splice_before_root_end;

    #[test]
    fn splices_before_the_root_end_keeping_other_bytes() {
        let input = b"<?xml version='1.0'?>\n<a x='1'><b/>text</a >\n<!-- tail -->\n";
        let out = splice_before_root_end(input, "<S/>").unwrap();
        assert_eq!(
            out,
            b"<?xml version='1.0'?>\n<a x='1'><b/>text<S/></a >\n<!-- tail -->\n".to_vec()
        );
        for (empty, expected) in [
            (&b"<a/>"[..], &b"<a><S/></a>"[..]),
            (b"<p:a xmlns:p='u' />", b"<p:a xmlns:p='u' ><S/></p:a>"),
        ] {
            assert_eq!(
                splice_before_root_end(empty, "<S/>").unwrap(),
                expected.to_vec()
            );
        }
        let spans = element_spans(b"<a><p:b xmlns:p='u'></p:b><c/></a>").unwrap();
        assert_eq!(
            spans.iter().map(|s| s.local_name).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }
}
