#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The gateway's load run (`make bench-pipeline`): in one process, the fused workers over
//! local RabbitMQ (a fresh vhost) and PostgreSQL (a fresh database), and the gateway with
//! its notifier and callback deliverer, as `tamga serve` runs them; then, in alternating
//! rounds, N declarations published straight to `tamga.inbound` (the reference) and N more
//! submitted over HTTP through the gateway by 32 concurrent clients. Reports end-to-end
//! declarations/s of both (submission to forwarded, by the workers' own counter), the
//! gateway's cost, the rate at which
//! each way accepts (confirmed publishes/s straight to the broker against 202s/s through
//! the gateway), and the p50/p99 latency of a submission (request to 202) against that of a
//! confirmed publish. Built in release by `make bench-pipeline`.
//!
//! Both ways also report CPU per declaration of this process (gateway, workers and load
//! clients), PostgreSQL and RabbitMQ, read from /proc: the cost that decides throughput on
//! a machine whose cores are all busy.
//!
//! `cargo run --release -p tamga-gateway --example gateway_load -- [N] [--rounds=R] [--clients=C] [--close]`
//! (N declarations per round and way, default 1000; R alternating rounds, default 3; C
//! concurrent publishers and clients, the same each way, default 32)
//! (`--close`: a new connection per request instead of one kept open per client).

// The allocator `tamga serve` runs with (services/tamga/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::Command;
use std::time::{Duration, Instant};

use tamga_bus::{Bus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{Config, Stage};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Concurrent publishers (direct) and HTTP clients (gateway), the same each way;
/// `--clients=C` changes it.
const CLIENTS: usize = 32;

/// One broker's HTTP/1.1 connection, kept open across its submissions, as a broker's
/// client (or any HTTP library) does; the reference's publishers keep theirs too.
/// `--close` opens one per request instead (what session 5's figures measured).
struct Client {
    addr: String,
    stream: Option<tokio::io::BufReader<tokio::net::TcpStream>>,
    close: bool,
}

impl Client {
    async fn post(&mut self, token: &str, key: &str, body: &[u8]) -> u16 {
        if self.stream.is_none() {
            let s = tokio::net::TcpStream::connect(&self.addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            self.stream = Some(tokio::io::BufReader::new(s));
        }
        let s = self.stream.as_mut().unwrap();
        let head = format!(
            "POST /v1/declarations HTTP/1.1\r\nHost: {}\r\nConnection: {}\r\n\
             Authorization: Bearer {token}\r\nContent-Type: application/xml\r\n\
             X-Tamga-Origin: KZ\r\nX-Tamga-Destination: AZ\r\nIdempotency-Key: {key}\r\n\
             Content-Length: {}\r\n\r\n",
            self.addr,
            if self.close { "close" } else { "keep-alive" },
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        s.get_mut().write_all(&request).await.unwrap();
        // The answer's head, then exactly Content-Length bytes of body.
        let (mut status, mut length) = (0u16, 0usize);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                s.read_line(&mut line).await.unwrap() > 0,
                "connection closed"
            );
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l
                    .split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
            } else if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut rest = vec![0u8; length];
        s.read_exact(&mut rest).await.unwrap();
        if self.close {
            self.stream = None;
        }
        status
    }
}

/// CPU time (user + system, ms) so far of the processes named `comm` (`postgres`,
/// `beam.smp`), or of this one (`None`): gateway, workers and load clients together.
fn cpu_ms(comm: Option<&str>) -> f64 {
    let ticks = |pid: &str| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        // utime and stime: the 14th and 15th fields, 12th and 13th after the name.
        let f = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        f(11) + f(12)
    };
    let total = match comm {
        None => ticks("self"),
        Some(c) => std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|n| n.trim() == c)
            })
            .map(|p| ticks(&p))
            .sum(),
    };
    // USER_HZ: clock ticks of 1/100 s.
    total * 10.0
}

