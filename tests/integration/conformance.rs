//! docs/spec/01-read-api.md, rule by rule: each row states a request and the exact status, body
//! and version headers Nova gives for it. Rows are grouped by the section they pin (the §
//! numbers below are that document's); the recorded Nova exchanges (golden.rs) cover the
//! normal paths, these the edges.

use crate::common::{Response, TestServer, fixture_server};

const A1: &str = "a0000000-0000-4000-8000-000000000001";
const OWNER: &str = "user-a:proj-a";
const ADMIN: &str = "admin:admin";

#[derive(Clone, Copy)]
enum Body {
    /// Byte-exact; `{host}` stands for the server's address.
    Exact(&'static str),
    Contains(&'static str),
    Empty,
}

struct Row {
    name: &'static str,
    method: &'static str,
    /// `{L}` is the list path of server A1, `{S}` its show path prefix.
    path: &'static str,
    headers: &'static [(&'static str, &'static str)],
    status: u16,
    /// The expected `X-OpenStack-Nova-API-Version`; None means the header must be absent.
    version: Option<&'static str>,
    body: Body,
}

const T_OWNER: (&str, &str) = ("X-Auth-Token", OWNER);
const T_ADMIN: (&str, &str) = ("X-Auth-Token", ADMIN);
const MV58: (&str, &str) = ("OpenStack-API-Version", "compute 2.58");
const MV66: (&str, &str) = ("OpenStack-API-Version", "compute 2.66");
const LATEST: (&str, &str) = ("OpenStack-API-Version", "compute latest");

const NOT_FOUND_JSON: &str = r#"{"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#;
const NOT_FOUND_PLAIN: &str = "404 Not Found\n\nThe resource could not be found.\n\n   ";
const NOT_FOUND_HTML: &str = "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\n\n\n\n </body>\n</html>";
const A1_MISSING: &str = r#"{"itemNotFound": {"code": 404, "message": "Instance a0000000-0000-4000-8000-000000000001 could not be found."}}"#;
const EMPTY_LIST: &str = r#"{"instanceActions": []}"#;

macro_rules! row {
    ($name:expr, $method:expr, $path:expr, [$($h:expr),*], $status:expr, $version:expr, $body:expr) => {
        Row { name: $name, method: $method, path: $path, headers: &[$($h),*], status: $status, version: $version, body: $body }
    };
}

/// §1 routing, §1.1 route-miss bodies, §1.2 content types and query parsing, §1.3 legacy.
const ROUTING: &[Row] = &[
    row!(
        "1 doubled slashes collapse",
        "GET",
        "//v2.1//servers/a0000000-0000-4000-8000-000000000001//os-instance-actions",
        [T_OWNER],
        200,
        Some("2.1"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-00000000000a""#)
    ),
    row!(
        "1 project in URL (hex) lists",
        "GET",
        "/v2.1/0123abcd/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [("X-Auth-Token", "admin:0123abcd")],
        200,
        Some("2.1"),
        Body::Contains("instanceActions")
    ),
    row!(
        "1 project in URL with dashes is hex-like",
        "GET",
        "/v2.1/01-23/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [("X-Auth-Token", "admin:01-23")],
        200,
        Some("2.1"),
        Body::Contains("instanceActions")
    ),
    row!(
        "1 non-hex project segment is a route miss",
        "GET",
        "/v2.1/demo/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [T_ADMIN, ("Accept", "application/json")],
        404,
        None,
        Body::Exact(NOT_FOUND_JSON)
    ),
    row!(
        "1 URL project differs from the caller's",
        "GET",
        "/v2.1/abc/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [T_ADMIN],
        400,
        Some("2.1"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Malformed request URL: URL's project_id 'abc' doesn't match Context's project_id 'admin'"}}"#
        )
    ),
    row!(
        "1 .json suffix on list is a route miss",
        "GET",
        "{L}.json",
        [T_OWNER, ("Accept", "application/json")],
        404,
        None,
        Body::Exact(NOT_FOUND_JSON)
    ),
    row!(
        "1 .json suffix on show is part of the id",
        "GET",
        "{S}/req-X.json",
        [T_OWNER],
        404,
        Some("2.1"),
        Body::Exact(r#"{"itemNotFound": {"code": 404, "message": "Action req-X.json not found"}}"#)
    ),
    row!(
        "1 trailing slash on show is a route miss",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000004/",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1 POST is a route miss, never 405",
        "POST",
        "{L}",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1 PUT on show is a route miss",
        "PUT",
        "{S}/req-a1000000-0000-4000-8000-000000000004",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1 PATCH is a route miss",
        "PATCH",
        "{L}",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1 HEAD is a route miss with an empty body",
        "HEAD",
        "{L}",
        [T_OWNER, ("Accept", "*/*")],
        404,
        None,
        Body::Empty
    ),
    row!(
        "1 OPTIONS answers 200 empty",
        "OPTIONS",
        "{L}",
        [],
        200,
        None,
        Body::Empty
    ),
    row!(
        "1 ?_method=DELETE on GET is a route miss",
        "GET",
        "{L}?_method=DELETE",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1 ?_method=get (any case) on POST is served as GET",
        "POST",
        "{L}?_method=get",
        [T_OWNER],
        200,
        Some("2.1"),
        Body::Contains("instanceActions")
    ),
    row!(
        "1 ?_method=GET at 2.58 is an unknown parameter",
        "POST",
        "{L}?_method=GET",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('_method' was unexpected)"}}"#
        )
    ),
    row!(
        "1 other API paths are route misses",
        "GET",
        "/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-interface",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1.1 no Accept: plain text",
        "GET",
        "{L}/",
        [T_OWNER],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
    row!(
        "1.1 Accept */*: html",
        "GET",
        "{L}/",
        [T_OWNER, ("Accept", "*/*")],
        404,
        None,
        Body::Exact(NOT_FOUND_HTML)
    ),
    row!(
        "1.1 Accept application/json: json",
        "GET",
        "{L}/",
        [T_OWNER, ("Accept", "application/json")],
        404,
        None,
        Body::Exact(NOT_FOUND_JSON)
    ),
    row!(
        "1.1 Accept text/html;q=0.1, application/json: json",
        "GET",
        "{L}/",
        [T_OWNER, ("Accept", "text/html;q=0.1, application/json")],
        404,
        None,
        Body::Exact(NOT_FOUND_JSON)
    ),
    row!(
        "1.2 Content-Type application/xml is 415",
        "GET",
        "{L}",
        [T_OWNER, ("Content-Type", "application/xml")],
        415,
        Some("2.1"),
        Body::Exact(r#"{"badMediaType": {"code": 415, "message": "Unsupported Content-Type"}}"#)
    ),
    row!(
        "1.2 Content-Type text/plain is fine",
        "GET",
        "{L}",
        [T_OWNER, ("Content-Type", "text/plain")],
        200,
        Some("2.1"),
        Body::Contains("instanceActions")
    ),
    row!(
        "1.2 Content-Type vnd compute json is fine",
        "GET",
        "{L}",
        [
            T_OWNER,
            ("Content-Type", "application/vnd.openstack.compute+json")
        ],
        200,
        Some("2.1"),
        Body::Contains("instanceActions")
    ),
    row!(
        "1.2 ';' separates parameters",
        "GET",
        "{L}?limit=1;foo=2",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('foo' was unexpected)"}}"#
        )
    ),
    row!(
        "1.2 '+' decodes to a space",
        "GET",
        "{L}?changes-since=2018-04-25+01:55:01",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-00000000000a""#)
    ),
    row!(
        "1.2 an invalid escape stays literal",
        "GET",
        "{L}?foo%zz=1",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('foo%zz' was unexpected)"}}"#
        )
    ),
    row!(
        "1.2 a bare key has an empty value",
        "GET",
        "{L}?marker",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Marker None could not be found."}}"#
        )
    ),
    row!(
        "1.2 non-UTF-8 query at 2.1",
        "GET",
        "{L}?a=%C3%28",
        [T_OWNER],
        400,
        Some("2.1"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Query string is not UTF-8 encoded"}}"#
        )
    ),
    row!(
        "1.2 non-UTF-8 query on show",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000004?%ff",
        [T_OWNER],
        400,
        Some("2.1"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Query string is not UTF-8 encoded"}}"#
        )
    ),
    row!(
        "1.2 a fault is JSON whatever Accept prefers",
        "GET",
        "{S}/req-missing",
        [
            T_OWNER,
            MV58,
            ("Accept", "application/vnd.openstack.compute+json")
        ],
        404,
        Some("2.58"),
        Body::Exact(
            r#"{"itemNotFound": {"code": 404, "message": "Action req-missing not found"}}"#
        )
    ),
    row!(
        "1 HEAD without Accept is a route miss with an empty HTML answer",
        "HEAD",
        "{L}",
        [T_OWNER],
        404,
        None,
        Body::Empty
    ),
    row!(
        "1.2 Accept vnd: vnd content type",
        "GET",
        "{L}?limit=0",
        [
            T_OWNER,
            MV58,
            ("Accept", "application/vnd.openstack.compute+json")
        ],
        200,
        Some("2.58"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "1.3 legacy /v2 ignores version headers",
        "GET",
        "/v2/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions?limit=1",
        [T_OWNER, LATEST],
        200,
        None,
        Body::Contains(
            r#""request_id": "req-a1000000-0000-4000-8000-000000000001", "user_id": "user-a", "project_id": "proj-a", "start_time": "2018-04-25T01:26:29.000000", "message": null}]}"#
        )
    ),
    row!(
        "1.3 legacy /v2 ignores malformed versions",
        "GET",
        "/v2/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [T_OWNER, ("OpenStack-API-Version", "compute x")],
        200,
        None,
        Body::Contains("instanceActions")
    ),
    row!(
        "1.3 legacy /v2 hides deleted servers",
        "GET",
        "/v2/servers/a0000000-0000-4000-8000-000000000002/os-instance-actions",
        [T_ADMIN],
        404,
        None,
        Body::Exact(
            r#"{"itemNotFound": {"code": 404, "message": "Instance a0000000-0000-4000-8000-000000000002 could not be found."}}"#
        )
    ),
    row!(
        "1.3 legacy /v2 still needs UTF-8",
        "GET",
        "/v2/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions?x=%ff",
        [T_OWNER],
        400,
        None,
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Query string is not UTF-8 encoded"}}"#
        )
    ),
    row!(
        "1.3 legacy project-in-URL form",
        "GET",
        "/v2/0123/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [("X-Auth-Token", "admin:0123")],
        200,
        None,
        Body::Contains("instanceActions")
    ),
];

/// §2 microversions.
const VERSIONS: &[Row] = &[
    row!(
        "2 no header is 2.1",
        "GET",
        "{L}?limit=0",
        [T_OWNER],
        200,
        Some("2.1"),
        Body::Contains("instanceActions")
    ),
    row!(
        "2 standard beats legacy",
        "GET",
        "{L}?limit=0",
        [
            T_OWNER,
            ("OpenStack-API-Version", "compute 2.60"),
            ("X-OpenStack-Nova-API-Version", "2.70")
        ],
        200,
        Some("2.60"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "2 last compute entry wins",
        "GET",
        "{L}?limit=0",
        [
            T_OWNER,
            (
                "OpenStack-API-Version",
                "compute 2.59, compute 2.61, volume 3.0"
            )
        ],
        200,
        Some("2.61"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "2 service name is case-insensitive",
        "GET",
        "{L}?limit=0",
        [T_OWNER, ("OpenStack-API-Version", "Compute 2.60")],
        200,
        Some("2.60"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "2 pieces that do not split are skipped",
        "GET",
        "{L}?limit=0",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.60, garbage")],
        200,
        Some("2.60"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "2 extra words make it malformed",
        "GET",
        "{L}",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.59 extra")],
        400,
        None,
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "API Version String 2.59 extra is of invalid format. Must be of format MajorNum.MinorNum."}}"#
        )
    ),
    row!(
        "2 legacy header: last piece",
        "GET",
        "{L}?limit=0",
        [T_OWNER, ("X-OpenStack-Nova-API-Version", "2.3, 2.60")],
        200,
        Some("2.60"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "2 legacy header present but empty",
        "GET",
        "{L}",
        [T_OWNER, ("X-OpenStack-Nova-API-Version", "")],
        400,
        None,
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "API Version String  is of invalid format. Must be of format MajorNum.MinorNum."}}"#
        )
    ),
    row!(
        "2 leading zero is malformed",
        "GET",
        "{L}",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.01")],
        400,
        None,
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "API Version String 2.01 is of invalid format. Must be of format MajorNum.MinorNum."}}"#
        )
    ),
    row!(
        "2 LATEST is malformed",
        "GET",
        "{L}",
        [T_OWNER, ("OpenStack-API-Version", "compute LATEST")],
        400,
        None,
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "API Version String LATEST is of invalid format. Must be of format MajorNum.MinorNum."}}"#
        )
    ),
    row!(
        "2 2.105 is 406 echoing it",
        "GET",
        "{L}",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.105")],
        406,
        Some("2.105"),
        Body::Exact(
            r#"{"computeFault": {"code": 406, "message": "Version 2.105 is not supported by the API. Minimum is 2.1 and maximum is 2.104."}}"#
        )
    ),
    row!(
        "2 1.5 is 406",
        "GET",
        "{L}",
        [T_OWNER, ("X-OpenStack-Nova-API-Version", "1.5")],
        406,
        Some("1.5"),
        Body::Exact(
            r#"{"computeFault": {"code": 406, "message": "Version 1.5 is not supported by the API. Minimum is 2.1 and maximum is 2.104."}}"#
        )
    ),
    row!(
        "2 the v2.1 document is versioned",
        "GET",
        "/v2.1",
        [("OpenStack-API-Version", "compute 2.42")],
        200,
        Some("2.42"),
        Body::Contains(r#""id": "v2.1""#)
    ),
    row!(
        "2 the v2.1 document can 406",
        "GET",
        "/v2.1/",
        [("OpenStack-API-Version", "compute 9.9")],
        406,
        Some("9.9"),
        Body::Contains("computeFault")
    ),
    row!(
        "2 a route miss ignores version headers",
        "GET",
        "{L}/",
        [T_OWNER, ("OpenStack-API-Version", "compute junk")],
        404,
        None,
        Body::Exact(NOT_FOUND_PLAIN)
    ),
];

