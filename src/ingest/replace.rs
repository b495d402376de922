//! Replacing an item's file (`PUT /api/v1/media/{id}/file`): the new file is staged like
//! an upload (validation, limits, stripping, backpressure); its record keeps the item's
//! id, folder and metadata; one commit swaps the files, queues the old original,
//! variants and crops for deletion and gives the new file its job. Until that commit the
//! old files serve; a crash before it leaves the new file unclaimed (swept at start).

use super::{Ingest, IngestError, Staged};
use crate::model::{FolderPath, MediaRecord};

impl Ingest {
    /// Puts `staged` in place of item `old`'s file, of the same kind (image, document or
    /// video); the old files are deleted once the new record is committed. The item's
    /// metadata is read at the commit (not from `old`, read before the upload streamed),
    /// so a PATCH meanwhile is kept. On failure the staged file is discarded.
    pub async fn replace(
        &self,
        old: &MediaRecord,
        mut staged: Staged,
        within: Option<&FolderPath>,
    ) -> Result<MediaRecord, IngestError> {
        let (new, held) = (staged.media_type, old.media_type);
        if new.kind() != held.kind() {
            return Err(IngestError::KindMismatch {
                new: new.mime(),
                held: held.mime(),
            }); // the staged file goes with its guard
        }
        let id = old.id.as_str();
        let file = self.processing.with_poster_plan(MediaRecord {
            id: id.to_owned(),
            ..staged.record(&FolderPath::root(), None)
        });
        let catalog = self.catalog.confined(within);
        let (record, queued) = match catalog.replace_file(file).await {
            Ok(changed) => (changed.record, changed.queued),
            Err(e) => {
                // The reply can be lost after the commit (actor restart): look before
                // letting the guard remove the file (the periodic drain then removes the
                // old files).
                match self.catalog.get(id).await {
                    Ok(Some(now)) if now.storage_key == staged.storage_key => (now, Vec::new()),
                    _ => return Err(e.into()),
                }
            }
        };
        staged.recorded();
        drop(staged); // the backlog slot: the committed job counts in the catalog now
        self.storage.drain_deletes(queued);
        if record.is_processing() {
            self.processing.enqueue(vec![record.id.clone()]);
        }
        Ok(record)
    }
}
