//! Making signatures: the broker's enveloped declaration signature
//! (optionally XAdES-B-B).
//!
//! The signature is spliced into the submitted bytes just before the
//! document element's end tag, so everything else stays byte for byte as it
//! was. Exclusive c14n everywhere makes the signed octets independent of
//! where the fragment lands, so digests are computed before splicing; the
//! result is then verified again before it is returned (fail closed).

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use tamga_xml::{C14nMethod, Canonicalization, Document, ParseLimits, Selection};
use thiserror::Error;
use time::OffsetDateTime;

use crate::algorithms::{
    c14n_uri, DigestAlgorithm, KeyFamily, SignatureAlgorithm, DSIG_NS, ENVELOPED,
};
use crate::core::{check_references, check_signature_value, find_signatures, signed_info_octets};
use crate::crypto::{curve_field_bytes, ecdsa_der_to_raw, verify_signature, Curve, PublicKey};
use crate::error::CryptoError;
use crate::model::{parse_signature, Budget};
use crate::reference::NoExternal;
use crate::xades::{SIGNED_PROPERTIES_TYPE, XADES_NS};

/// Something that signs octets: a key in memory, or a token that keeps it.
pub trait Signer {
    /// The XML-DSig signature algorithm this signer produces.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The signature value in XML-DSig form (r || s for ECDSA).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// The public half, to check it matches the certificate.
    fn public_key(&self) -> PublicKey;
}

enum KeyKind {
    Rsa(aws_lc_rs::rsa::KeyPair),
    Ec(aws_lc_rs::signature::EcdsaKeyPair, Curve),
    Ed25519(aws_lc_rs::signature::Ed25519KeyPair),
    /// A GOST demo key (feature `gost-demo`): variable-time signing from
    /// `tamga-gost`'s demo signer, for demo and test material only.
    #[cfg(feature = "gost-demo")]
    GostDemo(tamga_gost::demo::DemoSecretKey),
}

/// A PKCS#8 private key held in memory.
pub struct SigningKey {
    kind: KeyKind,
    algorithm: SignatureAlgorithm,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "SigningKey({})", self.algorithm.name())
    }
}

impl SigningKey {
    /// Loads a PKCS#8 PEM (`PRIVATE KEY`) key. RSA keys must be at least
    /// 2048 bits; EC keys P-256, P-384 or P-521.
    pub fn from_pkcs8_pem(pem: &[u8]) -> Result<Self, CryptoError> {
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| CryptoError::BadKey(format!("not a PKCS#8 PEM private key: {e}")))?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    /// Loads a PKCS#8 DER key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, CryptoError> {
        use aws_lc_rs::signature as s;
        if let Ok(k) = aws_lc_rs::rsa::KeyPair::from_pkcs8(der) {
            if k.public_modulus_len() * 8 < 2048 {
                return Err(CryptoError::BadKey(
                    "RSA keys must be at least 2048 bits".into(),
                ));
            }
            return Ok(Self {
                kind: KeyKind::Rsa(k),
                algorithm: SignatureAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256),
            });
        }
        for (alg, curve, digest) in [
            (
                &s::ECDSA_P256_SHA256_FIXED_SIGNING,
                Curve::P256,
                DigestAlgorithm::Sha256,
            ),
            (
                &s::ECDSA_P384_SHA384_FIXED_SIGNING,
                Curve::P384,
                DigestAlgorithm::Sha384,
            ),
            (
                &s::ECDSA_P521_SHA512_FIXED_SIGNING,
                Curve::P521,
                DigestAlgorithm::Sha512,
            ),
        ] {
            if let Ok(k) = s::EcdsaKeyPair::from_pkcs8(alg, der) {
                return Ok(Self {
                    kind: KeyKind::Ec(k, curve),
                    algorithm: SignatureAlgorithm::Ecdsa(digest),
                });
            }
        }
        if let Ok(k) = s::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            return Ok(Self {
                kind: KeyKind::Ed25519(k),
                algorithm: SignatureAlgorithm::Ed25519,
            });
        }
        #[cfg(feature = "gost-demo")]
        if let Ok(k) = tamga_gost::demo::DemoSecretKey::from_pkcs8_der(der) {
            // The Kazakh NCA's XML form by default (pkigovkz URIs, r‖s
            // little-endian); `with_algorithm` switches to CryptoPro's.
            let bits = if k.param_set().bits() == 512 {
                512
            } else {
                256
            };
            return Ok(Self {
                kind: KeyKind::GostDemo(k),
                algorithm: SignatureAlgorithm::Gost {
                    bits,
                    dialect: crate::algorithms::GostDialect::Kazakh,
                },
            });
        }
        Err(CryptoError::BadKey(
            "unsupported private key (RSA ≥ 2048, EC P-256/P-384/P-521 or Ed25519 in PKCS#8)"
                .into(),
        ))
    }

    /// Chooses another algorithm for the same key (e.g. `rsa-sha512`,
    /// `rsa-pss-sha256`). ECDSA keys sign with the digest that matches
    /// their curve.
    pub fn with_algorithm(mut self, algorithm: SignatureAlgorithm) -> Result<Self, CryptoError> {
        let ok = match (&self.kind, &algorithm) {
            (KeyKind::Rsa(_), SignatureAlgorithm::RsaPkcs1(d) | SignatureAlgorithm::RsaPss(d)) => {
                matches!(
                    d,
                    DigestAlgorithm::Sha256 | DigestAlgorithm::Sha384 | DigestAlgorithm::Sha512
                )
            }
            (KeyKind::Ec(..), a) | (KeyKind::Ed25519(_), a) => *a == self.algorithm,
            #[cfg(feature = "gost-demo")]
            (KeyKind::GostDemo(_), SignatureAlgorithm::Gost { bits, .. }) => {
                matches!(&self.algorithm, SignatureAlgorithm::Gost { bits: b, .. } if b == bits)
            }
            _ => false,
        };
        if !ok {
            return Err(CryptoError::KeyMismatch {
                key: self.public_key().describe(),
                algorithm: algorithm.name(),
            });
        }
        self.algorithm = algorithm;
        Ok(self)
    }
}

