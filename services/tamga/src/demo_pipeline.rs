//! The demo's main act: a few hundred declarations through the pipeline on
//! the embedded default (in-process bus, SQLite audit store), with a
//! progress bar, a summary per corridor, and the audit trail verified.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tamga_bus::{Bus, HeaderValue, MemoryBus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{default_digest, sign_enveloped, SignOptions, SigningKey};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{headers, Config, Stage};

const COUNTRIES: [&str; 4] = ["AZ", "KZ", "TR", "KG"];

/// What a declaration was sent as, to check the outcome against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Good,
    Forged,
    Wrapped,
    WrongCountry,
    Revoked,
    Expired,
}

struct Sent {
    corridor: String,
    kind: Kind,
    at: Instant,
    /// Signed by a GOST R 34.10-2015 broker (KZ).
    gost: bool,
}

fn signer(pki: &Path, cc: &str, name: &str) -> anyhow::Result<(SigningKey, Vec<Vec<u8>>)> {
    let dir = pki.join("keys").join(cc);
    let key = SigningKey::from_pkcs8_pem(&std::fs::read(dir.join(format!("{name}.key")))?)?;
    let certs = crate::sign::load_certs(
        &dir.join(format!("{name}.pem")),
        &[dir.join(crate::demo::issuing_ca_of(name))],
    )?;
    Ok((key, certs))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `count` declarations through the embedded pipeline; true when every
/// outcome is as expected and the audit trail verifies.
pub fn run(pki: &Path, out: &Path, count: usize) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(pki, out, count))
}

