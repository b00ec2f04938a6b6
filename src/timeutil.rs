//! Timestamps as Nova sees them in `changes-since` / `changes-before`.
//!
//! Nova validates those query parameters with `oslo_utils.timeutils.parse_isotime`, which is
//! `iso8601.parse_date` from the python `iso8601` package (2.x), and later compares them in UTC
//! (`timeutils.normalize_time`). Clients rely on exactly which strings Nova accepts, so the
//! package's regular expression is reproduced below as a small backtracking matcher that tries
//! alternatives in the same order as Python's `re` engine; a hand-written parser would be
//! likely to disagree on inputs such as `2018-04-25T01:30.5` (which Python reads as 01:00:30.5).
//!
//! Upstream source (iso8601/iso8601.py, 2.1.0) the code below follows:
//!
//! ```text
//! (?P<year>[0-9]{4})
//! (
//!     (
//!         (-(?P<monthdash>[0-9]{1,2}))
//!         |
//!         (?P<month>[0-9]{2})
//!         (?!$)  # Don't allow YYYYMM
//!     )
//!     (
//!         (
//!             (-(?P<daydash>[0-9]{1,2}))
//!             |
//!             (?P<day>[0-9]{2})
//!         )
//!         (
//!             (
//!                 (?P<separator>[ T])
//!                 (?P<hour>[0-9]{2})
//!                 (:{0,1}(?P<minute>[0-9]{2})){0,1}
//!                 (
//!                     :{0,1}(?P<second>[0-9]{1,2})
//!                     ([.,](?P<second_fraction>[0-9]+)){0,1}
//!                 ){0,1}
//!                 (?P<timezone>
//!                     Z
//!                     |
//!                     (
//!                         (?P<tz_sign>[-+])
//!                         (?P<tz_hour>[0-9]{2})
//!                         :{0,1}
//!                         (?P<tz_minute>[0-9]{2}){0,1}
//!                     )
//!                 ){0,1}
//!             ){0,1}
//!         )
//!     ){0,1}  # YYYY-MM
//! ){0,1}  # YYYY only
//! $
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since 1970-01-01T00:00:00 UTC (can be negative).
pub type Micros = i64;

const MICROS_PER_SEC: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SEC;
/// 0001-01-01T00:00:00, Python's `datetime.min`.
const MIN_MICROS: Micros = -62_135_596_800 * MICROS_PER_SEC;
/// 9999-12-31T23:59:59.999999, Python's `datetime.max`.
const MAX_MICROS: Micros = 253_402_300_800 * MICROS_PER_SEC - 1;

/// Parse a timestamp exactly as Nova validates `changes-since` / `changes-before`:
/// oslo_utils.timeutils.parse_isotime -> iso8601.parse_date (python `iso8601` package, version 2.x),
/// then normalized to UTC. Returns None where Nova would say "is not a 'date-time'".
///
/// Also returns None when the string is valid but its UTC equivalent lies outside years
/// 1..=9999 (e.g. `0001-01-01T00:00:00+01:00`): Python accepts the aware datetime, but Nova's
/// `normalize_time` then overflows, so no UTC value exists that Nova could filter on.
pub fn parse_iso8601(s: &str) -> Option<Micros> {
    if let Some(t) = parse_canonical(s.as_bytes()) {
        return Some(t);
    }
    let text = s.as_bytes();
    let mut found: Option<Caps> = None;
    match_node(&ISO8601, text, 0, [None; GROUPS], &mut |_, caps| {
        found = Some(caps);
        true
    });
    let caps = found?;
    let field = |g: Group| caps[g as usize].map(|(a, e)| &text[a..e]);
    let num = |g: Group| field(g).map(decimal);

    // Mirrors `int(groups.get("month", groups.get("monthdash", 1)))` and friends.
    let year = num(Group::Year)?;
    let month = num(Group::Month).or(num(Group::MonthDash)).unwrap_or(1);
    let day = num(Group::Day).or(num(Group::DayDash)).unwrap_or(1);
    let hour = num(Group::Hour).unwrap_or(0);
    let minute = num(Group::Minute).unwrap_or(0);
    let second = num(Group::Second).unwrap_or(0);
    let micro = match field(Group::Fraction) {
        Some(digits) => fraction_micros(digits)?,
        None => 0,
    };

    // The checks `datetime.datetime(...)` performs; a failure there is a ParseError.
    if !(1..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }

    let offset_minutes = match field(Group::TzSign) {
        // `timedelta(hours=h, minutes=m)` accepts minutes above 59 and simply adds them,
        // so "+0099" is +01:39; only `datetime.timezone`'s strict ±24h bound applies.
        Some(sign) => {
            let minutes = num(Group::TzHour).unwrap_or(0) * 60 + num(Group::TzMinute).unwrap_or(0);
            if minutes >= 24 * 60 {
                return None;
            }
            if sign == b"-" { -minutes } else { minutes }
        }
        // "Z" and a missing zone both mean UTC (parse_date's default_timezone).
        None => 0,
    };

    let days = days_from_civil(year, month, day);
    let secs = hour * 3600 + minute * 60 + second - offset_minutes * 60;
    let utc = days * MICROS_PER_DAY + secs * MICROS_PER_SEC + micro;
    (MIN_MICROS..=MAX_MICROS).contains(&utc).then_some(utc)
}

