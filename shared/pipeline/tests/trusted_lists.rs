#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A site running on signed trusted lists alone (embedded: in-process bus,
//! SQLite): declarations flow; a new list that withdraws a CA is put in
//! force by a reload without a restart, and the reload is audited; a list
//! with a lower sequence number is refused, the last good one stays in
//! force (kept on disk with the sequence number), and the country is
//! reported degraded. The other country is unaffected throughout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tamga_bus::{Bus, HeaderValue, MemoryBus, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TlConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{reload_trust, start_site, SiteOptions, TRUST_RELOADED};
use tamga_pipeline::{headers, Config, Stage};
use tamga_pki::{BrokerKind, CountryPki, DemoPki, DemoPkiOptions};
use tamga_trust::tsl::{build_trusted_list, StatusPeriod, TlBuild, TlService, SVC_CA_QC};

const DAY: i64 = 86_400;

thread_local! {
    /// The receipt of the last accepted declaration `outcome` saw (base64).
    /// The test's own future always runs on the test thread (tokio's
    /// `block_on`), so the writer and the reader share it.
    static LAST_RECEIPT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn list(c: &CountryPki, sequence: u64, withdrawn_since: Option<i64>) -> Vec<u8> {
    let mut statuses = vec![StatusPeriod {
        status: tamga_trust::tsl::STATUS_GRANTED.into(),
        from_unix: now() - 30 * DAY,
    }];
    if let Some(t) = withdrawn_since {
        statuses.push(StatusPeriod {
            status: tamga_trust::tsl::STATUS_WITHDRAWN.into(),
            from_unix: t,
        });
    }
    let xml = build_trusted_list(&TlBuild {
        territory: &c.country,
        operator: "test operator",
        sequence,
        issued_unix: now(),
        next_update_unix: now() + 30 * DAY,
        services: &[TlService {
            provider: format!("{} Demo PKI", c.country),
            name: format!("{} Demo Root CA", c.country),
            service_type: SVC_CA_QC.into(),
            certificates: vec![c.root.cert_der.clone()],
            statuses,
        }],
        pointers: &[],
    })
    .unwrap();
    sign_enveloped(
        xml.as_bytes(),
        &SigningKey::from_pkcs8_pem(c.authority.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![c.authority.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

fn signed(pki: &DemoPki, from: &str, to: &str, seq: u64) -> Vec<u8> {
    let c = pki.country(from).unwrap();
    let b = c.broker(BrokerKind::Ecdsa).unwrap();
    sign_enveloped(
        sample(&SampleSpec::new(from, to, seq, 2)).as_bytes(),
        &SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![b.cert_der.clone(), c.issuing.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

fn config(root: &Path) -> Config {
    let tl = root.join("tl");
    Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            list: ["KZ", "AZ"]
                .iter()
                .map(|cc| {
                    TlConfig::new(
                        cc,
                        tl.join(format!("{cc}-tl.xml")),
                        vec![root.join("keys").join(cc).join("authority.pem")],
                    )
                })
                .collect(),
            state_dir: Some(root.join("state")),
            // The demo trust folders: only their CRLs are read.
            crl_dir: Some(root.join("trust")),
            ..TrustConfig::default()
        },
        authority: ["KZ", "AZ"]
            .iter()
            .map(|cc| {
                let d = root.join("keys").join(cc);
                AuthorityConfig {
                    country: cc.to_string(),
                    key: d.join("authority.key").display().to_string(),
                    cert: d.join("authority.pem"),
                    chain: vec![d.join("issuing-ca.pem")],
                }
            })
            .collect(),
        worker: WorkerConfig {
            name: "tl-test".into(),
            ..WorkerConfig::default()
        },
        metrics: MetricsConfig {
            listen: String::new(),
        },
        log: LogConfig::default(),
        embedded: EmbeddedConfig {
            sqlite: root.join("audit.sqlite").display().to_string(),
        },
        gateway: Default::default(),
        audit: Default::default(),
    }
}

async fn outcome(
    bus: &Arc<dyn Bus>,
    route: &str,
    id: &str,
    body: Vec<u8>,
) -> (bool, Option<String>) {
    bus.publish(
        "tamga.inbound",
        Message {
            body,
            routing_key: route.into(),
            message_id: Some(id.into()),
            correlation_id: None,
            headers: BTreeMap::new(),
            timestamp_ms: Some(tamga_pipeline::now_ms()),
        },
    )
    .await
    .unwrap();
    let (from, to) = route.split_once('.').unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = bus
        .consume(&format!("tamga.outbound.{to}"), 16, &format!("t-out-{id}"))
        .await
        .unwrap();
    let mut rej = bus
        .consume(
            &format!("tamga.rejected.{from}"),
            16,
            &format!("t-rej-{id}"),
        )
        .await
        .unwrap();
    while Instant::now() < deadline {
        tokio::select! {
            Some(Ok(d)) = out.next() => {
                let m = d.message.clone();
                let _ = d.ack().await;
                if m.correlation_id.as_deref() == Some(id) {
                    if let Some(HeaderValue::Str(r)) = m.headers.get(headers::RECEIPT) {
                        LAST_RECEIPT.with(|c| *c.borrow_mut() = Some(r.clone()));
                    }
                    return (true, None);
                }
            }
            Some(Ok(d)) = rej.next() => {
                let m = d.message.clone();
                let _ = d.ack().await;
                if m.correlation_id.as_deref() == Some(id) {
                    let reason = match m.headers.get(headers::REASON) {
                        Some(HeaderValue::Str(s)) => Some(s.clone()),
                        _ => None,
                    };
                    return (false, reason);
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    panic!("{id}: no result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_runs_on_trusted_lists_and_reloads_them() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_path_buf();
    let pki = tamga_pki::generate(&DemoPkiOptions::new(["KZ", "AZ"], now())).unwrap();
    pki.write_to(&root).unwrap();
    std::fs::create_dir_all(root.join("tl")).unwrap();
    let kz = pki.country("KZ").unwrap();
    let az = pki.country("AZ").unwrap();
    std::fs::write(root.join("tl/KZ-tl.xml"), list(kz, 1, None)).unwrap();
    std::fs::write(root.join("tl/AZ-tl.xml"), list(az, 1, None)).unwrap();
    // The anchors come from the lists only.
    for cc in ["KZ", "AZ"] {
        std::fs::remove_file(root.join("trust").join(cc).join("root-ca.pem")).unwrap();
    }

    let cfg = config(&root);
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let store: Arc<dyn tamga_store::Store> =
        Arc::new(tamga_store::open_sqlite(&root.join("audit.sqlite")).unwrap());
    let site = start_site(
        &cfg,
        &SiteOptions {
            embedded: true,
            stages: vec![Stage::Fused],
        },
        &tamga_pipeline::open_key,
        Some(bus.clone()),
        Some(store.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        outcome(&bus, "kz.az", "kz-1", signed(&pki, "KZ", "AZ", 1)).await,
        (true, None)
    );
    // The signed receipt carries the report, which names the list it rested on.
    let receipt = LAST_RECEIPT
        .with(|c| c.borrow().clone())
        .expect("a receipt");
    let receipt =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, receipt).unwrap();
    let content = tamga_receipt::parse_receipt(&receipt).unwrap();
    let report: serde_json::Value = serde_json::from_str(&content.validation_report).unwrap();
    assert_eq!(report["trustSource"]["kind"], "trustedList");
    assert_eq!(report["trustSource"]["sequence"], 1);
    assert!(!report["revocation"].as_array().unwrap().is_empty());
    assert_eq!(
        outcome(&bus, "az.kz", "az-1", signed(&pki, "AZ", "KZ", 2)).await,
        (true, None)
    );

    // KZ publishes sequence 2, withdrawing its CA an hour ago: in force on reload.
    std::fs::write(root.join("tl/KZ-tl.xml"), list(kz, 2, Some(now() - 3600))).unwrap();
    reload_trust(&cfg, &site, "test").await.unwrap();
    assert_eq!(
        outcome(&bus, "kz.az", "kz-2", signed(&pki, "KZ", "AZ", 3)).await,
        (false, Some("trust_service_not_granted".into()))
    );
    assert_eq!(
        outcome(&bus, "az.kz", "az-2", signed(&pki, "AZ", "KZ", 4)).await,
        (true, None)
    );

    // A replayed older list (sequence 1, CA granted) is refused: the last
    // good list (sequence 2) stays in force and KZ is reported degraded.
    std::fs::write(root.join("tl/KZ-tl.xml"), list(kz, 1, None)).unwrap();
    reload_trust(&cfg, &site, "test").await.unwrap();
    assert_eq!(
        outcome(&bus, "kz.az", "kz-3", signed(&pki, "KZ", "AZ", 5)).await,
        (false, Some("trust_service_not_granted".into()))
    );
    let metrics = site.metrics.render();
    assert!(
        metrics.contains("tamga_trust_degraded{country=\"KZ\",kind=\"trust_list\"} 1"),
        "{metrics}"
    );
    // The list in force is still sequence 2; its NextUpdate is exported for the stale alert.
    assert!(
        metrics.contains("tamga_trust_list_sequence{country=\"KZ\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tamga_trust_list_next_update_timestamp_seconds{country=\"AZ\"}"),
        "{metrics}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("state/state.json")).unwrap()).unwrap();
    assert_eq!(state["sequences"]["KZ"], 2);
    assert_eq!(state["sequences"]["AZ"], 1);
    assert!(root.join("state/KZ-tl.xml").exists());

    // Restarting does not forget: the rollback is still refused.
    let reloaded = tamga_pipeline::trust_source::load_trust(&cfg.trust, now()).unwrap();
    assert_eq!(reloaded.degraded_countries(), vec!["KZ".parse().unwrap()]);

    site.stop().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.get(TRUST_RELOADED).copied(), Some(2), "{counts:?}");
    let report = store.verify_chain().await.unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
}

/// Serves `body` over HTTP on 127.0.0.1 for `requests` connections, then
/// closes the listener (the "server down" that follows). Returns the URL.
fn serve(body: Vec<u8>, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/KZ-tl.xml", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for _ in 0..requests {
            let (mut s, _) = listener.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            assert!(req.starts_with(b"GET /KZ-tl.xml HTTP/1.0\r\n"));
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/vnd.etsi.tsl+xml\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(&body).unwrap();
        }
    });
    (url, handle)
}

/// A LOTL names KZ's list by an http:// URL: the edge fetches it (with a
/// timeout), accepts it against the signer the LOTL pins, and keeps it on
/// disk; when the server is gone, the last good copy stays in force and
/// KZ is reported degraded (a fault naming the URL), nothing else changes.
#[test]
fn a_lotl_names_a_list_by_http_url_and_the_last_good_copy_survives_an_outage() {
    use tamga_pipeline::config::LotlConfig;
    use tamga_trust::tsl::TlPointer;
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().to_path_buf();
    let pki = tamga_pki::generate(&DemoPkiOptions::new(["KZ", "AZ"], now())).unwrap();
    pki.write_to(&root).unwrap();
    let kz = pki.country("KZ").unwrap();
    let az = pki.country("AZ").unwrap();
    let (url, server) = serve(list(kz, 7, None), 1);
    let lotl = build_trusted_list(&TlBuild {
        territory: "EU",
        operator: "Mutual recognition secretariat",
        sequence: 1,
        issued_unix: now(),
        next_update_unix: now() + 30 * DAY,
        services: &[],
        pointers: &[TlPointer {
            territory: "KZ".into(),
            location: url.clone(),
            mime_type: None,
            signer_certificates: vec![kz.authority.cert_der.clone()],
        }],
    })
    .unwrap();
    let lotl = sign_enveloped(
        lotl.as_bytes(),
        &SigningKey::from_pkcs8_pem(az.authority.key_pkcs8_pem.as_bytes()).unwrap(),
        &SignOptions {
            certificates: vec![az.authority.cert_der.clone()],
            digest: DigestAlgorithm::Sha256,
            xades: true,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap();
    std::fs::write(root.join("lotl.xml"), lotl).unwrap();
    let cfg = TrustConfig {
        lotl: Some(LotlConfig {
            path: root.join("lotl.xml"),
            signers: vec![root.join("keys/AZ/authority.pem")],
        }),
        state_dir: Some(root.join("state")),
        crl_dir: Some(root.join("trust")),
        fetch_timeout_ms: 2_000,
        ..TrustConfig::default()
    };
    let kz_cc: tamga_trust::CountryCode = "KZ".parse().unwrap();

    let trust = tamga_pipeline::trust_source::load_trust(&cfg, now()).unwrap();
    server.join().unwrap();
    assert!(trust.faults().is_empty(), "{:?}", trust.faults());
    let source = serde_json::to_value(trust.source(kz_cc).unwrap()).unwrap();
    assert_eq!(source["sequence"], 7, "{source}");
    assert!(
        root.join("state/KZ-tl.xml").exists(),
        "the last good list is kept"
    );

    // The server is gone: the kept copy stays in force, KZ is degraded.
    let trust = tamga_pipeline::trust_source::load_trust(&cfg, now()).unwrap();
    let source = serde_json::to_value(trust.source(kz_cc).unwrap()).unwrap();
    assert_eq!(source["sequence"], 7, "{source}");
    let faults = trust.faults();
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert_eq!(faults[0].country, kz_cc);
    assert!(faults[0].detail.contains(&url), "{}", faults[0].detail);
    assert!(
        faults[0].detail.contains("cannot fetch"),
        "{}",
        faults[0].detail
    );
}
