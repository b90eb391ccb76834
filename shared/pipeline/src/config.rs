//! Configuration: a TOML file, every scalar key overridable by an environment
//! variable `TAMGA_<SECTION>_<KEY>` (`TAMGA_AMQP_URL`, `TAMGA_DATABASE_URL`,
//! `TAMGA_TRUST_DIR`, …).
//!
//! Parsed from an abstract source (text plus a lookup function), so it is
//! testable without touching the process environment. Secrets (passwords in
//! URLs) never appear in `Debug` output or logs.

use std::path::PathBuf;

use serde::Deserialize;

/// The AMQP broker. Absent: the embedded in-process bus.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    pub url: String,
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u16,
    /// `x-delivery-limit` of the stage queues.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    #[serde(default = "default_confirm_timeout_ms")]
    pub confirm_timeout_ms: u64,
    /// Confirm-mode publisher channels, each with one publish awaiting its
    /// confirm: the number of publishes confirmed concurrently.
    #[serde(default = "default_publisher_channels")]
    pub publisher_channels: usize,
}

/// PostgreSQL. Absent: the embedded SQLite audit store.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// What the workers and the gateway log in as: `tamga_worker` when `migrate_url` is
    /// set (the privilege boundary), else the schema's owner (the one-URL quick start).
    pub url: String,
    /// The schema owner's URL, used by `tamga migrate` only. When set, the workers never
    /// migrate, and refuse to start if `url`'s login could rewrite the audit trail.
    #[serde(default)]
    pub migrate_url: Option<String>,
    /// Role every pooled connection switches to (INSERT and SELECT only); `""` for none.
    #[serde(default = "default_app_role")]
    pub app_role: Option<String>,
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    #[serde(default = "default_timeout_ms")]
    pub wait_timeout_ms: u64,
    #[serde(default = "default_timeout_ms")]
    pub create_timeout_ms: u64,
    #[serde(default = "default_statement_timeout_ms")]
    pub statement_timeout_ms: u64,
    /// Group commit: up to this many declarations' records in one transaction (one WAL
    /// flush); `0` turns it off (one transaction per record).
    #[serde(default = "default_group_commit")]
    pub group_commit: usize,
}

fn default_group_commit() -> usize {
    64
}

impl DatabaseConfig {
    /// True when migrations are the owner's (`migrate_url` is set): the workers then log
    /// in as a role that cannot change the trail.
    pub fn is_split(&self) -> bool {
        self.migrate_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
    }

    /// How the workers and the gateway connect: `url`; they migrate at start only in the
    /// one-URL quick start, and require a login that cannot rewrite the trail otherwise.
    pub fn store_config(&self) -> tamga_store::StoreConfig {
        use std::time::Duration;
        let split = self.is_split();
        tamga_store::StoreConfig {
            url: self.url.clone(),
            app_role: self.app_role.clone().filter(|r| !r.trim().is_empty()),
            pool_size: self.pool_size,
            wait_timeout: Duration::from_millis(self.wait_timeout_ms),
            create_timeout: Duration::from_millis(self.create_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
            migrate: !split,
            require_boundary: split,
        }
    }

    /// How `tamga migrate` connects: `migrate_url`, else `url` (one URL: it is the owner).
    pub fn migrate_config(&self) -> tamga_store::StoreConfig {
        let mut c = self.store_config();
        if let Some(u) = self.migrate_url.as_deref().filter(|u| !u.trim().is_empty()) {
            c.url = u.to_owned();
        }
        c.app_role = None;
        c.migrate = true;
        c.require_boundary = false;
        c
    }
}

/// `[audit]`: signed checkpoints of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// A directory outside the database where every signed checkpoint is also written, one
    /// file each, never overwritten, for a backup or a witness to collect; `tamga audit
    /// verify` checks the database against it. Absent or empty: the database only.
    pub checkpoint_dir: Option<PathBuf>,
    /// Seconds between checkpoints (one is also taken at shutdown; none when nothing was
    /// appended since the last). 0: only at shutdown and by `tamga audit checkpoint`.
    pub checkpoint_interval_s: u64,
    /// The `[[authority]]` (country) whose key signs checkpoints; absent: the first by
    /// country code.
    pub authority: Option<String>,
    /// More certificates (PEM) whose signatures on checkpoints are trusted — the previous
    /// authority certificates after a key rollover — besides every `[[authority]]` cert.
    pub certificates: Vec<PathBuf>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_dir: None,
            checkpoint_interval_s: 300,
            authority: None,
            certificates: Vec::new(),
        }
    }
}

