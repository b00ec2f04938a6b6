//! Loading the operator's policy file (`policy.yaml` or `policy.json`) and watching it for
//! changes.
//!
//! YAML support is the flat subset policy files use: comments, blank lines and one
//! `key: value` pair per line, keys and values plain or single/double-quoted. Anything else
//! (nested mappings, lists, flow collections, block scalars, anchors, tags, tab indentation,
//! duplicate keys) is refused with the line number.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{Policy, PolicyError, check};

/// Reads a policy file into `(rule name, check string)` pairs, in file order. `.json` files are
/// JSON objects of strings; anything else is the flat YAML subset. Every check string is parsed
/// here too, so an error names the file, the line and the rule.
pub fn load(path: &Path) -> Result<Vec<(String, String)>, PolicyError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| PolicyError::new(&origin, None, None, format!("cannot read: {e}")))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        parse_json(&text, &origin)
    } else {
        parse_yaml(&text, &origin)
    }
}

/// Parses the text of a JSON policy file (see [`load`]).
pub fn parse_json(text: &str, origin: &str) -> Result<Vec<(String, String)>, PolicyError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let line = (e.line() > 0).then_some(e.line());
        PolicyError::new(origin, line, None, format!("invalid JSON: {e}"))
    })?;
    let serde_json::Value::Object(map) = value else {
        return Err(PolicyError::new(
            origin,
            None,
            None,
            "the policy file must be a JSON object of rule name to check string",
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let line = json_key_line(text, &name);
        let serde_json::Value::String(check_text) = value else {
            return Err(PolicyError::new(
                origin,
                line,
                Some(&name),
                format!("the check must be a string, not {value}"),
            ));
        };
        validate(origin, line, &name, &check_text)?;
        out.push((name, check_text));
    }
    Ok(out)
}

/// The line where `"key":` first appears in JSON text (best effort, for messages).
fn json_key_line(text: &str, key: &str) -> Option<usize> {
    let quoted = serde_json::Value::String(key.to_string()).to_string();
    let mut from = 0;
    while let Some(i) = text[from..].find(&quoted) {
        let at = from + i;
        let rest = text[at + quoted.len()..].trim_start();
        if rest.starts_with(':') {
            return Some(text[..at].matches('\n').count() + 1);
        }
        from = at + quoted.len();
    }
    None
}

fn validate(origin: &str, line: Option<usize>, name: &str, text: &str) -> Result<(), PolicyError> {
    if name.is_empty() {
        return Err(PolicyError::new(origin, line, None, "empty rule name"));
    }
    check::parse(text)
        .map(|_| ())
        .map_err(|e| PolicyError::new(origin, line, Some(name), format!("{e} (in \"{text}\")")))
}

/// Parses the text of a YAML policy file (see [`load`]).
pub fn parse_yaml(text: &str, origin: &str) -> Result<Vec<(String, String)>, PolicyError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines_of: Vec<usize> = Vec::new();
    let mut empty_flow = false;
    for (index, raw) in text.split('\n').enumerate() {
        let n = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let err = |rule: Option<&str>, msg: String| PolicyError::new(origin, Some(n), rule, msg);
        let content = line.trim_start_matches([' ', '\t']);
        let indent = &line[..line.len() - content.len()];
        let content = content.trim_end_matches([' ', '\t']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent.contains('\t') {
            return Err(err(None, "tab indentation is not allowed in YAML".into()));
        }
        if !indent.is_empty() {
            return Err(err(
                None,
                "indented line: nested mappings are not supported (one \"rule\": \"check\" \
                 per line, starting in the first column)"
                    .into(),
            ));
        }
        if empty_flow {
            return Err(err(None, "content after '{}'".into()));
        }
        if content == "---" {
            if out.is_empty() {
                continue;
            }
            return Err(err(None, "only one YAML document is allowed".into()));
        }
        if content == "{}" && out.is_empty() {
            empty_flow = true;
            continue;
        }
        if content == "-" || content.starts_with("- ") {
            return Err(err(
                None,
                "a list is not supported: expected \"rule\": \"check\"".into(),
            ));
        }
        if content.starts_with(['{', '[']) {
            return Err(err(
                None,
                "flow collections ({...} / [...]) are not supported: one \"rule\": \"check\" \
                 per line"
                    .into(),
            ));
        }
        let (key, rest) = parse_key(content).map_err(|m| err(None, m))?;
        let value = parse_value(rest).map_err(|m| err(Some(&key), m))?;
        if let Some(first) = out.iter().position(|(k, _)| *k == key) {
            return Err(err(
                Some(&key),
                format!("duplicate rule (first given on line {})", lines_of[first]),
            ));
        }
        validate(origin, Some(n), &key, &value)?;
        out.push((key, value));
        lines_of.push(n);
    }
    Ok(out)
}

/// Splits `key: rest`, returning the key and the text after the `:`.
fn parse_key(content: &str) -> Result<(String, &str), String> {
    let (key, rest) = if content.starts_with('"') || content.starts_with('\'') {
        let (key, rest) = parse_quoted(content)?;
        let rest = rest.trim_start_matches(' ');
        let Some(rest) = rest.strip_prefix(':') else {
            return Err(format!(
                "expected ':' after the key \"{key}\" (one \"rule\": \"check\" per line)"
            ));
        };
        (key, rest)
    } else {
        let (key, rest) = if let Some(i) = content.find(": ") {
            (&content[..i], &content[i + 1..])
        } else if let Some(key) = content.strip_suffix(':') {
            (key, "")
        } else {
            return Err(format!(
                "expected \"rule\": \"check\", found '{content}' (a key needs ': ' after it)"
            ));
        };
        let key = key.trim_end();
        if key.starts_with(['?', '&', '*', '!', '|', '>', '%', '@', '`']) {
            return Err(format!(
                "unsupported YAML syntax in key '{key}': quote the key"
            ));
        }
        if key.contains(" #") {
            return Err(format!("a comment inside the key '{key}'"));
        }
        (key.to_string(), rest)
    };
    if key.is_empty() {
        return Err("empty rule name".into());
    }
    Ok((key, rest))
}

/// Parses the value part of a line (after the `:` and its separating space), including a
/// trailing comment.
fn parse_value(rest: &str) -> Result<String, String> {
    let rest = rest.trim_matches([' ', '\t']);
    if rest.is_empty() || rest.starts_with('#') {
        return Err(
            "no value: nested mappings are not supported (write \"\" for a rule that \
                    always passes)"
                .into(),
        );
    }
    if rest.starts_with('"') || rest.starts_with('\'') {
        let (value, after) = parse_quoted(rest)?;
        let after = after.trim_matches([' ', '\t']);
        if !after.is_empty() && !after.starts_with('#') {
            return Err(format!("unexpected text after the quoted value: '{after}'"));
        }
        return Ok(value);
    }
    let first = rest.chars().next().unwrap_or(' ');
    if matches!(first, '[' | '{') {
        return Err(
            "flow collections ({...} / [...]) are not supported: quote the check string".into(),
        );
    }
    if rest == "-" || rest.starts_with("- ") {
        return Err("a list is not supported: the value must be a check string".into());
    }
    if matches!(first, '|' | '>') {
        return Err(
            "block scalars (| or >) are not supported: put the check string on one line, quoted"
                .into(),
        );
    }
    if matches!(first, '!' | '@' | '&' | '*' | '%' | '`' | ',' | ']' | '}') {
        return Err(format!(
            "a plain YAML value cannot start with '{first}': quote it, e.g. \"{rest}\""
        ));
    }
    let value = match rest.find(" #") {
        Some(i) => rest[..i].trim_end(),
        None => rest,
    };
    if value.contains(": ") {
        return Err(format!("'{value}' contains ': ': quote the check string"));
    }
    if matches!(
        value.to_ascii_lowercase().as_str(),
        "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off"
    ) {
        return Err(format!(
            "'{value}' is a YAML null or boolean, not a check string: quote it"
        ));
    }
    Ok(value.to_string())
}

/// Parses a single- or double-quoted scalar at the start of `s`; returns it and the rest.
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let quote = chars.next().map(|(_, c)| c).unwrap_or('"');
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            if quote == '\'' && s[i + 1..].starts_with('\'') {
                out.push('\'');
                chars.next();
                continue;
            }
            return Ok((out, &s[i + 1..]));
        }
        if c == '\\' && quote == '"' {
            let Some((_, e)) = chars.next() else { break };
            match e {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                ' ' => out.push(' '),
                'x' | 'u' | 'U' => {
                    let len = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = chars.by_ref().take(len).map(|(_, c)| c).collect();
                    let code = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == len)
                        .and_then(char::from_u32)
                        .ok_or_else(|| format!("bad escape \\{e}{hex}"))?;
                    out.push(code);
                }
                other => return Err(format!("unsupported escape \\{other} in a quoted string")),
            }
            continue;
        }
        out.push(c);
    }
    Err(format!(
        "unterminated {} string (multi-line strings are not supported)",
        if quote == '"' {
            "double-quoted"
        } else {
            "single-quoted"
        }
    ))
}

