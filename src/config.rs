//! The configuration file (`config.toml`) and its defaults.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub api: ApiConfig,
    pub retention: RetentionConfig,
    pub policy: PolicyConfig,
    pub keystone: KeystoneConfig,
    pub postgres: PostgresConfig,
    pub sync: SyncConfig,
    pub testing: TestingConfig,
    pub ui: UiConfig,
}

/// The action-log page at `/ui/` (README "The action-log page").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the page; off, `/ui/` is a 404 like any unknown route.
    pub enabled: bool,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { enabled: true }
    }
}

/// For other projects' tests: fault injection and the request journal (`serve
/// --fault-injection`, `--journal`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// Admins may add rules that make requests fail or wait (/ingest/v1/testing/faults).
    pub fault_injection: bool,
    /// Allows fault injection in keystone mode (refused there otherwise).
    pub allow_with_keystone: bool,
    /// Keep the last `journal_size` requests, readable by admins (/ingest/v1/testing/requests).
    pub journal: bool,
    pub journal_size: usize,
}

impl Default for TestingConfig {
    fn default() -> Self {
        TestingConfig {
            fault_injection: false,
            allow_with_keystone: false,
            journal: false,
            journal_size: 1000,
        }
    }
}

/// Mirroring a real Nova's action history (`nova-actions sync`, or inside `serve`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Run the mirror inside `serve`.
    pub enabled: bool,
    /// The upstream compute endpoint, e.g. http://nova:8774/v2.1; empty: from the Keystone
    /// catalog (service type `compute`).
    pub endpoint: String,
    /// A fixed token (a Nova behind noauth, tests); empty: Keystone password credentials.
    #[serde(serialize_with = "masked")]
    pub token: String,
    /// Keystone v3 (without /v3) and an admin-capable user, when no token is given.
    pub auth_url: String,
    pub username: String,
    #[serde(serialize_with = "masked")]
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    /// Which catalog endpoint: `public`, `internal` or `admin`.
    pub interface: String,
    /// The catalog region; empty: any.
    pub region_name: String,
    /// Time between the starts of two passes.
    pub interval: Span,
    /// Requests in flight to the upstream at once: low, so that the mirror never hurts it.
    pub concurrency: usize,
    /// How far back each pass re-reads before the last watermark (clock skew, late writes).
    pub overlap: Span,
    /// The newest microversion to ask for; the upstream's own maximum when lower.
    pub max_microversion: String,
    /// Time allowed for one upstream request.
    pub timeout: Span,
    /// A PEM file of the CAs to trust for https to the upstream and its Keystone; empty: the
    /// system's bundle (or SSL_CERT_FILE).
    pub ca_file: String,
    /// How often a pass also reads the actions of every live server, not only of the servers
    /// changed since the last pass: Nova records some actions (volume attachments, for one)
    /// without touching their server. 0: every pass.
    pub sweep_interval: Span,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            enabled: false,
            endpoint: String::new(),
            token: String::new(),
            auth_url: String::new(),
            username: String::new(),
            password: String::new(),
            project_name: "admin".into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            interface: "public".into(),
            region_name: String::new(),
            interval: Span(60),
            concurrency: 2,
            overlap: Span(300),
            max_microversion: "2.100".into(),
            timeout: Span(30),
            sweep_interval: Span(3600),
            ca_file: String::new(),
        }
    }
}

/// Where the store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The embedded store under `[storage] data_dir`: one process, no database server.
    #[default]
    Sled,
    /// A PostgreSQL database (`[postgres]`), which several nodes can share.
    Postgres,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostgresConfig {
    /// `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?options]`.
    #[serde(serialize_with = "masked_url")]
    pub url: String,
    /// Used when the URL names none; `PGPASSWORD` is the fallback.
    #[serde(serialize_with = "masked")]
    pub password: String,
    /// Connections each node keeps open at most.
    pub pool_size: usize,
    /// Time allowed to open a connection (and to wait for a free one).
    pub connect_timeout: Span,
    /// Time one statement may run; longer ones are cancelled and answered with 503.
    pub statement_timeout: Span,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            url: "postgresql://nova_actions@127.0.0.1:5432/nova_actions".into(),
            password: String::new(),
            pool_size: 16,
            connect_timeout: Span(5),
            statement_timeout: Span(5),
        }
    }
}

/// A URL with its password (if any) masked.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:********@{host}"),
        None => url.to_string(),
    }
}

