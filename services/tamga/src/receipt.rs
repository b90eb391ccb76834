//! `tamga receipt verify`: check a receipt offline; `tamga receipt qr` / `verify-qr`: its
//! signed QR payload (`schemas/qr.md`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tamga_trust::TrustList;

use crate::Outcome;

#[derive(Debug, Args)]
pub struct ReceiptArgs {
    #[command(subcommand)]
    command: ReceiptCommand,
}

#[derive(Debug, Subcommand)]
enum ReceiptCommand {
    /// Check a receipt's signature and, given the document, that it is about exactly these bytes.
    Verify {
        /// Mutual-recognition trust list (`<DIR>/<CC>/`): the authority's country must be in it.
        #[arg(long, value_name = "DIR")]
        trust: PathBuf,
        /// The declaration (as submitted, or as countersigned) the receipt should be about.
        #[arg(long, value_name = "FILE")]
        document: Option<PathBuf>,
        /// Validation time (RFC 3339); defaults to now.
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// The receipt.
        #[arg(value_name = "RECEIPT")]
        receipt: PathBuf,
    },
    /// Print the receipt's signed QR payload (one line, `TMG1:…`).
    Qr {
        /// Also write the QR code as SVG.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// The receipt.
        #[arg(value_name = "RECEIPT")]
        receipt: PathBuf,
    },
    /// Check a receipt's QR payload offline: exit 0 authentic, 1 not (or undecidable).
    VerifyQr(crate::receipt_qr::VerifyQrArgs),
}

pub fn run(a: &ReceiptArgs) -> anyhow::Result<Outcome> {
    let (trust, document, at, receipt) = match &a.command {
        ReceiptCommand::Verify {
            trust,
            document,
            at,
            receipt,
        } => (trust, document, at, receipt),
        ReceiptCommand::Qr { svg, receipt } => {
            return crate::receipt_qr::print_qr(receipt, svg.as_deref())
        }
        ReceiptCommand::VerifyQr(v) => return crate::receipt_qr::verify_qr(v),
    };
    let at = crate::parse_time(at.as_deref())?;
    let trust = TrustList::load_dir(trust)
        .with_context(|| format!("cannot load trust list {}", trust.display()))?;
    crate::warn_degraded(&trust);
    let bytes =
        std::fs::read(receipt).with_context(|| format!("cannot read {}", receipt.display()))?;
    let doc = match document {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let v = tamga_receipt::verify_receipt(&bytes, &trust, at, doc.as_deref());
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &v)?;
    writeln!(out)?;
    Ok(if v.valid {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