// ---------------------------------------------------------------------------------------------

/// How often [`Watched::current`] looks at the file at most.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime: Option<SystemTime>,
    len: u64,
}

#[derive(Debug)]
struct WatchState {
    last_check: Instant,
    /// The file's stamp when last looked at; `None` while it is missing.
    stamp: Option<Stamp>,
}

/// The policy in force, reloaded from its file when the file changes.
#[derive(Debug)]
pub struct Watched {
    policy: RwLock<Arc<Policy>>,
    path: Option<PathBuf>,
    state: Mutex<WatchState>,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        mtime: meta.modified().ok(),
        len: meta.len(),
    })
}

fn load_policy(path: &Path) -> Result<Policy, PolicyError> {
    let overrides = load(path)?;
    Policy::with_overrides(overrides, &path.display().to_string())
}

impl Watched {
    /// The defaults when `path` is `None`; otherwise the defaults with the file's overrides.
    /// A missing, unreadable or malformed file is an error.
    pub fn new(path: Option<PathBuf>) -> Result<Watched, PolicyError> {
        let (policy, stamp) = match &path {
            None => (Policy::defaults(), None),
            Some(p) => {
                let before = stamp(p).map_err(|e| {
                    PolicyError::new(
                        &p.display().to_string(),
                        None,
                        None,
                        format!("cannot read: {e}"),
                    )
                })?;
                let policy = load_policy(p)?;
                log::info!(
                    "policy loaded from {}: {} rule(s) overridden",
                    p.display(),
                    policy.overridden().len()
                );
                (policy, Some(before))
            }
        };
        Ok(Watched {
            policy: RwLock::new(Arc::new(policy)),
            path,
            state: Mutex::new(WatchState {
                last_check: Instant::now(),
                stamp,
            }),
        })
    }

