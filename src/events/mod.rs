//! Events: webhooks told of every change, at least once. The catalog writes each event
//! in the commit of its change, into the outbox of every webhook that wants it (see
//! `model::Event` and `catalog::WebhookWrite`); the sender here delivers from there.
//!
//! - `Webhooks`: the webhooks story the API serves (create, list, remove, ping, attempts);
//! - `sign`: Standard Webhooks signatures; `target`: where deliveries may go;
//! - `sender`: the delivery loop (one per cluster), its retries, order and metrics;
//! - `payload`: the body of a delivery.

mod payload;
pub mod sender;
pub mod sign;
pub mod target;

use serde::Deserialize;

use crate::actors::catalog::CatalogHandle;
use crate::catalog::{CatalogError, Outcome, WebhookWrite};
use crate::model::{
    ATTEMPTS_KEPT, Attempt, EVERY_EVENT, Event, EventType, WebhookRecord, now_us, random_token,
};

pub use payload::payload;
pub use target::TargetError;

/// `[webhooks]`: how deliveries are made and retried.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Deliver to loopback, private and link-local addresses (tests, intranets).
    pub allow_private_targets: bool,
    /// The longest one delivery may take, in seconds.
    pub timeout_secs: u64,
    /// How long an event is retried before it is given up, in seconds.
    pub retry_window_secs: u64,
    /// The first retry's delay, in milliseconds; each next one doubles it (with jitter).
    pub retry_base_ms: u64,
    /// The longest delay between two tries, in seconds.
    pub retry_max_delay_secs: u64,
    /// Events kept waiting per webhook; newer ones beyond are dropped (and counted).
    pub max_pending: u64,
    /// Deliveries in flight at once per webhook (never two of one item).
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout_secs: 10,
            retry_window_secs: 86_400,
            retry_base_ms: 1000,
            retry_max_delay_secs: 3600,
            max_pending: 10_000,
            concurrency: 4,
        }
    }
}

impl WebhookConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.timeout_secs == 0
            || self.retry_window_secs == 0
            || self.retry_base_ms == 0
            || self.retry_max_delay_secs == 0
            || self.max_pending == 0
            || self.concurrency == 0
        {
            return Err("webhooks: every limit and delay must be greater than zero".into());
        }
        Ok(())
    }
}

/// Webhooks at most (each has a sender task and an outbox).
pub const MAX_WEBHOOKS: usize = 100;
/// The longest description.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// Why a webhook could not be made as asked.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(
        "\"events\" is a non-empty list of event types ({known}) or [\"*\"] for all; unknown: {0}",
        known = known_types()
    )]
    Events(String),
    #[error(
        "\"description\" is at most {MAX_DESCRIPTION_CHARS} characters, without control characters"
    )]
    Description,
    #[error("at most {MAX_WEBHOOKS} webhooks may exist; remove one first")]
    TooMany,
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

fn known_types() -> String {
    let names: Vec<&str> = EventType::ALL
        .iter()
        .filter(|t| **t != EventType::Ping)
        .map(|t| t.name())
        .collect();
    names.join(", ")
}

/// The webhooks story: what `/api/v1/webhooks` does.
#[derive(Clone)]
pub struct Webhooks {
    catalog: CatalogHandle,
    allow_private: bool,
}

impl Webhooks {
    pub fn new(catalog: CatalogHandle, config: &WebhookConfig) -> Self {
        Self {
            catalog,
            allow_private: config.allow_private_targets,
        }
    }

    /// Makes a webhook; its record carries the secret (shown this once).
    pub async fn create(
        &self,
        url: &str,
        events: Vec<String>,
        description: String,
    ) -> Result<WebhookRecord, WebhookError> {
        let url = target::check(url, self.allow_private)?;
        let unknown: Vec<&str> = events
            .iter()
            .map(String::as_str)
            .filter(|e| {
                *e != EVERY_EVENT && EventType::parse(e).is_none_or(|t| t == EventType::Ping)
            })
            .collect();
        if events.is_empty() || !unknown.is_empty() {
            return Err(WebhookError::Events(unknown.join(", ")));
        }
        if description.chars().count() > MAX_DESCRIPTION_CHARS
            || description.chars().any(char::is_control)
        {
            return Err(WebhookError::Description);
        }
        if self.catalog.webhooks().await?.len() >= MAX_WEBHOOKS {
            return Err(WebhookError::TooMany);
        }
        let mut events = events;
        events.sort();
        events.dedup();
        loop {
            let record = WebhookRecord {
                id: format!("wh_{}", random_token(16)),
                url: url.to_string(),
                events: events.clone(),
                description: description.clone(),
                secret: sign::new_secret(),
                created_us: now_us(),
                disabled: None,
                dropped: 0,
            };
            match self
                .catalog
                .webhook_write(WebhookWrite::Add(record.clone()))
                .await
            {
                Err(CatalogError::IdTaken) => continue,
                other => return other.map(|_| record).map_err(Into::into),
            }
        }
    }

    /// Every webhook, oldest first, with the events waiting for each.
    pub async fn list(&self) -> Result<Vec<(WebhookRecord, u64)>, CatalogError> {
        let mut hooks = self.catalog.webhooks().await?;
        hooks.sort_by_key(|h| h.created_us);
        let backlogs = self.catalog.backlogs().await?;
        Ok(hooks
            .into_iter()
            .map(|h| {
                let pending = backlogs
                    .iter()
                    .find(|b| b.webhook == h.id)
                    .map_or(0, |b| b.pending);
                (h, pending)
            })
            .collect())
    }

    pub async fn remove(&self, id: &str) -> Result<(), CatalogError> {
        self.catalog
            .webhook_write(WebhookWrite::Remove { id: id.to_owned() })
            .await
            .map(drop)
    }

    /// Queues a `webhook.ping` for webhook `id` only; its event id.
    pub async fn ping(&self, id: &str) -> Result<String, CatalogError> {
        let event = Event::ping(id);
        let event_id = event.id.clone();
        let write = WebhookWrite::Ping {
            id: id.to_owned(),
            event,
        };
        match self.catalog.webhook_write(write).await? {
            Outcome::Done => Ok(event_id),
            _ => Err(CatalogError::Unavailable),
        }
    }

    /// Webhook `id`'s last delivery attempts, newest first.
    pub async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, CatalogError> {
        let hooks = self.catalog.webhooks().await?;
        if !hooks.iter().any(|h| h.id == id) {
            return Err(CatalogError::NotFound("webhook"));
        }
        self.catalog.attempts(id, ATTEMPTS_KEPT).await
    }
}

/// Whether `s` is shaped like a webhook id.
pub fn is_webhook_id(s: &str) -> bool {
    s.len() == 19 && s.starts_with("wh_") && s.bytes().skip(3).all(|b| b.is_ascii_alphanumeric())
}
