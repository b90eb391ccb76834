#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Offline checks through the built binary (issue 17):
//!
//! * `tamga receipt verify-qr --trust DIR [--bundle FILE] [--log FILE] PAYLOAD` appends each
//!   check to the log (green, red, and amber for a stale bundle) and says its `result` and
//!   `checkId`;
//! * `tamga checkpoint upload --config FILE LOG` prints the number of checks recorded: the
//!   same log uploaded twice is recorded once; the checks are `checked` audit events marked
//!   offline, each with a signed check record, in an intact chain; a line it cannot record
//!   is named on stderr (exit 1); usage errors exit 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tamga_store::Store;

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

fn run(args: &[&str]) -> Output {
    Command::new(TAMGA)
        .args(args)
        .env_remove("TAMGA_CHECKPOINT")
        .env_remove("TAMGA_OFFICER")
        .env_remove("TAMGA_DEVICE")
        .output()
        .expect("run tamga")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        let o = run(&["demo", "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let f = Self { dir };
        let keys = f.path("pki/keys/AZ");
        std::fs::write(
            f.config(),
            format!(
                "[trust]\ndir = \"{}\"\n\n[[authority]]\ncountry = \"AZ\"\nkey = \"{}\"\ncert = \"{}\"\nchain = [\"{}\"]\n\n[metrics]\nlisten = \"\"\n\n[embedded]\nsqlite = \"{}\"\n\n[gateway.checks]\ncheckpoints = [\"AZ-ALAT\", \"AZ-EXIT\"]\n",
                f.trust(),
                keys.join("authority.key").display(),
                keys.join("authority.pem").display(),
                keys.join("issuing-ca.pem").display(),
                f.dir.path().join("audit.sqlite").display(),
            ),
        )
        .unwrap();
        f
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("demo").join(rel)
    }
    fn trust(&self) -> String {
        self.path("pki/trust").display().to_string()
    }
    fn config(&self) -> PathBuf {
        self.dir.path().join("site.toml")
    }
    fn qr(&self, receipt: &str) -> String {
        let o = run(&["receipt", "qr", self.path(receipt).to_str().unwrap()]);
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    }
}

fn verify_logged(f: &Fixture, log: &Path, extra: &[&str], payload: &str) -> Output {
    let trust = f.trust();
    let mut args = vec![
        "receipt",
        "verify-qr",
        "--trust",
        &trust,
        "--log",
        log.to_str().unwrap(),
        "--checkpoint",
        "AZ-EXIT",
        "--officer",
        "officer-exit",
        "--device",
        "handheld-7",
    ];
    args.extend_from_slice(extra);
    args.push(payload);
    run(&args)
}

/// A bundle signed by the AZ authority, issued 3 days ago and current for a day.
fn stale_bundle(f: &Fixture) -> PathBuf {
    let keys = f.path("pki/keys/AZ");
    let key = std::fs::read(keys.join("authority.key")).unwrap();
    let signer = tamga_dsig::SigningKey::from_pkcs8_pem(&key).unwrap();
    let mut chain = Vec::new();
    for p in ["authority.pem", "issuing-ca.pem"] {
        chain.extend(
            tamga_dsig::certificates_from_pem(&std::fs::read(keys.join(p)).unwrap()).unwrap(),
        );
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let files = tamga_gateway::pages::read_trust_files(Path::new(&f.trust())).unwrap();
    let bundle = tamga_qr::bundle::Bundle {
        issued_at: now - 3 * 86_400,
        next_update: now - 2 * 86_400,
        issuer_country: "AZ".into(),
        files,
        authorities: vec![chain[0].clone()],
    };
    let path = f.dir.path().join("stale.cose");
    std::fs::write(&path, bundle.sign(&signer, &chain).unwrap()).unwrap();
    path
}

fn upload(f: &Fixture, log: &Path) -> Output {
    run(&[
        "checkpoint",
        "upload",
        "--config",
        f.config().to_str().unwrap(),
        log.to_str().unwrap(),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_log_uploaded_twice_is_recorded_once() {
    let f = Fixture::new();
    let log = f.dir.path().join("checks.log");
    let good = f.qr("declarations/kz-az-receipt.xml");
    let rejected = f.qr("declarations/kz-forged-receipt.xml");
    let mut tampered: Vec<char> = good.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == '0' { '1' } else { '0' };
    let tampered: String = tampered.into_iter().collect();

    // Green, red (a rejected declaration; a tampered QR), amber (a stale bundle).
    let mut ids = Vec::new();
    for (payload, extra, code, result) in [
        (&good, vec![], 0, "accepted"),
        (&rejected, vec![], 0, "rejected"),
        (&tampered, vec![], 1, "not_authentic"),
    ] {
        let o = verify_logged(&f, &log, &extra, payload);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = json(&o);
        assert_eq!(v["result"], result);
        ids.push(v["checkId"].as_str().unwrap().to_owned());
    }
    let bundle = stale_bundle(&f);
    let o = verify_logged(&f, &log, &["--bundle", bundle.to_str().unwrap()], &good);
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(
        (
            v["result"].as_str(),
            v["code"].as_str(),
            v["state"].as_str()
        ),
        (
            Some("could_not_check"),
            Some("bundle_stale"),
            Some("could_not_check")
        )
    );
    ids.push(v["checkId"].as_str().unwrap().to_owned());
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["checkpoint"] == "AZ-EXIT"
        && l["officer"] == "officer-exit"
        && l["device"] == "handheld-7"));
    assert!(lines[3]["bundleVersion"].as_i64().is_some());

    // Uploaded twice: recorded once.
    let o = upload(&f, &log);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "4\n");
    let o = upload(&f, &log);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("4 check(s)"));

    let store = tamga_store::open_sqlite(&f.dir.path().join("audit.sqlite")).unwrap();
    assert!(store.verify_chain().await.unwrap().is_intact());
    let events = store.events(None, 100).await.unwrap();
    let checked: Vec<Value> = events
        .iter()
        .filter(|e| e.event.stage == "checked")
        .map(|e| serde_json::from_str(e.event.detail.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(checked.len(), 4);
    for (d, id) in checked.iter().zip(&ids) {
        assert_eq!(d["checkId"], id.as_str());
        assert_eq!(d["offline"], true);
        assert_eq!(d["checkpoint"], "AZ-EXIT");
        assert_eq!(d["officer"], "officer-exit");
        let record = store
            .stage_result(id, "check_record")
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8(record).unwrap();
        assert!(text.contains("<Offline>true</Offline>"), "{text}");
        assert!(text.contains(&format!(
            "<Result>{}</Result>",
            d["result"].as_str().unwrap()
        )));
    }
    assert_eq!(
        checked
            .iter()
            .map(|d| d["result"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["accepted", "rejected", "not_authentic", "could_not_check"]
    );
    // One post, one paper: the default rule lets the same post look again.
    assert!(events
        .iter()
        .filter(|e| e.event.stage == "checked")
        .all(|e| e.event.reason.as_deref() != Some("already_presented")));
}

#[test]
fn upload_names_the_lines_it_cannot_record_and_usage_errors_exit_2() {
    let f = Fixture::new();
    let log = f.dir.path().join("mixed.log");
    let good = f.qr("declarations/kz-az-receipt.xml");
    let o = verify_logged(&f, &log, &[], &good);
    assert_eq!(o.status.code(), Some(0));
    let first = std::fs::read_to_string(&log).unwrap();
    // A line from a checkpoint this site does not have, and a line that is not a check.
    let elsewhere = first.replace("AZ-EXIT", "AZ-NOWHERE");
    std::fs::write(&log, format!("{first}{elsewhere}not json\n")).unwrap();
    let o = upload(&f, &log);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("mixed.log:2: not recorded: the checkpoint \"AZ-NOWHERE\""),
        "{err}"
    );
    assert!(err.contains("mixed.log:3: not recorded:"), "{err}");

    for args in [
        vec!["checkpoint", "upload", log.to_str().unwrap()],
        vec![
            "checkpoint",
            "upload",
            "--config",
            "/nonexistent.toml",
            log.to_str().unwrap(),
        ],
        vec![
            "checkpoint",
            "upload",
            "--config",
            f.config().to_str().unwrap(),
            "/nonexistent.log",
        ],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("tamga: error:"));
    }
    let trust = f.trust();
    let o = run(&[
        "receipt",
        "verify-qr",
        "--trust",
        &trust,
        "--log",
        log.to_str().unwrap(),
        "--checkpoint",
        "",
        &good,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--checkpoint"));
}