    /// The file this policy is loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The policy in force. At most once a second, looks at the file and reloads it when its
    /// modification time or size changed. A failed reload keeps the previous rules.
    pub fn current(&self) -> Arc<Policy> {
        if let Some(path) = &self.path {
            // Another thread already checking: use what is in force.
            if let Ok(mut state) = self.state.try_lock()
                && state.last_check.elapsed() >= CHECK_INTERVAL
            {
                state.last_check = Instant::now();
                self.refresh(path, &mut state);
            }
        }
        self.policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn refresh(&self, path: &Path, state: &mut WatchState) {
        let now = match stamp(path) {
            Ok(s) => s,
            Err(e) => {
                if state.stamp.take().is_some() {
                    log::warn!(
                        "policy file {} is gone ({e}); keeping the rules in force",
                        path.display()
                    );
                }
                return;
            }
        };
        if state.stamp == Some(now) {
            return;
        }
        state.stamp = Some(now);
        match load_policy(path) {
            Ok(policy) => {
                log::info!(
                    "policy reloaded from {}: {} rule(s) overridden",
                    path.display(),
                    policy.overridden().len()
                );
                *self
                    .policy
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
            }
            Err(e) => {
                log::error!("policy reload failed, keeping the previous rules: {e}");
            }
        }
    }

    /// Lets the next `current()` look at the file without waiting for the one-second gate.
    #[cfg(test)]
    fn open_gate(&self) {
        let mut state = self.state.lock().unwrap();
        state.last_check = Instant::now() - CHECK_INTERVAL * 2;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EVENTS, LIST, SHOW, WRITE};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn scratch(name: &str, contents: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "policy-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn yaml_forms() {
        let text = "\u{feff}# Operator overrides\n\
            \n\
            ---\n\
            \"os_compute_api:os-instance-actions:list\": \"role:member and project_id:%(project_id)s\"\n\
            'os_compute_api:os-instance-actions:show': 'rule:owner or role:''quoted'''\n\
            os_compute_api:os-instance-actions:events: \"!\"  # hide from everyone\n\
            owner: project_id:%(project_id)s # trailing comment\r\n\
            empty_double: \"\"\n\
            empty_single: ''\n\
            \"escaped\": \"user_id:\\\"u\\\\1\\\" or role:x\\u0079\"\n\
            \"tight\":\"@\"\n\
            plain_key: role:admin or role:service\n\
            os_compute_api:os-instance-actions: rule:owner\n\
            \x20 # an indented comment\n\
            \"nova_actions:write\"  :   '@'\n";
        let got = parse_yaml(text, "p.yaml").unwrap();
        assert_eq!(
            got,
            pairs(&[
                (LIST, "role:member and project_id:%(project_id)s"),
                (SHOW, "rule:owner or role:'quoted'"),
                (EVENTS, "!"),
                ("owner", "project_id:%(project_id)s"),
                ("empty_double", ""),
                ("empty_single", ""),
                ("escaped", "user_id:\"u\\1\" or role:xy"),
                ("tight", "@"),
                ("plain_key", "role:admin or role:service"),
                ("os_compute_api:os-instance-actions", "rule:owner"),
                (WRITE, "@"),
            ])
        );
        assert!(parse_yaml("", "p.yaml").unwrap().is_empty());
        assert!(
            parse_yaml("# only comments\n\n", "p.yaml")
                .unwrap()
                .is_empty()
        );
        assert!(parse_yaml("{}\n", "p.yaml").unwrap().is_empty());
    }

    #[test]
    fn yaml_errors_name_line_and_rule() {
        let table: &[(&str, usize, Option<&str>, &str)] = &[
            (
                "\"a\": \"@\"\n\"b\":\n  \"c\": \"@\"\n",
                2,
                Some("b"),
                "nested mappings are not supported",
            ),
            ("\"a\": \"@\"\n  \"c\": \"@\"\n", 2, None, "indented line"),
            ("- \"role:admin\"\n", 1, None, "a list is not supported"),
            (
                "\"a\": - role:admin\n",
                1,
                Some("a"),
                "a list is not supported",
            ),
            (
                "\"a\": [\"role:admin\"]\n",
                1,
                Some("a"),
                "flow collections",
            ),
            ("{\"a\": \"@\"}\n", 1, None, "flow collections"),
            ("\"a\": \"@\"\n\t\"b\": \"@\"\n", 2, None, "tab indentation"),
            (
                "\"a\": \"@\"\n\"b\": \"!\"\n\"a\": \"!\"\n",
                3,
                Some("a"),
                "duplicate rule (first given on line 1)",
            ),
            (
                "\"a\": \"role:x or\"\n",
                1,
                Some("a"),
                "'or' has no check on its right",
            ),
            (
                "\n\n\"os_compute_api:os-instance-actions:list\": \"role:reader and (project_id:%(project_id)s\"\n",
                3,
                Some(LIST),
                "'(' is never closed",
            ),
            (
                "\"a\": \"@\n",
                1,
                Some("a"),
                "unterminated double-quoted string",
            ),
            (
                "\"a\": '@\n",
                1,
                Some("a"),
                "unterminated single-quoted string",
            ),
            ("\"a\" \"@\"\n", 1, None, "expected ':' after the key"),
            ("just some words\n", 1, None, "a key needs ': '"),
            ("\"a\": !\n", 1, Some("a"), "cannot start with '!'"),
            ("\"a\": @\n", 1, Some("a"), "cannot start with '@'"),
            ("\"a\": |\n", 1, Some("a"), "block scalars"),
            (
                "\"a\": \"@\" extra\n",
                1,
                Some("a"),
                "unexpected text after the quoted value",
            ),
            ("\"a\": true\n", 1, Some("a"), "YAML null or boolean"),
            ("\"a\": role:x: y\n", 1, Some("a"), "contains ': '"),
            (
                "\"a\": \"bad \\q\"\n",
                1,
                Some("a"),
                "unsupported escape \\q",
            ),
            ("\"\": \"@\"\n", 1, None, "empty rule name"),
            ("\"a\": admin\n", 1, Some("a"), "'admin' is not a check"),
            ("\"a\": \"@\"\n---\n", 2, None, "only one YAML document"),
        ];
        for (text, line, rule, want) in table {
            let err = parse_yaml(text, "p.yaml").expect_err(text);
            assert_eq!(err.line, Some(*line), "{text:?}: {err}");
            assert_eq!(err.rule.as_deref(), *rule, "{text:?}: {err}");
            assert!(err.message.contains(want), "{text:?}: {err}");
            let shown = err.to_string();
            assert!(
                shown.starts_with(&format!("p.yaml, line {line}")),
                "{shown}"
            );
            if let Some(rule) = rule {
                assert!(shown.contains(&format!("rule \"{rule}\"")), "{shown}");
            }
        }
    }

    #[test]
    fn json_files() {
        let path = scratch(
            "policy.json",
            "{\n  \"os_compute_api:os-instance-actions:list\": \"role:member\",\n  \"owner\": \"\"\n}\n",
        );
        let mut got = load(&path).unwrap();
        got.sort();
        assert_eq!(got, pairs(&[(LIST, "role:member"), ("owner", "")]));

        let path = scratch(
            "policy.json",
            "{\n  \"a\": \"@\",\n  \"b\": [\"role:x\"]\n}\n",
        );
        let err = load(&path).unwrap_err();
        assert_eq!(
            (err.line, err.rule.as_deref()),
            (Some(3), Some("b")),
            "{err}"
        );
        assert!(err.message.contains("must be a string"), "{err}");

        let path = scratch(
            "policy.json",
            "{\n  \"a\": \"@\",\n  \"b\": \"role:x and\"\n}\n",
        );
        let err = load(&path).unwrap_err();
        assert_eq!(
            (err.line, err.rule.as_deref()),
            (Some(3), Some("b")),
            "{err}"
        );

        let path = scratch("policy.json", "{\n  \"a\": \"@\",\n}\n");
        let err = load(&path).unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("invalid JSON"), "{err}");

        let path = scratch("policy.json", "[\"role:x\"]");
        assert!(load(&path).unwrap_err().message.contains("JSON object"));
    }

