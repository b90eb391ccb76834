#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Fault tests: the workers run as child processes (`tamga run --config
//! FILE`) against the local RabbitMQ (a fresh vhost per test) and PostgreSQL
//! (a fresh database per test), and are disturbed — killed with SIGKILL, the
//! broker restarted, the database stopped, poison messages, a burst. Each
//! test counts in against out: every declaration gets exactly one result
//! (accepted on `tamga.outbound.<to>` or rejected on `tamga.rejected.<from>`;
//! a redelivery of the *same* `tamga:<id>` message is allowed and reported),
//! nothing is lost, the audit counts agree, and `tamga audit verify` passes.
//!
//! These tests stop and restart shared services: run them alone and
//! serially (`make faults`, or `cargo nextest run -p tamga --test faults -j 1`
//! / `cargo test -p tamga --test faults -- --test-threads=1`). Every test is
//! named `faults::fault_*` so that the workspace run can skip them.
//!
//! Two of them drive the broker gateway (`tamga serve` on RabbitMQ and PostgreSQL) over
//! HTTP: RabbitMQ stopped during submissions (503 with Retry-After while it is down; every
//! 202 decided exactly once afterwards), and the process killed between the publisher
//! confirm and the HTTP answer (the test hook `TAMGA_TEST_ABORT_AFTER_CONFIRM=1`; the retry
//! with the same Idempotency-Key gets the same id, and the declaration is decided once).
//!
//! A failing test prints the tail of every worker's stderr; `FAULT_LOGS=1`
//! prints it on success too. `FAULT_BURST=N` changes the size of the burst.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tamga_bus::{AmqpBus, AmqpOptions, Bus, HeaderValue, Message};
use tamga_declaration::{sample, SampleSpec};
use tamga_dsig::{sign_enveloped, DigestAlgorithm, SignOptions, SigningKey};
use tamga_pki::{generate, BrokerKind, DemoPki, DemoPkiOptions};
use tamga_xml::ParseLimits;

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");
/// Countries of the demo PKI; the site countersigns for all of them.
const COUNTRIES: [&str; 3] = ["KZ", "AZ", "TR"];
const ROUTES: [(&str, &str); 6] = [
    ("KZ", "AZ"),
    ("AZ", "TR"),
    ("TR", "KZ"),
    ("KZ", "TR"),
    ("AZ", "KZ"),
    ("TR", "AZ"),
];

// --- fixtures ---------------------------------------------------------------

fn pki() -> &'static DemoPki {
    static PKI: OnceLock<DemoPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        generate(&DemoPkiOptions::new(COUNTRIES, now)).expect("demo PKI")
    })
}

fn unique(prefix: &str) -> String {
    let n = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{prefix}_{}_{:x}", std::process::id(), n)
}

/// One declaration as a broker submits it.
#[derive(Debug, Clone)]
struct Doc {
    id: String,
    route: String,
    from: String,
    to: String,
    body: Vec<u8>,
    forged: bool,
}

impl Doc {
    /// The queue its one result must land on.
    fn expected_queue(&self) -> String {
        if self.forged {
            format!("tamga.rejected.{}", self.from.to_ascii_lowercase())
        } else {
            format!("tamga.outbound.{}", self.to.to_ascii_lowercase())
        }
    }
}

/// Signs one small declaration with the origin's ECDSA broker.
fn sign_one(key: &SigningKey, certs: &[Vec<u8>], from: &str, to: &str, seq: u64) -> Vec<u8> {
    let doc = sample(&SampleSpec::new(from, to, seq, 4));
    sign_enveloped(
        doc.as_bytes(),
        key,
        &SignOptions {
            certificates: certs.to_vec(),
            digest: DigestAlgorithm::Sha256,
            xades: false,
            signing_time: time::OffsetDateTime::now_utc(),
            limits: ParseLimits::default(),
        },
    )
    .unwrap()
}

/// `n` declarations over six corridors, every tenth forged (a goods code
/// changed after signing: `digest_mismatch`). Signed on every core.
fn declarations(tag: &str, n: usize) -> Vec<Doc> {
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2)
        .min(8);
    let mut out: Vec<Option<Doc>> = vec![None; n];
    std::thread::scope(|s| {
        let chunks: Vec<_> = out
            .chunks_mut(n.div_ceil(threads).max(1))
            .enumerate()
            .map(|(c, chunk)| (c * n.div_ceil(threads).max(1), chunk))
            .collect();
        for (start, chunk) in chunks {
            s.spawn(move || {
                let mut keys = HashMap::new();
                for cc in COUNTRIES {
                    let c = pki().country(cc).unwrap();
                    let b = c.broker(BrokerKind::Ecdsa).unwrap();
                    let key = SigningKey::from_pkcs8_pem(b.key_pkcs8_pem.as_bytes()).unwrap();
                    let certs = vec![b.cert_der.clone(), c.issuing.cert_der.clone()];
                    keys.insert(cc, (key, certs));
                }
                for (k, slot) in chunk.iter_mut().enumerate() {
                    let i = start + k;
                    let (from, to) = ROUTES[i % ROUTES.len()];
                    let (key, certs) = &keys[from];
                    let signed = sign_one(key, certs, from, to, 1_000_000 + i as u64);
                    let forged = i % 10 == 7;
                    let body = if forged {
                        String::from_utf8(signed)
                            .unwrap()
                            .replacen("<HSCode>", "<HSCode>9", 1)
                            .into_bytes()
                    } else {
                        signed
                    };
                    *slot = Some(Doc {
                        id: format!("{tag}-{i}"),
                        route: format!("{}.{}", from.to_ascii_lowercase(), to.to_ascii_lowercase()),
                        from: from.into(),
                        to: to.into(),
                        body,
                        forged,
                    });
                }
            });
        }
    });
    out.into_iter().map(Option::unwrap).collect()
}

fn run(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"))
}

