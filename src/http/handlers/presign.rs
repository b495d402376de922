//! `POST /api/v1/media/presign` and `POST /api/v1/media/confirm`: a client uploads
//! straight to the bucket with a signed URL, then confirms; the server checks what
//! arrived before it becomes an item. S3 storage only; local storage answers 400
//! `presign_unavailable`.

use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{reach, read_json_object, views};
use crate::config::{S3Config, StorageConfig};
use crate::error::ApiError;
use crate::http::multipart::{Place, visibility_field};
use crate::http::query::invalid_folder;
use crate::http::response::{Resp, json};
use crate::http::{Ctx, auth};
use crate::ingest::{Confirmation, IngestError, visibility_of};
use crate::media::name::sanitize_filename;
use crate::model::{FolderPath, MediaType, PresignRecord, Scope, now_us, rfc3339};
use crate::storage::key::{PRIVATE_CACHE, key_of, new_key, object_key};

/// Where and how to upload: PUT the file to `uploadUrl` with `headers` before
/// `expiresAt`, then confirm `storageKey`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "uploadUrl": "https://storage.example.com/site_1/2026/03/0Oqzd1TbAbCdEfGh.mp4?X-Amz-Signature=...",
    "publicUrl": "https://cdn.example.com/2026/03/0Oqzd1TbAbCdEfGh.mp4",
    "storageKey": "site_1/2026/03/0Oqzd1TbAbCdEfGh.mp4",
    "expiresAt": "2026-03-26T12:30:00Z",
    "method": "PUT",
    "headers": {"Content-Type": "video/mp4"}
}))]
pub struct Presigned {
    upload_url: String,
    /// Where the file will be read; `null` for a private upload (its links are signed
    /// when it is read: see `urlExpiresAt` in the item's views).
    public_url: Option<String>,
    storage_key: String,
    #[schema(format = DateTime)]
    expires_at: String,
    #[schema(example = "PUT")]
    method: &'static str,
    /// Headers the PUT must carry (the Content-Type is part of the signature).
    #[schema(value_type = Object)]
    headers: Map<String, Value>,
}

pub async fn presign(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Write).await?;
    let s3 = s3_config(ctx)?;
    let body = read_json_object(ctx, req).await?;
    let filename = match body.get("filename") {
        Some(Value::String(name)) if !name.trim().is_empty() => sanitize_filename(name, "upload"),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_filename",
                "filename must be a non-empty string",
            ));
        }
    };
    let media_type = mime_field(&body)?.ok_or_else(|| invalid_mime(None))?;
    let size = size_field(&body, s3.max_file_bytes)?.ok_or_else(|| invalid_size(s3))?;
    let visibility = match body.get("visibility") {
        None | Some(Value::Null) => ctx.config.media.default_visibility,
        Some(Value::String(v)) => visibility_field(ctx, v, Place::Chosen)?,
        Some(_) => visibility_field(ctx, "", Place::Chosen)?,
    };
    let created = now_us();
    let key = new_key(media_type, created, visibility);
    let expiry = Duration::from_secs(s3.presign_expiry_secs);
    let expires_us = created + expiry.as_micros() as u64;
    let upload_url = ctx
        .storage
        .presign_put(key.clone(), media_type.mime(), expiry)
        .await?;
    let presign = PresignRecord {
        filename,
        media_type,
        size,
        expires_us,
        staged: true,
        confirmed: false,
        confirming: None,
    };
    ctx.catalog.record_presign(key.clone(), presign).await?;
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), media_type.mime().into());
    if visibility.is_private() {
        headers.insert("Cache-Control".into(), PRIVATE_CACHE.into());
    }
    let body = Presigned {
        upload_url,
        public_url: visibility.is_public().then(|| ctx.links.url(&key)),
        storage_key: object_key(&s3.prefix, &key),
        expires_at: rfc3339(expires_us),
        method: "PUT",
        headers,
    };
    Ok(json(StatusCode::OK, &body))
}

