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

/// `Additional properties are not allowed ('a', 'b' were unexpected)`, or Ok when none.
pub fn reject_unknown(pairs: &[(String, String)], known: &[&str]) -> Result<(), String> {
    let mut unknown: Vec<&str> = pairs
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !known.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    unknown.dedup();
    let names: Vec<String> = unknown.iter().map(|n| py_repr_str(n)).collect();
    let verb = if unknown.len() == 1 { "was" } else { "were" };
    Err(format!(
        "Additional properties are not allowed ({} {verb} unexpected)",
        names.join(", ")
    ))
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
