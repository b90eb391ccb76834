#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `tamga` command-line contract, through the built binary:
//!
//! * `tamga verify`: one file → one pretty JSON object; several files → one
//!   JSON object per line with a `file` field; exit 0 when every file is
//!   TOTAL_PASSED, 1 when any is not (a hostile document is a verdict), 2 on
//!   usage and I/O errors, which print one line `tamga: error: …` on stderr
//!   and no verdicts;
//! * `--help` works on every subcommand;
//! * `tamga sign` output verifies;
//! * `tamga pki demo` writes the documented layout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pki::{generate, BrokerKind, DemoPki, DemoPkiOptions};
use tamga_xml::ParseLimits;

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

/// The demo PKI (AZ, KZ), generated once per test binary.
fn pki() -> &'static DemoPki {
    static PKI: OnceLock<DemoPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        generate(&DemoPkiOptions::new(["AZ", "KZ"], now)).expect("demo PKI")
    })
}

/// A fresh directory with the demo PKI written out (`trust/`, `keys/`).
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        pki().write_to(dir.path()).expect("write demo PKI");
        Self { dir }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn trust(&self) -> String {
        self.path("trust").display().to_string()
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }
}

fn declaration(seq: u64) -> String {
    sample(&SampleSpec::new("KZ", "AZ", seq, 3))
}

/// A KZ declaration signed in-process by a KZ broker.
fn signed(kind: BrokerKind, xades: bool, seq: u64) -> Vec<u8> {
    let kz = pki().country("KZ").unwrap();
    let b = kz.broker(kind).unwrap();
    sign_enveloped(
        declaration(seq).as_bytes(),
        &SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![b.cert_der.clone(), kz.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: ParseLimits::default(),
        },
    )
    .unwrap()
}

fn tampered(doc: &[u8]) -> Vec<u8> {
    String::from_utf8(doc.to_vec())
        .unwrap()
        .replacen("<Quantity unit=\"pcs\">", "<Quantity unit=\"pcs\">9", 1)
        .into_bytes()
}

fn tamga<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(TAMGA).args(args).output().expect("run tamga")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Exit 2, nothing on stdout, exactly one stderr line `tamga: error: …`
/// that mentions `needle`.
#[track_caller]
fn assert_usage_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", show(o));
    assert!(
        o.stdout.is_empty(),
        "no verdicts on a usage error\n{}",
        show(o)
    );
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr\n{}", show(o));
    assert!(lines[0].starts_with("tamga: error: "), "{}", show(o));
    assert!(
        lines[0].contains(needle),
        "stderr should mention {needle:?}\n{}",
        show(o)
    );
}

fn verify_args(ws: &Workspace, from: &str, files: &[&str]) -> Vec<String> {
    let mut v = vec![
        "verify".into(),
        "--trust".into(),
        ws.trust(),
        "--from".into(),
        from.into(),
    ];
    v.extend(files.iter().map(|f| f.to_string()));
    v
}

// ---------------------------------------------------------------------------
// verify: output shape and exit codes.
// ---------------------------------------------------------------------------

