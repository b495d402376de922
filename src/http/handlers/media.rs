//! `/api/v1/media`: list, upload, get, patch, delete (authenticated, full fields).

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Map, Value};

use super::{item_for, reach, read_json_object, views};
use crate::error::ApiError;
use crate::http::multipart::Place;
use crate::http::query::{self, Access, invalid_folder};
use crate::http::response::{Resp, json};
use crate::http::{Ctx, auth, multipart};
use crate::model::{
    CropSize, FolderPath, MediaPatch, MediaRecord, Scope, Visibility, cursor, rfc3339,
};
use crate::storage::StorageError;

/// Longest accepted alt, title and description, in characters.
const MAX_TEXT: usize = 10_000;

pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Read).await?;
    let mut q = query::list_query(req.uri().query(), Access::Full)?;
    if let Some(folder) = &q.folder {
        reach(&key, folder)?;
    }
    q.within = key.within().cloned();
    let ttl = url_ttl(ctx, req)?;
    let (limit, offset, sort, descending) = (q.limit, q.offset, q.sort, q.descending);
    let (page, folders) = tokio::try_join!(ctx.catalog.list(q), ctx.catalog.folders())?;
    let urls = ctx.links.name(&page.items, ttl).await?;
    let data = page.items.iter().map(|r| views::full(&urls, r)).collect();
    let folders = Some(folders.into_iter().filter(|f| key.reaches(f)).collect());
    let body = views::Page {
        data,
        total: page.total,
        limit,
        offset,
        next_cursor: page
            .next
            .map(|position| cursor::encode(sort, descending, &position)),
        folders,
    };
    Ok(json(StatusCode::OK, &body))
}

pub async fn get(ctx: &Ctx, req: &Request<Incoming>, id: &str) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Read).await?;
    let record = item_for(ctx, &key, id).await?;
    let ttl = url_ttl(ctx, req)?;
    item(ctx, StatusCode::OK, &record, ttl).await
}

/// `{"data": item}`, its URLs signed for a private item.
async fn item(
    ctx: &Ctx,
    status: StatusCode,
    record: &MediaRecord,
    ttl: Option<u64>,
) -> Result<Resp, ApiError> {
    let urls = ctx.links.name([record], ttl).await?;
    let data = views::full(&urls, record);
    Ok(json(status, &views::Data { data }))
}

/// `?urlTtl=`: how long the answer's links to private files last.
pub(super) fn url_ttl<B>(ctx: &Ctx, req: &Request<B>) -> Result<Option<u64>, ApiError> {
    query::url_ttl(req.uri().query(), ctx.links.max_ttl())
}

pub async fn upload(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    let wait = query::wait_flag(req.uri().query())?;
    let ttl = url_ttl(ctx, &req)?;
    let form = multipart::receive(ctx, req, Place::Chosen).await?;
    let alt = form.alt.as_deref();
    // A key limited to a folder uploads into it unless it names one below it.
    let folder = form.folder.clone().or_else(|| key.within().cloned());
    let folder = folder.unwrap_or_else(FolderPath::root);
    reach(&key, &folder)?; // the staged files go with the form
    let records = ctx.ingest.record(form.staged, &folder, alt, wait).await?;
    let urls = ctx.links.name(&records, ttl).await?;
    let data = records.iter().map(|r| views::full(&urls, r)).collect();
    let body = views::Uploaded {
        data,
        errors: form.errors,
    };
    Ok(json(StatusCode::CREATED, &body))
}

/// `PUT /api/v1/media/{id}/file`: one new file for the item, of the same kind.
pub async fn replace_file(ctx: &Ctx, req: Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    let old = item_for(ctx, &key, &id).await?;
    let ttl = url_ttl(ctx, &req)?;
    let mut form = multipart::receive(ctx, req, Place::Fixed(old.visibility)).await?;
    if form.staged.len() + form.errors.len() != 1 {
        let message = "a replace takes exactly one file, in the field `file`";
        return Err(ApiError::bad_request("too_many_files", message));
    }
    let staged = form.staged.remove(0);
    let record = ctx.ingest.replace(&old, staged, key.within()).await?;
    item(ctx, StatusCode::OK, &record, ttl).await
}

/// `POST /api/v1/media/{id}/crops` `{width, height}`: a signed URL for that crop.
pub async fn sign_crop(ctx: &Ctx, req: Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    let record = item_for(ctx, &key, &id).await?;
    let ttl = url_ttl(ctx, &req)?;
    let body = read_json_object(ctx, req).await?;
    let side = |name: &str| {
        body.get(name)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
    };
    let (Some(width), Some(height), 2) = (side("width"), side("height"), body.len()) else {
        let message = "the body must be {\"width\": W, \"height\": H}, whole pixels";
        return Err(ApiError::bad_request("invalid_crop_size", message));
    };
    let size = CropSize { width, height };
    if let Err(e) = ctx.crops.check_size(size) {
        return Err(ApiError::bad_request("invalid_crop_size", e.to_string()));
    }
    if record.picture().is_none() {
        return Err(ApiError::NotFound("image"));
    }
    // A private item's crop URL ends with its links (`expiresAt`).
    let urls = ctx.links.name([&record], ttl).await?;
    let url = urls.crop_url(ctx.links.signer(), &record, size);
    let expires_at = urls
        .expires(&record)
        .map(|s| rfc3339(s.saturating_mul(1_000_000)));
    let mut body = serde_json::json!({ "url": url, "width": width, "height": height });
    if let Some(at) = expires_at {
        body["expiresAt"] = at.into();
    }
    Ok(json(StatusCode::OK, &body))
}

