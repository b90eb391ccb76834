//! Push notifications: each broker may have a callback URL (`tamga gateway callback set`)
//! that receives the same JSON as `GET /v1/notifications` — `{"items": […], "next": "…"}`,
//! oldest first, up to [`BATCH`] at a time — as `POST` with `Content-Type:
//! application/json` and two headers:
//!
//! ```text
//! X-Tamga-Timestamp: 1767225600                 (Unix seconds of this attempt)
//! X-Tamga-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! The secret is the whole string `callback set` printed. A receiver recomputes the MAC
//! over the timestamp, a dot and the raw body, compares in constant time, and refuses a
//! timestamp more than a few minutes old (a replayed request). Any 2xx answer delivers
//! the batch; anything else (or no answer within `callback_timeout_ms`) is retried with
//! the pipeline's [`Backoff`] (from `callback_retry_first_ms` doubling to
//! `callback_retry_max_ms`), re-signed with a new timestamp.
//!
//! Delivery is at least once: the cursor (the last delivered `seq`) is stored after the
//! 2xx, so a crash in between sends the batch again. Each item's `seq` is the
//! notification's stable id: receivers de-duplicate on it. The deliverer runs beside the
//! pipeline and the API, reading the notifications the notifier recorded: a slow or dead
//! callback never holds a declaration or a submission up; it shows in
//! `GET /v1/callback` and in the `tamga_gateway_callback_*` metrics.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Uri};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tamga_pipeline::Backoff;
use tamga_store::{CallbackAttempt, CallbackState, Notification, StoreError};

use crate::{Gateway, GatewayError};

/// Header with the Unix time (seconds) the MAC covers.
pub const TIMESTAMP_HEADER: &str = "x-tamga-timestamp";
/// Header with `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-tamga-signature";
/// Prefix of every callback secret.
pub const SECRET_PREFIX: &str = "tmgcb_";
/// Most notifications in one POST.
pub const BATCH: usize = 50;

/// How the deliverer behaves (`[gateway] callback_*`).
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// Longest one POST may take (connect, TLS, answer).
    pub timeout: Duration,
    /// First wait after a failure, doubling up to `retry_max`.
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// How often the deliverer looks for new callbacks and notifications when not woken.
    pub poll: Duration,
    /// Extra roots for `https://` callbacks (besides the system's).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retry_first: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            poll: Duration::from_millis(500),
            extra_roots: Vec::new(),
        }
    }
}

impl CallbackSettings {
    pub fn from_config(cfg: &tamga_pipeline::Config) -> Self {
        let g = &cfg.gateway;
        Self {
            timeout: Duration::from_millis(g.callback_timeout_ms.max(1)),
            retry_first: Duration::from_millis(g.callback_retry_first_ms.max(1)),
            retry_max: Duration::from_millis(
                g.callback_retry_max_ms
                    .max(g.callback_retry_first_ms.max(1)),
            ),
            ..Self::default()
        }
    }
}

/// A new random secret.
pub fn generate_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system RNG failed".to_string())?;
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `"<timestamp>.<body>"`).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// What a receiver does: true when `header` is the signature of `body` at `timestamp`
/// (constant-time comparison of the MACs).
pub fn verify_signature(secret: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(mac) = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let mut msg = timestamp.to_string().into_bytes();
    msg.push(b'.');
    msg.extend_from_slice(body);
    aws_lc_rs::hmac::verify(&key, &msg, &mac).is_ok()
}

/// Checks a callback URL: `http` or `https`, a host, at most 2048 characters.
pub fn check_url(url: &str) -> Result<Uri, GatewayError> {
    let bad = |why: &str| GatewayError::Usage(format!("--url {url:?}: {why}"));
    if url.len() > 2048 {
        return Err(bad("longer than 2048 characters"));
    }
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("the scheme must be https (or http)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("credentials in the URL are not supported"));
    }
    Ok(uri)
}

