//! ISO 8601 input and the fixed output format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_actions::timeutil::{format_micros, parse_iso8601};

/// 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999 in microseconds.
const MIN: i64 = -62_135_596_800_000_000;
const MAX: i64 = 253_402_300_800_000_000 - 1;

fn formatted_round_trips(t: i64) {
    let text = format_micros(t);
    assert_eq!(text.len(), 26, "{text}");
    let b = text.as_bytes();
    assert!(b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[19] == b'.', "{text}");
    assert_eq!(parse_iso8601(&text), Some(t.clamp(MIN, MAX)), "{text}");
    // With an explicit zone it is the same instant.
    assert_eq!(parse_iso8601(&format!("{text}Z")), Some(t.clamp(MIN, MAX)));
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= 8 {
        formatted_round_trips(i64::from_le_bytes(data[..8].try_into().unwrap()));
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(t) = parse_iso8601(text) {
        assert!((MIN..=MAX).contains(&t), "{text:?} -> {t}");
        formatted_round_trips(t);
        // A trailing newline is allowed, and means the same.
        if !text.ends_with('\n') {
            assert_eq!(parse_iso8601(&format!("{text}\n")), Some(t), "{text:?}");
        }
    }
});
