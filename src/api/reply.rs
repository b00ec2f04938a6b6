//! Building responses: Nova's headers, fault bodies, and the framework's own 404 and 401.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use futures_core::Stream;

use super::version::Version;
use crate::json::Obj;

pub const JSON: &str = "application/json";
pub const COMPUTE_JSON: &str = "application/vnd.openstack.compute+json";

/// What the version headers of a response say: the negotiated version, or for a 406 the
/// rejected one.
#[derive(Debug, Clone)]
pub struct VersionHeaders(pub String);

impl From<Version> for VersionHeaders {
    fn from(v: Version) -> Self {
        VersionHeaders(v.text())
    }
}

/// A response under construction.
pub struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
    /// The rest of the body, after `body`, for answers too long to buffer.
    rest: Option<BodyStream>,
    version: Option<VersionHeaders>,
    request_id: Option<String>,
    extra: Vec<(&'static str, String)>,
    /// Close the connection after this answer, unread body and all.
    close: bool,
}

impl Reply {
    pub fn new(status: u16, content_type: Option<&str>, body: Vec<u8>) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type: content_type.map(str::to_string),
            body,
            rest: None,
            version: None,
            request_id: None,
            extra: Vec::new(),
            close: false,
        }
    }

    pub fn json(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
        Reply::new(status, Some(content_type), body)
    }

    pub fn streaming(
        mut self,
        rest: impl Stream<Item = Result<Bytes, actix_web::Error>> + 'static,
    ) -> Reply {
        self.rest = Some(Box::pin(rest));
        self
    }

    pub fn versioned(mut self, v: impl Into<VersionHeaders>) -> Reply {
        self.version = Some(v.into());
        self
    }

    pub fn versioned_opt(mut self, v: Option<VersionHeaders>) -> Reply {
        self.version = v;
        self
    }

    pub fn request_id(mut self, id: &str) -> Reply {
        self.request_id = Some(id.to_string());
        self
    }

    pub fn header(mut self, name: &'static str, value: String) -> Reply {
        self.extra.push((name, value));
        self
    }

    /// Closes the connection after this answer instead of reading the rest of the request.
    pub fn closing(mut self) -> Reply {
        self.close = true;
        self
    }

    pub fn finish(self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if self.close {
            builder.force_close();
        }
        if let Some(ct) = &self.content_type {
            builder.insert_header(("Content-Type", ct.as_str()));
        }
        if let Some(VersionHeaders(v)) = &self.version {
            builder.insert_header(("OpenStack-API-Version", format!("compute {v}")));
            builder.insert_header(("X-OpenStack-Nova-API-Version", v.as_str()));
            builder.append_header(("Vary", "OpenStack-API-Version"));
            builder.append_header(("Vary", "X-OpenStack-Nova-API-Version"));
        }
        if let Some(id) = &self.request_id {
            builder.insert_header(("x-openstack-request-id", id.as_str()));
            builder.insert_header(("x-compute-request-id", id.as_str()));
        }
        for (name, value) in self.extra {
            builder.append_header((name, value));
        }
        match self.rest {
            None => builder.body(self.body),
            Some(rest) => {
                let head = Some(Bytes::from(self.body));
                builder.streaming(Chain { head, rest })
            }
        }
    }
}

/// A response that closes its connection keeps the request's payload alive until it is sent:
/// actix reads a dropped chunked payload to its end before closing (however long the client
/// goes on sending), but closes at once on one still held.
pub fn hang_up_unread(response: HttpResponse, payload: actix_web::web::Payload) -> HttpResponse {
    use actix_web::http::ConnectionType;
    if response.head().connection_type() != ConnectionType::Close {
        return response;
    }
    response.map_body(|_, body| {
        actix_web::body::BoxBody::new(Holding {
            body,
            _payload: payload,
        })
    })
}

struct Holding {
    body: actix_web::body::BoxBody,
    _payload: actix_web::web::Payload,
}