impl Signer for SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm.clone()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        use aws_lc_rs::signature as s;
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let fail = |e: aws_lc_rs::error::Unspecified| CryptoError::Signing(e.to_string());
        match &self.kind {
            KeyKind::Rsa(k) => {
                let padding: &'static dyn s::RsaEncoding = match &self.algorithm {
                    SignatureAlgorithm::RsaPkcs1(DigestAlgorithm::Sha384) => &s::RSA_PKCS1_SHA384,
                    SignatureAlgorithm::RsaPkcs1(DigestAlgorithm::Sha512) => &s::RSA_PKCS1_SHA512,
                    SignatureAlgorithm::RsaPss(DigestAlgorithm::Sha256) => &s::RSA_PSS_SHA256,
                    SignatureAlgorithm::RsaPss(DigestAlgorithm::Sha384) => &s::RSA_PSS_SHA384,
                    SignatureAlgorithm::RsaPss(DigestAlgorithm::Sha512) => &s::RSA_PSS_SHA512,
                    _ => &s::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(padding, &rng, message, &mut out).map_err(fail)?;
                Ok(out)
            }
            KeyKind::Ec(k, curve) => {
                let sig = k.sign(&rng, message).map_err(fail)?;
                let raw = sig.as_ref().to_vec();
                // FIXED signing algorithms already give r || s; keep the
                // conversion for any ASN.1 form defensively.
                if raw.len() == 2 * curve_field_bytes(curve) {
                    Ok(raw)
                } else {
                    ecdsa_der_to_raw(&raw, curve_field_bytes(curve))
                        .ok_or_else(|| CryptoError::Signing("bad ECDSA signature encoding".into()))
                }
            }
            KeyKind::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            #[cfg(feature = "gost-demo")]
            KeyKind::GostDemo(k) => {
                let sig = k
                    .sign_message(message)
                    .map_err(|e| CryptoError::Signing(e.to_string()))?;
                Ok(match &self.algorithm {
                    SignatureAlgorithm::Gost {
                        dialect: crate::algorithms::GostDialect::CryptoPro,
                        ..
                    } => sig.to_rfc4491(k.param_set()),
                    _ => sig.to_kz_xml(k.param_set()),
                })
            }
        }
    }

    fn public_key(&self) -> PublicKey {
        use aws_lc_rs::signature::KeyPair;
        match &self.kind {
            KeyKind::Rsa(k) => PublicKey::Rsa {
                der: k.public_key().as_ref().to_vec(),
                bits: k.public_modulus_len() * 8,
            },
            KeyKind::Ec(k, curve) => PublicKey::Ec {
                curve: curve.clone(),
                point: k.public_key().as_ref().to_vec(),
            },
            KeyKind::Ed25519(k) => PublicKey::Ed25519(k.public_key().as_ref().to_vec()),
            #[cfg(feature = "gost-demo")]
            KeyKind::GostDemo(k) => PublicKey::Gost(k.public_key().clone()),
        }
    }
}

