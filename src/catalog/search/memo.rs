//! Recent search answers. A common term's exact total costs a walk over all its matches;
//! when many editors ask for the same search (every keystroke of a search box, every page
//! of its results) that walk is done once per change of the items: the first request computes
//! the total and the first `TOP` positions while identical requests wait for it (single
//! flight), and later pages within those positions, by offset or cursor, are slices of it.
//!
//! An answer is valid for the search generation of the snapshot it was computed on (kept
//! in `META` and bumped in the same commit as any change to what search finds, so a
//! reader's snapshot and its generation always agree), so a commit that adds, edits or
//! removes an item makes every answer stale; one that only records a processing job's
//! variants does not. Memory is bounded: `SLOTS` answers of at most `TOP` positions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Hit;
use crate::model::{FolderPath, Kind, ListQuery, SortField, Visibility};

/// Positions kept per answer: the first 40 pages of 24.
pub const TOP: usize = 1000;
const SLOTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    needle: String,
    folder: Option<String>,
    kind: Option<Kind>,
    visibility: Option<Visibility>,
    within: Option<FolderPath>,
    sort: SortField,
    descending: bool,
}

impl Key {
    pub fn of(q: &ListQuery, needle: &str) -> Self {
        Self {
            needle: needle.to_owned(),
            folder: q.folder.as_ref().map(|f| f.as_str().to_owned()),
            kind: q.kind,
            visibility: q.visibility,
            within: q.within.clone(),
            sort: q.sort,
            descending: q.descending,
        }
    }
}

/// The first positions of a search in listing order, and its total.
#[derive(Debug)]
pub struct Answer {
    pub generation: u64,
    pub total: u64,
    pub positions: Vec<Vec<u8>>,
    /// `positions` holds every match.
    pub complete: bool,
}

impl Answer {
    /// The page `q` asks for, if this answer holds all of it.
    pub fn page(&self, q: &ListQuery) -> Option<Hit> {
        let start = match &q.cursor {
            Some(after) => {
                let after = after.as_slice();
                self.positions.partition_point(|p| {
                    if q.descending {
                        p.as_slice() >= after
                    } else {
                        p.as_slice() <= after
                    }
                })
            }
            None => q.offset,
        };
        let end = start.saturating_add(q.limit);
        let held = self.positions.len();
        if end > held && !self.complete {
            return None;
        }
        let keys = self.positions[start.min(held)..end.min(held)].to_vec();
        Some(Hit {
            keys,
            total: self.total,
            more: end < held || (end == held && !self.complete),
        })
    }
}

pub type Slot<M = Mutex<Option<Answer>>> = Arc<M>;

/// `SLOTS` answers, each behind a lock of type `M`: a blocking one on redb (searches run
/// on the blocking pool), an async one on PostgreSQL (the search awaits its query).
pub struct Memo<M = Mutex<Option<Answer>>> {
    slots: Mutex<HashMap<Key, Slot<M>>>,
}

impl<M> Default for Memo<M> {
    fn default() -> Self {
        Self {
            slots: Mutex::default(),
        }
    }
}

impl<M: Default> Memo<M> {
    /// The slot of `key` (made if new; when full, another slot makes room).
    pub fn slot(&self, key: Key) -> Slot<M> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get(&key) {
            return slot.clone();
        }
        if slots.len() >= SLOTS
            && let Some(victim) = slots.keys().next().cloned()
        {
            slots.remove(&victim);
        }
        slots.entry(key).or_default().clone()
    }

    /// Forgets every answer (the database was reopened: its generations start over from
    /// whatever the file says, which a repair may have rolled back).
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Locks a slot: whoever holds it computes, identical searches wait for the answer.
pub fn hold(slot: &Slot) -> MutexGuard<'_, Option<Answer>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}
