#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `tamga-gateway --config FILE` as a process against RabbitMQ (a vhost for the test) and
//! PostgreSQL (a database for the test, migrated by its owner; the gateway and the workers
//! log in as `tamga_worker`), with the workers running in the test process:
//! the listen address from `TAMGA_GATEWAY_LISTEN`, the `ready` line with the address, a
//! submission over a socket through to the receipt, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{Config, Stage};

const GATEWAY: &str = env!("CARGO_BIN_EXE_tamga-gateway");

fn unique(prefix: &str) -> String {
    let n = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{prefix}_{}_{:x}", std::process::id(), n)
}

fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
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
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamga_gateway_against_rabbitmq_and_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pki");
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(&root)
    .unwrap();

    let vhost = unique("tamga-gateway-serve");
    for args in [
        vec!["add_vhost", vhost.as_str()],
        vec![
            "set_permissions",
            "-p",
            vhost.as_str(),
            "guest",
            ".*",
            ".*",
            ".*",
        ],
    ] {
        assert!(Command::new("rabbitmqctl")
            .args(&args)
            .output()
            .unwrap()
            .status
            .success());
    }
    let db = unique("tamga_gateway_serve");
    let (admin, conn) = tokio_postgres::connect(
        "host=127.0.0.1 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .unwrap();

    let keys = root.join("keys").join("AZ");
    let text = format!(
        "[amqp]\nurl = \"amqp://guest:guest@127.0.0.1:5672/{vhost}\"\n\n\
         [database]\nurl = \"postgres://tamga_worker@127.0.0.1:5432/{db}\"\n\
         migrate_url = \"postgres://postgres@127.0.0.1:5432/{db}\"\n\n\
         [trust]\ndir = {:?}\n\n[[authority]]\ncountry = \"AZ\"\nkey = {:?}\ncert = {:?}\n\
         chain = [{:?}]\n\n[worker]\nname = \"serve-test\"\n\n[metrics]\nlisten = \"\"\n\n\
         [gateway]\nlisten = \"127.0.0.1:1\"\n",
        root.join("trust"),
        keys.join("authority.key"),
        keys.join("authority.pem"),
        keys.join("issuing-ca.pem"),
    );
    let config = dir.path().join("site.toml");
    std::fs::write(&config, &text).unwrap();
    let cfg = Config::from_sources(&text, &[], &|_| None).unwrap();

    // The owner migrates (`tamga migrate`); the workers and the gateway log in as
    // tamga_worker, which may only INSERT and SELECT.
    tamga_store::migrate_postgres(&cfg.database.as_ref().unwrap().migrate_config())
        .await
        .unwrap();
    // The workers, in this process.
    let site = start_site(
        &cfg,
        &SiteOptions {
            embedded: false,
            stages: vec![Stage::Fused],
        },
        &tamga_pipeline::open_key,
        None,
        None,
    )
    .await
    .unwrap();
    let store = tamga_gateway::connect_store(&cfg, false).await.unwrap();
    let token = tamga_gateway::create_token(store.as_ref(), "kz-broker", Some("KZ"))
        .await
        .unwrap();

    // The gateway, as a process; the environment overrides [gateway] listen.
    let mut child = Command::new(GATEWAY)
        .arg("--config")
        .arg(&config)
        .env("TAMGA_GATEWAY_LISTEN", "127.0.0.1:0")
        .env("TAMGA_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ready") {
                if let Some(rest) = line.split("http://").nth(1) {
                    let _ = tx.send(
                        rest.chars()
                            .take_while(|c| !c.is_whitespace())
                            .collect::<String>(),
                    );
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a ready line with the address");
    assert!(addr.starts_with("127.0.0.1:") && addr != "127.0.0.1:1");

    let signer = root.join("keys").join("KZ");
    let key =
        SigningKey::from_pkcs8_pem(&std::fs::read(signer.join("broker-rsa.key")).unwrap()).unwrap();
    let mut certs =
        tamga_dsig::certificates_from_pem(&std::fs::read(signer.join("broker-rsa.pem")).unwrap())
            .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(signer.join("issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    let body = sign_enveloped(
        sample(&SampleSpec::new("KZ", "AZ", 1, 3)).as_bytes(),
        &key,
        &SignOptions {
            certificates: certs,
            digest: DigestAlgorithm::Sha256,
            xades: false,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap();
    let auth = format!("Bearer {token}");
    let a = addr.clone();
    let (id, status) = tokio::task::spawn_blocking(move || {
        let (status, body) = http(
            &a,
            "POST",
            "/v1/declarations",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/xml"),
                ("X-Tamga-Origin", "KZ"),
                ("X-Tamga-Destination", "AZ"),
                ("Idempotency-Key", "serve-1"),
            ],
            &body,
        );
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
        let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = http(
                &a,
                "GET",
                &format!("/v1/declarations/{id}"),
                &[("Authorization", &auth)],
                b"",
            );
            assert_eq!(status, 200);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            if v["status"] == "forwarded" {
                break;
            }
            assert!(Instant::now() < deadline, "still {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, _) = http(
            &a,
            "GET",
            &format!("/v1/declarations/{id}/receipt"),
            &[("Authorization", &auth)],
            b"",
        );
        (id, status)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "receipt of {id}");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "tamga-gateway ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(code.success(), "{code}");
    site.stop().await;
    let _ = Command::new("rabbitmqctl")
        .args(["delete_vhost", &vhost])
        .output();
    let _ = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await;
}
