//! One suite, run against both implementations: the in-process bus and
//! RabbitMQ (a vhost per test). The cases only use the `Bus` trait, so the
//! two must behave the same for them to pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod cases {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use tamga_bus::{
        death_headers, tamga_topology, BindingSpec, Bus, BusError, HeaderValue, Message, QueueSpec,
        Topology,
    };

    use crate::common::{next, next_within};

    /// Silence for this long means "nothing more is coming".
    const QUIET_MS: u64 = 700;

    fn declaration(id: &str, route: &str) -> Message {
        Message {
            body: format!("<Declaration id=\"{id}\"/>").into_bytes(),
            routing_key: route.into(),
            message_id: Some(id.into()),
            ..Message::default()
        }
    }

    /// Extra queues the tests bind to the destination exchanges.
    fn destinations() -> Topology {
        Topology {
            exchanges: vec![],
            queues: vec![
                QueueSpec::quorum("test.outbound.az"),
                QueueSpec::quorum("test.rejected.kz"),
            ],
            bindings: vec![
                BindingSpec {
                    exchange: "tamga.outbound".into(),
                    queue: "test.outbound.az".into(),
                    routing_key: "az".into(),
                },
                BindingSpec {
                    exchange: "tamga.rejected".into(),
                    queue: "test.rejected.kz".into(),
                    routing_key: "kz.*".into(),
                },
            ],
        }
    }

    pub async fn topology_is_declared_idempotently(bus: &dyn Bus) {
        let t = tamga_topology(5);
        bus.declare(&t).await.expect("declare");
        bus.declare(&t).await.expect("declaring again is fine");
        // Every route of the contract reaches a queue.
        for (exchange, key) in [
            ("tamga.inbound", "kz.az"),
            ("tamga.stages", "countersign"),
            ("tamga.stages", "forward"),
            ("tamga.dlx", "tamga.verify"),
            ("tamga.dlx", "tamga.countersign"),
            ("tamga.dlx", "tamga.forward"),
        ] {
            bus.publish(exchange, declaration("x", key))
                .await
                .unwrap_or_else(|e| panic!("{exchange} {key}: {e}"));
        }
        for queue in [
            "tamga.verify",
            "tamga.countersign",
            "tamga.forward",
            "tamga.verify.dlq",
            "tamga.countersign.dlq",
            "tamga.forward.dlq",
        ] {
            let mut c = bus.consume(queue, 10, "t").await.expect("consume");
            next(&mut c).await.ack().await.expect("ack");
        }
        // The same name with other arguments is a fatal topology error.
        let mut changed = tamga_topology(5);
        for q in &mut changed.queues {
            if q.name == "tamga.verify.dlq" {
                q.quorum = false;
            }
        }
        let err = bus
            .declare(&changed)
            .await
            .expect_err("inequivalent re-declaration");
        assert!(matches!(err, BusError::Topology(_)), "{err:?}");
        assert!(!err.is_transient());
        // The bus is still usable afterwards.
        bus.declare(&t).await.expect("declare after a refused one");
    }

    pub async fn publish_consume_ack_round_trips_every_field(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        let mut headers = BTreeMap::new();
        headers.insert("origin".to_string(), HeaderValue::Str("KZ".into()));
        headers.insert("attempt".to_string(), HeaderValue::Int(-42));
        headers.insert(
            "digest".to_string(),
            HeaderValue::Bytes(vec![0, 159, 146, 150, 255]),
        );
        headers.insert("lrn".to_string(), HeaderValue::Str("Қазақстан-№1".into()));
        let sent = Message {
            body: b"<Declaration>\xd2\x9a</Declaration>".to_vec(),
            routing_key: "kz.az".into(),
            message_id: Some("decl-0001".into()),
            correlation_id: Some("corr-7".into()),
            headers,
            timestamp_ms: Some(1_767_225_600_123),
        };
        bus.publish("tamga.inbound", sent.clone())
            .await
            .expect("publish");
        let mut c = bus.consume("tamga.verify", 1, "verifier").await.unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.message, sent);
        assert_eq!(d.exchange, "tamga.inbound");
        assert!(!d.redelivered);
        assert_eq!(d.delivery_count, 0);
        d.ack().await.expect("ack");
        assert!(
            next_within(&mut c, QUIET_MS).await.is_none(),
            "acked means gone"
        );
        drop(c);
        let mut c = bus.consume("tamga.verify", 1, "verifier").await.unwrap();
        assert!(
            next_within(&mut c, QUIET_MS).await.is_none(),
            "acked means gone for good"
        );
    }

    pub async fn topic_routing_follows_amqp_wildcards(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        bus.declare(&destinations()).await.unwrap();
        for route in ["kz.az", "tr.kg"] {
            bus.publish("tamga.inbound", declaration(route, route))
                .await
                .unwrap();
        }
        let mut verify = bus.consume("tamga.verify", 10, "v").await.unwrap();
        let mut got = BTreeSet::new();
        for _ in 0..2 {
            let d = next(&mut verify).await;
            got.insert(d.message.routing_key.clone());
            d.ack().await.unwrap();
        }
        assert_eq!(
            got,
            BTreeSet::from(["kz.az".to_string(), "tr.kg".to_string()])
        );

        bus.publish("tamga.outbound", declaration("o1", "az"))
            .await
            .unwrap();
        let err = bus
            .publish("tamga.outbound", declaration("o2", "tr"))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Unroutable(_)), "{err:?}");
        bus.publish("tamga.rejected", declaration("r1", "kz.az"))
            .await
            .unwrap();
        for key in ["kz", "kz.az.x", "tr.az"] {
            let err = bus
                .publish("tamga.rejected", declaration("r2", key))
                .await
                .unwrap_err();
            assert!(matches!(err, BusError::Unroutable(_)), "{key}: {err:?}");
        }
        let mut out = bus.consume("test.outbound.az", 10, "o").await.unwrap();
        let d = next(&mut out).await;
        assert_eq!(d.message.message_id.as_deref(), Some("o1"));
        d.ack().await.unwrap();
        assert!(next_within(&mut out, QUIET_MS).await.is_none());
        let mut rej = bus.consume("test.rejected.kz", 10, "r").await.unwrap();
        let d = next(&mut rej).await;
        assert_eq!(d.message.routing_key, "kz.az");
        d.ack().await.unwrap();
        assert!(next_within(&mut rej, QUIET_MS).await.is_none());
    }

    pub async fn requeues_count_and_the_limit_dead_letters(bus: &dyn Bus) {
        const LIMIT: u32 = 2;
        bus.declare(&tamga_topology(LIMIT)).await.unwrap();
        bus.publish("tamga.stages", declaration("poison", "countersign"))
            .await
            .unwrap();
        let mut c = bus.consume("tamga.countersign", 1, "c").await.unwrap();
        // Delivered with counts 0..=LIMIT; the requeue that makes the count
        // exceed the limit dead-letters it.
        for expected in 0..=LIMIT {
            let d = next(&mut c).await;
            assert_eq!(d.message.message_id.as_deref(), Some("poison"));
            assert_eq!(d.delivery_count, expected);
            assert_eq!(d.redelivered, expected > 0);
            d.requeue().await.expect("requeue");
        }
        assert!(
            next_within(&mut c, QUIET_MS).await.is_none(),
            "no longer in the stage queue"
        );
        let mut dlq = bus
            .consume("tamga.countersign.dlq", 1, "dlq")
            .await
            .unwrap();
        let d = next(&mut dlq).await;
        assert_eq!(d.message.message_id.as_deref(), Some("poison"));
        assert_eq!(d.message.body, declaration("poison", "").body);
        assert_eq!(d.exchange, "tamga.dlx");
        assert_eq!(d.message.routing_key, "tamga.countersign");
        assert_eq!(d.delivery_count, 0);
        let h = &d.message.headers;
        assert_eq!(
            h.get(death_headers::REASON).and_then(HeaderValue::as_str),
            Some("delivery_limit"),
            "{h:?}"
        );
        assert_eq!(
            h.get(death_headers::QUEUE).and_then(HeaderValue::as_str),
            Some("tamga.countersign")
        );
        assert_eq!(
            h.get(death_headers::EXCHANGE).and_then(HeaderValue::as_str),
            Some("tamga.stages")
        );
        d.ack().await.unwrap();
    }

    pub async fn dead_letter_goes_to_the_dlq_at_once(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        bus.publish("tamga.inbound", declaration("bad", "kz.az"))
            .await
            .unwrap();
        let mut c = bus.consume("tamga.verify", 1, "v").await.unwrap();
        next(&mut c).await.dead_letter().await.expect("dead_letter");
        assert!(next_within(&mut c, QUIET_MS).await.is_none());
        let mut dlq = bus.consume("tamga.verify.dlq", 1, "dlq").await.unwrap();
        let d = next(&mut dlq).await;
        assert_eq!(d.message.message_id.as_deref(), Some("bad"));
        assert_eq!(d.message.routing_key, "tamga.verify");
        assert_eq!(
            d.message
                .headers
                .get(death_headers::REASON)
                .and_then(HeaderValue::as_str),
            Some("rejected")
        );
        assert!(!d.redelivered);
        d.ack().await.unwrap();
    }

    pub async fn dropped_consumer_redelivers_its_unacked(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        bus.publish("tamga.stages", declaration("held", "forward"))
            .await
            .unwrap();
        let mut c = bus.consume("tamga.forward", 1, "f").await.unwrap();
        let held = next(&mut c).await;
        assert!(!held.redelivered);
        drop(c); // like a crashed worker's channel
        let mut c = bus.consume("tamga.forward", 1, "f2").await.unwrap();
        let again = next(&mut c).await;
        assert_eq!(again.message.message_id.as_deref(), Some("held"));
        assert!(again.redelivered);
        // RabbitMQ 3.10 quorum queues count a return by a closed channel.
        assert_eq!(again.delivery_count, 1);
        // The old delivery's channel is gone: settling it fails, transiently.
        let err = held.ack().await.expect_err("acking on a closed channel");
        assert!(err.is_transient(), "{err:?}");
        again.ack().await.unwrap();
        assert!(next_within(&mut c, QUIET_MS).await.is_none());
    }

    pub async fn dropped_delivery_is_requeued(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        bus.publish("tamga.inbound", declaration("dropped", "kz.az"))
            .await
            .unwrap();
        let mut c = bus.consume("tamga.verify", 1, "v").await.unwrap();
        drop(next(&mut c).await);
        let d = next(&mut c).await;
        assert_eq!(d.message.message_id.as_deref(), Some("dropped"));
        assert!(d.redelivered);
        assert_eq!(d.delivery_count, 1);
        d.ack().await.unwrap();
    }

    pub async fn prefetch_is_respected(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        for i in 0..5 {
            bus.publish("tamga.inbound", declaration(&format!("p{i}"), "kz.az"))
                .await
                .unwrap();
        }
        let mut c = bus.consume("tamga.verify", 2, "v").await.unwrap();
        let first = next(&mut c).await;
        let second = next(&mut c).await;
        assert!(
            next_within(&mut c, QUIET_MS).await.is_none(),
            "a third while two are unacked"
        );
        first.ack().await.unwrap();
        let third = next(&mut c).await;
        assert!(
            next_within(&mut c, QUIET_MS).await.is_none(),
            "still two unacked"
        );
        second.ack().await.unwrap();
        third.ack().await.unwrap();
        let mut ids = BTreeSet::new();
        for _ in 0..2 {
            let d = next(&mut c).await;
            ids.insert(d.message.message_id.clone().unwrap());
            d.ack().await.unwrap();
        }
        assert_eq!(ids, BTreeSet::from(["p3".to_string(), "p4".to_string()]));
    }

    pub async fn unroutable_and_unknown_exchange_are_refused(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        let err = bus
            .publish("tamga.outbound", declaration("u", "zz"))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Unroutable(_)), "{err:?}");
        // Certainly not enqueued, and again would give the same answer.
        assert!(!err.is_transient());
        let err = bus
            .publish("tamga.stages", declaration("u", "nowhere"))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Unroutable(_)), "{err:?}");
        let err = bus
            .publish("tamga.missing", declaration("u", "kz.az"))
            .await
            .unwrap_err();
        assert!(matches!(err, BusError::Topology(_)), "{err:?}");
        let err = bus.consume("tamga.missing", 1, "m").await.unwrap_err();
        assert!(matches!(err, BusError::Topology(_)), "{err:?}");
        // None of it broke publishing.
        bus.publish("tamga.inbound", declaration("ok", "kz.az"))
            .await
            .expect("publish after refusals");
    }

    pub async fn concurrent_publishes_are_each_confirmed_or_refused(bus: &dyn Bus) {
        // Interleaved routable and unroutable publishes: each must get its own
        // verdict (a return credited to the wrong publish would lose one).
        bus.declare(&tamga_topology(5)).await.unwrap();
        let bus: Arc<&dyn Bus> = Arc::new(bus);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let routable = i % 2 == 0;
            let (exchange, key) = if routable {
                ("tamga.inbound", "kz.az")
            } else {
                ("tamga.outbound", "nowhere")
            };
            let bus = bus.clone();
            tasks.push(async move {
                let r = bus
                    .publish(exchange, declaration(&format!("m{i}"), key))
                    .await;
                (i, routable, r)
            });
        }
        let results = futures_util::future::join_all(tasks).await;
        let mut expected = BTreeSet::new();
        for (i, routable, r) in results {
            if routable {
                r.unwrap_or_else(|e| panic!("m{i}: {e}"));
                expected.insert(format!("m{i}"));
            } else {
                let err = r.expect_err("unroutable must not be confirmed");
                assert!(matches!(err, BusError::Unroutable(_)), "m{i}: {err:?}");
            }
        }
        let mut c = bus.consume("tamga.verify", 50, "v").await.unwrap();
        let mut got = BTreeSet::new();
        while got.len() < expected.len() {
            let d = next(&mut c).await;
            assert!(
                got.insert(d.message.message_id.clone().unwrap()),
                "duplicate"
            );
            d.ack().await.unwrap();
        }
        assert_eq!(got, expected);
        assert!(next_within(&mut c, QUIET_MS).await.is_none());
    }

    pub async fn cancelled_next_loses_nothing(bus: &dyn Bus) {
        bus.declare(&tamga_topology(5)).await.unwrap();
        let mut c = bus.consume("tamga.verify", 1, "v").await.unwrap();
        // Many cancelled waits, then a message: it must still arrive.
        for _ in 0..20 {
            assert!(next_within(&mut c, 5).await.is_none());
        }
        bus.publish("tamga.inbound", declaration("late", "kz.az"))
            .await
            .unwrap();
        let d = next(&mut c).await;
        assert_eq!(d.message.message_id.as_deref(), Some("late"));
        assert_eq!(d.delivery_count, 0);
        d.ack().await.unwrap();
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    let bus = tamga_bus::MemoryBus::new();
                    super::cases::$case(&bus).await;
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let vhost = crate::common::TestVhost::create();
                    let bus = vhost.connect().await;
                    super::cases::$case(&bus).await;
                    drop(bus);
                }
            )*
        }
    };
}

suite!(
    topology_is_declared_idempotently,
    publish_consume_ack_round_trips_every_field,
    topic_routing_follows_amqp_wildcards,
    requeues_count_and_the_limit_dead_letters,
    dead_letter_goes_to_the_dlq_at_once,
    dropped_consumer_redelivers_its_unacked,
    dropped_delivery_is_requeued,
    prefetch_is_respected,
    unroutable_and_unknown_exchange_are_refused,
    concurrent_publishes_are_each_confirmed_or_refused,
    cancelled_next_loses_nothing,
);
