//! The soak's own infrastructure: a private RabbitMQ node, a private
//! PostgreSQL cluster and a SoftHSM2 token directory, all under one
//! temporary directory and on free ports. The machine's shared RabbitMQ
//! (5672) and PostgreSQL (5432) serve other tests at the same time: the soak
//! kills and restarts only what it started here.
//!
//! Every process is spawned by one long-lived thread ([`Spawner`]) with
//! `PR_SET_PDEATHSIG = SIGKILL`: when that thread ends — the soak finished,
//! panicked, or its process was killed by a test runner's timeout — the
//! kernel kills what is left, so nothing outlives the soak.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Reply = mpsc::Sender<io::Result<Child>>;

/// Spawns children from one dedicated thread, each tied to that thread's
/// life (Linux's parent-death signal is per thread: a child spawned from a
/// short-lived pool thread would be killed when that thread retires).
pub struct Spawner {
    tx: Option<mpsc::Sender<(Command, Reply)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

impl Spawner {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<(Command, Reply)>();
        let thread = std::thread::Builder::new()
            .name("soak-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(spawn_tied(&mut command));
                }
            })
            .expect("the spawner thread");
        Spawner {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn spawn(&self, command: Command) -> io::Result<Child> {
        let (reply, answer) = mpsc::channel();
        self.tx
            .as_ref()
            .expect("spawner running")
            .send((command, reply))
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }
}

impl Drop for Spawner {
    /// Ends the thread: every child still running gets SIGKILL.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn spawn_tied(command: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls only
    // prctl(2), which is async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Sends `signal` to a child we spawned and have not reaped.
pub fn signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the pid of our own unreaped child.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Waits for `child` to exit, SIGKILLing it after `within`.
pub fn wait_or_kill(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                return child.wait().ok();
            }
        }
    }
}

/// A port nobody listens on now, outside 35672–35682 (where RabbitMQ's CLI
/// tools open their own distribution ports) and low enough that our node's
/// CLI range (distribution port + 10 000) stays valid.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let p = l.local_addr().expect("local addr").port();
        if !(35_600..=35_700).contains(&p) && p < 55_000 {
            return p;
        }
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

fn log_file(path: &Path) -> Stdio {
    Stdio::from(
        File::options()
            .create(true)
            .append(true)
            .open(path)
            .expect("a log file"),
    )
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// --- RabbitMQ ------------------------------------------------------------------

const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// A RabbitMQ node of our own: its name, ports, cookie (in its own HOME),
/// config, plugins (none: no management) and data are under `dir`.
pub struct Rabbit {
    dir: PathBuf,
    pub node: String,
    pub port: u16,
    dist_port: u16,
    child: Option<Child>,
    pub starts: u32,
}

impl std::fmt::Debug for Rabbit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rabbit").field("node", &self.node).finish()
    }
}

