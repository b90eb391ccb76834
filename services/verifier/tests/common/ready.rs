#![allow(dead_code)]
//! Shared by the SIGTERM-at-`ready` tests of the per-stage binaries and of
//! `tamga run` (included with `#[path]`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A site configuration on the embedded default (in-process bus, SQLite)
/// with a fresh demo PKI in `dir`.
pub fn site(dir: &std::path::Path) -> std::path::PathBuf {
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(dir)
    .unwrap();
    let keys = dir.join("keys/AZ");
    let config = format!(
        "[trust]\ndir = \"{}\"\n[metrics]\nlisten = \"\"\n[log]\nlevel = \"info\"\n[embedded]\nsqlite = \"{}\"\n[[authority]]\ncountry = \"AZ\"\nkey = \"{}\"\ncert = \"{}\"\nchain = [\"{}\"]\n",
        dir.join("trust").display(),
        dir.join("audit.sqlite").display(),
        keys.join("authority.key").display(),
        keys.join("authority.pem").display(),
        keys.join("issuing-ca.pem").display(),
    );
    let cfg = dir.join("site.toml");
    std::fs::write(&cfg, config).unwrap();
    cfg
}

/// Starts `cmd`, sends SIGTERM from the reading thread the moment the bytes
/// of the `ready` line arrive (no process spawn in between, so the signal
/// lands within microseconds), and returns the exit status and the log.
pub fn start_and_stop_at_ready(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = Vec::new();
        let mut buf = [0u8; 4096];
        let mut signalled = false;
        loop {
            match stderr.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.extend_from_slice(&buf[..n]);
                    if !signalled && String::from_utf8_lossy(&log).contains(": ready") {
                        // SAFETY: kill(2) on our own child's pid; no memory is touched.
                        unsafe { libc::kill(pid, libc::SIGTERM) };
                        signalled = true;
                    }
                }
            }
        }
        (signalled, String::from_utf8_lossy(&log).into_owned())
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no exit within 60 s of starting");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let (signalled, log) = reader.join().unwrap();
    assert!(signalled, "never logged `ready`:\n{log}");
    (status, log)
}
