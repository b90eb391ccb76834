//! The HTTP API: routes and handlers. Everything here is reachable through
//! [`crate::router`] without a socket (`tower::ServiceExt::oneshot`).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Value};
use tamga_bus::{HeaderValue as BusHeader, Message};
use tamga_pipeline::Decided;
use tamga_store::{
    submitted_key, AuditEvent, ListFilter, StoreError, Submission, SubmissionClaim, TokenOwner,
    APPEND_ONCE_STAGE, SUBMITTED,
};

use crate::problem::{Kind, Problem};
use crate::status::{derive, pipeline_saw, STATUSES};
use crate::{lrn, token, Gateway};

/// Request headers of the contract.
pub mod headers {
    /// The declared origin country (ISO 3166 alpha-2).
    pub const ORIGIN: &str = "x-tamga-origin";
    /// The destination country (ISO 3166 alpha-2).
    pub const DESTINATION: &str = "x-tamga-destination";
    /// The IETF draft's idempotency key.
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
    /// Set on a 202 that answers a retry (same key, same bytes).
    pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
    /// AMQP header naming the submitting broker on `tamga.inbound` messages.
    pub const AMQP_BROKER: &str = "tamga-broker";
}

/// Largest `limit` of a list page.
pub const MAX_PAGE: usize = 100;
/// Default `limit` of a list page.
pub const DEFAULT_PAGE: usize = 50;

