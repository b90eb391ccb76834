//! Every scan recorded: a check through the page (`/check`), the API (`POST /v1/checks`),
//! or offline and uploaded later (`POST /v1/checks/offline`, `tamga checkpoint upload`)
//! becomes a `checked` audit event in the same tamper-evident trail as the pipeline's, and
//! a signed check record (`GET /v1/checks/{id}`, `application/xml`, `schemas/check.xsd`).
//!
//! Recording takes a claim on the declaration (its document digest), reads its earlier
//! checks, applies the site's repeat rule (`[gateway.checks]`), and stores the record, the
//! card and the event in one transaction — so two scans of one paper at two posts at the
//! same moment cannot both be green, and an upload retried records nothing twice.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tamga_check::log::Entry;
use tamga_check::record::{self, Issued};
use tamga_check::repeat::{Prior, RepeatRule};
use tamga_check::{Check, CheckResult, InputKind, Presented, Subject};
use tamga_pipeline::Event;
use tamga_store::{ChecksStore, PageRole, Recorded as StoreRecorded, ResultRow, StoreError};

use super::check::{clean_input, How, Outcome, Verdict};
use super::{BundleSigner, Pages, Request};
use crate::problem::{Kind, Problem};

/// The stage result holding a check's signed record.
pub const RECORD_STAGE: &str = "check_record";
/// The stage result holding a check's card (its [`Outcome`], as JSON).
pub const CARD_STAGE: &str = "check_card";
/// Longest `POST /v1/checks` body.
pub const MAX_CHECK_BODY: usize = 16 * 1024;
/// Longest `POST /v1/checks/offline` body.
pub const MAX_UPLOAD_BODY: usize = 4 * 1024 * 1024;

/// Why a check could not be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("{0}")]
    Invalid(#[from] tamga_check::CheckError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("this site has no authority key to sign check records")]
    NoKey,
}

/// What recording did.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The check as recorded (the repeat rule applied).
    pub check: Check,
    /// False when a check with this id was recorded before (an upload retried).
    pub inserted: bool,
}

/// Records checks: the store, the key that signs check records, the repeat rule, the
/// metrics and the audit chain.
pub struct Recorder<'a> {
    pub store: &'a dyn ChecksStore,
    pub signer: Option<&'a BundleSigner>,
    pub rule: RepeatRule,
    pub metrics: &'a tamga_pipeline::Metrics,
    /// The audit chain of `checked` events (`<worker>/checks`).
    pub chain: String,
}

impl std::fmt::Debug for Recorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

/// The earlier checks of a declaration, as the repeat rule reads them.
fn priors(events: &[tamga_store::StoredEvent]) -> Vec<Prior> {
    events
        .iter()
        .filter_map(|e| {
            let d: Value = serde_json::from_str(e.event.detail.as_deref()?).ok()?;
            Some(Prior {
                check_id: d["checkId"].as_str()?.to_owned(),
                checkpoint: d["checkpoint"].as_str()?.to_owned(),
                at_ms: e.event.at_ms,
                result: CheckResult::parse(&e.event.outcome)?,
                repeated: e.event.reason.as_deref() == Some(tamga_check::reason::ALREADY_PRESENTED),
            })
        })
        .collect()
}

