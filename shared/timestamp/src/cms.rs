//! CMS SignedData (RFC 5652) as used by RFC 3161 time-stamp tokens.

use crate::der::{self, AlgId, Tlv};
use crate::error::{malformed, TimestampError};

pub(crate) const OID_SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
pub(crate) const OID_CT_TST_INFO: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];
pub(crate) const OID_ATTR_CONTENT_TYPE: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x03];
pub(crate) const OID_ATTR_MESSAGE_DIGEST: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x04];
pub(crate) const OID_ATTR_SIGNING_CERTIFICATE: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x0c,
];
pub(crate) const OID_ATTR_SIGNING_CERTIFICATE_V2: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x02, 0x2f,
];
pub(crate) const OID_ATTR_ALGORITHM_PROTECTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x34];

/// Upper bound on the token size; real tokens are a few kilobytes.
pub(crate) const MAX_TOKEN_LEN: usize = 1 << 20;
/// Upper bound on embedded certificates and signed attributes.
const MAX_CERTS: usize = 64;
const MAX_ATTRS: usize = 64;

/// A parsed SignedData with exactly one SignerInfo.
#[derive(Debug)]
pub(crate) struct SignedData<'a> {
    /// The eContent octets: the DER TSTInfo that `message-digest` covers.
    pub econtent: &'a [u8],
    /// DER X.509 certificates from `certificates` (other CertificateChoices are skipped).
    pub certs: Vec<&'a [u8]>,
    pub signer: SignerInfo<'a>,
}

/// How the SignerInfo names its certificate.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Sid<'a> {
    /// Raw DER of the issuer Name, and INTEGER content octets of the serial.
    IssuerSerial {
        issuer: &'a [u8],
        serial: &'a [u8],
    },
    SubjectKeyId(&'a [u8]),
}

#[derive(Debug)]
pub(crate) struct SignerInfo<'a> {
    pub sid: Sid<'a>,
    pub digest_alg: AlgId<'a>,
    /// The `[0] IMPLICIT` signedAttrs element, re-tagged as SET OF (0x31) for verification.
    pub signed_attrs_der: Vec<u8>,
    pub attrs: Vec<Attribute<'a>>,
    pub signature_alg: AlgId<'a>,
    pub signature: &'a [u8],
}

#[derive(Clone, Debug)]
pub(crate) struct Attribute<'a> {
    pub oid: &'a [u8],
    pub values: Vec<Tlv<'a>>,
}

impl SignerInfo<'_> {
    /// The single value of a signed attribute; `Ok(None)` when absent,
    /// an error when it occurs twice or has other than one value.
    pub(crate) fn single_attr(
        &self,
        oid: &[u8],
        name: &str,
    ) -> Result<Option<Tlv<'_>>, TimestampError> {
        let mut found = self.attrs.iter().filter(|a| a.oid == oid);
        let Some(attr) = found.next() else {
            return Ok(None);
        };
        if found.next().is_some() {
            return Err(malformed(format!(
                "signed attribute {name} occurs more than once"
            )));
        }
        match attr.values.as_slice() {
            [v] => Ok(Some(*v)),
            _ => Err(malformed(format!(
                "signed attribute {name} must have exactly one value"
            ))),
        }
    }
}

