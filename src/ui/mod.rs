//! The action-log page at `/ui/`: a few static files built into the binary (no CDN, nothing
//! fetched at run time) that read the public API with the user's own token, so the page shows
//! exactly what policy lets that user see. The page itself needs no token.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use actix_web::http::Method;

use crate::api::Call;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &[u8] = include_bytes!("assets/app.js");
const APP_CSS: &[u8] = include_bytes!("assets/app.css");

/// No inline script or style, no eval, data only from this origin; the favicon is `data:`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Hashed names may be cached for ever: a new build names its assets anew.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// 64-bit FNV-1a: stable across Rust releases (unlike `DefaultHasher`) and a few lines long,
/// which is all a cache-busting name needs.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

struct Assets {
    js_name: String,
    css_name: String,
    index: String,
}

/// Computed once from the embedded bytes, on the first request for the page.
static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let js_name = format!("app.{:016x}.js", fnv1a(APP_JS));
    let css_name = format!("app.{:016x}.css", fnv1a(APP_CSS));
    let index = INDEX
        .replace("{{app.js}}", &js_name)
        .replace("{{app.css}}", &css_name)
        .replace("{{compute_version}}", &crate::api::version::MAX.text());
    Assets {
        js_name,
        css_name,
        index,
    }
});

/// The files of the page's first load, as served: the figure the page-weight test checks.
pub fn first_load_bytes() -> usize {
    ASSETS.index.len() + APP_JS.len() + APP_CSS.len()
}

/// `path` is `/ui` or starts with `/ui/`. Anything else under it, and the whole page when
/// `[ui] enabled = false`, is the router's 404 that every unknown route gets.
pub fn answer(call: &Call<'_>, path: &str) -> HttpResponse {
    call.route.set("ui");
    let readable = call.method == Method::GET || call.method == Method::HEAD;
    if !call.state.config.ui.enabled || !readable {
        return call.route_miss();
    }
    let assets: &'static Assets = &ASSETS;
    let file = |content_type: &str, cache: &str, body: &'static [u8]| {
        let mut response = HttpResponse::Ok();
        security_headers(&mut response);
        response
            .insert_header(("Content-Type", content_type))
            .insert_header(("Cache-Control", cache));
        response.body(body)
    };
    match path.strip_prefix("/ui") {
        // Relative, so that it also works under a proxy's path prefix.
        Some("") => {
            let mut response = HttpResponse::MovedPermanently();
            security_headers(&mut response);
            response.insert_header(("Location", "ui/")).finish()
        }
        Some("/") => file(
            "text/html; charset=utf-8",
            "no-cache",
            assets.index.as_bytes(),
        ),
        Some(rest) => match rest.strip_prefix("/assets/") {
            Some(name) if name == assets.js_name => {
                file("text/javascript; charset=utf-8", IMMUTABLE, APP_JS)
            }
            Some(name) if name == assets.css_name => {
                file("text/css; charset=utf-8", IMMUTABLE, APP_CSS)
            }
            _ => call.route_miss(),
        },
        None => call.route_miss(),
    }
}

fn security_headers(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Content-Type-Options", "nosniff"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_index_names_the_hashed_assets_and_the_newest_microversion() {
        let index = &ASSETS.index;
        assert!(index.contains(&format!("assets/{}", ASSETS.js_name)));
        assert!(index.contains(&format!("assets/{}", ASSETS.css_name)));
        assert!(index.contains(&crate::api::version::MAX.text()));
        assert!(!index.contains("{{"), "every placeholder is filled");
    }
}
