//! COSE_Sign1 (RFC 9052) with the authority's key: the algorithms Tamga's signers have,
//! `kid` = first 8 bytes of the certificate's SHA-256, `x5chain` (RFC 9360) unprotected.

use coset::cbor::value::Value;
use coset::{iana, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder, Label};
use tamga_dsig::{DigestAlgorithm, PublicKey, SignatureAlgorithm, Signer};

use crate::QrError;

/// The COSE algorithms a Tamga authority key can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoseAlgorithm {
    Es256,
    Es384,
    Es512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    EdDsa,
}

const X5CHAIN: i64 = 33;

impl CoseAlgorithm {
    fn iana(self) -> iana::Algorithm {
        use iana::Algorithm as A;
        match self {
            Self::Es256 => A::ES256,
            Self::Es384 => A::ES384,
            Self::Es512 => A::ES512,
            Self::Rs256 => A::RS256,
            Self::Rs384 => A::RS384,
            Self::Rs512 => A::RS512,
            Self::Ps256 => A::PS256,
            Self::Ps384 => A::PS384,
            Self::Ps512 => A::PS512,
            Self::EdDsa => A::EdDSA,
        }
    }

    fn from_iana(a: iana::Algorithm) -> Option<Self> {
        use iana::Algorithm as A;
        Some(match a {
            A::ES256 => Self::Es256,
            A::ES384 => Self::Es384,
            A::ES512 => Self::Es512,
            A::RS256 => Self::Rs256,
            A::RS384 => Self::Rs384,
            A::RS512 => Self::Rs512,
            A::PS256 => Self::Ps256,
            A::PS384 => Self::Ps384,
            A::PS512 => Self::Ps512,
            A::EdDSA => Self::EdDsa,
            _ => return None,
        })
    }

    /// The same algorithm as XML-DSig names it (ECDSA signatures are r || s in both).
    fn dsig(self) -> SignatureAlgorithm {
        use DigestAlgorithm as D;
        match self {
            Self::Es256 => SignatureAlgorithm::Ecdsa(D::Sha256),
            Self::Es384 => SignatureAlgorithm::Ecdsa(D::Sha384),
            Self::Es512 => SignatureAlgorithm::Ecdsa(D::Sha512),
            Self::Rs256 => SignatureAlgorithm::RsaPkcs1(D::Sha256),
            Self::Rs384 => SignatureAlgorithm::RsaPkcs1(D::Sha384),
            Self::Rs512 => SignatureAlgorithm::RsaPkcs1(D::Sha512),
            Self::Ps256 => SignatureAlgorithm::RsaPss(D::Sha256),
            Self::Ps384 => SignatureAlgorithm::RsaPss(D::Sha384),
            Self::Ps512 => SignatureAlgorithm::RsaPss(D::Sha512),
            Self::EdDsa => SignatureAlgorithm::Ed25519,
        }
    }
}

/// The COSE algorithm of a signer's XML-DSig algorithm (GOST has none registered).
pub fn cose_algorithm(a: &SignatureAlgorithm) -> Option<CoseAlgorithm> {
    use DigestAlgorithm as D;
    Some(match a {
        SignatureAlgorithm::Ecdsa(D::Sha256) => CoseAlgorithm::Es256,
        SignatureAlgorithm::Ecdsa(D::Sha384) => CoseAlgorithm::Es384,
        SignatureAlgorithm::Ecdsa(D::Sha512) => CoseAlgorithm::Es512,
        SignatureAlgorithm::RsaPkcs1(D::Sha256) => CoseAlgorithm::Rs256,
        SignatureAlgorithm::RsaPkcs1(D::Sha384) => CoseAlgorithm::Rs384,
        SignatureAlgorithm::RsaPkcs1(D::Sha512) => CoseAlgorithm::Rs512,
        SignatureAlgorithm::RsaPss(D::Sha256) => CoseAlgorithm::Ps256,
        SignatureAlgorithm::RsaPss(D::Sha384) => CoseAlgorithm::Ps384,
        SignatureAlgorithm::RsaPss(D::Sha512) => CoseAlgorithm::Ps512,
        SignatureAlgorithm::Ed25519 => CoseAlgorithm::EdDsa,
        _ => return None,
    })
}

