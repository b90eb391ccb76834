//! `tamga bench pipeline`: the load generator. Starts the workers as a
//! separate process (`tamga run --config FILE`, so its memory is its own),
//! publishes N signed declarations to `tamga.inbound` at a chosen rate, and
//! measures from publish to the confirmed outbound/rejected message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tamga_bus::{AmqpBus, AmqpOptions, Bus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pipeline::Config;
use tokio::io::AsyncBufReadExt;

use crate::Outcome;

#[derive(Debug, Args)]
pub struct BenchPipelineArgs {
    /// Site configuration with [amqp] and [database] (the workers under test use it).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Demo PKI directory (from `tamga pki demo`) whose brokers sign the declarations.
    #[arg(long, value_name = "DIR")]
    pki: PathBuf,
    /// Declarations to send.
    #[arg(long, default_value_t = 2000)]
    count: usize,
    /// Publish rate (declarations per second); 0 = as fast as confirms allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Goods items per declaration (45 ≈ 25 KB).
    #[arg(long, default_value_t = 45)]
    items: usize,
    /// Do not start workers; measure an already running site.
    #[arg(long)]
    external: bool,
    /// `tamga run --stages` for the workers under test (`fused`, or
    /// `verify,countersign,forward`).
    #[arg(long, default_value = "fused")]
    stages: String,
    /// Measure the reference instead: a bare broker relay (inbound → outbound,
    /// confirm, ack; no verification, no database), same messages and rate.
    #[arg(long)]
    reference: bool,
}

#[derive(Debug, Args)]
pub struct RelayArgs {
    /// Site configuration ([amqp] and [worker] concurrency are used).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

/// CPU time (user + system, ms) of every process whose command name is
/// `comm` (e.g. `beam.smp`, `postgres`), or of one pid.
fn cpu_ms(which: CpuOf) -> f64 {
    // USER_HZ: /proc reports clock ticks of 1/100 s on Linux.
    const TICKS_PER_S: f64 = 100.0;
    let ticks = |stat: &str| -> Option<f64> {
        // Fields after the parenthesised command name; utime and stime are
        // the 12th and 13th of those.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
    };
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let wanted = match &which {
            CpuOf::Pid(p) => *p == pid,
            CpuOf::Comm(c) => std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|s| s.trim() == *c)
                .unwrap_or(false),
        };
        if wanted {
            if let Some(t) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .as_deref()
                .and_then(ticks)
            {
                total += t;
            }
        }
    }
    total * 1000.0 / TICKS_PER_S
}