fn rabbitmqctl(args: &[&str]) {
    let out = run("rabbitmqctl", args);
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn pg_admin(db: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 user=postgres dbname={db}"),
        tokio_postgres::NoTls,
    )
    .await
    .expect("PostgreSQL must run on 127.0.0.1:5432 (make services)");
    tokio::spawn(conn);
    client
}

/// Worker logs of one test: kept after a worker is killed, printed (the
/// tail of each) when the test fails.
type LogBook = Arc<Mutex<Vec<(String, Arc<Mutex<Vec<String>>>)>>>;

/// A fresh vhost, a fresh database and the demo PKI on disk; all removed
/// on drop.
struct Site {
    dir: tempfile::TempDir,
    vhost: String,
    db: String,
    logs: LogBook,
}

impl Site {
    async fn new(tag: &str) -> Self {
        let vhost = unique(&format!("tamga-fault-{tag}"));
        rabbitmqctl(&["add_vhost", &vhost]);
        rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
        let db = unique(&format!("tamga_fault_{tag}"));
        pg_admin("postgres")
            .await
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        pki().write_to(dir.path()).unwrap();
        Site {
            dir,
            vhost,
            db,
            logs: Arc::default(),
        }
    }

    fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.vhost)
    }

    fn db_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.db)
    }

    /// Writes the site configuration for the worker `name`.
    fn config(&self, name: &str) -> PathBuf {
        let root = self.dir.path();
        let mut toml = format!(
            "[amqp]\nurl = \"{}\"\ndelivery_limit = 5\n\n\
             [database]\nurl = \"{}\"\n\n\
             [trust]\ndir = \"{}\"\n\n",
            self.amqp_url(),
            self.db_url(),
            root.join("trust").display()
        );
        for cc in COUNTRIES {
            let k = root.join("keys").join(cc);
            toml.push_str(&format!(
                "[[authority]]\ncountry = \"{cc}\"\nkey = \"{}\"\ncert = \"{}\"\nchain = [\"{}\"]\n\n",
                k.join("authority.key").display(),
                k.join("authority.pem").display(),
                k.join("issuing-ca.pem").display()
            ));
        }
        toml.push_str(&format!(
            "[worker]\nname = \"{name}\"\nconcurrency = 16\n\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n\n\
             [log]\nlevel = \"info\"\n"
        ));
        let path = root.join(format!("site-{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    }

    async fn bus(&self) -> Arc<AmqpBus> {
        Arc::new(
            AmqpBus::connect(&self.amqp_url(), AmqpOptions::default())
                .await
                .expect("RabbitMQ must run on 127.0.0.1:5672 (make services)"),
        )
    }

    /// Waits until `n` declarations have their `forwarded` event. Every result
    /// being seen downstream is not enough: a delivery whose result was published
    /// before an outage, and whose `forwarded` record then failed, is held in
    /// backoff (up to 5 s) and records it on its next try. Stopping the worker
    /// first hands that delivery back to the broker: nothing lost, but the trail
    /// is incomplete until another worker takes it, so `check_audit` would fail.
    async fn await_forwarded(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.audit_counts().await.get("forwarded").copied();
            if got.unwrap_or(0) >= n as u64 || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Audit events by stage, straight from the database.
    async fn audit_counts(&self) -> BTreeMap<String, u64> {
        let rows = pg_admin(&self.db)
            .await
            .query(
                "SELECT stage, count(*) FROM audit_events GROUP BY stage",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                let n: i64 = r.get(1);
                (r.get::<_, String>(0), n as u64)
            })
            .collect()
    }

    /// `tamga audit verify` must pass.
    fn audit_verify(&self) {
        let out = tamga()
            .args(["audit", "verify", "--config"])
            .arg(self.config("fault-audit"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("audit trail intact"),
            "tamga audit verify: {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Messages in each of the stage dead-letter queues.
    fn dlq_depths(&self) -> BTreeMap<String, u64> {
        let out = run(
            "rabbitmqctl",
            &["-q", "list_queues", "-p", &self.vhost, "name", "messages"],
        );
        assert!(out.status.success(), "rabbitmqctl list_queues");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (name, n) = (f.next()?, f.next()?.parse().ok()?);
                name.ends_with(".dlq").then(|| (name.to_string(), n))
            })
            .collect()
    }
}

impl Site {
    /// Nothing may have been dead-lettered.
    fn assert_dlqs_empty(&self) {
        let dlq = self.dlq_depths();
        assert_eq!(dlq.len(), 3, "the three stage DLQs: {dlq:?}");
        assert!(
            dlq.values().all(|n| *n == 0),
            "nothing may be dead-lettered: {dlq:?}"
        );
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // FAULT_LOGS=1 prints them on success too.
        if std::thread::panicking() || std::env::var_os("FAULT_LOGS").is_some() {
            for (name, log) in self.logs.lock().unwrap().iter() {
                let log = log.lock().unwrap();
                let from = log.len().saturating_sub(300);
                eprintln!(
                    "===== worker {name}: stderr ({} lines, last {}) =====",
                    log.len(),
                    log.len() - from
                );
                for l in &log[from..] {
                    eprintln!("{l}");
                }
            }
        }
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.vhost])
            .output();
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .output();
    }
}

/// The `tamga` binary, without the caller's `TAMGA_*` variables (an
/// override such as `TAMGA_AMQP_URL` must not redirect the workers away
/// from the test's vhost and database) and without colours.
fn tamga() -> Command {
    let mut c = Command::new(TAMGA);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TAMGA_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `tamga run --config FILE` as a child process; stderr drained into a log.
struct Worker {
    child: Child,
    name: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    /// Starts the worker and waits for its `ready` line.
    async fn start(site: &Site, name: &str) -> Worker {
        let config = site.config(name);
        let mut child = tamga()
            .args(["run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let ready = Arc::new(AtomicBool::new(false));
        let stderr = child.stderr.take().unwrap();
        {
            let (log, ready) = (log.clone(), ready.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let line = strip_ansi(&line);
                    if line.contains("ready") && !line.contains("not ready") {
                        ready.store(true, Ordering::SeqCst);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        site.logs
            .lock()
            .unwrap()
            .push((name.to_string(), log.clone()));
        let mut w = Worker {
            child,
            name: name.to_string(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ready.load(Ordering::SeqCst) {
            if let Ok(Some(status)) = w.child.try_wait() {
                panic!("worker {name} exited before `ready`: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "worker {name} did not log `ready` within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        w
    }

    /// The worker's metrics endpoint, from its `metrics endpoint` log line.
    fn metrics_addr(&self) -> String {
        let log = self.log.lock().unwrap();
        let line = log
            .iter()
            .find(|l| l.contains("metrics endpoint"))
            .unwrap_or_else(|| panic!("{} logged no metrics endpoint", self.name));
        let at = line.find("addr=").expect("addr= in the metrics line") + 5;
        line[at..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches('"')
            .to_string()
    }

    /// The sum of every sample of `metric` whose labels include all of
    /// `labels` (`name="value"` pairs), scraped from the running worker.
    fn metric(&self, metric: &str, labels: &[&str]) -> f64 {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(self.metrics_addr()).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.split(['{', ' ']).next() == Some(metric)
                    && labels.iter().all(|want| l.contains(want))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// SIGKILL, and reap.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM; the worker must stop by itself (in-flight work settled).
    async fn terminate(&mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "worker {} exited with {status} on SIGTERM",
                    self.name
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "worker {} did not stop within 30 s of SIGTERM",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

// --- publishing and collecting ----------------------------------------------

fn inbound(doc: &Doc) -> Message {
    Message {
        body: doc.body.clone(),
        routing_key: doc.route.clone(),
        message_id: Some(doc.id.clone()),
        correlation_id: None,
        headers: BTreeMap::new(),
        timestamp_ms: Some(tamga_pipeline::now_ms()),
    }
}

/// Publishes until confirmed, riding out broker restarts (the bus
/// reconnects by itself; a publish during the outage fails and is retried —
/// a duplicate is deduplicated by the pipeline by message id).
async fn publish_confirmed(bus: &AmqpBus, exchange: &str, message: Message, retries: &AtomicU64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut wait = Duration::from_millis(50);
    loop {
        match bus.publish(exchange, message.clone()).await {
            Ok(()) => return,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "publishing {:?} not confirmed for 120 s: {e}",
                    message.message_id
                );
                if retries.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("publish {:?}: {e}; again", message.message_id);
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Publishes `docs` on `tasks` concurrent publishers. The first `fast`
/// go as fast as confirms allow, the rest at `per_sec` (0: unpaced).
/// Returns the number of publish retries.
fn spawn_publisher(
    bus: Arc<AmqpBus>,
    docs: Arc<Vec<Doc>>,
    tasks: usize,
    fast: usize,
    per_sec: u64,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let retries = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut handles = Vec::new();
        for t in 0..tasks {
            let (bus, docs, retries) = (bus.clone(), docs.clone(), retries.clone());
            handles.push(tokio::spawn(async move {
                for i in (t..docs.len()).step_by(tasks) {
                    if per_sec > 0 && i >= fast {
                        let at = Duration::from_millis((i - fast) as u64 * 1000 / per_sec);
                        tokio::time::sleep_until((started + at).into()).await;
                    }
                    publish_confirmed(&bus, "tamga.inbound", inbound(&docs[i]), &retries).await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        retries.load(Ordering::Relaxed)
    })
}

#[derive(Debug, Clone)]
struct Seen {
    queues: Vec<String>,
    decision: Option<String>,
    first_at: Instant,
}

#[derive(Debug, Default)]
struct Tally {
    by_id: HashMap<String, Seen>,
    deliveries: u64,
    last_at: Option<Instant>,
}

/// Consumes every outbound and rejected queue of the site, re-consuming
/// whenever a consumer ends (broker restart), and tallies results by
/// message id.
struct Collector {
    tally: Arc<Mutex<Tally>>,
    reconsumes: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _bus: Arc<AmqpBus>,
}

impl Collector {
    async fn start(site: &Site) -> Self {
        let bus = site.bus().await;
        let tally: Arc<Mutex<Tally>> = Arc::default();
        let reconsumes = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for cc in COUNTRIES {
            let cc = cc.to_ascii_lowercase();
            for q in [
                format!("tamga.outbound.{cc}"),
                format!("tamga.rejected.{cc}"),
            ] {
                let (bus, tally, reconsumes) = (bus.clone(), tally.clone(), reconsumes.clone());
                tasks.push(tokio::spawn(async move {
                    let mut first = true;
                    loop {
                        // Not declared until the first worker starts: retry.
                        if let Ok(mut c) = bus.consume(&q, 256, "fault-collector").await {
                            if !first {
                                reconsumes.fetch_add(1, Ordering::Relaxed);
                            }
                            first = false;
                            while let Some(Ok(d)) = c.next().await {
                                let m = &d.message;
                                let id = m.message_id.clone().unwrap_or_default();
                                let decision =
                                    match m.headers.get(tamga_pipeline::headers::DECISION) {
                                        Some(HeaderValue::Str(s)) => Some(s.clone()),
                                        _ => None,
                                    };
                                {
                                    let mut t = tally.lock().unwrap();
                                    t.deliveries += 1;
                                    t.last_at = Some(Instant::now());
                                    t.by_id
                                        .entry(id)
                                        .or_insert_with(|| Seen {
                                            queues: Vec::new(),
                                            decision,
                                            first_at: Instant::now(),
                                        })
                                        .queues
                                        .push(q.clone());
                                }
                                // A failed ack is redelivered: a duplicate, counted.
                                let _ = d.ack().await;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }));
            }
        }
        Collector {
            tally,
            reconsumes,
            tasks,
            _bus: bus,
        }
    }

    fn distinct(&self) -> usize {
        self.tally.lock().unwrap().by_id.len()
    }

    /// Distinct results first seen between `from` and `to`.
    fn first_seen_between(&self, from: Instant, to: Instant) -> usize {
        self.tally
            .lock()
            .unwrap()
            .by_id
            .values()
            .filter(|s| s.first_at >= from && s.first_at < to)
            .count()
    }

    /// Waits until `n` distinct results arrived; panics after `within`.
    async fn wait_for(&self, n: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let got = self.distinct();
            if got >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "only {got} of {n} results within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for all `docs`, lingers for late duplicates, then checks that
    /// each got exactly one (distinct) result on the right queue and that
    /// nothing else arrived. Returns the number of duplicate deliveries.
    async fn settle(&self, docs: &[Doc], within: Duration) -> u64 {
        self.wait_for(docs.len(), within).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t = self.tally.lock().unwrap();
        let mut problems = Vec::new();
        for d in docs {
            let id = format!("tamga:{}", d.id);
            match t.by_id.get(&id) {
                None => problems.push(format!("{id}: no result")),
                Some(seen) => {
                    let want = d.expected_queue();
                    if seen.queues.iter().any(|q| *q != want) {
                        problems.push(format!(
                            "{id}: results on {:?}, expected {want} (forged: {})",
                            seen.queues, d.forged
                        ));
                    }
                    let decision = if d.forged { "rejected" } else { "accepted" };
                    if seen.decision.as_deref() != Some(decision) {
                        problems.push(format!("{id}: decision {:?}", seen.decision));
                    }
                }
            }
        }
        let known: std::collections::HashSet<String> =
            docs.iter().map(|d| format!("tamga:{}", d.id)).collect();
        for id in t.by_id.keys().filter(|id| !known.contains(*id)) {
            problems.push(format!("{id}: a result for no declaration"));
        }
        assert!(
            problems.is_empty(),
            "{} problems:\n{}",
            problems.len(),
            problems.join("\n")
        );
        let dups = t.deliveries - t.by_id.len() as u64;
        if dups > 0 {
            let redelivered: Vec<_> = t
                .by_id
                .iter()
                .filter(|(_, s)| s.queues.len() > 1)
                .map(|(id, s)| format!("{id}×{}", s.queues.len()))
                .take(20)
                .collect();
            eprintln!("duplicates (same message id, redelivered): {dups}: {redelivered:?}");
        }
        dups
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// After the worker stopped: the audit trail has exactly one event per
/// declaration and stage, and verifies.
async fn check_audit(site: &Site, docs: &[Doc], dead_lettered: u64) -> BTreeMap<String, u64> {
    let counts = site.audit_counts().await;
    let n = docs.len() as u64;
    let forged = docs.iter().filter(|d| d.forged).count() as u64;
    let c = |k: &str| counts.get(k).copied().unwrap_or(0);
    let expected = [
        ("received", n),
        ("verified", n - forged),
        ("rejected", forged),
        ("countersigned", n - forged),
        ("receipt_issued", forged),
        ("forwarded", n),
        ("dead_lettered", dead_lettered),
    ];
    for (stage, want) in expected {
        assert_eq!(c(stage), want, "audit events {stage:?}: {counts:?}");
    }
    site.audit_verify();
    counts
}

// --- PostgreSQL and RabbitMQ control ------------------------------------------

fn pg_version() -> String {
    let mut v: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("PostgreSQL from Debian (/etc/postgresql)")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    v.sort_by_key(|s| s.parse::<u32>().unwrap_or(0));
    v.pop().expect("a PostgreSQL cluster under /etc/postgresql")
}

fn pg_ctlcluster(action: &str, extra: &[&str]) -> bool {
    let version = pg_version();
    let mut args = vec!["--skip-systemctl-redirect", &version, "main", action];
    args.extend_from_slice(extra);
    if run("pg_ctlcluster", &args).status.success() {
        return true;
    }
    let mut args = vec![version.as_str(), "main", action];
    args.extend_from_slice(extra);
    run("pg_ctlcluster", &args).status.success()
}

fn pg_is_up() -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], 5432)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// PostgreSQL stopped for as long as this lives; started again on drop,
/// even when the test panics.
struct PgStopped {
    stopped_at: Instant,
}

impl PgStopped {
    fn stop() -> Self {
        assert!(
            pg_ctlcluster("stop", &["-m", "fast"]),
            "pg_ctlcluster stop failed"
        );
        PgStopped {
            stopped_at: Instant::now(),
        }
    }
}

impl Drop for PgStopped {
    fn drop(&mut self) {
        let ok = pg_ctlcluster("start", &[]);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !pg_is_up() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "PostgreSQL down for {:.1} s (restarted: {ok}, answering: {})",
            self.stopped_at.elapsed().as_secs_f64(),
            pg_is_up()
        );
        if !std::thread::panicking() {
            assert!(ok && pg_is_up(), "PostgreSQL did not come back");
        }
    }
}

/// The RabbitMQ application stopped for as long as this lives (every
/// connection dropped; vhosts and durable queues survive).
struct RabbitStopped;

impl RabbitStopped {
    fn stop() -> Self {
        rabbitmqctl(&["stop_app"]);
        RabbitStopped
    }
}

impl Drop for RabbitStopped {
    fn drop(&mut self) {
        let out = run("rabbitmqctl", &["start_app"]);
        if !std::thread::panicking() {
            assert!(
                out.status.success(),
                "rabbitmqctl start_app: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

// --- the broker gateway (`tamga serve`) ------------------------------------------

impl Site {
    /// The site configuration of `tamga serve`: the gateway on a free port, unlimited
    /// rates, and a short confirm timeout (a submission while the broker is down is
    /// answered 503 after one second rather than ten).
    fn gateway_config(&self, name: &str) -> PathBuf {
        let path = self.config(name);
        let mut toml = std::fs::read_to_string(&path).unwrap();
        toml = toml.replace(
            "delivery_limit = 5\n",
            "delivery_limit = 5\nconfirm_timeout_ms = 1000\n",
        );
        toml.push_str(
            "\n[gateway]\nlisten = \"127.0.0.1:0\"\nrate_per_second = 0\nretry_after_secs = 1\n",
        );
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// `tamga gateway token create`: the token alone on stdout.
    fn token(&self, broker: &str) -> String {
        let out = tamga()
            .args(["gateway", "token", "create", "--broker", broker, "--config"])
            .arg(self.gateway_config("token"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// `tamga serve --config FILE` on RabbitMQ and PostgreSQL (the gateway and the fused
/// workers in one process), with the address of its `ready on http://…` line.
struct Served {
    worker: Worker,
    addr: String,
}

impl Served {
    async fn start(site: &Site, name: &str, abort_after_confirm: bool) -> Served {
        let config = site.gateway_config(name);
        let mut cmd = tamga();
        cmd.args(["serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if abort_after_confirm {
            cmd.env("TAMGA_TEST_ABORT_AFTER_CONFIRM", "1");
        }
        let mut child = cmd.spawn().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let stderr = child.stderr.take().unwrap();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push(strip_ansi(&line));
                }
            });
        }
        site.logs
            .lock()
            .unwrap()
            .push((name.to_string(), log.clone()));
        let mut worker = Worker {
            child,
            name: name.to_string(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        let addr = loop {
            let found = worker.log.lock().unwrap().iter().find_map(|l| {
                l.split("ready on http://")
                    .nth(1)
                    .map(|rest| rest.chars().take_while(|c| !c.is_whitespace()).collect())
            });
            if let Some(addr) = found {
                break addr;
            }
            if let Ok(Some(status)) = worker.child.try_wait() {
                panic!("tamga serve {name} exited before `ready`: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "tamga serve {name}: no ready line in 90 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Served { worker, addr }
    }
}

/// One HTTP/1.1 exchange (`Connection: close`): status, headers (lower-case names), body;
/// `Err` when the connection ends without an answer.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<(String, String)>, Vec<u8>), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(body).await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("no answer ({} bytes)", raw.len()))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or("no status line")?;
        let hs = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Ok((status, hs, raw[split + 4..].to_vec()))
    };
    tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .map_err(|_| "no answer within 60 s".to_string())?
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `POST /v1/declarations` of `doc` under `key`.
async fn submit(
    addr: &str,
    token: &str,
    doc: &Doc,
    key: &str,
) -> Result<(u16, Vec<(String, String)>, Vec<u8>), String> {
    let auth = format!("Bearer {token}");
    http(
        addr,
        "POST",
        "/v1/declarations",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/xml"),
            ("X-Tamga-Origin", &doc.from),
            ("X-Tamga-Destination", &doc.to),
            ("Idempotency-Key", key),
        ],
        &doc.body,
    )
    .await
}

fn id_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

// --- the faults ---------------------------------------------------------------

/// The tests, in a module so that their full names (`faults::fault_…`) are
/// a token no other test in the workspace contains: the workspace run
/// without nextest skips them with `--skip faults::fault_` (a bare
/// `fault_` would also skip e.g. `…_default_is_…`).
mod faults {
    use super::*;

    /// SIGKILL the worker three times mid-flight (at ~25 %, ~50 %, ~75 % of
    /// the results), restarting it each time: every declaration is decided
    /// exactly once, and the audit trail verifies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_sigkill_worker_mid_flight() {
        let t0 = Instant::now();
        const N: usize = 400;
        let docs = Arc::new(declarations("kill", N));
        let site = Site::new("kill").await;
        let collector = Collector::start(&site).await;
        let mut worker = Worker::start(&site, "fault-1-a").await;
        let publisher = spawn_publisher(site.bus().await, docs.clone(), 4, N, 0);
        for (k, pct) in [25, 50, 75].into_iter().enumerate() {
            collector
                .wait_for(N * pct / 100, Duration::from_secs(120))
                .await;
            let at = collector.distinct();
            worker.kill();
            eprintln!("SIGKILL {} at {at}/{N} results", worker.name);
            worker = Worker::start(&site, &format!("fault-1-{}", (b'b' + k as u8) as char)).await;
        }
        let retries = publisher.await.unwrap();
        let dups = collector.settle(&docs, Duration::from_secs(180)).await;
        site.await_forwarded(docs.len(), Duration::from_secs(60))
            .await;
        worker.terminate().await;
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &docs, 0).await;
        eprintln!(
            "fault_sigkill_worker_mid_flight: {N} decided exactly once ({dups} duplicate deliveries, \
             {retries} publish retries), audit {counts:?}, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }

    /// Scale-out: three worker processes on the same queues share the load,
    /// and two of them are SIGKILLed mid-flight (at ~30 % and ~60 %) and
    /// restarted under new names. Every declaration is decided exactly once
    /// (one `countersigned` or `receipt_issued` event each: the decision is
    /// claimed before signing, across processes), and the audit trail — one
    /// hash chain per writer — verifies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_three_workers_share_the_load_through_kills() {
        let t0 = Instant::now();
        const N: usize = 600;
        let docs = Arc::new(declarations("scale", N));
        let site = Site::new("scale").await;
        let collector = Collector::start(&site).await;
        let mut workers = vec![
            Worker::start(&site, "scale-a").await,
            Worker::start(&site, "scale-b").await,
            Worker::start(&site, "scale-c").await,
        ];
        let publisher = spawn_publisher(site.bus().await, docs.clone(), 4, N, 0);
        for (k, pct) in [30, 60].into_iter().enumerate() {
            collector
                .wait_for(N * pct / 100, Duration::from_secs(180))
                .await;
            let at = collector.distinct();
            let mut victim = workers.remove(k);
            victim.kill();
            eprintln!("SIGKILL {} at {at}/{N} results", victim.name);
            workers.insert(
                k,
                Worker::start(&site, &format!("scale-{}2", (b'a' + k as u8) as char)).await,
            );
        }
        let retries = publisher.await.unwrap();
        let dups = collector.settle(&docs, Duration::from_secs(240)).await;
        for w in &workers {
            assert!(w.log_contains("ready"), "{} never became ready", w.name);
        }
        site.await_forwarded(docs.len(), Duration::from_secs(60))
            .await;
        for mut w in workers {
            w.terminate().await;
        }
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &docs, 0).await;
        eprintln!(
            "fault_three_workers_share_the_load_through_kills: {N} decided exactly once by 3 \
             processes through 2 kills ({dups} duplicate deliveries, {retries} publish retries), \
             audit {counts:?}, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }

    /// `rabbitmqctl stop_app`, 3 s, `start_app` at ~30 % of the results: the
    /// worker reconnects by itself (no restart) and finishes; so do the test's
    /// publisher (still publishing during the outage) and collectors.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_rabbitmq_restart_during_run() {
        let t0 = Instant::now();
        const N: usize = 300;
        let docs = Arc::new(declarations("mq", N));
        let site = Site::new("mq").await;
        let collector = Collector::start(&site).await;
        let mut worker = Worker::start(&site, "fault-2-a").await;
        // Two thirds at once (a backlog in flight when the broker goes), the
        // rest at 20/s: publishing goes on through the outage.
        let publisher = spawn_publisher(site.bus().await, docs.clone(), 4, 2 * N / 3, 20);
        collector
            .wait_for(N * 30 / 100, Duration::from_secs(120))
            .await;
        let at = collector.distinct();
        let down = Instant::now();
        let stopped = blocking(RabbitStopped::stop).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        blocking(move || drop(stopped)).await;
        eprintln!(
            "RabbitMQ stopped at {at}/{N} results, started again after {:.1} s",
            down.elapsed().as_secs_f64()
        );
        let retries = publisher.await.unwrap();
        let dups = collector.settle(&docs, Duration::from_secs(180)).await;
        let reconsumed = worker.metric("tamga_bus_reconnects_total", &[]);
        assert!(
            reconsumed >= 1.0,
            "the worker must count that it consumed again after the broker restart"
        );
        site.await_forwarded(docs.len(), Duration::from_secs(60))
            .await;
        worker.terminate().await;
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &docs, 0).await;
        eprintln!(
            "fault_rabbitmq_restart_during_run: {N} decided exactly once ({dups} duplicate deliveries, \
             {retries} publish retries, {} collector re-consumes, worker re-consumed {reconsumed} \
             stages), audit {counts:?}, {:.1} s",
            collector.reconsumes.load(Ordering::Relaxed),
            t0.elapsed().as_secs_f64()
        );
    }

    /// PostgreSQL stopped for 10 s at ~30 % of the results: the worker holds
    /// its deliveries and backs off (no delivery count burned: nothing in any
    /// dead-letter queue), then finishes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_postgres_down_for_10s() {
        let t0 = Instant::now();
        const N: usize = 300;
        let docs = Arc::new(declarations("pg", N));
        let site = Site::new("pg").await;
        let collector = Collector::start(&site).await;
        let mut worker = Worker::start(&site, "fault-3-a").await;
        let publisher = spawn_publisher(site.bus().await, docs.clone(), 4, N, 0);
        collector
            .wait_for(N * 30 / 100, Duration::from_secs(120))
            .await;
        let at = collector.distinct();
        let (down, up) = {
            let stopped = blocking(PgStopped::stop).await;
            let down = Instant::now();
            eprintln!("PostgreSQL stopped at {at}/{N} results");
            tokio::time::sleep(Duration::from_secs(10)).await;
            let up = Instant::now();
            blocking(move || drop(stopped)).await;
            (down, up)
        };
        // Nothing is forwarded without the store (a result published just
        // before the stop may still be in flight for a moment).
        let during = collector.first_seen_between(down + Duration::from_secs(1), up);
        assert_eq!(during, 0, "results while PostgreSQL was down");
        let retries = publisher.await.unwrap();
        let dups = collector.settle(&docs, Duration::from_secs(180)).await;
        let transient = worker.metric(
            "tamga_failures_total",
            &["class=\"transient\"", "source=\"store\""],
        );
        assert!(
            transient >= 1.0,
            "the worker must have held messages on transient store failures while PostgreSQL was down"
        );
        assert_eq!(
            worker.metric("tamga_dead_lettered_total", &[]),
            0.0,
            "nothing dead-lettered"
        );
        site.await_forwarded(docs.len(), Duration::from_secs(60))
            .await;
        worker.terminate().await;
        // A database outage must not burn delivery counts.
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &docs, 0).await;
        eprintln!(
            "fault_postgres_down_for_10s: {N} decided exactly once ({dups} duplicate deliveries, \
             {retries} publish retries, {transient} \
             transient store failures counted), audit {counts:?}, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }

    /// A message with routing key `garbage` and a valid declaration on
    /// `kz.k1` end in `tamga.verify.dlq` with `dead_lettered` audit events;
    /// 50 normal declarations around them are all decided.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_poison_message_dead_lettered() {
        let t0 = Instant::now();
        const N: usize = 50;
        let docs = Arc::new(declarations("poison", N));
        let site = Site::new("poison").await;
        let collector = Collector::start(&site).await;
        let mut worker = Worker::start(&site, "fault-4-a").await;
        let bus = site.bus().await;
        let retries = AtomicU64::new(0);
        let valid = docs.iter().find(|d| !d.forged && d.from == "KZ").unwrap();
        let poison = [
            ("poison-garbage", "garbage", b"<x/>".to_vec()),
            ("poison-kz-k1", "kz.k1", valid.body.clone()),
        ];
        for (i, d) in docs.iter().enumerate() {
            if i == N / 3 || i == 2 * N / 3 {
                let (id, route, body) = &poison[usize::from(i != N / 3)];
                let mut m = Message::new(*route, body.clone());
                m.message_id = Some(id.to_string());
                publish_confirmed(&bus, "tamga.inbound", m, &retries).await;
            }
            publish_confirmed(&bus, "tamga.inbound", inbound(d), &retries).await;
        }
        let dups = collector.settle(&docs, Duration::from_secs(120)).await;
        let mut dlq = bus
            .consume("tamga.verify.dlq", 8, "fault-dlq")
            .await
            .unwrap();
        let mut dead = BTreeMap::new();
        while dead.len() < 2 {
            let d = tokio::time::timeout(Duration::from_secs(30), dlq.next())
                .await
                .expect("both poison messages reach tamga.verify.dlq")
                .unwrap()
                .unwrap();
            let reason = d
                .message
                .headers
                .get(tamga_bus::death_headers::REASON)
                .and_then(HeaderValue::as_str)
                .map(str::to_string);
            dead.insert(d.message.message_id.clone().unwrap_or_default(), reason);
            d.ack().await.unwrap();
        }
        let want: BTreeMap<String, Option<String>> = poison
            .iter()
            .map(|(id, _, _)| (id.to_string(), Some("rejected".to_string())))
            .collect();
        assert_eq!(dead, want, "tamga.verify.dlq");
        assert_eq!(
            worker.metric(
                "tamga_failures_total",
                &["class=\"poison\"", "source=\"message\""]
            ),
            2.0,
            "poison failures counted"
        );
        assert_eq!(worker.metric("tamga_dead_lettered_total", &[]), 2.0);
        site.await_forwarded(docs.len(), Duration::from_secs(60))
            .await;
        worker.terminate().await;
        let n: i64 = pg_admin(&site.db)
            .await
            .query_one(
                "SELECT count(*) FROM audit_events WHERE stage = 'dead_lettered'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 2, "dead_lettered audit events");
        let counts = check_audit(&site, &docs, 2).await;
        // Both consumed above; nothing else.
        site.assert_dlqs_empty();
        eprintln!(
            "fault_poison_message_dead_lettered: 2 dead-lettered, {N} decided exactly once \
             ({dups} duplicate deliveries), audit {counts:?}, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }

    /// 5,000 declarations as fast as confirms allow (eight publishers): all
    /// decided exactly once; prints the throughput.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_burst_of_5000() {
        let t0 = Instant::now();
        let n: usize = std::env::var("FAULT_BURST")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5000);
        let docs = Arc::new(declarations("burst", n));
        eprintln!(
            "signed {n} declarations in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let site = Site::new("burst").await;
        let collector = Collector::start(&site).await;
        let mut worker = Worker::start(&site, "fault-5-a").await;
        let started = Instant::now();
        let retries = spawn_publisher(site.bus().await, docs.clone(), 8, n, 0)
            .await
            .unwrap();
        let published = started.elapsed();
        let dups = collector.settle(&docs, Duration::from_secs(300)).await;
        let last = collector.tally.lock().unwrap().last_at.unwrap();
        let elapsed = last.duration_since(started);
        site.await_forwarded(docs.len(), Duration::from_secs(60))
            .await;
        worker.terminate().await;
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &docs, 0).await;
        eprintln!(
            "fault_burst_of_5000: {n} declarations published in {:.1} s ({:.0}/s), all decided in \
             {:.1} s: {:.1} declarations/s end to end ({dups} duplicate deliveries, {retries} publish \
             retries), audit {counts:?}, test {:.1} s",
            published.as_secs_f64(),
            n as f64 / published.as_secs_f64(),
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            t0.elapsed().as_secs_f64()
        );
    }

    /// `tamga serve` on RabbitMQ and PostgreSQL; eight HTTP clients submit 160
    /// declarations; RabbitMQ is stopped for 6 s at ~30 % of the accepted ones (the second
    /// half is submitted once it is down). While it is
    /// down, submissions are answered 503 with `Retry-After` (no confirm), and the clients
    /// retry with the same Idempotency-Key after it. Afterwards every submission that got a
    /// 202 is decided exactly once: one result on the right queue each, one `submitted`,
    /// `received`, `forwarded` … audit event each, nothing dead-lettered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_gateway_rabbitmq_stopped_during_submissions() {
        let t0 = Instant::now();
        const N: usize = 160;
        const CLIENTS: usize = 8;
        let docs = Arc::new(declarations("gwmq", N));
        let site = Site::new("gwmq").await;
        let collector = Collector::start(&site).await;
        let token = site.token("fault-broker");
        let mut served = Served::start(&site, "gw-mq-a", false).await;
        let accepted: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
        let unavailable = Arc::new(AtomicU64::new(0));
        // The second half waits for the broker to be down (`stop_app` may take seconds on a
        // busy machine): some submissions are certainly made during the outage.
        let down = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (docs, accepted, unavailable, down) = (
                docs.clone(),
                accepted.clone(),
                unavailable.clone(),
                down.clone(),
            );
            let (addr, token) = (served.addr.clone(), token.clone());
            clients.push(tokio::spawn(async move {
                for i in (c..N).step_by(CLIENTS) {
                    while i >= N / 2 && !down.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let key = format!("gwmq-{i}");
                    let deadline = Instant::now() + Duration::from_secs(120);
                    loop {
                        assert!(Instant::now() < deadline, "{key}: no 202 within 120 s");
                        match submit(&addr, &token, &docs[i], &key).await {
                            Ok((202, _, body)) => {
                                accepted.lock().unwrap().push((i, id_of(&body)));
                                break;
                            }
                            Ok((503, hs, body)) => {
                                let wait: u64 = header(&hs, "retry-after")
                                    .and_then(|v| v.parse().ok())
                                    .unwrap_or_else(|| {
                                        panic!(
                                            "503 without Retry-After: {}",
                                            String::from_utf8_lossy(&body)
                                        )
                                    });
                                unavailable.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_secs(wait)).await;
                            }
                            Ok((status, _, body)) => {
                                panic!("{key}: {status} {}", String::from_utf8_lossy(&body))
                            }
                            // The answer was lost with the connection: the same key again.
                            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                        }
                    }
                    // Paced: the outage falls in the middle of the submissions.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while accepted.lock().unwrap().len() < N * 30 / 100 {
            assert!(Instant::now() < deadline, "no progress before the outage");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let at = accepted.lock().unwrap().len();
        let before = unavailable.load(Ordering::Relaxed);
        let stopped = blocking(RabbitStopped::stop).await;
        down.store(true, Ordering::SeqCst);
        // A submission confirmed just before the stop may still be answered for a moment.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let down_from = accepted.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let accepted_while_down = accepted.lock().unwrap().len() - down_from;
        let during = unavailable.load(Ordering::Relaxed) - before;
        blocking(move || drop(stopped)).await;
        eprintln!(
            "RabbitMQ stopped at {at}/{N} accepted ({} more while stop_app ran) for 6 s: \
             {during} submissions answered 503",
            down_from - at
        );
        assert_eq!(accepted_while_down, 0, "202s while RabbitMQ was down");
        assert!(during > 0, "no 503 while RabbitMQ was down");
        for c in clients {
            c.await.unwrap();
        }
        let accepted = accepted.lock().unwrap().clone();
        assert_eq!(accepted.len(), N);
        let ids: std::collections::HashSet<&String> = accepted.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), N, "one id per submission");
        // The pipeline's messages carry the gateway's ids.
        let decided: Vec<Doc> = accepted
            .iter()
            .map(|(i, id)| Doc {
                id: id.clone(),
                ..docs[*i].clone()
            })
            .collect();
        let dups = collector.settle(&decided, Duration::from_secs(180)).await;
        site.await_forwarded(decided.len(), Duration::from_secs(60))
            .await;
        served.worker.terminate().await;
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &decided, 0).await;
        assert_eq!(
            counts.get("submitted").copied(),
            Some(N as u64),
            "{counts:?}"
        );
        eprintln!(
            "fault_gateway_rabbitmq_stopped_during_submissions: {N} accepted, {} answered 503 \
             in all, each decided exactly once ({dups} duplicate deliveries), audit {counts:?}, \
             {:.1} s",
            unavailable.load(Ordering::Relaxed),
            t0.elapsed().as_secs_f64()
        );
    }

    /// `tamga serve` with `TAMGA_TEST_ABORT_AFTER_CONFIRM=1` dies right after the broker
    /// confirmed a submission (the message is in `tamga.inbound`, the claim is stored, the
    /// `submitted` record and the answer are not). Restarted without the hook, the retry
    /// with the same Idempotency-Key gets a 202 with the id that was claimed, and the
    /// declaration — published twice under that id — is decided once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_gateway_killed_between_confirm_and_answer() {
        let t0 = Instant::now();
        let docs = declarations("gwkill", 2);
        let site = Site::new("gwkill").await;
        let collector = Collector::start(&site).await;
        let token = site.token("fault-broker");
        let mut served = Served::start(&site, "gw-kill-a", true).await;
        let r = submit(&served.addr, &token, &docs[0], "gwkill-0").await;
        assert!(
            r.is_err(),
            "no answer expected from the killed gateway: {r:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = served.worker.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "the hook did not end the process"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(!status.success(), "{status}");
        assert!(served.worker.log_contains("aborting after the confirm"));
        let db = pg_admin(&site.db).await;
        let claimed: String = db
            .query_one(
                "SELECT id FROM gateway_submissions WHERE idempotency_key = 'gwkill-0'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let marked: i64 = db
            .query_one(
                "SELECT count(*) FROM audit_events WHERE stage = 'submitted'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(marked, 0, "killed before the submitted record");

        let mut served = Served::start(&site, "gw-kill-b", false).await;
        let (status, hs, body) = submit(&served.addr, &token, &docs[0], "gwkill-0")
            .await
            .unwrap();
        assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
        assert_eq!(
            id_of(&body),
            claimed,
            "the retry gets the id that was claimed"
        );
        assert_eq!(header(&hs, "idempotent-replayed"), Some("true"));
        let (status, _, body) = submit(&served.addr, &token, &docs[1], "gwkill-1")
            .await
            .unwrap();
        assert_eq!(status, 202);
        let second = id_of(&body);
        let decided = vec![
            Doc {
                id: claimed.clone(),
                ..docs[0].clone()
            },
            Doc {
                id: second,
                ..docs[1].clone()
            },
        ];
        let dups = collector.settle(&decided, Duration::from_secs(120)).await;
        let auth = format!("Bearer {token}");
        let (status, _, body) = http(
            &served.addr,
            "GET",
            &format!("/v1/declarations/{claimed}"),
            &[("Authorization", &auth)],
            b"",
        )
        .await
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"],
            "forwarded"
        );
        site.await_forwarded(decided.len(), Duration::from_secs(60))
            .await;
        served.worker.terminate().await;
        site.assert_dlqs_empty();
        let counts = check_audit(&site, &decided, 0).await;
        assert_eq!(counts.get("submitted").copied(), Some(2), "{counts:?}");
        eprintln!(
            "fault_gateway_killed_between_confirm_and_answer: the retry got {claimed}, decided \
             once ({dups} duplicate deliveries), audit {counts:?}, {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
}
