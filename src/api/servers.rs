//! `GET .../servers`, `.../servers/detail` and `.../servers/{id}`: the part of Nova's server API
//! that clients use to find a server (by id, then by name) and that audit tools use to list
//! servers. Not a server API: only the fields this service stores are shown.

use regex::Regex;
use uuid::Uuid;

use super::call::Call;
use super::caller::Caller;
use super::fault::Fault;
use super::query;
use super::reply::Reply;
use super::version::Version;
use super::view::{self, host_id, next_link};
use crate::input::server_uuid;
use crate::json::Obj;
use crate::model::{Server, ServerView};
use crate::policy;
use crate::pytext::parse_query;
use crate::store::{ServerPosition, Store};
use crate::timeutil::{Micros, isotime, now_micros};

pub struct Request<'a> {
    pub call: &'a Call<'a>,
    pub caller: &'a Caller,
    pub version: Version,
}

type Outcome = Result<Reply, Fault>;

/// `GET /servers` (ids, names, links) or `GET /servers/detail` (documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Index,
    Detail,
}

impl Listing {
    fn rule(self) -> &'static str {
        match self {
            Listing::Index => policy::SERVERS_INDEX,
            Listing::Detail => policy::SERVERS_DETAIL,
        }
    }

    fn all_tenants_rule(self) -> &'static str {
        match self {
            Listing::Index => policy::SERVERS_INDEX_ALL_TENANTS,
            Listing::Detail => policy::SERVERS_DETAIL_ALL_TENANTS,
        }
    }

    fn collection(self) -> &'static str {
        match self {
            Listing::Index => "servers",
            Listing::Detail => "servers/detail",
        }
    }
}

impl Request<'_> {
    fn pairs(&self) -> Result<Vec<(String, String)>, Fault> {
        parse_query(self.call.req.query_string().as_bytes())
            .map_err(|_| Fault::BadRequest("Query string is not UTF-8 encoded".into()))
    }

    /// Nova's default policy target: the caller's own project.
    fn allows_own(&self, rule: &str) -> bool {
        self.caller
            .allows(rule, self.caller.project().unwrap_or(""))
    }

    /// Whether the caller sees `server` at all: Nova's `project_only` instance lookup.
    fn can_see(&self, server: &Server) -> bool {
        self.caller.is_admin() || self.caller.project().is_none_or(|p| p == server.project_id)
    }
}

/// `GET /servers/{id}`: a deleted server is 404 for everyone (Nova reads with
/// `read_deleted="no"`), another project's is 404, then the policy (403).
pub async fn show(r: &Request<'_>, id_text: &str) -> Outcome {
    let pairs = r.pairs()?;
    query::servers_show(&pairs, r.version).map_err(Fault::BadRequest)?;
    let not_found = || Fault::InstanceNotFound(id_text.to_string());
    let id = server_uuid(id_text).ok_or_else(not_found)?;
    let server = match r.call.state.store.fetch_server(&id).await? {
        Some(s) if !s.deleted && r.can_see(&s) => s,
        _ => return Err(not_found()),
    };
    if !r.caller.allows(policy::SERVERS_SHOW, &server.project_id) {
        return Err(Fault::Forbidden(policy::SERVERS_SHOW));
    }
    let mut body = Vec::with_capacity(1024);
    let mut outer = Obj::begin(&mut body);
    let doc = Document::new(r, now_micros());
    doc.write(outer.key("server"), &id, &server);
    outer.end();
    Ok(Reply::json(200, r.call.content_type(), body))
}

/// What a listing asks for, once Nova's rules have decided which filters apply.
struct Plan {
    /// The only project listed; None for every project.
    project: Option<String>,
    filter: Filter,
    limit: usize,
    /// The marker's id: the listing starts after it.
    marker: Option<Uuid>,
}

/// The filters applied to each server of the scan, in Nova's terms.
#[derive(Default)]
struct Filter {
    /// `Some(false)`: only servers not deleted; `Some(true)`: only deleted ones.
    deleted: Option<bool>,
    since: Option<Micros>,
    before: Option<Micros>,
    name: Option<Regex>,
    /// Shown statuses, any of which passes (empty: all).
    statuses: Vec<String>,
    user_id: Option<String>,
    host: Option<String>,
}

impl Filter {
    /// Whether the filter may skip servers: then a page can take a long scan.
    fn skips(&self) -> bool {
        self.deleted == Some(true)
            || self.since.is_some()
            || self.before.is_some()
            || self.name.is_some()
            || !self.statuses.is_empty()
            || self.user_id.is_some()
            || self.host.is_some()
    }

