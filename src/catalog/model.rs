//! What the catalog stores: media records, API keys, folder paths, and the small value
//! types (ids, timestamps, query parameters) validated before any actor is called.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};

use crate::media::{Kind, MediaType};

/// Length of the random part of ids and storage tokens.
const TOKEN_LEN: usize = 16;
/// `media_` + 16 alphanumerics: every id has this length (index keys rely on it).
pub const ID_LEN: usize = 6 + TOKEN_LEN;

/// A stored media item. Serialized as JSON inside redb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaRecord {
    pub id: String,
    pub filename: String,
    pub media_type: MediaType,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Seconds, for videos whose container says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    pub alt: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub folder: String,
    pub focal_x: f64,
    pub focal_y: f64,
    /// Microseconds since the Unix epoch.
    pub created_us: u64,
    /// Where the original lives in storage: `YYYY/MM/<token>.<ext>`.
    pub storage_key: String,
    /// Image items only: the state of their variants and placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing: Option<Processing>,
}

impl MediaRecord {
    pub fn kind(&self) -> Kind {
        self.media_type.kind()
    }

    /// Every storage key this item owns: the original and the variants written so far.
    pub fn storage_keys(&self) -> Vec<String> {
        let variants = self.processing.iter().flat_map(|p| &p.variants);
        std::iter::once(self.storage_key.clone())
            .chain(variants.map(|v| v.storage_key.clone()))
            .collect()
    }

    /// A PNG record for tests: id `media_` + 16 × `id_tail`, in folder `/a`.
    #[cfg(test)]
    pub fn sample(id_tail: char, name: &str, created: u64, size: u64) -> Self {
        Self {
            id: format!("media_{}", id_tail.to_string().repeat(16)),
            filename: name.into(),
            media_type: MediaType::Png,
            size,
            width: None,
            height: None,
            duration: None,
            alt: None,
            title: None,
            description: None,
            folder: "/a".into(),
            focal_x: 50.0,
            focal_y: 50.0,
            created_us: created,
            storage_key: format!("2026/01/{}.png", id_tail.to_string().repeat(16)),
            processing: None,
        }
    }

    /// The `i`th record of a synthetic catalog, for benchmarks and the load-test seeder:
    /// four types in turn (by sevens), 100 folders `/f00`..`/f99`, sizes spread over 5 MB,
    /// a third with alt text, createdAt 1 ms apart. It has no file behind it.
    #[doc(hidden)]
    pub fn synthetic(i: u64) -> Self {
        let types = [
            MediaType::Jpeg,
            MediaType::Png,
            MediaType::Pdf,
            MediaType::Mp4,
        ];
        let media_type = types[((i / 7) % 4) as usize];
        Self {
            id: new_media_id(),
            filename: format!("{}-{i}.{}", new_storage_token(), media_type.ext()),
            media_type,
            size: 1000 + (i * 7919) % 5_000_000,
            width: Some(1920),
            height: Some(1080),
            duration: None,
            alt: i.is_multiple_of(3).then(|| format!("alt text {i}")),
            title: None,
            description: None,
            folder: format!("/f{:02}", i % 100),
            focal_x: 50.0,
            focal_y: 50.0,
            created_us: 1_700_000_000_000_000 + i * 1000,
            storage_key: format!("2026/01/{}.{}", new_storage_token(), media_type.ext()),
            processing: None,
        }
    }

    /// True while the item waits for its processing job.
    pub fn is_processing(&self) -> bool {
        self.processing
            .as_ref()
            .is_some_and(|p| p.status == Status::Processing)
    }
}

/// Where an image item is in its processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Processing,
    Ready,
    Failed,
}

/// Variants and placeholders of an image item (empty until its job is done).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processing {
    pub status: Status,
    #[serde(default)]
    pub variants: Vec<VariantRecord>,
    #[serde(default)]
    pub thumbhash: Option<String>,
    #[serde(default)]
    pub dominant_color: Option<String>,
    /// Why the job failed, when it did.
    #[serde(default)]
    pub error: Option<String>,
}

impl Processing {
    /// A raster image waiting for its job.
    pub fn pending() -> Self {
        Self::with_status(Status::Processing)
    }

    /// Done without a job (SVG: no raster variants).
    pub fn ready_without_variants() -> Self {
        Self::with_status(Status::Ready)
    }

    fn with_status(status: Status) -> Self {
        Self {
            status,
            variants: Vec::new(),
            thumbhash: None,
            dominant_color: None,
            error: None,
        }
    }
}

