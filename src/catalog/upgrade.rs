//! Upgrading a catalog written by an older Darkroom, in place, at open.
//!
//! Schema 2 added the folder-and-type listing partition and the search index. Both are
//! derived from the records, so the upgrade walks `MEDIA` in batches, each its own
//! transaction: index keys are inserted (an existing key is left as it is) and records not
//! yet in the search index are added. A crash midway leaves a catalog that is still
//! schema 1 and resumes where it stopped; the version is written with the last batch.

use std::ops::Bound;
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::tables::{INDEX, MEDIA, META};
use super::{CatalogError, Result, decode, index, search};
use crate::model::MediaRecord;

/// The layout this build reads and writes.
pub const SCHEMA: u64 = 2;
const BATCH: usize = 10_000;

/// Brings the catalog to `SCHEMA`; logs what it did when there was anything to do.
pub fn upgrade(db: &Database) -> Result<()> {
    let schema = db
        .begin_read()?
        .open_table(META)?
        .get("schema")?
        .map(|v| v.value());
    match schema {
        Some(SCHEMA) => return Ok(()),
        Some(newer) if newer > SCHEMA => {
            return Err(CatalogError::Corrupt(format!(
                "the catalog has schema {newer}, written by a newer Darkroom (this one reads {SCHEMA})"
            )));
        }
        _ => {}
    }
    let started = Instant::now();
    let (mut after, mut count) = (None::<String>, 0usize);
    loop {
        let (seen, done) = upgrade_batch(db, &mut after)?;
        count += seen;
        if done {
            break;
        }
    }
    if count > 0 {
        tracing::info!(
            items = count,
            from = schema.unwrap_or(1),
            to = SCHEMA,
            secs = started.elapsed().as_secs_f64(),
            "catalog upgraded: listing and search indexes built"
        );
    }
    Ok(())
}

/// Indexes the next `BATCH` records after `after` in one transaction (and writes the
/// schema with the last batch); returns how many, and whether that was the last batch.
fn upgrade_batch(db: &Database, after: &mut Option<String>) -> Result<(usize, bool)> {
    let txn = db.begin_write()?;
    let mut seen = 0;
    {
        let media = txn.open_table(MEDIA)?;
        let mut listing = txn.open_table(INDEX)?;
        let mut writer = search::Writer::open(&txn)?;
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for entry in media.range::<&str>((from, Bound::Unbounded))?.take(BATCH) {
            let (id, value) = entry?;
            let record: MediaRecord = decode(value.value())?;
            for key in index::keys_of(&record) {
                listing.insert(key.as_slice(), record.kind().tag())?;
            }
            if !writer.has(&record.id)? {
                writer.add(&record)?;
            }
            *after = Some(id.value().to_owned());
            seen += 1;
        }
        writer.flush()?;
    }
    let done = seen < BATCH;
    if done {
        txn.open_table(META)?.insert("schema", SCHEMA)?;
    }
    txn.commit()?;
    Ok((seen, done))
}
