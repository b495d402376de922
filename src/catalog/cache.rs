//! A bounded in-memory copy of recently read media records and of the folder list, so
//! point reads (`GET` of an item, the hottest public path) and listing pages skip the redb
//! lookups and the JSON decode.
//!
//! Correctness rests on two rules, both applied under the one lock:
//! - every commit bumps the generation afterwards and invalidates the ids of the records
//!   it wrote or removed; the folder list is only valid for the generation it was read in;
//! - a reader may only fill the cache with what it read if the generation it saw *before*
//!   opening its read transaction is still current. A record read from a snapshot older
//!   than some commit can therefore never be cached after that commit's invalidation.
//!
//! When full, an arbitrary entry makes room (the map's hash order is random per process).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::model::MediaRecord;

/// Records kept; about 0.5 KB each.
pub const CAPACITY: usize = 16_384;

pub struct ReadCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    generation: u64,
    records: HashMap<String, MediaRecord>,
    /// The folder list and the generation it was read in.
    folders: Option<(u64, Vec<String>)>,
}

impl ReadCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                generation: 0,
                records: HashMap::with_capacity(capacity.min(1024)),
                folders: None,
            }),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read before opening the read transaction whose result may be passed to `fill`.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn get(&self, id: &str) -> Option<MediaRecord> {
        self.lock().records.get(id).cloned()
    }

    /// Keeps `record`, read by a transaction opened after `generation` was taken, unless
    /// a commit has invalidated anything since.
    pub fn fill(&self, generation: u64, record: &MediaRecord) {
        let mut inner = self.lock();
        if inner.generation != generation || self.capacity == 0 {
            return;
        }
        if inner.records.len() >= self.capacity
            && let Some(victim) = inner.records.keys().next().cloned()
        {
            inner.records.remove(&victim);
        }
        inner.records.insert(record.id.clone(), record.clone());
    }

    /// The folder list, if no commit happened since it was read.
    pub fn folders(&self) -> Option<Vec<String>> {
        let inner = self.lock();
        let (generation, folders) = inner.folders.as_ref()?;
        (*generation == inner.generation).then(|| folders.clone())
    }

    /// Keeps a folder list read by a transaction opened after `generation` was taken.
    pub fn fill_folders(&self, generation: u64, folders: &[String]) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.folders = Some((generation, folders.to_vec()));
        }
    }

    /// Forgets everything (the database was reopened).
    pub fn invalidate_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.records.clear();
        inner.folders = None;
    }

    /// Called after every commit with the ids of every record it wrote or removed.
    pub fn invalidate<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        inner.generation += 1;
        for id in ids {
            inner.records.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tail: char) -> MediaRecord {
        MediaRecord::sample(tail, "a.png", 1, 10)
    }

    #[test]
    fn a_read_that_raced_a_commit_is_not_kept() {
        let cache = ReadCache::new(8);
        let r = record('a');
        let before = cache.generation();
        cache.invalidate([r.id.as_str()]); // a commit lands while the read is in flight
        cache.fill(before, &r);
        assert_eq!(cache.get(&r.id), None);
        cache.fill(cache.generation(), &r);
        assert_eq!(cache.get(&r.id), Some(r));
    }

    #[test]
    fn invalidation_removes_the_written_ids_only() {
        let cache = ReadCache::new(8);
        let (a, b) = (record('a'), record('b'));
        cache.fill(cache.generation(), &a);
        cache.fill(cache.generation(), &b);
        cache.invalidate([a.id.as_str()]);
        assert_eq!(cache.get(&a.id), None);
        assert_eq!(cache.get(&b.id), Some(b));
    }

    #[test]
    fn the_folder_list_lasts_until_the_next_commit() {
        let cache = ReadCache::new(8);
        let folders = vec!["/".to_owned(), "/a".to_owned()];
        let stale = cache.generation();
        cache.fill_folders(stale, &folders);
        assert_eq!(cache.folders(), Some(folders.clone()));
        cache.invalidate([]); // any commit, even one that wrote no record
        assert_eq!(cache.folders(), None);
        cache.fill_folders(stale, &folders); // read before that commit: not kept
        assert_eq!(cache.folders(), None);
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let cache = ReadCache::new(3);
        for tail in ['a', 'b', 'c', 'd', 'e'] {
            cache.fill(cache.generation(), &record(tail));
        }
        assert_eq!(cache.lock().records.len(), 3);
        assert!(
            cache.get(&record('e').id).is_some(),
            "the newest record is kept"
        );
    }
}
