//! `keystone` mode: tokens validated against Keystone v3 the way keystonemiddleware does it,
//! with the service's own token, a bounded cache, and failing closed when Keystone is away.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Context;
use crate::config::KeystoneConfig;
use crate::timeutil::{now_micros, parse_iso8601};

/// Renew the service token this long before it expires (keystoneauth uses 30 s).
const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// Largest Keystone answer read.
const MAX_ANSWER: usize = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    Valid(Context),
    /// Keystone says the token is not (or no longer) valid: 401.
    Invalid,
    /// Keystone could not be asked, or refused to answer the service: 503, never a pass.
    Unavailable(String),
}

struct ServiceToken {
    token: String,
    renew_at: Instant,
}

struct Cached {
    context: Context,
    until: Instant,
}

pub struct Keystone {
    config: KeystoneConfig,
    clients: crate::tls::Clients,
    service: Mutex<Option<ServiceToken>>,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    hits: AtomicU64,
    misses: AtomicU64,
    validations: AtomicU64,
}

/// The cache never holds a token itself, only a hash of it.
fn cache_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A short, safe name for a token in logs.
pub fn fingerprint(token: &str) -> String {
    crate::pytext::hex_lower(&cache_key(token)[..6])
}

/// Seconds from now until a Keystone `expires_at`, if it parses.
fn seconds_until(expires_at: &str) -> Option<i64> {
    parse_iso8601(expires_at).map(|t| (t - now_micros()) / 1_000_000)
}

/// The request context in a validated token (`GET /v3/auth/tokens` answer).
pub fn context_of(answer: &Value) -> Option<(Context, Option<i64>)> {
    let token = answer.get("token")?;
    let user_id = token.pointer("/user/id")?.as_str()?.to_string();
    let project_id = token
        .pointer("/project/id")
        .and_then(Value::as_str)
        .map(str::to_string);
    let system_scope = token
        .pointer("/system/all")
        .and_then(Value::as_bool)
        .filter(|all| *all)
        .map(|_| "all".to_string());
    let roles = token
        .get("roles")
        .and_then(Value::as_array)
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r.get("name")?.as_str())
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let expires_in = token
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(seconds_until);
    Some((
        Context {
            user_id,
            project_id,
            system_scope,
            roles,
        },
        expires_in,
    ))
}

impl Keystone {
    pub fn new(config: KeystoneConfig) -> Result<Keystone, String> {
        let timeout = Duration::from_secs(config.timeout.seconds().max(1));
        let clients = crate::tls::Clients::new(&config.ca_file, timeout)
            .map_err(|e| format!("[keystone] {e}"))?;
        Ok(Keystone {
            clients,
            config,
            service: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            validations: AtomicU64::new(0),
        })
    }

    /// (hits, misses) of the token cache.
    pub fn cache_stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// How many times Keystone was asked to validate a token.
    pub fn validations(&self) -> u64 {
        self.validations.load(Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.auth_url.trim_end_matches('/'))
    }

    fn client(&self) -> awc::Client {
        self.clients.client()
    }