/// The JSON of notifications, as `GET /v1/notifications` answers.
pub fn notifications_json(items: &[Notification], after: i64) -> Value {
    let next = items.last().map_or(after, |n| n.seq);
    let items: Vec<Value> = items
        .iter()
        .map(|n| {
            json!({
                "seq": n.seq,
                "id": n.id,
                "status": n.status,
                "at": crate::api::rfc3339(n.at_ms),
                "links": { "self": format!("/v1/declarations/{}", n.id) },
            })
        })
        .collect();
    json!({ "items": items, "next": next.to_string() })
}

/// The callback's state as `GET /v1/callback` shows it (never the secret).
pub fn state_json(s: Option<&CallbackState>) -> Value {
    let Some(s) = s.filter(|s| s.url.is_some()) else {
        return json!({ "configured": false });
    };
    let last = s.last_attempt.as_ref().map(|a| {
        json!({
            "at": crate::api::rfc3339(a.at_ms),
            "delivered": a.delivered,
            "httpStatus": a.http_status,
            "error": a.error,
            "firstSeq": a.first_seq,
            "lastSeq": a.last_seq,
        })
    });
    json!({
        "configured": true,
        "url": s.url,
        "since": crate::api::rfc3339(s.created_at_ms),
        "deliveredThrough": s.cursor.to_string(),
        "pending": s.pending,
        "lastDeliveredAt": s.last_delivered_at_ms.map(crate::api::rfc3339),
        "failuresSinceLastDelivery": s.failures_since_delivery,
        "healthy": s.failures_since_delivery == 0,
        "lastAttempt": last,
    })
}

/// Sets `broker`'s callback to `url` with a new secret; returns the secret (shown once).
/// Replacing a callback in force carries its cursor over (what it had not delivered goes
/// to the new URL); a new one starts with the next notification.
pub async fn set_callback(
    store: &dyn tamga_store::GatewayStore,
    broker: &str,
    url: &str,
) -> Result<String, GatewayError> {
    crate::check_broker(broker)?;
    check_url(url)?;
    let secret = generate_secret().map_err(GatewayError::Usage)?;
    let carried = store
        .callback_state(broker)
        .await?
        .filter(|s| s.url.is_some())
        .map(|s| s.cursor);
    store
        .set_callback(
            broker,
            Some((url, &secret)),
            carried,
            tamga_pipeline::now_ms(),
        )
        .await?;
    Ok(secret)
}

/// Clears `broker`'s callback (pull notifications go on).
pub async fn clear_callback(
    store: &dyn tamga_store::GatewayStore,
    broker: &str,
) -> Result<(), GatewayError> {
    crate::check_broker(broker)?;
    store
        .set_callback(broker, None, None, tamga_pipeline::now_ms())
        .await?;
    Ok(())
}

/// Why a POST did not deliver.
#[derive(Debug)]
struct Failed {
    status: Option<u16>,
    error: String,
}