enum CpuOf {
    Pid(u32),
    Comm(&'static str),
}

/// CPU used by each part of the system during the measurement.
struct CpuSnapshot {
    broker: f64,
    database: f64,
    workers: f64,
    generator: f64,
}

impl CpuSnapshot {
    fn take(worker_pid: Option<u32>) -> Self {
        Self {
            broker: cpu_ms(CpuOf::Comm("beam.smp")),
            database: cpu_ms(CpuOf::Comm("postgres")),
            workers: worker_pid.map_or(0.0, |p| cpu_ms(CpuOf::Pid(p))),
            generator: cpu_ms(CpuOf::Pid(std::process::id())),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn corridor(i: usize) -> (&'static str, &'static str) {
    const C: [&str; 4] = ["KZ", "AZ", "TR", "KG"];
    let from = C[i % 4];
    let to = C[(i % 4 + 1 + (i / 4) % 3) % 4];
    (from, to)
}

pub fn run(a: &BenchPipelineArgs) -> anyhow::Result<Outcome> {
    let cfg = Config::load(&a.config)?;
    let amqp = cfg
        .amqp
        .clone()
        .context("the benchmark needs [amqp] (and [database]) in the config")?;
    // Sign first: the broker side is not what is measured.
    eprintln!("signing {} declarations ({} items each)…", a.count, a.items);
    let mut keys = HashMap::new();
    for cc in ["KZ", "AZ", "TR", "KG"] {
        let d = a.pki.join("keys").join(cc);
        let key = SigningKey::from_pkcs8_pem(&std::fs::read(d.join("broker-ecdsa.key"))?)?;
        let certs =
            crate::sign::load_certs(&d.join("broker-ecdsa.pem"), &[d.join("issuing-ca.pem")])?;
        keys.insert(cc, (key, certs));
    }
    let run_id = format!("{:x}", tamga_pipeline::now_ms());
    let mut docs = Vec::with_capacity(a.count);
    for i in 0..a.count {
        let (from, to) = corridor(i);
        let (key, certs) = &keys[from];
        let doc = sample(&SampleSpec::new(
            from,
            to,
            tamga_pipeline::now_ms() as u64 * 1000 + i as u64,
            a.items,
        ));
        let signed = sign_enveloped(
            doc.as_bytes(),
            key,
            &SignOptions {
                certificates: certs.clone(),
                digest: DigestAlgorithm::Sha256,
                xades: false,
                signing_time: time::OffsetDateTime::now_utc(),
                limits: Default::default(),
            },
        )?;
        docs.push((
            format!("{}.{}", from.to_ascii_lowercase(), to.to_ascii_lowercase()),
            format!("bench-{run_id}-{i}"),
            signed,
        ));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(measure(a, &amqp.url, docs))
}

async fn start_workers(a: &BenchPipelineArgs) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe()?;
    let mut command = tokio::process::Command::new(exe);
    if a.reference {
        command.args(["bench", "relay", "--config"]).arg(&a.config);
    } else {
        command
            .args(["run", "--stages", &a.stages, "--config"])
            .arg(&a.config);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains(": ready") || l.contains("\"message\":\"ready\"") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    anyhow::ensure!(ready, "the workers did not log `ready` within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(child)
}

async fn measure(
    a: &BenchPipelineArgs,
    url: &str,
    docs: Vec<(String, String, Vec<u8>)>,
) -> anyhow::Result<Outcome> {
    let child = if a.external {
        None
    } else {
        Some(start_workers(a).await?)
    };
    let worker_pid = child.as_ref().and_then(|c| c.id());
    let bus = Arc::new(
        AmqpBus::connect(
            url,
            AmqpOptions {
                heartbeat_secs: 10,
                connect_timeout: Duration::from_secs(5),
                confirm_timeout: Duration::from_secs(10),
                publisher_channels: 32,
                ..AmqpOptions::default()
            },
        )
        .await?,
    );
    let count = docs.len();
    let sent_at: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    for cc in ["kz", "az", "tr", "kg"] {
        for q in [
            format!("tamga.outbound.{cc}"),
            format!("tamga.rejected.{cc}"),
        ] {
            let mut consumer = bus.consume(&q, 512, "bench-collector").await?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(d)) = consumer.next().await {
                    let id = d.message.correlation_id.clone().unwrap_or_default();
                    let _ = d.ack().await;
                    let _ = tx.send((id, Instant::now()));
                }
            });
        }
    }
    drop(tx);
    let cpu_before = CpuSnapshot::take(worker_pid);
    let started = Instant::now();
    let publishers = 16usize;
    let per_publisher_interval = if a.rate > 0 {
        Some(Duration::from_secs_f64(publishers as f64 / a.rate as f64))
    } else {
        None
    };
    let chunks: Vec<Vec<(String, String, Vec<u8>)>> = {
        let mut c: Vec<Vec<_>> = (0..publishers).map(|_| Vec::new()).collect();
        for (i, d) in docs.into_iter().enumerate() {
            c[i % publishers].push(d);
        }
        c
    };
    for chunk in chunks {
        let bus = bus.clone();
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut tick = per_publisher_interval.map(tokio::time::interval);
            for (route, id, body) in chunk {
                if let Some(t) = tick.as_mut() {
                    t.tick().await;
                }
                if let Ok(mut m) = sent_at.lock() {
                    m.insert(id.clone(), Instant::now());
                }
                let msg = Message {
                    body,
                    routing_key: route,
                    message_id: Some(id),
                    correlation_id: None,
                    headers: Default::default(),
                    timestamp_ms: Some(tamga_pipeline::now_ms()),
                };
                while bus.publish("tamga.inbound", msg.clone()).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    let mut latencies = Vec::with_capacity(count);
    let mut seen = std::collections::HashSet::new();
    let mut last = started;
    let deadline = started + Duration::from_secs(600);
    let mut peak_rss = 0;
    while seen.len() < count && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            Ok(Some((id, at))) => {
                let t0 = sent_at.lock().ok().and_then(|m| m.get(&id).copied());
                if let Some(t0) = t0 {
                    if seen.insert(id) {
                        latencies.push((at - t0).as_secs_f64() * 1000.0);
                        last = at;
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {}
        }
        if let Some(c) = &child {
            if let Some(pid) = c.id() {
                peak_rss = peak_rss.max(rss_kib(pid, "VmHWM:").unwrap_or(0));
            }
        }
    }
    let cpu_after = CpuSnapshot::take(worker_pid);
    let per_decl = |before: f64, after: f64| (after - before) / seen.len().max(1) as f64;
    let elapsed = (last - started).as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let result = serde_json::json!({
        "declarations": count,
        "completed": seen.len(),
        "rateTarget": a.rate,
        "seconds": elapsed,
        "throughputPerSecond": seen.len() as f64 / elapsed.max(1e-9),
        "latencyMs": {
            "p50": percentile(&latencies, 0.5),
            "p90": percentile(&latencies, 0.9),
            "p99": percentile(&latencies, 0.99),
            "max": latencies.last().copied().unwrap_or(f64::NAN),
        },
        "workerPeakRssMiB": peak_rss as f64 / 1024.0,
        "measured": if a.reference { "reference relay (broker only)".to_string() } else { format!("tamga run --stages {}", a.stages) },
        // Where the two cores went: CPU ms per completed declaration.
        "cpuMsPerDeclaration": {
            "rabbitmq": per_decl(cpu_before.broker, cpu_after.broker),
            "postgres": per_decl(cpu_before.database, cpu_after.database),
            "workers": per_decl(cpu_before.workers, cpu_after.workers),
            "loadGenerator": per_decl(cpu_before.generator, cpu_after.generator),
        },
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    if let Some(mut c) = child {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    Ok(if seen.len() == count {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// `tamga bench relay`: the broker-only reference (see [`RelayArgs`]).
pub fn relay(a: &RelayArgs) -> anyhow::Result<Outcome> {
    let cfg = Config::load(&a.config)?;
    tamga_pipeline::site::init_logging(&cfg.log.format, &cfg.log.level);
    let amqp = cfg.amqp.clone().context("the relay needs [amqp]")?;
    let concurrency = cfg.worker.concurrency.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let bus: Arc<dyn Bus> = Arc::new(
            AmqpBus::connect(
                &amqp.url,
                AmqpOptions {
                    publisher_channels: amqp.publisher_channels.max(1),
                    ..AmqpOptions::default()
                },
            )
            .await?,
        );
        // The same queues the site declares for these four countries.
        let mut t = tamga_bus::tamga_topology(amqp.delivery_limit);
        for cc in ["kz", "az", "tr", "kg"] {
            for (exchange, queue, key) in [
                (
                    "tamga.outbound",
                    format!("tamga.outbound.{cc}"),
                    cc.to_string(),
                ),
                (
                    "tamga.rejected",
                    format!("tamga.rejected.{cc}"),
                    format!("{cc}.*"),
                ),
            ] {
                t.queues.push(tamga_bus::QueueSpec {
                    name: queue.clone(),
                    quorum: true,
                    delivery_limit: None,
                    dead_letter_exchange: None,
                    dead_letter_routing_key: None,
                });
                t.bindings.push(tamga_bus::BindingSpec {
                    exchange: exchange.into(),
                    queue,
                    routing_key: key,
                });
            }
        }
        bus.declare(&t).await?;
        let prefetch = amqp.prefetch;
        let mut consumer = bus.consume("tamga.verify", prefetch, "relay").await?;
        tracing::info!("relay: ready");
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        while let Some(Ok(d)) = consumer.next().await {
            let permit = permits.clone().acquire_owned().await?;
            let bus = bus.clone();
            tokio::spawn(async move {
                let m = &d.message;
                let to = m.routing_key.split('.').nth(1).unwrap_or("").to_string();
                let out = Message {
                    body: m.body.clone(),
                    routing_key: to,
                    message_id: m.message_id.clone(),
                    correlation_id: m.message_id.clone(),
                    headers: Default::default(),
                    timestamp_ms: Some(tamga_pipeline::now_ms()),
                };
                while bus.publish("tamga.outbound", out.clone()).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = d.ack().await;
                drop(permit);
            });
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Outcome::Passed)
}
