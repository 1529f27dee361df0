//! The one typed configuration: a TOML file (`--config`) overlaid by `SWITCHBOARD_*`
//! environment variables; secrets may also come from `SWITCHBOARD_*_FILE`. Unknown keys in the
//! file are an error, unknown `SWITCHBOARD_*` variables a warning. `Debug` redacts secrets and
//! database passwords.

use ipnet::IpNet;
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use switchboard_services::Secret;

/// Everything Switchboard can be told.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database, files and the master key.
    pub data_dir: PathBuf,
    /// File holding the master key that wraps per-row data keys; default `<data_dir>/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// HTTP server.
    pub server: ServerConfig,
    /// Database.
    pub database: DatabaseConfig,
    /// Operator sign-in.
    pub auth: AuthConfig,
    /// Telegram connectivity.
    pub telegram: TelegramConfig,
    /// The operator inbox.
    pub inbox: InboxConfig,
    /// Media files of ingested messages.
    pub media: MediaConfig,
    /// The audit trail.
    pub audit: AuditConfig,
    /// Logging.
    pub log: LogConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            master_key_file: None,
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            telegram: TelegramConfig::default(),
            inbox: InboxConfig::default(),
            media: MediaConfig::default(),
            audit: AuditConfig::default(),
            log: LogConfig::default(),
        }
    }
}

/// HTTP server settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL (e.g. `https://hub.example.com`); https turns on `Secure` cookies.
    pub public_url: Option<String>,
    /// Largest JSON request body, in bytes.
    pub max_json_bytes: usize,
    /// Largest uploaded attachment, in bytes.
    pub max_upload_bytes: usize,
    /// Reverse proxies (addresses or CIDR networks) whose `Forwarded`/`X-Forwarded-For`
    /// headers name the client; from anyone else these headers are ignored.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            max_json_bytes: 64 * 1024,
            max_upload_bytes: 20 * 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Reads `["10.0.0.0/8", "192.0.2.1", "::1"]`: a bare address is a network of one.
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{s:?} is not an IP address or CIDR network"))
                })
        })
        .collect()
}

/// Audit trail settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Audit events older than this many days are deleted (hourly); 0 keeps them forever.
    pub retention_days: u32,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 180,
        }
    }
}

/// Operator inbox settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboxConfig {
    /// Give chats that need an answer to online operators automatically (round-robin by
    /// load, respecting each operator's `max_chats`).
    pub auto_assign: bool,
    /// A reply left `sending` this long is returned by the outbox sweep (resent for personal
    /// accounts, `send_uncertain` for bots).
    pub outbox_stuck_after_secs: u64,
    /// How often the outbox sweep looks for replies left `sending`.
    pub outbox_sweep_secs: u64,
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            auto_assign: true,
            outbox_stuck_after_secs: 600,
            outbox_sweep_secs: 60,
        }
    }
}

/// Database settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/switchboard.db`.
    pub url: Option<Secret>,
    /// Pool size.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 10,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_ref().map(|u| redact_url(u.expose())))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// Replaces the password of a `scheme://user:password@host/…` URL with `***`, and any
/// `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        out = format!("{scheme}://{user}:***@{host}");
    }
    if let Some(i) = out.find("password=") {
        let end = out[i..].find('&').map(|e| i + e).unwrap_or(out.len());
        out.replace_range(i..end, "password=***");
    }
    out
}

/// Operator sign-in settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session unused this many seconds expires.
    pub session_idle_secs: u64,
    /// A session expires this many seconds after sign-in.
    pub session_max_age_secs: u64,
    /// Consecutive failures that lock a username.
    pub lock_after: i32,
    /// Minutes a locked username stays locked.
    pub lock_minutes: u64,
    /// Failed sign-ins allowed per client address per 15 minutes.
    pub ip_max_failures: usize,
    /// Telegram sign-in for self-service users: `off`, `open` or `invite` (checked when the
    /// server starts: [`AuthConfig::self_service_mode`]).
    pub self_service: String,
    /// Username of the bot that sends sign-in codes (a bot of the main workspace); Settings
    /// may choose another.
    pub service_bot: Option<String>,
}

impl AuthConfig {
    /// `auth.self_service` parsed; an error names the allowed values.
    pub fn self_service_mode(&self) -> Result<SelfServiceMode, ConfigError> {
        match self.self_service.trim() {
            "off" => Ok(SelfServiceMode::Off),
            "open" => Ok(SelfServiceMode::Open),
            "invite" => Ok(SelfServiceMode::Invite),
            other => Err(ConfigError::Invalid(format!(
                "auth.self_service must be \"off\", \"open\" or \"invite\", not {other:?}"
            ))),
        }
    }
}

