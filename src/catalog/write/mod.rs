//! The write path: a batch of `Write`s applied in order in one transaction and committed
//! once (the unit of group commit). Each write gets its own answer: a domain failure (not
//! found, not empty) changes nothing and leaves its neighbours alone; a storage failure
//! fails the whole batch.
//!
//! Invariants kept here: every record has its 12 index keys, its 4 counters, its search
//! document and postings, and a `files` row per storage key; an image waiting for variants has a row in `jobs`.

use std::sync::atomic::Ordering;

use redb::{ReadableTable, Table, WriteTransaction};

mod crops;
mod jobs;
mod webhooks;

pub use crops::{CacheCrop, CropCached};
pub(in crate::catalog) use jobs::{
    dropped_crops, out_of_attempts, skipped_crop_keys, unrecordable, with_result,
};

use super::read::{confirmable, live_folders};
use super::tables::{
    ATTEMPTS, COUNTS, CROP_CACHE, CROP_LRU, FILES, FOLDERS, INDEX, ITEM_FILES, JOBS, KEYS, MEDIA,
    META, OUTBOX, PENDING_DELETES, PRESIGNS, WEBHOOKS, entries_of, entry_file, item_file,
};
use super::{Catalog, CatalogError, Result, decode, encode};
use super::{index, search};
use crate::model::{
    ApiKeyRecord, ConfirmLease, Event, EventType, FolderPath, JobResult, Kind, MediaPatch,
    MediaRecord, PresignRecord, Scope, Settled, Visibility, WebhookRecord, now_us,
};

/// One write; a batch of them commits together.
#[derive(Debug)]
pub enum Write {
    /// New items (one upload request), with their files and jobs.
    InsertMedia(Vec<MediaRecord>),
    /// A metadata patch; with `recrop` (crop presets are configured), moving an image's
    /// focal point also queues its crops for deletion and its job to make new ones.
    UpdateMedia {
        id: String,
        patch: MediaPatch,
        recrop: bool,
    },
    /// Removes the item and queues its files for deletion.
    DeleteMedia {
        id: String,
    },
    CreateFolder(FolderPath),
    DeleteFolder(FolderPath),
    PutKey(ApiKeyRecord),
    /// Removes a key (not the last `admin` one).
    RevokeKey {
        id: String,
    },
    /// Files that may exist without a record (a PUT that failed on our side and may still
    /// land): onto the delete queue.
    QueueDeletes(Vec<String>),
    /// Files whose deletion finished: drop them from the delete queue.
    ForgetDeletes(Vec<String>),
    /// Records a processing job's result on its item and removes the job; `source` is
    /// the original it processed (a result for a file since replaced is not recorded).
    FinishJob {
        id: String,
        result: JobResult,
        source: String,
    },
    /// Counts one more start of a job (see `Outcome::JobStarted` / `JobSkipped`); a job
    /// already started `max_attempts` times (a crash each time) is marked failed instead.
    StartJob {
        id: String,
        max_attempts: u32,
    },
    /// Gives back the attempt of a start that ended on an unavailable dependency (not a
    /// crash), so a storage outage does not use up a job's attempts.
    ReleaseJob {
        id: String,
    },
    /// Remembers an issued presigned upload.
    RecordPresign {
        key: String,
        presign: PresignRecord,
    },
    /// Takes an issued, unexpired presign for one confirm (`token`) until `until_us`:
    /// only that confirm writes its key meanwhile; another is refused (`ConfirmInProgress`).
    BeginConfirm {
        key: String,
        token: String,
        now_us: u64,
        until_us: u64,
    },
    /// A confirm that did not create its item gives the presign back (its object removed
    /// first), so a retry may take it.
    EndConfirm {
        key: String,
        token: String,
    },
    /// Turns the presign that confirm `token` holds into its item (and job) atomically: a
    /// second confirm of the same key finds nothing to confirm.
    ConfirmPresign {
        record: Box<MediaRecord>,
        token: String,
        now_us: u64,
    },
    /// Presigns whose objects were deleted by the expiry sweep.
    ForgetPresigns(Vec<String>),
    /// Images whose crops are not the configured presets: their jobs, to run again.
    Recrop(Vec<String>),
    /// The item with a new file: the file's fields of the given record (type, size,
    /// dimensions, storage key, processing) replace the item's, its metadata as it is at
    /// commit stays (a concurrent PATCH is kept); its old files are queued for deletion
    /// and the new one gets its job, in one commit.
    ReplaceFile(Box<MediaRecord>),
    /// A visibility change: item `id`'s files were copied to the new keys of `moved`
    /// (old, new); the record takes them, the old ones go on the delete queue. Refused
    /// (`ItemChanged`) when the item's files are not exactly the old keys any more.
    Move {
        id: String,
        visibility: Visibility,
        moved: Vec<(String, String)>,
    },
    /// `write`, on an item (`Write::item`) that lies in `folder`'s subtree when the write
    /// is applied; else `NotFound`, as for an item that does not exist (a key limited to
    /// the folder: checked in the transaction, so an item moved out meanwhile stays out).
    Within {
        folder: FolderPath,
        write: Box<Write>,
    },
    /// An on-demand crop was written (see `crops.rs`).
    CacheCrop(CacheCrop),
    /// A cached on-demand crop was served.
    TouchCrop {
        id: String,
        key: String,
        now_us: u64,
    },
    /// Webhooks and their outboxes.
    Webhooks(WebhookWrite),
}

