//! The signed offline trust bundle (`GET /v1/trust-bundle`): the trust directory's anchors
//! and CRLs and the authorities' certificates, with its date, as a tagged COSE_Sign1 over a
//! CBOR map (`schemas/qr.md`), signed by the serving authority. A checkpoint that already
//! trusts that authority's country (its trust directory) takes newer CRLs and authority
//! certificates from the bundle without a network.

use ciborium::value::Value;
use serde::Serialize;
use tamga_dsig::Signer;
use tamga_trust::{CertSummary, CountryCode, PathRequest, TrustFile, TrustList};

use crate::{cose, QrError};

/// Largest bundle read.
pub const MAX_BUNDLE_BYTES: usize = 16 * 1024 * 1024;

/// The bundle's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// Unix seconds; also its version (`version` in JSON views).
    pub issued_at: i64,
    /// After this (Unix seconds) the bundle is stale: checks against it cannot decide.
    pub next_update: i64,
    /// The issuing authority's country.
    pub issuer_country: String,
    /// `<CC>/<name>` files of the trust directory (anchors and CRLs).
    pub files: Vec<TrustFile>,
    /// The authorities' certificates (leaf first per authority, DER).
    pub authorities: Vec<Vec<u8>>,
}

/// A bundle whose signature and signer were checked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub version: i64,
    pub issued_at: i64,
    pub next_update: i64,
    pub issuer_country: String,
    pub countries: Vec<String>,
    pub files: usize,
    pub authorities: usize,
    pub signer: CertSummary,
}

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("the bundle is too large")]
    Oversize,
    #[error("the bundle is malformed: {0}")]
    Malformed(String),
    #[error("the bundle's signature does not verify: {0}")]
    BadSignature(String),
    #[error("the bundle's signer is not trusted here: {0}")]
    Untrusted(String),
    #[error("cannot sign the bundle: {0}")]
    Sign(#[from] QrError),
}

impl Bundle {
    fn to_cbor(&self) -> Result<Vec<u8>, QrError> {
        let files = self
            .files
            .iter()
            .map(|f| {
                Value::Array(vec![
                    Value::Text(f.country.to_string()),
                    Value::Text(f.name.clone()),
                    Value::Bytes(f.bytes.clone()),
                ])
            })
            .collect();
        let map = vec![
            (Value::from(1), Value::from(1)),
            (Value::from(2), Value::from(self.issued_at)),
            (Value::from(3), Value::from(self.next_update)),
            (Value::from(4), Value::Text(self.issuer_country.clone())),
            (Value::from(5), Value::Array(files)),
            (
                Value::from(6),
                Value::Array(self.authorities.iter().cloned().map(Value::Bytes).collect()),
            ),
        ];
        let mut out = Vec::new();
        ciborium::into_writer(&Value::Map(map), &mut out)
            .map_err(|e| QrError::Claims(e.to_string()))?;
        Ok(out)
    }

    fn from_cbor(bytes: &[u8]) -> Result<Self, BundleError> {
        let bad = |m: &str| BundleError::Malformed(m.to_owned());
        let value: Value = ciborium::from_reader(bytes).map_err(|e| bad(&e.to_string()))?;
        let Value::Map(map) = value else {
            return Err(bad("not a map"));
        };
        let get = |k: i64| {
            map.iter()
                .find(|(key, _)| key.as_integer().and_then(|i| i64::try_from(i).ok()) == Some(k))
                .map(|(_, v)| v)
        };
        let int = |k: i64| {
            get(k)
                .and_then(Value::as_integer)
                .and_then(|i| i64::try_from(i).ok())
        };
        if int(1) != Some(1) {
            return Err(bad("unknown bundle version"));
        }
        let mut files = Vec::new();
        for f in get(5)
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no files"))?
        {
            match f.as_array().map(Vec::as_slice) {
                Some([Value::Text(cc), Value::Text(name), Value::Bytes(b)])
                    if name.len() <= 255
                        && !name.contains(['/', '\\'])
                        && !name.starts_with('.') =>
                {
                    let country: CountryCode = cc
                        .parse()
                        .map_err(|_| bad("a file's country is not a code"))?;
                    files.push(TrustFile {
                        country,
                        name: name.clone(),
                        bytes: b.clone(),
                    });
                }
                _ => return Err(bad("a file entry is malformed")),
            }
        }
        let mut authorities = Vec::new();
        for a in get(6)
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no authorities"))?
        {
            match a {
                Value::Bytes(b) => authorities.push(b.clone()),
                _ => return Err(bad("an authority is not a certificate")),
            }
        }
        Ok(Self {
            issued_at: int(2).ok_or_else(|| bad("no issued-at"))?,
            next_update: int(3).ok_or_else(|| bad("no next-update"))?,
            issuer_country: match get(4) {
                Some(Value::Text(t)) if t.len() == 2 => t.clone(),
                _ => return Err(bad("no issuer country")),
            },
            files,
            authorities,
        })
    }

    /// Signs the bundle (a tagged COSE_Sign1, `application/cose`).
    pub fn sign(&self, signer: &dyn Signer, chain: &[Vec<u8>]) -> Result<Vec<u8>, BundleError> {
        Ok(cose::sign1(&self.to_cbor()?, signer, chain)?)
    }

    /// Checks a bundle's signature, and that its signer chains to the anchors of the
    /// issuer's country in `trust` (the checkpoint's own trust directory) at `at_unix`.
    pub fn open(
        bytes: &[u8],
        trust: &TrustList,
        at_unix: i64,
    ) -> Result<(Self, Summary), BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::Oversize);
        }
        let (sign1, alg, kid, chain) =
            cose::parse(bytes, 4).map_err(|e| BundleError::Malformed(e.to_string()))?;
        let bundle = Self::from_cbor(sign1.payload.as_deref().unwrap_or_default())?;
        let leaf = chain
            .first()
            .ok_or_else(|| BundleError::Malformed("no signer certificate".into()))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf);
        if digest.as_ref().get(..8) != Some(kid.as_slice()) {
            return Err(BundleError::BadSignature(
                "kid names another certificate".into(),
            ));
        }
        cose::check_signature(&sign1, alg, leaf).map_err(BundleError::BadSignature)?;
        let country: CountryCode = bundle
            .issuer_country
            .parse()
            .map_err(|_| BundleError::Malformed("issuer country".into()))?;
        let intermediates: Vec<&[u8]> = chain.iter().skip(1).map(Vec::as_slice).collect();
        let mut req = PathRequest::new(country, leaf, u64::try_from(at_unix).unwrap_or(0));
        req.intermediates_der = &intermediates;
        let signer = trust
            .validate_signer(&req)
            .map_err(|e| BundleError::Untrusted(e.to_string()))?
            .signer;
        let mut countries: Vec<String> =
            bundle.files.iter().map(|f| f.country.to_string()).collect();
        countries.dedup();
        let summary = Summary {
            version: bundle.issued_at,
            issued_at: bundle.issued_at,
            next_update: bundle.next_update,
            issuer_country: bundle.issuer_country.clone(),
            countries,
            files: bundle.files.len(),
            authorities: bundle.authorities.len(),
            signer,
        };
        Ok((bundle, summary))
    }

    /// The bundle's trust list (anchors and CRLs).
    pub fn trust_list(&self) -> Result<TrustList, BundleError> {
        TrustList::from_files(self.files.clone()).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    /// True when `at_unix` is past the bundle's next update.
    pub fn is_stale(&self, at_unix: i64) -> bool {
        at_unix > self.next_update
    }
}