/// Who may sign up by themselves with Telegram (`auth.self_service`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SelfServiceMode {
    /// Telegram sign-in is off (the default for `serve`).
    #[default]
    Off,
    /// Anyone with a Telegram account may sign up (the demo's default).
    Open,
    /// New users need an invite link from an owner of the main workspace.
    Invite,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_secs: 12 * 3600,
            session_max_age_secs: 7 * 24 * 3600,
            lock_after: 5,
            lock_minutes: 15,
            ip_max_failures: 20,
            self_service: "off".to_string(),
            service_bot: None,
        }
    }
}

/// Telegram settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// MTProto `api_id` from my.telegram.org.
    pub api_id: Option<i32>,
    /// MTProto `api_hash`.
    pub api_hash: Option<Secret>,
    /// Send every data center to this address (tests and the demo use tgsim).
    pub dc_override: Option<String>,
    /// Bot API base URL.
    pub bot_api_url: String,
    /// tgsim's control API, where new sessions get their auth keys (only with `dc_override`).
    pub sim_control_url: Option<String>,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        Self {
            api_id: None,
            api_hash: None,
            dc_override: None,
            bot_api_url: "https://api.telegram.org".to_string(),
            sim_control_url: None,
        }
    }
}

/// Media download settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Largest file downloaded into the file store, in bytes; larger ones are marked
    /// `too_large` in the message's media JSON.
    pub max_file_bytes: u64,
    /// Downloads running at once across all accounts (each account fetches one at a time).
    pub max_concurrent_downloads: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: 20 * 1024 * 1024,
            max_concurrent_downloads: 4,
        }
    }
}

/// Logging settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `switchboard=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
            format: "text".to_string(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
    /// Comma-separated strings.
    List,
}

/// Every key settable from the environment: (path in the TOML, variable, kind, secret).
const ENV_KEYS: &[(&str, &str, Kind, bool)] = &[
    ("data_dir", "SWITCHBOARD_DATA_DIR", Kind::Str, false),
    (
        "master_key_file",
        "SWITCHBOARD_MASTER_KEY_FILE",
        Kind::Str,
        false,
    ),
    ("server.listen", "SWITCHBOARD_LISTEN", Kind::Str, false),
    (
        "server.public_url",
        "SWITCHBOARD_PUBLIC_URL",
        Kind::Str,
        false,
    ),
    (
        "server.max_json_bytes",
        "SWITCHBOARD_MAX_JSON_BYTES",
        Kind::Int,
        false,
    ),
    (
        "server.max_upload_bytes",
        "SWITCHBOARD_MAX_UPLOAD_BYTES",
        Kind::Int,
        false,
    ),
    (
        "server.trusted_proxies",
        "SWITCHBOARD_TRUSTED_PROXIES",
        Kind::List,
        false,
    ),
    (
        "inbox.auto_assign",
        "SWITCHBOARD_INBOX_AUTO_ASSIGN",
        Kind::Bool,
        false,
    ),
    (
        "inbox.outbox_stuck_after_secs",
        "SWITCHBOARD_INBOX_OUTBOX_STUCK_AFTER_SECS",
        Kind::Int,
        false,
    ),
    (
        "inbox.outbox_sweep_secs",
        "SWITCHBOARD_INBOX_OUTBOX_SWEEP_SECS",
        Kind::Int,
        false,
    ),
    ("database.url", "SWITCHBOARD_DATABASE_URL", Kind::Str, true),
    (
        "database.max_connections",
        "SWITCHBOARD_DATABASE_MAX_CONNECTIONS",
        Kind::Int,
        false,
    ),
    (
        "auth.session_idle_secs",
        "SWITCHBOARD_AUTH_SESSION_IDLE_SECS",
        Kind::Int,
        false,
    ),
    (
        "auth.session_max_age_secs",
        "SWITCHBOARD_AUTH_SESSION_MAX_AGE_SECS",
        Kind::Int,
        false,
    ),
    (
        "auth.lock_after",
        "SWITCHBOARD_AUTH_LOCK_AFTER",
        Kind::Int,
        false,
    ),
    (
        "auth.lock_minutes",
        "SWITCHBOARD_AUTH_LOCK_MINUTES",
        Kind::Int,
        false,
    ),
    (
        "auth.ip_max_failures",
        "SWITCHBOARD_AUTH_IP_MAX_FAILURES",
        Kind::Int,
        false,
    ),
    (
        "auth.self_service",
        "SWITCHBOARD_AUTH_SELF_SERVICE",
        Kind::Str,
        false,
    ),
    (
        "auth.service_bot",
        "SWITCHBOARD_AUTH_SERVICE_BOT",
        Kind::Str,
        false,
    ),
    (
        "telegram.api_id",
        "SWITCHBOARD_TELEGRAM_API_ID",
        Kind::Int,
        false,
    ),
    (
        "telegram.api_hash",
        "SWITCHBOARD_TELEGRAM_API_HASH",
        Kind::Str,
        true,
    ),
    (
        "telegram.dc_override",
        "SWITCHBOARD_TELEGRAM_DC_OVERRIDE",
        Kind::Str,
        false,
    ),
    (
        "telegram.bot_api_url",
        "SWITCHBOARD_TELEGRAM_BOT_API_URL",
        Kind::Str,
        false,
    ),
    (
        "telegram.sim_control_url",
        "SWITCHBOARD_TELEGRAM_SIM_CONTROL_URL",
        Kind::Str,
        false,
    ),
    (
        "media.max_file_bytes",
        "SWITCHBOARD_MEDIA_MAX_FILE_BYTES",
        Kind::Int,
        false,
    ),
    (
        "media.max_concurrent_downloads",
        "SWITCHBOARD_MEDIA_MAX_CONCURRENT_DOWNLOADS",
        Kind::Int,
        false,
    ),
    (
        "audit.retention_days",
        "SWITCHBOARD_AUDIT_RETENTION_DAYS",
        Kind::Int,
        false,
    ),
    ("log.level", "SWITCHBOARD_LOG", Kind::Str, false),
    ("log.format", "SWITCHBOARD_LOG_FORMAT", Kind::Str, false),
];

