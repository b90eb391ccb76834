//! `tamga receipt qr` and `tamga receipt verify-qr`: the receipt's signed QR, offline.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde_json::json;
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

pub fn verify_qr(a: &VerifyQrArgs) -> anyhow::Result<Outcome> {
    let at = crate::parse_time(a.at.as_deref())?;
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
    // Only an authentic QR's claims are stated as facts.
    let claims = checked.claims.as_ref().filter(|_| valid);
    let out = json!({
        "valid": valid,
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
