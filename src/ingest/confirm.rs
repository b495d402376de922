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
//! Confirms of one presign run one at a time (a lease in the catalog, so across nodes
//! too): two attempts never write the key at once, and a failed one removes what it wrote
//! before a retry may start.

use std::io::Read;

use super::stage::{Lease, Unclaimed, checked};
use super::{Ingest, IngestError, Staged};
use crate::actors::processing::Reservation;
use crate::catalog::CatalogError;
use crate::media::{self, Inspection, MediaError, sniff};
use crate::model::{FolderPath, MediaRecord, MediaType, PresignRecord, now_us, random_token};

/// How long one confirm may hold its presign at most: it gives it back when it ends, so
/// this only bounds how long a confirm cut off by a crash keeps a retry waiting.
const CONFIRM_LEASE: std::time::Duration = std::time::Duration::from_secs(600);

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
        // On a task of its own: a confirm runs to its end, its lease given back in order,
        // whatever becomes of the request (a client that goes away mid-confirm).
        let ingest = self.clone();
        tokio::spawn(async move { ingest.confirm_to_end(c).await })
            .await
            .map_err(|e| IngestError::Storage(std::io::Error::other(e).into()))?
    }

    async fn confirm_to_end(&self, c: Confirmation) -> Result<MediaRecord, IngestError> {
        let (key, media_type) = (c.key, c.presign.media_type);
        self.admit_bytes()?;
        // One confirm of a presign at a time: this one's until it commits, or until what
        // it wrote at the key is removed again (`Unclaimed`), whatever ends it.
        let token = random_token(16);
        let until = std::time::Instant::now() + CONFIRM_LEASE;
        self.catalog
            .begin_confirm(key.clone(), token.clone(), CONFIRM_LEASE)
            .await?;
        let guard = Unclaimed::for_confirm(
            self,
            key.clone(),
            Lease {
                token: token.clone(),
                until,
            },
        );
        let checked = self
            .check_upload(&key, &c.presign, &c.filename, &guard)
            .await;
        let (inspection, size, slot) = match checked {
            Ok(found) => found,
            Err(e) => {
                guard.release().await; // a retry may go as soon as this one has answered
                return Err(e);
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
        let item = self
            .processing
            .with_poster_plan(staged.record(&c.folder, c.alt.as_deref()));
        if let Err(e) = self.catalog.confirm_presign(item.clone(), token).await {
            staged.guard.release().await;
            return Err(e.into());
        }
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

    /// The checks of the upload for `key`, its copy at the key made along the way (while
    /// `guard`'s lease leaves room for it): the inspection, the stored size, and the
    /// backlog slot of an image.
    async fn check_upload(
        &self,
        key: &str,
        presign: &PresignRecord,
        filename: &str,
        guard: &Unclaimed,
    ) -> Result<(Inspection, u64, Option<Reservation>), IngestError> {
        let (media_type, expected) = (presign.media_type, presign.size);
        let upload = self
            .storage
            .head_upload(key.to_owned())
            .await?
            .ok_or(IngestError::UploadMissing)?;
        if upload.size != expected {
            self.delete_upload(key).await;
            return Err(IngestError::SizeMismatch { expected });
        }
        let slot = self.admit(media_type)?;
        let checked = if media_type.is_cleaned() {
            self.check_downloaded(key, media_type, expected, guard)
                .await?
        } else {
            self.check_copied(key, media_type, expected, guard).await?
        };
        match checked {
            Ok((inspection, size)) => Ok((inspection, size, slot)),
            Err(refusal) => {
                // Gone before the answer, so a PUT the client makes next is not deleted
                // (the copy at the key, if any, goes with the guard).
                self.delete_upload(key).await;
                Err(match refusal {
                    Refusal::Size => IngestError::SizeMismatch { expected },
                    Refusal::Type => IngestError::TypeMismatch {
                        expected: media_type.mime(),
                    },
                    Refusal::Media(error) => IngestError::Refused {
                        filename: filename.to_owned(),
                        error,
                    },
                })
            }
        }
    }

    /// Deletes what the client uploaded for `key`, in the background.
    fn refuse_upload(&self, key: &str) {
        let ingest = self.clone();
        let key = key.to_owned();
        tokio::spawn(async move { ingest.delete_upload(&key).await });
    }

    /// Deletes what the client uploaded for `key` (a failure is logged: the presign's
    /// expiry sweep deletes it then).
    async fn delete_upload(&self, key: &str) {
        if let Err(e) = self.storage.delete_uploads(vec![key.to_owned()]).await {
            tracing::warn!(error = %e, "upload not deleted; the presign sweep retries");
        }
    }

    /// Downloads the upload into a temp file (one version of it, at most one byte more
    /// than presigned), checks and strips it there, and stores that at the key.
    async fn check_downloaded(
        &self,
        key: &str,
        media_type: MediaType,
        expected: u64,
        guard: &Unclaimed,
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
        if !guard.may_write() {
            return Err(CatalogError::LeaseLost.into());
        }
        let size = self
            .storage
            .commit_to_end(sink, key.to_owned(), media_type.mime())
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
        guard: &Unclaimed,
    ) -> Result<Checked, IngestError> {
        // The turn first: a refused copy is removed while the lease leaves room for it.
        let turn = self.ranged_checks.clone().acquire_owned().await;
        if !guard.may_write() {
            return Err(CatalogError::LeaseLost.into());
        }
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
            let _turn = turn;
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
