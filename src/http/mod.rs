//! The HTTP front end: hyper 1 (HTTP/1.1 and h2c), a one-screen router, auth, CORS,
//! multipart intake and file serving. Handlers validate input into types, then call
//! `ingest` or an actor handle; they never touch redb, the disk or image code themselves.

pub mod auth;
pub mod body;
mod conn;
pub mod files;
mod framing;
pub mod handlers;
mod linger;
pub mod multipart;
pub mod openapi;
pub mod query;
pub mod response;
pub mod router;
pub mod server;
pub mod slots;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::config::Config;
use crate::health::Health;
use crate::ingest::Ingest;

/// What every handler can reach.
pub struct Ctx {
    pub catalog: CatalogHandle,
    pub storage: StorageHandle,
    pub processing: ProcessingHandle,
    /// The upload workflow (`POST /api/v1/media` and confirm).
    pub ingest: Ingest,
    pub library: crate::library::Library,
    /// Crops on demand, behind signed URLs.
    pub crops: crate::delivery::Cropper,
    /// Where clients fetch stored files: every `url` of an answer (signed for private items).
    pub links: crate::delivery::Links,
    /// Webhooks (`/api/v1/webhooks`).
    pub webhooks: crate::events::Webhooks,
    pub config: Arc<Config>,
    pub metrics: PrometheusHandle,
    /// Set when shutdown begins: `/readyz` turns 503.
    pub draining: AtomicBool,
    /// The last health probe (`/readyz`).
    pub health: Arc<Health>,
}