/// "YYYY-MM-DDTHH:MM:SS.ffffff" (always 6 fraction digits, no zone; value is UTC).
///
/// Values outside years 1..=9999 cannot come from [`parse_iso8601`]; rather than panic they are
/// clamped to 0001-01-01T00:00:00.000000 / 9999-12-31T23:59:59.999999.
pub fn format_micros(t: Micros) -> String {
    let mut out = Vec::with_capacity(26);
    write_micros(&mut out, t);
    // Only ASCII digits and separators are ever written.
    String::from_utf8(out).unwrap_or_default()
}

/// Nova's `utils.isotime`: whole seconds and `Z` (`2018-04-25T01:26:29Z`).
pub fn isotime(t: Micros) -> String {
    let full = format_micros(t);
    format!("{}Z", &full[..full.len().min(19)])
}

/// Same text appended to `out` without allocating.
///
/// Clamps out-of-range values like [`format_micros`].
pub fn write_micros(out: &mut Vec<u8>, t: Micros) {
    let t = t.clamp(MIN_MICROS, MAX_MICROS);
    let (year, month, day) = civil_from_days(t.div_euclid(MICROS_PER_DAY));
    let in_day = t.rem_euclid(MICROS_PER_DAY);
    let secs = in_day / MICROS_PER_SEC;

    let mut buf = *b"0000-00-00T00:00:00.000000";
    // Every field is in range after the clamp, so each fits its two-digit slots.
    let (secs, micros) = (secs as u32, (in_day % MICROS_PER_SEC) as u32);
    put2(&mut buf[0..], year as u32 / 100);
    put2(&mut buf[2..], year as u32 % 100);
    put2(&mut buf[5..], month as u32);
    put2(&mut buf[8..], day as u32);
    put2(&mut buf[11..], secs / 3600);
    put2(&mut buf[14..], secs / 60 % 60);
    put2(&mut buf[17..], secs % 60);
    put2(&mut buf[20..], micros / 10_000);
    put2(&mut buf[22..], micros / 100 % 100);
    put2(&mut buf[24..], micros % 100);
    out.extend_from_slice(&buf);
}

/// Current time.
pub fn now_micros() -> Micros {
    // A clock before 1970 is possible on a misconfigured host; keep the sign instead of failing.
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}

