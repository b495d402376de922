//! The job writes of a batch: a job's starts counted, its result recorded on its item
//! (unless the item is gone, or its focal point moved while the job ran), its attempt
//! given back after an outage.

use redb::ReadableTable;

use super::{JobOutcome, Outcome, Result, Tables};
use crate::model::{CropSize, Event, JobResult, MediaRecord, Processing, Status};
use crate::storage::key::crop_key;

/// How many superseded crop versions a finished job looks back over for crops that were
/// written and never recorded.
const SKIPPED_VERSIONS: u32 = 8;

impl Tables<'_> {
    /// Sets a job's count of starts (a new job, or one to run again).
    pub(super) fn add_job(&mut self, id: &str, attempts: u32) -> Result<()> {
        if self.jobs.insert(id, attempts)?.is_none() {
            self.jobs_delta += 1;
        }
        Ok(())
    }

    /// Puts ready images back to `processing` with a job (presets changed since).
    pub(super) fn recrop(&mut self, ids: &[String]) -> Result<Outcome> {
        for id in ids {
            let Some(mut r) = self.get(id)? else {
                continue;
            };
            if let Some(p) = r.processing.as_mut().filter(|p| p.status == Status::Ready) {
                p.status = Status::Processing;
                self.put_media(&r)?;
                self.add_job(id, 0)?;
            }
        }
        Ok(Outcome::Done)
    }

    pub(super) fn finish_job(
        &mut self,
        id: &str,
        result: &JobResult,
        source: &str,
    ) -> Result<Outcome> {
        let current = self.get(id)?;
        if let Some(outcome) = unrecordable(current.as_ref(), result, source) {
            return Ok(Outcome::Job(outcome)); // the job stays, for the new file or focus
        }
        let had_job = self.remove_job(id)?;
        let Some(old) = current else {
            return Ok(Outcome::Job(JobOutcome::ItemGone));
        };
        if !had_job || !old.is_processing() {
            return Ok(Outcome::Job(JobOutcome::AlreadyDone));
        }
        let new = with_result(&old, result);
        // Sort keys and counts do not depend on processing: only the record and its files.
        self.put_media(&new)?;
        for key in new.storage_keys() {
            self.claim_file(&key, id)?;
        }
        let dropped = dropped_crops(&old, &new);
        for key in &dropped {
            self.release_file(key)?;
        }
        self.queue_deletes(&dropped)?;
        // Crops of focal points moved past while their jobs ran, which no commit recorded
        // (a kill between a job's writes and its commit): their keys are known, so they
        // are queued whether or not their files were ever written.
        let mut skipped = Vec::new();
        for key in skipped_crop_keys(&new) {
            if !dropped.contains(&key) && self.files.get(key.as_str())?.is_none() {
                skipped.push(key);
            }
        }
        self.queue_deletes(&skipped)?;
        self.events.push(Event::finished(&new));
        Ok(Outcome::Job(JobOutcome::Recorded {
            queued: [dropped, skipped].concat(),
        }))
    }

    pub(super) fn start_job(&mut self, id: &str, max_attempts: u32) -> Result<Outcome> {
        let Some(attempts) = self.jobs.get(id)?.map(|v| v.value()) else {
            return Ok(Outcome::JobSkipped);
        };
        if attempts >= max_attempts {
            let (failed, source) = out_of_attempts(attempts, self.get(id)?);
            self.finish_job(id, &failed, &source)?;
            return Ok(Outcome::JobSkipped);
        }
        self.add_job(id, attempts + 1)?;
        Ok(Outcome::JobStarted)
    }

    pub(super) fn release_job(&mut self, id: &str) -> Result<Outcome> {
        let attempts = self.jobs.get(id)?.map(|v| v.value());
        if let Some(n) = attempts.filter(|n| *n > 0) {
            self.jobs.insert(id, n - 1)?;
        }
        Ok(Outcome::Done)
    }

    /// Removes an item's job; true when there was one.
    pub(super) fn remove_job(&mut self, id: &str) -> Result<bool> {
        let had = self.jobs.remove(id)?.is_some();
        if had {
            self.jobs_delta -= 1;
        }
        Ok(had)
    }
}

/// Why a job's result may not be recorded on its item as it is now (`current`), if it
/// may not: the file was replaced while the job ran (`source` is the original it
/// processed), or the focal point moved. Either way the job stays, to run again.
pub(in crate::catalog) fn unrecordable(
    current: Option<&MediaRecord>,
    result: &JobResult,
    source: &str,
) -> Option<JobOutcome> {
    let current = current?;
    if current.storage_key != source {
        Some(JobOutcome::Superseded)
    } else if current.crop_version != result.crop_version() {
        Some(JobOutcome::Stale)
    } else {
        None
    }
}

/// Item `old` with a job's result recorded. A re-run for crops that failed (its original
/// unreadable, say) keeps the variants and placeholders it had, and the item stays
/// usable; the error says what failed.
pub(in crate::catalog) fn with_result(old: &MediaRecord, result: &JobResult) -> MediaRecord {
    let mut new = old.clone();
    new.processing = Some(match (result, &old.processing) {
        (JobResult::Failed { reason, .. }, Some(had)) if had.was_made() => Processing {
            status: Status::Ready,
            crops: Vec::new(),
            error: Some(format!("the crops could not be made again: {reason}")),
            ..had.clone()
        },
        (result, _) => result.clone().into_processing(),
    });
    new
}

/// The crops `old` had that `new` does not (presets no longer configured, a re-run after
/// a config change): they go.
pub(in crate::catalog) fn dropped_crops(old: &MediaRecord, new: &MediaRecord) -> Vec<String> {
    let kept = new.crop_keys();
    let mut dropped: Vec<String> = old
        .crop_keys()
        .into_iter()
        .filter(|k| !kept.contains(k))
        .collect();
    dropped.sort_unstable();
    dropped.dedup(); // presets of one size share a file
    dropped
}

/// The failed result recorded for a job started `attempts` times, each interrupted, and
/// the original it is for (`current`: its item as it is now, if any).
pub(in crate::catalog) fn out_of_attempts(
    attempts: u32,
    current: Option<MediaRecord>,
) -> (JobResult, String) {
    let reason = format!(
        "processing was interrupted {attempts} times (the server stopped or a dependency \
         failed each time); not retried"
    );
    let (source, crop_version) = current
        .map(|r| (r.storage_key, r.crop_version))
        .unwrap_or_default();
    let failed = JobResult::Failed {
        reason,
        crop_version,
    };
    (failed, source)
}

/// The preset crop keys, at the record's crop sizes, of the versions before its current
/// one (at most `SKIPPED_VERSIONS`): where a job superseded by a focal move wrote.
pub(in crate::catalog) fn skipped_crop_keys(record: &MediaRecord) -> Vec<String> {
    let Some(processing) = &record.processing else {
        return Vec::new();
    };
    let now = record.crop_version;
    let from = now.saturating_sub(SKIPPED_VERSIONS);
    let mut keys: Vec<String> = processing
        .crops
        .iter()
        .flat_map(|c| {
            let size = CropSize {
                width: c.width,
                height: c.height,
            };
            (from..now).map(move |v| crop_key(&record.storage_key, size, v))
        })
        .collect();
    // Versions 0 and 1 share a key, and so do presets of one size.
    keys.sort_unstable();
    keys.dedup();
    keys
}
