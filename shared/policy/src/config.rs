//! The validation policy: what the profile accepts, as data.
//!
//! Loaded from a TOML file (`tamga verify --policy FILE`); every key is
//! optional and defaults to the strict customs profile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tamga_dsig::{Budget, DigestAlgorithm, SignatureAlgorithm};
use tamga_trust::{Eku, RevocationMode};
use tamga_xml::ParseLimits;

/// Which shape of signature is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Profile {
    /// Exactly one enveloped declarant signature over the document element,
    /// identified by a certificate. The default.
    Customs,
    /// Any single XML-DSig signature (enveloping, detached, KeyValue, HMAC
    /// with a supplied secret): for conformance suites, never for declarations.
    Generic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_attributes_per_element: usize,
    pub max_text_bytes: usize,
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let d = ParseLimits::default();
        Self {
            max_bytes: d.max_bytes,
            max_depth: d.max_depth,
            max_attributes_per_element: d.max_attributes_per_element,
            max_text_bytes: d.max_text_bytes,
            max_nodes: d.max_nodes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budgets {
    pub max_references: usize,
    pub max_transforms_per_reference: usize,
    pub max_certificates: usize,
    pub max_objects: usize,
    pub max_intermediates: usize,
    pub max_counter_signatures: usize,
}

impl Default for Budgets {
    fn default() -> Self {
        let b = Budget::default();
        Self {
            max_references: b.max_references,
            max_transforms_per_reference: b.max_transforms_per_reference,
            max_certificates: b.max_certificates,
            max_objects: b.max_objects,
            max_intermediates: 4,
            max_counter_signatures: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Algorithms {
    /// SHA-1 in digests and signatures: only for an explicit legacy policy.
    pub allow_sha1: bool,
    pub min_rsa_bits: usize,
    pub min_ec_bits: usize,
}

impl Default for Algorithms {
    fn default() -> Self {
        Self {
            allow_sha1: false,
            min_rsa_bits: 2048,
            min_ec_bits: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Certificates {
    pub revocation: RevocationMode,
    /// Accepted extended key usages (names such as `documentSigning`, or
    /// dotted OIDs for national signing purposes).
    pub accepted_ekus: Vec<Eku>,
}

impl Default for Certificates {
    fn default() -> Self {
        Self {
            revocation: RevocationMode::Require,
            accepted_ekus: Eku::DEFAULT_ACCEPTED.to_vec(),
        }
    }
}

/// What one partner country's signers may use (`[country.KZ]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryRules {
    /// Signature algorithm families: `rsa`, `rsa-pss`, `ecdsa`, `ed25519`,
    /// `gost2012-256`, `gost2012-512`.
    pub algorithms: Vec<String>,
}

/// The families every country may use unless its `[country.XX]` says otherwise.
pub const DEFAULT_ALGORITHM_FAMILIES: &[&str] = &["rsa", "rsa-pss", "ecdsa", "ed25519"];
/// GOST R 34.10-2012/2015: national in Kazakhstan and Kyrgyzstan, allowed
/// there by default and nowhere else.
pub const GOST_FAMILIES: &[&str] = &["gost2012-256", "gost2012-512"];

/// The default `[country]` table: KZ and KG may use GOST as well.
pub fn default_countries() -> BTreeMap<String, CountryRules> {
    let with_gost: Vec<String> = DEFAULT_ALGORITHM_FAMILIES
        .iter()
        .chain(GOST_FAMILIES)
        .map(|s| s.to_string())
        .collect();
    ["KG", "KZ"]
        .into_iter()
        .map(|cc| {
            (
                cc.to_string(),
                CountryRules {
                    algorithms: with_gost.clone(),
                },
            )
        })
        .collect()
}

/// The family a signature algorithm belongs to, as `[country.XX]` names it.
pub fn algorithm_family(s: &SignatureAlgorithm) -> String {
    match s {
        SignatureAlgorithm::RsaPkcs1(_) => "rsa".into(),
        SignatureAlgorithm::RsaPss(_) => "rsa-pss".into(),
        SignatureAlgorithm::Ecdsa(_) => "ecdsa".into(),
        SignatureAlgorithm::Ed25519 => "ed25519".into(),
        SignatureAlgorithm::Hmac(_) => "hmac".into(),
        other => other.name(),
    }
}

/// A complete validation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub profile: Profile,
    /// Require XAdES (SignedProperties with a signing certificate).
    pub require_xades: bool,
    pub limits: Limits,
    pub budgets: Budgets,
    pub algorithms: Algorithms,
    pub certificates: Certificates,
    /// Per-country algorithm rules (customs profile). A country without an
    /// entry may use [`DEFAULT_ALGORITHM_FAMILIES`]; a `[country]` table in
    /// the policy file replaces the default one (KZ and KG with GOST).
    pub country: BTreeMap<String, CountryRules>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::customs()
    }
}

impl Policy {
    /// The strict customs profile.
    pub fn customs() -> Self {
        Self {
            profile: Profile::Customs,
            require_xades: false,
            limits: Limits::default(),
            budgets: Budgets::default(),
            algorithms: Algorithms::default(),
            certificates: Certificates::default(),
            country: default_countries(),
        }
    }

    /// The generic profile for conformance vectors: legacy algorithms and
    /// shapes allowed, trust still required for TOTAL_PASSED.
    pub fn generic() -> Self {
        Self {
            profile: Profile::Generic,
            algorithms: Algorithms {
                allow_sha1: true,
                min_rsa_bits: 1024,
                min_ec_bits: 256,
            },
            ..Self::customs()
        }
    }

    /// Parses a TOML policy file. Unknown keys are errors: a typo must not
    /// silently fall back to a default.
    ///
    /// The error is one line (`line L, column C: message`): it ends up in a
    /// one-line `tamga: error:` and in logs.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let policy: Self = toml::from_str(text).map_err(|e: toml::de::Error| {
            let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
            match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {column}: {message}")
                }
                None => message,
            }
        })?;
        if policy.limits.max_depth > tamga_xml::LIBXML2_MAX_DEPTH {
            return Err(format!(
                "limits.max_depth = {} is above the parser's hard limit of {}",
                policy.limits.max_depth,
                tamga_xml::LIBXML2_MAX_DEPTH
            ));
        }
        Ok(policy)
    }

    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_bytes: self.limits.max_bytes,
            max_depth: self.limits.max_depth,
            max_attributes_per_element: self.limits.max_attributes_per_element,
            max_text_bytes: self.limits.max_text_bytes,
            max_nodes: self.limits.max_nodes,
        }
    }

    pub fn budget(&self) -> Budget {
        Budget {
            max_references: self.budgets.max_references,
            max_transforms_per_reference: self.budgets.max_transforms_per_reference,
            max_certificates: self.budgets.max_certificates,
            max_objects: self.budgets.max_objects,
        }
    }

    /// Is this digest acceptable? `Err` names why not.
    pub(crate) fn digest_allowed(&self, d: &DigestAlgorithm) -> Result<(), crate::Reason> {
        match d {
            DigestAlgorithm::Sha256
            | DigestAlgorithm::Sha384
            | DigestAlgorithm::Sha512
            | DigestAlgorithm::Streebog256(_)
            | DigestAlgorithm::Streebog512(_) => Ok(()),
            DigestAlgorithm::Gost34311 => Err(crate::Reason::UnsupportedAlgorithm {
                algorithm: d.uri().to_string(),
            }),
            DigestAlgorithm::Sha1 if self.algorithms.allow_sha1 => Ok(()),
            DigestAlgorithm::Sha1 | DigestAlgorithm::Md5 | DigestAlgorithm::Sha224 => {
                Err(crate::Reason::WeakAlgorithm {
                    algorithm: d.name().to_string(),
                })
            }
            other => Err(crate::Reason::AlgorithmNotAllowed {
                algorithm: other.uri().to_string(),
            }),
        }
    }

    /// Is this signature algorithm acceptable?
    pub(crate) fn signature_allowed(&self, s: &SignatureAlgorithm) -> Result<(), crate::Reason> {
        match s {
            SignatureAlgorithm::Hmac(_) if self.profile == Profile::Customs => {
                Err(crate::Reason::HmacForbidden)
            }
            SignatureAlgorithm::DsaSha1 => Err(crate::Reason::AlgorithmNotAllowed {
                algorithm: s.name(),
            }),
            SignatureAlgorithm::Gost34310 => {
                Err(crate::Reason::UnsupportedAlgorithm { algorithm: s.uri() })
            }
            SignatureAlgorithm::Unknown(u) => Err(crate::Reason::AlgorithmNotAllowed {
                algorithm: u.clone(),
            }),
            SignatureAlgorithm::Ed25519 => Ok(()),
            other => match other.digest() {
                Some(d) => self.digest_allowed(d),
                None => Err(crate::Reason::AlgorithmNotAllowed {
                    algorithm: other.name(),
                }),
            },
        }
    }
}

