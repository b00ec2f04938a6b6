//! Every fault this service answers with, and the one place that decides its status and
//! Nova's words for it. Handlers return a `Fault`; `Call::fail` renders it. Store and identity
//! errors become faults through exhaustive matches, so a new kind of error does not compile
//! until someone has decided what the caller is told.

use uuid::Uuid;

use crate::auth::AuthError;
use crate::input::{InputError, excerpt};
use crate::lines::LineTooLong;
use crate::ndjson::ImportError;
use crate::store::StoreError;

#[derive(Debug)]
pub enum Fault {
    /// 401: no valid token. keystonemiddleware's answer, not a Nova fault (its own body and a
    /// `WWW-Authenticate` header).
    Unauthorized,
    /// 400 with a message that says what was wrong (query, body, URL).
    BadRequest(String),
    /// 400: the microversion header is not `Major.Minor` (its text).
    MalformedVersion(String),
    /// 406: a well-formed microversion outside the range served (its text, echoed in headers).
    UnsupportedVersion(String),
    /// 400: a write names a server by something that is not a canonical UUID.
    InvalidServerId(String),
    /// 400: a list's marker names no action.
    MarkerNotFound,
    /// 400: the project in the URL is not the caller's.
    ProjectMismatch { url: String, caller: Option<String> },
    /// 403: the policy rule that refused.
    Forbidden(&'static str),
    /// 403 with Nova's own words (not a policy rule).
    ForbiddenMessage(String),
    /// 404: no such server for this caller (absent, another project's, or deleted and hidden).
    InstanceNotFound(String),
    /// 404: no action with this request id (read API).
    ActionNotFound(String),
    /// 404: no live fault injection rule with this id (testing API).
    RuleNotFound(String),
    /// 404: no action with this request id on this server (write API).
    WriteActionNotFound { server: Uuid, request_id: String },
    /// 404: no event of this name in the action (write API).
    EventNotFound { event: String, request_id: String },
    /// 404: no write route here.
    NoSuchResource,
    /// 408: the body did not arrive within `[server] body_timeout`.
    BodyTooSlow { seconds: u64 },
    /// 413: the body is larger than `[server] max_body_bytes`.
    BodyTooLarge { max: usize },
    /// 400: an import stopped at a bad line; the servers before it were imported.
    BadImportLine {
        line: u64,
        why: String,
        imported: u64,
    },
    /// 413: an import line over `[storage] max_import_line_bytes`.
    ImportLineTooLong {
        too_long: LineTooLong,
        imported: u64,
    },
    /// 415: a request body type this API does not read.
    UnsupportedMediaType,
    /// 503: identity (Keystone) cannot be asked.
    IdentityUnavailable,
    /// 503: the database behind the store cannot be reached (or did not answer in time).
    StoreUnavailable,
    /// 503: the disk refused a write; it was not acknowledged.
    WriteRefused,
    /// 503: a failed flush covered writes to this server (see README, "a failed flush").
    Unconfirmed(Uuid),
    /// 503: no export from a store whose flush failed.
    ExportRefused,
    /// 500: a failure the caller cannot fix; what it was is logged, never shown.
    Internal(String),
}

impl Fault {
    pub fn status(&self) -> u16 {
        match self {
            Fault::BadRequest(_)
            | Fault::MalformedVersion(_)
            | Fault::ProjectMismatch { .. }
            | Fault::InvalidServerId(_)
            | Fault::MarkerNotFound
            | Fault::BadImportLine { .. } => 400,
            Fault::Unauthorized => 401,
            Fault::Forbidden(_) | Fault::ForbiddenMessage(_) => 403,
            Fault::InstanceNotFound(_)
            | Fault::ActionNotFound(_)
            | Fault::RuleNotFound(_)
            | Fault::WriteActionNotFound { .. }
            | Fault::EventNotFound { .. }
            | Fault::NoSuchResource => 404,
            Fault::UnsupportedVersion(_) => 406,
            Fault::BodyTooSlow { .. } => 408,
            Fault::BodyTooLarge { .. } | Fault::ImportLineTooLong { .. } => 413,
            Fault::UnsupportedMediaType => 415,
            Fault::Internal(_) => 500,
            Fault::IdentityUnavailable
            | Fault::StoreUnavailable
            | Fault::WriteRefused
            | Fault::Unconfirmed(_)
            | Fault::ExportRefused => 503,
        }
    }