/// The reference digest that goes with a signer: the Streebog of a GOST
/// signature (size and dialect), SHA-256 otherwise.
pub fn default_digest(signer: &dyn Signer) -> DigestAlgorithm {
    match signer.algorithm() {
        a @ SignatureAlgorithm::Gost { .. } => {
            a.digest().cloned().unwrap_or(DigestAlgorithm::Sha256)
        }
        _ => DigestAlgorithm::Sha256,
    }
}

/// Reads every certificate in a PEM file (DER is accepted too).
pub fn certificates_from_pem(bytes: &[u8]) -> Result<Vec<Vec<u8>>, CryptoError> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(bytes)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| CryptoError::BadKey(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(CryptoError::BadKey("no certificate in the PEM file".into()));
    }
    Ok(certs)
}

/// What to put in the signature.
#[derive(Debug, Clone)]
pub struct SignOptions {
    /// The signer's certificate first, then its chain (intermediates).
    pub certificates: Vec<Vec<u8>>,
    pub digest: DigestAlgorithm,
    /// Add XAdES-B-B qualifying properties.
    pub xades: bool,
    /// The claimed signing time (XAdES `SigningTime`).
    pub signing_time: OffsetDateTime,
    pub limits: ParseLimits,
}

/// Why a document could not be signed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SignError {
    #[error("the input is not acceptable XML: {0}")]
    Xml(#[from] tamga_xml::ParseError),
    #[error(
        "the document is already signed; a declaration carries exactly one declarant signature"
    )]
    AlreadySigned,
    #[error("the certificate does not match the private key")]
    CertificateMismatch,
    #[error("no signer certificate was given")]
    NoCertificate,
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("canonicalisation failed: {0}")]
    C14n(#[from] tamga_xml::C14nError),
    #[error("where to insert into the document could not be determined from its parse")]
    Splice,
    #[error("the document cannot be countersigned: {0}")]
    NotCountersignable(String),
    #[error("self-check of the new signature failed: {0}")]
    SelfCheck(String),
}

pub(crate) const EXC: Canonicalization = Canonicalization {
    method: C14nMethod::Exclusive10,
    with_comments: false,
    inclusive_prefixes: Vec::new(),
};

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn digest(alg: &DigestAlgorithm, data: &[u8]) -> Result<Vec<u8>, SignError> {
    alg.digest(data)
        .ok_or_else(|| CryptoError::UnsupportedAlgorithm(alg.name().to_string()).into())
}

/// An attribute value as exclusive c14n writes it (`&`, `<`, `"` and the
/// three whitespace characters a parser would otherwise normalise). Used for
/// both the document text and the signed octets of everything Tamga
/// generates, so the two are the same characters by construction.
pub(crate) fn attr_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Debug builds (and so every test) check that a fragment Tamga generated in
/// canonical form is exactly what exclusive c14n makes of it after a parse.
/// Release builds rely on the self-check, which digests and verifies the
/// fragment as it stands in the re-parsed output.
fn debug_assert_canonical(standalone: &str, canonical: &[u8], limits: &ParseLimits) {
    if cfg!(debug_assertions) {
        let recanonicalised = Document::parse(standalone.as_bytes(), limits)
            .ok()
            .and_then(|d| d.canonicalize_to_vec(Selection::Document, None, &EXC).ok());
        debug_assert_eq!(
            recanonicalised.as_deref().map(String::from_utf8_lossy),
            Some(String::from_utf8_lossy(canonical)),
            "generated fragment is not in exclusive canonical form"
        );
    }
}

