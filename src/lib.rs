//! Darkroom: a single-binary media server implementing the CMS Media API.
//!
//! ```text
//! client ──HTTP──▶ http/      hyper 1, one-screen router, auth, CORS, multipart, files
//!                    │  typed handles
//!                    ▼
//!                  actors/    ractor, under one supervisor that restarts children
//!                    ├─ CatalogActor    single writer over redb, group commit
//!                    ├─ StorageActor    local disk or S3, presigned URLs, durable deletes
//!                    └─ ProcessingPool  image jobs from redb → rayon threads, bounded
//!                    ▼
//!                  catalog/   redb tables, indexes, queries, read cache (plain sync code)
//!                  storage/   backends behind one closed enum
//!                  media/     sniff, probe, svg, video, strip, names, (pure functions)
//!                             pipeline: decode (shrink-on-load) → orient → sRGB →
//!                             cascaded resize → WebP → thumbhash + dominant colour
//! ```
//!
//! Beside the crate: `loadtest/` (the load-test harness and the bare hyper anchor, a
//! workspace member) and `examples/` (the pipeline throughput floor, the 1M-item seeder).

pub mod actors;
pub mod app;
pub mod catalog;
pub mod config;
pub mod error;
pub mod http;
pub mod media;
pub mod metrics;
pub mod storage;
