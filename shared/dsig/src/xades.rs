//! XAdES (ETSI EN 319 132-1) qualifying properties of a signature.

use tamga_xml::Node;

use crate::algorithms::{DigestAlgorithm, DSIG_NS};
use crate::error::FormatError;
use crate::model::{decode_base64, SignatureModel};

pub const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
pub const XADES141_NS: &str = "http://uri.etsi.org/01903/v1.4.1#";
pub const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";
pub const COUNTERSIGNED_SIGNATURE_TYPE: &str = "http://uri.etsi.org/01903#CountersignedSignature";

/// A `xades:CertDigest` from `SigningCertificate` or `SigningCertificateV2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertDigest {
    pub digest: DigestAlgorithm,
    pub value: Vec<u8>,
}

impl CertDigest {
    /// True when this digest names the certificate `der`.
    pub fn matches(&self, der: &[u8]) -> bool {
        match self.digest.digest(der) {
            Some(d) => d == self.value,
            None => false,
        }
    }
}

/// One `xades:SignatureTimeStamp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureTimestamp {
    /// `Err(uri)` for a canonicalisation Tamga does not know.
    pub c14n: Result<tamga_xml::Canonicalization, String>,
    pub token: Vec<u8>,
}

/// The XAdES properties that belong to one signature.
#[derive(Debug, Clone)]
pub struct Xades<'d> {
    pub qualifying_properties: Node<'d>,
    pub signed_properties: Option<Node<'d>>,
    pub signing_time: Option<String>,
    pub signing_certificates: Vec<CertDigest>,
    /// 1 for `SigningCertificate`, 2 for `SigningCertificateV2`.
    pub signing_certificate_version: Option<u8>,
    /// `ds:Signature` elements inside `xades:CounterSignature`.
    pub counter_signatures: Vec<Node<'d>>,
    /// `SignatureTimeStamp`s: the canonicalisation they name (XAdES default:
    /// inclusive C14N 1.0) and the `EncapsulatedTimeStamp` DER token.
    pub signature_timestamps: Vec<SignatureTimestamp>,
    /// Names of unsigned properties beyond counter-signatures, signature
    /// timestamps and revocation values (B-LTA material), for the report.
    pub other_unsigned: Vec<String>,
    /// `RevocationValues/OCSPValues/EncapsulatedOCSPValue`: DER OCSPResponses.
    pub ocsp_values: Vec<Vec<u8>>,
    /// `RevocationValues/CRLValues/EncapsulatedCRLValue`: DER CRLs.
    pub crl_values: Vec<Vec<u8>>,
}

/// At most this many OCSP responses and as many CRLs in `RevocationValues`.
pub const MAX_REVOCATION_VALUES: usize = 16;

fn revocation_values(
    rv: Node<'_>,
    group: &str,
    item: &'static str,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), FormatError> {
    for values in rv.element_children().filter(|c| is_xades(*c, group)) {
        for v in values.element_children().filter(|c| is_xades(*c, item)) {
            if out.len() == MAX_REVOCATION_VALUES {
                return Err(FormatError::Budget {
                    what: "values in xades:RevocationValues",
                    limit: MAX_REVOCATION_VALUES,
                });
            }
            out.push(decode_base64(&v.text(), item)?);
        }
    }
    Ok(())
}

fn is_xades(n: Node<'_>, local: &str) -> bool {
    n.is_element() && n.local_name() == local && n.namespace() == Some(XADES_NS)
}

