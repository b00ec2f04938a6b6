//! Query-string validation, as Nova's JSON-schema query validators report it: the first failing
//! parameter in schema order, then unknown names, with Python's quoting in the messages.

use crate::pytext::{py_repr_list, py_repr_str};
use crate::timeutil::{Micros, parse_iso8601};

/// A validated list query (2.58+).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// `limit` exactly as sent: next links repeat it verbatim.
    pub limit: Option<String>,
    pub marker: Option<String>,
    pub since: Option<Micros>,
    pub before: Option<Micros>,
}

impl ListQuery {
    /// The limit as a number; None when absent. Too many digits for any integer still means
    /// "more than max_limit", so it saturates.
    pub fn limit_value(&self) -> Option<Result<u64, ()>> {
        self.limit.as_deref().map(|raw| {
            let digits = raw.strip_suffix('\n').unwrap_or(raw);
            if digits.is_empty() {
                // Nova's int() of a lone "\n" fails after the schema accepted it.
                return Err(());
            }
            Ok(digits.bytes().fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            }))
        })
    }
}

fn invalid(name: &str, shown: &str, why: &str) -> String {
    format!("Invalid input for query parameters {name}. Value: {shown}. {why}")
}

/// Python's `re.match('^[0-9]*$')`: `$` also matches before a single trailing newline.
fn matches_digits(v: &str) -> bool {
    v.strip_suffix('\n')
        .unwrap_or(v)
        .bytes()
        .all(|b| b.is_ascii_digit())
}

/// One accepted parameter: at most one value, checked by `check`.
fn single<'a>(
    pairs: &'a [(String, String)],
    name: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<Option<&'a str>, String> {
    let values: Vec<&str> = pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect();
    match values.as_slice() {
        [] => Ok(None),
        [v] => check(v).map(|()| Some(*v)),
        many => {
            let list = py_repr_list(many);
            Err(invalid(name, &list, &format!("{list} is too long")))
        }
    }
}

/// The unknown names among `pairs`, sorted and quoted as Python would, or None when all are
/// known (`private` names, starting with `_`, count as known).
fn unknown_names(pairs: &[(String, String)], known: &[&str], private: bool) -> Option<Vec<String>> {
    let mut unknown: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !(known.contains(k) || private && k.starts_with('_')))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    (!unknown.is_empty()).then(|| unknown.iter().map(|n| py_repr_str(n)).collect())
}

/// `Additional properties are not allowed ('a', 'b' were unexpected)`, or Ok when none.
pub fn reject_unknown(pairs: &[(String, String)], known: &[&str]) -> Result<(), String> {
    match unknown_names(pairs, known, false) {
        None => Ok(()),
        Some(names) => {
            let verb = if names.len() == 1 { "was" } else { "were" };
            Err(format!(
                "Additional properties are not allowed ({} {verb} unexpected)",
                names.join(", ")
            ))
        }
    }
}

/// jsonschema's `additionalProperties: false` next to `patternProperties: {"^_": {}}`: names
/// starting with `_` pass, any other unknown one is named.
fn reject_unknown_unless_private(pairs: &[(String, String)], known: &[&str]) -> Result<(), String> {
    match unknown_names(pairs, known, true) {
        None => Ok(()),
        Some(names) => {
            let verb = if names.len() == 1 { "does" } else { "do" };
            Err(format!(
                "{} {verb} not match any of the regexes: '^_'",
                names.join(", ")
            ))
        }
    }
}

fn check_limit(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err(invalid("limit", v, "'' should be non-empty"));
    }
    if !matches_digits(v) {
        return Err(invalid(
            "limit",
            v,
            &format!("{} does not match '^[0-9]*$'", py_repr_str(v)),
        ));
    }
    Ok(())
}

fn time_param(pairs: &[(String, String)], name: &str) -> Result<Option<Micros>, String> {
    let check = |v: &str| match parse_iso8601(v) {
        Some(_) => Ok(()),
        None => Err(invalid(
            name,
            v,
            &format!("{} is not a 'date-time'", py_repr_str(v)),
        )),
    };
    Ok(single(pairs, name, check)?.and_then(parse_iso8601))
}

