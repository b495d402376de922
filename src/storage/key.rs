//! The storage key format, the one shape every stored file has: originals at
//! `YYYY/MM/<token>.<ext>`, variants at `YYYY/MM/<token>-<width>.webp`, the files of
//! private items under `private/` (kept apart: see `storage`), objects in a bucket under
//! `<prefix>/`; and the URLs clients fetch them from.

use crate::config::StorageConfig;
use crate::model::{CropSize, MediaRecord, MediaType, Visibility, new_storage_token, rfc3339};

/// What the keys of a private item's files start with.
pub const PRIVATE: &str = "private/";

/// How a private item's file may be cached in a bucket: by its reader only, and checked
/// again each time (its link ends; a shared cache must not keep it).
pub const PRIVATE_CACHE: &str = "private, no-cache";

/// A new server-made key for an original of an item of `visibility`:
/// `[private/]YYYY/MM/<token>.<ext>`.
pub fn new_key(media_type: MediaType, created_us: u64, visibility: Visibility) -> String {
    format!(
        "{}{}/{}.{}",
        place(visibility),
        year_month(created_us),
        new_storage_token(),
        media_type.ext()
    )
}

fn place(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Public => "",
        Visibility::Private => PRIVATE,
    }
}

/// Every file of item `r` (its original first) with the key it has once the item is of
/// `visibility`: one new stem for all (see `moved`). What a visibility change copies.
pub fn moves(r: &MediaRecord, visibility: Visibility) -> Vec<(String, String)> {
    let to = moved(&r.storage_key, visibility);
    let keys = r.storage_keys().into_iter();
    keys.map(|k| {
        let new = to(&k);
        (k, new)
    })
    .collect()
}

/// True for the key of a private item's file.
pub fn is_private(key: &str) -> bool {
    key.starts_with(PRIVATE)
}

/// Where the files of an item whose original is `original` go when it becomes of
/// `visibility`: one new stem (a new token, same month) for all of them, so no new key is
/// ever one the delete queue may still hold. Returns a function from each old key to its
/// new one (variants and crops keep their suffixes).
pub fn moved(original: &str, visibility: Visibility) -> impl Fn(&str) -> String + use<> {
    let old_stem = key_stem(original).to_owned();
    let month = old_stem
        .trim_start_matches(PRIVATE)
        .rsplit_once('/')
        .map_or("", |(month, _)| month)
        .to_owned();
    let new_stem = format!("{}{month}/{}", place(visibility), new_storage_token());
    move |key: &str| match key.strip_prefix(old_stem.as_str()) {
        Some(rest) => format!("{new_stem}{rest}"),
        None => key.to_owned(), // not one of the item's (never the case for its own keys)
    }
}

/// `YYYY/MM` of a timestamp.
pub fn year_month(us: u64) -> String {
    let s = rfc3339(us);
    format!("{}/{}", &s[0..4], &s[5..7])
}

/// The key of an original's variant: `YYYY/MM/<token>.<ext>` → `YYYY/MM/<token>-<width>.webp`.
pub fn variant_key(original: &str, width: u32) -> String {
    let stem = original.rsplit_once('.').map_or(original, |(stem, _)| stem);
    format!("{stem}-{width}.webp")
}

/// The key of a video's or PDF's poster: `YYYY/MM/<token>.<ext>` → `YYYY/MM/<token>-poster.webp`
/// (its variants are `variant_key`s of the original, as an image's are).
pub fn poster_key(original: &str) -> String {
    let stem = original.rsplit_once('.').map_or(original, |(stem, _)| stem);
    format!("{stem}-poster.webp")
}

/// The key of a crop: `YYYY/MM/<token>-<w>x<h>.webp`, with `-v<n>` from the second focal
/// point on (version 0 and 1 are the first).
pub fn crop_key(original: &str, size: CropSize, version: u32) -> String {
    sized_key(original, "", size, version)
}

/// What every key of an on-demand crop of this size starts with:
/// `YYYY/MM/<token>-c<w>x<h>[-v<n>]-n` (see `ondemand_crop_key`).
pub fn ondemand_crop_prefix(original: &str, size: CropSize, version: u32) -> String {
    let key = sized_key(original, "c", size, version);
    format!("{}-n", key.trim_end_matches(".webp"))
}

/// A new key for one making of an on-demand crop: `YYYY/MM/<token>-c<w>x<h>[-v<n>]-n<nonce>.webp`
/// (apart from the preset crops of the same size). Every making gets its own key, so a
/// crop evicted and made again never shares a key with the file being deleted.
pub fn ondemand_crop_key(original: &str, size: CropSize, version: u32) -> String {
    let nonce = crate::model::random_token(8);
    format!(
        "{}{nonce}.webp",
        ondemand_crop_prefix(original, size, version)
    )
}

