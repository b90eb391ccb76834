//! `tamga receipt qr` and `tamga receipt verify-qr`: the receipt's signed QR, offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::json;
use tamga_check::log::Entry;
use tamga_check::CheckResult;
use tamga_qr::bundle::Bundle;
use tamga_qr::State;
use tamga_trust::TrustList;

use crate::Outcome;

#[derive(Debug, Args)]
pub struct VerifyQrArgs {
    /// The checkpoint's trust directory (`<DIR>/<CC>/`): anchors of the authorities' countries.
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// A signed trust bundle (`GET /v1/trust-bundle`), checked against DIR, whose anchors,
    /// CRLs and authority certificates are then used.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Validation time (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Append this check to an offline check log (one JSON line per check), to be
    /// recorded later with `tamga checkpoint upload --config FILE LOG`.
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// The checkpoint logged (default: $TAMGA_CHECKPOINT, else the host name).
    #[arg(long, value_name = "NAME")]
    checkpoint: Option<String>,
    /// The officer logged (default: $TAMGA_OFFICER, else $USER).
    #[arg(long, value_name = "NAME")]
    officer: Option<String>,
    /// The device label logged (default: $TAMGA_DEVICE, else the host name).
    #[arg(long, value_name = "LABEL")]
    device: Option<String>,
    /// The QR payload (`TMG1:…`), or `-` to read it from standard input.
    #[arg(value_name = "PAYLOAD")]
    payload: String,
}

