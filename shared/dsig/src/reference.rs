//! Dereferencing, transforming and digesting one `ds:Reference`.
//!
//! Same-document references resolve only through Tamga's own ID index (which
//! refuses duplicate IDs). External references resolve only through a
//! caller-supplied map; nothing is ever fetched.

use std::io::Write;

use base64::Engine;
use tamga_xml::{C14nMethod, Canonicalization, Document, Node, ParseLimits, Selection};

use crate::error::ReferenceError;
use crate::model::{Reference, Transform};

/// Supplies the bytes of external (detached) references. The default
/// supplies nothing.
pub trait ExternalResolver {
    fn resolve(&self, uri: &str) -> Option<Vec<u8>>;
}

/// Resolves no external reference.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoExternal;

impl ExternalResolver for NoExternal {
    fn resolve(&self, _uri: &str) -> Option<Vec<u8>> {
        None
    }
}

/// What a reference URI points at, before transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target<'d> {
    /// `URI=""`: the whole document, comments removed.
    Document,
    /// `URI="#id"`: the element with that ID, comments removed.
    Element(Node<'d>),
    /// `#xpointer(/)`: the whole document, comments kept.
    XPointerDocument,
    /// `#xpointer(id('x'))`: the element, comments kept.
    XPointerElement(Node<'d>),
    /// Anything else: outside this document.
    External,
}

/// Resolves a reference's URI within `doc`.
pub fn resolve_uri<'d>(doc: &'d Document, uri: &str) -> Result<Target<'d>, ReferenceError> {
    if uri.is_empty() {
        return Ok(Target::Document);
    }
    let not_found = || ReferenceError::NotFound {
        uri: uri.to_string(),
    };
    if let Some(frag) = uri.strip_prefix('#') {
        if frag == "xpointer(/)" {
            return Ok(Target::XPointerDocument);
        }
        if let Some(inner) = frag
            .strip_prefix("xpointer(id(")
            .and_then(|s| s.strip_suffix("))"))
        {
            let id = inner.trim_matches(|c| c == '\'' || c == '"');
            return doc
                .element_by_id(id)
                .map(Target::XPointerElement)
                .ok_or_else(not_found);
        }
        if frag.starts_with("xpointer(") {
            return Err(ReferenceError::UnsupportedTransform {
                name: format!("XPointer {frag}"),
            });
        }
        return doc
            .element_by_id(frag)
            .map(Target::Element)
            .ok_or_else(not_found);
    }
    Ok(Target::External)
}

/// Data between transforms: a node-set of the document, or octets.
enum Data<'d> {
    Nodes {
        selection: Selection<'d>,
        exclude: Option<Node<'d>>,
        comments: bool,
    },
    Octets(Vec<u8>),
}

/// Streams into a digest without buffering the canonical form.
struct DigestWriter(crate::algorithms::DigestContext);

impl Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const DEFAULT_C14N: Canonicalization = Canonicalization {
    method: C14nMethod::Inclusive10,
    with_comments: false,
    inclusive_prefixes: Vec::new(),
};

/// A fresh digest in `reference`'s algorithm, for a caller that produces
/// the referenced octets itself (the streaming route canonicalises the
/// document without its tree).
pub fn reference_digest(
    reference: &Reference<'_>,
) -> Result<crate::algorithms::DigestContext, ReferenceError> {
    reference
        .digest
        .context()
        .ok_or_else(|| ReferenceError::UnsupportedDigest {
            uri: reference.digest.uri().to_string(),
        })
}

