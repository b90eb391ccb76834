//! GOST R 34.10-2012 (= GOST R 34.10-2015 / ST RK GOST R 34.10-2015)
//! signature **verification** and Streebog (GOST R 34.11-2012) digests.
//!
//! Verify only: Tamga never holds a real GOST private key. Test material is
//! signed with OpenSSL's GOST engine, or with the demo signer behind the
//! cargo feature `demo-signing` ([`demo`], for `tamga pki demo` and the
//! benchmarks: variable time, not for production keys).
//!
//! **Not constant time, by design.** Verification handles public data only
//! (the public key, the signed digest, the signature), so nothing secret
//! can leak through timing; the arithmetic uses `num-bigint`, which is
//! variable time. Do not reuse this code for signing.
//!
//! What is checked (GOST R 34.10-2012 section 7 / RFC 7091 section 6.2):
//! `0 < r < q` and `0 < s < q`; `e = α mod q`, replaced by 1 when 0; the
//! public key is on the curve, not the point at infinity and of order `q`
//! (the explicit `q·Q = O` check matters for the cofactor-4 sets 256-A and
//! 512-C, where a point on the curve can lie outside the subgroup).
//!
//! Byte orders are never guessed: each producer's encoding has its own
//! codec ([`Signature::from_kz_xml`], [`Signature::from_rfc4491`],
//! [`Signature::from_cryptopro_xml`], [`PublicKey::from_xy_le`]).
#![forbid(unsafe_code)]

mod curve;
#[cfg(feature = "demo-signing")]
pub mod demo;
pub mod der;
pub mod params;
pub mod webpki;

use num_bigint::BigUint;
use num_traits::{One, Zero};
use streebog::Digest as _;

pub use params::{CurveParams, ParamSet};

use curve::Field;

/// Why a GOST key, signature or verification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GostError {
    #[error("unknown GOST R 34.10 parameter set {0}")]
    UnknownParameterSet(String),
    #[error("unsupported GOST key algorithm {0}")]
    UnsupportedKeyAlgorithm(String),
    #[error("{what} is {got} bytes, expected {expected}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("malformed GOST key encoding: {0}")]
    Encoding(&'static str),
    #[error("the public key is not on the curve {0}")]
    NotOnCurve(&'static str),
    #[error("the public key is the point at infinity")]
    Infinity,
    #[error("the public key is not of order q (outside the prime-order subgroup)")]
    WrongOrder,
    #[error("r or s is outside 0 < r, s < q")]
    ScalarOutOfRange,
    #[error("a {key_bits}-bit key cannot verify a {digest_bits}-bit digest")]
    SizeMismatch { key_bits: usize, digest_bits: usize },
    #[error("the GOST signature does not verify")]
    BadSignature,
}

/// Streebog (GOST R 34.11-2012, RFC 6986), output in the byte order the
/// `streebog` crate and `gost12sum` print (the standard's vector read
/// least significant byte first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Streebog {
    S256,
    S512,
}

impl Streebog {
    pub fn len(self) -> usize {
        match self {
            Streebog::S256 => 32,
            Streebog::S512 => 64,
        }
    }

    pub fn is_empty(self) -> bool {
        false
    }

    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Streebog::S256 => Hasher::S256(Box::default()),
            Streebog::S512 => Hasher::S512(Box::default()),
        }
    }

    /// The digest that goes with a key of this size (GOST R 34.10-2012 5.1).
    pub fn for_key(set: ParamSet) -> Self {
        if set.bits() == 512 {
            Streebog::S512
        } else {
            Streebog::S256
        }
    }
}

/// An incremental Streebog computation.
#[derive(Clone)]
#[non_exhaustive]
pub enum Hasher {
    S256(Box<streebog::Streebog256>),
    S512(Box<streebog::Streebog512>),
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hasher::S256(_) => "Hasher(Streebog-256)",
            Hasher::S512(_) => "Hasher(Streebog-512)",
        })
    }
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::S256(h) => h.update(data),
            Hasher::S512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::S256(h) => h.finalize().to_vec(),
            Hasher::S512(h) => h.finalize().to_vec(),
        }
    }
}

/// A validated GOST R 34.10-2012 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    set: ParamSet,
    x: BigUint,
    y: BigUint,
}

impl PublicKey {
    /// A key from affine coordinates, checked: on the curve, not infinity,
    /// of order q.
    pub fn from_affine(set: ParamSet, x: BigUint, y: BigUint) -> Result<Self, GostError> {
        let c = set.params();
        let f = Field::new(c);
        if x.is_zero() && y.is_zero() {
            // The encoding some producers use for infinity; (0, 0) is on
            // none of these curves (b ≠ 0) but say what it means.
            return Err(GostError::Infinity);
        }
        if !f.on_curve(&x, &y) {
            return Err(GostError::NotOnCurve(set.name()));
        }
        if c.cofactor != 1 {
            // With cofactor h the curve has points of order 2, 4 and h·q;
            // only q·Q = O puts Q in the generator's subgroup. With h = 1
            // every finite point on the curve has order q.
            let qq = f.mul_scalar(&f.point(&x, &y), &c.q);
            if f.to_affine(&qq).is_some() {
                return Err(GostError::WrongOrder);
            }
        }
        Ok(Self { set, x, y })
    }

    /// X‖Y, each coordinate little-endian, `size` bytes each: the public key
    /// octets of RFC 4491 (inside the certificate's OCTET STRING) and of the
    /// Kazakh NCA certificates alike.
    pub fn from_xy_le(set: ParamSet, bytes: &[u8]) -> Result<Self, GostError> {
        let n = set.size();
        if bytes.len() != 2 * n {
            return Err(GostError::Length {
                what: "GOST public key X||Y",
                expected: 2 * n,
                got: bytes.len(),
            });
        }
        let (x, y) = bytes.split_at(n);
        Self::from_affine(set, BigUint::from_bytes_le(x), BigUint::from_bytes_le(y))
    }

