//! The HTTP front end: hyper 1 (HTTP/1.1 and h2c), a one-screen router, auth, CORS,
//! multipart parsing and file serving. Handlers validate input into types, then call
//! actor handles; they never touch redb, the disk or image code themselves.

pub mod auth;
pub mod files;
pub mod handlers;
pub mod multipart;
pub mod query;
pub mod response;
pub mod router;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::config::Config;

/// What every handler can reach.
pub struct Ctx {
    pub catalog: CatalogHandle,
    pub storage: StorageHandle,
    pub processing: ProcessingHandle,
    /// Where clients fetch stored files (item and variant `url`s).
    pub urls: handlers::views::FileUrls,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// Set when shutdown begins: `/readyz` turns 503.
    pub draining: AtomicBool,
}
