#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The chaos soak (issue 13, item 4). Declarations — valid ones and one of
//! every rejection class, over four corridors — go through `tamga run` on
//! RabbitMQ and PostgreSQL while workers are SIGKILLed every few seconds,
//! RabbitMQ is restarted (cleanly, and by SIGKILL), PostgreSQL is stopped for
//! 15 s (fast shutdown, and immediate — a crash) and the HSM holding the
//! authorities' keys goes away. A checker in the manner of Jepsen's
//! total-queue model (`checker.rs`) then counts lost declarations,
//! duplicated effects, unexpected results and wrong sides, and runs
//! `tamga audit verify`.
//!
//! The soak owns its infrastructure (`infra.rs`): a private RabbitMQ node and
//! PostgreSQL cluster on free ports and a SoftHSM2 token, in a temporary
//! directory — the machine's shared services are never touched — all
//! removed at the end, even on failure.
//!
//! * `faults::fault_chaos_soak_short` — 500 declarations, one of each fault;
//!   part of `make faults` (and so of `make test`).
//! * `faults::fault_chaos_soak_full` — `make soak`: 10,000 declarations
//!   (`SOAK_N`), RabbitMQ restarted twice, PostgreSQL stopped twice, the HSM
//!   once; ignored otherwise.
//!
//! Both write a JSON report to `target/tmp/soak-<short|full>.json` and print
//! a table; they fail when a goal is missed (0 lost, 0 duplicated effects,
//! 0 unexpected, 0 wrong side / misrouted / wrong reason, audit intact,
//! every planned fault injected, stage queues drained). `SOAK_SEED` changes
//! the mix and the kill times; `SOAK_RATE` the publishing rate; `SOAK_KEEP=1`
//! keeps the directory (logs, data) for inspection.

mod checker;
mod corpus;
mod infra;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tamga_bus::{AmqpBus, AmqpOptions, Bus, Message};
use tamga_pki::{generate, DemoPki, DemoPkiOptions};

use checker::Collector;
use corpus::{Entry, Rng, CORRIDORS, SERVED, UNSERVED};
use infra::{PgStop, Spawner};

const TAMGA: &str = env!("CARGO_BIN_EXE_tamga");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `rabbitmqctl stop`, then start again.
    RabbitRestart,
    /// SIGKILL the node, then start again.
    RabbitCrash,
    /// Stop PostgreSQL for `Plan::pg_down`, then start it again.
    PgStop(PgStop),
    /// The token directory away for `Plan::hsm_down`.
    HsmOutage,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::RabbitRestart => "RabbitMQ restarted (rabbitmqctl stop, start)",
            Fault::RabbitCrash => "RabbitMQ crashed (SIGKILL, start)",
            Fault::PgStop(PgStop::Fast) => "PostgreSQL stopped (fast shutdown)",
            Fault::PgStop(PgStop::Immediate) => "PostgreSQL stopped (immediate: a crash)",
            Fault::HsmOutage => "HSM unavailable (token gone)",
        }
    }
}

#[derive(Debug, Clone)]
struct Plan {
    label: &'static str,
    n: usize,
    /// Declarations published per second.
    rate: f64,
    seed: u64,
    /// Each fault when this share of the declarations has been published.
    faults: Vec<(f64, Fault)>,
    /// A worker is SIGKILLed every `kill_every_ms` (uniform range).
    kill_every_ms: (u64, u64),
    pg_down: Duration,
    hsm_down: Duration,
    /// After publishing ends, how long the pipeline has to decide the rest.
    drain: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

mod faults {
    use super::*;

    /// 500 declarations, one of each fault: part of `make test`.
    #[test]
    fn fault_chaos_soak_short() {
        soak(Plan {
            label: "short",
            n: 500,
            rate: env_or("SOAK_RATE", 6.0),
            seed: env_or("SOAK_SEED", 13),
            faults: vec![
                (0.20, Fault::RabbitCrash),
                (0.40, Fault::PgStop(PgStop::Immediate)),
                (0.65, Fault::HsmOutage),
            ],
            kill_every_ms: (4_000, 9_000),
            pg_down: Duration::from_secs(15),
            hsm_down: Duration::from_secs(10),
            drain: Duration::from_secs(240),
        });
    }