/// One stored WebP variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRecord {
    pub width: u32,
    pub height: u32,
    pub size: u64,
    /// `YYYY/MM/<token>-<width>.webp`.
    pub storage_key: String,
}

/// The end of a processing job, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Ready {
        variants: Vec<VariantRecord>,
        thumbhash: String,
        dominant_color: String,
    },
    Failed {
        reason: String,
    },
}

impl JobResult {
    /// The item's processing state once this result is recorded.
    pub fn into_processing(self) -> Processing {
        match self {
            Self::Ready {
                variants,
                thumbhash,
                dominant_color,
            } => Processing {
                status: Status::Ready,
                variants,
                thumbhash: Some(thumbhash),
                dominant_color: Some(dominant_color),
                error: None,
            },
            Self::Failed { reason } => Processing {
                error: Some(reason),
                ..Processing::with_status(Status::Failed)
            },
        }
    }
}

/// A presigned upload this server issued, kept until it is confirmed or swept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresignRecord {
    pub filename: String,
    pub media_type: MediaType,
    /// The exact size the client declared; the stored object must match it.
    pub size: u64,
    /// Microseconds since the Unix epoch.
    pub expires_us: u64,
}

/// Fields a PATCH may change; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPatch {
    pub alt: Option<Option<String>>,
    pub title: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub folder: Option<FolderPath>,
    pub focal_x: Option<f64>,
    pub focal_y: Option<f64>,
}

impl MediaPatch {
    pub fn apply(&self, r: &mut MediaRecord) {
        if let Some(v) = &self.alt {
            r.alt.clone_from(v);
        }
        if let Some(v) = &self.title {
            r.title.clone_from(v);
        }
        if let Some(v) = &self.description {
            r.description.clone_from(v);
        }
        if let Some(f) = &self.folder {
            r.folder = f.as_str().to_owned();
        }
        if let Some(x) = self.focal_x {
            r.focal_x = x;
        }
        if let Some(y) = self.focal_y {
            r.focal_y = y;
        }
    }
}

/// Read or write access of an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Write || needed == Scope::Read
    }
}

/// A stored API key: only the SHA-256 of the secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub hash: [u8; 32],
    pub created_us: u64,
}

/// A folder path: `/` or `/seg(/seg)*`, segments `[A-Za-z0-9._-]{1,64}` but not `.`/`..`,
/// at most 16 levels and 512 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FolderPath(String);

impl FolderPath {
    pub fn root() -> Self {
        Self("/".to_owned())
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "/" {
            return Some(Self::root());
        }
        if s.len() > 512 || !s.starts_with('/') {
            return None;
        }
        let segments: Vec<&str> = s[1..].split('/').collect();
        let valid = segments.len() <= 16
            && segments.iter().all(|seg| {
                (1..=64).contains(&seg.len())
                    && *seg != "."
                    && *seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// `/a/b/c` → `["/a", "/a/b"]` (every proper ancestor but `/`).
    pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
        path.match_indices('/')
            .skip(1)
            .map(move |(i, _)| &path[..i])
    }
}

/// Sort field of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    Filename,
    Size,
}

impl SortField {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "createdAt" => Some(Self::CreatedAt),
            "filename" => Some(Self::Filename),
            "size" => Some(Self::Size),
            _ => None,
        }
    }
}

/// A validated listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub folder: Option<FolderPath>,
    pub kind: Option<Kind>,
    /// Lower-cased search text.
    pub search: Option<String>,
    pub sort: SortField,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

impl ListQuery {
    /// Index entries a listing may walk and still run inline on an async worker (about
    /// 100 µs of work); longer walks and searches go to the blocking pool.
    const INLINE_WALK: usize = 1_000;

    /// True when answering walks a short, bounded slice of the index: no search (a scan),
    /// and a page that starts near the front.
    pub fn is_short(&self) -> bool {
        self.search.is_none() && self.offset.saturating_add(self.limit) <= Self::INLINE_WALK
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            folder: None,
            kind: None,
            search: None,
            sort: SortField::CreatedAt,
            descending: true,
            limit: 24,
            offset: 0,
        }
    }
}

/// One page of a listing with the exact total.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<MediaRecord>,
    pub total: u64,
}

/// The key of an original's variant: `YYYY/MM/<token>.<ext>` → `YYYY/MM/<token>-<width>.webp`.
pub fn variant_key(original: &str, width: u32) -> String {
    let stem = original.rsplit_once('.').map_or(original, |(stem, _)| stem);
    format!("{stem}-{width}.webp")
}

