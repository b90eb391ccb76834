//! `/declarations/{id}`: the auditor's page. The audit events with their chain positions and
//! hashes, "audit chain verified up to event N" (each chain re-hashed from its start up to
//! the declaration's last event — incrementally: a verified prefix is remembered), the
//! validation report (simple and full JSON), the signer's certificate path, and downloads.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tamga_store::{PageRole, StoreError, StoredEvent, Submission, GENESIS_HASH};

use super::Pages;

/// Events read per round trip while verifying a chain.
const VERIFY_PAGE: usize = 2_000;

#[derive(Debug, Serialize)]
struct EventRow {
    chain: String,
    seq: i64,
    at: String,
    stage: String,
    outcome: String,
    reason: String,
    hash: String,
    prev_hash: String,
}

#[derive(Debug, Serialize)]
struct ChainLine {
    ok: bool,
    text: String,
}

#[derive(Debug, Serialize)]
struct CertRow {
    subject: String,
    issuer: String,
    serial: String,
    valid: String,
}

/// A chain checked from its start: `Ok(last seq)` or `Err((seq, what))`.
type ChainCheck = Result<i64, (i64, String)>;

impl Pages {
    /// Verifies `chain` from the remembered watermark (or genesis) up to `upto`.
    async fn verify_chain_upto(&self, chain: &str, upto: i64) -> Result<ChainCheck, StoreError> {
        let start = self
            .watermarks
            .lock()
            .map(|w| w.get(chain).cloned())
            .unwrap_or(None)
            .unwrap_or((0, GENESIS_HASH.to_owned()));
        let (mut seq, mut prev) = start;
        while seq < upto {
            let page = self
                .store
                .chain_range(chain, seq + 1, upto, VERIFY_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if e.seq != seq + 1 {
                    return Ok(Err((seq + 1, "missing".into())));
                }
                if e.prev_hash != prev {
                    return Ok(Err((e.seq, "does not link to the event before it".into())));
                }
                if e.expected_hash() != e.hash {
                    return Ok(Err((
                        e.seq,
                        "its content no longer matches its hash".into(),
                    )));
                }
                seq = e.seq;
                prev = e.hash.clone();
            }
        }
        if seq < upto {
            return Ok(Err((seq + 1, "missing".into())));
        }
        if let Ok(mut w) = self.watermarks.lock() {
            let entry = w.entry(chain.to_owned()).or_insert((0, String::new()));
            if entry.0 < seq {
                *entry = (seq, prev);
            }
        }
        Ok(Ok(seq))
    }