pub async fn patch(ctx: &Ctx, req: Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    item_for(ctx, &key, &id).await?;
    let ttl = url_ttl(ctx, &req)?;
    let body = read_json_object(ctx, req).await?;
    let patch = parse_patch(&body)?;
    if let Some(folder) = &patch.folder {
        reach(&key, folder)?; // never out of the key's folder
    }
    if patch.visibility.is_some_and(|v| v.is_private()) && !ctx.config.keeps_private() {
        return Err(StorageError::NoPrivatePlace.into());
    }
    let record = ctx.library.update(id, patch, key.within()).await?;
    item(ctx, StatusCode::OK, &record, ttl).await
}

pub async fn delete(ctx: &Ctx, req: &Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    item_for(ctx, &key, &id).await?;
    ctx.library.delete(id, key.within()).await?;
    Ok(json(StatusCode::OK, &views::Success { success: true }))
}

/// Validates a PATCH body: only the documented fields, with the right types.
fn parse_patch(body: &Map<String, Value>) -> Result<MediaPatch, ApiError> {
    let mut patch = MediaPatch::default();
    for (key, value) in body {
        match key.as_str() {
            "alt" => patch.alt = Some(text(key, value)?),
            "title" => patch.title = Some(text(key, value)?),
            "description" => patch.description = Some(text(key, value)?),
            "folder" => {
                let Value::String(s) = value else {
                    return Err(ApiError::bad_request(
                        "invalid_folder",
                        "folder must be a string",
                    ));
                };
                patch.folder = Some(FolderPath::parse(s).ok_or_else(|| invalid_folder(s))?);
            }
            "focalX" => patch.focal_x = Some(focal(key, value)?),
            "focalY" => patch.focal_y = Some(focal(key, value)?),
            "visibility" => {
                let v = value.as_str().and_then(Visibility::parse).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_visibility",
                        "visibility must be \"public\" or \"private\"",
                    )
                })?;
                patch.visibility = Some(v);
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_field",
                    format!(
                        "{other:?} cannot be changed; allowed fields: alt, title, description, \
                         folder, focalX, focalY, visibility"
                    ),
                ));
            }
        }
    }
    Ok(patch)
}

/// A string (or null, which clears the field).
fn text(key: &str, value: &Value) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.contains('\0') => Err(ApiError::bad_request(
            "invalid_field",
            format!("{key} must not contain NUL characters"),
        )),
        Value::String(s) if s.chars().count() <= MAX_TEXT => Ok(Some(s.clone())),
        Value::String(_) => Err(ApiError::bad_request(
            "invalid_field",
            format!("{key} is longer than {MAX_TEXT} characters"),
        )),
        _ => Err(ApiError::bad_request(
            "invalid_field",
            format!("{key} must be a string or null"),
        )),
    }
}

fn focal(key: &str, value: &Value) -> Result<f64, ApiError> {
    match value.as_f64() {
        Some(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(ApiError::bad_request(
            "invalid_focal_point",
            format!("{key} must be a number from 0 to 100 (a percentage)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn patch_accepts_documented_fields() {
        let p = parse_patch(&obj(json!({
            "alt": "a", "title": null, "description": "d", "folder": "/x", "focalX": 0, "focalY": 100
        })))
        .expect("valid");
        assert_eq!(p.alt, Some(Some("a".into())));
        assert_eq!(p.title, Some(None));
        assert_eq!(p.folder, FolderPath::parse("/x"));
        assert_eq!((p.focal_x, p.focal_y), (Some(0.0), Some(100.0)));
        let p = parse_patch(&obj(json!({"visibility": "private"}))).expect("valid");
        assert_eq!(p.visibility, Some(Visibility::Private));
    }

    #[test]
    fn patch_refuses_everything_else() {
        for bad in [
            json!({"focalX": 101}),
            json!({"focalY": -1}),
            json!({"focalX": "50"}),
            json!({"folder": "no-slash"}),
            json!({"folder": 3}),
            json!({"alt": 5}),
            json!({"size": 1}),
            json!({"id": "media_x"}),
            json!({"visibility": "secret"}),
            json!({"visibility": null}),
        ] {
            assert!(parse_patch(&obj(bad.clone())).is_err(), "{bad}");
        }
    }
}
