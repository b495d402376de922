//! Request handlers, one file per resource, and `dispatch` from a `Route` to them.

mod docs;
mod folders;
mod keys;
mod media;
pub mod ops;
pub mod presign;
mod public;
pub mod views;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Map, Value};

use super::body::Paced;
use super::response::{Resp, json, preflight};
use super::router::Route;
use super::{Ctx, files};
use crate::error::ApiError;

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
        Route::AdminCrash(actor) => ops::crash(ctx, &actor),
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