    /// The message the caller reads: Nova's words where Nova has a fault for it.
    pub fn message(&self) -> String {
        match self {
            Fault::BadRequest(m) => m.clone(),
            Fault::Unauthorized => "The request you have made requires authentication.".into(),
            Fault::MalformedVersion(text) => format!(
                "API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
            ),
            Fault::UnsupportedVersion(text) => format!(
                "Version {text} is not supported by the API. Minimum is 2.{} and maximum is 2.{}.",
                super::version::MIN_MINOR,
                super::version::MAX_MINOR
            ),
            Fault::ProjectMismatch { url, caller } => format!(
                "Malformed request URL: URL's project_id '{url}' doesn't match Context's project_id '{}'",
                caller.as_deref().unwrap_or("None")
            ),
            Fault::InvalidServerId(text) => format!(
                "Invalid server id '{}': expected a lowercase UUID (8-4-4-4-12 hex).",
                excerpt(text)
            ),
            Fault::MarkerNotFound => "Marker None could not be found.".into(),
            Fault::Forbidden(rule) => format!("Policy doesn't allow {rule} to be performed."),
            Fault::ForbiddenMessage(m) => m.clone(),
            // The id from the path in full, as Nova does (a path is bounded by the head limit).
            Fault::InstanceNotFound(id) => format!("Instance {id} could not be found."),
            Fault::ActionNotFound(rid) => format!("Action {rid} not found"),
            Fault::RuleNotFound(id) => format!("Fault rule {id} could not be found."),
            Fault::WriteActionNotFound { server, request_id } => format!(
                "Action for request_id {} on instance {server} not found",
                excerpt(request_id)
            ),
            Fault::EventNotFound { event, request_id } => format!(
                "Event {} not found for action id {}",
                excerpt(event),
                excerpt(request_id)
            ),
            Fault::NoSuchResource => "The resource could not be found.".into(),
            Fault::BodyTooSlow { seconds } => format!(
                "The request body did not arrive within {seconds} seconds ([server] body_timeout)."
            ),
            Fault::BodyTooLarge { max } => format!("Request body is larger than {max} bytes."),
            Fault::BadImportLine {
                line,
                why,
                imported,
            } => format!("Line {line}: {why}{}", before_it(*imported)),
            Fault::ImportLineTooLong { too_long, imported } => {
                format!("{too_long}{}", before_it(*imported))
            }
            Fault::UnsupportedMediaType => "Unsupported Content-Type".into(),
            Fault::IdentityUnavailable | Fault::StoreUnavailable => {
                "The server is currently unavailable. Please try again at a later time.".into()
            }
            Fault::WriteRefused => "The store failed to write to disk; this write was not \
                 acknowledged. Writes resume once the disk is fixed and the service restarted."
                .into(),
            Fault::Unconfirmed(id) => format!(
                "The store failed to write to disk, so instance {id} has writes that were not \
                 acknowledged; its history cannot be shown until the service is restarted."
            ),
            Fault::ExportRefused => {
                "The store failed to write to disk; export it after the service is restarted."
                    .into()
            }
            Fault::Internal(_) => "Unexpected API Error. Please report this at \
                 http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n\
                 <class 'nova.exception.InternalError'>"
                .into(),
        }
    }

    /// Whether the connection closes after this answer, the rest of the body unread: it is
    /// too large, or coming too slowly, to be worth reading.
    pub fn hangs_up(&self) -> bool {
        matches!(
            self,
            Fault::BodyTooSlow { .. }
                | Fault::BodyTooLarge { .. }
                | Fault::ImportLineTooLong { .. }
        )
    }

