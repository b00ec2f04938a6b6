//! The policy: Nova's default rules for os-instance-actions, this service's write rule, and
//! operator overrides from a policy file (docs/spec/02-identity-policy.md §3).

pub mod check;
pub mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use check::{Check, Creds, ParseError, Target, Value};
pub use file::{Watched, load};

/// Nova's deprecated single rule for the whole API; its override applies to `list` and `show`
/// unless those are overridden themselves.
pub const LEGACY_RULE: &str = "os_compute_api:os-instance-actions";
pub const CONTEXT_IS_ADMIN: &str = "context_is_admin";
pub const LIST: &str = "os_compute_api:os-instance-actions:list";
pub const SHOW: &str = "os_compute_api:os-instance-actions:show";
pub const EVENTS: &str = "os_compute_api:os-instance-actions:events";
pub const EVENTS_DETAILS: &str = "os_compute_api:os-instance-actions:events:details";
pub const WRITE: &str = "nova_actions:write";
pub const SERVERS_INDEX: &str = "os_compute_api:servers:index";
pub const SERVERS_DETAIL: &str = "os_compute_api:servers:detail";
pub const SERVERS_INDEX_ALL_TENANTS: &str = "os_compute_api:servers:index:get_all_tenants";
pub const SERVERS_DETAIL_ALL_TENANTS: &str = "os_compute_api:servers:detail:get_all_tenants";
pub const SERVERS_ALL_FILTERS: &str = "os_compute_api:servers:allow_all_filters";
pub const SERVERS_SHOW: &str = "os_compute_api:servers:show";
pub const SERVER_EXTENDED_ATTRIBUTES: &str = "os_compute_api:os-extended-server-attributes";

/// One built-in rule, as registered with oslo.policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRule {
    pub name: &'static str,
    pub check: &'static str,
    pub description: &'static str,
    /// `(method, path)` pairs guarded by the rule (empty for helper rules).
    pub operations: &'static [(&'static str, &'static str)],
    /// oslo's `scope_types` (shown as "Intended scope(s)" in the sample).
    pub scope_types: &'static [&'static str],
}

const SERVER_ACTIONS: &str = "/servers/{server_id}/os-instance-actions";
const SERVER_ACTION: &str = "/servers/{server_id}/os-instance-actions/{request_id}";

