//! Every redb table of the catalog, in one place.

use redb::TableDefinition;

/// media id → `MediaRecord` as JSON.
pub const MEDIA: TableDefinition<&str, &[u8]> = TableDefinition::new("media");
/// Sorted listing index (see `index.rs` for the key layout) → the item's kind tag.
pub const INDEX: TableDefinition<&[u8], u8> = TableDefinition::new("media_index");
/// Exact item counts per listing scope (`a`, `f:<folder>`, `k:<kind>`, `x:<kind>:<folder>`).
pub const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("counts");
/// Folders created explicitly with `POST /api/v1/media/folders`.
pub const FOLDERS: TableDefinition<&str, ()> = TableDefinition::new("folders");
/// storage key → owning media id (what may be served, what the orphan sweep keeps).
pub const FILES: TableDefinition<&str, &str> = TableDefinition::new("files");
/// Every file of an item, the other way round: `<media id>|<storage key>` (kept with
/// `FILES`), so that deleting an item removes every file the catalog knows for it,
/// whatever its record says.
pub const ITEM_FILES: TableDefinition<&str, ()> = TableDefinition::new("item_files");
/// Durable delete queue: storage key → time queued (µs). Cleared once the file is gone.
pub const PENDING_DELETES: TableDefinition<&str, u64> = TableDefinition::new("pending_deletes");
/// API key id → `ApiKeyRecord` as JSON.
pub const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Unfinished processing jobs: media id → attempts started so far.
pub const JOBS: TableDefinition<&str, u32> = TableDefinition::new("jobs");
/// Presigned uploads issued and not yet confirmed: storage key → `PresignRecord` as JSON.
pub const PRESIGNS: TableDefinition<&str, &[u8]> = TableDefinition::new("presigns");
/// Catalog facts: `schema` (layout version), `search_next` (next search document number)
/// and `search_generation` (bumped by every commit that changes what search finds: the
/// remembered answers of an older generation are stale).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Search document number → `search::Doc` bytes.
pub const SEARCH_DOCS: TableDefinition<u64, &[u8]> = TableDefinition::new("search_docs");
/// media id → its search document number.
pub const SEARCH_IDS: TableDefinition<&str, u64> = TableDefinition::new("search_ids");
/// Posting blocks of the search index (see `search::postings` for the key layout).
pub const SEARCH_GRAMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("search_grams");
/// On-demand crops written: `<media id>|<storage key>` → last use (µs, big-endian u64)
/// then size (big-endian u64).
pub const CROP_CACHE: TableDefinition<&str, &[u8]> = TableDefinition::new("crop_cache");
/// The same crops by last use: last use (big-endian u64) then `<media id>|<storage key>`.
pub const CROP_LRU: TableDefinition<&[u8], ()> = TableDefinition::new("crop_lru");

/// Webhooks: id → `WebhookRecord` as JSON.
pub const WEBHOOKS: TableDefinition<&str, &[u8]> = TableDefinition::new("webhooks");
/// Each webhook's outbox, events waiting for delivery: `<webhook id>\0<seq, big-endian
/// u64>` (see `queue_key`) → `Queued` as JSON. Written in the commit of the change.
pub const OUTBOX: TableDefinition<&[u8], &[u8]> = TableDefinition::new("webhook_outbox");
/// Each webhook's last delivery attempts, keyed like `OUTBOX` → `Attempt` as JSON.
pub const ATTEMPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("webhook_attempts");

/// `OUTBOX` (and `ATTEMPTS`) key of entry `seq` of webhook `id`: a webhook's entries are
/// a range, in order.
pub fn queue_key(id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 9);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The range of webhook `id`'s `OUTBOX` (or `ATTEMPTS`) keys.
pub fn queue_of(id: &str) -> (Vec<u8>, Vec<u8>) {
    let mut from = id.as_bytes().to_vec();
    from.push(0);
    let mut to = id.as_bytes().to_vec();
    to.push(1);
    (from, to)
}

/// The sequence number in an `OUTBOX` (or `ATTEMPTS`) key.
pub fn queue_seq(key: &[u8]) -> u64 {
    let tail: [u8; 8] = key
        .get(key.len().saturating_sub(8)..)
        .and_then(|b| b.try_into().ok())
        .unwrap_or_default();
    u64::from_be_bytes(tail)
}

/// `ITEM_FILES` key of file `key` of item `id` (the item first, so its files are a range).
pub fn item_file(id: &str, key: &str) -> String {
    format!("{id}|{key}")
}

/// The range of item `id`'s `ITEM_FILES` (and `CROP_CACHE`) keys: `<id>|` to `<id>}`.
pub fn entries_of(id: &str) -> (String, String) {
    (format!("{id}|"), format!("{id}}}"))
}

/// `CROP_CACHE` key of crop `key` of item `id` (the item first, so its crops are a range).
pub fn crop_entry(id: &str, key: &str) -> String {
    format!("{id}|{key}")
}

/// The storage key in an `ITEM_FILES` or `CROP_CACHE` key.
pub fn entry_file(entry: &str) -> &str {
    entry.split_once('|').map_or(entry, |(_, key)| key)
}

/// A `CROP_CACHE` value.
pub fn crop_value(last_used: u64, size: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&last_used.to_be_bytes());
    v[8..].copy_from_slice(&size.to_be_bytes());
    v
}

/// (last use, size) of a `CROP_CACHE` value.
pub fn parse_crop_value(value: &[u8]) -> (u64, u64) {
    let word = |at: usize| {
        let bytes: [u8; 8] = value
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .unwrap_or_default();
        u64::from_be_bytes(bytes)
    };
    (word(0), word(8))
}