type Result<T> = std::result::Result<T, Problem>;

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn bytes_response(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn links(id: &str) -> Value {
    let base = format!("/v1/declarations/{id}");
    json!({
        "self": base,
        "receipt": format!("{base}/receipt"),
        "document": format!("{base}/document"),
        "report": format!("{base}/report"),
    })
}

impl Gateway {
    fn store_problem(&self, what: &str, e: &StoreError) -> Problem {
        if e.is_transient() {
            tracing::warn!(what, error = %e, "database unavailable");
            Problem::new(Kind::Unavailable, "The database is unavailable; try again.")
                .retry_after(self.settings.retry_after_secs)
        } else {
            tracing::error!(what, error = %e, "store error");
            Problem::new(Kind::Internal, "The request could not be completed.")
        }
    }

    /// The broker behind `Authorization: Bearer …` (the token is never logged) or behind
    /// the connection's client certificate ([`crate::tls::PEER`]); with both, they must
    /// name the same broker.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<TokenOwner> {
        let unauthorized = |detail: &str| Problem::new(Kind::Unauthorized, detail);
        let peer = crate::tls::PEER.try_with(Clone::clone).ok().flatten();
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return match peer {
                Some(owner) => {
                    self.metrics
                        .authenticated
                        .with_label_values(&["certificate"])
                        .inc();
                    Ok(owner)
                }
                None => Err(unauthorized(
                    "An Authorization: Bearer token (or a client certificate) is required.",
                )),
            };
        };
        let token = value
            .to_str()
            .ok()
            .and_then(token::bearer)
            .ok_or_else(|| unauthorized("The Authorization header is not a Bearer token."))?;
        let owner = match self.store.token_owner(&token::hash(token)).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return Err(unauthorized("The token is unknown or revoked.")),
            Err(e) => return Err(self.store_problem("token_owner", &e)),
        };
        if let Some(cert) = peer {
            if cert.broker != owner.broker {
                return Err(unauthorized(
                    "The token and the client certificate name different brokers.",
                ));
            }
            // The narrower of the two origin restrictions.
            if let (Some(a), Some(b)) = (&cert.country, &owner.country) {
                if !a.eq_ignore_ascii_case(b) {
                    return Err(unauthorized(
                        "The token and the client certificate allow different origins.",
                    ));
                }
            }
            let country = owner.country.or(cert.country);
            self.metrics
                .authenticated
                .with_label_values(&["token"])
                .inc();
            return Ok(TokenOwner {
                broker: owner.broker,
                country,
            });
        }
        self.metrics
            .authenticated
            .with_label_values(&["token"])
            .inc();
        Ok(owner)
    }

    /// One lock per stripe of `(broker, key)`: retries of one key in this process
    /// publish one after the other, so the second finds the first's marker.
    fn key_lock(&self, broker: &str, key: &str) -> &tokio::sync::Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (broker, key).hash(&mut h);
        let i = (h.finish() % self.key_locks.len() as u64) as usize;
        &self.key_locks[i]
    }

    async fn submit(&self, headers: &HeaderMap, body: Body) -> Result<Response> {
        let owner = self.authenticate(headers).await?;
        let SubmissionHeaders {
            idempotency_key: key,
            origin,
            destination,
        } = parse_submission_headers(headers)?;
        if let Some(cc) = &owner.country {
            if !cc.eq_ignore_ascii_case(&origin) {
                return Err(Problem::new(
                    Kind::OriginNotAllowed,
                    format!("This token submits from {cc} only, not from {origin}."),
                ));
            }
        }
        check_content_type(headers)?;
        let max = self.settings.max_bytes;
        if let Some(len) = declared_length(headers) {
            if len > max as u64 {
                return Err(too_large(max));
            }
        }
        if let Err(wait) = self.limiter.check(&owner.broker, Instant::now()) {
            self.metrics
                .rate_limited
                .with_label_values(&[owner.broker.as_str()])
                .inc();
            return Err(Problem::new(
                Kind::RateLimited,
                format!("Broker {} is above its submission rate.", owner.broker),
            )
            .retry_after(wait));
        }
        let bytes = axum::body::to_bytes(body, max)
            .await
            .map_err(|_| too_large(max))?;
        if bytes.is_empty() {
            return Err(Problem::new(
                Kind::EmptyBody,
                "The body must be the signed declaration.",
            ));
        }
        let digest = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &bytes,
        ));
        let now = tamga_pipeline::now_ms();
        let fresh = Submission {
            broker: owner.broker.clone(),
            idempotency_key: key.clone(),
            id: token::declaration_id()
                .map_err(|e| Problem::new(Kind::Internal, e).retry_after(1))?,
            body_sha256: digest.clone(),
            origin: origin.clone(),
            destination: destination.clone(),
            lrn: lrn::scan_lrn(&bytes),
            created_at_ms: now,
        };
        let _guard = self.key_lock(&owner.broker, &key).lock().await;
        let (submission, replay) = match self.store.claim_submission(&fresh).await {
            Ok(SubmissionClaim::New) => (fresh, false),
            Ok(SubmissionClaim::Existing(s)) => {
                if s.body_sha256 != digest || s.origin != origin || s.destination != destination {
                    return Err(Problem::new(
                        Kind::IdempotencyKeyReused,
                        "This Idempotency-Key was used for another request (other bytes or \
                         another corridor); use a new key for a new submission.",
                    ));
                }
                (s, true)
            }
            Ok(_) => return Err(Problem::new(Kind::Internal, "unexpected claim")),
            Err(e) => return Err(self.store_problem("claim_submission", &e)),
        };
        let id = submission.id.clone();
        let marker = submitted_key(&id);
        // A new claim has a fresh id whose marker cannot exist yet: only a replay needs
        // the lookup (one round trip less on every first submission).
        let published = replay
            && match self.store.stage_result(&marker, APPEND_ONCE_STAGE).await {
                Ok(found) => found.is_some(),
                Err(e) => return Err(self.store_problem("stage_result", &e)),
            };
        if !published {
            self.publish(&submission, bytes.to_vec()).await?;
            if self.abort_after_confirm {
                // The fault tests' hook (see `Options::abort_after_confirm`): die between
                // the confirm and the record, as a crash or a SIGKILL would (no unwinding,
                // no answer; `exit` rather than `abort` leaves no core file behind).
                tracing::error!(
                    id,
                    "{}=1: aborting after the confirm",
                    crate::TEST_ABORT_AFTER_CONFIRM
                );
                std::process::exit(134);
            }
            let event = AuditEvent {
                at_ms: submission.created_at_ms,
                stage: SUBMITTED.into(),
                worker: format!("{}/gateway", self.settings.worker),
                declaration_id: id.clone(),
                origin: origin.clone(),
                destination: destination.clone(),
                outcome: "accepted".into(),
                sub_indication: None,
                reason: None,
                digest: digest.clone(),
                detail: Some(json!({ "broker": owner.broker }).to_string()),
            };
            if let Err(e) = self
                .store
                .append_once(&self.chain(&id), &marker, &event)
                .await
            {
                // Published but not recorded: the retry with the same key publishes
                // again under the same id, which the pipeline answers once.
                return Err(self.store_problem("append_once", &e));
            }
            tracing::info!(id, broker = %owner.broker, origin, destination, "submitted");
        }
        // Followed by this process's notifier (a replay too: the process that published
        // it may have stopped before it settled).
        self.follow(submission);
        let location = format!("/v1/declarations/{id}");
        let mut response = json_response(
            StatusCode::ACCEPTED,
            &json!({ "id": id, "status": "received", "links": links(&id) }),
        );
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&location) {
            h.insert(header::LOCATION, v);
        }
        if replay {
            h.insert(
                headers::IDEMPOTENT_REPLAYED,
                HeaderValue::from_static("true"),
            );
        }
        Ok(response)
    }

    fn chain(&self, id: &str) -> String {
        let shard = id
            .bytes()
            .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize))
            % 4;
        format!("{}/gateway/{shard}", self.settings.worker)
    }

    /// Publishes to `tamga.inbound` and waits for the broker's confirm.
    async fn publish(&self, s: &Submission, body: Vec<u8>) -> Result<()> {
        let mut h = BTreeMap::new();
        h.insert(
            headers::AMQP_BROKER.to_owned(),
            BusHeader::Str(s.broker.clone()),
        );
        let message = Message {
            body,
            routing_key: format!(
                "{}.{}",
                s.origin.to_ascii_lowercase(),
                s.destination.to_ascii_lowercase()
            ),
            message_id: Some(s.id.clone()),
            correlation_id: None,
            headers: h,
            timestamp_ms: Some(s.created_at_ms),
        };
        match self.bus.publish(tamga_bus::names::INBOUND, message).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(id = %s.id, error = %e, "publish not confirmed");
                self.metrics.publish_unconfirmed.inc();
                Err(Problem::new(
                    Kind::Unavailable,
                    "The message broker did not confirm the submission; retry with the same \
                     Idempotency-Key.",
                )
                .retry_after(self.settings.retry_after_secs))
            }
        }
    }

    async fn owned(&self, headers: &HeaderMap, id: &str) -> Result<(TokenOwner, Submission)> {
        let owner = self.authenticate(headers).await?;
        match self.store.submission(&owner.broker, id).await {
            Ok(Some(s)) => Ok((owner, s)),
            Ok(None) => Err(Problem::new(
                Kind::NotFound,
                "No declaration with this id was submitted with this token's broker.",
            )),
            Err(e) => Err(self.store_problem("submission", &e)),
        }
    }

    /// The events that describe `s`, and the declaration the pipeline decided them under
    /// (another id when the same bytes were submitted before under another id).
    async fn effective(&self, s: &Submission) -> Result<(Vec<AuditEvent>, Option<String>)> {
        let mut events = self
            .store
            .declaration_events(&s.id)
            .await
            .map_err(|e| self.store_problem("declaration_events", &e))?;
        if pipeline_saw(&events) {
            return Ok((events, None));
        }
        // The pipeline's rule: the same bytes are the same declaration, whatever the id.
        let first = self
            .store
            .stage_result(&s.body_sha256, "received")
            .await
            .map_err(|e| self.store_problem("stage_result", &e))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match first {
            Some(first) if first != s.id => {
                let theirs = self
                    .store
                    .declaration_events(&first)
                    .await
                    .map_err(|e| self.store_problem("declaration_events", &e))?;
                events.extend(theirs.into_iter().filter(|e| e.stage != SUBMITTED));
                Ok((events, Some(first)))
            }
            _ => Ok((events, None)),
        }
    }

    async fn decided(&self, id: &str) -> Result<Option<Decided>> {
        match self.store.stage_result(id, "decide").await {
            Ok(Some(bytes)) => Decided::decode(&bytes).map(Some).map_err(|e| {
                tracing::error!(id, error = %e, "stored decision unreadable");
                Problem::new(Kind::Internal, "The stored decision cannot be read.")
            }),
            Ok(None) => Ok(None),
            Err(e) => Err(self.store_problem("stage_result", &e)),
        }
    }

    /// The decision about `s` (under its own id or the first id of the same bytes).
    async fn decision_of(&self, s: &Submission) -> Result<Decided> {
        let (_, duplicate_of) = self.effective(s).await?;
        let id = duplicate_of.as_deref().unwrap_or(&s.id);
        self.decided(id).await?.ok_or_else(|| {
            Problem::new(
                Kind::NotDecidedYet,
                "The declaration is not decided yet; poll its status.",
            )
            .retry_after(1)
        })
    }

    async fn view(&self, owner: &TokenOwner, s: &Submission) -> Result<Value> {
        let (events, duplicate_of) = self.effective(s).await?;
        let derived = derive(&events);
        let decided_id = duplicate_of.as_deref().unwrap_or(&s.id);
        let decided = if matches!(derived.status, "rejected" | "countersigned" | "forwarded") {
            self.decided(decided_id).await?
        } else {
            None
        };
        let mut v = json!({
            "id": s.id,
            "status": derived.status,
            "broker": owner.broker,
            "submittedAt": rfc3339(s.created_at_ms),
            "declaration": {
                "lrn": decided.as_ref().and_then(|d| d.lrn.clone()).or_else(|| s.lrn.clone()),
                "origin": s.origin,
                "destination": s.destination,
                "documentSha256": s.body_sha256,
            },
            "history": derived.history.iter().map(|(step, at)| json!({
                "step": step, "at": rfc3339(*at),
            })).collect::<Vec<_>>(),
            "links": links(&s.id),
        });
        let Value::Object(map) = &mut v else {
            return Ok(v);
        };
        if let Some(first) = duplicate_of {
            map.insert("duplicateOf".into(), Value::String(first));
        }
        if derived.status == "rejected" {
            map.insert("reason".into(), json!(derived.reason));
            map.insert("subIndication".into(), json!(derived.sub_indication));
            if let Some(receipt) = decided
                .as_ref()
                .and_then(|d| d.receipt_bytes().ok())
                .and_then(|r| tamga_receipt::parse_receipt(&r).ok())
            {
                map.insert("indication".into(), json!(receipt.indication));
                map.insert("message".into(), json!(receipt.message));
            }
        } else if decided.is_some() {
            map.insert("indication".into(), json!("TOTAL_PASSED"));
        }
        if let Some(qr) = decided
            .as_ref()
            .and_then(|d| d.receipt_bytes().ok())
            .and_then(|r| tamga_receipt::parse_receipt(&r).ok())
            .and_then(|c| c.qr)
        {
            map.insert("qr".into(), json!(qr));
        }
        Ok(v)
    }

    async fn list(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Response> {
        let owner = self.authenticate(headers).await?;
        let q = ListQuery::parse(query.unwrap_or(""))?;
        let filter = ListFilter {
            lrn: q.lrn.clone(),
            since_ms: q.since_ms,
            after: q.after.clone(),
        };
        let page = self
            .store
            .list_submissions(&owner.broker, &filter, q.limit)
            .await
            .map_err(|e| self.store_problem("list_submissions", &e))?;
        let next = (page.len() == q.limit)
            .then(|| page.last().map(|s| encode_cursor(s.created_at_ms, &s.id)))
            .flatten();
        let mut items = Vec::with_capacity(page.len());
        for s in &page {
            let (events, _) = self.effective(s).await?;
            let status = derive(&events).status;
            if q.status.as_deref().is_some_and(|want| want != status) {
                continue;
            }
            items.push(json!({
                "id": s.id,
                "status": status,
                "submittedAt": rfc3339(s.created_at_ms),
                "lrn": s.lrn,
                "origin": s.origin,
                "destination": s.destination,
                "documentSha256": s.body_sha256,
                "links": { "self": format!("/v1/declarations/{}", s.id) },
            }));
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({ "items": items, "next": next }),
        ))
    }
}

