//! Steps 1-3 for one received file: admit it, check what it is, remove its location and
//! camera metadata, and store it under a new key.

use std::time::{Duration, Instant};

use super::{Ingest, IngestError};
use crate::actors::processing::Reservation;
use crate::media::{self, Inspection, MediaError, sniff};
use crate::metrics as m;
use crate::model::{
    FolderPath, MediaRecord, MediaType, Processing, Visibility, new_media_id, now_us,
};
use crate::storage::key::{is_private, moved, new_key};
use crate::storage::{Held, Sink, StorageError};

/// A file already committed to storage, waiting for its catalog record.
pub struct Staged {
    pub filename: String,
    pub media_type: MediaType,
    pub size: u64,
    pub inspection: Inspection,
    pub storage_key: String,
    pub created_us: u64,
    /// Raster images hold a backlog slot until the request ends.
    pub slot: Option<Reservation>,
    /// Removes the stored file should this be dropped before its record is committed.
    pub(super) guard: Unclaimed,
}

/// A freshly stored file that no record names yet. Dropped while unclaimed (its request
/// failed, or its client went away mid-request), it is removed as soon as the catalog has
/// settled every write that might name it: a record committed meanwhile keeps it.
/// Until then the orphan sweep leaves the file alone (`held`), however long the request
/// takes.
pub(super) struct Unclaimed {
    /// `None` once claimed.
    key: Option<String>,
    held: Option<Held>,
    /// The confirm's lease on the key's presign: given back once the file is removed,
    /// never before (a retry must not meet this one's delete).
    lease: Option<Lease>,
    ingest: Ingest,
}

/// A confirm's hold on its presign (`Write::BeginConfirm`): its token, and when it runs
/// out (after that another confirm may take the presign and write the key).
pub(super) struct Lease {
    pub token: String,
    pub until: Instant,
}

/// The least time left on a lease for its holder to start a write at the key, or to
/// delete what it wrote there: more than one write may take (the backend's deadlines).
const LEASE_MARGIN: Duration = Duration::from_secs(120);

impl Lease {
    /// Whether there is time left to write or delete at the key before another confirm
    /// may take over.
    pub(super) fn has_room(&self) -> bool {
        Instant::now() + LEASE_MARGIN < self.until
    }
}

impl Unclaimed {
    /// Holds `key` from the sweep before its file is written.
    pub(super) fn new(ingest: &Ingest, key: String) -> Self {
        Self {
            held: Some(ingest.storage.hold(key.clone())),
            key: Some(key),
            lease: None,
            ingest: ingest.clone(),
        }
    }

    /// As `new`, for the key of a presign that a confirm holds with `lease`.
    pub(super) fn for_confirm(ingest: &Ingest, key: String, lease: Lease) -> Self {
        let mut unclaimed = Self::new(ingest, key);
        unclaimed.lease = Some(lease);
        unclaimed
    }

    /// Whether its confirm may still write at the key (see `Lease::has_room`).
    pub(super) fn may_write(&self) -> bool {
        self.lease.as_ref().is_none_or(Lease::has_room)
    }

    /// Its record is committed: the file stays.
    fn claimed(&mut self) {
        self.key = None;
        self.held = None; // the committed record claims it
    }

    /// The work of settling it (see `settle`), to run wherever it is started from.
    fn settling(&mut self) -> Option<impl Future<Output = ()> + Send + 'static> {
        let (held, lease) = (self.held.take(), self.lease.take());
        let key = self.key.take()?;
        let ingest = self.ingest.clone();
        Some(async move {
            settle(&ingest, key, lease).await;
            drop(held); // a record claims it now, or it is gone (or the sweep decides)
        })
    }

    /// As dropping it, but done before this returns: a confirm that failed answers once
    /// its presign is free for a retry. Runs on a task of its own, so it ends the same
    /// should the caller go away meanwhile.
    pub(super) async fn release(mut self) {
        if let Some(settling) = self.settling() {
            let _ = tokio::spawn(settling).await;
        }
    }
}

impl Drop for Unclaimed {
    fn drop(&mut self) {
        // Without a runtime (the process is ending) the start-up sweep decides instead
        // (and a confirm's lease runs out).
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(settling) = self.settling() {
            runtime.spawn(settling);
        }
    }
}