impl Recorder<'_> {
    /// Records `check` (with `card`, the outcome shown, when there is one). An accepted
    /// check of a declaration already presented becomes amber *already presented*; an
    /// offline check keeps the result its device showed and is flagged.
    pub async fn record(
        &self,
        mut check: Check,
        mut card: Option<&mut Outcome>,
    ) -> Result<Recorded, RecordError> {
        check.validate()?;
        let signer = self.signer.ok_or(RecordError::NoKey)?;
        let key = format!("presented:{}", check.key());
        let claim = self
            .store
            .claim(&[&key], &[(&check.id, RECORD_STAGE)])
            .await?;
        if claim.found().first().is_some_and(Option::is_some) {
            return Ok(Recorded {
                check,
                inserted: false,
            });
        }
        if !check.offline {
            // An online check is stamped when it is decided, under the claim: stamped
            // before it, a scan that waited for the claim could predate the green one
            // recorded meanwhile, not count it as a prior, and be green too (seen on
            // PostgreSQL: two of three racing posts green). Offline checks keep their
            // device's time.
            check.at_ms = check.at_ms.max(tamga_pipeline::now_ms());
        }
        if check.result == CheckResult::Accepted {
            let prior = priors(&self.store.prior_checks(check.key()).await?);
            if let Some(p) = self
                .rule
                .repeated_of(&prior, &check.checkpoint, check.at_ms)
            {
                check.reason = Some(tamga_check::reason::ALREADY_PRESENTED.into());
                if !check.offline {
                    check.result = CheckResult::CouldNotCheck;
                }
                if let Some(o) = card.as_deref_mut() {
                    o.verdict = Verdict::AlreadyPresented;
                    o.repeated_of = Some(p.clone());
                    o.reason = None;
                }
                check.repeated_of = Some(p);
            }
        }
        let now = tamga_pipeline::now_ms();
        let issued = Issued {
            authority: tamga_receipt::Authority::from_certificate(
                signer.chain.first().map(Vec::as_slice).unwrap_or_default(),
                &signer.country,
            )
            .map_err(|e| tamga_check::CheckError::Invalid(e.to_string()))?,
            recorded_at: now.div_euclid(1000),
        };
        let xml = record::sign(
            &check,
            &issued,
            signer.signer.as_ref(),
            signer.chain.clone(),
        )?;
        let card_json = card
            .as_deref()
            .map(|o| serde_json::to_vec(o).unwrap_or_default());
        let event = Event::Checked(&check);
        let audit = event.audit(&self.chain, now);
        let also: Vec<ResultRow<'_>> = card_json
            .as_deref()
            .map(|c| ResultRow {
                declaration_id: &check.id,
                stage: CARD_STAGE,
                result: c,
            })
            .into_iter()
            .collect();
        let inserted = matches!(
            claim
                .record_all(
                    &self.chain,
                    ResultRow {
                        declaration_id: &check.id,
                        stage: RECORD_STAGE,
                        result: &xml,
                    },
                    &also,
                    audit.as_slice(),
                )
                .await?,
            StoreRecorded::Inserted
        );
        if inserted {
            event.emit(self.metrics);
        }
        Ok(Recorded { check, inserted })
    }
}

/// The declaration a payload names (read, not trusted), with this server's id of it.
pub async fn subject_of(
    store: &dyn ChecksStore,
    payload: &str,
) -> Result<Option<Subject>, StoreError> {
    let Ok(opened) = tamga_qr::open(payload) else {
        return Ok(None);
    };
    let c = opened.claims;
    let declaration_id = store
        .stage_result(&c.document_sha256, "received")
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok(Some(Subject {
        receipt_id: c.receipt_id,
        document_sha256: c.document_sha256,
        lrn: c.lrn,
        origin: c.origin,
        destination: c.destination,
        declaration_id,
    }))
}

/// What one upload of an offline log did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Upload {
    /// Checks recorded now.
    pub recorded: u64,
    /// Checks recorded by an earlier upload.
    pub already_recorded: u64,
    /// Lines that were not recorded: `(line number, why)`.
    pub refused: Vec<(usize, String)>,
}

