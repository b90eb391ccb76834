//! The pure part of each stage: bytes in, an envelope out. No I/O, no clock
//! (times are arguments), so the decisions are testable and deterministic;
//! the workers around it only move bytes and record.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tamga_dsig::{CryptoError, SignError, Signer};
use tamga_policy::{verify_document, verify_document_keeping, Policy, Reason, VerifyRequest};
use tamga_receipt::{decide_from, AuthorityKey, DecideError, Decision, Source, Verdict};
use tamga_trust::{CountryCode, TrustList};
use tamga_xml::Parsed;

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
///
/// Stored and passed between stages in a binary frame ([`Decided::encode`]):
/// the counter-signed document and the receipt travel as raw bytes, never
/// base64 inside JSON (that round trip cost more CPU per declaration than
/// the XML parse). The counter-signed document is kept once, in this row:
/// it is what a redelivery re-emits and what the gateway serves; the outbound
/// copy in the broker is consumed and gone.
#[derive(Debug, Clone, PartialEq)]
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
    /// The signed receipt's id (`rcpt-…`); empty in decisions recorded before it was kept.
    pub receipt_id: String,
    /// The counter-signed document (accepted only).
    pub countersigned: Option<Vec<u8>>,
    /// The signed receipt.
    pub receipt: Vec<u8>,
}

/// The fields of [`Decided`] other than the two documents, as JSON in the
/// frame (small, and readable in a database dump).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DecidedMeta {
    id: String,
    correlation_id: String,
    origin: String,
    destination: String,
    received_at_ms: i64,
    decided_at_ms: i64,
    document_sha256: String,
    lrn: Option<String>,
    decision: Decision,
    sub_indication: Option<String>,
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    receipt_id: String,
}

/// The JSON form stored before the binary frame (base64 documents): still
/// read, so decisions recorded by an earlier version re-emit unchanged.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyDecided {
    #[serde(flatten)]
    meta: DecidedMeta,
    countersigned: Option<String>,
    receipt: String,
}

/// `TMGD`, version 1.
const DECIDED_MAGIC: &[u8; 5] = b"TMGD\x01";

fn put_chunk(out: &mut Vec<u8>, b: &[u8]) {
    // Invariant: documents are bounded by the policy's input limit, far
    // below 4 GiB.
    let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

fn take_chunk<'a>(b: &mut &'a [u8]) -> Result<&'a [u8], Poison> {
    let bad = || Poison("a decided frame is truncated".into());
    let (len, rest) = b.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| bad())?;
    if rest.len() < len {
        return Err(bad());
    }
    let (chunk, rest) = rest.split_at(len);
    *b = rest;
    Ok(chunk)
}

/// The stage-result key under which a receipt id names its declaration (`/check` looks a
/// receipt id up when the officer types it).
pub fn receipt_key(receipt_id: &str) -> String {
    format!("receipt:{receipt_id}")
}

/// The stage of [`receipt_key`] rows (result: the declaration id).
pub const RECEIPT_STAGE: &str = "receipt";

impl Decided {
    pub fn accepted(&self) -> bool {
        self.decision == Decision::Accepted
    }

    pub fn countersigned_bytes(&self) -> Result<Option<Vec<u8>>, Poison> {
        Ok(self.countersigned.clone())
    }

    pub fn receipt_bytes(&self) -> Result<Vec<u8>, Poison> {
        Ok(self.receipt.clone())
    }

    /// The binary frame: magic, then length-prefixed metadata JSON, receipt
    /// and (when accepted) counter-signed document.
    pub fn encode(&self) -> Vec<u8> {
        let meta = DecidedMeta {
            id: self.id.clone(),
            correlation_id: self.correlation_id.clone(),
            origin: self.origin.clone(),
            destination: self.destination.clone(),
            received_at_ms: self.received_at_ms,
            decided_at_ms: self.decided_at_ms,
            document_sha256: self.document_sha256.clone(),
            lrn: self.lrn.clone(),
            decision: self.decision,
            sub_indication: self.sub_indication.clone(),
            reason: self.reason.clone(),
            receipt_id: self.receipt_id.clone(),
        };
        // Invariant: DecidedMeta has only strings, integers and a unit enum,
        // which serde_json always serialises.
        let meta = serde_json::to_vec(&meta).unwrap_or_default();
        let cs = self.countersigned.as_deref();
        let mut out = Vec::with_capacity(
            DECIDED_MAGIC.len() + 13 + meta.len() + self.receipt.len() + cs.map_or(0, <[u8]>::len),
        );
        out.extend_from_slice(DECIDED_MAGIC);
        put_chunk(&mut out, &meta);
        put_chunk(&mut out, &self.receipt);
        match cs {
            Some(doc) => {
                out.push(1);
                put_chunk(&mut out, doc);
            }
            None => out.push(0),
        }
        out
    }

