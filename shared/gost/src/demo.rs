//! **Demo and test signing only** (cargo feature `demo-signing`).
//!
//! Tamga verifies GOST signatures; it never signs with a real GOST key. This
//! module exists so that `tamga pki demo` can make a Kazakh GOST test PKI
//! and brokers' demo declarations without a second toolchain.
//!
//! **Not for production keys.** The arithmetic is the verifier's
//! variable-time `num-bigint` code: the time a signature takes depends on
//! the private scalar `d` and the nonce `k`, so a key used here must be
//! assumed to leak to anyone who can time it. The secret is not zeroised on
//! drop either. `k` comes from the operating system's CSPRNG (`getrandom`)
//! for every signature, as GOST R 34.10-2012 section 6.1 wants.
//!
//! Keys are exchanged as PKCS#8 in the form OpenSSL's GOST engine writes and
//! reads (the TC26 OIDs, the private key as an OCTET STRING of `d`
//! little-endian), so the demo material can be checked with `openssl`.

use crate::der::{oid, tlv};
use num_bigint::BigUint;
use num_traits::{One, Zero};

use crate::curve::Field;
use crate::der::{oid_to_string, read_tlv};
use crate::{digest_to_integer, GostError, ParamSet, PublicKey, Signature, Streebog};

/// A GOST R 34.10-2012 private key for demo material (see the module docs).
#[derive(Clone)]
pub struct DemoSecretKey {
    set: ParamSet,
    d: BigUint,
    public: PublicKey,
}

impl std::fmt::Debug for DemoSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the scalar.
        write!(f, "DemoSecretKey({})", self.set.name())
    }
}

impl PartialEq for DemoSecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.set == other.set && self.d == other.d
    }
}

impl Eq for DemoSecretKey {}

/// A uniformly random integer in `[1, q - 1]` from the OS CSPRNG: 64 bits
/// more than q, reduced, so the bias is below 2⁻⁶⁴.
fn random_scalar(q: &BigUint) -> Result<BigUint, GostError> {
    let len = (q.bits() as usize).div_ceil(8) + 8;
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).map_err(|_| GostError::Encoding("no randomness"))?;
    Ok(BigUint::from_bytes_be(&bytes) % (q - 1u32) + 1u32)
}

/// TC26 key algorithm OID and digest parameter OID for a key size.
fn tc26_oids(set: ParamSet) -> (&'static str, &'static str) {
    if set.bits() == 512 {
        ("1.2.643.7.1.1.1.2", "1.2.643.7.1.1.2.3")
    } else {
        ("1.2.643.7.1.1.1.1", "1.2.643.7.1.1.2.2")
    }
}

/// The TC26 parameter-set OID of a set (what OpenSSL's engine writes).
fn tc26_param_oid(set: ParamSet) -> Option<&'static str> {
    crate::params::OIDS
        .iter()
        .find(|(oid, s)| *s == set && oid.starts_with("1.2.643.7.1.2.1."))
        .or_else(|| crate::params::OIDS.iter().find(|(_, s)| *s == set))
        .map(|(oid, _)| *oid)
}

impl DemoSecretKey {
    /// A fresh random key on `set`.
    pub fn generate(set: ParamSet) -> Result<Self, GostError> {
        Self::from_scalar(set, random_scalar(&set.params().q)?)
    }

    /// The key with private scalar `d` (`0 < d < q`).
    pub fn from_scalar(set: ParamSet, d: BigUint) -> Result<Self, GostError> {
        let c = set.params();
        if d.is_zero() || d >= c.q {
            return Err(GostError::ScalarOutOfRange);
        }
        let f = Field::new(c);
        let (x, y) = f
            .to_affine(&f.mul_scalar(&f.point(&c.x, &c.y), &d))
            .ok_or(GostError::Infinity)?;
        let public = PublicKey::from_affine(set, x, y)?;
        Ok(Self { set, d, public })
    }

