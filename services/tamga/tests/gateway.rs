#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tamga serve --config FILE` on the embedded default (in-process bus, SQLite), driven
//! over a real socket the way a broker would, with tokens from
//! `tamga gateway token create|revoke`: submit → status → receipt for an accepted and a
//! rejected declaration, revocation, and the token never in the logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

fn signed(root: &Path, from: &str, to: &str, seq: u64) -> Vec<u8> {
    let d = root.join("keys").join(from);
    let key =
        SigningKey::from_pkcs8_pem(&std::fs::read(d.join("broker-ecdsa.key")).unwrap()).unwrap();
    let mut certs =
        tamga_dsig::certificates_from_pem(&std::fs::read(d.join("broker-ecdsa.pem")).unwrap())
            .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(d.join("issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    sign_enveloped(
        sample(&SampleSpec::new(from, to, seq, 3)).as_bytes(),
        &key,
        &SignOptions {
            certificates: certs,
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

/// One HTTP/1.1 exchange (Connection: close): status, headers (lower-case names), body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let hs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, hs, raw[split + 4..].to_vec())
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

struct Served {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tamga serve` and waits for the line with `ready` and the address.
fn serve(config: &Path) -> Served {
    let mut child = Command::new(TAMGA)
        .args(["serve", "--config"])
        .arg(config)
        .env("TAMGA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ready") {
                if let Some(rest) = line.split("http://").nth(1) {
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                    let _ = tx.send(addr);
                }
            }
            l.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(90))
        .unwrap_or_else(|_| panic!("no ready line: {:?}", log.lock().unwrap()));
    Served { child, addr, log }
}

fn tamga(args: &[&str], config: &Path) -> String {
    let out = Command::new(TAMGA)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tamga {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn wait_status(addr: &str, token: &str, id: &str, want: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = http(
            addr,
            "GET",
            &format!("/v1/declarations/{id}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["status"] == want {
            return v;
        }
        assert!(Instant::now() < deadline, "still {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_embedded_default_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pki");
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(&root)
    .unwrap();
    let keys = root.join("keys").join("AZ");
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\ndir = {:?}\n\n[[authority]]\ncountry = \"AZ\"\nkey = {:?}\ncert = {:?}\n\
             chain = [{:?}]\n\n[metrics]\nlisten = \"\"\n\n[embedded]\nsqlite = {:?}\n\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\n",
            root.join("trust"),
            keys.join("authority.key"),
            keys.join("authority.pem"),
            keys.join("issuing-ca.pem"),
            dir.path().join("audit.sqlite"),
        ),
    )
    .unwrap();

    let token = tamga(
        &[
            "gateway",
            "token",
            "create",
            "--broker",
            "kz-broker",
            "--country",
            "KZ",
        ],
        &config,
    );
    let token = token.trim().to_owned();
    assert!(token.starts_with("tmg_") && !token.contains(char::is_whitespace));
    let served = serve(&config);
    let addr = served.addr.clone();
    let auth = format!("Bearer {token}");
    let submit = |key: &str, body: &[u8]| {
        http(
            &addr,
            "POST",
            "/v1/declarations",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/xml"),
                ("X-Tamga-Origin", "KZ"),
                ("X-Tamga-Destination", "AZ"),
                ("Idempotency-Key", key),
            ],
            body,
        )
    };

    let (status, hs, body) = submit("one", &signed(&root, "KZ", "AZ", 1));
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        header(&hs, "location"),
        Some(format!("/v1/declarations/{id}").as_str())
    );
    wait_status(&addr, &token, &id, "forwarded");
    let (status, hs, receipt) = http(
        &addr,
        "GET",
        &format!("/v1/declarations/{id}/receipt"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(header(&hs, "content-type"), Some("application/xml"));
    assert!(String::from_utf8_lossy(&receipt).contains("Signature"));

    let forged = String::from_utf8(signed(&root, "KZ", "AZ", 2))
        .unwrap()
        .replacen("<HSCode>", "<HSCode>9", 1);
    let (status, _, body) = submit("two", forged.as_bytes());
    assert_eq!(status, 202);
    let bad = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = wait_status(&addr, &token, &bad, "rejected");
    assert_eq!(v["reason"], "digest_mismatch");

    let (status, _, _) = http(&addr, "GET", "/openapi.json", &[], b"");
    assert_eq!(status, 200);
    let (status, _, _) = http(&addr, "GET", "/v1/declarations", &[], b"");
    assert_eq!(status, 401);

    tamga(
        &["gateway", "token", "revoke", "--broker", "kz-broker"],
        &config,
    );
    let (status, _, _) = http(
        &addr,
        "GET",
        &format!("/v1/declarations/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(status, 401);

    // SIGTERM: a clean exit.
    let pid = served.child.id() as i32;
    assert_eq!(unsafe_free_kill(pid), 0);
    let mut served = served;
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = served.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "tamga serve ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code}");
    let log = served.log.lock().unwrap().join("\n");
    assert!(!log.contains(&token), "the token appeared in the logs");
    assert!(!log.contains(&token[4..]), "the token appeared in the logs");
}

/// `kill -TERM pid` through the kill(1) command (no unsafe code in the tests).
fn unsafe_free_kill(pid: i32) -> i32 {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}
