//! The pure part of each stage: bytes in, an envelope out. No I/O, no clock
//! (times are arguments), so the decisions are testable and deterministic;
//! the workers around it only move bytes and record.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tamga_dsig::{CryptoError, SignError, Signer};
use tamga_policy::{verify_document, Policy, Reason, VerifyRequest};
use tamga_receipt::{decide, AuthorityKey, DecideError, Decision, Verdict};
use tamga_trust::{CountryCode, TrustList};

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// SHA-256, lower-case hex.
pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b))
}

/// A message that can never be processed, whatever the retries: it goes to
/// the dead-letter queue with an audit event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("poison message: {0}")]
pub struct Poison(pub String);

/// Why the engine could not produce an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The message's fault: it can never be processed.
    #[error(transparent)]
    Poison(#[from] Poison),
    /// The authority's key did not sign (token removed, HSM daemon
    /// restarting, session lost, or a signature that failed its own
    /// self-check): not the message's fault, and waiting may fix it.
    #[error("the authority's signing key is unavailable: {0}")]
    KeyUnavailable(String),
}

/// Sorts a signing error: a key that did not sign is not the document's
/// fault; everything else about the document is.
fn signing_failure(what: &str, e: SignError) -> EngineError {
    match e {
        SignError::Crypto(CryptoError::Signing(why)) => {
            EngineError::KeyUnavailable(format!("{what}: {why}"))
        }
        SignError::SelfCheck(why) => {
            EngineError::KeyUnavailable(format!("{what}: self-check of our signature: {why}"))
        }
        other => EngineError::Poison(Poison(format!("{what}: {other}"))),
    }
}

/// A test hook run on every document before verification (fault tests inject
/// panics through it). `None` in production.
pub type FaultHook = std::sync::Arc<dyn Fn(&[u8]) + Send + Sync>;

/// What the verifier hands to the countersigner (and stores, to re-emit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub id: String,
    pub message_id: Option<String>,
    /// What every outbound and rejected message carries as correlation_id.
    pub correlation_id: String,
    pub origin: String,
    pub destination: String,
    pub received_at_ms: i64,
    pub verified_at_ms: i64,
    pub document_sha256: String,
    /// The submitted bytes, base64, for the next stage; empty from
    /// [`Engine::verify_and_decide`], which keeps the bytes in hand.
    pub document: String,
    /// What verification concluded, typed from the engine to the receipt.
    pub verdict: Verdict,
}

impl Verified {
    pub fn passed(&self) -> bool {
        self.verdict.passed()
    }
    pub fn sub_indication(&self) -> Option<&'static str> {
        self.verdict.sub_indication.map(|s| s.as_str())
    }
    pub fn reason(&self) -> Option<&str> {
        self.verdict.reason.as_deref()
    }
    pub fn lrn(&self) -> Option<&str> {
        self.verdict.lrn.as_deref()
    }
}

/// What the countersigner hands to the forwarder (and stores, to re-emit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decided {
    pub id: String,
    pub correlation_id: String,
    pub origin: String,
    pub destination: String,
    pub received_at_ms: i64,
    pub decided_at_ms: i64,
    pub document_sha256: String,
    pub lrn: Option<String>,
    pub decision: Decision,
    pub sub_indication: Option<String>,
    pub reason: Option<String>,
    /// The countersigned document (accepted only), base64.
    pub countersigned: Option<String>,
    /// The signed receipt, base64.
    pub receipt: String,
}

impl Decided {
    pub fn countersigned_bytes(&self) -> Result<Option<Vec<u8>>, Poison> {
        self.countersigned
            .as_ref()
            .map(|c| {
                b64()
                    .decode(c)
                    .map_err(|e| Poison(format!("countersigned document: {e}")))
            })
            .transpose()
    }
    pub fn receipt_bytes(&self) -> Result<Vec<u8>, Poison> {
        b64()
            .decode(&self.receipt)
            .map_err(|e| Poison(format!("receipt: {e}")))
    }
}

