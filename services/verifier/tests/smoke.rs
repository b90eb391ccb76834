#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The per-stage binary starts from a configuration, logs `ready` once it
//! consumes, and stops on SIGTERM. (`countersigner` and `forwarder` are the
//! same `stage_main` with another stage.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn verifier_starts_logs_ready_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(dir.path())
    .unwrap();
    let keys = dir.path().join("keys/AZ");
    // No [amqp]/[database]: the in-process bus and SQLite.
    let config = format!(
        "[trust]\ndir = \"{}\"\n[metrics]\nlisten = \"\"\n[embedded]\nsqlite = \"{}\"\n[[authority]]\ncountry = \"AZ\"\nkey = \"{}\"\ncert = \"{}\"\nchain = [\"{}\"]\n",
        dir.path().join("trust").display(),
        dir.path().join("audit.sqlite").display(),
        keys.join("authority.key").display(),
        keys.join("authority.pem").display(),
        keys.join("issuing-ca.pem").display(),
    );
    let cfg = dir.path().join("site.toml");
    std::fs::write(&cfg, config).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .arg("--config")
        .arg(&cfg)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let ready = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => {
                let hit = l.contains(": ready");
                seen.push(l);
                if hit {
                    break true;
                }
            }
            Err(_) if Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    assert!(ready, "no `ready` line:\n{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.contains("verify")), "{seen:?}");
    // SIGTERM: a clean stop.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");

    // Usage errors exit 2.
    let out = Command::new(env!("CARGO_BIN_EXE_verifier"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
