//! Algorithm identifiers: URI to meaning, and back.
//!
//! An unknown URI is kept (not an error here) so that the policy can name
//! exactly what it refused.

use tamga_xml::{C14nMethod, Canonicalization};

pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const DSIG11_NS: &str = "http://www.w3.org/2009/xmldsig11#";
pub const DSIG_MORE_2001: &str = "http://www.w3.org/2001/04/xmldsig-more#";

pub const C14N10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
pub const C14N10_COMMENTS: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
pub const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
pub const C14N11_COMMENTS: &str = "http://www.w3.org/2006/12/xml-c14n11#WithComments";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";

pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const BASE64: &str = "http://www.w3.org/2000/09/xmldsig#base64";
pub const XPATH: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";
pub const XPATH_FILTER2: &str = "http://www.w3.org/2002/06/xmldsig-filter2";
pub const XSLT: &str = "http://www.w3.org/TR/1999/REC-xslt-19991116";

pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const SHA224: &str = "http://www.w3.org/2001/04/xmldsig-more#sha224";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
pub const MD5: &str = "http://www.w3.org/2001/04/xmldsig-more#md5";

pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const RSA_MD5: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5";
pub const RSA_PSS_SHA256: &str = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1";
pub const RSA_PSS_SHA384: &str = "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1";
pub const RSA_PSS_SHA512: &str = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1";
pub const ECDSA_SHA1: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1";
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub const ECDSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512";
pub const ED25519: &str = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519";
pub const DSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#dsa-sha1";
pub const HMAC_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#hmac-sha1";
pub const HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
pub const HMAC_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384";
pub const HMAC_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512";

// GOST R 34.10-2012/2015 with Streebog: the Kazakh NCA's URIs (NCALayer,
// Kalkan) and the Russian CryptoPro ones. Same mathematics, different byte
// orders of the SignatureValue (see `crypto.rs` and `tamga-gost`).
pub const GOST_KZ_SIG_256: &str =
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-256";
pub const GOST_KZ_SIG_512: &str =
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34102015-gostr34112015-512";
pub const GOST_KZ_DIGEST_256: &str =
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-256";
pub const GOST_KZ_DIGEST_512: &str =
    "urn:ietf:params:xml:ns:pkigovkz:xmlsec:algorithms:gostr34112015-512";
pub const GOST_CP_SIG_256: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256";
pub const GOST_CP_SIG_512: &str =
    "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512";
pub const GOST_CP_DIGEST_256: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256";
pub const GOST_CP_DIGEST_512: &str = "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512";
/// GOST 34.310-2004 with GOST 34.311-95 (Kazakhstan's and Kyrgyzstan's
/// legacy): recognised so that it is refused by name, never verified (no
/// test vector exists for its hash here).
pub const GOST34310_GOST34311: &str = "http://www.w3.org/2001/04/xmldsig-more#gost34310-gost34311";
pub const GOST34311: &str = "http://www.w3.org/2001/04/xmldsig-more#gost34311";

/// Whose XML-DSig conventions a GOST URI follows: they differ in the byte
/// order of `SignatureValue`, so the URI decides it, never a guess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GostDialect {
    /// `urn:ietf:params:xml:ns:pkigovkz:…` (NCA RK): r‖s little-endian.
    Kazakh,
    /// `urn:ietf:params:xml:ns:cpxmlsec:…` (CryptoPro): s‖r big-endian.
    CryptoPro,
}

/// A digest algorithm named by a `DigestMethod`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Md5,
    /// GOST R 34.11-2012 (Streebog), 256-bit output.
    Streebog256(GostDialect),
    /// GOST R 34.11-2012 (Streebog), 512-bit output.
    Streebog512(GostDialect),
    /// GOST 34.311-95 (legacy): named so it can be refused by name.
    Gost34311,
    Unknown(String),
}

