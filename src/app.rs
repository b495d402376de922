//! Assembling and running the server: open the catalog, recover from the last run
//! (finish queued deletes, sweep temp files and orphans), start the supervised actors,
//! serve until the shutdown future resolves, then drain.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ractor::Actor;
use tokio::net::TcpListener;

use crate::actors::Slot;
use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::{Admission, ProcessingArgs, ProcessingHandle, Waiters, build_pool};
use crate::actors::storage::{StorageArgs, StorageHandle, delete_files};
use crate::actors::supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};
use crate::catalog::model::{Scope, key_stem};
use crate::catalog::{Catalog, CatalogError, keys};
use crate::config::{Config, StorageConfig};
use crate::http::handlers::views::FileUrls;
use crate::http::{Ctx, server};
use crate::media::pipeline::Settings;
use crate::storage::{LocalStorage, S3Storage, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot prepare the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot set up storage: {0}")]
    Storage(#[from] StorageError),
    #[error("cannot start the actors: {0}")]
    Actors(String),
}

/// Runs Darkroom on `listener` until `shutdown` resolves. Tests bind `127.0.0.1:0`;
/// production binds `config.listen`. Both stop the same way.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let catalog = Arc::new(open_catalog(&config).await?);
    let (storage, urls) = match &config.storage {
        StorageConfig::Local => (
            Storage::Local(LocalStorage::new(&config.data_dir)?),
            FileUrls::local(),
        ),
        StorageConfig::S3(s3) => (
            Storage::S3(S3Storage::new(s3, &config.data_dir)?),
            FileUrls::public_base(&s3.public_base_url),
        ),
    };
    let storage = Arc::new(storage);
    if catalog.list_keys()?.is_empty() {
        let key = keys::create(&catalog, Scope::Write, "bootstrap")?;
        tracing::warn!("no API key existed: created a write key (shown once on stdout)");
        println!("Darkroom API key (write scope, shown once): {key}");
    }

    let catalog_slot = Slot::empty();
    let storage_slot = Slot::empty();
    let processing_slot = Slot::empty();
    let catalog_handle = CatalogHandle::new(catalog_slot.clone(), catalog.clone());
    let storage_handle = StorageHandle::new(storage_slot.clone());
    let waiters = Waiters::default();
    let p = &config.processing;
    let threads = p.thread_count();
    let processing = ProcessingArgs {
        catalog: catalog_handle.clone(),
        storage: storage_handle.clone(),
        pool: Arc::new(build_pool(threads)?),
        settings: Settings {
            quality: p.webp_quality,
            method: p.webp_method,
            max_pixels: config.limits.max_image_pixels,
        },
        max_in_flight: threads * 2,
        max_attempts: p.max_attempts,
        waiters: waiters.clone(),
    };
    let admission = Admission::new(catalog_handle.clone(), p.max_backlog);
    let args = SupervisorArgs {
        catalog: catalog.clone(),
        catalog_slot,
        storage: StorageArgs {
            storage: storage.clone(),
            catalog: catalog_handle.clone(),
        },
        storage_slot,
        processing,
        processing_slot: processing_slot.clone(),
    };
    let (supervisor, supervisor_done) = Actor::spawn(None, Supervisor, args)
        .await
        .map_err(|e| AppError::Actors(e.to_string()))?;
    recover(&catalog, &storage, &catalog_handle).await?;

    let metrics = crate::metrics::install();
    let upkeep = tokio::spawn({
        let metrics = metrics.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                metrics.run_upkeep();
            }
        }
    });
    let metrics_listener = match config.server.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let metrics_server = metrics_listener.map(|l| {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(metrics_addr = %addr, "serving /metrics on its own listener");
        }
        tokio::spawn(server::serve_metrics(l, metrics.clone()))
    });
    let presign_sweeper = matches!(config.storage, StorageConfig::S3(_)).then(|| {
        let (catalog, storage) = (catalog_handle.clone(), storage.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRESIGN_SWEEP_EVERY);
            loop {
                tick.tick().await;
                sweep_presigns(&catalog, &storage).await;
            }
        })
    });
    tracing::info!(addr = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving");
    let ctx = Arc::new(Ctx {
        catalog: catalog_handle,
        storage: storage_handle,
        processing: ProcessingHandle::new(processing_slot, waiters, admission),
        urls,
        config: Arc::new(config),
        metrics,
        draining: AtomicBool::new(false),
    });
    server::serve(listener, ctx, shutdown).await;
    upkeep.abort();
    if let Some(task) = presign_sweeper {
        task.abort();
    }
    if let Some(task) = metrics_server {
        task.abort();
    }

    let _ = supervisor
        .call(SupervisorMsg::Shutdown, Some(Duration::from_secs(15)))
        .await;
    let _ = supervisor_done.await;
    tracing::info!("stopped");
    Ok(())
}

/// How often expired, unconfirmed presigned uploads are removed (S3 only).
const PRESIGN_SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Deletes the objects of presigned uploads that expired unconfirmed (if the client
/// uploaded anything), then forgets those presigns.
async fn sweep_presigns(catalog: &CatalogHandle, storage: &Storage) {
    let expired = match catalog
        .expired_presigns(crate::catalog::model::now_us())
        .await
    {
        Ok(keys) => keys,
        Err(e) => return tracing::warn!(error = %e, "cannot list expired presigns"),
    };
    let mut gone = Vec::with_capacity(expired.len());
    for key in expired {
        match storage.delete(&key).await {
            Ok(()) => gone.push(key),
            Err(e) => tracing::warn!(%key, error = %e, "cannot delete an expired upload"),
        }
    }
    if gone.is_empty() {
        return;
    }
    let count = gone.len();
    match catalog.forget_presigns(gone).await {
        Ok(()) => tracing::info!(count, "removed expired, unconfirmed presigned uploads"),
        Err(e) => tracing::warn!(error = %e, "cannot forget swept presigns; retried later"),
    }
}

async fn open_catalog(config: &Config) -> Result<Catalog, AppError> {
    let path = config.catalog_path();
    Ok(tokio::task::spawn_blocking(move || Catalog::open(&path))
        .await
        .map_err(|e| AppError::Actors(e.to_string()))??)
}

/// Finishes deletes queued before a stop, then removes temp files and files that no
/// record names (left by a crash between storing a file and committing its record).
async fn recover(
    catalog: &Arc<Catalog>,
    storage: &Arc<Storage>,
    handle: &CatalogHandle,
) -> Result<(), AppError> {
    let pending = catalog.pending_deletes()?;
    if !pending.is_empty() {
        tracing::info!(count = pending.len(), "finishing queued file deletes");
        delete_files(storage.clone(), handle.clone(), pending).await;
    }
    // Files a record names, files still queued for deletion, and files sharing an item's
    // stem: the variants a running job (the pool is already up) may be writing now.
    let known = catalog.all_files()?;
    let stems: BTreeSet<String> = known.iter().map(|k| key_stem(k).to_owned()).collect();
    let queued: BTreeSet<String> = catalog.pending_deletes()?.into_iter().collect();
    let storage = storage.clone();
    let report = tokio::task::spawn_blocking(move || {
        storage.sweep(&|key| {
            known.contains(key) || queued.contains(key) || stems.contains(key_stem(key))
        })
    })
    .await
    .map_err(|e| AppError::Actors(e.to_string()))?
    .map_err(|e| AppError::Io(std::io::Error::other(e)))?;
    tracing::info!(
        temp_files = report.temp_files,
        orphans = report.orphans,
        "start-up sweep removed leftover files"
    );
    Ok(())
}
