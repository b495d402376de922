//! Bearer-key authentication and scope checks.

use hyper::HeaderMap;
use hyper::header::AUTHORIZATION;

use super::Ctx;
use crate::error::ApiError;
use crate::model::{ApiKeyRecord, Scope};

/// The key presented in `Authorization: Bearer <key>`, if any. A header that is present
/// but not a bearer token, or a key the catalog does not know, is a 401.
pub async fn caller(ctx: &Ctx, headers: &HeaderMap) -> Result<Option<ApiKeyRecord>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be `Bearer <API key>`",
        ))?;
    match ctx.catalog.authenticate(token).await? {
        Some(key) => Ok(Some(key)),
        None => Err(ApiError::Unauthorized("invalid API key")),
    }
}

/// Requires a valid key with at least `scope`.
pub async fn require(
    ctx: &Ctx,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<ApiKeyRecord, ApiError> {
    let key = caller(ctx, headers).await?.ok_or(ApiError::Unauthorized(
        "missing API key: send `Authorization: Bearer <key>`",
    ))?;
    if key.scope.allows(scope) {
        Ok(key)
    } else {
        Err(ApiError::Forbidden)
    }
}