impl DigestAlgorithm {
    pub fn from_uri(uri: &str) -> Self {
        match uri {
            SHA1 => Self::Sha1,
            SHA224 => Self::Sha224,
            SHA256 => Self::Sha256,
            SHA384 => Self::Sha384,
            SHA512 => Self::Sha512,
            MD5 => Self::Md5,
            GOST_KZ_DIGEST_256 => Self::Streebog256(GostDialect::Kazakh),
            GOST_KZ_DIGEST_512 => Self::Streebog512(GostDialect::Kazakh),
            GOST_CP_DIGEST_256 => Self::Streebog256(GostDialect::CryptoPro),
            GOST_CP_DIGEST_512 => Self::Streebog512(GostDialect::CryptoPro),
            GOST34311 => Self::Gost34311,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn uri(&self) -> &str {
        match self {
            Self::Sha1 => SHA1,
            Self::Sha224 => SHA224,
            Self::Sha256 => SHA256,
            Self::Sha384 => SHA384,
            Self::Sha512 => SHA512,
            Self::Md5 => MD5,
            Self::Streebog256(GostDialect::Kazakh) => GOST_KZ_DIGEST_256,
            Self::Streebog512(GostDialect::Kazakh) => GOST_KZ_DIGEST_512,
            Self::Streebog256(GostDialect::CryptoPro) => GOST_CP_DIGEST_256,
            Self::Streebog512(GostDialect::CryptoPro) => GOST_CP_DIGEST_512,
            Self::Gost34311 => GOST34311,
            Self::Unknown(u) => u,
        }
    }

    /// A short name for reports: `sha256`.
    pub fn name(&self) -> &str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha224 => "sha224",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
            Self::Md5 => "md5",
            Self::Streebog256(_) => "streebog-256",
            Self::Streebog512(_) => "streebog-512",
            Self::Gost34311 => "gost34311",
            Self::Unknown(u) => u,
        }
    }

    pub(crate) fn ring(&self) -> Option<&'static aws_lc_rs::digest::Algorithm> {
        use aws_lc_rs::digest;
        Some(match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha224 => &digest::SHA224,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
            _ => return None,
        })
    }

    /// Streebog, for the GOST digests this crate computes.
    pub(crate) fn streebog(&self) -> Option<tamga_gost::Streebog> {
        match self {
            Self::Streebog256(_) => Some(tamga_gost::Streebog::S256),
            Self::Streebog512(_) => Some(tamga_gost::Streebog::S512),
            _ => None,
        }
    }

    /// Can this crate compute the digest?
    pub fn is_supported(&self) -> bool {
        self.ring().is_some() || self.streebog().is_some()
    }

    /// A fresh digest computation, `None` for an unsupported algorithm.
    pub fn context(&self) -> Option<DigestContext> {
        if let Some(alg) = self.ring() {
            return Some(DigestContext::Aws(aws_lc_rs::digest::Context::new(alg)));
        }
        self.streebog().map(|s| DigestContext::Gost(s.hasher()))
    }

    /// The digest of `data`, `None` for an unsupported algorithm.
    pub fn digest(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut c = self.context()?;
        c.update(data);
        Some(c.finish().0)
    }
}

/// A digest in progress: aws-lc-rs for the SHA family, `tamga-gost` for
/// Streebog.
#[derive(Clone)]
#[non_exhaustive]
pub enum DigestContext {
    Aws(aws_lc_rs::digest::Context),
    Gost(tamga_gost::Hasher),
}

impl std::fmt::Debug for DigestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Aws(c) => write!(f, "DigestContext({:?})", c.algorithm()),
            Self::Gost(h) => write!(f, "DigestContext({h:?})"),
        }
    }
}

impl DigestContext {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Self::Aws(c) => c.update(data),
            Self::Gost(h) => h.update(data),
        }
    }

    pub fn finish(self) -> DigestOutput {
        DigestOutput(match self {
            Self::Aws(c) => c.finish().as_ref().to_vec(),
            Self::Gost(h) => h.finish(),
        })
    }
}

/// A finished digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestOutput(pub Vec<u8>);

impl AsRef<[u8]> for DigestOutput {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The key family a signature algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFamily {
    Rsa,
    Ec,
    Ed25519,
    Hmac,
    Dsa,
    Gost,
}

/// A signature algorithm named by a `SignatureMethod`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    RsaPkcs1(DigestAlgorithm),
    RsaPss(DigestAlgorithm),
    Ecdsa(DigestAlgorithm),
    Ed25519,
    Hmac(DigestAlgorithm),
    DsaSha1,
    /// GOST R 34.10-2012/2015 with Streebog of the same size (256 or 512).
    Gost {
        bits: u16,
        dialect: GostDialect,
    },
    /// GOST 34.310-2004 with GOST 34.311-95: refused by name.
    Gost34310,
    Unknown(String),
}

