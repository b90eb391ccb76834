//! Test helpers: a RabbitMQ vhost per test, and small waits.
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tamga_bus::{AmqpBus, AmqpOptions, Consumer, Delivery};

/// Where the tests expect RabbitMQ (guest/guest); CI starts it.
pub fn broker_addr() -> String {
    std::env::var("TAMGA_TEST_AMQP_ADDR").unwrap_or_else(|_| "127.0.0.1:5672".into())
}

/// Runs `rabbitmqctl` (with a time limit) and panics with its output on
/// failure.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg("rabbitmqctl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run rabbitmqctl {args:?}: {e} (is rabbitmq-server installed?)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed ({}): {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A vhost of its own for one test, deleted (best effort) when dropped, so
/// tests can run in parallel with the real `tamga_topology` names.
pub struct TestVhost {
    pub name: String,
}

impl TestVhost {
    pub fn create() -> Self {
        let addr = broker_addr();
        if let Err(e) = TcpStream::connect_timeout(
            &addr.parse().expect("TAMGA_TEST_AMQP_ADDR is host:port"),
            Duration::from_secs(3),
        ) {
            panic!(
                "RabbitMQ is not reachable at {addr} ({e}). The AMQP tests need a running broker \
                 with guest/guest: start it (`service rabbitmq-server start`) — CI does."
            );
        }
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "tamga-test-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            nanos
        );
        rabbitmqctl(&["-q", "add_vhost", &name]);
        let vhost = Self { name };
        rabbitmqctl(&[
            "-q",
            "set_permissions",
            "-p",
            &vhost.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ]);
        vhost
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@{}/{}", broker_addr(), self.name)
    }

    pub async fn connect(&self) -> AmqpBus {
        self.connect_with(AmqpOptions::default()).await
    }

    pub async fn connect_with(&self, opts: AmqpOptions) -> AmqpBus {
        AmqpBus::connect(&self.url(), opts)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to RabbitMQ vhost {}: {e}", self.name))
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let _ = Command::new("timeout")
            .arg("60")
            .arg("rabbitmqctl")
            .args(["-q", "delete_vhost", &self.name])
            .output();
    }
}

/// The next delivery within `ms`, or `None`; panics if the consumer ended.
pub async fn next_within(consumer: &mut Consumer, ms: u64) -> Option<Delivery> {
    match tokio::time::timeout(Duration::from_millis(ms), consumer.next()).await {
        Err(_) => None,
        Ok(Some(Ok(d))) => Some(d),
        Ok(Some(Err(e))) => panic!("consumer failed: {e}"),
        Ok(None) => panic!("consumer ended"),
    }
}

/// The next delivery; panics after 15 s.
pub async fn next(consumer: &mut Consumer) -> Delivery {
    next_within(consumer, 15_000)
        .await
        .expect("a delivery within 15 s")
}
