//! Assembling and running the server: open the catalog and the storage backend, start the
//! supervised actors, recover from the last run, start the periodic upkeep, serve until
//! the shutdown future resolves, then drain.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::actors::{self, StartError};
use crate::catalog::pg::PgCatalog;
use crate::catalog::{Backend, Catalog, CatalogError};
use crate::config::Config;
use crate::delivery::{Cropper, Links, Signer};
use crate::events::{Webhooks, sender};
use crate::health::Health;
use crate::http::{Ctx, server};
use crate::ingest::Ingest;
use crate::library::Library;
use crate::maintenance::{self, RecoveryError, Upkeep};
use crate::model::Scope;
use crate::storage::{Storage, StorageError};

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
    #[error("cannot start the webhook sender: {0}")]
    Webhooks(#[from] reqwest::Error),
}

/// Runs Darkroom on `listener` until `shutdown` resolves. Tests bind `127.0.0.1:0`;
/// production binds `config.listen`. Both stop the same way.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let catalog = open_catalog(&config, true).await?;
    let storage = Storage::new(&config.storage, &config.data_dir)?
        .with_upload_buffer(config.limits.upload_buffer_bytes);
    let storage = Arc::new(storage);
    // A node's share of a PostgreSQL cluster: its job leases renewed, the backlog counted.
    let cluster = match &catalog {
        Backend::Postgres(pg) => Some(AbortOnDrop(crate::catalog::pg::upkeep(pg.clone()))),
        Backend::Redb(_) => None,
    };

    let health = Arc::new(Health::new(
        &config.data_dir,
        config.limits.min_free_bytes,
        Duration::from_secs(3 * config.server.readiness_timeout_secs),
    ));
    let handles = actors::start(catalog, storage, &config, health.storage_up()).await?;
    // On PostgreSQL nodes may start together: one of them makes the key.
    if handles.catalog.keys().await?.is_empty()
        && handles
            .catalog
            .take_turn("bootstrap-key", Duration::from_secs(60))
            .await
        && handles.catalog.keys().await?.is_empty()
    {
        let (key, _) = handles
            .catalog
            .create_key(Scope::Admin, "bootstrap", None)
            .await?;
        tracing::warn!("no API key existed: created an admin key (shown once on stdout)");
        println!("Darkroom API key (admin scope, shown once): {key}");
    }
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
    // One key signs every URL: crops, and the links to private items' files.
    let key = config.delivery.signing_key.as_ref().map(|k| k.expose());
    let signer = Arc::new(Signer::load(key, &config.data_dir)?);
    // Deliveries name items' files as the API does (signed links for private ones).
    let links = Links::new(&config, signer.clone(), handles.storage.clone());
    let sender = AbortOnDrop(sender::start(
        handles.catalog.clone(),
        links,
        &config.webhooks,
    )?);
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
            signer.clone(),
            &config,
        ),
        links: Links::new(&config, signer, handles.storage.clone()),
        webhooks: Webhooks::new(handles.catalog.clone(), &config.webhooks),
        config: Arc::new(config),
        metrics,
        draining: AtomicBool::new(false),
        health,
    });
    server::serve(listener, ctx, shutdown).await;
    drop(sender);
    drop(periodic);
    if let Some(task) = metrics_server {
        task.abort();
    }
    let catalog = handles.catalog.clone();
    handles.stop().await;
    catalog.let_go().await; // other nodes take this one's jobs and turns at once
    drop(cluster);
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

/// Opens the catalog (PostgreSQL when `[catalog] url` is set, else redb in `data_dir`);
/// with `backfill` (the server), queues the crops of images made before the current
/// presets (the processing pool makes them with the other unfinished jobs).
pub async fn open_catalog(config: &Config, backfill: bool) -> Result<Backend, AppError> {
    let presets = config.delivery.presets.clone();
    if let Some(options) = config.catalog.postgres() {
        let lease = Duration::from_secs(config.catalog.job_lease_secs.max(3));
        let catalog = PgCatalog::open(options, lease)
            .await
            .map_err(CatalogError::Pg)?;
        tracing::info!(at = catalog.at(), "the catalog is on PostgreSQL");
        if matches!(config.storage, crate::config::StorageConfig::Local) {
            tracing::warn!(
                "files are on this node's disk: with a PostgreSQL catalog run one node only, \
                 or put the files in S3 (storage.type = \"s3\") for more"
            );
        }
        if backfill {
            catalog.backfill_presets(&presets).await?;
        }
        return Ok(Backend::Postgres(Arc::new(catalog)));
    }
    let (path, options) = (config.catalog_path(), config.catalog.clone());
    tokio::task::spawn_blocking(move || {
        let catalog = Catalog::open_with(&path, options)?;
        if backfill {
            catalog.backfill_presets(&presets)?;
        }
        Ok::<_, CatalogError>(Backend::Redb(Arc::new(catalog)))
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(AppError::from)
}

/// A task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
