//! Reading JSON input (write bodies, import lines) field by field, so that every rejection names
//! the field at fault, in the words Nova's own body validation uses.

use std::fmt;

use serde_json::{Map, Value};

use crate::pytext::py_repr_str;
use crate::timeutil::{Micros, parse_iso8601};

/// Longest id or name accepted (Nova's columns are 255 characters).
pub const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

pub type Result<T> = std::result::Result<T, InputError>;

/// Size limits for free text, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_text: usize,
    /// Longest import line, in bytes.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text: 64 * 1024,
            max_line: 64 << 20,
        }
    }
}

pub fn parse_object(text: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(InputError(format!(
            "The request body must be a JSON object, not {}.",
            kind(&other)
        ))),
        Err(e) => Err(InputError(format!("Malformed JSON: {e}."))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object being read, with its path for error messages (`actions[2].events[0]`).
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    limits: Limits,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, path: &str, limits: Limits) -> Self {
        Fields {
            map,
            path: path.to_string(),
            limits,
        }
    }

    fn field_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn invalid(&self, key: &str, value: &Value, why: String) -> InputError {
        let shown = match value {
            Value::String(s) => excerpt(s).into_owned(),
            other => as_json(other),
        };
        InputError(format!(
            "Invalid input for field/attribute {}. Value: {shown}. {why}",
            self.field_path(key)
        ))
    }

    fn not_of_type(&self, key: &str, value: &Value, kind: &str) -> InputError {
        self.invalid(
            key,
            value,
            format!("{} is not of type '{kind}'", as_json(value)),
        )
    }

    fn missing(&self, key: &str) -> InputError {
        let at = if self.path.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.path)
        };
        InputError(format!("{} is a required property{at}", py_repr_str(key)))
    }

    /// Rejects keys outside `allowed`, as Nova's `additionalProperties: false` does.
    pub fn only(&self, allowed: &[&str]) -> Result<()> {
        let mut extra: Vec<&str> = self
            .map
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if extra.is_empty() {
            return Ok(());
        }
        extra.sort_unstable();
        let names: Vec<String> = extra.iter().map(|k| py_repr_str(&excerpt(k))).collect();
        let verb = if extra.len() == 1 { "was" } else { "were" };
        let at = if self.path.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.path)
        };
        Err(InputError(format!(
            "Additional properties are not allowed ({} {verb} unexpected){at}",
            names.join(", ")
        )))
    }

    fn text(
        &self,
        key: &str,
        value: &'a Value,
        (max, length): (usize, Length),
        non_empty: bool,
    ) -> Result<&'a str> {
        let Value::String(s) = value else {
            return Err(self.not_of_type(key, value, "string"));
        };
        if non_empty && s.is_empty() {
            return Err(self.invalid(key, value, "'' should be non-empty".into()));
        }
        if length.of(s) > max {
            return Err(self.invalid_long(key, max, length));
        }
        Ok(s)
    }

    fn invalid_long(&self, key: &str, max: usize, length: Length) -> InputError {
        let unit = match length {
            Length::Chars => "characters",
            Length::Bytes => "bytes",
        };
        InputError(format!(
            "Invalid input for field/attribute {}. The value is longer than {max} {unit}.",
            self.field_path(key)
        ))
    }

    /// A required, non-empty name or id.
    pub fn name(&self, key: &str) -> Result<String> {
        match self.map.get(key) {
            Some(v) => self
                .text(key, v, (MAX_NAME, Length::Chars), true)
                .map(str::to_string),
            None => Err(self.missing(key)),
        }
    }

    /// An optional (absent or null) name or id.
    pub fn opt_name(&self, key: &str) -> Result<Option<String>> {
        self.opt(key, |v| {
            self.text(key, v, (MAX_NAME, Length::Chars), false)
                .map(str::to_string)
        })
    }

    /// An optional server name, checked as Nova's `parameter_types.name` checks one.
    pub fn opt_server_name(&self, key: &str) -> Result<Option<String>> {
        self.opt(key, |v| {
            let name = self.text(key, v, (MAX_NAME, Length::Chars), true)?;
            match is_valid_server_name(name) {
                true => Ok(name.to_string()),
                false => Err(InputError(INVALID_NAME.into())),
            }
        })
    }

    /// An optional server status: one of Nova's.
    pub fn opt_server_status(&self, key: &str) -> Result<Option<String>> {
        self.opt(key, |v| {
            let status = self.text(key, v, (MAX_NAME, Length::Chars), true)?;
            match SERVER_STATUSES.contains(&status) {
                true => Ok(status.to_string()),
                false => {
                    let known: Vec<String> =
                        SERVER_STATUSES.iter().map(|s| py_repr_str(s)).collect();
                    Err(self.invalid(
                        key,
                        v,
                        format!(
                            "{} is not one of [{}]",
                            py_repr_str(&excerpt(status)),
                            known.join(", ")
                        ),
                    ))
                }
            }
        })
    }

    /// Optional free text (traceback, details) up to the configured size.
    pub fn opt_text(&self, key: &str) -> Result<Option<String>> {
        self.opt(key, |v| {
            self.text(key, v, (self.limits.max_text, Length::Bytes), false)
                .map(str::to_string)
        })
    }

    pub fn time(&self, key: &str) -> Result<Micros> {
        match self.map.get(key) {
            Some(v) => self.parse_time(key, v),
            None => Err(self.missing(key)),
        }
    }

    pub fn opt_time(&self, key: &str) -> Result<Option<Micros>> {
        self.opt(key, |v| self.parse_time(key, v))
    }

    /// Distinguishes an absent key (outer `None`) from an explicit `null` (`Some(None)`).
    pub fn present_time(&self, key: &str) -> Result<Option<Option<Micros>>> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => self.parse_time(key, v).map(|t| Some(Some(t))),
        }
    }

    fn parse_time(&self, key: &str, value: &Value) -> Result<Micros> {
        let s = self.text(key, value, (MAX_NAME, Length::Chars), false)?;
        parse_iso8601(s).ok_or_else(|| {
            self.invalid(
                key,
                value,
                format!("{} is not a 'date-time'", py_repr_str(s)),
            )
        })
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.not_of_type(key, v, "boolean")),
        }
    }

    /// An optional array of objects, each read with its indexed path.
    pub fn objects(&self, key: &str) -> Result<Vec<Fields<'a>>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(map) => Ok(Fields {
                        map,
                        path: format!("{}[{i}]", self.field_path(key)),
                        limits: self.limits,
                    }),
                    other => Err(self.not_of_type(key, other, "object")),
                })
                .collect(),
            Some(v) => Err(self.not_of_type(key, v, "array")),
        }
    }

    fn opt<T>(&self, key: &str, read: impl FnOnce(&'a Value) -> Result<T>) -> Result<Option<T>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => read(v).map(Some),
        }
    }
}

