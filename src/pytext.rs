//! Python text behaviours that leak into Nova's responses.
//!
//! Nova is Python, so error messages embed `repr()` output, pagination links
//! are built with `urllib.parse.urlencode`, query strings go through WebOb and
//! bodies through `json.dumps`. Each function here reproduces one of those
//! byte for byte so clients cannot tell the Rust service apart.

use std::fmt::Write as _;

/// Python 3 `repr(s)` of a str: single quotes unless the string contains ' and no ", then double quotes;
/// backslash escapes \\ \n \r \t and the chosen quote; other non-printable characters as \xhh (< 0x100),
/// \uhhhh, \Uhhhhhhhh (lowercase hex), following str.isprintable().
pub fn py_repr_str(s: &str) -> String {
    // CPython's unicode_repr only switches to double quotes when that avoids
    // escaping: a single quote present and no double quote at all.
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let cp = u32::from(c);
                // Writing to a String cannot fail.
                let _ = if cp < 0x100 {
                    write!(out, "\\x{cp:02x}")
                } else if cp < 0x1_0000 {
                    write!(out, "\\u{cp:04x}")
                } else {
                    write!(out, "\\U{cp:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}

/// Python repr of a list of str: "['1', '2']" (", " separator, each item via py_repr_str); "[]" when empty.
pub fn py_repr_list(items: &[&str]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&py_repr_str(item));
    }
    out.push(']');
    out
}

// Approximation of Python's `str.isprintable()` without shipping Unicode tables.
//
// Python calls a character non-printable when its general category is Cc, Cf,
// Cs, Co, Cn, Zl, Zp or Zs (except ' '). Everything below is exact for the
// assigned code points of Unicode 14.0 (Python 3.11), checked against
// `str.isprintable` over every code point. The only knowing difference is that
// UNASSIGNED (Cn) code points are treated as printable here while Python
// escapes them: 705 ranges, 829,761 code points in all, almost all of them in
// the empty planes 4-13 and the unassigned tails of planes 1, 2, 3 and 14. A
// newer Python (newer Unicode) assigns some of these, which is one more reason
// not to chase them with a table. The 337 unassigned BMP ranges (1,422 code
// points) are:
// 0378-0379 0380-0383 038B 038D 03A2 0530 0557-0558 058B-058C 0590 05C8-05CF 05EB-05EE 05F5-05FF
// 070E 074B-074C 07B2-07BF 07FB-07FC 082E-082F 083F 085C-085D 085F 086B-086F 088F 0892-0897 0984
// 098D-098E 0991-0992 09A9 09B1 09B3-09B5 09BA-09BB 09C5-09C6 09C9-09CA 09CF-09D6 09D8-09DB 09DE
// 09E4-09E5 09FF-0A00 0A04 0A0B-0A0E 0A11-0A12 0A29 0A31 0A34 0A37 0A3A-0A3B 0A3D 0A43-0A46
// 0A49-0A4A 0A4E-0A50 0A52-0A58 0A5D 0A5F-0A65 0A77-0A80 0A84 0A8E 0A92 0AA9 0AB1 0AB4 0ABA-0ABB
// 0AC6 0ACA 0ACE-0ACF 0AD1-0ADF 0AE4-0AE5 0AF2-0AF8 0B00 0B04 0B0D-0B0E 0B11-0B12 0B29 0B31 0B34
// 0B3A-0B3B 0B45-0B46 0B49-0B4A 0B4E-0B54 0B58-0B5B 0B5E 0B64-0B65 0B78-0B81 0B84 0B8B-0B8D 0B91
// 0B96-0B98 0B9B 0B9D 0BA0-0BA2 0BA5-0BA7 0BAB-0BAD 0BBA-0BBD 0BC3-0BC5 0BC9 0BCE-0BCF 0BD1-0BD6
// 0BD8-0BE5 0BFB-0BFF 0C0D 0C11 0C29 0C3A-0C3B 0C45 0C49 0C4E-0C54 0C57 0C5B-0C5C 0C5E-0C5F
// 0C64-0C65 0C70-0C76 0C8D 0C91 0CA9 0CB4 0CBA-0CBB 0CC5 0CC9 0CCE-0CD4 0CD7-0CDC 0CDF 0CE4-0CE5
// 0CF0 0CF3-0CFF 0D0D 0D11 0D45 0D49 0D50-0D53 0D64-0D65 0D80 0D84 0D97-0D99 0DB2 0DBC 0DBE-0DBF
// 0DC7-0DC9 0DCB-0DCE 0DD5 0DD7 0DE0-0DE5 0DF0-0DF1 0DF5-0E00 0E3B-0E3E 0E5C-0E80 0E83 0E85 0E8B
// 0EA4 0EA6 0EBE-0EBF 0EC5 0EC7 0ECE-0ECF 0EDA-0EDB 0EE0-0EFF 0F48 0F6D-0F70 0F98 0FBD 0FCD
// 0FDB-0FFF 10C6 10C8-10CC 10CE-10CF 1249 124E-124F 1257 1259 125E-125F 1289 128E-128F 12B1
// 12B6-12B7 12BF 12C1 12C6-12C7 12D7 1311 1316-1317 135B-135C 137D-137F 139A-139F 13F6-13F7
// 13FE-13FF 169D-169F 16F9-16FF 1716-171E 1737-173F 1754-175F 176D 1771 1774-177F 17DE-17DF
// 17EA-17EF 17FA-17FF 181A-181F 1879-187F 18AB-18AF 18F6-18FF 191F 192C-192F 193C-193F 1941-1943
// 196E-196F 1975-197F 19AC-19AF 19CA-19CF 19DB-19DD 1A1C-1A1D 1A5F 1A7D-1A7E 1A8A-1A8F 1A9A-1A9F
// 1AAE-1AAF 1ACF-1AFF 1B4D-1B4F 1B7F 1BF4-1BFB 1C38-1C3A 1C4A-1C4C 1C89-1C8F 1CBB-1CBC 1CC8-1CCF
// 1CFB-1CFF 1F16-1F17 1F1E-1F1F 1F46-1F47 1F4E-1F4F 1F58 1F5A 1F5C 1F5E 1F7E-1F7F 1FB5 1FC5
// 1FD4-1FD5 1FDC 1FF0-1FF1 1FF5 1FFF 2065 2072-2073 208F 209D-209F 20C1-20CF 20F1-20FF 218C-218F
// 2427-243F 244B-245F 2B74-2B75 2B96 2CF4-2CF8 2D26 2D28-2D2C 2D2E-2D2F 2D68-2D6E 2D71-2D7E
// 2D97-2D9F 2DA7 2DAF 2DB7 2DBF 2DC7 2DCF 2DD7 2DDF 2E5E-2E7F 2E9A 2EF4-2EFF 2FD6-2FEF 2FFC-2FFF
// 3040 3097-3098 3100-3104 3130 318F 31E4-31EF 321F A48D-A48F A4C7-A4CF A62C-A63F A6F8-A6FF
// A7CB-A7CF A7D2 A7D4 A7DA-A7F1 A82D-A82F A83A-A83F A878-A87F A8C6-A8CD A8DA-A8DF A954-A95E
// A97D-A97F A9CE A9DA-A9DD A9FF AA37-AA3F AA4E-AA4F AA5A-AA5B AAC3-AADA AAF7-AB00 AB07-AB08
// AB0F-AB10 AB17-AB1F AB27 AB2F AB6C-AB6F ABEE-ABEF ABFA-ABFF D7A4-D7AF D7C7-D7CA D7FC-D7FF
// FA6E-FA6F FADA-FAFF FB07-FB12 FB18-FB1C FB37 FB3D FB3F FB42 FB45 FBC3-FBD2 FD90-FD91 FDC8-FDCE
// FE1A-FE1F FE53 FE67 FE6C-FE6F FE75 FEFD-FEFE FF00 FFBF-FFC1 FFC8-FFC9 FFD0-FFD1 FFD8-FFD9
// FFDD-FFDF FFE7 FFEF-FFF8
fn is_printable(c: char) -> bool {
    !matches!(
        u32::from(c),
        // Cc
        0x00..=0x1f | 0x7f..=0x9f
        // Zs other than ' ', Zl, Zp
        | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x202f | 0x205f | 0x3000 | 0x2028 | 0x2029
        // Cf
        | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        // Co
        | 0xe000..=0xf8ff | 0xf_0000..=0xf_fffd | 0x10_0000..=0x10_fffd
        // Cn that are permanently reserved, so stable across Unicode versions
        | 0xfdd0..=0xfdef
    ) && (u32::from(c) & 0xfffe) != 0xfffe
}

/// Python `urllib.parse.urlencode(pairs)` (quote_via=quote_plus, doseq False): key=value joined by '&';
/// space -> '+', unreserved A-Za-z0-9 and _.-~ kept, everything else percent-encoded from UTF-8 with uppercase hex.
pub fn urlencode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus_into(&mut out, k);
        out.push('=');
        quote_plus_into(&mut out, v);
    }
    out
}

