//! Backpressure for image uploads: the durable backlog (unfinished jobs in the catalog)
//! plus the images of uploads still in progress must stay under
//! `processing.max_backlog`; past it, an image upload is refused (503 with Retry-After)
//! before its file is stored. Documents and videos never need a slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actors::catalog::CatalogHandle;

/// The backpressure gate for image uploads: unfinished jobs in the catalog plus images
/// of uploads still in progress must stay under `max_backlog`.
pub struct Admission {
    catalog: CatalogHandle,
    in_progress: AtomicU64,
    limit: u64,
}

/// One admitted image of an upload in progress; released when the request ends (by
/// then its job, if the upload succeeded, counts in the catalog instead).
pub struct Reservation(Arc<Admission>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub fn new(catalog: CatalogHandle, limit: u64) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            in_progress: AtomicU64::new(0),
            limit,
        })
    }

    /// A slot for one more image, or `None` when the backlog is full.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        let before = self.in_progress.fetch_add(1, Ordering::Relaxed);
        let reservation = Reservation(self.clone());
        (self.catalog.job_count() + before < self.limit).then_some(reservation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::Slot;
    use crate::catalog::{Catalog, Write};
    use crate::model::{MediaRecord, MediaType, Processing};

    #[test]
    fn the_backlog_counts_committed_jobs_and_uploads_in_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(Catalog::open(&dir.path().join("c.redb")).expect("open"));
        // Reads need no actor: the handle reads the catalog directly.
        let admission = Admission::new(CatalogHandle::new(Slot::empty(), catalog.clone()), 3);
        let first = admission.try_reserve().expect("room");
        let second = admission.try_reserve().expect("room");
        let image = MediaRecord {
            processing: Processing::initial(MediaType::Jpeg),
            ..MediaRecord::synthetic(1)
        };
        catalog
            .apply_single(Write::InsertMedia(vec![image]))
            .expect("insert");
        assert!(admission.try_reserve().is_none(), "1 job + 2 uploads = 3");
        drop(first); // that upload ended
        let third = admission.try_reserve().expect("room again");
        assert!(admission.try_reserve().is_none());
        drop((second, third));
        assert_eq!(
            admission.in_progress.load(Ordering::Relaxed),
            0,
            "refusals hold nothing"
        );
    }
}