/// A tagged COSE_Sign1 over `payload`.
pub(crate) fn sign1(
    payload: &[u8],
    signer: &dyn Signer,
    chain: &[Vec<u8>],
) -> Result<Vec<u8>, QrError> {
    let alg = cose_algorithm(&signer.algorithm())
        .ok_or_else(|| QrError::UnsupportedAlgorithm(signer.algorithm().name()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| QrError::Sign("no certificate".into()))?;
    let kid = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf).as_ref()[..8].to_vec();
    let protected = HeaderBuilder::new()
        .algorithm(alg.iana())
        .key_id(kid)
        .build();
    let x5chain = if chain.len() == 1 {
        Value::Bytes(leaf.clone())
    } else {
        Value::Array(chain.iter().map(|c| Value::Bytes(c.clone())).collect())
    };
    let unprotected = HeaderBuilder::new().value(X5CHAIN, x5chain).build();
    let sign1 = CoseSign1Builder::new()
        .protected(protected)
        .unprotected(unprotected)
        .payload(payload.to_vec())
        .try_create_signature(&[], |tbs| {
            signer.sign(tbs).map_err(|e| QrError::Sign(e.to_string()))
        })?
        .build();
    coset::TaggedCborSerializable::to_tagged_vec(sign1).map_err(|e| QrError::Cose(e.to_string()))
}

/// Parses a (tagged or untagged) COSE_Sign1: its algorithm, kid and x5chain.
#[allow(clippy::type_complexity)]
pub(crate) fn parse(
    bytes: &[u8],
    max_chain: usize,
) -> Result<(CoseSign1, CoseAlgorithm, Vec<u8>, Vec<Vec<u8>>), QrError> {
    let bad = |m: String| QrError::Cose(m);
    let sign1 = <CoseSign1 as coset::TaggedCborSerializable>::from_tagged_slice(bytes)
        .or_else(|_| CoseSign1::from_slice(bytes))
        .map_err(|e| bad(e.to_string()))?;
    let alg = match &sign1.protected.header.alg {
        Some(coset::RegisteredLabelWithPrivate::Assigned(a)) => CoseAlgorithm::from_iana(*a)
            .ok_or_else(|| bad(format!("algorithm {a:?} is not accepted")))?,
        _ => return Err(bad("no accepted algorithm in the protected header".into())),
    };
    if sign1.payload.is_none() {
        return Err(bad("detached payloads are not accepted".into()));
    }
    let kid = sign1.protected.header.key_id.clone();
    let mut chain = Vec::new();
    for (label, value) in &sign1.unprotected.rest {
        if *label == Label::Int(X5CHAIN) {
            match value {
                Value::Bytes(b) => chain.push(b.clone()),
                Value::Array(items) if items.len() <= max_chain => {
                    for i in items {
                        match i {
                            Value::Bytes(b) => chain.push(b.clone()),
                            _ => return Err(bad("x5chain holds a non-certificate".into())),
                        }
                    }
                }
                _ => return Err(bad("x5chain is malformed or too long".into())),
            }
        }
    }
    Ok((sign1, alg, kid, chain))
}

/// Checks the signature with the certificate's public key.
pub(crate) fn check_signature(
    sign1: &CoseSign1,
    alg: CoseAlgorithm,
    cert_der: &[u8],
) -> Result<(), String> {
    let key = PublicKey::from_certificate_der(cert_der).map_err(|e| e.to_string())?;
    sign1.verify_signature(&[], |sig, tbs| {
        tamga_dsig::verify_signature(&alg.dsig(), &key, tbs, sig).map_err(|e| e.to_string())
    })
}