/// The statuses Nova's API shows for a server (`nova.api.openstack.common`'s state map).
pub const SERVER_STATUSES: &[&str] = &[
    "ACTIVE",
    "BUILD",
    "DELETED",
    "ERROR",
    "HARD_REBOOT",
    "MIGRATING",
    "PASSWORD",
    "PAUSED",
    "REBOOT",
    "REBUILD",
    "RESCUE",
    "RESIZE",
    "REVERT_RESIZE",
    "SHELVED",
    "SHELVED_OFFLOADED",
    "SHUTOFF",
    "SOFT_DELETED",
    "SUSPENDED",
    "UNKNOWN",
    "VERIFY_RESIZE",
];

/// Nova's `InvalidName` message for its `valid_name_regex`.
const INVALID_NAME: &str = "An invalid 'name' value was provided. The name must be: printable \
                            characters. Can not start or end with whitespace.";

/// Nova's `valid_name_regex`: printable characters of the Basic Multilingual Plane (Nova builds
/// its character class from code points below U+FFFF only), not starting or ending with
/// whitespace. "Printable" is Unicode's: no control, format, private-use or line/paragraph
/// separator characters; the few format characters are listed by hand, as std has no
/// category tables.
pub fn is_valid_server_name(name: &str) -> bool {
    let printable = |c: char| {
        let cp = c as u32;
        cp < 0xFFFF
            && !c.is_control()
            && !matches!(cp,
                0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E
                | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F
                | 0xD800..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB)
    };
    let edge_ok = |c: Option<char>| c.is_some_and(|c| !c.is_whitespace());
    name.chars().all(printable) && edge_ok(name.chars().next()) && edge_ok(name.chars().last())
}

/// How a length limit counts: names as Nova's columns do (characters), free text as the
/// configuration documents it (bytes, what it costs to store).
#[derive(Debug, Clone, Copy)]
enum Length {
    Chars,
    Bytes,
}

impl Length {
    fn of(self, s: &str) -> usize {
        match self {
            Length::Chars => s.chars().count(),
            Length::Bytes => s.len(),
        }
    }
}

/// Most of a caller's text a message repeats: a fault stays small whatever was sent.
pub const EXCERPT_BYTES: usize = 200;

/// `text`, cut at a character boundary to at most [`EXCERPT_BYTES`] with an ellipsis.
pub fn excerpt(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= EXCERPT_BYTES {
        return text.into();
    }
    let mut end = EXCERPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end]).into()
}

/// A JSON value as JSON text, cut like [`excerpt`].
fn as_json(value: &Value) -> String {
    excerpt(&value.to_string()).into_owned()
}

