//! Counters and histograms for `/metrics`, in Prometheus' text exposition format. Small enough
//! to keep by hand: a few label sets, fixed buckets.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds, in seconds, shared by every latency histogram.
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if secs <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// One request as the access log and the counters see it.
pub struct Observed<'a> {
    pub route: &'static str,
    pub method: &'a str,
    pub status: u16,
    /// The negotiated microversion's minor number (2.<minor>), if any.
    pub version: Option<u32>,
    pub elapsed: Duration,
}

#[derive(Default)]
struct State {
    /// (route, method, status, minor version or 0 for none)
    requests: BTreeMap<(&'static str, &'static str, u16, u32), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    state: Mutex<State>,
}

/// Figures that live elsewhere (the store, caches), gathered when `/metrics` is read.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub store_bytes: u64,
    /// Purges a crash interrupted and not yet finished.
    pub purges_pending: u64,
    pub flush: Histogram,
    /// (cache name, hits, misses)
    pub caches: Vec<(&'static str, u64, u64)>,
}

impl Metrics {
    pub fn record(&self, r: &Observed<'_>) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (
            r.route,
            method_label(r.method),
            r.status,
            r.version.unwrap_or(0),
        );
        *state.requests.entry(key).or_default() += 1;
        state.latency.entry(r.route).or_default().observe(r.elapsed);
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP nova_actions_requests_total HTTP requests answered, by route, method, status and microversion.\n");
        out.push_str("# TYPE nova_actions_requests_total counter\n");
        for ((route, method, status, minor), n) in &state.requests {
            let version = if *minor == 0 {
                String::new()
            } else {
                format!("2.{minor}")
            };
            let _ = writeln!(
                out,
                "nova_actions_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\",microversion=\"{version}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP nova_actions_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE nova_actions_request_duration_seconds histogram\n");
        for (route, h) in &state.latency {
            h.render(
                &mut out,
                "nova_actions_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP nova_actions_store_size_bytes Size of the store on disk.\n");
        out.push_str("# TYPE nova_actions_store_size_bytes gauge\n");
        let _ = writeln!(out, "nova_actions_store_size_bytes {}", gauges.store_bytes);
        out.push_str("# HELP nova_actions_purges_pending Purges interrupted by a crash and not yet finished (their servers read as gone).\n");
        out.push_str("# TYPE nova_actions_purges_pending gauge\n");
        let _ = writeln!(out, "nova_actions_purges_pending {}", gauges.purges_pending);
        out.push_str("# HELP nova_actions_store_flush_duration_seconds Time of one group-commit flush (flush + fdatasync).\n");
        out.push_str("# TYPE nova_actions_store_flush_duration_seconds histogram\n");
        gauges
            .flush
            .render(&mut out, "nova_actions_store_flush_duration_seconds", "");
        out.push_str(
            "# HELP nova_actions_cache_hits_total Cache lookups answered from the cache.\n",
        );
        out.push_str("# TYPE nova_actions_cache_hits_total counter\n");
        for (name, hits, _) in &gauges.caches {
            let _ = writeln!(
                out,
                "nova_actions_cache_hits_total{{cache=\"{name}\"}} {hits}"
            );
        }
        out.push_str(
            "# HELP nova_actions_cache_misses_total Cache lookups that had to go to the source.\n",
        );
        out.push_str("# TYPE nova_actions_cache_misses_total counter\n");
        for (name, _, misses) in &gauges.caches {
            let _ = writeln!(
                out,
                "nova_actions_cache_misses_total{{cache=\"{name}\"}} {misses}"
            );
        }
        out
    }
}

/// Known methods by name; anything else (the caller's text) as one label.
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0001\"} 1\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 2\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"5\"} 2\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"));
        assert!(out.contains("x_count{a=\"b\"} 3\n"));
    }

    #[test]
    fn requests_are_counted_by_labels() {
        let m = Metrics::default();
        let observed = |status| Observed {
            route: "list",
            method: "GET",
            status,
            version: Some(84),
            elapsed: Duration::from_millis(1),
        };
        m.record(&observed(200));
        m.record(&observed(200));
        m.record(&observed(404));
        let text = m.render(&Gauges::default());
        assert!(text.contains("nova_actions_requests_total{route=\"list\",method=\"GET\",status=\"200\",microversion=\"2.84\"} 2\n"));
        assert!(text.contains("status=\"404\",microversion=\"2.84\"} 1\n"));
        assert!(text.contains("nova_actions_request_duration_seconds_count{route=\"list\"} 3\n"));
    }
}
