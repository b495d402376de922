//! The on-demand crop cache in a batch: a crop written is recorded (and claimed, so the
//! orphan sweep keeps it) with its size and last use; past the budget the least recently
//! used go to the delete queue in the same commit; an item deleted, replaced or given a
//! new focal point takes its cached crops with it.

use std::ops::Bound;

use redb::ReadableTable;

use super::{Outcome, Result, Tables};
use crate::catalog::tables::{crop_entry, crop_value, entries_of, entry_file, parse_crop_value};

/// `COUNTS` key of the bytes the cached crops take.
const CACHE_BYTES: &str = "c:crop-cache-bytes";

/// What recording a computed crop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CropCached {
    /// False when the item is gone or its file or focal point changed meanwhile, or the
    /// crop alone is larger than the budget: it was queued for deletion instead.
    pub kept: bool,
    /// Older crops pushed out to stay within the budget (already on the delete queue).
    pub evicted: Vec<String>,
}

/// An on-demand crop written for item `id`, made from its original `source` at crop
/// `version`; the cache must stay within `budget` bytes.
#[derive(Debug)]
pub struct CacheCrop {
    pub id: String,
    pub key: String,
    pub size: u64,
    pub source: String,
    pub version: u32,
    pub now_us: u64,
    pub budget: u64,
}

/// `CROP_LRU` key: last use, then the `CROP_CACHE` key.
fn lru_key(last_used: u64, entry: &str) -> Vec<u8> {
    let mut k = last_used.to_be_bytes().to_vec();
    k.extend_from_slice(entry.as_bytes());
    k
}

impl Tables<'_> {
    /// Records crop `key` (`size` bytes) of item `id`, made for its original `source` at
    /// `version`; then evicts the least recently used until the cache fits `budget`.
    pub(super) fn cache_crop(&mut self, c: &CacheCrop) -> Result<Outcome> {
        let current = self.get(&c.id)?;
        let fresh = current
            .as_ref()
            .is_some_and(|r| r.storage_key == c.source && r.crop_version == c.version);
        // Stale (made for a file or focal point since changed), or larger than the whole
        // cache: not kept, its file goes.
        if !fresh || c.size > c.budget {
            self.queue_deletes(std::slice::from_ref(&c.key))?;
            let done = CropCached {
                kept: false,
                evicted: Vec::new(),
            };
            return Ok(Outcome::Crop(done));
        }
        let name = crop_entry(&c.id, &c.key);
        let replaced = self.remove_crop(&name)?;
        self.add_cache_bytes(-(replaced as i64))?;
        self.crops
            .insert(name.as_str(), crop_value(c.now_us, c.size).as_slice())?;
        self.crop_lru
            .insert(lru_key(c.now_us, &name).as_slice(), ())?;
        self.claim_file(&c.key, &c.id)?;
        let mut total = self.add_cache_bytes(c.size as i64)?;
        let mut evicted = Vec::new();
        // The others go, least recently used first (never the new one: its last use may
        // be older than another's, a crop touched meanwhile or a clock stepped back).
        while total > c.budget {
            let Some(oldest) = self.oldest_crop_but(&name)? else {
                break;
            };
            let freed = self.remove_crop(&oldest)?;
            total = self.add_cache_bytes(-(freed as i64))?;
            evicted.push(entry_file(&oldest).to_owned());
        }
        self.queue_deletes(&evicted)?;
        Ok(Outcome::Crop(CropCached {
            kept: true,
            evicted,
        }))
    }

    /// Marks a cached crop used at `now_us` (it moves to the back of the eviction line).
    pub(super) fn touch_crop(&mut self, id: &str, key: &str, now_us: u64) -> Result<Outcome> {
        let name = crop_entry(id, key);
        let Some((last, size)) = self
            .crops
            .get(name.as_str())?
            .map(|v| parse_crop_value(v.value()))
        else {
            return Ok(Outcome::Done);
        };
        self.crop_lru.remove(lru_key(last, &name).as_slice())?;
        self.crops
            .insert(name.as_str(), crop_value(now_us, size).as_slice())?;
        self.crop_lru
            .insert(lru_key(now_us, &name).as_slice(), ())?;
        Ok(Outcome::Done)
    }

    /// Removes every cached crop of an item and queues their files.
    pub(super) fn drop_item_crops(&mut self, id: &str) -> Result<()> {
        let (from, to) = entries_of(id);
        let mut names = Vec::new();
        for row in self
            .crops
            .range::<&str>((Bound::Included(from.as_str()), Bound::Excluded(to.as_str())))?
        {
            names.push(row?.0.value().to_owned());
        }
        let mut keys = Vec::with_capacity(names.len());
        for name in names {
            let size = self.remove_crop(&name)?;
            self.add_cache_bytes(-(size as i64))?;
            keys.push(entry_file(&name).to_owned());
        }
        self.queue_deletes(&keys).map(drop)
    }

    /// The least recently used crop's cache key, other than `but`.
    fn oldest_crop_but(&self, but: &str) -> Result<Option<String>> {
        for row in self.crop_lru.iter()?.take(2) {
            let key = row?.0.value().to_vec();
            let entry = String::from_utf8_lossy(&key[8.min(key.len())..]).into_owned();
            if entry != but {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Forgets one cached crop (its file row too); returns its size.
    fn remove_crop(&mut self, name: &str) -> Result<u64> {
        let Some((last, size)) = self
            .crops
            .remove(name)?
            .map(|v| parse_crop_value(v.value()))
        else {
            return Ok(0);
        };
        self.crop_lru.remove(lru_key(last, name).as_slice())?;
        self.release_file(entry_file(name))?;
        Ok(size)
    }

    /// Adds `delta` to the cache's byte count; returns the new count.
    fn add_cache_bytes(&mut self, delta: i64) -> Result<u64> {
        let now = self.counts.get(CACHE_BYTES)?.map_or(0, |v| v.value());
        let next = now.saturating_add_signed(delta);
        self.counts.insert(CACHE_BYTES, next)?;
        Ok(next)
    }
}
