//! For people who test their tools against this service: fault and latency injection and a
//! request journal, both off unless `[testing]` turns them on.

pub mod faults;
pub mod journal;

use crate::config::{AuthMode, Config};

/// What `[testing]` turned on.
#[derive(Default)]
pub struct Testing {
    pub faults: Option<faults::Faults>,
    pub journal: Option<journal::Journal>,
}

impl Testing {
    /// Refuses fault injection in keystone mode unless forced: a deployment validating real
    /// tokens should not be one API call away from failing on purpose.
    pub fn from_config(config: &Config) -> Result<Testing, String> {
        let t = &config.testing;
        if t.fault_injection && config.auth.mode == AuthMode::Keystone && !t.allow_with_keystone {
            return Err(
                "[testing] fault_injection is refused in keystone mode; set \
                 [testing] allow_with_keystone = true if this really is a test deployment"
                    .into(),
            );
        }
        if t.fault_injection {
            log::warn!(
                "fault injection is ON: admins can make requests fail through /ingest/v1/testing/faults"
            );
        }
        if t.journal {
            log::warn!(
                "the request journal is ON: the last {} requests are kept (tokens masked)",
                t.journal_size
            );
        }
        Ok(Testing {
            faults: t.fault_injection.then(faults::Faults::default),
            journal: t.journal.then(|| journal::Journal::new(t.journal_size)),
        })
    }
}