/// Finds the `QualifyingProperties` whose `Target` is this signature, in the
/// signature's own `ds:Object`s. Anything ambiguous is refused.
pub fn parse_xades<'d>(sig: &SignatureModel<'d>) -> Result<Option<Xades<'d>>, FormatError> {
    let mut found = None;
    for obj in &sig.objects {
        for qp in obj.element_children() {
            if !(qp.local_name() == "QualifyingProperties"
                && matches!(qp.namespace(), Some(XADES_NS | XADES141_NS)))
            {
                continue;
            }
            if qp.namespace() != Some(XADES_NS) {
                return Err(FormatError::Unexpected {
                    path: qp.path(),
                    what: "a QualifyingProperties outside the XAdES 1.3.2 namespace".into(),
                });
            }
            if found.is_some() {
                return Err(FormatError::Unexpected {
                    path: qp.path(),
                    what: "a second xades:QualifyingProperties".into(),
                });
            }
            let target = qp.attribute("Target").unwrap_or_default();
            let expected = sig.id.as_ref().map(|id| format!("#{id}"));
            if Some(&target) != expected.as_ref() {
                return Err(FormatError::Unexpected {
                    path: qp.path(),
                    what: format!(
                        "Target {target:?}, which is not this signature ({})",
                        expected.as_deref().unwrap_or("the signature has no Id")
                    ),
                });
            }
            found = Some(qp);
        }
    }
    let Some(qp) = found else {
        return Ok(None);
    };
    let mut x = Xades {
        qualifying_properties: qp,
        signed_properties: None,
        signing_time: None,
        signing_certificates: Vec::new(),
        signing_certificate_version: None,
        counter_signatures: Vec::new(),
        signature_timestamps: Vec::new(),
        other_unsigned: Vec::new(),
        ocsp_values: Vec::new(),
        crl_values: Vec::new(),
    };
    for part in qp.element_children() {
        if is_xades(part, "SignedProperties") {
            if x.signed_properties.is_some() {
                return Err(FormatError::Unexpected {
                    path: part.path(),
                    what: "a second xades:SignedProperties".into(),
                });
            }
            x.signed_properties = Some(part);
            if let Some(ssp) = part.child(XADES_NS, "SignedSignatureProperties") {
                for p in ssp.element_children() {
                    if is_xades(p, "SigningTime") {
                        x.signing_time = Some(p.text().trim().to_string());
                    } else if is_xades(p, "SigningCertificate")
                        || is_xades(p, "SigningCertificateV2")
                    {
                        if x.signing_certificate_version.is_some() {
                            return Err(FormatError::Unexpected {
                                path: p.path(),
                                what: "a second signing-certificate property".into(),
                            });
                        }
                        x.signing_certificate_version =
                            Some(if p.local_name() == "SigningCertificateV2" {
                                2
                            } else {
                                1
                            });
                        for cert in p.element_children().filter(|c| is_xades(*c, "Cert")) {
                            let cd =
                                cert.child(XADES_NS, "CertDigest")
                                    .ok_or(FormatError::Missing {
                                        path: cert.path(),
                                        what: "xades:CertDigest",
                                    })?;
                            let dm =
                                cd.child(DSIG_NS, "DigestMethod")
                                    .ok_or(FormatError::Missing {
                                        path: cd.path(),
                                        what: "ds:DigestMethod",
                                    })?;
                            let dv =
                                cd.child(DSIG_NS, "DigestValue")
                                    .ok_or(FormatError::Missing {
                                        path: cd.path(),
                                        what: "ds:DigestValue",
                                    })?;
                            x.signing_certificates.push(CertDigest {
                                digest: DigestAlgorithm::from_uri(
                                    &dm.attribute("Algorithm").unwrap_or_default(),
                                ),
                                value: decode_base64(&dv.text(), "CertDigest DigestValue")?,
                            });
                        }
                    }
                }
            }
        } else if is_xades(part, "UnsignedProperties") {
            if let Some(usp) = part.child(XADES_NS, "UnsignedSignatureProperties") {
                for p in usp.element_children() {
                    if is_xades(p, "CounterSignature") {
                        let sigs: Vec<_> = p
                            .element_children()
                            .filter(|s| s.is(DSIG_NS, "Signature"))
                            .collect();
                        if sigs.len() != 1 {
                            return Err(FormatError::Unexpected {
                                path: p.path(),
                                what: format!(
                                    "{} ds:Signature children (exactly one allowed)",
                                    sigs.len()
                                ),
                            });
                        }
                        x.counter_signatures.extend(sigs);
                    } else if is_xades(p, "SignatureTimeStamp") {
                        let c14n = match p.child(DSIG_NS, "CanonicalizationMethod") {
                            None => Ok(tamga_xml::Canonicalization::new(
                                tamga_xml::C14nMethod::Inclusive10,
                                false,
                            )),
                            Some(cm) => {
                                let uri = cm.attribute("Algorithm").unwrap_or_default();
                                crate::algorithms::c14n_from_uri(&uri).ok_or(uri)
                            }
                        };
                        let ets = p.child(XADES_NS, "EncapsulatedTimeStamp").ok_or(
                            FormatError::Missing {
                                path: p.path(),
                                what: "xades:EncapsulatedTimeStamp",
                            },
                        )?;
                        x.signature_timestamps.push(SignatureTimestamp {
                            c14n,
                            token: decode_base64(&ets.text(), "EncapsulatedTimeStamp")?,
                        });
                    } else if is_xades(p, "RevocationValues") {
                        revocation_values(
                            p,
                            "OCSPValues",
                            "EncapsulatedOCSPValue",
                            &mut x.ocsp_values,
                        )?;
                        revocation_values(
                            p,
                            "CRLValues",
                            "EncapsulatedCRLValue",
                            &mut x.crl_values,
                        )?;
                    } else {
                        x.other_unsigned.push(p.local_name().to_string());
                    }
                }
            }
        }
    }
    Ok(Some(x))
}
