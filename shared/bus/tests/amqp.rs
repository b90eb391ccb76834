//! RabbitMQ-only behaviour: reconnection, the definitions file as the broker
//! reads it, connection failures, and a throughput measurement.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{next, next_within, rabbitmqctl, TestVhost};
use tamga_bus::{
    tamga_topology, AmqpBus, AmqpOptions, Bus, BusError, MemoryBus, Message,
    DEFAULT_STAGE_DELIVERY_LIMIT,
};

fn declaration(id: &str) -> Message {
    Message {
        body: format!("<Declaration id=\"{id}\"/>").into_bytes(),
        routing_key: "kz.az".into(),
        message_id: Some(id.into()),
        ..Message::default()
    }
}

async fn wait_for_reconnects(bus: &AmqpBus, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while bus.reconnects() < at_least || !bus.is_connected() {
        assert!(Instant::now() < deadline, "no reconnect within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn close_connections(vhost: &TestVhost) {
    rabbitmqctl(&[
        "-q",
        "close_all_connections",
        "-p",
        &vhost.name,
        "tamga-bus test",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_closes_the_connection() {
    let vhost = TestVhost::create();
    let bus = vhost.connect().await;
    bus.declare(&tamga_topology(5)).await.unwrap();
    bus.publish("tamga.inbound", declaration("r1"))
        .await
        .unwrap();
    let mut consumer = bus.consume("tamga.verify", 1, "v").await.unwrap();
    let held = next(&mut consumer).await;
    assert_eq!(bus.reconnects(), 0);

    close_connections(&vhost);

    // The consumer ends (an error, then None); the caller consumes again.
    let end = tokio::time::timeout(Duration::from_secs(15), consumer.next())
        .await
        .expect("the consumer notices the lost connection");
    match end {
        None => {}
        Some(Err(e)) => assert!(e.is_transient(), "{e:?}"),
        Some(Ok(d)) => panic!("unexpected delivery {:?}", d.message.message_id),
    }
    assert!(consumer.next().await.is_none(), "ended for good");

    wait_for_reconnects(&bus, 1).await;
    // The old delivery cannot be settled any more...
    let err = held.ack().await.expect_err("ack on a dead connection");
    assert!(err.is_transient(), "{err:?}");
    // ...and the broker redelivers it to the new consumer.
    let mut consumer = bus
        .consume("tamga.verify", 1, "v")
        .await
        .expect("consume after reconnect");
    let again = next(&mut consumer).await;
    assert_eq!(again.message.message_id.as_deref(), Some("r1"));
    assert!(again.redelivered);
    assert_eq!(
        again.delivery_count, 1,
        "a lost consumer counts as a delivery"
    );
    again.ack().await.unwrap();
    bus.publish("tamga.inbound", declaration("r2"))
        .await
        .expect("publish after reconnect");
    let d = next(&mut consumer).await;
    assert_eq!(d.message.message_id.as_deref(), Some("r2"));
    d.ack().await.unwrap();

    // A second loss is repaired as well.
    close_connections(&vhost);
    wait_for_reconnects(&bus, 2).await;
    bus.publish("tamga.inbound", declaration("r3"))
        .await
        .expect("publish after the second reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_publishes_survive_connection_loss() {
    // Publishers retry transient errors as the pipeline does, while the
    // broker drops the connection under them: every message they published
    // (retried until confirmed) must be in the queue.
    let vhost = Arc::new(TestVhost::create());
    let bus = Arc::new(vhost.connect().await);
    bus.declare(&tamga_topology(5)).await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for p in 0..8 {
        let bus = bus.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut transient = 0u32;
            let mut published = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = format!("p{p}-{i}");
                i += 1;
                loop {
                    match bus.publish("tamga.inbound", declaration(&id)).await {
                        Ok(()) => break,
                        Err(e) if e.is_transient() => {
                            transient += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("{id}: {e}"),
                    }
                }
                published.push(id);
            }
            (published, transient)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = vhost.clone();
    tokio::task::spawn_blocking(move || close_connections(&v))
        .await
        .unwrap();
    wait_for_reconnects(&bus, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut transient = 0;
    let mut expected = BTreeSet::new();
    for t in tasks {
        let (published, errors) = t.await.unwrap();
        transient += errors;
        expected.extend(published);
    }
    let mut consumer = bus.consume("tamga.verify", 200, "v").await.unwrap();
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    while !expected.is_subset(&seen) {
        let d = next(&mut consumer).await;
        let id = d.message.message_id.clone().unwrap();
        assert!(expected.contains(&id), "{id} was never published");
        if !seen.insert(id) {
            duplicates += 1;
        }
        d.ack().await.unwrap();
    }
    eprintln!(
        "{} messages, {transient} transient publish errors retried, {duplicates} duplicates, {} reconnects",
        expected.len(),
        bus.reconnects()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definitions_file_imports_and_matches_the_declarations() {
    let vhost = TestVhost::create();
    let mut defs: serde_json::Value =
        serde_json::from_str(include_str!("../../../infra/rabbitmq/definitions.json")).unwrap();
    // The file is for vhost "/": point it at this test's vhost.
    defs["vhosts"] = serde_json::json!([{ "name": vhost.name }]);
    for section in ["exchanges", "queues", "bindings"] {
        for item in defs[section].as_array_mut().unwrap() {
            item["vhost"] = serde_json::Value::from(vhost.name.clone());
        }
    }
    let path = std::env::temp_dir().join(format!("{}.json", vhost.name));
    std::fs::write(&path, serde_json::to_vec(&defs).unwrap()).unwrap();
    rabbitmqctl(&["-q", "import_definitions", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);

    let bus = vhost.connect().await;
    // The broker compares arguments on re-declaration: the code's
    // declarations are equivalent to the imported file's.
    bus.declare(&tamga_topology(DEFAULT_STAGE_DELIVERY_LIMIT))
        .await
        .expect("the code declares what the file defines");
    bus.publish("tamga.inbound", declaration("d1"))
        .await
        .unwrap();
    let mut c = bus.consume("tamga.verify", 1, "v").await.unwrap();
    next(&mut c).await.dead_letter().await.unwrap();
    let mut dlq = bus.consume("tamga.verify.dlq", 1, "d").await.unwrap();
    next(&mut dlq).await.ack().await.unwrap();
    // A different limit is a different queue to RabbitMQ.
    let other = bus
        .declare(&tamga_topology(DEFAULT_STAGE_DELIVERY_LIMIT + 1))
        .await;
    eprintln!("re-declaring with another delivery limit: {other:?}");
    assert!(matches!(other, Err(BusError::Topology(_))), "{other:?}");
    assert!(next_within(&mut c, 300).await.is_none());
}

#[tokio::test]
async fn an_unreachable_broker_is_a_clear_transient_error() {
    let opts = AmqpOptions {
        connect_timeout: Duration::from_secs(3),
        ..AmqpOptions::default()
    };
    let started = Instant::now();
    let err = AmqpBus::connect("amqp://guest:guest@127.0.0.1:1/%2f", opts)
        .await
        .expect_err("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, BusError::Unavailable(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(
        !text.contains("guest:guest"),
        "no credentials in errors: {text}"
    );
}

/// Every confirmed publish is routed, at every concurrency, on both buses;
/// the rate is printed (`--nocapture`; `TAMGA_BUS_BENCH_N=2048` for a
/// steadier figure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_throughput_with_confirms() {
    let vhost = TestVhost::create();
    let wide = AmqpOptions {
        publisher_channels: 32,
        ..AmqpOptions::default()
    };
    let runs: Vec<(&str, Arc<dyn Bus>, usize)> = vec![
        ("rabbitmq", Arc::new(vhost.connect().await), 1),
        (
            "rabbitmq, 8 publisher channels",
            Arc::new(vhost.connect().await),
            16,
        ),
        (
            "rabbitmq, 32 publisher channels",
            Arc::new(vhost.connect_with(wide).await),
            64,
        ),
        ("memory", Arc::new(MemoryBus::new()), 1),
        ("memory", Arc::new(MemoryBus::new()), 16),
    ];
    for (name, bus, concurrency) in runs {
        bus.declare(&tamga_topology(5)).await.unwrap();
        let n: usize = std::env::var("TAMGA_BUS_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for t in 0..concurrency {
            let bus = bus.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..n / concurrency {
                    let m = Message {
                        body: vec![b'x'; 25 * 1024], // a declaration's size
                        routing_key: "kz.az".into(),
                        message_id: Some(format!("c{t}-{i}")),
                        ..Message::default()
                    };
                    bus.publish("tamga.inbound", m).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let rate = n as f64 / started.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {rate:.0} msg/s (25 KiB, persistent, quorum queue, each publish awaiting \
             its confirm, {concurrency} concurrent publishers)"
        );
    }
}