fn masked_url<S: serde::Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redacted_url(value))
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeystoneConfig {
    /// Keystone's URL (without /v3), e.g. http://127.0.0.1:5000.
    pub auth_url: String,
    /// The service user this service validates tokens as (needs the service or admin role).
    pub username: String,
    #[serde(serialize_with = "masked")]
    pub password: String,
    pub user_domain_name: String,
    pub project_name: String,
    pub project_domain_name: String,
    /// Seconds a validated token is trusted without asking again (never past its expiry).
    pub token_cache_time: u64,
    /// Most tokens kept in the cache.
    pub cache_size: usize,
    /// Time allowed for one call to Keystone.
    pub timeout: Span,
    /// A PEM file of the CAs to trust for https to Keystone; empty: the system's bundle (or
    /// SSL_CERT_FILE).
    pub ca_file: String,
}

impl Default for KeystoneConfig {
    fn default() -> Self {
        KeystoneConfig {
            auth_url: "http://127.0.0.1:5000".into(),
            username: "nova-actions".into(),
            password: String::new(),
            user_domain_name: "Default".into(),
            project_name: "service".into(),
            project_domain_name: "Default".into(),
            token_cache_time: 300,
            cache_size: 10_000,
            timeout: Span(5),
            ca_file: String::new(),
        }
    }
}

/// Secrets never leave the process in printed configuration.
fn masked<S: serde::Serializer>(value: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if value.is_empty() { "" } else { "********" })
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// policy.yaml or policy.json overriding Nova's defaults; reloaded when it changes.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Open connections each worker accepts before new ones wait. High, because a connection
    /// that has sent nothing costs little and is cut after `request_timeout`.
    pub max_connections: usize,
    /// Idle time a kept-alive connection is held open.
    pub keep_alive: Span,
    /// Time a client has to send its request head (slow clients are cut off).
    pub request_timeout: Span,
    /// Time a single write's body may take to arrive, and the longest pause between two
    /// pieces of an import's body (408, connection closed, past it).
    pub body_timeout: Span,
    /// Largest body of a single write (imports stream and are not limited).
    pub max_body_bytes: usize,
    /// Time in-flight requests get to finish after SIGTERM/SIGINT.
    pub shutdown_timeout: Span,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8774)),
            workers: 0,
            max_connections: 10_000,
            keep_alive: Span(5),
            request_timeout: Span(5),
            body_timeout: Span(10),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout: Span(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: Backend,
    /// The embedded store's directory (`backend = "sled"`).
    pub data_dir: PathBuf,
    /// Largest traceback or details text accepted by writes and imports, in bytes.
    pub max_text_bytes: usize,
    /// Longest line (one server's history) an import accepts, in bytes: what one history may
    /// cost in memory while it is checked and stored.
    pub max_import_line_bytes: usize,
    /// The store's page cache, in MiB.
    pub cache_mb: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            backend: Backend::Sled,
            data_dir: PathBuf::from("data"),
            max_text_bytes: 64 * 1024,
            max_import_line_bytes: 64 << 20,
            cache_mb: 64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// `X-Auth-Token: <user>:<project>[:<roles>]`, unchecked: development and tests.
    Noauth,
    /// Tokens validated against Keystone v3 ([keystone] section).
    Keystone,
    /// Identity from X-Identity-Status/X-User-Id/X-Project-Id/X-Roles set by a trusted proxy.
    TrustedHeaders,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Named in the `WWW-Authenticate` header of a 401; in keystone mode it defaults to
    /// [keystone] auth_url.
    pub www_authenticate_uri: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Noauth,
            www_authenticate_uri: None,
        }
    }
}

impl Config {
    /// What 401 answers name in `WWW-Authenticate`.
    pub fn www_authenticate_uri(&self) -> String {
        match (&self.auth.www_authenticate_uri, self.auth.mode) {
            (Some(uri), _) => uri.clone(),
            (None, AuthMode::Keystone) => self.keystone.auth_url.clone(),
            (None, _) => "http://127.0.0.1/identity".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Nova's `[api] max_limit`: the largest page a list returns.
    pub max_limit: u64,
    /// Nova's `[api] compute_link_prefix`: replaces scheme and host of `next` links.
    pub compute_link_prefix: Option<String>,
    /// oslo.middleware's `enable_proxy_headers_parsing`: take links' scheme, host and prefix
    /// from `Forwarded` / `X-Forwarded-*`. Only behind a proxy that sets them.
    pub enable_proxy_headers_parsing: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_limit: 1000,
            compute_link_prefix: None,
            enable_proxy_headers_parsing: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Purge servers deleted longer ago than this (e.g. "90d"); unset keeps them for ever.
    pub deleted_servers_after: Option<Span>,
    /// How often the retention pass runs.
    pub interval: Span,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            deleted_servers_after: None,
            interval: Span(3600),
        }
    }
}

