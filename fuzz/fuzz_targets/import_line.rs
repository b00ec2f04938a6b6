//! NDJSON import lines: an accepted line writes back as a line that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_actions::input::Limits;
use nova_actions::ndjson::{parse_line, write_line};

fuzz_target!(|data: &[u8]| {
    let Ok(history) = parse_line(data, Limits::default()) else {
        return;
    };
    let mut out = Vec::new();
    write_line(&mut out, &history);
    assert!(!out.contains(&b'\n'), "one line");
    let again = parse_line(&out, Limits::default()).unwrap_or_else(|e| {
        panic!("{} wrote {} which fails: {e}", String::from_utf8_lossy(data), String::from_utf8_lossy(&out))
    });
    assert_eq!(again, history, "{}", String::from_utf8_lossy(&out));
    // Writing is a fixed point.
    let mut twice = Vec::new();
    write_line(&mut twice, &again);
    assert_eq!(twice, out);
});
