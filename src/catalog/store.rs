//! `Catalog`: opening the redb file, read queries, and applying a batch of writes in one
//! transaction (the unit of group commit).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, WriteTransaction,
};

use super::CatalogError;
use super::cache::{self, ReadCache};
use super::index::{self, Scope};
use super::keys;
use super::model::{
    ApiKeyRecord, FolderPath, JobResult, ListQuery, MediaPatch, MediaRecord, Page, PresignRecord,
    now_us,
};
use super::tables::{COUNTS, FILES, FOLDERS, INDEX, JOBS, KEYS, MEDIA, PENDING_DELETES, PRESIGNS};

type Result<T> = std::result::Result<T, CatalogError>;

/// One write; a batch of them commits together.
#[derive(Debug)]
pub enum Write {
    /// New items (one upload request), with their files.
    InsertMedia(Vec<MediaRecord>),
    UpdateMedia {
        id: String,
        patch: MediaPatch,
    },
    /// Removes the item and queues its files for deletion.
    DeleteMedia {
        id: String,
    },
    CreateFolder(FolderPath),
    DeleteFolder(FolderPath),
    PutKey(ApiKeyRecord),
    RevokeKey {
        id: String,
    },
    /// Files whose deletion finished: drop them from the delete queue.
    ForgetDeletes(Vec<String>),
    /// Records a processing job's result on its item and removes the job.
    FinishJob {
        id: String,
        result: JobResult,
    },
    /// Counts one more start of a job. Answers `Changed(true)` when it should run;
    /// `Changed(false)` when it is finished or gone, or was already started
    /// `max_attempts` times (a crash each time), in which case it is marked failed.
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
    /// Turns an issued, unexpired presign into its item (and job) atomically: a second
    /// confirm of the same key finds nothing to confirm.
    ConfirmPresign {
        record: Box<MediaRecord>,
        now_us: u64,
    },
    /// Presigns whose objects were deleted by the expiry sweep.
    ForgetPresigns(Vec<String>),
}

/// What a successful write produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Media(Box<MediaRecord>),
    /// Whether the thing was new (folder created, key existed).
    Changed(bool),
    Job(JobOutcome),
}

/// What recording a job's result found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// The item now carries the result.
    Recorded,
    /// The item was deleted meanwhile: the files the job wrote belong to nobody.
    ItemGone,
    /// Another run of the same job already recorded it (a restart raced a running job).
    AlreadyDone,
}

pub struct Catalog {
    db: Database,
    /// Rows in `JOBS`, kept in step with every commit (the processing backlog).
    jobs: AtomicU64,
    /// Recently read records and the folder list; invalidated by every commit.
    cache: ReadCache,
}

