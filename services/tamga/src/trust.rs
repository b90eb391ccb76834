//! `tamga trust`: signed ETSI TS 119 612 trusted lists for partners.
//!
//! * `build` turns today's folder layout (`<DIR>` = one country's folder of
//!   CA certificates) into a signed, versioned list: each CA becomes a
//!   `CA/PKC` service granted since the certificate's notBefore;
//! * `show` prints what a list contains and whether its signature verifies;
//! * `diff` names the CAs added, withdrawn or changed between two lists;
//! * `verify` accepts or refuses a list exactly as a site would (signature
//!   by Tamga's engine, pinned signers, sequence number).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions};
use tamga_policy::TlSignatureEngine;
use tamga_trust::tsl::{
    accept_trusted_list, build_trusted_list, parse_trusted_list, StatusPeriod, TlBuild, TlCheck,
    TlService, TlSignatureCheck, TrustedList, STATUS_GRANTED, SVC_CA_PKC,
};
use tamga_trust::{summarize_certificate, CountryCode, TrustFile, TrustList};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct TrustArgs {
    #[command(subcommand)]
    command: TrustCommand,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Build a signed trusted list from one country's folder of CA certificates (to stdout).
    Build(BuildArgs),
    /// Show what a trusted list contains and its signature status (JSON).
    Show {
        /// The list.
        file: PathBuf,
        /// Certificates pinned for it (PEM): says whether the signer is one of them.
        #[arg(long = "signer", value_name = "PEM")]
        signers: Vec<PathBuf>,
    },
    /// CAs added, withdrawn or changed between two lists (JSON).
    Diff {
        /// The list in force.
        old: PathBuf,
        /// The candidate.
        new: PathBuf,
    },
    /// Accept or refuse a list as a site would (exit 0 accepted, 1 refused).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// One country's folder (`<TRUST>/<CC>/`): its *.pem, *.crt, *.der CA certificates.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The list signer's key (PKCS#8 PEM or pkcs11: URI).
    #[arg(long, value_name = "KEY")]
    signer_key: String,
    /// The list signer's certificate (PEM); partners pin it.
    #[arg(long, value_name = "PEM")]
    signer_cert: PathBuf,
    /// TSLSequenceNumber: must grow with every list published.
    #[arg(long, value_name = "N")]
    sequence: u64,
    /// NextUpdate (RFC 3339): after it, partners treat the list as stale.
    #[arg(long, value_name = "RFC3339")]
    next_update: String,
    /// SchemeTerritory; defaults to the folder's name.
    #[arg(long, value_name = "CC")]
    country: Option<String>,
    /// SchemeOperatorName.
    #[arg(long, value_name = "NAME")]
    operator: Option<String>,
    /// ListIssueDateTime (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    issued: Option<String>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    /// The list.
    file: PathBuf,
    /// Certificates allowed to sign it (PEM).
    #[arg(long = "signer", value_name = "PEM", required = true)]
    signers: Vec<PathBuf>,
    /// The last accepted sequence number: a lower one is a rollback.
    #[arg(long, value_name = "N")]
    last_sequence: Option<u64>,
    /// The territory the list must be for.
    #[arg(long, value_name = "CC")]
    country: Option<String>,
    /// Time of the check (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
}

pub fn run(a: &TrustArgs) -> anyhow::Result<Outcome> {
    match &a.command {
        TrustCommand::Build(b) => build(b),
        TrustCommand::Show { file, signers } => show(file, signers),
        TrustCommand::Diff { old, new } => diff(old, new),
        TrustCommand::Verify(v) => verify(v),
    }
}

fn time_arg(flag: &str, s: &str) -> anyhow::Result<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| anyhow::anyhow!("{flag} {s:?} is not an RFC 3339 time: {e}"))
}

