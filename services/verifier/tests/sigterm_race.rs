#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A SIGTERM sent the instant `ready` is logged must stop the process cleanly
//! (exit 0), every time. Before the handlers were installed ahead of start-up
//! there was a window after `ready` in which the signal's default action
//! killed the process instead (174 of 200 starts here) — what an orchestrator
//! does on a rolling update right after a readiness probe.

mod common;
use common::ready::{site, start_and_stop_at_ready};
use std::process::Command;

const STARTS: usize = 200;

#[test]
fn sigterm_right_after_ready_is_a_clean_stop_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = site(dir.path());
    let mut failures = Vec::new();
    for i in 0..STARTS {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_verifier"));
        cmd.arg("--config").arg(&cfg).env_remove("TAMGA_LOG");
        let (status, log) = start_and_stop_at_ready(cmd);
        if !status.success() {
            failures.push(format!("start {i}: {status:?}\n{log}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {STARTS} starts did not stop cleanly on SIGTERM at `ready`:\n{}",
        failures.len(),
        failures.join("\n---\n")
    );
}
