#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tamga run` stops cleanly on a SIGTERM sent the instant it logs `ready`
//! (the per-stage binaries have the same test, 200 starts, in
//! services/verifier/tests/sigterm_race.rs).

#[path = "../../verifier/tests/common/ready.rs"]
mod ready;

use std::process::Command;

#[test]
fn tamga_run_stops_cleanly_on_sigterm_at_ready() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ready::site(dir.path());
    let mut failures = Vec::new();
    for i in 0..100 {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tamga"));
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .env_remove("TAMGA_LOG");
        let (status, log) = ready::start_and_stop_at_ready(cmd);
        if !status.success() {
            failures.push(format!("start {i}: {status:?}\n{log}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}
