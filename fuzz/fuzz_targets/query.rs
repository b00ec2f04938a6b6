//! WebOb query parsing, `urlencode` and Python `repr`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_actions::pytext::{parse_query, parse_query_lossy, py_repr_str, urlencode};

fuzz_target!(|data: &[u8]| {
    let lossy = parse_query_lossy(data);
    let Ok(pairs) = parse_query(data) else {
        // Undecodable: the lossy parse still sees the same number of pairs.
        assert!(!lossy.is_empty());
        return;
    };
    // When the bytes decode, the lossy parse is the same parse.
    assert_eq!(pairs, lossy);
    // urlencode(pairs) parses back to exactly the pairs.
    let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let encoded = urlencode(&borrowed);
    assert!(encoded.is_ascii());
    assert_eq!(parse_query(encoded.as_bytes()), Ok(pairs.clone()), "{encoded}");
    // Every name and value has a Python repr: quoted, one line, no control characters.
    for (k, v) in &pairs {
        for s in [k, v] {
            let repr = py_repr_str(s);
            let q = repr.chars().next().unwrap();
            assert!(q == '\'' || q == '"', "{repr}");
            assert!(repr.len() >= 2 && repr.ends_with(q), "{repr}");
            assert!(!repr.chars().any(char::is_control), "{repr}");
            let printable_ascii = s.bytes().all(|b| (0x20..0x7f).contains(&b));
            if printable_ascii && !s.contains(['\'', '\\']) {
                assert_eq!(repr, format!("'{s}'"));
            }
        }
    }
});