    /// `make soak`: 10,000 declarations (`SOAK_N`), RabbitMQ restarted twice,
    /// PostgreSQL stopped twice for 15 s, the HSM unavailable once, workers
    /// SIGKILLed every 3–8 s throughout.
    #[test]
    #[ignore = "the full chaos soak: `make soak`"]
    fn fault_chaos_soak_full() {
        soak(Plan {
            label: "full",
            n: env_or("SOAK_N", 10_000),
            rate: env_or("SOAK_RATE", 40.0),
            seed: env_or("SOAK_SEED", 4),
            faults: vec![
                (0.12, Fault::RabbitRestart),
                (0.28, Fault::PgStop(PgStop::Fast)),
                (0.45, Fault::HsmOutage),
                (0.62, Fault::RabbitCrash),
                (0.80, Fault::PgStop(PgStop::Immediate)),
            ],
            kill_every_ms: (3_000, 8_000),
            pg_down: Duration::from_secs(15),
            hsm_down: Duration::from_secs(15),
            drain: Duration::from_secs(900),
        });
    }
}

// --- the site ------------------------------------------------------------------

/// Files every worker's configuration points at.
#[derive(Debug)]
struct SiteFiles {
    root: PathBuf,
    amqp_url: String,
    db_url: String,
    hsm: infra::Hsm,
}

impl SiteFiles {
    /// The configuration of worker `name`: the site example's settings, the
    /// authorities' keys in the HSM.
    fn config(&self, name: &str) -> PathBuf {
        let root = &self.root;
        let mut toml = format!(
            "[amqp]\nurl = \"{}\"\nprefetch = 64\nheartbeat_secs = 10\ndelivery_limit = 5\n\
             confirm_timeout_ms = 10000\npublisher_channels = 64\n\n\
             [database]\nurl = \"{}\"\napp_role = \"tamga_app\"\npool_size = 16\n\
             group_commit = 64\n\n\
             [trust]\ndir = \"{}\"\npolicy = \"{}\"\n\n",
            self.amqp_url,
            self.db_url,
            root.join("pki/trust").display(),
            root.join("policy.toml").display(),
        );
        for cc in SERVED {
            let k = root.join("pki/keys").join(cc);
            toml.push_str(&format!(
                "[[authority]]\ncountry = \"{cc}\"\nkey = \"{}\"\ncert = \"{}\"\nchain = [\"{}\"]\n\n",
                self.hsm.uri(cc),
                k.join("authority.pem").display(),
                k.join("issuing-ca.pem").display()
            ));
        }
        toml.push_str(&format!(
            "[worker]\nname = \"{name}\"\nconcurrency = 32\naudit_chains = 16\n\n\
             [metrics]\nlisten = \"\"\n\n[log]\nlevel = \"info\"\n"
        ));
        let path = root.join("workers").join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    }

    fn log(&self, name: &str) -> PathBuf {
        self.root.join("workers").join(format!("{name}.log"))
    }
}

/// `tamga` without the caller's `TAMGA_*` overrides (they would point the
/// workers elsewhere), with the soak's SoftHSM2 configuration.
fn tamga(site: &SiteFiles) -> Command {
    let mut c = Command::new(TAMGA);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("TAMGA_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1")
        .env("SOFTHSM2_CONF", &site.hsm.conf)
        .stdin(Stdio::null());
    c
}

#[derive(Debug)]
struct Slot {
    letter: char,
    generation: u32,
    name: String,
    child: Option<Child>,
    restart_at: Instant,
}

/// Worker exit that the soak did not cause.
#[derive(Debug, Clone, serde::Serialize)]
struct WorkerExit {
    worker: String,
    status: String,
    last_line: String,
}

/// Two `tamga run` processes, restarted (under a new name) whenever they
/// exit: by the soak's SIGKILL, or by themselves.
#[derive(Debug)]
struct Workers {
    slots: Vec<Mutex<Slot>>,
    site: Arc<SiteFiles>,
    spawner: Arc<Spawner>,
    stopping: AtomicBool,
    kills: AtomicU64,
    starts: AtomicU64,
    exits: Mutex<Vec<WorkerExit>>,
}

impl Workers {
    fn new(site: Arc<SiteFiles>, spawner: Arc<Spawner>, n: usize) -> Self {
        let slots = (0..n)
            .map(|i| {
                Mutex::new(Slot {
                    letter: (b'a' + i as u8) as char,
                    generation: 0,
                    name: String::new(),
                    child: None,
                    restart_at: Instant::now(),
                })
            })
            .collect();
        Workers {
            slots,
            site,
            spawner,
            stopping: AtomicBool::new(false),
            kills: AtomicU64::new(0),
            starts: AtomicU64::new(0),
            exits: Mutex::default(),
        }
    }