/// A customs authority this site countersigns for.
pub struct Authority {
    pub signer: Box<dyn Signer + Send + Sync>,
    pub certificates: Vec<Vec<u8>>,
    pub info: tamga_receipt::Authority,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("country", &self.info.country)
            .finish_non_exhaustive()
    }
}

/// The trust list in force; replaced whole on reload, so a verification
/// always sees one consistent list (the one current when it started).
#[derive(Debug)]
pub struct SharedTrust(std::sync::RwLock<std::sync::Arc<TrustList>>);

impl SharedTrust {
    pub fn new(trust: TrustList) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(trust)))
    }

    /// The list in force now.
    pub fn current(&self) -> std::sync::Arc<TrustList> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `trust` in force for every verification that starts from now on.
    pub fn replace(&self, trust: TrustList) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(trust);
    }
}

/// Everything the stages decide with.
pub struct Engine {
    pub trust: SharedTrust,
    pub policy: Policy,
    /// By destination country (upper case).
    pub authorities: BTreeMap<String, Authority>,
    /// See [`FaultHook`].
    pub fault_hook: Option<FaultHook>,
    /// `[trust.ocsp] fetch = true`: responses for the signer's path are
    /// fetched (and cached) before verification.
    pub ocsp: Option<std::sync::Arc<crate::ocsp_fetch::OcspFetcher>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.policy)
            .field("authorities", &self.authorities)
            .field("fault_hook", &self.fault_hook.is_some())
            .finish_non_exhaustive()
    }
}

/// `kz.az` → (`KZ`, `AZ`).
pub fn parse_route(routing_key: &str) -> Result<(CountryCode, CountryCode), Poison> {
    let (from, to) = routing_key
        .split_once('.')
        .ok_or_else(|| Poison(format!("routing key {routing_key:?} is not <from>.<to>")))?;
    let cc = |s: &str| {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_lowercase()) {
            s.parse::<CountryCode>()
                .map_err(|_| Poison(format!("{s:?} is not a country code")))
        } else {
            Err(Poison(format!(
                "routing key {routing_key:?}: {s:?} is not a lower-case ISO 3166 alpha-2 code"
            )))
        }
    };
    Ok((cc(from)?, cc(to)?))
}

impl Engine {
    /// Stage 1: verify the submitted bytes for the route they came on.
    pub fn verify(
        &self,
        body: &[u8],
        routing_key: &str,
        message_id: Option<&str>,
        received_at_ms: i64,
        now_ms: i64,
    ) -> Result<Verified, Poison> {
        let mut v = self.assess(body, routing_key, message_id, received_at_ms, now_ms)?;
        v.document = b64().encode(body);
        Ok(v)
    }

    /// Both stages at once (the fused hop): the document goes from
    /// verification to countersigning as bytes, never through base64.
    pub fn verify_and_decide(
        &self,
        body: &[u8],
        routing_key: &str,
        message_id: Option<&str>,
        received_at_ms: i64,
        now_ms: i64,
    ) -> Result<(Verified, Decided), EngineError> {
        let v = self.assess(body, routing_key, message_id, received_at_ms, now_ms)?;
        let decided = self.decide_document(&v, body, now_ms)?;
        Ok((v, decided))
    }