/// The writes of webhooks and their outboxes (the events themselves are written by the
/// writes that make them, see `Event`).
#[derive(Debug)]
pub enum WebhookWrite {
    /// A new webhook (an id already taken is refused).
    Add(WebhookRecord),
    /// Removes a webhook, its outbox and its attempts.
    Remove { id: String },
    /// A ping, into webhook `id`'s outbox only.
    Ping { id: String, event: Event },
    /// Delivery attempts that ended, and what becomes of their events (of one webhook);
    /// answers `Outcome::Settled`.
    Settle(Vec<Settled>),
    /// Keeps the first `keep` events of webhook `id`'s outbox and drops the newer ones
    /// (counted on its record): its receiver gets an unbroken prefix of what happened, and
    /// what the sender is delivering stays. Answers `Outcome::Dropped`.
    Trim { id: String, keep: u64 },
}

/// What a successful write produced.
impl Write {
    /// The item a write changes, for the writes a key limited to a folder may send.
    pub fn item(&self) -> Option<&str> {
        match self {
            Self::UpdateMedia { id, .. } | Self::DeleteMedia { id } | Self::Move { id, .. } => {
                Some(id)
            }
            Self::ReplaceFile(file) => Some(&file.id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    /// The record as written (update, replace), and the storage keys this write put on
    /// the delete queue (the caller drains them at once).
    Media {
        record: Box<MediaRecord>,
        queued: Vec<String>,
    },
    /// An item deleted, and the keys queued (every file the catalog knew for it).
    Deleted {
        queued: Vec<String>,
    },
    FolderCreated,
    FolderExisted,
    /// The job should run now.
    JobStarted,
    /// The job must not run: finished, gone, or out of attempts (then recorded failed).
    JobSkipped,
    /// Another node runs the job now (it holds a live lease on it; PostgreSQL only).
    JobElsewhere,
    Job(JobOutcome),
    Crop(CropCached),
    /// Events dropped from an outbox (`WebhookWrite::Trim`).
    Dropped(u64),
    /// Attempts recorded (`WebhookWrite::Settle`): how many of their events were gone
    /// from the outbox already (trimmed), and whether their webhook is still there and
    /// enabled (its sender stops when not).
    Settled {
        missing: u64,
        live: bool,
    },
}

/// A media write's answer: the record (as written, or as it was when deleted) and the
/// storage keys the write queued for deletion, which the caller drains at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub record: MediaRecord,
    pub queued: Vec<String>,
}

/// What recording a job's result found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The item now carries the result; `queued` are the keys of files it no longer has
    /// (crops of presets gone from the config), queued for deletion in the same write for
    /// the caller to drain at once.
    Recorded { queued: Vec<String> },
    /// The item was deleted meanwhile: the files the job wrote belong to nobody.
    ItemGone,
    /// Another run of the same job already recorded it (a restart raced a running job).
    AlreadyDone,
    /// The focal point moved while the job ran: its crops are stale, the job stays.
    Stale,
    /// The item's file was replaced while the job ran: nothing it wrote is the item's.
    Superseded,
}

impl Catalog {
    /// Applies `writes` in order in one transaction and commits once. Each write gets its
    /// own answer: one that finds a record it cannot read (`Corrupt`) fails alone, and the
    /// batch is applied again without it, so its neighbours commit. A batch that fails on
    /// the database itself (I/O, a full disk) fails whole and marks the catalog not
    /// writable until a later one commits (see `writable`); one that failed for want of
    /// disk space is tried once more after releasing the disk reserve (see `reserve`),
    /// so deletes commit on a full disk.
    pub fn apply(&self, writes: Vec<Write>) -> Result<Vec<Result<Outcome>>> {
        let mut left_out: Vec<Option<CatalogError>> = vec![None; writes.len()];
        let mut reserve_tried = false;
        loop {
            match self.apply_once(&writes, &left_out) {
                Ok(results) => {
                    let answers = results.into_iter().zip(left_out);
                    return Ok(answers.map(|(r, out)| out.map_or(r, Err)).collect());
                }
                Err(Failure::Write(i, e)) => left_out[i] = Some(e),
                Err(Failure::Batch(e))
                    if e.is_out_of_space()
                        && !reserve_tried
                        && self.reserve.release()
                        && self.heal().is_ok() =>
                {
                    reserve_tried = true;
                }
                Err(Failure::Batch(e)) => return Err(e),
            }
        }
    }