impl Catalog {
    /// Opens (or creates) the catalog file and makes sure every table exists.
    pub fn open(path: &Path) -> Result<Self> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        {
            txn.open_table(MEDIA)?;
            txn.open_table(INDEX)?;
            txn.open_table(COUNTS)?;
            txn.open_table(FOLDERS)?;
            txn.open_table(FILES)?;
            txn.open_table(PENDING_DELETES)?;
            txn.open_table(KEYS)?;
            txn.open_table(JOBS)?;
            txn.open_table(PRESIGNS)?;
        }
        txn.commit()?;
        let jobs = db.begin_read()?.open_table(JOBS)?.len()?;
        Ok(Self {
            db,
            jobs: AtomicU64::new(jobs),
            cache: ReadCache::new(cache::CAPACITY),
        })
    }

    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    // ---- reads -------------------------------------------------------------------------

    pub fn get(&self, id: &str) -> Result<Option<MediaRecord>> {
        if let Some(record) = self.cache.get(id) {
            return Ok(Some(record));
        }
        let generation = self.cache.generation();
        let txn = self.read()?;
        self.read_and_keep(&txn.open_table(MEDIA)?, id, generation)
    }

    /// One page in the requested order with the exact total. Without a search this walks
    /// only `offset + limit` index entries; a search scans the filtered range.
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
        let generation = self.cache.generation();
        let txn = self.read()?;
        let index = txn.open_table(INDEX)?;
        let media = txn.open_table(MEDIA)?;
        let folder = q.folder.as_ref().map(FolderPath::as_str);
        let (scope, kind_filter) = match (folder, q.kind) {
            (Some(f), k) => (Scope::Folder(f), k),
            (None, Some(k)) => (Scope::Kind(k), None),
            (None, None) => (Scope::All, None),
        };
        let start = index::prefix(q.sort, scope);
        let end = index::prefix_end(&start);
        let range = index.range(start.as_slice()..end.as_slice())?;
        let entries: Box<dyn Iterator<Item = _>> = if q.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };

        let mut items = Vec::with_capacity(q.limit.min(100));
        let mut matched = 0u64;
        for entry in entries {
            let (key, tag) = entry?;
            if kind_filter.is_some_and(|k| k.tag() != tag.value()) {
                continue;
            }
            let key = key.value();
            let id = index::id_of(key).ok_or_else(|| CatalogError::Corrupt("index key".into()))?;
            let wanted = matched >= q.offset as u64 && items.len() < q.limit;
            if let Some(needle) = &q.search {
                let record = load(&media, id)?;
                if !matches_search(&record, needle) {
                    continue;
                }
                if wanted {
                    items.push(record);
                }
            } else if wanted {
                items.push(self.load_cached(&media, id, generation)?);
            } else if items.len() >= q.limit {
                break;
            }
            matched += 1;
        }
        let total = if q.search.is_some() {
            matched
        } else {
            let counts = txn.open_table(COUNTS)?;
            let key = index::count_key(folder, q.kind);
            counts.get(key.as_str())?.map_or(0, |v| v.value())
        };
        Ok(Page { items, total })
    }

    /// The folder list if no commit changed anything since it was last read.
    pub fn cached_folders(&self) -> Option<Vec<String>> {
        self.cache.folders()
    }

    /// Every folder that holds media or was created, their parents, and `/`, sorted.
    pub fn folders(&self) -> Result<Vec<String>> {
        if let Some(folders) = self.cache.folders() {
            return Ok(folders);
        }
        let generation = self.cache.generation();
        let txn = self.read()?;
        let mut set = BTreeSet::from(["/".to_owned()]);
        for path in live_folders(&txn)? {
            set.extend(FolderPath::ancestors(&path).map(str::to_owned));
            set.insert(path);
        }
        let folders: Vec<String> = set.into_iter().collect();
        self.cache.fill_folders(generation, &folders);
        Ok(folders)
    }

    /// A listed record, from the cache or from `media` (read in a transaction opened after
    /// `generation` was taken).
    fn load_cached(
        &self,
        media: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &str,
        generation: u64,
    ) -> Result<MediaRecord> {
        if let Some(record) = self.cache.get(id) {
            return Ok(record);
        }
        self.read_and_keep(media, id, generation)?
            .ok_or_else(|| index_only(id))
    }

    /// Reads a record from `media` (a transaction opened after `generation` was taken)
    /// and offers it to the cache.
    fn read_and_keep(
        &self,
        media: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &str,
        generation: u64,
    ) -> Result<Option<MediaRecord>> {
        let record: Option<MediaRecord> = media.get(id)?.map(|v| decode(v.value())).transpose()?;
        if let Some(r) = &record {
            self.cache.fill(generation, r);
        }
        Ok(record)
    }

    /// The media id that owns a storage key (what may be served).
    pub fn owner_of_file(&self, storage_key: &str) -> Result<Option<String>> {
        let txn = self.read()?;
        let files = txn.open_table(FILES)?;
        Ok(files.get(storage_key)?.map(|v| v.value().to_owned()))
    }

    /// Every key of a string-keyed table, in key order.
    fn keys_of<V: redb::Value + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, V>,
    ) -> Result<Vec<String>> {
        let txn = self.read()?;
        let table = txn.open_table(table)?;
        table
            .iter()?
            .map(|entry| Ok(entry?.0.value().to_owned()))
            .collect()
    }

    /// Every storage key the catalog knows (for the start-up orphan sweep).
    pub fn all_files(&self) -> Result<BTreeSet<String>> {
        Ok(self.keys_of(FILES)?.into_iter().collect())
    }

    /// Files queued for deletion and not yet confirmed gone.
    pub fn pending_deletes(&self) -> Result<Vec<String>> {
        self.keys_of(PENDING_DELETES)
    }

    /// An issued presign, if this key has one.
    pub fn presign(&self, key: &str) -> Result<Option<PresignRecord>> {
        let txn = self.read()?;
        let table = txn.open_table(PRESIGNS)?;
        table.get(key)?.map(|v| decode(v.value())).transpose()
    }

    /// Keys of presigns that expired before `now_us` (for the sweep).
    pub fn expired_presigns(&self, now_us: u64) -> Result<Vec<String>> {
        let txn = self.read()?;
        let table = txn.open_table(PRESIGNS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let presign: PresignRecord = decode(value.value())?;
            if presign.expires_us < now_us {
                out.push(key.value().to_owned());
            }
        }
        Ok(out)
    }

    /// How many processing jobs are unfinished (committed and not yet done).
    pub fn job_count(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// The media ids of unfinished jobs.
    pub fn unfinished_jobs(&self) -> Result<Vec<String>> {
        self.keys_of(JOBS)
    }

    /// The key record matching a presented bearer token, if any.
    pub fn authenticate(&self, presented: &str) -> Result<Option<ApiKeyRecord>> {
        let Some(id) = keys::parse_id(presented) else {
            return Ok(None);
        };
        let txn = self.read()?;
        let table = txn.open_table(KEYS)?;
        let Some(record) = table
            .get(id)?
            .map(|v| decode::<ApiKeyRecord>(v.value()))
            .transpose()?
        else {
            return Ok(None);
        };
        Ok(keys::verify(&record, presented).then_some(record))
    }

    pub fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let txn = self.read()?;
        let table = txn.open_table(KEYS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(decode(entry?.1.value())?);
        }
        out.sort_by_key(|k: &ApiKeyRecord| k.created_us);
        Ok(out)
    }

    // ---- writes ------------------------------------------------------------------------

    /// Applies `writes` in order in one transaction and commits once. Each write gets its
    /// own result: a domain failure (not found, not empty) changes nothing and does not
    /// affect its neighbours; a storage failure fails the whole batch.
    pub fn apply(&self, writes: Vec<Write>) -> Result<Vec<Result<Outcome>>> {
        let txn = self.db.begin_write()?;
        let mut results = Vec::with_capacity(writes.len());
        let jobs_delta;
        let touched;
        {
            let mut tables = Tables::open(&txn)?;
            for write in writes {
                let result = tables.apply(write);
                if let Err(e @ (CatalogError::Db(_) | CatalogError::Corrupt(_))) = &result {
                    return Err(e.clone());
                }
                results.push(result);
            }
            jobs_delta = tables.jobs_delta;
            touched = tables.touched;
        }
        txn.commit()?;
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

/// Every table of a write transaction, opened once per batch.
struct Tables<'t> {
    media: Table<'t, &'static str, &'static [u8]>,
    index: Table<'t, &'static [u8], u8>,
    counts: Table<'t, &'static str, u64>,
    folders: Table<'t, &'static str, ()>,
    files: Table<'t, &'static str, &'static str>,
    pending: Table<'t, &'static str, u64>,
    keys: Table<'t, &'static str, &'static [u8]>,
    jobs: Table<'t, &'static str, u32>,
    presigns: Table<'t, &'static str, &'static [u8]>,
    /// Jobs added minus jobs removed in this batch.
    jobs_delta: i64,
    /// Ids of the records this batch wrote or removed (for the read cache).
    touched: Vec<String>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self> {
        Ok(Self {
            media: txn.open_table(MEDIA)?,
            index: txn.open_table(INDEX)?,
            counts: txn.open_table(COUNTS)?,
            folders: txn.open_table(FOLDERS)?,
            files: txn.open_table(FILES)?,
            pending: txn.open_table(PENDING_DELETES)?,
            keys: txn.open_table(KEYS)?,
            jobs: txn.open_table(JOBS)?,
            presigns: txn.open_table(PRESIGNS)?,
            jobs_delta: 0,
            touched: Vec::new(),
        })
    }

    fn apply(&mut self, write: Write) -> Result<Outcome> {
        match write {
            Write::InsertMedia(records) => {
                for r in &records {
                    self.insert_with_job(r)?;
                }
                Ok(Outcome::Done)
            }
            Write::RecordPresign { key, presign } => {
                self.presigns
                    .insert(key.as_str(), encode(&presign).as_slice())?;
                Ok(Outcome::Done)
            }
            Write::ConfirmPresign { record, now_us } => {
                let key = record.storage_key.as_str();
                let presign: Option<PresignRecord> = self
                    .presigns
                    .get(key)?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                let Some(presign) = presign else {
                    return Err(if self.files.get(key)?.is_some() {
                        CatalogError::AlreadyConfirmed
                    } else {
                        CatalogError::NotFound("presigned upload")
                    });
                };
                if presign.expires_us < now_us {
                    return Err(CatalogError::PresignExpired);
                }
                self.presigns.remove(key)?;
                self.insert_with_job(&record)?;
                Ok(Outcome::Done)
            }
            Write::ForgetPresigns(keys) => {
                for key in keys {
                    self.presigns.remove(key.as_str())?;
                }
                Ok(Outcome::Done)
            }
            Write::UpdateMedia { id, patch } => {
                let old = self.get(&id)?.ok_or(CatalogError::NotFound("media item"))?;
                let mut new = old.clone();
                patch.apply(&mut new);
                self.remove_record(&old)?;
                self.insert_record(&new)?;
                Ok(Outcome::Media(Box::new(new)))
            }
            Write::DeleteMedia { id } => {
                let old = self.get(&id)?.ok_or(CatalogError::NotFound("media item"))?;
                self.remove_record(&old)?;
                self.remove_job(&id)?;
                let now = now_us();
                for key in old.storage_keys() {
                    self.pending.insert(key.as_str(), now)?;
                }
                Ok(Outcome::Media(Box::new(old)))
            }
            Write::CreateFolder(path) => {
                let existed = path.is_root() || self.folders.insert(path.as_str(), ())?.is_some();
                Ok(Outcome::Changed(!existed))
            }
            Write::DeleteFolder(path) => self.delete_folder(&path),
            Write::PutKey(record) => {
                self.keys
                    .insert(record.id.as_str(), encode(&record).as_slice())?;
                Ok(Outcome::Done)
            }
            Write::RevokeKey { id } => {
                Ok(Outcome::Changed(self.keys.remove(id.as_str())?.is_some()))
            }
            Write::ForgetDeletes(keys) => {
                for key in keys {
                    self.pending.remove(key.as_str())?;
                }
                Ok(Outcome::Done)
            }
            Write::FinishJob { id, result } => self.finish_job(&id, result),
            Write::StartJob { id, max_attempts } => self.start_job(&id, max_attempts),
            Write::ReleaseJob { id } => {
                let attempts = self.jobs.get(id.as_str())?.map(|v| v.value());
                if let Some(n) = attempts.filter(|n| *n > 0) {
                    self.jobs.insert(id.as_str(), n - 1)?;
                }
                Ok(Outcome::Done)
            }
        }
    }

    fn finish_job(&mut self, id: &str, result: JobResult) -> Result<Outcome> {
        let had_job = self.remove_job(id)?;
        let Some(old) = self.get(id)? else {
            return Ok(Outcome::Job(JobOutcome::ItemGone));
        };
        if !had_job || !old.is_processing() {
            return Ok(Outcome::Job(JobOutcome::AlreadyDone));
        }
        let mut new = old.clone();
        new.processing = Some(result.into_processing());
        // Sort keys and counts do not depend on processing: only the record and its files.
        self.put_media(&new)?;
        for key in new.storage_keys() {
            self.files.insert(key.as_str(), id)?;
        }
        Ok(Outcome::Job(JobOutcome::Recorded))
    }

    fn start_job(&mut self, id: &str, max_attempts: u32) -> Result<Outcome> {
        let Some(attempts) = self.jobs.get(id)?.map(|v| v.value()) else {
            return Ok(Outcome::Changed(false));
        };
        if attempts >= max_attempts {
            let reason = format!(
                "processing was interrupted {attempts} times (the server stopped or a \
                 dependency failed each time); not retried"
            );
            self.finish_job(id, JobResult::Failed { reason })?;
            return Ok(Outcome::Changed(false));
        }
        self.jobs.insert(id, attempts + 1)?;
        Ok(Outcome::Changed(true))
    }

    /// Removes an item's job; true when there was one.
    fn remove_job(&mut self, id: &str) -> Result<bool> {
        let had = self.jobs.remove(id)?.is_some();
        if had {
            self.jobs_delta -= 1;
        }
        Ok(had)
    }

    fn get(&self, id: &str) -> Result<Option<MediaRecord>> {
        self.media.get(id)?.map(|v| decode(v.value())).transpose()
    }

    fn delete_folder(&mut self, path: &FolderPath) -> Result<Outcome> {
        if path.is_root() {
            return Err(CatalogError::RootFolder);
        }
        let p = path.as_str();
        let child_prefix = format!("{p}/");
        let mut exists = false;
        let mut not_empty = false;
        for folder in collect_folders(&self.folders, &self.counts)? {
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
        Ok(Outcome::Done)
    }

    /// A new item, with its processing job when it has one.
    fn insert_with_job(&mut self, r: &MediaRecord) -> Result<()> {
        self.insert_record(r)?;
        if r.is_processing() && self.jobs.insert(r.id.as_str(), 0)?.is_none() {
            self.jobs_delta += 1;
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
            self.files.insert(key.as_str(), r.id.as_str())?;
        }
        self.bump_counts(r, 1)
    }

    fn remove_record(&mut self, r: &MediaRecord) -> Result<()> {
        self.media.remove(r.id.as_str())?;
        self.touched.push(r.id.clone());
        for key in index::keys_of(r) {
            self.index.remove(key.as_slice())?;
        }
        for key in r.storage_keys() {
            self.files.remove(key.as_str())?;
        }
        self.bump_counts(r, -1)
    }

    /// Adjusts the four counters of a record; counters that reach zero are removed, so
    /// the `f:` counters list exactly the folders that hold media.
    fn bump_counts(&mut self, r: &MediaRecord, delta: i64) -> Result<()> {
        for key in index::count_keys(r) {
            let current = self.counts.get(key.as_str())?.map_or(0, |v| v.value());
            let next = current.saturating_add_signed(delta);
            if next == 0 {
                self.counts.remove(key.as_str())?;
            } else {
                self.counts.insert(key.as_str(), next)?;
            }
        }
        Ok(())
    }
}

/// Created folders plus folders that hold media (read side).
fn live_folders(txn: &ReadTransaction) -> Result<Vec<String>> {
    collect_folders(&txn.open_table(FOLDERS)?, &txn.open_table(COUNTS)?)
}

fn collect_folders(
    folders: &impl ReadableTable<&'static str, ()>,
    counts: &impl ReadableTable<&'static str, u64>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in folders.iter()? {
        out.push(entry?.0.value().to_owned());
    }
    for entry in counts.range("f:".."f;")? {
        let (key, _) = entry?;
        out.push(key.value()["f:".len()..].to_owned());
    }
    Ok(out)
}

