//! The version documents at `/`, `/v2`, `/v2.1`, and the 300 `choices` for unknown paths.

use actix_web::HttpResponse;

use super::call::Call;
use super::reply::{JSON, Reply};

struct Doc {
    id: &'static str,
    status: &'static str,
    /// Whether it negotiates microversions (then its `version` is the newest served).
    microversions: bool,
    min_version: &'static str,
    updated: &'static str,
    path: &'static str,
    media_type: &'static str,
}

const V20: Doc = Doc {
    id: "v2.0",
    status: "DEPRECATED",
    microversions: false,
    min_version: "",
    updated: "2025-07-04T12:00:00Z",
    path: "v2",
    media_type: "application/vnd.openstack.compute+json;version=2",
};

const V21: Doc = Doc {
    id: "v2.1",
    status: "CURRENT",
    microversions: true,
    min_version: "2.1",
    updated: "2013-07-23T11:33:21Z",
    path: "v2.1",
    media_type: "application/vnd.openstack.compute+json;version=2.1",
};

/// The Host header is the caller's text: escape it like any other JSON string.
fn json_string(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    crate::pytext::write_json_str(&mut out, text);
    String::from_utf8(out).expect("write_json_str writes ASCII")
}

fn self_link(host: &str, doc: &Doc, rest: &str) -> String {
    format!(
        r#"{{"rel": "self", "href": {}}}"#,
        json_string(&format!("{host}/{}/{rest}", doc.path))
    )
}

fn media_types(doc: &Doc) -> String {
    format!(
        r#"[{{"base": "application/json", "type": "{}"}}]"#,
        doc.media_type
    )
}

fn newest(doc: &Doc) -> String {
    if doc.microversions {
        super::version::MAX.text()
    } else {
        String::new()
    }
}

fn summary(doc: &Doc, host: &str) -> String {
    format!(
        r#"{{"id": "{}", "status": "{}", "version": "{}", "min_version": "{}", "updated": "{}", "links": [{}]}}"#,
        doc.id,
        doc.status,
        newest(doc),
        doc.min_version,
        doc.updated,
        self_link(host, doc, "")
    )
}

fn detail(doc: &Doc, host: &str) -> Vec<u8> {
    format!(
        r#"{{"version": {{"id": "{}", "status": "{}", "version": "{}", "min_version": "{}", "updated": "{}", "links": [{}, {{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}}], "media-types": {}}}}}"#,
        doc.id,
        doc.status,
        newest(doc),
        doc.min_version,
        doc.updated,
        self_link(host, doc, ""),
        media_types(doc)
    )
    .into_bytes()
}

fn only_get(call: &Call<'_>) -> bool {
    call.method == actix_web::http::Method::GET
}

pub fn root(call: &Call<'_>) -> HttpResponse {
    if !only_get(call) {
        return call.route_miss();
    }
    let host = call.host_url();
    let body = format!(
        r#"{{"versions": [{}, {}]}}"#,
        summary(&V20, &host),
        summary(&V21, &host)
    );
    Reply::json(200, JSON, body.into_bytes()).finish()
}

pub fn v2(call: &Call<'_>) -> HttpResponse {
    if !only_get(call) {
        return call.route_miss();
    }
    // Nova's /v2 pipeline has the request-id middleware, its / pipeline does not.
    Reply::json(200, JSON, detail(&V20, &call.host_url()))
        .request_id(&call.request_id)
        .finish()
}

/// Microversion-aware like the API under it: version headers, and 400/406 for bad versions.
pub fn v21(call: &Call<'_>) -> HttpResponse {
    if !only_get(call) {
        return call.route_miss();
    }
    match call.negotiate_version() {
        Ok(v) => Reply::json(200, JSON, detail(&V21, &call.host_url()))
            .versioned(v)
            .request_id(&call.request_id)
            .finish(),
        Err(answer) => answer,
    }
}

/// 300 Multiple Choices: where the unknown path would be under each API version.
pub fn choices(call: &Call<'_>, path: &str) -> HttpResponse {
    let host = call.host_url();
    // Nova's url_join strips slashes from both ends of each part.
    let rest = path.trim_matches('/');
    let choice = |doc: &Doc| {
        format!(
            r#"{{"id": "{}", "status": "{}", "links": [{}], "media-types": {}}}"#,
            doc.id,
            doc.status,
            self_link(&host, doc, rest),
            media_types(doc)
        )
    };
    let body = format!(r#"{{"choices": [{}, {}]}}"#, choice(&V20), choice(&V21));
    Reply::json(300, JSON, body.into_bytes()).finish()
}
