//! Endpoints for operators, outside Nova's URL space and without authentication:
//! `/healthcheck` (as OpenStack services answer it), `/metrics` (Prometheus) and
//! `/openapi.json` (this service's OpenAPI description).

use actix_web::HttpResponse;
use actix_web::http::Method;

use super::call::Call;
use super::reply::{JSON, Reply};
use crate::metrics::Gauges;
use crate::store::Store;

fn readable(call: &Call<'_>) -> bool {
    call.method == Method::GET || call.method == Method::HEAD
}

/// 200 `OK` while the store answers, 503 otherwise (oslo.middleware's healthcheck shape).
pub async fn healthcheck(call: &Call<'_>) -> HttpResponse {
    call.route.set("healthcheck");
    if !readable(call) {
        return call.route_miss();
    }
    match call.state.store.run(Store::check).await {
        Ok(()) => Reply::new(200, Some("text/plain; charset=UTF-8"), b"OK".to_vec()).finish(),
        Err(e) => {
            log::error!("health check failed: {e}");
            Reply::new(503, Some("text/plain; charset=UTF-8"), b"FAILED".to_vec()).finish()
        }
    }
}

pub async fn metrics(call: &Call<'_>) -> HttpResponse {
    call.route.set("metrics");
    if !readable(call) {
        return call.route_miss();
    }
    let read = call.state.store.run(|s| {
        let bytes = s.size_on_disk().unwrap_or(0);
        let watermark = s.meta(crate::sync::WATERMARK).ok().flatten();
        Ok((
            bytes,
            s.purges_pending().unwrap_or(0),
            s.flush_times(),
            watermark,
        ))
    });
    let (store_bytes, purges_pending, flush, watermark) = read.await.unwrap_or_default();
    let gauges = Gauges {
        store_bytes,
        purges_pending,
        flush,
        caches: call
            .state
            .auth
            .cache_stats()
            .map(|(h, m)| ("keystone_tokens", h, m))
            .into_iter()
            .collect(),
    };
    let mut text = call.state.metrics.render(&gauges);
    let watermark = watermark.and_then(|w| w.parse().ok());
    crate::sync::status::render_watermark(&mut text, watermark, crate::timeutil::now_micros());
    if let Some(sync) = &call.state.sync {
        sync.snapshot().render(&mut text);
    }
    if let Some(faults) = &call.state.testing.faults {
        faults.render_metrics(&mut text);
    }
    let body = text.into_bytes();
    Reply::new(200, Some("text/plain; version=0.0.4; charset=utf-8"), body).finish()
}

/// The OpenAPI document built into the binary, byte for byte.
pub fn openapi(call: &Call<'_>) -> HttpResponse {
    call.route.set("openapi");
    if !readable(call) {
        return call.route_miss();
    }
    Reply::new(200, Some(JSON), super::OPENAPI.as_bytes().to_vec()).finish()
}