/// Computes the digest of `reference`, made by the signature `signature`
/// (the element the enveloped-signature transform removes).
pub fn digest_reference<'d>(
    doc: &'d Document,
    signature: Node<'d>,
    reference: &Reference<'d>,
    resolver: &dyn ExternalResolver,
    limits: &ParseLimits,
) -> Result<Vec<u8>, ReferenceError> {
    let context = reference_digest(reference)?;
    let uri = reference.uri.as_deref().ok_or(ReferenceError::NoUri)?;
    let mut data = match resolve_uri(doc, uri)? {
        Target::Document => Data::Nodes {
            selection: Selection::Document,
            exclude: None,
            comments: false,
        },
        Target::Element(n) => Data::Nodes {
            selection: Selection::Subtree(n),
            exclude: None,
            comments: false,
        },
        Target::XPointerDocument => Data::Nodes {
            selection: Selection::Document,
            exclude: None,
            comments: true,
        },
        Target::XPointerElement(n) => Data::Nodes {
            selection: Selection::Subtree(n),
            exclude: None,
            comments: true,
        },
        Target::External => {
            Data::Octets(
                resolver
                    .resolve(uri)
                    .ok_or_else(|| ReferenceError::External {
                        uri: uri.to_string(),
                    })?,
            )
        }
    };

    let last = reference.transforms.len().checked_sub(1);
    let mut sink = DigestWriter(context);
    let mut streamed = false;
    for (i, t) in reference.transforms.iter().enumerate() {
        data = match (t, data) {
            (
                Transform::Enveloped,
                Data::Nodes {
                    selection,
                    comments,
                    ..
                },
            ) => Data::Nodes {
                selection,
                exclude: Some(signature),
                comments,
            },
            (
                Transform::C14n(c),
                Data::Nodes {
                    selection,
                    exclude,
                    comments,
                },
            ) => {
                let mut spec = c.clone();
                spec.with_comments = c.with_comments && comments;
                if Some(i) == last {
                    // The common case: stream the last c14n straight into the digest.
                    doc.canonicalize(selection, exclude, &spec, &mut sink)?;
                    streamed = true;
                    Data::Octets(Vec::new())
                } else {
                    Data::Octets(doc.canonicalize_to_vec(selection, exclude, &spec)?)
                }
            }
            (Transform::C14n(c), Data::Octets(bytes)) => {
                let parsed = Document::parse(&bytes, limits)?;
                Data::Octets(parsed.canonicalize_to_vec(Selection::Document, None, c)?)
            }
            (
                Transform::Base64,
                Data::Nodes {
                    selection, exclude, ..
                },
            ) => {
                // XML-DSig 6.6.2: the node-set's text nodes, in document order.
                let from = match selection {
                    Selection::Document => doc.root(),
                    Selection::Subtree(n) => n,
                };
                Data::Octets(decode_lenient_base64(&from.string_value(exclude))?)
            }
            (Transform::Base64, Data::Octets(bytes)) => {
                let text = String::from_utf8(bytes).map_err(|_| ReferenceError::Base64)?;
                Data::Octets(decode_lenient_base64(&text)?)
            }
            (other, _) => return Err(ReferenceError::UnsupportedTransform { name: other.name() }),
        };
    }
    if !streamed {
        match data {
            Data::Nodes {
                selection, exclude, ..
            } => doc.canonicalize(selection, exclude, &DEFAULT_C14N, &mut sink)?,
            Data::Octets(bytes) => sink.0.update(&bytes),
        }
    }
    Ok(sink.0.finish().as_ref().to_vec())
}

fn decode_lenient_base64(text: &str) -> Result<Vec<u8>, ReferenceError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| ReferenceError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{parse_signature, Budget};

    /// XML-DSig 6.6.2: the base64 transform reads the node-set's text nodes
    /// in document order (child elements' tags and comments are stripped).
    #[test]
    fn base64_transform_reads_text_in_document_order() {
        let xml = concat!(
            r#"<r xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Signature><ds:SignedInfo>"#,
            r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
            r#"<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>"#,
            r##"<ds:Reference URI="#o"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/></ds:Transforms>"##,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>"#,
            r#"</ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue>"#,
            r#"<ds:Object Id="o">QUFB<x>QkJC</x><!--REVE-->Q0ND</ds:Object></ds:Signature></r>"#,
        );
        let limits = ParseLimits::default();
        let doc = Document::parse(xml.as_bytes(), &limits).unwrap();
        let element = doc.root().element_children().next().unwrap();
        let sig = parse_signature(element, &Budget::default()).unwrap();
        let digest =
            digest_reference(&doc, sig.element, &sig.references[0], &NoExternal, &limits).unwrap();
        let want = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"AAABBBCCC");
        assert_eq!(digest, want.as_ref());
    }
}
