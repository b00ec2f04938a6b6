//! oslo.policy check strings: the canonical text parses back to the same check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_actions::policy::check::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(check) = parse(text) else {
        return;
    };
    let canonical = check.to_string();
    let again = parse(&canonical)
        .unwrap_or_else(|e| panic!("{text:?} printed as {canonical:?}, which fails: {e}"));
    assert_eq!(again, check, "{text:?} printed as {canonical:?}");
    // Printing is a fixed point.
    assert_eq!(again.to_string(), canonical);
});
