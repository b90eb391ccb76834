#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A Kazakh GOST declaration through the embedded pipeline (in-process bus,
//! SQLite): `tests/fixtures/gost-pki/declaration-kz-gost256.xml`, signed by
//! OpenSSL's GOST engine, with the GOST root in KZ's trust folder beside the
//! demo root. It is accepted and counter-signed by the KZ authority
//! (RSA/ECDSA) like any other declaration; the same bytes routed as from AZ
//! are refused because AZ's policy does not allow GOST.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tamga_bus::{Bus, HeaderValue, MemoryBus, Message};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{headers, Config, Stage};

const GOST_PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/gost-pki");

fn config(root: &Path, sqlite: &Path) -> Config {
    Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: root.join("trust"),
            policy: None,
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
            name: "gost".into(),
            concurrency: 2,
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
        audit: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gost_declaration_goes_through_the_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pki");
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["KZ".into(), "AZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(&root)
    .unwrap();
    for (from, to) in [
        ("root.pem", "gost-root.pem"),
        ("root.crl", "gost-root.crl"),
        ("ca.crl", "gost-ca.crl"),
    ] {
        std::fs::copy(
            Path::new(GOST_PKI).join(from),
            root.join("trust").join("KZ").join(to),
        )
        .unwrap();
    }
    let sqlite = dir.path().join("audit.sqlite");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let store = Arc::new(tamga_store::open_sqlite(&sqlite).unwrap());
    let _site = start_site(
        &config(&root, &sqlite),
        &SiteOptions {
            embedded: false,
            stages: Stage::ALL.to_vec(),
        },
        &tamga_pipeline::open_key,
        Some(bus.clone()),
        Some(store),
    )
    .await
    .unwrap();

    let doc = std::fs::read(Path::new(GOST_PKI).join("declaration-kz-gost256.xml")).unwrap();
    for (id, route) in [("gost-kz", "kz.az"), ("gost-as-az", "az.kz")] {
        // Other bytes for the second (a newline after the document element: outside
        // what is signed). The same bytes under another id are the same declaration, so
        // whichever was verified first would answer for both, depending on timing.
        let mut body = doc.clone();
        if id == "gost-as-az" {
            body.push(b'\n');
        }
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
    }

    let mut seen: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    let mut consumers = Vec::new();
    for q in [
        "tamga.outbound.az",
        "tamga.rejected.kz",
        "tamga.outbound.kz",
        "tamga.rejected.az",
    ] {
        consumers.push((q, bus.consume(q, 16, "gost-collector").await.unwrap()));
    }
    // A liveness bound, generous: GOST arithmetic in a debug build on a loaded
    // 2-core machine takes seconds per declaration.
    let deadline = Instant::now() + Duration::from_secs(300);
    while seen.len() < 2 && Instant::now() < deadline {
        for (q, c) in consumers.iter_mut() {
            if let Ok(Some(Ok(d))) =
                tokio::time::timeout(Duration::from_millis(100), c.next()).await
            {
                let m = d.message.clone();
                let _ = d.ack().await;
                let reason = match m.headers.get(headers::REASON) {
                    Some(HeaderValue::Str(s)) => Some(s.clone()),
                    _ => None,
                };
                seen.insert(
                    m.correlation_id.clone().unwrap_or_default(),
                    (q.to_string(), reason),
                );
            }
        }
    }
    assert_eq!(
        seen.get("gost-kz"),
        Some(&("tamga.outbound.az".to_string(), None)),
        "{seen:?}"
    );
    assert_eq!(
        seen.get("gost-as-az"),
        Some(&(
            "tamga.rejected.az".to_string(),
            Some("algorithm_not_allowed_for_country".to_string())
        )),
        "{seen:?}"
    );
}
