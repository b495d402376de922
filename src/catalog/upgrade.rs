//! Upgrading a catalog written by an older Darkroom, in place, at open; refusing one
//! written by a newer one (it may keep rows this build would not keep in step).
//!
//! - Schema 2 added the folder-and-type listing partition and the search index.
//! - Schema 3 folds the text of search and of the filename sort (`model::fold`: NFC and
//!   full case folding, so `café`, `Straße` and `İstanbul` are found however they are
//!   typed), adds `ITEM_FILES` (every file of an item) and the search generation.
//!
//! All of it is derived from `MEDIA` and `FILES`, so an upgrade clears the derived tables
//! and walks the records in batches, each its own transaction. A crash midway leaves a
//! catalog still at its old schema, which the next start upgrades again from scratch;
//! the version is written with the last batch.

use std::ops::Bound;
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::tables::{
    FILES, INDEX, ITEM_FILES, MEDIA, META, SEARCH_DOCS, SEARCH_GRAMS, SEARCH_IDS, item_file,
};
use super::{CatalogError, Result, decode, index, search};
use crate::model::MediaRecord;

/// The layout this build reads and writes.
pub const SCHEMA: u64 = 3;
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
            return Err(CatalogError::TooNew {
                found: newer,
                reads: SCHEMA,
            });
        }
        _ => {}
    }
    let started = Instant::now();
    clear_derived(db)?;
    let (mut after, mut count) = (None::<String>, 0usize);
    loop {
        let (seen, done) = records_batch(db, &mut after)?;
        count += seen;
        if done {
            break;
        }
    }
    let mut after = None::<String>;
    while !files_batch(db, &mut after)? {}
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert("schema", SCHEMA)?;
    txn.commit()?;
    if count > 0 {
        tracing::info!(
            items = count,
            from = schema.unwrap_or(1),
            to = SCHEMA,
            secs = started.elapsed().as_secs_f64(),
            "catalog upgraded: listing and search indexes rebuilt with folded text"
        );
    }
    Ok(())
}

/// Empties the tables derived from the records (one transaction).
fn clear_derived(db: &Database) -> Result<()> {
    let txn = db.begin_write()?;
    recreate(&txn, SEARCH_DOCS)?;
    recreate(&txn, SEARCH_IDS)?;
    recreate(&txn, SEARCH_GRAMS)?;
    recreate(&txn, INDEX)?;
    recreate(&txn, ITEM_FILES)?;
    txn.open_table(META)?.remove("search_next")?;
    txn.commit()?;
    Ok(())
}

/// Deletes a table and makes it anew, empty.
fn recreate<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &WriteTransaction,
    table: TableDefinition<K, V>,
) -> Result<()> {
    txn.delete_table(table)?;
    txn.open_table(table)?;
    Ok(())
}

/// Indexes the next `BATCH` records after `after` in one transaction; returns how many,
/// and whether that was the last batch.
fn records_batch(db: &Database, after: &mut Option<String>) -> Result<(usize, bool)> {
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
            writer.add(&record)?;
            *after = Some(id.value().to_owned());
            seen += 1;
        }
        writer.flush()?;
    }
    txn.commit()?;
    Ok((seen, seen < BATCH))
}

/// Adds the next `BATCH` files after `after` to `ITEM_FILES`; true when done.
fn files_batch(db: &Database, after: &mut Option<String>) -> Result<bool> {
    let txn = db.begin_write()?;
    let mut seen = 0;
    {
        let files = txn.open_table(FILES)?;
        let mut item_files = txn.open_table(ITEM_FILES)?;
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for entry in files.range::<&str>((from, Bound::Unbounded))?.take(BATCH) {
            let (key, id) = entry?;
            item_files.insert(item_file(id.value(), key.value()).as_str(), ())?;
            *after = Some(key.value().to_owned());
            seen += 1;
        }
    }
    txn.commit()?;
    Ok(seen < BATCH)
}
