//! An upload on its way in: spooled in memory while small, then to a temp file, sniffed
//! and probed there, and finally committed to a backend (see `Storage::commit`).

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::{Held, InFlight, Result};
use crate::media::sniff::SNIFF_LEN;
use crate::model::random_token;

/// Uploads up to `limits.upload_buffer_bytes` stay in memory until they are committed
/// (or read back for probing), so a small upload costs one trip to the blocking pool
/// instead of three; larger ones go to a temp file through a write buffer of that size.
pub const DEFAULT_BUFFER: usize = 256 * 1024;

/// One upload on its way in: in memory while small, then a temp file in `tmp`. Dropped
/// without `commit`, its temp file (if any) is removed.
pub struct Sink {
    pub(super) path: PathBuf,
    spool: Spool,
    len: u64,
    head: Vec<u8>,
    pub(super) committed: bool,
    /// The temp file's name, held from the sweep while this upload is in progress.
    _held: Held,
    /// Bytes kept in memory before spilling, and the temp file's write buffer.
    buffer: usize,
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
    pub(super) fn new(tmp: &Path, in_flight: &InFlight, buffer: usize) -> Self {
        let name = format!("{}.part", random_token(20));
        Self {
            path: tmp.join(&name),
            _held: in_flight.hold(name),
            buffer,
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
            if buf.len() + chunk.len() <= self.buffer {
                let needed = buf.len() + chunk.len();
                if needed > buf.capacity() {
                    // Doubled as the upload comes (a 100 KB file holds ~128 KB, not the
                    // whole buffer), never past the buffer.
                    let grown = needed.max(2 * buf.capacity()).min(self.buffer);
                    buf.reserve_exact(grown - buf.len());
                }
                buf.extend_from_slice(chunk);
                return Ok(());
            }
            let spilled = std::mem::take(buf);
            let file = tokio::fs::File::create(&self.path).await?;
            let mut writer = tokio::io::BufWriter::with_capacity(self.buffer, file);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(sink: &Sink) -> Option<usize> {
        match &sink.spool {
            Spool::Memory(buf) => Some(buf.capacity()),
            Spool::File(_) => None,
        }
    }

    #[tokio::test]
    async fn memory_grows_with_the_upload_and_never_past_the_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let in_flight = InFlight::default();
        let mut sink = Sink::new(dir.path(), &in_flight, 256 * 1024);
        sink.write(&[1; 1000]).await.expect("write");
        assert!(capacity(&sink).expect("in memory") < 64 * 1024);
        for _ in 0..2 {
            sink.write(&[2; 100 * 1024]).await.expect("write");
        }
        sink.write(&[3; 50 * 1024]).await.expect("write");
        assert!(capacity(&sink).expect("in memory") <= 256 * 1024);
        assert!(!sink.path().exists());
        sink.write(&[4; 10 * 1024]).await.expect("write"); // past the buffer: spilled
        assert_eq!(capacity(&sink), None);
        sink.flush().await.expect("flush");
        assert_eq!(
            std::fs::metadata(sink.path()).expect("file").len(),
            sink.len()
        );
    }
}
