//! `Catalog`: opening the redb file, read queries, and applying a batch of writes in one
//! transaction (the unit of group commit).

use std::collections::BTreeSet;
use std::path::Path;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, Table, WriteTransaction};

use super::CatalogError;
use super::index::{self, Scope};
use super::keys;
use super::model::{ApiKeyRecord, FolderPath, ListQuery, MediaPatch, MediaRecord, Page, now_us};
use super::tables::{COUNTS, FILES, FOLDERS, INDEX, KEYS, MEDIA, PENDING_DELETES};

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
}

/// What a successful write produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done,
    Media(Box<MediaRecord>),
    /// Whether the thing was new (folder created, key existed).
    Changed(bool),
}

pub struct Catalog {
    db: Database,
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
        }
        txn.commit()?;
        Ok(Self { db })
    }

    fn read(&self) -> Result<ReadTransaction> {
        Ok(self.db.begin_read()?)
    }

    // ---- reads -------------------------------------------------------------------------

    pub fn get(&self, id: &str) -> Result<Option<MediaRecord>> {
        let txn = self.read()?;
        let media = txn.open_table(MEDIA)?;
        media.get(id)?.map(|v| decode(v.value())).transpose()
    }

    /// One page in the requested order with the exact total. Without a search this walks
    /// only `offset + limit` index entries; a search scans the filtered range.
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
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
                items.push(load(&media, id)?);
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

    /// Every folder that holds media or was created, their parents, and `/`, sorted.
    pub fn folders(&self) -> Result<Vec<String>> {
        let txn = self.read()?;
        let mut set = BTreeSet::from(["/".to_owned()]);
        for path in live_folders(&txn)? {
            set.extend(FolderPath::ancestors(&path).map(str::to_owned));
            set.insert(path);
        }
        Ok(set.into_iter().collect())
    }

    /// The media id that owns a storage key (what may be served).
    pub fn owner_of_file(&self, storage_key: &str) -> Result<Option<String>> {
        let txn = self.read()?;
        let files = txn.open_table(FILES)?;
        Ok(files.get(storage_key)?.map(|v| v.value().to_owned()))
    }

    /// Every storage key the catalog knows (for the start-up orphan sweep).
    pub fn all_files(&self) -> Result<BTreeSet<String>> {
        let txn = self.read()?;
        let files = txn.open_table(FILES)?;
        let mut out = BTreeSet::new();
        for entry in files.iter()? {
            out.insert(entry?.0.value().to_owned());
        }
        Ok(out)
    }

    /// Files queued for deletion and not yet confirmed gone.
    pub fn pending_deletes(&self) -> Result<Vec<String>> {
        let txn = self.read()?;
        let pending = txn.open_table(PENDING_DELETES)?;
        let mut out = Vec::new();
        for entry in pending.iter()? {
            out.push(entry?.0.value().to_owned());
        }
        Ok(out)
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
        {
            let mut tables = Tables::open(&txn)?;
            for write in writes {
                let result = tables.apply(write);
                if let Err(e @ (CatalogError::Db(_) | CatalogError::Corrupt(_))) = &result {
                    return Err(e.clone());
                }
                results.push(result);
            }
        }
        txn.commit()?;
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
        })
    }

    fn apply(&mut self, write: Write) -> Result<Outcome> {
        match write {
            Write::InsertMedia(records) => {
                for r in &records {
                    self.insert_record(r)?;
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
        }
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

    fn insert_record(&mut self, r: &MediaRecord) -> Result<()> {
        self.media.insert(r.id.as_str(), encode(r).as_slice())?;
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
    let value = media
        .get(id)?
        .ok_or_else(|| CatalogError::Corrupt(format!("{id} in index only")))?;
    decode(value.value())
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| CatalogError::Corrupt(e.to_string()))
}
