//! Crop presets added (or changed) after images were made: at start, when the configured
//! presets differ from the ones the catalog last saw (a fingerprint in `META`), every
//! image whose crops are not exactly the presets gets its job again, in batches of
//! `BATCH` per transaction. The processing pool then makes them like any unfinished job,
//! through the same backlog. A crash midway re-scans at the next start (the fingerprint is
//! written last); images already done are not queued twice.

use std::ops::Bound;

use super::tables::{MEDIA, META};
use super::{Catalog, Result, Write, decode};
use crate::model::{MediaRecord, Presets, Status};

const BATCH: usize = 1_000;
const FINGERPRINT: &str = "presets";

impl Catalog {
    /// Queues the job of every image whose crops are not `presets`, once per change of
    /// `presets`; returns how many.
    pub fn backfill_presets(&self, presets: &Presets) -> Result<usize> {
        let fingerprint = fingerprint(presets);
        let seen = self.read_txn()?.open_table(META)?.get(FINGERPRINT)?;
        if seen.map(|v| v.value()) == Some(fingerprint) {
            return Ok(0);
        }
        let (mut after, mut queued) = (None::<String>, 0);
        loop {
            let (ids, done) = self.lacking(presets, &mut after)?;
            queued += ids.len();
            if !ids.is_empty() {
                self.apply_single(Write::Recrop(ids))?;
            }
            if done {
                break;
            }
        }
        let txn = self.write_txn()?;
        txn.open_table(META)?.insert(FINGERPRINT, fingerprint)?;
        txn.commit()?;
        if queued > 0 {
            tracing::info!(
                images = queued,
                "crop presets changed: images queued for their crops"
            );
        }
        Ok(queued)
    }

    /// Up to `BATCH` records after `after`: the ids of those that need their crops made,
    /// and whether the scan is done.
    fn lacking(
        &self,
        presets: &Presets,
        after: &mut Option<String>,
    ) -> Result<(Vec<String>, bool)> {
        let txn = self.read_txn()?;
        let media = txn.open_table(MEDIA)?;
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let (mut ids, mut seen) = (Vec::new(), 0);
        for entry in media.range::<&str>((from, Bound::Unbounded))?.take(BATCH) {
            let (id, value) = entry?;
            let record: MediaRecord = decode(value.value())?;
            if needs_crops(&record, presets) {
                ids.push(record.id);
            }
            *after = Some(id.value().to_owned());
            seen += 1;
        }
        Ok((ids, seen < BATCH))
    }
}

/// An item with a picture (a raster image, a poster) made without exactly these presets
/// (not one still waiting or failed).
pub(super) fn needs_crops(record: &MediaRecord, presets: &Presets) -> bool {
    record.picture().is_some()
        && record
            .processing
            .as_ref()
            .is_some_and(|p| p.status == Status::Ready && !presets.made(&p.crops))
}

/// FNV-1a over `name=WxH;` of each preset, in name order.
pub(super) fn fingerprint(presets: &Presets) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, size) in presets.iter() {
        let entry = format!("{name}={}x{};", size.width, size.height);
        for byte in entry.bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}