    /// The verification, without the document in the envelope.
    fn assess(
        &self,
        body: &[u8],
        routing_key: &str,
        message_id: Option<&str>,
        received_at_ms: i64,
        now_ms: i64,
    ) -> Result<Verified, Poison> {
        let (origin, destination) = parse_route(routing_key)?;
        if let Some(hook) = &self.fault_hook {
            hook(body);
        }
        let digest = sha256_hex(body);
        let trust = self.trust.current();
        let request = VerifyRequest {
            bytes: body,
            trust: &trust,
            origin,
            at_unix: now_ms.div_euclid(1000),
            policy: &self.policy,
            resolver: &tamga_dsig::NoExternal,
            hmac_secret: None,
        };
        let report = match &self.ocsp {
            None => verify_document(&request),
            Some(fetcher) => {
                let fetched = fetcher.fetch(
                    &tamga_policy::ocsp_targets(&request),
                    u64::try_from(request.at_unix).unwrap_or(0),
                );
                for why in &fetched.failures {
                    tracing::warn!(origin = %origin, "OCSP: {why}");
                }
                let responses: Vec<&[u8]> = fetched.responses.iter().map(Vec::as_slice).collect();
                tamga_policy::verify_document_fetched(
                    &request,
                    tamga_policy::Strategy::Auto,
                    &responses,
                )
                .0
            }
        };
        let id = message_id.map_or_else(|| digest.clone(), str::to_string);
        Ok(Verified {
            correlation_id: id.clone(),
            id,
            message_id: message_id.map(str::to_string),
            origin: origin.to_string(),
            destination: destination.to_string(),
            received_at_ms,
            verified_at_ms: now_ms,
            document_sha256: digest,
            document: String::new(),
            verdict: Verdict::from_report(&report).map_err(|e| Poison(e.to_string()))?,
        })
    }

    /// Stage 2: the authority for the destination countersigns and issues the
    /// receipt; a rejection (or a destination this site does not serve) gets
    /// a signed rejection receipt.
    pub fn decide(&self, v: &Verified, now_ms: i64) -> Result<Decided, EngineError> {
        let document = b64()
            .decode(&v.document)
            .map_err(|e| Poison(format!("document: {e}")))?;
        self.decide_document(v, &document, now_ms)
    }

    /// [`Engine::decide`] with the submitted bytes at hand.
    fn decide_document(
        &self,
        v: &Verified,
        document: &[u8],
        now_ms: i64,
    ) -> Result<Decided, EngineError> {
        let served = self.authorities.get(&v.destination);
        // A destination without an authority here is refused, signed by the
        // site's first authority so the broker still gets a signed reason.
        let authority = served
            .or_else(|| self.authorities.values().next())
            .ok_or_else(|| Poison("no authority is configured".into()))?;
        let refused = served.is_none().then(|| Reason::DestinationNotServed {
            destination: v.destination.clone(),
        });
        let decided = decide(
            &v.verdict,
            document,
            &AuthorityKey {
                signer: authority.signer.as_ref(),
                certificates: &authority.certificates,
                info: &authority.info,
            },
            refused.as_ref(),
            now_ms.div_euclid(1000),
            self.policy.parse_limits(),
        )
        .map_err(|e| match e {
            DecideError::Countersign(e) => signing_failure("countersigning", e),
            DecideError::Receipt(tamga_receipt::ReceiptError::Sign(e)) => {
                signing_failure("receipt", e)
            }
            other => EngineError::Poison(Poison(other.to_string())),
        })?;
        let content = decided.content;
        Ok(Decided {
            id: v.id.clone(),
            correlation_id: v.correlation_id.clone(),
            origin: v.origin.clone(),
            destination: v.destination.clone(),
            received_at_ms: v.received_at_ms,
            decided_at_ms: now_ms,
            document_sha256: v.document_sha256.clone(),
            lrn: v.verdict.lrn.clone(),
            decision: content.decision,
            sub_indication: content.sub_indication.clone(),
            reason: content.reason.clone(),
            countersigned: decided.countersigned.map(|c| b64().encode(c)),
            receipt: b64().encode(decided.receipt),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let (f, t) = parse_route("kz.az").unwrap();
        assert_eq!((f.as_str(), t.as_str()), ("KZ", "AZ"));
        for bad in ["kz", "KZ.AZ", "kz.az.tr", "kaz.az", "k1.az", "", "."] {
            assert!(parse_route(bad).is_err(), "{bad}");
        }
    }
}
