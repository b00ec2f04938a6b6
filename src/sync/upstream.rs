//! The upstream Nova, as the mirror talks to it: authentication (a fixed token, or Keystone v3
//! password credentials with the compute endpoint from the catalog), the microversion both
//! sides speak, and GETs of JSON documents.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::SyncConfig;

/// Why a request to the upstream failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// The upstream answered with this status (and Nova's request id, when it sent one).
    Status {
        status: u16,
        url: String,
        request_id: Option<String>,
        message: String,
    },
    /// No answer: connection refused, timeout, a body that is not JSON.
    Transport { url: String, why: String },
    /// The configuration cannot work (no endpoint, no credentials).
    Config(String),
}

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamError::Status {
                status,
                url,
                request_id,
                message,
            } => write!(
                f,
                "GET {url}: {status} {message} (request id {})",
                request_id.as_deref().unwrap_or("-")
            ),
            UpstreamError::Transport { url, why } => write!(f, "GET {url}: {why}"),
            UpstreamError::Config(why) => write!(f, "{why}"),
        }
    }
}

impl UpstreamError {
    pub fn status(&self) -> Option<u16> {
        match self {
            UpstreamError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub struct Upstream {
    client: awc::Client,
    config: SyncConfig,
    /// The compute endpoint, without a trailing slash (`…/v2.1`).
    pub endpoint: String,
    token: String,
    /// `2.N`, negotiated.
    pub version: String,
}

impl Upstream {
    /// Authenticates, finds the endpoint and negotiates the microversion.
    pub async fn connect(config: &SyncConfig) -> Result<Upstream, UpstreamError> {
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(config.timeout.seconds().max(1)))
            .finish();
        let mut upstream = Upstream {
            client,
            config: config.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_string(),
            token: config.token.clone(),
            version: "2.1".into(),
        };
        upstream.authenticate().await?;
        upstream.version = upstream.negotiate().await?;
        Ok(upstream)
    }

    /// A fixed token, or a new Keystone token (and the endpoint from its catalog when none is
    /// configured).
    pub async fn authenticate(&mut self) -> Result<(), UpstreamError> {
        if !self.config.token.is_empty() {
            if self.endpoint.is_empty() {
                return Err(UpstreamError::Config(
                    "[sync] token is set but endpoint is not: give the compute endpoint".into(),
                ));
            }
            return Ok(());
        }
        if self.config.auth_url.is_empty() || self.config.username.is_empty() {
            return Err(UpstreamError::Config(
                "[sync] needs a token and an endpoint, or auth_url, username and password".into(),
            ));
        }
        let url = format!(
            "{}/v3/auth/tokens",
            self.config.auth_url.trim_end_matches('/')
        );
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.config.username,
                "domain": {"name": self.config.user_domain_name},
                "password": self.config.password,
            }}},
            "scope": {"project": {
                "name": self.config.project_name,
                "domain": {"name": self.config.project_domain_name},
            }},
        }});
        let transport = |why: String| UpstreamError::Transport {
            url: url.clone(),
            why,
        };
        let mut response = self
            .client
            .post(&url)
            .send_json(&body)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let answer: Value = response
            .json()
            .limit(16 << 20)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let Some(token) = token.filter(|_| status == 201) else {
            return Err(UpstreamError::Status {
                status,
                url,
                request_id: None,
                message: answer["error"]["message"]
                    .as_str()
                    .unwrap_or("Keystone refused the credentials")
                    .to_string(),
            });
        };
        self.token = token;
        if self.config.endpoint.is_empty() {
            self.endpoint = catalog_endpoint(&answer, &self.config).ok_or_else(|| {
                UpstreamError::Config(format!(
                    "no compute endpoint (interface {}, region {}) in the Keystone catalog",
                    self.config.interface,
                    if self.config.region_name.is_empty() {
                        "any"
                    } else {
                        &self.config.region_name
                    }
                ))
            })?;
        }
        Ok(())
    }

    /// The newest microversion both sides speak, from the upstream's version document.
    async fn negotiate(&self) -> Result<String, UpstreamError> {
        let doc = self.get_at(&self.endpoint, None).await?;
        let theirs = doc["version"]["version"].as_str().unwrap_or("");
        let minor = |v: &str| v.strip_prefix("2.").and_then(|m| m.parse::<u32>().ok());
        let ours = minor(&self.config.max_microversion).unwrap_or(1);
        let chosen = minor(theirs).map_or(1, |t| t.min(ours));
        Ok(format!("2.{chosen}"))
    }

    /// The negotiated minor version.
    pub fn minor(&self) -> u32 {
        self.version
            .strip_prefix("2.")
            .and_then(|m| m.parse().ok())
            .unwrap_or(1)
    }

    /// A document under the endpoint (`path` starts with `/`), or a full URL from a `next` link.
    pub async fn get(&self, path_or_url: &str) -> Result<Value, UpstreamError> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.endpoint)
        };
        self.get_at(&url, Some(&self.version)).await
    }

    async fn get_at(&self, url: &str, version: Option<&str>) -> Result<Value, UpstreamError> {
        let mut request = self
            .client
            .get(url)
            .insert_header(("X-Auth-Token", self.token.as_str()))
            .insert_header(("Accept", "application/json"));
        if let Some(v) = version {
            request = request.insert_header(("OpenStack-API-Version", format!("compute {v}")));
        }
        let transport = |why: String| UpstreamError::Transport {
            url: url.to_string(),
            why,
        };
        let mut response = request.send().await.map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response
            .body()
            .limit(64 << 20)
            .await
            .map_err(|e| transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            // Nova's fault: {"<kind>": {"code": N, "message": "..."}}.
            let message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.as_object()?
                        .values()
                        .next()?
                        .get("message")?
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            return Err(UpstreamError::Status {
                status,
                url: url.to_string(),
                request_id,
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| transport(format!("not JSON: {e}")))
    }
}

/// The compute endpoint of the catalog in a Keystone token.
fn catalog_endpoint(token: &Value, config: &SyncConfig) -> Option<String> {
    let catalog = token["token"]["catalog"].as_array()?;
    let service = catalog.iter().find(|s| s["type"] == "compute")?;
    service["endpoints"]
        .as_array()?
        .iter()
        .find(|e| {
            e["interface"] == config.interface.as_str()
                && (config.region_name.is_empty()
                    || e["region_id"] == config.region_name.as_str()
                    || e["region"] == config.region_name.as_str())
        })
        .and_then(|e| e["url"].as_str())
        .map(|u| u.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compute_endpoint_comes_from_the_catalog_by_interface_and_region() {
        let token = json!({"token": {"catalog": [
            {"type": "identity", "endpoints": [{"interface": "public", "url": "http://k:5000"}]},
            {"type": "compute", "endpoints": [
                {"interface": "internal", "region_id": "r1", "url": "http://n-int:8774/v2.1"},
                {"interface": "public", "region_id": "r1", "url": "http://n1:8774/v2.1/"},
                {"interface": "public", "region_id": "r2", "url": "http://n2:8774/v2.1"}
            ]}
        ]}});
        let mut config = SyncConfig::default();
        assert_eq!(
            catalog_endpoint(&token, &config).as_deref(),
            Some("http://n1:8774/v2.1")
        );
        config.region_name = "r2".into();
        assert_eq!(
            catalog_endpoint(&token, &config).as_deref(),
            Some("http://n2:8774/v2.1")
        );
        config.interface = "internal".into();
        assert_eq!(catalog_endpoint(&token, &config), None);
    }
}
