//! Where file bytes live. One closed enum of backends (local disk, S3) behind the
//! `StorageActor`.
//!
//! Every upload is first spooled to a `Sink`: its first 256 KB in memory (the buffer a
//! file writer would hold anyway), anything beyond streamed to a temp file in
//! `<data_dir>/tmp`, so no large file is ever held in memory. It is sniffed and probed
//! there, then committed to the backend under a server-made key `YYYY/MM/<token>.<ext>`.

pub mod key;
mod local;
mod ranged;
mod s3;
mod sink;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub use key::{FileUrls, is_valid_key};
pub use local::LocalStorage;
pub use ranged::RangedObject;
pub use s3::{ObjectInfo, S3Storage};
pub use sink::Sink;

use futures_util::future::BoxFuture;

use crate::config::StorageConfig;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the storage service is restarting, try again")]
    Unavailable,
    /// The health probe found the backend not answering while this waited on it.
    #[error("the storage backend is not answering; retry shortly")]
    Down,
    #[error("object store request failed: {0}")]
    Remote(String),
    #[error("this storage backend has no presigned uploads")]
    Unsupported,
    /// A private item's file, on a bucket store without `storage.private_bucket`.
    #[error(
        "private media needs a bucket of its own on S3: set storage.private_bucket (see the \
         README's \"Private media\")"
    )]
    NoPrivatePlace,
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// The configured backend.
pub enum Storage {
    Local(LocalStorage),
    S3(S3Storage),
}

/// An opened stored file, ready to stream.
/// A stored file as a local path: the file itself (local disk), or a temp copy of an
/// object (S3), removed when this is dropped.
pub enum LocalFile {
    Stored(PathBuf),
    Fetched(Box<Sink>),
}

impl LocalFile {
    pub fn path(&self) -> &Path {
        match self {
            Self::Stored(path) => path,
            Self::Fetched(sink) => sink.path(),
        }
    }
}

pub struct StoredFile {
    pub file: tokio::fs::File,
    pub len: u64,
    pub modified: SystemTime,
}

/// Files of requests in progress: temp files being written, and stored files whose
/// record is not committed yet. The orphan sweep never removes one of these, however old
/// (a trickling upload may take longer than the sweep's grace period).
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashMap<String, usize>>>);

/// One name held in `InFlight` until this is dropped.
pub struct Held {
    registry: InFlight,
    name: String,
}

impl InFlight {
    /// Holds `name` (a storage key, or a temp file's name) until the guard drops; a name
    /// held twice stays held until both guards drop.
    pub fn hold(&self, name: String) -> Held {
        *self.lock().entry(name.clone()).or_default() += 1;
        Held {
            registry: self.clone(),
            name,
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.registry.lock();
        if let Some(count) = held.get_mut(&self.name) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.name);
            }
        }
    }
}

/// The catalog's judge for the orphan sweep (see `CatalogHandle::claims`): of a batch of
/// stored files, those it still wants. A batch it cannot judge comes back whole (kept).
pub type Claims = Arc<dyn Fn(Vec<String>) -> BoxFuture<'static, HashSet<String>> + Send + Sync>;

/// Files the sweep puts to the catalog at once (and holds at most).
const SWEEP_BATCH: usize = 500;

/// One orphan sweep: temp files and stored files the catalog does not claim are removed
/// when they were last modified before `cutoff` (younger ones may belong to a request
/// still in progress), unless a request in progress holds them (`InFlight`).
#[derive(Clone)]
pub struct Sweep {
    pub claims: Claims,
    pub cutoff: SystemTime,
    /// Stored files too, not only this node's temp files. Stored files are the
    /// cluster's: with N nodes one at a time sweeps them, and never with a cutoff
    /// younger than the grace period (another node's requests are not in `InFlight`).
    pub stored: bool,
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub temp_files: usize,
    pub orphans: usize,
}

impl Storage {
    /// The configured backend, its folders created.
    pub fn new(config: &StorageConfig, data_dir: &Path) -> Result<Self> {
        Ok(match config {
            StorageConfig::Local => Self::Local(LocalStorage::new(data_dir)?),
            StorageConfig::S3(s3) => Self::S3(S3Storage::new(s3, data_dir)?),
        })
    }

    /// A new empty temp file for one incoming upload.
    pub async fn begin(&self) -> Result<Sink> {
        match self {
            Self::Local(l) => l.begin().await,
            Self::S3(s) => s.begin().await,
        }
    }

    /// Makes the spooled bytes durable under `key` (stored with content type `mime`);
    /// returns the stored size.
    pub async fn commit(&self, sink: Sink, key: &str, mime: &str) -> Result<u64> {
        match self {
            Self::Local(l) => l.commit(sink, key).await,
            Self::S3(s) => s.commit(sink, key, mime).await,
        }
    }

    /// Makes a copy of the stored file `from` under `to` (durable when this returns);
    /// `false` when `from` does not exist. How a private item's files move.
    pub async fn copy(&self, from: &str, to: &str) -> Result<bool> {
        match self {
            Self::Local(l) => l.copy(from, to).await,
            Self::S3(s) => s.copy(from, to).await,
        }
    }

    /// A link to a private item's file that lets its holder GET it for `expires_in`:
    /// presigned by the bucket on S3; on local disk, `None` (this server signs
    /// its own links: see `delivery::sign`).
    pub async fn presign_get(&self, key: &str, expires_in: Duration) -> Result<Option<String>> {
        match self {
            Self::Local(_) => Ok(None),
            Self::S3(s) => s.presign_get(key, expires_in).await.map(Some),
        }
    }

