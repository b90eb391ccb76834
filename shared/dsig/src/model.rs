//! A `ds:Signature` element, parsed strictly into values.
//!
//! "Parse, don't validate": after [`parse_signature`] the rest of Tamga works
//! on typed fields, never on the tree's loose shape. Structure that the
//! XML-DSig schema does not allow (unknown children, text where elements
//! belong, missing or repeated elements, bad base64) is refused here.

use base64::Engine;
use tamga_xml::{Canonicalization, Node, NodeKind};

use crate::algorithms::{c14n_from_uri, DigestAlgorithm, SignatureAlgorithm, DSIG11_NS, DSIG_NS};
use crate::algorithms::{BASE64, ENVELOPED, XPATH, XPATH_FILTER2, XSLT};
use crate::error::FormatError;

/// Work bounds for one signature, checked while parsing, before any digest or
/// crypto runs (webpki-style budgets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub max_references: usize,
    pub max_transforms_per_reference: usize,
    pub max_certificates: usize,
    pub max_objects: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_references: 16,
            max_transforms_per_reference: 4,
            max_certificates: 8,
            max_objects: 8,
        }
    }
}

/// One step of a reference's transform chain.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transform {
    Enveloped,
    C14n(Canonicalization),
    Base64,
    XPath(String),
    XPathFilter2,
    Xslt,
    Unknown(String),
}

impl Transform {
    pub fn name(&self) -> String {
        match self {
            Transform::Enveloped => "enveloped-signature".into(),
            Transform::C14n(c) => crate::algorithms::c14n_name(c).into(),
            Transform::Base64 => "base64".into(),
            Transform::XPath(_) => "xpath".into(),
            Transform::XPathFilter2 => "xpath-filter2".into(),
            Transform::Xslt => "xslt".into(),
            Transform::Unknown(u) => u.clone(),
        }
    }
}

/// A `ds:Reference`.
#[derive(Debug, Clone)]
pub struct Reference<'d> {
    pub node: Node<'d>,
    pub id: Option<String>,
    /// `None` when the attribute is absent (the application must supply the
    /// data); `Some("")` for the whole document.
    pub uri: Option<String>,
    pub type_uri: Option<String>,
    pub transforms: Vec<Transform>,
    pub digest: DigestAlgorithm,
    pub digest_value: Vec<u8>,
}

/// A key given by value in `KeyInfo` (never trusted by itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyValue {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    Ec {
        curve_oid: String,
        point: Vec<u8>,
    },
    /// A DER SubjectPublicKeyInfo (`dsig11:DEREncodedKeyValue`).
    Spki(Vec<u8>),
    Other(String),
}

/// What `ds:KeyInfo` says about the key.
#[derive(Debug, Clone, Default)]
pub struct KeyInfo {
    pub certificates: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub key_values: Vec<KeyValue>,
    pub key_names: Vec<String>,
    /// `X509IssuerSerial`, `X509SKI`, `X509SubjectName`, `X509Digest`: a
    /// pointer to a certificate that is not itself in the document.
    pub certificate_pointers: usize,
    pub retrieval_method: bool,
    pub key_info_reference: bool,
    /// Names of children Tamga does not understand.
    pub unknown: Vec<String>,
}

/// A parsed `ds:Signature`.
#[derive(Debug, Clone)]
pub struct SignatureModel<'d> {
    pub element: Node<'d>,
    pub id: Option<String>,
    pub signed_info: Node<'d>,
    /// `Err(uri)` for a method Tamga does not know.
    pub c14n: Result<Canonicalization, String>,
    pub signature_method: SignatureAlgorithm,
    pub hmac_output_bits: Option<u32>,
    pub references: Vec<Reference<'d>>,
    pub signature_value_node: Node<'d>,
    pub signature_value_id: Option<String>,
    pub signature_value: Vec<u8>,
    pub key_info: Option<KeyInfo>,
    pub objects: Vec<Node<'d>>,
}

/// Decodes XML-DSig base64 (whitespace allowed anywhere, padding required).
pub fn decode_base64(text: &str, what: &'static str) -> Result<Vec<u8>, FormatError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| FormatError::BadBase64 { what })
}

