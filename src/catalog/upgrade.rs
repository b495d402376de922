//! Upgrading a catalog written by an older Darkroom, in place, at open; refusing one
//! written by a newer one (it may keep rows this build would not keep in step).
//!
//! - Schema 2 added the folder-and-type listing partition and the search index.
//! - Schema 3 folds the text of search and of the filename sort (`model::fold`: NFC and
//!   full case folding, so `café`, `Straße` and `İstanbul` are found however they are
//!   typed), adds `ITEM_FILES` (every file of an item) and the search generation.
//!
//! All of it (and the listing counters) is derived from `MEDIA` and `FILES`, so an upgrade
//! clears the derived tables and walks the records in batches, each its own transaction.
//! A crash midway leaves a catalog still at its old schema, which the next start upgrades
//! again from scratch; the version is written with the last batch. A record that does not decode is left out
//! of the indexes (logged; it can still be deleted); a file whose item is gone (an older
//! build's delete missed it) goes to the delete queue.
//!
//! `model::fold` is part of the layout: a new version of the ICU crates may fold some
//! text differently, so they are pinned in Cargo.toml and moving them bumps `SCHEMA`.

use std::ops::Bound;
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::tables::{
    COUNTS, FILES, INDEX, ITEM_FILES, MEDIA, META, PENDING_DELETES, SEARCH_DOCS, SEARCH_GRAMS,
    SEARCH_IDS, item_file,
};
use super::{CatalogError, Result, decode, index, search};
use crate::model::MediaRecord;

/// The layout this build reads and writes. 4: private items have index ranges, counters
/// and a search-document bit of their own (an older build would show them as public).
/// 5: webhooks and their outboxes (an older build would commit changes without events).
pub const SCHEMA: u64 = 5;
const BATCH: usize = 10_000;

/// The schema the file says it has (`None` for a new file, or one from before schema 2);
/// refuses one newer than this build, before anything is written to it.
pub fn schema_of(db: &Database) -> Result<Option<u64>> {
    let txn = db.begin_read()?;
    let schema = match txn.open_table(META) {
        Ok(meta) => meta.get("schema")?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.into()),
    };
    match schema {
        Some(newer) if newer > SCHEMA => Err(CatalogError::TooNew {
            found: newer,
            reads: SCHEMA,
        }),
        schema => Ok(schema),
    }
}

/// Brings the catalog to `SCHEMA`; logs what it did when there was anything to do.
pub fn upgrade(db: &Database) -> Result<()> {
    let schema = schema_of(db)?;
    if schema == Some(SCHEMA) {
        return Ok(());
    }
    if schema == Some(3) || schema == Some(4) {
        // Layout 3 held no private items and layouts 3 and 4 no webhooks, so their indexes
        // are this layout's already (the webhook tables are made at open): only the mark
        // moves (an older build then refuses the file instead of misreading it).
        let txn = db.begin_write()?;
        txn.open_table(META)?.insert("schema", SCHEMA)?;
        txn.commit()?;
        return Ok(());
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
    let (mut after, mut ownerless) = (None::<String>, 0);
    loop {
        let (done, queued) = files_batch(db, &mut after)?;
        ownerless += queued;
        if done {
            break;
        }
    }
    if ownerless > 0 {
        tracing::warn!(
            files = ownerless,
            "files of items deleted by an older build were still served: queued for deletion"
        );
    }
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
    {
        // The listing counters are recounted from the indexed records; the crop cache's
        // byte count (`c:`) is not derived from them.
        let mut counts = txn.open_table(COUNTS)?;
        let listing: Vec<String> = counts
            .iter()?
            .map(|row| row.map(|(k, _)| k.value().to_owned()))
            .filter(|k| !k.as_ref().is_ok_and(|k| k.starts_with("c:")))
            .collect::<std::result::Result<_, _>>()?;
        for key in listing {
            counts.remove(key.as_str())?;
        }
    }
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
        let mut counts = txn.open_table(COUNTS)?;
        let mut writer = search::Writer::open(&txn)?;
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for entry in media.range::<&str>((from, Bound::Unbounded))?.take(BATCH) {
            let (id, value) = entry?;
            *after = Some(id.value().to_owned());
            seen += 1;
            let record: MediaRecord = match decode(value.value()) {
                Ok(record) => record,
                Err(e) => {
                    // Left out of the indexes (never listed or found); it can be deleted.
                    tracing::warn!(id = id.value(), error = %e, "unreadable record not indexed");
                    continue;
                }
            };
            for key in index::keys_of(&record) {
                listing.insert(key.as_slice(), record.kind().tag())?;
            }
            for key in index::count_keys(&record) {
                let n = counts.get(key.as_str())?.map_or(0, |v| v.value());
                counts.insert(key.as_str(), n + 1)?;
            }
            writer.add(&record)?;
        }
        writer.flush()?;
    }
    txn.commit()?;
    Ok((seen, seen < BATCH))
}

/// Adds the next `BATCH` files after `after` to `ITEM_FILES`; a file whose item is gone
/// (left behind by a delete of an older build) goes to the delete queue instead. Returns
/// whether that was the last batch, and how many files were queued.
fn files_batch(db: &Database, after: &mut Option<String>) -> Result<(bool, usize)> {
    let txn = db.begin_write()?;
    let (mut seen, mut ownerless) = (0, Vec::new());
    {
        let media = txn.open_table(MEDIA)?;
        let files = txn.open_table(FILES)?;
        let mut item_files = txn.open_table(ITEM_FILES)?;
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        for entry in files.range::<&str>((from, Bound::Unbounded))?.take(BATCH) {
            let (key, id) = entry?;
            let (key, id) = (key.value(), id.value());
            if media.get(id)?.is_some() {
                item_files.insert(item_file(id, key).as_str(), ())?;
            } else {
                ownerless.push(key.to_owned());
            }
            *after = Some(key.to_owned());
            seen += 1;
        }
    }
    {
        let mut files = txn.open_table(FILES)?;
        let mut pending = txn.open_table(PENDING_DELETES)?;
        let now = crate::model::now_us();
        for key in &ownerless {
            files.remove(key.as_str())?;
            pending.insert(key.as_str(), now)?;
        }
    }
    txn.commit()?;
    Ok((seen < BATCH, ownerless.len()))
}
