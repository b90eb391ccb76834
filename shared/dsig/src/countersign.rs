//! The receiving authority's XAdES counter-signature (ETSI EN 319 132-1
//! `xades:CounterSignature`) on the declarant's signature.
//!
//! Placed at `ds:Object/xades:QualifyingProperties/xades:UnsignedProperties/
//! xades:UnsignedSignatureProperties` of the declarant's signature (created
//! when absent). Its single reference covers the declarant's
//! `ds:SignatureValue` by Id, typed `CountersignedSignature`. All additions
//! are inside the declarant's `ds:Signature`, outside its SignedInfo, so the
//! declarant's signature stays valid and every byte outside that element is
//! unchanged — which is checked before the result is returned.

use tamga_xml::{Document, Node, ParseLimits, Parsed, Selection};

use crate::algorithms::DSIG_NS;
use crate::core::find_signatures;
use crate::model::{parse_signature, Budget};
use crate::sign::{
    attr_escape, build_signature, digest, self_check, unique_id, RefSpec, SignError, SignOptions,
    Signer, EXC,
};
use crate::splice::{insert_all, span_of};
use crate::xades::{parse_xades, COUNTERSIGNED_SIGNATURE_TYPE, XADES_NS};

fn top_level_signature(doc: &Document) -> Result<Node<'_>, SignError> {
    let top: Vec<Node<'_>> = find_signatures(doc)
        .into_iter()
        .filter(|s| {
            let mut cur = s.parent();
            while let Some(p) = cur {
                if p.is(DSIG_NS, "Signature") {
                    return false;
                }
                cur = p.parent();
            }
            true
        })
        .collect();
    match top.as_slice() {
        [one] => Ok(*one),
        [] => Err(SignError::NotCountersignable(
            "the document has no signature".into(),
        )),
        _ => Err(SignError::NotCountersignable(
            "the document has more than one top-level signature".into(),
        )),
    }
}

/// Adds a counter-signature by `signer` to the (single, already verified)
/// declarant signature in `input`.
///
/// The input is parsed once: the Ids the counter-signature needs are added
/// as byte insertions into the input, and the digest of the declarant's
/// `SignatureValue` as it will then stand is computed from the parsed tree
/// (see [`value_c14n_with_id`]). The output is parsed once more, by the
/// self-check.
pub fn countersign(
    input: &[u8],
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    // The same parse verification makes (with the parser's element
    // offsets): where to insert is where this tree says its elements are.
    countersign_parsed(&Parsed::parse(input, &options.limits)?, signer, options)
}

