//! `/check`: the checkpoint officer's verdict card, from a QR payload, a declaration id or an
//! LRN. Green *accepted*, red *rejected* / *not authentic* (with the reason in plain words),
//! amber *could not check* or *not decided yet* — the word and an icon say it, not only the
//! colour. A red or amber card states nothing of the declaration: only an authentic record
//! is shown as fact.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;
use tamga_pipeline::Decided;
use tamga_qr::State as QrState;
use tamga_store::{PageRole, Submission};

use super::{Pages, Request};

/// Longest input read from the form.
const MAX_INPUT: usize = 8_192;

/// The card.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// CSS class and `data-verdict`: `accepted`, `rejected`, `not-authentic`,
    /// `could-not-check`, `pending`.
    pub kind: &'static str,
    pub icon: &'static str,
    pub title: String,
    pub subtitle: String,
    pub reason: Option<String>,
    pub fields: Vec<(String, String)>,
    pub how: String,
    pub against: String,
    pub audit_href: Option<String>,
    pub audit_label: String,
}

/// The verdict, before words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Rejected,
    NotAuthentic,
    CouldNotCheck,
    Pending,
}

impl Verdict {
    fn kind(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotAuthentic => "not-authentic",
            Self::CouldNotCheck => "could-not-check",
            Self::Pending => "pending",
        }
    }
    fn icon(self) -> &'static str {
        match self {
            Self::Accepted => "✓",
            Self::Rejected | Self::NotAuthentic => "✗",
            Self::CouldNotCheck | Self::Pending => "?",
        }
    }
}

/// How the answer was reached.
#[derive(Debug, Clone, Copy)]
enum How {
    Online,
    QrOnly,
    QrAndRecord,
}

