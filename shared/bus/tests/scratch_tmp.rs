#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use std::time::Duration;
use tamga_bus::*;
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let vhost = common::TestVhost::create();
    let bus = vhost.connect().await;
    // (b) at-least-once with a DLX that routes nowhere, binding added later
    let t = Topology {
        exchanges: vec![
            ExchangeSpec {
                name: "dlx".into(),
                kind: ExchangeKind::Direct,
            },
            ExchangeSpec {
                name: "in".into(),
                kind: ExchangeKind::Direct,
            },
        ],
        queues: vec![
            QueueSpec {
                name: "q".into(),
                quorum: true,
                delivery_limit: Some(1),
                dead_letter_exchange: Some("dlx".into()),
                dead_letter_routing_key: Some("q".into()),
            },
            QueueSpec::quorum("q.dlq"),
        ],
        bindings: vec![BindingSpec {
            exchange: "in".into(),
            queue: "q".into(),
            routing_key: "k".into(),
        }],
    };
    bus.declare(&t).await.unwrap();
    bus.publish("in", Message::new("k", "hello")).await.unwrap();
    let mut c = bus.consume("q", 1, "c").await.unwrap();
    let d = common::next(&mut c).await;
    d.dead_letter().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "{}",
        common::rabbitmqctl(&[
            "list_queues",
            "-p",
            &vhost.name,
            "name",
            "messages",
            "messages_ready",
            "messages_unacknowledged"
        ])
    );
    bus.declare(&Topology {
        bindings: vec![BindingSpec {
            exchange: "dlx".into(),
            queue: "q.dlq".into(),
            routing_key: "q".into(),
        }],
        ..Topology::default()
    })
    .await
    .unwrap();
    let mut dlq = bus.consume("q.dlq", 1, "d").await.unwrap();
    let started = std::time::Instant::now();
    match common::next_within(&mut dlq, 200_000).await {
        Some(d) => println!(
            "DLQ got it after {:?}: {:?}",
            started.elapsed(),
            d.message.headers
        ),
        None => println!("DLQ never got it"),
    }
}
