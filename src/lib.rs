//! Darkroom: a single-binary media server implementing the CMS Media API.
//!
//! ```text
//! client ──HTTP──▶ http/      hyper 1, one-screen router, auth, CORS, multipart, files
//!                    │
//!                    ▼
//!                  ingest/    the upload story: admit → stage → store → record → job,
//!                    │        shared by POST /media and the presigned confirm;
//!                    │        library: the edit story (PATCH, DELETE)
//!                    ▼  typed handles
//!                  actors/    ractor, under one supervisor that restarts children
//!                    ├─ CatalogActor    single writer over redb, group commit
//!                    ├─ StorageActor    local disk or S3, presigned URLs, durable deletes
//!                    └─ ProcessingPool  image jobs from redb → rayon threads, bounded,
//!                                       with the admission gate (backpressure)
//!                    ▼
//!                  catalog/   redb tables, indexes, reads, listing, writes, read cache
//!                  storage/   the key format, the upload spool, backends (one closed enum)
//!                  media/     sniff, probe, svg, video, strip, names (pure functions);
//!                             image/: decode (libjpeg-turbo, shrink-on-load) → sRGB →
//!                             cascaded resize → WebP → thumbhash + dominant colour,
//!                             and crop presets around the focal point
//!   model/       the vocabulary every layer speaks: items, types, folders, keys, queries,
//!                ids, crop presets
//!   maintenance  start-up recovery, periodic sweeps and the health probe, through the handles
//!   health       what readiness and upload admission know about disk, catalog and storage
//! ```
//!
//! Beside the crate: `loadtest/` (the load-test harness and the bare hyper anchor, a
//! workspace member) and `examples/` (the pipeline throughput floor, the 1M-item seeder).

pub mod actors;
pub mod app;
pub mod catalog;
pub mod config;
pub mod delivery;
pub mod error;
pub mod events;
pub mod health;
pub mod http;
pub mod ingest;
pub mod library;
pub mod maintenance;
pub mod media;
pub mod metrics;
pub mod model;
pub mod storage;
