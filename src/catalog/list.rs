//! Listing: one page in the requested order with the exact total. Without a search this
//! walks only `offset + limit` index entries of one range (see `index`) and reads the
//! total from a counter; a search scans the filtered range.

use redb::ReadableTable;

use super::index::{self, Partition};
use super::tables::{COUNTS, INDEX, MEDIA};
use super::{Catalog, CatalogError, Result, decode};
use crate::model::{FolderPath, ListQuery, MediaRecord, Page};

impl Catalog {
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
        let generation = self.cache.generation();
        let txn = self.read_txn()?;
        let index = txn.open_table(INDEX)?;
        let media = txn.open_table(MEDIA)?;
        let folder = q.folder.as_ref().map(FolderPath::as_str);
        let (partition, kind_filter) = match (folder, q.kind) {
            (Some(f), k) => (Partition::Folder(f), k),
            (None, Some(k)) => (Partition::Kind(k), None),
            (None, None) => (Partition::All, None),
        };
        let start = index::prefix(q.sort, partition);
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
            let id = index::id_of(key.value())
                .ok_or_else(|| CatalogError::Corrupt("index key".into()))?;
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
}

/// The spec's search: a case-insensitive substring of the filename or the alt text
/// (`needle` is already lower-cased; `%` and `_` are plain characters).
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