#[test]
fn verify_one_file_prints_one_pretty_json_object_and_exits_0() {
    let ws = Workspace::new();
    let f = ws.write("ok.xml", &signed(BrokerKind::Ecdsa, true, 1));
    let o = tamga(verify_args(&ws, "KZ", &[&f]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = stdout(&o);
    let v: Value = serde_json::from_str(&out).expect("one JSON document");
    assert!(v.is_object());
    assert!(
        out.contains("\n  \"indication\": "),
        "pretty-printed:\n{out}"
    );
    assert_eq!(v["indication"], "TOTAL_PASSED");
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["declaredOrigin"], "KZ");
    assert_eq!(v["signatureFormat"], "XAdES-B-B");
    assert!(
        v.get("file").is_none(),
        "single-file output has no file field"
    );
    assert!(o.stderr.is_empty(), "{}", show(&o));

    // The same with an explicit --at and --profile customs.
    let at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut args = verify_args(&ws, "kz", &[&f]);
    args.extend(["--at".into(), at, "--profile".into(), "customs".into()]);
    let o = tamga(args);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

#[test]
fn verify_one_failing_file_exits_1_with_a_report() {
    let ws = Workspace::new();
    let f = ws.write("bad.xml", &tampered(&signed(BrokerKind::Rsa, false, 2)));
    let o = tamga(verify_args(&ws, "KZ", &[&f]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["indication"], "TOTAL_FAILED");
    assert_eq!(v["subIndication"], "HASH_FAILURE");
    assert_eq!(v["reason"], "digest_mismatch");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[test]
fn verify_several_files_prints_json_lines_with_file_and_exits_1_if_any_fails() {
    let ws = Workspace::new();
    let a = ws.write("a.xml", &signed(BrokerKind::Ecdsa, false, 3));
    let b = ws.write("b.xml", &tampered(&signed(BrokerKind::Ecdsa, false, 4)));
    let c = ws.write("c.xml", &signed(BrokerKind::Rsa, true, 5));
    let o = tamga(verify_args(&ws, "KZ", &[&a, &b, &c]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "one line per file:\n{out}");
    let expected = [
        (&a, "TOTAL_PASSED"),
        (&b, "TOTAL_FAILED"),
        (&c, "TOTAL_PASSED"),
    ];
    for (line, (file, indication)) in lines.iter().zip(expected) {
        let v: Value = serde_json::from_str(line).expect("each line is a JSON object");
        assert_eq!(v["file"], file.as_str());
        assert_eq!(v["indication"], indication, "{line}");
    }

    // All good: exit 0, still one line each.
    let o = tamga(verify_args(&ws, "KZ", &[&a, &c]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stdout(&o).lines().count(), 2);
}

#[test]
fn hostile_document_is_a_verdict_not_an_error() {
    let ws = Workspace::new();
    let f = ws.write(
        "xxe.xml",
        b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>",
    );
    let o = tamga(verify_args(&ws, "KZ", &[&f]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["reason"], "doctype_forbidden");
    assert_eq!(v["subIndication"], "FORMAT_FAILURE");
    // Binary garbage and an empty file are verdicts too.
    let g = ws.write("garbage.bin", b"\x00\x01\x02PK\x03\x04");
    let e = ws.write("empty.xml", b"");
    let o = tamga(verify_args(&ws, "KZ", &[&g, &e]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let reasons: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["reason"].clone())
        .collect();
    assert_eq!(reasons, ["malformed_xml", "empty_document"]);
}

#[test]
fn verify_usage_and_io_errors_exit_2_with_one_line() {
    let ws = Workspace::new();
    let good = ws.write("ok.xml", &signed(BrokerKind::Ecdsa, false, 6));
    let missing = ws.path("missing.xml").display().to_string();

    // A missing file, alone or among good ones: no verdict at all.
    assert_usage_error(&tamga(verify_args(&ws, "KZ", &[&missing])), "missing.xml");
    assert_usage_error(
        &tamga(verify_args(&ws, "KZ", &[&good, &missing])),
        "missing.xml",
    );
    // A directory given as a file.
    let d = ws.path("trust").display().to_string();
    assert_usage_error(&tamga(verify_args(&ws, "KZ", &[&d])), "trust");

    // Trust list: missing, not a directory, unusable folder name.
    let run_with_trust =
        |trust: &str| tamga(["verify", "--trust", trust, "--from", "KZ", good.as_str()]);
    assert_usage_error(
        &run_with_trust(&ws.path("no-such-dir").display().to_string()),
        "no-such-dir",
    );
    assert_usage_error(&run_with_trust(&good), "trust");
    let odd = ws.path("odd-trust");
    std::fs::create_dir_all(odd.join("Kazakhstan")).unwrap();
    assert_usage_error(&run_with_trust(&odd.display().to_string()), "trust");

    // Bad --from and --at.
    for from in ["KAZ", "K1", ""] {
        assert_usage_error(&tamga(verify_args(&ws, from, &[&good])), "--from");
    }
    for at in ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01"] {
        let mut args = verify_args(&ws, "KZ", &[&good]);
        args.extend(["--at".into(), at.into()]);
        assert_usage_error(&tamga(args), "--at");
    }
    // A bad --profile and an unreadable policy file.
    let mut args = verify_args(&ws, "KZ", &[&good]);
    args.extend(["--profile".into(), "lenient".into()]);
    assert_usage_error(&tamga(args), "--profile");
    let mut args = verify_args(&ws, "KZ", &[&good]);
    args.extend(["--policy".into(), missing.clone()]);
    assert_usage_error(&tamga(args), "policy");
    // A policy with a typo is refused, not silently defaulted.
    let typo = ws.write("typo.toml", b"[algorithms]\nallow_sha_1 = true\n");
    let mut args = verify_args(&ws, "KZ", &[&good]);
    args.extend(["--policy".into(), typo]);
    assert_usage_error(&tamga(args), "policy");
}

#[test]
fn clap_usage_errors_exit_2() {
    // Unknown flags and missing required arguments are rejected by the
    // argument parser with exit 2 and nothing on stdout. (Its message is
    // clap's multi-line usage text, not the one-line `tamga: error:` form;
    // see the report.)
    let ws = Workspace::new();
    let good = ws.write("ok.xml", &signed(BrokerKind::Ecdsa, false, 7));
    let mut args = verify_args(&ws, "KZ", &[&good]);
    args.push("--bogus".into());
    let cases: Vec<Vec<String>> = vec![
        args,
        vec!["verify".into(), good.clone()],
        vec![
            "verify".into(),
            "--trust".into(),
            ws.trust(),
            "--from".into(),
            "KZ".into(),
        ],
        vec!["frobnicate".into()],
        // No subcommand: the help text, on stderr.
        vec![],
    ];
    for args in cases {
        let o = tamga(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}\n{}", show(&o));
        assert!(o.stdout.is_empty(), "{args:?}\n{}", show(&o));
        if !args.is_empty() {
            assert!(stderr(&o).contains("error"), "{args:?}\n{}", show(&o));
        }
    }
}

// ---------------------------------------------------------------------------
// --help everywhere.
// ---------------------------------------------------------------------------

/// Subcommand names listed under `Commands:` in a help text (minus `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_on_every_subcommand_exits_0() {
    let top = tamga(["--help"]);
    assert_eq!(top.status.code(), Some(0), "{}", show(&top));
    let mut todo: Vec<Vec<String>> = subcommands(&stdout(&top))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    for expected in ["verify", "sign", "pki", "demo"] {
        assert!(
            todo.iter().any(|c| c[0] == expected),
            "tamga --help lists {expected}"
        );
    }
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let mut args = path.clone();
        args.push("--help".into());
        let o = tamga(&args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "tamga {}\n{}",
            args.join(" "),
            show(&o)
        );
        let out = stdout(&o);
        assert!(
            out.contains(&format!("Usage: tamga {}", path.join(" "))),
            "tamga {}:\n{out}",
            args.join(" ")
        );
        // `tamga help <path>` agrees.
        let mut help = vec!["help".to_string()];
        help.extend(path.iter().cloned());
        assert_eq!(
            tamga(&help).status.code(),
            Some(0),
            "tamga {}",
            help.join(" ")
        );
        for sub in subcommands(&out) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} subcommands found");
    let v = tamga(["--version"]);
    assert_eq!(v.status.code(), Some(0));
    assert!(stdout(&v).starts_with("tamga "));
}

// ---------------------------------------------------------------------------
// sign.
// ---------------------------------------------------------------------------

#[test]
fn sign_output_verifies() {
    let ws = Workspace::new();
    let decl = ws.write("decl.xml", declaration(8).as_bytes());
    let keys = ws.path("keys/KZ");
    let k = |f: &str| keys.join(f).display().to_string();
    let variants: Vec<(Vec<String>, &str, &str)> = vec![
        (
            vec![
                "--key".into(),
                k("broker-ecdsa.key"),
                "--cert".into(),
                k("broker-ecdsa.pem"),
                "--chain".into(),
                k("issuing-ca.pem"),
                "--xades".into(),
            ],
            "XAdES-B-B",
            "ecdsa-sha256",
        ),
        (
            vec![
                "--key".into(),
                k("broker-rsa.key"),
                "--cert".into(),
                k("broker-rsa.pem"),
                "--chain".into(),
                k("issuing-ca.pem"),
            ],
            "XML-DSig",
            "rsa-sha256",
        ),
        (
            vec![
                "--key".into(),
                k("broker-rsa.key"),
                "--cert".into(),
                k("broker-rsa.pem"),
                "--chain".into(),
                k("issuing-ca.pem"),
                "--alg".into(),
                "rsa-pss-sha256".into(),
            ],
            "XML-DSig",
            "rsa-pss-sha256",
        ),
    ];
    for (i, (opts, format, alg)) in variants.into_iter().enumerate() {
        let mut args = vec!["sign".to_string()];
        args.extend(opts);
        args.push(decl.clone());
        let o = tamga(&args);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert!(
            o.stderr.is_empty(),
            "no warning for 0600 keys\n{}",
            show(&o)
        );
        let out = ws.write(&format!("signed-{i}.xml"), &o.stdout);
        let v = tamga(verify_args(&ws, "KZ", &[&out]));
        assert_eq!(v.status.code(), Some(0), "{}", show(&v));
        let r: Value = serde_json::from_str(&stdout(&v)).unwrap();
        assert_eq!(r["indication"], "TOTAL_PASSED");
        assert_eq!(r["signatureFormat"], format);
        assert_eq!(r["algorithms"]["signature"], alg);
        // The signer's country's trust only: AZ does not vouch for KZ.
        let v = tamga(verify_args(&ws, "AZ", &[&out]));
        assert_eq!(v.status.code(), Some(1), "{}", show(&v));
    }

    // Signing errors are one line, exit 2.
    let mismatch = tamga([
        "sign",
        "--key",
        &k("broker-rsa.key"),
        "--cert",
        &k("broker-ecdsa.pem"),
        &decl,
    ]);
    assert_usage_error(&mismatch, "sign");
    let missing = tamga([
        "sign",
        "--key",
        &k("nope.key"),
        "--cert",
        &k("broker-ecdsa.pem"),
        &decl,
    ]);
    assert_usage_error(&missing, "nope.key");
    let already = ws.path("signed-0.xml").display().to_string();
    let twice = tamga([
        "sign",
        "--key",
        &k("broker-ecdsa.key"),
        "--cert",
        &k("broker-ecdsa.pem"),
        &already,
    ]);
    assert_usage_error(&twice, "already signed");
    let bad_alg = tamga([
        "sign",
        "--key",
        &k("broker-rsa.key"),
        "--cert",
        &k("broker-rsa.pem"),
        "--alg",
        "rsa-md5",
        &decl,
    ]);
    assert_usage_error(&bad_alg, "--alg");
}

// ---------------------------------------------------------------------------
// pki demo.
// ---------------------------------------------------------------------------

#[test]
fn pki_demo_creates_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pki");
    let o = tamga([
        "pki",
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--countries",
        "AZ,KZ",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));

    let exists = |rel: &str| {
        let p = out.join(rel);
        assert!(p.is_file(), "{} missing", p.display());
        p
    };
    exists("README.txt");
    for cc in ["AZ", "KZ"] {
        for f in ["root-ca.pem", "root-ca.crl", "issuing-ca.crl"] {
            exists(&format!("trust/{cc}/{f}"));
        }
        let mut stems: Vec<String> = vec![
            "root-ca".into(),
            "issuing-ca".into(),
            "authority".into(),
            "authority-rsa".into(),
        ];
        stems.extend(BrokerKind::ALL.iter().map(|k| format!("broker-{k}")));
        for stem in stems {
            exists(&format!("keys/{cc}/{stem}.pem"));
            let key = exists(&format!("keys/{cc}/{stem}.key"));
            assert_private(&key);
        }
        assert_private(&out.join("keys").join(cc));
    }
    assert!(
        !out.join("trust/TR").exists(),
        "only the requested countries"
    );
    let trust_entries: Vec<String> = std::fs::read_dir(out.join("trust"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(trust_entries.len(), 2, "{trust_entries:?}");

    // The generated PKI works end to end through the CLI.
    let keys = out.join("keys/AZ");
    let decl = dir.path().join("decl.xml");
    std::fs::write(&decl, sample(&SampleSpec::new("AZ", "KZ", 9, 2))).unwrap();
    let p = |path: PathBuf| path.display().to_string();
    let s = tamga([
        "sign".to_string(),
        "--key".into(),
        p(keys.join("broker-ecdsa.key")),
        "--cert".into(),
        p(keys.join("broker-ecdsa.pem")),
        "--chain".into(),
        p(keys.join("issuing-ca.pem")),
        p(decl.clone()),
    ]);
    assert_eq!(s.status.code(), Some(0), "{}", show(&s));
    let signed = dir.path().join("signed.xml");
    std::fs::write(&signed, &s.stdout).unwrap();
    let v = tamga([
        "verify",
        "--trust",
        out.join("trust").to_str().unwrap(),
        "--from",
        "AZ",
        signed.to_str().unwrap(),
    ]);
    assert_eq!(v.status.code(), Some(0), "{}", show(&v));

    // Bad country lists: one line, exit 2, nothing written.
    for bad in ["AZ,,KZ", "KAZ", "AZ,az", ""] {
        let target = dir.path().join("bad");
        let o = tamga([
            "pki",
            "demo",
            "--out",
            target.to_str().unwrap(),
            "--countries",
            bad,
        ]);
        assert_usage_error(&o, "--countries");
        assert!(!target.exists(), "{bad:?}: nothing written");
    }
}

fn assert_private(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", p.display());
}

// ---------------------------------------------------------------------------
// A partner's broken CRL: one warning line, only its declarations affected.
// ---------------------------------------------------------------------------

const BROKEN_CRL: &[u8] = b"-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n";

/// An AZ declaration signed in-process by an AZ broker.
fn signed_az(seq: u64) -> Vec<u8> {
    let az = pki().country("AZ").unwrap();
    let b = az.broker(BrokerKind::Ecdsa).unwrap();
    sign_enveloped(
        sample(&SampleSpec::new("AZ", "KZ", seq, 3)).as_bytes(),
        &SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![b.cert_der.clone(), az.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: ParseLimits::default(),
        },
    )
    .unwrap()
}

#[test]
fn verify_with_a_partners_broken_crl_warns_once_and_isolates_it() {
    let ws = Workspace::new();
    std::fs::write(ws.path("trust/KZ/issuing-ca.crl"), BROKEN_CRL).unwrap();
    let kz = ws.write("kz.xml", &signed(BrokerKind::Ecdsa, true, 11));
    let az = ws.write("az.xml", &signed_az(12));

    let o = tamga(verify_args(&ws, "KZ", &[&kz]));
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["indication"], "INDETERMINATE", "{}", show(&o));
    assert_eq!(v["subIndication"], "TRY_LATER");
    assert_eq!(v["reason"], "revocation_unavailable");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("KZ/issuing-ca.crl")),
        "{}",
        show(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one warning line\n{}", show(&o));
    assert!(
        err.starts_with("tamga: warning: trust list degraded") && err.contains("KZ"),
        "{}",
        show(&o)
    );

    // The other corridor: passes, with the same single warning line.
    let o = tamga(verify_args(&ws, "AZ", &[&az]));
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", show(&o));
}

/// `tamga run` starts with one partner's CRL broken, logs which country is
/// degraded and exports it as a metric.
#[test]
fn run_starts_with_a_partners_broken_crl_and_reports_it() {
    use std::io::{BufRead, BufReader, Read, Write as _};
    use std::process::Stdio;

    let ws = Workspace::new();
    std::fs::write(ws.path("trust/KZ/issuing-ca.crl"), BROKEN_CRL).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let keys = ws.path("keys/AZ");
    let config = format!(
        "[trust]\ndir = {trust:?}\n\n[[authority]]\ncountry = \"AZ\"\nkey = {key:?}\ncert = {cert:?}\nchain = [{chain:?}]\n\n[worker]\nname = \"cli-degraded\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[log]\nformat = \"text\"\nlevel = \"info\"\n\n[embedded]\nsqlite = {sqlite:?}\n",
        trust = ws.trust(),
        key = keys.join("authority.key").display().to_string(),
        cert = keys.join("authority.pem").display().to_string(),
        chain = keys.join("issuing-ca.pem").display().to_string(),
        sqlite = ws.path("audit.sqlite").display().to_string(),
    );
    let config_path = ws.write("site.toml", config.as_bytes());
    let mut child = Command::new(TAMGA)
        .args(["run", "--config", &config_path])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !log.iter().any(|l: &String| l.contains("ready")) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tamga run exited: {status}\n{}", log.join("\n"));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `ready` within 60 s\n{}",
            log.join("\n")
        );
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            log.push(line);
        }
    }
    let metrics = (|| {
        for _ in 0..50 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(
                    b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                );
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                return out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        String::new()
    })();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        metrics.contains("tamga_trust_degraded{country=\"KZ\",kind=\"crl\"} 1"),
        "{metrics}"
    );
    let warned = log
        .iter()
        .filter(|l| l.contains("trust material unusable"))
        .collect::<Vec<_>>();
    assert_eq!(warned.len(), 1, "{}", log.join("\n"));
    assert!(warned[0].contains("KZ"), "{}", warned[0]);
}

// ---------------------------------------------------------------------------
// tamga trust: build, verify, show, diff.
// ---------------------------------------------------------------------------

#[test]
fn trust_build_verify_show_diff() {
    let ws = Workspace::new();
    let p = |rel: &str| ws.path(rel).display().to_string();
    let build = |dir: &str, seq: &str| {
        tamga([
            "trust",
            "build",
            "--dir",
            dir,
            "--country",
            "KZ",
            "--signer-key",
            &p("keys/KZ/authority.key"),
            "--signer-cert",
            &p("keys/KZ/authority.pem"),
            "--sequence",
            seq,
            "--next-update",
            "2099-01-01T00:00:00Z",
        ])
    };
    let o = build(&p("trust/KZ"), "5");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v5 = ws.write("KZ-tl-5.xml", &o.stdout);
    assert!(stdout(&o).contains("TrustServiceStatusList"));

    let verify = |file: &str, signer: &str, extra: &[&str]| {
        let mut args = vec![
            "trust".to_string(),
            "verify".into(),
            file.into(),
            "--signer".into(),
            p(signer),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        tamga(args)
    };
    let o = verify(&v5, "keys/KZ/authority.pem", &["--country", "KZ"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["accepted"], true);
    assert_eq!(j["sequence"], 5);
    assert_eq!(j["caServices"], 1);
    assert_eq!(j["stale"], false);

    // Signer not pinned, rollback, tampered: refused with exit 1 and a reason.
    let o = verify(&v5, "keys/AZ/authority.pem", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(j["reason"].as_str().unwrap().contains("not pinned"), "{j}");
    let o = verify(&v5, "keys/KZ/authority.pem", &["--last-sequence", "6"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stdout(&o).contains("rollback"), "{}", show(&o));
    let tampered = ws.write(
        "tampered.xml",
        stdout(&build(&p("trust/KZ"), "7"))
            .replacen("<tsl:TSLSequenceNumber>7<", "<tsl:TSLSequenceNumber>70<", 1)
            .as_bytes(),
    );
    let o = verify(&tampered, "keys/KZ/authority.pem", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(stdout(&o).contains("not valid"), "{}", show(&o));

    // show: contents and signature status.
    let o = tamga([
        "trust",
        "show",
        &v5,
        "--signer",
        &p("keys/KZ/authority.pem"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["territory"], "KZ");
    assert_eq!(j["signature"]["valid"], true);
    assert_eq!(j["signature"]["pinned"], true);
    assert_eq!(j["services"].as_array().unwrap().len(), 1);
    assert_eq!(j["services"][0]["trustedNow"], true);

    // diff: a second CA added in sequence 6; read backwards it is withdrawn.
    let bigger = ws.path("kz-bigger");
    std::fs::create_dir_all(&bigger).unwrap();
    std::fs::copy(ws.path("trust/KZ/root-ca.pem"), bigger.join("root-ca.pem")).unwrap();
    std::fs::copy(
        ws.path("keys/KZ/issuing-ca.pem"),
        bigger.join("issuing-ca.pem"),
    )
    .unwrap();
    let o = build(&bigger.display().to_string(), "6");
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v6 = ws.write("KZ-tl-6.xml", &o.stdout);
    let o = tamga(["trust", "diff", &v5, &v6]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["added"].as_array().unwrap().len(), 1, "{j}");
    assert!(j["added"][0]["subject"]
        .as_str()
        .unwrap()
        .contains("Issuing CA"));
    assert_eq!(j["withdrawn"].as_array().unwrap().len(), 0);
    assert_eq!(j["rollback"], false);
    let o = tamga(["trust", "diff", &v6, &v5]);
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(j["withdrawn"].as_array().unwrap().len(), 1, "{j}");
    assert_eq!(j["rollback"], true);

    // Usage errors: exit 2, one line.
    assert_usage_error(&tamga(["trust", "show", &p("missing.xml")]), "missing.xml");
    let o = build(&p("trust/KZ"), "x");
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

/// `tamga run` on signed trusted lists alone; SIGHUP reloads them without a
/// restart (the new sequence number is accepted and kept in state_dir).
#[test]
fn run_on_trusted_lists_reloads_on_sighup() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let ws = Workspace::new();
    let p = |rel: &str| ws.path(rel).display().to_string();
    std::fs::create_dir_all(ws.path("tl")).unwrap();
    let build = |cc: &str, seq: &str| {
        let o = tamga([
            "trust",
            "build",
            "--dir",
            &p(&format!("trust/{cc}")),
            "--signer-key",
            &p(&format!("keys/{cc}/authority.key")),
            "--signer-cert",
            &p(&format!("keys/{cc}/authority.pem")),
            "--sequence",
            seq,
            "--next-update",
            "2099-01-01T00:00:00Z",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        std::fs::write(ws.path(&format!("tl/{cc}-tl.xml")), &o.stdout).unwrap();
    };
    build("KZ", "1");
    build("AZ", "1");
    let keys = ws.path("keys/AZ");
    let config = format!(
        "[trust]\nstate_dir = {state:?}\ncrl_dir = {crls:?}\n\n[[trust.list]]\ncountry = \"KZ\"\npath = {kz:?}\nsigners = [{kzs:?}]\n\n[[trust.list]]\ncountry = \"AZ\"\npath = {az:?}\nsigners = [{azs:?}]\n\n[[authority]]\ncountry = \"AZ\"\nkey = {key:?}\ncert = {cert:?}\nchain = [{chain:?}]\n\n[worker]\nname = \"cli-tl\"\n\n[metrics]\nlisten = \"\"\n\n[log]\nformat = \"text\"\nlevel = \"info\"\n\n[embedded]\nsqlite = {sqlite:?}\n",
        state = p("state"),
        crls = p("trust"),
        kz = p("tl/KZ-tl.xml"),
        kzs = p("keys/KZ/authority.pem"),
        az = p("tl/AZ-tl.xml"),
        azs = p("keys/AZ/authority.pem"),
        key = keys.join("authority.key").display().to_string(),
        cert = keys.join("authority.pem").display().to_string(),
        chain = keys.join("issuing-ca.pem").display().to_string(),
        sqlite = p("audit.sqlite"),
    );
    let config_path = ws.write("site.toml", config.as_bytes());
    let mut child = Command::new(TAMGA)
        .args(["run", "--config", &config_path])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log: Vec<String> = Vec::new();
    let wait_for = |needle: &str, child: &mut std::process::Child, log: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !log.iter().any(|l| l.contains(needle)) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tamga run exited: {status}\n{}", log.join("\n"));
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} within 60 s\n{}",
                log.join("\n")
            );
            if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
                log.push(line);
            }
        }
    };
    wait_for("ready", &mut child, &mut log);
    assert!(
        !log.iter().any(|l| l.contains("trust material unusable")),
        "{}",
        log.join("\n")
    );
    let state = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(ws.path("state/state.json")).unwrap()).unwrap()
    };
    assert_eq!(state()["sequences"]["KZ"], 1);

    build("KZ", "2");
    // The shell's builtin `kill`: no dependency on procps.
    let hup = Command::new("sh")
        .args(["-c", &format!("kill -HUP {}", child.id())])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("trust reloaded", &mut child, &mut log);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(state()["sequences"]["KZ"], 2, "{}", log.join("\n"));
    assert!(ws.path("state/KZ-tl.xml").exists());
}
