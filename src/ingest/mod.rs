//! The upload story, shared by `POST /api/v1/media` and `POST /api/v1/media/confirm`:
//!
//! 1. **admit** (`stage::admit`): a raster image needs a slot in the processing backlog,
//!    else the request is refused with 503 before its file is kept;
//! 2. **stage** (`stage`): the spooled file is sniffed, inspected (size, pixel limit, SVG
//!    safety, video metadata) and stripped of location and camera metadata;
//! 3. **store**: it is committed to storage under a new server-made key;
//! 4. **record** (`record`): every accepted file of the request is written to the catalog
//!    in one transaction, images with their processing job;
//! 5. **job**: the jobs are handed to the processing pool, and with `?wait=true` the
//!    answer waits for them (bounded).
//!
//! `confirm` runs the same steps on an object a client uploaded with a presigned URL.
//! Plain arguments in, items or an `IngestError` out: nothing here knows about HTTP.

mod confirm;
mod record;
mod replace;
mod stage;

use std::sync::Arc;
use std::time::Duration;

pub use confirm::Confirmation;
pub use stage::{Staged, visibility_of};

use crate::actors::Handles;
use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::catalog::CatalogError;
use crate::config::Config;
use crate::health::{Health, Refusal};
use crate::media::MediaError;
use crate::storage::StorageError;

/// Why an upload or a confirm failed as a whole (a refused file of a multi-file upload
/// is not an error: see `Ingest::stage`).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "image processing is behind ({backlog} images waiting); retry this upload in \
         {retry_after} s. Documents and videos are still accepted"
    )]
    Busy { backlog: u64, retry_after: u64 },
    #[error("nothing was uploaded to this storageKey; PUT the file to the uploadUrl first")]
    UploadMissing,
    #[error("the uploaded object is not the {expected} bytes that were presigned")]
    SizeMismatch { expected: u64 },
    #[error("the uploaded bytes are not a {expected} file; the object was deleted")]
    TypeMismatch { expected: &'static str },
    #[error("{filename}: {error}")]
    Refused { filename: String, error: MediaError },
    #[error(
        "the new file is {new} and this item holds {held}: replace within the same kind \
         (image, document or video), or upload a new item"
    )]
    KindMismatch {
        new: &'static str,
        held: &'static str,
    },
    /// Out of space, or storage known to be down: declined before a byte is kept.
    #[error(transparent)]
    Declined(#[from] Refusal),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the ingest steps need from config.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The bounds of every parse of an upload.
    pub limits: crate::media::Limits,
    /// Longest `?wait=true` hold.
    pub wait_timeout: Duration,
    /// `Retry-After` of a refusal for a full backlog, in seconds.
    pub retry_after_secs: u64,
}

/// The ingest workflow over the actors it drives.
#[derive(Clone)]
pub struct Ingest {
    catalog: CatalogHandle,
    storage: StorageHandle,
    processing: ProcessingHandle,
    health: Arc<Health>,
    settings: Settings,
    /// Copies checked in place at once: each holds a blocking thread on its ranged reads
    /// for as long as the store takes to answer, so they get a quarter of the blocking
    /// pool, and commits and file I/O keep the rest.
    ranged_checks: Arc<tokio::sync::Semaphore>,
}

impl Ingest {
    pub fn new(handles: &Handles, config: &Config, health: Arc<Health>) -> Self {
        Self {
            catalog: handles.catalog.clone(),
            storage: handles.storage.clone(),
            processing: handles.processing.clone(),
            health,
            settings: Settings {
                limits: config.media_limits(),
                wait_timeout: Duration::from_secs(config.processing.wait_timeout_secs),
                retry_after_secs: config.processing.retry_after_secs,
            },
            ranged_checks: Arc::new(tokio::sync::Semaphore::new(
                (config.server.blocking_threads / 4).max(1),
            )),
        }
    }
}
