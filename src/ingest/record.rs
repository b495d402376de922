//! Steps 4-5 for an upload: record every staged file of the request in one catalog
//! write (images with their jobs), hand the jobs to the pool, and with `?wait=true` hold
//! the answer until they end.

use super::{Ingest, IngestError, Staged};
use crate::metrics as m;
use crate::model::{FolderPath, MediaRecord};

impl Ingest {
    /// Records the staged files in `folder` with `alt` and queues their jobs; with `wait`,
    /// answers once this request's images are processed (at most the wait timeout) with
    /// their final state. On failure (or should this future be dropped before the commit)
    /// the staged files are discarded.
    pub async fn record(
        &self,
        mut staged: Vec<Staged>,
        folder: &FolderPath,
        alt: Option<&str>,
        wait: bool,
    ) -> Result<Vec<MediaRecord>, IngestError> {
        let records: Vec<MediaRecord> = staged
            .iter()
            .map(|s| self.processing.with_poster_plan(s.record(folder, alt)))
            .collect();
        let jobs: Vec<String> = records
            .iter()
            .filter(|r| r.is_processing())
            .map(|r| r.id.clone())
            .collect();
        // Registered before the commit, so the end of a job cannot be missed.
        let done = (wait && !jobs.is_empty()).then(|| self.processing.watch(jobs.clone()));
        if let Err(e) = self.catalog.insert_media(records.clone()).await {
            // The insert is one atomic write; its reply can be lost (actor restart) after
            // the commit. Only files whose records are really absent may go.
            let committed = matches!(self.catalog.get(&records[0].id).await, Ok(Some(_)));
            if !committed {
                return Err(e.into()); // the staged files go with their guards
            }
        }
        staged.iter_mut().for_each(Staged::recorded);
        drop(staged); // the backlog slots: the committed jobs count in the catalog now
        if !jobs.is_empty() {
            self.processing.enqueue(jobs.clone());
        }
        for r in &records {
            let mime = r.media_type.mime();
            metrics::counter!(m::UPLOAD_FILES, "type" => mime, "outcome" => "accepted")
                .increment(1);
            metrics::counter!(m::UPLOAD_BYTES, "type" => mime).increment(r.size);
        }
        let Some(done) = done else {
            return Ok(records);
        };
        done.until_done(self.settings.wait_timeout).await;
        Ok(self.reread(records).await)
    }

    /// The records' current state (after processing); one deleted meanwhile keeps the
    /// state it was created with.
    async fn reread(&self, records: Vec<MediaRecord>) -> Vec<MediaRecord> {
        let mut now = Vec::with_capacity(records.len());
        for r in records {
            now.push(match self.catalog.get(&r.id).await {
                Ok(Some(current)) => current,
                _ => r,
            });
        }
        now
    }
}