async fn run_async(pki: &Path, out: &Path, count: usize) -> anyhow::Result<bool> {
    let sqlite = out.join("audit.sqlite");
    let _ = std::fs::remove_file(&sqlite);
    let checkpoints = out.join("checkpoints");
    let _ = std::fs::remove_dir_all(&checkpoints);
    let cfg = Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: pki.join("trust"),
            policy: None,
            ..TrustConfig::default()
        },
        authority: COUNTRIES
            .iter()
            .map(|cc| {
                let d = pki.join("keys").join(cc);
                AuthorityConfig {
                    country: cc.to_string(),
                    key: d.join("authority.key").display().to_string(),
                    cert: d.join("authority.pem"),
                    chain: vec![d.join("issuing-ca.pem")],
                }
            })
            .collect(),
        worker: WorkerConfig {
            name: "demo".into(),
            concurrency: 16,
            ..WorkerConfig::default()
        },
        metrics: MetricsConfig {
            listen: String::new(),
        },
        log: LogConfig::default(),
        embedded: EmbeddedConfig {
            sqlite: sqlite.display().to_string(),
        },
        gateway: Default::default(),
        audit: tamga_pipeline::config::AuditConfig {
            checkpoint_dir: Some(checkpoints.clone()),
            ..Default::default()
        },
    };

    // Sign the declarations first (the brokers' side).
    println!("\n6. The pipeline on the embedded default: {count} declarations from AZ, KZ, TR and KG brokers");
    let mut signers = BTreeMap::new();
    for cc in COUNTRIES {
        for name in [
            "broker-rsa",
            "broker-ecdsa",
            "broker-revoked",
            "broker-expired",
        ] {
            signers.insert((cc, name), signer(pki, cc, name)?);
        }
    }
    // KZ's GOST brokers (the demo PKI's GOST flavour).
    for name in ["broker-gost", "broker-gost-revoked"] {
        signers.insert(("KZ", name), signer(pki, "KZ", name)?);
    }
    let mut batch = Vec::with_capacity(count);
    for i in 0..count {
        let from = COUNTRIES[i % 4];
        let to = COUNTRIES[(i / 4 + 1 + i % 4) % 4];
        let to = if to == from {
            COUNTRIES[(i % 4 + 1) % 4]
        } else {
            to
        };
        let kind = match i % 20 {
            3 => Kind::Forged,
            7 => Kind::Wrapped,
            11 => Kind::WrongCountry,
            13 => Kind::Revoked,
            17 => Kind::Expired,
            _ => Kind::Good,
        };
        // Half of KZ's declarations (and of its revoked signers) are GOST.
        let gost = from == "KZ" && (i / 4) % 2 == 0;
        let broker = match kind {
            Kind::Revoked if gost => "broker-gost-revoked",
            Kind::Revoked => "broker-revoked",
            Kind::Expired => "broker-expired",
            _ if gost => "broker-gost",
            _ if i % 2 == 0 => "broker-rsa",
            _ => "broker-ecdsa",
        };
        let gost = broker.starts_with("broker-gost");
        let (key, certs) = &signers[&(from, broker)];
        let doc = sample(&SampleSpec::new(from, to, 10_000 + i as u64, 45));
        let mut bytes = sign_enveloped(
            doc.as_bytes(),
            key,
            &SignOptions {
                certificates: certs.clone(),
                digest: default_digest(key),
                xades: i % 3 == 0,
                signing_time: time::OffsetDateTime::now_utc(),
                limits: Default::default(),
            },
        )?;
        let mut route_from = from;
        match kind {
            Kind::Forged => {
                let t = String::from_utf8_lossy(&bytes).replacen(
                    "<Quantity unit=\"pcs\">",
                    "<Quantity unit=\"pcs\">7",
                    1,
                );
                bytes = t.into_bytes();
            }
            Kind::Wrapped => {
                let t = String::from_utf8_lossy(&bytes).to_string();
                let body = t.trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                bytes = format!("<Declaration xmlns=\"urn:tamga:declaration:1\"><Header><LRN>FORGED-{i}</LRN></Header><Extension>{body}</Extension></Declaration>").into_bytes();
            }
            Kind::WrongCountry => {
                route_from = COUNTRIES
                    .iter()
                    .copied()
                    .find(|c| *c != from && *c != to)
                    .unwrap_or(from)
            }
            _ => {}
        }
        batch.push((
            format!(
                "{}.{}",
                route_from.to_ascii_lowercase(),
                to.to_ascii_lowercase()
            ),
            kind,
            bytes,
            i,
            gost,
        ));
    }

    let bus = Arc::new(MemoryBus::new());
    let site = start_site(
        &cfg,
        &SiteOptions {
            embedded: true,
            stages: vec![Stage::Fused],
        },
        &tamga_pipeline::open_key,
        Some(bus.clone() as Arc<dyn Bus>),
        None,
    )
    .await?;

    // The destinations' side: collect everything published outbound or rejected.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Message, bool)>();
    for cc in COUNTRIES {
        let cc = cc.to_ascii_lowercase();
        for (queue, accepted) in [
            (format!("tamga.outbound.{cc}"), true),
            (format!("tamga.rejected.{cc}"), false),
        ] {
            let mut consumer = bus.consume(&queue, 256, "demo-collector").await?;
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(Ok(d)) = consumer.next().await {
                    let m = d.message.clone();
                    let _ = d.ack().await;
                    let _ = tx.send((queue.clone(), m, accepted));
                }
            });
        }
    }
    drop(tx);

    let bar = indicatif::ProgressBar::new(count as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "   {bar:40} {pos}/{len} declarations  {per_sec}  {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut sent: BTreeMap<String, Sent> = BTreeMap::new();
    for (route, kind, bytes, i, gost) in batch {
        let id = format!("demo-{i:05}");
        sent.insert(
            id.clone(),
            Sent {
                corridor: route.to_ascii_uppercase().replace('.', "→"),
                kind,
                at: Instant::now(),
                gost,
            },
        );
        bus.publish(
            "tamga.inbound",
            Message {
                body: bytes,
                routing_key: route,
                message_id: Some(id),
                correlation_id: None,
                headers: BTreeMap::new(),
                timestamp_ms: Some(tamga_pipeline::now_ms()),
            },
        )
        .await?;
    }

    // Corridor → (accepted, rejections by reason, latencies).
    type Row = (usize, BTreeMap<String, usize>, Vec<f64>);
    let mut table: BTreeMap<String, Row> = BTreeMap::new();
    let mut as_expected = true;
    let mut received = 0;
    // GOST-signed: (decided, accepted, of which genuine).
    let mut gost = (0usize, 0usize, 0usize);
    let deadline = Instant::now() + Duration::from_secs(120);
    while received < count && Instant::now() < deadline {
        let Ok(Some((_, m, accepted))) =
            tokio::time::timeout(Duration::from_secs(10), rx.recv()).await
        else {
            break;
        };
        let Some(s) = m.correlation_id.as_ref().and_then(|c| sent.get(c)) else {
            continue;
        };
        received += 1;
        bar.inc(1);
        let row = table.entry(s.corridor.clone()).or_default();
        row.2.push(s.at.elapsed().as_secs_f64() * 1000.0);
        if accepted {
            row.0 += 1;
        } else {
            let reason = match m.headers.get(headers::REASON) {
                Some(HeaderValue::Str(r)) => r.clone(),
                _ => "unknown".into(),
            };
            *row.1.entry(reason).or_default() += 1;
        }
        as_expected &= accepted == (s.kind == Kind::Good);
        if s.gost {
            gost.0 += 1;
            gost.1 += usize::from(accepted);
            gost.2 += usize::from(s.kind == Kind::Good);
        }
    }
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    as_expected &= received == count;
    site.stop().await;

    println!(
        "   {received}/{count} declarations decided in {elapsed:.1} s ({:.0}/s, embedded bus, SQLite audit)\n",
        received as f64 / elapsed
    );
    println!(
        "   {:<10} {:>8} {:>8}  {:<58} {:>8} {:>8}",
        "corridor", "total", "accepted", "rejected (reason × count)", "p50 ms", "p99 ms"
    );
    println!("   {}", "-".repeat(108));
    for (corridor, (accepted, reasons, mut lat)) in table {
        lat.sort_by(|a, b| a.total_cmp(b));
        let total = lat.len();
        let rej: Vec<String> = reasons.iter().map(|(r, n)| format!("{r}×{n}")).collect();
        println!(
            "   {:<10} {:>8} {:>8}  {:<58} {:>8.1} {:>8.1}",
            corridor,
            total,
            accepted,
            rej.join(" "),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99)
        );
    }

    println!(
        "\n   GOST R 34.10-2015 512 (KZ brokers, Kazakh NCA form): {} decided, {} accepted ({} genuine), counter-signed by the destination's RSA/ECDSA authority",
        gost.0, gost.1, gost.2
    );

    println!(
        "\n7. tamga audit verify (the embedded store: {})",
        sqlite.display()
    );
    let store = tamga_store::open_sqlite(&sqlite)?;
    let (report, leaves) = tamga_pipeline::checkpoint::read_trail(&store).await?;
    println!(
        "   events: {}, chains: {}",
        report.events,
        report.chains.len()
    );
    match &report.problem {
        None => println!("   audit trail intact"),
        Some(p) => {
            println!(
                "   PROBLEM at chain {} seq {}: {}",
                p.chain, p.seq, p.detail
            );
            as_expected = false;
        }
    }
    // The site signed a checkpoint when it stopped: the external copy anchors every event.
    let rows = tamga_store::CheckpointStore::checkpoints(&store).await?;
    let files = tamga_pipeline::checkpoint::read_checkpoint_dir(&checkpoints)?;
    let pinned =
        tamga_pipeline::checkpoint::pinned_certificates(&cfg).map_err(anyhow::Error::msg)?;
    let cps = tamga_audit_log::check_checkpoints(&leaves, &rows, &files, &pinned);
    match cps.latest_external() {
        Some(c) if cps.is_intact() && cps.uncovered == 0 => println!(
            "   signed checkpoint: tree size {} (root {}…), signed by the {} authority, in {}",
            c.tree_size,
            &c.root_hash[..16],
            c.authority,
            c.file.as_deref().unwrap_or("-")
        ),
        _ => {
            println!(
                "   CHECKPOINTS: {:?} {:?} ({} events not covered)",
                cps.problems, cps.broken, cps.uncovered
            );
            as_expected = false;
        }
    }
    Ok(as_expected)
}