/// True for the key of an on-demand crop (`...-c<w>x<h>...`): only the catalog's own
/// record of it claims it (a running job's variants are claimed by their stem instead).
pub fn is_ondemand_crop(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    name.split('-')
        .skip(1)
        .any(|part| part.starts_with('c') && part[1..].starts_with(|c: char| c.is_ascii_digit()))
}

/// `YYYY/MM/<token>-<tag><w>x<h>[-v<version>].webp`.
fn sized_key(original: &str, tag: &str, size: CropSize, version: u32) -> String {
    let stem = original.rsplit_once('.').map_or(original, |(stem, _)| stem);
    let (w, h) = (size.width, size.height);
    let version = if version > 1 {
        format!("-v{version}")
    } else {
        String::new()
    };
    format!("{stem}-{tag}{w}x{h}{version}.webp")
}

/// `YYYY/MM/<token>` of an original's or a variant's key: what ties a variant to its item.
pub fn key_stem(key: &str) -> &str {
    let name_start = key.rfind('/').map_or(0, |i| i + 1);
    let end = key[name_start..]
        .find(['-', '.'])
        .map_or(key.len(), |i| name_start + i);
    &key[..end]
}

/// True for keys of the form `YYYY/MM/<name>.<ext>` with a plain name: the only shape
/// the server makes, so nothing else is ever looked up on disk or in the bucket.
pub fn is_valid_key(key: &str) -> bool {
    let key = key.strip_prefix(PRIVATE).unwrap_or(key);
    let parts: Vec<&str> = key.split('/').collect();
    let [year, month, name] = parts.as_slice() else {
        return false;
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    digits(year, 4)
        && digits(month, 2)
        && (1..=64).contains(&stem.len())
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && (1..=8).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A bucket object's full key: `<prefix>/<key>` (the spec's `storageKey`).
pub fn object_key(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}/{key}")
    }
}

/// Where a presigned PUT lands in the bucket: `incoming/<prefix>/<key>`, outside the
/// prefix that `public_base_url` serves. Confirm copies what it checked from there to the
/// key itself, which no URL handed out can write.
pub fn staging_object_key(prefix: &str, key: &str) -> String {
    format!("incoming/{}", object_key(prefix, key))
}

/// The server-made key inside a full object key, if it is one of ours.
pub fn key_of<'a>(prefix: &str, object_key: &'a str) -> Option<&'a str> {
    let prefix = prefix.trim_matches('/');
    let key = if prefix.is_empty() {
        object_key
    } else {
        object_key.strip_prefix(prefix)?.strip_prefix('/')?
    };
    is_valid_key(key).then_some(key)
}

/// Where clients fetch stored files: this server's `/uploads/` for local storage, the
/// CDN or public bucket (`storage.public_base_url`) for S3.
#[derive(Debug, Clone)]
pub struct FileUrls {
    base: String,
}

impl FileUrls {
    pub fn new(config: &StorageConfig) -> Self {
        let base = match config {
            StorageConfig::Local => "/uploads/".to_owned(),
            StorageConfig::S3(s3) => format!("{}/", s3.public_base_url.trim_end_matches('/')),
        };
        Self { base }
    }

