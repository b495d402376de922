//! The edit story: a metadata PATCH and a DELETE, each one catalog write and what follows
//! from it (files the write queued for deletion removed at once, a job the change needs
//! handed to the pool). Handlers parse and answer; this is where an edit happens, the same
//! whatever catalog is behind the handle (and where events of an edit will start).

use crate::actors::Handles;
use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::catalog::CatalogError;
use crate::model::{MediaPatch, MediaRecord};

#[derive(Clone)]
pub struct Library {
    catalog: CatalogHandle,
    storage: StorageHandle,
    processing: ProcessingHandle,
    /// Crop presets are configured: a moved focal point re-makes them.
    recrop: bool,
}

impl Library {
    pub fn new(handles: &Handles, recrop: bool) -> Self {
        Self {
            catalog: handles.catalog.clone(),
            storage: handles.storage.clone(),
            processing: handles.processing.clone(),
            recrop,
        }
    }

    /// Applies `patch` to item `id`: its record after the change. A moved focal point
    /// drops the item's crops (presets and on demand) in the same write, and their files
    /// go now; the job that makes the new presets goes to the pool.
    pub async fn update(&self, id: String, patch: MediaPatch) -> Result<MediaRecord, CatalogError> {
        let this = self.clone();
        to_the_end(async move {
            let changed = this.catalog.update_media(id, patch, this.recrop).await?;
            this.storage.drain_deletes(changed.queued);
            let record = changed.record;
            if record.is_processing() {
                this.processing.enqueue(vec![record.id.clone()]);
            }
            Ok(record)
        })
        .await
    }

    /// Deletes item `id`: every file the catalog knows for it is queued in the same write
    /// (crash-safe) and removed now.
    pub async fn delete(&self, id: String) -> Result<(), CatalogError> {
        let this = self.clone();
        to_the_end(async move {
            let queued = this.catalog.delete_media(id).await?;
            this.storage.drain_deletes(queued);
            Ok(())
        })
        .await
    }
}

/// Runs an edit on a task of its own: a client that goes away after the write was sent
/// does not cut off what follows its commit (the files removed, the job handed on).
async fn to_the_end<T: Send + 'static>(
    edit: impl Future<Output = Result<T, CatalogError>> + Send + 'static,
) -> Result<T, CatalogError> {
    tokio::spawn(edit)
        .await
        .unwrap_or(Err(CatalogError::Unavailable))
}