    fn spawn(&self, slot: &mut Slot) {
        slot.generation += 1;
        slot.name = format!("soak-{}{}", slot.letter, slot.generation);
        let config = self.site.config(&slot.name);
        let log = std::fs::File::create(self.site.log(&slot.name)).unwrap();
        let mut c = tamga(&self.site);
        c.args(["run", "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        slot.child = Some(self.spawner.spawn(c).expect("tamga run"));
        self.starts.fetch_add(1, Ordering::Relaxed);
    }

    /// Notices exits and restarts; call every 100 ms.
    fn supervise(&self) {
        for slot in &self.slots {
            let mut s = slot.lock().unwrap();
            if let Some(child) = s.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let last_line = infra::tail(&self.site.log(&s.name), 1);
                    self.exits.lock().unwrap().push(WorkerExit {
                        worker: s.name.clone(),
                        status: status.to_string(),
                        last_line,
                    });
                    s.child = None;
                    s.restart_at = Instant::now() + Duration::from_secs(1);
                }
            }
            if s.child.is_none()
                && !self.stopping.load(Ordering::SeqCst)
                && Instant::now() >= s.restart_at
            {
                self.spawn(&mut s);
            }
        }
    }

    /// SIGKILLs slot `i`'s worker (restarted by `supervise` shortly after).
    fn kill(&self, i: usize) -> Option<String> {
        let mut s = self.slots[i % self.slots.len()].lock().unwrap();
        let mut child = s.child.take()?;
        let _ = child.kill();
        let _ = child.wait();
        s.restart_at = Instant::now() + Duration::from_millis(300);
        self.kills.fetch_add(1, Ordering::Relaxed);
        Some(s.name.clone())
    }

