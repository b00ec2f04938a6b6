//! The configuration file (`config.toml`) and its defaults.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub api: ApiConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8774)),
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    /// Largest traceback or details text accepted by writes and imports, in bytes.
    pub max_text_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from("data"),
            max_text_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    Noauth,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// Named in the `WWW-Authenticate` header of a 401.
    pub www_authenticate_uri: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Noauth,
            www_authenticate_uri: "http://127.0.0.1/identity".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Nova's `[api] max_limit`: the largest page a list returns.
    pub max_limit: u64,
    /// Nova's `[api] compute_link_prefix`: replaces scheme and host of `next` links.
    pub compute_link_prefix: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_limit: 1000,
            compute_link_prefix: None,
        }
    }
}

#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError(format!("{}: {}", origin.display(), e.message())))?;
        if config.api.max_limit == 0 {
            return Err(ConfigError(format!(
                "{}: [api] max_limit must be at least 1",
                origin.display()
            )));
        }
        Ok(config)
    }

    /// Reads `path`; a missing file is an error unless `optional` (the default path may be absent,
    /// then the built-in defaults apply).
    pub fn load(path: &Path, optional: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, path),
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(ConfigError(format!("{}: {e}", path.display()))),
        }
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
}