    fn apply_once(
        &self,
        writes: &[Write],
        left_out: &[Option<CatalogError>],
    ) -> std::result::Result<Vec<Result<Outcome>>, Failure> {
        let applied = self.apply_batch(writes, left_out);
        let failed = matches!(
            applied,
            Err(Failure::Batch(
                CatalogError::Db(_) | CatalogError::Unavailable
            ))
        );
        self.commit_failed.store(failed, Ordering::Relaxed);
        applied
    }

    /// One transaction over the writes not `left_out` (their answers are placeholders).
    fn apply_batch(
        &self,
        writes: &[Write],
        left_out: &[Option<CatalogError>],
    ) -> std::result::Result<Vec<Result<Outcome>>, Failure> {
        let txn = self.write_txn()?;
        let mut results = Vec::with_capacity(writes.len());
        let (jobs_delta, touched, searched, filled);
        {
            let mut tables = Tables::open(&txn)?;
            for (i, write) in writes.iter().enumerate() {
                if left_out[i].is_some() {
                    results.push(Ok(Outcome::Done));
                    continue;
                }
                tables.queued.clear();
                let result = tables.apply(write).map(|outcome| match outcome {
                    Outcome::Media { record, .. } => Outcome::Media {
                        record,
                        queued: std::mem::take(&mut tables.queued),
                    },
                    Outcome::Deleted { .. } => Outcome::Deleted {
                        queued: std::mem::take(&mut tables.queued),
                    },
                    other => other,
                });
                match result {
                    Err(e @ CatalogError::Corrupt(_)) => return Err(Failure::Write(i, e)),
                    Err(e @ CatalogError::Db(_)) => return Err(Failure::Batch(e)),
                    result => results.push(result),
                }
            }
            filled = tables.fan_out()?;
            (jobs_delta, touched) = (tables.jobs_delta, tables.touched);
            searched = tables.search.flush()?;
        }
        if searched {
            // In the same commit: a reader's snapshot says which answers it may reuse.
            let mut meta = txn.open_table(META)?;
            let generation = meta.get(SEARCH_GENERATION)?.map_or(0, |v| v.value());
            meta.insert(SEARCH_GENERATION, generation + 1)?;
        }
        txn.commit().map_err(CatalogError::from)?;
        if filled {
            self.outbox.notify_one();
        }
        self.cache.invalidate(touched.iter().map(String::as_str));
        if jobs_delta >= 0 {
            self.jobs
                .fetch_add(jobs_delta.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.jobs
                .fetch_sub(jobs_delta.unsigned_abs(), Ordering::Relaxed);
        }
        Ok(results)
    }

    /// Applies one write on its own (CLI and tests).
    pub fn apply_single(&self, write: Write) -> Result<Outcome> {
        self.apply(vec![write])?
            .pop()
            .unwrap_or(Err(CatalogError::Unavailable))
    }
}

/// Why a batch did not commit: one write found a record it cannot read (the batch goes
/// again without it), or the database failed (the whole batch fails).
enum Failure {
    Write(usize, CatalogError),
    Batch(CatalogError),
}

impl<E: Into<CatalogError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Batch(e.into())
    }
}