/// Element children of `node`, refusing significant text between them.
fn elements<'d>(node: Node<'d>) -> Result<Vec<Node<'d>>, FormatError> {
    let mut out = Vec::new();
    for c in node.children_raw() {
        match c.kind() {
            NodeKind::Element => out.push(c),
            NodeKind::Comment => {}
            NodeKind::Text | NodeKind::CData => {}
            _ => {
                return Err(FormatError::Unexpected {
                    path: node.path(),
                    what: "a non-element child".into(),
                })
            }
        }
    }
    if node.has_significant_text() {
        return Err(FormatError::Unexpected {
            path: node.path(),
            what: "text between elements".into(),
        });
    }
    Ok(out)
}

fn unexpected(node: Node<'_>) -> FormatError {
    FormatError::Unexpected {
        path: node.path(),
        what: format!(
            "element {{{}}}{}",
            node.namespace().unwrap_or(""),
            node.local_name()
        ),
    }
}

fn required_attr(node: Node<'_>, name: &'static str) -> Result<String, FormatError> {
    node.attribute(name).ok_or(FormatError::MissingAttribute {
        path: node.path(),
        name,
    })
}

fn is_ds(n: Node<'_>, local: &str) -> bool {
    n.is(DSIG_NS, local)
}

/// Parses a `ds:Signature` element strictly, within `budget`.
pub fn parse_signature<'d>(
    element: Node<'d>,
    budget: &Budget,
) -> Result<SignatureModel<'d>, FormatError> {
    if !is_ds(element, "Signature") {
        return Err(unexpected(element));
    }
    let kids = elements(element)?;
    let mut it = kids.into_iter().peekable();

    let signed_info =
        it.next()
            .filter(|n| is_ds(*n, "SignedInfo"))
            .ok_or(FormatError::Missing {
                path: element.path(),
                what: "ds:SignedInfo as the first child",
            })?;
    let signature_value_node =
        it.next()
            .filter(|n| is_ds(*n, "SignatureValue"))
            .ok_or(FormatError::Missing {
                path: element.path(),
                what: "ds:SignatureValue after ds:SignedInfo",
            })?;
    let mut key_info = None;
    if let Some(n) = it.peek().copied() {
        if is_ds(n, "KeyInfo") {
            it.next();
            key_info = Some(parse_key_info(n, budget)?);
        }
    }
    let mut objects = Vec::new();
    for n in it {
        if !is_ds(n, "Object") {
            return Err(unexpected(n));
        }
        objects.push(n);
        if objects.len() > budget.max_objects {
            return Err(FormatError::Budget {
                what: "ds:Object elements",
                limit: budget.max_objects,
            });
        }
    }

    // SignedInfo: CanonicalizationMethod, SignatureMethod, Reference+.
    let si = elements(signed_info)?;
    let mut si = si.into_iter();
    let cm = si
        .next()
        .filter(|n| is_ds(*n, "CanonicalizationMethod"))
        .ok_or(FormatError::Missing {
            path: signed_info.path(),
            what: "ds:CanonicalizationMethod",
        })?;
    let c14n = parse_c14n_method(cm)?;
    let sm = si
        .next()
        .filter(|n| is_ds(*n, "SignatureMethod"))
        .ok_or(FormatError::Missing {
            path: signed_info.path(),
            what: "ds:SignatureMethod",
        })?;
    let signature_method = SignatureAlgorithm::from_uri(&required_attr(sm, "Algorithm")?);
    let mut hmac_output_bits = None;
    for c in elements(sm)? {
        if is_ds(c, "HMACOutputLength") {
            let bits: u32 = c
                .text()
                .trim()
                .parse()
                .map_err(|_| FormatError::Unexpected {
                    path: c.path(),
                    what: "a non-numeric HMACOutputLength".into(),
                })?;
            hmac_output_bits = Some(bits);
        } else {
            return Err(unexpected(c));
        }
    }
    let mut references = Vec::new();
    for r in si {
        if !is_ds(r, "Reference") {
            return Err(unexpected(r));
        }
        if references.len() == budget.max_references {
            return Err(FormatError::Budget {
                what: "references",
                limit: budget.max_references,
            });
        }
        references.push(parse_reference(r, budget)?);
    }
    if references.is_empty() {
        return Err(FormatError::Missing {
            path: signed_info.path(),
            what: "at least one ds:Reference",
        });
    }

    if signature_value_node.element_children().next().is_some() {
        return Err(FormatError::Unexpected {
            path: signature_value_node.path(),
            what: "child elements".into(),
        });
    }
    let signature_value = decode_base64(&signature_value_node.text(), "SignatureValue")?;

    Ok(SignatureModel {
        element,
        id: element.attribute("Id"),
        signed_info,
        c14n,
        signature_method,
        hmac_output_bits,
        references,
        signature_value_id: signature_value_node.attribute("Id"),
        signature_value_node,
        signature_value,
        key_info,
        objects,
    })
}

