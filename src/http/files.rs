//! Serving stored files under `/uploads/YYYY/MM/<name>`: only files the catalog names
//! (a deleted item stops being served at once), with validators, single byte ranges and
//! headers that stop browsers from sniffing or running anything.

use std::io::SeekFrom;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::Ctx;
use super::response::{Resp, empty, etag_matches, not_modified, set_header};
use crate::delivery::links::unix_now;
use crate::error::ApiError;
use crate::model::MediaType;
use crate::storage::key::is_private;
use crate::storage::{StoredFile, is_valid_key};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

pub async fn serve(ctx: &Ctx, req: &Request<Incoming>, key: String) -> Result<Resp, ApiError> {
    // A private item's file needs its signed link, checked before anything is looked up
    // (nothing is revealed without one); it may be cached privately until the link ends.
    let cache = match is_private(&key) {
        true => {
            let left = link_life(ctx, req)?;
            HeaderValue::from_str(&format!("private, max-age={left}"))
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
        false => HeaderValue::from_static(IMMUTABLE),
    };
    let not_found = || ApiError::NotFound("file");
    let ext = key.rsplit_once('.').map_or("", |(_, e)| e);
    let media_type = MediaType::from_ext(ext).ok_or_else(not_found)?;
    if !is_valid_key(&key) || ctx.catalog.owner_of_file(&key).await?.is_none() {
        return Err(not_found());
    }
    let stored = ctx.storage.open(key).await?.ok_or_else(not_found)?;

    let since_epoch = stored
        .modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let etag = format!("\"{:x}-{:x}\"", stored.len, since_epoch.as_nanos());
    let headers = req.headers();
    if is_not_modified(headers, &etag, since_epoch) {
        let mut resp = not_modified(&etag);
        resp.headers_mut().insert(header::CACHE_CONTROL, cache);
        return Ok(resp);
    }

    let range = match requested_range(headers, &etag) {
        Some(spec) => match resolve_range(spec, stored.len) {
            Some(r) => Some(r),
            None => return Err(ApiError::RangeNotSatisfiable { len: stored.len }),
        },
        None => None,
    };
    let (start, len) = range.unwrap_or((0, stored.len));
    let (total, modified) = (stored.len, stored.modified);
    let mut resp = if req.method() == Method::HEAD {
        Response::new(empty())
    } else {
        stream_part(stored, start, len).await?
    };
    let h = resp.headers_mut();
    if range.is_some() {
        set_header(
            h,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{}/{total}", start + len - 1),
        );
    }
    set_header(h, header::CONTENT_LENGTH, &len.to_string());
    set_header(h, header::ETAG, &etag);
    set_header(h, header::LAST_MODIFIED, &httpdate::fmt_http_date(modified));
    set_file_headers(h, media_type);
    h.insert(header::CACHE_CONTROL, cache);
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(resp)
}

/// Seconds left on the signed link of this request (`?expires=&sig=`, see
/// `delivery::sign`), or 403 when it has none, it was altered, or it has ended.
fn link_life(ctx: &Ctx, req: &Request<Incoming>) -> Result<u64, ApiError> {
    let (mut expires, mut sig) = (None, String::new());
    for (name, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "expires" => expires = value.parse::<u64>().ok(),
            "sig" => sig = value.into_owned(),
            _ => {}
        }
    }
    let now = unix_now();
    match expires {
        Some(e)
            if ctx
                .links
                .signer()
                .verify_link(req.uri().path(), e, &sig, now) =>
        {
            Ok(e - now)
        }
        _ => Err(ApiError::Denied {
            code: "invalid_link",
            message: "this file is private: its link is missing its signature, was altered, \
                      or has expired; ask the API for the item again for a new one"
                .into(),
        }),
    }
}

/// A response streaming `len` bytes of the file from `start`.
async fn stream_part(mut stored: StoredFile, start: u64, len: u64) -> Result<Resp, ApiError> {
    stored
        .file
        .seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::Storage(e.into()))?;
    let reader = stored.file.take(len);
    let stream = ReaderStream::with_capacity(reader, 64 * 1024).map_ok(Frame::data);
    Ok(Response::new(StreamBody::new(stream).boxed()))
}

/// What every served file carries: its type, immutable caching, no sniffing, and for SVG
/// a policy that keeps it from running anything.
fn set_file_headers(h: &mut HeaderMap, media_type: MediaType) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_type.mime()),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if media_type == MediaType::Svg {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SVG_CSP),
        );
    }
}

/// `If-None-Match` wins; `If-Modified-Since` is consulted only without it.
fn is_not_modified(h: &HeaderMap, etag: &str, modified: Duration) -> bool {
    if let Some(inm) = h.get(header::IF_NONE_MATCH) {
        return etag_matches(Some(inm), etag);
    }
    let since = h
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    since.is_some_and(|s: SystemTime| {
        s.duration_since(UNIX_EPOCH)
            .is_ok_and(|s| modified.as_secs() <= s.as_secs())
    })
}

/// A byte-range request: `(first, last)` where either may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    From(u64),
    Between(u64, u64),
    Suffix(u64),
}

/// The single range asked for, if any and if `If-Range` (when sent) still matches.
/// Multi-range requests are answered with the whole file, as RFC 9110 allows.
fn requested_range(h: &HeaderMap, etag: &str) -> Option<RangeSpec> {
    if h.get(header::IF_RANGE)
        .is_some_and(|v| v.to_str().ok() != Some(etag))
    {
        return None;
    }
    parse_range(h.get(header::RANGE)?.to_str().ok()?)
}

fn parse_range(v: &str) -> Option<RangeSpec> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(RangeSpec::Suffix(b.parse().ok()?)),
        (false, true) => Some(RangeSpec::From(a.parse().ok()?)),
        (false, false) => {
            let (first, last) = (a.parse().ok()?, b.parse().ok()?);
            (first <= last).then_some(RangeSpec::Between(first, last))
        }
        (true, true) => None,
    }
}

/// `(start, length)` within a file of `len` bytes, or `None` when unsatisfiable.
fn resolve_range(spec: RangeSpec, len: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From(first) if first < len => Some((first, len - first)),
        RangeSpec::Between(first, last) if first < len => {
            Some((first, last.min(len - 1) - first + 1))
        }
        RangeSpec::Suffix(n) if n > 0 && len > 0 => Some((len - n.min(len), n.min(len))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-99"), Some(RangeSpec::Between(0, 99)));
        assert_eq!(parse_range("bytes=100-"), Some(RangeSpec::From(100)));
        assert_eq!(parse_range("bytes=-50"), Some(RangeSpec::Suffix(50)));
        assert_eq!(parse_range("bytes=5-1"), None);
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(resolve_range(RangeSpec::Between(0, 99), 50), Some((0, 50)));
        assert_eq!(resolve_range(RangeSpec::From(50), 50), None);
        assert_eq!(resolve_range(RangeSpec::Suffix(500), 50), Some((0, 50)));
        assert_eq!(resolve_range(RangeSpec::Suffix(0), 50), None);
        assert_eq!(
            resolve_range(RangeSpec::Between(10, 19), 50),
            Some((10, 10))
        );
    }
}
