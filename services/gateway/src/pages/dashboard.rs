//! `/dashboard`: the ministry's view. Per corridor (origin → destination) and per day or
//! hour: submitted, accepted, rejected by reason (Tamga reason code and ETSI
//! sub-indication), dead-lettered, release time (received → forwarded, WCO TRS) p50/p95.
//! Charts are server-rendered SVG with the numbers in a table beside them; `/dashboard.csv`
//! exports the same rows.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tamga_store::{DashboardQuery, DashboardRows, PageRole};

use super::{Pages, Request};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// Longest range: a year by day, a month by hour.
const MAX_DAYS: i64 = 366;
const MAX_HOUR_DAYS: i64 = 31;

/// One table row: a corridor in one period.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub period: String,
    pub bucket_ms: i64,
    pub origin: String,
    pub destination: String,
    pub submitted: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub dead: i64,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    /// `reason (SUB_INDICATION)` → count.
    pub reasons: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReasonRow {
    pub corridor: String,
    pub reason: String,
    pub sub_indication: String,
    pub count: i64,
}

/// The parsed filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    pub from: time::Date,
    pub to: time::Date,
    pub hourly: bool,
    pub corridor: Option<(String, String)>,
}

fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn date_ms(d: time::Date) -> i64 {
    d.midnight().assume_utc().unix_timestamp() * 1000
}

impl Filters {
    /// From the query; defaults: the last 7 days, per day, every corridor.
    pub fn parse(req: &Request, today: time::Date) -> Self {
        let to = req.param("to").and_then(parse_date).unwrap_or(today);
        let from = req
            .param("from")
            .and_then(parse_date)
            .unwrap_or(to - time::Duration::days(6));
        let (from, to) = if from > to { (to, from) } else { (from, to) };
        let from = from.max(to - time::Duration::days(MAX_DAYS - 1));
        let hourly = req.param("per") == Some("hour") && (to - from).whole_days() < MAX_HOUR_DAYS;
        let corridor = req.param("corridor").and_then(|c| {
            let (o, d) = c.split_once('-')?;
            let ok = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
            (ok(o) && ok(d)).then(|| (o.to_owned(), d.to_owned()))
        });
        Self {
            from,
            to,
            hourly,
            corridor,
        }
    }