fn parse_c14n_method(node: Node<'_>) -> Result<Result<Canonicalization, String>, FormatError> {
    let uri = required_attr(node, "Algorithm")?;
    let Some(mut c14n) = c14n_from_uri(&uri) else {
        return Ok(Err(uri));
    };
    for c in elements(node)? {
        if c.local_name() == "InclusiveNamespaces"
            && c14n.method == tamga_xml::C14nMethod::Exclusive10
        {
            c14n.inclusive_prefixes = c
                .attribute("PrefixList")
                .unwrap_or_default()
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect();
        } else {
            return Err(unexpected(c));
        }
    }
    Ok(Ok(c14n))
}

fn parse_reference<'d>(node: Node<'d>, budget: &Budget) -> Result<Reference<'d>, FormatError> {
    let kids = elements(node)?;
    let mut it = kids.into_iter().peekable();
    let mut transforms = Vec::new();
    if let Some(t) = it.peek().copied() {
        if is_ds(t, "Transforms") {
            it.next();
            for tr in elements(t)? {
                if !is_ds(tr, "Transform") {
                    return Err(unexpected(tr));
                }
                if transforms.len() == budget.max_transforms_per_reference {
                    return Err(FormatError::Budget {
                        what: "transforms in one reference",
                        limit: budget.max_transforms_per_reference,
                    });
                }
                transforms.push(parse_transform(tr)?);
            }
            if transforms.is_empty() {
                return Err(FormatError::Missing {
                    path: t.path(),
                    what: "ds:Transform",
                });
            }
        }
    }
    let dm = it
        .next()
        .filter(|n| is_ds(*n, "DigestMethod"))
        .ok_or(FormatError::Missing {
            path: node.path(),
            what: "ds:DigestMethod",
        })?;
    let digest = DigestAlgorithm::from_uri(&required_attr(dm, "Algorithm")?);
    let dv = it
        .next()
        .filter(|n| is_ds(*n, "DigestValue"))
        .ok_or(FormatError::Missing {
            path: node.path(),
            what: "ds:DigestValue",
        })?;
    if let Some(extra) = it.next() {
        return Err(unexpected(extra));
    }
    let digest_value = decode_base64(&dv.text(), "DigestValue")?;
    Ok(Reference {
        node,
        id: node.attribute("Id"),
        uri: node.attribute("URI"),
        type_uri: node.attribute("Type"),
        transforms,
        digest,
        digest_value,
    })
}

fn parse_transform(node: Node<'_>) -> Result<Transform, FormatError> {
    let uri = required_attr(node, "Algorithm")?;
    let kids = elements(node)?;
    Ok(match uri.as_str() {
        ENVELOPED => {
            no_children(&kids)?;
            Transform::Enveloped
        }
        BASE64 => {
            no_children(&kids)?;
            Transform::Base64
        }
        XPATH => Transform::XPath(
            kids.iter()
                .find(|k| is_ds(**k, "XPath"))
                .map(|k| k.text())
                .unwrap_or_default(),
        ),
        XPATH_FILTER2 => Transform::XPathFilter2,
        XSLT => Transform::Xslt,
        other => match c14n_from_uri(other) {
            Some(mut c) => {
                for k in &kids {
                    if k.local_name() == "InclusiveNamespaces"
                        && c.method == tamga_xml::C14nMethod::Exclusive10
                    {
                        c.inclusive_prefixes = k
                            .attribute("PrefixList")
                            .unwrap_or_default()
                            .split_ascii_whitespace()
                            .map(str::to_string)
                            .collect();
                    } else {
                        return Err(unexpected(*k));
                    }
                }
                Transform::C14n(c)
            }
            None => Transform::Unknown(other.to_string()),
        },
    })
}