/// What becomes of an unclaimed file: once every write that might name it has settled,
/// removed unless a record claims it; a confirm's presign is given back after that. A
/// confirm whose lease is about to run out leaves the key alone (the next confirm writes
/// it anew, or the orphan sweep removes it): another may be writing there soon.
async fn settle(ingest: &Ingest, key: String, lease: Option<Lease>) {
    let catalog = &ingest.catalog;
    if catalog.barrier().await.is_err() || !matches!(catalog.owner_of_file(&key).await, Ok(None)) {
        return;
    }
    match lease {
        None => ingest.storage.discard(vec![key]),
        Some(lease) if !lease.has_room() => {
            tracing::warn!(%key, "a confirm outlived its lease; the orphan sweep removes what it wrote");
        }
        Some(Lease { token, .. }) => {
            let removed = ingest.storage.discard_now(vec![key.clone()]).await;
            if removed.is_ok_and(|r| r.contains(&key)) {
                let _ = catalog.end_confirm(key, token).await;
            } // else its lease runs out first: a retry then writes the key anew
        }
    }
}

impl Staged {
    /// Its record is committed: the stored file stays.
    pub(super) fn recorded(&mut self) {
        self.guard.claimed();
    }

    /// The new item this file becomes, in `folder` with `alt`.
    pub fn record(&self, folder: &FolderPath, alt: Option<&str>) -> MediaRecord {
        MediaRecord {
            id: new_media_id(),
            filename: self.filename.clone(),
            media_type: self.media_type,
            size: self.size,
            width: self.inspection.dims.map(|d| d.width),
            height: self.inspection.dims.map(|d| d.height),
            duration: self.inspection.duration,
            frames: self.inspection.frames,
            alt: alt.map(str::to_owned),
            title: None,
            description: None,
            folder: folder.as_str().to_owned(),
            focal_x: 50.0,
            focal_y: 50.0,
            created_us: self.created_us,
            storage_key: self.storage_key.clone(),
            processing: Processing::initial(self.media_type),
            crop_version: 0,
            updated_us: None,
            visibility: visibility_of(&self.storage_key),
        }
    }
}

/// The visibility of an item whose original is stored at `key`: its place says.
pub fn visibility_of(key: &str) -> Visibility {
    if is_private(key) {
        Visibility::Private
    } else {
        Visibility::Public
    }
}

impl Ingest {
    /// A new spool for one incoming file (see `storage::Sink`), unless the data dir is
    /// below its free-space floor or storage is known to be down.
    pub async fn begin(&self) -> Result<Sink, IngestError> {
        self.admit_bytes()?;
        Ok(self.storage.begin().await?)
    }

    /// New bytes are taken only with room on disk and storage answering (see `Health`).
    pub(super) fn admit_bytes(&self) -> Result<(), IngestError> {
        self.health.admit_upload().map_err(|refusal| {
            metrics::counter!(m::UPLOADS_DECLINED, "reason" => refusal.label()).increment(1);
            refusal.into()
        })
    }

    /// Admits, inspects, strips and stores one received file. The outer error fails the
    /// request (storage, a full backlog); the inner one refuses just this file.
    pub async fn stage(
        &self,
        mut sink: Sink,
        filename: String,
        visibility: Visibility,
    ) -> Result<Result<Staged, MediaError>, IngestError> {
        let refused = |e| {
            metrics::counter!(m::UPLOAD_FILES, "type" => "unknown", "outcome" => "refused")
                .increment(1);
            Ok(Err(e))
        };
        if sink.is_empty() {
            return refused(MediaError::Empty);
        }
        let Some(media_type) = sniff::sniff(sink.head()) else {
            return refused(MediaError::Unsupported);
        };
        let slot = self.admit(media_type)?;
        let inspection = match self.inspect_and_strip(&mut sink, media_type).await? {
            Ok(i) => i,
            Err(e) => return refused(e),
        };
        let created_us = now_us();
        let key = new_key(media_type, created_us, visibility);
        let (size, guard) = self
            .commit_new(sink, key.clone(), media_type.mime())
            .await?;
        Ok(Ok(Staged {
            filename,
            media_type,
            size,
            inspection,
            storage_key: key,
            created_us,
            slot,
            guard,
        }))
    }