    pub fn query(&self) -> DashboardQuery {
        DashboardQuery {
            from_ms: date_ms(self.from),
            to_ms: date_ms(self.to) + DAY_MS,
            bucket_ms: if self.hourly { HOUR_MS } else { DAY_MS },
            origin: self.corridor.as_ref().map(|c| c.0.clone()),
            destination: self.corridor.as_ref().map(|c| c.1.clone()),
        }
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

/// The table rows (period, then corridor) and the rejections by reason.
pub fn rows(data: &DashboardRows, hourly: bool) -> (Vec<Row>, Vec<ReasonRow>) {
    let mut map: BTreeMap<(i64, String, String), Row> = BTreeMap::new();
    let mut reasons: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for c in &data.counts {
        let r = map
            .entry((c.bucket_ms, c.origin.clone(), c.destination.clone()))
            .or_insert_with(|| Row {
                period: period(c.bucket_ms, hourly),
                bucket_ms: c.bucket_ms,
                origin: c.origin.clone(),
                destination: c.destination.clone(),
                ..Row::default()
            });
        match c.stage.as_str() {
            "received" => r.submitted += c.count,
            "countersigned" => r.accepted += c.count,
            "rejected" => {
                r.rejected += c.count;
                let reason = c.reason.clone().unwrap_or_else(|| "-".into());
                let sub = c.sub_indication.clone().unwrap_or_default();
                *r.reasons.entry(format!("{reason} ({sub})")).or_default() += c.count;
                *reasons
                    .entry((format!("{} → {}", c.origin, c.destination), reason, sub))
                    .or_default() += c.count;
            }
            "dead_lettered" => r.dead += c.count,
            _ => {}
        }
    }
    for t in &data.release {
        let r = map
            .entry((t.bucket_ms, t.origin.clone(), t.destination.clone()))
            .or_insert_with(|| Row {
                period: period(t.bucket_ms, hourly),
                bucket_ms: t.bucket_ms,
                origin: t.origin.clone(),
                destination: t.destination.clone(),
                ..Row::default()
            });
        r.p50_s = Some(t.p50_ms / 1000.0);
        r.p95_s = Some(t.p95_ms / 1000.0);
    }
    let mut reasons: Vec<ReasonRow> = reasons
        .into_iter()
        .map(|((corridor, reason, sub_indication), count)| ReasonRow {
            corridor,
            reason,
            sub_indication,
            count,
        })
        .collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.corridor.cmp(&b.corridor)));
    (map.into_values().collect(), reasons)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Grouped bars per period (all shown corridors summed): submitted, accepted, rejected.
pub fn volume_svg(rows: &[Row], title: &str, labels: [&str; 3]) -> String {
    let mut periods: BTreeMap<i64, (String, [i64; 3])> = BTreeMap::new();
    for r in rows {
        let e = periods
            .entry(r.bucket_ms)
            .or_insert((r.period.clone(), [0; 3]));
        e.1[0] += r.submitted;
        e.1[1] += r.accepted;
        e.1[2] += r.rejected;
    }
    let colours = ["#1d4f91", "#0b6b2e", "#a4161a"];
    let (w, h, left, bottom) = (960.0_f64, 260.0_f64, 48.0_f64, 40.0_f64);
    let max = nice_ceiling(
        periods
            .values()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(0)
            .max(1) as f64,
    )
    .max(4.0);
    // Counts: whole numbers on every grid line.
    let max = (max / 4.0).ceil() * 4.0;
    let n = periods.len().max(1) as f64;
    let slot = (w - left - 8.0) / n;
    let bar = (slot * 0.8 / 3.0).max(1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="vol-title"><title id="vol-title">{}</title>"#,
        esc(title)
    );
    let plot_h = h - bottom - 10.0;
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
    for (i, (_, (label, v))) in periods.iter().enumerate() {
        let x0 = left + slot * i as f64 + slot * 0.1;
        for (k, value) in v.iter().enumerate() {
            let bh = plot_h * (*value as f64) / max;
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{:.1}" width="{bar:.1}" height="{bh:.1}" fill="{}"><title>{} {}: {}</title></rect>"#,
                x0 + bar * k as f64,
                10.0 + plot_h - bh,
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
                x0 + bar * 1.5,
                h - bottom + 16.0,
                esc(label)
            );
        }
    }
    let _ = write!(s, "<g font-size=\"12\">");
    for (k, l) in labels.iter().enumerate() {
        let x = left + 150.0 * k as f64;
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

/// Release time p50/p95 per period (the largest over the shown corridors), seconds.
pub fn release_svg(rows: &[Row], title: &str, labels: [&str; 2]) -> String {
    let mut periods: BTreeMap<i64, (String, f64, f64)> = BTreeMap::new();
    for r in rows {
        if let (Some(a), Some(b)) = (r.p50_s, r.p95_s) {
            let e = periods
                .entry(r.bucket_ms)
                .or_insert((r.period.clone(), 0.0, 0.0));
            e.1 = e.1.max(a);
            e.2 = e.2.max(b);
        }
    }
    let (w, h, left, bottom) = (960.0_f64, 220.0_f64, 48.0_f64, 40.0_f64);
    let plot_h = h - bottom - 10.0;
    let max = nice_ceiling(
        periods
            .values()
            .map(|v| v.2)
            .fold(0.0_f64, f64::max)
            .max(0.001),
    );
    let decimals = if max >= 4.0 {
        0
    } else if max >= 0.4 {
        1
    } else if max >= 0.04 {
        2
    } else {
        3
    };
    let n = periods.len().max(1) as f64;
    let step = (w - left - 16.0) / n.max(2.0 - 1.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-labelledby="rel-title"><title id="rel-title">{}</title>"#,
        esc(title)
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = 10.0 + plot_h - plot_h * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{:.*}</text>"##,
            left - 4.0,
            y + 4.0,
            decimals,
            v
        );
    }
    for (k, (colour, dash)) in [("#1d4f91", ""), ("#a4161a", "6 4")].iter().enumerate() {
        let pts: Vec<String> = periods
            .values()
            .enumerate()
            .map(|(i, v)| {
                let val = if k == 0 { v.1 } else { v.2 };
                format!(
                    "{:.1},{:.1}",
                    left + 8.0 + step * i as f64,
                    10.0 + plot_h - plot_h * val / max
                )
            })
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2.5" stroke-dasharray="{dash}" points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>"#);
        }
    }
    let label_every = ((n / 12.0).ceil() as usize).max(1);
    for (i, (label, _, _)) in periods.values().enumerate() {
        if i % label_every == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
                left + 8.0 + step * i as f64,
                h - bottom + 16.0,
                esc(label)
            );
        }
    }
    let _ = write!(
        s,
        r##"<g font-size="12"><line x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#1d4f91" stroke-width="2.5"/><text x="{:.1}" y="{:.1}">{}</text><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#a4161a" stroke-width="2.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}">{}</text></g>"##,
        left + 24.0,
        h - 8.0,
        h - 8.0,
        left + 30.0,
        h - 3.0,
        esc(labels[0]),
        left + 220.0,
        left + 244.0,
        h - 8.0,
        h - 8.0,
        left + 250.0,
        h - 3.0,
        esc(labels[1])
    );
    s.push_str("</svg>");
    s
}