fn no_children(kids: &[Node<'_>]) -> Result<(), FormatError> {
    match kids.first() {
        Some(k) => Err(unexpected(*k)),
        None => Ok(()),
    }
}

fn parse_key_info(node: Node<'_>, budget: &Budget) -> Result<KeyInfo, FormatError> {
    let mut ki = KeyInfo::default();
    for c in elements(node)? {
        match (c.namespace(), c.local_name()) {
            (Some(DSIG_NS), "X509Data") => {
                for x in elements(c)? {
                    match (x.namespace(), x.local_name()) {
                        (Some(DSIG_NS), "X509Certificate") => {
                            if ki.certificates.len() == budget.max_certificates {
                                return Err(FormatError::Budget {
                                    what: "certificates in KeyInfo",
                                    limit: budget.max_certificates,
                                });
                            }
                            ki.certificates
                                .push(decode_base64(&x.text(), "X509Certificate")?);
                        }
                        (Some(DSIG_NS), "X509CRL") => {
                            if ki.crls.len() == budget.max_certificates {
                                return Err(FormatError::Budget {
                                    what: "CRLs in KeyInfo",
                                    limit: budget.max_certificates,
                                });
                            }
                            ki.crls.push(decode_base64(&x.text(), "X509CRL")?);
                        }
                        (Some(DSIG_NS), "X509IssuerSerial" | "X509SKI" | "X509SubjectName")
                        | (Some(DSIG11_NS), "X509Digest") => ki.certificate_pointers += 1,
                        _ => ki.unknown.push(format!("X509Data/{}", x.local_name())),
                    }
                }
            }
            (Some(DSIG_NS), "KeyValue") => {
                for v in elements(c)? {
                    ki.key_values.push(parse_key_value(v)?);
                }
            }
            (Some(DSIG11_NS), "DEREncodedKeyValue") => {
                ki.key_values.push(KeyValue::Spki(decode_base64(
                    &c.text(),
                    "DEREncodedKeyValue",
                )?));
            }
            (Some(DSIG_NS), "KeyName") => ki.key_names.push(c.text().trim().to_string()),
            (Some(DSIG_NS), "RetrievalMethod") => ki.retrieval_method = true,
            (Some(DSIG11_NS), "KeyInfoReference") => ki.key_info_reference = true,
            _ => ki.unknown.push(c.local_name().to_string()),
        }
    }
    Ok(ki)
}

fn parse_key_value(v: Node<'_>) -> Result<KeyValue, FormatError> {
    match (v.namespace(), v.local_name()) {
        (Some(DSIG_NS), "RSAKeyValue") => {
            let m = v.child(DSIG_NS, "Modulus").ok_or(FormatError::Missing {
                path: v.path(),
                what: "ds:Modulus",
            })?;
            let e = v.child(DSIG_NS, "Exponent").ok_or(FormatError::Missing {
                path: v.path(),
                what: "ds:Exponent",
            })?;
            Ok(KeyValue::Rsa {
                modulus: decode_base64(&m.text(), "Modulus")?,
                exponent: decode_base64(&e.text(), "Exponent")?,
            })
        }
        (Some(DSIG11_NS), "ECKeyValue") => {
            let curve = v
                .child(DSIG11_NS, "NamedCurve")
                .and_then(|n| n.attribute("URI"))
                .unwrap_or_default();
            let point = v
                .child(DSIG11_NS, "PublicKey")
                .ok_or(FormatError::Missing {
                    path: v.path(),
                    what: "dsig11:PublicKey",
                })?;
            Ok(KeyValue::Ec {
                curve_oid: curve.trim_start_matches("urn:oid:").to_string(),
                point: decode_base64(&point.text(), "ECKeyValue PublicKey")?,
            })
        }
        (_, other) => Ok(KeyValue::Other(other.to_string())),
    }
}
