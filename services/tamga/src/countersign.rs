//! `tamga countersign`: verify with the customs profile; on TOTAL_PASSED the
//! authority counter-signs and issues an acceptance receipt, otherwise it
//! issues a signed rejection receipt and prints the report on stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tamga_policy::{verify_document, Policy, VerifyRequest};
use tamga_receipt::{decide, Authority, AuthorityKey, DecideError, Verdict};
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
    // The same decision as the pipeline's (tamga_receipt::decide).
    let verdict = Verdict::from_report(&report)?;
    let decided = decide(
        &verdict,
        &input,
        &AuthorityKey {
            signer: signer.as_ref(),
            certificates: &certificates,
            info: &authority,
        },
        None,
        at,
        policy.parse_limits(),
    )
    .map_err(|e| match e {
        DecideError::Countersign(e) => anyhow::Error::new(e).context("countersigning"),
        other => anyhow::Error::new(other),
    })?;
    if let Some(path) = &a.receipt {
        std::fs::write(path, &decided.receipt)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let countersigned = decided.countersigned;
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
