//! An object in the bucket, read in ranges: `Read + Seek` for the probes (which run on a
//! blocking thread), each read that misses the block held a ranged GET of at least
//! `BLOCK` bytes. Confirming a 500 MB video this way reads its head and its `moov`,
//! wherever the header says it is, never its media data.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::metrics as m;

/// The least one GET asks for: box headers are 8-16 bytes apart in a small file, and one
/// round trip each would be slow.
const BLOCK: u64 = 256 * 1024;

pub struct RangedObject {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    len: u64,
    pos: u64,
    /// The bytes of the last GET and where they start.
    held: (u64, Bytes),
    runtime: tokio::runtime::Handle,
}

impl RangedObject {
    /// An object of `len` bytes (from its HEAD). Must be read on a blocking thread of
    /// `runtime` (`spawn_blocking`): every miss waits there for its GET.
    pub(super) fn new(
        store: Arc<dyn ObjectStore>,
        path: ObjectPath,
        len: u64,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            store,
            path,
            len,
            pos: 0,
            held: (0, Bytes::new()),
            runtime,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The object's path in the store (for logs).
    pub fn name(&self) -> &str {
        self.path.as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn fetch(&mut self, range: Range<u64>) -> io::Result<()> {
        let got = self
            .runtime
            .block_on(self.store.get_range(&self.path, range.clone()))
            .map_err(io::Error::other)?;
        if got.len() as u64 != range.end - range.start {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the object is shorter than its HEAD said",
            ));
        }
        metrics::counter!(m::STORAGE_RANGED_BYTES).increment(got.len() as u64);
        self.held = (range.start, got);
        Ok(())
    }
}

impl Read for RangedObject {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let (start, held) = (self.held.0, self.held.1.len() as u64);
        if !(start..start + held).contains(&self.pos) {
            let want = (buf.len() as u64).max(BLOCK);
            let end = self.pos.saturating_add(want).min(self.len);
            self.fetch(self.pos..end)?;
        }
        let offset = (self.pos - self.held.0) as usize;
        let available = &self.held.1[offset..];
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedObject {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn reads_and_seeks_fetch_only_the_ranges_asked_for() {
        let store = Arc::new(InMemory::new());
        let path = ObjectPath::from("video.mp4");
        let data: Vec<u8> = (0..4 * BLOCK).map(|i| (i % 251) as u8).collect();
        store
            .put(&path, PutPayload::from(data.clone()))
            .await
            .expect("put");
        let runtime = tokio::runtime::Handle::current();
        let store: Arc<dyn ObjectStore> = store;
        let read = tokio::task::spawn_blocking(move || {
            let mut object = RangedObject::new(store, path, 4 * BLOCK, runtime);
            let mut head = [0u8; 16];
            object.read_exact(&mut head).expect("head");
            let end = object.seek(SeekFrom::End(-10)).expect("seek");
            let mut tail = Vec::new();
            object.read_to_end(&mut tail).expect("tail");
            let past = object.seek(SeekFrom::Current(5)).expect("past the end");
            let mut nothing = [0u8; 4];
            let n = object.read(&mut nothing).expect("read at the end");
            (head, end, tail, past, n, object.held.0)
        })
        .await
        .expect("blocking read");
        let (head, end, tail, past, n, last_start) = read;
        assert_eq!(&head[..], &data[..16]);
        assert_eq!(end, 4 * BLOCK - 10);
        assert_eq!(tail, &data[data.len() - 10..]);
        assert_eq!((past, n), (4 * BLOCK + 5, 0));
        assert_eq!(last_start, 4 * BLOCK - 10, "the tail was one small GET");
    }
}