impl SignatureAlgorithm {
    pub fn from_uri(uri: &str) -> Self {
        use DigestAlgorithm as D;
        match uri {
            RSA_SHA1 => Self::RsaPkcs1(D::Sha1),
            RSA_SHA256 => Self::RsaPkcs1(D::Sha256),
            RSA_SHA384 => Self::RsaPkcs1(D::Sha384),
            RSA_SHA512 => Self::RsaPkcs1(D::Sha512),
            RSA_MD5 => Self::RsaPkcs1(D::Md5),
            RSA_PSS_SHA256 => Self::RsaPss(D::Sha256),
            RSA_PSS_SHA384 => Self::RsaPss(D::Sha384),
            RSA_PSS_SHA512 => Self::RsaPss(D::Sha512),
            ECDSA_SHA1 => Self::Ecdsa(D::Sha1),
            ECDSA_SHA256 => Self::Ecdsa(D::Sha256),
            ECDSA_SHA384 => Self::Ecdsa(D::Sha384),
            ECDSA_SHA512 => Self::Ecdsa(D::Sha512),
            ED25519 => Self::Ed25519,
            HMAC_SHA1 => Self::Hmac(D::Sha1),
            HMAC_SHA256 => Self::Hmac(D::Sha256),
            HMAC_SHA384 => Self::Hmac(D::Sha384),
            HMAC_SHA512 => Self::Hmac(D::Sha512),
            DSA_SHA1 => Self::DsaSha1,
            GOST_KZ_SIG_256 => Self::Gost {
                bits: 256,
                dialect: GostDialect::Kazakh,
            },
            GOST_KZ_SIG_512 => Self::Gost {
                bits: 512,
                dialect: GostDialect::Kazakh,
            },
            GOST_CP_SIG_256 => Self::Gost {
                bits: 256,
                dialect: GostDialect::CryptoPro,
            },
            GOST_CP_SIG_512 => Self::Gost {
                bits: 512,
                dialect: GostDialect::CryptoPro,
            },
            GOST34310_GOST34311 => Self::Gost34310,
            other => Self::Unknown(other.to_string()),
        }
    }

    pub fn uri(&self) -> String {
        use DigestAlgorithm as D;
        match self {
            Self::RsaPkcs1(D::Sha1) => RSA_SHA1.into(),
            Self::RsaPkcs1(D::Sha256) => RSA_SHA256.into(),
            Self::RsaPkcs1(D::Sha384) => RSA_SHA384.into(),
            Self::RsaPkcs1(D::Sha512) => RSA_SHA512.into(),
            Self::RsaPkcs1(D::Md5) => RSA_MD5.into(),
            Self::RsaPss(D::Sha256) => RSA_PSS_SHA256.into(),
            Self::RsaPss(D::Sha384) => RSA_PSS_SHA384.into(),
            Self::RsaPss(D::Sha512) => RSA_PSS_SHA512.into(),
            Self::Ecdsa(D::Sha1) => ECDSA_SHA1.into(),
            Self::Ecdsa(D::Sha256) => ECDSA_SHA256.into(),
            Self::Ecdsa(D::Sha384) => ECDSA_SHA384.into(),
            Self::Ecdsa(D::Sha512) => ECDSA_SHA512.into(),
            Self::Ed25519 => ED25519.into(),
            Self::Hmac(D::Sha1) => HMAC_SHA1.into(),
            Self::Hmac(D::Sha256) => HMAC_SHA256.into(),
            Self::Hmac(D::Sha384) => HMAC_SHA384.into(),
            Self::Hmac(D::Sha512) => HMAC_SHA512.into(),
            Self::DsaSha1 => DSA_SHA1.into(),
            Self::Gost {
                bits: 256,
                dialect: GostDialect::Kazakh,
            } => GOST_KZ_SIG_256.into(),
            Self::Gost {
                bits: 512,
                dialect: GostDialect::Kazakh,
            } => GOST_KZ_SIG_512.into(),
            Self::Gost {
                bits: 256,
                dialect: GostDialect::CryptoPro,
            } => GOST_CP_SIG_256.into(),
            Self::Gost {
                bits: 512,
                dialect: GostDialect::CryptoPro,
            } => GOST_CP_SIG_512.into(),
            Self::Gost34310 => GOST34310_GOST34311.into(),
            Self::Unknown(u) => u.clone(),
            other => format!("{other:?}"),
        }
    }

    /// A short name for reports and the CLI: `rsa-sha256`, `ecdsa-sha384`.
    pub fn name(&self) -> String {
        match self {
            Self::RsaPkcs1(d) => format!("rsa-{}", d.name()),
            Self::RsaPss(d) => format!("rsa-pss-{}", d.name()),
            Self::Ecdsa(d) => format!("ecdsa-{}", d.name()),
            Self::Ed25519 => "ed25519".into(),
            Self::Hmac(d) => format!("hmac-{}", d.name()),
            Self::DsaSha1 => "dsa-sha1".into(),
            Self::Gost { bits, .. } => format!("gost2012-{bits}"),
            Self::Gost34310 => "gost34310".into(),
            Self::Unknown(u) => u.clone(),
        }
    }