    async fn events_of(
        &self,
        id: &str,
        s: Option<&Submission>,
    ) -> Result<Vec<StoredEvent>, Response> {
        let mut events = self
            .store
            .declaration_stored_events(id)
            .await
            .map_err(|e| self.store_error("declaration_stored_events", &e))?;
        if let Some(s) = s {
            if let Some(first) = self
                .store
                .stage_result(&s.body_sha256, "received")
                .await
                .map_err(|e| self.store_error("stage_result", &e))?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .filter(|f| f != id)
            {
                let theirs = self
                    .store
                    .declaration_stored_events(&first)
                    .await
                    .map_err(|e| self.store_error("declaration_stored_events", &e))?;
                events.extend(
                    theirs
                        .into_iter()
                        .filter(|e| e.event.stage != tamga_store::SUBMITTED),
                );
            }
        }
        events.sort_by(|a, b| {
            (a.event.at_ms, &a.chain, a.seq).cmp(&(b.event.at_ms, &b.chain, b.seq))
        });
        Ok(events)
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub async fn page(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let path = format!("/declarations/{id}");
    let req = match p.request(&headers, &path, q.as_deref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(r) = p.require(&req, &[PageRole::Auditor]) {
        return r;
    }
    let t = |k: &str| p.i18n.get(req.lang, k, &[]);
    if !valid_id(&id) {
        return (StatusCode::NOT_FOUND, t("reason-not-found")).into_response();
    }
    let s = match p.store.submission_by_id(&id).await {
        Ok(s) => s,
        Err(e) => return p.store_error("submission_by_id", &e),
    };
    let events = match p.events_of(&id, s.as_ref()).await {
        Ok(e) => e,
        Err(r) => return r,
    };
    if s.is_none() && events.is_empty() {
        return p.page(
            &req,
            "forbidden.html",
            StatusCode::NOT_FOUND,
            minijinja::context! { forbidden_text => t("reason-not-found") },
        );
    }
    let plain: Vec<tamga_store::AuditEvent> = events.iter().map(|e| e.event.clone()).collect();
    let derived = crate::status::derive(&plain);
    // Each chain the declaration's events sit in, verified up to its last such event.
    let mut uptos: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for e in &events {
        let u = uptos.entry(e.chain.as_str()).or_insert(0);
        *u = (*u).max(e.seq);
    }
    let mut chains = Vec::new();
    for (chain, upto) in uptos {
        match p.verify_chain_upto(chain, upto).await {
            Ok(Ok(n)) => chains.push(ChainLine {
                ok: true,
                text: p.i18n.get(
                    req.lang,
                    "audit-verified",
                    &[("n", &n.to_string()), ("chain", chain)],
                ),
            }),
            Ok(Err((n, detail))) => chains.push(ChainLine {
                ok: false,
                text: p.i18n.get(
                    req.lang,
                    "audit-broken",
                    &[("n", &n.to_string()), ("chain", chain), ("detail", &detail)],
                ),
            }),
            Err(e) => return p.store_error("chain_range", &e),
        }
    }
    let rows: Vec<EventRow> = events
        .iter()
        .map(|e| EventRow {
            chain: e.chain.clone(),
            seq: e.seq,
            at: Pages::when(e.event.at_ms),
            stage: e.event.stage.clone(),
            outcome: e.event.outcome.clone(),
            reason: e.event.reason.clone().unwrap_or_default(),
            hash: e.hash.clone(),
            prev_hash: e.prev_hash.clone(),
        })
        .collect();
    let decided = match &s {
        Some(s) => match p.decided_of(s).await {
            Ok(d) => d,
            Err(r) => return r,
        },
        None => None,
    };
    let content = decided
        .as_ref()
        .and_then(|d| d.receipt_bytes().ok())
        .and_then(|r| tamga_receipt::parse_receipt(&r).ok());
    let report: Option<serde_json::Value> = content
        .as_ref()
        .and_then(|c| serde_json::from_str(&c.validation_report).ok());
    let full = report
        .as_ref()
        .and_then(|r| serde_json::to_string_pretty(r).ok())
        .unwrap_or_default();
    let simple: Vec<(String, String)> = report
        .as_ref()
        .map(|r| {
            [
                ("report-indication", &r["indication"]),
                ("report-sub-indication", &r["subIndication"]),
                ("field-reason", &r["reason"]),
                ("report-message", &r["message"]),
                ("report-format", &r["signatureFormat"]),
                ("report-signing-time", &r["signingTime"]),
                ("field-signer", &r["signer"]["subject"]),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (t(k), v.to_owned())))
            .collect()
        })
        .unwrap_or_default();
    let certs: Vec<CertRow> = report
        .as_ref()
        .and_then(|r| r["chain"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|c| CertRow {
            subject: c["subject"].as_str().unwrap_or_default().to_owned(),
            issuer: c["issuer"].as_str().unwrap_or_default().to_owned(),
            serial: c["serial"].as_str().unwrap_or_default().to_owned(),
            valid: format!(
                "{} — {}",
                c["notBefore"].as_str().unwrap_or_default(),
                c["notAfter"].as_str().unwrap_or_default()
            ),
        })
        .collect();
    let mut downloads = Vec::new();
    if decided.is_some() {
        if decided.as_ref().is_some_and(|d| d.countersigned.is_some()) {
            downloads.push((
                t("download-countersigned"),
                format!("{path}/countersigned.xml"),
            ));
        }
        downloads.push((t("download-receipt"), format!("{path}/receipt.xml")));
        downloads.push((t("download-report"), format!("{path}/report.json")));
        if content.as_ref().is_some_and(|c| c.qr.is_some()) {
            downloads.push((t("download-qr"), format!("{path}/qr.svg")));
        }
    }
    let summary: Vec<(String, String)> = [
        ("audit-status", derived.status.to_owned()),
        ("field-id", id.clone()),
        (
            "field-lrn",
            s.as_ref()
                .and_then(|s| s.lrn.clone())
                .or_else(|| content.as_ref().and_then(|c| c.lrn.clone()))
                .unwrap_or_default(),
        ),
        (
            "field-corridor",
            s.as_ref()
                .map(|s| format!("{} → {}", s.origin, s.destination))
                .unwrap_or_default(),
        ),
        (
            "field-broker",
            s.as_ref().map(|s| s.broker.clone()).unwrap_or_default(),
        ),
        (
            "field-document",
            s.as_ref()
                .map(|s| s.body_sha256.clone())
                .unwrap_or_default(),
        ),
        (
            "field-receipt",
            content
                .as_ref()
                .map(|c| c.receipt_id.clone())
                .unwrap_or_default(),
        ),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (t(k), v))
    .collect();
    p.page(
        &req,
        "declaration.html",
        StatusCode::OK,
        minijinja::context! {
            heading => p.i18n.get(req.lang, "audit-title", &[("id", &id)]),
            summary => summary,
            events => rows,
            chains => chains,
            simple => simple,
            full => full,
            certs => certs,
            downloads => downloads,
            decided => decided.is_some(),
        },
    )
}

/// `/declarations/{id}/{receipt.xml|countersigned.xml|report.json|qr.svg}`.
pub async fn download(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match p
        .request(
            &headers,
            &format!("/declarations/{id}/{file}"),
            q.as_deref(),
        )
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let roles: &[PageRole] = if file == "qr.svg" {
        &[PageRole::Auditor, PageRole::Officer]
    } else {
        &[PageRole::Auditor]
    };
    if let Err(r) = p.require(&req, roles) {
        return r;
    }
    let not_found = || (StatusCode::NOT_FOUND, "Not found.").into_response();
    if !valid_id(&id) {
        return not_found();
    }
    let s = match p.store.submission_by_id(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(),
        Err(e) => return p.store_error("submission_by_id", &e),
    };
    let d = match p.decided_of(&s).await {
        Ok(Some(d)) => d,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    let receipt = d.receipt_bytes().unwrap_or_default();
    let (ctype, body): (&'static str, Vec<u8>) = match file.as_str() {
        "receipt.xml" => ("application/xml", receipt),
        "countersigned.xml" => match d.countersigned_bytes() {
            Ok(Some(doc)) => ("application/xml", doc),
            _ => return not_found(),
        },
        "report.json" => match tamga_receipt::parse_receipt(&receipt) {
            Ok(c) => ("application/json", c.validation_report.into_bytes()),
            Err(_) => return not_found(),
        },
        "qr.svg" => match tamga_receipt::parse_receipt(&receipt)
            .ok()
            .and_then(|c| c.qr)
            .and_then(|q| tamga_qr::svg(&q).ok())
        {
            Some(svg) => ("image/svg+xml", svg.into_bytes()),
            None => return not_found(),
        },
        _ => return not_found(),
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{id}-{file}\"")) {
        if file != "qr.svg" {
            r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    r
}
