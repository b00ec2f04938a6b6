//! Who is asking: the three identity modes (noauth, keystone, trusted headers) of
//! docs/spec/02-identity-policy.md.

pub mod keystone;

use actix_web::http::header::HeaderMap;

use crate::config::{AuthMode, Config};

/// The request context Nova builds from keystonemiddleware's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub user_id: String,
    /// None for unscoped and system-scoped tokens: they pass no project rule.
    pub project_id: Option<String>,
    pub system_scope: Option<String>,
    /// Lower-cased: role names compare case-insensitively.
    pub roles: Vec<String>,
}

impl Context {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

/// `<user>:<project>[:<role>,<role>]`. Without explicit roles, `admin` gets the roles Keystone
/// would imply for an admin and anyone else those of a member, so that the real default policy
/// stays on while noauth remains useful.
pub fn noauth(token: Option<&str>) -> Option<Context> {
    let token = token.filter(|t| !t.is_empty())?;
    let (user, rest) = match token.split_once(':') {
        Some((user, rest)) if !rest.is_empty() => (user, rest),
        Some((user, _)) => (user, user),
        None => (token, token),
    };
    let (project, roles) = match rest.split_once(':') {
        Some((project, roles)) => (project, Some(roles)),
        None => (rest, None),
    };
    let roles: Vec<String> = match roles {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_lowercase)
            .collect(),
        None if user == "admin" => vec!["admin".into(), "member".into(), "reader".into()],
        None => vec!["member".into(), "reader".into()],
    };
    Some(Context {
        user_id: user.to_string(),
        project_id: Some(project.to_string()),
        system_scope: None,
        roles,
    })
}

/// Why a caller has no context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No, or no valid, credentials: 401.
    Unauthorized,
    /// The identity service could not decide: 503 (fail closed).
    Unavailable(String),
}

pub enum Authenticator {
    Noauth,
    TrustedHeaders,
    Keystone(Box<keystone::Keystone>),
}

impl Authenticator {
    /// Fails only on a CA file that cannot be read.
    pub fn from_config(config: &Config) -> Result<Authenticator, String> {
        Ok(match config.auth.mode {
            AuthMode::Noauth => {
                log::warn!(
                    "auth mode is noauth: X-Auth-Token names the caller and is not checked; do not expose this port"
                );
                Authenticator::Noauth
            }
            AuthMode::TrustedHeaders => {
                log::warn!(
                    "auth mode is trusted-headers: X-User-Id, X-Project-Id and X-Roles are believed as sent; \
                     only an authenticating proxy may reach this port"
                );
                Authenticator::TrustedHeaders
            }
            AuthMode::Keystone => {
                log::info!(
                    "auth mode is keystone: tokens are validated at {}",
                    config.keystone.auth_url
                );
                Authenticator::Keystone(Box::new(keystone::Keystone::new(config.keystone.clone())?))
            }
        })
    }

    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Context, AuthError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            Authenticator::Noauth => noauth(header("x-auth-token")).ok_or(AuthError::Unauthorized),
            Authenticator::TrustedHeaders => trusted_headers(header).ok_or(AuthError::Unauthorized),
            Authenticator::Keystone(k) => {
                let token = header("x-auth-token")
                    .filter(|t| !t.is_empty())
                    .ok_or(AuthError::Unauthorized)?;
                match k.validate(token).await {
                    keystone::Validation::Valid(ctx) => Ok(ctx),
                    keystone::Validation::Invalid => Err(AuthError::Unauthorized),
                    keystone::Validation::Unavailable(why) => Err(AuthError::Unavailable(why)),
                }
            }
        }
    }

    /// (hits, misses) of the token cache, where there is one.
    pub fn cache_stats(&self) -> Option<(u64, u64)> {
        match self {
            Authenticator::Keystone(k) => Some(k.cache_stats()),
            _ => None,
        }
    }
}

/// keystonemiddleware's headers, set by a proxy that already validated the token.
fn trusted_headers<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<Context> {
    if header("x-identity-status")? != "Confirmed" {
        return None;
    }
    let user_id = header("x-user-id").filter(|u| !u.is_empty())?.to_string();
    let project_id = header("x-project-id")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let system_scope = header("x-system-scope")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let roles = header("x-roles")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_lowercase)
        .collect();
    Some(Context {
        user_id,
        project_id,
        system_scope,
        roles,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(user: &str, project: &str, roles: &[&str]) -> Context {
        Context {
            user_id: user.into(),
            project_id: Some(project.into()),
            system_scope: None,
            roles: roles.iter().map(std::string::ToString::to_string).collect(),
        }
    }

    #[test]
    fn trusted_headers_need_confirmed_identity() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        };
        let ctx = trusted_headers(headers(&[
            ("x-identity-status", "Confirmed"),
            ("x-user-id", "u"),
            ("x-project-id", "p"),
            ("x-roles", "Reader, member"),
        ]))
        .unwrap();
        assert_eq!(ctx.project_id.as_deref(), Some("p"));
        assert_eq!(ctx.roles, ["reader", "member"]);
        assert!(
            trusted_headers(headers(&[
                ("x-identity-status", "Invalid"),
                ("x-user-id", "u")
            ]))
            .is_none()
        );
        assert!(trusted_headers(headers(&[("x-user-id", "u")])).is_none());
        assert!(trusted_headers(headers(&[("x-identity-status", "Confirmed")])).is_none());
    }

    #[test]
    fn token_forms() {
        assert_eq!(
            noauth(Some("user-a:proj-a")),
            Some(ctx("user-a", "proj-a", &["member", "reader"]))
        );
        assert_eq!(
            noauth(Some("admin:admin")),
            Some(ctx("admin", "admin", &["admin", "member", "reader"]))
        );
        assert_eq!(
            noauth(Some("solo")),
            Some(ctx("solo", "solo", &["member", "reader"]))
        );
        assert_eq!(
            noauth(Some("solo:")),
            Some(ctx("solo", "solo", &["member", "reader"]))
        );
        assert_eq!(noauth(Some("u:p:Reader")), Some(ctx("u", "p", &["reader"])));
        assert_eq!(noauth(Some("u:p:")), Some(ctx("u", "p", &[])));
        assert_eq!(
            noauth(Some("u:p:admin,service")),
            Some(ctx("u", "p", &["admin", "service"]))
        );
        assert_eq!(noauth(Some("")), None);
        assert_eq!(noauth(None), None);
    }
}
