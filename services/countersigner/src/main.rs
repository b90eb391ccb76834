//! The `countersigner` stage as its own process, for production deployments:
//! `countersigner --config FILE`. All logic lives in `tamga-pipeline`; `tamga run`
//! runs the same code for every stage in one process.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use tamga_pipeline::site::{init_logging, run_until_signal, SiteOptions};
use tamga_pipeline::{Config, Stage};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let config = match args
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
    {
        Some(c) => c.clone(),
        None => {
            eprintln!("usage: countersigner --config FILE   (environment: TAMGA_AMQP_URL, TAMGA_DATABASE_URL, …)");
            return ExitCode::from(2);
        }
    };
    let cfg = match Config::load(std::path::Path::new(&config)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("countersigner: error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.log.format, &cfg.log.level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("countersigner: error: {e}");
            return ExitCode::from(2);
        }
    };
    let options = SiteOptions {
        embedded: false,
        stages: vec![Stage::Countersign],
    };
    match rt.block_on(run_until_signal(&cfg, &options, &tamga_pipeline::open_key)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersigner: error: {e}");
            ExitCode::from(2)
        }
    }
}
