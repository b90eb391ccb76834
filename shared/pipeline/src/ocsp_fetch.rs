//! The OCSP fetcher at the edge: the only place Tamga asks a responder.
//!
//! For each certificate of the signer's path whose Authority Information
//! Access names an `http://` OCSP responder, the fetcher POSTs an OCSP
//! request (RFC 6960 appendix A.1) with a nonce, within a timeout, and
//! keeps answers in a cache keyed by CertID until their nextUpdate (or
//! 24 hours after thisUpdate without one), bounded in size. The pure engine
//! then judges the bytes exactly as it judges responses a signature
//! carries: a response the fetcher got is evidence, not a verdict.
//!
//! What the fetcher decides itself:
//! * a response whose nonce differs from the request's is dropped (a
//!   replay); one without a nonce is kept (many responders pre-produce
//!   answers and ignore nonces; its thisUpdate/nextUpdate still bound it);
//! * only responses that verify at fetch time are cached, so a bad answer
//!   is asked again next time;
//! * a responder that is down, slow or answers HTTP errors gives nothing:
//!   the policy then decides (`prefer-ocsp` falls back to CRLs; without
//!   CRLs the declaration is INDETERMINATE `ocsp_unavailable`).
//!
//! `https://` responder URLs are not fetched (OCSP is signed; RFC 6960
//! responders are plain HTTP); they count as unavailable.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use tamga_trust::ocsp::{
    build_request, cache_key, parse_response, response_nonce, verify_response, OcspCheck,
    MAX_RESPONSE_BYTES,
};
use tamga_trust::OcspTarget;

/// `[trust.ocsp]`: whether and how the site asks OCSP responders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcspConfig {
    /// Ask the responders named in certificates (off by default: a site
    /// must choose to make outbound requests per declaration).
    pub fetch: bool,
    /// Per responder exchange (connect, send, receive), milliseconds.
    pub timeout_ms: u64,
    /// Cached answers kept at most (oldest dropped first).
    pub cache_entries: usize,
}

impl Default for OcspConfig {
    fn default() -> Self {
        Self {
            fetch: false,
            timeout_ms: 5_000,
            cache_entries: 4_096,
        }
    }
}

/// What one round of fetching produced.
#[derive(Debug, Default)]
pub struct Fetched {
    /// DER OCSPResponses for the engine.
    pub responses: Vec<Vec<u8>>,
    /// One line per certificate that got no answer (URL and why).
    pub failures: Vec<String>,
    /// How many came from the cache.
    pub cache_hits: usize,
}

struct Entry {
    der: Vec<u8>,
    fresh_until: u64,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    order: VecDeque<String>,
}

/// The fetcher and its cache; shared by the workers.
pub struct OcspFetcher {
    timeout: Duration,
    capacity: usize,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for OcspFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspFetcher")
            .field("timeout", &self.timeout)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl OcspFetcher {
    /// A fetcher with this timeout per exchange and cache size.
    pub fn new(cfg: &OcspConfig) -> Self {
        Self {
            timeout: Duration::from_millis(cfg.timeout_ms.max(1)),
            capacity: cfg.cache_entries.max(1),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Number of cached answers.
    pub fn cached(&self) -> usize {
        self.cache.lock().map_or(0, |c| c.entries.len())
    }

    /// Answers for every target with an OCSP URL, from the cache when
    /// still fresh at `now_unix`, else from its responder. Blocking: call
    /// from a blocking context.
    pub fn fetch(&self, targets: &[OcspTarget], now_unix: u64) -> Fetched {
        let mut out = Fetched::default();
        for t in targets {
            if t.urls.is_empty() {
                continue;
            }
            let key = cache_key(&t.cert_der, &t.issuer_der).ok();
            if let Some(der) = key.as_deref().and_then(|k| self.lookup(k, now_unix)) {
                out.responses.push(der);
                out.cache_hits += 1;
                continue;
            }
            match self.ask(t, now_unix) {
                Ok((der, fresh_until)) => {
                    if let (Some(k), Some(until)) = (key, fresh_until) {
                        self.store(k, der.clone(), until);
                    }
                    out.responses.push(der);
                }
                Err(why) => out
                    .failures
                    .push(format!("certificate {}: {why}", t.serial_hex)),
            }
        }
        out
    }

    fn lookup(&self, key: &str, now_unix: u64) -> Option<Vec<u8>> {
        let cache = self.cache.lock().ok()?;
        cache
            .entries
            .get(key)
            .filter(|e| now_unix <= e.fresh_until)
            .map(|e| e.der.clone())
    }

    fn store(&self, key: String, der: Vec<u8>, fresh_until: u64) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache
            .entries
            .insert(key.clone(), Entry { der, fresh_until })
            .is_none()
        {
            cache.order.push_back(key);
        }
        while cache.entries.len() > self.capacity {
            match cache.order.pop_front() {
                Some(old) => {
                    cache.entries.remove(&old);
                }
                None => break,
            }
        }
    }

    /// One target's responders in turn: the first answer that is not a
    /// replay wins. Also says until when it may be cached (only when it
    /// verifies now).
    fn ask(&self, t: &OcspTarget, now_unix: u64) -> Result<(Vec<u8>, Option<u64>), String> {
        let mut nonce = [0u8; 16];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "no randomness for the nonce".to_string())?;
        let request =
            build_request(&t.cert_der, &t.issuer_der, Some(&nonce)).map_err(|e| e.to_string())?;
        let mut last = String::from("no http:// OCSP URL");
        for url in &t.urls {
            let der = match crate::http_fetch::request(
                url,
                Some((&request, "application/ocsp-request")),
                "application/ocsp-response",
                self.timeout,
                MAX_RESPONSE_BYTES,
            ) {
                Ok(der) => der,
                Err(e) => {
                    last = format!("{url}: {e}");
                    continue;
                }
            };
            let carried = parse_response(&der).ok().and_then(|b| response_nonce(&b));
            if carried.as_ref().is_some_and(|n| n.as_slice() != nonce) {
                last = format!("{url}: the response carries another request's nonce");
                continue;
            }
            let fresh_until = verify_response(&OcspCheck {
                response_der: &der,
                cert_der: &t.cert_der,
                issuer_der: &t.issuer_der,
                at_unix: now_unix,
                expected_nonce: carried.as_ref().map(|_| &nonce[..]),
            })
            .ok()
            .map(|ev| ev.fresh_until());
            return Ok((der, fresh_until));
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys() {
        let t: crate::config::TrustConfig =
            toml::from_str("dir = \"t\"\n[ocsp]\nfetch = true\ntimeout_ms = 250\n").unwrap();
        assert!(t.ocsp.fetch);
        assert_eq!(t.ocsp.timeout_ms, 250);
        assert_eq!(t.ocsp.cache_entries, OcspConfig::default().cache_entries);
        let t: crate::config::TrustConfig = toml::from_str("dir = \"t\"\n").unwrap();
        assert!(!t.ocsp.fetch, "off unless asked");
        assert!(toml::from_str::<crate::config::TrustConfig>("[ocsp]\nfetsh = true\n").is_err());
    }

    #[test]
    fn cache_is_bounded() {
        let f = OcspFetcher::new(&OcspConfig {
            cache_entries: 2,
            ..OcspConfig::default()
        });
        for i in 0..5 {
            f.store(format!("k{i}"), vec![i], 100);
        }
        assert_eq!(f.cached(), 2);
        assert_eq!(f.lookup("k4", 50), Some(vec![4]));
        assert_eq!(f.lookup("k0", 50), None);
        assert_eq!(f.lookup("k4", 101), None, "stale after fresh_until");
    }
}