/// §3 order of checks.
const ORDER: &[Row] = &[
    row!(
        "3 401 before the route",
        "GET",
        "/v2.1/no/such/route",
        [],
        401,
        None,
        Body::Contains("requires authentication")
    ),
    row!(
        "3 version before content type",
        "GET",
        "{L}",
        [
            T_OWNER,
            ("Content-Type", "application/xml"),
            ("OpenStack-API-Version", "compute x")
        ],
        400,
        None,
        Body::Contains("API Version String x")
    ),
    row!(
        "3 content type before URL project",
        "GET",
        "/v2.1/abc/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions",
        [T_ADMIN, ("Content-Type", "image/png")],
        415,
        Some("2.1"),
        Body::Contains("badMediaType")
    ),
    row!(
        "3 URL project before query validation",
        "GET",
        "/v2.1/abc/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions?foo=1",
        [T_ADMIN, MV58],
        400,
        Some("2.58"),
        Body::Contains("Malformed request URL")
    ),
    row!(
        "3 query validation before the server lookup",
        "GET",
        "/v2.1/servers/ffffffff-0000-4000-8000-00000000dead/os-instance-actions?foo=1",
        [T_ADMIN, MV58],
        400,
        Some("2.58"),
        Body::Contains("('foo' was unexpected)")
    ),
    row!(
        "3 server lookup before policy",
        "GET",
        "{L}",
        [("X-Auth-Token", "user-b:proj-b:"), LATEST],
        404,
        Some("2.104"),
        Body::Exact(A1_MISSING)
    ),
    row!(
        "3 policy before the time window check",
        "GET",
        "{L}?changes-since=2020-01-01&changes-before=2019-01-01",
        [("X-Auth-Token", "user-a:proj-a:"), LATEST],
        403,
        Some("2.104"),
        Body::Exact(
            r#"{"forbidden": {"code": 403, "message": "Policy doesn't allow os_compute_api:os-instance-actions:list to be performed."}}"#
        )
    ),
    row!(
        "3 time window before limit=0",
        "GET",
        "{L}?limit=0&changes-since=2020-01-01&changes-before=2019-01-01",
        [T_OWNER, LATEST],
        400,
        Some("2.104"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "The value of changes-since must be less than or equal to changes-before."}}"#
        )
    ),
    row!(
        "3 limit=0 before the marker",
        "GET",
        "{L}?limit=0&marker=bogus",
        [T_OWNER, LATEST],
        200,
        Some("2.104"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "3 show: policy before the action lookup",
        "GET",
        "{S}/req-nope",
        [("X-Auth-Token", "user-a:proj-a:"), LATEST],
        403,
        Some("2.104"),
        Body::Contains("os-instance-actions:show")
    ),
];