/// The smallest 1, 2 or 5 × 10^k, times 4 (the grid lines), at or above `v`: round ticks.
fn nice_ceiling(v: f64) -> f64 {
    let quarter = v / 4.0;
    let exp = quarter.log10().floor();
    let base = 10f64.powf(exp);
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * base)
        .find(|s| *s >= quarter * (1.0 - 1e-9))
        .unwrap_or(10.0 * base);
    step * 4.0
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

async fn load(
    p: &Pages,
    headers: &HeaderMap,
    path: &str,
    q: Option<&str>,
) -> Result<(Request, Filters, DashboardRows), Response> {
    let req = p.request(headers, path, q).await?;
    p.require(&req, &[PageRole::Analyst, PageRole::Auditor])?;
    let f = Filters::parse(&req, today());
    let data = p
        .store
        .dashboard(&f.query())
        .await
        .map_err(|e| p.store_error("dashboard", &e))?;
    Ok((req, f, data))
}

pub async fn page(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let (req, f, data) = match load(&p, &headers, "/dashboard", q.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = |k: &str| p.i18n.get(req.lang, k, &[]);
    let (table, reasons) = rows(&data, f.hourly);
    let totals = table.iter().fold([0i64; 4], |mut a, r| {
        a[0] += r.submitted;
        a[1] += r.accepted;
        a[2] += r.rejected;
        a[3] += r.dead;
        a
    });
    let countries: Vec<String> = p
        .trust
        .countries()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut corridors = Vec::new();
    for o in &countries {
        for d in &countries {
            if o != d {
                corridors.push(format!("{o}-{d}"));
            }
        }
    }
    let selected = f
        .corridor
        .as_ref()
        .map(|(o, d)| format!("{o}-{d}"))
        .unwrap_or_default();
    let csv_href = {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in req.query.iter().filter(|(k, _)| k != "lang") {
            ser.append_pair(k, v);
        }
        format!("/dashboard.csv?{}", ser.finish())
    };
    let volume = volume_svg(
        &table,
        &t("dash-chart-volume"),
        [
            &t("dash-submitted"),
            &t("dash-accepted"),
            &t("dash-rejected"),
        ],
    );
    let release = release_svg(
        &table,
        &t("dash-chart-release"),
        [&t("dash-p50"), &t("dash-p95")],
    );
    let checks = match super::dashboard_checks::panels(&p, &req, &f).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    p.page(
        &req,
        "dashboard.html",
        StatusCode::OK,
        minijinja::context! {
            checks => checks,
            from => f.from.to_string(),
            to => f.to.to_string(),
            hourly => f.hourly,
            corridors => corridors,
            selected => selected,
            rows => table,
            reasons => reasons,
            totals => totals,
            volume_svg => minijinja::Value::from_safe_string(volume),
            release_svg => minijinja::Value::from_safe_string(release),
            csv_href => csv_href,
        },
    )
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The CSV of the dashboard's rows (RFC 4180).
pub fn to_csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "period,origin,destination,submitted,accepted,rejected,dead_lettered,release_p50_seconds,release_p95_seconds,rejected_by_reason\r\n",
    );
    let num = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_default();
    for r in rows {
        let reasons = r
            .reasons
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{}\r\n",
            csv_field(&r.period),
            csv_field(&r.origin),
            csv_field(&r.destination),
            r.submitted,
            r.accepted,
            r.rejected,
            r.dead,
            num(r.p50_s),
            num(r.p95_s),
            csv_field(&reasons)
        );
    }
    out
}