/// A span of time written as a number and a unit: `90d`, `12h`, `30m`, `45s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub u64);

impl Span {
    pub fn seconds(self) -> u64 {
        self.0
    }
}

impl std::str::FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Span, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number
            .parse()
            .map_err(|_| format!("'{text}' is not a span like 90d, 12h, 30m or 45s"))?;
        let scale = match unit {
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return Err(format!("'{text}' has no unit: use d, h, m or s (e.g. 90d)")),
        };
        number
            .checked_mul(scale)
            .map(Span)
            .ok_or_else(|| format!("'{text}' is too long"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        match s {
            0 => write!(f, "0s"),
            _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            _ if s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Environment variables that override the file: `NOVA_ACTIONS__<SECTION>__<KEY>`.
pub const ENV_PREFIX: &str = "NOVA_ACTIONS__";

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses `text` (from `origin`), then applies environment overrides from `env`.
    pub fn parse_with_env(
        text: &str,
        origin: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let at = |e: String| ConfigError(format!("{}: {e}", origin.display()));
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| at(e.message().to_string()))?;
        let mut overridden = Vec::new();
        // The defaults tell each key's type: a text setting takes the variable as written
        // ("2.20" stays 2.20, not the number 2.2).
        let defaults = toml::Value::try_from(Config::default()).ok();
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let Some((section, key)) = path.split_once("__") else {
                return Err(ConfigError(format!(
                    "{name}: expected {ENV_PREFIX}<SECTION>__<KEY>"
                )));
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(section_table) = entry else {
                return Err(ConfigError(format!("{name}: [{section}] is not a section")));
            };
            let default = defaults
                .as_ref()
                .and_then(|d| d.get(&section))
                .and_then(|s| s.get(&key));
            section_table.insert(key, env_value(&value, default));
            overridden.push(name);
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let source = if overridden.is_empty() {
                        origin.display().to_string()
                    } else {
                        format!("{} with {}", origin.display(), overridden.join(", "))
                    };
                    ConfigError(format!("{source}: {}", e.message()))
                })?;
        if config.api.max_limit == 0 {
            return Err(at("[api] max_limit must be at least 1".into()));
        }
        Ok(config)
    }

    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Config::parse_with_env(text, origin, std::iter::empty())
    }

    /// Reads `path` with the process environment's overrides; a missing file is an error unless
    /// `optional` (the default path may be absent, then the built-in defaults apply).
    pub fn load(path: &Path, optional: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(ConfigError(format!("{}: {e}", path.display()))),
        };
        Config::parse_with_env(&text, path, std::env::vars())
    }

    /// The effective configuration as TOML, secrets masked.
    pub fn render(&self) -> String {
        toml::to_string(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}

/// An environment value is TOML when it parses as one (`1000`, `true`, `"x"`), else a string.
fn env_value(raw: &str, default: Option<&toml::Value>) -> toml::Value {
    if let Some(toml::Value::String(_)) = default {
        return toml::Value::String(raw.to_string());
    }
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_file_matches_the_defaults() {
        let shipped =
            Config::parse(include_str!("../config.toml"), Path::new("config.toml")).unwrap();
        let default = Config::default();
        assert_eq!(shipped.server.listen, default.server.listen);
        assert_eq!(shipped.storage.data_dir, default.storage.data_dir);
        assert_eq!(shipped.auth.mode, AuthMode::Noauth);
        assert_eq!(shipped.api.max_limit, 1000);
        assert_eq!(shipped.api.compute_link_prefix, None);
        assert_eq!(
            shipped.render(),
            default.render(),
            "config.toml states exactly the defaults"
        );
    }

    #[test]
    fn database_passwords_never_show() {
        let config = Config::parse_with_env(
            "[storage]\nbackend = \"postgres\"\n[postgres]\nurl = \"postgresql://u:s3cret@db:5433/x\"\n",
            Path::new("c.toml"),
            [("NOVA_ACTIONS__POSTGRES__PASSWORD".to_string(), "other".to_string())],
        )
        .unwrap();
        assert_eq!(config.storage.backend, Backend::Postgres);
        assert_eq!(config.postgres.password, "other");
        let shown = config.render();
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert!(
            shown.contains("postgresql://u:********@db:5433/x"),
            "{shown}"
        );
        assert_eq!(redacted_url("postgresql://u@db/x"), "postgresql://u@db/x");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_the_key() {
        let err = Config::parse("[api]\nmax_limt = 5\n", Path::new("c.toml")).unwrap_err();
        assert!(
            err.0.contains("max_limt") && err.0.starts_with("c.toml"),
            "{err}"
        );
        let err =
            Config::parse("[server]\nlisten = \"nowhere\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.0.contains("c.toml"), "{err}");
        let err = Config::parse("[auth]\nmode = \"open\"\n", Path::new("c.toml")).unwrap_err();
        assert!(err.0.contains("open"), "{err}");
        assert!(Config::parse("[api]\nmax_limit = 0\n", Path::new("c.toml")).is_err());
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file() {
        let vars = env(&[
            ("NOVA_ACTIONS__API__MAX_LIMIT", "50"),
            ("NOVA_ACTIONS__SERVER__LISTEN", "0.0.0.0:9000"),
            ("NOVA_ACTIONS__STORAGE__DATA_DIR", "/var/lib/x"),
            ("NOVA_ACTIONS__RETENTION__DELETED_SERVERS_AFTER", "90d"),
            // Text settings take the value as written, even when it reads as a number.
            ("NOVA_ACTIONS__SYNC__MAX_MICROVERSION", "2.20"),
            ("NOVA_ACTIONS__SYNC__TOKEN", "12345"),
            ("NOVA_ACTIONS__SYNC__CONCURRENCY", "4"),
            ("NOVA_ACTIONS__UI__ENABLED", "false"),
            ("UNRELATED", "1"),
        ]);
        let c =
            Config::parse_with_env("[api]\nmax_limit = 7\n", Path::new("c.toml"), vars).unwrap();
        assert_eq!(c.api.max_limit, 50);
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.storage.data_dir, PathBuf::from("/var/lib/x"));
        assert_eq!(c.retention.deleted_servers_after, Some(Span(90 * 86_400)));
        assert_eq!(c.sync.max_microversion, "2.20");
        assert_eq!(c.sync.token, "12345");
        assert_eq!(c.sync.concurrency, 4);
        assert!(!c.ui.enabled);
        assert!(
            Config::default().ui.enabled,
            "the page is on unless turned off"
        );
    }

    #[test]
    fn bad_environment_values_name_the_variable() {
        let err = Config::parse_with_env(
            "",
            Path::new("c.toml"),
            env(&[("NOVA_ACTIONS__API__MAX_LIMT", "5")]),
        )
        .unwrap_err();
        assert!(
            err.0.contains("NOVA_ACTIONS__API__MAX_LIMT") && err.0.contains("max_limt"),
            "{err}"
        );
        let err = Config::parse_with_env(
            "",
            Path::new("c.toml"),
            env(&[("NOVA_ACTIONS__API__MAX_LIMIT", "lots")]),
        )
        .unwrap_err();
        assert!(err.0.contains("NOVA_ACTIONS__API__MAX_LIMIT"), "{err}");
        let err = Config::parse_with_env(
            "",
            Path::new("c.toml"),
            env(&[("NOVA_ACTIONS__NOSECTION", "5")]),
        )
        .unwrap_err();
        assert!(err.0.contains("NOVA_ACTIONS__NOSECTION"), "{err}");
    }

    #[test]
    fn spans() {
        assert_eq!("90d".parse::<Span>(), Ok(Span(7_776_000)));
        assert_eq!("45s".parse::<Span>(), Ok(Span(45)));
        assert!("90".parse::<Span>().is_err());
        assert!("d".parse::<Span>().is_err());
        assert!("5w".parse::<Span>().is_err());
        assert_eq!(Span(7_776_000).to_string(), "90d");
        assert_eq!(Span(90).to_string(), "90s");
    }

    #[test]
    fn rendering_round_trips() {
        let mut c = Config::default();
        c.retention.deleted_servers_after = Some(Span(3600));
        let again = Config::parse(&c.render(), Path::new("rendered")).unwrap();
        assert_eq!(again.render(), c.render());
    }
}