    /// Parses the CLI's short names (`rsa-sha256`, `ecdsa-sha384`, `rsa-pss-sha256`, `ed25519`).
    pub fn from_name(name: &str) -> Option<Self> {
        use DigestAlgorithm as D;
        let digest = |s: &str| match s {
            "sha256" => Some(D::Sha256),
            "sha384" => Some(D::Sha384),
            "sha512" => Some(D::Sha512),
            _ => None,
        };
        if name == "ed25519" {
            return Some(Self::Ed25519);
        }
        if let Some(d) = name.strip_prefix("rsa-pss-") {
            return digest(d).map(Self::RsaPss);
        }
        if let Some(d) = name.strip_prefix("rsa-") {
            return digest(d).map(Self::RsaPkcs1);
        }
        if let Some(d) = name.strip_prefix("ecdsa-") {
            return digest(d).map(Self::Ecdsa);
        }
        None
    }

    pub fn key_family(&self) -> Option<KeyFamily> {
        Some(match self {
            Self::RsaPkcs1(_) | Self::RsaPss(_) => KeyFamily::Rsa,
            Self::Ecdsa(_) => KeyFamily::Ec,
            Self::Ed25519 => KeyFamily::Ed25519,
            Self::Hmac(_) => KeyFamily::Hmac,
            Self::DsaSha1 => KeyFamily::Dsa,
            Self::Gost { .. } | Self::Gost34310 => KeyFamily::Gost,
            Self::Unknown(_) => return None,
        })
    }

    /// The digest inside the signature algorithm, if any.
    pub fn digest(&self) -> Option<&DigestAlgorithm> {
        match self {
            Self::RsaPkcs1(d) | Self::RsaPss(d) | Self::Ecdsa(d) | Self::Hmac(d) => Some(d),
            Self::DsaSha1 => Some(&DigestAlgorithm::Sha1),
            Self::Gost {
                bits: 256,
                dialect: GostDialect::Kazakh,
            } => Some(&DigestAlgorithm::Streebog256(GostDialect::Kazakh)),
            Self::Gost {
                bits: 256,
                dialect: GostDialect::CryptoPro,
            } => Some(&DigestAlgorithm::Streebog256(GostDialect::CryptoPro)),
            Self::Gost {
                dialect: GostDialect::Kazakh,
                ..
            } => Some(&DigestAlgorithm::Streebog512(GostDialect::Kazakh)),
            Self::Gost {
                dialect: GostDialect::CryptoPro,
                ..
            } => Some(&DigestAlgorithm::Streebog512(GostDialect::CryptoPro)),
            Self::Gost34310 => Some(&DigestAlgorithm::Gost34311),
            Self::Ed25519 | Self::Unknown(_) => None,
        }
    }
}

/// A canonicalisation method named by `CanonicalizationMethod` or a c14n
/// `Transform`.
pub fn c14n_from_uri(uri: &str) -> Option<Canonicalization> {
    let (method, comments) = match uri {
        C14N10 => (C14nMethod::Inclusive10, false),
        C14N10_COMMENTS => (C14nMethod::Inclusive10, true),
        C14N11 => (C14nMethod::Inclusive11, false),
        C14N11_COMMENTS => (C14nMethod::Inclusive11, true),
        EXC_C14N => (C14nMethod::Exclusive10, false),
        EXC_C14N_COMMENTS => (C14nMethod::Exclusive10, true),
        _ => return None,
    };
    Some(Canonicalization::new(method, comments))
}

/// The URI naming a canonicalisation.
pub fn c14n_uri(c: &Canonicalization) -> &'static str {
    match (c.method, c.with_comments) {
        (C14nMethod::Inclusive10, false) => C14N10,
        (C14nMethod::Inclusive10, true) => C14N10_COMMENTS,
        (C14nMethod::Inclusive11, false) => C14N11,
        (C14nMethod::Inclusive11, true) => C14N11_COMMENTS,
        (C14nMethod::Exclusive10, false) => EXC_C14N,
        (_, _) => EXC_C14N_COMMENTS,
    }
}

/// A short name for a canonicalisation, for reports.
pub fn c14n_name(c: &Canonicalization) -> &'static str {
    match (c.method, c.with_comments) {
        (C14nMethod::Inclusive10, false) => "c14n",
        (C14nMethod::Inclusive10, true) => "c14n-with-comments",
        (C14nMethod::Inclusive11, false) => "c14n11",
        (C14nMethod::Inclusive11, true) => "c14n11-with-comments",
        (C14nMethod::Exclusive10, false) => "exc-c14n",
        (_, _) => "exc-c14n-with-comments",
    }
}