/// `META` key of the search generation (see `tables::META`).
pub(super) const SEARCH_GENERATION: &str = "search_generation";

/// Item `old` moved to `visibility` with its files at the new keys of `moved`, or why not:
/// its files are not exactly the old keys (changed since they were copied), or its
/// variants are still being made (the job would write them at the old place). The same
/// check on both catalogs.
pub(in crate::catalog) fn moving(
    old: &MediaRecord,
    visibility: Visibility,
    moved: &[(String, String)],
) -> Result<MediaRecord> {
    if old.is_processing() {
        return Err(CatalogError::StillProcessing);
    }
    let to: std::collections::HashMap<&str, &str> = moved
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut has = old.storage_keys();
    has.sort();
    let mut copied: Vec<&str> = to.keys().copied().collect();
    copied.sort_unstable();
    let placed = |k: &str| crate::storage::key::is_private(k) == visibility.is_private();
    if old.visibility == visibility || has != copied || !to.values().all(|k| placed(k)) {
        return Err(CatalogError::ItemChanged);
    }
    Ok(old.moved_to(visibility, |k| {
        to.get(k).map_or_else(|| k.to_owned(), |n| (*n).to_owned())
    }))
}

/// A media write's outcome (its queued keys are filled in by `apply_batch`).
fn media(record: MediaRecord) -> Outcome {
    Outcome::Media {
        record: Box::new(record),
        queued: Vec::new(),
    }
}