impl actix_web::body::MessageBody for Holding {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// `req-<uuid4>`, from a per-thread generator seeded once from the OS: a uuid4 per request
/// from the OS would cost a getrandom system call each.
pub fn new_request_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<(u64, u64)> = Cell::new({
            let seed = uuid::Uuid::new_v4().as_u64_pair();
            (seed.0 | 1, seed.1 | 1)
        });
    }
    let bytes = STATE.with(|s| {
        // xorshift128+: fast, and unpredictable enough for ids that only need to be unique.
        let next = |(mut a, b): (u64, u64)| {
            a ^= a << 23;
            let t = a ^ b ^ (a >> 17) ^ (b >> 26);
            ((b, t), t.wrapping_add(b))
        };
        let (state, hi) = next(s.get());
        let (state, lo) = next(state);
        s.set(state);
        (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes()
    });
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut text = String::with_capacity(40);
    text.push_str("req-");
    text.push_str(
        id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
    text
}

/// Nova's fault names by status; every other code is a `computeFault`.
pub fn fault_name(code: u16) -> &'static str {
    match code {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

/// `{"<name>": {"code": N, "message": "..."}}`, always `application/json`: Nova's fault
/// wrapper sets it whatever `Accept` asked for.
pub fn fault(code: u16, message: &str) -> Reply {
    let mut body = Vec::with_capacity(64 + message.len());
    let mut outer = Obj::begin(&mut body);
    let mut inner = Obj::begin(outer.key(fault_name(code)));
    inner.int("code", code.into()).str("message", message);
    inner.end();
    outer.end();
    Reply::json(code, "application/json; charset=UTF-8", body)
}

/// keystonemiddleware's 401: not a Nova fault, no version headers.
pub fn unauthorized(message: &str, www_authenticate_uri: &str) -> Reply {
    let mut body = Vec::with_capacity(128);
    let mut outer = Obj::begin(&mut body);
    let mut inner = Obj::begin(outer.key("error"));
    inner
        .int("code", 401)
        .str("title", "Unauthorized")
        .str("message", message);
    inner.end();
    outer.end();
    Reply::json(401, "application/json; charset=UTF-8", body).header(
        "WWW-Authenticate",
        format!("Keystone uri=\"{www_authenticate_uri}\""),
    )
}

/// The router's own 404 (webob's HTTPNotFound), whose body follows `Accept`; a HEAD gets
/// webob's HTML type and no body.
pub fn route_miss(head: bool, accept: Option<&str>) -> Reply {
    if head {
        return Reply::new(404, Some("text/html; charset=UTF-8"), Vec::new());
    }
    match super::accept::best(accept.unwrap_or(""), &["text/html", JSON]) {
        Some(0) => Reply::new(
            404,
            Some("text/html; charset=UTF-8"),
            b"<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\n\n\n\n </body>\n</html>".to_vec(),
        ),
        Some(_) => Reply::json(
            404,
            JSON,
            br#"{"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#.to_vec(),
        ),
        None => Reply::new(
            404,
            Some("text/plain; charset=UTF-8"),
            b"404 Not Found\n\nThe resource could not be found.\n\n   ".to_vec(),
        ),
    }
}

type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, actix_web::Error>>>>;

/// The buffered start of a body followed by the stream of the rest.
struct Chain {
    head: Option<Bytes>,
    rest: BodyStream,
}

impl Stream for Chain {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(head)));
        }
        self.rest.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_lowercase_uuid4() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(50) {
            let uuid = uuid::Uuid::parse_str(id.strip_prefix("req-").unwrap()).unwrap();
            assert_eq!(uuid.get_version_num(), 4);
            assert_eq!(&id[4..], uuid.hyphenated().to_string());
        }
    }

    #[test]
    fn fault_names_by_status() {
        assert_eq!(fault_name(404), "itemNotFound");
        assert_eq!(fault_name(413), "overLimit");
        assert_eq!(fault_name(429), "overLimit");
        assert_eq!(fault_name(406), "computeFault");
        assert_eq!(fault_name(500), "computeFault");
        let r = fault(409, "x");
        assert_eq!(
            r.body,
            br#"{"conflictingRequest": {"code": 409, "message": "x"}}"#
        );
    }
}