/// The built-in rules, in the order the sample file lists them.
pub const DEFAULTS: &[DefaultRule] = &[
    DefaultRule {
        name: CONTEXT_IS_ADMIN,
        check: "role:admin",
        description: "Decides what is required for the 'is_admin:True' check to succeed.",
        operations: &[],
        scope_types: &[],
    },
    DefaultRule {
        name: "project_reader_api",
        check: "role:reader and project_id:%(project_id)s",
        description: "Default rule for Project level read only APIs.",
        operations: &[],
        scope_types: &[],
    },
    DefaultRule {
        name: "project_reader_or_admin",
        check: "rule:project_reader_api or rule:context_is_admin",
        description: "Default rule for Project level read only APIs or admin.",
        operations: &[],
        scope_types: &[],
    },
    DefaultRule {
        name: LIST,
        check: "rule:project_reader_or_admin",
        description: "List actions for a server.",
        operations: &[("GET", SERVER_ACTIONS)],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SHOW,
        check: "rule:project_reader_or_admin",
        description: "Show action details for a server.",
        operations: &[("GET", SERVER_ACTION)],
        scope_types: &["project"],
    },
    DefaultRule {
        name: EVENTS,
        check: "rule:context_is_admin",
        description: "Add events details in action details for a server (traceback and host).",
        operations: &[("GET", SERVER_ACTION)],
        scope_types: &["project"],
    },
    DefaultRule {
        name: EVENTS_DETAILS,
        check: "rule:context_is_admin",
        description: "Add \"details\" key in action events for a server.",
        operations: &[("GET", SERVER_ACTION)],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVERS_INDEX,
        check: "rule:project_reader_or_admin",
        description: "List all servers",
        operations: &[("GET", "/servers")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVERS_DETAIL,
        check: "rule:project_reader_or_admin",
        description: "List all servers with detailed information",
        operations: &[("GET", "/servers/detail")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVERS_INDEX_ALL_TENANTS,
        check: "rule:context_is_admin",
        description: "List all servers for all projects",
        operations: &[("GET", "/servers")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVERS_DETAIL_ALL_TENANTS,
        check: "rule:context_is_admin",
        description: "List all servers with detailed information for all projects",
        operations: &[("GET", "/servers/detail")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVERS_ALL_FILTERS,
        check: "rule:context_is_admin",
        description: "Allow all filters when listing servers",
        operations: &[("GET", "/servers"), ("GET", "/servers/detail")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVERS_SHOW,
        check: "rule:project_reader_or_admin",
        description: "Show a server",
        operations: &[("GET", "/servers/{server_id}")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: SERVER_EXTENDED_ATTRIBUTES,
        check: "rule:context_is_admin",
        description: "Return extended attributes for server (`OS-EXT-SRV-ATTR:host`).",
        operations: &[("GET", "/servers/{id}"), ("GET", "/servers/detail")],
        scope_types: &["project"],
    },
    DefaultRule {
        name: WRITE,
        check: "role:admin or role:service",
        description: "Record servers, instance actions and events through the write API.",
        operations: &[
            ("PUT", "/ingest/v1/servers/{server_id}"),
            ("DELETE", "/ingest/v1/servers/{server_id}"),
            ("POST", "/ingest/v1/servers/{server_id}/purge"),
            ("POST", "/ingest/v1/servers/{server_id}/actions"),
            (
                "POST",
                "/ingest/v1/servers/{server_id}/actions/{request_id}/finish",
            ),
            (
                "POST",
                "/ingest/v1/servers/{server_id}/actions/{request_id}/events",
            ),
            (
                "POST",
                "/ingest/v1/servers/{server_id}/actions/{request_id}/events/{event}/finish",
            ),
            ("POST", "/ingest/v1/import"),
        ],
        scope_types: &[],
    },
];

/// Nova's deprecated rule for list and show (deprecated in 21.0.0 Ussuri).
const LEGACY_DEFAULT: &str = "rule:admin_or_owner";

/// An error in a policy file or override: where it is, which rule, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or other source) the rules came from.
    pub origin: String,
    /// 1-based line number, when known.
    pub line: Option<usize>,
    /// The rule name, when the error concerns one rule.
    pub rule: Option<String>,
    pub message: String,
}

impl PolicyError {
    pub fn new(
        origin: &str,
        line: Option<usize>,
        rule: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        PolicyError {
            origin: origin.to_string(),
            line,
            rule: rule.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, ", rule \"{rule}\"")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Clone)]
struct Entry {
    /// The check string as written (the default's text, or the operator's).
    text: String,
    check: Check,
    /// Set when the operator's file supplied this rule (directly or through the legacy name).
    overridden: bool,
}

/// The effective rules: defaults merged with the operator's overrides.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: BTreeMap<String, Entry>,
}

impl Policy {
    /// Nova's defaults plus the write rule, nothing overridden.
    pub fn defaults() -> Policy {
        let rules = DEFAULTS
            .iter()
            .map(|d| {
                let check = check::parse(d.check).expect("built-in rules parse");
                let entry = Entry {
                    text: d.check.to_string(),
                    check,
                    overridden: false,
                };
                (d.name.to_string(), entry)
            })
            .collect();
        Policy { rules }
    }

    /// The defaults with `overrides` (rule name, check string) applied. `origin` names where the
    /// overrides came from, for messages. Refuses a check string that does not parse and rules
    /// that refer to themselves (directly or through other rules).
    pub fn with_overrides(
        overrides: Vec<(String, String)>,
        origin: &str,
    ) -> Result<Policy, PolicyError> {
        let mut policy = Policy::defaults();
        let mut seen = BTreeSet::new();
        for (name, text) in overrides {
            if name.is_empty() {
                return Err(PolicyError::new(origin, None, None, "empty rule name"));
            }
            if !seen.insert(name.clone()) {
                return Err(PolicyError::new(
                    origin,
                    None,
                    Some(&name),
                    "rule given twice",
                ));
            }
            let check = check::parse(&text).map_err(|e| {
                PolicyError::new(origin, None, Some(&name), format!("{e} (in \"{text}\")"))
            })?;
            policy.rules.insert(
                name,
                Entry {
                    text,
                    check,
                    overridden: true,
                },
            );
        }
        if let Some(legacy) = policy.rules.get(LEGACY_RULE).cloned() {
            for name in [LIST, SHOW] {
                if !seen.contains(name) {
                    log::warn!(
                        "{origin}: policy rule \"{LEGACY_RULE}\" is deprecated; applying its \
                         override to \"{name}\" — override \"{name}\" instead"
                    );
                    policy.rules.insert(name.to_string(), legacy.clone());
                }
            }
        }
        policy.check_cycles(origin)?;
        for (name, entry) in &policy.rules {
            for referenced in entry.check.referenced_rules() {
                if !policy.rules.contains_key(referenced) {
                    log::warn!(
                        "{origin}: policy rule \"{name}\" refers to undefined rule \
                         \"{referenced}\", which always fails"
                    );
                }
            }
        }
        Ok(policy)
    }

    fn check_cycles(&self, origin: &str) -> Result<(), PolicyError> {
        // Depth-first search with colours: 1 = on the current path, 2 = done.
        fn visit<'a>(
            policy: &'a Policy,
            name: &'a str,
            colour: &mut BTreeMap<&'a str, u8>,
            path: &mut Vec<&'a str>,
        ) -> Option<Vec<&'a str>> {
            match colour.get(name) {
                Some(2) => return None,
                Some(_) => {
                    let start = path.iter().position(|n| *n == name).unwrap_or(0);
                    let mut cycle = path[start..].to_vec();
                    cycle.push(name);
                    return Some(cycle);
                }
                None => {}
            }
            let entry = policy.rules.get(name)?;
            colour.insert(name, 1);
            path.push(name);
            for next in entry.check.referenced_rules() {
                if let Some(cycle) = visit(policy, next, colour, path) {
                    return Some(cycle);
                }
            }
            path.pop();
            colour.insert(name, 2);
            None
        }
        let mut colour = BTreeMap::new();
        for name in self.rules.keys() {
            if let Some(cycle) = visit(self, name, &mut colour, &mut Vec::new()) {
                let first = cycle[0];
                return Err(PolicyError::new(
                    origin,
                    None,
                    Some(first),
                    format!(
                        "rules refer to each other in a cycle: {}",
                        cycle.join(" -> ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `creds` pass `rule` for `target`. An unknown rule name is a denial.
    pub fn enforce(&self, rule: &str, target: &Target, creds: &Creds) -> bool {
        match self.rules.get(rule) {
            Some(entry) => entry
                .check
                .evaluate(target, creds, &|name| self.check(name), 0),
            None => {
                log::warn!("policy rule \"{rule}\" is not defined; denying");
                false
            }
        }
    }

    /// Nova's `is_admin`: `context_is_admin` evaluated with an empty target for credentials that
    /// do not yet carry `is_admin`.
    pub fn is_admin(&self, creds_without_admin: &Creds) -> bool {
        self.enforce(CONTEXT_IS_ADMIN, &Target::new(), creds_without_admin)
    }

    /// The parsed check of a rule.
    pub fn check(&self, rule: &str) -> Option<&Check> {
        self.rules.get(rule).map(|e| &e.check)
    }

    /// The check string of a rule as written (default or override).
    pub fn rule_text(&self, rule: &str) -> Option<&str> {
        self.rules.get(rule).map(|e| e.text.as_str())
    }

    /// Whether the operator's file changed this rule.
    pub fn is_overridden(&self, rule: &str) -> bool {
        self.rules.get(rule).is_some_and(|e| e.overridden)
    }

    /// Names of the rules the operator's file set (including any carried over from the legacy
    /// name).
    pub fn overridden(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|(_, e)| e.overridden)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The effective rules as a commented YAML sample file, like `oslopolicy-sample-generator`:
    /// defaults commented out, overridden rules active. It loads back as the same policy.
    pub fn sample(&self) -> String {
        let mut out = String::new();
        for d in DEFAULTS {
            let entry = &self.rules[d.name];
            out.push_str(&format!("# {}\n", d.description));
            for (method, path) in d.operations {
                out.push_str(&format!("# {method}  {path}\n"));
            }
            if !d.scope_types.is_empty() {
                out.push_str(&format!(
                    "# Intended scope(s): {}\n",
                    d.scope_types.join(", ")
                ));
            }
            if d.name == LIST || d.name == SHOW {
                out.push_str(&format!(
                    "# DEPRECATED\n# \"{LEGACY_RULE}\":\"{LEGACY_DEFAULT}\" has been deprecated \
                     since 21.0.0 in favor of \"{}\":\"{}\".\n",
                    d.name, d.check
                ));
            }
            let line = format!("{}: {}", yaml_quote(d.name), yaml_quote(&entry.text));
            if entry.overridden && entry.text != d.check {
                out.push_str(&format!("{line}\n\n"));
            } else {
                out.push_str(&format!("#{line}\n\n"));
            }
        }
        let extras: Vec<_> = self
            .rules
            .iter()
            .filter(|(name, _)| !DEFAULTS.iter().any(|d| d.name == name.as_str()))
            .collect();
        if !extras.is_empty() {
            out.push_str("# Rules from the policy file that have no default.\n");
            for (name, entry) in extras {
                if name == LEGACY_RULE {
                    out.push_str("# Deprecated: applies to list and show unless they are set.\n");
                }
                out.push_str(&format!(
                    "{}: {}\n",
                    yaml_quote(name),
                    yaml_quote(&entry.text)
                ));
            }
        }
        out
    }
}

/// A YAML double-quoted scalar.
fn yaml_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(project: &str, roles: &[&str]) -> Creds {
        Creds {
            user_id: "u1".into(),
            project_id: Some(project.into()),
            roles: roles.iter().map(std::string::ToString::to_string).collect(),
            system_scope: None,
            is_admin: false,
        }
    }

    fn target(project: &str) -> Target {
        [("project_id".to_string(), project.to_string())].into()
    }

    fn overrides(pairs: &[(&str, &str)]) -> Policy {
        Policy::with_overrides(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            "test",
        )
        .unwrap()
    }

    #[test]
    fn defaults_are_novas() {
        let p = Policy::defaults();
        let want = [
            ("context_is_admin", "role:admin"),
            (
                "project_reader_api",
                "role:reader and project_id:%(project_id)s",
            ),
            (
                "project_reader_or_admin",
                "rule:project_reader_api or rule:context_is_admin",
            ),
            (LIST, "rule:project_reader_or_admin"),
            (SHOW, "rule:project_reader_or_admin"),
            (EVENTS, "rule:context_is_admin"),
            (EVENTS_DETAILS, "rule:context_is_admin"),
            (SERVERS_INDEX, "rule:project_reader_or_admin"),
            (SERVERS_DETAIL, "rule:project_reader_or_admin"),
            (SERVERS_INDEX_ALL_TENANTS, "rule:context_is_admin"),
            (SERVERS_DETAIL_ALL_TENANTS, "rule:context_is_admin"),
            (SERVERS_ALL_FILTERS, "rule:context_is_admin"),
            (SERVERS_SHOW, "rule:project_reader_or_admin"),
            (SERVER_EXTENDED_ATTRIBUTES, "rule:context_is_admin"),
            (WRITE, "role:admin or role:service"),
        ];
        for (name, text) in want {
            assert_eq!(p.rule_text(name), Some(text), "{name}");
        }
        assert_eq!(p.rules.len(), want.len());
        assert!(p.overridden().is_empty());
    }

    #[test]
    fn default_decisions() {
        let p = Policy::defaults();
        let reader = creds("p1", &["reader"]);
        let member = creds("p1", &["member"]);
        let admin = creds("other", &["admin"]);
        let service = creds("svc", &["service"]);
        let member_reader = creds("p1", &["member", "reader"]);
        let t = target("p1");
        let table: &[(&str, &Creds, bool)] = &[
            (LIST, &reader, true),
            (SHOW, &reader, true),
            (EVENTS, &reader, false),
            (EVENTS_DETAILS, &reader, false),
            (WRITE, &reader, false),
            (LIST, &member, false),
            (SHOW, &member, false),
            (LIST, &admin, true),
            (SHOW, &admin, true),
            (EVENTS, &admin, true),
            (EVENTS_DETAILS, &admin, true),
            (WRITE, &admin, true),
            (WRITE, &service, true),
            (LIST, &service, false),
            (EVENTS, &service, false),
            (WRITE, &member_reader, false),
            ("no-such-rule", &admin, false),
        ];
        for (rule, c, want) in table {
            assert_eq!(p.enforce(rule, &t, c), *want, "{rule} for {c:?}");
        }
        // A reader of another project is denied.
        assert!(!p.enforce(LIST, &target("p2"), &reader));
        assert!(!p.enforce(SHOW, &target("p2"), &reader));
        // Role names compare case-insensitively.
        assert!(p.enforce(LIST, &t, &creds("p1", &["Reader"])));
        assert!(p.enforce(EVENTS, &t, &creds("x", &["ADMIN"])));
        // No project (unscoped or system scope) fails the project rules.
        let mut unscoped = creds("p1", &["reader"]);
        unscoped.project_id = None;
        assert!(!p.enforce(LIST, &t, &unscoped));
        // A target without project_id denies the project check.
        assert!(!p.enforce(LIST, &Target::new(), &reader));
    }

    #[test]
    fn is_admin_uses_context_is_admin() {
        let p = Policy::defaults();
        assert!(p.is_admin(&creds("any", &["admin"])));
        assert!(!p.is_admin(&creds("any", &["reader", "member"])));
        let p = overrides(&[("context_is_admin", "role:cloud_admin")]);
        assert!(p.is_admin(&creds("any", &["cloud_admin"])));
        assert!(!p.is_admin(&creds("any", &["admin"])));
        // ... and everything built on it follows.
        assert!(p.enforce(EVENTS, &target("p"), &creds("x", &["cloud_admin"])));
        assert!(!p.enforce(EVENTS, &target("p"), &creds("x", &["admin"])));
    }

    #[test]
    fn overrides_change_decisions() {
        let t = target("p1");
        // Members may read.
        let p = overrides(&[(
            "project_reader_api",
            "role:member and project_id:%(project_id)s",
        )]);
        assert!(p.enforce(LIST, &t, &creds("p1", &["member"])));
        assert!(p.enforce(SHOW, &t, &creds("p1", &["member"])));
        assert!(!p.enforce(LIST, &t, &creds("p1", &["reader"])));
        assert!(!p.enforce(LIST, &target("p2"), &creds("p1", &["member"])));
        assert!(p.is_overridden("project_reader_api"));
        assert!(!p.is_overridden(LIST));

        // Events hidden even from admins.
        let p = overrides(&[(EVENTS, "!")]);
        assert!(!p.enforce(EVENTS, &t, &creds("p1", &["admin"])));
        assert!(p.enforce(EVENTS_DETAILS, &t, &creds("p1", &["admin"])));
        assert!(p.enforce(LIST, &t, &creds("p1", &["admin"])));

        // Details shown to owners.
        let p = overrides(&[(EVENTS_DETAILS, "project_id:%(project_id)s")]);
        assert!(p.enforce(EVENTS_DETAILS, &t, &creds("p1", &["member"])));
        assert!(!p.enforce(EVENTS_DETAILS, &target("p2"), &creds("p1", &["member"])));
        assert!(!p.enforce(EVENTS, &t, &creds("p1", &["member"])));

        // Empty string: always.
        let p = overrides(&[(WRITE, "")]);
        assert!(p.enforce(WRITE, &t, &creds("p1", &[])));

        // A new helper rule referenced by an override.
        let p = overrides(&[("owner", "user_id:%(user_id)s"), (LIST, "rule:owner")]);
        let mut t2 = t.clone();
        t2.insert("user_id".into(), "u1".into());
        assert!(p.enforce(LIST, &t2, &creds("zz", &[])));
        assert!(!p.enforce(LIST, &t, &creds("zz", &[])));
    }

    #[test]
    fn legacy_name_applies_to_list_and_show() {
        let t = target("p1");
        let member = creds("p1", &["member"]);
        let p = overrides(&[(LEGACY_RULE, "role:member")]);
        assert!(p.enforce(LIST, &t, &member));
        assert!(p.enforce(SHOW, &t, &member));
        assert!(p.enforce(LEGACY_RULE, &t, &member));
        assert!(p.is_overridden(LIST) && p.is_overridden(SHOW));
        assert!(!p.enforce(EVENTS, &t, &member));

        // An explicit new-name override wins over the legacy one.
        let p = overrides(&[(LEGACY_RULE, "role:member"), (SHOW, "!")]);
        assert!(p.enforce(LIST, &t, &member));
        assert!(!p.enforce(SHOW, &t, &creds("p1", &["admin"])));

        // Without the legacy override, the legacy name is not a rule.
        assert!(!Policy::defaults().enforce(LEGACY_RULE, &t, &creds("p1", &["admin"])));
    }

    #[test]
    fn bad_overrides_are_refused() {
        let err = Policy::with_overrides(vec![(LIST.into(), "role:reader and".into())], "x.yaml")
            .unwrap_err();
        assert_eq!(err.rule.as_deref(), Some(LIST));
        let text = err.to_string();
        assert!(
            text.starts_with("x.yaml, rule \"os_compute_api:os-instance-actions:list\": "),
            "{text}"
        );
        assert!(text.contains("'and' has no check on its right"), "{text}");

        let err = Policy::with_overrides(
            vec![
                ("a".into(), "rule:b".into()),
                ("b".into(), "role:x or rule:a".into()),
            ],
            "x.yaml",
        )
        .unwrap_err();
        assert!(err.message.contains("cycle: a -> b -> a"), "{err}");

        let err = Policy::with_overrides(vec![(LIST.into(), format!("rule:{LIST}"))], "x.yaml")
            .unwrap_err();
        assert!(err.message.contains("cycle"), "{err}");

        let err = Policy::with_overrides(
            vec![(LIST.into(), "@".into()), (LIST.into(), "!".into())],
            "x.yaml",
        )
        .unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
    }

    #[test]
    fn sample_comments_defaults_and_shows_overrides() {
        let sample = Policy::defaults().sample();
        assert!(sample.contains(
            "# List actions for a server.\n# GET  /servers/{server_id}/os-instance-actions\n\
             # Intended scope(s): project\n"
        ));
        assert!(sample.contains("#\"context_is_admin\": \"role:admin\"\n"));
        assert!(sample.contains(
            "#\"os_compute_api:os-instance-actions:events\": \"rule:context_is_admin\"\n"
        ));
        assert!(sample.contains("#\"nova_actions:write\": \"role:admin or role:service\"\n"));
        assert!(!sample.lines().any(|l| l.starts_with('"')), "{sample}");
        // The all-commented sample loads as no overrides.
        assert!(file::parse_yaml(&sample, "sample").unwrap().is_empty());

        let p = overrides(&[
            (EVENTS, "!"),
            (WRITE, "role:admin or role:service"),
            ("owner", "user_id:\"u\\1\""),
        ]);
        let sample = p.sample();
        assert!(sample.contains("\n\"os_compute_api:os-instance-actions:events\": \"!\"\n"));
        // Overridden with the default text: still commented.
        assert!(sample.contains("#\"nova_actions:write\": \"role:admin or role:service\"\n"));
        assert!(
            sample.contains("\"owner\": \"user_id:\\\"u\\\\1\\\"\"\n"),
            "{sample}"
        );
        // The sample loads back to the same effective rules.
        let back = file::parse_yaml(&sample, "sample").unwrap();
        let q = Policy::with_overrides(back, "sample").unwrap();
        for name in p.rules.keys() {
            assert_eq!(q.check(name), p.check(name), "{name}");
        }
    }
}
