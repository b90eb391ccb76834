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

use tamga_xml::{Document, Node, Selection};

use crate::algorithms::DSIG_NS;
use crate::core::find_signatures;
use crate::model::{parse_signature, Budget};
use crate::sign::{
    build_signature, digest, self_check_only, unique_id, RefSpec, SignError, SignOptions, Signer,
    EXC,
};
use crate::splice::{attribute_insertion_point, element_spans, insert_all, span_of};
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
pub fn countersign(
    input: &[u8],
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let limits = &options.limits;
    let budget = Budget::default();

    // Step 1: make sure the declarant's Signature and SignatureValue have Ids
    // (attributes outside SignedInfo: the declarant's signature is unaffected).
    let doc = Document::parse(input, limits)?;
    let sig_node = top_level_signature(&doc)?;
    let model = parse_signature(sig_node, &budget)
        .map_err(|e| SignError::NotCountersignable(e.to_string()))?;
    let spans = element_spans(input)?;
    let sig_span = span_of(&spans, doc.root(), sig_node)?.clone();
    let seed = digest(
        &crate::algorithms::DigestAlgorithm::Sha256,
        &model.signature_value,
    )?;
    let mut edits = Vec::new();
    let sig_id = match &model.id {
        Some(id) => id.clone(),
        None => {
            let id = unique_id(&doc, "tamga-sig", &seed);
            edits.push((
                attribute_insertion_point(input, &sig_span),
                format!(r#" Id="{id}""#),
            ));
            id
        }
    };
    let value_id = match &model.signature_value_id {
        Some(id) => id.clone(),
        None => {
            let mut id = format!("{sig_id}-value");
            let mut n = 1;
            while doc.element_by_id(&id).is_some() {
                n += 1;
                id = format!("{sig_id}-value-{n}");
            }
            let span = span_of(&spans, doc.root(), model.signature_value_node)?;
            edits.push((
                attribute_insertion_point(input, span),
                format!(r#" Id="{id}""#),
            ));
            id
        }
    };
    let stage1 = insert_all(input, edits);
    drop(model);
    drop(doc);

    // Step 2: digest the declarant's SignatureValue as it now stands.
    let doc = Document::parse(&stage1, limits)?;
    let sig_node = top_level_signature(&doc)?;
    let model = parse_signature(sig_node, &budget)
        .map_err(|e| SignError::NotCountersignable(e.to_string()))?;
    let value_c14n =
        doc.canonicalize_to_vec(Selection::Subtree(model.signature_value_node), None, &EXC)?;
    let value_digest = digest(&options.digest, &value_c14n)?;
    let cs_id = unique_id(&doc, "tamga-cs", &value_digest);
    let fragment = build_signature(
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
        r#"<xades:CounterSignature xmlns:xades="{XADES_NS}">{fragment}</xades:CounterSignature>"#
    );

    // Step 3: find where it goes, creating the unsigned-properties path.
    let spans = element_spans(&stage1)?;
    let root = doc.root();
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
                (_, Some(usp)) => (
                    non_empty(span_of(&spans, root, usp)?)?.end_tag_start,
                    counter,
                ),
                (Some(up), None) => (
                    non_empty(span_of(&spans, root, up)?)?.start_tag_end,
                    format!(
                        r#"<xades:UnsignedSignatureProperties xmlns:xades="{XADES_NS}">{counter}</xades:UnsignedSignatureProperties>"#
                    ),
                ),
                (None, _) => (
                    non_empty(span_of(&spans, root, qp)?)?.end_tag_start,
                    format!(
                        r#"<xades:UnsignedProperties xmlns:xades="{XADES_NS}"><xades:UnsignedSignatureProperties>{counter}</xades:UnsignedSignatureProperties></xades:UnsignedProperties>"#
                    ),
                ),
            }
        }
        None => (
            non_empty(span_of(&spans, root, sig_node)?)?.end_tag_start,
            format!(
                r##"<ds:Object xmlns:ds="{DSIG_NS}"><xades:QualifyingProperties xmlns:xades="{XADES_NS}" Target="#{sig_id}"><xades:UnsignedProperties><xades:UnsignedSignatureProperties>{counter}</xades:UnsignedSignatureProperties></xades:UnsignedProperties></xades:QualifyingProperties></ds:Object>"##
            ),
        ),
    };
    let out = insert_all(&stage1, vec![(at, text)]);

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
    // counter-signature needs checking here.
    self_check_only(&out, limits, if signs_inside { None } else { Some(&cs_id) })?;
    Ok(out)
}

fn non_empty(span: &crate::splice::ElementSpan) -> Result<&crate::splice::ElementSpan, SignError> {
    if span.empty {
        Err(SignError::NotCountersignable(format!(
            "<{}/> is an empty element where content must be added",
            span.local_name
        )))
    } else {
        Ok(span)
    }
}
