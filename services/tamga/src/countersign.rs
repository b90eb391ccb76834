//! `tamga countersign`: verify with the customs profile; on TOTAL_PASSED the
//! authority counter-signs and issues an acceptance receipt, otherwise it
//! issues a signed rejection receipt and prints the report on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tamga_dsig::{countersign, DigestAlgorithm, SignOptions};
use tamga_policy::{verify_document, Policy, VerifyRequest};
use tamga_receipt::{issue_receipt, Authority, ReceiptContent};
use tamga_trust::{CountryCode, TrustList};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct CountersignArgs {
    /// The authority's private key: a PKCS#8 PEM file, or a PKCS#11 URI (`pkcs11:token=…;object=…?module-path=…&pin-source=…`).
    #[arg(long, value_name = "PEM|pkcs11:URI")]
    key: String,
    /// The authority's certificate (PEM).
    #[arg(long, value_name = "PEM")]
    cert: PathBuf,
    /// Intermediate CA certificates for the authority (repeatable).
    #[arg(long, value_name = "PEM")]
    chain: Vec<PathBuf>,
    /// Mutual-recognition trust list (`<DIR>/<CC>/`).
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// Declared origin country of the declaration (ISO 3166 alpha-2).
    #[arg(long = "from", value_name = "CC")]
    from: String,
    /// Validation time (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Validation policy (TOML); defaults to the strict customs profile.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where to write the signed receipt (acceptance or rejection).
    #[arg(long, value_name = "FILE")]
    receipt: Option<PathBuf>,
    /// The signed declaration.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

pub fn run(a: &CountersignArgs) -> anyhow::Result<Outcome> {
    let origin: CountryCode = a.from.parse().map_err(|_| {
        anyhow::anyhow!(
            "--from {:?} is not an ISO 3166 alpha-2 country code",
            a.from
        )
    })?;
    let at = crate::parse_time(a.at.as_deref())?;
    let policy = match &a.policy {
        Some(p) => Policy::from_toml(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read policy {}", p.display()))?,
        )
        .map_err(|e| anyhow::anyhow!("policy {}: {e}", p.display()))?,
        None => Policy::customs(),
    };
    let trust = TrustList::load_dir(&a.trust)
        .with_context(|| format!("cannot load trust list {}", a.trust.display()))?;
    crate::warn_degraded(&trust);
    let signer = crate::keys::open_signer(&a.key)?;
    let certificates = crate::sign::load_certs(&a.cert, &a.chain)?;
    let authority = Authority::from_certificate(&certificates[0], "ZZ")?;
    let input =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;

    let report = verify_document(&VerifyRequest {
        bytes: &input,
        trust: &trust,
        origin,
        at_unix: at,
        policy: &policy,
        resolver: &tamga_dsig::NoExternal,
        hmac_secret: None,
    });
    let options = SignOptions {
        certificates: certificates.clone(),
        digest: DigestAlgorithm::Sha256,
        xades: true,
        signing_time: time::OffsetDateTime::from_unix_timestamp(at)?,
        limits: policy.parse_limits(),
    };
    let countersigned = if report.passed() {
        Some(countersign(&input, signer.as_ref(), &options).context("countersigning")?)
    } else {
        None
    };
    if let Some(path) = &a.receipt {
        let content = ReceiptContent::for_report(&report, authority, at, countersigned.as_deref())?;
        let receipt = issue_receipt(&content, signer.as_ref(), certificates, at)?;
        std::fs::write(path, receipt)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match countersigned {
        Some(doc) => {
            let mut out = std::io::stdout().lock();
            out.write_all(&doc)?;
            out.flush()?;
            Ok(Outcome::Passed)
        }
        None => {
            let mut err = std::io::stderr().lock();
            serde_json::to_writer_pretty(&mut err, &report)?;
            writeln!(err)?;
            Ok(Outcome::Failed)
        }
    }
}