impl Rabbit {
    pub fn new(root: &Path) -> Self {
        let dir = root.join("rabbitmq");
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let mut dist_port = free_port();
        while dist_port == port {
            dist_port = free_port();
        }
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.1 = 127.0.0.1:{port}\nlog.file.level = info\n"),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        // Our own (empty) env file: the system's names another node.
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        Rabbit {
            node: format!("tamga-soak-{}@localhost", std::process::id()),
            dir,
            port,
            dist_port,
            child: None,
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn env(&self, c: &mut Command) {
        let d = &self.dir;
        c.env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("node.pid"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            // The start script then execs the VM (one process, ours to
            // kill) with the shell input off.
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .stdin(Stdio::null());
    }

    /// Starts the node and waits until it accepts AMQP connections.
    pub fn start(&mut self, spawner: &Spawner) {
        let script = Path::new(RABBITMQ_BIN).join("rabbitmq-server");
        assert!(
            script.exists(),
            "{} is missing: RabbitMQ is not installed (make services installs it)",
            script.display()
        );
        let mut c = Command::new(script);
        self.env(&mut c);
        let log = self.dir.join("server.log");
        c.stdout(log_file(&log)).stderr(log_file(&log));
        let mut child = spawner.spawn(c).expect("rabbitmq-server");
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !port_open(self.port) {
            if let Ok(Some(s)) = child.try_wait() {
                panic!(
                    "the soak's RabbitMQ node exited ({s}) while starting:\n{}",
                    tail(&log, 30)
                );
            }
            assert!(
                Instant::now() < deadline,
                "the soak's RabbitMQ node did not listen within 120 s:\n{}",
                tail(&log, 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    fn ctl(&self, args: &[&str]) -> std::process::Output {
        let mut c = Command::new(Path::new(RABBITMQ_BIN).join("rabbitmqctl"));
        self.env(&mut c);
        c.arg("-n").arg(&self.node).args(args);
        c.output().expect("rabbitmqctl")
    }

    /// `rabbitmqctl stop`: a clean shutdown of the node.
    pub fn stop(&mut self) {
        let out = self.ctl(&["-q", "stop"]);
        if let Some(mut child) = self.child.take() {
            if !out.status.success() {
                eprintln!(
                    "soak: rabbitmqctl stop: {}; killing the node",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            wait_or_kill(&mut child, Duration::from_secs(60));
        }
    }

    /// SIGKILL: the node crashes (quorum queues recover from their logs).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `name messages` of every queue.
    pub fn queue_depths(&self) -> Vec<(String, u64)> {
        let out = self.ctl(&["-q", "list_queues", "name", "messages"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some((f.next()?.to_string(), f.next()?.parse().ok()?))
            })
            .collect()
    }
}

impl Drop for Rabbit {
    fn drop(&mut self) {
        self.kill();
    }
}

// --- PostgreSQL ------------------------------------------------------------------

/// How to stop PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgStop {
    /// SIGINT: fast shutdown (sessions cut, a checkpoint written).
    Fast,
    /// SIGQUIT: immediate shutdown, like a crash (WAL recovery at the next start).
    Immediate,
}

/// A PostgreSQL cluster of our own (initdb'd under `dir`), as the
/// `postgres` user when we are root (initdb refuses root).
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    pub port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("port", &self.port)
            .finish()
    }
}

/// The newest server under /usr/lib/postgresql/*/bin.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect(
            "PostgreSQL's server binaries under /usr/lib/postgresql (make services installs them)",
        )
        .filter_map(|e| {
            let e = e.ok()?;
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql/*/bin")
        .1
}

/// uid and gid of `postgres` when we run as root (initdb and the server
/// refuse root); `None` otherwise.
fn pg_owner() -> Option<(u32, u32)> {
    // SAFETY: geteuid(2) has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let out = Command::new("id").arg("-u").arg("postgres").output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").arg("-g").arg("postgres").output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

impl Postgres {
    /// initdb (trust authentication, UTF-8).
    pub fn init(root: &Path) -> Self {
        let dir = root.join("postgres");
        std::fs::create_dir_all(&dir).unwrap();
        let owner = pg_owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let bin = pg_bin();
        let data = dir.join("data");
        let log = root.join("postgres.log");
        let mut c = Command::new(bin.join("initdb"));
        c.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log_file(&log))
            .stderr(log_file(&log));
        if let Some((uid, gid)) = owner {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        let status = c.status().expect("initdb");
        assert!(status.success(), "initdb: {status}\n{}", tail(&log, 30));
        Postgres {
            bin,
            data,
            socket_dir: dir,
            log,
            port: free_port(),
            owner,
            child: None,
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Starts the server (fsync on: durability is what is tested) and waits
    /// until it accepts connections (after any crash recovery).
    pub fn start(&mut self, spawner: &Spawner) {
        let mut c = Command::new(self.bin.join("postgres"));
        c.arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.socket_dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=on",
            ])
            .current_dir(&self.socket_dir)
            .stdin(Stdio::null())
            .stdout(log_file(&self.log))
            .stderr(log_file(&self.log));
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        let mut child = spawner.spawn(c).expect("postgres");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                panic!(
                    "the soak's PostgreSQL exited ({s}) while starting:\n{}",
                    tail(&self.log, 30)
                );
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-p",
                    &self.port.to_string(),
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the soak's PostgreSQL did not accept connections within 120 s:\n{}",
                tail(&self.log, 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    pub fn stop(&mut self, how: PgStop) {
        if let Some(mut child) = self.child.take() {
            signal(
                &child,
                match how {
                    PgStop::Fast => libc::SIGINT,
                    PgStop::Immediate => libc::SIGQUIT,
                },
            );
            wait_or_kill(&mut child, Duration::from_secs(60));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop(PgStop::Immediate);
    }
}

// --- SoftHSM2 --------------------------------------------------------------------

/// A SoftHSM2 token holding the authorities' keys (imported from the demo
/// PKI, so their certificates stay valid). "Unavailable" is the token
/// directory moved away, as the HSM outage test does: every PKCS#11 call
/// fails until it is back.
#[derive(Debug)]
pub struct Hsm {
    pub conf: PathBuf,
    tokens: PathBuf,
    away: PathBuf,
    pin_file: PathBuf,
}

const TOKEN: &str = "tamga-soak";
const PIN: &str = "soak-user-4242";

impl Hsm {
    /// Initialises the token and imports `keys` (country, PKCS#8 PEM path) as
    /// `seal-<cc>`.
    pub fn new(root: &Path, keys: &[(&str, PathBuf)]) -> Self {
        let module = Path::new(tamga_pkcs11::SOFTHSM2_DEFAULT_MODULE);
        assert!(
            module.exists(),
            "{} is missing: SoftHSM2 is not installed (make deps installs softhsm2)",
            module.display()
        );
        let dir = root.join("softhsm");
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        let pin_file = dir.join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let util = |args: &[&str]| {
            let out = Command::new("softhsm2-util")
                .env("SOFTHSM2_CONF", &conf)
                .args(args)
                .output()
                .expect("softhsm2-util (make deps installs softhsm2)");
            assert!(
                out.status.success(),
                "softhsm2-util {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        util(&[
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "soak-so-4242",
            "--pin",
            PIN,
        ]);
        for (cc, key) in keys {
            let key = key.to_str().expect("UTF-8 path");
            let id = hex::encode(cc.as_bytes());
            util(&[
                "--import",
                key,
                "--token",
                TOKEN,
                "--label",
                &format!("seal-{}", cc.to_ascii_lowercase()),
                "--id",
                &id,
                "--pin",
                PIN,
            ]);
        }
        Hsm {
            conf,
            away: dir.join("tokens.away"),
            tokens,
            pin_file,
        }
    }

    /// The `key =` of `cc`'s authority.
    pub fn uri(&self, cc: &str) -> String {
        format!(
            "pkcs11:token={TOKEN};object=seal-{};type=private?module-path={}&pin-source=file:{}",
            cc.to_ascii_lowercase(),
            tamga_pkcs11::SOFTHSM2_DEFAULT_MODULE,
            self.pin_file.display()
        )
    }

    pub fn unplug(&self) {
        std::fs::rename(&self.tokens, &self.away).unwrap();
        std::fs::create_dir(&self.tokens).unwrap();
    }

    pub fn plug_back(&self) {
        std::fs::remove_dir(&self.tokens).unwrap();
        std::fs::rename(&self.away, &self.tokens).unwrap();
    }
}
