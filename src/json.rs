//! Writes JSON text the way Python's `json.dumps` does with its defaults (`", "` and `": "`
//! separators, ASCII-only output), which is what Nova's responses are byte for byte.

use crate::pytext::write_json_str;
use crate::timeutil::{Micros, write_micros};

/// An object being written; keys come out in the order they are added.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Obj<'a> {
    pub fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj { out, empty: true }
    }

    /// Writes the key and returns the buffer for its value.
    /// Keys are this program's own ASCII names, never the caller's text: they need no escaping.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        debug_assert!(
            key.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        );
        if !self.empty {
            self.out.extend_from_slice(b", ");
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\": ");
        self.out
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        let out = self.key(key);
        write_json_str(out, value);
        self
    }

    pub fn opt_str(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        let out = self.key(key);
        match value {
            Some(v) => write_json_str(out, v),
            None => out.extend_from_slice(b"null"),
        }
        self
    }

    pub fn time(&mut self, key: &str, value: Option<Micros>) -> &mut Self {
        write_time(self.key(key), value);
        self
    }

    pub fn int(&mut self, key: &str, value: i64) -> &mut Self {
        let out = self.key(key);
        out.extend_from_slice(value.to_string().as_bytes());
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        let out = self.key(key);
        out.extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// A time as a JSON string in Nova's format, or `null`.
pub fn write_time(out: &mut Vec<u8>, value: Option<Micros>) {
    match value {
        Some(t) => {
            out.push(b'"');
            write_micros(out, t);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes `items` as a JSON array, each through `write`.
pub fn array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_use_pythons_separators_and_order() {
        let mut out = Vec::new();
        let mut o = Obj::begin(&mut out);
        o.str("b", "x")
            .opt_str("a", None)
            .int("code", 404)
            .bool("ok", false);
        o.time("t", Some(1_524_619_589_000_000));
        o.end();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"b": "x", "a": null, "code": 404, "ok": false, "t": "2018-04-25T01:26:29.000000"}"#
        );
    }

    #[test]
    fn arrays_and_nested_objects() {
        let mut out = Vec::new();
        array(&mut out, ["é", "/"], |out, s| {
            let mut o = Obj::begin(out);
            o.str("k", s);
            o.end();
        });
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"k": "\u00e9"}, {"k": "/"}]"#
        );
        let mut empty = Vec::new();
        array(&mut empty, Vec::<u8>::new(), |_, _| ());
        assert_eq!(empty, b"[]");
    }
}
