//! Algorithm identifiers: which digests and signature schemes are accepted.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, VerificationAlgorithm};

use crate::der::{self, AlgId, Tlv};
use crate::error::{malformed, TimestampError};

// OID content octets.
pub(crate) const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
pub(crate) const OID_MD5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05];
pub(crate) const OID_SHA224: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04];
pub(crate) const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
pub(crate) const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
pub(crate) const OID_SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_MD5_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
const OID_SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const OID_SHA224_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const OID_ECDSA_SHA224: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x01];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// A digest algorithm this crate accepts for imprints, message digests and
/// signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    pub(crate) fn output_len(self) -> usize {
        self.algorithm().output_len()
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            Hash::Sha256 => &digest::SHA256,
            Hash::Sha384 => &digest::SHA384,
            Hash::Sha512 => &digest::SHA512,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.algorithm(), data).as_ref().to_vec()
    }
}

/// Human-readable name of a digest OID, for reports (known or not, accepted or not).
pub(crate) fn digest_name(oid: &[u8]) -> String {
    match oid {
        OID_SHA256 => "SHA-256".into(),
        OID_SHA384 => "SHA-384".into(),
        OID_SHA512 => "SHA-512".into(),
        OID_SHA224 => "SHA-224".into(),
        OID_SHA1 => "SHA-1".into(),
        OID_MD5 => "MD5".into(),
        other => der::oid_to_string(other),
    }
}

/// Maps a digest AlgorithmIdentifier to an accepted hash, refusing SHA-1, MD5,
/// SHA-224 and anything unknown.
pub(crate) fn hash_from_alg(alg: &AlgId<'_>, what: &str) -> Result<Hash, TimestampError> {
    let hash = match alg.oid {
        OID_SHA256 => Hash::Sha256,
        OID_SHA384 => Hash::Sha384,
        OID_SHA512 => Hash::Sha512,
        other => {
            return Err(TimestampError::UnsupportedAlgorithm(format!(
                "{what}: {}",
                digest_name(other)
            )))
        }
    };
    if !alg.params_absent_or_null() {
        return Err(malformed(format!(
            "{what}: digest algorithm parameters must be absent or NULL"
        )));
    }
    Ok(hash)
}

/// Human-readable name of a signature algorithm OID.
pub(crate) fn signature_name(oid: &[u8]) -> String {
    match oid {
        OID_RSA_ENCRYPTION => "rsaEncryption".into(),
        OID_SHA256_WITH_RSA => "sha256WithRSAEncryption".into(),
        OID_SHA384_WITH_RSA => "sha384WithRSAEncryption".into(),
        OID_SHA512_WITH_RSA => "sha512WithRSAEncryption".into(),
        OID_SHA224_WITH_RSA => "sha224WithRSAEncryption".into(),
        OID_SHA1_WITH_RSA => "sha1WithRSAEncryption".into(),
        OID_MD5_WITH_RSA => "md5WithRSAEncryption".into(),
        OID_RSASSA_PSS => "RSASSA-PSS".into(),
        OID_ECDSA_SHA256 => "ecdsa-with-SHA256".into(),
        OID_ECDSA_SHA384 => "ecdsa-with-SHA384".into(),
        OID_ECDSA_SHA512 => "ecdsa-with-SHA512".into(),
        OID_ECDSA_SHA224 => "ecdsa-with-SHA224".into(),
        OID_ECDSA_SHA1 => "ecdsa-with-SHA1".into(),
        OID_EC_PUBLIC_KEY => "id-ecPublicKey".into(),
        other => der::oid_to_string(other),
    }
}

/// The signature scheme a SignerInfo claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SigScheme {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
}

/// Resolves the SignerInfo `signatureAlgorithm`. `digest` is the SignerInfo
/// `digestAlgorithm`, which supplies the hash for the bare `rsaEncryption` and
/// `id-ecPublicKey` identifiers that many CMS producers use.
pub(crate) fn signature_scheme(alg: &AlgId<'_>, digest: Hash) -> Result<SigScheme, TimestampError> {
    let unsupported = || TimestampError::UnsupportedAlgorithm(signature_name(alg.oid));
    let no_params = |scheme: SigScheme| {
        if alg.params_absent_or_null() {
            Ok(scheme)
        } else {
            Err(malformed("signatureAlgorithm: unexpected parameters"))
        }
    };
    let ecdsa_no_params = |scheme: SigScheme| {
        // RFC 5758: ecdsa-with-SHA* parameters MUST be absent.
        if alg.params.is_none() {
            Ok(scheme)
        } else {
            Err(malformed(
                "signatureAlgorithm: ECDSA parameters must be absent",
            ))
        }
    };
    match alg.oid {
        OID_RSA_ENCRYPTION => no_params(SigScheme::RsaPkcs1(digest)),
        OID_SHA256_WITH_RSA => no_params(SigScheme::RsaPkcs1(Hash::Sha256)),
        OID_SHA384_WITH_RSA => no_params(SigScheme::RsaPkcs1(Hash::Sha384)),
        OID_SHA512_WITH_RSA => no_params(SigScheme::RsaPkcs1(Hash::Sha512)),
        OID_RSASSA_PSS => pss_params(alg.params).map(SigScheme::RsaPss),
        OID_ECDSA_SHA256 => ecdsa_no_params(SigScheme::Ecdsa(Hash::Sha256)),
        OID_ECDSA_SHA384 => ecdsa_no_params(SigScheme::Ecdsa(Hash::Sha384)),
        OID_ECDSA_SHA512 => ecdsa_no_params(SigScheme::Ecdsa(Hash::Sha512)),
        OID_EC_PUBLIC_KEY => no_params(SigScheme::Ecdsa(digest)),
        _ => Err(unsupported()),
    }
}