impl AuditConfig {
    /// The external checkpoint directory, if one is configured.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.checkpoint_dir
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// `<CC>/` anchors and CRLs, as for `tamga verify` (the directory
    /// source; unused when trusted lists are configured).
    #[serde(default)]
    pub dir: PathBuf,
    /// Optional validation policy (TOML), as for `tamga verify --policy`.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// Signed ETSI TS 119 612 trusted lists, one per country.
    #[serde(default)]
    pub list: Vec<TlConfig>,
    /// A list of trusted lists naming each country's list and signers.
    #[serde(default)]
    pub lotl: Option<LotlConfig>,
    /// Where the last accepted sequence numbers and last good lists are kept
    /// (required with trusted lists).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// `<CC>/*.crl` for countries on trusted lists.
    #[serde(default)]
    pub crl_dir: Option<PathBuf>,
    /// Reload the trust source every this many seconds (0: only on SIGHUP).
    #[serde(default)]
    pub reload_secs: u64,
    /// Timeout for a trusted list named by an `http://` URL in the LOTL,
    /// milliseconds (0 or absent: 10 000).
    #[serde(default)]
    pub fetch_timeout_ms: u64,
    /// `[trust.ocsp]`: asking OCSP responders (off unless `fetch = true`).
    #[serde(default)]
    pub ocsp: crate::ocsp_fetch::OcspConfig,
}

/// `[[trust.list]]`: one country's signed list and the certificates allowed to sign it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlConfig {
    pub country: String,
    pub path: PathBuf,
    /// PEM files with the pinned signer certificates.
    pub signers: Vec<PathBuf>,
}

/// `[trust.lotl]`: the list of lists and its pinned signers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LotlConfig {
    pub path: PathBuf,
    pub signers: Vec<PathBuf>,
}

