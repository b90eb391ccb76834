use std::path::Path;

use anyhow::Context;
use tamga_pki::{generate, parse_country_list, DemoPkiOptions};

use crate::Outcome;

pub fn run(out: &Path, countries: &str) -> anyhow::Result<Outcome> {
    let countries = parse_country_list(countries).context("--countries")?;
    make(
        out,
        &countries,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )?;
    eprintln!(
        "tamga: demo PKI for {} written to {} (trust list: {}/trust)",
        countries.join(", "),
        out.display(),
        out.display()
    );
    Ok(Outcome::Passed)
}

pub fn make(out: &Path, countries: &[String], now: i64) -> anyhow::Result<()> {
    let pki = generate(&DemoPkiOptions {
        countries: countries.to_vec(),
        now_unix: now,
    })
    .context("generating the demo PKI")?;
    pki.write_to(out)
        .with_context(|| format!("writing the demo PKI to {}", out.display()))?;
    Ok(())
}