/// §4 server lookup.
const LOOKUP: &[Row] = &[
    row!(
        "4 not UUID-like",
        "GET",
        "/v2.1/servers/nope/os-instance-actions",
        [T_ADMIN],
        404,
        Some("2.1"),
        Body::Exact(
            r#"{"itemNotFound": {"code": 404, "message": "Instance nope could not be found."}}"#
        )
    ),
    row!(
        "4 upper-case UUID is not found",
        "GET",
        "/v2.1/servers/A0000000-0000-4000-8000-000000000001/os-instance-actions",
        [T_ADMIN],
        404,
        Some("2.1"),
        Body::Exact(
            r#"{"itemNotFound": {"code": 404, "message": "Instance A0000000-0000-4000-8000-000000000001 could not be found."}}"#
        )
    ),
    row!(
        "4 dash-less UUID is not found",
        "GET",
        "/v2.1/servers/a0000000000040008000000000000001/os-instance-actions",
        [T_ADMIN],
        404,
        Some("2.1"),
        Body::Exact(
            r#"{"itemNotFound": {"code": 404, "message": "Instance a0000000000040008000000000000001 could not be found."}}"#
        )
    ),
    row!(
        "4 another project's server is 404 for a reader",
        "GET",
        "{L}",
        [("X-Auth-Token", "user-b:proj-b:reader")],
        404,
        Some("2.1"),
        Body::Exact(A1_MISSING)
    ),
    row!(
        "4 an admin of any project finds it",
        "GET",
        "{L}?limit=0",
        [("X-Auth-Token", "someone:elsewhere:admin"), LATEST],
        200,
        Some("2.104"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "4 deleted at 2.20 is 404 even for admins",
        "GET",
        "/v2.1/servers/a0000000-0000-4000-8000-000000000002/os-instance-actions",
        [T_ADMIN, ("OpenStack-API-Version", "compute 2.20")],
        404,
        Some("2.20"),
        Body::Contains("a0000000-0000-4000-8000-000000000002 could not be found.")
    ),
    row!(
        "4 deleted at 2.21 is found",
        "GET",
        "/v2.1/servers/a0000000-0000-4000-8000-000000000002/os-instance-actions/req-a2000000-0000-4000-8000-000000000002",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.21")],
        200,
        Some("2.21"),
        Body::Contains(r#""action": "delete""#)
    ),
    row!(
        "4 actions are not filtered by project",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000005",
        [T_OWNER],
        200,
        Some("2.1"),
        Body::Contains(r#""user_id": "admin", "project_id": "admin""#)
    ),
];

/// §5 list: parameters, messages, limit, marker, filters, links.
const LIST: &[Row] = &[
    row!(
        "5.1 below 2.58 everything is ignored",
        "GET",
        "{L}?limit=x&marker=nope&changes-since=bad&zzz=1",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.57")],
        200,
        Some("2.57"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-000000000001""#)
    ),
    row!(
        "5.1 changes-before unknown below 2.66",
        "GET",
        "{L}?changes-before=2020-01-01",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.65")],
        400,
        Some("2.65"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('changes-before' was unexpected)"}}"#
        )
    ),
    row!(
        "5.1 limit=+1 is ' 1'",
        "GET",
        "{L}?limit=+1",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input for query parameters limit. Value:  1. ' 1' does not match '^[0-9]*$'"}}"#
        )
    ),
    row!(
        "5.1 limit= is empty",
        "GET",
        "{L}?limit=",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input for query parameters limit. Value: . '' should be non-empty"}}"#
        )
    ),
    row!(
        "5.1 limit with a quote reprs with double quotes",
        "GET",
        "{L}?limit=it's",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input for query parameters limit. Value: it's. \"it's\" does not match '^[0-9]*$'"}}"#
        )
    ),
    row!(
        "5.1 limit with a tab escapes it",
        "GET",
        "{L}?limit=1%092",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input for query parameters limit. Value: 1\t2. '1\\t2' does not match '^[0-9]*$'"}}"#
        )
    ),
    row!(
        "5.1 limit=1%0A is accepted",
        "GET",
        "{L}?limit=1%0A",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains("limit=1%0A&marker=req-a1000000-0000-4000-8000-00000000000a")
    ),
    row!(
        "5.1 limit=%0A fails Nova's int()",
        "GET",
        "{L}?limit=%0A",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input received: limit must be an integer"}}"#
        )
    ),
    row!(
        "5.1 leading zeros are fine and repeated in links",
        "GET",
        "{L}?limit=01",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains("?limit=01&marker=")
    ),
    row!(
        "5.1 marker repeated is too long",
        "GET",
        "{L}?marker=a&marker=b",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input for query parameters marker. Value: ['a', 'b']. ['a', 'b'] is too long"}}"#
        )
    ),
    row!(
        "5.1 limit is checked before marker",
        "GET",
        "{L}?marker=a&marker=b&limit=x",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("parameters limit")
    ),
    row!(
        "5.1 marker before changes-since",
        "GET",
        "{L}?changes-since=x&marker=a&marker=b",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("parameters marker")
    ),
    row!(
        "5.1 changes-since before changes-before",
        "GET",
        "{L}?changes-before=x&changes-since=y",
        [T_OWNER, MV66],
        400,
        Some("2.66"),
        Body::Contains("parameters changes-since. Value: y.")
    ),
    row!(
        "5.1 known parameters before unknown ones",
        "GET",
        "{L}?aaa=1&changes-before=x",
        [T_OWNER, MV66],
        400,
        Some("2.66"),
        Body::Contains("parameters changes-before")
    ),
    row!(
        "5.1 unknown names sorted, each once, 'were'",
        "GET",
        "{L}?zzz=1&foo=1&aaa=1&foo=2",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('aaa', 'foo', 'zzz' were unexpected)"}}"#
        )
    ),
    row!(
        "5.1 names are case-sensitive",
        "GET",
        "{L}?Limit=1",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('Limit' was unexpected)"}}"#
        )
    ),
    row!(
        "5.1 control characters in names are escaped",
        "GET",
        "{L}?a%0Ab=1",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('a\\nb' was unexpected)"}}"#
        )
    ),
    row!(
        "5.1 an empty marker is not found",
        "GET",
        "{L}?marker=",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Marker None could not be found."}}"#
        )
    ),
    row!(
        "5.2 exactly full page gets a link",
        "GET",
        "{L}?limit=10",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(
            r#""links": [{"rel": "next", "href": "http://{host}/v2.1/servers/a0000000-0000-4000-8000-000000000001/os-instance-actions?limit=10&marker=req-a1000000-0000-4000-8000-000000000001"}]"#
        )
    ),
    row!(
        "5.2 marker past the end: empty page, no links",
        "GET",
        "{L}?limit=3&marker=req-a1000000-0000-4000-8000-000000000001",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Exact(EMPTY_LIST)
    ),
    row!(
        "5.2 marker of another server",
        "GET",
        "{L}?marker=req-a2000000-0000-4000-8000-000000000001",
        [T_ADMIN, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Marker None could not be found."}}"#
        )
    ),
    row!(
        "5.2 a short page has no links",
        "GET",
        "{L}?limit=20",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#""updated_at": "2018-04-25T01:26:36.000000"}]}"#)
    ),
    row!(
        "5.3 changes-since is inclusive",
        "GET",
        "{L}?changes-since=2018-04-25T01:55:01Z",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Exact(
            r#"{"instanceActions": [{"action": "start", "instance_uuid": "a0000000-0000-4000-8000-000000000001", "request_id": "req-a1000000-0000-4000-8000-00000000000a", "user_id": "user-a", "project_id": "proj-a", "start_time": "2018-04-25T01:55:00.000000", "message": null, "updated_at": "2018-04-25T01:55:01.000000"}]}"#
        )
    ),
    row!(
        "5.3 changes-before is inclusive",
        "GET",
        "{L}?changes-before=2018-04-25T01:26:36Z",
        [T_OWNER, MV66],
        200,
        Some("2.66"),
        Body::Exact(
            r#"{"instanceActions": [{"action": "create", "instance_uuid": "a0000000-0000-4000-8000-000000000001", "request_id": "req-a1000000-0000-4000-8000-000000000001", "user_id": "user-a", "project_id": "proj-a", "start_time": "2018-04-25T01:26:29.000000", "message": null, "updated_at": "2018-04-25T01:26:36.000000"}]}"#
        )
    ),
    row!(
        "5.3 equal instants with different offsets pass",
        "GET",
        "{L}?changes-since=2018-04-25T02:26:36%2B01:00&changes-before=2018-04-25T01:26:36Z",
        [T_OWNER, MV66],
        200,
        Some("2.66"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-000000000001""#)
    ),
    row!(
        "5.3 filters combine with the marker",
        "GET",
        "{L}?marker=req-a1000000-0000-4000-8000-000000000008&changes-since=2018-04-25T01:45:00Z",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#"[{"action": "pause""#)
    ),
];

