//! `/check`: the checkpoint officer's verdict card, from a QR payload, a receipt id, a
//! declaration id or an LRN. Three states, never confused: green *accepted*; red
//! *rejected* / *not authentic* (with the reason); amber *could not check* (unknown
//! authority, stale trust material, no record, not decided yet) or *already presented*
//! (a copy?). The word and an icon say it, not only the colour.
//!
//! A green card shows what the officer matches against the truck — vehicle, containers,
//! seals, gross mass, HS codes, LRN — in large type, and the recognition chain (broker
//! certificate → origin CA → trust list → counter-signature). A red card shows the reason
//! and nothing of the declaration.
//!
//! Every check is recorded ([`super::checks`]): `POST /check` (the form; `GET /check?q=`
//! for scanners that open a URL) records it and redirects to `/check/{id}`, which shows the
//! recorded card in the reader's language with a link to its signed check record.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tamga_check::{CheckResult, InputKind, Presented, Subject};
use tamga_pipeline::Decided;
use tamga_qr::State as QrState;
use tamga_store::{PageRole, PageTokenOwner, Submission};

use super::{parse_query, Pages, Request};

/// Longest input read from the form.
pub const MAX_INPUT: usize = 8_192;
/// The cookies remembering this device's checkpoint and label.
pub const CHECKPOINT_COOKIE: &str = "tamga_checkpoint";
pub const DEVICE_COOKIE: &str = "tamga_device";
/// HS codes shown in large type (the rest as a count).
const MAX_HS: usize = 6;
/// The device label when none is given.
pub const DEFAULT_DEVICE: &str = "web";

/// The card, in the reader's language.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    /// CSS class and `data-verdict`: `accepted`, `rejected`, `not-authentic`,
    /// `could-not-check`, `pending`, `already-presented`.
    pub kind: &'static str,
    pub icon: &'static str,
    pub title: String,
    pub subtitle: String,
    pub reason: Option<String>,
    /// "Already presented at POST at TIME".
    pub repeated: Option<String>,
    /// What to match against the truck, in large type.
    pub consignment: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
    /// The recognition chain, one line per step.
    pub chain: Vec<String>,
    pub chain_title: String,
    pub how: String,
    pub against: String,
    pub audit_href: Option<String>,
    pub audit_label: String,
    pub record_href: Option<String>,
    pub record_label: String,
    pub check_line: Option<String>,
}

/// The verdict, before words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Accepted,
    Rejected,
    NotAuthentic,
    CouldNotCheck,
    Pending,
    AlreadyPresented,
}

impl Verdict {
    fn kind(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::NotAuthentic => "not-authentic",
            Self::CouldNotCheck => "could-not-check",
            Self::Pending => "pending",
            Self::AlreadyPresented => "already-presented",
        }
    }
    fn icon(self) -> &'static str {
        match self {
            Self::Accepted => "✓",
            Self::Rejected | Self::NotAuthentic => "✗",
            Self::CouldNotCheck | Self::Pending => "?",
            Self::AlreadyPresented => "!",
        }
    }
    /// The `checked` event's result (contract).
    pub fn result(self) -> CheckResult {
        match self {
            Self::Accepted => CheckResult::Accepted,
            Self::Rejected => CheckResult::Rejected,
            Self::NotAuthentic => CheckResult::NotAuthentic,
            Self::CouldNotCheck | Self::Pending | Self::AlreadyPresented => {
                CheckResult::CouldNotCheck
            }
        }
    }
    /// Green and red verdicts on an authentic receipt state facts about the declaration.
    fn authentic(self) -> bool {
        matches!(
            self,
            Self::Accepted | Self::Rejected | Self::AlreadyPresented
        )
    }
}

/// How the answer was reached.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    Online,
    QrOnly,
    QrAndRecord,
}

/// Why: a stable code (the record's and the audit event's `reason`) and, for a
/// rejection, its English sentence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    /// A rejection reason of the declaration (`reason-code-…` texts), not of the check.
    pub rejection: bool,
    pub sentence: String,
}

impl Reason {
    fn check(code: &str) -> Self {
        Self {
            code: code.to_owned(),
            rejection: false,
            sentence: code.replace('_', " "),
        }
    }
}