/// Every table of a write transaction, opened once per batch.
struct Tables<'t> {
    media: Table<'t, &'static str, &'static [u8]>,
    index: Table<'t, &'static [u8], u8>,
    counts: Table<'t, &'static str, u64>,
    folders: Table<'t, &'static str, ()>,
    files: Table<'t, &'static str, &'static str>,
    item_files: Table<'t, &'static str, ()>,
    pending: Table<'t, &'static str, u64>,
    keys: Table<'t, &'static str, &'static [u8]>,
    jobs: Table<'t, &'static str, u32>,
    presigns: Table<'t, &'static str, &'static [u8]>,
    crops: Table<'t, &'static str, &'static [u8]>,
    crop_lru: Table<'t, &'static [u8], ()>,
    webhooks: Table<'t, &'static str, &'static [u8]>,
    outbox: Table<'t, &'static [u8], &'static [u8]>,
    attempts: Table<'t, &'static [u8], &'static [u8]>,
    search: search::Writer<'t>,
    /// Jobs added minus jobs removed in this batch.
    jobs_delta: i64,
    /// Ids of the records this batch wrote or removed (for the read cache).
    touched: Vec<String>,
    /// Keys the current write put on the delete queue.
    queued: Vec<String>,
    /// The events of the batch's writes, for the outboxes (`fan_out`).
    events: Vec<Event>,
    /// An outbox got an event.
    filled: bool,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(Self {
            media: txn.open_table(MEDIA)?,
            index: txn.open_table(INDEX)?,
            counts: txn.open_table(COUNTS)?,
            folders: txn.open_table(FOLDERS)?,
            files: txn.open_table(FILES)?,
            item_files: txn.open_table(ITEM_FILES)?,
            pending: txn.open_table(PENDING_DELETES)?,
            keys: txn.open_table(KEYS)?,
            jobs: txn.open_table(JOBS)?,
            presigns: txn.open_table(PRESIGNS)?,
            crops: txn.open_table(CROP_CACHE)?,
            crop_lru: txn.open_table(CROP_LRU)?,
            webhooks: txn.open_table(WEBHOOKS)?,
            outbox: txn.open_table(OUTBOX)?,
            attempts: txn.open_table(ATTEMPTS)?,
            search: search::Writer::open(txn)?,
            jobs_delta: 0,
            touched: Vec::new(),
            queued: Vec::new(),
            events: Vec::new(),
            filled: false,
        })
    }

    fn apply(&mut self, write: &Write) -> Result<Outcome> {
        match write {
            Write::InsertMedia(records) => self.insert_media(records),
            Write::UpdateMedia { id, patch, recrop } => self.update_media(id, patch, *recrop),
            Write::DeleteMedia { id } => self.delete_media(id),
            Write::CreateFolder(path) => self.create_folder(path),
            Write::DeleteFolder(path) => self.delete_folder(path),
            Write::PutKey(record) => self.put_key(record),
            Write::RevokeKey { id } => self.revoke_key(id),
            Write::QueueDeletes(keys) => self.queue_deletes(keys),
            Write::ForgetDeletes(keys) => self.forget_deletes(keys),
            Write::FinishJob { id, result, source } => self.finish_job(id, result, source),
            Write::StartJob { id, max_attempts } => self.start_job(id, *max_attempts),
            Write::ReleaseJob { id } => self.release_job(id),
            Write::RecordPresign { key, presign } => self.record_presign(key, presign),
            Write::BeginConfirm {
                key,
                token,
                now_us,
                until_us,
            } => self.begin_confirm(key, token, *now_us, *until_us),
            Write::EndConfirm { key, token } => self.end_confirm(key, token),
            Write::ConfirmPresign {
                record,
                token,
                now_us,
            } => self.confirm_presign(record, token, *now_us),
            Write::ForgetPresigns(keys) => self.forget_presigns(keys),
            Write::Recrop(ids) => self.recrop(ids),
            Write::ReplaceFile(record) => self.replace_file(record),
            Write::Move {
                id,
                visibility,
                moved,
            } => self.move_files(id, *visibility, moved),
            Write::Within { folder, write } => {
                let id = write.item().ok_or(CatalogError::NotFound("media item"))?;
                match self.get(id)? {
                    Some(r) if folder.holds(&r.folder) => self.apply(write),
                    _ => Err(CatalogError::NotFound("media item")),
                }
            }
            Write::CacheCrop(crop) => self.cache_crop(crop),
            Write::TouchCrop { id, key, now_us } => self.touch_crop(id, key, *now_us),
            Write::Webhooks(write) => self.webhook_write(write),
        }
    }

    // ---- media -------------------------------------------------------------------------

    fn insert_media(&mut self, records: &[MediaRecord]) -> Result<Outcome> {
        for r in records {
            self.insert_with_job(r)?;
            self.events.extend(Event::arrived(r));
        }
        Ok(Outcome::Done)
    }

    fn update_media(&mut self, id: &str, patch: &MediaPatch, recrop: bool) -> Result<Outcome> {
        let old = self.get(id)?.ok_or(CatalogError::NotFound("media item"))?;
        let mut new = old.clone();
        patch.apply(&mut new);
        if (new.focal_x, new.focal_y) != (old.focal_x, old.focal_y) {
            // On-demand crops of the old focal point go; new ones get a new version.
            self.drop_item_crops(id)?;
            new.crop_version = old.crop_version.max(1) + 1;
        }
        let stale = recrop.then(|| new.recrop_after(&old)).flatten();
        self.remove_record(&old)?;
        self.insert_record(&new)?;
        if let Some(keys) = stale {
            self.queue_deletes(&keys)?;
            self.add_job(id, 0)?;
        }
        self.events.push(Event::updated(&new, patch));
        Ok(media(new))
    }

    fn replace_file(&mut self, file: &MediaRecord) -> Result<Outcome> {
        let old = self
            .get(&file.id)?
            .ok_or(CatalogError::NotFound("media item"))?;
        if file.visibility != old.visibility {
            return Err(CatalogError::ItemChanged); // its file was staged for the old place
        }
        let new = old.with_file_of(file);
        self.drop_item_crops(&new.id)?;
        self.remove_record(&old)?;
        self.remove_job(&new.id)?;
        // Every file the old one had goes, including any its record does not name.
        let mut gone = old.storage_keys();
        gone.extend(self.release_item_files(&new.id)?);
        gone.sort();
        gone.dedup();
        self.insert_with_job(&new)?;
        self.queue_deletes(&gone)?;
        self.events.extend(Event::replaced(&new));
        Ok(media(new))
    }

    fn move_files(
        &mut self,
        id: &str,
        visibility: Visibility,
        moved: &[(String, String)],
    ) -> Result<Outcome> {
        let old = self.get(id)?.ok_or(CatalogError::NotFound("media item"))?;
        let new = moving(&old, visibility, moved)?;
        self.drop_item_crops(id)?;
        self.remove_record(&old)?;
        let mut gone = old.storage_keys();
        gone.extend(self.release_item_files(id)?);
        gone.sort();
        gone.dedup();
        self.insert_record(&new)?;
        self.queue_deletes(&gone)?;
        self.events.push(Event::changed(&new, vec!["visibility"]));
        Ok(media(new))
    }

    /// Removes the item and queues every file the catalog knows for it (its record's, and
    /// any other it recorded for it: a variant a failed run left, a cached crop). An item
    /// whose record cannot be read is deleted all the same, from its search document.
    fn delete_media(&mut self, id: &str) -> Result<Outcome> {
        let mut files = match self.get(id) {
            Ok(Some(old)) => {
                self.remove_record(&old)?;
                self.events.push(Event::media(EventType::Deleted, &old));
                old.storage_keys()
            }
            Ok(None) => return Err(CatalogError::NotFound("media item")),
            Err(CatalogError::Corrupt(_)) => self.remove_unreadable(id)?,
            Err(e) => return Err(e),
        };
        self.drop_item_crops(id)?;
        self.remove_job(id)?;
        files.extend(self.release_item_files(id)?);
        files.sort();
        files.dedup();
        self.queue_deletes(&files)?;
        Ok(Outcome::Deleted { queued: Vec::new() })
    }

    /// Removes an item whose record cannot be read: the record, and its listing rows and
    /// counters as its search document has them. Its files are those `ITEM_FILES` knows
    /// (the caller releases them). A record that was never indexed (skipped by an upgrade
    /// as unreadable) has no rows to remove.
    fn remove_unreadable(&mut self, id: &str) -> Result<Vec<String>> {
        self.media.remove(id)?;
        self.touched.push(id.to_owned());
        if !self.unindex(id)? {
            tracing::warn!(%id, "deleted an unreadable record that had no search document");
        }
        Ok(Vec::new())
    }

    /// Removes item `id`'s listing rows, counters and search document, all as its search
    /// document says they were written (so a change of `model::fold` between two builds
    /// cannot leave rows behind). False when it had no document.
    fn unindex(&mut self, id: &str) -> Result<bool> {
        let Some(bytes) = self.search.remove(id)? else {
            return Ok(false);
        };
        let unreadable = || CatalogError::Corrupt(format!("{id}: search document"));
        let doc = search::Doc::decode(&bytes).ok_or_else(unreadable)?;
        let facts = index::Facts {
            created_us: doc.created_us,
            size: doc.size,
            filename: doc.filename,
            folder: doc.folder,
            kind: Kind::from_tag(doc.kind).ok_or_else(unreadable)?,
            id,
            visibility: doc.visibility,
        };
        for key in facts.keys() {
            self.index.remove(key.as_slice())?;
        }
        for key in facts.count_keys() {
            self.bump_count(&key, -1)?;
        }
        Ok(true)
    }

    fn get(&self, id: &str) -> Result<Option<MediaRecord>> {
        self.media.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// A new item, with its processing job when it has one.
    fn insert_with_job(&mut self, r: &MediaRecord) -> Result<()> {
        self.insert_record(r)?;
        if r.is_processing() {
            self.add_job(&r.id, 0)?;
        }
        Ok(())
    }

    /// Every write of a record goes through here, so the read cache learns of it.
    fn put_media(&mut self, r: &MediaRecord) -> Result<()> {
        self.media.insert(r.id.as_str(), encode(r).as_slice())?;
        self.touched.push(r.id.clone());
        Ok(())
    }

    fn insert_record(&mut self, r: &MediaRecord) -> Result<()> {
        self.put_media(r)?;
        let tag = r.kind().tag();
        for key in index::keys_of(r) {
            self.index.insert(key.as_slice(), tag)?;
        }
        for key in r.storage_keys() {
            self.claim_file(&key, &r.id)?;
        }
        self.search.add(r)?;
        self.bump_counts(r, 1)
    }

    fn remove_record(&mut self, r: &MediaRecord) -> Result<()> {
        self.media.remove(r.id.as_str())?;
        self.touched.push(r.id.clone());
        if !self.unindex(&r.id)? {
            // Not indexed (the upgrade indexes every readable record): as the record says.
            for key in index::keys_of(r) {
                self.index.remove(key.as_slice())?;
            }
            self.bump_counts(r, -1)?;
        }
        for key in r.storage_keys() {
            self.release_file(&key)?;
        }
        Ok(())
    }

    /// Records that item `id` owns the file `key` (what may be served, what the sweep
    /// keeps); a key being claimed again leaves the delete queue (a file re-made under a
    /// queued key must not be deleted by the queue's drain).
    fn claim_file(&mut self, key: &str, id: &str) -> Result<()> {
        self.files.insert(key, id)?;
        self.item_files.insert(item_file(id, key).as_str(), ())?;
        self.pending.remove(key)?;
        Ok(())
    }

    /// Forgets that the file `key` is owned (its owner's reverse entry too).
    fn release_file(&mut self, key: &str) -> Result<()> {
        let owner = self.files.remove(key)?.map(|id| id.value().to_owned());
        if let Some(id) = owner {
            self.item_files.remove(item_file(&id, key).as_str())?;
        }
        Ok(())
    }

    /// Forgets every file item `id` still owns; returns their keys.
    fn release_item_files(&mut self, id: &str) -> Result<Vec<String>> {
        let (from, to) = entries_of(id);
        let mut keys = Vec::new();
        for row in self.item_files.range(from.as_str()..to.as_str())? {
            keys.push(entry_file(row?.0.value()).to_owned());
        }
        for key in &keys {
            self.release_file(key)?;
        }
        Ok(keys)
    }

    /// Adjusts the four counters of a record.
    fn bump_counts(&mut self, r: &MediaRecord, delta: i64) -> Result<()> {
        for key in index::count_keys(r) {
            self.bump_count(&key, delta)?;
        }
        Ok(())
    }

    /// Adjusts one counter; one that reaches zero is removed, so the `f:` counters list
    /// exactly the folders that hold media.
    fn bump_count(&mut self, key: &str, delta: i64) -> Result<()> {
        let current = self.counts.get(key)?.map_or(0, |v| v.value());
        let next = current.saturating_add_signed(delta);
        if next == 0 {
            self.counts.remove(key)?;
        } else {
            self.counts.insert(key, next)?;
        }
        Ok(())
    }

    // ---- folders, keys, the delete queue -----------------------------------------------

    fn create_folder(&mut self, path: &FolderPath) -> Result<Outcome> {
        let existed = path.is_root() || self.folders.insert(path.as_str(), ())?.is_some();
        Ok(if existed {
            Outcome::FolderExisted
        } else {
            self.events
                .push(Event::folder(EventType::FolderCreated, path.as_str()));
            Outcome::FolderCreated
        })
    }

    fn delete_folder(&mut self, path: &FolderPath) -> Result<Outcome> {
        if path.is_root() {
            return Err(CatalogError::RootFolder);
        }
        let p = path.as_str();
        let child_prefix = format!("{p}/");
        let mut exists = false;
        let mut not_empty = false;
        for folder in live_folders(&self.folders, &self.counts)? {
            if folder == p {
                exists = true;
            } else if folder.starts_with(&child_prefix) {
                exists = true;
                not_empty = true;
            }
        }
        let own = self.counts.get(index::count_key(Some(p), None).as_str())?;
        not_empty |= own.is_some_and(|c| c.value() > 0);
        if !exists {
            return Err(CatalogError::NotFound("folder"));
        }
        if not_empty {
            return Err(CatalogError::FolderNotEmpty);
        }
        self.folders.remove(p)?;
        self.events.push(Event::folder(EventType::FolderDeleted, p));
        Ok(Outcome::Done)
    }

    /// Stores a new key; an id already taken (a chance of one in 2^47) is refused, never
    /// overwritten.
    fn put_key(&mut self, record: &ApiKeyRecord) -> Result<Outcome> {
        if self.keys.get(record.id.as_str())?.is_some() {
            return Err(CatalogError::IdTaken);
        }
        self.keys
            .insert(record.id.as_str(), encode(record).as_slice())?;
        Ok(Outcome::Done)
    }

    /// Removes a key; the last `admin` key stays (else no key could manage keys again
    /// without stopping the server).
    fn revoke_key(&mut self, id: &str) -> Result<Outcome> {
        let record: ApiKeyRecord = match self.keys.get(id)? {
            Some(v) => decode(v.value())?,
            None => return Err(CatalogError::NotFound("API key")),
        };
        if record.scope == Scope::Admin {
            let mut admins = 0;
            for entry in self.keys.iter()? {
                let other: ApiKeyRecord = decode(entry?.1.value())?;
                admins += usize::from(other.scope == Scope::Admin);
            }
            if admins == 1 {
                return Err(CatalogError::LastAdminKey);
            }
        }
        self.keys.remove(id)?;
        Ok(Outcome::Done)
    }

    fn queue_deletes(&mut self, keys: &[String]) -> Result<Outcome> {
        let now = now_us();
        for key in keys {
            self.pending.insert(key.as_str(), now)?;
        }
        self.queued.extend_from_slice(keys);
        Ok(Outcome::Done)
    }

    fn forget_deletes(&mut self, keys: &[String]) -> Result<Outcome> {
        for key in keys {
            self.pending.remove(key.as_str())?;
        }
        Ok(Outcome::Done)
    }

    // ---- presigned uploads -------------------------------------------------------------

    fn record_presign(&mut self, key: &str, presign: &PresignRecord) -> Result<Outcome> {
        self.presigns.insert(key, encode(presign).as_slice())?;
        Ok(Outcome::Done)
    }

    fn begin_confirm(
        &mut self,
        key: &str,
        token: &str,
        now_us: u64,
        until_us: u64,
    ) -> Result<Outcome> {
        let mut presign = confirmable(&self.presigns, &self.files, key, now_us)?;
        if presign.confirming_elsewhere(token, now_us) {
            return Err(CatalogError::ConfirmInProgress);
        }
        presign.confirming = Some(ConfirmLease {
            token: token.to_owned(),
            until_us,
        });
        self.presigns.insert(key, encode(&presign).as_slice())?;
        Ok(Outcome::Done)
    }

    fn end_confirm(&mut self, key: &str, token: &str) -> Result<Outcome> {
        let presign = self
            .presigns
            .get(key)?
            .map(|v| decode(v.value()))
            .transpose()?;
        if let Some(mut presign) = presign
            .filter(|p: &PresignRecord| p.confirming.as_ref().is_some_and(|l| l.token == token))
        {
            presign.confirming = None;
            self.presigns.insert(key, encode(&presign).as_slice())?;
        }
        Ok(Outcome::Done)
    }

    fn confirm_presign(
        &mut self,
        record: &MediaRecord,
        token: &str,
        now_us: u64,
    ) -> Result<Outcome> {
        let key = record.storage_key.as_str();
        let mut presign = confirmable(&self.presigns, &self.files, key, now_us)?;
        if presign.confirming_elsewhere(token, now_us) {
            return Err(CatalogError::ConfirmInProgress);
        }
        // Only the confirm that holds the lease commits: one whose lease ran out and was
        // taken (and perhaps given back) since may not have checked what the key holds.
        if presign.confirming.as_ref().is_none_or(|l| l.token != token) {
            return Err(CatalogError::LeaseLost);
        }
        presign.confirmed = true; // kept until it expires (see `PresignRecord`)
        presign.confirming = None;
        self.presigns.insert(key, encode(&presign).as_slice())?;
        self.insert_with_job(record)?;
        self.events.extend(Event::arrived(record));
        Ok(Outcome::Done)
    }

    fn forget_presigns(&mut self, keys: &[String]) -> Result<Outcome> {
        for key in keys {
            self.presigns.remove(key.as_str())?;
        }
        Ok(Outcome::Done)
    }
}
