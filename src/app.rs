//! Assembling and running the server: open the catalog and the storage backend, start the
//! supervised actors, recover from the last run, start the periodic upkeep, serve until
//! the shutdown future resolves, then drain.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::actors::{self, StartError};
use crate::catalog::{Catalog, CatalogError, keys};
use crate::config::Config;
use crate::delivery::Cropper;
use crate::health::Health;
use crate::http::{Ctx, server};
use crate::ingest::Ingest;
use crate::library::Library;
use crate::maintenance::{self, RecoveryError, Upkeep};
use crate::model::Scope;
use crate::storage::{FileUrls, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot prepare the data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("cannot set up storage: {0}")]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Actors(#[from] StartError),
    #[error("cannot recover from the last run: {0}")]
    Recovery(#[from] RecoveryError),
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
    let storage = Storage::new(&config.storage, &config.data_dir)?
        .with_upload_buffer(config.limits.upload_buffer_bytes);
    let storage = Arc::new(storage);
    if catalog.list_keys()?.is_empty() {
        let key = keys::create(&catalog, Scope::Admin, "bootstrap")?;
        tracing::warn!("no API key existed: created an admin key (shown once on stdout)");
        println!("Darkroom API key (admin scope, shown once): {key}");
    }

    let health = Arc::new(Health::new(
        &config.data_dir,
        config.limits.min_free_bytes,
        Duration::from_secs(3 * config.server.readiness_timeout_secs),
    ));
    let handles = actors::start(catalog, storage, &config, health.storage_up()).await?;
    maintenance::recover(&handles.catalog, &handles.storage).await?;
    let metrics = crate::metrics::install();
    let periodic = maintenance::start(Upkeep {
        catalog: &handles.catalog,
        storage: &handles.storage,
        processing: &handles.processing,
        metrics: &metrics,
        health: &health,
        config: &config,
    });
    let metrics_server = match config.server.metrics_listen {
        Some(addr) => Some(metrics_listener(addr, &metrics, &config.server).await?),
        None => None,
    };
    tracing::info!(addr = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving");
    let ctx = Arc::new(Ctx {
        catalog: handles.catalog.clone(),
        storage: handles.storage.clone(),
        processing: handles.processing.clone(),
        ingest: Ingest::new(&handles, &config, health.clone()),
        library: Library::new(&handles, !config.delivery.presets.is_empty()),
        crops: Cropper::new(
            handles.catalog.clone(),
            handles.storage.clone(),
            handles.processing.clone(),
            &config,
        )?,
        urls: FileUrls::new(&config.storage),
        config: Arc::new(config),
        metrics,
        draining: AtomicBool::new(false),
        health,
    });
    server::serve(listener, ctx, shutdown).await;
    drop(periodic);
    if let Some(task) = metrics_server {
        task.abort();
    }
    handles.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `/metrics` alone on `addr` (`server.metrics_listen`).
async fn metrics_listener(
    addr: std::net::SocketAddr,
    metrics: &metrics_exporter_prometheus::PrometheusHandle,
    limits: &crate::config::Server,
) -> Result<tokio::task::JoinHandle<()>, AppError> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(metrics_addr = %listener.local_addr()?, "serving /metrics on its own listener");
    let serving = server::serve_metrics(listener, metrics.clone(), limits.clone());
    Ok(tokio::spawn(serving))
}

/// Opens the catalog, and queues the crops of images made before the current presets
/// (the processing pool makes them with the other unfinished jobs).
async fn open_catalog(config: &Config) -> Result<Catalog, AppError> {
    let (path, options) = (config.catalog_path(), config.catalog);
    let presets = config.delivery.presets.clone();
    tokio::task::spawn_blocking(move || {
        let catalog = Catalog::open_with(&path, options)?;
        catalog.backfill_presets(&presets)?;
        Ok::<_, crate::catalog::CatalogError>(catalog)
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(AppError::from)
}
