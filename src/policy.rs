//! Nova's default policy for instance actions, plus this service's write rule. A fixed table:
//! operator overrides are a separate piece of work.

use crate::auth::Context;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    List,
    Show,
    Events,
    EventsDetails,
    Write,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::List => "os_compute_api:os-instance-actions:list",
            Rule::Show => "os_compute_api:os-instance-actions:show",
            Rule::Events => "os_compute_api:os-instance-actions:events",
            Rule::EventsDetails => "os_compute_api:os-instance-actions:events:details",
            Rule::Write => "nova_actions:write",
        }
    }
}

/// `context_is_admin`: anyone holding `admin` in any project.
pub fn is_admin(ctx: &Context) -> bool {
    ctx.has_role("admin")
}

/// Evaluates `rule` for `ctx` against the target `{"project_id": target_project}`.
pub fn allows(rule: Rule, ctx: &Context, target_project: &str) -> bool {
    match rule {
        // project_reader_or_admin
        Rule::List | Rule::Show => {
            (ctx.has_role("reader") && ctx.project_id == target_project) || is_admin(ctx)
        }
        Rule::Events | Rule::EventsDetails => is_admin(ctx),
        Rule::Write => is_admin(ctx) || ctx.has_role("service"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(project: &str, roles: &[&str]) -> Context {
        Context {
            user_id: "u".into(),
            project_id: project.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }

    #[test]
    fn default_rules() {
        let reader = ctx("p", &["reader"]);
        assert!(allows(Rule::List, &reader, "p"));
        assert!(!allows(Rule::List, &reader, "q"));
        assert!(!allows(Rule::Events, &reader, "p"));
        assert!(!allows(Rule::Show, &ctx("p", &["member"]), "p"));
        let admin = ctx("x", &["admin"]);
        assert!(allows(Rule::Show, &admin, "p") && allows(Rule::EventsDetails, &admin, "p"));
        assert!(allows(Rule::Write, &ctx("svc", &["service"]), "p"));
        assert!(!allows(Rule::Write, &ctx("p", &["member", "reader"]), "p"));
    }
}
