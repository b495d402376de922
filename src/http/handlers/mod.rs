//! Request handlers, one file per resource, and `dispatch` from a `Route` to them.

mod docs;
mod folders;
mod keys;
mod media;
pub mod ops;
pub mod presign;
mod public;
pub mod views;
mod webhooks;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Map, Value};

use super::body::Paced;
use super::response::{Resp, json, preflight};
use super::router::Route;
use super::{Ctx, files};
use crate::error::ApiError;
use crate::model::{ApiKeyRecord, FolderPath, MediaRecord};

pub async fn dispatch(ctx: &Ctx, route: Route, req: Request<Incoming>) -> Result<Resp, ApiError> {
    match route {
        Route::PublicList => public::list(ctx, &req).await,
        Route::PublicGet(id) => public::get(ctx, &req, &id).await,
        Route::PublicCrop(id) => public::crop(ctx, &req, &id).await,
        Route::PublicListPreflight | Route::PublicItemPreflight => Ok(preflight()),
        Route::List => media::list(ctx, &req).await,
        Route::Upload => media::upload(ctx, req).await,
        Route::Get(id) => media::get(ctx, &req, &id).await,
        Route::Patch(id) => media::patch(ctx, req, id).await,
        Route::ReplaceFile(id) => media::replace_file(ctx, req, id).await,
        Route::SignCrop(id) => media::sign_crop(ctx, req, id).await,
        Route::Delete(id) => media::delete(ctx, &req, id).await,
        Route::ListFolders => folders::list(ctx, &req).await,
        Route::CreateFolder => folders::create(ctx, req).await,
        Route::DeleteFolder => folders::delete(ctx, req).await,
        Route::Presign => presign::presign(ctx, req).await,
        Route::Confirm => presign::confirm(ctx, req).await,
        Route::File(key) | Route::PrivateFile(key) => files::serve(ctx, &req, key).await,
        Route::Healthz => Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" }))),
        Route::Readyz => Ok(ops::readyz(ctx)),
        Route::Metrics if ctx.config.server.metrics_listen.is_some() => Err(ApiError::NoRoute),
        Route::Metrics => Ok(ops::metrics(&ctx.metrics)),
        Route::OpenApi => Ok(docs::openapi_json()),
        Route::Docs(file) => docs::explorer(file.as_deref()),
        Route::Root => Ok(docs::to_explorer()),
        Route::ListKeys => keys::list(ctx, &req).await,
        Route::CreateKey => keys::create(ctx, req).await,
        Route::RevokeKey(id) => keys::revoke(ctx, &req, id).await,
        Route::ListWebhooks => webhooks::list(ctx, &req).await,
        Route::CreateWebhook => webhooks::create(ctx, req).await,
        Route::RemoveWebhook(id) => webhooks::remove(ctx, &req, id).await,
        Route::PingWebhook(id) => webhooks::ping(ctx, &req, id).await,
        Route::WebhookDeliveries(id) => webhooks::deliveries(ctx, &req, id).await,
        Route::AdminCrash(actor) => ops::crash(ctx, &actor),
    }
}

/// Item `id` as `key` may see it: an item outside the folder a key is limited to answers
/// 404, exactly as an unknown id (so its existence is not revealed).
pub async fn item_for(ctx: &Ctx, key: &ApiKeyRecord, id: &str) -> Result<MediaRecord, ApiError> {
    let id = super::router::media_id(id)?;
    let record = ctx.catalog.get(id).await?;
    record
        .filter(|r| key.reaches(&r.folder))
        .ok_or(ApiError::NotFound("media item"))
}

/// 404 unless `key` reaches `folder` (a key limited to a folder knows no other).
pub fn reach(key: &ApiKeyRecord, folder: &FolderPath) -> Result<(), ApiError> {
    if key.reaches(folder.as_str()) {
        Ok(())
    } else {
        Err(ApiError::NotFound("folder"))
    }
}

/// Reads a JSON object body of at most `limits.max_json_bytes`, under the deadlines every
/// body has (see `body::Paced`).
pub async fn read_json_object(
    ctx: &Ctx,
    req: Request<Incoming>,
) -> Result<Map<String, Value>, ApiError> {
    let body = Paced::new(req.into_body(), &ctx.config.server);
    let bytes = body.collect(ctx.config.limits.max_json_bytes).await?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        )),
        Err(e) => Err(ApiError::bad_request(
            "invalid_json",
            format!("the body is not valid JSON: {e}"),
        )),
    }
}
