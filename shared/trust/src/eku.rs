use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An extended key usage the verifier accepts on every certificate of the path
/// that carries an EKU extension (certificates without one are unrestricted).
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Eku {
    /// id-kp-documentSigning, 1.3.6.1.5.5.7.3.36 (RFC 9336).
    DocumentSigning,
    /// id-kp-emailProtection, 1.3.6.1.5.5.7.3.4; many national e-signature CAs use it.
    EmailProtection,
    /// id-kp-clientAuth, 1.3.6.1.5.5.7.3.2.
    ClientAuth,
    /// id-kp-codeSigning, 1.3.6.1.5.5.7.3.3.
    CodeSigning,
    /// Any other purpose, e.g. a national signing OID.
    Custom(EkuOid),
}

/// A key purpose OID kept both as text and as DER content octets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EkuOid {
    dotted: String,
    der: Vec<u8>,
}

/// Text that is neither a known EKU name nor a dotted OID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is neither a known extended key usage name nor a dotted OID")]
pub struct InvalidEku(pub String);

// DER content octets (no tag/length), the form webpki compares against.
const DOCUMENT_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24];
const EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];
const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

impl Eku {
    /// What a document-signature verifier accepts unless configured otherwise.
    pub const DEFAULT_ACCEPTED: &'static [Eku] = &[Eku::DocumentSigning, Eku::EmailProtection];

    /// The OID's DER content octets.
    pub fn oid_der(&self) -> &[u8] {
        match self {
            Eku::DocumentSigning => DOCUMENT_SIGNING,
            Eku::EmailProtection => EMAIL_PROTECTION,
            Eku::ClientAuth => CLIENT_AUTH,
            Eku::CodeSigning => CODE_SIGNING,
            Eku::Custom(oid) => &oid.der,
        }
    }

    /// The OID in dotted form.
    pub fn dotted(&self) -> String {
        match self {
            Eku::Custom(oid) => oid.dotted.clone(),
            known => oid_to_dotted(known.oid_der()).unwrap_or_default(),
        }
    }

    fn name(&self) -> Option<&'static str> {
        match self {
            Eku::DocumentSigning => Some("documentSigning"),
            Eku::EmailProtection => Some("emailProtection"),
            Eku::ClientAuth => Some("clientAuth"),
            Eku::CodeSigning => Some("codeSigning"),
            Eku::Custom(_) => None,
        }
    }
}

impl EkuOid {
    /// Parses a dotted OID such as `1.2.398.3.3.4.1.1`.
    pub fn parse(dotted: &str) -> Result<Self, InvalidEku> {
        let der = dotted_to_der(dotted).ok_or_else(|| InvalidEku(dotted.to_owned()))?;
        Ok(Self {
            dotted: dotted.to_owned(),
            der,
        })
    }

    /// The OID in dotted form.
    pub fn as_str(&self) -> &str {
        &self.dotted
    }
}

impl FromStr for Eku {
    type Err = InvalidEku;

    /// Accepts the names shown by `Display` (case-insensitive) or any dotted OID;
    /// a dotted OID of a named purpose becomes that named variant so equality is by OID.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = [
            Eku::DocumentSigning,
            Eku::EmailProtection,
            Eku::ClientAuth,
            Eku::CodeSigning,
        ];
        if let Some(k) = known
            .iter()
            .find(|k| k.name().is_some_and(|n| n.eq_ignore_ascii_case(s)))
        {
            return Ok(k.clone());
        }
        let oid = EkuOid::parse(s)?;
        Ok(known
            .into_iter()
            .find(|k| k.oid_der() == oid.der.as_slice())
            .unwrap_or(Eku::Custom(oid)))
    }
}

impl fmt::Display for Eku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => f.write_str(&self.dotted()),
        }
    }
}

impl Serialize for Eku {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Eku {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn dotted_to_der(dotted: &str) -> Option<Vec<u8>> {
    let arcs = dotted
        .split('.')
        .map(|a| {
            // Leading zeros and signs would give two spellings of one OID.
            let canonical = !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a == "0" || !a.starts_with('0'));
            if canonical {
                a.parse::<u64>().ok()
            } else {
                None
            }
        })
        .collect::<Option<Vec<u64>>>()?;
    let (first, second, rest) = match arcs.as_slice() {
        [f, s, rest @ ..] => (*f, *s, rest),
        _ => return None,
    };
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut der = Vec::new();
    push_base128(&mut der, first.checked_mul(40)?.checked_add(second)?);
    for arc in rest {
        push_base128(&mut der, *arc);
    }
    Some(der)
}

fn push_base128(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 10];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let last = tmp.len() - 1;
    for (j, b) in tmp.iter().enumerate().skip(i) {
        out.push(if j == last { *b } else { *b | 0x80 });
    }
}

/// Decodes DER OID content octets to dotted text; `None` if malformed or too large.
pub(crate) fn oid_to_dotted(der: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut cur: u64 = 0;
    let mut in_arc = false;
    for &b in der {
        if !in_arc && b == 0x80 {
            return None; // non-minimal encoding
        }
        cur = cur.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        in_arc = b & 0x80 != 0;
        if !in_arc {
            if arcs.is_empty() {
                let (f, s) = match cur {
                    0..=39 => (0, cur),
                    40..=79 => (1, cur - 40),
                    _ => (2, cur - 80),
                };
                arcs.push(f);
                arcs.push(s);
            } else {
                arcs.push(cur);
            }
            cur = 0;
        }
    }
    if in_arc || arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_oids_round_trip() {
        assert_eq!(Eku::DocumentSigning.dotted(), "1.3.6.1.5.5.7.3.36");
        assert_eq!(Eku::EmailProtection.dotted(), "1.3.6.1.5.5.7.3.4");
        assert_eq!(Eku::ClientAuth.dotted(), "1.3.6.1.5.5.7.3.2");
        assert_eq!(Eku::CodeSigning.dotted(), "1.3.6.1.5.5.7.3.3");
        assert_eq!(
            "1.3.6.1.5.5.7.3.36".parse::<Eku>().unwrap(),
            Eku::DocumentSigning
        );
        assert_eq!(
            "DOCUMENTSIGNING".parse::<Eku>().unwrap(),
            Eku::DocumentSigning
        );
    }

    #[test]
    fn custom_oids() {
        let e: Eku = "1.2.398.3.3.4.1.1".parse().unwrap();
        assert!(matches!(e, Eku::Custom(_)));
        assert_eq!(e.to_string(), "1.2.398.3.3.4.1.1");
        assert_eq!(oid_to_dotted(e.oid_der()).unwrap(), "1.2.398.3.3.4.1.1");
        assert_eq!(
            "2.999.1".parse::<Eku>().unwrap().oid_der(),
            &[0x88, 0x37, 0x01]
        );
        for bad in [
            "", "1", "3.1", "1.40", "1..2", "1.02", "a.b", "1.2.-3", "1.2.3.",
        ] {
            assert!(bad.parse::<Eku>().is_err(), "{bad:?}");
        }
    }
}
