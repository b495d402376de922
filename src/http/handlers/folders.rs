//! `GET/POST/DELETE /api/v1/media/folders`.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::{reach, read_json_object, views};
use crate::error::ApiError;
use crate::http::query::invalid_folder;
use crate::http::response::{Resp, json};
use crate::http::{Ctx, auth};
use crate::model::{FolderPath, Scope};

pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Read).await?;
    let mut folders = ctx.catalog.folders().await?;
    folders.retain(|f| key.reaches(f));
    Ok(json(StatusCode::OK, &views::Folders { folders }))
}

/// 201 when created, 200 when it already existed.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    let path = path_from_body(ctx, req).await?;
    reach(&key, &path)?;
    let created = ctx.catalog.create_folder(path.clone()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = views::FolderCreated {
        success: true,
        path: path.as_str(),
        created,
    };
    Ok(json(status, &body))
}

/// The path comes from the JSON body, or from `?path=` for clients that cannot send a
/// body with DELETE.
pub async fn delete(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let key = auth::require(ctx, req.headers(), Scope::Write).await?;
    let from_query = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "path")
            .map(|(_, v)| v.into_owned())
    });
    let path = match from_query {
        Some(p) => FolderPath::parse(&p).ok_or_else(|| invalid_folder(&p))?,
        None => path_from_body(ctx, req).await?,
    };
    reach(&key, &path)?;
    ctx.catalog.delete_folder(path).await?;
    Ok(json(StatusCode::OK, &views::Success { success: true }))
}

async fn path_from_body(ctx: &Ctx, req: Request<Incoming>) -> Result<FolderPath, ApiError> {
    let body = read_json_object(ctx, req).await?;
    match body.get("path") {
        Some(serde_json::Value::String(p)) => FolderPath::parse(p).ok_or_else(|| invalid_folder(p)),
        _ => Err(ApiError::bad_request(
            "invalid_folder",
            "the body needs a string field \"path\"",
        )),
    }
}
