//! Upkeep outside requests: recovery at start (finish queued deletes, sweep temp files and
//! orphans) and the periodic tasks (the health probe, the orphan sweep, the delete-queue
//! drain, expired presigns on S3, the metrics recorder's upkeep). Everything goes through
//! the actor handles, like a request would.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::task::JoinHandle;

use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::catalog::CatalogError;
use crate::config::{Config, Maintenance, StorageConfig};
use crate::health::{Health, Probe};
use crate::metrics as m;
use crate::model::now_us;
use crate::storage::{StorageError, Sweep};

/// How often expired, unconfirmed presigned uploads are removed (S3 only).
const PRESIGN_SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How often the metrics recorder drains its histograms.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// How often the health probe checks the catalog, storage and the disk.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often the durable delete queue is retried.
const DRAIN_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot sweep leftover files: {0}")]
    Storage(#[from] StorageError),
}

/// Finishes deletes queued before a stop, then removes temp files and files that the
/// catalog does not claim (left by a crash between storing a file and committing its
/// record). Nothing is in progress yet, so nothing is too young to go.
pub async fn recover(
    catalog: &CatalogHandle,
    storage: &StorageHandle,
) -> Result<(), RecoveryError> {
    let pending = catalog.pending_deletes().await?;
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "finishing queued file deletes");
        storage.finish_deletes(pending).await?;
    }
    // Deletes that failed again stay queued, and so stay on disk for the next try.
    // Stored files with no grace only when this node is the only one (on PostgreSQL other
    // nodes' uploads in progress are not this node's to judge: the periodic sweep, with
    // its grace period, takes them).
    let sweep = Sweep {
        claims: catalog.claims(),
        cutoff: SystemTime::now(),
        stored: catalog.is_single_node(),
    };
    // A store that does not answer must not keep the server from starting: the periodic
    // sweep will do this work later.
    match storage.sweep(sweep).await {
        Ok(report) => tracing::info!(
            temp_files = report.temp_files,
            orphans = report.orphans,
            "start-up sweep removed leftover files"
        ),
        Err(e) => tracing::warn!(error = %e, "start-up sweep incomplete; the periodic one retries"),
    }
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

/// What the periodic tasks need.
pub struct Upkeep<'a> {
    pub catalog: &'a CatalogHandle,
    pub storage: &'a StorageHandle,
    pub processing: &'a ProcessingHandle,
    pub metrics: &'a PrometheusHandle,
    pub health: &'a Arc<Health>,
    pub config: &'a Config,
}

/// Starts the periodic tasks: the health probe, the metrics upkeep, the orphan sweep and
/// the delete drain always, the presign sweep when the backend has presigned uploads.
pub fn start(upkeep: Upkeep<'_>) -> Periodic {
    let bound = Duration::from_secs(upkeep.config.server.readiness_timeout_secs);
    let probe = health_probe(&upkeep, bound);
    let Upkeep {
        catalog,
        storage,
        metrics,
        health,
        config,
        ..
    } = upkeep;
    let metrics = metrics.clone();
    let mut tasks = vec![
        probe,
        every(METRICS_UPKEEP_EVERY, move || {
            metrics.run_upkeep();
            async {}
        }),
        orphan_sweep(catalog, storage, &config.maintenance),
        delete_drain(catalog, storage, health),
    ];
    if matches!(config.storage, StorageConfig::S3(_)) {
        let (catalog, storage) = (catalog.clone(), storage.clone());
        tasks.push(every(PRESIGN_SWEEP_EVERY, move || {
            let (catalog, storage) = (catalog.clone(), storage.clone());
            async move { sweep_presigns(&catalog, &storage).await }
        }));
    }
    Periodic(tasks)
}

fn health_probe(upkeep: &Upkeep<'_>, bound: Duration) -> JoinHandle<()> {
    let handles = (
        upkeep.catalog.clone(),
        upkeep.storage.clone(),
        upkeep.processing.clone(),
        upkeep.health.clone(),
    );
    every(PROBE_EVERY, move || {
        let (catalog, storage, processing, health) = handles.clone();
        async move { probe_health(&catalog, &storage, &processing, &health, bound).await }
    })
}

fn orphan_sweep(
    catalog: &CatalogHandle,
    storage: &StorageHandle,
    config: &Maintenance,
) -> JoinHandle<()> {
    let grace = Duration::from_secs(config.orphan_grace_secs);
    let period = Duration::from_secs(config.orphan_sweep_secs);
    let (catalog, storage) = (catalog.clone(), storage.clone());
    after(period, move || {
        let (catalog, storage) = (catalog.clone(), storage.clone());
        let cutoff = SystemTime::now() - grace;
        async move {
            // This node's temp files always; the stored files on one node at a time.
            let stored = catalog.take_turn("orphan-sweep", 3 * period).await;
            let claims = catalog.claims();
            sweep_orphans(
                &storage,
                Sweep {
                    claims,
                    cutoff,
                    stored,
                },
            )
            .await
        }
    })
}