    pub fn url(&self, storage_key: &str) -> String {
        format!("{}{storage_key}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_made_keys_are_valid() {
        assert!(is_valid_key("2026/03/abcDEF123.jpg"));
        assert!(is_valid_key("2026/03/abc-400.webp"));
        assert!(is_valid_key(&new_key(
            MediaType::Webm,
            1_774_521_000_000_000,
            Visibility::Public
        )));
        assert!(is_valid_key("private/2026/03/abc-400.webp"));
        assert!(!is_valid_key("private/private/2026/03/abc.jpg"));
        assert!(!is_valid_key("private/03/abc.jpg"));
        for bad in [
            "",
            "2026/03",
            "../03/a.jpg",
            "2026/3/a.jpg",
            "2026/03/../a.jpg",
            "2026/03/.jpg",
            "2026/03/a",
            "2026/03/a.JPG",
            "2026/03/a b.jpg",
            "2026/03/a.jpg/x",
            "/2026/03/a.jpg",
        ] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn keys_are_filed_by_month_of_creation() {
        assert_eq!(year_month(1_774_521_000_000_000), "2026/03");
        let key = new_key(MediaType::Jpeg, 1_774_521_000_000_000, Visibility::Public);
        assert!(
            key.starts_with("2026/03/") && key.ends_with(".jpg"),
            "{key}"
        );
    }

    #[test]
    fn crop_keys_share_the_stem_and_carry_their_version() {
        let size = CropSize {
            width: 1200,
            height: 630,
        };
        let first = crop_key("2026/03/AbC123.jpg", size, 0);
        assert_eq!(first, "2026/03/AbC123-1200x630.webp");
        assert_eq!(crop_key("2026/03/AbC123.jpg", size, 1), first);
        let moved = crop_key("2026/03/AbC123.jpg", size, 2);
        assert_eq!(moved, "2026/03/AbC123-1200x630-v2.webp");
        assert!(is_valid_key(&first) && is_valid_key(&moved));
        assert_eq!(key_stem(&moved), "2026/03/AbC123");
    }

    #[test]
    fn on_demand_crop_keys_are_new_each_time_and_found_by_their_prefix() {
        let size = CropSize {
            width: 300,
            height: 200,
        };
        let (a, b) = (
            ondemand_crop_key("2026/03/AbC123.jpg", size, 0),
            ondemand_crop_key("2026/03/AbC123.jpg", size, 0),
        );
        assert_ne!(a, b);
        let prefix = ondemand_crop_prefix("2026/03/AbC123.jpg", size, 0);
        assert_eq!(prefix, "2026/03/AbC123-c300x200-n");
        assert!(a.starts_with(&prefix) && is_valid_key(&a), "{a}");
        assert_eq!(key_stem(&a), "2026/03/AbC123");
        let moved = ondemand_crop_key("2026/03/AbC123.jpg", size, 2);
        assert!(
            !moved.starts_with(&prefix),
            "another version, another prefix: {moved}"
        );
        assert!(is_ondemand_crop(&a) && is_ondemand_crop(&moved));
        assert!(!is_ondemand_crop(&crop_key("2026/03/AbC123.jpg", size, 2)));
        assert!(!is_ondemand_crop("2026/03/AbC123-400.webp"));
        assert!(!is_ondemand_crop("2026/03/cAbC123.jpg"));
    }

    #[test]
    fn variant_keys_share_the_original_stem() {
        let v = variant_key("2026/03/AbC123.jpg", 400);
        assert_eq!(v, "2026/03/AbC123-400.webp");
        assert_eq!(key_stem(&v), "2026/03/AbC123");
        assert_eq!(key_stem("2026/03/AbC123.jpg"), "2026/03/AbC123");
        let p = poster_key("private/2026/03/AbC123.mp4");
        assert_eq!(p, "private/2026/03/AbC123-poster.webp");
        assert!(is_valid_key(&p));
        assert_eq!(key_stem(&p), "private/2026/03/AbC123");
        assert_ne!(key_stem("2026/03/AbC1234.jpg"), key_stem(&v));
    }

    #[test]
    fn uploads_land_outside_the_prefix_and_are_never_taken_for_stored_files() {
        let staged = staging_object_key("site_1", "2026/03/abc.mp4");
        assert_eq!(staged, "incoming/site_1/2026/03/abc.mp4");
        assert_eq!(key_of("site_1", &staged), None);
        assert_eq!(key_of("", &staging_object_key("", "2026/03/abc.mp4")), None);
    }

    #[test]
    fn object_keys_carry_the_prefix_and_only_server_keys_come_back() {
        let p = "/site_1/";
        assert_eq!(object_key(p, "2026/03/abc.mp4"), "site_1/2026/03/abc.mp4");
        assert_eq!(key_of(p, "site_1/2026/03/abc.mp4"), Some("2026/03/abc.mp4"));
        for bad in [
            "2026/03/abc.mp4",
            "site_2/2026/03/abc.mp4",
            "site_1/../2026/03/abc.mp4",
            "site_1/2026/03/abc.mp4/x",
            "site_1",
        ] {
            assert_eq!(key_of(p, bad), None, "{bad}");
        }
        assert_eq!(object_key("", "2026/03/abc.mp4"), "2026/03/abc.mp4");
        assert_eq!(key_of("", "2026/03/abc.mp4"), Some("2026/03/abc.mp4"));
    }

    #[test]
    fn a_moved_item_gets_one_new_stem_in_its_new_place() {
        let original = new_key(MediaType::Jpeg, 1_774_521_000_000_000, Visibility::Public);
        assert!(!is_private(&original));
        let to_private = moved(&original, Visibility::Private);
        let key = to_private(&original);
        let variant = to_private(&variant_key(&original, 400));
        assert!(
            key.starts_with("private/2026/03/") && key.ends_with(".jpg"),
            "{key}"
        );
        assert!(is_private(&key) && is_valid_key(&key) && is_valid_key(&variant));
        assert_eq!(key_stem(&variant), key_stem(&key));
        assert_eq!(variant, variant_key(&key, 400));
        assert_ne!(
            key_stem(&key).trim_start_matches(PRIVATE),
            key_stem(&original)
        );
        let back = moved(&key, Visibility::Public)(&key);
        assert!(
            back.starts_with("2026/03/") && is_valid_key(&back),
            "{back}"
        );
        assert_ne!(back, original, "never the old key again");
    }
}
