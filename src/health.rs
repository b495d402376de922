//! What Darkroom knows about the world it depends on: whether the catalog takes commits,
//! whether storage answers, and how much room the data dir has. A background probe
//! (`maintenance`) keeps it current, each check under a deadline, so `/readyz` answers
//! from here at once and never waits on a frozen dependency; uploads consult it to fail
//! fast (`503` while storage is known to be down, `507` below the free-space floor).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shared state; see the module docs.
#[derive(Debug)]
pub struct Health {
    data_dir: PathBuf,
    /// Uploads are refused below this many free bytes in the data dir.
    min_free: u64,
    /// A probe older than this no longer counts (the probe itself is stuck).
    stale_after: Duration,
    born: Instant,
    /// Milliseconds from `born` to the end of the last probe (0: none yet).
    probed_ms: AtomicU64,
    catalog: AtomicBool,
    storage: AtomicBool,
    processing: AtomicBool,
    free: AtomicU64,
    /// Whether storage answers, for the operations waiting on it (see `storage_up`).
    storage_up: tokio::sync::watch::Sender<bool>,
    /// Probes in a row that found storage not answering.
    storage_misses: AtomicU64,
}

/// Probes in a row that must find storage not answering before the operations waiting on
/// it are failed (one slow answer, a retried 5xx, is no outage).
const DOWN_AFTER: u64 = 2;

/// One reading of `Health`, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub catalog: bool,
    pub storage: bool,
    /// The processing pool runs (images are turned into variants).
    pub processing: bool,
    pub free_bytes: u64,
    pub disk: bool,
    /// The last probe is recent enough to be believed.
    pub fresh: bool,
}

impl Reading {
    pub fn ready(&self) -> bool {
        self.catalog && self.storage && self.processing && self.disk && self.fresh
    }
}

/// What one health probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub catalog: bool,
    pub storage: bool,
    pub processing: bool,
    pub free_bytes: u64,
}

/// Why an upload is refused before a byte of it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "the server is out of space ({free} bytes free, below its {floor} byte floor); \
         uploads resume once space is freed (deleting items frees it)"
    )]
    OutOfSpace { free: u64, floor: u64 },
    #[error("the storage backend is not answering; retry this upload shortly")]
    StorageDown,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::OutOfSpace { .. } => "out_of_space",
            Self::StorageDown => "storage_down",
        }
    }
}

impl Health {
    /// Optimistic until the first probe: start-up has just checked everything.
    pub fn new(data_dir: &Path, min_free: u64, stale_after: Duration) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
            min_free,
            stale_after,
            born: Instant::now(),
            probed_ms: AtomicU64::new(0),
            catalog: AtomicBool::new(true),
            storage: AtomicBool::new(true),
            processing: AtomicBool::new(true),
            free: AtomicU64::new(u64::MAX),
            storage_up: tokio::sync::watch::Sender::new(true),
            storage_misses: AtomicU64::new(0),
        }
    }

    /// Follows the probe's verdict on storage: operations waiting on a store found not
    /// answering by `DOWN_AFTER` probes in a row give up at once (503) instead of waiting
    /// out their own deadlines. (Readiness follows each probe.)
    pub fn storage_up(&self) -> tokio::sync::watch::Receiver<bool> {
        self.storage_up.subscribe()
    }

    /// Records one probe's findings.
    pub fn record(&self, found: Probe) {
        let Probe {
            catalog,
            storage,
            processing,
            free_bytes,
        } = found;
        self.catalog.store(catalog, Ordering::Relaxed);
        self.processing.store(processing, Ordering::Relaxed);
        self.storage.store(storage, Ordering::Relaxed);
        let misses = if storage {
            self.storage_misses.store(0, Ordering::Relaxed);
            0
        } else {
            self.storage_misses.fetch_add(1, Ordering::Relaxed) + 1
        };
        let up = storage || misses < DOWN_AFTER;
        self.storage_up
            .send_if_modified(|was| std::mem::replace(was, up) != up);
        self.free.store(free_bytes, Ordering::Relaxed);
        let ms = self.born.elapsed().as_millis().max(1) as u64;
        self.probed_ms.store(ms, Ordering::Relaxed);
    }

    pub fn read(&self) -> Reading {
        let probed = self.probed_ms.load(Ordering::Relaxed);
        let since = self
            .born
            .elapsed()
            .saturating_sub(Duration::from_millis(probed));
        let free_bytes = self.free.load(Ordering::Relaxed);
        Reading {
            catalog: self.catalog.load(Ordering::Relaxed),
            storage: self.storage.load(Ordering::Relaxed),
            processing: self.processing.load(Ordering::Relaxed),
            free_bytes,
            disk: free_bytes >= self.min_free,
            fresh: probed == 0 || since <= self.stale_after,
        }
    }

    /// May an upload begin? Storage must not be known down, and the data dir (measured
    /// now: a statfs is cheap) must have room above the floor.
    pub fn admit_upload(&self) -> Result<(), Refusal> {
        if !self.storage.load(Ordering::Relaxed) {
            return Err(Refusal::StorageDown);
        }
        let free = self.free_bytes();
        self.free.store(free, Ordering::Relaxed);
        if free < self.min_free {
            return Err(Refusal::OutOfSpace {
                free,
                floor: self.min_free,
            });
        }
        Ok(())
    }

    /// Free bytes of the data dir's filesystem for an unprivileged writer; a failed
    /// statfs reads as plenty (the write itself will say what is wrong).
    pub fn free_bytes(&self) -> u64 {
        free_bytes(&self.data_dir).unwrap_or(u64::MAX)
    }
}

fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(catalog: bool, storage: bool, free_bytes: u64) -> Probe {
        Probe {
            catalog,
            storage,
            processing: true,
            free_bytes,
        }
    }

    #[test]
    fn a_reading_is_ready_only_when_every_part_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let health = Health::new(dir.path(), 1024, Duration::from_secs(2));
        assert!(health.read().ready(), "optimistic before the first probe");
        health.record(probe(true, false, 1 << 30));
        assert!(!health.read().ready());
        assert_eq!(health.admit_upload(), Err(Refusal::StorageDown));
        health.record(probe(true, true, 10));
        let reading = health.read();
        assert!(!reading.disk && !reading.ready());
        health.record(probe(true, true, 1 << 30));
        assert!(health.read().ready());
        assert!(health.admit_upload().is_ok(), "a tempdir has 1 KB free");
    }

    #[test]
    fn below_the_floor_uploads_are_refused_with_the_figures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let health = Health::new(dir.path(), u64::MAX, Duration::from_secs(2));
        let Err(Refusal::OutOfSpace { free, floor }) = health.admit_upload() else {
            panic!("no disk has u64::MAX bytes free");
        };
        assert_eq!(floor, u64::MAX);
        assert!(free > 0 && free < u64::MAX);
        assert!(!health.read().disk, "the measurement is kept for /readyz");
    }

    #[test]
    fn a_stale_probe_is_not_believed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let health = Health::new(dir.path(), 0, Duration::from_millis(1));
        health.record(probe(true, true, 1 << 30));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!health.read().fresh);
    }
}
