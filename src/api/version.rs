//! Microversion negotiation, as Nova's `api_version_request` does it.

use actix_web::http::header::HeaderMap;

pub const MIN_MINOR: u32 = 1;
/// The newest microversion served, stated here only: negotiation, the version document and
/// `latest` all read it. Raising it also changes what writes answer with (see [`WRITE_VIEW`]).
pub const MAX_MINOR: u32 = 104;

/// A negotiated version `2.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32);

// The versions at which this API's behaviour changes; handlers ask `version.at_least(GATE)`.

/// 2.21: actions of a deleted server can be listed and shown.
pub const DELETED_SERVERS: Version = Version(21);
/// 2.51: every caller sees events; the events policy then decides only tracebacks.
pub const EVENTS_FOR_ALL: Version = Version(51);
/// 2.58: lists page (`limit`, `marker`, `changes-since`) and actions carry `updated_at`.
pub const PAGING: Version = Version(58);
/// 2.62: events carry `hostId`, and `host` for callers the events policy allows.
pub const EVENT_HOSTS: Version = Version(62);
/// 2.66: lists take `changes-before`.
pub const CHANGES_BEFORE: Version = Version(66);
/// 2.84: events carry `details` for callers the events:details policy allows.
pub const EVENT_DETAILS: Version = Version(84);
/// Server listings reject unknown query parameters.
pub const STRICT_SERVER_QUERY: Version = Version(75);
/// 2.102: a show refuses query parameters (additionalProperties: false).
pub const STRICT_SHOW_QUERY: Version = Version(102);
/// The newest version; what `latest` means.
pub const MAX: Version = Version(MAX_MINOR);
/// The version the write API's answers show an action at (as an admin reading it would see
/// it). It follows [`MAX`] on purpose, so a write's answer shows every field a read can: a
/// microversion that adds an action or event field changes write answers too, and the test
/// `write_answers_show_the_action_as_the_newest_read_does` says so.
pub const WRITE_VIEW: Version = MAX;

impl Version {
    pub const DEFAULT: Version = Version(MIN_MINOR);

    pub fn at_least(self, gate: Version) -> bool {
        self >= gate
    }

