use std::path::Path;

use anyhow::Context;
use tamga_pki::{generate_with_gost, parse_country_list, DemoPkiOptions};

use crate::Outcome;

/// The countries of `--gost`: a list, or `none`.
pub fn parse_gost(list: &str) -> anyhow::Result<Vec<String>> {
    if list.trim().eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    parse_country_list(list).context("--gost")
}

pub fn run(out: &Path, countries: &str, gost: &str) -> anyhow::Result<Outcome> {
    let countries = parse_country_list(countries).context("--countries")?;
    let gost = parse_gost(gost)?;
    make(
        out,
        &countries,
        &gost,
        time::OffsetDateTime::now_utc().unix_timestamp(),
    )?;
    let with_gost: Vec<&str> = countries
        .iter()
        .filter(|c| gost.contains(c))
        .map(String::as_str)
        .collect();
    eprintln!(
        "tamga: demo PKI for {} written to {} (trust list: {}/trust){}",
        countries.join(", "),
        out.display(),
        out.display(),
        if with_gost.is_empty() {
            String::new()
        } else {
            format!(
                "; GOST R 34.10-2015 flavour for {} (keys/<CC>/broker-gost*.key: demo keys, variable-time signing)",
                with_gost.join(", ")
            )
        }
    );
    Ok(Outcome::Passed)
}

pub fn make(out: &Path, countries: &[String], gost: &[String], now: i64) -> anyhow::Result<()> {
    let pki = generate_with_gost(
        &DemoPkiOptions {
            countries: countries.to_vec(),
            now_unix: now,
        },
        gost,
    )
    .context("generating the demo PKI")?;
    pki.write_to(out)
        .with_context(|| format!("writing the demo PKI to {}", out.display()))?;
    Ok(())
}
