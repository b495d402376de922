//! The edit story: a metadata PATCH, a visibility change and a DELETE, each one catalog
//! write and what follows from it (files the write queued for deletion removed at once, a
//! job the change needs handed to the pool). Handlers parse and answer; this is where an
//! edit happens, the same whatever catalog is behind the handle (and where events of an
//! edit will start).

use crate::actors::Handles;
use crate::actors::catalog::CatalogHandle;
use crate::actors::processing::ProcessingHandle;
use crate::actors::storage::StorageHandle;
use crate::catalog::CatalogError;
use crate::model::{FolderPath, MediaPatch, MediaRecord, Visibility};
use crate::storage::StorageError;
use crate::storage::key::moves;

#[derive(Clone)]
pub struct Library {
    catalog: CatalogHandle,
    storage: StorageHandle,
    processing: ProcessingHandle,
    /// Crop presets are configured: a moved focal point re-makes them.
    recrop: bool,
    /// Visibility moves running at once (`MOVES_AT_ONCE`).
    moves: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Visibility moves this node runs at once: the others wait their turn.
const MOVES_AT_ONCE: usize = 2;

/// Why an edit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file the item's record names is not in storage (the item cannot move).
    #[error("the stored file {0} of this item is missing")]
    Missing(String),
}

impl Library {
    pub fn new(handles: &Handles, recrop: bool) -> Self {
        Self {
            catalog: handles.catalog.clone(),
            storage: handles.storage.clone(),
            processing: handles.processing.clone(),
            recrop,
            moves: std::sync::Arc::new(tokio::sync::Semaphore::new(MOVES_AT_ONCE)),
        }
    }

    /// Applies `patch` to item `id`: its record after the change. A new visibility moves
    /// the files first (see `set_visibility`), then the other fields are written. A moved
    /// focal point drops the item's crops (presets and on demand) in the same write, and
    /// their files go now; the job that makes the new presets goes to the pool.
    pub async fn update(
        &self,
        id: String,
        mut patch: MediaPatch,
        within: Option<&FolderPath>,
    ) -> Result<MediaRecord, EditError> {
        let moved = match patch.visibility.take() {
            Some(visibility) => Some(self.set_visibility(id.clone(), visibility, within).await?),
            None => None,
        };
        if let Some(record) = moved.filter(|_| patch.is_empty()) {
            return Ok(record);
        }
        let this = self.confined(within);
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

    /// Moves item `id`'s files (original, variants, preset crops) to the place of
    /// `visibility` under new keys, then commits the record that names them; the old
    /// files go through the delete queue (their URLs stop working once the commit is
    /// made). Its on-demand crops are dropped (made again on request). A crash before the
    /// commit leaves copies no record names (the orphan sweep removes them); after it,
    /// the old files are on the durable queue. Either way one whole copy is named.
    pub async fn set_visibility(
        &self,
        id: String,
        visibility: Visibility,
        within: Option<&FolderPath>,
    ) -> Result<MediaRecord, EditError> {
        let this = self.confined(within);
        let reached = |r: &MediaRecord| within.is_none_or(|w| w.holds(&r.folder));
        let current = this.catalog.get(&id).await?.filter(reached);
        to_the_end(async move {
            let current = current.ok_or(CatalogError::NotFound("media item"))?;
            if current.visibility == visibility {
                return Ok(current);
            }
            if current.is_processing() {
                return Err(CatalogError::StillProcessing.into());
            }
            let pairs = moves(&current, visibility);
            let new_original = pairs[0].1.clone(); // the original comes first
            // The copies are nobody's until the commit: kept from the sweep meanwhile.
            let _held: Vec<_> = pairs
                .iter()
                .map(|(_, n)| this.storage.hold(n.clone()))
                .collect();
            // A few moves at a time (on S3 each file passes through a temp file here).
            let _turn = this
                .moves
                .acquire()
                .await
                .map_err(|_| CatalogError::Unavailable)?;
            let mut copied = Vec::with_capacity(pairs.len());
            for (from, to) in &pairs {
                let done = this.storage.copy(from.clone(), to.clone()).await;
                if matches!(done, Ok(true)) {
                    copied.push(to.clone());
                    continue;
                }
                this.discard_unclaimed(copied).await;
                if let Err(e) = done {
                    return Err(e.into());
                }
                // Gone meanwhile (its item changed), or missing from storage (damaged).
                return match this.catalog.get(&id).await? {
                    Some(now) if now.storage_keys().contains(from) => {
                        Err(EditError::Missing(from.clone()))
                    }
                    _ => Err(CatalogError::ItemChanged.into()),
                };
            }
            match this.catalog.move_files(id.clone(), visibility, pairs).await {
                Ok(changed) => {
                    this.storage.drain_deletes(changed.queued);
                    Ok(changed.record)
                }
                Err(e) => {
                    // The reply can be lost after the commit (an actor restart): look
                    // before removing the copies (the periodic drain removes the old).
                    let now = this.catalog.get(&id).await;
                    if let Ok(Some(now)) = &now
                        && now.storage_key == new_original
                    {
                        return Ok(now.clone());
                    }
                    this.discard_unclaimed(copied).await;
                    match now {
                        // Another change to the same visibility got there first.
                        Ok(Some(now)) if now.visibility == visibility => Ok(now),
                        _ => Err(e.into()),
                    }
                }
            }
        })
        .await
    }

    /// This library, its item writes confined to `within` (see `CatalogHandle::confined`).
    fn confined(&self, within: Option<&FolderPath>) -> Self {
        Self {
            catalog: self.catalog.confined(within),
            ..self.clone()
        }
    }

    /// Removes the copies of a move that did not commit: once every write that might name
    /// them has settled, those no record claims (as an upload's unclaimed file; should the
    /// catalog not answer, the orphan sweep decides later).
    async fn discard_unclaimed(&self, keys: Vec<String>) {
        if self.catalog.barrier().await.is_err() {
            return;
        }
        let mut unclaimed = Vec::with_capacity(keys.len());
        for key in keys {
            if matches!(self.catalog.owner_of_file(&key).await, Ok(None)) {
                unclaimed.push(key);
            }
        }
        self.storage.discard(unclaimed);
    }

    /// Deletes item `id`: every file the catalog knows for it is queued in the same write
    /// (crash-safe) and removed now.
    pub async fn delete(&self, id: String, within: Option<&FolderPath>) -> Result<(), EditError> {
        let this = self.confined(within);
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
    edit: impl Future<Output = Result<T, EditError>> + Send + 'static,
) -> Result<T, EditError> {
    tokio::spawn(edit)
        .await
        .unwrap_or(Err(CatalogError::Unavailable.into()))
}
