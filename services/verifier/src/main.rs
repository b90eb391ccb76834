//! The `verifier` stage as its own process, for production deployments:
//! `verifier --config FILE`. All logic lives in `tamga-pipeline`; `tamga run`
//! runs the same code for every stage in one process.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tamga_pipeline::site::stage_main("verifier", tamga_pipeline::Stage::Verify)
}