/// Python's `urllib.parse.quote(s, safe='')`: one path segment, every byte but the unreserved
/// ones percent-encoded (a space as `%20`).
pub fn quote_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            _ => {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
            }
        }
    }
    out
}

fn quote_plus_into(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
            }
        }
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex, as Python's `hexdigest()` writes it.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 * bytes.len());
    for &b in bytes {
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 0xf)]));
    }
    out
}

/// A query-string name or value that did not decode to UTF-8; WebOb raises here
/// and Nova answers 400, so callers need to tell it apart from an empty result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryNotUtf8;

/// WebOb's query parsing (webob.request parse of QUERY_STRING, as used by Nova's request.GET):
/// bytes; '+' replaced by space first; split on '&' and then each part on ';'; empty parts skipped;
/// split once on '='; a part without '=' has value ""; name and value percent-decoded with
/// urllib.parse.unquote_to_bytes semantics (an invalid escape such as "%zz" or a trailing "%" stays literal);
/// then each decoded name/value must be valid UTF-8, else Err(QueryNotUtf8). Order preserved, duplicates kept.
pub fn parse_query(raw: &[u8]) -> Result<Vec<(String, String)>, QueryNotUtf8> {
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| QueryNotUtf8);
    query_pairs(raw)
        .map(|(name, value)| Ok((text(name)?, text(value)?)))
        .collect()
}