/// Validates a list query at 2.58+ (`changes-before` exists from 2.66).
pub fn list(pairs: &[(String, String)], with_changes_before: bool) -> Result<ListQuery, String> {
    let limit = single(pairs, "limit", check_limit)?.map(str::to_string);
    let marker = single(pairs, "marker", |_| Ok(()))?.map(str::to_string);
    let since = time_param(pairs, "changes-since")?;
    let (before, known): (_, &[&str]) = if with_changes_before {
        (
            time_param(pairs, "changes-before")?,
            &["limit", "marker", "changes-since", "changes-before"],
        )
    } else {
        (None, &["limit", "marker", "changes-since"])
    };
    reject_unknown(pairs, known)?;
    Ok(ListQuery {
        limit,
        marker,
        since,
        before,
    })
}

/// The server listing's query (`GET /servers[/detail]`), validated as Nova's schema does.
#[derive(Debug, Clone, Default)]
pub struct ServersQuery {
    pub limit: Option<u64>,
    pub marker: Option<String>,
    pub since: Option<Micros>,
    pub before: Option<Micros>,
    /// The `name` regex: every one given is checked, the last one filters (webob's MultiDict
    /// read into a dict).
    pub name: Option<regex::Regex>,
    pub deleted: Option<String>,
    pub statuses: Vec<String>,
    pub all_tenants: Option<String>,
    /// `project_id` or its alias `tenant_id`, whichever came last.
    pub project: Option<String>,
    pub user_id: Option<String>,
    pub host: Option<String>,
    /// Every `sort_dir` given: checked (Nova's database layer refuses unknown ones), not
    /// honoured (the order is always Nova's default).
    pub sort_dirs: Vec<String>,
}

/// The query parameters Nova's server listing schema names (`query_params_v275`): from 2.75
/// any other is a 400.
const SERVER_LIST_PARAMS: &[&str] = &[
    "user_id",
    "project_id",
    "tenant_id",
    "launch_index",
    "image_ref",
    "image",
    "kernel_id",
    "ramdisk_id",
    "hostname",
    "key_name",
    "power_state",
    "vm_state",
    "task_state",
    "host",
    "node",
    "flavor",
    "reservation_id",
    "launched_at",
    "terminated_at",
    "availability_zone",
    "name",
    "display_name",
    "description",
    "display_description",
    "locked_by",
    "uuid",
    "root_device_name",
    "config_drive",
    "access_ip_v4",
    "access_ip_v6",
    "auto_disk_config",
    "progress",
    "sort_key",
    "sort_dir",
    "all_tenants",
    "soft_deleted",
    "deleted",
    "status",
    "changes-since",
    "ip",
    "ip6",
    "created_at",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "changes-before",
    "locked",
    "limit",
    "marker",
];

/// What a non-admin may filter by, and from which version (Nova's `_get_server_search_options`).
pub const NON_ADMIN_FILTERS: &[(&str, crate::api::version::Version)] = {
    use crate::api::version::Version as V;
    &[
        ("reservation_id", V(1)),
        ("name", V(1)),
        ("status", V(1)),
        ("image", V(1)),
        ("flavor", V(1)),
        ("ip", V(1)),
        ("changes-since", V(1)),
        ("all_tenants", V(1)),
        ("ip6", V(5)),
        ("tags", V(26)),
        ("tags-any", V(26)),
        ("not-tags", V(26)),
        ("not-tags-any", V(26)),
        ("changes-before", V(66)),
        ("locked", V(73)),
        ("availability_zone", V(83)),
        ("config_drive", V(83)),
        ("key_name", V(83)),
        ("created_at", V(83)),
        ("launched_at", V(83)),
        ("terminated_at", V(83)),
        ("power_state", V(83)),
        ("task_state", V(83)),
        ("vm_state", V(83)),
        ("progress", V(83)),
        ("user_id", V(83)),
    ]
};

fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// webob's `MultiDict` read into a dict: the last value of a repeated parameter.
fn last(pairs: &[(String, String)], name: &str) -> Option<String> {
    values(pairs, name).last().map(ToString::to_string)
}

