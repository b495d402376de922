//! Replacing an item's file (`PUT /api/v1/media/{id}/file`): the new file is staged like
//! an upload (validation, limits, stripping, backpressure); its record keeps the item's
//! id, folder and metadata; one commit swaps the files, queues the old original,
//! variants and crops for deletion and gives the new file its job. Until that commit the
//! old files serve; a crash before it leaves the new file unclaimed (swept at start).

use super::{Ingest, IngestError, Staged};
use crate::model::{FolderPath, MediaRecord, now_us};

impl Staged {
    /// `old` with this file in place of its own: the file's fields are those of a new
    /// item made of it; id, metadata and creation time stay `old`'s.
    pub fn replacing(&self, old: &MediaRecord) -> MediaRecord {
        let old = old.clone();
        MediaRecord {
            id: old.id,
            alt: old.alt,
            title: old.title,
            description: old.description,
            folder: old.folder,
            focal_x: old.focal_x,
            focal_y: old.focal_y,
            created_us: old.created_us,
            updated_us: Some(now_us()),
            ..self.record(&FolderPath::root(), None)
        }
    }
}

impl Ingest {
    /// Puts `staged` in place of `old`'s file; the old files are deleted once the new
    /// record is committed. On failure the staged file is discarded.
    pub async fn replace(
        &self,
        old: &MediaRecord,
        mut staged: Staged,
    ) -> Result<MediaRecord, IngestError> {
        let new = staged.replacing(old);
        let cached = self.catalog.cached_crops_of(&old.id)?;
        let record = match self.catalog.replace_file(new).await {
            Ok(record) => record,
            Err(e) => {
                // The reply can be lost after the commit (actor restart): look before
                // letting the guard remove the file.
                match self.catalog.get(&old.id) {
                    Ok(Some(now)) if now.storage_key == staged.storage_key => now,
                    _ => return Err(e.into()),
                }
            }
        };
        staged.recorded();
        drop(staged); // the backlog slot: the committed job counts in the catalog now
        self.storage.drain_deletes(old.storage_keys());
        self.storage.drain_deletes(cached);
        if record.is_processing() {
            self.processing.enqueue(vec![record.id.clone()]);
        }
        Ok(record)
    }
}