    /// `staged` in the place of `visibility` (a form that named it after its files): its
    /// file copied to a new key there, the first copy removed as an unclaimed file is.
    pub async fn relocate(
        &self,
        mut staged: Staged,
        visibility: Visibility,
    ) -> Result<Staged, IngestError> {
        if visibility_of(&staged.storage_key) == visibility {
            return Ok(staged);
        }
        let key = moved(&staged.storage_key, visibility)(&staged.storage_key);
        let guard = Unclaimed::new(self, key.clone());
        if !self
            .storage
            .copy(staged.storage_key.clone(), key.clone())
            .await?
        {
            let gone = std::io::Error::new(std::io::ErrorKind::NotFound, "staged file gone");
            return Err(StorageError::Io(gone).into());
        }
        staged.storage_key = key;
        staged.guard = guard; // the old guard, dropped, removes the first copy
        Ok(staged)
    }

    /// Commits a file under a new key on a task of its own, which outlives the request:
    /// should the request go away first, the task's answer is dropped with its guard, and
    /// the file with it.
    async fn commit_new(
        &self,
        sink: Sink,
        key: String,
        mime: &'static str,
    ) -> Result<(u64, Unclaimed), IngestError> {
        let ingest = self.clone();
        let commit = tokio::spawn(async move {
            let mut guard = Unclaimed::new(&ingest, key.clone());
            let size = match ingest.storage.commit(sink, key.clone(), mime).await {
                Ok(size) => size,
                Err(e @ (StorageError::Remote(_) | StorageError::Down)) => {
                    // A PUT that failed or timed out on our side may still land: the key
                    // goes on the durable delete queue before the client hears of it.
                    if let Err(queued) = ingest.catalog.queue_deletes(vec![key]).await {
                        tracing::warn!(error = %queued, "failed upload not queued; the sweep will find it");
                    }
                    guard.key = None; // queued: the drain removes it
                    return Err(e);
                }
                Err(e) => return Err(e), // nothing stored: the guard's check finds no owner
            };
            Ok::<_, StorageError>((size, guard))
        });
        let committed = commit.await.map_err(std::io::Error::other);
        Ok(committed.map_err(StorageError::from)??)
    }

    /// Backpressure: a raster image needs a slot in the processing backlog.
    pub(super) fn admit(&self, media_type: MediaType) -> Result<Option<Reservation>, IngestError> {
        if !media_type.is_raster() {
            return Ok(None);
        }
        match self.processing.try_reserve() {
            Some(slot) => Ok(Some(slot)),
            None => {
                metrics::counter!(m::PROCESSING_REJECTED).increment(1);
                Err(IngestError::Busy {
                    backlog: self.catalog.job_count(),
                    retry_after: self.settings.retry_after_secs,
                })
            }
        }
    }

    /// Probes a spooled file (size, duration, pixel limit, SVG safety), then cleans it in
    /// place (metadata removed, an SVG rewritten). Types with nothing to probe or clean
    /// are not even written out for it. The inner error refuses the file; a panic in the
    /// checks refuses it too, reported as the fault it is.
    pub(super) async fn inspect_and_strip(
        &self,
        sink: &mut Sink,
        media_type: MediaType,
    ) -> Result<Result<Inspection, MediaError>, IngestError> {
        if !media_type.needs_inspection() {
            return Ok(Ok(Inspection::default()));
        }
        sink.flush().await?;
        let path = sink.path().to_owned();
        let limits = self.settings.limits;
        let inspected = tokio::task::spawn_blocking(move || {
            checked(&path, media_type, || {
                let inspection = media::inspect(&path, media_type, &limits)?;
                media::clean_in_place(&path, media_type, &limits)?;
                Ok(inspection)
            })
        })
        .await
        .map_err(|e| StorageError::from(std::io::Error::other(e)))?;
        match inspected {
            Err(MediaError::Probe(media::probe::ProbeError::Io(e))) => {
                Err(StorageError::from(e).into())
            }
            other => Ok(other),
        }
    }
}

/// Runs the checks of one upload (`input` names it in the log), turning a panic in them
/// (a fault of ours, never the file's) into a refusal: logged with the input, counted in
/// `darkroom_panics_total`, answered 400 `unprocessable_file`.
pub(super) fn checked<T>(
    input: &std::path::Path,
    media_type: MediaType,
    check: impl FnOnce() -> Result<T, MediaError>,
) -> Result<T, MediaError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(
                input = %input.display(),
                mime = media_type.mime(),
                panic = %message,
                "checking an upload panicked; the file is refused"
            );
            metrics::counter!(m::PANICS, "where" => "upload_check").increment(1);
            Err(MediaError::Unprocessable)
        }
    }
}