/// §6 show, §7 dates, §8 version documents, §9 faults.
const SHOW_AND_REST: &[Row] = &[
    row!(
        "6 bare ? is fine at 2.102",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000004?",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.102")],
        200,
        Some("2.102"),
        Body::Contains(r#""action": "resize""#)
    ),
    row!(
        "6 several unknown show parameters",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000004?b=1&a=1",
        [T_OWNER, LATEST],
        400,
        Some("2.104"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Additional properties are not allowed ('a', 'b' were unexpected)"}}"#
        )
    ),
    row!(
        "6 show ignores queries at 2.101",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000004?b=1",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.101")],
        200,
        Some("2.101"),
        Body::Contains(r#""action": "resize""#)
    ),
    row!(
        "6 owner at 2.51 sees events without traceback",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000007",
        [T_OWNER, ("OpenStack-API-Version", "compute 2.51")],
        200,
        Some("2.51"),
        Body::Exact(
            r#"{"instanceAction": {"action": "pause", "instance_uuid": "a0000000-0000-4000-8000-000000000001", "request_id": "req-a1000000-0000-4000-8000-000000000007", "user_id": "user-a", "project_id": "proj-a", "start_time": "2018-04-25T01:45:00.000000", "message": null, "events": [{"event": "compute_pause_instance", "start_time": "2018-04-25T01:45:00.000000", "finish_time": "2018-04-25T01:45:02.000000", "result": "Success"}]}}"#
        )
    ),
    row!(
        "6 admin at 2.101 has no details",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000007",
        [T_ADMIN, ("OpenStack-API-Version", "compute 2.101")],
        200,
        Some("2.101"),
        Body::Contains(r#""host": "compute-1", "hostId": "#)
    ),
    row!(
        "6 owner with only reader at 2.84: hostId, no details",
        "GET",
        "{S}/req-a1000000-0000-4000-8000-000000000007",
        [
            ("X-Auth-Token", "user-a:proj-a:reader"),
            ("OpenStack-API-Version", "compute 2.84")
        ],
        200,
        Some("2.84"),
        Body::Contains(r#""result": "Success", "hostId": ""#)
    ),
    row!(
        "7 date only",
        "GET",
        "{L}?changes-since=2018-04-25",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-000000000001""#)
    ),
    row!(
        "7 trailing newline accepted",
        "GET",
        "{L}?changes-since=2018-04-25T01:55:01%0A",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-00000000000a""#)
    ),
    row!(
        "7 comma fraction",
        "GET",
        "{L}?changes-since=2018-04-25T01:55:00,9999999",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-00000000000a""#)
    ),
    row!(
        "7 compact basic form",
        "GET",
        "{L}?changes-since=20180425T015501",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(r#""request_id": "req-a1000000-0000-4000-8000-00000000000a""#)
    ),
    row!(
        "7 YYYYMM rejected",
        "GET",
        "{L}?changes-since=201804",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Exact(
            r#"{"badRequest": {"code": 400, "message": "Invalid input for query parameters changes-since. Value: 201804. '201804' is not a 'date-time'"}}"#
        )
    ),
    row!(
        "7 lowercase t rejected",
        "GET",
        "{L}?changes-since=2018-04-25t01:00",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("is not a 'date-time'")
    ),
    row!(
        "7 lowercase z rejected",
        "GET",
        "{L}?changes-since=2018-04-25T01:00:00z",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("is not a 'date-time'")
    ),
    row!(
        "7 hour 24 rejected",
        "GET",
        "{L}?changes-since=2018-04-25T24:00",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("is not a 'date-time'")
    ),
    row!(
        "7 second 60 rejected",
        "GET",
        "{L}?changes-since=2018-04-25T01:00:60",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("is not a 'date-time'")
    ),
    row!(
        "7 February 30 rejected",
        "GET",
        "{L}?changes-since=2018-02-30",
        [T_OWNER, MV58],
        400,
        Some("2.58"),
        Body::Contains("is not a 'date-time'")
    ),
    row!(
        "7 month 13 rejected",
        "GET",
        "{L}?changes-before=2018-13-01",
        [T_OWNER, MV66],
        400,
        Some("2.66"),
        Body::Contains("is not a 'date-time'")
    ),
    row!(
        "7 offset forms",
        "GET",
        "{L}?changes-since=2018-04-24T20:55:01-0500",
        [T_OWNER, MV58],
        200,
        Some("2.58"),
        Body::Contains(
            r#"[{"action": "start", "instance_uuid": "a0000000-0000-4000-8000-000000000001", "request_id": "req-a1000000-0000-4000-8000-00000000000a""#
        )
    ),
    row!(
        "8 the v2 document",
        "GET",
        "/v2/",
        [],
        200,
        None,
        Body::Exact(
            r#"{"version": {"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "", "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": "http://{host}/v2/"}, {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}], "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]}}"#
        )
    ),
    row!(
        "8 unknown top-level paths: 300 choices",
        "GET",
        "/compute/x/",
        [],
        300,
        None,
        Body::Exact(
            r#"{"choices": [{"id": "v2.0", "status": "DEPRECATED", "links": [{"rel": "self", "href": "http://{host}/v2/compute/x"}], "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]}, {"id": "v2.1", "status": "CURRENT", "links": [{"rel": "self", "href": "http://{host}/v2.1/compute/x"}], "media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]}]}"#
        )
    ),
];

fn expand(text: &str, host: &str) -> String {
    text.replace("{L}", &format!("/v2.1/servers/{A1}/os-instance-actions"))
        .replace("{S}", &format!("/v2.1/servers/{A1}/os-instance-actions"))
        .replace("{host}", host)
}

fn check(row: &Row, got: &Response, host: &str) -> Vec<String> {
    let mut diffs = Vec::new();
    if got.status != row.status {
        diffs.push(format!("status {} (want {})", got.status, row.status));
    }
    let text = got.text();
    match row.body {
        Body::Exact(want) if text != expand(want, host) => diffs.push(format!("body {text}")),
        Body::Contains(want) if !text.contains(&expand(want, host)) => {
            diffs.push(format!("body lacks {want}: {text}"));
        }
        Body::Empty if !got.body.is_empty() => diffs.push(format!("body not empty: {text}")),
        _ => {}
    }
    if let Some(want) = content_type_of(row, &text) {
        let ct = got.header("Content-Type");
        if ct != Some(want) {
            diffs.push(format!("Content-Type {ct:?} (want {want:?})"));
        }
    }
    let version = got.header("X-OpenStack-Nova-API-Version");
    if version != row.version {
        diffs.push(format!(
            "version header {version:?} (want {:?})",
            row.version
        ));
    }
    let standard = got.header("OpenStack-API-Version").map(str::to_string);
    if standard != row.version.map(|v| format!("compute {v}")) {
        diffs.push(format!("OpenStack-API-Version {standard:?}"));
    }
    let vary = got.all("Vary");
    let want_vary: &[&str] = if row.version.is_some() {
        &["OpenStack-API-Version", "X-OpenStack-Nova-API-Version"]
    } else {
        &[]
    };
    if vary != want_vary {
        diffs.push(format!("Vary {vary:?}"));
    }
    diffs
}

/// What Nova's `Content-Type` is for the answers whose type is fixed: a fault is JSON whatever
/// `Accept` says, a route miss's type follows its body, and a HEAD's miss is webob's HTML.
fn content_type_of(row: &Row, text: &str) -> Option<&'static str> {
    let fault = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .is_some_and(|o| o.len() == 1 && o.values().all(|f| f.get("code").is_some()));
    match row.body {
        _ if fault => Some("application/json; charset=UTF-8"),
        Body::Exact(NOT_FOUND_PLAIN) => Some("text/plain; charset=UTF-8"),
        Body::Exact(NOT_FOUND_HTML) => Some("text/html; charset=UTF-8"),
        Body::Exact(NOT_FOUND_JSON) => Some("application/json"),
        Body::Empty if row.status == 404 => Some("text/html; charset=UTF-8"),
        _ => None,
    }
}

fn run(rows: &[Row]) {
    let server = fixture_server();
    let host = server.host();
    let mut failures = Vec::new();
    for row in rows {
        let got = server.send(row.method, &expand(row.path, &host), row.headers, b"");
        let diffs = check(row, &got, &host);
        if !diffs.is_empty() {
            failures.push(format!("[{}] {}", row.name, diffs.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows fail:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn section_1_routing() {
    run(ROUTING);
}

#[test]
fn section_2_microversions() {
    run(VERSIONS);
}

#[test]
fn section_3_order_of_checks() {
    run(ORDER);
}

#[test]
fn section_4_server_lookup() {
    run(LOOKUP);
}

#[test]
fn section_5_list() {
    run(LIST);
}

#[test]
fn sections_6_to_10_show_dates_documents_faults() {
    run(SHOW_AND_REST);
}

/// §6: a null or empty host gives `"hostId": ""`; the action's project (or the server's when
/// the action has none) salts the hash.
#[test]
fn host_ids_fall_back_and_blank_out() {
    let s = TestServer::start();
    let line = r#"{"uuid":"f2000000-0000-4000-8000-000000000001","project_id":"6f70656e737461636b20342065766572","actions":[{"request_id":"req-1","action":"a","user_id":null,"project_id":"","start_time":"2020-01-01T00:00:00","events":[{"event":"e1","start_time":"2020-01-01T00:00:01","host":"compute"},{"event":"e2","start_time":"2020-01-01T00:00:02","host":null},{"event":"e3","start_time":"2020-01-01T00:00:03","host":""}]}]}"#;
    assert_eq!(s.import(line.as_bytes()).status, 200);
    let r = s.get(
        "/v2.1/servers/f2000000-0000-4000-8000-000000000001/os-instance-actions/req-1",
        ADMIN,
        "2.84",
    );
    let body = r.json();
    let events = body["instanceAction"]["events"].as_array().unwrap();
    assert_eq!(events[0]["event"], "e3");
    assert_eq!(events[0]["hostId"], "");
    assert_eq!(events[0]["host"], "");
    assert_eq!(events[1]["hostId"], "");
    assert_eq!(events[1]["host"], serde_json::Value::Null);
    assert_eq!(
        events[2]["hostId"],
        "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6"
    );
}

/// §5.3: an action whose `updated_at` is null never matches a time filter.
#[test]
fn null_updated_at_never_matches_a_filter() {
    let s = TestServer::start();
    let line = r#"{"uuid":"f3000000-0000-4000-8000-000000000001","project_id":"p","actions":[{"request_id":"req-null","action":"a","start_time":"2020-01-01T00:00:00","updated_at":null},{"request_id":"req-set","action":"a","start_time":"2020-01-01T00:00:00"}]}"#;
    assert_eq!(s.import(line.as_bytes()).status, 200);
    let path = "/v2.1/servers/f3000000-0000-4000-8000-000000000001/os-instance-actions";
    let all = s.get(path, ADMIN, "2.84").text();
    assert!(all.contains(r#""request_id": "req-null", "user_id": null, "project_id": null, "start_time": "2020-01-01T00:00:00.000000", "message": null, "updated_at": null"#), "{all}");
    for q in ["?changes-since=1900-01-01", "?changes-before=2100-01-01"] {
        let text = s.get(&format!("{path}{q}"), ADMIN, "2.84").text();
        assert!(
            text.contains("req-set") && !text.contains("req-null"),
            "{q}: {text}"
        );
    }
}

/// §5.4: a non-ASCII marker is UTF-8 percent-encoded in the next link.
#[test]
fn links_encode_non_ascii_markers() {
    let s = TestServer::start();
    let line = r#"{"uuid":"f4000000-0000-4000-8000-000000000001","project_id":"p","actions":[{"request_id":"req-é /+:","action":"a","start_time":"2020-01-01T00:00:00"},{"request_id":"req-0","action":"a","start_time":"2019-01-01T00:00:00"}]}"#;
    assert_eq!(s.import(line.as_bytes()).status, 200);
    let r = s.get(
        "/v2.1/servers/f4000000-0000-4000-8000-000000000001/os-instance-actions?limit=1",
        ADMIN,
        "2.84",
    );
    let href = r.json()["links"][0]["href"].as_str().unwrap().to_string();
    assert!(
        href.ends_with("?limit=1&marker=req-%C3%A9+%2F%2B%3A"),
        "{href}"
    );
    // Following it works: the marker decodes back to the stored id.
    let next = href.split_once(&s.host()).unwrap().1.to_string();
    let page = s.get(&next, ADMIN, "2.84").json();
    assert_eq!(page["instanceActions"][0]["request_id"], "req-0");
}

/// §9: an unexpected failure is a 500 computeFault that says nothing about the cause.
#[test]
fn an_internal_failure_leaks_nothing() {
    let dir = crate::common::TempDir::new();
    let store = dir.0.join("store");
    let secret = b"\x01not bincode at all, secret-detail";
    let s = match crate::backend::postgres_url() {
        // The same damage on the other backend: a record that does not decode.
        Some(url) => {
            let s = TestServer::with_config(|c| c.storage.data_dir = store.clone());
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            crate::backend::sql(
                &crate::backend::database_for(url, &store),
                &format!(
                    "INSERT INTO servers (instance_uuid, record, project_id, created_key, seq) \
                     VALUES ('f5000000-0000-4000-8000-000000000001', '\\x{hex}', 'p', 0, 0)"
                ),
            )
            .unwrap();
            s
        }
        None => {
            let db = sled::open(&store).unwrap();
            db.insert("format", &[3u8]).unwrap();
            let servers = db.open_tree("servers").unwrap();
            let id = uuid::Uuid::parse_str("f5000000-0000-4000-8000-000000000001").unwrap();
            servers.insert(id.as_bytes(), &secret[..]).unwrap();
            db.flush().unwrap();
            drop((servers, db));
            TestServer::with_config(|c| c.storage.data_dir = store.clone())
        }
    };
    let r = s.get(
        "/v2.1/servers/f5000000-0000-4000-8000-000000000001/os-instance-actions",
        ADMIN,
        "2.84",
    );
    assert_eq!(r.status, 500);
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(r.header("X-OpenStack-Nova-API-Version"), Some("2.84"));
    let text = r.text();
    assert!(
        text.starts_with(r#"{"computeFault": {"code": 500, "message": "Unexpected API Error."#),
        "{text}"
    );
    for leak in ["secret", "bincode", "corrupt", "sled", "store"] {
        assert!(!text.to_lowercase().contains(leak), "{leak} leaked: {text}");
    }
    crate::common::assert_request_ids(&r);
}
