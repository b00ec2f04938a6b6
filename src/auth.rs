//! Who is asking. `noauth` mode: the token names the caller (Nova's historical noauth2 token).

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(user: &str, project: &str, roles: &[&str]) -> Context {
        Context {
            user_id: user.into(),
            project_id: Some(project.into()),
            system_scope: None,
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
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