/// One destination country this site countersigns for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    pub country: String,
    /// PKCS#8 PEM path or `pkcs11:` URI.
    pub key: String,
    pub cert: PathBuf,
    #[serde(default)]
    pub chain: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Names this process in audit events and its hash chains.
    pub name: String,
    /// Deliveries handled at once per stage.
    pub concurrency: usize,
    /// Audit hash chains per stage in this process: appends within one chain
    /// are serialised, so more chains mean more commits in parallel.
    pub audit_chains: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` for `/metrics`; empty disables the endpoint.
    pub listen: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `tamga=debug`.
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedConfig {
    /// SQLite file for the embedded audit store (`:memory:` allowed).
    pub sqlite: String,
}

/// The broker gateway (`tamga serve`, `tamga-gateway`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// `host:port` the HTTP API listens on (`TAMGA_GATEWAY_LISTEN`).
    pub listen: String,
    /// Submissions per second each broker may make on average.
    pub rate_per_second: u32,
    /// Submissions a broker may make at once above its rate.
    pub rate_burst: u32,
    /// `Retry-After` (seconds) when the broker or the database is unavailable.
    pub retry_after_secs: u32,
    /// Longest hold of an empty `GET /v1/notifications?wait=…` (at most 30 s).
    pub long_poll_max_secs: u32,
    /// Push notifications: how long one POST to a broker's callback may take.
    pub callback_timeout_ms: u64,
    /// Push notifications: the first wait after a failed POST, doubling (with jitter) up to
    /// `callback_retry_max_ms`.
    pub callback_retry_first_ms: u64,
    pub callback_retry_max_ms: u64,
    /// HTTPS: `[gateway.tls]`; absent: plain HTTP (behind a TLS-terminating proxy).
    pub tls: Option<GatewayTlsConfig>,
    /// The checkpoint: `[gateway.checks]`.
    pub checks: ChecksConfig,
}

/// `[gateway.checks]`: how checkpoint checks are recorded and when a second scan of the
/// same declaration is amber ("already presented").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// The checkpoints officers choose from on `/check` (and that the API and uploads
    /// accept). Empty: any name of 1 to 64 characters.
    pub checkpoints: Vec<String>,
    /// Which second scans turn amber: `other-checkpoint` (default: another checkpoint than
    /// an earlier presentation, or any scan after it left), `any` (the same checkpoint too,
    /// after `repeat_grace_secs`), `off`.
    pub repeat: tamga_check::repeat::RepeatMode,
    /// With `repeat = "any"`: a second scan at the same checkpoint within this time is the
    /// officer looking again, not a repeat.
    pub repeat_grace_secs: u64,
    /// Checkpoints where an accepted scan records the declaration as having left: every
    /// later scan elsewhere is amber.
    pub exit_checkpoints: Vec<String>,
    /// How long a trust bundle from `GET /v1/trust-bundle` is current (hours); checks
    /// against an older one are amber ("could not check"), never red.
    pub bundle_validity_hours: u32,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        Self {
            checkpoints: Vec::new(),
            repeat: tamga_check::repeat::RepeatMode::default(),
            repeat_grace_secs: 1800,
            exit_checkpoints: Vec::new(),
            bundle_validity_hours: 24,
        }
    }
}

impl ChecksConfig {
    /// A checkpoint name this site accepts: a valid name, and one of `checkpoints` when the
    /// site lists them.
    pub fn allows_checkpoint(&self, name: &str) -> bool {
        tamga_check::valid_name(name)
            && (self.checkpoints.is_empty() || self.checkpoints.iter().any(|c| c == name))
    }

    /// The repeat rule these settings make.
    pub fn repeat_rule(&self) -> tamga_check::repeat::RepeatRule {
        tamga_check::repeat::RepeatRule {
            mode: self.repeat,
            grace_ms: i64::try_from(self.repeat_grace_secs)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000),
            exit_checkpoints: self.exit_checkpoints.clone(),
        }
    }
}

/// `[gateway.tls]`: the gateway's own certificate and, for mutual TLS, the CAs whose
/// client certificates authenticate brokers (subject CN = the broker's name).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayTlsConfig {
    /// PEM: the server certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: the server's private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// PEM: CA certificates that issue brokers' client certificates. Absent: no mutual TLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Refuse connections without a valid client certificate (else tokens still work).
    #[serde(default)]
    pub require_client_cert: bool,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            rate_per_second: 50,
            rate_burst: 100,
            retry_after_secs: 2,
            long_poll_max_secs: 30,
            callback_timeout_ms: 10_000,
            callback_retry_first_ms: 1_000,
            callback_retry_max_ms: 300_000,
            tls: None,
            checks: ChecksConfig::default(),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub amqp: Option<AmqpConfig>,
    #[serde(default)]
    pub database: Option<DatabaseConfig>,
    pub trust: TrustConfig,
    #[serde(default)]
    pub authority: Vec<AuthorityConfig>,
    #[serde(default)]
    pub worker: WorkerConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub embedded: EmbeddedConfig,
    #[serde(default)]
    pub gateway: GatewayConfig,
    #[serde(default)]
    pub audit: AuditConfig,
}

fn default_prefetch() -> u16 {
    64
}
fn default_heartbeat() -> u16 {
    10
}
fn default_delivery_limit() -> u32 {
    5
}
fn default_confirm_timeout_ms() -> u64 {
    10_000
}
fn default_publisher_channels() -> usize {
    64
}
fn default_app_role() -> Option<String> {
    Some("tamga_app".into())
}
fn default_pool_size() -> usize {
    16
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_statement_timeout_ms() -> u64 {
    5_000
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: "tamga".into(),
            concurrency: 32,
            audit_chains: 16,
        }
    }
}
impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}
impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info".into(),
        }
    }
}
impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            sqlite: "tamga-audit.sqlite".into(),
        }
    }
}

/// Hides the password in a URL: `amqp://guest:***@host/`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}")
            } else {
                format!("{scheme}://{user}@{host}")
            }
        }
        None => url.to_string(),
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &redact(&self.url))
            .field("prefetch", &self.prefetch)
            .field("heartbeat_secs", &self.heartbeat_secs)
            .field("delivery_limit", &self.delivery_limit)
            .finish()
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact(&self.url))
            .field("migrate_url", &self.migrate_url.as_deref().map(redact))
            .field("app_role", &self.app_role)
            .field("pool_size", &self.pool_size)
            .field("group_commit", &self.group_commit)
            .finish()
    }
}

/// Why the configuration is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(String),
    #[error("environment variable {var}: {detail}")]
    Env { var: String, detail: String },
}

/// Sections whose scalar keys environment variables may override.
const SECTIONS: &[&str] = &[
    "amqp", "database", "trust", "worker", "metrics", "log", "embedded", "gateway", "audit",
];

