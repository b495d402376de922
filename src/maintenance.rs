//! Upkeep outside requests: recovery at start (finish queued deletes, sweep temp files and
//! orphans) and the periodic tasks (expired presigns on S3, the metrics recorder's upkeep).
//! Everything goes through the actor handles, like a request would.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;

use crate::actors::catalog::CatalogHandle;
use crate::actors::storage::StorageHandle;
use crate::catalog::CatalogError;
use crate::model::now_us;
use crate::storage::{KnownFiles, StorageError};

/// How often expired, unconfirmed presigned uploads are removed (S3 only).
const PRESIGN_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often the metrics recorder drains its histograms.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot sweep leftover files: {0}")]
    Storage(#[from] StorageError),
}

/// Finishes deletes queued before a stop, then removes temp files and files that no
/// record names (left by a crash between storing a file and committing its record).
pub async fn recover(
    catalog: &CatalogHandle,
    storage: &StorageHandle,
) -> Result<(), RecoveryError> {
    let pending = catalog.pending_deletes().await?;
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "finishing queued file deletes");
        storage.finish_deletes(pending).await?;
    }
    // Deletes that failed again stay queued, and so must stay on disk for the next try.
    let known = KnownFiles::new(catalog.all_files().await?, catalog.pending_deletes().await?);
    let report = storage.sweep(known).await?;
    tracing::info!(
        temp_files = report.temp_files,
        orphans = report.orphans,
        "start-up sweep removed leftover files"
    );
    Ok(())
}

/// The periodic tasks; they stop when this is dropped.
pub struct Periodic(Vec<JoinHandle<()>>);

impl Drop for Periodic {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Starts the periodic tasks: the metrics upkeep always, the presign sweep when the
/// backend has presigned uploads.
pub fn start(
    catalog: &CatalogHandle,
    storage: &StorageHandle,
    metrics: &PrometheusHandle,
    presigns: bool,
) -> Periodic {
    let mut tasks = vec![every(METRICS_UPKEEP_EVERY, {
        let metrics = metrics.clone();
        move || {
            metrics.run_upkeep();
            async {}
        }
    })];
    if presigns {
        let (catalog, storage) = (catalog.clone(), storage.clone());
        tasks.push(every(PRESIGN_SWEEP_EVERY, move || {
            let (catalog, storage) = (catalog.clone(), storage.clone());
            async move { sweep_presigns(&catalog, &storage).await }
        }));
    }
    Periodic(tasks)
}

/// Runs `tick` now and then every `period`.
fn every<F, Fut>(period: Duration, mut tick: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        loop {
            interval.tick().await;
            tick().await;
        }
    })
}

/// Deletes the objects of presigned uploads that expired unconfirmed (if the client
/// uploaded anything), then forgets those presigns.
async fn sweep_presigns(catalog: &CatalogHandle, storage: &StorageHandle) {
    let expired = match catalog.expired_presigns(now_us()).await {
        Ok(keys) => keys,
        Err(e) => return tracing::warn!(error = %e, "cannot list expired presigns"),
    };
    if expired.is_empty() {
        return;
    }
    let gone = match storage.discard_now(expired).await {
        Ok(gone) if !gone.is_empty() => gone,
        Ok(_) => return,
        Err(e) => return tracing::warn!(error = %e, "cannot delete expired uploads"),
    };
    let count = gone.len();
    match catalog.forget_presigns(gone).await {
        Ok(()) => tracing::info!(count, "removed expired, unconfirmed presigned uploads"),
        Err(e) => tracing::warn!(error = %e, "cannot forget swept presigns; retried later"),
    }
}
