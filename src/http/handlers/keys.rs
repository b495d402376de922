//! `GET/POST /api/v1/keys`, `DELETE /api/v1/keys/{id}`: API keys managed while the
//! server runs (the `admin` scope). A revoked key fails its next request.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::Value;

use super::{read_json_object, views};
use crate::catalog::keys;
use crate::error::ApiError;
use crate::http::query::invalid_folder;
use crate::http::response::{Resp, created_once, json};
use crate::http::{Ctx, auth};
use crate::model::{FolderPath, Scope};

/// A key's name: a label for people, at most this many characters.
const MAX_NAME_CHARS: usize = 100;

pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    let keys = ctx.catalog.keys().await?;
    let data: Vec<_> = keys.iter().map(views::api_key).collect();
    Ok(json(StatusCode::OK, &views::Data { data }))
}

/// 201 with the key, shown this once (`Cache-Control: no-store`).
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    let body = read_json_object(ctx, req).await?;
    let scope = match body.get("scope") {
        Some(Value::String(s)) => Scope::parse(s),
        _ => None,
    }
    .ok_or(ApiError::bad_request(
        "invalid_scope",
        "the body needs \"scope\": \"read\", \"write\" or \"admin\"",
    ))?;
    let name = match body.get("name") {
        None | Some(Value::Null) => "",
        Some(Value::String(n)) if valid_name(n) => n.as_str(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_name",
                format!(
                    "\"name\" is a string of at most {MAX_NAME_CHARS} characters, \
                     without control characters"
                ),
            ));
        }
    };
    let folder = match body.get("folder") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) => Some(FolderPath::parse(f).ok_or_else(|| invalid_folder(f))?),
        Some(_) => return Err(invalid_folder("(not a string)")),
    };
    if folder.is_some() && !scope.may_be_limited() {
        return Err(ApiError::bad_request(
            "invalid_folder",
            "an admin key cannot be limited to a folder (it manages every key)",
        ));
    }
    let (key, record) = ctx.catalog.create_key(scope, name, folder).await?;
    let created = views::KeyCreated {
        record: views::api_key(&record),
        key: &key,
    };
    Ok(created_once(&views::Data { data: created }))
}

pub async fn revoke(ctx: &Ctx, req: &Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    if !keys::is_id(&id) {
        return Err(ApiError::NotFound("API key"));
    }
    ctx.catalog.revoke_key(id).await?;
    Ok(json(StatusCode::OK, &views::Success { success: true }))
}

fn valid_name(name: &str) -> bool {
    name.chars().count() <= MAX_NAME_CHARS && !name.chars().any(char::is_control)
}
