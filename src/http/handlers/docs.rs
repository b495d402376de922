//! The contract and its explorer: `GET /api/v1/openapi.json`, Swagger UI under `/docs/`
//! (served from bytes embedded in the binary; it loads only this server's document and
//! assets), and `GET /` redirecting there.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::http::openapi;
use crate::http::response::{Resp, empty, full, json_bytes};

const DOCUMENT: &str = "/api/v1/openapi.json";
const EXPLORER: &str = "/docs/";
/// Swagger UI runs its own scripts and styles from this origin, sets inline styles, and
/// talks to this origin only.
const EXPLORER_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' \
    'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
    form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

pub fn openapi_json() -> Resp {
    json_bytes(StatusCode::OK, Bytes::from_static(openapi::json_bytes()))
}

/// `/docs` → `/docs/` (the page loads its files relative to itself); `/docs/<file>`.
pub fn explorer(file: Option<&str>) -> Result<Resp, ApiError> {
    let Some(file) = file else {
        return Ok(redirect(EXPLORER));
    };
    let served = utoipa_swagger_ui::serve(file, config().clone())
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or(ApiError::NotFound("file"))?;
    // The files are embedded in the binary: served without a copy.
    let bytes = match served.bytes {
        Cow::Borrowed(file) => Bytes::from_static(file),
        Cow::Owned(made) => Bytes::from(made), // the initializer, with this server's config
    };
    let mut resp = Response::new(full(bytes));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&served.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if served.gzpipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(EXPLORER_CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `GET /`: a person who opens the server's address finds the explorer.
pub fn to_explorer() -> Resp {
    redirect(EXPLORER)
}

fn redirect(to: &'static str) -> Resp {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::FOUND;
    resp.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    resp
}

/// Swagger UI's settings: this server's document, no online validator, "Try it out" on,
/// and the key kept in the page only (not in the browser's storage).
fn config() -> &'static Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        Arc::new(
            Config::new([DOCUMENT])
                .use_base_layout() // no top bar inviting other documents
                .validator_url("none")
                .try_it_out_enabled(true)
                .persist_authorization(false)
                .display_request_duration(true),
        )
    })
}
