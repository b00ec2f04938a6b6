//! Fault and latency injection: rules that make matching requests fail the way a real Nova (or
//! what stands in front of it) fails, so that a client's retry and error paths can be tested.
//! Off unless `[testing] fault_injection` is on; rules are added over the admin-only testing
//! API. A rule applies to the next N matching requests, for a time window, and/or with a
//! probability drawn from its own seeded generator, so a test is repeatable.

use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// What a rule asks for, as the testing API takes it.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// The HTTP method, e.g. "GET"; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A regular expression searched in the request's path; absent: any path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The microversion the request asked for, as sent (e.g. "2.58", "latest").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microversion: Option<String>,
    /// The request's `X-Auth-Token`, exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub answer: AnswerSpec,
    /// Applies to this many matching requests, then goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// Applies for this many seconds from now, then goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_seconds: Option<f64>,
    /// Applies to a matching request with this probability (0 < p ≤ 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Seeds the rule's draws (default: its id), so that a run can be repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Exactly one of `status`, `delay_ms` and `drop`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AnswerSpec {
    /// 500, 503, 429, 413, 401 or 403, answered in Nova's fault format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The fault's message; absent: what Nova says for that status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Seconds for `Retry-After` (429, 413, 503; default 1 for 429 and 413).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Answer normally, this many milliseconds late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<bool>,
}

/// What the service does for a request a rule caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Fault {
        status: u16,
        message: String,
        retry_after: Option<u64>,
    },
    Delay(Duration),
    Drop,
}

impl Answer {
    /// For metrics and the access log.
    pub fn label(&self) -> &'static str {
        match self {
            Answer::Fault { status: 500, .. } => "500",
            Answer::Fault { status: 503, .. } => "503",
            Answer::Fault { status: 429, .. } => "429",
            Answer::Fault { status: 413, .. } => "413",
            Answer::Fault { status: 401, .. } => "401",
            Answer::Fault { .. } => "403",
            Answer::Delay(_) => "delay",
            Answer::Drop => "drop",
        }
    }
}

/// Longest delay a rule may ask for.
const LONGEST_DELAY_MS: u64 = 60_000;

/// A rule the testing API refused: the field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub why: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Invalid fault rule: '{}' {}", self.field, self.why)
    }
}

fn invalid(field: &'static str, why: impl Into<String>) -> Invalid {
    Invalid {
        field,
        why: why.into(),
    }
}

/// Nova's words for each status it can be made to answer.
fn default_message(status: u16) -> &'static str {
    match status {
        500 => {
            "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n<class 'Exception'>"
        }
        503 => "Service Unavailable",
        429 => "This request was rate-limited.",
        413 => "Request is too large.",
        401 => "The request you have made requires authentication.",
        _ => "Policy doesn't allow os_compute_api:os-instance-actions:list to be performed.",
    }
}

impl RuleSpec {
    /// The answer this rule gives, or what is wrong with it.
    fn answer(&self) -> Result<Answer, Invalid> {
        let a = &self.answer;
        let chosen = [
            a.status.is_some(),
            a.delay_ms.is_some(),
            a.drop == Some(true),
        ];
        if chosen.iter().filter(|c| **c).count() != 1 {
            return Err(invalid(
                "answer",
                "must have exactly one of status, delay_ms and drop: true",
            ));
        }
        if let Some(ms) = a.delay_ms {
            if ms > LONGEST_DELAY_MS {
                return Err(invalid(
                    "answer.delay_ms",
                    format!("must be at most {LONGEST_DELAY_MS}"),
                ));
            }
            return Ok(Answer::Delay(Duration::from_millis(ms)));
        }
        let Some(status) = a.status else {
            return Ok(Answer::Drop);
        };
        if ![500, 503, 429, 413, 401, 403].contains(&status) {
            return Err(invalid(
                "answer.status",
                format!("{status} is not one of 500, 503, 429, 413, 401, 403"),
            ));
        }
        let retry_after = match (status, a.retry_after) {
            (429 | 413, r) => Some(r.unwrap_or(1)),
            (503, r) => r,
            (_, Some(_)) => {
                return Err(invalid(
                    "answer.retry_after",
                    "applies to 429, 413 and 503 only",
                ));
            }
            (_, None) => None,
        };
        Ok(Answer::Fault {
            status,
            message: a
                .message
                .clone()
                .unwrap_or_else(|| default_message(status).to_string()),
            retry_after,
        })
    }

