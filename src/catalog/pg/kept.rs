//! What a node keeps of the catalog between requests, and how it learns that another
//! node changed it. Every listing answers with the folder list and every authenticated
//! request reads its key: two round trips of three on a listing, for rows that change
//! rarely. A node keeps both, each stamped with the change generation it was read at:
//!
//! - A commit that changes the folder set or the keys notifies `darkroom_changed`
//!   (delivered to every node at commit); hearing it, or committing such a change itself,
//!   moves a node to the next generation, and what it kept from before is not used again.
//! - The folder list is used only while the node is listening (with the notifications
//!   lost, the listening connection down, every listing reads it afresh), and at most
//!   `FOLDERS_TTL` after it was read: a connection that went silent without failing (a
//!   half-open socket, or a pooler in transaction mode, which takes the `LISTEN` but never
//!   delivers) delays another node's folder by that much at most.
//! - A key is used at most `KEY_TTL` after the read began, listening or not, so a revoked
//!   key stops working on every node within that even when a notification is missed.
//!
//! What is left: a node hears another node's commit a moment after it (the notification
//! travels like any message), so a request that reaches it within that moment, right
//! after the other node answered, can still see the folder list or key of before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::model::ApiKeyRecord;

/// The channel of commits that change the folder set or the keys.
pub(in crate::catalog) const CHANGED: &str = "darkroom_changed";

/// How long a node uses a key record it read.
const KEY_TTL: Duration = Duration::from_secs(2);
/// How long a node uses the folder list it read, hearing nothing.
const FOLDERS_TTL: Duration = Duration::from_secs(10);

/// When a read began: the generation it is stamped with, and the time its age counts from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stamp {
    generation: u64,
    at: Instant,
}

#[derive(Default)]
pub(super) struct Kept {
    listening: AtomicBool,
    generation: AtomicU64,
    folders: Mutex<Option<(Stamp, Vec<String>)>>,
    keys: Mutex<HashMap<String, (Stamp, ApiKeyRecord)>>,
}

impl Kept {
    /// The stamp of a read beginning now (taken before the read).
    pub fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::Acquire),
            at: Instant::now(),
        }
    }

    /// Whether what a read stamped `stamp` found may still be used.
    fn current(&self, stamp: &Stamp, ttl: Duration) -> bool {
        stamp.generation == self.generation.load(Ordering::Acquire) && stamp.at.elapsed() < ttl
    }

    /// Something changed (heard, or committed here): what was kept is not used again.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The listening connection is up (after its `LISTEN`) or lost: notifications from
    /// before it came up may have been missed, so either way it is a new generation.
    pub fn listening(&self, up: bool) {
        if up {
            // The new generation first: what was read while down is never current again.
            self.changed();
            self.listening.store(true, Ordering::Release);
        } else {
            self.listening.store(false, Ordering::Release);
            self.changed();
        }
    }

    /// The folder list, if the one kept is still current.
    pub fn folders(&self) -> Option<Vec<String>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let kept = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|(stamp, _)| self.current(stamp, FOLDERS_TTL))
            .map(|(_, folders)| folders.clone())
    }

    /// Keeps the folder list a read stamped `stamp` found (unless it is already stale).
    pub fn keep_folders(&self, stamp: Stamp, folders: &[String]) {
        if self.current(&stamp, FOLDERS_TTL) {
            *self.folders.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((stamp, folders.to_vec()));
        }
    }

    /// The record of key `id`, if one kept is still current.
    pub fn key(&self, id: &str) -> Option<ApiKeyRecord> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let (stamp, record) = keys.get(id)?;
        self.current(stamp, KEY_TTL).then(|| record.clone())
    }

    /// Keeps a key record a read stamped `stamp` found (unless it is already stale); keys
    /// are few, one entry per key in use, and stale entries go with each new one.
    pub fn keep_key(&self, stamp: Stamp, record: &ApiKeyRecord) {
        if !self.current(&stamp, KEY_TTL) {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|_, (kept, _)| self.current(kept, KEY_TTL));
        keys.insert(record.id.clone(), (stamp, record.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;

    fn key(id: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.into(),
            name: "k".into(),
            scope: Scope::Read,
            hash: [0; 32],
            created_us: 0,
            folder: None,
        }
    }

    #[test]
    fn folders_are_kept_only_while_listening_and_until_a_change() {
        let kept = Kept::default();
        let before = kept.stamp();
        kept.keep_folders(before, &["/".into()]);
        assert_eq!(kept.folders(), None, "not listening yet");
        kept.listening(true);
        assert_eq!(kept.folders(), None, "read before the listening began");
        kept.keep_folders(before, &["/".into()]);
        assert_eq!(kept.folders(), None, "a stale read is not kept");
        kept.keep_folders(kept.stamp(), &["/".into(), "/a".into()]);
        assert_eq!(kept.folders(), Some(vec!["/".into(), "/a".into()]));
        kept.changed();
        assert_eq!(kept.folders(), None, "a change heard");
        kept.keep_folders(kept.stamp(), &["/".into()]);
        kept.listening(false);
        assert_eq!(kept.folders(), None, "the notifications are lost");
    }

    #[test]
    fn what_is_kept_ages_out_even_when_nothing_is_heard() {
        let kept = Kept::default();
        kept.listening(true);
        let mut old = kept.stamp();
        old.at -= FOLDERS_TTL;
        kept.folders
            .lock()
            .expect("lock")
            .replace((old, vec!["/".into()]));
        assert_eq!(kept.folders(), None);
        kept.keep_folders(old, &["/".into()]);
        assert_eq!(kept.folders(), None, "too old to keep");
        let mut old = kept.stamp();
        old.at -= KEY_TTL;
        kept.keys
            .lock()
            .expect("lock")
            .insert("aaaaaaaa".into(), (old, key("aaaaaaaa")));
        assert_eq!(kept.key("aaaaaaaa"), None);
    }

    #[test]
    fn a_key_read_before_a_change_is_not_used_after_it() {
        let kept = Kept::default();
        // Read, then a revocation commits, then the read is kept: it stays unused.
        let before = kept.stamp();
        kept.changed();
        kept.keep_key(before, &key("aaaaaaaa"));
        assert_eq!(kept.key("aaaaaaaa"), None);
        kept.keep_key(kept.stamp(), &key("aaaaaaaa"));
        assert_eq!(kept.key("aaaaaaaa").map(|k| k.id), Some("aaaaaaaa".into()));
        assert_eq!(kept.key("bbbbbbbb"), None);
        kept.changed();
        assert_eq!(kept.key("aaaaaaaa"), None);
    }
}