fn too_large(max: usize) -> Problem {
    Problem::new(
        Kind::PayloadTooLarge,
        format!("The declaration is larger than the policy's limit of {max} bytes."),
    )
    .with("limit", max)
}

// --- request parsing --------------------------------------------------------
//
// The pure part of reading a broker's request (headers, query strings): no state, no I/O,
// fuzzed by fuzz/fuzz_targets/gateway_request.rs. Each refusal is the Problem the API
// answers with.

/// A submission's headers, checked in the order the API reports their problems
/// (authentication, the token's origin restriction, Content-Type and Content-Length are
/// checked around them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubmissionHeaders {
    /// 1 to 255 printable ASCII characters (the structured-field quotes removed).
    pub idempotency_key: String,
    /// Upper-case ISO 3166 alpha-2.
    pub origin: String,
    /// Upper-case ISO 3166 alpha-2.
    pub destination: String,
}

/// `Idempotency-Key`, `X-Tamga-Origin`, `X-Tamga-Destination`.
pub fn parse_submission_headers(headers: &HeaderMap) -> Result<SubmissionHeaders> {
    Ok(SubmissionHeaders {
        idempotency_key: idempotency_key(headers)?,
        origin: country_header(headers, headers::ORIGIN)?,
        destination: country_header(headers, headers::DESTINATION)?,
    })
}

