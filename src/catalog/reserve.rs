//! Room kept for deletes on a full disk: a file of `[catalog] reserve_bytes` allocated
//! next to the catalog while there is space. When another process fills the disk to its
//! last byte, a commit fails for want of room; the catalog then releases the reserve and
//! tries that batch again, so deletes (which is how space comes back) still commit. The
//! file is made again once the disk has room (the health probe asks).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct Reserve {
    path: PathBuf,
    bytes: u64,
    /// The file exists with its blocks allocated.
    held: AtomicBool,
}

impl Reserve {
    /// The reserve beside the catalog file `catalog`; made now if there is room.
    pub(super) fn beside(catalog: &Path, bytes: u64) -> Self {
        let reserve = Self {
            path: catalog.with_extension("reserve"),
            bytes,
            held: AtomicBool::new(false),
        };
        reserve.restore();
        reserve
    }

    /// Allocates the file if it is not held (and the disk has room); true when held.
    pub(super) fn restore(&self) -> bool {
        if self.bytes == 0 || self.held.load(Ordering::Relaxed) {
            return self.bytes > 0;
        }
        let made = std::fs::File::create(&self.path).and_then(|file| {
            let len = self.bytes;
            rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len)?;
            file.sync_all()
        });
        match made {
            Ok(()) => {
                self.held.store(true, Ordering::Relaxed);
                true
            }
            Err(e) => {
                let _ = std::fs::remove_file(&self.path); // no half-made reserve
                tracing::debug!(error = %e, "disk reserve not made yet (no room)");
                false
            }
        }
    }

    pub(super) fn is_held(&self) -> bool {
        self.bytes == 0 || self.held.load(Ordering::Relaxed)
    }

    /// Frees the reserve's space; true when there was one to free.
    pub(super) fn release(&self) -> bool {
        if !self.held.swap(false, Ordering::Relaxed) {
            return false;
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => {
                tracing::warn!(
                    bytes = self.bytes,
                    "the disk is full: released the catalog's reserve so commits (deletes) go on"
                );
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot release the disk reserve");
                false
            }
        }
    }
}