    fn check(&self) -> Result<(Answer, Option<regex::Regex>), Invalid> {
        let answer = self.answer()?;
        if let Some(m) = &self.method {
            if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(invalid("method", "must be an upper-case HTTP method"));
            }
        }
        let path = match &self.path {
            Some(p) => Some(
                regex::Regex::new(p)
                    .map_err(|e| invalid("path", format!("is not a regular expression: {e}")))?,
            ),
            None => None,
        };
        if self.times == Some(0) {
            return Err(invalid("times", "must be at least 1"));
        }
        if let Some(s) = self.for_seconds {
            if !(s > 0.0 && s <= 86_400.0) {
                return Err(invalid("for_seconds", "must be above 0 and at most 86400"));
            }
        }
        if let Some(p) = self.probability {
            if !(p > 0.0 && p <= 1.0) {
                return Err(invalid("probability", "must be above 0 and at most 1"));
            }
        }
        Ok((answer, path))
    }
}

/// The request facts rules match on.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub microversion: Option<&'a str>,
    pub token: Option<&'a str>,
}

struct Rule {
    id: u64,
    spec: RuleSpec,
    answer: Answer,
    path: Option<regex::Regex>,
    remaining: Option<u64>,
    until: Option<Instant>,
    /// xorshift64* state.
    draws: u64,
    injected: u64,
}

impl Rule {
    fn matches(&self, r: &Request<'_>) -> bool {
        self.spec.method.as_deref().is_none_or(|m| m == r.method)
            && self.path.as_ref().is_none_or(|p| p.is_match(r.path))
            && self
                .spec
                .microversion
                .as_deref()
                .is_none_or(|v| Some(v) == r.microversion)
            && self
                .spec
                .token
                .as_deref()
                .is_none_or(|t| Some(t) == r.token)
    }

    /// A uniform draw in [0, 1).
    fn draw(&mut self) -> f64 {
        let mut x = self.draws;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.draws = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn expired(&self, now: Instant) -> bool {
        self.remaining == Some(0) || self.until.is_some_and(|u| now >= u)
    }
}

/// A rule as the testing API shows it.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub id: u64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Matching requests it still applies to, when limited.
    pub remaining: Option<u64>,
    /// Requests it has answered so far.
    pub injected: u64,
}

#[derive(Default)]
struct State {
    next_id: u64,
    rules: Vec<Rule>,
    /// (rule id, answer label) → requests answered; kept after the rule goes.
    counted: std::collections::BTreeMap<(u64, &'static str), u64>,
}

#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn add(&self, spec: RuleSpec) -> Result<Shown, Invalid> {
        let (answer, path) = spec.check()?;
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        let rule = Rule {
            id,
            answer,
            path,
            remaining: spec.times,
            until: spec
                .for_seconds
                .map(|s| Instant::now() + Duration::from_secs_f64(s)),
            // xorshift needs a non-zero state.
            draws: spec.seed.unwrap_or(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            injected: 0,
            spec,
        };
        let shown = show(&rule);
        state.rules.push(rule);
        Ok(shown)
    }

    pub fn list(&self) -> Vec<Shown> {
        let mut state = self.lock();
        let now = Instant::now();
        state.rules.retain(|r| !r.expired(now));
        state.rules.iter().map(show).collect()
    }