    fn admits(&self, s: &ServerView<'_>) -> bool {
        // Nova compares `updated_at` (inclusive). A server recorded before servers had an update
        // time counts as updated when it was created; one with neither never passes.
        let updated = s.updated_at.or(s.created_at);
        let within = |bound: Option<Micros>, ok: fn(Micros, Micros) -> bool| {
            bound.is_none_or(|b| updated.is_some_and(|u| ok(u, b)))
        };
        self.deleted.is_none_or(|d| d == s.deleted)
            && within(self.since, |u, b| u >= b)
            && within(self.before, |u, b| u <= b)
            && self
                .name
                .as_ref()
                .is_none_or(|re| s.name.is_some_and(|n| re.is_match(n)))
            && (self.statuses.is_empty() || self.statuses.iter().any(|st| st == s.shown_status()))
            && self
                .user_id
                .as_ref()
                .is_none_or(|u| s.user_id == Some(u.as_str()))
            && self
                .host
                .as_ref()
                .is_none_or(|h| s.host == Some(h.as_str()))
    }
}

pub async fn list(r: &Request<'_>, listing: Listing) -> Outcome {
    let pairs = r.pairs()?;
    let checked = query::servers_list(&pairs, r.version).map_err(Fault::BadRequest)?;
    if !r.allows_own(listing.rule()) {
        return Err(Fault::Forbidden(listing.rule()));
    }
    let plan = plan(r, listing, &checked)?;
    let Some(plan) = plan else {
        return Ok(Reply::json(
            200,
            r.call.content_type(),
            br#"{"servers": []}"#.to_vec(),
        ));
    };
    let limit = plan.limit;
    let marker = checked.marker.clone().unwrap_or_default();
    let store = &r.call.state.store;
    let found = match plan.filter.skips() {
        true => {
            // At most one long scan per core at a time: the rest wait their turn here, and the
            // cores stay free enough for every other request.
            let _turn = long_scans().acquire().await.expect("never closed");
            store.run_long(move |s| scan(s, &plan)).await?
        }
        false => store.run(move |s| scan(s, &plan)).await?,
    };
    let Some(found) = found else {
        return Err(marker_not_found(&marker));
    };
    let mut body = Vec::with_capacity(256 + found.len() * 700);
    let mut outer = Obj::begin(&mut body);
    let doc = Document::new(r, now_micros());
    let items = outer.key("servers");
    items.push(b'[');
    for (i, (id, server)) in found.iter().enumerate() {
        if i > 0 {
            items.extend_from_slice(b", ");
        }
        match listing {
            Listing::Index => doc.write_brief(items, id, server),
            Listing::Detail => doc.write(items, id, server),
        }
    }
    items.push(b']');
    if let Some((last, _)) = found.last().filter(|_| found.len() == limit) {
        let href = next_link(
            r.call,
            r.caller,
            &pairs,
            listing.collection(),
            &last.hyphenated().to_string(),
        );
        view::write_next_link(outer.key("servers_links"), &href);
    }
    outer.end();
    Ok(Reply::json(200, r.call.content_type(), body))
}

fn long_scans() -> &'static tokio::sync::Semaphore {
    static SCANS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SCANS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        tokio::sync::Semaphore::new(cores)
    })
}

/// Nova's `_get_servers`: which filters a caller keeps, `all_tenants`, the project scope,
/// limit and marker. None for a listing that is empty whatever is stored (`limit=0`).
fn plan(r: &Request<'_>, listing: Listing, q: &query::ServersQuery) -> Result<Option<Plan>, Fault> {
    // A non-admin's other filters are dropped silently (`remove_invalid_options`).
    let all_filters = r.allows_own(policy::SERVERS_ALL_FILTERS);
    let kept = |name: &str| {
        all_filters
            || query::NON_ADMIN_FILTERS
                .iter()
                .any(|(n, since)| *n == name && r.version.at_least(*since))
    };
    let since = q.since.filter(|_| kept("changes-since"));
    let before = q.before.filter(|_| kept("changes-before"));
    if let (Some(since), Some(before)) = (since, before) {
        if before < since {
            return Err(Fault::BadRequest(
                "The value of changes-since must be less than or equal to changes-before.".into(),
            ));
        }
    }
    // Nova turns statuses into vm states; one it does not know lists nothing (a 400 from 2.38).
    let statuses: Vec<String> = q.statuses.iter().map(|s| s.to_uppercase()).collect();
    if statuses
        .iter()
        .any(|s| !crate::input::SERVER_STATUSES.contains(&s.as_str()))
    {
        if r.version.at_least(Version(38)) {
            return Err(Fault::BadRequest("Invalid status value".into()));
        }
        return Ok(None);
    }
    let only_deleted = statuses == ["DELETED"];
    if only_deleted && !r.caller.is_admin() {
        return Err(Fault::ForbiddenMessage(
            "Only administrators may list deleted instances".into(),
        ));
    }
    let deleted = match q.deleted.as_deref().filter(|_| kept("deleted")) {
        _ if only_deleted => Some(true),
        Some(value) => Some(query::bool_from_string(value)),
        None if since.is_none() && before.is_none() => Some(false),
        None => None,
    };
    let all_tenants = match q.all_tenants.as_deref().filter(|_| kept("all_tenants")) {
        Some(value) => query::is_all_tenants(value).map_err(Fault::BadRequest)?,
        None => false,
    };
    let project = if all_tenants {
        if !r.allows_own(listing.all_tenants_rule()) {
            return Err(Fault::Forbidden(listing.all_tenants_rule()));
        }
        q.project.clone().filter(|_| kept("project_id"))
    } else {
        r.caller.project().map(str::to_string)
    };
    // A caller without a project (a system token) sees its own user's servers, as in Nova.
    let user_id = match r.caller.project() {
        None if !all_tenants => r.caller.user_id().map(str::to_string),
        _ => q.user_id.clone().filter(|_| kept("user_id")),
    };
    let name = q.name.clone().filter(|_| kept("name"));
    if q.sort_dirs.iter().any(|d| d != "asc" && d != "desc") {
        return Err(Fault::BadRequest(
            "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'".into(),
        ));
    }
    let max_limit = r.call.state.config.api.max_limit;
    let limit = q.limit.map_or(max_limit, |l| l.min(max_limit));
    if limit == 0 {
        return Ok(None);
    }
    let marker = match &q.marker {
        None => None,
        Some(text) => Some(server_uuid(text).ok_or_else(|| marker_not_found(text))?),
    };
    Ok(Some(Plan {
        project,
        filter: Filter {
            deleted,
            since,
            before,
            name,
            statuses,
            user_id,
            host: q.host.clone().filter(|_| kept("host")),
        },
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        marker,
    }))
}