impl Config {
    /// Parses `text`, then applies overrides from `env` (a lookup such as
    /// `|k| std::env::var(k).ok()`), enumerated by `env_keys`.
    pub fn from_sources(
        text: &str,
        env_keys: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut value: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        for var in env_keys {
            let Some(rest) = var.strip_prefix("TAMGA_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            let Some((section, key)) = SECTIONS.iter().find_map(|s| {
                lower
                    .strip_prefix(s)
                    .and_then(|k| k.strip_prefix('_'))
                    .map(|k| (*s, k.to_string()))
            }) else {
                continue;
            };
            let Some(raw) = env(var) else { continue };
            let table = value
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(table) = table else {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    detail: format!("[{section}] is not a table"),
                });
            };
            // Keep the type the key has (or would have): numbers and
            // booleans parse, everything else stays a string.
            let parsed = if let Ok(i) = raw.parse::<i64>() {
                toml::Value::Integer(i)
            } else if let Ok(b) = raw.parse::<bool>() {
                toml::Value::Boolean(b)
            } else {
                toml::Value::String(raw)
            };
            let parsed = match (table.get(&key), parsed) {
                (Some(toml::Value::String(_)), toml::Value::Integer(i)) => {
                    toml::Value::String(i.to_string())
                }
                (_, p) => p,
            };
            table.insert(key, parsed);
        }
        toml::Value::Table(value)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))
    }

    /// Reads `path` and the process environment.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Parse(format!("cannot read {}: {e}", path.display())))?;
        let keys: Vec<String> = std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("TAMGA_"))
            .collect();
        Self::from_sources(&text, &keys, &|k| std::env::var(k).ok())
    }

    /// True when neither a broker nor a database is configured.
    pub fn is_embedded(&self) -> bool {
        self.amqp.is_none() && self.database.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT: &str = r#"
[amqp]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
[database]
url = "postgres://postgres@127.0.0.1:5432/tamga"
[trust]
dir = "/etc/tamga/trust"          # <CC>/ anchors and CRLs, as for `tamga verify`
[[authority]]                      # one per destination country this site countersigns for
country = "AZ"
key = "/etc/tamga/keys/az-authority.key"
cert = "/etc/tamga/keys/az-authority.pem"
chain = ["/etc/tamga/keys/az-issuing-ca.pem"]
"#;

    #[test]
    fn the_contract_example_parses() {
        let c = Config::from_sources(CONTRACT, &[], &|_| None).unwrap();
        assert_eq!(
            c.amqp.as_ref().unwrap().url,
            "amqp://guest:guest@127.0.0.1:5672/%2f"
        );
        assert_eq!(c.authority[0].country, "AZ");
        assert_eq!(c.authority[0].chain.len(), 1);
        assert_eq!(c.metrics.listen, "127.0.0.1:9464");
        assert!(!c.is_embedded());
    }

    #[test]
    fn environment_overrides_every_scalar_key() {
        let env = |k: &str| match k {
            "TAMGA_AMQP_URL" => Some("amqp://u:secret@mq:5672/%2f".to_string()),
            "TAMGA_DATABASE_URL" => Some("postgres://db/x".to_string()),
            "TAMGA_AMQP_PREFETCH" => Some("8".to_string()),
            "TAMGA_WORKER_NAME" => Some("verifier-7".to_string()),
            "TAMGA_TRUST_DIR" => Some("/srv/trust".to_string()),
            "TAMGA_DATABASE_APP_ROLE" => Some("auditor".to_string()),
            _ => None,
        };
        let keys: Vec<String> = [
            "TAMGA_AMQP_URL",
            "TAMGA_DATABASE_URL",
            "TAMGA_AMQP_PREFETCH",
            "TAMGA_WORKER_NAME",
            "TAMGA_TRUST_DIR",
            "TAMGA_DATABASE_APP_ROLE",
            "HOME",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = Config::from_sources(CONTRACT, &keys, &env).unwrap();
        let amqp = c.amqp.unwrap();
        assert_eq!(amqp.url, "amqp://u:secret@mq:5672/%2f");
        assert_eq!(amqp.prefetch, 8);
        assert_eq!(c.database.as_ref().unwrap().url, "postgres://db/x");
        assert_eq!(c.database.unwrap().app_role.as_deref(), Some("auditor"));
        assert_eq!(c.worker.name, "verifier-7");
        assert_eq!(c.trust.dir, PathBuf::from("/srv/trust"));
        // Secrets stay out of Debug output.
        assert!(!format!("{amqp:?}").contains("secret"));
    }

    #[test]
    fn one_url_migrates_two_urls_draw_a_boundary() {
        let c = Config::from_sources(CONTRACT, &[], &|_| None).unwrap();
        let d = c.database.unwrap();
        assert!(!d.is_split());
        let s = d.store_config();
        assert!(s.migrate && !s.require_boundary);
        assert_eq!(s.app_role.as_deref(), Some("tamga_app"));
        assert_eq!(d.migrate_config().url, d.url);

        let env = |k: &str| match k {
            "TAMGA_DATABASE_URL" => Some("postgres://tamga_worker:w@db/tamga".to_string()),
            "TAMGA_DATABASE_MIGRATE_URL" => Some("postgres://owner:secret@db/tamga".to_string()),
            "TAMGA_DATABASE_APP_ROLE" => Some(String::new()),
            "TAMGA_AUDIT_CHECKPOINT_DIR" => Some("/var/lib/tamga/checkpoints".to_string()),
            "TAMGA_AUDIT_CHECKPOINT_INTERVAL_S" => Some("60".to_string()),
            _ => None,
        };
        let keys: Vec<String> = [
            "TAMGA_DATABASE_URL",
            "TAMGA_DATABASE_MIGRATE_URL",
            "TAMGA_DATABASE_APP_ROLE",
            "TAMGA_AUDIT_CHECKPOINT_DIR",
            "TAMGA_AUDIT_CHECKPOINT_INTERVAL_S",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = Config::from_sources(CONTRACT, &keys, &env).unwrap();
        let d = c.database.clone().unwrap();
        assert!(d.is_split());
        let s = d.store_config();
        assert!(!s.migrate && s.require_boundary);
        assert_eq!(s.app_role, None);
        let m = d.migrate_config();
        assert_eq!(m.url, "postgres://owner:secret@db/tamga");
        assert!(m.migrate && m.app_role.is_none());
        assert!(!format!("{d:?}").contains("secret"));
        assert_eq!(
            c.audit.dir(),
            Some(std::path::Path::new("/var/lib/tamga/checkpoints"))
        );
        assert_eq!(c.audit.checkpoint_interval_s, 60);
        let plain = Config::from_sources("[trust]\ndir = \"t\"\n", &[], &|_| None).unwrap();
        assert_eq!(plain.audit, AuditConfig::default());
        assert_eq!(plain.audit.dir(), None);
    }

    #[test]
    fn embedded_without_broker_and_database() {
        let c = Config::from_sources("[trust]\ndir = \"t\"\n", &[], &|_| None).unwrap();
        assert!(c.is_embedded());
        assert!(Config::from_sources("[trust]\ndir = \"t\"\nbogus = 1\n", &[], &|_| None).is_err());
    }

    #[test]
    fn checks_section() {
        let c = Config::from_sources(
            "[trust]\ndir = \"t\"\n[gateway.checks]\ncheckpoints = [\"AZ-ALAT\", \"AZ-EXIT\"]\nrepeat = \"any\"\nrepeat_grace_secs = 60\nexit_checkpoints = [\"AZ-EXIT\"]\n",
            &[],
            &|_| None,
        )
        .unwrap();
        let checks = &c.gateway.checks;
        assert!(checks.allows_checkpoint("AZ-ALAT") && !checks.allows_checkpoint("AZ-OTHER"));
        let rule = checks.repeat_rule();
        assert_eq!(rule.mode, tamga_check::repeat::RepeatMode::Any);
        assert_eq!(rule.grace_ms, 60_000);
        assert_eq!(checks.bundle_validity_hours, 24);
        let d = Config::from_sources("[trust]\ndir = \"t\"\n", &[], &|_| None).unwrap();
        assert!(d.gateway.checks.allows_checkpoint("anything"));
        assert!(!d.gateway.checks.allows_checkpoint(""));
        assert!(Config::from_sources(
            "[trust]\ndir = \"t\"\n[gateway.checks]\nrepeat = \"sometimes\"\n",
            &[],
            &|_| None
        )
        .is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(
            redact("amqp://guest:guest@h:5672/%2f"),
            "amqp://guest:***@h:5672/%2f"
        );
        assert_eq!(
            redact("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
    }
}