/// The same parse with undecodable bytes replaced, as Routes reads `_method` (errors='ignore').
pub fn parse_query_lossy(raw: &[u8]) -> Vec<(String, String)> {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    query_pairs(raw)
        .map(|(name, value)| (text(name), text(value)))
        .collect()
}

fn query_pairs(raw: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
    // '+' becomes a space before unquoting, so an encoded "%2B" survives as '+'.
    let qs: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let parts: Vec<Vec<u8>> = qs
        .split(|&b| b == b'&')
        .flat_map(|s| s.split(|&b| b == b';'))
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    parts
        .into_iter()
        .map(|part| match part.iter().position(|&b| b == b'=') {
            Some(i) => (percent_decode(&part[..i]), percent_decode(&part[i + 1..])),
            None => (percent_decode(&part), Vec::new()),
        })
}

/// Percent-decode a URL path segment (same unquote_to_bytes rules, no '+' handling) -> bytes.
pub fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            // unquote_to_bytes leaves a '%' not followed by two hex digits as
            // is, and rescans from the very next byte, which may be another '%'.
            if let (Some(hi), Some(lo)) = (
                raw.get(i + 1).and_then(|&h| hex_val(h)),
                raw.get(i + 2).and_then(|&l| hex_val(l)),
            ) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Append `s` as a JSON string exactly like Python's json.dumps (ensure_ascii=True): surrounding quotes;
/// `"` -> \", `\` -> \\, \n \r \t \b \f as those escapes, every other char outside 0x20..=0x7e as \u00XX /
/// \uXXXX with LOWERCASE hex, characters above U+FFFF as a UTF-16 surrogate pair (\ud83d\ude00); '/' not escaped.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    // Runs of printable ASCII need no escaping: copy them whole, handle the rest char by char.
    while start < bytes.len() {
        let end = start + plain_prefix(&bytes[start..]);
        out.extend_from_slice(&bytes[start..end]);
        if end == bytes.len() {
            break;
        }
        let c = s[end..].chars().next().expect("end is a char boundary");
        escape_char(out, c);
        start = end + c.len_utf8();
    }
    out.push(b'"');
}

/// Printable ASCII other than `"` and `\`: written as is.
fn is_plain(b: u8) -> bool {
    (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'
}

/// Length of the leading run of plain bytes, eight at a time while no byte of a word can need
/// escaping (the word test may flag a plain byte, never miss one that is not).
fn plain_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let flagged = w.wrapping_sub(0x20 * ONES) & !w & HIGH // below 0x20
            | w & HIGH // not ASCII
            | zero_byte(w ^ (u64::from(b'"') * ONES))
            | zero_byte(w ^ (u64::from(b'\\') * ONES))
            | zero_byte(w ^ (0x7f * ONES));
        if flagged != 0 {
            break;
        }
        i += 8;
    }
    i + bytes[i..].iter().take_while(|&&b| is_plain(b)).count()
}