fn build(b: &BuildArgs) -> anyhow::Result<Outcome> {
    let name = b
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let territory = b.country.clone().unwrap_or(name);
    let cc: CountryCode = territory.parse().map_err(|_| {
        anyhow::anyhow!(
            "--country {territory:?}: give a two-letter country code (the folder's name is not one)"
        )
    })?;
    let next_update = time_arg("--next-update", &b.next_update)?;
    let issued = match &b.issued {
        Some(s) => time_arg("--issued", s)?,
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    if next_update <= issued {
        bail!("--next-update must be after the issue time");
    }
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(&b.dir).with_context(|| format!("cannot read {}", b.dir.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", b.dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let lower = name.to_ascii_lowercase();
        if name.starts_with('.')
            || !(lower.ends_with(".pem") || lower.ends_with(".crt") || lower.ends_with(".der"))
        {
            continue;
        }
        let bytes = std::fs::read(entry.path())
            .with_context(|| format!("cannot read {}", entry.path().display()))?;
        files.push(TrustFile {
            country: cc,
            name,
            bytes,
        });
    }
    let list = TrustList::from_files(files)?;
    if let Some(f) = list.faults().first() {
        bail!("{} (a list is only built from a clean folder)", f.detail);
    }
    let anchors = list.anchors(cc);
    if anchors.is_empty() {
        bail!("{} holds no CA certificate", b.dir.display());
    }
    let ders = list.anchor_certificates(cc);
    let services: Vec<TlService> = anchors
        .iter()
        .zip(ders)
        .map(|(a, der)| TlService {
            provider: b
                .operator
                .clone()
                .unwrap_or_else(|| format!("{cc} trust service provider")),
            name: a.subject.clone(),
            service_type: SVC_CA_PKC.into(),
            certificates: vec![der],
            statuses: vec![StatusPeriod {
                status: STATUS_GRANTED.into(),
                from_unix: a.not_before,
            }],
        })
        .collect();
    let operator = b
        .operator
        .clone()
        .unwrap_or_else(|| format!("{cc} trust list operator"));
    let xml = build_trusted_list(&TlBuild {
        territory: cc.as_str(),
        operator: &operator,
        sequence: b.sequence,
        issued_unix: issued,
        next_update_unix: next_update,
        services: &services,
        pointers: &[],
    })?;
    let signer = crate::keys::open_signer(&b.signer_key)?;
    let certificates = crate::sign::load_certs(&b.signer_cert, &[])?;
    let signed = sign_enveloped(
        xml.as_bytes(),
        signer.as_ref(),
        &SignOptions {
            certificates,
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )?;
    let mut out = std::io::stdout().lock();
    out.write_all(&signed)?;
    out.flush()?;
    Ok(Outcome::Passed)
}

fn read_list(file: &PathBuf) -> anyhow::Result<(Vec<u8>, TrustedList)> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let list =
        parse_trusted_list(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok((bytes, list))
}

fn read_signers(paths: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        out.extend(
            tamga_dsig::certificates_from_pem(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
        );
    }
    Ok(out)
}

fn rfc3339(t: i64) -> String {
    tamga_policy::rfc3339(t)
}

fn service_json(s: &TlService, at: i64) -> Value {
    let certs: Vec<Value> = s
        .certificates
        .iter()
        .map(|der| match summarize_certificate(der) {
            Ok(c) => json!({ "subject": c.subject, "sha256": c.sha256, "notAfter": rfc3339(c.not_after) }),
            Err(e) => json!({ "error": e.to_string() }),
        })
        .collect();
    json!({
        "provider": s.provider,
        "name": s.name,
        "type": s.service_type,
        "status": s.status_at(at).map(|p| p.status.clone()),
        "trustedNow": s.trusted_at(at),
        "history": s.statuses.iter().map(|p| json!({ "status": p.status, "from": rfc3339(p.from_unix) })).collect::<Vec<_>>(),
        "certificates": certs,
    })
}

fn show(file: &PathBuf, signers: &[PathBuf]) -> anyhow::Result<Outcome> {
    let (bytes, list) = read_list(file)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let pinned = read_signers(signers)?;
    let signature = match TlSignatureEngine::default().signer_sha256(&bytes, now) {
        Ok(sha) => {
            let is_pinned = pinned
                .iter()
                .any(|d| summarize_certificate(d).is_ok_and(|c| c.sha256 == sha));
            json!({ "valid": true, "signerSha256": sha, "pinned": if signers.is_empty() { Value::Null } else { Value::Bool(is_pinned) } })
        }
        Err(e) => json!({ "valid": false, "error": e }),
    };
    let out = json!({
        "territory": list.territory,
        "version": list.version,
        "sequence": list.sequence,
        "operator": list.operator,
        "issued": rfc3339(list.issued_unix),
        "nextUpdate": list.next_update_unix.map(rfc3339),
        "stale": list.next_update_unix.is_some_and(|n| now > n),
        "signature": signature,
        "services": list.services.iter().map(|s| service_json(s, now)).collect::<Vec<_>>(),
        "pointers": list.pointers.iter().map(|p| json!({ "territory": p.territory, "location": p.location, "signers": p.signer_certificates.iter().filter_map(|d| summarize_certificate(d).ok()).map(|c| c.sha256).collect::<Vec<_>>() })).collect::<Vec<_>>(),
    });
    print_json(&out)?;
    Ok(Outcome::Passed)
}

/// Certificate SHA-256 → (subject, trusted now).
fn anchors_of(list: &TrustedList, at: i64) -> std::collections::BTreeMap<String, (String, bool)> {
    let mut out = std::collections::BTreeMap::new();
    for s in &list.services {
        for der in &s.certificates {
            if let Ok(c) = summarize_certificate(der) {
                let e = out.entry(c.sha256).or_insert((c.subject, false));
                e.1 |= s.trusted_at(at);
            }
        }
    }
    out
}

fn diff(old: &PathBuf, new: &PathBuf) -> anyhow::Result<Outcome> {
    let (_, a) = read_list(old)?;
    let (_, b) = read_list(new)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let before = anchors_of(&a, now);
    let after = anchors_of(&b, now);
    let entry = |sha: &String, subject: &String| json!({ "sha256": sha, "subject": subject });
    let added: Vec<Value> = after
        .iter()
        .filter(|(sha, (_, trusted))| *trusted && !before.get(*sha).is_some_and(|(_, t)| *t))
        .map(|(sha, (subject, _))| entry(sha, subject))
        .collect();
    let withdrawn: Vec<Value> = before
        .iter()
        .filter(|(sha, (_, trusted))| *trusted && !after.get(*sha).is_some_and(|(_, t)| *t))
        .map(|(sha, (subject, _))| entry(sha, subject))
        .collect();
    let out = json!({
        "territory": { "old": a.territory, "new": b.territory },
        "sequence": { "old": a.sequence, "new": b.sequence },
        "rollback": b.sequence < a.sequence,
        "nextUpdate": { "old": a.next_update_unix.map(rfc3339), "new": b.next_update_unix.map(rfc3339) },
        "added": added,
        "withdrawn": withdrawn,
    });
    print_json(&out)?;
    Ok(Outcome::Passed)
}

fn verify(v: &VerifyArgs) -> anyhow::Result<Outcome> {
    let bytes =
        std::fs::read(&v.file).with_context(|| format!("cannot read {}", v.file.display()))?;
    let pinned = read_signers(&v.signers)?;
    let at = crate::parse_time(v.at.as_deref())?;
    let source = v.file.display().to_string();
    let result = accept_trusted_list(&TlCheck {
        bytes: &bytes,
        source: &source,
        pinned_signers: &pinned,
        expected_territory: v.country.as_deref(),
        last_accepted_sequence: v.last_sequence,
        at_unix: at,
        signature: &TlSignatureEngine::default(),
    });
    let (out, outcome) = match result {
        Ok(a) => {
            let stale = a.list.next_update_unix.is_some_and(|n| at > n);
            (
                json!({
                    "accepted": true,
                    "territory": a.list.territory,
                    "sequence": a.list.sequence,
                    "nextUpdate": a.list.next_update_unix.map(rfc3339),
                    "stale": stale,
                    "signer": { "subject": a.signer.subject, "sha256": a.signer.sha256 },
                    "caServices": a.list.services.len(),
                    "sha256": a.sha256,
                }),
                Outcome::Passed,
            )
        }
        Err(e) => (
            json!({ "accepted": false, "reason": e.to_string() }),
            Outcome::Failed,
        ),
    };
    print_json(&out)?;
    Ok(outcome)
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}