/// The variable naming the configuration file when `--config` is not given.
pub const CONFIG_FILE_VAR: &str = "SWITCHBOARD_CONFIG";

/// Variables with the prefix that are not configuration keys but are known (no warning): the
/// configuration file's name, and the test suite's PostgreSQL server.
const ENV_IGNORED: &[&str] = &[CONFIG_FILE_VAR, "SWITCHBOARD_TEST_POSTGRES_URL"];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key or a wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A boolean environment variable is not `true`/`false`/`1`/`0`.
    #[error("{0} must be true or false")]
    NotABoolean(String),
    /// A `*_FILE` secret could not be read.
    #[error("cannot read {var} ({path}): {source}")]
    SecretFile {
        /// The variable.
        var: String,
        /// The file it names.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An environment variable has the wrong type.
    #[error("environment variable {0} must be an integer")]
    NotAnInteger(String),
}

/// The loaded configuration and warnings about the environment.
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown `SWITCHBOARD_*` variables and similar notes.
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads from an optional file (else the one `SWITCHBOARD_CONFIG` names, if set) and the
    /// given environment (pass `std::env::vars()`).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let named = env
            .iter()
            .find(|(name, value)| name == CONFIG_FILE_VAR && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value));
        let mut root = match file.or(named.as_deref()) {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| ConfigError::Invalid(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        let mut warnings = Vec::new();
        for (name, value) in &env {
            if !name.starts_with("SWITCHBOARD_") || ENV_IGNORED.contains(&name.as_str()) {
                continue;
            }
            let direct = ENV_KEYS.iter().find(|(_, var, _, _)| var == name);
            let from_file = name.strip_suffix("_FILE").and_then(|base| {
                ENV_KEYS
                    .iter()
                    .find(|(_, var, _, secret)| *secret && *var == base)
            });
            let (key, kind, value) = match (direct, from_file) {
                (Some((key, _, kind, _)), _) => (*key, *kind, value.clone()),
                (None, Some((key, _, kind, _))) => {
                    let text = std::fs::read_to_string(value).map_err(|source| {
                        ConfigError::SecretFile {
                            var: name.clone(),
                            path: value.clone(),
                            source,
                        }
                    })?;
                    (*key, *kind, text.trim_end_matches(['\n', '\r']).to_string())
                }
                (None, None) => {
                    warnings.push(format!("unknown environment variable {name} (ignored)"));
                    continue;
                }
            };
            let v = match kind {
                Kind::Str => toml::Value::String(value),
                Kind::Int => toml::Value::Integer(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| ConfigError::NotAnInteger(name.clone()))?,
                ),
                Kind::List => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(|v| toml::Value::String(v.to_string()))
                        .collect(),
                ),
                Kind::Bool => match value.trim() {
                    "true" | "1" => toml::Value::Boolean(true),
                    "false" | "0" => toml::Value::Boolean(false),
                    _ => return Err(ConfigError::NotABoolean(name.clone())),
                },
            };
            insert_path(&mut root, key, v);
        }
        let config: Config = toml::Value::Table(root)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))?;
        Ok(Loaded { config, warnings })
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) => u.expose().to_string(),
            None => format!(
                "sqlite://{}",
                self.data_dir.join("switchboard.db").display()
            ),
        }
    }

    /// The content-addressed file store's directory.
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    /// The master key file in force.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

fn insert_path(root: &mut toml::Table, path: &str, value: toml::Value) {
    let mut table = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table.insert(part.to_string(), value);
            return;
        }
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        table = next;
    }
}