fn escape_char(out: &mut Vec<u8>, c: char) {
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        '\u{8}' => out.extend_from_slice(b"\\b"),
        '\u{c}' => out.extend_from_slice(b"\\f"),
        c => {
            let mut units = [0u16; 2];
            for &u in c.encode_utf16(&mut units).iter() {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX_LOWER[usize::from((u >> shift) & 0xf)]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(s: &str) -> String {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Expected values below were printed by python3.11's repr().
    #[test]
    fn repr_matches_python() {
        let cases: &[(&str, &str)] = &[
            ("plain", "'plain'"),
            ("", "''"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' and \"", "'both \\' and \"'"),
            ("a\nb", "'a\\nb'"),
            ("a\tb", "'a\\tb'"),
            ("a\rb", "'a\\rb'"),
            ("\0", "'\\x00'"),
            ("\x7f", "'\\x7f'"),
            ("\u{85}", "'\\x85'"),
            ("\u{a0}", "'\\xa0'"),
            ("\u{ad}", "'\\xad'"),
            ("\x1b[0m", "'\\x1b[0m'"),
            ("é", "'é'"),
            ("日本", "'日本'"),
            ("😀", "'😀'"),
            ("\u{200b}", "'\\u200b'"),
            ("\u{2028}", "'\\u2028'"),
            ("\u{feff}", "'\\ufeff'"),
            ("\u{e000}", "'\\ue000'"),
            ("\u{fffe}", "'\\ufffe'"),
            ("\u{e0001}", "'\\U000e0001'"),
            ("\u{10fffd}", "'\\U0010fffd'"),
            ("back\\slash", "'back\\\\slash'"),
        ];
        for (input, expected) in cases {
            assert_eq!(py_repr_str(input), *expected, "repr({input:?})");
        }
    }

    #[test]
    fn repr_list_matches_python() {
        assert_eq!(py_repr_list(&[]), "[]");
        assert_eq!(py_repr_list(&["1", "2"]), "['1', '2']");
        assert_eq!(py_repr_list(&["it's", "a\n"]), "[\"it's\", 'a\\n']");
    }

    // Expected values below were printed by urllib.parse.urlencode.
    #[test]
    fn urlencode_matches_python() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], ""),
            (&[("a", "b c")], "a=b+c"),
            (&[("k", ":")], "k=%3A"),
            (&[("k", "+")], "k=%2B"),
            (&[("k", "/")], "k=%2F"),
            (&[("k", "~")], "k=~"),
            (&[("k", "é")], "k=%C3%A9"),
            (
                &[("limit", "1\n"), ("marker", "req-x")],
                "limit=1%0A&marker=req-x",
            ),
            (&[("a b", "c&d=e")], "a+b=c%26d%3De"),
            (&[("k", "_.-*!'()%")], "k=_.-%2A%21%27%28%29%25"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(urlencode(pairs), *expected, "urlencode({pairs:?})");
        }
    }

    // Expected values below come from WebOb's algorithm run in python3.11.
    #[test]
    fn parse_query_matches_webob() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("a=1&b=2;c=3", &[("a", "1"), ("b", "2"), ("c", "3")]),
            ("a+b=c+d", &[("a b", "c d")]),
            ("%zz=%4", &[("%zz", "%4")]),
            ("limit", &[("limit", "")]),
            ("limit=", &[("limit", "")]),
            ("&&;;a=1", &[("a", "1")]),
            ("x=%C3%A9", &[("x", "é")]),
            ("a=%2B", &[("a", "+")]),
            ("k=v=w", &[("k", "v=w")]),
            ("=", &[("", "")]),
            ("=v", &[("", "v")]),
            ("a=1&a=2", &[("a", "1"), ("a", "2")]),
            ("%", &[("%", "")]),
            ("a%3Db=c", &[("a=b", "c")]),
            ("", &[]),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                parse_query(raw.as_bytes()),
                Ok(owned(expected)),
                "parse_query({raw:?})"
            );
        }
        for raw in ["x=%ff", "%ff=1&", "x=%ED%A0%80"] {
            assert_eq!(parse_query(raw.as_bytes()), Err(QueryNotUtf8), "{raw:?}");
        }
        // Raw non-UTF-8 bytes (not escaped) must fail the same way.
        assert_eq!(parse_query(b"x=\xff"), Err(QueryNotUtf8));
    }

    // Expected values below were printed by urllib.parse.unquote_to_bytes.
    #[test]
    fn percent_decode_matches_unquote_to_bytes() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"%zz", b"%zz"),
            (b"%4", b"%4"),
            (b"%", b"%"),
            (b"abc%", b"abc%"),
            (b"%41%4a%4A", b"AJJ"),
            (b"%%41", b"%A"),
            (b"%e2%82%ac", b"\xe2\x82\xac"),
            (b"%G1", b"%G1"),
            (b"%1", b"%1"),
            (b"a+b", b"a+b"),
            (b"", b""),
        ];
        for (raw, expected) in cases {
            assert_eq!(percent_decode(raw), *expected, "{raw:?}");
        }
    }

    // Expected values below were printed by json.dumps.
    #[test]
    fn json_matches_python() {
        let cases: &[(&str, &str)] = &[
            ("\"", r#""\"""#),
            ("\\", r#""\\""#),
            ("\0\x01\x1f", r#""\u0000\u0001\u001f""#),
            ("\u{8}\u{c}\n\r\t", r#""\b\f\n\r\t""#),
            ("\x7f", r#""\u007f""#),
            ("é", r#""\u00e9""#),
            ("😀", r#""\ud83d\ude00""#),
            ("/", r#""/""#),
            ("日本", r#""\u65e5\u672c""#),
            ("\u{2028}", r#""\u2028""#),
            (" ~", r#"" ~""#),
            ("", r#""""#),
        ];
        for (input, expected) in cases {
            assert_eq!(json(input), *expected, "json.dumps({input:?})");
        }
    }

    #[test]
    fn json_appends() {
        let mut out = b"x:".to_vec();
        write_json_str(&mut out, "y");
        assert_eq!(out, b"x:\"y\"");
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    // A deliberately independent JSON string decoder, so the round trip checks
    // the escaping rather than agreeing with itself.
    fn decode_json_str(s: &str) -> Option<String> {
        let inner = s.strip_prefix('"')?.strip_suffix('"')?;
        let mut units: Vec<u16> = Vec::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                let mut buf = [0u16; 2];
                units.extend_from_slice(c.encode_utf16(&mut buf));
                continue;
            }
            let unit = match chars.next()? {
                '"' => u16::from(b'"'),
                '\\' => u16::from(b'\\'),
                '/' => u16::from(b'/'),
                'b' => 8,
                'f' => 12,
                'n' => 10,
                'r' => 13,
                't' => 9,
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    u16::from_str_radix(&hex, 16).ok()?
                }
                _ => return None,
            };
            units.push(unit);
        }
        String::from_utf16(&units).ok()
    }

    // Inverse of Python's repr for str, used to show repr loses nothing.
    fn decode_repr(s: &str) -> Option<String> {
        let quote = s.chars().next()?;
        let inner = s.strip_prefix(quote)?.strip_suffix(quote)?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = chars.next()?;
            let width = match e {
                'x' => 2,
                'u' => 4,
                'U' => 8,
                'n' | 'r' | 't' | '\\' | '\'' | '"' => {
                    out.push(match e {
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        other => other,
                    });
                    continue;
                }
                _ => return None,
            };
            let hex: String = chars.by_ref().take(width).collect();
            out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
        }
        Some(out)
    }

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((any::<String>(), any::<String>()), 0..6)
    }

    proptest! {
        #[test]
        fn plain_runs_are_found_a_word_at_a_time_exactly(
            bytes in proptest::collection::vec(
                prop_oneof![0x20u8..0x7f, any::<u8>(), Just(b'"'), Just(b'\\')],
                0..40,
            )
        ) {
            let naive = bytes.iter().position(|&b| !is_plain(b)).unwrap_or(bytes.len());
            prop_assert_eq!(plain_prefix(&bytes), naive);
        }

        #[test]
        fn urlencode_alphabet(pairs in pairs()) {
            let refs: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let encoded = urlencode(&refs);
            prop_assert!(encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.~+%=&-".contains(&b)));
        }

        #[test]
        fn parse_query_inverts_urlencode(pairs in pairs()) {
            let refs: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            prop_assert_eq!(parse_query(urlencode(&refs).as_bytes()), Ok(pairs));
        }

        #[test]
        fn parse_query_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_query(&raw);
        }

        #[test]
        fn percent_decode_keeps_unescaped_input(s in "[^%]*") {
            prop_assert_eq!(percent_decode(s.as_bytes()), s.as_bytes());
        }

        #[test]
        fn json_is_ascii_and_round_trips(s in any::<String>()) {
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            prop_assert!(out.iter().all(|&b| (0x20..=0x7e).contains(&b)));
            let text = String::from_utf8(out).unwrap();
            prop_assert_eq!(decode_json_str(&text), Some(s));
        }

        #[test]
        fn repr_is_quoted_and_round_trips(s in any::<String>()) {
            let r = py_repr_str(&s);
            let first = r.chars().next().unwrap();
            prop_assert!(first == '\'' || first == '"');
            prop_assert_eq!(r.chars().last(), Some(first));
            prop_assert!(r.chars().count() >= 2);
            prop_assert_eq!(decode_repr(&r), Some(s));
        }
    }
}