    pub fn param_set(&self) -> ParamSet {
        self.set
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// GOST R 34.10-2012 section 6.1 over the integer α, with a random k.
    pub fn sign_integer(&self, alpha: &BigUint) -> Result<Signature, GostError> {
        let c = self.set.params();
        let q = &c.q;
        let f = Field::new(c);
        let mut e = alpha % q;
        if e.is_zero() {
            e = BigUint::one();
        }
        loop {
            let k = random_scalar(q)?;
            let point = f.mul_scalar(&f.point(&c.x, &c.y), &k);
            let Some((x, _)) = f.to_affine(&point) else {
                continue;
            };
            let r = x % q;
            if r.is_zero() {
                continue;
            }
            let s = (&r * &self.d + &k * &e) % q;
            if s.is_zero() {
                continue;
            }
            return Ok(Signature::new(r, s));
        }
    }

    /// Signs a Streebog digest of the key's size (octets as Streebog
    /// outputs them; read little-endian as every producer does).
    pub fn sign_digest(&self, digest: &[u8]) -> Result<Signature, GostError> {
        if digest.len() != self.set.size() {
            return Err(GostError::SizeMismatch {
                key_bits: self.set.bits(),
                digest_bits: digest.len() * 8,
            });
        }
        self.sign_integer(&digest_to_integer(digest))
    }

    /// Hashes `message` with the Streebog of the key's size and signs.
    pub fn sign_message(&self, message: &[u8]) -> Result<Signature, GostError> {
        self.sign_digest(&Streebog::for_key(self.set).digest(message))
    }

    /// The key's AlgorithmIdentifier parameters: `SEQUENCE { paramSet OID,
    /// digestParamSet OID }`, as OpenSSL's engine writes them.
    fn algorithm_identifier(&self) -> Result<Vec<u8>, GostError> {
        let (key_oid, digest_oid) = tc26_oids(self.set);
        let param_oid =
            tc26_param_oid(self.set).ok_or(GostError::Encoding("parameter set without an OID"))?;
        let mut params = oid(param_oid);
        params.extend(oid(digest_oid));
        let mut alg = oid(key_oid);
        alg.extend(tlv(0x30, &params));
        Ok(tlv(0x30, &alg))
    }

    /// The public key as a DER SubjectPublicKeyInfo (RFC 4491 / RFC 9215,
    /// TC26 OIDs): the form to put in a certificate.
    pub fn spki_der(&self) -> Result<Vec<u8>, GostError> {
        let mut body = self.algorithm_identifier()?;
        let mut bits = vec![0u8];
        bits.extend(tlv(0x04, &self.public.to_xy_le()));
        body.extend(tlv(0x03, &bits));
        Ok(tlv(0x30, &body))
    }

    /// PKCS#8 PrivateKeyInfo as OpenSSL's GOST engine writes it.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, GostError> {
        let mut body = vec![0x02, 0x01, 0x00];
        body.extend(self.algorithm_identifier()?);
        body.extend(tlv(0x04, &crate::le_fixed(&self.d, self.set.size())));
        Ok(tlv(0x30, &body))
    }

    /// Reads a PKCS#8 GOST key: the engine's OCTET STRING form (`d`
    /// little-endian) or an INTEGER (`d` big-endian), TC26 or Kazakh OIDs.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, GostError> {
        let bad = GostError::Encoding;
        let (tag, body, rest) = read_tlv(der)?;
        if tag != 0x30 || !rest.is_empty() {
            return Err(bad("PKCS#8 is not one SEQUENCE"));
        }
        let (tag, version, body) = read_tlv(body)?;
        if tag != 0x02 || version != [0] {
            return Err(bad("unsupported PKCS#8 version"));
        }
        let (tag, alg, body) = read_tlv(body)?;
        if tag != 0x30 {
            return Err(bad("PKCS#8 algorithm is not a SEQUENCE"));
        }
        let (tag, alg_oid, params) = read_tlv(alg)?;
        if tag != 0x06 {
            return Err(bad("PKCS#8 algorithm has no OID"));
        }
        let alg_oid = oid_to_string(alg_oid)?;
        if !crate::der::is_gost_key_algorithm(&alg_oid) {
            return Err(GostError::UnsupportedKeyAlgorithm(alg_oid));
        }
        let set = crate::der::param_set_from_parameters(params)?;
        let (tag, key, _attributes) = read_tlv(body)?;
        if tag != 0x04 {
            return Err(bad("PKCS#8 private key is not an OCTET STRING"));
        }
        let d = match read_tlv(key) {
            Ok((0x04, inner, [])) => BigUint::from_bytes_le(inner),
            Ok((0x02, inner, [])) => BigUint::from_bytes_be(inner),
            _ if key.len() == set.size() => BigUint::from_bytes_le(key),
            _ => return Err(bad("unrecognised GOST private key encoding")),
        };
        Self::from_scalar(set, d)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::{der, verify_message};

    #[test]
    fn signs_what_the_verifier_accepts_and_round_trips_pkcs8() {
        for set in [ParamSet::Tc26_512A, ParamSet::Tc26_256A] {
            let key = DemoSecretKey::generate(set).unwrap();
            let sig = key.sign_message(b"declaration").unwrap();
            verify_message(key.public_key(), b"declaration", &sig).unwrap();
            assert!(verify_message(key.public_key(), b"declaratioN", &sig).is_err());
            let der8 = key.to_pkcs8_der().unwrap();
            assert_eq!(DemoSecretKey::from_pkcs8_der(&der8).unwrap(), key);
            let spki = key.spki_der().unwrap();
            assert_eq!(&der::public_key_from_spki(&spki).unwrap(), key.public_key());
            assert!(!format!("{key:?}").contains(&key.d.to_string()));
        }
        assert!(DemoSecretKey::from_scalar(ParamSet::Tc26_512A, BigUint::zero()).is_err());
        assert!(DemoSecretKey::from_pkcs8_der(b"\x30\x00").is_err());
    }
}