impl Policy {
    /// Under the customs profile, may a signer from `country` use `s`?
    /// (The generic profile runs conformance vectors under a pseudo
    /// country and has no partner rules.)
    pub(crate) fn country_allows(
        &self,
        country: &str,
        s: &SignatureAlgorithm,
    ) -> Result<(), crate::Reason> {
        if self.profile != Profile::Customs {
            return Ok(());
        }
        let family = algorithm_family(s);
        let allowed = match self.country.get(country) {
            Some(rules) => rules.algorithms.contains(&family),
            None => DEFAULT_ALGORITHM_FAMILIES.contains(&family.as_str()),
        };
        if allowed {
            Ok(())
        } else {
            Err(crate::Reason::AlgorithmNotAllowedForCountry {
                algorithm: family,
                country: country.to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_algorithm_rules() {
        use tamga_dsig::algorithms::GostDialect;
        let gost = SignatureAlgorithm::Gost {
            bits: 512,
            dialect: GostDialect::Kazakh,
        };
        let rsa = SignatureAlgorithm::RsaPkcs1(DigestAlgorithm::Sha256);
        let p = Policy::customs();
        assert!(p.country_allows("KZ", &gost).is_ok());
        assert!(p.country_allows("KG", &gost).is_ok());
        assert!(p.country_allows("AZ", &rsa).is_ok());
        assert_eq!(
            p.country_allows("AZ", &gost).unwrap_err().code(),
            "algorithm_not_allowed_for_country"
        );
        // A policy file's table replaces the default one.
        let p = Policy::from_toml("[country.KZ]\nalgorithms = [\"ecdsa\"]\n").unwrap();
        assert!(p.country_allows("KZ", &gost).is_err());
        assert!(p.country_allows("KZ", &rsa).is_err());
        assert!(p.country_allows("KG", &gost).is_err());
        assert!(Policy::generic().country_allows("ZZ", &gost).is_ok());
        assert!(Policy::from_toml("[country.KZ]\nalgoritms = []\n").is_err());
    }

    #[test]
    fn toml_round_trip_and_unknown_keys() {
        let p = Policy::from_toml(
            "profile = \"customs\"\n[algorithms]\nallow_sha1 = true\n[certificates]\nrevocation = \"ifAvailable\"\naccepted_ekus = [\"documentSigning\", \"1.2.398.3.3.4.1.1\"]\n",
        )
        .unwrap();
        assert!(p.algorithms.allow_sha1);
        assert_eq!(p.certificates.revocation, RevocationMode::IfAvailable);
        assert_eq!(p.certificates.accepted_ekus.len(), 2);
        let err = Policy::from_toml("[algorithms]\nallow_sha_1 = true\n").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.starts_with("line 2, column 1: "), "{err}");
        assert!(err.contains("allow_sha_1"), "{err}");
        let text = toml::to_string(&Policy::customs()).unwrap();
        assert_eq!(Policy::from_toml(&text).unwrap(), Policy::customs());
    }
}