/// Signs `input` with an enveloped signature over the document element.
pub fn sign_enveloped(
    input: &[u8],
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let doc = Document::parse_with_spans(input, &options.limits)?;
    if !find_signatures(&doc).is_empty() {
        return Err(SignError::AlreadySigned);
    }
    // The enveloped-signature transform removes exactly what we insert, so
    // the document digest is the digest of the document as submitted.
    let doc_c14n = doc.canonicalize_to_vec(Selection::Document, None, &EXC)?;
    let doc_digest = digest(&options.digest, &doc_c14n)?;
    let sig_id = unique_id(&doc, "tamga-sig", &doc_digest, &[]);
    let signature = build_signature(
        &sig_id,
        vec![RefSpec {
            uri: String::new(),
            type_uri: None,
            enveloped: true,
            digest_value: doc_digest,
        }],
        signer,
        options,
    )?;
    let out = crate::splice::splice_before_root_end(input, &doc, &signature.xml)?;
    drop(doc);
    self_check(&out, &options.limits, &signature, false)?;
    Ok(out)
}

/// [`sign_enveloped`] for a document its caller wrote in exclusive canonical
/// form (as `build_signature` writes its own fragments): `root` is the
/// document element, byte for byte its own exclusive c14n; `prolog` (an XML
/// declaration, say) goes before it. The document digest is then the digest of
/// `root` itself — no parse and no canonicalisation before signing; `ids` are
/// the `Id` values already in `root`, so the signature's Id does not collide.
///
/// Nothing is taken on trust: the self-check parses the output and verifies
/// every reference against it, so a `root` that is not canonical is a
/// [`SignError::SelfCheck`], never a receipt that fails to verify later.
pub fn sign_canonical_enveloped(
    prolog: &str,
    root: &str,
    ids: &[&str],
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Vec<u8>, SignError> {
    let close = root
        .rfind("</")
        .filter(|&at| root.ends_with('>') && at > 0)
        .ok_or_else(|| SignError::SelfCheck("the document element has no end tag".into()))?;
    let doc_digest = digest(&options.digest, root.as_bytes())?;
    let sig_id = unique_id_by(|id| ids.contains(&id), "tamga-sig", &doc_digest);
    let signature = build_signature(
        &sig_id,
        vec![RefSpec {
            uri: String::new(),
            type_uri: None,
            enveloped: true,
            digest_value: doc_digest,
        }],
        signer,
        options,
    )?;
    let mut out = Vec::with_capacity(prolog.len() + root.len() + signature.xml.len() + 1);
    out.extend_from_slice(prolog.as_bytes());
    out.extend_from_slice(&root.as_bytes()[..close]);
    out.extend_from_slice(signature.xml.as_bytes());
    out.extend_from_slice(&root.as_bytes()[close..]);
    out.push(b'\n');
    self_check(&out, &options.limits, &signature, false)?;
    Ok(out)
}

/// One reference to put in a new SignedInfo.
pub(crate) struct RefSpec {
    pub uri: String,
    pub type_uri: Option<&'static str>,
    pub enveloped: bool,
    pub digest_value: Vec<u8>,
}

/// Builds a complete `ds:Signature` element (with `xmlns:ds` declared on
/// it) over `refs`, plus XAdES SignedProperties when asked. Exclusive c14n
/// makes every digest and the SignedInfo octets independent of where the
/// fragment is later placed.
pub(crate) fn build_signature(
    sig_id: &str,
    mut refs: Vec<RefSpec>,
    signer: &dyn Signer,
    options: &SignOptions,
) -> Result<Built, SignError> {
    let cert = options
        .certificates
        .first()
        .ok_or(SignError::NoCertificate)?;
    let key = PublicKey::from_certificate_der(cert)?;
    if key != signer.public_key() {
        return Err(SignError::CertificateMismatch);
    }
    let algorithm = signer.algorithm();
    // GOST only with a GOST R 34.10-2012 signature (the demo signer);
    // GOST 34.310-2004 is verify-refused and never made.
    let gost = matches!(algorithm, SignatureAlgorithm::Gost { .. });
    match algorithm.key_family() {
        Some(KeyFamily::Rsa | KeyFamily::Ec | KeyFamily::Ed25519) => {}
        Some(KeyFamily::Gost) if gost => {}
        _ => return Err(CryptoError::UnsupportedAlgorithm(algorithm.name()).into()),
    }
    let ds = DSIG_NS;
    let exc = c14n_uri(&EXC);
    let dm = attr_escape(options.digest.uri());

    // Every fragment below is written directly in exclusive canonical form
    // (end tags rather than `<a/>`, namespace declarations where exclusive
    // c14n renders them, attributes in c14n order and escaping), so its
    // signed octets are the text itself and need no parse: exclusive c14n
    // does not depend on where the fragment is later placed.
    let mut object = String::new();
    if options.xades {
        let props_id = attr_escape(&format!("{sig_id}-signedprops"));
        let time = options
            .signing_time
            .to_offset(time::UtcOffset::UTC)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| SignError::SelfCheck(e.to_string()))?;
        // GOST signers digest their certificate with the signature's
        // Streebog, as NCALayer does (SigningCertificateV2); others SHA-256.
        let cert_alg = if gost {
            options.digest.clone()
        } else {
            DigestAlgorithm::Sha256
        };
        let cert_digest = b64(&digest(&cert_alg, cert)?);
        // ds: is first used inside CertDigest, whose xades: ancestors do not
        // render it, so exclusive c14n declares it on each ds: element.
        let body = format!(
            concat!(
                r#"<xades:SignedSignatureProperties><xades:SigningTime>{time}</xades:SigningTime>"#,
                r#"<xades:SigningCertificateV2><xades:Cert><xades:CertDigest>"#,
                r#"<ds:DigestMethod xmlns:ds="{ds}" Algorithm="{cert_alg}"></ds:DigestMethod>"#,
                r#"<ds:DigestValue xmlns:ds="{ds}">{cd}</ds:DigestValue>"#,
                r#"</xades:CertDigest></xades:Cert></xades:SigningCertificateV2>"#,
                r#"</xades:SignedSignatureProperties></xades:SignedProperties>"#
            ),
            time = time,
            ds = ds,
            cert_alg = attr_escape(cert_alg.uri()),
            cd = cert_digest
        );
        let props_c14n =
            format!(r#"<xades:SignedProperties xmlns:xades="{XADES_NS}" Id="{props_id}">{body}"#);
        debug_assert_canonical(&props_c14n, props_c14n.as_bytes(), &options.limits);
        refs.push(RefSpec {
            uri: format!("#{sig_id}-signedprops"),
            type_uri: Some(SIGNED_PROPERTIES_TYPE),
            enveloped: false,
            digest_value: digest(&options.digest, props_c14n.as_bytes())?,
        });
        // In place the element inherits xmlns:xades from QualifyingProperties;
        // exclusive c14n renders it on SignedProperties all the same.
        object = format!(
            r##"<ds:Object><xades:QualifyingProperties xmlns:xades="{XADES_NS}" Target="{target}"><xades:SignedProperties Id="{props_id}">{body}</xades:QualifyingProperties></ds:Object>"##,
            target = attr_escape(&format!("#{sig_id}")),
        );
    }

    let mut references = String::new();
    for r in &refs {
        let type_attr = r
            .type_uri
            .map(|t| format!(r#" Type="{}""#, attr_escape(t)))
            .unwrap_or_default();
        let enveloped = if r.enveloped {
            format!(r#"<ds:Transform Algorithm="{ENVELOPED}"></ds:Transform>"#)
        } else {
            String::new()
        };
        // Type sorts before URI, as c14n orders un-namespaced attributes.
        references.push_str(&format!(
            r#"<ds:Reference{type_attr} URI="{uri}"><ds:Transforms>{enveloped}<ds:Transform Algorithm="{exc}"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm="{dm}"></ds:DigestMethod><ds:DigestValue>{dv}</ds:DigestValue></ds:Reference>"#,
            uri = attr_escape(&r.uri),
            dv = b64(&r.digest_value),
        ));
    }
    let signed_info_body = format!(
        r#"<ds:CanonicalizationMethod Algorithm="{exc}"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm="{sm}"></ds:SignatureMethod>{references}</ds:SignedInfo>"#,
        sm = attr_escape(&algorithm.uri()),
    );
    let si_c14n = format!(r#"<ds:SignedInfo xmlns:ds="{ds}">{signed_info_body}"#);
    debug_assert_canonical(&si_c14n, si_c14n.as_bytes(), &options.limits);
    let value = signer.sign(si_c14n.as_bytes())?;
    // A real cryptographic check of what leaves Tamga, over the exact signed
    // octets: a token or key that signs wrongly fails closed here.
    verify_signature(&algorithm, &key, si_c14n.as_bytes(), &value)
        .map_err(|e| SignError::SelfCheck(format!("the new signature value: {e}")))?;
    let certs: String = options
        .certificates
        .iter()
        .map(|c| format!("<ds:X509Certificate>{}</ds:X509Certificate>", b64(c)))
        .collect();
    let xml = format!(
        r#"<ds:Signature xmlns:ds="{ds}" Id="{id}"><ds:SignedInfo>{signed_info_body}<ds:SignatureValue Id="{value_id}">{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data>{certs}</ds:X509Data></ds:KeyInfo>{object}</ds:Signature>"#,
        b64(&value),
        id = attr_escape(sig_id),
        value_id = attr_escape(&format!("{sig_id}-value")),
    );
    Ok(Built {
        xml,
        id: sig_id.to_string(),
        signed_info: si_c14n.into_bytes(),
        value,
    })
}

/// A new `ds:Signature` and what the self-check expects to find of it in
/// the output.
pub(crate) struct Built {
    pub xml: String,
    pub id: String,
    /// The exact octets that were signed (and verified).
    pub signed_info: Vec<u8>,
    pub value: Vec<u8>,
}

/// An ID not yet used in `doc`, stable for the same document.
/// `also_taken`: IDs about to be added to the document.
pub(crate) fn unique_id(doc: &Document, prefix: &str, seed: &[u8], also_taken: &[&str]) -> String {
    unique_id_by(
        |id| doc.element_by_id(id).is_some() || also_taken.contains(&id),
        prefix,
        seed,
    )
}

/// [`unique_id`] against any notion of "taken".
fn unique_id_by(taken: impl Fn(&str) -> bool, prefix: &str, seed: &[u8]) -> String {
    let base = format!("{prefix}-{}", hex::encode(&seed[..seed.len().min(6)]));
    let mut id = base.clone();
    let mut n = 1;
    while taken(&id) || taken(&format!("{id}-value")) || taken(&format!("{id}-signedprops")) {
        n += 1;
        id = format!("{base}-{n}");
    }
    id
}

/// Re-parses `out` and checks the new signature `new` as it stands there:
/// found exactly once, every reference digests correctly in the parsed
/// output (which catches any splice, escaping or canonicalisation mistake),
/// and its SignedInfo canonicalises to exactly the octets whose signature
/// value [`build_signature`] already verified against the certificate's key,
/// with that value. Verifying the value a second time over the same octets
/// would add nothing. With `all`, every other signature in `out` is fully
/// verified too (references and value against its first certificate).
pub(crate) fn self_check(
    out: &[u8],
    limits: &ParseLimits,
    new: &Built,
    all: bool,
) -> Result<(), SignError> {
    let doc = Document::parse(out, limits)?;
    let mut found = 0;
    for node in find_signatures(&doc) {
        let ours = node.attribute("Id").as_deref() == Some(new.id.as_str());
        if !ours && !all {
            continue;
        }
        let sig = parse_signature(node, &Budget::default())
            .map_err(|e| SignError::SelfCheck(e.to_string()))?;
        for r in check_references(&doc, &sig, &NoExternal, limits) {
            if let Err(e) = r.result {
                return Err(SignError::SelfCheck(format!(
                    "reference {}: {e:?}",
                    r.index
                )));
            }
        }
        if ours {
            found += 1;
            let octets =
                signed_info_octets(&doc, &sig).map_err(|e| SignError::SelfCheck(e.to_string()))?;
            if octets != new.signed_info || sig.signature_value != new.value {
                return Err(SignError::SelfCheck(
                    "the new signature reads back differently from what was signed".into(),
                ));
            }
        } else {
            let cert = sig
                .key_info
                .as_ref()
                .and_then(|k| k.certificates.first())
                .ok_or_else(|| SignError::SelfCheck("no certificate".into()))?;
            let key = PublicKey::from_certificate_der(cert)?;
            check_signature_value(&doc, &sig, &key)
                .map_err(|e| SignError::SelfCheck(e.to_string()))?;
        }
    }
    match found {
        1 => Ok(()),
        0 => Err(SignError::SelfCheck(
            "the new signature is not in the output".into(),
        )),
        _ => Err(SignError::SelfCheck(
            "the new signature's Id is not unique in the output".into(),
        )),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// An ECDSA P-256 key and a self-signed certificate for it.
    pub(crate) fn test_signer() -> (SigningKey, Vec<u8>) {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["tamga.test".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        (
            SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap(),
            cert.der().to_vec(),
        )
    }

    pub(crate) fn test_options(cert: Vec<u8>, xades: bool) -> SignOptions {
        SignOptions {
            certificates: vec![cert],
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: OffsetDateTime::UNIX_EPOCH,
            limits: ParseLimits::default(),
        }
    }

    fn c14n_of(doc: &Document, node: tamga_xml::Node<'_>) -> Vec<u8> {
        doc.canonicalize_to_vec(Selection::Subtree(node), None, &EXC)
            .unwrap()
    }

    #[test]
    fn generated_fragments_are_their_own_canonical_form() {
        let (key, cert) = test_signer();
        // An Id and a URI that need escaping in attribute values.
        let built = build_signature(
            "s&<\"\t1",
            vec![RefSpec {
                uri: "#a&b\"<c\r\n".into(),
                type_uri: Some(crate::xades::COUNTERSIGNED_SIGNATURE_TYPE),
                enveloped: true,
                digest_value: vec![1; 32],
            }],
            &key,
            &test_options(cert, true),
        )
        .unwrap();
        let doc = Document::parse(built.xml.as_bytes(), &ParseLimits::default()).unwrap();
        let sig = doc.root();
        assert_eq!(sig.attribute("Id").as_deref(), Some("s&<\"\t1"));
        let si = sig.child(DSIG_NS, "SignedInfo").unwrap();
        assert_eq!(c14n_of(&doc, si), built.signed_info);
        let model = parse_signature(sig, &Budget::default()).unwrap();
        assert_eq!(model.references[0].uri.as_deref(), Some("#a&b\"<c\r\n"));
        assert_eq!(model.signature_value, built.value);
        // The SignedProperties reference digests the element in place.
        let props = doc.element_by_id("s&<\"\t1-signedprops").unwrap();
        assert_eq!(
            model.references[1].digest_value,
            digest(&DigestAlgorithm::Sha256, &c14n_of(&doc, props)).unwrap()
        );
        let key =
            PublicKey::from_certificate_der(&model.key_info.as_ref().unwrap().certificates[0])
                .unwrap();
        check_signature_value(&doc, &model, &key).unwrap();
    }

    #[test]
    fn enveloped_signature_round_trips_and_tampering_fails_the_self_check() {
        let (key, cert) = test_signer();
        let options = test_options(cert, true);
        let input = b"<?xml version='1.0'?>\n<a xmlns='urn:x' b='1'><c>text &amp; more</c></a>\n";
        let out = sign_enveloped(input, &key, &options).unwrap();
        let doc = Document::parse(&out, &options.limits).unwrap();
        let sig = parse_signature(find_signatures(&doc)[0], &Budget::default()).unwrap();
        for r in check_references(&doc, &sig, &NoExternal, &options.limits) {
            r.result.unwrap();
        }
        let built = Built {
            xml: String::new(),
            id: sig.id.clone().unwrap(),
            signed_info: signed_info_octets(&doc, &sig).unwrap(),
            value: sig.signature_value.clone(),
        };
        self_check(&out, &options.limits, &built, true).unwrap();
        let tampered = String::from_utf8(out.clone())
            .unwrap()
            .replace("text &amp; more", "text &amp; less");
        assert!(self_check(tampered.as_bytes(), &options.limits, &built, false).is_err());
        let mut other_value = built;
        other_value.value[0] ^= 1;
        assert!(self_check(&out, &options.limits, &other_value, false).is_err());
    }
}