struct Outcome {
    verdict: Verdict,
    /// A Fluent key (`reason-…`) or a rejection's reason code with its English sentence.
    reason: Option<Reason>,
    fields: Vec<(&'static str, String)>,
    how: How,
    declaration_id: Option<String>,
}

enum Reason {
    Key(&'static str),
    Code { code: String, sentence: String },
}

pub async fn page(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match p.request(&headers, "/check", q.as_deref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = match p.require(&req, &[PageRole::Officer, PageRole::Auditor]) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let input: String = req
        .param("q")
        .unwrap_or("")
        .trim()
        .chars()
        .take(MAX_INPUT)
        .collect();
    let card = if input.is_empty() {
        None
    } else {
        match p.outcome(&input).await {
            Ok(o) => Some(p.card(&req, o, user.role == PageRole::Auditor)),
            Err(r) => return r,
        }
    };
    p.page(
        &req,
        "check.html",
        StatusCode::OK,
        minijinja::context! { q => input, card => card },
    )
}

impl Pages {
    async fn outcome(&self, input: &str) -> Result<Outcome, Response> {
        let now = tamga_pipeline::now_ms().div_euclid(1000);
        if input
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("TMG1:"))
        {
            return self.qr_outcome(input, now).await;
        }
        if input.starts_with("rcpt-") {
            return Ok(outcome(
                Verdict::CouldNotCheck,
                Some(Reason::Key("reason-receipt-id")),
                How::Online,
            ));
        }
        let is_id = input.len() == 32 && input.bytes().all(|b| b.is_ascii_hexdigit());
        let found = if is_id {
            self.store
                .submission_by_id(input)
                .await
                .map(|s| s.into_iter().collect())
        } else {
            self.store.submissions_by_lrn(input, 1).await
        };
        let subs: Vec<Submission> = found.map_err(|e| self.store_error("lookup", &e))?;
        match subs.into_iter().next() {
            None => Ok(outcome(
                Verdict::CouldNotCheck,
                Some(Reason::Key("reason-not-found")),
                How::Online,
            )),
            Some(s) => self.record_outcome(&s, now).await,
        }
    }

    /// The decision stored for `s` (under its id, or the first id of the same bytes).
    pub(crate) async fn decided_of(&self, s: &Submission) -> Result<Option<Decided>, Response> {
        let first = self
            .store
            .stage_result(&s.body_sha256, "received")
            .await
            .map_err(|e| self.store_error("stage_result", &e))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let id = first.as_deref().unwrap_or(&s.id);
        for candidate in [id, s.id.as_str()] {
            match self.store.stage_result(candidate, "decide").await {
                Ok(Some(bytes)) => return Ok(Decided::decode(&bytes).ok()),
                Ok(None) => {}
                Err(e) => return Err(self.store_error("stage_result", &e)),
            }
        }
        Ok(None)
    }

    /// From this server's record: the stored receipt, its signature checked again.
    async fn record_outcome(&self, s: &Submission, now: i64) -> Result<Outcome, Response> {
        let Some(d) = self.decided_of(s).await? else {
            let mut o = outcome(Verdict::Pending, None, How::Online);
            o.fields = vec![
                ("field-lrn", s.lrn.clone().unwrap_or_default()),
                (
                    "field-corridor",
                    format!("{} → {}", s.origin, s.destination),
                ),
                ("field-submitted", Pages::when(s.created_at_ms)),
            ];
            o.declaration_id = Some(s.id.clone());
            return Ok(o);
        };
        let Ok(receipt) = d.receipt_bytes() else {
            return Ok(outcome(
                Verdict::CouldNotCheck,
                Some(Reason::Key("reason-malformed")),
                How::Online,
            ));
        };
        let v = tamga_receipt::verify_receipt(&receipt, &self.trust, now, None);
        let Some(content) = v.receipt.clone().filter(|_| v.valid) else {
            return Ok(outcome(
                Verdict::CouldNotCheck,
                Some(Reason::Key("reason-revocation-unavailable")),
                How::Online,
            ));
        };
        let mut o = self.receipt_outcome(&content, Some(s), &d, How::Online);
        o.declaration_id = Some(s.id.clone());
        Ok(o)
    }

    fn receipt_outcome(
        &self,
        c: &tamga_receipt::ReceiptContent,
        s: Option<&Submission>,
        d: &Decided,
        how: How,
    ) -> Outcome {
        if c.decision == tamga_receipt::Decision::Rejected {
            let mut o = outcome(
                Verdict::Rejected,
                Some(Reason::Code {
                    code: c.reason.clone().unwrap_or_default(),
                    sentence: c.message.clone(),
                }),
                how,
            );
            o.fields = vec![("field-receipt", c.receipt_id.clone())];
            return o;
        }
        let report: serde_json::Value =
            serde_json::from_str(&c.validation_report).unwrap_or_default();
        let signer = report["signer"]["subject"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let mut fields = vec![
            ("field-lrn", c.lrn.clone().unwrap_or_default()),
            (
                "field-corridor",
                format!("{} → {}", c.origin, c.destination),
            ),
        ];
        if let Some(s) = s {
            fields.push(("field-broker", s.broker.clone()));
        }
        fields.push(("field-signer", signer));
        fields.push(("field-authority", c.authority.subject.clone()));
        if let Some(s) = s {
            fields.push(("field-submitted", Pages::when(s.created_at_ms)));
        }
        fields.push((
            "field-issued",
            c.issued_at.replace('T', " ").replace('Z', " UTC"),
        ));
        if let Ok(Some(doc)) = d.countersigned_bytes() {
            let g = super::goods::scan(&doc);
            let mut goods = g
                .first
                .iter()
                .map(|(desc, hs)| format!("{desc} (HS {hs})"))
                .collect::<Vec<_>>()
                .join("; ");
            if g.items > g.first.len() {
                goods.push_str(&format!(" … +{}", g.items - g.first.len()));
            }
            goods.push_str(&format!(" — {} items, {:.1} kg", g.items, g.gross_mass_kg));
            if let Some(v) = g.vehicle {
                fields.push(("field-vehicle", v));
            }
            fields.push(("field-goods", goods));
        }
        fields.push(("field-receipt", c.receipt_id.clone()));
        Outcome {
            verdict: Verdict::Accepted,
            reason: None,
            fields,
            how,
            declaration_id: None,
        }
    }

    async fn qr_outcome(&self, payload: &str, now: i64) -> Result<Outcome, Response> {
        let checked = tamga_qr::verify(payload, &self.trust, &self.authorities, now);
        let key = match checked.code {
            "unknown_authority" => "reason-unknown-authority",
            "revocation_unavailable" => "reason-revocation-unavailable",
            "bundle_stale" => "reason-bundle-stale",
            "bad_signature" => "reason-bad-signature",
            "certificate_mismatch" => "reason-certificate-mismatch",
            "untrusted_authority" => "reason-untrusted-authority",
            _ => "reason-malformed",
        };
        match checked.state {
            QrState::Authentic => {}
            QrState::CouldNotCheck => {
                return Ok(outcome(
                    Verdict::CouldNotCheck,
                    Some(Reason::Key(key)),
                    How::QrOnly,
                ))
            }
            _ => {
                return Ok(outcome(
                    Verdict::NotAuthentic,
                    Some(Reason::Key(key)),
                    How::QrOnly,
                ))
            }
        }
        let Some(claims) = checked.claims else {
            return Ok(outcome(
                Verdict::NotAuthentic,
                Some(Reason::Key("reason-malformed")),
                How::QrOnly,
            ));
        };
        // This server's record of the same bytes, when it has one.
        let subs = self
            .store
            .submissions_by_digest(&claims.document_sha256, 1)
            .await
            .map_err(|e| self.store_error("submissions_by_digest", &e))?;
        if let Some(s) = subs.first() {
            if let Some(d) = self.decided_of(s).await? {
                if let Some(c) = d
                    .receipt_bytes()
                    .ok()
                    .and_then(|r| tamga_receipt::parse_receipt(&r).ok())
                    .filter(|c| c.receipt_id == claims.receipt_id)
                {
                    let mut o = self.receipt_outcome(&c, Some(s), &d, How::QrAndRecord);
                    o.declaration_id = Some(s.id.clone());
                    return Ok(o);
                }
            }
        }
        // The QR alone: what the authority signed.
        if claims.decision == "rejected" {
            let code = claims.reason.clone().unwrap_or_default();
            let mut o = outcome(
                Verdict::Rejected,
                Some(Reason::Code {
                    sentence: code.replace('_', " "),
                    code,
                }),
                How::QrOnly,
            );
            o.fields = vec![("field-receipt", claims.receipt_id)];
            return Ok(o);
        }
        let authority = checked.authority.map(|a| a.subject).unwrap_or_default();
        Ok(Outcome {
            verdict: Verdict::Accepted,
            reason: None,
            fields: vec![
                ("field-lrn", claims.lrn.unwrap_or_default()),
                (
                    "field-corridor",
                    format!("{} → {}", claims.origin, claims.destination),
                ),
                ("field-authority", authority),
                (
                    "field-issued",
                    Pages::when(claims.issued_at.saturating_mul(1000)),
                ),
                ("field-document", claims.document_sha256),
                ("field-receipt", claims.receipt_id),
            ],
            how: How::QrOnly,
            declaration_id: None,
        })
    }

    fn card(&self, req: &Request, o: Outcome, auditor: bool) -> Card {
        let t = |k: &str| self.i18n.get(req.lang, k, &[]);
        let (title, sub) = match o.verdict {
            Verdict::Accepted => ("verdict-accepted", "verdict-accepted-sub"),
            Verdict::Rejected => ("verdict-rejected", "verdict-rejected-sub"),
            Verdict::NotAuthentic => ("verdict-not-authentic", "verdict-not-authentic-sub"),
            Verdict::CouldNotCheck => ("verdict-could-not-check", "verdict-could-not-check-sub"),
            Verdict::Pending => ("verdict-pending", "verdict-pending-sub"),
        };
        let reason = o.reason.map(|r| match r {
            Reason::Key(k) => t(k),
            Reason::Code { code, sentence } => {
                let key = format!("reason-code-{code}");
                if self.i18n.has(req.lang, &key) {
                    t(&key)
                } else {
                    sentence
                }
            }
        });
        let how = match o.how {
            How::Online => "checked-online",
            How::QrOnly => "checked-qr-only",
            How::QrAndRecord => "checked-qr-and-record",
        };
        let date = Pages::when(self.trust_loaded_at.saturating_mul(1000));
        Card {
            kind: o.verdict.kind(),
            icon: o.verdict.icon(),
            title: t(title),
            subtitle: t(sub),
            reason,
            fields: o
                .fields
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (t(k), v))
                .collect(),
            how: t(how),
            against: self
                .i18n
                .get(req.lang, "checked-against", &[("date", &date)]),
            audit_href: o
                .declaration_id
                .filter(|_| auditor)
                .map(|id| format!("/declarations/{id}")),
            audit_label: t("audit-timeline"),
        }
    }
}

fn outcome(verdict: Verdict, reason: Option<Reason>, how: How) -> Outcome {
    Outcome {
        verdict,
        reason,
        fields: Vec::new(),
        how,
        declaration_id: None,
    }
}