/// ContentInfo → SignedData, checking the content types.
pub(crate) fn parse_signed_data(token: &[u8]) -> Result<SignedData<'_>, TimestampError> {
    if token.is_empty() {
        return Err(malformed("empty input"));
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed(format!(
            "token of {} bytes exceeds the {MAX_TOKEN_LEN}-byte limit",
            token.len()
        )));
    }
    let what = "ContentInfo";
    let ci = Tlv::parse_exact(token, what)?.expect_tag(der::TAG_SEQUENCE, what)?;
    let mut r = ci.reader(what);
    let content_type = der::oid(r.read()?, "ContentInfo.contentType")?;
    if content_type != OID_SIGNED_DATA {
        return Err(TimestampError::NotATimestamp);
    }
    let explicit = r.take(der::ctx_cons(0))?;
    r.finish()?;

    let what = "SignedData";
    let sd = Tlv::parse_exact(explicit.value, what)?.expect_tag(der::TAG_SEQUENCE, what)?;
    let mut r = sd.reader(what);
    let version = der::small_uint(r.read()?, "SignedData.version")?;
    if !matches!(version, 1 | 3 | 4 | 5) {
        return Err(malformed(format!("SignedData.version {version}")));
    }
    let digest_algs = r.take(der::TAG_SET)?;
    let mut dr = digest_algs.reader("SignedData.digestAlgorithms");
    while !dr.is_empty() {
        AlgId::parse(dr.read()?, "SignedData.digestAlgorithms")?;
    }

    // EncapsulatedContentInfo
    let eci = r.take(der::TAG_SEQUENCE)?;
    let mut er = eci.reader("EncapsulatedContentInfo");
    let econtent_type = der::oid(er.read()?, "eContentType")?;
    if econtent_type != OID_CT_TST_INFO {
        return Err(TimestampError::NotATimestamp);
    }
    let econtent_explicit = er
        .optional(der::ctx_cons(0))?
        .ok_or_else(|| malformed("EncapsulatedContentInfo: eContent is absent"))?;
    er.finish()?;
    let econtent = der::octet_string(
        Tlv::parse_exact(econtent_explicit.value, "eContent")?,
        "eContent (must be a primitive OCTET STRING)",
    )?;

    let mut certs = Vec::new();
    if let Some(set) = r.optional(der::ctx_cons(0))? {
        let mut cr = set.reader("SignedData.certificates");
        while !cr.is_empty() {
            let choice = cr.read()?;
            // Only plain X.509 certificates; attribute and other certificates are ignored.
            if choice.tag == der::TAG_SEQUENCE {
                if certs.len() >= MAX_CERTS {
                    return Err(malformed(format!("more than {MAX_CERTS} certificates")));
                }
                certs.push(choice.raw);
            }
        }
    }
    // CRLs / other revocation info: skipped (no revocation checking).
    r.optional(der::ctx_cons(1))?;

    let signer_infos = r.take(der::TAG_SET)?;
    r.finish()?;
    let mut sr = signer_infos.reader("SignedData.signerInfos");
    if sr.is_empty() {
        return Err(malformed("SignedData.signerInfos: no SignerInfo"));
    }
    let first = sr.read()?;
    if !sr.is_empty() {
        return Err(malformed(
            "SignedData.signerInfos: a time-stamp token must have exactly one SignerInfo",
        ));
    }
    let signer = parse_signer_info(first)?;
    Ok(SignedData {
        econtent,
        certs,
        signer,
    })
}

fn parse_signer_info(tlv: Tlv<'_>) -> Result<SignerInfo<'_>, TimestampError> {
    let what = "SignerInfo";
    let tlv = tlv.expect_tag(der::TAG_SEQUENCE, what)?;
    let mut r = tlv.reader(what);
    let version = der::small_uint(r.read()?, "SignerInfo.version")?;
    let sid_tlv = r.read()?;
    let sid = match sid_tlv.tag {
        der::TAG_SEQUENCE => {
            let mut ir = sid_tlv.reader("SignerInfo.sid");
            let issuer = ir.take(der::TAG_SEQUENCE)?.raw;
            let serial = der::integer(ir.read()?, "SignerInfo.sid.serialNumber")?;
            ir.finish()?;
            Sid::IssuerSerial { issuer, serial }
        }
        t if t == der::ctx_prim(0) => {
            if sid_tlv.value.is_empty() {
                return Err(malformed("SignerInfo.sid: empty subjectKeyIdentifier"));
            }
            Sid::SubjectKeyId(sid_tlv.value)
        }
        t => {
            return Err(malformed(format!(
                "SignerInfo.sid: unexpected tag 0x{t:02x}"
            )))
        }
    };
    match (version, &sid) {
        (1, Sid::IssuerSerial { .. }) | (3, Sid::SubjectKeyId(_)) => {}
        _ => {
            return Err(malformed(format!(
                "SignerInfo.version {version} does not match its signer identifier"
            )))
        }
    }
    let digest_alg = AlgId::parse(r.read()?, "SignerInfo.digestAlgorithm")?;

    let attrs_tlv = r.optional(der::ctx_cons(0))?.ok_or_else(|| {
        malformed("SignerInfo: signed attributes are required for id-ct-TSTInfo content")
    })?;
    let mut signed_attrs_der = attrs_tlv.raw.to_vec();
    if let Some(first) = signed_attrs_der.first_mut() {
        *first = der::TAG_SET;
    }
    let mut attrs = Vec::new();
    let mut ar = attrs_tlv.reader("SignerInfo.signedAttrs");
    if ar.is_empty() {
        return Err(malformed("SignerInfo.signedAttrs: empty"));
    }
    while !ar.is_empty() {
        if attrs.len() >= MAX_ATTRS {
            return Err(malformed(format!(
                "more than {MAX_ATTRS} signed attributes"
            )));
        }
        let a = ar.take(der::TAG_SEQUENCE)?;
        let mut a_r = a.reader("Attribute");
        let oid = der::oid(a_r.read()?, "Attribute.attrType")?;
        let set = a_r.take(der::TAG_SET)?;
        a_r.finish()?;
        let mut values = Vec::new();
        let mut vr = set.reader("Attribute.attrValues");
        while !vr.is_empty() {
            values.push(vr.read()?);
        }
        if values.is_empty() {
            return Err(malformed("Attribute.attrValues: empty"));
        }
        attrs.push(Attribute { oid, values });
    }

    let signature_alg = AlgId::parse(r.read()?, "SignerInfo.signatureAlgorithm")?;
    let signature = der::octet_string(r.read()?, "SignerInfo.signature")?;
    if signature.is_empty() {
        return Err(malformed("SignerInfo.signature: empty"));
    }
    // Unsigned attributes are not covered by the signature and are ignored.
    r.optional(der::ctx_cons(1))?;
    r.finish()?;
    Ok(SignerInfo {
        sid,
        digest_alg,
        signed_attrs_der,
        attrs,
        signature_alg,
        signature,
    })
}

/// One ESSCertID / ESSCertIDv2 entry.
#[derive(Clone, Debug)]
pub(crate) struct EssCertId<'a> {
    /// SHA-1 for v1; the stated (or default SHA-256) hash for v2.
    pub hash_alg: Option<AlgId<'a>>,
    pub cert_hash: &'a [u8],
    /// IssuerSerial: the GeneralNames element and serial INTEGER content.
    pub issuer_serial: Option<(Tlv<'a>, &'a [u8])>,
}

