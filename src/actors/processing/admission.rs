//! Backpressure for image uploads: the durable backlog (unfinished jobs in the catalog)
//! plus the images of uploads still in progress must stay under
//! `processing.max_backlog`; past it, an image upload is refused (503 with Retry-After)
//! before its file is stored. Documents and videos never need a slot.
//!
//! And the pool's memory budget (`Budget`): a job or an on-demand crop holds what its
//! decode is estimated to take (`media::image::decode_cost`) while it runs, so the pool
//! never holds more than `processing.memory_budget_bytes` of decode memory at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::actors::catalog::CatalogHandle;
use crate::metrics as m;

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

    /// Whether a new video or PDF gets a poster job: while the backlog is under half its
    /// limit. Their uploads are never refused, so past it they are ready without a poster
    /// rather than fill the backlog that image uploads are admitted by.
    pub fn room_for_posters(&self) -> bool {
        self.catalog.job_count() < self.limit / 2
    }

    /// A slot for one more image, or `None` when the backlog is full.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        let before = self.in_progress.fetch_add(1, Ordering::Relaxed);
        let reservation = Reservation(self.clone());
        (self.catalog.job_count() + before < self.limit).then_some(reservation)
    }
}

/// The pool's memory budget, in KiB permits.
#[derive(Clone)]
pub struct Budget {
    permits: Arc<tokio::sync::Semaphore>,
    total_kib: u32,
}

/// Memory held from the budget until dropped.
pub struct Held {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    budget: Budget,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.budget.report();
    }
}

impl Budget {
    pub fn new(bytes: u64) -> Self {
        let total_kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Waits until `bytes` of the budget are free and holds them (a cost larger than the
    /// whole budget holds all of it: it runs alone).
    pub async fn hold(&self, bytes: u64) -> Held {
        let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
        let kib = kib.clamp(1, self.total_kib);
        // The semaphore is never closed, so the permit always comes.
        let permit = self.permits.clone().acquire_many_owned(kib).await.ok();
        self.report();
        Held {
            permit,
            budget: self.clone(),
        }
    }

    fn report(&self) {
        metrics::gauge!(m::PROCESSING_MEMORY_HELD).set(self.held_bytes() as f64);
    }

    /// Bytes held now.
    pub fn held_bytes(&self) -> u64 {
        let free = self.permits.available_permits() as u64;
        (u64::from(self.total_kib) - free.min(u64::from(self.total_kib))) * 1024
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
        let admission = Admission::new(
            CatalogHandle::new(
                Slot::empty(),
                crate::catalog::Backend::Redb(catalog.clone()),
            ),
            3,
        );
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

    #[tokio::test]
    async fn the_budget_holds_estimates_and_a_cost_past_it_runs_alone() {
        let budget = Budget::new(10 << 20);
        let a = budget.hold(6 << 20).await;
        assert_eq!(budget.held_bytes(), 6 << 20);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.hold(6 << 20).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "6 + 6 MB do not fit 10");
        drop(a);
        let b = waiting.await.expect("held once the first was done");
        drop(b);
        let alone = budget.hold(1 << 40).await;
        assert_eq!(budget.held_bytes(), 10 << 20, "held the whole budget");
        drop(alone);
        assert_eq!(budget.held_bytes(), 0);
    }
}
