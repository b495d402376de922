//! Operations endpoints: `/readyz`, `/metrics`, and test-only fault injection.

use std::sync::atomic::Ordering;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::error::ApiError;
use crate::http::Ctx;
use crate::http::response::{Resp, full, json};

/// 200 when the catalog answers, storage is reachable and the server is not draining.
pub fn readyz(ctx: &Ctx) -> Resp {
    let draining = ctx.draining.load(Ordering::Relaxed);
    let health = ctx.health.read();
    let ready = !draining && health.ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let part = |ok: bool| {
        if ok && health.fresh {
            "ok"
        } else {
            "unavailable"
        }
    };
    let body = json!({
        "status": if ready { "ready" } else if draining { "draining" } else { "unavailable" },
        "catalog": part(health.catalog),
        "storage": part(health.storage),
        "processing": part(health.processing),
        "disk": if health.disk { "ok" } else { "low" },
        "freeBytes": health.free_bytes,
    });
    json(status, &body)
}

/// The Prometheus text exposition.
pub fn metrics(handle: &PrometheusHandle) -> Resp {
    let mut resp = Response::new(full(handle.render()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Makes an actor fail (only with `admin.fault_injection = true`; otherwise no such route).
pub fn crash(ctx: &Ctx, actor: &str) -> Result<Resp, ApiError> {
    if !ctx.config.admin.fault_injection {
        return Err(ApiError::NoRoute);
    }
    match actor {
        "catalog" => ctx.catalog.crash(),
        "storage" => ctx.storage.crash(),
        "processing" => ctx.processing.crash(),
        _ => return Err(ApiError::NotFound("actor")),
    }
    Ok(json(StatusCode::ACCEPTED, &json!({ "crashed": actor })))
}
