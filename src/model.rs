//! The records the store keeps. Times are UTC microseconds (`timeutil::Micros`).

use serde::{Deserialize, Serialize};

use crate::timeutil::Micros;

/// A server (Nova's instance) as far as its action history and the server lookup endpoints
/// need it. New fields go at the end: the stored encoding is this order (see `store::codec`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Server {
    pub project_id: String,
    pub user_id: Option<String>,
    pub host: Option<String>,
    pub created_at: Option<Micros>,
    pub deleted: bool,
    pub deleted_at: Option<Micros>,
    /// Nova's `display_name`.
    pub name: Option<String>,
    /// Nova's server status (`ACTIVE` when not given); `DELETED` is shown once soft-deleted.
    pub status: Option<String>,
    pub updated_at: Option<Micros>,
    /// Registration order in this store, Nova's `instances.id`: breaks ties in `created_at`
    /// when servers are listed. 0 for a server registered before names existed.
    pub seq: u64,
}

impl Server {
    /// Where the server sorts in a listing: Nova's `created_at desc, id desc`, with a server
    /// that has no creation time last.
    pub fn list_position(&self) -> (Micros, u64) {
        (self.created_at.unwrap_or(Micros::MIN), self.seq)
    }

    /// The status Nova shows for it.
    pub fn shown_status(&self) -> &str {
        shown_status(self.deleted, self.status.as_deref())
    }

    pub fn view(&self) -> ServerView<'_> {
        ServerView {
            project_id: &self.project_id,
            user_id: self.user_id.as_deref(),
            host: self.host.as_deref(),
            created_at: self.created_at,
            deleted: self.deleted,
            deleted_at: self.deleted_at,
            name: self.name.as_deref(),
            status: self.status.as_deref(),
            updated_at: self.updated_at,
            seq: self.seq,
        }
    }
}

fn shown_status(deleted: bool, status: Option<&str>) -> &str {
    match (deleted, status) {
        (true, _) => "DELETED",
        (false, Some(status)) => status,
        (false, None) => "ACTIVE",
    }
}

/// A server read in place from its stored bytes: what a filtering scan needs, without an
/// allocation per field. Its encoding is [`Server`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ServerView<'a> {
    pub project_id: &'a str,
    #[serde(borrow)]
    pub user_id: Option<&'a str>,
    #[serde(borrow)]
    pub host: Option<&'a str>,
    pub created_at: Option<Micros>,
    pub deleted: bool,
    pub deleted_at: Option<Micros>,
    #[serde(borrow)]
    pub name: Option<&'a str>,
    #[serde(borrow)]
    pub status: Option<&'a str>,
    pub updated_at: Option<Micros>,
    pub seq: u64,
}

impl ServerView<'_> {
    pub fn shown_status(&self) -> &str {
        shown_status(self.deleted, self.status)
    }
}

/// The server record before names: what stores written by earlier versions hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerV1 {
    pub project_id: String,
    pub user_id: Option<String>,
    pub host: Option<String>,
    pub created_at: Option<Micros>,
    pub deleted: bool,
    pub deleted_at: Option<Micros>,
}

impl From<ServerV1> for Server {
    fn from(v1: ServerV1) -> Server {
        Server {
            project_id: v1.project_id,
            user_id: v1.user_id,
            host: v1.host,
            created_at: v1.created_at,
            deleted: v1.deleted,
            deleted_at: v1.deleted_at,
            ..Server::default()
        }
    }
}

/// One request made against a server (Nova's `instance_actions` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub request_id: String,
    pub action: String,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub start_time: Micros,
    pub finish_time: Option<Micros>,
    pub updated_at: Option<Micros>,
    pub message: Option<String>,
    pub created_at: Option<Micros>,
}

/// An action read in place from its stored bytes: what a list needs, without an allocation
/// per field. Its encoding is [`Action`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ActionView<'a> {
    pub request_id: &'a str,
    pub action: &'a str,
    #[serde(borrow)]
    pub user_id: Option<&'a str>,
    #[serde(borrow)]
    pub project_id: Option<&'a str>,
    pub start_time: Micros,
    pub finish_time: Option<Micros>,
    pub updated_at: Option<Micros>,
    #[serde(borrow)]
    pub message: Option<&'a str>,
    pub created_at: Option<Micros>,
}

impl Action {
    pub fn view(&self) -> ActionView<'_> {
        ActionView {
            request_id: &self.request_id,
            action: &self.action,
            user_id: self.user_id.as_deref(),
            project_id: self.project_id.as_deref(),
            start_time: self.start_time,
            finish_time: self.finish_time,
            updated_at: self.updated_at,
            message: self.message.as_deref(),
            created_at: self.created_at,
        }
    }
}

/// One step of an action (Nova's `instance_actions_events` row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    pub start_time: Option<Micros>,
    pub finish_time: Option<Micros>,
    pub result: Option<String>,
    pub traceback: Option<String>,
    pub host: Option<String>,
    pub details: Option<String>,
    pub created_at: Option<Micros>,
}

/// A server with its whole history: the unit of bulk import and export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHistory {
    pub uuid: uuid::Uuid,
    pub server: Server,
    pub actions: Vec<(Action, Vec<Event>)>,
}
