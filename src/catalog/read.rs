//! Point reads and small scans, each in its own read transaction (never queued behind
//! writes): records (through the read cache), folders, files, keys, jobs and presigns.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;

use redb::{ReadableTable, TableDefinition};

use super::tables::{
    COUNTS, CROP_CACHE, FILES, FOLDERS, JOBS, KEYS, MEDIA, PENDING_DELETES, PRESIGNS, entries_of,
    entry_file, parse_crop_value,
};
use super::{Catalog, CatalogError, Result, decode, keys};
use crate::model::{ApiKeyRecord, FolderPath, MediaRecord, PresignRecord};
use crate::storage::key::{is_ondemand_crop, key_stem};

impl Catalog {
    pub fn get(&self, id: &str) -> Result<Option<MediaRecord>> {
        if let Some(record) = self.cache.get(id) {
            return Ok(Some(record));
        }
        let generation = self.cache.generation();
        let txn = self.read_txn()?;
        self.read_and_keep(&txn.open_table(MEDIA)?, id, generation)
    }

    /// Reads a record from `media` (a transaction opened after `generation` was taken)
    /// and offers it to the cache.
    pub(super) fn read_and_keep(
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
        let txn = self.read_txn()?;
        let live = live_folders(&txn.open_table(FOLDERS)?, &txn.open_table(COUNTS)?)?;
        let mut set = BTreeSet::from(["/".to_owned()]);
        for path in live {
            set.extend(FolderPath::ancestors(&path).map(str::to_owned));
            set.insert(path);
        }
        let folders: Vec<String> = set.into_iter().collect();
        self.cache.fill_folders(generation, &folders);
        Ok(folders)
    }

    /// The media id that owns a storage key (what may be served).
    pub fn owner_of_file(&self, storage_key: &str) -> Result<Option<String>> {
        let txn = self.read_txn()?;
        let files = txn.open_table(FILES)?;
        Ok(files.get(storage_key)?.map(|v| v.value().to_owned()))
    }

    /// Every key of a string-keyed table, in key order.
    fn keys_of<V: redb::Value + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, V>,
    ) -> Result<Vec<String>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(table)?;
        table
            .iter()?
            .map(|entry| Ok(entry?.0.value().to_owned()))
            .collect()
    }

    /// Whether the catalog still wants a stored file: a record names it, it waits in the
    /// delete queue or is an issued presign's object, or it shares its stem with a
    /// recorded file (a variant a running job is writing; not an on-demand crop, which
    /// only its own record claims: one being made is held in flight instead). The orphan
    /// sweep keeps these.
    pub fn claims_file(&self, key: &str) -> Result<bool> {
        let txn = self.read_txn()?;
        let files = txn.open_table(FILES)?;
        if files.get(key)?.is_some()
            || txn.open_table(PENDING_DELETES)?.get(key)?.is_some()
            || txn.open_table(PRESIGNS)?.get(key)?.is_some()
        {
            return Ok(true);
        }
        if is_ondemand_crop(key) {
            return Ok(false); // claimed only by its own record (see `is_ondemand_crop`)
        }
        let stem = key_stem(key);
        for entry in files.range(stem..)? {
            let (recorded, _) = entry?;
            let recorded = recorded.value();
            if !recorded.starts_with(stem) {
                break;
            }
            if key_stem(recorded) == stem {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Files queued for deletion and not yet confirmed gone.
    pub fn pending_deletes(&self) -> Result<Vec<String>> {
        self.keys_of(PENDING_DELETES)
    }

    /// The presign of `key` if it may still be confirmed at `now_us` (the same rule the
    /// confirming write applies, see `confirmable`).
    pub fn presign_to_confirm(&self, key: &str, now_us: u64) -> Result<PresignRecord> {
        let txn = self.read_txn()?;
        confirmable(
            &txn.open_table(PRESIGNS)?,
            &txn.open_table(FILES)?,
            key,
            now_us,
        )
    }

    /// Presigns that expired before `now_us`, confirmed or not (for the sweep, which
    /// deletes what their URLs uploaded).
    pub fn expired_presigns(&self, now_us: u64) -> Result<Vec<(String, PresignRecord)>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(PRESIGNS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let presign: PresignRecord = decode(value.value())?;
            if presign.is_expired(now_us) {
                out.push((key.value().to_owned(), presign));
            }
        }
        Ok(out)
    }

    /// How many processing jobs are unfinished (committed and not yet done).
    pub fn job_count(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    /// The cached on-demand crop of item `id` whose key starts with `prefix` (see
    /// `storage::key::ondemand_crop_prefix`): its key and last use (µs).
    pub fn cached_crop(&self, id: &str, prefix: &str) -> Result<Option<(String, u64)>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(CROP_CACHE)?;
        let (from, to) = entries_of(id);
        for row in table.range(from.as_str()..to.as_str())? {
            let (entry, value) = row?;
            let key = entry_file(entry.value());
            if key.starts_with(prefix) {
                return Ok(Some((key.to_owned(), parse_crop_value(value.value()).0)));
            }
        }
        Ok(None)
    }

    /// The storage keys of item `id`'s cached on-demand crops.
    pub fn cached_crops_of(&self, id: &str) -> Result<Vec<String>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(CROP_CACHE)?;
        let (from, to) = entries_of(id);
        let mut keys = Vec::new();
        for row in table.range(from.as_str()..to.as_str())? {
            keys.push(entry_file(row?.0.value()).to_owned());
        }
        Ok(keys)
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
        let txn = self.read_txn()?;
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
        let txn = self.read_txn()?;
        let table = txn.open_table(KEYS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(decode(entry?.1.value())?);
        }
        out.sort_by_key(|k: &ApiKeyRecord| k.created_us);
        Ok(out)
    }
}

/// The one rule for confirming a presigned upload, applied by the read before any work
/// and again by the write that turns it into an item: the key must have an issued,
/// unconfirmed presign that has not expired (and was made since uploads land in staging
/// objects); a key whose file is already recorded was confirmed.
pub(super) fn confirmable(
    presigns: &impl ReadableTable<&'static str, &'static [u8]>,
    files: &impl ReadableTable<&'static str, &'static str>,
    key: &str,
    now_us: u64,
) -> Result<PresignRecord> {
    let presign = presigns.get(key)?.map(|v| decode(v.value())).transpose()?;
    let recorded = presign.is_none() && files.get(key)?.is_some();
    confirm_rule(presign, recorded, now_us)
}

/// `confirmable` on what was read: the presign of the key, if any, and whether a file is
/// recorded at the key (read only when there is no presign). Both catalogs apply it.
pub(super) fn confirm_rule(
    presign: Option<PresignRecord>,
    recorded: bool,
    now_us: u64,
) -> Result<PresignRecord> {
    let Some(presign) = presign else {
        return Err(if recorded {
            CatalogError::AlreadyConfirmed
        } else {
            CatalogError::NotFound("presigned upload with this storageKey")
        });
    };
    if presign.confirmed {
        return Err(CatalogError::AlreadyConfirmed);
    }
    if presign.is_expired(now_us) || !presign.staged {
        return Err(CatalogError::PresignExpired);
    }
    Ok(presign)
}

/// Created folders plus folders that hold media (the `f:` counters list exactly those).
pub(super) fn live_folders(
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