    /// Whether a rule with this id was there to remove.
    pub fn remove(&self, id: u64) -> bool {
        let mut state = self.lock();
        let before = state.rules.len();
        state.rules.retain(|r| r.id != id);
        state.rules.len() != before
    }

    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// The first live rule that takes this request (in the order they were added), and what
    /// it answers.
    pub fn decide(&self, request: &Request<'_>) -> Option<(u64, Answer)> {
        let mut state = self.lock();
        let now = Instant::now();
        state.rules.retain(|r| !r.expired(now));
        let mut taken = None;
        for rule in state.rules.iter_mut() {
            if !rule.matches(request) {
                continue;
            }
            if let Some(p) = rule.spec.probability {
                if rule.draw() >= p {
                    continue;
                }
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            rule.injected += 1;
            taken = Some((rule.id, rule.answer.clone()));
            break;
        }
        let (id, answer) = taken?;
        *state.counted.entry((id, answer.label())).or_default() += 1;
        Some((id, answer))
    }

    /// `nova_actions_injected_faults_total{rule, answer}`.
    pub fn render_metrics(&self, out: &mut String) {
        out.push_str("# HELP nova_actions_injected_faults_total Requests answered by a fault injection rule instead of the service.\n");
        out.push_str("# TYPE nova_actions_injected_faults_total counter\n");
        for ((id, label), n) in &self.lock().counted {
            let _ = writeln!(
                out,
                "nova_actions_injected_faults_total{{rule=\"{id}\",answer=\"{label}\"}} {n}"
            );
        }
    }
}

fn show(rule: &Rule) -> Shown {
    Shown {
        id: rule.id,
        spec: rule.spec.clone(),
        remaining: rule.remaining,
        injected: rule.injected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> RuleSpec {
        serde_json::from_str(json).unwrap()
    }

    fn get(path: &str) -> Request<'_> {
        Request {
            method: "GET",
            path,
            microversion: Some("2.58"),
            token: Some("user-a:proj-a"),
        }
    }

    #[test]
    fn a_counted_rule_answers_n_times_then_goes() {
        let faults = Faults::default();
        faults
            .add(spec(
                r#"{"path": "os-instance-actions$", "answer": {"status": 503, "retry_after": 2}, "times": 2}"#,
            ))
            .unwrap();
        let list = "/v2.1/servers/x/os-instance-actions";
        assert_eq!(faults.decide(&get("/v2.1/servers/x")), None);
        let (id, answer) = faults.decide(&get(list)).unwrap();
        assert_eq!(id, 1);
        assert_eq!(
            answer,
            Answer::Fault {
                status: 503,
                message: "Service Unavailable".into(),
                retry_after: Some(2)
            }
        );
        assert!(faults.decide(&get(list)).is_some());
        assert_eq!(faults.decide(&get(list)), None);
        assert!(faults.list().is_empty());
        let mut metrics = String::new();
        faults.render_metrics(&mut metrics);
        assert!(
            metrics.contains("nova_actions_injected_faults_total{rule=\"1\",answer=\"503\"} 2\n")
        );
    }

    #[test]
    fn matching_on_method_version_and_token() {
        let faults = Faults::default();
        faults
            .add(spec(
                r#"{"method": "GET", "microversion": "2.58", "token": "user-a:proj-a", "answer": {"delay_ms": 5}}"#,
            ))
            .unwrap();
        assert!(faults.decide(&get("/")).is_some());
        let mut other = get("/");
        other.microversion = Some("2.84");
        assert!(faults.decide(&other).is_none());
        let mut other = get("/");
        other.token = Some("user-b:proj-b");
        assert!(faults.decide(&other).is_none());
        let mut other = get("/");
        other.method = "PUT";
        assert!(faults.decide(&other).is_none());
    }

    #[test]
    fn a_seeded_probability_repeats_and_is_near_its_rate() {
        let run = || {
            let faults = Faults::default();
            faults
                .add(spec(
                    r#"{"answer": {"drop": true}, "probability": 0.25, "seed": 42}"#,
                ))
                .unwrap();
            (0..2000)
                .map(|_| faults.decide(&get("/")).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run(), "the same seed, the same draws");
        let hits = first.iter().filter(|h| **h).count();
        assert!((400..600).contains(&hits), "{hits} of 2000 at p = 0.25");
    }

    #[test]
    fn bad_rules_name_their_field() {
        let faults = Faults::default();
        let refused = |json: &str| faults.add(spec(json)).unwrap_err().field;
        assert_eq!(refused(r#"{"answer": {}}"#), "answer");
        assert_eq!(
            refused(r#"{"answer": {"status": 503, "drop": true}}"#),
            "answer"
        );
        assert_eq!(refused(r#"{"answer": {"status": 404}}"#), "answer.status");
        assert_eq!(
            refused(r#"{"answer": {"status": 500, "retry_after": 3}}"#),
            "answer.retry_after"
        );
        assert_eq!(
            refused(r#"{"answer": {"delay_ms": 600000}}"#),
            "answer.delay_ms"
        );
        assert_eq!(
            refused(r#"{"path": "(", "answer": {"drop": true}}"#),
            "path"
        );
        assert_eq!(
            refused(r#"{"method": "get", "answer": {"drop": true}}"#),
            "method"
        );
        assert_eq!(
            refused(r#"{"times": 0, "answer": {"drop": true}}"#),
            "times"
        );
        assert_eq!(
            refused(r#"{"probability": 1.5, "answer": {"drop": true}}"#),
            "probability"
        );
        assert_eq!(
            refused(r#"{"for_seconds": -1, "answer": {"drop": true}}"#),
            "for_seconds"
        );
        assert!(faults.list().is_empty(), "nothing was added");
    }

    #[test]
    fn a_window_closes() {
        let faults = Faults::default();
        faults
            .add(spec(r#"{"answer": {"status": 500}, "for_seconds": 0.05}"#))
            .unwrap();
        assert!(faults.decide(&get("/")).is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(faults.decide(&get("/")).is_none());
    }
}