pub fn print_qr(receipt: &Path, svg: Option<&Path>) -> anyhow::Result<Outcome> {
    let bytes =
        std::fs::read(receipt).with_context(|| format!("cannot read {}", receipt.display()))?;
    let content = tamga_receipt::parse_receipt(&bytes)
        .with_context(|| format!("{} is not a Tamga receipt", receipt.display()))?;
    let Some(qr) = content.qr else {
        anyhow::bail!(
            "{} has no QR (issued before QR codes, or by a key without a COSE algorithm)",
            receipt.display()
        );
    };
    if let Some(path) = svg {
        let picture = tamga_qr::svg(&qr)?;
        std::fs::write(path, picture)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    writeln!(std::io::stdout().lock(), "{qr}")?;
    Ok(Outcome::Passed)
}

/// A name for the log: the flag, else the environment variable, else the fallback.
fn log_name(flag: Option<&str>, env: &str, fallback: &dyn Fn() -> Option<String>) -> String {
    flag.map(str::to_owned)
        .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
        .or_else(fallback)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// Who logs: checkpoint, officer and device, each a valid name.
fn log_identity(a: &VerifyQrArgs) -> anyhow::Result<(String, String, String)> {
    let checkpoint = log_name(a.checkpoint.as_deref(), "TAMGA_CHECKPOINT", &host_name);
    let officer = log_name(a.officer.as_deref(), "TAMGA_OFFICER", &|| {
        std::env::var("USER").ok()
    });
    let device = log_name(a.device.as_deref(), "TAMGA_DEVICE", &host_name);
    for (what, v) in [
        ("--checkpoint", &checkpoint),
        ("--officer", &officer),
        ("--device", &device),
    ] {
        if !tamga_check::valid_name(v) {
            anyhow::bail!(
                "{what} {v:?} must be 1 to {} characters without control characters",
                tamga_check::MAX_NAME
            );
        }
    }
    Ok((checkpoint, officer, device))
}

/// The four-valued result of the `checked` event.
fn result_of(checked: &tamga_qr::Checked) -> CheckResult {
    match checked.state {
        State::Authentic => match checked.claims.as_ref().map(|c| c.decision.as_str()) {
            Some("accepted") => CheckResult::Accepted,
            _ => CheckResult::Rejected,
        },
        State::CouldNotCheck => CheckResult::CouldNotCheck,
        _ => CheckResult::NotAuthentic,
    }
}

pub fn verify_qr(a: &VerifyQrArgs) -> anyhow::Result<Outcome> {
    let at = crate::parse_time(a.at.as_deref())?;
    let identity = a.log.as_ref().map(|_| log_identity(a)).transpose()?;
    let dir = TrustList::load_dir(&a.trust)
        .with_context(|| format!("cannot load trust list {}", a.trust.display()))?;
    crate::warn_degraded(&dir);
    let payload = if a.payload == "-" {
        let mut s = String::new();
        std::io::Read::take(std::io::stdin().lock(), 64 * 1024).read_to_string_lossy(&mut s)?;
        s
    } else {
        a.payload.clone()
    };
    let mut bundle_version = None;
    let (checked, against) = match &a.bundle {
        None => (
            tamga_qr::verify(&payload, &dir, &[], at),
            json!({"source": "trust-directory", "path": a.trust.display().to_string()}),
        ),
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let (bundle, summary) = Bundle::open(&bytes, &dir, at)
                .with_context(|| format!("the trust bundle {} is refused", path.display()))?;
            bundle_version = Some(summary.version);
            let against = json!({
                "source": "bundle",
                "version": summary.version,
                "date": tamga_policy::rfc3339(summary.issued_at),
                "nextUpdate": tamga_policy::rfc3339(summary.next_update),
            });
            if bundle.is_stale(at) {
                let mut c = tamga_qr::verify(&payload, &TrustList::default(), &[], at);
                c.state = State::CouldNotCheck;
                c.code = "bundle_stale";
                c.message = "The trust bundle is past its next update: fetch a new one.".into();
                (c, against)
            } else {
                let list = bundle.trust_list()?;
                (
                    tamga_qr::verify(&payload, &list, &bundle.authorities, at),
                    against,
                )
            }
        }
    };
    let valid = checked.state == State::Authentic;
    let result = result_of(&checked);
    let check_id = match (&a.log, identity) {
        (Some(path), Some((checkpoint, officer, device))) => {
            let entry = Entry {
                v: 1,
                at: time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                checkpoint,
                officer,
                device,
                payload: payload.trim().to_owned(),
                result,
                code: checked.code.to_owned(),
                bundle_version,
            };
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(path)
                .with_context(|| format!("cannot open the log {}", path.display()))?;
            // One write per line: with O_APPEND, lines of concurrent checks do not mix.
            f.write_all(format!("{}\n", entry.to_line()).as_bytes())
                .with_context(|| format!("cannot write the log {}", path.display()))?;
            Some(entry.check_id())
        }
        _ => None,
    };
    // Only an authentic QR's claims are stated as facts.
    let claims = checked.claims.as_ref().filter(|_| valid);
    let out = json!({
        "valid": valid,
        "result": result,
        "checkId": check_id,
        "state": checked.state,
        "code": checked.code,
        "message": checked.message,
        "decision": claims.map(|c| c.decision.clone()),
        "documentSha256": claims.map(|c| c.document_sha256.clone()),
        "receiptId": claims.map(|c| c.receipt_id.clone()),
        "lrn": claims.and_then(|c| c.lrn.clone()),
        "origin": claims.map(|c| c.origin.clone()),
        "destination": claims.map(|c| c.destination.clone()),
        "issuedAt": claims.map(|c| tamga_policy::rfc3339(c.issued_at)),
        "reason": claims.and_then(|c| c.reason.clone()),
        "authority": checked.authority,
        "checkedAgainst": against,
    });
    let mut o = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut o, &out)?;
    writeln!(o)?;
    Ok(if valid {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

trait ReadLossy {
    fn read_to_string_lossy(&mut self, s: &mut String) -> std::io::Result<()>;
}

impl<R: std::io::Read> ReadLossy for R {
    fn read_to_string_lossy(&mut self, s: &mut String) -> std::io::Result<()> {
        let mut b = Vec::new();
        self.read_to_end(&mut b)?;
        s.push_str(&String::from_utf8_lossy(&b));
        Ok(())
    }
}
