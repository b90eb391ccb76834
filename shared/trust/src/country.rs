use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An ISO 3166-1 alpha-2 country code, always stored upper-case.
///
/// Only the shape (two ASCII letters) is checked: the trust list decides which
/// countries exist, so an unassigned code simply has no folder.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode([u8; 2]);

/// A string that is not two ASCII letters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a two-letter ISO 3166 country code")]
pub struct InvalidCountryCode(pub String);

impl CountryCode {
    /// Parses a code that must already be upper-case (as trust-list folder names
    /// must be, so that `kz/` and `KZ/` can never both exist and disagree).
    pub fn from_upper(s: &str) -> Result<Self, InvalidCountryCode> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err(InvalidCountryCode(s.to_owned())),
        }
    }

    /// The two upper-case letters.
    pub fn as_str(&self) -> &str {
        // Invariant: both bytes are ASCII upper-case letters (checked on construction),
        // so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for CountryCode {
    type Err = InvalidCountryCode;

    /// Accepts either case (documents and configs are not consistent) and normalises.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(InvalidCountryCode(s.to_owned())),
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl Serialize for CountryCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        assert_eq!("kz".parse::<CountryCode>().unwrap().as_str(), "KZ");
        assert_eq!("Tr".parse::<CountryCode>().unwrap().to_string(), "TR");
        for bad in ["", "K", "KAZ", "K1", "ÄZ", "k z", " KZ"] {
            assert!(bad.parse::<CountryCode>().is_err(), "{bad:?}");
        }
        assert!(CountryCode::from_upper("kz").is_err());
        assert!(CountryCode::from_upper("KZ").is_ok());
    }

    #[test]
    fn serde_is_a_plain_string() {
        let c: CountryCode = "az".parse().unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"AZ\"");
        let back: CountryCode = serde_json::from_str("\"kg\"").unwrap();
        assert_eq!(back.as_str(), "KG");
        assert!(serde_json::from_str::<CountryCode>("\"KGZ\"").is_err());
    }
}
