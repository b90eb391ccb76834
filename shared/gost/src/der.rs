//! The DER around GOST keys: SubjectPublicKeyInfo (RFC 4491 section 2.3,
//! RFC 9215 section 5 and the NCA's Kazakh OIDs), and the OIDs that name
//! GOST key and signature algorithms.
//!
//! A small reader instead of a general ASN.1 crate: only these few shapes
//! are accepted, everything else is an error.

use crate::{GostError, ParamSet, PublicKey};

/// DER of one element: `tag`, a definite length, `body` (the writer side
/// of [`read_tlv`], for the OIDs of `webpki.rs` and the demo material).
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = body.len();
    let be = len.to_be_bytes();
    let skip = be.iter().take_while(|&&b| b == 0).count();
    if len < 0x80 {
        out.push(be[be.len() - 1]);
    } else {
        // Invariant: at most size_of::<usize>() (8) length octets.
        out.push(0x80 | (be.len() - skip) as u8);
        out.extend_from_slice(&be[skip..]);
    }
    out.extend_from_slice(body);
    out
}

/// DER of an OID given in dotted form (only called on constants).
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u64> = dotted.split('.').filter_map(|a| a.parse().ok()).collect();
    let mut body = Vec::new();
    if let [a, b, rest @ ..] = arcs.as_slice() {
        let mut all = vec![a * 40 + b];
        all.extend_from_slice(rest);
        for arc in all {
            let mut chunk = vec![(arc & 0x7f) as u8];
            let mut v = arc >> 7;
            while v > 0 {
                chunk.push(((v & 0x7f) as u8) | 0x80);
                v >>= 7;
            }
            chunk.reverse();
            body.extend(chunk);
        }
    }
    tlv(0x06, &body)
}

/// GOST key algorithm OIDs and their key size; legacy ones map to `None`.
const KEY_ALGORITHMS: &[(&str, Option<usize>)] = &[
    ("1.2.643.7.1.1.1.1", Some(256)),
    ("1.2.643.7.1.1.1.2", Some(512)),
    ("1.2.398.3.10.1.1.2.1", Some(256)),
    ("1.2.398.3.10.1.1.2.2", Some(512)),
    // GOST R 34.10-2001 and the Kazakh GOST 34.310-2004: their hash
    // (GOST R 34.11-94 / GOST 34.311-95) is not implemented.
    ("1.2.643.2.2.19", None),
    ("1.2.398.3.10.1.1.1.1", None),
];

/// GOST signature algorithm OIDs (certificates, CRLs, CMS) and the key size
/// they need; legacy ones map to `None`.
pub const SIGNATURE_ALGORITHMS: &[(&str, Option<usize>)] = &[
    ("1.2.643.7.1.1.3.2", Some(256)),
    ("1.2.643.7.1.1.3.3", Some(512)),
    ("1.2.398.3.10.1.1.2.3.1", Some(256)),
    ("1.2.398.3.10.1.1.2.3.2", Some(512)),
    ("1.2.643.2.2.3", None),
    ("1.2.398.3.10.1.1.1.2", None),
];

/// Whether `oid` is a GOST key algorithm (supported or not).
pub fn is_gost_key_algorithm(oid: &str) -> bool {
    KEY_ALGORITHMS.iter().any(|(o, _)| *o == oid)
}