fn matches_search(r: &MediaRecord, needle: &str) -> bool {
    r.filename.to_lowercase().contains(needle)
        || r.alt
            .as_deref()
            .is_some_and(|a| a.to_lowercase().contains(needle))
}

fn load(media: &impl ReadableTable<&'static str, &'static [u8]>, id: &str) -> Result<MediaRecord> {
    let value = media.get(id)?.ok_or_else(|| index_only(id))?;
    decode(value.value())
}

/// An index entry whose record is missing.
fn index_only(id: &str) -> CatalogError {
    CatalogError::Corrupt(format!("{id} in index only"))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| CatalogError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::model::{Processing, Status, VariantRecord, variant_key};

    fn open() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Catalog::open(&dir.path().join("c.redb")).expect("open");
        (dir, catalog)
    }

    fn image(tail: char) -> MediaRecord {
        MediaRecord {
            processing: Some(Processing::pending()),
            ..MediaRecord::sample(tail, "p.png", 1, 10)
        }
    }

    fn ready(r: &MediaRecord) -> JobResult {
        JobResult::Ready {
            variants: vec![VariantRecord {
                width: 150,
                height: 100,
                size: 5,
                storage_key: variant_key(&r.storage_key, 150),
            }],
            thumbhash: "hash".into(),
            dominant_color: "#102030".into(),
        }
    }

    fn start(c: &Catalog, id: &str) -> bool {
        let write = Write::StartJob {
            id: id.into(),
            max_attempts: 2,
        };
        c.apply_single(write).expect("start") == Outcome::Changed(true)
    }

    fn finish(c: &Catalog, id: &str, result: JobResult) -> Outcome {
        c.apply_single(Write::FinishJob {
            id: id.into(),
            result,
        })
        .expect("finish")
    }

    #[test]
    fn a_job_is_committed_with_its_item_and_recorded_once() {
        let (_dir, c) = open();
        let (a, doc) = (image('a'), MediaRecord::sample('d', "d.png", 1, 1));
        c.apply_single(Write::InsertMedia(vec![a.clone(), doc]))
            .expect("insert");
        assert_eq!(c.job_count(), 1, "only the image has a job");
        assert_eq!(c.unfinished_jobs().expect("jobs"), vec![a.id.clone()]);

        assert!(start(&c, &a.id));
        let outcome = finish(&c, &a.id, ready(&a));
        assert_eq!(outcome, Outcome::Job(JobOutcome::Recorded));
        assert_eq!(c.job_count(), 0);
        let got = c.get(&a.id).expect("get").expect("item");
        let p = got.processing.as_ref().expect("processing");
        assert_eq!(p.status, Status::Ready);
        assert_eq!(p.dominant_color.as_deref(), Some("#102030"));
        let variant = variant_key(&a.storage_key, 150);
        assert_eq!(
            c.owner_of_file(&variant).expect("owner"),
            Some(a.id.clone())
        );

        // A second run of the same job (a restart raced it) changes nothing.
        assert!(!start(&c, &a.id));
        let again = finish(&c, &a.id, JobResult::Failed { reason: "x".into() });
        assert_eq!(again, Outcome::Job(JobOutcome::AlreadyDone));
        assert_eq!(c.get(&a.id).expect("get"), Some(got.clone()));

        // Deleting the item queues the variant with the original.
        c.apply_single(Write::DeleteMedia { id: a.id.clone() })
            .expect("delete");
        let mut pending = c.pending_deletes().expect("pending");
        pending.sort();
        assert_eq!(pending, [variant, a.storage_key.clone()]);
    }

    #[test]
    fn jobs_of_deleted_items_end_and_interrupted_jobs_stop_at_the_limit() {
        let (_dir, c) = open();
        let (a, b) = (image('a'), image('b'));
        c.apply_single(Write::InsertMedia(vec![a.clone(), b.clone()]))
            .expect("insert");
        assert_eq!(c.job_count(), 2);

        c.apply_single(Write::DeleteMedia { id: a.id.clone() })
            .expect("delete");
        assert_eq!(c.job_count(), 1, "the delete removed the job");
        assert!(!start(&c, &a.id));
        let gone = finish(&c, &a.id, ready(&a));
        assert_eq!(gone, Outcome::Job(JobOutcome::ItemGone));

        // A start given back (an outage, not a crash) does not count.
        assert!(start(&c, &b.id));
        c.apply_single(Write::ReleaseJob { id: b.id.clone() })
            .expect("release");
        // Two starts that never finished (crashes): the third start fails the job.
        assert!(start(&c, &b.id) && start(&c, &b.id));
        assert!(!start(&c, &b.id));
        assert_eq!(c.job_count(), 0);
        let p = c.get(&b.id).expect("get").expect("item").processing;
        let p = p.expect("processing");
        assert_eq!(p.status, Status::Failed);
        assert!(p.error.is_some_and(|e| e.contains("interrupted 2 times")));
    }

    #[test]
    fn a_presign_is_confirmed_once_and_only_before_it_expires() {
        let (_dir, c) = open();
        let a = image('a');
        let presign = |expires_us| PresignRecord {
            filename: "p.png".into(),
            media_type: crate::media::MediaType::Png,
            size: 10,
            expires_us,
        };
        let confirm = |record: &MediaRecord, now_us| {
            c.apply_single(Write::ConfirmPresign {
                record: Box::new(record.clone()),
                now_us,
            })
        };
        assert!(matches!(
            confirm(&a, 1),
            Err(CatalogError::NotFound("presigned upload"))
        ));
        c.apply_single(Write::RecordPresign {
            key: a.storage_key.clone(),
            presign: presign(100),
        })
        .expect("record");
        assert_eq!(c.presign(&a.storage_key).expect("read"), Some(presign(100)));
        assert!(matches!(
            confirm(&a, 101),
            Err(CatalogError::PresignExpired)
        ));
        assert_eq!(
            c.expired_presigns(101).expect("expired"),
            vec![a.storage_key.clone()]
        );
        assert!(c.expired_presigns(99).expect("expired").is_empty());

        confirm(&a, 50).expect("confirmed");
        assert_eq!(c.get(&a.id).expect("get"), Some(a.clone()));
        assert_eq!(c.job_count(), 1, "an image gets its job");
        assert!(c.presign(&a.storage_key).expect("read").is_none());
        let again = MediaRecord {
            id: "media_bbbbbbbbbbbbbbbb".into(),
            ..a.clone()
        };
        assert!(matches!(
            confirm(&again, 50),
            Err(CatalogError::AlreadyConfirmed)
        ));
        assert!(c.get(&again.id).expect("get").is_none(), "no second item");
    }

    #[test]
    fn the_job_count_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.redb");
        {
            let c = Catalog::open(&path).expect("open");
            c.apply_single(Write::InsertMedia(vec![image('a'), image('b')]))
                .expect("insert");
        }
        let c = Catalog::open(&path).expect("reopen");
        assert_eq!(c.job_count(), 2);
    }
}