/// CPU so far of (this process, PostgreSQL, RabbitMQ).
fn cpu_now() -> [f64; 3] {
    [
        cpu_ms(None),
        cpu_ms(Some("postgres")),
        cpu_ms(Some("beam.smp")),
    ]
}

/// What one way of submitting measured over its rounds.
#[derive(Default)]
struct Way {
    /// From the first publish/request to the last declaration forwarded, summed.
    secs: f64,
    /// From the first publish/request to the last confirm/202, summed.
    accept_secs: f64,
    latencies: Vec<Duration>,
    /// CPU ms of (this process, PostgreSQL, RabbitMQ), summed.
    cpu: [f64; 3],
}

impl Way {
    fn add_cpu(&mut self, before: [f64; 3], after: [f64; 3]) {
        for (i, c) in self.cpu.iter_mut().enumerate() {
            *c += after[i] - before[i];
        }
    }

    fn cpu_per_declaration(&self, n: f64) -> String {
        let per = |i: usize| self.cpu[i] / n;
        format!(
            "{:.2} ms CPU per declaration (tamga process {:.2} + PostgreSQL {:.2} + RabbitMQ {:.2})",
            per(0) + per(1) + per(2),
            per(0),
            per(1),
            per(2)
        )
    }
}

/// Waits until the workers have forwarded `n` declarations, by their own counter (in
/// this process): polling the audit trail instead (a `GROUP BY` over every event, every
/// 20 ms) cost PostgreSQL more the bigger the table grew, so the second run paid more for
/// it than the first.
async fn wait_forwarded(metrics: &tamga_pipeline::Metrics, n: u64) {
    loop {
        let forwarded: u64 = ["accepted", "rejected"]
            .iter()
            .map(|d| {
                metrics
                    .declarations
                    .with_label_values(&["forward", d])
                    .get()
            })
            .sum();
        if forwarded >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let close = args.iter().any(|a| a == "--close");
    let rounds: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--rounds=").and_then(|r| r.parse().ok()))
        .unwrap_or(3)
        .max(1);
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1000);
    let clients: usize = args
        .iter()
        .find_map(|a| a.strip_prefix("--clients=").and_then(|c| c.parse().ok()))
        .unwrap_or(CLIENTS)
        .max(1);
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

    eprintln!("signing {} declarations…", 2 * n * rounds);
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
    let docs: Vec<Vec<u8>> = (0..(2 * n * rounds) as u64)
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

    // As `tamga serve`: two pools, one group committer.
    let (store, workers_store) = tamga_gateway::connect_stores(&cfg, false).await.unwrap();
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
        Some(workers_store),
    )
    .await
    .unwrap();
    let mut settings = tamga_gateway::Settings::from_config(&cfg).unwrap();
    settings.rate_per_second = 0;
    let gw = tamga_gateway::Gateway::new(store.clone(), bus.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // The notifier and the callback deliverer run as in `tamga serve`: their cost is the
    // gateway's too.
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(
        gw.clone()
            .run_notifier(Duration::from_millis(500), stop_rx.clone()),
    );
    tokio::spawn(gw.clone().run_deliverer(stop_rx));
    tokio::spawn(async move { axum::serve(listener, tamga_gateway::router(gw)).await });
    let token = tamga_gateway::create_token(store.as_ref(), "load-broker", None)
        .await
        .unwrap();

    // Rounds of each way, alternating (direct, gateway, direct, …): whatever drifts
    // during the run (tables growing, the broker's queues, a background checkpoint) falls
    // on both ways alike instead of on whichever ran second.
    let mut forwarded_so_far = 0u64;
    let mut direct_total = Way::default();
    let mut gateway_total = Way::default();
    let mut chunks = docs.chunks(n);
    for round in 0..rounds {
        let direct = chunks.next().unwrap();
        eprintln!("round {}: straight to tamga.inbound…", round + 1);
        let cpu0 = cpu_now();
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let bus = bus.clone();
            let mine: Vec<Vec<u8>> = direct.iter().skip(c).step_by(clients).cloned().collect();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(mine.len());
                for (i, body) in mine.into_iter().enumerate() {
                    let mut m = Message::new("kz.az", body);
                    m.message_id = Some(format!("direct-{round}-{c}-{i}"));
                    let t = Instant::now();
                    bus.publish("tamga.inbound", m).await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        for t in tasks {
            direct_total.latencies.extend(t.await.unwrap());
        }
        direct_total.accept_secs += t0.elapsed().as_secs_f64();
        forwarded_so_far += n as u64;
        wait_forwarded(&site.metrics, forwarded_so_far).await;
        direct_total.secs += t0.elapsed().as_secs_f64();
        let cpu1 = cpu_now();
        direct_total.add_cpu(cpu0, cpu1);

        let via_gateway = chunks.next().unwrap();
        eprintln!("round {}: through the gateway…", round + 1);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let mine: Vec<Vec<u8>> = via_gateway
                .iter()
                .skip(c)
                .step_by(clients)
                .cloned()
                .collect();
            let token = token.clone();
            let mut client = Client {
                addr: addr.clone(),
                stream: None,
                close,
            };
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(mine.len());
                for (i, body) in mine.into_iter().enumerate() {
                    let t = Instant::now();
                    let status = client
                        .post(&token, &format!("load-{round}-{c}-{i}"), &body)
                        .await;
                    assert_eq!(status, 202);
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        for t in tasks {
            gateway_total.latencies.extend(t.await.unwrap());
        }
        gateway_total.accept_secs += t0.elapsed().as_secs_f64();
        forwarded_so_far += n as u64;
        wait_forwarded(&site.metrics, forwarded_so_far).await;
        gateway_total.secs += t0.elapsed().as_secs_f64();
        let cpu2 = cpu_now();
        gateway_total.add_cpu(cpu1, cpu2);
        println!(
            "round {}: direct {:.0}/s, through the gateway {:.0}/s end to end",
            round + 1,
            n as f64 / (direct_total.secs / (round + 1) as f64),
            n as f64 / (gateway_total.secs / (round + 1) as f64),
        );
    }
    let total = (n * rounds) as f64;
    for w in [&mut direct_total, &mut gateway_total] {
        w.latencies.sort();
    }
    let direct_rate = total / direct_total.secs;
    let gateway_rate = total / gateway_total.secs;
    println!(
        "declarations: {} each way in {rounds} alternating rounds (~25 KB, ECDSA P-256), {clients} concurrent publishers/clients, HTTP connections {}",
        n * rounds,
        if close { "one per request (--close)" } else { "kept open" }
    );
    println!(
        "direct AMQP publishing: {}",
        direct_total.cpu_per_declaration(total)
    );
    println!(
        "through the gateway:    {}",
        gateway_total.cpu_per_declaration(total)
    );
    println!(
        "direct AMQP publishing: {direct_rate:.0} declarations/s end to end; {:.0} publishes/s confirmed",
        total / direct_total.accept_secs
    );
    println!(
        "through the gateway:    {gateway_rate:.0} declarations/s end to end; {:.0} submissions/s accepted (202)",
        total / gateway_total.accept_secs
    );
    println!(
        "gateway cost: {:.1}% of end-to-end throughput (goal ≤ 15%)",
        (1.0 - gateway_rate / direct_rate) * 100.0
    );
    println!(
        "submit latency (request to 202): p50 {:.1} ms, p99 {:.1} ms; a confirmed direct publish: p50 {:.1} ms, p99 {:.1} ms",
        percentile(&gateway_total.latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&gateway_total.latencies, 0.99).as_secs_f64() * 1000.0,
        percentile(&direct_total.latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&direct_total.latencies, 0.99).as_secs_f64() * 1000.0
    );
    site.stop().await;
    let _ = Command::new("rabbitmqctl")
        .args(["-q", "delete_vhost", &vhost])
        .status();
    let _ = psql(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
}
