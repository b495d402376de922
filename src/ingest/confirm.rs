//! The presigned path: a client uploaded straight to the bucket, into a staging object
//! that its signed URL can write for as long as it is valid. What becomes the item is a
//! copy only this server can write, and the copy is what gets checked, so no PUT made
//! later, or during the checks, can change what is served:
//!
//! - images that are stripped (JPEG, PNG, WebP) are downloaded whole from staging (one
//!   version of the object), checked and cleaned in a temp file and stored at the key;
//! - everything else (videos, documents, GIF, SVG) is copied inside the store from staging
//!   to the key, and the copy is checked in place with ranged GETs: its head for the type
//!   and what its probe asks for (an MP4's `moov`, wherever its header points).
//!
//! Whatever is refused is deleted, the staging object in any case once the item exists.

use std::io::Read;

use super::stage::{Unclaimed, checked};
use super::{Ingest, IngestError, Staged};
use crate::media::{self, Inspection, MediaError, sniff};
use crate::model::{FolderPath, MediaRecord, MediaType, PresignRecord, now_us};

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
    Size,
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
        let (key, media_type, expected) = (c.key, c.presign.media_type, c.presign.size);
        self.admit_bytes()?;
        let upload = self
            .storage
            .head_upload(key.clone())
            .await?
            .ok_or(IngestError::UploadMissing)?;
        if upload.size != expected {
            self.refuse_upload(&key);
            return Err(IngestError::SizeMismatch { expected });
        }
        let slot = self.admit(media_type)?;
        // From here the key's object is this request's until its record commits.
        let guard = Unclaimed::new(self, key.clone());
        let checked = if media_type.is_cleaned() {
            self.check_downloaded(&key, media_type, expected).await?
        } else {
            self.check_copied(&key, media_type, expected).await?
        };
        let (inspection, size) = match checked {
            Ok(found) => found,
            Err(refusal) => {
                self.refuse_upload(&key); // the copy, if any, goes with the guard
                return Err(match refusal {
                    Refusal::Size => IngestError::SizeMismatch { expected },
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
        let mut staged = Staged {
            filename: c.filename,
            media_type,
            size,
            inspection,
            storage_key: key.clone(),
            created_us: now_us(),
            slot,
            guard,
        };
        let item = staged.record(&c.folder, c.alt.as_deref());
        self.catalog.confirm_presign(item.clone()).await?;
        staged.recorded();
        drop(staged); // the backlog slot: the committed job counts in the catalog now
        // What the signed URL uploaded is no longer needed; should it be PUT again, the
        // presign's expiry sweep deletes it.
        self.refuse_upload(&key);
        if item.is_processing() {
            self.processing.enqueue(vec![item.id.clone()]);
        }
        Ok(item)
    }

    /// Deletes what the client uploaded for `key`, in the background.
    fn refuse_upload(&self, key: &str) {
        let (storage, key) = (self.storage.clone(), key.to_owned());
        tokio::spawn(async move {
            if let Err(e) = storage.delete_uploads(vec![key]).await {
                tracing::warn!(error = %e, "upload not deleted; the presign sweep retries");
            }
        });
    }

    /// Downloads the upload into a temp file (one version of it, at most one byte more
    /// than presigned), checks and strips it there, and stores that at the key.
    async fn check_downloaded(
        &self,
        key: &str,
        media_type: MediaType,
        expected: u64,
    ) -> Result<Checked, IngestError> {
        let mut sink = self
            .storage
            .fetch_upload(key.to_owned(), expected)
            .await?
            .ok_or(IngestError::UploadMissing)?;
        if sink.len() != expected {
            return Ok(Err(Refusal::Size)); // PUT again since the HEAD
        }
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

    /// Copies the upload to the key inside the store, then checks the copy: its size, and
    /// its head and what its probe needs, read in ranges on a blocking thread.
    async fn check_copied(
        &self,
        key: &str,
        media_type: MediaType,
        expected: u64,
    ) -> Result<Checked, IngestError> {
        if !self.storage.promote_upload(key.to_owned()).await? {
            return Err(IngestError::UploadMissing);
        }
        let copied = self.storage.head(key.to_owned()).await?;
        let Some(len) = copied.map(|c| c.size).filter(|size| *size == expected) else {
            return Ok(Err(Refusal::Size)); // PUT again since the HEAD
        };
        let mut object = self.storage.ranged(key.to_owned(), len).await?;
        let limits = self.settings.limits;
        let checking = tokio::task::spawn_blocking(move || -> std::io::Result<Checked> {
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
            let name = object.name().to_owned();
            let inspected = checked(std::path::Path::new(&name), media_type, || {
                media::inspect_reader(&mut object, media_type, &limits)
            });
            match inspected {
                Ok(inspection) => Ok(Ok((inspection, len))),
                Err(MediaError::Probe(media::probe::ProbeError::Io(e))) => Err(e),
                Err(error) => Ok(Err(Refusal::Media(error))),
            }
        });
        let checked = self.storage.unless_down(async {
            let joined = checking.await.map_err(std::io::Error::other)?;
            Ok(joined?)
        });
        Ok(checked.await?)
    }
}