    /// Reads [`Decided::encode`]'s frame, or the JSON form of earlier versions.
    pub fn decode(bytes: &[u8]) -> Result<Decided, Poison> {
        let with = |meta: DecidedMeta, countersigned, receipt| Decided {
            id: meta.id,
            correlation_id: meta.correlation_id,
            origin: meta.origin,
            destination: meta.destination,
            received_at_ms: meta.received_at_ms,
            decided_at_ms: meta.decided_at_ms,
            document_sha256: meta.document_sha256,
            lrn: meta.lrn,
            decision: meta.decision,
            sub_indication: meta.sub_indication,
            reason: meta.reason,
            receipt_id: meta.receipt_id,
            countersigned,
            receipt,
        };
        let Some(mut rest) = bytes.strip_prefix(DECIDED_MAGIC.as_slice()) else {
            let legacy: LegacyDecided = serde_json::from_slice(bytes)
                .map_err(|e| Poison(format!("not a decided envelope: {e}")))?;
            let countersigned = legacy
                .countersigned
                .map(|c| b64().decode(c))
                .transpose()
                .map_err(|e| Poison(format!("countersigned document: {e}")))?;
            let receipt = b64()
                .decode(legacy.receipt)
                .map_err(|e| Poison(format!("receipt: {e}")))?;
            return Ok(with(legacy.meta, countersigned, receipt));
        };
        let meta: DecidedMeta = serde_json::from_slice(take_chunk(&mut rest)?)
            .map_err(|e| Poison(format!("decided metadata: {e}")))?;
        let receipt = take_chunk(&mut rest)?.to_vec();
        let countersigned = match rest.split_first() {
            Some((0, [])) => None,
            Some((1, tail)) => {
                rest = tail;
                let doc = take_chunk(&mut rest)?.to_vec();
                if !rest.is_empty() {
                    return Err(Poison("trailing bytes after a decided frame".into()));
                }
                Some(doc)
            }
            _ => return Err(Poison("a decided frame is malformed".into())),
        };
        Ok(with(meta, countersigned, receipt))
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
        let (mut v, _) = self.assess(
            body,
            &self.trust.current(),
            routing_key,
            message_id,
            received_at_ms,
            now_ms,
            false,
        )?;
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
        // The tree verification built is the one countersigning uses: parsed once.
        let trust = self.trust.current();
        let (v, parsed) = self.assess(
            body,
            &trust,
            routing_key,
            message_id,
            received_at_ms,
            now_ms,
            true,
        )?;
        let decided = match &parsed {
            Some(p) => self.decide_source(&v, Source::Parsed(p), now_ms)?,
            None => self.decide_document(&v, body, now_ms)?,
        };
        Ok((v, decided))
    }

