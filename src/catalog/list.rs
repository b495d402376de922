//! Listing: one page in the requested order with the exact total, and where the next page
//! starts. Without a search this is one range of the listing index (see `index`), entered
//! at the cursor's position or walked past `offset` entries, and the total is a counter;
//! with one, the search index answers (see `search`).

use std::ops::Bound;

use itertools::Itertools;
use redb::{ReadTransaction, ReadableTable};

use super::index::{self, Partition};
use super::search::{self, memo};
use super::tables::{COUNTS, INDEX, MEDIA, META};
use super::write::SEARCH_GENERATION;
use super::{Catalog, CatalogError, Result};
use crate::model::{FolderPath, ListQuery, MediaRecord, Page, Visibility};

impl Catalog {
    pub fn list(&self, q: &ListQuery) -> Result<Page> {
        let generation = self.cache.generation();
        let txn = self.read_txn()?;
        let hit = match &q.search {
            // The generation of this very snapshot: an answer remembered from another one
            // is never mixed with it.
            Some(needle) => self.search(&txn, q, needle, search_generation(&txn)?)?,
            None => walk(&txn, q)?,
        };
        let media = txn.open_table(MEDIA)?;
        let mut items = Vec::with_capacity(hit.keys.len());
        for key in &hit.keys {
            let id = index::id_of(key).ok_or_else(|| CatalogError::Corrupt("index key".into()))?;
            items.push(self.load_cached(&media, id, generation)?);
        }
        let next = if hit.more {
            hit.keys.last().cloned()
        } else {
            None
        };
        Ok(Page {
            items,
            total: hit.total,
            next,
        })
    }

    /// A search page: from the memo when an answer made at the snapshot's search
    /// generation `searches` (see `tables::META`) holds it, else computed (and remembered
    /// when the page lies within the first `memo::TOP` positions).
    fn search(
        &self,
        txn: &ReadTransaction,
        q: &ListQuery,
        needle: &str,
        searches: u64,
    ) -> Result<search::Hit> {
        if q.cursor.is_none() && q.offset.saturating_add(q.limit) > memo::TOP {
            return search::search(txn, q, needle, None); // past what an answer holds
        }
        let slot = self.memo.slot(memo::Key::of(q, needle));
        let mut held = memo::hold(&slot);
        if let Some(answer) = held.as_ref().filter(|a| a.generation == searches) {
            return match answer.page(q) {
                Some(hit) => Ok(hit),
                None => search::search(txn, q, needle, q.cursor.as_deref()),
            };
        }
        let first = ListQuery {
            offset: 0,
            limit: memo::TOP,
            cursor: None,
            ..q.clone()
        };
        let top = search::search(txn, &first, needle, None)?;
        let answer = memo::Answer {
            generation: searches,
            total: top.total,
            positions: top.keys,
            complete: !top.more,
        };
        let hit = answer.page(q);
        *held = Some(answer);
        drop(held);
        match hit {
            Some(hit) => Ok(hit),
            None => search::search(txn, q, needle, q.cursor.as_deref()),
        }
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
            .ok_or_else(|| CatalogError::Corrupt(format!("{id} in an index only")))
    }
}

/// The search generation of a snapshot (see `tables::META`).
pub(super) fn search_generation(txn: &ReadTransaction) -> Result<u64> {
    let meta = txn.open_table(META)?;
    Ok(meta.get(SEARCH_GENERATION)?.map_or(0, |v| v.value()))
}