/// One line of the recognition chain: a Fluent key and its arguments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub key: String,
    pub args: Vec<(String, String)>,
}

fn step(key: &str, args: &[(&str, String)]) -> Step {
    Step {
        key: key.to_owned(),
        args: args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

/// What a check found, in no language: stored with the check so `/check/{id}` can show it
/// in any.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: Option<Reason>,
    /// `(Fluent key, value)`.
    pub consignment: Vec<(String, String)>,
    pub fields: Vec<(String, String)>,
    pub chain: Vec<Step>,
    pub how: How,
    /// This server's id of the declaration (the auditor's link).
    pub declaration_id: Option<String>,
    pub subject: Option<Subject>,
    pub repeated_of: Option<Presented>,
}

fn kv(pairs: Vec<(&str, String)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

fn outcome(verdict: Verdict, reason: Option<Reason>, how: How) -> Outcome {
    Outcome {
        verdict,
        reason,
        consignment: Vec::new(),
        fields: Vec::new(),
        chain: Vec::new(),
        how,
        declaration_id: None,
        subject: None,
        repeated_of: None,
    }
}

/// The input as typed: trimmed, bounded.
pub fn clean_input(raw: &str) -> String {
    raw.trim().chars().take(MAX_INPUT).collect()
}

fn short(sha256: &str) -> String {
    sha256.get(..16).unwrap_or(sha256).to_owned()
}

impl Pages {
    /// What `input` is worth, checked against this server's record and trust list.
    pub async fn outcome(&self, input: &str) -> Result<Outcome, Response> {
        let now = tamga_pipeline::now_ms().div_euclid(1000);
        match InputKind::of(input) {
            InputKind::Qr => self.qr_outcome(input, now).await,
            InputKind::ReceiptId => self.receipt_id_outcome(input, now).await,
            kind => {
                let found = if kind == InputKind::DeclarationId {
                    self.store
                        .submission_by_id(input)
                        .await
                        .map(|s| s.into_iter().collect())
                } else {
                    self.store.submissions_by_lrn(input, 1).await
                };
                let subs: Vec<Submission> = found.map_err(|e| self.store_error("lookup", &e))?;
                match subs.into_iter().next() {
                    None => Ok(not_found()),
                    Some(s) => self.record_outcome(&s, now).await,
                }
            }
        }
    }

    /// A receipt id typed by the officer (the QR is unreadable): the declaration the
    /// pipeline recorded under it.
    async fn receipt_id_outcome(&self, receipt_id: &str, now: i64) -> Result<Outcome, Response> {
        let id = self
            .store
            .stage_result(
                &tamga_pipeline::engine::receipt_key(receipt_id),
                tamga_pipeline::engine::RECEIPT_STAGE,
            )
            .await
            .map_err(|e| self.store_error("receipt lookup", &e))?
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let Some(id) = id else {
            return Ok(not_found());
        };
        let s = self
            .store
            .submission_by_id(&id)
            .await
            .map_err(|e| self.store_error("submission_by_id", &e))?;
        match s {
            Some(s) => self.record_outcome(&s, now).await,
            None => Ok(not_found()),
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
            let mut o = outcome(
                Verdict::Pending,
                Some(Reason::check(tamga_check::reason::NOT_DECIDED)),
                How::Online,
            );
            o.declaration_id = Some(s.id.clone());
            return Ok(o);
        };
        let Ok(receipt) = d.receipt_bytes() else {
            return Ok(outcome(
                Verdict::CouldNotCheck,
                Some(Reason::check("malformed")),
                How::Online,
            ));
        };
        let v = tamga_receipt::verify_receipt(&receipt, &self.trust, now, None);
        let Some(content) = v.receipt.clone().filter(|_| v.valid) else {
            // This server's own receipt no longer verifies here: stale or missing
            // revocation data, most likely — not a forgery.
            return Ok(outcome(
                Verdict::CouldNotCheck,
                Some(Reason::check("revocation_unavailable")),
                How::Online,
            ));
        };
        let mut o = self.receipt_outcome(&content, Some(s), &d, How::Online);
        o.declaration_id = Some(d.id.clone());
        Ok(o)
    }

    fn receipt_outcome(
        &self,
        c: &tamga_receipt::ReceiptContent,
        s: Option<&Submission>,
        d: &Decided,
        how: How,
    ) -> Outcome {
        let subject = Subject {
            receipt_id: c.receipt_id.clone(),
            document_sha256: c.document_sha256.clone(),
            lrn: c.lrn.clone(),
            origin: c.origin.clone(),
            destination: c.destination.clone(),
            declaration_id: Some(d.id.clone()),
        };
        if c.decision == tamga_receipt::Decision::Rejected {
            let mut o = outcome(
                Verdict::Rejected,
                Some(Reason {
                    code: c.reason.clone().unwrap_or_default(),
                    rejection: true,
                    sentence: c.message.clone(),
                }),
                how,
            );
            o.subject = Some(subject);
            return o;
        }
        let report: serde_json::Value =
            serde_json::from_str(&c.validation_report).unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        let mut consignment = vec![("field-lrn", c.lrn.clone().unwrap_or_default())];
        let mut fields = vec![(
            "field-corridor",
            format!("{} → {}", c.origin, c.destination),
        )];
        if let Some(s) = s {
            fields.push(("field-broker", s.broker.clone()));
            fields.push(("field-submitted", Pages::when(s.created_at_ms)));
        }
        fields.push((
            "field-issued",
            c.issued_at.replace('T', " ").replace('Z', " UTC"),
        ));
        if let Ok(Some(doc)) = d.countersigned_bytes() {
            let g = super::goods::scan(&doc);
            consignment.push(("field-vehicle", g.vehicle.clone().unwrap_or_default()));
            consignment.push(("field-containers", g.containers.join(", ")));
            consignment.push(("field-seals", g.seals.join(", ")));
            consignment.push(("field-gross-mass", format!("{:.1} kg", g.gross_mass_kg)));
            let mut hs = g
                .hs_codes
                .iter()
                .take(MAX_HS)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if g.hs_codes.len() > MAX_HS {
                hs.push_str(&format!(" … +{}", g.hs_codes.len() - MAX_HS));
            }
            consignment.push(("field-hs-codes", hs));
            let mut goods = g
                .first
                .iter()
                .map(|(desc, hs)| format!("{desc} (HS {hs})"))
                .collect::<Vec<_>>()
                .join("; ");
            if g.items > g.first.len() {
                goods.push_str(&format!(" … +{}", g.items - g.first.len()));
            }
            goods.push_str(&format!(" — {} items", g.items));
            fields.push(("field-goods", goods));
        }
        fields.push(("field-receipt", c.receipt_id.clone()));
        // The recognition chain, as the receipt's report states it.
        let chain_certs = report["chain"].as_array().cloned().unwrap_or_default();
        let mut chain = vec![step(
            "chain-broker",
            &[
                ("subject", text(&report["signer"]["subject"])),
                ("serial", text(&report["signer"]["serial"])),
            ],
        )];
        if let Some(anchor) = chain_certs.last() {
            chain.push(step(
                "chain-origin-ca",
                &[
                    ("country", c.origin.clone()),
                    ("subject", text(&anchor["subject"])),
                ],
            ));
        }
        chain.push(self.trust_step(&report["trustSource"]));
        chain.push(step(
            "chain-countersigned",
            &[
                ("authority", c.authority.subject.clone()),
                ("certificate", short(&c.authority.certificate_sha256)),
                ("time", c.issued_at.replace('T', " ").replace('Z', " UTC")),
            ],
        ));
        Outcome {
            verdict: Verdict::Accepted,
            reason: None,
            consignment: kv(consignment),
            fields: kv(fields),
            chain,
            how,
            declaration_id: None,
            subject: Some(subject),
            repeated_of: None,
        }
    }

    /// "Recognised in the trust list vN of DATE": the signed trusted list's sequence when the
    /// origin's trust came from one, else the trust directory this server loaded.
    fn trust_step(&self, source: &serde_json::Value) -> Step {
        let loaded = Pages::when(self.trust_loaded_at.saturating_mul(1000));
        match source["kind"].as_str() {
            Some("trustedList") => step(
                "chain-trusted-list",
                &[
                    ("version", source["sequence"].to_string()),
                    (
                        "date",
                        Pages::when(source["issuedUnix"].as_i64().unwrap_or(0) * 1000),
                    ),
                ],
            ),
            _ => step(
                "chain-trust-bundle",
                &[
                    ("version", self.trust_loaded_at.to_string()),
                    ("date", loaded),
                ],
            ),
        }
    }

    async fn qr_outcome(&self, payload: &str, now: i64) -> Result<Outcome, Response> {
        let checked = tamga_qr::verify(payload, &self.trust, &self.authorities, now);
        match checked.state {
            QrState::Authentic => {}
            QrState::CouldNotCheck => {
                return Ok(outcome(
                    Verdict::CouldNotCheck,
                    Some(Reason::check(checked.code)),
                    How::QrOnly,
                ))
            }
            _ => {
                return Ok(outcome(
                    Verdict::NotAuthentic,
                    Some(Reason::check(checked.code)),
                    How::QrOnly,
                ))
            }
        }
        let Some(claims) = checked.claims else {
            return Ok(outcome(
                Verdict::NotAuthentic,
                Some(Reason::check("malformed")),
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
                    o.declaration_id = Some(d.id.clone());
                    return Ok(o);
                }
            }
        }
        // The QR alone: what the authority signed.
        let subject = Subject {
            receipt_id: claims.receipt_id.clone(),
            document_sha256: claims.document_sha256.clone(),
            lrn: claims.lrn.clone(),
            origin: claims.origin.clone(),
            destination: claims.destination.clone(),
            declaration_id: None,
        };
        if claims.decision == "rejected" {
            let code = claims.reason.clone().unwrap_or_default();
            let mut o = outcome(
                Verdict::Rejected,
                Some(Reason {
                    sentence: code.replace('_', " "),
                    code,
                    rejection: true,
                }),
                How::QrOnly,
            );
            o.subject = Some(subject);
            return Ok(o);
        }
        let authority = checked.authority.clone();
        let issued = Pages::when(claims.issued_at.saturating_mul(1000));
        let mut chain = vec![step("chain-broker-unknown", &[])];
        if let Some(anchor) = checked.chain.last() {
            chain.push(step(
                "chain-authority-ca",
                &[
                    ("country", claims.destination.clone()),
                    ("subject", anchor.subject.clone()),
                ],
            ));
        }
        chain.push(self.trust_step(&serde_json::Value::Null));
        chain.push(step(
            "chain-countersigned",
            &[
                (
                    "authority",
                    authority
                        .as_ref()
                        .map(|a| a.subject.clone())
                        .unwrap_or_default(),
                ),
                ("certificate", short(&claims.authority_certificate_sha256)),
                ("time", issued.clone()),
            ],
        ));
        Ok(Outcome {
            verdict: Verdict::Accepted,
            reason: None,
            consignment: kv(vec![("field-lrn", claims.lrn.unwrap_or_default())]),
            fields: kv(vec![
                (
                    "field-corridor",
                    format!("{} → {}", claims.origin, claims.destination),
                ),
                (
                    "field-authority",
                    authority.map(|a| a.subject).unwrap_or_default(),
                ),
                ("field-issued", issued),
                ("field-document", claims.document_sha256),
                ("field-receipt", claims.receipt_id),
            ]),
            chain,
            how: How::QrOnly,
            declaration_id: None,
            subject: Some(subject),
            repeated_of: None,
        })
    }

    /// The card of a recorded check, in the reader's language.
    pub fn card(
        &self,
        lang: &str,
        o: &Outcome,
        check: Option<(&str, i64, &str)>,
        auditor: bool,
    ) -> Card {
        let t = |k: &str| self.i18n.get(lang, k, &[]);
        let (title, sub) = match o.verdict {
            Verdict::Accepted => ("verdict-accepted", "verdict-accepted-sub"),
            Verdict::Rejected => ("verdict-rejected", "verdict-rejected-sub"),
            Verdict::NotAuthentic => ("verdict-not-authentic", "verdict-not-authentic-sub"),
            Verdict::CouldNotCheck => ("verdict-could-not-check", "verdict-could-not-check-sub"),
            Verdict::Pending => ("verdict-pending", "verdict-pending-sub"),
            Verdict::AlreadyPresented => {
                ("verdict-already-presented", "verdict-already-presented-sub")
            }
        };
        let reason = o
            .reason
            .as_ref()
            .filter(|_| o.verdict != Verdict::AlreadyPresented)
            .map(|r| {
                let key = if r.rejection {
                    format!("reason-code-{}", r.code)
                } else {
                    format!("reason-{}", r.code.replace('_', "-"))
                };
                if self.i18n.has(lang, &key) {
                    t(&key)
                } else {
                    r.sentence.clone()
                }
            });
        let repeated = o.repeated_of.as_ref().map(|p| {
            self.i18n.get(
                lang,
                "already-presented-at",
                &[
                    ("checkpoint", &p.checkpoint),
                    ("time", &Pages::when(p.at_ms)),
                ],
            )
        });
        // Only an authentic receipt's content is shown as fact; a red card gives the reason
        // alone.
        let shows_declaration = matches!(o.verdict, Verdict::Accepted | Verdict::AlreadyPresented);
        let label = |pairs: &[(String, String)]| -> Vec<(String, String)> {
            pairs.iter().map(|(k, v)| (t(k), v.clone())).collect()
        };
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
            repeated,
            consignment: if shows_declaration {
                label(&o.consignment)
            } else {
                Vec::new()
            },
            fields: if shows_declaration {
                label(&o.fields)
            } else {
                Vec::new()
            },
            chain: if shows_declaration {
                o.chain
                    .iter()
                    .map(|s| {
                        let args: Vec<(&str, &str)> = s
                            .args
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        self.i18n.get(lang, &s.key, &args)
                    })
                    .collect()
            } else {
                Vec::new()
            },
            chain_title: t("chain-title"),
            how: t(how),
            against: self.i18n.get(lang, "checked-against", &[("date", &date)]),
            audit_href: o
                .declaration_id
                .as_ref()
                .filter(|_| auditor && o.verdict.authentic())
                .map(|id| format!("/declarations/{id}")),
            audit_label: t("audit-timeline"),
            record_href: check.map(|(id, _, _)| format!("/v1/checks/{id}")),
            record_label: t("check-record"),
            check_line: check.map(|(id, at_ms, checkpoint)| {
                self.i18n.get(
                    lang,
                    "check-recorded",
                    &[
                        ("id", id),
                        ("checkpoint", checkpoint),
                        ("time", &Pages::when(at_ms)),
                    ],
                )
            }),
        }
    }
}

fn not_found() -> Outcome {
    outcome(
        Verdict::CouldNotCheck,
        Some(Reason::check(tamga_check::reason::NOT_FOUND)),
        How::Online,
    )
}

/// The checkpoint and device of this request: the form's (or query's) values, else the
/// remembered ones, else the only configured checkpoint.
fn where_from(p: &Pages, headers: &HeaderMap, form: &[(String, String)]) -> (String, String) {
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let remembered = |name: &str| {
        let pair = format!("v={}", super::cookie(headers, name)?);
        form_urlencoded::parse(pair.as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let only = match p.checks_cfg.checkpoints.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    let checkpoint = get("checkpoint")
        .or_else(|| remembered(CHECKPOINT_COOKIE))
        .or(only)
        .unwrap_or_default();
    let device = get("device")
        .or_else(|| remembered(DEVICE_COOKIE))
        .unwrap_or_else(|| DEFAULT_DEVICE.to_owned());
    (checkpoint, device)
}

/// The form's state for the template.
#[derive(Debug, Serialize)]
struct FormState {
    q: String,
    checkpoint: String,
    device: String,
    checkpoints: Vec<String>,
    error: Option<String>,
}

impl Pages {
    fn form_state(&self, q: String, checkpoint: String, device: String) -> FormState {
        FormState {
            q,
            checkpoint,
            device,
            checkpoints: self.checks_cfg.checkpoints.clone(),
            error: None,
        }
    }

    /// A checkpoint name this site accepts: a valid name, and one of the configured ones
    /// when the site lists them.
    pub fn checkpoint_allowed(&self, name: &str) -> bool {
        self.checks_cfg.allows_checkpoint(name)
    }
}

/// Runs and records a check from the form (or a scanner's URL), then redirects to its card.
async fn check_and_redirect(
    p: &Pages,
    req: &Request,
    user: &PageTokenOwner,
    headers: &HeaderMap,
    form: &[(String, String)],
) -> Response {
    let input = clean_input(
        form.iter()
            .find(|(k, _)| k == "q")
            .map_or("", |(_, v)| v.as_str()),
    );
    let (checkpoint, device) = where_from(p, headers, form);
    let mut state = p.form_state(input.clone(), checkpoint.clone(), device.clone());
    if input.is_empty() {
        return p.page(
            req,
            "check.html",
            StatusCode::OK,
            minijinja::context! { form => state },
        );
    }
    if !p.checkpoint_allowed(&checkpoint) || !tamga_check::valid_name(&device) {
        state.error = Some(p.i18n.get(req.lang, "check-choose-checkpoint", &[]));
        return p.page(
            req,
            "check.html",
            StatusCode::UNPROCESSABLE_ENTITY,
            minijinja::context! { form => state },
        );
    }
    let (recorded, _) = match p
        .check_and_record(&input, &checkpoint, &user.holder, &device)
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut r = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, format!("/check/{}", recorded.check.id))
        .body(axum::body::Body::empty())
        .unwrap_or_default();
    for (name, value) in [(CHECKPOINT_COOKIE, &checkpoint), (DEVICE_COOKIE, &device)] {
        let v: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        if let Ok(h) = HeaderValue::from_str(&format!(
            "{name}={v}; Path=/; Max-Age=31536000; SameSite=Strict"
        )) {
            r.headers_mut().append(header::SET_COOKIE, h);
        }
    }
    r
}

fn may_check(p: &Pages, req: &Request) -> Result<PageTokenOwner, Response> {
    p.require(req, &[PageRole::Officer, PageRole::Auditor])
}

/// `GET /check[?q=…]`: the form; with `q`, a check (for scanners configured to open a URL).
pub async fn page(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match p.request(&headers, "/check", q.as_deref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = match may_check(&p, &req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if req.param("q").is_some_and(|v| !v.trim().is_empty()) {
        return check_and_redirect(&p, &req, &user, &headers, &req.query).await;
    }
    let (checkpoint, device) = where_from(&p, &headers, &req.query);
    p.page(
        &req,
        "check.html",
        StatusCode::OK,
        minijinja::context! { form => p.form_state(String::new(), checkpoint, device) },
    )
}

/// `POST /check`: the form's check.
pub async fn submit(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = parse_query(std::str::from_utf8(&body).ok());
    let lang = form
        .iter()
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| format!("lang={v}"));
    let req = match p.request(&headers, "/check", lang.as_deref()).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = match may_check(&p, &req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    check_and_redirect(&p, &req, &user, &headers, &form).await
}

/// `GET /check/{id}`: a recorded check's card.
pub async fn show(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match p
        .request(&headers, &format!("/check/{id}"), q.as_deref())
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = match may_check(&p, &req) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let (checkpoint, device) = where_from(&p, &headers, &[]);
    let form = p.form_state(String::new(), checkpoint, device);
    let stored = if tamga_check::valid_id(&id) {
        match p.recorded(&id).await {
            Ok(s) => s,
            Err(e) => return p.store_error("check", &e),
        }
    } else {
        None
    };
    let Some((check, outcome)) = stored else {
        return p.page(
            &req,
            "check.html",
            StatusCode::NOT_FOUND,
            minijinja::context! { form => form, missing => true },
        );
    };
    let card = p.card(
        req.lang,
        &outcome,
        Some((&check.id, check.at_ms, &check.checkpoint)),
        user.role == PageRole::Auditor,
    );
    p.page(
        &req,
        "check.html",
        StatusCode::OK,
        minijinja::context! { form => form, card => card },
    )
}

/// `GET /static/check.js` and `GET /check-sw.js`: the offline verifier and its service
/// worker (public: they hold no data).
pub async fn script() -> Response {
    static_file(
        include_str!("../../static/check.js"),
        "text/javascript; charset=utf-8",
    )
}

pub async fn service_worker() -> Response {
    let mut r = static_file(
        include_str!("../../static/check-sw.js"),
        "text/javascript; charset=utf-8",
    );
    r.headers_mut()
        .insert("Service-Worker-Allowed", HeaderValue::from_static("/check"));
    r
}

fn static_file(text: &'static str, ctype: &'static str) -> Response {
    let mut r = (StatusCode::OK, text).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}