impl Recorder<'_> {
    /// Records every line of an offline log. `officer`: who uploads through the API (the
    /// lines' officer otherwise); `allowed`: which checkpoints the site accepts.
    pub async fn upload(
        &self,
        log: &str,
        officer: Option<&str>,
        allowed: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Upload, RecordError> {
        let mut out = Upload::default();
        for (line, entry) in tamga_check::log::parse_log(log) {
            let entry: Entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    out.refused.push((line, e.to_string()));
                    continue;
                }
            };
            if !allowed(&entry.checkpoint) {
                out.refused.push((
                    line,
                    format!(
                        "the checkpoint {:?} is not one of this site's",
                        entry.checkpoint
                    ),
                ));
                continue;
            }
            let subject = subject_of(self.store, entry.payload.trim()).await?;
            let check = match entry.to_check(subject, officer) {
                Ok(c) => c,
                Err(e) => {
                    out.refused.push((line, e.to_string()));
                    continue;
                }
            };
            match self.record(check, None).await {
                Ok(r) if r.inserted => out.recorded += 1,
                Ok(_) => out.already_recorded += 1,
                Err(RecordError::Invalid(e)) => out.refused.push((line, e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

impl Pages {
    /// The recorder of this site.
    pub fn recorder(&self) -> Recorder<'_> {
        Recorder {
            store: self.checks.as_ref(),
            signer: self.bundle_signer.as_ref(),
            rule: self.checks_cfg.repeat_rule(),
            metrics: &self.metrics,
            chain: format!("{}/checks", self.gw.settings.worker),
        }
    }

    /// Checks `input` and records the check (by `officer` at `checkpoint` on `device`).
    pub async fn check_and_record(
        &self,
        input: &str,
        checkpoint: &str,
        officer: &str,
        device: &str,
    ) -> Result<(Recorded, Outcome), Response> {
        let mut outcome = self.outcome(input).await?;
        let verdict = outcome.verdict;
        let check = Check {
            id: tamga_check::new_id().map_err(|e| internal(&e.to_string()))?,
            at_ms: tamga_pipeline::now_ms(),
            checkpoint: checkpoint.to_owned(),
            officer: officer.to_owned(),
            device: device.to_owned(),
            offline: false,
            bundle_version: Some(self.trust_loaded_at),
            result: verdict.result(),
            reason: outcome.reason.as_ref().map(|r| r.code.clone()),
            input_kind: InputKind::of(input),
            input_sha256: hex::encode(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                input.as_bytes(),
            )),
            // Only an authentic receipt's claims are recorded as what was checked.
            subject: outcome
                .subject
                .clone()
                .filter(|_| matches!(verdict, Verdict::Accepted | Verdict::Rejected)),
            repeated_of: None,
        };
        match self.recorder().record(check, Some(&mut outcome)).await {
            Ok(r) => Ok((r, outcome)),
            Err(RecordError::Store(e)) => Err(self.store_error("record check", &e)),
            Err(e) => {
                tracing::error!(error = %e, "check not recorded");
                Err(internal(&e.to_string()))
            }
        }
    }

    /// A recorded check and its card (a card made from the record for an uploaded one).
    pub async fn recorded(&self, id: &str) -> Result<Option<(Check, Outcome)>, StoreError> {
        let found = self
            .store
            .stage_results(&[(id, RECORD_STAGE), (id, CARD_STAGE)])
            .await?;
        let mut found = found.into_iter();
        let Some(Some(xml)) = found.next() else {
            return Ok(None);
        };
        let Ok(parsed) = record::parse(&xml) else {
            return Ok(None);
        };
        let check = parsed.check;
        let outcome = found
            .next()
            .flatten()
            .and_then(|c| serde_json::from_slice::<Outcome>(&c).ok())
            .unwrap_or_else(|| outcome_of_record(&check));
        Ok(Some((check, outcome)))
    }
}

/// The card of a check recorded without one (uploaded from an offline log).
fn outcome_of_record(c: &Check) -> Outcome {
    let verdict = match (c.result, &c.repeated_of) {
        (CheckResult::Accepted, _) => Verdict::Accepted,
        (CheckResult::Rejected, _) => Verdict::Rejected,
        (CheckResult::NotAuthentic, _) => Verdict::NotAuthentic,
        (_, Some(_)) => Verdict::AlreadyPresented,
        _ => Verdict::CouldNotCheck,
    };
    let s = c.subject.clone();
    Outcome {
        verdict,
        reason: c.reason.as_ref().map(|code| super::check::Reason {
            code: code.clone(),
            rejection: c.result == CheckResult::Rejected,
            sentence: code.replace('_', " "),
        }),
        consignment: s
            .as_ref()
            .and_then(|s| s.lrn.clone())
            .map(|l| vec![("field-lrn".to_owned(), l)])
            .unwrap_or_default(),
        fields: s
            .as_ref()
            .map(|s| {
                vec![
                    (
                        "field-corridor".to_owned(),
                        format!("{} → {}", s.origin, s.destination),
                    ),
                    ("field-receipt".to_owned(), s.receipt_id.clone()),
                ]
            })
            .unwrap_or_default(),
        chain: Vec::new(),
        how: How::QrOnly,
        declaration_id: s.as_ref().and_then(|s| s.declaration_id.clone()),
        subject: s,
        repeated_of: c.repeated_of.clone(),
    }
}

fn internal(detail: &str) -> Response {
    Problem::new(
        Kind::Internal,
        format!("The check could not be recorded: {detail}"),
    )
    .into_response()
}

fn unavailable(p: &Pages, what: &str, e: &StoreError) -> Response {
    tracing::warn!(what, error = %e, "checks: store error");
    Problem::new(Kind::Unavailable, "The database is unavailable; try again.")
        .retry_after(p.gw.settings.retry_after_secs)
        .into_response()
}

/// The page token's holder when its role is one of `roles`: 401 / 403 problems otherwise.
async fn api_user(
    p: &Pages,
    headers: &HeaderMap,
    path: &str,
    roles: &[PageRole],
) -> Result<(Request, tamga_store::PageTokenOwner), Response> {
    let req = p.request(headers, path, None).await.map_err(|_| {
        Problem::new(Kind::Unavailable, "The database is unavailable; try again.")
            .retry_after(p.gw.settings.retry_after_secs)
            .into_response()
    })?;
    match req.user.clone() {
        None => Err(Problem::new(
            Kind::Unauthorized,
            "A page token of an officer or auditor is required (Authorization: Bearer).",
        )
        .into_response()),
        Some(u) if roles.contains(&u.role) => Ok((req, u)),
        Some(u) => Err(Problem::new(
            Kind::RoleNotAllowed,
            format!("The role {} may not do this.", u.role.as_str()),
        )
        .into_response()),
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn invalid(detail: impl Into<String>) -> Response {
    Problem::new(Kind::InvalidCheck, detail).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The JSON answer of a recorded check.
pub fn check_json(c: &Check, outcome: &Outcome) -> Value {
    let shows = matches!(
        outcome.verdict,
        Verdict::Accepted | Verdict::AlreadyPresented
    );
    json!({
        "id": c.id,
        "result": c.result.as_str(),
        "reason": c.reason,
        "checkpoint": c.checkpoint,
        "officer": c.officer,
        "device": c.device,
        "offline": c.offline,
        "bundleVersion": c.bundle_version,
        "checkedAt": crate::api::rfc3339(c.at_ms),
        "repeatedOf": c.repeated_of.as_ref().map(|p: &Presented| json!({
            "checkId": p.check_id,
            "checkpoint": p.checkpoint,
            "at": crate::api::rfc3339(p.at_ms),
        })),
        "declaration": c.subject.as_ref().filter(|_| shows).map(|s| json!({
            "receiptId": s.receipt_id,
            "documentSha256": s.document_sha256,
            "lrn": s.lrn,
            "origin": s.origin,
            "destination": s.destination,
        })),
        "consignment": if shows {
            outcome.consignment.iter().map(|(k, v)| json!({ "field": k.trim_start_matches("field-"), "value": v })).collect::<Vec<_>>()
        } else {
            Vec::new()
        },
        "links": {
            "record": format!("/v1/checks/{}", c.id),
            "card": format!("/check/{}", c.id),
        },
    })
}

/// `POST /v1/checks`: `{"input": "TMG1:…" | receipt id | LRN | id, "checkpoint": "…",
/// "device": "…"}` with an officer's or auditor's page token → 201, the check.
pub async fn create(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (_, user) = match api_user(
        &p,
        &headers,
        "/v1/checks",
        &[PageRole::Officer, PageRole::Auditor],
    )
    .await
    {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !is_json(&headers) {
        return invalid("Content-Type must be application/json.");
    }
    if body.len() > MAX_CHECK_BODY {
        return invalid(format!("The body is larger than {MAX_CHECK_BODY} bytes."));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return invalid("The body is not JSON.");
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::trim);
    let input = clean_input(text("input").unwrap_or(""));
    if input.is_empty() {
        return invalid("`input` (a QR payload, receipt id, declaration id or LRN) is required.");
    }
    let checkpoint = text("checkpoint").unwrap_or("");
    if !p.checkpoint_allowed(checkpoint) {
        return invalid("`checkpoint` must name one of this site's checkpoints.");
    }
    let device = text("device").unwrap_or("api");
    if !tamga_check::valid_name(device) {
        return invalid("`device` must be 1 to 64 characters without control characters.");
    }
    match p
        .check_and_record(&input, checkpoint, &user.holder, device)
        .await
    {
        Ok((r, outcome)) => {
            let mut resp = json_response(StatusCode::CREATED, &check_json(&r.check, &outcome));
            if let Ok(v) = HeaderValue::from_str(&format!("/v1/checks/{}", r.check.id)) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Err(r) => r,
    }
}

/// `GET /v1/checks/{id}`: the signed check record, `application/xml`.
pub async fn get_record(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = api_user(
        &p,
        &headers,
        "/v1/checks",
        &[PageRole::Officer, PageRole::Auditor, PageRole::Analyst],
    )
    .await
    {
        return r;
    }
    let missing = || Problem::new(Kind::NoSuchCheck, "No check has this id.").into_response();
    if !tamga_check::valid_id(&id) {
        return missing();
    }
    match p.store.stage_result(&id, RECORD_STAGE).await {
        Ok(Some(xml)) => {
            let mut r = (StatusCode::OK, xml).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"tamga-check-{id}.xml\""))
            {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Ok(None) => missing(),
        Err(e) => unavailable(&p, "check record", &e),
    }
}

/// `POST /v1/checks/offline`: an offline check log (one JSON object per line, as `tamga
/// receipt verify-qr --log` writes it and the page's offline verifier keeps it), recorded
/// as the uploading officer's offline checks. Idempotent.
pub async fn upload(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (_, user) = match api_user(
        &p,
        &headers,
        "/v1/checks/offline",
        &[PageRole::Officer, PageRole::Auditor],
    )
    .await
    {
        Ok(u) => u,
        Err(r) => return r,
    };
    if body.len() > MAX_UPLOAD_BODY {
        return invalid(format!("The log is larger than {MAX_UPLOAD_BODY} bytes."));
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return invalid("The log is not UTF-8 text.");
    };
    let allowed = |c: &str| p.checkpoint_allowed(c);
    match p
        .recorder()
        .upload(text, Some(&user.holder), &allowed)
        .await
    {
        Ok(u) => json_response(
            StatusCode::OK,
            &json!({
                "recorded": u.recorded,
                "alreadyRecorded": u.already_recorded,
                "refused": u.refused.iter().map(|(line, why)| json!({ "line": line, "error": why })).collect::<Vec<_>>(),
            }),
        ),
        Err(RecordError::Store(e)) => unavailable(&p, "upload", &e),
        Err(e) => internal(&e.to_string()),
    }
}
