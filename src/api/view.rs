//! Rendering what the read API shows: an action in the list/show layout of a microversion, the
//! events a caller may see, Nova's hostId, and paging links. Handlers (list, show, the write
//! API's answers) and the unpaged stream call these; nothing here knows how a request arrived.

use std::cell::RefCell;

use sha2::{Digest, Sha224};
use uuid::Uuid;

use super::call::Call;
use super::caller::Caller;
use super::version::{self, Version};
use crate::json::{Obj, array};
use crate::model::{Action, ActionView, Event};

/// A shown action: `{"instanceAction": {...}}`, its events when the caller may see them.
pub struct Shown<'a> {
    pub instance: &'a Uuid,
    pub action: &'a Action,
    /// The caller's event shape and the events, newest first; None when events are hidden.
    pub events: Option<(&'a EventShape, &'a [Event])>,
    /// Whose hostId an event gets when the action names no project.
    pub server_project: &'a str,
}

impl Shown<'_> {
    pub fn write(&self, out: &mut Vec<u8>, version: Version) {
        let mut outer = Obj::begin(out);
        let instance = self.instance.hyphenated().to_string();
        write_action(
            outer.key("instanceAction"),
            &instance,
            &self.action.view(),
            version,
            |obj| {
                if let Some((shape, events)) = self.events {
                    let project = host_project(self.action, self.server_project);
                    array(obj.key("events"), events, |out, e| {
                        shape.write(out, e, project);
                    });
                }
            },
        );
        outer.end();
    }
}

/// The project an event's hostId is hashed with: the action's, else the server's (Nova takes
/// the action's project, which older records may lack).
fn host_project<'a>(action: &'a Action, server_project: &'a str) -> &'a str {
    action
        .project_id
        .as_deref()
        .filter(|p| !p.is_empty())
        .unwrap_or(server_project)
}

