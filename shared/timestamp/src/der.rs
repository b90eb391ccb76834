//! A strict DER reader over `asn1-rs`.
//!
//! `asn1-rs` does the TLV framing (and refuses indefinite lengths in DER
//! mode); this module adds what a verifier needs on top: minimal length
//! encodings, single-octet tags only, no trailing data, and the raw bytes of
//! every element (signatures and digests are computed over exact octets).

use asn1_rs::{Any, FromDer};

use crate::error::{malformed, TimestampError};

pub(crate) const TAG_BOOLEAN: u8 = 0x01;
pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_SET: u8 = 0x31;

/// `[n]` context-specific, constructed (EXPLICIT, or IMPLICIT over a constructed type).
pub(crate) const fn ctx_cons(n: u8) -> u8 {
    0xa0 | n
}

/// `[n]` context-specific, primitive (IMPLICIT over a primitive type).
pub(crate) const fn ctx_prim(n: u8) -> u8 {
    0x80 | n
}

/// One DER element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and tag number < 31).
    pub tag: u8,
    /// The whole element: identifier, length and contents.
    pub raw: &'a [u8],
    /// The contents octets.
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// Parses exactly one element spanning all of `data`.
    pub(crate) fn parse_exact(data: &'a [u8], what: &'static str) -> Result<Self, TimestampError> {
        let mut r = Reader::new(data, what);
        let tlv = r.read()?;
        r.finish()?;
        Ok(tlv)
    }

    /// A reader over this element's contents.
    pub(crate) fn reader(&self, what: &'static str) -> Reader<'a> {
        Reader::new(self.value, what)
    }

    /// Checks the identifier octet.
    pub(crate) fn expect_tag(self, tag: u8, what: &'static str) -> Result<Self, TimestampError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(malformed(format!(
                "{what}: expected tag 0x{tag:02x}, found 0x{:02x}",
                self.tag
            )))
        }
    }
}

/// Reads consecutive DER elements from a byte string.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Self {
        Self { rest: data, what }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads the next element, whatever its tag.
    pub(crate) fn read(&mut self) -> Result<Tlv<'a>, TimestampError> {
        let input = self.rest;
        if input.is_empty() {
            return Err(malformed(format!("{}: unexpected end of data", self.what)));
        }
        let (remaining, any) = Any::from_der(input)
            .map_err(|e| malformed(format!("{}: invalid DER: {e}", self.what)))?;
        let consumed = input
            .len()
            .checked_sub(remaining.len())
            .ok_or_else(|| malformed(format!("{}: inconsistent DER framing", self.what)))?;
        let value_len = any.data.len();
        let header_len = consumed
            .checked_sub(value_len)
            .ok_or_else(|| malformed(format!("{}: inconsistent DER framing", self.what)))?;
        let tag = input[0];
        if tag & 0x1f == 0x1f {
            return Err(malformed(format!(
                "{}: multi-octet tags are not used in time-stamp tokens",
                self.what
            )));
        }
        if header_len != 1 + length_octets(value_len) {
            return Err(malformed(format!(
                "{}: non-minimal DER length encoding",
                self.what
            )));
        }
        let raw = input
            .get(..consumed)
            .ok_or_else(|| malformed(format!("{}: inconsistent DER framing", self.what)))?;
        self.rest = remaining;
        Ok(Tlv {
            tag,
            raw,
            value: any.data,
        })
    }

    /// Reads the next element and checks its tag.
    pub(crate) fn take(&mut self, tag: u8) -> Result<Tlv<'a>, TimestampError> {
        let what = self.what;
        self.read()?.expect_tag(tag, what)
    }

    /// Reads the next element if it has this tag.
    pub(crate) fn optional(&mut self, tag: u8) -> Result<Option<Tlv<'a>>, TimestampError> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails if anything is left.
    pub(crate) fn finish(self) -> Result<(), TimestampError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!(
                "{}: unexpected trailing data",
                self.what
            )))
        }
    }
}

/// How many octets the DER length field takes for a given content length.
fn length_octets(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        let bytes = (usize::BITS - len.leading_zeros()).div_ceil(8) as usize;
        1 + bytes
    }
}

/// Content octets of an INTEGER, checked for minimal two's-complement encoding.
pub(crate) fn integer<'a>(tlv: Tlv<'a>, what: &'static str) -> Result<&'a [u8], TimestampError> {
    let tlv = tlv.expect_tag(TAG_INTEGER, what)?;
    let v = tlv.value;
    match v {
        [] => Err(malformed(format!("{what}: empty INTEGER"))),
        [0x00, next, ..] if next & 0x80 == 0 => {
            Err(malformed(format!("{what}: non-minimal INTEGER")))
        }
        [0xff, next, ..] if next & 0x80 != 0 => {
            Err(malformed(format!("{what}: non-minimal INTEGER")))
        }
        _ => Ok(v),
    }
}

