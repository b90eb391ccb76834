#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The authority's key is in a SoftHSM2 token, and the token goes away for
//! 10 s in the middle of a run (its directory moved out: the module answers
//! every call with an error, as when an HSM or its daemon restarts).
//! Declarations arriving meanwhile are held — never dead-lettered — and all
//! are counter-signed and forwarded once the token is back, by the same
//! process (the signer re-opens its session; the module is re-initialised).
//! The outage is seen in `tamga_failures_total{class="transient",source="key"}`.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::token;
use tamga_bus::{Bus, MemoryBus, Message};
use tamga_pipeline::config::{
    AuthorityConfig, EmbeddedConfig, LogConfig, MetricsConfig, TrustConfig, WorkerConfig,
};
use tamga_pipeline::site::{start_site, SiteOptions};
use tamga_pipeline::{Config, Stage};
use tamga_pkcs11::softhsm::{KeySpec, SoftHsm};
use tamga_store::Store;

fn signed(keys: &std::path::Path, seq: u64) -> Vec<u8> {
    let doc = tamga_declaration::sample(&tamga_declaration::SampleSpec::new("KZ", "AZ", seq, 3));
    let broker = tamga_dsig::SigningKey::from_pkcs8_pem(
        &std::fs::read(keys.join("KZ/broker-ecdsa.key")).unwrap(),
    )
    .unwrap();
    let mut certs = tamga_dsig::certificates_from_pem(
        &std::fs::read(keys.join("KZ/broker-ecdsa.pem")).unwrap(),
    )
    .unwrap();
    certs.extend(
        tamga_dsig::certificates_from_pem(&std::fs::read(keys.join("KZ/issuing-ca.pem")).unwrap())
            .unwrap(),
    );
    tamga_dsig::sign_enveloped(
        doc.as_bytes(),
        &broker,
        &tamga_dsig::SignOptions {
            certificates: certs,
            digest: tamga_dsig::DigestAlgorithm::Sha256,
            xades: false,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: Default::default(),
        },
    )
    .unwrap()
}

async fn drain(consumer: &mut tamga_bus::Consumer, want: usize, within: Duration) -> usize {
    let mut got = 0;
    let deadline = Instant::now() + within;
    while got < want && Instant::now() < deadline {
        if let Ok(Some(Ok(d))) =
            tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
        {
            d.ack().await.unwrap();
            got += 1;
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarations_are_held_through_a_10_s_hsm_outage_and_all_forwarded_after() {
    let dir = tempfile::tempdir().unwrap();
    tamga_pki::generate(&tamga_pki::DemoPkiOptions {
        countries: vec!["AZ".into(), "KZ".into()],
        now_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    })
    .unwrap()
    .write_to(dir.path())
    .unwrap();
    let keys = dir.path().join("keys");
    let hsm = SoftHsm::shared_in(dir.path().join("hsm")).unwrap();
    hsm.init_token("az-outage", "so-pin-7781", "user-pin-7781")
        .unwrap();
    let cert = token::certified_token_key(
        hsm,
        "az-outage",
        "user-pin-7781",
        KeySpec::EcP256,
        "seal",
        &keys,
        "AZ",
        dir.path(),
    );
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "user-pin-7781\n").unwrap();
    let cfg = Config {
        amqp: None,
        database: None,
        trust: TrustConfig {
            dir: dir.path().join("trust"),
            policy: None,
            ..TrustConfig::default()
        },
        authority: vec![AuthorityConfig {
            country: "AZ".into(),
            key: format!(
                "pkcs11:token=az-outage;object=seal;type=private?module-path={}&pin-source=file:{}",
                hsm.module_path().display(),
                pin.display()
            ),
            cert,
            chain: vec![keys.join("AZ/issuing-ca.pem")],
        }],
        worker: WorkerConfig {
            name: "hsm-outage".into(),
            ..WorkerConfig::default()
        },
        metrics: MetricsConfig {
            listen: String::new(),
        },
        log: LogConfig::default(),
        embedded: EmbeddedConfig {
            sqlite: dir.path().join("audit.sqlite").display().to_string(),
        },
        gateway: Default::default(),
        audit: Default::default(),
    };
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let store: Arc<dyn Store> =
        Arc::new(tamga_store::open_sqlite(&dir.path().join("audit.sqlite")).unwrap());
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
    let mut outbound = bus.consume("tamga.outbound.az", 64, "t").await.unwrap();
    let publish = |seq: u64| {
        let bus = bus.clone();
        let body = signed(&keys, seq);
        async move {
            bus.publish(
                "tamga.inbound",
                Message {
                    body,
                    routing_key: "kz.az".into(),
                    message_id: Some(format!("hsm-{seq}")),
                    correlation_id: None,
                    headers: BTreeMap::new(),
                    timestamp_ms: Some(tamga_pipeline::now_ms()),
                },
            )
            .await
            .unwrap()
        }
    };
    // Healthy.
    for seq in 0..3 {
        publish(seq).await;
    }
    assert_eq!(drain(&mut outbound, 3, Duration::from_secs(60)).await, 3);

    // The token goes away for 10 s.
    let tokens = hsm.dir().join("tokens");
    let away = hsm.dir().join("tokens.away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    let outage = Instant::now();
    for seq in 10..20 {
        publish(seq).await;
    }
    let key_failures = || {
        site.metrics
            .failures
            .with_label_values(&["fused", "transient", "key"])
            .get()
    };
    while key_failures() == 0 {
        assert!(
            outage.elapsed() < Duration::from_secs(60),
            "the outage was never met"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let during = drain(
        &mut outbound,
        1,
        Duration::from_secs(10).saturating_sub(outage.elapsed()),
    )
    .await;
    assert_eq!(during, 0, "nothing can be counter-signed without the token");
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();

    // Back: everything that arrived meanwhile goes through.
    assert_eq!(drain(&mut outbound, 10, Duration::from_secs(120)).await, 10);
    assert_eq!(
        site.metrics
            .dead_lettered
            .with_label_values(&["fused"])
            .get(),
        0
    );
    assert!(key_failures() >= 1);
    site.stop().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.get("dead_lettered"), None);
    assert_eq!(counts.get("countersigned").copied(), Some(13));
    assert_eq!(counts.get("forwarded").copied(), Some(13));
    assert!(store.verify_chain().await.unwrap().is_intact());
}
