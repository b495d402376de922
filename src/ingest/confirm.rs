//! The presigned path: an object a client uploaded straight to the bucket goes through
//! the same checks as an upload before it becomes an item. Whatever is refused is
//! deleted from the bucket.
//!
//! Only what the checks need is read: images that are stripped (JPEG, PNG, WebP) are
//! downloaded whole, streamed to a temp file and rewritten there; everything else (videos,
//! documents, GIF, SVG) is read in place with ranged GETs, its head for the type and what
//! its probe asks for (an MP4's `moov`, wherever its header points).

use std::io::Read;

use super::{Ingest, IngestError, Staged};
use crate::media::{self, Inspection, MediaError, sniff};
use crate::model::{FolderPath, MediaRecord, MediaType, PresignRecord, now_us};
use crate::storage::StorageError;

/// What the client says when it confirms, already validated.
pub struct Confirmation {
    /// The server-made key (the bucket prefix removed).
    pub key: String,
    pub presign: PresignRecord,
    pub filename: String,
    pub folder: FolderPath,
    pub alt: Option<String>,
}

/// Why the uploaded bytes are refused (the object is then deleted).
enum Refusal {
    Type,
    Media(MediaError),
}

/// The checks' verdict: what inspection found and the stored size, or a refusal.
type Checked = Result<(Inspection, u64), Refusal>;

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
        let checked = if media_type.is_strippable() {
            self.check_downloaded(&key, media_type).await?
        } else {
            self.check_in_place(&key, object.size, media_type).await?
        };
        let (inspection, size) = match checked {
            Ok(found) => found,
            Err(refusal) => {
                self.storage.discard(vec![key]);
                return Err(match refusal {
                    Refusal::Type => IngestError::TypeMismatch {
                        expected: media_type.mime(),
                    },
                    Refusal::Media(error) => IngestError::Refused {
                        filename: c.filename,
                        error,
                    },
                });
            }
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

    /// Downloads the object into a temp file, checks and strips it there, and stores the
    /// cleaned copy in its place.
    async fn check_downloaded(
        &self,
        key: &str,
        media_type: MediaType,
    ) -> Result<Checked, IngestError> {
        let mut sink = self
            .storage
            .fetch(key.to_owned())
            .await?
            .ok_or(IngestError::UploadMissing)?;
        if sniff::sniff(sink.head()) != Some(media_type) {
            return Ok(Err(Refusal::Type));
        }
        let inspection = match self.inspect_and_strip(&mut sink, media_type).await? {
            Ok(i) => i,
            Err(error) => return Ok(Err(Refusal::Media(error))),
        };
        let size = self
            .storage
            .commit(sink, key.to_owned(), media_type.mime())
            .await?;
        Ok(Ok((inspection, size)))
    }

    /// Reads the object's head and what its probe needs in ranges, on a blocking thread.
    async fn check_in_place(
        &self,
        key: &str,
        len: u64,
        media_type: MediaType,
    ) -> Result<Checked, IngestError> {
        let mut object = self.storage.ranged(key.to_owned(), len).await?;
        let max_pixels = self.settings.max_image_pixels;
        let checked = tokio::task::spawn_blocking(move || -> std::io::Result<Checked> {
            let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
            (&mut object)
                .take(sniff::SNIFF_LEN as u64)
                .read_to_end(&mut head)?;
            if sniff::sniff(&head) != Some(media_type) {
                return Ok(Err(Refusal::Type));
            }
            if !media_type.needs_inspection() {
                return Ok(Ok((Inspection::default(), len)));
            }
            std::io::Seek::rewind(&mut object)?;
            match media::inspect_reader(&mut object, media_type, max_pixels) {
                Ok(inspection) => Ok(Ok((inspection, len))),
                Err(MediaError::Probe(media::probe::ProbeError::Io(e))) => Err(e),
                Err(error) => Ok(Err(Refusal::Media(error))),
            }
        })
        .await
        .map_err(|e| StorageError::from(std::io::Error::other(e)))?;
        Ok(checked.map_err(StorageError::from)?)
    }
}