/// One action in the list/show layout of `version`; `extra` adds keys after the standard ones.
pub fn write_action(
    out: &mut Vec<u8>,
    instance: &str,
    a: &ActionView<'_>,
    version: Version,
    extra: impl FnOnce(&mut Obj<'_>),
) {
    let mut o = Obj::begin(out);
    o.str("action", a.action)
        .str("instance_uuid", instance)
        .str("request_id", a.request_id)
        .opt_str("user_id", a.user_id)
        .opt_str("project_id", a.project_id)
        .time("start_time", Some(a.start_time))
        .opt_str("message", a.message);
    if version.at_least(version::PAGING) {
        o.time("updated_at", a.updated_at);
    }
    extra(&mut o);
    o.end();
}

/// Which event fields a caller sees (docs/spec/01-read-api.md §6), decided by version and the
/// non-fatal `events` and `events:details` policies.
pub struct EventShape {
    traceback: bool,
    host: bool,
    host_id: bool,
    details: bool,
    /// The last (project, host) hashed and its id: an action's events mostly share one host.
    last_host_id: RefCell<Option<(String, String, String)>>,
}

impl EventShape {
    pub fn new(version: Version, events: bool, details: bool) -> Option<EventShape> {
        if !events && !version.at_least(version::EVENTS_FOR_ALL) {
            return None;
        }
        let v62 = version.at_least(version::EVENT_HOSTS);
        Some(EventShape {
            traceback: events,
            host: events && v62,
            host_id: v62,
            details: details && version.at_least(version::EVENT_DETAILS),
            last_host_id: RefCell::new(None),
        })
    }

    pub fn write(&self, out: &mut Vec<u8>, e: &Event, host_project: &str) {
        let mut o = Obj::begin(out);
        o.str("event", &e.event)
            .time("start_time", e.start_time)
            .time("finish_time", e.finish_time)
            .opt_str("result", e.result.as_deref());
        if self.traceback {
            o.opt_str("traceback", e.traceback.as_deref());
        }
        if self.host {
            o.opt_str("host", e.host.as_deref());
        }
        if self.host_id {
            let mut last = self.last_host_id.borrow_mut();
            let host = e.host.as_deref().unwrap_or("");
            let known = matches!(&*last, Some((p, h, _)) if p == host_project && h == host);
            if !known {
                let id = host_id(host_project, e.host.as_deref());
                *last = Some((host_project.to_string(), host.to_string(), id));
            }
            o.str("hostId", last.as_ref().map_or("", |(_, _, id)| id));
        }
        if self.details {
            o.opt_str("details", e.details.as_deref());
        }
        o.end();
    }
}

/// Nova's obfuscated host id: SHA-224 of project id + host, hex; empty without a host.
pub fn host_id(project: &str, host: Option<&str>) -> String {
    match host {
        Some(h) if !h.is_empty() => {
            let mut hasher = Sha224::new();
            hasher.update(project.as_bytes());
            hasher.update(h.as_bytes());
            crate::pytext::hex_lower(&hasher.finalize())
        }
        _ => String::new(),
    }
}

/// Nova's `_get_project_id`: the caller's project goes into a link only if that string occurs
/// anywhere in the request URL (an empty or missing project never goes in).
fn project_in_url<'a>(call: &Call<'_>, caller: &'a Caller) -> &'a str {
    let host_url = call.host_url();
    let raw_query = call.req.query_string();
    let full_url = format!(
        "{host_url}{}{}{raw_query}",
        call.req.uri().path(),
        if raw_query.is_empty() { "" } else { "?" }
    );
    match caller.project() {
        Some(p) if !p.is_empty() && full_url.contains(p) => p,
        _ => "",
    }
}

/// `request.application_url` (`…/v2.1`) with `compute_link_prefix` applied.
fn application_url(call: &Call<'_>) -> String {
    let application_url = format!("{}/v2.1", call.host_url());
    match &call.state.config.api.compute_link_prefix {
        Some(prefix) => update_link_prefix(&application_url, prefix),
        None => application_url,
    }
}

/// Nova's `_get_next_link`: parameters sorted by name with `marker` set to the last item.
pub fn next_link(
    call: &Call<'_>,
    caller: &Caller,
    pairs: &[(String, String)],
    collection: &str,
    last: &str,
) -> String {
    let url = url_join(&[
        &application_url(call),
        project_in_url(call, caller),
        collection,
    ]);
    // Python: `OrderedDict(sorted(request.params.items()))` keeps a repeated name's last value
    // at its first place; setting `marker` then replaces it in place or appends it.
    let mut sorted: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort();
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(sorted.len() + 1);
    for (k, v) in sorted {
        match params.last_mut() {
            Some(prev) if prev.0 == k => prev.1 = v,
            _ => params.push((k, v)),
        }
    }
    match params.iter_mut().find(|(k, _)| *k == "marker") {
        Some(marker) => marker.1 = last,
        None => params.push(("marker", last)),
    }
    format!("{url}?{}", crate::pytext::urlencode(&params))
}

/// The bases of a resource's `self` and `bookmark` links (Nova's `_get_href_link` and
/// `_get_bookmark_link`): `…/v2.1[/project]` and the same without the version.
pub fn server_link_bases(call: &Call<'_>, caller: &Caller) -> (String, String) {
    let project = project_in_url(call, caller);
    let versioned = application_url(call);
    let unversioned = call.host_url();
    let unversioned = match &call.state.config.api.compute_link_prefix {
        Some(prefix) => update_link_prefix(&unversioned, prefix),
        None => unversioned,
    };
    (
        url_join(&[&versioned, project]),
        url_join(&[&unversioned, project]),
    )
}

/// `[{"rel": "next", "href": "<href>"}]`.
pub fn write_next_link(out: &mut Vec<u8>, href: &str) {
    out.extend_from_slice(br#"[{"rel": "next", "href": "#);
    crate::pytext::write_json_str(out, href);
    out.extend_from_slice(b"}]");
}

/// Nova's `url_join`: parts stripped of `/` and joined with `/`, empty parts dropped.
pub fn url_join(parts: &[&str]) -> String {
    let clean: Vec<&str> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_matches('/'))
        .collect();
    clean.join("/")
}

/// Nova's `_update_link_prefix`: scheme and host from the prefix, its path in front.
pub fn update_link_prefix(orig: &str, prefix: &str) -> String {
    let (_, orig_path) = split_url(orig);
    let (prefix_scheme_host, prefix_path) = split_url(prefix);
    format!("{prefix_scheme_host}{prefix_path}{orig_path}")
        .trim_end_matches('/')
        .to_string()
}

/// `scheme://netloc` and the path of a URL (query and fragment dropped).
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let path = &url[path_start..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    (&url[..path_start], path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_id_matches_nova() {
        assert_eq!(
            host_id("6f70656e737461636b20342065766572", Some("compute")),
            "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6"
        );
        assert_eq!(host_id("p", None), "");
        assert_eq!(host_id("p", Some("")), "");
    }

    #[test]
    fn event_shapes_by_version_and_policy() {
        let fields = |v: u32, events: bool, details: bool| {
            EventShape::new(Version(v), events, details)
                .map(|s| (s.traceback, s.host, s.host_id, s.details))
        };
        assert_eq!(fields(50, false, false), None);
        assert_eq!(fields(50, true, true), Some((true, false, false, false)));
        assert_eq!(fields(51, false, false), Some((false, false, false, false)));
        assert_eq!(fields(62, false, false), Some((false, false, true, false)));
        assert_eq!(fields(62, true, true), Some((true, true, true, false)));
        assert_eq!(fields(83, true, true), Some((true, true, true, false)));
        assert_eq!(fields(84, true, true), Some((true, true, true, true)));
        assert_eq!(fields(84, false, true), Some((false, false, true, true)));
    }

    #[test]
    fn link_prefix_and_join() {
        assert_eq!(
            update_link_prefix("http://h:1/v2.1", "https://x.org/compute"),
            "https://x.org/compute/v2.1"
        );
        assert_eq!(
            update_link_prefix("http://h:1/v2.1", "https://x.org"),
            "https://x.org/v2.1"
        );
        assert_eq!(
            url_join(&["http://h/v2.1", "", "servers/x/os-instance-actions"]),
            "http://h/v2.1/servers/x/os-instance-actions"
        );
        assert_eq!(
            url_join(&["http://h/v2.1/", "p", "servers/x"]),
            "http://h/v2.1/p/servers/x"
        );
    }
}