    pub fn text(self) -> String {
        format!("2.{}", self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiation {
    Ok(Version),
    /// 400: the string is not `Major.Minor` (its text, for the message).
    Malformed(String),
    /// 406: well formed but outside 2.1–2.104 (its canonical text, echoed back in headers).
    Unsupported(String),
}

/// Repeated header lines count as one value joined with `,`.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Finds the requested version string: the standard header first (its last `compute` entry),
/// then the legacy one (its last comma-separated piece, even when empty).
fn requested(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = joined(headers, "openstack-api-version") {
        for piece in value.split(',').rev() {
            let Some((service, version)) = piece.trim().split_once(char::is_whitespace) else {
                continue;
            };
            if service.eq_ignore_ascii_case("compute") {
                return Some(version.trim_start().to_string());
            }
        }
    }
    joined(headers, "x-openstack-nova-api-version")
        .map(|v| v.rsplit(',').next().unwrap_or("").trim().to_string())
}

pub fn negotiate(headers: &HeaderMap) -> Negotiation {
    match requested(headers) {
        None => Negotiation::Ok(Version::DEFAULT),
        Some(v) => parse(&v),
    }
}

/// `latest` (lower case only) or `^([1-9]\d*)\.([1-9]\d*|0)$`.
pub fn parse(text: &str) -> Negotiation {
    if text == "latest" {
        return Negotiation::Ok(Version(MAX_MINOR));
    }
    let well_formed = text.split_once('.').filter(|(major, minor)| {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        digits(major)
            && !major.starts_with('0')
            && digits(minor)
            && (*minor == "0" || !minor.starts_with('0'))
    });
    let Some((major, minor)) = well_formed else {
        return Negotiation::Malformed(text.to_string());
    };
    match minor.parse::<u32>() {
        Ok(m) if major == "2" && (MIN_MINOR..=MAX_MINOR).contains(&m) => {
            Negotiation::Ok(Version(m))
        }
        _ => Negotiation::Unsupported(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::header_map as headers;

    fn ok(minor: u32) -> Negotiation {
        Negotiation::Ok(Version(minor))
    }

    #[test]
    fn standard_header_rules() {
        assert_eq!(negotiate(&headers(&[])), ok(1));
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "compute 2.58")])),
            ok(58)
        );
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "COMPUTE 2.58")])),
            ok(58)
        );
        assert_eq!(
            negotiate(&headers(&[(
                "openstack-api-version",
                "compute 2.3, compute 2.7"
            )])),
            ok(7)
        );
        assert_eq!(
            negotiate(&headers(&[(
                "openstack-api-version",
                "compute 2.3, volume 3.1"
            )])),
            ok(3)
        );
        assert_eq!(
            negotiate(&headers(&[
                ("openstack-api-version", "compute 2.3"),
                ("openstack-api-version", "compute 2.9")
            ])),
            ok(9)
        );
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "compute ")])),
            ok(1)
        );
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "2.58")])),
            ok(1)
        );
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "compute 2.59 extra")])),
            Negotiation::Malformed("2.59 extra".into())
        );
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "compute latest")])),
            ok(104)
        );
        assert_eq!(
            negotiate(&headers(&[("openstack-api-version", "compute Latest")])),
            Negotiation::Malformed("Latest".into())
        );
    }

    #[test]
    fn legacy_header_rules() {
        assert_eq!(
            negotiate(&headers(&[("x-openstack-nova-api-version", "2.58")])),
            ok(58)
        );
        assert_eq!(
            negotiate(&headers(&[("x-openstack-nova-api-version", "2.3, 2.8")])),
            ok(8)
        );
        assert_eq!(
            negotiate(&headers(&[("x-openstack-nova-api-version", "")])),
            Negotiation::Malformed("".into())
        );
        assert_eq!(
            negotiate(&headers(&[
                ("openstack-api-version", "compute 2.58"),
                ("x-openstack-nova-api-version", "2.1")
            ])),
            ok(58)
        );
    }

    #[test]
    fn version_strings() {
        assert_eq!(parse("2.104"), ok(104));
        assert_eq!(parse("2.105"), Negotiation::Unsupported("2.105".into()));
        assert_eq!(parse("2.0"), Negotiation::Unsupported("2.0".into()));
        assert_eq!(parse("3.0"), Negotiation::Unsupported("3.0".into()));
        assert_eq!(
            parse("2.99999999999999999999"),
            Negotiation::Unsupported("2.99999999999999999999".into())
        );
        for bad in [
            "abc", "2", "2.", ".1", "02.1", "2.01", "2.1.1", "-2.1", "2.1 ",
        ] {
            assert_eq!(parse(bad), Negotiation::Malformed(bad.into()), "{bad}");
        }
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn every_minor_in_range_is_accepted(minor in MIN_MINOR..=MAX_MINOR) {
                prop_assert_eq!(parse(&format!("2.{minor}")), Negotiation::Ok(Version(minor)));
                prop_assert_eq!(Version(minor).text(), format!("2.{minor}"));
            }

            #[test]
            fn well_formed_but_out_of_range_is_unsupported(major in 1u32..50, minor in 0u32..100_000) {
                let text = format!("{major}.{minor}");
                let expected = if major == 2 && (MIN_MINOR..=MAX_MINOR).contains(&minor) {
                    Negotiation::Ok(Version(minor))
                } else {
                    Negotiation::Unsupported(text.clone())
                };
                prop_assert_eq!(parse(&text), expected);
            }

            #[test]
            fn anything_else_is_malformed_never_a_panic(text in "\\PC{0,12}") {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                let shaped = text.split_once('.').is_some_and(|(a, b)| {
                    digits(a) && digits(b) && !a.starts_with('0') && (b == "0" || !b.starts_with('0'))
                });
                match parse(&text) {
                    Negotiation::Malformed(t) => prop_assert!(!shaped && text != "latest" && t == text),
                    _ => prop_assert!(shaped || text == "latest"),
                }
            }
        }
    }
}
