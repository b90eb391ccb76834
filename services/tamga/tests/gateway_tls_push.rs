#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tamga serve --config FILE` on the embedded default with `[gateway.tls]` (certificates
//! made here by rcgen) and a push callback set with `tamga gateway callback set` (the
//! secret alone on stdout): a broker authenticated by its client certificate alone submits
//! over HTTPS, its receiver (a plain TCP server in the test) gets the status changes
//! signed with that secret, the gateway's metrics appear at `[metrics] listen` with the
//! workers', and `tamga gateway callback clear` stops the pushes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

/// What the receiver got: (X-Tamga-Timestamp, X-Tamga-Signature, body) of each request.
type Pushed = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

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
            xades: false,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

fn tamga(args: &[&str], config: &Path) -> (String, String) {
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
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request over TLS with a client certificate: status and body (`Connection: close`).
async fn https(
    addr: &str,
    ca: &CertificateDer<'static>,
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(vec![client.0], client.1)
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tls.write_all(req.as_bytes()).await.unwrap();
    tls.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    // A peer that closes without close_notify is fine once the answer is complete.
    let _ = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut raw)).await;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

/// A receiver: answers 200 to every request, keeps (timestamp, signature, body).
async fn receiver(got: Pushed) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let got = got.clone();
            tokio::spawn(async move {
                let mut raw = Vec::new();
                let mut buf = [0u8; 8192];
                let (head, len) = loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&raw[..p]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        raw.drain(..p + 4);
                        break (head, len);
                    }
                };
                while raw.len() < len {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    raw.extend_from_slice(&buf[..n]);
                }
                let field = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_owned())
                        .unwrap_or_default()
                };
                got.lock().unwrap().push((
                    field("x-tamga-timestamp:"),
                    field("x-tamga-signature:"),
                    raw,
                ));
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}/hooks/tamga")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_over_mutual_tls_pushes_signed_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pki");
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(&root)
    .unwrap();
    // The gateway's certificate and the brokers' CA.
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(DnType::CommonName, "Tamga test broker CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server = p.signed_by(&server_key, &ca).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, "kz-broker");
    p.distinguished_name.push(DnType::CountryName, "KZ");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().unwrap();
    let client_cert = p.signed_by(&client_key, &ca).unwrap();
    let client = || {
        (
            client_cert.der().clone(),
            PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
        )
    };
    let tls = dir.path().join("tls");
    std::fs::create_dir_all(&tls).unwrap();
    std::fs::write(tls.join("gateway.pem"), server.pem()).unwrap();
    std::fs::write(tls.join("gateway.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(tls.join("brokers-ca.pem"), ca.pem()).unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();

    let keys = root.join("keys").join("AZ");
    let config = dir.path().join("site.toml");
    std::fs::write(
        &config,
        format!(
            "[trust]\ndir = {:?}\n\n[[authority]]\ncountry = \"AZ\"\nkey = {:?}\ncert = {:?}\n\
             chain = [{:?}]\n\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n\n\
             [embedded]\nsqlite = {:?}\n\n\
             [gateway]\nlisten = \"127.0.0.1:0\"\ncallback_retry_first_ms = 50\n\
             callback_retry_max_ms = 200\n\n\
             [gateway.tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
            root.join("trust"),
            keys.join("authority.key"),
            keys.join("authority.pem"),
            keys.join("issuing-ca.pem"),
            dir.path().join("audit.sqlite"),
            tls.join("gateway.pem"),
            tls.join("gateway.key"),
            tls.join("brokers-ca.pem"),
        ),
    )
    .unwrap();

    let got: Pushed = Arc::default();
    let url = receiver(got.clone()).await;
    let (stdout, _) = tamga(
        &[
            "gateway",
            "callback",
            "set",
            "--broker",
            "kz-broker",
            "--url",
            &url,
        ],
        &config,
    );
    assert_eq!(stdout.lines().count(), 1, "the secret alone: {stdout:?}");
    let secret = stdout.trim().to_owned();
    assert!(secret.starts_with("tmgcb_"));

    let mut child = Command::new(TAMGA)
        .args(["serve", "--config"])
        .arg(&config)
        .env("TAMGA_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let served = Served(child);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("ready on https://").nth(1) {
                let _ = tx.send(
                    rest.chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect::<String>(),
                );
            }
            l.lock().unwrap().push(line);
        }
    });
    let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(90)))
        .await
        .unwrap()
        .unwrap_or_else(|_| panic!("no ready line: {:?}", log.lock().unwrap()));

    // The client certificate alone authenticates kz-broker.
    let body = signed(&root, "KZ", "AZ", 1);
    let (status, answer) = https(
        &addr,
        ca.der(),
        client(),
        "POST",
        "/v1/declarations",
        &[
            ("Content-Type", "application/xml"),
            ("X-Tamga-Origin", "KZ"),
            ("X-Tamga-Destination", "AZ"),
            ("Idempotency-Key", "tls-push-1"),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&answer));
    let id = serde_json::from_slice::<serde_json::Value>(&answer).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Pushed: every status, signed with the printed secret.
    let deadline = Instant::now() + Duration::from_secs(60);
    let statuses = loop {
        let statuses: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(ts, sig, body)| {
                let ts: i64 = ts.parse().unwrap();
                assert!(
                    tamga_gateway::callback::verify_signature(&secret, ts, body, sig),
                    "a bad signature"
                );
                let v: serde_json::Value = serde_json::from_slice(body).unwrap();
                v["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|i| i["id"] == id.as_str())
                    .map(|i| i["status"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .collect();
        if statuses.iter().any(|s| s == "forwarded") {
            break statuses;
        }
        assert!(Instant::now() < deadline, "pushed so far: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        statuses,
        ["received", "verified", "countersigned", "forwarded"]
    );
    let (status, v) = https(&addr, ca.der(), client(), "GET", "/v1/callback", &[], b"").await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&v).unwrap();
    assert_eq!(v["url"], url.as_str());

    // The gateway's metrics beside the workers', at [metrics] listen.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", metrics_port))
        .await
        .unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.contains(
        "tamga_gateway_requests_total{method=\"POST\",route=\"/v1/declarations\",status=\"202\"} 1"
    ));
    assert!(text.contains("tamga_gateway_authenticated_total{via=\"certificate\"}"));
    assert!(text.contains(
        "tamga_gateway_callback_deliveries_total{broker=\"kz-broker\",result=\"delivered\"}"
    ));
    assert!(text.contains("tamga_declarations_total"));

    let (stdout, stderr) = tamga(
        &["gateway", "callback", "clear", "--broker", "kz-broker"],
        &config,
    );
    assert!(stdout.is_empty() && stderr.contains("cleared"));
    drop(served);
}