/// `YYYY/MM/<token>` of an original's or a variant's key: what ties a variant to its item.
pub fn key_stem(key: &str) -> &str {
    let name_start = key.rfind('/').map_or(0, |i| i + 1);
    let end = key[name_start..]
        .find(['-', '.'])
        .map_or(key.len(), |i| name_start + i);
    &key[..end]
}

/// `n` random ASCII alphanumerics from the OS-seeded thread RNG.
pub fn random_token(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// A new media id: `media_` and a time-ordered token.
pub fn new_media_id() -> String {
    format!("media_{}", time_ordered_token())
}

/// A new storage token (the file name stem), time-ordered like ids.
pub fn new_storage_token() -> String {
    time_ordered_token()
}

/// Digits in ASCII order, so that fixed-width numbers compare like their bytes.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const TIME_DIGITS: usize = 8;

/// `TOKEN_LEN` characters: 8 base-62 digits of the milliseconds since 1970 (good until
/// the year 8900), then random ones (47 bits). Records made together get neighbouring
/// keys in every B-tree keyed by id or storage key, so a commit rewrites a few pages at
/// the right edge instead of one random page per record; the random part keeps them
/// unguessable.
fn time_ordered_token() -> String {
    let mut ms = now_us() / 1000;
    let mut head = [b'0'; TIME_DIGITS];
    for digit in head.iter_mut().rev() {
        *digit = BASE62[(ms % 62) as usize];
        ms /= 62;
    }
    let mut token: String = head.iter().map(|&b| char::from(b)).collect();
    token.push_str(&random_token(TOKEN_LEN - TIME_DIGITS));
    token
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// `2026-03-26T10:30:00Z`.
pub fn rfc3339(us: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// `YYYY/MM` of a timestamp, for storage keys.
pub fn year_month(us: u64) -> String {
    let s = rfc3339(us);
    format!("{}/{}", &s[0..4], &s[5..7])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_grammar() {
        for ok in ["/", "/images", "/images/products", "/a.b/c_d/e-f", "/A1"] {
            assert!(FolderPath::parse(ok).is_some(), "{ok}");
        }
        let deep = "/a".repeat(17);
        let long_seg = format!("/{}", "x".repeat(65));
        for bad in [
            "", "images", "/images/", "//", "/a//b", "/.", "/..", "/a/../b", "/a b", "/é", "/a\\b",
            &deep, &long_seg,
        ] {
            assert!(FolderPath::parse(bad).is_none(), "{bad:?}");
        }
        assert!(FolderPath::parse(&"/a".repeat(16)).is_some());
    }

    #[test]
    fn ancestors_exclude_root_and_self() {
        let a: Vec<&str> = FolderPath::ancestors("/a/b/c").collect();
        assert_eq!(a, ["/a", "/a/b"]);
        assert_eq!(FolderPath::ancestors("/a").count(), 0);
    }

    #[test]
    fn ids_have_fixed_length_and_differ() {
        let (a, b) = (new_media_id(), new_media_id());
        assert_eq!(a.len(), ID_LEN);
        assert_ne!(a, b);
        assert!(a.starts_with("media_") && a[6..].bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn tokens_sort_by_creation_time() {
        let first = new_storage_token();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_storage_token();
        assert!(first < second, "{first} then {second}");
        assert_ne!(first[TIME_DIGITS..], second[TIME_DIGITS..]);
        assert_eq!(second.len(), TOKEN_LEN);
    }

    #[test]
    fn timestamps_format() {
        assert_eq!(rfc3339(1_774_521_000_000_000), "2026-03-26T10:30:00Z");
        assert_eq!(year_month(1_774_521_000_000_000), "2026/03");
    }

    #[test]
    fn variant_keys_share_the_original_stem() {
        let v = variant_key("2026/03/AbC123.jpg", 400);
        assert_eq!(v, "2026/03/AbC123-400.webp");
        assert_eq!(key_stem(&v), "2026/03/AbC123");
        assert_eq!(key_stem("2026/03/AbC123.jpg"), "2026/03/AbC123");
        assert_ne!(key_stem("2026/03/AbC1234.jpg"), key_stem(&v));
    }

    #[test]
    fn scopes() {
        assert!(Scope::Write.allows(Scope::Read) && Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read) && !Scope::Read.allows(Scope::Write));
    }
}