/// RSASSA-PSS-params: the hash, MGF1 with the same hash, salt length equal
/// to the hash length and trailer field 1 — the only PSS profile accepted.
fn pss_params(params: Option<Tlv<'_>>) -> Result<Hash, TimestampError> {
    let what = "RSASSA-PSS parameters";
    let params = params
        .ok_or_else(|| malformed(format!("{what}: missing")))?
        .expect_tag(der::TAG_SEQUENCE, what)?;
    let mut r = params.reader(what);
    // Every field has a SHA-1-based DEFAULT, which is refused: all must be present.
    let hash_tlv = r
        .optional(der::ctx_cons(0))?
        .ok_or_else(|| TimestampError::UnsupportedAlgorithm("RSASSA-PSS with SHA-1".into()))?;
    let hash_alg = AlgId::parse(Tlv::parse_exact(hash_tlv.value, what)?, what)?;
    let hash = hash_from_alg(&hash_alg, "RSASSA-PSS hash")?;

    let mgf_tlv = r
        .optional(der::ctx_cons(1))?
        .ok_or_else(|| TimestampError::UnsupportedAlgorithm("RSASSA-PSS with MGF1-SHA-1".into()))?;
    let mgf = AlgId::parse(Tlv::parse_exact(mgf_tlv.value, what)?, what)?;
    if mgf.oid != OID_MGF1 {
        return Err(TimestampError::UnsupportedAlgorithm(format!(
            "RSASSA-PSS mask generation {}",
            der::oid_to_string(mgf.oid)
        )));
    }
    let mgf_hash_tlv = mgf
        .params
        .ok_or_else(|| malformed(format!("{what}: MGF1 without hash")))?;
    let mgf_hash = hash_from_alg(&AlgId::parse(mgf_hash_tlv, what)?, "MGF1 hash")?;
    if mgf_hash != hash {
        return Err(TimestampError::UnsupportedAlgorithm(
            "RSASSA-PSS with MGF1 hash different from message hash".into(),
        ));
    }

    let salt_tlv = r
        .optional(der::ctx_cons(2))?
        .ok_or_else(|| TimestampError::UnsupportedAlgorithm("RSASSA-PSS with salt 20".into()))?;
    let salt = der::small_uint(Tlv::parse_exact(salt_tlv.value, what)?, what)?;
    if usize::try_from(salt).ok() != Some(hash.output_len()) {
        return Err(TimestampError::UnsupportedAlgorithm(format!(
            "RSASSA-PSS salt length {salt} (only the hash length is accepted)"
        )));
    }
    if let Some(trailer) = r.optional(der::ctx_cons(3))? {
        let trailer = der::small_uint(Tlv::parse_exact(trailer.value, what)?, what)?;
        if trailer != 1 {
            return Err(malformed(format!("{what}: trailerField must be 1")));
        }
    }
    r.finish()?;
    Ok(hash)
}

/// The public key of a certificate as aws-lc-rs wants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    RsaPssOnly,
    EcP256,
    EcP384,
}

/// Classifies a SubjectPublicKeyInfo algorithm.
pub(crate) fn key_kind(spki_alg_oid: &[u8], curve_oid: Option<&[u8]>) -> Option<KeyKind> {
    match (spki_alg_oid, curve_oid) {
        (OID_RSA_ENCRYPTION, _) => Some(KeyKind::Rsa),
        (OID_RSASSA_PSS, _) => Some(KeyKind::RsaPssOnly),
        (OID_EC_PUBLIC_KEY, Some(OID_P256)) => Some(KeyKind::EcP256),
        (OID_EC_PUBLIC_KEY, Some(OID_P384)) => Some(KeyKind::EcP384),
        _ => None,
    }
}

/// The aws-lc-rs verification algorithm for a scheme and key, or `None` if
/// the key cannot be used with the scheme.
pub(crate) fn verification_algorithm(
    scheme: SigScheme,
    key: KeyKind,
) -> Option<&'static dyn VerificationAlgorithm> {
    use Hash::*;
    let alg: &'static dyn VerificationAlgorithm = match (scheme, key) {
        (SigScheme::RsaPkcs1(Sha256), KeyKind::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (SigScheme::RsaPkcs1(Sha384), KeyKind::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (SigScheme::RsaPkcs1(Sha512), KeyKind::Rsa) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (SigScheme::RsaPss(Sha256), KeyKind::Rsa | KeyKind::RsaPssOnly) => {
            &signature::RSA_PSS_2048_8192_SHA256
        }
        (SigScheme::RsaPss(Sha384), KeyKind::Rsa | KeyKind::RsaPssOnly) => {
            &signature::RSA_PSS_2048_8192_SHA384
        }
        (SigScheme::RsaPss(Sha512), KeyKind::Rsa | KeyKind::RsaPssOnly) => {
            &signature::RSA_PSS_2048_8192_SHA512
        }
        (SigScheme::Ecdsa(Sha256), KeyKind::EcP256) => &signature::ECDSA_P256_SHA256_ASN1,
        (SigScheme::Ecdsa(Sha384), KeyKind::EcP256) => &signature::ECDSA_P256_SHA384_ASN1,
        (SigScheme::Ecdsa(Sha512), KeyKind::EcP256) => &signature::ECDSA_P256_SHA512_ASN1,
        (SigScheme::Ecdsa(Sha256), KeyKind::EcP384) => &signature::ECDSA_P384_SHA256_ASN1,
        (SigScheme::Ecdsa(Sha384), KeyKind::EcP384) => &signature::ECDSA_P384_SHA384_ASN1,
        (SigScheme::Ecdsa(Sha512), KeyKind::EcP384) => &signature::ECDSA_P384_SHA512_ASN1,
        _ => return None,
    };
    Some(alg)
}