    /// X‖Y little-endian, the inverse of [`PublicKey::from_xy_le`].
    pub fn to_xy_le(&self) -> Vec<u8> {
        let n = self.set.size();
        let mut out = le_fixed(&self.x, n);
        out.extend(le_fixed(&self.y, n));
        out
    }

    pub fn param_set(&self) -> ParamSet {
        self.set
    }

    /// 256 or 512.
    pub fn bits(&self) -> usize {
        self.set.bits()
    }

    pub fn x(&self) -> &BigUint {
        &self.x
    }

    pub fn y(&self) -> &BigUint {
        &self.y
    }
}

/// A GOST R 34.10 signature (r, s) as integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub r: BigUint,
    pub s: BigUint,
}

impl Signature {
    pub fn new(r: BigUint, s: BigUint) -> Self {
        Self { r, s }
    }

    fn split<'a>(
        bytes: &'a [u8],
        size: usize,
        what: &'static str,
    ) -> Result<(&'a [u8], &'a [u8]), GostError> {
        if bytes.len() != 2 * size {
            return Err(GostError::Length {
                what,
                expected: 2 * size,
                got: bytes.len(),
            });
        }
        Ok(bytes.split_at(size))
    }

    /// The Kazakh NCA XML-DSig form (`pkigovkz` URIs): r‖s, each
    /// little-endian — the byte reverse of the RFC 4491 form.
    pub fn from_kz_xml(bytes: &[u8], set: ParamSet) -> Result<Self, GostError> {
        let (r, s) = Self::split(bytes, set.size(), "Kazakh GOST SignatureValue")?;
        Ok(Self::new(
            BigUint::from_bytes_le(r),
            BigUint::from_bytes_le(s),
        ))
    }

    /// RFC 4491 section 2.2.2 (X.509 and CMS): s‖r, each big-endian.
    pub fn from_rfc4491(bytes: &[u8], set: ParamSet) -> Result<Self, GostError> {
        let (s, r) = Self::split(bytes, set.size(), "GOST signature (RFC 4491)")?;
        Ok(Self::new(
            BigUint::from_bytes_be(r),
            BigUint::from_bytes_be(s),
        ))
    }

    /// The Russian CryptoPro XML-DSig form (`cpxmlsec` URIs): the same
    /// octets as the CMS form, s‖r big-endian.
    pub fn from_cryptopro_xml(bytes: &[u8], set: ParamSet) -> Result<Self, GostError> {
        Self::from_rfc4491(bytes, set)
    }

    pub fn to_kz_xml(&self, set: ParamSet) -> Vec<u8> {
        let mut out = le_fixed(&self.r, set.size());
        out.extend(le_fixed(&self.s, set.size()));
        out
    }

    pub fn to_rfc4491(&self, set: ParamSet) -> Vec<u8> {
        let mut out = be_fixed(&self.s, set.size());
        out.extend(be_fixed(&self.r, set.size()));
        out
    }
}

fn le_fixed(v: &BigUint, n: usize) -> Vec<u8> {
    let mut b = v.to_bytes_le();
    b.resize(n.max(b.len()), 0);
    b
}

fn be_fixed(v: &BigUint, n: usize) -> Vec<u8> {
    let mut b = le_fixed(v, n);
    b.reverse();
    b
}

/// α, the integer a Streebog digest stands for in GOST R 34.10: the digest
/// octets read little-endian (as every producer Tamga meets does: NCA,
/// CryptoPro, OpenSSL's GOST engine).
pub fn digest_to_integer(digest: &[u8]) -> BigUint {
    BigUint::from_bytes_le(digest)
}

/// Verifies `sig` over the integer α (GOST R 34.10-2012 section 7.2).
pub fn verify_integer(key: &PublicKey, alpha: &BigUint, sig: &Signature) -> Result<(), GostError> {
    let c = key.set.params();
    let q = &c.q;
    if sig.r.is_zero() || sig.s.is_zero() || &sig.r >= q || &sig.s >= q {
        return Err(GostError::ScalarOutOfRange);
    }
    let mut e = alpha % q;
    if e.is_zero() {
        e = BigUint::one();
    }
    let v = e.modinv(q).ok_or(GostError::BadSignature)?;
    let z1 = (&sig.s * &v) % q;
    let z2 = (q - (&sig.r * &v) % q) % q;
    let f = Field::new(c);
    let point = f.mul_two(&z1, &f.point(&c.x, &c.y), &z2, &f.point(&key.x, &key.y));
    let (x, _) = f.to_affine(&point).ok_or(GostError::BadSignature)?;
    if x % q == sig.r {
        Ok(())
    } else {
        Err(GostError::BadSignature)
    }
}

/// Verifies `sig` over a Streebog digest of the key's size.
pub fn verify_digest(key: &PublicKey, digest: &[u8], sig: &Signature) -> Result<(), GostError> {
    if digest.len() != key.set.size() {
        return Err(GostError::SizeMismatch {
            key_bits: key.bits(),
            digest_bits: digest.len() * 8,
        });
    }
    verify_integer(key, &digest_to_integer(digest), sig)
}

/// Hashes `message` with the Streebog of the key's size and verifies.
pub fn verify_message(key: &PublicKey, message: &[u8], sig: &Signature) -> Result<(), GostError> {
    let digest = Streebog::for_key(key.set).digest(message);
    verify_digest(key, &digest, sig)
}

#[cfg(test)]
mod tests;
