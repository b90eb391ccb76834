#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gateway's load run (`make bench-pipeline`): in one process, the fused workers over
//! local RabbitMQ (a fresh vhost) and PostgreSQL (a fresh database), then N declarations
//! published straight to `tamga.inbound` (the reference) and N more submitted over HTTP
//! through the gateway by 32 concurrent clients. Reports end-to-end declarations/s of both
//! (submission to `forwarded` in the audit trail), the gateway's cost, the rate at which
//! each way accepts (confirmed publishes/s straight to the broker against 202s/s through
//! the gateway), and the p50/p99 latency of a submission (request to 202) against that of a
//! confirmed publish. Built in release by `make bench-pipeline`.
//!
//! `cargo run --release -p tamga-gateway --example gateway_load -- [N]`

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tamga_bus::{Bus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{Config, Stage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 32;

async fn post(addr: &str, token: &str, key: &str, body: &[u8]) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/declarations HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/xml\r\n\
         X-Tamga-Origin: KZ\r\nX-Tamga-Destination: AZ\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    String::from_utf8_lossy(&raw[..raw.len().min(16)])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn wait_forwarded(store: &dyn tamga_store::Store, n: u64) {
    loop {
        let counts = store.counts().await.unwrap();
        if counts.get("forwarded").copied().unwrap_or(0) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pki");
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(&root)
    .unwrap();
    let tag = format!(
        "{}_{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let vhost = format!("tamga-gateway-load-{tag}");
    let db = format!("tamga_gateway_load_{tag}");
    for args in [
        vec!["-q", "add_vhost", vhost.as_str()],
        vec![
            "-q",
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
            .status()
            .unwrap()
            .success());
    }
    let psql = |sql: String| {
        Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                &sql,
            ])
            .status()
            .unwrap()
    };
    assert!(psql(format!("CREATE DATABASE {db}")).success());
    let keys = root.join("keys").join("AZ");
    let text = format!(
        "[amqp]\nurl = \"amqp://guest:guest@127.0.0.1:5672/{vhost}\"\nprefetch = 128\n\n\
         [database]\nurl = \"postgres://postgres@127.0.0.1:5432/{db}\"\n\n\
         [trust]\ndir = {:?}\n\n[[authority]]\ncountry = \"AZ\"\nkey = {:?}\ncert = {:?}\n\
         chain = [{:?}]\n\n[worker]\nname = \"load\"\nconcurrency = 64\n\n[metrics]\nlisten = \"\"\n",
        root.join("trust"),
        keys.join("authority.key"),
        keys.join("authority.pem"),
        keys.join("issuing-ca.pem"),
    );
    let cfg = Config::from_sources(&text, &[], &|_| None).unwrap();

    eprintln!("signing {} declarations…", 2 * n);
    let signer = root.join("keys").join("KZ");
    let key = SigningKey::from_pkcs8_pem(&std::fs::read(signer.join("broker-ecdsa.key")).unwrap())
        .unwrap();
    let mut certs =
        tamga_dsig::certificates_from_pem(&std::fs::read(signer.join("broker-ecdsa.pem")).unwrap())
            .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(signer.join("issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    let docs: Vec<Vec<u8>> = (0..2 * n as u64)
        .map(|i| {
            sign_enveloped(
                sample(&SampleSpec::new("KZ", "AZ", i + 1, 45)).as_bytes(),
                &key,
                &SignOptions {
                    certificates: certs.clone(),
                    digest: DigestAlgorithm::Sha256,
                    xades: false,
                    signing_time: time::OffsetDateTime::now_utc(),
                    limits: Default::default(),
                },
            )
            .unwrap()
        })
        .collect();
    let (direct, via_gateway) = docs.split_at(n);

    let store = tamga_gateway::connect_store(&cfg, false).await.unwrap();
    let bus = tamga_pipeline::site::connect_bus(&cfg, false)
        .await
        .unwrap();
    let site = start_site(
        &cfg,
        &SiteOptions {
            embedded: false,
            stages: vec![Stage::Fused],
        },
        &tamga_pipeline::open_key,
        Some(bus.clone()),
        // Its own pool, as `tamga serve` gives the workers (see `tamga_gateway::serve`).
        Some(
            tamga_gateway::connect_store(&cfg, false).await.unwrap() as Arc<dyn tamga_store::Store>
        ),
    )
    .await
    .unwrap();
    let mut settings = tamga_gateway::Settings::from_config(&cfg).unwrap();
    settings.rate_per_second = 0;
    let gw = tamga_gateway::Gateway::new(store.clone(), bus.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, tamga_gateway::router(gw)).await });
    let token = tamga_gateway::create_token(store.as_ref(), "load-broker", None)
        .await
        .unwrap();

    // Reference: straight to tamga.inbound, 32 publishers.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let bus = bus.clone();
        let mine: Vec<Vec<u8>> = direct.iter().skip(c).step_by(CLIENTS).cloned().collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for (i, body) in mine.into_iter().enumerate() {
                let mut m = Message::new("kz.az", body);
                m.message_id = Some(format!("direct-{c}-{i}"));
                let t = Instant::now();
                bus.publish("tamga.inbound", m).await.unwrap();
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut publish_latencies = Vec::new();
    for t in tasks {
        publish_latencies.extend(t.await.unwrap());
    }
    let publish_secs = t0.elapsed().as_secs_f64();
    publish_latencies.sort();
    wait_forwarded(store.as_ref(), n as u64).await;
    let direct_secs = t0.elapsed().as_secs_f64();

    // Through the gateway, 32 HTTP clients.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let mine: Vec<Vec<u8>> = via_gateway
            .iter()
            .skip(c)
            .step_by(CLIENTS)
            .cloned()
            .collect();
        let (addr, token) = (addr.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(mine.len());
            for (i, body) in mine.into_iter().enumerate() {
                let t = Instant::now();
                let status = post(&addr, &token, &format!("load-{c}-{i}"), &body).await;
                assert_eq!(status, 202);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let accept_secs = t0.elapsed().as_secs_f64();
    wait_forwarded(store.as_ref(), 2 * n as u64).await;
    let gateway_secs = t0.elapsed().as_secs_f64();
    latencies.sort();

    let direct_rate = n as f64 / direct_secs;
    let gateway_rate = n as f64 / gateway_secs;
    println!(
        "declarations: {n} each way (~25 KB, ECDSA P-256), {CLIENTS} concurrent publishers/clients"
    );
    println!(
        "direct AMQP publishing: {direct_rate:.0} declarations/s end to end; {:.0} publishes/s confirmed",
        n as f64 / publish_secs
    );
    println!(
        "through the gateway:    {gateway_rate:.0} declarations/s end to end; {:.0} submissions/s accepted (202)",
        n as f64 / accept_secs
    );
    println!(
        "accepting: the gateway takes {:.0}% of the direct publishing rate (both while the workers run)",
        100.0 * (n as f64 / accept_secs) / (n as f64 / publish_secs)
    );
    println!(
        "gateway cost: {:.1}% of end-to-end throughput (goal ≤ 15%)",
        (1.0 - gateway_rate / direct_rate) * 100.0
    );
    println!(
        "submit latency (request to 202): p50 {:.1} ms, p99 {:.1} ms; a confirmed direct publish: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        percentile(&publish_latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&publish_latencies, 0.99).as_secs_f64() * 1000.0
    );
    site.stop().await;
    let _ = Command::new("rabbitmqctl")
        .args(["-q", "delete_vhost", &vhost])
        .status();
    let _ = psql(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}
