//! Microversion strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_actions::api::version::{MAX_MINOR, MIN_MINOR, Negotiation, Version, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Negotiation::Ok(v) => {
            assert!((MIN_MINOR..=MAX_MINOR).contains(&v.0), "{text:?}");
            assert!(text == "latest" || text == v.text(), "{text:?} -> {v:?}");
            assert_eq!(parse(&v.text()), Negotiation::Ok(v));
        }
        Negotiation::Malformed(t) => {
            assert_eq!(t, text);
            assert!(text != "latest");
            // Not Major.Minor with digits only.
            let well_formed = text.split_once('.').is_some_and(|(a, b)| {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
                digits(a) && digits(b) && !a.starts_with('0') && (b == "0" || !b.starts_with('0'))
            });
            assert!(!well_formed, "{text:?}");
        }
        Negotiation::Unsupported(t) => {
            assert_eq!(t, text);
            let (major, minor) = text.split_once('.').expect("well formed");
            let in_range = major == "2"
                && minor
                    .parse::<u32>()
                    .is_ok_and(|m| (MIN_MINOR..=MAX_MINOR).contains(&m));
            assert!(!in_range, "{text:?}");
        }
    }
    let _ = Version::DEFAULT;
});
