//! `GET .../servers/{id}/os-instance-actions[/{request_id}]`: Nova's list and show.

use std::sync::Arc;

use uuid::Uuid;

use super::call::Call;
use super::caller::Caller;
use super::fault::Fault;
use super::query;
use super::reply::Reply;
use super::stream::{ActionChunks, Chunks, StoreStream};
use super::version::{self, Version};
use super::view::{self, EventShape};
use crate::input::server_uuid;
use crate::json::Obj;
use crate::model::Server;
use crate::policy;
use crate::pytext::parse_query;
use crate::store::{After, PageQuery};

pub struct Request<'a> {
    pub call: &'a Call<'a>,
    pub caller: &'a Caller,
    pub version: Version,
    /// Under `/v2/`: version 2.1, no query validation, deleted servers hidden.
    pub legacy: bool,
    /// The server id as it appears in the URL.
    pub server: &'a str,
}

type Outcome = Result<Reply, Fault>;

fn bad_request(message: impl Into<String>) -> Fault {
    Fault::BadRequest(message.into())
}

impl Request<'_> {
    fn query_pairs(&self) -> Result<Vec<(String, String)>, Fault> {
        parse_query(self.call.req.query_string().as_bytes())
            .map_err(|_| bad_request("Query string is not UTF-8 encoded"))
    }

    /// Finds the server as Nova's `common.get_instance` would for this caller: another project's
    /// server is hidden from non-admins (404, not 403), deleted ones from versions before 2.21.
    async fn server(&self) -> Result<(Uuid, Server), Fault> {
        let id = self.server_id()?;
        match self.call.state.store.fetch_server(&id).await? {
            Some(server) if self.can_see(&server) => Ok((id, server)),
            _ => Err(self.not_found()),
        }
    }

    fn server_id(&self) -> Result<Uuid, Fault> {
        server_uuid(self.server).ok_or_else(|| self.not_found())
    }

    fn not_found(&self) -> Fault {
        Fault::InstanceNotFound(self.server.to_string())
    }

    fn can_see(&self, server: &Server) -> bool {
        // Nova filters by project only for "user contexts": not for admins, and not for tokens
        // without a project (system or unscoped), which then meet the policy instead (403).
        let visible = match self.caller.project() {
            _ if self.caller.is_admin() => true,
            None => true,
            Some(p) => p == server.project_id,
        };
        let deleted_hidden =
            server.deleted && (self.legacy || !self.version.at_least(version::DELETED_SERVERS));
        visible && !deleted_hidden
    }

    fn authorize(&self, rule: &'static str, server: &Server) -> Result<(), Fault> {
        if self.caller.allows(rule, &server.project_id) {
            Ok(())
        } else {
            Err(Fault::Forbidden(rule))
        }
    }

    fn content_type(&self) -> &'static str {
        self.call.content_type()
    }
}

pub async fn list(r: &Request<'_>) -> Outcome {
    let pairs = r.query_pairs()?;
    let paged = !r.legacy && r.version.at_least(version::PAGING);
    let Some(query) = paged
        .then(|| query::list(&pairs, r.version.at_least(version::CHANGES_BEFORE)))
        .transpose()
        .map_err(bad_request)?
    else {
        let (id, server) = r.server().await?;
        r.authorize(policy::LIST, &server)?;
        return list_all(r, &id).await;
    };
    // Checked now, answered only after the server's 404 or 403, as Nova orders them.
    let limit = match page_limit(r, &query) {
        Ok(limit) if limit > 0 => limit,
        other => {
            let (_, server) = r.server().await?;
            r.authorize(policy::LIST, &server)?;
            other?;
            return Ok(Reply::json(
                200,
                r.content_type(),
                br#"{"instanceActions": []}"#.to_vec(),
            ));
        }
    };
    let id = r.server_id()?;
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let page = PageQuery {
        after: query.marker.as_deref().map_or(After::Start, After::Marker),
        since: query.since,
        before: query.before,
        limit: max,
    };
    let mut body = Vec::with_capacity(400 * max.min(1000) + 256);
    let mut outer = Obj::begin(&mut body);
    let instance = id.hyphenated().to_string();
    let items = outer.key("instanceActions");
    items.push(b'[');
    let mut last = String::new();
    let store = &r.call.state.store;
    let check = |server: Option<&Server>| match server {
        Some(server) if r.can_see(server) => r.authorize(policy::LIST, server),
        _ => Err(r.not_found()),
    };
    let end = store.fetch_checked_page(&id, &page, check, |a| {
        if !last.is_empty() {
            // A request id is never empty: there was an item before this one.
            items.extend_from_slice(b", ");
        }
        view::write_action(items, &instance, a, r.version, |_| ());
        last.clear();
        last.push_str(a.request_id);
    });
    let end = end.await?;
    items.push(b']');
    if end.count as u64 == limit {
        view::write_next_link(outer.key("links"), &next_link_for(r, &pairs, &last));
    }
    outer.end();
    Ok(Reply::json(200, r.content_type(), body))
}

