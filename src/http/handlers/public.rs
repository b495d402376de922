//! `GET /api/v1/public/media` and `/{id}`: public fields, CORS, cacheable items.

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::views;
use crate::delivery::links::unix_now;
use crate::delivery::{CropError, Grant};
use crate::error::ApiError;
use crate::http::query::{self, Access};
use crate::http::response::{
    Resp, empty, etag_matches, json, json_bytes, not_modified, set_header,
};
use crate::http::router::media_id;
use crate::http::{Ctx, auth};
use crate::model::{CropSize, Visibility, cursor};
use crate::storage::key::is_private;

const ITEM_CACHE: &str = "public, max-age=3600";

pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    // A key limited to a folder searches and sorts its own subtree (the full list), not
    // the whole library here: to the public API it is no key.
    let access = match auth::caller(ctx, req.headers()).await? {
        Some(key) if key.within().is_none() => Access::Full,
        _ => Access::Public,
    };
    let mut q = query::list_query(req.uri().query(), access)?;
    q.visibility = Some(Visibility::Public); // with a key or without: the public API
    let (limit, offset, sort, descending) = (q.limit, q.offset, q.sort, q.descending);
    let page = ctx.catalog.list(q).await?;
    let urls = ctx.links.plain();
    // The catalog lists public items only here; a private one is never shown, whatever.
    let public = page.items.iter().filter(|r| r.visibility.is_public());
    let data = public.map(|r| views::public(&urls, r)).collect();
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
        .filter(|r| r.visibility.is_public()) // a private item is not revealed
        .ok_or(ApiError::NotFound("media item"))?;
    // Serialized once: the bytes are both the body and what the ETag is made from.
    let bytes = serde_json::to_vec(&views::Data {
        data: views::public(&ctx.links.plain(), &record),
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

/// `GET /api/v1/public/media/{id}/crop?w=&h=[&expires=]&sig=`: a redirect to the crop's
/// file, made on the first request (see `delivery::ondemand`); a private item's crop goes
/// to a link that ends when its URL does. Nothing is read before the signature and the
/// bounds are checked.
pub async fn crop(ctx: &Ctx, req: &Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    let id = media_id(id)?;
    let (mut w, mut h, mut sig, mut expires) = (None, None, String::new(), None);
    let mut bad = false;
    for (name, value) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match name.as_ref() {
            "w" => w = value.parse::<u32>().ok(),
            "h" => h = value.parse::<u32>().ok(),
            "sig" => sig = value.into_owned(),
            "expires" => {
                expires = value.parse::<u64>().ok();
                bad |= expires.is_none();
            }
            _ => {}
        }
    }
    let (Some(width), Some(height), false) = (w, h, bad) else {
        return Err(CropError::BadSignature.into());
    };
    let grant = Grant { sig, expires };
    let key = ctx
        .crops
        .crop(id, CropSize { width, height }, &grant)
        .await?;
    let mut resp = Response::new(empty());
    *resp.status_mut() = StatusCode::FOUND;
    let (location, cache) = match expires.filter(|_| is_private(&key)) {
        Some(e) => {
            let left = e.saturating_sub(unix_now());
            let cache = format!("private, max-age={}", left.min(60));
            (ctx.links.link(&key, e).await?, cache)
        }
        None => (ctx.links.url(&key), CROP_REDIRECT_CACHE.to_owned()),
    };
    set_header(resp.headers_mut(), header::LOCATION, &location);
    set_header(resp.headers_mut(), header::CACHE_CONTROL, &cache);
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
