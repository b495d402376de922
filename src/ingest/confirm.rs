//! The presigned path: an object a client uploaded straight to the bucket goes through
//! the same checks as an upload before it becomes an item. Whatever is refused is
//! deleted from the bucket.

use super::{Ingest, IngestError, Staged};
use crate::media::sniff;
use crate::model::{FolderPath, MediaRecord, PresignRecord, now_us};

/// What the client says when it confirms, already validated.
pub struct Confirmation {
    /// The server-made key (the bucket prefix removed).
    pub key: String,
    pub presign: PresignRecord,
    pub filename: String,
    pub folder: FolderPath,
    pub alt: Option<String>,
}

impl Ingest {
    /// Checks the uploaded object (present, exactly the presigned size, the declared
    /// type, safe and within limits), strips it like an upload, and records its item and
    /// job in the same write that consumes the presign (so it is confirmed once).
    pub async fn confirm(&self, c: Confirmation) -> Result<MediaRecord, IngestError> {
        let (key, media_type) = (c.key, c.presign.media_type);
        self.admit_bytes()?;
        let object = self
            .storage
            .head(key.clone())
            .await?
            .ok_or(IngestError::UploadMissing)?;
        if object.size != c.presign.size {
            self.storage.discard(vec![key]);
            return Err(IngestError::SizeMismatch {
                expected: c.presign.size,
            });
        }
        let slot = self.admit(media_type)?;
        let mut sink = self
            .storage
            .fetch(key.clone())
            .await?
            .ok_or(IngestError::UploadMissing)?;
        if sniff::sniff(sink.head()) != Some(media_type) {
            self.storage.discard(vec![key]);
            let expected = media_type.mime();
            return Err(IngestError::TypeMismatch { expected });
        }
        let inspection = match self.inspect_and_strip(&mut sink, media_type).await? {
            Ok(i) => i,
            Err(error) => {
                self.storage.discard(vec![key]);
                let filename = c.filename;
                return Err(IngestError::Refused { filename, error });
            }
        };
        // Metadata removal may have changed the file: store the cleaned copy in its place.
        let size = if media_type.is_strippable() {
            let commit = self.storage.commit(sink, key.clone(), media_type.mime());
            commit.await?
        } else {
            object.size
        };
        let staged = Staged {
            filename: c.filename,
            media_type,
            size,
            inspection,
            storage_key: key,
            created_us: now_us(),
            slot,
            guard: None, // the object stays the presign's until the confirm commits
        };
        let item = staged.record(&c.folder, c.alt.as_deref());
        self.catalog.confirm_presign(item.clone()).await?;
        if item.is_processing() {
            self.processing.enqueue(vec![item.id.clone()]);
        }
        Ok(item)
    }
}