/// `Content-Length`, when present and a number (hyper refuses a malformed one before us;
/// the body read is bounded anyway).
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    let raw = headers.get(headers::IDEMPOTENCY_KEY).ok_or_else(|| {
        Problem::new(
            Kind::IdempotencyKeyMissing,
            "Every submission needs an Idempotency-Key header (a unique value per declaration, \
             reused only for retries).",
        )
    })?;
    let s = raw.to_str().unwrap_or("");
    // The draft makes it a structured-field string ("…"); a bare token is accepted too.
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .filter(|inner| !inner.is_empty())
        .unwrap_or(s);
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(Problem::new(
            Kind::IdempotencyKeyInvalid,
            "The Idempotency-Key must be 1 to 255 printable ASCII characters.",
        ));
    }
    Ok(s.to_owned())
}

fn country_header(headers: &HeaderMap, name: &str) -> Result<String> {
    let v = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    let upper = v.to_ascii_uppercase();
    if upper.len() == 2 && upper.parse::<tamga_trust::CountryCode>().is_ok() {
        Ok(upper)
    } else {
        Err(Problem::new(
            Kind::InvalidCorridor,
            format!("{name} must be an ISO 3166 alpha-2 country code."),
        ))
    }
}

/// `Content-Type: application/xml` (parameters such as a charset allowed).
pub fn check_content_type(headers: &HeaderMap) -> Result<()> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/xml"));
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            Kind::UnsupportedMediaType,
            "Submit the signed declaration as Content-Type: application/xml.",
        ))
    }
}

