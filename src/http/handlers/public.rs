//! `GET /api/v1/public/media` and `/{id}`: public fields, CORS, cacheable items.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::views;
use crate::delivery::CropError;
use crate::error::ApiError;
use crate::http::query::{self, Access};
use crate::http::response::{
    Resp, empty, etag_matches, json, json_bytes, not_modified, set_header,
};
use crate::http::router::media_id;
use crate::http::{Ctx, auth};
use crate::model::{CropSize, cursor};

const ITEM_CACHE: &str = "public, max-age=3600";

pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let access = match auth::caller(ctx, req.headers()).await? {
        Some(_) => Access::Full,
        None => Access::Public,
    };
    let q = query::list_query(req.uri().query(), access)?;
    let (limit, offset, sort, descending) = (q.limit, q.offset, q.sort, q.descending);
    let page = ctx.catalog.list(q).await?;
    let data = page
        .items
        .iter()
        .map(|r| views::public(&ctx.urls, r))
        .collect();
    let body = views::Page {
        data,
        total: page.total,
        limit,
        offset,
        next_cursor: page
            .next
            .map(|position| cursor::encode(sort, descending, &position)),
        folders: None,
    };
    Ok(json(StatusCode::OK, &body))
}

pub async fn get(ctx: &Ctx, req: &Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    let id = media_id(id)?;
    let record = ctx
        .catalog
        .get(id)
        .await?
        .ok_or(ApiError::NotFound("media item"))?;
    // Serialized once: the bytes are both the body and what the ETag is made from.
    let bytes = serde_json::to_vec(&views::Data {
        data: views::public(&ctx.urls, &record),
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let digest = Sha256::digest(&bytes);
    let etag = format!("\"{}\"", hex(&digest[..12]));
    let mut resp = if etag_matches(req.headers().get(header::IF_NONE_MATCH), &etag) {
        not_modified(&etag)
    } else {
        let mut resp = json_bytes(StatusCode::OK, bytes);
        set_header(resp.headers_mut(), header::ETAG, &etag);
        resp
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(ITEM_CACHE));
    Ok(resp)
}

/// A crop redirect may be cached briefly: the same URL serves a new crop once the focal
/// point moves (the file it points to never changes).
const CROP_REDIRECT_CACHE: &str = "public, max-age=60";

/// `GET /api/v1/public/media/{id}/crop?w=&h=&sig=`: a redirect to the crop's file, made
/// on the first request (see `delivery::ondemand`). Nothing is read before the signature
/// and the bounds are checked.
pub async fn crop(ctx: &Ctx, req: &Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    let (mut w, mut h, mut sig) = (None, None, String::new());
    for (name, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "w" => w = value.parse::<u32>().ok(),
            "h" => h = value.parse::<u32>().ok(),
            "sig" => sig = value.into_owned(),
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (w, h) else {
        return Err(CropError::BadSignature.into());
    };
    let key = ctx.crops.crop(id, CropSize { width, height }, &sig).await?;
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::FOUND;
    set_header(resp.headers_mut(), header::LOCATION, &ctx.urls.url(&key));
    let cache = HeaderValue::from_static(CROP_REDIRECT_CACHE);
    resp.headers_mut().insert(header::CACHE_CONTROL, cache);
    Ok(resp)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
