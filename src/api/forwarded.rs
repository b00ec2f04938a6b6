//! Where the caller reached us, for the links we answer with. Like Nova, the request's own
//! `Host` and scheme by default; proxy headers only when `[api] enable_proxy_headers_parsing`
//! says a trusted proxy sets them, read as oslo.middleware's `HTTPProxyToWSGI` reads them.
//! A client that could set them unchecked could point everyone's links anywhere.

use actix_web::http::header::HeaderMap;

/// Scheme, host and path prefix of the service as the caller sees it (`http://host[/prefix]`).
pub fn base_url(headers: &HeaderMap, parse_proxy_headers: bool, fallback_host: &str) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
    };
    let mut scheme = "http".to_string();
    let mut host = header("host").unwrap_or(fallback_host).to_string();
    let mut prefix = String::new();
    if parse_proxy_headers {
        if let Some(forwarded) = header("forwarded") {
            // RFC 7239: the first element is what the client sent to the first proxy.
            if let Some(first) = elements(forwarded).into_iter().next() {
                if let Some(proto) = pair(&first, "proto") {
                    scheme = proto;
                }
                if let Some(h) = pair(&first, "host") {
                    host = h;
                }
            }
        } else {
            if let Some(proto) = header("x-forwarded-proto") {
                scheme = proto.to_string();
            }
            if let Some(h) = header("x-forwarded-host") {
                host = h.to_string();
            }
        }
        if let Some(p) = header("x-forwarded-prefix") {
            prefix = p.to_string();
        }
    }
    format!("{scheme}://{host}{prefix}")
}

/// `Forwarded`'s elements as (lower-cased name, value) pairs, values as written (oslo does not
/// unquote them either); elements without any pair are skipped.
fn elements(header: &str) -> Vec<Vec<(String, String)>> {
    header
        .split(',')
        .map(|element| {
            element
                .split(';')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect::<Vec<_>>()
        })
        .filter(|pairs| !pairs.is_empty())
        .collect()
}

fn pair(element: &[(String, String)], name: &str) -> Option<String> {
    element
        .iter()
        .rev()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::header_map as headers;

    const SPOOFED: &[(&str, &str)] = &[
        ("host", "api.example:8774"),
        ("x-forwarded-proto", "gopher"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-prefix", "/x"),
        ("forwarded", "proto=https;host=other.example"),
    ];

    #[test]
    fn proxy_headers_are_ignored_unless_enabled() {
        assert_eq!(
            base_url(&headers(SPOOFED), false, "127.0.0.1:8774"),
            "http://api.example:8774"
        );
        assert_eq!(
            base_url(&headers(&[]), false, "127.0.0.1:8774"),
            "http://127.0.0.1:8774"
        );
    }

    #[test]
    fn forwarded_wins_over_the_x_headers_and_its_first_element_counts() {
        let h = headers(&[
            ("host", "internal:8774"),
            ("x-forwarded-proto", "http"),
            (
                "forwarded",
                "for=1.2.3.4; Proto=https; host=compute.example, proto=http;host=hop",
            ),
            ("x-forwarded-prefix", "/compute"),
        ]);
        assert_eq!(base_url(&h, true, ""), "https://compute.example/compute");
    }

    #[test]
    fn the_x_headers_serve_without_forwarded() {
        let h = headers(&[
            ("host", "internal:8774"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "compute.example"),
        ]);
        assert_eq!(base_url(&h, true, ""), "https://compute.example");
        let only_proto = headers(&[("host", "internal:8774"), ("x-forwarded-proto", "https")]);
        assert_eq!(base_url(&only_proto, true, ""), "https://internal:8774");
    }
}