    #[test]
    fn yaml_file_and_missing_file() {
        let path = scratch(
            "policy.yaml",
            "\"os_compute_api:os-instance-actions:events\": \"!\"\n",
        );
        assert_eq!(load(&path).unwrap(), pairs(&[(EVENTS, "!")]));
        let err = load(&path.with_file_name("nope.yaml")).unwrap_err();
        assert!(err.message.contains("cannot read"), "{err}");
        assert!(Watched::new(Some(path.with_file_name("nope.yaml"))).is_err());
    }

    fn admin() -> super::super::Creds {
        super::super::Creds {
            user_id: "a".into(),
            project_id: Some("p".into()),
            roles: vec!["admin".into()],
            ..Default::default()
        }
    }

    #[test]
    fn watched_without_file_is_defaults() {
        let w = Watched::new(None).unwrap();
        assert!(w.current().overridden().is_empty());
        assert!(w.path().is_none());
    }

    #[test]
    fn watched_refuses_a_bad_file_at_start() {
        let path = scratch("policy.yaml", "\"a\": \"@\"\n\"b\": \"role:\"\n");
        let err = Watched::new(Some(path)).unwrap_err();
        assert_eq!((err.line, err.rule.as_deref()), (Some(2), Some("b")));
    }

    #[test]
    fn watched_reloads_and_keeps_rules_on_failure() {
        let t: super::super::Target = [("project_id".to_string(), "p".to_string())].into();
        let path = scratch(
            "policy.yaml",
            "\"os_compute_api:os-instance-actions:events\": \"!\"\n",
        );
        let w = Watched::new(Some(path.clone())).unwrap();
        assert!(!w.current().enforce(EVENTS, &t, &admin()));

        // Changed, but the gate is closed: still the old rules.
        std::fs::write(
            &path,
            "\"os_compute_api:os-instance-actions:events\": \"role:admin\"\n",
        )
        .unwrap();
        assert!(!w.current().enforce(EVENTS, &t, &admin()));
        w.open_gate();
        assert!(w.current().enforce(EVENTS, &t, &admin()));

        // A broken file keeps the previous rules.
        std::fs::write(
            &path,
            "\"os_compute_api:os-instance-actions:events\": \"role:admin and\"\n",
        )
        .unwrap();
        w.open_gate();
        let p = w.current();
        assert!(p.enforce(EVENTS, &t, &admin()));
        assert!(p.is_overridden(EVENTS));

        // A deleted file keeps them too.
        std::fs::remove_file(&path).unwrap();
        w.open_gate();
        assert!(w.current().enforce(EVENTS, &t, &admin()));

        // When it comes back fixed, it is used.
        std::fs::write(
            &path,
            "# back\n\"os_compute_api:os-instance-actions:list\": \"!\"\n",
        )
        .unwrap();
        w.open_gate();
        let p = w.current();
        assert!(!p.enforce(LIST, &t, &admin()));
        assert!(!p.is_overridden(EVENTS));
    }

    #[test]
    fn watched_gate_opens_after_a_second() {
        let t: super::super::Target = [("project_id".to_string(), "p".to_string())].into();
        let path = scratch("policy.json", "{\"nova_actions:write\": \"!\"}");
        let w = Watched::new(Some(path.clone())).unwrap();
        assert!(!w.current().enforce(WRITE, &t, &admin()));
        std::fs::write(&path, "{\"nova_actions:write\": \"role:admin\"}").unwrap();
        std::thread::sleep(CHECK_INTERVAL + Duration::from_millis(100));
        assert!(w.current().enforce(WRITE, &t, &admin()));
    }
}