/// Retries the durable delete queue: files of deleted items whose removal failed, and
/// objects of uploads that failed on our side but may have landed late. Skipped while
/// storage is known to be down.
fn delete_drain(
    catalog: &CatalogHandle,
    storage: &StorageHandle,
    health: &Arc<Health>,
) -> JoinHandle<()> {
    let handles = (catalog.clone(), storage.clone(), health.clone());
    after(DRAIN_EVERY, move || {
        let (catalog, storage, health) = handles.clone();
        async move {
            if !health.read().storage || !catalog.take_turn("delete-drain", 3 * DRAIN_EVERY).await {
                return;
            }
            match catalog.pending_deletes().await {
                Ok(keys) if !keys.is_empty() => {
                    if let Err(e) = storage.finish_deletes(keys).await {
                        tracing::warn!(error = %e, "queued deletes not drained; retried later");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the delete queue"),
            }
        }
    })
}

/// Runs `tick` now and then every `period`.
fn every<F, Fut>(period: Duration, tick: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    repeat(tokio::time::interval(period), tick)
}

/// Runs `tick` every `period`, the first time one period from now (start-up recovery
/// has just done the same work).
fn after<F, Fut>(period: Duration, tick: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let start = tokio::time::Instant::now() + period;
    repeat(tokio::time::interval_at(start, period), tick)
}

fn repeat<F, Fut>(mut interval: tokio::time::Interval, mut tick: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // A sweep that overran its period is not followed by a burst of catch-up runs.
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::spawn(async move {
        loop {
            interval.tick().await;
            tick().await;
        }
    })
}

/// One health probe: each check under `bound`, so a frozen dependency reads as down
/// within it instead of holding the probe.
async fn probe_health(
    catalog: &CatalogHandle,
    storage: &StorageHandle,
    processing: &ProcessingHandle,
    health: &Health,
    bound: Duration,
) {
    // Side by side: a catalog repair (minutes, on a big file) must not hide a store that
    // froze meanwhile.
    let ((), checked) = tokio::join!(catalog.heal(), tokio::time::timeout(bound, storage.check()));
    let storage_ok = match checked {
        Ok(Ok(())) => true,
        // The storage actor is restarting: no verdict on the store; keep the last one.
        Ok(Err(StorageError::Unavailable)) => health.read().storage,
        Ok(Err(_)) | Err(_) => false,
    };
    let free_bytes = health.free_bytes();
    metrics::gauge!(m::DATA_DIR_FREE_BYTES).set(free_bytes as f64);
    health.record(Probe {
        catalog: catalog.check().await.is_ok(),
        storage: storage_ok,
        processing: processing.is_running(),
        free_bytes,
    });
    if health.read().disk {
        catalog.restore_reserve().await;
    }
}

/// One periodic orphan sweep; what it removed is logged and counted.
async fn sweep_orphans(storage: &StorageHandle, sweep: Sweep) {
    match storage.sweep(sweep).await {
        Ok(report) => {
            metrics::counter!(m::ORPHANS_SWEPT, "kind" => "temp")
                .increment(report.temp_files as u64);
            metrics::counter!(m::ORPHANS_SWEPT, "kind" => "stored")
                .increment(report.orphans as u64);
            if report.temp_files + report.orphans > 0 {
                tracing::info!(
                    temp_files = report.temp_files,
                    orphans = report.orphans,
                    "orphan sweep removed files no record names"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "orphan sweep failed; retried at the next one"),
    }
}

/// Deletes what the URLs of expired presigns uploaded (their staging objects: after a
/// confirm too, since the URL could still PUT), then forgets those presigns. A presign of
/// the older layout, whose PUT landed at the key itself, had its object deleted only if
/// it was never confirmed (then no record names it).
async fn sweep_presigns(catalog: &CatalogHandle, storage: &StorageHandle) {
    if !catalog
        .take_turn("presign-sweep", 3 * PRESIGN_SWEEP_EVERY)
        .await
    {
        return; // another node sweeps them
    }
    let expired = match catalog.expired_presigns(now_us()).await {
        Ok(expired) => expired,
        Err(e) => return tracing::warn!(error = %e, "cannot list expired presigns"),
    };
    if expired.is_empty() {
        return;
    }
    let (staged, legacy): (Vec<_>, Vec<_>) = expired.into_iter().partition(|(_, p)| p.staged);
    let mut gone = match storage
        .delete_uploads(staged.into_iter().map(|(k, _)| k).collect())
        .await
    {
        Ok(gone) => gone,
        Err(e) => return tracing::warn!(error = %e, "cannot delete expired uploads"),
    };
    let unconfirmed = legacy
        .into_iter()
        .filter(|(_, p)| !p.confirmed)
        .map(|(k, _)| k);
    match storage.discard_now(unconfirmed.collect()).await {
        Ok(removed) => gone.extend(removed),
        Err(e) => tracing::warn!(error = %e, "cannot delete expired uploads"),
    }
    if gone.is_empty() {
        return;
    }
    let count = gone.len();
    match catalog.forget_presigns(gone).await {
        Ok(()) => tracing::info!(count, "removed what expired presigned uploads left"),
        Err(e) => tracing::warn!(error = %e, "cannot forget swept presigns; retried later"),
    }
}