/// The opaque `cursor` of `GET /v1/declarations`.
pub fn encode_cursor(ms: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{ms}:{id}"))
}

/// [`encode_cursor`]'s inverse; `None` for anything else.
pub fn decode_cursor(s: &str) -> Option<(i64, String)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (ms, id) = text.split_once(':')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

/// `GET /v1/declarations?lrn=…&status=…&since=…&cursor=…&limit=…`
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    pub lrn: Option<String>,
    pub status: Option<String>,
    pub since_ms: Option<i64>,
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

impl ListQuery {
    /// The query string (without `?`); unknown keys are ignored.
    pub fn parse(query: &str) -> Result<Self> {
        let bad = |detail: String| Problem::new(Kind::InvalidQuery, detail);
        let mut q = ListQuery {
            lrn: None,
            status: None,
            since_ms: None,
            after: None,
            limit: DEFAULT_PAGE,
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "lrn" => q.lrn = Some(v.into_owned()),
                "status" => {
                    if !STATUSES.contains(&v.as_ref()) {
                        return Err(bad(format!(
                            "status must be one of {}.",
                            STATUSES.join(", ")
                        )));
                    }
                    q.status = Some(v.into_owned());
                }
                "since" => {
                    let t = time::OffsetDateTime::parse(
                        &v,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map_err(|_| bad("since must be an RFC 3339 time.".into()))?;
                    q.since_ms = Some(
                        i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
                            .map_err(|_| bad("since is out of range.".into()))?,
                    );
                }
                "cursor" => {
                    q.after = Some(
                        decode_cursor(&v)
                            .ok_or_else(|| bad("cursor is not one this API returned.".into()))?,
                    );
                }
                "limit" => {
                    q.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| bad(format!("limit must be 1 to {MAX_PAGE}.")))?;
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Longest long-poll of `GET /v1/notifications?wait=…` (seconds).
pub const MAX_WAIT_SECS: u64 = 30;

/// `GET /v1/notifications?after=…&wait=…&limit=…`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotificationsQuery {
    /// The last notification's cursor seen (0: from the start).
    pub after: i64,
    /// Seconds to wait for one, at most [`MAX_WAIT_SECS`].
    pub wait: u64,
    pub limit: usize,
}

impl NotificationsQuery {
    /// The query string (without `?`); unknown keys are ignored.
    pub fn parse(query: Option<&str>) -> Result<Self> {
        let bad = |detail: String| Problem::new(Kind::InvalidQuery, detail);
        let mut q = NotificationsQuery {
            after: 0,
            wait: 0,
            limit: DEFAULT_PAGE,
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "after" => {
                    q.after =
                        v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                            bad("after must be a cursor this API returned.".into())
                        })?
                }
                "wait" => {
                    q.wait = v
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n <= MAX_WAIT_SECS)
                        .ok_or_else(|| bad(format!("wait must be 0 to {MAX_WAIT_SECS} seconds.")))?
                }
                "limit" => {
                    q.limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| bad(format!("limit must be 1 to {MAX_PAGE}.")))?
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Events grouped by declaration id, each group in the order given.
fn by_declaration(events: Vec<AuditEvent>) -> std::collections::HashMap<String, Vec<AuditEvent>> {
    let mut out: std::collections::HashMap<String, Vec<AuditEvent>> =
        std::collections::HashMap::new();
    for e in events {
        out.entry(e.declaration_id.clone()).or_default().push(e);
    }
    out
}

/// The statuses a declaration went through, in order, as its events tell (a rejected
/// declaration's forwarded receipt is not a `forwarded` status).
pub fn statuses_passed(events: &[AuditEvent]) -> Vec<(&'static str, i64)> {
    let d = derive(events);
    let rejected = d.status == "rejected";
    let mut out: Vec<(&'static str, i64)> = Vec::new();
    for (step, at) in &d.history {
        let status = match step.as_str() {
            "received" => "received",
            "verified" => "verified",
            "rejected" => "rejected",
            "countersigned" => "countersigned",
            "forwarded" if !rejected => "forwarded",
            "dead_lettered" if d.status == "dead_lettered" => "dead_lettered",
            _ => continue,
        };
        out.push((status, *at));
    }
    out
}

impl Gateway {
    /// Follows `s` in the notifier from now on (published by this process).
    fn follow(&self, s: Submission) {
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .follow(s);
    }

    /// How many submissions the notifier follows now.
    pub fn followed(&self) -> usize {
        self.watch.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Sweeps the table from `floor` for unsettled submissions (page by page) and follows
    /// them (see `watch.rs`).
    async fn sweep(&self, floor: i64) -> std::result::Result<(), StoreError> {
        const PAGE: usize = 500;
        let (started, started_ms) = (Instant::now(), tamga_pipeline::now_ms());
        let mut found: Vec<Submission> = Vec::new();
        let mut after = (floor, String::new());
        loop {
            let page = self
                .store
                .unsettled_after((after.0, &after.1), PAGE)
                .await?;
            let full = page.len() == PAGE;
            if let Some(last) = page.last() {
                after = (last.created_at_ms, last.id.clone());
            }
            found.extend(page);
            if !full {
                break;
            }
        }
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .swept(started, started_ms, floor, found);
        Ok(())
    }

    /// One pass of the notifier: records the status changes of the submissions it follows
    /// (those this process published, and those a sweep of the table found unsettled: see
    /// `watch.rs`). Returns how many notifications were recorded now.
    ///
    /// A fixed number of round trips per pass, whatever the number of submissions in
    /// flight: their events in one query, the same-bytes look-ups in one, every status in
    /// one insert. (One query per submission and one insert per status, every half second
    /// for each submission until it settled, had cost PostgreSQL more CPU than the
    /// pipeline's own writes under load.) The statuses are those `effective` gives.
    pub async fn notify_pending(&self) -> std::result::Result<usize, StoreError> {
        let due = self
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sweep_due(Instant::now());
        if let Some(floor) = due {
            self.sweep(floor).await?;
        }
        let pending = self
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .batch(crate::watch::PER_PASS);
        if pending.is_empty() {
            return Ok(0);
        }
        let ids: Vec<&str> = pending.iter().map(|f| f.submission.id.as_str()).collect();
        let mut events = by_declaration(self.store.declarations_events(&ids).await?);
        // The pipeline's rule, as `effective` applies it: a submission whose own id the
        // pipeline has not seen may be the same bytes as a declaration it has.
        let unseen: Vec<&Submission> = pending
            .iter()
            .map(|f| &f.submission)
            .filter(|s| !pipeline_saw(events.get(&s.id).map_or(&[], Vec::as_slice)))
            .collect();
        if !unseen.is_empty() {
            let keys: Vec<(&str, &str)> = unseen
                .iter()
                .map(|s| (s.body_sha256.as_str(), "received"))
                .collect();
            let found = self.store.stage_results(&keys).await?;
            let mut first_of: Vec<(&str, String)> = Vec::new();
            for (s, stored) in unseen.iter().zip(found) {
                if let Some(bytes) = stored {
                    let first = String::from_utf8_lossy(&bytes).into_owned();
                    if first != s.id {
                        first_of.push((s.id.as_str(), first));
                    }
                }
            }
            if !first_of.is_empty() {
                let firsts: Vec<&str> = first_of.iter().map(|(_, f)| f.as_str()).collect();
                let theirs = by_declaration(self.store.declarations_events(&firsts).await?);
                for (id, first) in &first_of {
                    if let Some(t) = theirs.get(first) {
                        events
                            .entry((*id).to_owned())
                            .or_default()
                            .extend(t.iter().filter(|e| e.stage != SUBMITTED).cloned());
                    }
                }
            }
        }
        let mut rows: Vec<(&str, &str, &str, i64)> = Vec::new();
        let mut passed_all: Vec<Vec<&'static str>> = Vec::with_capacity(pending.len());
        for f in &pending {
            let s = &f.submission;
            let passed = statuses_passed(events.get(&s.id).map_or(&[], Vec::as_slice));
            rows.extend(
                passed
                    .iter()
                    .filter(|(status, _)| !f.recorded.contains(status))
                    .map(|&(status, at)| (s.broker.as_str(), s.id.as_str(), status, at)),
            );
            passed_all.push(passed.into_iter().map(|(st, _)| st).collect());
        }
        let recorded = self.store.notify_all(&rows).await?;
        // Recorded (now or before, by whichever process): remembered for the next pass;
        // settled ones are followed no more.
        {
            let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
            for (f, passed) in pending.iter().zip(passed_all) {
                watch.passed(&f.submission, passed);
            }
        }
        if recorded > 0 {
            self.notified.notify_waiters();
        }
        Ok(recorded)
    }

    /// Runs [`Gateway::notify_pending`] every `every` until `stop` turns true. Separate from
    /// the pipeline: a slow or failing pass never holds a declaration up.
    pub async fn run_notifier(
        self: Arc<Self>,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if let Err(e) = self.notify_pending().await {
                tracing::warn!(error = %e, "notifier pass failed; retrying");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn notifications(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Response> {
        let owner = self.authenticate(headers).await?;
        let NotificationsQuery { after, wait, limit } = NotificationsQuery::parse(query)?;
        // A longer wait than this site holds is served as the longest it holds.
        let wait = wait.min(u64::from(self.settings.long_poll_max_secs));
        let deadline = Instant::now() + std::time::Duration::from_secs(wait);
        let items = loop {
            // Registered before reading, so a notification recorded meanwhile wakes us.
            let woken = self.notified.notified();
            let items = self
                .store
                .notifications(&owner.broker, after, limit)
                .await
                .map_err(|e| self.store_problem("notifications", &e))?;
            let now = Instant::now();
            if !items.is_empty() || now >= deadline {
                break items;
            }
            // Another gateway process may record them: look again at least every second.
            let nap = (deadline - now).min(std::time::Duration::from_secs(1));
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(nap) => {}
            }
        };
        Ok(json_response(
            StatusCode::OK,
            &crate::callback::notifications_json(&items, after),
        ))
    }
}

// --- handlers ---------------------------------------------------------------

pub(crate) async fn callback(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    respond(
        async {
            let owner = gw.authenticate(&headers).await?;
            let state = gw
                .store
                .callback_state(&owner.broker)
                .await
                .map_err(|e| gw.store_problem("callback_state", &e))?;
            Ok(json_response(
                StatusCode::OK,
                &crate::callback::state_json(state.as_ref()),
            ))
        }
        .await,
    )
}

pub(crate) async fn notifications(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(gw.notifications(&headers, query.as_deref()).await)
}

fn respond(r: Result<Response>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn submit(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    respond(gw.submit(&headers, body).await)
}

pub(crate) async fn list(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(gw.list(&headers, query.as_deref()).await)
}

pub(crate) async fn status(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let (owner, s) = gw.owned(&headers, &id).await?;
            let v = gw.view(&owner, &s).await?;
            Ok(json_response(StatusCode::OK, &v))
        }
        .await,
    )
}

pub(crate) async fn receipt(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let (_, s) = gw.owned(&headers, &id).await?;
            let d = gw.decision_of(&s).await?;
            let receipt = d
                .receipt_bytes()
                .map_err(|e| Problem::new(Kind::Internal, e.to_string()))?;
            Ok(bytes_response("application/xml", receipt))
        }
        .await,
    )
}

pub(crate) async fn document(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let (_, s) = gw.owned(&headers, &id).await?;
            let d = gw.decision_of(&s).await?;
            match d
                .countersigned_bytes()
                .map_err(|e| Problem::new(Kind::Internal, e.to_string()))?
            {
                Some(doc) => Ok(bytes_response("application/xml", doc)),
                None => Err(Problem::new(
                    Kind::Rejected,
                    "The declaration was rejected: there is no counter-signed document; the \
                     signed receipt says why.",
                )
                .with("reason", json!(d.reason))
                .with("subIndication", json!(d.sub_indication))),
            }
        }
        .await,
    )
}

pub(crate) async fn report(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(
        async {
            let (_, s) = gw.owned(&headers, &id).await?;
            let d = gw.decision_of(&s).await?;
            let receipt = d
                .receipt_bytes()
                .ok()
                .and_then(|r| tamga_receipt::parse_receipt(&r).ok())
                .ok_or_else(|| Problem::new(Kind::Internal, "The stored receipt is unreadable."))?;
            let report: Value = serde_json::from_str(&receipt.validation_report)
                .map_err(|_| Problem::new(Kind::Internal, "The stored report is unreadable."))?;
            Ok(json_response(StatusCode::OK, &report))
        }
        .await,
    )
}

pub(crate) async fn no_route() -> Response {
    Problem::new(Kind::NoRoute, "No such resource.").into_response()
}

pub(crate) async fn method_not_allowed() -> Response {
    Problem::new(
        Kind::MethodNotAllowed,
        "This resource does not take this method.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let c = encode_cursor(1_700_000_000_000, "abc");
        assert_eq!(decode_cursor(&c), Some((1_700_000_000_000, "abc".into())));
        assert_eq!(decode_cursor("!!"), None);
    }

    #[test]
    fn list_queries() {
        let q = ListQuery::parse("lrn=L%201&status=rejected&since=2026-01-01T00:00:00Z&limit=5")
            .unwrap();
        assert_eq!(q.lrn.as_deref(), Some("L 1"));
        assert_eq!(q.status.as_deref(), Some("rejected"));
        assert_eq!(q.since_ms, Some(1_767_225_600_000));
        assert_eq!(q.limit, 5);
        assert!(ListQuery::parse("status=bogus").is_err());
        assert!(ListQuery::parse("limit=0").is_err());
        assert!(ListQuery::parse("limit=101").is_err());
        assert!(ListQuery::parse("since=yesterday").is_err());
        assert!(ListQuery::parse("cursor=%%%").is_err());
        assert!(ListQuery::parse("other=1").is_ok());
    }

    #[test]
    fn header_checks() {
        let mut h = HeaderMap::new();
        assert_eq!(
            idempotency_key(&h).unwrap_err().kind,
            Kind::IdempotencyKeyMissing
        );
        h.insert(
            headers::IDEMPOTENCY_KEY,
            HeaderValue::from_static("\"k-1\""),
        );
        assert_eq!(idempotency_key(&h).unwrap(), "k-1");
        h.insert(headers::IDEMPOTENCY_KEY, HeaderValue::from_static("\"\""));
        assert_eq!(idempotency_key(&h).unwrap(), "\"\"");
        h.insert(
            headers::IDEMPOTENCY_KEY,
            HeaderValue::from_bytes(b"k\xe9").unwrap(),
        );
        assert!(idempotency_key(&h).is_err());
        h.insert(headers::ORIGIN, HeaderValue::from_static("kz"));
        assert_eq!(country_header(&h, headers::ORIGIN).unwrap(), "KZ");
        h.insert(headers::ORIGIN, HeaderValue::from_static("KZX"));
        assert!(country_header(&h, headers::ORIGIN).is_err());
        assert!(check_content_type(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/XML; charset=utf-8"),
        );
        assert!(check_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        assert!(check_content_type(&h).is_err());
    }
}
