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
/// Durable delete queue: storage key → time queued (µs). Cleared once the file is gone.
pub const PENDING_DELETES: TableDefinition<&str, u64> = TableDefinition::new("pending_deletes");
/// API key id → `ApiKeyRecord` as JSON.
pub const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("api_keys");
/// Unfinished processing jobs: media id → attempts started so far.
pub const JOBS: TableDefinition<&str, u32> = TableDefinition::new("jobs");
/// Presigned uploads issued and not yet confirmed: storage key → `PresignRecord` as JSON.
pub const PRESIGNS: TableDefinition<&str, &[u8]> = TableDefinition::new("presigns");
/// Catalog facts: `schema` (layout version) and `search_next` (next search document number).
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