/// One POST of `body` to `uri` with the signature headers.
async fn post(
    uri: &Uri,
    body: Vec<u8>,
    secret: &str,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<u16, Failed> {
    let failed = |error: String| Failed {
        status: None,
        error,
    };
    let host = uri.host().unwrap_or_default().to_owned();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host_for_connect = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = tokio::net::TcpStream::connect((host_for_connect.as_str(), port))
        .await
        .map_err(|e| failed(format!("connect: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let timestamp = tamga_pipeline::now_ms() / 1000;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.as_str(), |a| a.as_str());
    let request = hyper::Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "tamga-gateway")
        .header(TIMESTAMP_HEADER, timestamp)
        .header(SIGNATURE_HEADER, signature(secret, timestamp, &body))
        .body(Full::new(axum::body::Bytes::from(body)))
        .map_err(|e| failed(format!("request: {e}")))?;
    let status = if https {
        let name = rustls::pki_types::ServerName::try_from(host_for_connect.clone())
            .map_err(|e| failed(format!("server name: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| failed(format!("TLS: {e}")))?;
        exchange(stream, request).await?
    } else {
        exchange(tcp, request).await?
    };
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(Failed {
            status: Some(status),
            error: format!("answered {status}"),
        })
    }
}

async fn exchange<S>(
    stream: S,
    request: hyper::Request<Full<axum::body::Bytes>>,
) -> Result<u16, Failed>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let failed = |error: String| Failed {
        status: None,
        error,
    };
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| failed(format!("HTTP: {e}")))?;
    let driver = tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| failed(format!("HTTP: {e}")));
    let result = match response {
        Ok(r) => {
            let status = r.status().as_u16();
            // Read (and drop) the answer so the exchange completes; its size is bounded
            // by the timeout around the whole POST.
            let _ = r.into_body().collect().await;
            Ok(status)
        }
        Err(e) => Err(e),
    };
    driver.abort();
    result
}

fn client_tls(extra: &[rustls::pki_types::CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    for c in extra {
        let _ = roots.add(c.clone());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth());
    match config {
        Ok(c) => Arc::new(c),
        // Invariant: the aws-lc-rs provider supports the safe default versions; this
        // arm only keeps the deliverer alive (https callbacks then fail, and show it).
        Err(e) => {
            tracing::error!(error = %e, "TLS client configuration");
            Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }
    }
}

impl Gateway {
    /// Delivers what is pending for one callback, one batch at a time, until nothing is
    /// pending or a POST fails. Returns the failure, if any.
    async fn deliver_pending(
        &self,
        cb: &CallbackState,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Option<String>, StoreError> {
        let (Some(url), Some(secret)) = (&cb.url, &cb.secret) else {
            return Ok(None);
        };
        let m = &self.metrics;
        let broker = cb.broker.as_str();
        let Ok(uri) = check_url(url) else {
            return Ok(Some("the stored URL is not usable".into()));
        };
        let mut cursor = cb.cursor;
        loop {
            let items = self.store.notifications(broker, cursor, BATCH).await?;
            let Some(last) = items.last().map(|n| n.seq) else {
                m.callback_pending.with_label_values(&[broker]).set(0);
                return Ok(None);
            };
            let first = items.first().map_or(last, |n| n.seq);
            let body = notifications_json(&items, cursor).to_string().into_bytes();
            let outcome =
                match tokio::time::timeout(self.callbacks.timeout, post(&uri, body, secret, tls))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(Failed {
                        status: None,
                        error: format!("no answer within {:?}", self.callbacks.timeout),
                    }),
                };
            let attempt = CallbackAttempt {
                first_seq: first,
                last_seq: last,
                at_ms: tamga_pipeline::now_ms(),
                delivered: outcome.is_ok(),
                http_status: match &outcome {
                    Ok(s) => Some(i32::from(*s)),
                    Err(f) => f.status.map(i32::from),
                },
                error: outcome.as_ref().err().map(|f| f.error.clone()),
            };
            // Recorded after the answer: a crash before this line sends the batch again
            // (at least once; receivers de-duplicate on `seq`).
            self.store
                .record_callback_attempt(cb.callback_seq, &attempt)
                .await?;
            match outcome {
                Ok(_) => {
                    m.callback_deliveries
                        .with_label_values(&[broker, "delivered"])
                        .inc();
                    m.callback_notifications
                        .with_label_values(&[broker])
                        .inc_by(items.len() as u64);
                    m.callback_consecutive_failures
                        .with_label_values(&[broker])
                        .set(0);
                    cursor = last;
                }
                Err(f) => {
                    m.callback_deliveries
                        .with_label_values(&[broker, "failed"])
                        .inc();
                    m.callback_failures.with_label_values(&[broker]).inc();
                    m.callback_consecutive_failures
                        .with_label_values(&[broker])
                        .inc();
                    tracing::warn!(broker, url = %url, error = %f.error, "callback not delivered; retrying later");
                    return Ok(Some(f.error));
                }
            }
        }
    }

    /// One broker's delivery loop: runs while `callback_seq` is the broker's callback in
    /// force; backs off after a failure.
    async fn run_one_callback(
        self: Arc<Self>,
        broker: String,
        callback_seq: i64,
        tls: Arc<rustls::ClientConfig>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut backoff = Backoff::new(self.callbacks.retry_first, self.callbacks.retry_max);
        loop {
            let wait = match self.store.callback_state(&broker).await {
                Ok(Some(cb)) if cb.callback_seq == callback_seq && cb.url.is_some() => {
                    self.metrics
                        .callback_pending
                        .with_label_values(&[&broker])
                        .set(cb.pending);
                    match self.deliver_pending(&cb, &tls).await {
                        Ok(None) => {
                            backoff.reset();
                            None
                        }
                        Ok(Some(_)) => Some(backoff.next_wait()),
                        Err(e) => {
                            tracing::warn!(broker, error = %e, "callback state unavailable; retrying");
                            Some(backoff.next_wait())
                        }
                    }
                }
                // Cleared or replaced: the supervisor starts the new one.
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(broker, error = %e, "callback state unavailable; retrying");
                    Some(backoff.next_wait())
                }
            };
            let nap = wait.unwrap_or(self.callbacks.poll);
            let woken = self.notified.notified();
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                // New notifications wake an idle loop at once; a failing one keeps its wait.
                _ = woken, if wait.is_none() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// The deliverer: one task per broker with a callback, started and stopped as
    /// callbacks are set and cleared, until `stop` turns true.
    pub async fn run_deliverer(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let tls = client_tls(&self.callbacks.extra_roots);
        let mut running: HashMap<String, (i64, tokio::task::JoinHandle<()>)> = HashMap::new();
        loop {
            match self.store.active_callbacks().await {
                Ok(active) => {
                    running.retain(|broker, (seq, task)| {
                        let keep = !task.is_finished()
                            && active
                                .iter()
                                .any(|c| &c.broker == broker && c.callback_seq == *seq);
                        if !keep {
                            task.abort();
                            self.metrics
                                .callback_pending
                                .with_label_values(&[broker.as_str()])
                                .set(0);
                        }
                        keep
                    });
                    for cb in active {
                        if running.contains_key(&cb.broker) {
                            continue;
                        }
                        let task = tokio::spawn(self.clone().run_one_callback(
                            cb.broker.clone(),
                            cb.callback_seq,
                            tls.clone(),
                            stop.clone(),
                        ));
                        running.insert(cb.broker.clone(), (cb.callback_seq, task));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "callbacks unavailable; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.callbacks.poll.max(Duration::from_millis(200))) => {}
                _ = stop.changed() => break,
            }
        }
        for (_, (_, task)) in running {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_the_timestamp_and_the_body() {
        let s = generate_secret().unwrap();
        assert!(s.starts_with(SECRET_PREFIX));
        let sig = signature(&s, 1_767_225_600, b"{\"items\":[]}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify_signature(&s, 1_767_225_600, b"{\"items\":[]}", &sig));
        assert!(!verify_signature(
            &s,
            1_767_225_601,
            b"{\"items\":[]}",
            &sig
        ));
        assert!(!verify_signature(
            &s,
            1_767_225_600,
            b"{\"items\":[1]}",
            &sig
        ));
        assert!(!verify_signature(
            "other",
            1_767_225_600,
            b"{\"items\":[]}",
            &sig
        ));
        assert!(!verify_signature(&s, 1_767_225_600, b"", "sha256=zz"));
        // The primitive: RFC 4231 test case 2.
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            hex::encode(aws_lc_rs::hmac::sign(&key, b"what do ya want for nothing?").as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls() {
        assert!(check_url("https://broker.example/hooks/tamga?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8081/cb").is_ok());
        assert!(check_url("ftp://x/").is_err());
        assert!(check_url("https://user:pw@x/").is_err());
        assert!(check_url("not a url").is_err());
        assert!(check_url("/relative").is_err());
    }
}
