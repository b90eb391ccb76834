//! XML-DSig core validation as mechanism: digests and the signature value.
//! Whether the outcome is acceptable is the policy's business.

use tamga_xml::{Document, Node, ParseLimits, Selection};

use crate::algorithms::{SignatureAlgorithm, DSIG_NS};
use crate::crypto::{verify_hmac, verify_signature, PublicKey};
use crate::error::{CryptoError, ReferenceError};
use crate::model::SignatureModel;
use crate::reference::{digest_reference, ExternalResolver};

/// Every `ds:Signature` element in the document, in document order.
pub fn find_signatures(doc: &Document) -> Vec<Node<'_>> {
    let root = doc.root();
    std::iter::once(root)
        .chain(root.descendants())
        .filter(|n| n.is(DSIG_NS, "Signature"))
        .collect()
}

/// Why one reference failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferenceFailure {
    /// The digest was computed and differs from `DigestValue`.
    DigestMismatch,
    /// The digest could not be computed.
    Error(ReferenceError),
}

/// The outcome for one reference.
#[derive(Debug, Clone)]
pub struct ReferenceOutcome {
    pub index: usize,
    pub uri: Option<String>,
    pub result: Result<(), ReferenceFailure>,
}

/// Digests every reference of `sig` and compares with its `DigestValue`.
pub fn check_references(
    doc: &Document,
    sig: &SignatureModel<'_>,
    resolver: &dyn ExternalResolver,
    limits: &ParseLimits,
) -> Vec<ReferenceOutcome> {
    sig.references
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let result = match digest_reference(doc, sig.element, r, resolver, limits) {
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

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// The canonical form of `SignedInfo`, the octets the signature covers.
pub fn signed_info_octets(
    doc: &Document,
    sig: &SignatureModel<'_>,
) -> Result<Vec<u8>, CryptoError> {
    let c14n = sig
        .c14n
        .as_ref()
        .map_err(|uri| CryptoError::UnsupportedAlgorithm(format!("canonicalization {uri}")))?;
    doc.canonicalize_to_vec(Selection::Subtree(sig.signed_info), None, c14n)
        .map_err(|e| CryptoError::Signing(format!("canonicalising SignedInfo: {e}")))
}

/// Checks `SignatureValue` over the canonical `SignedInfo` with `key`.
pub fn check_signature_value(
    doc: &Document,
    sig: &SignatureModel<'_>,
    key: &PublicKey,
) -> Result<(), CryptoError> {
    let octets = signed_info_octets(doc, sig)?;
    verify_signature(&sig.signature_method, key, &octets, &sig.signature_value)
}

/// Checks an HMAC `SignatureValue` with a shared secret.
pub fn check_hmac_value(
    doc: &Document,
    sig: &SignatureModel<'_>,
    secret: &[u8],
) -> Result<(), CryptoError> {
    let SignatureAlgorithm::Hmac(d) = &sig.signature_method else {
        return Err(CryptoError::UnsupportedAlgorithm(
            sig.signature_method.name(),
        ));
    };
    let octets = signed_info_octets(doc, sig)?;
    verify_hmac(
        d,
        secret,
        sig.hmac_output_bits,
        &octets,
        &sig.signature_value,
    )
}