/// Parses SigningCertificate (v1, RFC 2634) or SigningCertificateV2 (RFC 5035)
/// and returns its first ESSCertID, the one naming the signing certificate.
pub(crate) fn parse_signing_certificate(
    value: Tlv<'_>,
    v2: bool,
) -> Result<EssCertId<'_>, TimestampError> {
    let what = if v2 {
        "SigningCertificateV2"
    } else {
        "SigningCertificate"
    };
    let sc = value.expect_tag(der::TAG_SEQUENCE, what)?;
    let mut r = sc.reader(what);
    let certs = r.take(der::TAG_SEQUENCE)?;
    // policies SEQUENCE OF PolicyInformation OPTIONAL: not interpreted.
    r.optional(der::TAG_SEQUENCE)?;
    r.finish()?;
    let mut cr = certs.reader(what);
    if cr.is_empty() {
        return Err(malformed(format!("{what}: no ESSCertID")));
    }
    let first = cr.take(der::TAG_SEQUENCE)?;
    // Further ESSCertIDs (CA certificates) are only checked for well-formedness.
    while !cr.is_empty() {
        cr.take(der::TAG_SEQUENCE)?;
    }
    let mut er = first.reader(what);
    let hash_alg = if v2 {
        match er.optional(der::TAG_SEQUENCE)? {
            Some(a) => Some(AlgId::parse(a, what)?),
            None => None, // DEFAULT id-sha256
        }
    } else {
        None
    };
    let cert_hash = der::octet_string(er.read()?, what)?;
    let issuer_serial = match er.optional(der::TAG_SEQUENCE)? {
        Some(is) => {
            let mut ir = is.reader("IssuerSerial");
            let names = ir.take(der::TAG_SEQUENCE)?;
            let serial = der::integer(ir.read()?, "IssuerSerial.serialNumber")?;
            ir.finish()?;
            Some((names, serial))
        }
        None => None,
    };
    er.finish()?;
    Ok(EssCertId {
        hash_alg,
        cert_hash,
        issuer_serial,
    })
}

/// The directoryName entries (`[4] EXPLICIT Name`) of a GeneralNames SEQUENCE, as raw Name DER.
pub(crate) fn directory_names<'a>(general_names: Tlv<'a>) -> Result<Vec<&'a [u8]>, TimestampError> {
    let mut out = Vec::new();
    let mut r = general_names.reader("GeneralNames");
    while !r.is_empty() {
        let gn = r.read()?;
        if gn.tag == der::ctx_cons(4) {
            out.push(directory_name(gn)?);
        }
    }
    Ok(out)
}

/// The Name inside a `[4]` directoryName GeneralName.
pub(crate) fn directory_name(gn: Tlv<'_>) -> Result<&[u8], TimestampError> {
    let name = Tlv::parse_exact(gn.value, "GeneralName.directoryName")?
        .expect_tag(der::TAG_SEQUENCE, "GeneralName.directoryName")?;
    Ok(name.raw)
}
