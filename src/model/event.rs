//! Events: what changed in the library, recorded in the commit that changes it (the
//! outbox), and the webhooks they are delivered to. The catalog stores these; the
//! sender (`crate::events`) delivers them.

use serde::{Deserialize, Serialize};

use super::id::{now_us, random_token};
use super::media::{MediaPatch, MediaRecord};

/// What happened. The names are the `type` of the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// An item was created (an upload's 201, a presign's confirm).
    #[serde(rename = "media.created")]
    Created,
    /// Everything the item will have exists: variants, crops, placeholders (right after
    /// `media.created` for an item that needs no processing).
    #[serde(rename = "media.ready")]
    Ready,
    /// Its processing failed (`processingError` says why).
    #[serde(rename = "media.failed")]
    Failed,
    /// Its metadata or visibility changed (`changed` names the fields).
    #[serde(rename = "media.updated")]
    Updated,
    /// Its file was replaced (`media.ready` follows once the new variants exist).
    #[serde(rename = "media.replaced")]
    Replaced,
    /// It was deleted; the payload is the item as it was.
    #[serde(rename = "media.deleted")]
    Deleted,
    #[serde(rename = "folder.created")]
    FolderCreated,
    #[serde(rename = "folder.deleted")]
    FolderDeleted,
    /// `POST /api/v1/webhooks/{id}/test`: to that webhook only.
    #[serde(rename = "webhook.ping")]
    Ping,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        Self::Created,
        Self::Ready,
        Self::Failed,
        Self::Updated,
        Self::Replaced,
        Self::Deleted,
        Self::FolderCreated,
        Self::FolderDeleted,
        Self::Ping,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Created => "media.created",
            Self::Ready => "media.ready",
            Self::Failed => "media.failed",
            Self::Updated => "media.updated",
            Self::Replaced => "media.replaced",
            Self::Deleted => "media.deleted",
            Self::FolderCreated => "folder.created",
            Self::FolderDeleted => "folder.deleted",
            Self::Ping => "webhook.ping",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// An item, as written by the change (as it was, for a delete); `changed` names the
    /// fields a `media.updated` set (as the API spells them).
    Media {
        record: Box<MediaRecord>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<String>,
    },
    Folder {
        path: String,
    },
    Ping {
        webhook: String,
    },
}

/// One event: its id (the `webhook-id` of every delivery of it, retries included) and
/// when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub at_us: u64,
    pub subject: Subject,
}

impl Event {
    fn new(kind: EventType, subject: Subject) -> Self {
        Self {
            id: format!("msg_{}", random_token(24)),
            kind,
            at_us: now_us(),
            subject,
        }
    }

    /// `kind` of item `record` as the change wrote it.
    pub fn media(kind: EventType, record: &MediaRecord) -> Self {
        Self::new(
            kind,
            Subject::Media {
                record: Box::new(record.clone()),
                changed: Vec::new(),
            },
        )
    }

    /// `media.updated`, naming the fields `patch` set.
    pub fn updated(record: &MediaRecord, patch: &MediaPatch) -> Self {
        Self::changed(record, patch.fields())
    }

    /// `media.updated` of the fields `changed`.
    pub fn changed(record: &MediaRecord, changed: Vec<&str>) -> Self {
        Self::new(
            EventType::Updated,
            Subject::Media {
                record: Box::new(record.clone()),
                changed: changed.into_iter().map(str::to_owned).collect(),
            },
        )
    }

    pub fn folder(kind: EventType, path: &str) -> Self {
        Self::new(
            kind,
            Subject::Folder {
                path: path.to_owned(),
            },
        )
    }

    pub fn ping(webhook: &str) -> Self {
        Self::new(
            EventType::Ping,
            Subject::Ping {
                webhook: webhook.to_owned(),
            },
        )
    }

    /// The events of a new item (an upload, a confirm): `media.created`, and
    /// `media.ready` at once when it needs no processing.
    pub fn arrived(record: &MediaRecord) -> Vec<Self> {
        let mut events = vec![Self::media(EventType::Created, record)];
        if !record.is_processing() {
            events.push(Self::media(EventType::Ready, record));
        }
        events
    }

    /// The events of a replaced file: `media.replaced`, and `media.ready` at once when
    /// the new file needs no processing.
    pub fn replaced(record: &MediaRecord) -> Vec<Self> {
        let mut events = vec![Self::media(EventType::Replaced, record)];
        if !record.is_processing() {
            events.push(Self::media(EventType::Ready, record));
        }
        events
    }

