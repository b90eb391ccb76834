//! `tamga bench pipeline`: the load generator. Starts the workers as a
//! separate process (`tamga run --config FILE`, so its memory is its own),
//! publishes N signed declarations to `tamga.inbound` at a chosen rate, and
//! measures from publish to the confirmed outbound/rejected message.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

async fn start_workers(config: &Path) -> anyhow::Result<tokio::process::Child> {
    let exe = std::env::current_exe()?;
    let mut child = tokio::process::Command::new(exe)
        .args(["run", "--config"])
        .arg(config)
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
        Some(start_workers(&a.config).await?)
    };
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
