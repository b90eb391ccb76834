//! The dashboard's checkpoint panels (the ministry's view of the border): scans per
//! checkpoint and day by result, the repeated-scan alerts (copies caught), and the time from
//! forwarding to the first scan per corridor — the border-crossing part of the release
//! time. `/dashboard/checks.csv?table=scans|repeated|crossing` exports each.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use tamga_store::{ChecksQuery, CrossingTimes, PageRole, ScanBucket, StoredEvent};

use super::dashboard::Filters;
use super::{Pages, Request};

/// Repeated-scan alerts listed at most.
const MAX_ALERTS: usize = 200;

/// Scans at one checkpoint in one period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanRow {
    pub period: String,
    pub bucket_ms: i64,
    pub checkpoint: String,
    pub accepted: i64,
    pub rejected: i64,
    pub not_authentic: i64,
    pub could_not_check: i64,
    pub repeated: i64,
    pub offline: i64,
    pub total: i64,
}

/// One repeated-scan alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub at: String,
    pub check_id: String,
    pub checkpoint: String,
    pub officer: String,
    pub first_checkpoint: String,
    pub first_at: String,
    pub lrn: String,
    pub corridor: String,
    pub result: String,
    pub offline: bool,
}

/// Forwarding → first scan, one corridor.
#[derive(Debug, Clone, Serialize)]
pub struct CrossingRow {
    pub corridor: String,
    pub count: i64,
    pub p50_h: f64,
    pub p95_h: f64,
}

/// The three panels.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Panels {
    pub scans: Vec<ScanRow>,
    pub totals: [i64; 6],
    pub alerts: Vec<Alert>,
    pub crossing: Vec<CrossingRow>,
    pub chart: String,
    pub csv_href: String,
}

fn query(f: &Filters) -> ChecksQuery {
    let q = f.query();
    ChecksQuery {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        bucket_ms: q.bucket_ms,
        origin: q.origin,
        destination: q.destination,
    }
}

fn period(ms: i64, hourly: bool) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) else {
        return String::new();
    };
    let f = if hourly {
        t.format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:00"
        ))
    } else {
        t.format(time::macros::format_description!("[year]-[month]-[day]"))
    };
    f.unwrap_or_default()
}

/// Rows per period and checkpoint.
pub fn scan_rows(buckets: &[ScanBucket], hourly: bool) -> Vec<ScanRow> {
    let mut rows: BTreeMap<(i64, String), ScanRow> = BTreeMap::new();
    for b in buckets {
        let r = rows
            .entry((b.bucket_ms, b.checkpoint.clone()))
            .or_insert_with(|| ScanRow {
                period: period(b.bucket_ms, hourly),
                bucket_ms: b.bucket_ms,
                checkpoint: b.checkpoint.clone(),
                ..ScanRow::default()
            });
        match b.result.as_str() {
            "accepted" => r.accepted += b.count,
            "rejected" => r.rejected += b.count,
            "not_authentic" => r.not_authentic += b.count,
            _ => r.could_not_check += b.count,
        }
        r.repeated += b.repeated;
        if b.offline {
            r.offline += b.count;
        }
        r.total += b.count;
    }
    rows.into_values().collect()
}