/// A page of the listing index: the ranges of the filter's partitions, from the cursor (or
/// the start, skipping `offset` entries), one entry more than the page to know if more
/// follow. Public and private items are apart, and a subtree (`within`, a key limited to
/// a folder) is its folders' partitions: a listing of several merges them.
fn walk(txn: &ReadTransaction, q: &ListQuery) -> Result<search::Hit> {
    let listing = txn.open_table(INDEX)?;
    let counts = txn.open_table(COUNTS)?;
    let folders: Vec<Option<String>> = match (&q.folder, &q.within) {
        (Some(f), _) => vec![Some(f.as_str().to_owned())],
        (None, Some(root)) => subtree(&counts, root)?.into_iter().map(Some).collect(),
        (None, None) => vec![None],
    };
    let visibilities = match q.visibility {
        Some(v) => vec![v],
        None => vec![Visibility::Public, Visibility::Private],
    };
    let mut prefixes = Vec::with_capacity(folders.len() * visibilities.len());
    for folder in &folders {
        let partition = match (folder.as_deref(), q.kind) {
            (Some(f), Some(k)) => Partition::FolderKind(f, k),
            (Some(f), None) => Partition::Folder(f),
            (None, Some(k)) => Partition::Kind(k),
            (None, None) => Partition::All,
        };
        for visibility in &visibilities {
            prefixes.push(index::prefix(q.sort, partition, *visibility));
        }
    }
    let mut ranges = Vec::with_capacity(prefixes.len());
    for start in prefixes {
        let end = index::prefix_end(&start);
        let at = q
            .cursor
            .as_ref()
            .map(|tail| [start.as_slice(), tail].concat());
        let (lower, upper) = match (&at, q.descending) {
            (Some(at), false) => (
                Bound::Excluded(at.as_slice()),
                Bound::Excluded(end.as_slice()),
            ),
            (Some(at), true) => (
                Bound::Included(start.as_slice()),
                Bound::Excluded(at.as_slice()),
            ),
            (None, _) => (
                Bound::Included(start.as_slice()),
                Bound::Excluded(end.as_slice()),
            ),
        };
        let range = listing.range::<&[u8]>((lower, upper))?;
        let entries: Box<dyn Iterator<Item = _>> = if q.descending {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        // Each entry as its tail (its position), the same in every range.
        let skip = start.len();
        ranges.push(entries.map(move |e| Ok(e?.0.value()[skip..].to_vec())));
    }
    let descending = q.descending;
    // An error sorts first, so it ends the walk.
    let merged = ranges
        .into_iter()
        .kmerge_by(|a: &Result<Vec<u8>>, b| match (a, b) {
            (Ok(a), Ok(b)) => (a < b) != descending,
            (Err(_), _) => true,
            (Ok(_), Err(_)) => false,
        });
    let mut keys = Vec::with_capacity(q.limit.min(100) + 1);
    for tail in merged.skip(q.offset).take(q.limit.saturating_add(1)) {
        keys.push(tail?);
    }
    let more = keys.len() > q.limit;
    keys.truncate(q.limit);
    let count =
        |key: String| -> Result<u64> { Ok(counts.get(key.as_str())?.map_or(0, |v| v.value())) };
    let mut total = 0u64;
    for folder in folders.iter().map(Option::as_deref) {
        let every = || count(index::count_key(folder, q.kind));
        let private = || count(index::private_count_key(folder, q.kind));
        total += match q.visibility {
            None => every()?,
            Some(Visibility::Private) => private()?,
            Some(Visibility::Public) => every()?.saturating_sub(private()?),
        };
    }
    Ok(search::Hit { keys, total, more })
}

/// The folders of `root`'s subtree that hold items (those with a counter), `root` first.
fn subtree(
    counts: &impl ReadableTable<&'static str, u64>,
    root: &FolderPath,
) -> Result<Vec<String>> {
    let exact = index::count_key(Some(root.as_str()), None);
    let mut folders = Vec::new();
    if counts.get(exact.as_str())?.is_some() {
        folders.push(root.as_str().to_owned());
    }
    let (below, past) = index::below(&exact);
    for entry in counts.range::<&str>(below.as_str()..past.as_str())? {
        let (key, _) = entry?;
        let folder = index::counted_folder(key.value()).ok_or_else(|| {
            CatalogError::Corrupt(format!("counter {:?} in the folders' range", key.value()))
        })?;
        folders.push(folder.to_owned());
    }
    Ok(folders)
}
