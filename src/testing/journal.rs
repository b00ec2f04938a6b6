//! The request journal: the last N requests as a client sent them, so that a test can assert
//! what its client did ("did it page with `marker`? did it send 2.58?"). Bounded: N entries,
//! each with its texts cut at [`MAX_TEXT`] bytes.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Longest path, query or header value kept per entry.
pub const MAX_TEXT: usize = 2048;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Entry {
    /// When the request arrived, ISO 8601 UTC.
    pub time: String,
    pub method: String,
    pub path: String,
    pub query: String,
    /// The version headers as sent (`OpenStack-API-Version`, `X-OpenStack-Nova-API-Version`).
    pub microversion: Option<String>,
    pub legacy_microversion: Option<String>,
    /// `X-Auth-Token`, masked: its first four characters and its length.
    pub token: Option<String>,
    /// 0: the connection was dropped (an injected fault) without an answer.
    pub status: u16,
    pub request_id: String,
    pub duration_ms: f64,
    /// The id of the fault rule that answered instead of the service, if one did.
    pub injected: Option<u64>,
}

pub struct Journal {
    capacity: usize,
    entries: Mutex<VecDeque<Entry>>,
}

impl Journal {
    pub fn new(capacity: usize) -> Journal {
        Journal {
            capacity: capacity.max(1),
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub fn record(&self, entry: Entry) {
        let mut entries = self.lock();
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// Oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().iter().cloned().collect()
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A text cut to [`MAX_TEXT`] bytes on a character boundary.
pub fn bounded(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Enough of a token to tell two apart, never enough to use one.
pub fn mask(token: &str) -> String {
    let shown: String = token.chars().take(4).collect();
    format!("{shown}… ({} characters)", token.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u16) -> Entry {
        Entry {
            time: String::new(),
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            microversion: None,
            legacy_microversion: None,
            token: None,
            status: n,
            request_id: String::new(),
            duration_ms: 0.0,
            injected: None,
        }
    }

    #[test]
    fn the_oldest_entries_make_room() {
        let journal = Journal::new(2);
        for n in 1..=3 {
            journal.record(entry(n));
        }
        let statuses: Vec<u16> = journal.entries().iter().map(|e| e.status).collect();
        assert_eq!(statuses, [2, 3]);
        journal.clear();
        assert!(journal.entries().is_empty());
    }

    #[test]
    fn tokens_are_masked_and_texts_bounded() {
        assert_eq!(mask("gAAAAABsecret"), "gAAA… (13 characters)");
        assert_eq!(mask("ab"), "ab… (2 characters)");
        let long = "é".repeat(MAX_TEXT);
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_TEXT + "…".len());
        assert!(cut.ends_with('…'));
    }
}