/// The alerts, from the flagged `checked` events.
pub fn alerts(events: &[StoredEvent]) -> Vec<Alert> {
    events
        .iter()
        .map(|e| {
            let d: Value = e
                .event
                .detail
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
            let first = &d["repeatedOf"];
            Alert {
                at: Pages::when(e.event.at_ms),
                check_id: s(&d["checkId"]),
                checkpoint: s(&d["checkpoint"]),
                officer: s(&d["officer"]),
                first_checkpoint: s(&first["checkpoint"]),
                first_at: first["atMs"].as_i64().map(Pages::when).unwrap_or_default(),
                lrn: s(&d["lrn"]),
                corridor: if e.event.origin.is_empty() {
                    String::new()
                } else {
                    format!("{} → {}", e.event.origin, e.event.destination)
                },
                result: e.event.outcome.clone(),
                offline: d["offline"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

fn crossing_rows(c: &[CrossingTimes]) -> Vec<CrossingRow> {
    c.iter()
        .map(|c| CrossingRow {
            corridor: format!("{} → {}", c.origin, c.destination),
            count: c.count,
            p50_h: c.p50_ms / 3_600_000.0,
            p95_h: c.p95_ms / 3_600_000.0,
        })
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Stacked bars per period (all checkpoints): accepted, rejected and not authentic, could
/// not check — the three states in their colours.
pub fn scans_svg(rows: &[ScanRow], title: &str, labels: [&str; 4]) -> String {
    let mut periods: BTreeMap<i64, (String, [i64; 4])> = BTreeMap::new();
    for r in rows {
        let e = periods
            .entry(r.bucket_ms)
            .or_insert((r.period.clone(), [0; 4]));
        e.1[0] += r.accepted;
        e.1[1] += r.rejected;
        e.1[2] += r.not_authentic;
        e.1[3] += r.could_not_check;
    }
    let colours = ["#0b6b2e", "#a4161a", "#5c0a0d", "#e0a800"];
    let (w, h, left, bottom) = (960.0_f64, 220.0_f64, 48.0_f64, 40.0_f64);
    let plot_h = h - bottom - 10.0;
    let top = periods
        .values()
        .map(|(_, v)| v.iter().sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(4);
    // Whole numbers on every grid line.
    let max = ((top as f64) / 4.0).ceil() * 4.0;
    let n = periods.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let bar = (slot * 0.6).clamp(2.0, 60.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="scans-title"><title id="scans-title">{}</title>"#,
        esc(title)
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = 10.0 + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{:.0}</text>"##,
            left - 4.0,
            y + 4.0,
            v
        );
    }
    let label_every = ((n / 12.0).ceil() as usize).max(1);
    for (i, (label, v)) in periods.values().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = 10.0 + plot_h;
        for (k, value) in v.iter().enumerate() {
            let bh = plot_h * (*value as f64) / max;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                colours[k],
                esc(label),
                esc(labels[k]),
                value
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                h - bottom + 16.0,
                esc(label)
            );
        }
    }
    s.push_str(r#"<g font-size="12">"#);
    for (k, l) in labels.iter().enumerate() {
        let x = left + 180.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            h - 14.0,
            colours[k],
            x + 16.0,
            h - 3.0,
            esc(l)
        );
    }
    s.push_str("</g></svg>");
    s
}

async fn load_panels(p: &Pages, f: &Filters) -> Result<Panels, Response> {
    let q = query(f);
    let err = |what: &str, e: &tamga_store::StoreError| p.store_error(what, e);
    let scans = p
        .checks
        .check_scans(&q)
        .await
        .map_err(|e| err("check_scans", &e))?;
    let repeated = p
        .checks
        .repeated_scans(&q, MAX_ALERTS)
        .await
        .map_err(|e| err("repeated_scans", &e))?;
    let crossing = p
        .checks
        .crossing_times(&q)
        .await
        .map_err(|e| err("crossing_times", &e))?;
    let scans = scan_rows(&scans, f.hourly);
    let totals = scans.iter().fold([0i64; 6], |mut a, r| {
        a[0] += r.total;
        a[1] += r.accepted;
        a[2] += r.rejected + r.not_authentic;
        a[3] += r.could_not_check;
        a[4] += r.repeated;
        a[5] += r.offline;
        a
    });
    Ok(Panels {
        scans,
        totals,
        alerts: alerts(&repeated),
        crossing: crossing_rows(&crossing),
        chart: String::new(),
        csv_href: String::new(),
    })
}

/// The panels of the dashboard page, in the reader's language.
pub async fn panels(p: &Pages, req: &Request, f: &Filters) -> Result<Panels, Response> {
    let mut panels = load_panels(p, f).await?;
    let t = |k: &str| p.i18n.get(req.lang, k, &[]);
    panels.chart = scans_svg(
        &panels.scans,
        &t("dash-chart-scans"),
        [
            &t("dash-result-accepted"),
            &t("dash-result-rejected"),
            &t("dash-result-not-authentic"),
            &t("dash-result-could-not-check"),
        ],
    );
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in req
        .query
        .iter()
        .filter(|(k, _)| k != "lang" && k != "table")
    {
        ser.append_pair(k, v);
    }
    panels.csv_href = format!("/dashboard/checks.csv?{}", ser.finish());
    Ok(panels)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One table of the panels as CSV (RFC 4180).
pub fn to_csv(panels: &Panels, table: &str) -> String {
    let mut out = String::new();
    match table {
        "repeated" => {
            out.push_str("time,check_id,checkpoint,officer,first_checkpoint,first_time,lrn,corridor,result,offline\r\n");
            for a in &panels.alerts {
                let _ = write!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}\r\n",
                    csv_field(&a.at),
                    csv_field(&a.check_id),
                    csv_field(&a.checkpoint),
                    csv_field(&a.officer),
                    csv_field(&a.first_checkpoint),
                    csv_field(&a.first_at),
                    csv_field(&a.lrn),
                    csv_field(&a.corridor),
                    a.result,
                    a.offline
                );
            }
        }
        "crossing" => {
            out.push_str("corridor,declarations,forward_to_first_scan_p50_hours,forward_to_first_scan_p95_hours\r\n");
            for c in &panels.crossing {
                let _ = write!(
                    out,
                    "{},{},{:.3},{:.3}\r\n",
                    csv_field(&c.corridor),
                    c.count,
                    c.p50_h,
                    c.p95_h
                );
            }
        }
        _ => {
            out.push_str("period,checkpoint,scans,accepted,rejected,not_authentic,could_not_check,already_presented,offline\r\n");
            for r in &panels.scans {
                let _ = write!(
                    out,
                    "{},{},{},{},{},{},{},{},{}\r\n",
                    csv_field(&r.period),
                    csv_field(&r.checkpoint),
                    r.total,
                    r.accepted,
                    r.rejected,
                    r.not_authentic,
                    r.could_not_check,
                    r.repeated,
                    r.offline
                );
            }
        }
    }
    out
}

/// `GET /dashboard/checks.csv?table=scans|repeated|crossing` (with the dashboard's filters).
pub async fn csv(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let req = match p
        .request(&headers, "/dashboard/checks.csv", q.as_deref())
        .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(r) = p.require(&req, &[PageRole::Analyst, PageRole::Auditor]) {
        return r;
    }
    let f = Filters::parse(&req, time::OffsetDateTime::now_utc().date());
    let table = req
        .param("table")
        .filter(|t| matches!(*t, "repeated" | "crossing"))
        .unwrap_or("scans");
    let panels = match load_panels(&p, &f).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut r = (StatusCode::OK, to_csv(&panels, table)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"tamga-checks-{table}-{}-{}.csv\"",
        f.from, f.to
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_alerts_csv_and_chart() {
        let b = |cp: &str, result: &str, offline, repeated, count| ScanBucket {
            bucket_ms: 1_764_892_800_000,
            checkpoint: cp.into(),
            result: result.into(),
            offline,
            repeated,
            count,
        };
        let rows = scan_rows(
            &[
                b("AZ-ALAT", "accepted", false, 0, 5),
                b("AZ-ALAT", "could_not_check", false, 2, 3),
                b("AZ-ALAT", "not_authentic", true, 0, 1),
                b("AZ-ASTARA", "rejected", false, 0, 2),
            ],
            false,
        );
        assert_eq!(rows.len(), 2);
        let alat = &rows[0];
        assert_eq!(
            (
                alat.total,
                alat.accepted,
                alat.could_not_check,
                alat.repeated,
                alat.offline
            ),
            (9, 5, 3, 2, 1)
        );
        let panels = Panels {
            scans: rows.clone(),
            ..Panels::default()
        };
        let csv = to_csv(&panels, "scans");
        assert!(
            csv.contains("2025-12-05,AZ-ALAT,9,5,0,1,3,2,1\r\n"),
            "{csv}"
        );
        let svg = scans_svg(&rows, "t", ["a", "b", "c", "d"]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let e = tamga_store::StoredEvent {
            chain: "c".into(),
            seq: 1,
            prev_hash: String::new(),
            hash: String::new(),
            event: tamga_store::AuditEvent {
                at_ms: 1_764_892_800_000,
                stage: "checked".into(),
                worker: "w".into(),
                declaration_id: "d".into(),
                origin: "KZ".into(),
                destination: "AZ".into(),
                outcome: "could_not_check".into(),
                sub_indication: None,
                reason: Some("already_presented".into()),
                digest: "ab".repeat(32),
                detail: Some(
                    r#"{"checkId":"chk-1","checkpoint":"AZ-ASTARA","officer":"o","lrn":"L, 1","offline":false,"repeatedOf":{"checkId":"chk-0","checkpoint":"AZ-ALAT","atMs":1764892700000}}"#
                        .into(),
                ),
            },
        };
        let a = alerts(&[e]);
        assert_eq!(a[0].first_checkpoint, "AZ-ALAT");
        assert_eq!(a[0].corridor, "KZ → AZ");
        let csv = to_csv(
            &Panels {
                alerts: a,
                ..Panels::default()
            },
            "repeated",
        );
        assert!(csv.contains(",AZ-ASTARA,o,AZ-ALAT,"), "{csv}");
        assert!(csv.contains("\"L, 1\""));
    }
}