    /// The verification, without the document in the envelope; with `keep`, also the
    /// parsed document when it passed on the tree route.
    #[allow(clippy::too_many_arguments)]
    fn assess<'b>(
        &'b self,
        body: &'b [u8],
        trust: &'b TrustList,
        routing_key: &str,
        message_id: Option<&str>,
        received_at_ms: i64,
        now_ms: i64,
        keep: bool,
    ) -> Result<(Verified, Option<Parsed<'b>>), Poison> {
        let (origin, destination) = parse_route(routing_key)?;
        if let Some(hook) = &self.fault_hook {
            hook(body);
        }
        let request = VerifyRequest {
            bytes: body,
            trust,
            origin,
            at_unix: now_ms.div_euclid(1000),
            policy: &self.policy,
            resolver: &tamga_dsig::NoExternal,
            hmac_secret: None,
        };
        let (report, parsed) = match &self.ocsp {
            None if keep => {
                let (report, _, parsed) =
                    verify_document_keeping(&request, tamga_policy::Strategy::Auto, &[]);
                (report, parsed)
            }
            None => (verify_document(&request), None),
            Some(fetcher) => {
                let fetched = fetcher.fetch(
                    &tamga_policy::ocsp_targets(&request),
                    u64::try_from(request.at_unix).unwrap_or(0),
                );
                for why in &fetched.failures {
                    tracing::warn!(origin = %origin, "OCSP: {why}");
                }
                let responses: Vec<&[u8]> = fetched.responses.iter().map(Vec::as_slice).collect();
                let auto = tamga_policy::Strategy::Auto;
                if keep {
                    let (report, _, parsed) = verify_document_keeping(&request, auto, &responses);
                    (report, parsed)
                } else {
                    (
                        tamga_policy::verify_document_fetched(&request, auto, &responses).0,
                        None,
                    )
                }
            }
        };
        // The report's digest of the exact bytes: hashing them again cost as much as
        // verifying the signature's reference.
        let digest = report.document_sha256.clone();
        let id = message_id.map_or_else(|| digest.clone(), str::to_string);
        let verified = Verified {
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
        };
        Ok((verified, parsed))
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
        self.decide_source(v, Source::Bytes(document), now_ms)
    }

    fn decide_source(
        &self,
        v: &Verified,
        document: Source<'_, '_>,
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
        let key = AuthorityKey {
            signer: authority.signer.as_ref(),
            certificates: &authority.certificates,
            info: &authority.info,
        };
        let (at, limits) = (now_ms.div_euclid(1000), self.policy.parse_limits());
        let decided = decide_from(&v.verdict, document, &key, refused.as_ref(), at, limits)
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
            receipt_id: content.receipt_id.clone(),
            countersigned: decided.countersigned,
            receipt: decided.receipt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_decided(countersigned: Option<Vec<u8>>) -> Decided {
        Decided {
            id: "id-1".into(),
            correlation_id: "id-1".into(),
            origin: "KZ".into(),
            destination: "AZ".into(),
            received_at_ms: 1,
            decided_at_ms: 2,
            document_sha256: "ab".repeat(32),
            lrn: Some("LRN-1".into()),
            decision: if countersigned.is_some() {
                Decision::Accepted
            } else {
                Decision::Rejected
            },
            sub_indication: None,
            reason: None,
            receipt_id: "rcpt-1".into(),
            countersigned,
            receipt: b"<Receipt/>".to_vec(),
        }
    }

    #[test]
    fn decided_frames_round_trip_and_refuse_damage() {
        for d in [
            sample_decided(Some(b"<doc>\x00\xff</doc>".to_vec())),
            sample_decided(None),
        ] {
            let frame = d.encode();
            assert_eq!(Decided::decode(&frame).unwrap(), d);
            for cut in 0..frame.len() {
                assert!(Decided::decode(&frame[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = frame.clone();
            longer.push(0);
            assert!(Decided::decode(&longer).is_err());
        }
    }

    #[test]
    fn decided_reads_the_earlier_json_form() {
        let legacy = serde_json::json!({
            "id": "id-1", "correlationId": "id-1", "origin": "KZ", "destination": "AZ",
            "receivedAtMs": 1, "decidedAtMs": 2, "documentSha256": "ab".repeat(32),
            "lrn": "LRN-1", "decision": "accepted", "subIndication": null, "reason": null,
            "countersigned": b64().encode(b"<doc>\x00\xff</doc>"),
            "receipt": b64().encode(b"<Receipt/>"),
        });
        let d = Decided::decode(&serde_json::to_vec(&legacy).unwrap()).unwrap();
        // Recorded before the receipt id was kept: none.
        let mut expected = sample_decided(Some(b"<doc>\x00\xff</doc>".to_vec()));
        expected.receipt_id.clear();
        assert_eq!(d, expected);
    }

    #[test]
    fn routes() {
        let (f, t) = parse_route("kz.az").unwrap();
        assert_eq!((f.as_str(), t.as_str()), ("KZ", "AZ"));
        for bad in ["kz", "KZ.AZ", "kz.az.tr", "kaz.az", "k1.az", "", "."] {
            assert!(parse_route(bad).is_err(), "{bad}");
        }
    }
}
