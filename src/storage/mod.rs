//! Where file bytes live. One closed enum of backends (local disk, S3) behind the
//! `StorageActor`.
//!
//! Every upload is first spooled to a `Sink`: its first 256 KB in memory (the buffer a
//! file writer would hold anyway), anything beyond streamed to a temp file in
//! `<data_dir>/tmp`, so no large file is ever held in memory. It is sniffed and probed
//! there, then committed to the backend under a server-made key `YYYY/MM/<token>.<ext>`.

mod local;
mod s3;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::AsyncWriteExt;

pub use local::LocalStorage;
pub use s3::{ObjectInfo, S3Storage};

use crate::catalog::model::random_token;
use crate::media::sniff::SNIFF_LEN;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the storage service is restarting, try again")]
    Unavailable,
    #[error("object store request failed: {0}")]
    Remote(String),
    #[error("this storage backend has no presigned uploads")]
    Unsupported,
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// The configured backend.
pub enum Storage {
    Local(LocalStorage),
    S3(S3Storage),
}

/// An opened stored file, ready to stream.
pub struct StoredFile {
    pub file: tokio::fs::File,
    pub len: u64,
    pub modified: SystemTime,
}

/// What the start-up sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub temp_files: usize,
    pub orphans: usize,
}

impl Storage {
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

    /// Removes temp files and stored files that `is_known` does not claim.
    pub fn sweep(&self, is_known: &dyn Fn(&str) -> bool) -> Result<SweepReport> {
        match self {
            Self::Local(l) => l.sweep(is_known),
            Self::S3(s) => s.sweep(),
        }
    }

    fn s3(&self) -> Result<&S3Storage> {
        match self {
            Self::S3(s) => Ok(s),
            Self::Local(_) => Err(StorageError::Unsupported),
        }
    }

    /// A URL to PUT this object with this Content-Type until it expires (S3 only).
    pub async fn presign_put(
        &self,
        key: &str,
        mime: &str,
        expires_in: std::time::Duration,
    ) -> Result<String> {
        self.s3()?.presign_put(key, mime, expires_in).await
    }

    /// The size of an object uploaded by a client (S3 only); `None` when absent.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        self.s3()?.head(key).await
    }

    /// An object uploaded by a client, copied into a temp file to be checked (S3 only).
    pub async fn fetch(&self, key: &str) -> Result<Option<Sink>> {
        self.s3()?.fetch(key).await
    }
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

/// Removes every file in the temp folder (left by a crash mid-upload); returns the count.
fn sweep_temp(tmp: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(tmp)? {
        std::fs::remove_file(entry?.path())?;
        removed += 1;
    }
    Ok(removed)
}

/// Uploads up to this size stay in memory until they are committed (or read back for
/// probing), so a small upload costs one trip to the blocking pool instead of three.
const SPILL_BYTES: usize = 256 * 1024;

/// One upload on its way in: in memory while small, then a temp file in `tmp`. Dropped
/// without `commit`, its temp file (if any) is removed.
pub struct Sink {
    path: PathBuf,
    spool: Spool,
    len: u64,
    head: Vec<u8>,
    committed: bool,
}

enum Spool {
    /// Nothing on disk yet.
    Memory(Vec<u8>),
    /// In the temp file; the writer stays open while the upload streams in.
    File(Option<tokio::io::BufWriter<tokio::fs::File>>),
}

impl Sink {
    /// A new empty upload whose temp file, if it needs one, will be in `tmp`. Nothing
    /// touches the disk until the upload outgrows memory.
    fn new(tmp: &Path) -> Self {
        Self {
            path: tmp.join(format!("{}.part", random_token(20))),
            spool: Spool::Memory(Vec::new()),
            len: 0,
            head: Vec::with_capacity(SNIFF_LEN),
            committed: false,
        }
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        if self.head.len() < SNIFF_LEN {
            let take = chunk.len().min(SNIFF_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.len += chunk.len() as u64;
        if let Spool::Memory(buf) = &mut self.spool {
            if buf.len() + chunk.len() <= SPILL_BYTES {
                buf.extend_from_slice(chunk);
                return Ok(());
            }
            let spilled = std::mem::take(buf);
            let file = tokio::fs::File::create(&self.path).await?;
            let mut writer = tokio::io::BufWriter::with_capacity(SPILL_BYTES, file);
            writer.write_all(&spilled).await?;
            self.spool = Spool::File(Some(writer));
        }
        match &mut self.spool {
            Spool::File(Some(writer)) => Ok(writer.write_all(chunk).await?),
            _ => Err(std::io::Error::other("upload written after it was flushed").into()),
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first bytes of the upload, for type sniffing.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Puts every byte in the temp file, so it can be read back (probing) at `path()`.
    pub async fn flush(&mut self) -> Result<()> {
        match &mut self.spool {
            Spool::Memory(buf) => {
                let (path, bytes) = (self.path.clone(), std::mem::take(buf));
                tokio::task::spawn_blocking(move || std::fs::write(path, bytes))
                    .await
                    .map_err(std::io::Error::other)??;
                self.spool = Spool::File(None);
            }
            Spool::File(Some(writer)) => writer.flush().await?,
            Spool::File(None) => {}
        }
        Ok(())
    }

    /// For a commit: the bytes still only in memory, which the caller writes to `path()`
    /// itself; `None` when everything is already in the temp file (flushed here).
    pub(crate) async fn finish(&mut self) -> Result<Option<Vec<u8>>> {
        if let Spool::Memory(buf) = &mut self.spool {
            let bytes = std::mem::take(buf);
            self.spool = Spool::File(None);
            return Ok(Some(bytes));
        }
        self.flush().await?;
        Ok(None)
    }

    /// The temp file's path (read back by the probe after `flush`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// True for keys of the form `YYYY/MM/<name>.<ext>` with a plain name: the only shape
/// the server makes, so nothing else is ever looked up on disk.
pub fn is_valid_key(key: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::is_valid_key;

    #[test]
    fn only_server_made_keys_are_valid() {
        assert!(is_valid_key("2026/03/abcDEF123.jpg"));
        assert!(is_valid_key("2026/03/abc-400.webp"));
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
}