/// [`countersign`] with the declaration already parsed, by the verification that passed
/// it (`tamga_policy::verify_document_keeping`): the fused pipeline parses it once.
pub fn countersign_parsed(
    parsed: &Parsed<'_>,
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let limits = &options.limits;
    let budget = Budget::default();
    let input = parsed.bytes();
    let doc = parsed.document();
    let sig_node = top_level_signature(doc)?;
    let model = parse_signature(sig_node, &budget)
        .map_err(|e| SignError::NotCountersignable(e.to_string()))?;
    let sig_span = span_of(doc, sig_node)?;
    let seed = digest(
        &crate::algorithms::DigestAlgorithm::Sha256,
        &model.signature_value,
    )?;

    // Make sure the declarant's Signature and SignatureValue have Ids
    // (attributes outside SignedInfo: the declarant's signature is unaffected).
    let mut edits = Vec::new();
    let sig_id = match &model.id {
        Some(id) => id.clone(),
        None => {
            let id = unique_id(doc, "tamga-sig", &seed, &[]);
            edits.push((
                sig_span.start_tag_close,
                format!(r#" Id="{}""#, attr_escape(&id)),
            ));
            id
        }
    };
    let value_node = model.signature_value_node;
    let current_value_c14n = doc.canonicalize_to_vec(Selection::Subtree(value_node), None, &EXC)?;
    let (value_id, value_c14n) = match &model.signature_value_id {
        Some(id) => (id.clone(), current_value_c14n),
        None => {
            let mut id = format!("{sig_id}-value");
            let mut n = 1;
            while doc.element_by_id(&id).is_some() || id == sig_id {
                n += 1;
                id = format!("{sig_id}-value-{n}");
            }
            let span = span_of(doc, value_node)?;
            edits.push((
                span.start_tag_close,
                format!(r#" Id="{}""#, attr_escape(&id)),
            ));
            let c14n = value_c14n_with_id(&current_value_c14n, &id, limits)?;
            (id, c14n)
        }
    };

    let value_digest = digest(&options.digest, &value_c14n)?;
    let cs_id = unique_id(doc, "tamga-cs", &value_digest, &[&sig_id, &value_id]);
    let built = build_signature(
        &cs_id,
        vec![RefSpec {
            uri: format!("#{value_id}"),
            type_uri: Some(COUNTERSIGNED_SIGNATURE_TYPE),
            enveloped: false,
            digest_value: value_digest,
        }],
        signer,
        options,
    )?;
    let counter = format!(
        r#"<xades:CounterSignature xmlns:xades="{XADES_NS}">{}</xades:CounterSignature>"#,
        built.xml
    );

    // Find where it goes, creating the unsigned-properties path.
    let xades = parse_xades(&model).map_err(|e| SignError::NotCountersignable(e.to_string()))?;
    // Does the declarant sign anything inside its own Signature element
    // besides SignedProperties (e.g. a whole ds:Object)? Then adding unsigned
    // properties could touch signed bytes, and everything is re-verified.
    let signed_props = xades.as_ref().and_then(|x| x.signed_properties);
    let signs_inside = model.references.iter().any(|r| {
        r.uri
            .as_deref()
            .and_then(|u| u.strip_prefix('#'))
            .and_then(|id| doc.element_by_id(id))
            .is_some_and(|n| sig_node.contains(n) && Some(n) != signed_props)
    });
    let (at, text) = match xades {
        Some(x) => {
            let qp = x.qualifying_properties;
            let up = qp.child(XADES_NS, "UnsignedProperties");
            let usp = up.and_then(|u| u.child(XADES_NS, "UnsignedSignatureProperties"));
            match (up, usp) {
                (_, Some(usp)) => (non_empty(span_of(doc, usp)?)?.end_tag_start, counter),
                (Some(up), None) => (
                    non_empty(span_of(doc, up)?)?.start_tag_end,
                    format!(
                        r#"<xades:UnsignedSignatureProperties xmlns:xades="{XADES_NS}">{counter}</xades:UnsignedSignatureProperties>"#
                    ),
                ),
                (None, _) => (
                    non_empty(span_of(doc, qp)?)?.end_tag_start,
                    format!(
                        r#"<xades:UnsignedProperties xmlns:xades="{XADES_NS}"><xades:UnsignedSignatureProperties>{counter}</xades:UnsignedSignatureProperties></xades:UnsignedProperties>"#
                    ),
                ),
            }
        }
        None => (
            non_empty(span_of(doc, sig_node)?)?.end_tag_start,
            format!(
                r#"<ds:Object xmlns:ds="{DSIG_NS}"><xades:QualifyingProperties xmlns:xades="{XADES_NS}" Target="{}"><xades:UnsignedProperties><xades:UnsignedSignatureProperties>{counter}</xades:UnsignedSignatureProperties></xades:UnsignedProperties></xades:QualifyingProperties></ds:Object>"#,
                attr_escape(&format!("#{sig_id}"))
            ),
        ),
    };
    edits.push((at, text));
    let scope = declarations_in_scope(sig_node);
    let out = insert_all(input, edits);

    // Fail closed: nothing outside the declarant's Signature changed...
    let added = out.len() - input.len();
    if out[..sig_span.start] != input[..sig_span.start]
        || out[sig_span.end + added..] != input[sig_span.end..]
    {
        return Err(SignError::SelfCheck(
            "bytes outside the declarant's signature would change".into(),
        ));
    }
    // ...which also leaves the declarant's signature as valid as it was: its
    // SignedInfo, SignatureValue octets and signed content are untouched, and
    // the enveloped transform excludes the whole element. So only the new
    // counter-signature needs checking here: in the re-parsed output its
    // reference must digest the declarant's SignatureValue (Id and all) to
    // the value computed above, which also proves that computation right.
    //
    // The check reads the declarant's Signature element alone, with the namespaces its
    // ancestors declare, not the whole document: everything outside it was just compared
    // byte for byte, the new Ids were chosen unique in the whole document, and the
    // counter-signature's reference and SignedInfo use exclusive c14n, which renders
    // nothing an ancestor contributes but the namespaces declared here. Re-parsing the
    // whole declaration was a fifth of the authority's CPU per declaration. When the
    // declarant signs something inside its Signature besides SignedProperties, every
    // signature is re-checked over the whole output instead.
    if signs_inside {
        self_check(&out, limits, &built, true)?;
    } else {
        let fragment = &out[sig_span.start..sig_span.end + added];
        let mut standalone = Vec::with_capacity(fragment.len() + scope.len() + 64);
        standalone.extend_from_slice(b"<tamga-self-check");
        standalone.extend_from_slice(scope.as_bytes());
        standalone.push(b'>');
        standalone.extend_from_slice(fragment);
        standalone.extend_from_slice(b"</tamga-self-check>");
        self_check(&standalone, limits, &built, false)?;
    }
    Ok(out)
}

/// The namespace declarations `node`'s ancestors put in scope for it, as attribute
/// text (` xmlns:p="…"`), the nearest declaration of each prefix winning.
fn declarations_in_scope(node: Node<'_>) -> String {
    let mut seen: Vec<Option<&str>> = Vec::new();
    let mut text = String::new();
    let mut cur = node.parent();
    while let Some(element) = cur {
        for (prefix, uri) in element.namespace_declarations() {
            if seen.contains(&prefix) {
                continue;
            }
            seen.push(prefix);
            match prefix {
                Some(p) => text.push_str(&format!(r#" xmlns:{p}="{}""#, attr_escape(uri))),
                None => text.push_str(&format!(r#" xmlns="{}""#, attr_escape(uri))),
            }
        }
        cur = element.parent();
    }
    text
}

/// The exclusive c14n of the declarant's `SignatureValue` once the
/// attribute `Id="id"` is added to it, from its c14n without one.
///
/// Exclusive c14n of an element is a standalone document that declares
/// every prefix it uses, so the attribute is added to that small text,
/// which is parsed and canonicalised again to put the attribute in c14n
/// order and escaping: a few hundred bytes instead of the whole document.
fn value_c14n_with_id(c14n: &[u8], id: &str, limits: &ParseLimits) -> Result<Vec<u8>, SignError> {
    let at = start_tag_end(c14n).ok_or_else(|| {
        SignError::NotCountersignable("the SignatureValue start tag could not be read".into())
    })?;
    let mut with_id = Vec::with_capacity(c14n.len() + id.len() + 6);
    with_id.extend_from_slice(&c14n[..at]);
    with_id.extend_from_slice(format!(r#" Id="{}""#, attr_escape(id)).as_bytes());
    with_id.extend_from_slice(&c14n[at..]);
    let fragment = Document::parse(&with_id, limits)?;
    Ok(fragment.canonicalize_to_vec(Selection::Document, None, &EXC)?)
}

/// Offset of the `>` closing the start tag of canonical XML `c14n`, which
/// has no `/>` and whose attribute values are `"`-delimited and never contain `"`.
fn start_tag_end(c14n: &[u8]) -> Option<usize> {
    if c14n.first() != Some(&b'<') {
        return None;
    }
    let mut in_value = false;
    for (i, b) in c14n.iter().enumerate() {
        match b {
            b'"' => in_value = !in_value,
            b'>' if !in_value => return Some(i),
            _ => {}
        }
    }
    None
}

fn non_empty(span: tamga_xml::ElementSpan) -> Result<tamga_xml::ElementSpan, SignError> {
    if span.empty {
        Err(SignError::NotCountersignable(
            "an empty element (<x/>) stands where content must be added".into(),
        ))
    } else {
        Ok(span)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::sign::tests::{test_options, test_signer};
    use crate::sign::{sign_enveloped, EXC};

    #[test]
    fn value_c14n_with_id_matches_the_edited_document() {
        let limits = ParseLimits::default();
        for (before, after) in [
            (
                r#"<r xmlns:ds="urn:ds"><ds:V>AAA=</ds:V></r>"#,
                r#"<r xmlns:ds="urn:ds"><ds:V Id="v&amp;1">AAA=</ds:V></r>"#,
            ),
            (
                r#"<r xmlns:ds="urn:ds" xmlns:p="urn:p"><ds:V z="1" p:a="&gt;" a="x">A
A=</ds:V></r>"#,
                r#"<r xmlns:ds="urn:ds" xmlns:p="urn:p"><ds:V z="1" p:a="&gt;" a="x" Id="v&amp;1">A
A=</ds:V></r>"#,
            ),
        ] {
            let c14n = |s: &str| {
                let d = Document::parse(s.as_bytes(), &limits).unwrap();
                let v = d.root().element_children().next().unwrap();
                d.canonicalize_to_vec(Selection::Subtree(v), None, &EXC)
                    .unwrap()
            };
            assert_eq!(
                value_c14n_with_id(&c14n(before), "v&1", &limits).unwrap(),
                c14n(after)
            );
        }
    }

    #[test]
    fn countersigns_a_signature_without_ids() {
        let (key, cert) = test_signer();
        let options = test_options(cert, true);
        let signed = sign_enveloped(
            b"<doc><x>1</x></doc>",
            &key,
            &test_options(options.certificates[0].clone(), false),
        )
        .unwrap();
        // Drop the declarant's Ids: they are outside SignedInfo.
        let text = String::from_utf8(signed).unwrap();
        let id_start = text.find(" Id=\"tamga-sig-").unwrap();
        let id_end = id_start + text[id_start + 5..].find('"').unwrap() + 6;
        let id = text[id_start..id_end].to_string();
        let value_id = id.replace("\"", "").replace(" Id=", "");
        let stripped = text
            .replace(&id, "")
            .replace(&format!(" Id=\"{value_id}-value\""), "");
        assert!(!stripped.contains(" Id="));
        let out = countersign(stripped.as_bytes(), &key, &options).unwrap();
        all_signatures_verify(&out, &options, 2);
    }

    /// The self-check reads the Signature element alone: the prefixes its ancestors
    /// declare must come with it.
    #[test]
    fn countersigns_when_an_ancestor_declares_the_prefixes() {
        let (key, cert) = test_signer();
        let options = test_options(cert, true);
        let signed = sign_enveloped(
            b"<doc xmlns:d='urn:d'><d:x>1</d:x></doc>",
            &key,
            &test_options(options.certificates[0].clone(), false),
        )
        .unwrap();
        let text = String::from_utf8(signed).unwrap();
        let decl = format!(r#" xmlns:ds="{DSIG_NS}""#);
        assert_eq!(text.matches(&decl).count(), 1, "{text}");
        // Exclusive c14n renders a prefix where it is used: moving the declaration up
        // leaves the declarant's signature valid.
        let moved = text
            .replace(&decl, "")
            .replacen(
                "<doc xmlns:d='urn:d'>",
                &format!("<doc{decl} xmlns:d='urn:d'>"),
                1,
            )
            .replacen(
                "<doc xmlns:d=\"urn:d\">",
                &format!("<doc{decl} xmlns:d=\"urn:d\">"),
                1,
            );
        assert!(moved.starts_with(&format!("<doc{decl}")), "{moved}");
        all_signatures_verify(moved.as_bytes(), &options, 1);
        let out = countersign(moved.as_bytes(), &key, &options).unwrap();
        all_signatures_verify(&out, &options, 2);
    }

    /// The fused pipeline hands over verification's parse: the result must be what the
    /// bytes alone give (up to the randomised ECDSA value).
    #[test]
    fn countersigning_a_parsed_document_is_countersigning_its_bytes() {
        let (key, cert) = test_signer();
        let options = test_options(cert, true);
        let signed = sign_enveloped(
            b"<doc><x>1</x></doc>",
            &key,
            &test_options(options.certificates[0].clone(), false),
        )
        .unwrap();
        let from_bytes = countersign(&signed, &key, &options).unwrap();
        let parsed = Parsed::parse(&signed, &options.limits).unwrap();
        let from_parsed = countersign_parsed(&parsed, &key, &options).unwrap();
        all_signatures_verify(&from_parsed, &options, 2);
        let without_value = |out: &[u8]| {
            let text = String::from_utf8(out.to_vec()).unwrap();
            let cs = text.find("<xades:CounterSignature").unwrap();
            let open = cs + text[cs..].find("<ds:SignatureValue").unwrap();
            let close = open + text[open..].find("</ds:SignatureValue>").unwrap();
            format!("{}{}", &text[..open], &text[close..])
        };
        assert_eq!(without_value(&from_bytes), without_value(&from_parsed));
    }

    fn all_signatures_verify(out: &[u8], options: &SignOptions, count: usize) {
        let doc = Document::parse(out, &options.limits).unwrap();
        assert_eq!(find_signatures(&doc).len(), count);
        // The declarant's signature still verifies, and so does the new one.
        for node in find_signatures(&doc) {
            let sig = parse_signature(node, &Budget::default()).unwrap();
            for r in crate::core::check_references(&doc, &sig, &crate::NoExternal, &options.limits)
            {
                r.result.unwrap();
            }
            let k = crate::PublicKey::from_certificate_der(
                &sig.key_info.as_ref().unwrap().certificates[0],
            )
            .unwrap();
            crate::core::check_signature_value(&doc, &sig, &k).unwrap();
        }
    }
}
