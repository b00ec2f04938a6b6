//! What the mirror has done so far, for `/metrics`: shared between the pass (which writes it)
//! and the HTTP service (which reads it), when the mirror runs inside `serve`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use crate::timeutil::Micros;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub passes_ok: u64,
    pub passes_failed: u64,
    /// When the last complete pass ended (UTC microseconds).
    pub last_success: Option<Micros>,
    pub last_pass_seconds: f64,
    /// Copied since the process started.
    pub servers: u64,
    pub actions: u64,
    pub events: u64,
    /// Upstream requests by HTTP status; 0 for no answer (refused, timeout, unreadable body).
    pub requests: BTreeMap<u16, u64>,
    /// Failed passes by cause.
    pub errors: BTreeMap<&'static str, u64>,
    /// The pass under way: servers read so far, of how many (both 0 between passes).
    pub pass_done: u64,
    pub pass_total: u64,
    /// The microversion agreed with the upstream, `2.N`.
    pub microversion: String,
}

#[derive(Default)]
pub struct SyncStatus {
    inner: Mutex<Snapshot>,
}

impl SyncStatus {
    pub fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut inner);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn request(&self, status: u16) {
        self.update(|s| *s.requests.entry(status).or_default() += 1);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The lag, from the watermark in the store: readable on every node sharing a store, whichever
/// process mirrors into it.
pub fn render_watermark(out: &mut String, watermark: Option<Micros>, now: Micros) {
    let Some(watermark) = watermark else { return };
    family(
        out,
        "nova_actions_sync_watermark_timestamp_seconds",
        "gauge",
        "The mirror holds everything the upstream recorded before this time (start of the last complete pass).",
    );
    let _ = writeln!(
        out,
        "nova_actions_sync_watermark_timestamp_seconds {}",
        seconds(watermark)
    );
    family(
        out,
        "nova_actions_sync_lag_seconds",
        "gauge",
        "How far the mirror is behind the upstream: now minus the watermark.",
    );
    let _ = writeln!(
        out,
        "nova_actions_sync_lag_seconds {}",
        seconds(now.saturating_sub(watermark))
    );
}

fn seconds(micros: Micros) -> f64 {
    micros as f64 / 1e6
}

impl Snapshot {
    /// Upstream requests sent so far, whatever their answer.
    pub fn requests_sent(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn render(&self, out: &mut String) {
        family(
            out,
            "nova_actions_sync_passes_total",
            "counter",
            "Mirror passes, by outcome.",
        );
        let _ = writeln!(
            out,
            "nova_actions_sync_passes_total{{outcome=\"ok\"}} {}",
            self.passes_ok
        );
        let _ = writeln!(
            out,
            "nova_actions_sync_passes_total{{outcome=\"failed\"}} {}",
            self.passes_failed
        );
        if let Some(at) = self.last_success {
            family(
                out,
                "nova_actions_sync_last_success_timestamp_seconds",
                "gauge",
                "When the last complete mirror pass ended.",
            );
            let _ = writeln!(
                out,
                "nova_actions_sync_last_success_timestamp_seconds {}",
                seconds(at)
            );
            family(
                out,
                "nova_actions_sync_last_pass_duration_seconds",
                "gauge",
                "How long the last complete pass took.",
            );
            let _ = writeln!(
                out,
                "nova_actions_sync_last_pass_duration_seconds {}",
                self.last_pass_seconds
            );
        }
        family(
            out,
            "nova_actions_sync_mirrored_total",
            "counter",
            "Records copied from the upstream since start (a record read again counts again).",
        );
        for (kind, n) in [
            ("servers", self.servers),
            ("actions", self.actions),
            ("events", self.events),
        ] {
            let _ = writeln!(
                out,
                "nova_actions_sync_mirrored_total{{kind=\"{kind}\"}} {n}"
            );
        }
        family(
            out,
            "nova_actions_sync_upstream_requests_total",
            "counter",
            "Requests to the upstream Nova and Keystone, by status (\"none\": no answer).",
        );
        for (status, n) in &self.requests {
            let status = if *status == 0 {
                "none".to_string()
            } else {
                status.to_string()
            };
            let _ = writeln!(
                out,
                "nova_actions_sync_upstream_requests_total{{status=\"{status}\"}} {n}"
            );
        }
        family(
            out,
            "nova_actions_sync_errors_total",
            "counter",
            "Failed passes, by cause.",
        );
        for (kind, n) in &self.errors {
            let _ = writeln!(out, "nova_actions_sync_errors_total{{kind=\"{kind}\"}} {n}");
        }
        family(
            out,
            "nova_actions_sync_pass_servers",
            "gauge",
            "The pass under way: servers read (state=\"done\") of those it lists (state=\"total\").",
        );
        for (state, n) in [("done", self.pass_done), ("total", self.pass_total)] {
            let _ = writeln!(
                out,
                "nova_actions_sync_pass_servers{{state=\"{state}\"}} {n}"
            );
        }
        if !self.microversion.is_empty() {
            family(
                out,
                "nova_actions_sync_upstream_info",
                "gauge",
                "The microversion agreed with the upstream.",
            );
            let _ = writeln!(
                out,
                "nova_actions_sync_upstream_info{{microversion=\"{}\"}} 1",
                self.microversion
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_now_minus_the_watermark() {
        let mut out = String::new();
        render_watermark(&mut out, Some(10_000_000), 12_500_000);
        assert!(out.contains("nova_actions_sync_watermark_timestamp_seconds 10\n"));
        assert!(out.contains("nova_actions_sync_lag_seconds 2.5\n"));
        let mut none = String::new();
        render_watermark(&mut none, None, 12_500_000);
        assert!(none.is_empty());
    }

    #[test]
    fn requests_are_counted_by_status_and_no_answer_is_named() {
        let status = SyncStatus::default();
        status.request(200);
        status.request(200);
        status.request(0);
        status.update(|s| *s.errors.entry("transport").or_default() += 1);
        let mut out = String::new();
        status.snapshot().render(&mut out);
        assert!(out.contains("nova_actions_sync_upstream_requests_total{status=\"200\"} 2\n"));
        assert!(out.contains("nova_actions_sync_upstream_requests_total{status=\"none\"} 1\n"));
        assert!(out.contains("nova_actions_sync_errors_total{kind=\"transport\"} 1\n"));
        assert!(!out.contains("last_success"));
    }
}
