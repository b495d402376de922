//! `/api/v1/webhooks`: webhooks managed while the server runs (the `admin` scope). The
//! story is `events::Webhooks`; this reads requests and shapes answers.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::Value;

use super::{read_json_object, views};
use crate::error::ApiError;
use crate::events::is_webhook_id;
use crate::http::response::{Resp, created_once, json};
use crate::http::{Ctx, auth};
use crate::model::Scope;

pub async fn list(ctx: &Ctx, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    let hooks = ctx.webhooks.list().await?;
    let data: Vec<_> = hooks.iter().map(|(h, n)| views::webhook(h, *n)).collect();
    Ok(json(StatusCode::OK, &views::Data { data }))
}

/// 201 with the webhook and its secret, shown this once (`Cache-Control: no-store`).
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    let body = read_json_object(ctx, req).await?;
    let url = match body.get("url") {
        Some(Value::String(u)) => u.as_str(),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_webhook_url",
                "the body needs \"url\": the http:// or https:// address to deliver to",
            ));
        }
    };
    let events = match body.get("events") {
        Some(Value::Array(list)) => list
            .iter()
            .map(|e| e.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>(),
        _ => None,
    }
    .ok_or(ApiError::bad_request(
        "invalid_events",
        "the body needs \"events\": a list of event types, or [\"*\"] for all",
    ))?;
    let description = match body.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_description",
                "\"description\" is a string",
            ));
        }
    };
    let record = ctx.webhooks.create(url, events, description).await?;
    let created = views::WebhookCreated {
        record: views::webhook(&record, 0),
        secret: &record.secret,
    };
    Ok(created_once(&views::Data { data: created }))
}

pub async fn remove(ctx: &Ctx, req: &Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    ctx.webhooks.remove(webhook_id(&id)?).await?;
    Ok(json(StatusCode::OK, &views::Success { success: true }))
}

/// 202: a `webhook.ping` is queued for this webhook only.
pub async fn ping(ctx: &Ctx, req: &Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    let event_id = ctx.webhooks.ping(webhook_id(&id)?).await?;
    Ok(json(
        StatusCode::ACCEPTED,
        &views::Data {
            data: views::PingQueued { event_id },
        },
    ))
}

pub async fn deliveries(ctx: &Ctx, req: &Request<Incoming>, id: String) -> Result<Resp, ApiError> {
    auth::require(ctx, req.headers(), Scope::Admin).await?;
    let attempts = ctx.webhooks.attempts(webhook_id(&id)?).await?;
    let data: Vec<_> = attempts.iter().map(views::attempt).collect();
    Ok(json(StatusCode::OK, &views::Data { data }))
}

fn webhook_id(id: &str) -> Result<&str, ApiError> {
    if is_webhook_id(id) {
        Ok(id)
    } else {
        Err(ApiError::NotFound("webhook"))
    }
}