    /// An import fault, told how many servers went in before it.
    pub fn after_servers(self, done: u64) -> Fault {
        match self {
            Fault::BadImportLine { line, why, .. } => Fault::BadImportLine {
                line,
                why,
                imported: done,
            },
            Fault::ImportLineTooLong { too_long, .. } => Fault::ImportLineTooLong {
                too_long,
                imported: done,
            },
            Fault::BadRequest(m) => Fault::BadRequest(m + &before_it(done)),
            other => other,
        }
    }
}

fn before_it(imported: u64) -> String {
    format!(" (the {imported} servers before it were imported)")
}

impl From<StoreError> for Fault {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ServerNotFound(id) => Fault::InstanceNotFound(id.to_string()),
            StoreError::ActionNotFound { server, request_id } => {
                Fault::WriteActionNotFound { server, request_id }
            }
            StoreError::EventNotFound { event, request_id } => {
                Fault::EventNotFound { event, request_id }
            }
            StoreError::Unconfirmed(id) => Fault::Unconfirmed(id),
            StoreError::MarkerNotFound => Fault::MarkerNotFound,
            StoreError::Unavailable(why) => {
                log::warn!("the store is unavailable: {why}");
                Fault::StoreUnavailable
            }
            e @ (StoreError::Corrupt(_)
            | StoreError::Open { .. }
            | StoreError::Io(_)
            | StoreError::Database(_)) => Fault::Internal(e.to_string()),
        }
    }
}

impl Fault {
    /// A store error met while writing: the disk refusing it is the caller's 503, not a 500.
    pub fn from_write(e: StoreError) -> Fault {
        match e {
            StoreError::Io(e) => {
                log::error!("a write failed in the store: {e}");
                Fault::WriteRefused
            }
            other => other.into(),
        }
    }
}

impl From<AuthError> for Fault {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthorized => Fault::Unauthorized,
            // Why is logged by `Call::authenticate`, with the request id.
            AuthError::Unavailable(_) => Fault::IdentityUnavailable,
        }
    }
}

impl From<InputError> for Fault {
    fn from(e: InputError) -> Self {
        Fault::BadRequest(e.0)
    }
}

impl From<ImportError> for Fault {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Line { line, error } => Fault::BadImportLine {
                line,
                why: error.0,
                imported: 0,
            },
            ImportError::TooLong(too_long) => Fault::ImportLineTooLong {
                too_long,
                imported: 0,
            },
            ImportError::Store(e) => Fault::from_write(e),
            ImportError::Read(e) => Fault::BadRequest(format!("Reading failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novas_words_and_statuses() {
        let id = "a0000000-0000-4000-8000-000000000001";
        let f = Fault::InstanceNotFound(id.into());
        assert_eq!(f.status(), 404);
        assert_eq!(f.message(), format!("Instance {id} could not be found."));
        assert_eq!(
            Fault::Forbidden("os_compute_api:os-instance-actions:list").message(),
            "Policy doesn't allow os_compute_api:os-instance-actions:list to be performed."
        );
        assert_eq!(Fault::UnsupportedVersion("2.105".into()).status(), 406);
        assert_eq!(
            Fault::UnsupportedVersion("2.105".into()).message(),
            format!(
                "Version 2.105 is not supported by the API. Minimum is 2.1 and maximum is 2.{}.",
                super::super::version::MAX_MINOR
            )
        );
        assert!(Fault::BodyTooLarge { max: 1 }.hangs_up());
        assert!(!Fault::BadRequest("x".into()).hangs_up());
    }

    #[test]
    fn store_errors_map_without_leaking() {
        let f = Fault::from(StoreError::Corrupt("secret bincode detail".into()));
        assert_eq!(f.status(), 500);
        assert!(!f.message().contains("secret"));
        let io = || StoreError::Io(sled::Error::Io(std::io::Error::other("disk")));
        assert_eq!(Fault::from(io()).status(), 500);
        assert_eq!(Fault::from_write(io()).status(), 503);
    }

    #[test]
    fn import_faults_count_what_went_in() {
        let f = Fault::from(ImportError::Line {
            line: 3,
            error: InputError("bad".into()),
        })
        .after_servers(2);
        assert_eq!(f.status(), 400);
        assert_eq!(
            f.message(),
            "Line 3: bad (the 2 servers before it were imported)"
        );
    }
}