/// Python's `re.compile` as Nova's `regex` format checker uses it; an empty pattern fails too.
fn regex_param(pairs: &[(String, String)], name: &str) -> Result<Option<regex::Regex>, String> {
    let mut last = None;
    for v in values(pairs, name) {
        let compiled = (!v.is_empty()).then(|| regex::Regex::new(v).ok()).flatten();
        last =
            Some(compiled.ok_or_else(|| {
                invalid(name, v, &format!("{} is not a 'regex'", py_repr_str(v)))
            })?);
    }
    Ok(last)
}

fn multi_time(pairs: &[(String, String)], name: &str) -> Result<Option<Micros>, String> {
    let mut parsed = None;
    for v in values(pairs, name) {
        match parse_iso8601(v) {
            Some(t) => parsed = Some(t),
            None => {
                return Err(invalid(
                    name,
                    v,
                    &format!("{} is not a 'date-time'", py_repr_str(v)),
                ));
            }
        }
    }
    Ok(parsed)
}

/// Validates a server listing query at `version`.
pub fn servers_list(
    pairs: &[(String, String)],
    version: crate::api::version::Version,
) -> Result<ServersQuery, String> {
    let mut limit = None;
    for v in values(pairs, "limit") {
        check_limit(v)?;
        limit = Some(
            v.strip_suffix('\n')
                .unwrap_or(v)
                .bytes()
                .fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                }),
        );
    }
    let name = regex_param(pairs, "name")?;
    let since = multi_time(pairs, "changes-since")?;
    let before = if version.at_least(crate::api::version::CHANGES_BEFORE) {
        multi_time(pairs, "changes-before")?
    } else {
        None
    };
    if version.at_least(crate::api::version::STRICT_SERVER_QUERY) {
        reject_unknown_unless_private(pairs, SERVER_LIST_PARAMS)?;
    }
    let project = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "project_id" || k == "tenant_id")
        .map(|(_, v)| v.clone());
    Ok(ServersQuery {
        limit,
        // An empty marker is no marker.
        marker: last(pairs, "marker").filter(|m| !m.is_empty()),
        since,
        before,
        name,
        deleted: last(pairs, "deleted"),
        statuses: values(pairs, "status")
            .into_iter()
            .map(str::to_string)
            .collect(),
        all_tenants: last(pairs, "all_tenants"),
        project,
        user_id: last(pairs, "user_id"),
        host: last(pairs, "host"),
        sort_dirs: values(pairs, "sort_dir")
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

/// `GET /servers/{id}` takes no query parameters; Nova ignores them.
pub fn servers_show(
    _pairs: &[(String, String)],
    _version: crate::api::version::Version,
) -> Result<(), String> {
    Ok(())
}

/// oslo's `strutils.bool_from_string(value, default=False)`.
pub fn bool_from_string(value: &str) -> bool {
    matches!(
        value.trim().to_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// Nova's `common.is_all_tenants`: present and empty means yes; otherwise a strict boolean.
pub fn is_all_tenants(value: &str) -> Result<bool, String> {
    if value.is_empty() {
        return Ok(true);
    }
    match value.trim().to_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Ok(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Ok(false),
        _ => Err(format!(
            "Unrecognized value '{value}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn messages() {
        let err = |p: &[(&str, &str)]| list(&q(p), true).unwrap_err();
        assert_eq!(
            err(&[("limit", "x")]),
            "Invalid input for query parameters limit. Value: x. 'x' does not match '^[0-9]*$'"
        );
        assert_eq!(
            err(&[("limit", " 1")]),
            "Invalid input for query parameters limit. Value:  1. ' 1' does not match '^[0-9]*$'"
        );
        assert_eq!(
            err(&[("limit", "")]),
            "Invalid input for query parameters limit. Value: . '' should be non-empty"
        );
        assert_eq!(
            err(&[("limit", "1"), ("limit", "2")]),
            "Invalid input for query parameters limit. Value: ['1', '2']. ['1', '2'] is too long"
        );
        assert_eq!(
            err(&[("changes-since", "wrong")]),
            "Invalid input for query parameters changes-since. Value: wrong. 'wrong' is not a 'date-time'"
        );
        assert_eq!(
            err(&[("foo", "1")]),
            "Additional properties are not allowed ('foo' was unexpected)"
        );
        assert_eq!(
            err(&[("zzz", ""), ("foo", ""), ("aaa", ""), ("foo", "")]),
            "Additional properties are not allowed ('aaa', 'foo', 'zzz' were unexpected)"
        );
    }

    #[test]
    fn first_error_wins_in_schema_order() {
        let e = list(
            &q(&[("foo", "1"), ("changes-since", "x"), ("limit", "y")]),
            true,
        )
        .unwrap_err();
        assert!(e.contains("parameters limit"), "{e}");
        let e = list(&q(&[("foo", "1"), ("changes-before", "x")]), true).unwrap_err();
        assert!(e.contains("changes-before"), "{e}");
        let e = list(&q(&[("changes-before", "x")]), false).unwrap_err();
        assert_eq!(
            e,
            "Additional properties are not allowed ('changes-before' was unexpected)"
        );
    }

    #[test]
    fn server_listing_queries_as_novas_schema_checks_them() {
        use crate::api::version::Version;
        let ok = |p: &[(&str, &str)], v: u32| servers_list(&q(p), Version(v)).unwrap();
        let err = |p: &[(&str, &str)], v: u32| servers_list(&q(p), Version(v)).unwrap_err();
        assert_eq!(
            err(&[("name", "(")], 1),
            "Invalid input for query parameters name. Value: (. '(' is not a 'regex'"
        );
        assert_eq!(
            err(&[("name", "")], 100),
            "Invalid input for query parameters name. Value: . '' is not a 'regex'"
        );
        // Every value is checked; the last one filters.
        assert!(servers_list(&q(&[("name", "("), ("name", "web")]), Version(1)).is_err());
        let two = ok(&[("name", "db"), ("name", "^web-1$")], 1);
        assert_eq!(two.name.unwrap().as_str(), "^web-1$");
        assert_eq!(
            err(&[("foo", "1"), ("bar", "2")], 75),
            "'bar', 'foo' do not match any of the regexes: '^_'"
        );
        assert!(servers_list(&q(&[("foo", "1")]), Version(74)).is_ok());
        assert!(servers_list(&q(&[("_foo", "1")]), Version(75)).is_ok());
        // changes-before exists from 2.66: before, it is not even read.
        assert_eq!(ok(&[("changes-before", "x")], 65).before, None);
        assert!(servers_list(&q(&[("changes-before", "x")]), Version(66)).is_err());
        assert_eq!(
            ok(&[("marker", "")], 1).marker,
            None,
            "an empty marker is none"
        );
        assert_eq!(
            ok(
                &[("tenant_id", "a"), ("project_id", "b"), ("tenant_id", "c")],
                1
            )
            .project,
            Some("c".into())
        );
        assert_eq!(is_all_tenants(""), Ok(true));
        assert_eq!(is_all_tenants("True"), Ok(true));
        assert_eq!(is_all_tenants("0"), Ok(false));
        assert!(
            is_all_tenants("abc")
                .unwrap_err()
                .starts_with("Unrecognized value 'abc'")
        );
        assert!(bool_from_string("YES") && !bool_from_string("maybe"));
    }

    #[test]
    fn limits() {
        let parsed = list(&q(&[("limit", "1\n")]), true).unwrap();
        assert_eq!(parsed.limit_value(), Some(Ok(1)));
        let parsed = list(&q(&[("limit", "00000000000000000000123")]), true).unwrap();
        assert_eq!(parsed.limit_value(), Some(Ok(123)));
        let parsed = list(&q(&[("limit", "99999999999999999999999")]), true).unwrap();
        assert_eq!(parsed.limit_value(), Some(Ok(u64::MAX)));
        let parsed = list(&q(&[("limit", "\n")]), true).unwrap();
        assert_eq!(parsed.limit_value(), Some(Err(())));
        assert!(list(&q(&[("limit", "1\n\n")]), true).is_err());
    }
}