fn marker_not_found(marker: &str) -> Fault {
    Fault::BadRequest(format!("marker [{marker}] not found"))
}

/// Reads servers in listing order until `limit` pass the filter: memory bounded by the page,
/// time by how many servers the filter skips. None when the marker names no server (any server
/// the store holds is a valid marker, deleted or another project's, as in Nova).
fn scan(store: &Store, plan: &Plan) -> crate::store::Result<Option<Vec<(Uuid, Server)>>> {
    let after: Option<ServerPosition> = match plan.marker {
        None => None,
        Some(id) => match store.server_position(&id)? {
            Some(position) => Some(position),
            None => return Ok(None),
        },
    };
    let admit = |s: &ServerView<'_>| plan.filter.admits(s);
    let found = store.find_servers(plan.project.as_deref(), after.as_ref(), plan.limit, &admit)?;
    Ok(Some(found))
}

/// The server document: the fields this service stores, in Nova's order and format.
struct Document<'a> {
    r: &'a Request<'a>,
    /// Nova's `isotime(None)` is the current time.
    now: Micros,
    self_base: String,
    bookmark_base: String,
}

impl<'a> Document<'a> {
    fn new(r: &'a Request<'a>, now: Micros) -> Self {
        let (self_base, bookmark_base) = view::server_link_bases(r.call, r.caller);
        Document {
            r,
            now,
            self_base,
            bookmark_base,
        }
    }

    fn links(&self, out: &mut Vec<u8>, id: &str) {
        out.extend_from_slice(br#"[{"rel": "self", "href": "#);
        crate::pytext::write_json_str(out, &format!("{}/servers/{id}", self.self_base));
        out.extend_from_slice(br#"}, {"rel": "bookmark", "href": "#);
        crate::pytext::write_json_str(out, &format!("{}/servers/{id}", self.bookmark_base));
        out.extend_from_slice(b"}]");
    }

    /// `GET /servers`: id, name, links.
    fn write_brief(&self, out: &mut Vec<u8>, id: &Uuid, s: &Server) {
        let id = id.hyphenated().to_string();
        let mut o = Obj::begin(out);
        o.str("id", &id).opt_str("name", s.name.as_deref());
        self.links(o.key("links"), &id);
        o.end();
    }

    fn write(&self, out: &mut Vec<u8>, id: &Uuid, s: &Server) {
        let id = id.hyphenated().to_string();
        let isotime = |t: Option<Micros>| isotime(t.unwrap_or(self.now));
        // Nova's document is sorted by key up to `updated`, its extensions after.
        let mut o = Obj::begin(out);
        o.str("created", &isotime(s.created_at))
            .str("hostId", &host_id(&s.project_id, s.host.as_deref()))
            .str("id", &id);
        self.links(o.key("links"), &id);
        o.opt_str("name", s.name.as_deref())
            .str("status", s.shown_status())
            .str("tenant_id", &s.project_id)
            .str("user_id", s.user_id.as_deref().unwrap_or(""))
            .str("updated", &isotime(s.updated_at.or(s.created_at)));
        if self
            .r
            .caller
            .allows(policy::SERVER_EXTENDED_ATTRIBUTES, &s.project_id)
        {
            o.opt_str("OS-EXT-SRV-ATTR:host", s.host.as_deref());
        }
        o.end();
    }
}