/// Parses a canonical server id (lowercase `8-4-4-4-12` hex): Nova matches ids exactly, so an
/// upper-case or dash-less spelling names no server.
pub fn server_uuid(text: &str) -> Option<uuid::Uuid> {
    if text.len() != 36 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::parse_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(text: &str) -> Map<String, Value> {
        parse_object(text.as_bytes()).unwrap()
    }

    #[test]
    fn messages_name_the_field() {
        let map = fields_of(r#"{"a": 5, "t": "yesterday", "items": [{"x": 1}]}"#);
        let f = Fields::new(&map, "", Limits::default());
        assert_eq!(
            f.name("a").unwrap_err().0,
            "Invalid input for field/attribute a. Value: 5. 5 is not of type 'string'"
        );
        assert_eq!(f.name("b").unwrap_err().0, "'b' is a required property");
        assert_eq!(
            f.time("t").unwrap_err().0,
            "Invalid input for field/attribute t. Value: yesterday. 'yesterday' is not a 'date-time'"
        );
        let items = f.objects("items").unwrap();
        assert_eq!(
            items[0].opt_name("x").unwrap_err().0,
            "Invalid input for field/attribute items[0].x. Value: 1. 1 is not of type 'string'"
        );
        assert_eq!(
            items[0].only(&[]).unwrap_err().0,
            "Additional properties are not allowed ('x' was unexpected) in items[0]"
        );
    }

    #[test]
    fn unknown_fields_are_sorted_and_counted() {
        let map = fields_of(r#"{"zz": 1, "aa": 2, "ok": 3}"#);
        let f = Fields::new(&map, "", Limits::default());
        assert_eq!(
            f.only(&["ok"]).unwrap_err().0,
            "Additional properties are not allowed ('aa', 'zz' were unexpected)"
        );
        assert!(f.only(&["ok", "aa", "zz"]).is_ok());
    }

    #[test]
    fn limits_and_empty_names() {
        let long = "x".repeat(MAX_NAME + 1);
        let map = fields_of(&format!(
            r#"{{"n": "{long}", "e": "", "tb": "{}"}}"#,
            "y".repeat(11)
        ));
        let f = Fields::new(
            &map,
            "",
            Limits {
                max_text: 10,
                ..Limits::default()
            },
        );
        assert!(f.name("n").unwrap_err().0.contains("longer than 255"));
        assert!(f.name("e").unwrap_err().0.contains("should be non-empty"));
        assert!(f.opt_text("tb").unwrap_err().0.contains("longer than 10"));
    }

    #[test]
    fn free_text_is_limited_in_bytes_and_names_in_characters() {
        let emoji = "\u{1F600}".repeat(4);
        let map = fields_of(&format!(
            r#"{{"tb": "{emoji}", "n": "{}"}}"#,
            "é".repeat(255)
        ));
        let f = Fields::new(
            &map,
            "",
            Limits {
                max_text: 15,
                ..Limits::default()
            },
        );
        assert!(
            f.opt_text("tb")
                .unwrap_err()
                .0
                .ends_with("longer than 15 bytes.")
        );
        assert!(
            Fields::new(
                &map,
                "",
                Limits {
                    max_text: 16,
                    ..Limits::default()
                }
            )
            .opt_text("tb")
            .is_ok()
        );
        assert_eq!(f.name("n").unwrap().chars().count(), 255);
    }

    #[test]
    fn echoed_input_is_cut_short() {
        let huge = "x".repeat(100_000);
        let map = fields_of(&format!(
            r#"{{"a": ["{huge}"], "s": "{huge}é", "ok": "{}"}}"#,
            "é".repeat(150)
        ));
        let f = Fields::new(&map, "", Limits::default());
        let typed = f.name("a").unwrap_err().0;
        assert!(typed.len() < 600, "{} bytes", typed.len());
        assert!(
            typed.contains("Value: [\"xxx") && typed.contains("…"),
            "{typed}"
        );
        let long = f.time("s").unwrap_err().0;
        assert!(long.len() < 600, "{} bytes", long.len());
        let cut = excerpt(f.name("ok").unwrap().as_str()).into_owned();
        assert_eq!(cut, format!("{}…", "é".repeat(100)));
    }

    #[test]
    fn absent_and_null_times_differ() {
        let map = fields_of(r#"{"u": null, "v": "2018-04-25T01:26:29.000000"}"#);
        let f = Fields::new(&map, "", Limits::default());
        assert_eq!(f.present_time("u").unwrap(), Some(None));
        assert_eq!(f.present_time("w").unwrap(), None);
        assert_eq!(
            f.present_time("v").unwrap(),
            Some(Some(1_524_619_589_000_000))
        );
    }

    #[test]
    fn server_ids_must_be_canonical_length() {
        assert!(server_uuid("a0000000-0000-4000-8000-000000000001").is_some());
        assert!(server_uuid("a0000000000040008000000000000001").is_none());
        assert!(server_uuid("nope").is_none());
        assert!(server_uuid("A0000000-0000-4000-8000-000000000001").is_none());
    }
}
