//! Darkroom's vocabulary: what a media item is, where it lives (folders), who may touch it
//! (API keys and scopes), how it is listed (queries and pages), and how ids, tokens and
//! timestamps are made. Every layer speaks these types; the catalog only persists them.

mod access;
mod event;
mod fold;
mod folder;
pub mod id;
mod media;
mod media_type;
mod preset;
mod query;
mod synthetic;

pub use access::{ApiKeyRecord, Scope};
pub use event::{
    ATTEMPTS_KEPT, Attempt, Backlog, EVERY_EVENT, Event, EventType, Next, Queued, Settled, Subject,
    WebhookRecord,
};
pub use fold::fold;
pub use folder::FolderPath;
pub use id::{ID_LEN, new_media_id, new_storage_token, now_us, random_token, rfc3339};
pub use media::{
    ConfirmLease, JobResult, MediaPatch, MediaRecord, PresignRecord, Processing, Status,
    VariantRecord, Visibility,
};
pub use media_type::{Kind, MediaType};
pub use preset::{CropRecord, CropSize, MAX_CROP_SIDE, Presets};
pub use query::{ListQuery, Page, QueryBound, SortField, cursor};
