//! The upstream Nova, as the mirror talks to it: authentication (a fixed token, or Keystone v3
//! password credentials with the compute endpoint from the catalog), the microversion both
//! sides speak, and GETs of JSON documents.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::status::SyncStatus;
use crate::config::SyncConfig;

/// How many times one request waits out a 429 or 503 with `Retry-After` before the pass fails.
const RETRIES_AFTER_WAIT: u32 = 4;
/// The longest `Retry-After` obeyed; a longer one fails the pass (which then backs off).
const LONGEST_WAIT: Duration = Duration::from_secs(300);
/// The wait after a 429 that names none (or names a date).
const DEFAULT_WAIT: Duration = Duration::from_secs(5);

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
            } => {
                write!(
                    f,
                    "GET {url}: {status} {message} (request id {})",
                    request_id.as_deref().unwrap_or("-")
                )?;
                if *status == 403 {
                    // Policy names differ between clouds; the defaults need these.
                    write!(
                        f,
                        "; the mirror's upstream user needs the admin role (Nova's defaults: \
                         os_compute_api:servers:detail:get_all_tenants and \
                         os_compute_api:os-instance-actions:events)"
                    )?;
                }
                Ok(())
            }
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
    /// Replaced when Keystone's token expires; the mirror runs on one thread.
    token: RefCell<String>,
    /// `2.N`, negotiated.
    pub version: String,
    status: Arc<SyncStatus>,
}

impl Upstream {
    /// Authenticates, finds the endpoint and negotiates the microversion.
    pub async fn connect(
        config: &SyncConfig,
        status: Arc<SyncStatus>,
    ) -> Result<Upstream, UpstreamError> {
        let timeout = Duration::from_secs(config.timeout.seconds().max(1));
        let client = crate::tls::Clients::new(&config.ca_file, timeout)
            .map_err(|e| UpstreamError::Config(format!("[sync] {e}")))?
            .client();
        let mut upstream = Upstream {
            client,
            config: config.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_string(),
            token: RefCell::new(config.token.clone()),
            version: "2.1".into(),
            status,
        };
        if let Some(endpoint) = upstream.authenticate().await? {
            upstream.endpoint = endpoint;
        }
        upstream.version = upstream.negotiate().await?;
        Ok(upstream)
    }

    /// Whether a refused token can be replaced (password credentials, not a fixed token).
    fn can_reauthenticate(&self) -> bool {
        self.config.token.is_empty()
    }

    /// A fixed token, or a new Keystone token; with no endpoint configured, the compute
    /// endpoint of its catalog.
    async fn authenticate(&self) -> Result<Option<String>, UpstreamError> {
        if !self.config.token.is_empty() {
            if self.endpoint.is_empty() {
                return Err(UpstreamError::Config(
                    "[sync] token is set but endpoint is not: give the compute endpoint".into(),
                ));
            }
            return Ok(None);
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
        let sent = self.client.post(&url).send_json(&body).await;
        let mut response = sent.map_err(|e| {
            self.status.request(0);
            transport(e.to_string())
        })?;
        let status = response.status().as_u16();
        self.status.request(status);
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
        *self.token.borrow_mut() = token;
        if !self.config.endpoint.is_empty() {
            return Ok(None);
        }
        catalog_endpoint(&answer, &self.config)
            .map(Some)
            .ok_or_else(|| {
                UpstreamError::Config(format!(
                    "no compute endpoint (interface {}, region {}) in the Keystone catalog",
                    self.config.interface,
                    if self.config.region_name.is_empty() {
                        "any"
                    } else {
                        &self.config.region_name
                    }
                ))
            })
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

    /// One GET, retried: after a 401 with a fresh token (once), after a 429 or 503 once its
    /// `Retry-After` has passed (a few times).
    async fn get_at(&self, url: &str, version: Option<&str>) -> Result<Value, UpstreamError> {
        let mut reauthenticated = false;
        let mut waits = 0;
        loop {
            let (outcome, retry_after) = self.get_once(url, version).await;
            match outcome {
                Err(e)
                    if e.status() == Some(401) && !reauthenticated && self.can_reauthenticate() =>
                {
                    log::info!("sync: the upstream refused the token; authenticating again");
                    reauthenticated = true;
                    self.authenticate().await?;
                }
                Err(e) if retry_after.is_some() && waits < RETRIES_AFTER_WAIT => {
                    let wait = retry_after.unwrap_or_default();
                    if wait > LONGEST_WAIT {
                        return Err(e);
                    }
                    waits += 1;
                    log::warn!(
                        "sync: {e}; waiting {} s as asked (Retry-After)",
                        wait.as_secs()
                    );
                    actix_web::rt::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// One GET, and the wait its answer asks for (429, or 503 with `Retry-After`).
    async fn get_once(
        &self,
        url: &str,
        version: Option<&str>,
    ) -> (Result<Value, UpstreamError>, Option<Duration>) {
        let token = self.token.borrow().clone();
        let mut request = self
            .client
            .get(url)
            .insert_header(("X-Auth-Token", token))
            .insert_header(("Accept", "application/json"));
        if let Some(v) = version {
            request = request.insert_header(("OpenStack-API-Version", format!("compute {v}")));
        }
        let transport = |why: String| UpstreamError::Transport {
            url: url.to_string(),
            why,
        };
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                self.status.request(0);
                return (Err(transport(e.to_string())), None);
            }
        };
        let status = response.status().as_u16();
        self.status.request(status);
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id =
            header("x-openstack-request-id").or_else(|| header("x-compute-request-id"));
        let asked = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
        let retry_after = match (status, asked) {
            (429 | 503, Some(secs)) => Some(Duration::from_secs(secs)),
            // Never again at once; a 503 without a wait fails the pass, which backs off.
            (429, None) => Some(DEFAULT_WAIT),
            _ => None,
        };
        let body = match response.body().limit(64 << 20).await {
            Ok(body) => body,
            Err(e) => return (Err(transport(e.to_string())), None),
        };
        let outcome = read_answer(url, status, request_id, &body);
        (outcome, retry_after)
    }
}

/// The JSON document of a 2xx answer, or the error Nova's fault describes.
fn read_answer(
    url: &str,
    status: u16,
    request_id: Option<String>,
    body: &[u8],
) -> Result<Value, UpstreamError> {
    if !(200..300).contains(&status) {
        // Nova's fault: {"<kind>": {"code": N, "message": "..."}}.
        let message = serde_json::from_slice::<Value>(body)
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
    serde_json::from_slice(body).map_err(|e| UpstreamError::Transport {
        url: url.to_string(),
        why: format!("not JSON: {e}"),
    })
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