    pub async fn validate(&self, token: &str) -> Validation {
        let key = cache_key(token);
        if let Some(context) = self.cached(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Validation::Valid(context);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let mut retried = false;
        loop {
            let service = match self.service_token().await {
                Ok(t) => t,
                Err(why) => return Validation::Unavailable(why),
            };
            match self.ask(&service, token).await {
                Asked::Valid(answer) => return self.accept(key, &answer),
                Asked::Invalid => {
                    log::info!("keystone rejected token {}", fingerprint(token));
                    return Validation::Invalid;
                }
                Asked::ServiceTokenRejected if !retried => {
                    // Our own token went bad (revoked, keys rotated): log in again, once.
                    retried = true;
                    self.forget_service_token();
                }
                Asked::ServiceTokenRejected => {
                    return Validation::Unavailable("keystone rejects the service token".into());
                }
                Asked::Failed(why) => return Validation::Unavailable(why),
            }
        }
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Context> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache
            .get(key)
            .filter(|c| c.until > Instant::now())
            .map(|c| c.context.clone())
    }

    fn accept(&self, key: [u8; 32], answer: &Value) -> Validation {
        let Some((context, expires_in)) = context_of(answer) else {
            return Validation::Unavailable("keystone's token answer lacks a user".into());
        };
        if expires_in.is_some_and(|s| s <= 0) {
            return Validation::Invalid;
        }
        // Cached at most token_cache_time, and never past the token's own expiry.
        let mut ttl = self.config.token_cache_time;
        if let Some(left) = expires_in {
            ttl = ttl.min(u64::try_from(left).unwrap_or(0));
        }
        if ttl > 0 {
            let mut cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.len() >= self.config.cache_size.max(1) {
                let now = Instant::now();
                cache.retain(|_, c| c.until > now);
                if cache.len() >= self.config.cache_size.max(1) {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                Cached {
                    context: context.clone(),
                    until: Instant::now() + Duration::from_secs(ttl),
                },
            );
        }
        Validation::Valid(context)
    }

    fn forget_service_token(&self) {
        *self
            .service
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    async fn service_token(&self) -> Result<String, String> {
        {
            let current = self
                .service
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(t) = current.as_ref().filter(|t| t.renew_at > Instant::now()) {
                return Ok(t.token.clone());
            }
        }
        let (token, lifetime) = self.login().await?;
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE);
        *self
            .service
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ServiceToken {
            token: token.clone(),
            renew_at,
        });
        log::info!(
            "obtained a keystone service token for {}",
            self.config.username
        );
        Ok(token)
    }

    /// Password authentication of the service user, scoped to its project.
    async fn login(&self) -> Result<(String, Duration), String> {
        let c = &self.config;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "password": c.password, "domain": {"name": c.user_domain_name}}}},
            "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain_name}}}
        }});
        let mut answer = self
            .client()
            .post(self.url("/v3/auth/tokens?nocatalog"))
            .send_json(&body)
            .await
            .map_err(|e| format!("keystone unreachable at {}: {e}", c.auth_url))?;
        if answer.status().as_u16() != 201 {
            return Err(format!(
                "keystone refused the service user's login: {}",
                answer.status()
            ));
        }
        let token = answer
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .ok_or("keystone's login answer has no X-Subject-Token")?
            .to_string();
        let body = answer
            .body()
            .limit(MAX_ANSWER)
            .await
            .map_err(|e| format!("reading keystone's answer: {e}"))?;
        let parsed: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("keystone's answer is not JSON: {e}"))?;
        let lifetime = parsed
            .pointer("/token/expires_at")
            .and_then(Value::as_str)
            .and_then(seconds_until)
            .map_or(Duration::from_secs(3600), |s| {
                Duration::from_secs(u64::try_from(s).unwrap_or(0))
            });
        Ok((token, lifetime))
    }

    async fn ask(&self, service: &str, token: &str) -> Asked {
        self.validations.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .client()
            .get(self.url("/v3/auth/tokens?nocatalog"))
            .insert_header(("X-Auth-Token", service))
            .insert_header(("X-Subject-Token", token))
            .send()
            .await;
        let mut answer = match sent {
            Ok(a) => a,
            Err(e) => {
                return Asked::Failed(format!(
                    "keystone unreachable at {}: {e}",
                    self.config.auth_url
                ));
            }
        };
        match answer.status().as_u16() {
            200 => match answer.body().limit(MAX_ANSWER).await {
                Ok(body) => match serde_json::from_slice(&body) {
                    Ok(v) => Asked::Valid(v),
                    Err(e) => Asked::Failed(format!("keystone's token answer is not JSON: {e}")),
                },
                Err(e) => Asked::Failed(format!("reading keystone's answer: {e}")),
            },
            // The body may quote the token: it is never read or logged.
            404 => Asked::Invalid,
            401 => Asked::ServiceTokenRejected,
            403 => Asked::Failed(
                "the service user may not validate tokens (needs the service or admin role)".into(),
            ),
            other => Asked::Failed(format!("keystone answered {other}")),
        }
    }
}

enum Asked {
    Valid(Value),
    Invalid,
    ServiceTokenRejected,
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_from_a_project_scoped_token() {
        let answer = json!({"token": {
            "user": {"id": "u1", "name": "reader-a"},
            "project": {"id": "p1", "name": "proj-a"},
            "roles": [{"id": "r1", "name": "Reader"}, {"id": "r2", "name": "member"}],
            "expires_at": "2999-01-01T00:00:00.000000Z"
        }});
        let (ctx, expires) = context_of(&answer).unwrap();
        assert_eq!(ctx.user_id, "u1");
        assert_eq!(ctx.project_id.as_deref(), Some("p1"));
        assert_eq!(ctx.roles, ["reader", "member"]);
        assert_eq!(ctx.system_scope, None);
        assert!(expires.unwrap() > 0);
    }

    #[test]
    fn system_and_unscoped_tokens_carry_no_project() {
        let system = json!({"token": {"user": {"id": "u"}, "system": {"all": true}, "roles": [{"name": "admin"}]}});
        let (ctx, _) = context_of(&system).unwrap();
        assert_eq!(
            (ctx.project_id, ctx.system_scope.as_deref()),
            (None, Some("all"))
        );
        let unscoped = json!({"token": {"user": {"id": "u"}}});
        let (ctx, _) = context_of(&unscoped).unwrap();
        assert_eq!(
            (ctx.project_id, ctx.system_scope, ctx.roles.len()),
            (None, None, 0)
        );
        assert!(context_of(&json!({"token": {}})).is_none());
    }

    #[test]
    fn fingerprints_do_not_reveal_tokens() {
        let f = fingerprint("gAAAAABsecret-token-value");
        assert_eq!(f.len(), 12);
        assert!(!f.contains("secret"));
        assert_eq!(f, fingerprint("gAAAAABsecret-token-value"));
    }
}