/// The page size a list asks for (0 for an empty answer), or the 400 its query deserves.
fn page_limit(r: &Request<'_>, query: &query::ListQuery) -> Result<u64, Fault> {
    if let (Some(since), Some(before)) = (query.since, query.before) {
        if since > before {
            return Err(bad_request(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
    }
    let max_limit = r.call.state.config.api.max_limit;
    match query.limit_value() {
        Some(Err(())) => Err(bad_request(
            "Invalid input received: limit must be an integer",
        )),
        Some(Ok(n)) => Ok(n.min(max_limit)),
        None => Ok(max_limit),
    }
}

/// Below 2.58 there is no paging: every action of the server, newest first, streamed when long.
async fn list_all(r: &Request<'_>, id: &Uuid) -> Outcome {
    let store = &r.call.state.store;
    let mut chunks = ActionChunks::new(*id, r.version);
    let (chunks, first) = store
        .run(move |s| {
            let mut first = Vec::with_capacity(8192);
            chunks.next_chunk(s, &mut first)?;
            Ok((chunks, first))
        })
        .await?;
    let reply = Reply::json(200, r.content_type(), first);
    Ok(if chunks.is_done() {
        reply
    } else {
        reply.streaming(StoreStream::new(Arc::clone(store), chunks))
    })
}

pub async fn show(r: &Request<'_>, request_id: &str) -> Outcome {
    let pairs = r.query_pairs()?;
    if !r.legacy && r.version.at_least(version::STRICT_SHOW_QUERY) {
        query::reject_unknown(&pairs, &[]).map_err(bad_request)?;
    }
    let (id, server) = r.server().await?;
    r.authorize(policy::SHOW, &server)?;
    let shape = event_shape_for(r, &server);
    let shown = r
        .call
        .state
        .store
        .fetch_action(&id, request_id, shape.is_some())
        .await?;
    let Some((action, events)) = shown else {
        return Err(Fault::ActionNotFound(request_id.to_string()));
    };
    let mut body = Vec::with_capacity(512 + 512 * events.len());
    let shown = view::Shown {
        instance: &id,
        action: &action,
        events: shape.as_ref().map(|shape| (shape, events.as_slice())),
        server_project: &server.project_id,
    };
    shown.write(&mut body, r.version);
    Ok(Reply::json(200, r.content_type(), body))
}

fn event_shape_for(r: &Request<'_>, server: &Server) -> Option<EventShape> {
    let events = r.caller.allows(policy::EVENTS, &server.project_id);
    let details = r.caller.allows(policy::EVENTS_DETAILS, &server.project_id);
    EventShape::new(r.version, events, details)
}

/// The next page of this server's actions.
fn next_link_for(r: &Request<'_>, pairs: &[(String, String)], last: &str) -> String {
    let collection = format!("servers/{}/os-instance-actions", r.server);
    view::next_link(r.call, r.caller, pairs, &collection, last)
}