/// "00" to "99": formatting times is on the path of every listed action.
const PAIRS: [u8; 200] = {
    let mut pairs = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        pairs[2 * i] = b'0' + (i / 10) as u8;
        pairs[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    pairs
};

fn put2(dst: &mut [u8], v: u32) {
    let i = v as usize * 2;
    dst[..2].copy_from_slice(&PAIRS[i..i + 2]);
}

/// Value of a short run of ASCII digits (the regex guarantees at most 4).
fn decimal(digits: &[u8]) -> i64 {
    digits
        .iter()
        .fold(0, |acc, &c| acc * 10 + i64::from(c - b'0'))
}

/// Microseconds of a fraction, as `int(Decimal("0." + digits) * Decimal("1000000.0"))`.
///
/// Mostly truncation to 6 digits, but Decimal's default 28-digit context rounds the product
/// (half-even) once it has more than 28 significant digits, and that rounding can carry into
/// the microseconds: ".123456" followed by 22 nines and a 5 gives 123457, and 29 nines give
/// 1000000, which `datetime` rejects. None reproduces that rejection.
fn fraction_micros(digits: &[u8]) -> Option<i64> {
    let truncated = (0..6).fold(0, |acc, i| {
        acc * 10 + digits.get(i).map_or(0, |&c| i64::from(c - b'0'))
    });
    // The product's coefficient is the digits after leading zeros, then the seven zeros of
    // 1000000.0; only when more than 28 of those come from the input can digits be dropped.
    // The 28 kept digits end at index `keep`; a carry reaches the integer part only if every
    // kept digit after the first six is 9 and the first dropped digit rounds up (a tie rounds
    // up too, because the last kept digit, 9, is odd).
    let carry = digits.iter().position(|&c| c != b'0').is_some_and(|first| {
        let keep = first + 28;
        keep < digits.len() && digits[6..keep].iter().all(|&c| c == b'9') && digits[keep] >= b'5'
    });
    let micros = truncated + i64::from(carry);
    (micros < MICROS_PER_SEC).then_some(micros)
}

/// The form this service writes (`YYYY-MM-DDTHH:MM:SS.ffffff`, no zone), which the general
/// matcher accepts with the same value; read directly because imports are full of it.
fn parse_canonical(t: &[u8]) -> Option<Micros> {
    if t.len() != 26 {
        return None;
    }
    let shape = b"dddd-dd-ddTdd:dd:dd.dddddd";
    let fits = t.iter().zip(shape).all(|(&c, &p)| {
        if p == b'd' {
            c.is_ascii_digit()
        } else {
            c == p
        }
    });
    if !fits {
        return None;
    }
    let n = |a: usize, b: usize| {
        t[a..b]
            .iter()
            .fold(0i64, |v, d| v * 10 + i64::from(d - b'0'))
    };
    let (year, month, day) = (n(0, 4), n(5, 7), n(8, 10));
    let (hour, minute, second, micro) = (n(11, 13), n(14, 16), n(17, 19), n(20, 26));
    let valid = year >= 1
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60;
    valid.then(|| {
        days_from_civil(year, month, day) * MICROS_PER_DAY
            + ((hour * 60 + minute) * 60 + second) * MICROS_PER_SEC
            + micro
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Counting years from March puts the leap day last, so day-of-year needs no leap test.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------------------------------------
// The regex, as data, and a matcher with Python `re` semantics for the constructs it uses.

#[derive(Clone, Copy)]
enum Group {
    Year,
    MonthDash,
    Month,
    DayDash,
    Day,
    Hour,
    Minute,
    Second,
    Fraction,
    Timezone,
    TzSign,
    TzHour,
    TzMinute,
}

const GROUPS: usize = Group::TzMinute as usize + 1;

/// Byte spans of the groups on the current path. Passed by value so that backtracking out of
/// a group forgets it, as `re` does (e.g. `minute` is unset in the match for `T01:30.5`).
type Caps = [Option<(usize, usize)>; GROUPS];

enum Node {
    Byte(u8),
    AnyOf(&'static [u8]),
    /// Greedy `[0-9]{min,max}`; ASCII only, like `[0-9]` in Python.
    Digits(usize, usize),
    Cap(Group, &'static Node),
    Seq(&'static [Node]),
    /// First alternative that lets the rest of the pattern match wins.
    Alt(&'static [Node]),
    /// Greedy `{0,1}`: try with, then without.
    Opt(&'static Node),
    /// `(?!$)`
    NotEnd,
    /// `$`
    End,
}

static ISO8601: Node = {
    use Group::*;
    use Node::*;
    Seq(&[
        Cap(Year, &Digits(4, 4)),
        Opt(&Seq(&[
            Alt(&[
                Seq(&[Byte(b'-'), Cap(MonthDash, &Digits(1, 2))]),
                Seq(&[Cap(Month, &Digits(2, 2)), NotEnd]),
            ]),
            Opt(&Seq(&[
                Alt(&[
                    Seq(&[Byte(b'-'), Cap(DayDash, &Digits(1, 2))]),
                    Cap(Day, &Digits(2, 2)),
                ]),
                Opt(&Seq(&[
                    AnyOf(b" T"),
                    Cap(Hour, &Digits(2, 2)),
                    Opt(&Seq(&[Opt(&Byte(b':')), Cap(Minute, &Digits(2, 2))])),
                    Opt(&Seq(&[
                        Opt(&Byte(b':')),
                        Cap(Second, &Digits(1, 2)),
                        Opt(&Seq(&[AnyOf(b".,"), Cap(Fraction, &Digits(1, usize::MAX))])),
                    ])),
                    Opt(&Cap(
                        Timezone,
                        &Alt(&[
                            Byte(b'Z'),
                            Seq(&[
                                Cap(TzSign, &AnyOf(b"-+")),
                                Cap(TzHour, &Digits(2, 2)),
                                Opt(&Byte(b':')),
                                Opt(&Cap(TzMinute, &Digits(2, 2))),
                            ]),
                        ]),
                    )),
                ])),
            ])),
        ])),
        End,
    ])
};

/// Python's `$` without MULTILINE: end of input, or just before a final "\n".
fn at_end(s: &[u8], pos: usize) -> bool {
    pos == s.len() || (pos + 1 == s.len() && s[pos] == b'\n')
}

/// Match `node` at `pos`, then hand each way it can end to the continuation `k`, in the order
/// Python's backtracking engine would try them; stops at the first `k` that succeeds.
/// The pattern has only one unbounded repetition and no nested ones, so the work is linear
/// in the input length.
fn match_node(
    node: &Node,
    s: &[u8],
    pos: usize,
    caps: Caps,
    k: &mut dyn FnMut(usize, Caps) -> bool,
) -> bool {
    match *node {
        Node::Byte(b) => s.get(pos) == Some(&b) && k(pos + 1, caps),
        Node::AnyOf(set) => s.get(pos).is_some_and(|c| set.contains(c)) && k(pos + 1, caps),
        Node::Digits(min, max) => {
            let run = s[pos.min(s.len())..]
                .iter()
                .take(max)
                .take_while(|c| c.is_ascii_digit())
                .count();
            run >= min && (min..=run).rev().any(|n| k(pos + n, caps))
        }
        Node::Cap(group, inner) => match_node(inner, s, pos, caps, &mut |end, mut c: Caps| {
            c[group as usize] = Some((pos, end));
            k(end, c)
        }),
        Node::Seq(items) => match_seq(items, s, pos, caps, k),
        Node::Alt(alts) => alts.iter().any(|alt| match_node(alt, s, pos, caps, k)),
        Node::Opt(inner) => match_node(inner, s, pos, caps, k) || k(pos, caps),
        Node::NotEnd => !at_end(s, pos) && k(pos, caps),
        Node::End => at_end(s, pos) && k(pos, caps),
    }
}

fn match_seq(
    items: &[Node],
    s: &[u8],
    pos: usize,
    caps: Caps,
    k: &mut dyn FnMut(usize, Caps) -> bool,
) -> bool {
    match items.split_first() {
        None => k(pos, caps),
        Some((first, rest)) => {
            match_node(first, s, pos, caps, &mut |p, c| match_seq(rest, s, p, c, k))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Input and the UTC time Python/Nova arrive at, in `format_micros` form.
    const ACCEPTED: &[(&str, &str)] = &[
        // Examples from Nova's own tests and API docs.
        ("2018-04-25T01:45:02", "2018-04-25T01:45:02.000000"),
        ("2012-12-05 00:00:00", "2012-12-05T00:00:00.000000"),
        ("2018-04-25T01:45:02.500000Z", "2018-04-25T01:45:02.500000"),
        ("2018-04-25", "2018-04-25T00:00:00.000000"),
        ("2016-03-05T12:34:56.789Z", "2016-03-05T12:34:56.789000"),
        // Date shapes, including the ones only reachable by backtracking.
        ("2018", "2018-01-01T00:00:00.000000"),
        ("2018-04", "2018-04-01T00:00:00.000000"),
        ("2018-4", "2018-04-01T00:00:00.000000"),
        ("2018-4-5", "2018-04-05T00:00:00.000000"),
        ("2018-04-5", "2018-04-05T00:00:00.000000"),
        ("20180425", "2018-04-25T00:00:00.000000"),
        ("2018-0425", "2018-04-25T00:00:00.000000"),
        ("201804-25", "2018-04-25T00:00:00.000000"),
        ("201804-5", "2018-04-05T00:00:00.000000"),
        // `-12` then a lone "3" cannot finish, so the month backs off to "1" and the day is "23".
        ("2018-123", "2018-01-23T00:00:00.000000"),
        ("2018-4-05T01", "2018-04-05T01:00:00.000000"),
        ("20180425T013005", "2018-04-25T01:30:05.000000"),
        // `$` also matches before one final newline.
        ("2018-04-25\n", "2018-04-25T00:00:00.000000"),
        ("2018\n", "2018-01-01T00:00:00.000000"),
        ("2018-04-25T01:00:00Z\n", "2018-04-25T01:00:00.000000"),
        // Time shapes.
        ("2018-04-25T01", "2018-04-25T01:00:00.000000"),
        ("2018-04-25T01:30", "2018-04-25T01:30:00.000000"),
        ("2018-04-25T0130", "2018-04-25T01:30:00.000000"),
        ("2018-04-25T013005", "2018-04-25T01:30:05.000000"),
        ("2018-04-25T01:3005", "2018-04-25T01:30:05.000000"),
        ("2018-04-25T0130:05", "2018-04-25T01:30:05.000000"),
        ("2018-04-25T01:30:5", "2018-04-25T01:30:05.000000"),
        ("2018-04-25T01305", "2018-04-25T01:30:05.000000"),
        // A lone 1-digit group after the hour can only be seconds.
        ("2018-04-25T01:5", "2018-04-25T01:00:05.000000"),
        ("2018-04-25T015", "2018-04-25T01:00:05.000000"),
        // With a fraction the 2-digit group after the hour must be seconds, not minutes.
        ("2018-04-25T01:30.5", "2018-04-25T01:00:30.500000"),
        ("2018-04-25T0130,25", "2018-04-25T01:00:30.250000"),
        // Fractions: `[.,]`, any length, truncated.
        ("2018-04-25T01:00:00,5", "2018-04-25T01:00:00.500000"),
        ("2018-04-25T01:00:00.000001", "2018-04-25T01:00:00.000001"),
        (
            "2018-04-25T01:00:00,123456789",
            "2018-04-25T01:00:00.123456",
        ),
        ("2018-04-25T01:00:00.9999999", "2018-04-25T01:00:00.999999"),
        (
            "2018-04-25T01:00:00.9999999999999999999999999999",
            "2018-04-25T01:00:00.999999",
        ),
        // Decimal's 28-digit context rounds the product and carries into the microseconds.
        (
            "2018-04-25T01:00:00.12345699999999999999999999995",
            "2018-04-25T01:00:00.123457",
        ),
        (
            "2018-04-25T01:00:00.12345699999999999999999999994",
            "2018-04-25T01:00:00.123456",
        ),
        (
            "2018-04-25T01:00:00.0000009999999999999999999999999999999999999999",
            "2018-04-25T01:00:00.000001",
        ),
        (
            "2018-04-25T01:00:00.00000199999999999999999999995",
            "2018-04-25T01:00:00.000001",
        ),
        // Zones.
        ("2018-04-25T01:00:00+01:00", "2018-04-25T00:00:00.000000"),
        ("2018-04-25T01:00:00+0130", "2018-04-24T23:30:00.000000"),
        ("2018-04-25T01:00:00-05", "2018-04-25T06:00:00.000000"),
        ("2018-04-25T01:00:00+01:", "2018-04-25T00:00:00.000000"),
        ("2018-04-25T01:00:00-00:00", "2018-04-25T01:00:00.000000"),
        ("2018-04-25T01Z", "2018-04-25T01:00:00.000000"),
        ("2018-04-25T01+02", "2018-04-24T23:00:00.000000"),
        ("2018-04-25T01:30-0230", "2018-04-25T04:00:00.000000"),
        ("2018-04-25T01:00:00.5-01:00", "2018-04-25T02:00:00.500000"),
        // timedelta(hours=0, minutes=99) is simply 1h39m.
        ("2018-04-25T01:00:00+0099", "2018-04-24T23:21:00.000000"),
        ("2018-04-25T01:00:00+23:59", "2018-04-24T01:01:00.000000"),
        ("2018-04-25T01:00:00-23:59", "2018-04-26T00:59:00.000000"),
        ("2018-04-25T01:00:00+22:99", "2018-04-24T01:21:00.000000"),
        // Shifting across a day, month and year boundary.
        ("2018-12-31T23:30:00-01:00", "2019-01-01T00:30:00.000000"),
        ("2000-03-01T00:30:00+01:00", "2000-02-29T23:30:00.000000"),
        // Calendar limits.
        ("2000-02-29", "2000-02-29T00:00:00.000000"),
        ("2004-02-29", "2004-02-29T00:00:00.000000"),
        ("2018-04-30", "2018-04-30T00:00:00.000000"),
        ("2018-12-31T23:59:59.999999", "2018-12-31T23:59:59.999999"),
        ("0001-01-01T00:00:00", "0001-01-01T00:00:00.000000"),
        ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00.000000"),
        ("9999-12-31T23:59:59.999999", "9999-12-31T23:59:59.999999"),
        ("9999-12-31T23:00:00+01:00", "9999-12-31T22:00:00.000000"),
        ("1969-12-31T23:59:59.999999", "1969-12-31T23:59:59.999999"),
        ("1970-01-01", "1970-01-01T00:00:00.000000"),
    ];

    const REJECTED: &[&str] = &[
        "",
        "wrong",
        "yesterday",
        "not-a-date",
        "2018-04-25T03:45:00 02:00",
        // YYYYMM is excluded by `(?!$)`, also before a final newline.
        "201804",
        "201804\n",
        "2018-04-25\n\n",
        "\n2018-04-25",
        "2018-04-25\r\n",
        " 2018-04-25",
        "2018-04-25 ",
        "2018-04-25T01:00:00 ",
        // Short or long years, signs.
        "18-04-25",
        "201",
        "02018-04-25",
        "+2018-04-25",
        "-2018-04-25",
        // Separators: only uppercase T or a space.
        "2018-04-25t01:00",
        "2018-04-25_01:00",
        "2018-04-25T",
        "2018-04-25T1",
        "2018-04-25T1:00",
        "2018/04/25",
        "2018-04-",
        "2018--04",
        "2018-04-123",
        "2018-0425T",
        // A time needs a day.
        "2018-04T01:00",
        "2018T01:00",
        // Incomplete or overlong times.
        "2018-04-25T01:30:",
        "2018-04-25T01:",
        "2018-04-25T01::30",
        "2018-04-25T0130555",
        "2018-04-25T01:30:05.",
        "2018-04-25T01:30:05:1",
        "2018-04-25T01:30:05.1.2",
        // A fraction needs seconds.
        "2018-04-25T01.5",
        // Zones: uppercase Z only, two-digit hour, at most two-digit minute, only after a time.
        "2018-04-25T01:00:00z",
        "2018-04-25Z",
        "2018-04-25+01:00",
        "2018-04-25T01:00:00+1",
        "2018-04-25T01:00:00+013",
        "2018-04-25T01:00:00+01:3",
        "2018-04-25T01:00:00+01:300",
        "2018-04-25T01:00:00+01::00",
        "2018-04-25T01:00:00+",
        "2018-04-25T01:00:00Z+01",
        "2018-04-25T01:00:00ZZ",
        "2018-04-25T01:00:00 UTC",
        // Zone offsets must be strictly within 24h (datetime.timezone).
        "2018-04-25T01:00:00+24:00",
        "2018-04-25T01:00:00-24:00",
        "2018-04-25T01:00:00+23:60",
        "2018-04-25T01:00:00+23:99",
        "2018-04-25T01:00:00-23:99",
        "2018-04-25T01:00:00+99:99",
        // Calendar checks of datetime().
        "0000-01-01",
        "2018-00-01",
        "2018-0",
        "2018-13-01",
        "2018-02-30",
        "2018-02-29",
        "1900-02-29",
        "2100-02-29",
        "2018-04-31",
        "2018-04-00",
        "2018-04-0",
        "2018-04-25T24:00",
        "2018-04-25T23:60",
        "2018-04-25T01:00:60",
        "2018-04-25T01:00:99",
        // 29 nines round up to a whole second, which datetime() rejects.
        "2018-04-25T01:00:00.99999999999999999999999999999",
        "2018-04-25T01:00:00.99999999999999999999999999995",
        // Valid for Python but outside datetime's range once normalised to UTC.
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:30:00-01:00",
        // Non-ASCII digits and look-alikes.
        "２０１８-04-25",
        "2018-04-25T01:00:00\u{2212}01:00",
        "2018\u{0660}",
        "2018-04-25\u{00a0}01:00",
    ];

    #[test]
    fn accepted_inputs() {
        for &(input, expected) in ACCEPTED {
            let got = parse_iso8601(input).map(format_micros);
            assert_eq!(got.as_deref(), Some(expected), "input {input:?}");
        }
    }

    #[test]
    fn rejected_inputs() {
        for &input in REJECTED {
            assert_eq!(parse_iso8601(input), None, "input {input:?}");
        }
    }

    #[test]
    fn epoch_and_limits() {
        assert_eq!(parse_iso8601("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601("0001-01-01"), Some(MIN_MICROS));
        assert_eq!(
            parse_iso8601("9999-12-31T23:59:59.999999"),
            Some(MAX_MICROS)
        );
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.999999"), Some(-1));
        assert_eq!(
            parse_iso8601("2001-09-09T01:46:40"),
            Some(1_000_000_000_000_000)
        );
    }

    #[test]
    fn format_known_values() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00.000000");
        assert_eq!(format_micros(-1), "1969-12-31T23:59:59.999999");
        assert_eq!(
            format_micros(951_782_400_000_000),
            "2000-02-29T00:00:00.000000"
        );
        assert_eq!(format_micros(MIN_MICROS), "0001-01-01T00:00:00.000000");
        assert_eq!(format_micros(MAX_MICROS), "9999-12-31T23:59:59.999999");
    }

    #[test]
    fn format_clamps_out_of_range() {
        assert_eq!(format_micros(MIN_MICROS - 1), format_micros(MIN_MICROS));
        assert_eq!(format_micros(i64::MIN), format_micros(MIN_MICROS));
        assert_eq!(format_micros(MAX_MICROS + 1), format_micros(MAX_MICROS));
        assert_eq!(format_micros(i64::MAX), format_micros(MAX_MICROS));
    }

    #[test]
    fn write_appends() {
        let mut out = b"at ".to_vec();
        write_micros(&mut out, 1_500_000);
        assert_eq!(out, b"at 1970-01-01T00:00:01.500000");
    }

    #[test]
    fn civil_round_trip_every_day() {
        let first = days_from_civil(1, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        let mut expected = (1, 1, 1);
        for days in first..=last {
            assert_eq!(civil_from_days(days), expected);
            let (y, m, d) = expected;
            expected = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
        assert_eq!(last - first + 1, 3_652_059, "Python's date.max.toordinal()");
    }

    #[test]
    fn now_is_plausible() {
        let now = now_micros();
        // Between 2020 and 2200: catches unit mistakes (seconds, nanoseconds).
        assert!(now > parse_iso8601("2020-01-01").unwrap());
        assert!(now < parse_iso8601("2200-01-01").unwrap());
    }

    #[test]
    fn long_inputs_stay_linear() {
        let mut s = String::from("2018-04-25T01:30:00.");
        s.push_str(&"1".repeat(200_000));
        assert_eq!(
            parse_iso8601(&s).map(format_micros).as_deref(),
            Some("2018-04-25T01:30:00.111111")
        );
        s.push('x');
        assert_eq!(parse_iso8601(&s), None);
    }
}

#[cfg(test)]
mod canonical {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path and the general matcher agree on every 26-byte canonical-shaped input.
        #[test]
        fn fast_path_agrees_with_the_grammar(y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62, se in 0u32..62, us in 0u32..1_000_000) {
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}.{us:06}");
            let fast = parse_canonical(text.as_bytes());
            let general = {
                // Force the general matcher by adding an equivalent zone designator.
                parse_iso8601(&format!("{text}Z"))
            };
            prop_assert_eq!(fast, general, "{}", text);
        }
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    fn valid_micros() -> impl Strategy<Value = Micros> {
        MIN_MICROS..=MAX_MICROS
    }

    proptest! {
        #[test]
        fn format_parse_round_trip(t in valid_micros()) {
            let text = format_micros(t);
            prop_assert_eq!(text.len(), 26);
            prop_assert_eq!(parse_iso8601(&text), Some(t));
            let mut out = Vec::new();
            write_micros(&mut out, t);
            prop_assert_eq!(out, text.into_bytes());
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = parse_iso8601(&s);
        }

        #[test]
        fn parse_never_panics_near_grammar(s in "[0-9T:.,Z+ \\n-]{0,40}") {
            if let Some(t) = parse_iso8601(&s) {
                prop_assert!((MIN_MICROS..=MAX_MICROS).contains(&t));
            }
        }

        #[test]
        fn format_never_panics(t in any::<i64>()) {
            prop_assert_eq!(format_micros(t).len(), 26);
        }

        #[test]
        fn offset_form_is_utc_shifted(
            t in (MIN_MICROS + MICROS_PER_DAY)..=(MAX_MICROS - MICROS_PER_DAY),
            negative in any::<bool>(),
            hours in 0i64..24,
            minutes in 0i64..100,
            style in 0usize..3,
        ) {
            prop_assume!(hours * 60 + minutes < 24 * 60);
            let zone = match style {
                0 => format!("{hours:02}:{minutes:02}"),
                1 => format!("{hours:02}{minutes:02}"),
                _ => format!("{hours:02}"),
            };
            let offset = if style == 2 { hours * 60 } else { hours * 60 + minutes };
            let sign = if negative { '-' } else { '+' };
            let text = format!("{}{sign}{zone}", format_micros(t));
            let signed = if negative { -offset } else { offset };
            prop_assert_eq!(parse_iso8601(&text), Some(t - signed * 60 * MICROS_PER_SEC));
        }

        #[test]
        fn offsets_of_a_day_or_more_are_rejected(
            t in valid_micros(),
            negative in any::<bool>(),
            hours in 0i64..100,
            minutes in 0i64..100,
        ) {
            prop_assume!(hours * 60 + minutes >= 24 * 60);
            let sign = if negative { '-' } else { '+' };
            let text = format!("{}{sign}{hours:02}:{minutes:02}", format_micros(t));
            prop_assert_eq!(parse_iso8601(&text), None);
        }

        #[test]
        fn fractions_truncate(t in (0i64..86_400).prop_map(|s| s * MICROS_PER_SEC), digits in "[0-9]{1,28}") {
            let text = format!("2018-04-25T{}.{digits}", &format_micros(t)[11..19]);
            let micros: i64 = format!("{digits:0<6}")[..6].parse().unwrap();
            let base = parse_iso8601("2018-04-25").unwrap();
            prop_assert_eq!(parse_iso8601(&text), Some(base + t + micros));
        }

        #[test]
        fn z_equals_no_zone(t in valid_micros()) {
            let text = format_micros(t);
            prop_assert_eq!(parse_iso8601(&format!("{text}Z")), Some(t));
            prop_assert_eq!(parse_iso8601(&format!("{text}+00:00")), Some(t));
            prop_assert_eq!(parse_iso8601(&text.replacen('T', " ", 1)), Some(t));
        }
    }
}
