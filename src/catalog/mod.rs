//! The catalog: media records, folders, API keys and the durable delete queue in one
//! redb file. Plain synchronous code; the `CatalogActor` is the single writer over it
//! and read paths call it directly on the blocking pool (redb is MVCC).

mod cache;
pub mod index;
pub mod keys;
pub mod model;
mod store;
pub mod tables;

use std::sync::Arc;

pub use store::{Catalog, JobOutcome, Outcome, Write};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the folder is not empty: move or delete its media and subfolders first")]
    FolderNotEmpty,
    #[error("the root folder / cannot be deleted")]
    RootFolder,
    #[error("the catalog database is already in use by another process (stop the server first)")]
    Locked,
    #[error("catalog storage error: {0}")]
    Db(Arc<redb::Error>),
    #[error("catalog record is unreadable: {0}")]
    Corrupt(String),
    #[error("the catalog is restarting, try again")]
    Unavailable,
    #[error("this presigned upload has expired; request a new one")]
    PresignExpired,
    #[error("this upload was already confirmed")]
    AlreadyConfirmed,
}

impl<E: Into<redb::Error>> From<E> for CatalogError {
    fn from(e: E) -> Self {
        match e.into() {
            redb::Error::DatabaseAlreadyOpen => CatalogError::Locked,
            other => CatalogError::Db(Arc::new(other)),
        }
    }
}