/// One TLV: tag, contents, what follows.
pub fn read_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), GostError> {
    let bad = GostError::Encoding;
    let (&tag, rest) = input.split_first().ok_or(bad("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad("multi-byte tag"));
    }
    let (&first, rest) = rest.split_first().ok_or(bad("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 || rest.len() < n {
            return Err(bad("unsupported length"));
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        if len < 0x80 || rest[0] == 0 {
            return Err(bad("non-minimal length"));
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err(bad("truncated contents"));
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), GostError> {
    let (t, body, rest) = read_tlv(input)?;
    if t != tag {
        return Err(GostError::Encoding(what));
    }
    Ok((body, rest))
}

/// The dotted form of an OID's contents octets.
pub fn oid_to_string(body: &[u8]) -> Result<String, GostError> {
    let bad = GostError::Encoding("malformed OID");
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    let mut fresh = true;
    for &b in body {
        if fresh && b == 0x80 {
            return Err(bad);
        }
        fresh = false;
        acc = acc.checked_mul(128).ok_or(bad.clone())? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
            fresh = true;
        }
    }
    if !fresh || arcs.is_empty() {
        return Err(bad);
    }
    let first = arcs[0];
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in &arcs[1..] {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Ok(out)
}

/// The parameter set named by GOST key parameters (`SEQUENCE { OID
/// publicKeyParamSet, OID digestParamSet OPTIONAL, ... }`, the DER of the
/// whole SEQUENCE).
pub fn param_set_from_parameters(params_der: &[u8]) -> Result<ParamSet, GostError> {
    let (body, rest) = expect(params_der, 0x30, "key parameters are not a SEQUENCE")?;
    if !rest.is_empty() {
        return Err(GostError::Encoding("trailing data after key parameters"));
    }
    let (oid, _) = expect(body, 0x06, "key parameters do not start with an OID")?;
    let oid = oid_to_string(oid)?;
    ParamSet::from_oid(&oid).ok_or(GostError::UnknownParameterSet(oid))
}

/// The X‖Y octets inside the subjectPublicKey BIT STRING's contents: an
/// OCTET STRING (RFC 4491 section 2.3.2).
pub fn key_octets(subject_public_key: &[u8]) -> Result<&[u8], GostError> {
    let (body, rest) = expect(
        subject_public_key,
        0x04,
        "the GOST public key is not an OCTET STRING",
    )?;
    if !rest.is_empty() {
        return Err(GostError::Encoding("trailing data after the public key"));
    }
    Ok(body)
}

/// A key from its algorithm OID, the DER of its parameters and the
/// subjectPublicKey bits.
pub fn public_key_from_parts(
    algorithm_oid: &str,
    params_der: &[u8],
    subject_public_key: &[u8],
) -> Result<PublicKey, GostError> {
    let bits = match KEY_ALGORITHMS.iter().find(|(o, _)| *o == algorithm_oid) {
        Some((_, Some(bits))) => *bits,
        _ => {
            return Err(GostError::UnsupportedKeyAlgorithm(
                algorithm_oid.to_string(),
            ))
        }
    };
    let set = param_set_from_parameters(params_der)?;
    if set.bits() != bits {
        return Err(GostError::SizeMismatch {
            key_bits: bits,
            digest_bits: set.bits(),
        });
    }
    PublicKey::from_xy_le(set, key_octets(subject_public_key)?)
}

/// A key from a DER SubjectPublicKeyInfo.
pub fn public_key_from_spki(spki: &[u8]) -> Result<PublicKey, GostError> {
    let (body, rest) = expect(spki, 0x30, "SubjectPublicKeyInfo is not a SEQUENCE")?;
    if !rest.is_empty() {
        return Err(GostError::Encoding(
            "trailing data after SubjectPublicKeyInfo",
        ));
    }
    let (alg, after) = expect(body, 0x30, "AlgorithmIdentifier is not a SEQUENCE")?;
    let (oid, params) = expect(alg, 0x06, "AlgorithmIdentifier has no OID")?;
    let oid = oid_to_string(oid)?;
    let (bits, tail) = expect(after, 0x03, "subjectPublicKey is not a BIT STRING")?;
    if !tail.is_empty() {
        return Err(GostError::Encoding("trailing data after subjectPublicKey"));
    }
    let (&unused, bits) = bits
        .split_first()
        .ok_or(GostError::Encoding("empty BIT STRING"))?;
    if unused != 0 {
        return Err(GostError::Encoding("BIT STRING with unused bits"));
    }
    public_key_from_parts(&oid, params, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_decode() {
        assert_eq!(
            oid_to_string(&[0x2a, 0x83, 0x0e, 0x03, 0x0a, 0x01, 0x01, 0x02, 0x02]).unwrap(),
            "1.2.398.3.10.1.1.2.2"
        );
        assert!(oid_to_string(&[0x2a, 0x83]).is_err());
        assert!(oid_to_string(&[0x2a, 0x80, 0x01]).is_err());
    }

    #[test]
    fn lengths_are_minimal_and_bounded() {
        assert!(read_tlv(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).is_err());
        assert!(read_tlv(&[0x04, 0x05, 1, 2]).is_err());
        assert!(read_tlv(&[0x04, 0x84, 0, 0, 0, 1]).is_err());
        let (t, body, rest) = read_tlv(&[0x04, 0x02, 1, 2, 9]).unwrap();
        assert_eq!((t, body, rest), (4, &[1u8, 2][..], &[9u8][..]));
    }
}
