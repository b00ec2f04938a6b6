//! The records the store keeps. Times are UTC microseconds (`timeutil::Micros`).

use serde::{Deserialize, Serialize};

use crate::timeutil::Micros;

/// A server (Nova's instance) as far as its action history needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub project_id: String,
    pub user_id: Option<String>,
    pub host: Option<String>,
    pub created_at: Option<Micros>,
    pub deleted: bool,
    pub deleted_at: Option<Micros>,
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