    /// Waits until the current worker of every slot logged `ready` (one
    /// that exits meanwhile is restarted by `supervise`, which must run).
    fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for slot in &self.slots {
            loop {
                let name = slot.lock().unwrap().name.clone();
                let log = std::fs::read_to_string(self.site.log(&name)).unwrap_or_default();
                if log
                    .lines()
                    .any(|l| l.contains("ready") && !l.contains("not ready"))
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "worker {name} did not log `ready` within {within:?}:\n{}\nexits: {:?}",
                    infra::tail(&self.site.log(&name), 30),
                    self.exits.lock().unwrap()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// SIGTERM to every worker; each must stop by itself within 30 s.
    fn terminate(&self) -> Vec<String> {
        self.stopping.store(true, Ordering::SeqCst);
        let mut problems = Vec::new();
        for slot in &self.slots {
            let mut s = slot.lock().unwrap();
            if let Some(mut child) = s.child.take() {
                infra::signal(&child, libc::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(30);
                let status = loop {
                    if let Ok(Some(st)) = child.try_wait() {
                        break Some(st);
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                };
                match status {
                    Some(st) if st.success() => {}
                    other => problems.push(format!("{} on SIGTERM: {other:?}", s.name)),
                }
            }
        }
        problems
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Ok(mut s) = slot.lock() {
                if let Some(mut c) = s.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
    }
}

// --- the run ----------------------------------------------------------------------

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Injected {
    fault: &'static str,
    /// Seconds from the first publish.
    at_s: f64,
    /// How long the part was unavailable: from the moment it was down (a
    /// clean stop takes a while) until it accepted work again.
    down_s: f64,
    /// Results first seen while it was down (from 1 s after it went).
    #[serde(skip)]
    window: (Instant, Instant),
    results_first_seen_while_down: usize,
}

/// The order in which messages are published: every entry, and a second
/// copy of those marked `resend` some way after the first.
fn publish_order(entries: &[Entry], rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    for (i, e) in entries.iter().enumerate().rev() {
        if e.resend {
            let at = (i + 1 + rng.range(0, 100) as usize).min(order.len());
            order.insert(at, i);
        }
    }
    order
}

/// Removes the directories of earlier soaks whose process is gone (killed
/// outright, it could not remove its own; its processes died with it).
fn remove_stale_dirs() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("tamga-soak-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn soak(plan: Plan) {
    let started = Instant::now();
    remove_stale_dirs();
    let root = tempfile::Builder::new()
        .prefix(&format!("tamga-soak-{}-", std::process::id()))
        .tempdir()
        .unwrap();
    // PostgreSQL runs as `postgres` when we are root: it must traverse this.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o711),
    )
    .unwrap();
    let spawner = Arc::new(Spawner::new());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(run(&plan, root.path(), spawner.clone(), started));
    drop(rt);
    // Kills whatever is left (nothing, normally).
    drop(spawner);
    if std::env::var_os("SOAK_KEEP").is_some() {
        let kept = root.keep();
        eprintln!("soak: kept {}", kept.display());
    }
    if let Err(why) = outcome {
        panic!("{why}");
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Runs the soak; `Err` names every goal missed.
async fn run(
    plan: &Plan,
    root: &Path,
    spawner: Arc<Spawner>,
    started: Instant,
) -> Result<(), String> {
    let label = plan.label;
    // The PKI: four served countries, UZ trusted but not served; a rogue
    // "KZ" hierarchy nobody trusts.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut countries: Vec<&str> = CORRIDORS.iter().map(|(f, _)| *f).collect();
    countries.push(UNSERVED);
    let pki: DemoPki = generate(&DemoPkiOptions::new(countries, now)).unwrap();
    let rogue = generate(&DemoPkiOptions::new(["KZ"], now)).unwrap();
    pki.write_to(&root.join("pki")).unwrap();
    let policy_toml = format!("[limits]\nmax_bytes = {}\n", corpus::MAX_BYTES);
    std::fs::write(root.join("policy.toml"), &policy_toml).unwrap();
    std::fs::create_dir_all(root.join("workers")).unwrap();

    let t = Instant::now();
    let tag = format!("soak{:x}", tamga_pipeline::now_ms());
    let entries = Arc::new(corpus::generate(&tag, plan.n, plan.seed, &pki, &rogue));
    corpus::self_check(
        &entries,
        &root.join("pki/trust"),
        &tamga_policy::Policy::from_toml(&policy_toml).unwrap(),
    );
    let declarations = checker::declarations(&entries);
    let mut rng = Rng::new(plan.seed ^ 0x50A4);
    let order = Arc::new(publish_order(&entries, &mut rng));
    eprintln!(
        "soak {label}: {declarations} declarations ({} messages with copies and resends) \
         signed and self-checked in {:.1} s",
        order.len(),
        t.elapsed().as_secs_f64()
    );

    // Our own infrastructure.
    let keys: Vec<(&str, PathBuf)> = SERVED
        .iter()
        .map(|cc| (*cc, root.join("pki/keys").join(cc).join("authority.key")))
        .collect();
    let hsm = infra::Hsm::new(root, &keys);
    let rabbit = Arc::new(Mutex::new(infra::Rabbit::new(root)));
    let postgres = Arc::new(Mutex::new(infra::Postgres::init(root)));
    {
        let (r, p, s) = (rabbit.clone(), postgres.clone(), spawner.clone());
        blocking(move || {
            r.lock().unwrap().start(&s);
            p.lock().unwrap().start(&s);
        })
        .await;
    }
    let site = Arc::new(SiteFiles {
        root: root.to_path_buf(),
        amqp_url: rabbit.lock().unwrap().url(),
        db_url: postgres.lock().unwrap().url("postgres"),
        hsm,
    });
    {
        let (r, p) = (rabbit.lock().unwrap(), postgres.lock().unwrap());
        eprintln!(
            "soak {label}: private RabbitMQ {} on 127.0.0.1:{}, PostgreSQL on 127.0.0.1:{}, \
             SoftHSM2 token (in {})",
            r.node,
            r.port,
            p.port,
            root.display()
        );
    }

    let workers = Arc::new(Workers::new(site.clone(), spawner.clone(), 2));
    // Supervised from the start: two processes opening the SoftHSM2 token at
    // the same moment can make one fail (CKR_GENERAL_ERROR) and exit, to be
    // started again — as an orchestrator would.
    let supervisor = {
        let w = workers.clone();
        tokio::spawn(async move {
            loop {
                let w2 = w.clone();
                blocking(move || w2.supervise()).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    {
        let w = workers.clone();
        blocking(move || w.wait_ready(Duration::from_secs(120))).await;
    }

    let bus = Arc::new(
        AmqpBus::connect(
            &site.amqp_url,
            AmqpOptions {
                connect_timeout: Duration::from_secs(5),
                confirm_timeout: Duration::from_secs(10),
                publisher_channels: 16,
                ..AmqpOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let mut queues: Vec<String> = SERVED
        .iter()
        .map(|cc| format!("tamga.outbound.{}", cc.to_ascii_lowercase()))
        .collect();
    for cc in SERVED.iter().chain([&UNSERVED]) {
        queues.push(format!("tamga.rejected.{}", cc.to_ascii_lowercase()));
    }
    for s in ["verify", "countersign", "forward"] {
        queues.push(format!("tamga.{s}.dlq"));
    }
    let collector = Arc::new(Collector::start(bus.clone(), queues));

    // The driver: publishes in order at `rate`, each until confirmed.
    let t0 = Instant::now();
    let published = Arc::new(AtomicUsize::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let give_up = t0 + Duration::from_secs_f64(order.len() as f64 / plan.rate) + plan.drain;
    let publisher = {
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (bus, entries, order, next, published, retries) = (
                bus.clone(),
                entries.clone(),
                order.clone(),
                next.clone(),
                published.clone(),
                retries.clone(),
            );
            let rate = plan.rate;
            tasks.push(tokio::spawn(async move {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&i) = order.get(k) else { break };
                    tokio::time::sleep_until(
                        (t0 + Duration::from_secs_f64(k as f64 / rate)).into(),
                    )
                    .await;
                    let e = &entries[i];
                    let m = Message {
                        body: e.body.as_ref().clone(),
                        routing_key: e.route.clone(),
                        message_id: Some(e.id.clone()),
                        correlation_id: None,
                        headers: BTreeMap::new(),
                        timestamp_ms: Some(tamga_pipeline::now_ms()),
                    };
                    let mut wait = Duration::from_millis(50);
                    while bus.publish("tamga.inbound", m.clone()).await.is_err() {
                        retries.fetch_add(1, Ordering::Relaxed);
                        if Instant::now() > give_up {
                            break;
                        }
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(1));
                    }
                    published.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
        })
    };

    // The chaos: the planned faults, one after another, at their share of
    // the publishing; and a worker SIGKILLed every few seconds throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let chaos = {
        let (rabbit, postgres, site, spawner, published, stop) = (
            rabbit.clone(),
            postgres.clone(),
            site.clone(),
            spawner.clone(),
            published.clone(),
            stop.clone(),
        );
        let plan = plan.clone();
        let total = order.len();
        tokio::spawn(async move {
            let mut done = Vec::new();
            for (share, fault) in plan.faults {
                while (published.load(Ordering::SeqCst) as f64) < share * total as f64 {
                    if stop.load(Ordering::SeqCst) {
                        return done;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let at = Instant::now();
                eprintln!(
                    "soak: {} at {:.0} s ({}/{total} published)",
                    fault.name(),
                    at.duration_since(t0).as_secs_f64(),
                    published.load(Ordering::SeqCst)
                );
                // (when it was down, when it was back)
                let (down, up) = match fault {
                    Fault::RabbitRestart | Fault::RabbitCrash => {
                        let (r, s) = (rabbit.clone(), spawner.clone());
                        blocking(move || {
                            let mut r = r.lock().unwrap();
                            if fault == Fault::RabbitCrash {
                                r.kill();
                            } else {
                                r.stop();
                            }
                            let down = Instant::now();
                            std::thread::sleep(Duration::from_secs(2));
                            r.start(&s);
                            (down, Instant::now())
                        })
                        .await
                    }
                    Fault::PgStop(how) => {
                        let p = postgres.clone();
                        blocking(move || p.lock().unwrap().stop(how)).await;
                        let down = Instant::now();
                        tokio::time::sleep(plan.pg_down).await;
                        let (p, s) = (postgres.clone(), spawner.clone());
                        blocking(move || {
                            p.lock().unwrap().start(&s);
                            (down, Instant::now())
                        })
                        .await
                    }
                    Fault::HsmOutage => {
                        site.hsm.unplug();
                        let down = Instant::now();
                        tokio::time::sleep(plan.hsm_down).await;
                        site.hsm.plug_back();
                        (down, Instant::now())
                    }
                };
                done.push(Injected {
                    fault: fault.name(),
                    at_s: at.duration_since(t0).as_secs_f64(),
                    down_s: up.duration_since(down).as_secs_f64(),
                    // A result already on its way when the part went may
                    // still arrive for a moment.
                    window: (down + Duration::from_secs(1), up),
                    results_first_seen_while_down: 0,
                });
            }
            done
        })
    };
    let killer = {
        let (workers, stop) = (workers.clone(), stop.clone());
        let mut rng = Rng::new(plan.seed ^ 0x4B11);
        let (lo, hi) = plan.kill_every_ms;
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.range(lo, hi))).await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = rng.next() as usize;
                let w = workers.clone();
                blocking(move || w.kill(i)).await;
            }
        })
    };

    // Until every declaration has a result, or the time is up.
    let mut last_report = Instant::now();
    let mut resolved = 0;
    while Instant::now() < give_up {
        resolved = checker::resolved(&entries, &collector.ids());
        let all_published = published.load(Ordering::SeqCst) >= order.len();
        if resolved == declarations && all_published && chaos.is_finished() {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "soak: {:.0} s: published {}/{}, decided {resolved}/{declarations}, {} worker kills",
                t0.elapsed().as_secs_f64(),
                published.load(Ordering::SeqCst),
                order.len(),
                workers.kills.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let finished = collector
        .snapshot()
        .iter()
        .map(|o| o.at)
        .max()
        .unwrap_or(t0);
    stop.store(true, Ordering::SeqCst);
    let _ = killer.await;
    let mut injected = if chaos.is_finished() {
        chaos.await.unwrap()
    } else {
        chaos.abort();
        Vec::new()
    };
    publisher.abort();
    // Late duplicates, if any, arrive now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    supervisor.abort();
    let sigterm_problems = {
        let w = workers.clone();
        blocking(move || w.terminate()).await
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outs = collector.snapshot();
    for f in &mut injected {
        let mut first: BTreeMap<&str, Instant> = BTreeMap::new();
        for o in &outs {
            let at = first.entry(o.id.as_str()).or_insert(o.at);
            *at = (*at).min(o.at);
        }
        f.results_first_seen_while_down = first
            .values()
            .filter(|at| **at >= f.window.0 && **at < f.window.1)
            .count();
    }
    let depths: Vec<(String, u64)> = {
        let r = rabbit.clone();
        blocking(move || r.lock().unwrap().queue_depths()).await
    };
    let stage_backlog: Vec<(String, u64)> = depths
        .iter()
        .filter(|(q, n)| {
            *n > 0
                && matches!(
                    q.as_str(),
                    "tamga.verify" | "tamga.countersign" | "tamga.forward"
                )
        })
        .cloned()
        .collect();
    let db = checker::read_database(&site.db_url).await;
    let audit = tamga(&site)
        .args(["audit", "verify", "--config"])
        .arg(site.config("soak-audit"))
        .output()
        .unwrap();
    let audit_out = String::from_utf8_lossy(&audit.stdout).to_string();
    let audit_intact = audit.status.success() && audit_out.contains("audit trail intact");
    let findings = checker::check(&entries, &outs, &db);

    // The report.
    let seconds = finished.duration_since(t0).as_secs_f64();
    let exits = workers.exits.lock().unwrap().clone();
    let report = serde_json::json!({
        "soak": label,
        "seed": plan.seed,
        "publishRatePerSecond": plan.rate,
        "declarations": declarations,
        "messagesPublished": published.load(Ordering::SeqCst),
        "publishRetries": retries.load(Ordering::Relaxed),
        "resends": entries.iter().filter(|e| e.resend).count(),
        "faultsPlanned": plan.faults.len(),
        "faultsInjected": injected,
        "workerKills": workers.kills.load(Ordering::Relaxed),
        "workerStarts": workers.starts.load(Ordering::Relaxed),
        "workerExitsNotCausedBySoak": exits,
        "collectorReconsumes": collector.reconsumes.load(Ordering::Relaxed),
        "findings": findings,
        "auditEvents": db.audit_counts,
        "auditVerify": { "intact": audit_intact, "output": audit_out.lines().last().unwrap_or("") },
        "stageQueuesNotEmpty": stage_backlog,
        "workersNotStoppingOnSigterm": sigterm_problems,
        "secondsFirstPublishToLastResult": seconds,
        "declarationsPerSecond": declarations as f64 / seconds.max(1e-9),
        "secondsInAll": started.elapsed().as_secs_f64(),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
    });
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("soak-{label}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    print_table(&report, &findings, &injected);
    eprintln!("soak {label}: report in {}", path.display());

    let mut missed = Vec::new();
    for (what, key, n) in [
        ("lost", "lost", findings.lost),
        (
            "duplicated effects",
            "duplicatedEffects",
            findings.duplicated_effects,
        ),
        ("unexpected", "unexpected", findings.unexpected),
        ("wrong side", "wrongSide", findings.wrong_side),
        ("misrouted", "misrouted", findings.misrouted),
        ("wrong reason", "wrongReason", findings.wrong_reason),
    ] {
        if n > 0 {
            let examples = findings.examples.get(key).cloned().unwrap_or_default();
            missed.push(format!("{n} {what}, e.g. {examples:?}"));
        }
    }
    if !audit_intact {
        missed.push(format!("tamga audit verify: {audit_out}"));
    }
    if injected.len() != plan.faults.len() {
        missed.push(format!(
            "only {} of {} planned faults were injected",
            injected.len(),
            plan.faults.len()
        ));
    }
    if !stage_backlog.is_empty() {
        missed.push(format!("messages left in stage queues: {stage_backlog:?}"));
    }
    if !sigterm_problems.is_empty() {
        missed.push(format!("workers on SIGTERM: {sigterm_problems:?}"));
    }
    if resolved < declarations {
        missed.push(format!(
            "only {resolved} of {declarations} declarations decided before the deadline"
        ));
    }
    if missed.is_empty() {
        Ok(())
    } else {
        let mut logs = String::new();
        for slot in &workers.slots {
            let name = slot.lock().unwrap().name.clone();
            logs.push_str(&format!(
                "\n===== {name} (last 40 lines) =====\n{}",
                infra::tail(&site.log(&name), 40)
            ));
        }
        Err(format!(
            "soak {label}: goals missed:\n  {}\n{logs}",
            missed.join("\n  ")
        ))
    }
}

fn print_table(report: &serde_json::Value, f: &checker::Findings, injected: &[Injected]) {
    let mut t = String::new();
    t.push_str(&format!(
        "\n== chaos soak ({}) ==\n{:<44}{:>10}\n",
        report["soak"].as_str().unwrap_or(""),
        "declarations",
        f.declarations
    ));
    for (k, v) in [
        (
            "messages published (copies, resends)",
            report["messagesPublished"].to_string(),
        ),
        ("publish retries", report["publishRetries"].to_string()),
        ("worker SIGKILLs", report["workerKills"].to_string()),
        ("results delivered", f.results_delivered.to_string()),
        ("redeliveries (same bytes)", f.redeliveries.to_string()),
        ("lost", f.lost.to_string()),
        ("duplicated effects", f.duplicated_effects.to_string()),
        ("unexpected", f.unexpected.to_string()),
        ("wrong side", f.wrong_side.to_string()),
        ("misrouted", f.misrouted.to_string()),
        ("wrong reason", f.wrong_reason.to_string()),
        (
            "audit verify",
            if report["auditVerify"]["intact"] == true {
                "intact".to_string()
            } else {
                "BROKEN".to_string()
            },
        ),
        (
            "first publish to last result (s)",
            format!(
                "{:.1}",
                report["secondsFirstPublishToLastResult"]
                    .as_f64()
                    .unwrap_or(0.0)
            ),
        ),
        (
            "declarations per second",
            format!(
                "{:.1}",
                report["declarationsPerSecond"].as_f64().unwrap_or(0.0)
            ),
        ),
    ] {
        t.push_str(&format!("{k:<44}{v:>10}\n"));
    }
    t.push_str("faults:\n");
    for i in injected {
        t.push_str(&format!(
            "  {:>6.0} s  {:<46} down {:>5.1} s, {} results while down\n",
            i.at_s, i.fault, i.down_s, i.results_first_seen_while_down
        ));
    }
    t.push_str("by class:\n");
    for (name, c) in &f.by_class {
        t.push_str(&format!(
            "  {name:<26}{:>6}  {:<36} ok {:>6}  problems {}\n",
            c.declarations, c.expected, c.ok, c.problems
        ));
    }
    for (what, ex) in &f.examples {
        t.push_str(&format!("{what}:\n"));
        for e in ex.iter().take(5) {
            t.push_str(&format!("  {e}\n"));
        }
    }
    eprintln!("{t}");
}