pub async fn csv(
    State(p): State<Arc<Pages>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let (_, f, data) = match load(&p, &headers, "/dashboard.csv", q.as_deref()).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (table, _) = rows(&data, f.hourly);
    let mut r = (StatusCode::OK, to_csv(&table)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"tamga-dashboard-{}-{}.csv\"",
        f.from, f.to
    )) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tamga_store::{CorridorBucket, ReleaseTimes};

    #[test]
    fn rows_csv_and_charts() {
        let b = |stage: &str, reason: Option<&str>, n| CorridorBucket {
            origin: "KZ".into(),
            destination: "AZ".into(),
            bucket_ms: 1_764_892_800_000,
            stage: stage.into(),
            reason: reason.map(Into::into),
            sub_indication: reason.map(|_| "HASH_FAILURE".into()),
            count: n,
        };
        let data = DashboardRows {
            counts: vec![
                b("received", None, 10),
                b("countersigned", None, 7),
                b("rejected", Some("digest_mismatch"), 3),
            ],
            release: vec![ReleaseTimes {
                origin: "KZ".into(),
                destination: "AZ".into(),
                bucket_ms: 1_764_892_800_000,
                count: 7,
                p50_ms: 1500.0,
                p95_ms: 4000.0,
            }],
        };
        let (rows, reasons) = rows(&data, false);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].submitted, rows[0].accepted, rows[0].rejected),
            (10, 7, 3)
        );
        assert_eq!(rows[0].period, "2025-12-05");
        assert_eq!(reasons[0].count, 3);
        let csv = to_csv(&rows);
        assert!(
            csv.contains(
                "2025-12-05,KZ,AZ,10,7,3,0,1.500,4.000,digest_mismatch (HASH_FAILURE): 3\r\n"
            ),
            "{csv}"
        );
        let svg = volume_svg(&rows, "t<", ["a", "b", "c"]);
        assert!(svg.starts_with("<svg") && svg.contains("t&lt;") && svg.ends_with("</svg>"));
        assert!(release_svg(&rows, "r", ["p50", "p95"]).contains("polyline"));
        assert!(volume_svg(&[], "empty", ["a", "b", "c"]).ends_with("</svg>"));
        assert_eq!(nice_ceiling(2.0), 2.0);
        assert_eq!(nice_ceiling(9.0), 10.0);
        assert_eq!(nice_ceiling(37.0), 40.0);
        assert!((nice_ceiling(0.013) - 0.02).abs() < 1e-12);
    }
}
