use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use tamga_dsig::ExternalResolver;
use tamga_pipeline::ocsp_fetch::{OcspConfig, OcspFetcher};
use tamga_policy::{Policy, Profile, VerifyRequest};
use tamga_trust::{CountryCode, TrustList};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Mutual-recognition trust list: a directory with one folder per country (`<DIR>/<CC>/`).
    #[arg(long, value_name = "DIR")]
    trust: PathBuf,
    /// Declared origin country (ISO 3166 alpha-2): only its CAs are trusted for these files.
    #[arg(long = "from", value_name = "CC")]
    from: String,
    /// Validation time (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Validation policy (TOML); defaults to the strict customs profile.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Override the policy's profile (`generic` is for conformance suites only).
    #[arg(long, value_name = "customs|generic")]
    profile: Option<String>,
    /// Map an external reference URI to a local file (generic profile): URI=FILE. Nothing is ever fetched.
    #[arg(long = "external", value_name = "URI=FILE")]
    external: Vec<String>,
    /// Shared secret file for HMAC signatures (generic profile only).
    #[arg(long, value_name = "FILE")]
    hmac_key: Option<PathBuf>,
    /// OCSP: `fetch` asks the responders named in the path's certificates
    /// (Authority Information Access, http://) and uses their answers as
    /// evidence beside the signature's own; `off` (the default) uses only
    /// what the signature and the trust list carry, so verification stays
    /// offline unless asked.
    #[arg(long, value_name = "fetch|off", default_value = "off")]
    ocsp: String,
    /// Timeout of one OCSP exchange with `--ocsp fetch`, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    ocsp_timeout_ms: u64,
    /// Signed documents to verify.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

struct MapResolver(HashMap<String, Vec<u8>>);

impl ExternalResolver for MapResolver {
    fn resolve(&self, uri: &str) -> Option<Vec<u8>> {
        self.0.get(uri).cloned()
    }
}

pub fn run(a: &VerifyArgs) -> anyhow::Result<Outcome> {
    let origin: CountryCode = a.from.parse().map_err(|_| {
        anyhow::anyhow!(
            "--from {:?} is not an ISO 3166 alpha-2 country code",
            a.from
        )
    })?;
    let at = crate::parse_time(a.at.as_deref())?;
    let fetcher = match a.ocsp.as_str() {
        "off" => None,
        "fetch" => Some(OcspFetcher::new(&OcspConfig {
            fetch: true,
            timeout_ms: a.ocsp_timeout_ms,
            ..OcspConfig::default()
        })),
        other => bail!("--ocsp {other:?}: expected fetch or off"),
    };
    let mut policy = match &a.policy {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read policy {}", p.display()))?;
            Policy::from_toml(&text).map_err(|e| anyhow::anyhow!("policy {}: {e}", p.display()))?
        }
        None => Policy::customs(),
    };
    match a.profile.as_deref() {
        None => {}
        Some("customs") => policy.profile = Profile::Customs,
        Some("generic") => {
            let customs_algorithms = policy.algorithms == Policy::customs().algorithms;
            policy.profile = Profile::Generic;
            if customs_algorithms && a.policy.is_none() {
                policy.algorithms = Policy::generic().algorithms;
            }
        }
        Some(other) => bail!("--profile {other:?}: expected customs or generic"),
    }
    let trust = TrustList::load_dir(&a.trust)
        .with_context(|| format!("cannot load trust list {}", a.trust.display()))?;
    crate::warn_degraded(&trust);
    let mut map = HashMap::new();
    for e in &a.external {
        let (uri, file) = e
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--external {e:?}: expected URI=FILE"))?;
        let bytes = std::fs::read(file).with_context(|| format!("cannot read {file}"))?;
        map.insert(uri.to_string(), bytes);
    }
    let resolver = MapResolver(map);
    let secret = match &a.hmac_key {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    // Read everything first: an unreadable file is a usage error (exit 2),
    // and must not leave half the verdicts printed.
    let inputs: Vec<(String, Vec<u8>)> = a
        .files
        .iter()
        .map(|f| {
            std::fs::read(f)
                .map(|b| (f.display().to_string(), b))
                .with_context(|| format!("cannot read {}", f.display()))
        })
        .collect::<anyhow::Result<_>>()?;

    let mut all_passed = true;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (name, bytes) in &inputs {
        let request = VerifyRequest {
            bytes,
            trust: &trust,
            origin,
            at_unix: at,
            policy: &policy,
            resolver: &resolver,
            hmac_secret: secret.as_deref(),
        };
        let fetched = fetcher.as_ref().map(|f| {
            f.fetch(
                &tamga_policy::ocsp_targets(&request),
                u64::try_from(at).unwrap_or(0),
            )
        });
        for why in fetched.iter().flat_map(|f| f.failures.iter()) {
            eprintln!("tamga: OCSP: {name}: {why}");
        }
        let responses: Vec<&[u8]> = fetched
            .iter()
            .flat_map(|f| f.responses.iter().map(Vec::as_slice))
            .collect();
        let report = tamga_policy::verify_document_fetched(
            &request,
            tamga_policy::Strategy::Auto,
            &responses,
        )
        .0;
        all_passed &= report.passed();
        if inputs.len() == 1 {
            serde_json::to_writer_pretty(&mut out, &report)?;
        } else {
            let mut value = serde_json::to_value(&report)?;
            if let serde_json::Value::Object(m) = &mut value {
                m.insert("file".into(), serde_json::Value::String(name.clone()));
            }
            serde_json::to_writer(&mut out, &value)?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(if all_passed {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