/// A small non-negative INTEGER (versions, accuracy fields).
pub(crate) fn small_uint(tlv: Tlv<'_>, what: &'static str) -> Result<u64, TimestampError> {
    let v = integer(tlv, what)?;
    if v[0] & 0x80 != 0 {
        return Err(malformed(format!("{what}: negative INTEGER")));
    }
    let v = if v[0] == 0 { &v[1..] } else { v };
    if v.len() > 8 {
        return Err(malformed(format!("{what}: INTEGER too large")));
    }
    Ok(v.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A positive INTEGER as lowercase hex without the sign-padding zero.
pub(crate) fn positive_integer_hex(v: &[u8]) -> String {
    let v = match v {
        [0x00, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    hex::encode(v)
}

/// Content octets of an OBJECT IDENTIFIER, checked for valid sub-identifier encoding.
pub(crate) fn oid<'a>(tlv: Tlv<'a>, what: &'static str) -> Result<&'a [u8], TimestampError> {
    let tlv = tlv.expect_tag(TAG_OID, what)?;
    let v = tlv.value;
    let Some(last) = v.last() else {
        return Err(malformed(format!("{what}: empty OBJECT IDENTIFIER")));
    };
    if last & 0x80 != 0 {
        return Err(malformed(format!("{what}: truncated OBJECT IDENTIFIER")));
    }
    let mut start_of_arc = true;
    for b in v {
        if start_of_arc && *b == 0x80 {
            return Err(malformed(format!("{what}: non-minimal OBJECT IDENTIFIER")));
        }
        start_of_arc = b & 0x80 == 0;
    }
    Ok(v)
}

/// Dotted text of OID content octets (for messages and reports).
pub(crate) fn oid_to_string(content: &[u8]) -> String {
    asn1_rs::Oid::new(std::borrow::Cow::Borrowed(content)).to_id_string()
}

/// A BOOLEAN (DER: 0x00 or 0xFF).
pub(crate) fn boolean(tlv: Tlv<'_>, what: &'static str) -> Result<bool, TimestampError> {
    let tlv = tlv.expect_tag(TAG_BOOLEAN, what)?;
    match tlv.value {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err(malformed(format!("{what}: invalid DER BOOLEAN"))),
    }
}

/// Content octets of a primitive OCTET STRING.
pub(crate) fn octet_string<'a>(
    tlv: Tlv<'a>,
    what: &'static str,
) -> Result<&'a [u8], TimestampError> {
    Ok(tlv.expect_tag(TAG_OCTET_STRING, what)?.value)
}

/// An AlgorithmIdentifier: OID plus optional parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AlgId<'a> {
    pub oid: &'a [u8],
    pub params: Option<Tlv<'a>>,
}

impl<'a> AlgId<'a> {
    /// Parses `SEQUENCE { algorithm OID, parameters ANY OPTIONAL }` from a SEQUENCE element
    /// (or from an IMPLICIT-tagged one: the caller checks the tag).
    pub(crate) fn from_contents(tlv: Tlv<'a>, what: &'static str) -> Result<Self, TimestampError> {
        let mut r = tlv.reader(what);
        let oid = oid(r.read()?, what)?;
        let params = if r.is_empty() { None } else { Some(r.read()?) };
        r.finish()?;
        Ok(Self { oid, params })
    }

    pub(crate) fn parse(tlv: Tlv<'a>, what: &'static str) -> Result<Self, TimestampError> {
        Self::from_contents(tlv.expect_tag(TAG_SEQUENCE, what)?, what)
    }

    /// True if the parameters are absent or NULL (the two encodings hash
    /// AlgorithmIdentifiers use interchangeably).
    pub(crate) fn params_absent_or_null(&self) -> bool {
        match self.params {
            None => true,
            Some(p) => p.tag == TAG_NULL && p.value.is_empty(),
        }
    }

    /// Same algorithm and same parameters, treating absent and NULL alike.
    pub(crate) fn same_as(&self, other: &AlgId<'_>) -> bool {
        if self.oid != other.oid {
            return false;
        }
        match (self.params, other.params) {
            (Some(a), Some(b)) => a.raw == b.raw,
            _ => self.params_absent_or_null() && other.params_absent_or_null(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(length_octets(0), 1);
        assert_eq!(length_octets(127), 1);
        assert_eq!(length_octets(128), 2);
        assert_eq!(length_octets(255), 2);
        assert_eq!(length_octets(256), 3);
        assert_eq!(length_octets(65536), 4);
    }

    #[test]
    fn rejects_non_minimal_length() {
        assert!(Tlv::parse_exact(&[0x04, 0x81, 0x01, 0xaa], "t").is_err());
        assert!(Tlv::parse_exact(&[0x04, 0x01, 0xaa], "t").is_ok());
        let mut long = vec![0x04, 0x82, 0x00, 0x80];
        long.extend(std::iter::repeat_n(0u8, 0x80));
        assert!(Tlv::parse_exact(&long, "t").is_err());
    }

    #[test]
    fn rejects_indefinite_and_trailing() {
        assert!(Tlv::parse_exact(&[0x30, 0x80, 0x00, 0x00], "t").is_err());
        assert!(Tlv::parse_exact(&[0x05, 0x00, 0x00], "t").is_err());
        assert!(Tlv::parse_exact(&[], "t").is_err());
        assert!(Tlv::parse_exact(&[0x04, 0x05, 0x01], "t").is_err());
    }

    #[test]
    fn integers() {
        let t = Tlv::parse_exact(&[0x02, 0x02, 0x00, 0x7f], "t").unwrap();
        assert!(integer(t, "t").is_err());
        let t = Tlv::parse_exact(&[0x02, 0x02, 0x00, 0x80], "t").unwrap();
        assert_eq!(small_uint(t, "t").unwrap(), 128);
        assert_eq!(positive_integer_hex(&[0x00, 0x80]), "80");
        let t = Tlv::parse_exact(&[0x02, 0x01, 0xff], "t").unwrap();
        assert!(small_uint(t, "t").is_err());
    }

    #[test]
    fn oids() {
        let t = Tlv::parse_exact(&[0x06, 0x03, 0x2a, 0x03, 0x04], "t").unwrap();
        assert_eq!(oid_to_string(oid(t, "t").unwrap()), "1.2.3.4");
        let t = Tlv::parse_exact(&[0x06, 0x02, 0x2a, 0x83], "t").unwrap();
        assert!(oid(t, "t").is_err());
        let t = Tlv::parse_exact(&[0x06, 0x02, 0x80, 0x01], "t").unwrap();
        assert!(oid(t, "t").is_err());
    }
}