/// Input checks, then `ingest::confirm` does the rest. The item's visibility is the one
/// its presign chose (its key's place); a confirm that names another is refused.
pub async fn confirm(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let caller = auth::require(ctx, req.headers(), Scope::Write).await?;
    let s3 = s3_config(ctx)?;
    let ttl = super::media::url_ttl(ctx, &req)?;
    let body = read_json_object(ctx, req).await?;
    let key = match body.get("storageKey") {
        Some(Value::String(k)) => key_of(&s3.prefix, k).ok_or_else(unknown_key)?.to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_storage_key",
                "storageKey must be a string",
            ));
        }
    };
    // A key limited to a folder confirms into it unless it names one below it.
    let folder = match body.get("folder") {
        None | Some(Value::Null) => caller.within().cloned().unwrap_or_else(FolderPath::root),
        Some(Value::String(f)) => FolderPath::parse(f).ok_or_else(|| invalid_folder(f))?,
        Some(_) => return Err(invalid_folder("(not a string)")),
    };
    reach(&caller, &folder)?;
    let alt = alt_field(&body)?;
    let presign = ctx.catalog.presign_to_confirm(&key).await?;
    check_repeated_fields(&body, &presign, &key, s3)?;
    let filename = match body.get("filename") {
        Some(Value::String(name)) if !name.trim().is_empty() => sanitize_filename(name, "upload"),
        _ => presign.filename.clone(),
    };
    let confirmation = Confirmation {
        key,
        presign,
        filename,
        folder,
        alt,
    };
    let item = ctx.ingest.confirm(confirmation).await?;
    let urls = ctx.links.name([&item], ttl).await?;
    let body = views::Confirmed {
        success: true,
        data: views::full(&urls, &item),
    };
    Ok(json(StatusCode::CREATED, &body))
}

/// `alt`: absent, null, or a string (empty counts as absent).
fn alt_field(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match body.get("alt") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(a)) if a.contains('\0') => Err(ApiError::bad_request(
            "invalid_field",
            "alt must not contain NUL characters",
        )),
        Some(Value::String(a)) => Ok(Some(a.clone()).filter(|a| !a.is_empty())),
        Some(_) => Err(ApiError::bad_request(
            "invalid_field",
            "alt must be a string",
        )),
    }
}

/// What the client repeats at confirm must match what it declared when it asked for the
/// URL.
fn check_repeated_fields(
    body: &Map<String, Value>,
    presign: &PresignRecord,
    key: &str,
    s3: &S3Config,
) -> Result<(), ApiError> {
    let chosen = visibility_of(key);
    match body.get("visibility") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) if v == chosen.name() => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "visibility_mismatch",
                format!(
                    "this upload was presigned as {}: ask for a new URL to change it, or PATCH \
                     the item after confirming",
                    chosen.name()
                ),
            ));
        }
    }
    if mime_field(body)?.is_some_and(|t| t != presign.media_type) {
        return Err(ApiError::bad_request(
            "mime_mismatch",
            format!(
                "this upload was presigned for {}",
                presign.media_type.mime()
            ),
        ));
    }
    if size_field(body, s3.max_file_bytes)?.is_some_and(|s| s != presign.size) {
        let expected = presign.size;
        return Err(IngestError::SizeMismatch { expected }.into());
    }
    Ok(())
}

fn s3_config(ctx: &Ctx) -> Result<&S3Config, ApiError> {
    match &ctx.config.storage {
        StorageConfig::S3(s3) => Ok(s3),
        StorageConfig::Local => Err(ApiError::PresignUnavailable),
    }
}

/// `mimeType`: absent, or one of the eight supported types.
fn mime_field(body: &Map<String, Value>) -> Result<Option<MediaType>, ApiError> {
    match body.get("mimeType") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(m)) => MediaType::from_mime(m)
            .map(Some)
            .ok_or_else(|| invalid_mime(Some(m))),
        Some(_) => Err(invalid_mime(None)),
    }
}

/// `size`: absent, or a whole number of bytes from 1 to the backend's file limit.
fn size_field(body: &Map<String, Value>, limit: u64) -> Result<Option<u64>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_size",
            format!("size must be a whole number of bytes from 1 to {limit}"),
        )
    };
    match body.get("size") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) if (1..=limit).contains(&s) => Ok(Some(s)),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

fn invalid_mime(got: Option<&str>) -> ApiError {
    let allowed: Vec<&str> = MediaType::ALL.iter().map(|t| t.mime()).collect();
    let got = got.map_or(String::new(), |g| format!(" (got {g:?})"));
    ApiError::bad_request(
        "invalid_mime_type",
        format!("mimeType must be one of {}{got}", allowed.join(", ")),
    )
}

fn invalid_size(s3: &S3Config) -> ApiError {
    ApiError::bad_request(
        "invalid_size",
        format!("size (bytes) is required: 1 to {}", s3.max_file_bytes),
    )
}

fn unknown_key() -> ApiError {
    ApiError::NotFound("presigned upload with this storageKey")
}
