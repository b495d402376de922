//! What a node keeps of the catalog between requests, and how it learns that another
//! node changed it. Every listing answers with the folder list and every authenticated
//! request reads its key: two round trips of three on a listing, for rows that change
//! rarely. A node keeps both, each stamped with the change generation it was read at:
//!
//! - A commit that changes the folder set or the keys notifies `darkroom_changed`
//!   (delivered to every node at commit); hearing it, or committing such a change itself,
//!   moves a node to the next generation, and what it kept from before is not used again.
//! - The folder list is used only while the node is listening: with the notifications
//!   lost (the listening connection down), every listing reads it afresh.
//! - A key is used at most `KEY_TTL` after it was read, listening or not, so a revoked key
//!   stops working on every node within that even when a notification is missed.
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
pub(super) const CHANGED: &str = "darkroom_changed";

/// How long a node uses a key record it read.
const KEY_TTL: Duration = Duration::from_secs(2);

#[derive(Default)]
pub(super) struct Kept {
    listening: AtomicBool,
    generation: AtomicU64,
    folders: Mutex<Option<(u64, Vec<String>)>>,
    keys: Mutex<HashMap<String, (u64, Instant, ApiKeyRecord)>>,
}

impl Kept {
    /// The generation to stamp what is read now with.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Something changed (heard, or committed here): what was kept is not used again.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The listening connection is up (after its `LISTEN`) or lost: notifications from
    /// before it came up may have been missed, so either way it is a new generation.
    pub fn listening(&self, up: bool) {
        self.listening.store(up, Ordering::Release);
        self.changed();
    }

    /// The folder list, if the one kept is still current.
    pub fn folders(&self) -> Option<Vec<String>> {
        if !self.listening.load(Ordering::Acquire) {
            return None;
        }
        let kept = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|(generation, _)| *generation == self.generation())
            .map(|(_, folders)| folders.clone())
    }

    /// Keeps the folder list read at `generation`.
    pub fn keep_folders(&self, generation: u64, folders: &[String]) {
        *self.folders.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, folders.to_vec()));
    }

    /// The record of key `id`, if one kept is still current.
    pub fn key(&self, id: &str) -> Option<ApiKeyRecord> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let (generation, read, record) = keys.get(id)?;
        (*generation == self.generation() && read.elapsed() < KEY_TTL).then(|| record.clone())
    }

    /// Keeps a key record read at `generation` (keys are few: one entry per key in use).
    pub fn keep_key(&self, generation: u64, record: &ApiKeyRecord) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.retain(|_, (g, _, _)| *g == generation);
        keys.insert(
            record.id.clone(),
            (generation, Instant::now(), record.clone()),
        );
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
        }
    }

    #[test]
    fn folders_are_kept_only_while_listening_and_until_a_change() {
        let kept = Kept::default();
        let at = kept.generation();
        kept.keep_folders(at, &["/".into()]);
        assert_eq!(kept.folders(), None, "not listening yet");
        kept.listening(true);
        assert_eq!(kept.folders(), None, "read before the listening began");
        kept.keep_folders(kept.generation(), &["/".into(), "/a".into()]);
        assert_eq!(kept.folders(), Some(vec!["/".into(), "/a".into()]));
        kept.changed();
        assert_eq!(kept.folders(), None, "a change heard");
        kept.keep_folders(kept.generation(), &["/".into()]);
        kept.listening(false);
        assert_eq!(kept.folders(), None, "the notifications are lost");
    }

    #[test]
    fn a_key_read_before_a_change_is_not_used_after_it() {
        let kept = Kept::default();
        // Read, then a revocation commits, then the read is kept: it stays unused.
        let at = kept.generation();
        kept.changed();
        kept.keep_key(at, &key("aaaaaaaa"));
        assert_eq!(kept.key("aaaaaaaa"), None);
        kept.keep_key(kept.generation(), &key("aaaaaaaa"));
        assert_eq!(kept.key("aaaaaaaa").map(|k| k.id), Some("aaaaaaaa".into()));
        assert_eq!(kept.key("bbbbbbbb"), None);
        kept.changed();
        assert_eq!(kept.key("aaaaaaaa"), None);
    }
}
