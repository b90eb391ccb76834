//! `tamga run` (every stage in one process).

use std::path::PathBuf;

use clap::Args;
use tamga_pipeline::site::{init_logging, run_until_signal, SiteOptions};
use tamga_pipeline::{Config, Stage};

use crate::Outcome;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Site configuration (TOML); every key can be overridden by TAMGA_<SECTION>_<KEY>.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Use the in-process bus and SQLite even when [amqp] and [database] are configured.
    #[arg(long)]
    embedded: bool,
    /// Stages to run (comma-separated): `fused` (verify, countersign and
    /// forward in one hop: the fastest), or any of verify,countersign,forward
    /// (one hop each, over the internal stage queues).
    #[arg(long, value_name = "LIST", default_value = "fused")]
    stages: String,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(a: &RunArgs) -> anyhow::Result<Outcome> {
    let cfg = Config::load(&a.config)?;
    init_logging(&cfg.log.format, &cfg.log.level);
    let stages = a
        .stages
        .split(',')
        .map(|s| {
            Stage::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("--stages: unknown stage {s:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let embedded = a.embedded || cfg.is_embedded();
    let complete = stages == [Stage::Fused]
        || Stage::ALL.iter().all(|s| stages.contains(s)) && !stages.contains(&Stage::Fused);
    if embedded && !complete {
        anyhow::bail!(
            "the embedded in-process bus needs every stage in one process: \
             --stages fused, or verify,countersign,forward"
        );
    }
    let options = SiteOptions { embedded, stages };
    runtime()?.block_on(run_until_signal(&cfg, &options, &tamga_pipeline::open_key))?;
    Ok(Outcome::Passed)
}
