//! `tamga checkpoint upload --config FILE LOG`: records the checks of an offline check log
//! (`tamga receipt verify-qr --log`) as `checked` audit events marked offline, each with its
//! signed check record. Prints the number of checks recorded now; a check already recorded
//! (the same log uploaded twice) is not recorded again.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use tamga_pipeline::Config;

use crate::Outcome;

/// Largest log read.
const MAX_LOG_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(subcommand)]
    command: CheckpointCommand,
}

#[derive(Debug, Subcommand)]
enum CheckpointCommand {
    /// Record an offline check log; prints the number of checks recorded.
    Upload {
        /// Site configuration (TOML): the store, the authority key that signs check
        /// records, and [gateway.checks].
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The log (`tamga receipt verify-qr --log LOG`).
        #[arg(value_name = "LOG")]
        log: PathBuf,
    },
}

pub fn run(a: &CheckpointArgs) -> anyhow::Result<Outcome> {
    let CheckpointCommand::Upload { config, log } = &a.command;
    let cfg = Config::load(config)?;
    let file =
        std::fs::File::open(log).with_context(|| format!("cannot read {}", log.display()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_LOG_BYTES + 1), &mut text)
        .with_context(|| format!("{} is not a UTF-8 check log", log.display()))?;
    if text.len() as u64 > MAX_LOG_BYTES {
        anyhow::bail!("{} is larger than {MAX_LOG_BYTES} bytes", log.display());
    }
    let authorities = tamga_gateway::pages_authorities(&cfg, &tamga_pipeline::open_key);
    let Some(signer) = authorities.first() else {
        anyhow::bail!("the site has no usable [[authority]] key to sign check records");
    };
    let upload = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let store = tamga_gateway::connect_store(&cfg, cfg.database.is_none())
                .await
                .context("opening the store")?;
            let metrics = tamga_pipeline::Metrics::new();
            let recorder = tamga_gateway::pages::checks::Recorder {
                store: store.as_ref(),
                signer: Some(signer),
                rule: cfg.gateway.checks.repeat_rule(),
                metrics: &metrics,
                chain: format!("{}/checks", cfg.worker.name),
            };
            let allowed = |c: &str| cfg.gateway.checks.allows_checkpoint(c);
            recorder
                .upload(&text, None, &allowed)
                .await
                .context("recording the checks")
        })?;
    for (line, why) in &upload.refused {
        eprintln!(
            "tamga: warning: {}:{line}: not recorded: {why}",
            log.display()
        );
    }
    if upload.already_recorded > 0 {
        eprintln!(
            "tamga: {} check(s) of {} were recorded before",
            upload.already_recorded,
            log.display()
        );
    }
    println!("{}", upload.recorded);
    Ok(if upload.refused.is_empty() {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}