    /// Removes a stored file; a file that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self {
            Self::Local(l) => l.delete(key).await,
            Self::S3(s) => s.delete(key).await,
        }
    }

    /// Stores generated files (variants) under their keys, durably.
    pub async fn put_all(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        match self {
            Self::Local(l) => l.put_all(files).await,
            Self::S3(s) => s.put_all(files).await,
        }
    }

    /// A stored file's whole content (the processing input); `None` when missing.
    pub async fn read(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Self::Local(l) => l.read(key).await,
            Self::S3(s) => s.read(key).await,
        }
    }

    /// Opens a stored file for this server to serve; `None` when it does not exist or
    /// the backend's files are served elsewhere (S3: from `public_base_url`).
    pub async fn open(&self, key: &str) -> Result<Option<StoredFile>> {
        match self {
            Self::Local(l) => l.open(key).await,
            Self::S3(_) => Ok(None),
        }
    }

    /// Sets the bytes of an upload kept in memory before it spills to a temp file (and the
    /// temp file's write buffer after): `limits.upload_buffer_bytes`.
    pub fn with_upload_buffer(mut self, bytes: usize) -> Self {
        match &mut self {
            Self::Local(l) => l.upload_buffer = bytes,
            Self::S3(s) => s.upload_buffer = bytes,
        }
        self
    }

    /// The files of requests in progress (shared with the handles that stage uploads).
    pub fn in_flight(&self) -> InFlight {
        match self {
            Self::Local(l) => l.in_flight.clone(),
            Self::S3(s) => s.in_flight.clone(),
        }
    }

    /// The backend's name, for metric labels.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::S3(_) => "s3",
        }
    }

    /// Fails when the backend cannot take files (e.g. its folders are gone).
    pub async fn check(&self) -> Result<()> {
        match self {
            Self::Local(l) => l.check().await,
            Self::S3(s) => s.check().await,
        }
    }

    /// Removes temp files and unclaimed stored files older than the sweep's cutoff.
    pub async fn sweep(&self, sweep: Sweep) -> Result<SweepReport> {
        match self {
            Self::Local(l) => {
                let (local, runtime) = (l.clone(), tokio::runtime::Handle::current());
                let walk = tokio::task::spawn_blocking(move || local.sweep(&sweep, &runtime));
                walk.await.map_err(std::io::Error::other)?
            }
            Self::S3(s) => s.sweep(&sweep).await,
        }
    }

    fn s3(&self) -> Result<&S3Storage> {
        match self {
            Self::S3(s) => Ok(s),
            Self::Local(_) => Err(StorageError::Unsupported),
        }
    }

    /// A URL to PUT the upload for `key` with this Content-Type until it expires (S3
    /// only). It lands in a staging object, never at `key` (see `key::staging_object_key`).
    pub async fn presign_put(
        &self,
        key: &str,
        mime: &str,
        expires_in: std::time::Duration,
    ) -> Result<String> {
        self.s3()?.presign_put(key, mime, expires_in).await
    }

    /// The size of what a client uploaded for `key` (S3 only); `None` when nothing.
    pub async fn head_upload(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.s3()?.head_upload(key).await
    }

    /// A stored file where a tool can read it: in place on local disk, fetched into a
    /// temp file from a bucket; `None` when missing.
    pub async fn fetch(&self, key: &str) -> Result<Option<LocalFile>> {
        Ok(match self {
            Self::Local(l) => l.local_path(key).await?.map(LocalFile::Stored),
            Self::S3(s) => s.fetch(key).await?.map(|f| LocalFile::Fetched(Box::new(f))),
        })
    }

    /// What a client uploaded for `key`, copied into a temp file (at most `limit` + 1
    /// bytes of it) to be checked (S3 only).
    pub async fn fetch_upload(&self, key: &str, limit: u64) -> Result<Option<Sink>> {
        self.s3()?.fetch_upload(key, limit).await
    }

    /// Copies what a client uploaded for `key` to `key`, inside the store (S3 only);
    /// false when nothing was uploaded.
    pub async fn promote_upload(&self, key: &str) -> Result<bool> {
        self.s3()?.promote_upload(key).await
    }

    /// Removes what a client uploaded for `key` (S3 only).
    pub async fn delete_upload(&self, key: &str) -> Result<()> {
        self.s3()?.delete_upload(key).await
    }

    /// The size of the object stored under `key` (S3 only); `None` when absent.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.s3()?.head(key).await
    }

    /// The object stored under `key`, to be read in ranges (S3 only).
    pub fn ranged(&self, key: &str, len: u64) -> Result<RangedObject> {
        self.s3()?.ranged(key, len)
    }
}

/// Removes the temp files left by a crash or an abandoned request: last modified before
/// `cutoff` and not held by a request in progress; returns the count.
fn sweep_temp(tmp: &Path, cutoff: SystemTime, in_flight: &InFlight) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp)? {
        let entry = entry?;
        let held = entry
            .file_name()
            .to_str()
            .is_some_and(|n| in_flight.contains(n));
        let path = entry.path();
        if !held && modified_before(&path, cutoff)? {
            remove_if_present(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Whether a file was last modified before `cutoff`; one already gone (a request
/// finished with it meanwhile) is not.
fn modified_before(path: &Path, cutoff: SystemTime) -> std::io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.modified()? < cutoff),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a file; one already gone is fine.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::InFlight;

    #[test]
    fn a_name_held_twice_stays_held_until_both_guards_drop() {
        let in_flight = InFlight::default();
        let first = in_flight.hold("2026/01/a.png".into());
        let second = in_flight.hold("2026/01/a.png".into());
        drop(first);
        assert!(
            in_flight.contains("2026/01/a.png"),
            "the second still holds it"
        );
        drop(second);
        assert!(!in_flight.contains("2026/01/a.png"));
    }
}
