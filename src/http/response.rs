//! Response building: JSON bodies, errors, CORS headers.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::error::ApiError;
use crate::health::Refusal;
use crate::ingest::IngestError;
use crate::storage::StorageError;

/// Every response body: a full buffer or a file stream.
pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A JSON response.
pub fn json(status: StatusCode, value: &impl Serialize) -> Resp {
    json_bytes(status, serde_json::to_vec(value).unwrap_or_default())
}

/// 201 with a secret shown this once (an API key, a webhook's signing secret): never
/// stored by a cache (`Cache-Control: no-store`).
pub fn created_once(value: &impl Serialize) -> Resp {
    let mut resp = json(StatusCode::CREATED, value);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A response with an already serialized JSON body.
pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Every error: `{"error": {"status", "code", "message"}}`; a refused upload also lists
/// each file's reason in `errors`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::error::FileError>>)]
    errors: Option<&'a [crate::error::FileError]>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// The HTTP status, repeated.
    #[schema(example = 400)]
    status: u16,
    /// A stable machine-readable code (see each operation's responses).
    #[schema(example = "invalid_folder")]
    code: &'a str,
    /// A sentence for people.
    message: String,
}

/// The error envelope, with `Allow` on 405 and `WWW-Authenticate` on 401.
pub fn error(e: &ApiError) -> Resp {
    let status = e.status();
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::INSUFFICIENT_STORAGE {
        tracing::warn!(error = %e, "request refused for now"); // designed refusals
    } else if status.is_server_error() {
        tracing::error!(error = ?e, "request failed");
    }
    let errors = match e {
        ApiError::UploadFailed { errors } => Some(errors.as_slice()),
        _ => None,
    };
    let body = ErrorBody {
        error: ErrorDetail {
            status: status.as_u16(),
            code: e.code(),
            message: e.message(),
        },
        errors,
    };
    let mut resp = json(status, &body);
    let headers = resp.headers_mut();
    // An error is about this moment (a link that expired, an item not there yet): no
    // cache keeps it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match e {
        ApiError::MethodNotAllowed { allow } => {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        ApiError::Unauthorized(_) => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        ApiError::RangeNotSatisfiable { len } => {
            set_header(headers, header::CONTENT_RANGE, &format!("bytes */{len}"));
        }
        ApiError::Ingest(IngestError::Busy { retry_after, .. }) => {
            set_header(headers, header::RETRY_AFTER, &retry_after.to_string());
        }
        ApiError::Ingest(IngestError::Declined(Refusal::StorageDown))
        | ApiError::Storage(StorageError::Down) => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        _ if status == StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        _ => {}
    }
    resp
}

/// CORS for the public endpoints: any origin may read them.
pub fn with_public_cors(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("ETag"),
    );
    resp
}

/// The answer to a CORS preflight on a public endpoint.
pub fn preflight() -> Resp {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-None-Match"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    with_public_cors(resp)
}

/// True when an `If-None-Match` header matches `etag` (or is `*`).
pub fn etag_matches(if_none_match: Option<&HeaderValue>, etag: &str) -> bool {
    let Some(value) = if_none_match.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

/// A 304 carrying the validators.
pub fn not_modified(etag: &str) -> Resp {
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::NOT_MODIFIED;
    set_header(resp.headers_mut(), header::ETAG, etag);
    resp
}

/// Sets a header from a runtime string (values we build are always valid header text).
pub fn set_header(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_matching() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert!(etag_matches(Some(&h("\"abc\"")), "\"abc\""));
        assert!(etag_matches(Some(&h("\"x\", W/\"abc\"")), "\"abc\""));
        assert!(etag_matches(Some(&h("*")), "\"abc\""));
        assert!(!etag_matches(Some(&h("\"abd\"")), "\"abc\""));
        assert!(!etag_matches(None, "\"abc\""));
    }
}