#[cfg(test)]
mod readme_tests;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env_overlay() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "data_dir = \"/srv/sb\"\n[server]\nlisten = \"0.0.0.0:9000\"\n[auth]\nlock_after = 3"
        )
        .unwrap();
        let loaded = Config::load(
            Some(f.path()),
            env(&[
                ("SWITCHBOARD_LISTEN", "127.0.0.1:7000"),
                ("SWITCHBOARD_AUTH_LOCK_MINUTES", "2"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.auth.lock_after, 3);
        assert_eq!(c.auth.lock_minutes, 2);
        assert_eq!(c.media.max_file_bytes, 20 * 1024 * 1024);
        assert_eq!(c.database_url(), "sqlite:///srv/sb/switchboard.db");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn unknown_file_key_is_an_error_and_unknown_env_a_warning() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3").unwrap();
        let err = Config::load(Some(f.path()), env(&[])).err().unwrap();
        assert!(err.to_string().contains("lisen"), "{err}");
        let loaded = Config::load(None, env(&[("SWITCHBOARD_NOPE", "1")])).unwrap();
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("SWITCHBOARD_NOPE"));
    }

    #[test]
    fn the_file_named_by_switchboard_config_is_read_without_a_warning() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[auth]\nlock_after = 9").unwrap();
        let path = f.path().to_str().unwrap();
        let loaded = Config::load(None, env(&[("SWITCHBOARD_CONFIG", path)])).unwrap();
        assert_eq!(loaded.config.auth.lock_after, 9);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        // `--config` wins over the variable.
        let mut g = tempfile::NamedTempFile::new().unwrap();
        writeln!(g, "[auth]\nlock_after = 4").unwrap();
        let loaded = Config::load(Some(g.path()), env(&[("SWITCHBOARD_CONFIG", path)])).unwrap();
        assert_eq!(loaded.config.auth.lock_after, 4);
        // A variable naming a missing file is an error, not silently the defaults.
        let err = Config::load(None, env(&[("SWITCHBOARD_CONFIG", "/nonexistent/sb.toml")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/sb.toml"), "{err}");
    }

    #[test]
    fn secrets_from_files_and_redacted_debug() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "postgres://sb:s3cr3t-pw@db.local:5432/sb").unwrap();
        let mut h = tempfile::NamedTempFile::new().unwrap();
        write!(h, "abcdef0123456789hash").unwrap();
        let loaded = Config::load(
            None,
            env(&[
                ("SWITCHBOARD_DATABASE_URL_FILE", f.path().to_str().unwrap()),
                (
                    "SWITCHBOARD_TELEGRAM_API_HASH_FILE",
                    h.path().to_str().unwrap(),
                ),
            ]),
        )
        .unwrap();
        let c = loaded.config;
        assert_eq!(c.database_url(), "postgres://sb:s3cr3t-pw@db.local:5432/sb");
        assert_eq!(
            c.telegram.api_hash.as_ref().unwrap().expose(),
            "abcdef0123456789hash"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t-pw"), "{dbg}");
        assert!(!dbg.contains("abcdef0123456789hash"), "{dbg}");
        assert!(dbg.contains("postgres://sb:***@db.local:5432/sb"), "{dbg}");
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(matches!(
            Config::load(None, env(&[("SWITCHBOARD_AUTH_LOCK_AFTER", "many")])),
            Err(ConfigError::NotAnInteger(_))
        ));
        assert!(Config::load(None, env(&[("SWITCHBOARD_LISTEN", "not an address")])).is_err());
    }

    #[test]
    fn trusted_proxies_are_networks_or_addresses() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]").unwrap();
        let c = Config::load(Some(f.path()), env(&[])).unwrap().config;
        assert_eq!(
            c.server.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
        let c = Config::load(
            None,
            env(&[("SWITCHBOARD_TRUSTED_PROXIES", "192.0.2.1, 2001:db8::/32")]),
        )
        .unwrap()
        .config;
        assert_eq!(
            c.server.trusted_proxies,
            vec![
                "192.0.2.1/32".parse::<IpNet>().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ]
        );
        assert!(Config::default().server.trusted_proxies.is_empty());
        assert_eq!(Config::default().audit.retention_days, 180);
        let err = Config::load(None, env(&[("SWITCHBOARD_TRUSTED_PROXIES", "proxy.local")]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("proxy.local"), "{err}");
    }

    #[test]
    fn url_redaction() {
        assert_eq!(
            redact_url("postgres://u:p@h/d?sslmode=off"),
            "postgres://u:***@h/d?sslmode=off"
        );
        assert_eq!(
            redact_url("postgres://h/d?user=u&password=x&a=b"),
            "postgres://h/d?user=u&password=***&a=b"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
