use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tamga_dsig::{
    certificates_from_pem, default_digest, sign_enveloped, SignOptions, SignatureAlgorithm, Signer,
    SigningKey,
};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The signer's private key (PKCS#8 PEM).
    #[arg(long, value_name = "PEM")]
    key: PathBuf,
    /// The signer's certificate (PEM).
    #[arg(long, value_name = "PEM")]
    cert: PathBuf,
    /// Intermediate CA certificates to include in KeyInfo (repeatable).
    #[arg(long, value_name = "PEM")]
    chain: Vec<PathBuf>,
    /// Add XAdES-B-B signed properties (SigningTime, SigningCertificateV2).
    #[arg(long)]
    xades: bool,
    /// Signature algorithm: rsa-sha256|rsa-sha384|rsa-sha512|rsa-pss-sha256|rsa-pss-sha384|rsa-pss-sha512|ecdsa-sha256|ecdsa-sha384|ecdsa-sha512|ed25519 (default: from the key; a GOST demo key signs in the Kazakh NCA form: pkigovkz URIs, Streebog digests).
    #[arg(long, value_name = "ALG")]
    alg: Option<String>,
    /// Claimed signing time for XAdES (RFC 3339); defaults to now.
    #[arg(long, value_name = "RFC3339")]
    signing_time: Option<String>,
    /// The declaration to sign.
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

/// Loads a signing key, warning when the file is readable by others.
pub fn load_key(path: &std::path::Path) -> anyhow::Result<SigningKey> {
    warn_if_exposed(path);
    let pem = std::fs::read(path).with_context(|| format!("cannot read key {}", path.display()))?;
    SigningKey::from_pkcs8_pem(&pem).with_context(|| format!("key {}", path.display()))
}

fn warn_if_exposed(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "tamga: warning: key file {} is readable by group or others (chmod 600 it)",
                path.display()
            );
        }
    }
}

/// Reads a certificate and optional chain files into DER, signer first.
pub fn load_certs(cert: &std::path::Path, chain: &[PathBuf]) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut certs = Vec::new();
    for (i, p) in std::iter::once(cert)
        .chain(chain.iter().map(PathBuf::as_path))
        .enumerate()
    {
        let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        let found = certificates_from_pem(&bytes).with_context(|| format!("{}", p.display()))?;
        // The signer file contributes only its first certificate.
        if i == 0 {
            certs.extend(found.into_iter().take(1));
        } else {
            certs.extend(found);
        }
    }
    Ok(certs)
}

pub fn run(a: &SignArgs) -> anyhow::Result<Outcome> {
    let mut key = load_key(&a.key)?;
    if let Some(alg) = &a.alg {
        let parsed = SignatureAlgorithm::from_name(alg)
            .ok_or_else(|| anyhow::anyhow!("--alg {alg:?} is not a known signature algorithm"))?;
        key = key.with_algorithm(parsed).context("--alg")?;
    }
    if matches!(key.algorithm(), SignatureAlgorithm::Gost { .. }) {
        eprintln!(
            "tamga: warning: signing with a GOST demo key (variable-time arithmetic: for demo and test material only)"
        );
    }
    let certificates = load_certs(&a.cert, &a.chain)?;
    let signing_time = match &a.signing_time {
        Some(s) => time::OffsetDateTime::from_unix_timestamp(crate::parse_time(Some(s))?)?,
        None => time::OffsetDateTime::now_utc(),
    };
    let input =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let signed = sign_enveloped(
        &input,
        &key,
        &SignOptions {
            certificates,
            digest: default_digest(&key),
            xades: a.xades,
            signing_time,
            limits: Default::default(),
        },
    )
    .with_context(|| format!("cannot sign {}", a.file.display()))?;
    let mut out = std::io::stdout().lock();
    out.write_all(&signed)?;
    out.flush()?;
    Ok(Outcome::Passed)
}
