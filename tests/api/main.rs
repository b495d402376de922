//! HTTP-level tests against the real server (one test binary, linked once).

#[macro_use]
mod common;

mod auth;
mod catalog_copy;
mod cluster;
mod confined;
mod containers;
mod contract;
mod crops;
mod cursors;
mod deadlines;
mod failures;
mod files;
mod folders;
mod hostile;
mod hostile_media;
mod items;
mod keys;
mod leftovers;
mod listing;
mod ondemand;
mod ops;
mod orientation;
mod previews;
mod private;
mod processing;
mod replace;
mod restart;
mod s3;
mod upload;
mod webhooks;