    /// The end of an item's processing: `media.ready`, or `media.failed`.
    pub fn finished(record: &MediaRecord) -> Self {
        let failed = record
            .processing
            .as_ref()
            .is_some_and(|p| p.status == super::media::Status::Failed);
        let kind = if failed {
            EventType::Failed
        } else {
            EventType::Ready
        };
        Self::media(kind, record)
    }

    /// What the events of one webhook are ordered by: the events of one item (of one
    /// folder) reach it in the order they were committed.
    pub fn key(&self) -> &str {
        match &self.subject {
            Subject::Media { record, .. } => &record.id,
            Subject::Folder { path } => path,
            Subject::Ping { webhook } => webhook,
        }
    }
}

/// A webhook: where events are delivered, which ones, and the secret that signs them
/// (never in `Debug`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    /// Event type names, or `*` for every one.
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
    /// `whsec_` and the base64 of the key (Standard Webhooks).
    pub secret: String,
    pub created_us: u64,
    /// Why deliveries stopped (the receiver answered 410); `None` while enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<String>,
    /// Events dropped undelivered: over `webhooks.max_pending`, out of retries, or
    /// pending when the webhook was disabled.
    #[serde(default)]
    pub dropped: u64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("secret", &"whsec_...")
            .field("disabled", &self.disabled)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// The `events` entry that subscribes to every type.
pub const EVERY_EVENT: &str = "*";

impl WebhookRecord {
    /// Whether events of `kind` go to this webhook (a ping goes to its own only).
    pub fn wants(&self, kind: EventType) -> bool {
        self.disabled.is_none()
            && kind != EventType::Ping
            && self
                .events
                .iter()
                .any(|e| e == EVERY_EVENT || e == kind.name())
    }
}

/// An event waiting in a webhook's outbox: `seq` orders the webhook's events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    #[serde(skip)]
    pub seq: u64,
    pub event: Event,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// Not tried again before this time (µs).
    pub due_us: u64,
}

/// One delivery attempt, as `GET /api/v1/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at_us: u64,
    pub event: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// 1 for the first try.
    pub attempt: u32,
    /// The receiver's status code, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// What became of an outbox entry after an attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Next {
    /// Delivered: out of the outbox.
    Delivered,
    /// Tried again at this time (µs).
    Retry { due_us: u64 },
    /// Given up (out of its retry window): out of the outbox, counted as dropped.
    GiveUp,
    /// The receiver said it is gone (410): the webhook is disabled with this reason and
    /// its outbox emptied (counted as dropped).
    Disable { reason: String },
}

/// An attempt's end, for the catalog to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub webhook: String,
    pub seq: u64,
    pub attempt: Attempt,
    pub next: Next,
}

/// How many events are waiting for a webhook, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backlog {
    pub webhook: String,
    pub pending: u64,
    /// When the oldest waiting event happened (µs).
    pub oldest_us: Option<u64>,
}

/// Attempts kept per webhook for `GET .../deliveries` (the newest).
pub const ATTEMPTS_KEPT: usize = 100;

impl MediaPatch {
    /// The fields this patch sets, as the API spells them.
    pub fn fields(&self) -> Vec<&'static str> {
        let set = [
            ("alt", self.alt.is_some()),
            ("title", self.title.is_some()),
            ("description", self.description.is_some()),
            ("folder", self.folder.is_some()),
            ("focalX", self.focal_x.is_some()),
            ("focalY", self.focal_y.is_some()),
            ("visibility", self.visibility.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(f, _)| f)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            let json = serde_json::to_string(&t).expect("json");
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        assert_eq!(EventType::parse("media.nothing"), None);
    }

    #[test]
    fn a_webhook_wants_what_it_names_and_pings_go_nowhere_else() {
        let mut w = WebhookRecord {
            id: "wh_1".into(),
            url: "https://example.com/".into(),
            events: vec!["media.ready".into()],
            description: String::new(),
            secret: "whsec_x".into(),
            created_us: 1,
            disabled: None,
            dropped: 0,
        };
        assert!(w.wants(EventType::Ready) && !w.wants(EventType::Created));
        w.events = vec![EVERY_EVENT.into()];
        assert!(w.wants(EventType::Created) && !w.wants(EventType::Ping));
        w.disabled = Some("410".into());
        assert!(!w.wants(EventType::Created));
    }

    #[test]
    fn a_patch_names_the_fields_it_sets() {
        let patch = MediaPatch {
            alt: Some(None),
            focal_x: Some(1.0),
            ..Default::default()
        };
        assert_eq!(patch.fields(), ["alt", "focalX"]);
        assert!(MediaPatch::default().fields().is_empty());
    }
}
