//! Keeping the search index in step with the records, inside the write transaction.
//! Posting changes are gathered per gram over the whole batch and written once at
//! `flush`, so a batch of 20,000 uploads rewrites each touched block once, not once per
//! item.

use std::collections::BTreeMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::{Doc, doc, grams_of, postings};
use crate::catalog::tables::{META, SEARCH_DOCS, SEARCH_GRAMS, SEARCH_IDS};
use crate::catalog::{CatalogError, Result};
use crate::model::MediaRecord;

/// `META` key of the next document number.
const NEXT: &str = "search_next";

pub struct Writer<'t> {
    docs: Table<'t, u64, &'static [u8]>,
    ids: Table<'t, &'static str, u64>,
    grams: Table<'t, &'static [u8], &'static [u8]>,
    meta: Table<'t, &'static str, u64>,
    /// The next number to hand out, and the first one handed out by this batch.
    next: u64,
    first_new: u64,
    added: BTreeMap<Vec<u8>, Vec<u64>>,
    removed: BTreeMap<Vec<u8>, Vec<u64>>,
    /// A document was added or removed: search answers change with this commit.
    changed: bool,
}

impl<'t> Writer<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self> {
        let meta = txn.open_table(META)?;
        let next = meta.get(NEXT)?.map_or(1, |v| v.value());
        Ok(Self {
            docs: txn.open_table(SEARCH_DOCS)?,
            ids: txn.open_table(SEARCH_IDS)?,
            grams: txn.open_table(SEARCH_GRAMS)?,
            meta,
            next,
            first_new: next,
            added: BTreeMap::new(),
            removed: BTreeMap::new(),
            changed: false,
        })
    }

    /// Whether `id` is indexed (the upgrade skips those).
    pub fn has(&self, id: &str) -> Result<bool> {
        Ok(self.ids.get(id)?.is_some())
    }

    /// Indexes a record that is not indexed yet.
    pub fn add(&mut self, r: &MediaRecord) -> Result<()> {
        let (filename, alt) = doc::texts(r);
        let n = self.next;
        self.next += 1;
        self.changed = true;
        self.docs
            .insert(n, doc::encode(r, &filename, &alt).as_slice())?;
        self.ids.insert(r.id.as_str(), n)?;
        for gram in grams_of(&[&filename, &alt]) {
            self.added.entry(gram).or_default().push(n);
        }
        Ok(())
    }

    /// Drops a record from the index; returns its document as it was indexed (`None` if
    /// it was not indexed).
    pub fn remove(&mut self, id: &str) -> Result<Option<Vec<u8>>> {
        let Some(n) = self.ids.remove(id)?.map(|v| v.value()) else {
            return Ok(None);
        };
        let Some(bytes) = self.docs.remove(n)?.map(|v| v.value().to_vec()) else {
            return Ok(None);
        };
        self.changed = true;
        let doc = Doc::decode(&bytes)
            .ok_or_else(|| CatalogError::Corrupt(format!("search document {n}")))?;
        for gram in grams_of(&[doc.filename, doc.alt]) {
            if n >= self.first_new {
                // Added by this batch: never written, so just forget it.
                if let Some(list) = self.added.get_mut(&gram) {
                    list.retain(|&m| m != n);
                }
            } else {
                self.removed.entry(gram).or_default().push(n);
            }
        }
        Ok(Some(bytes))
    }

    /// Writes the gathered posting changes; call once, before the commit. True when
    /// search answers change with it.
    pub fn flush(mut self) -> Result<bool> {
        for (gram, mut numbers) in std::mem::take(&mut self.removed) {
            numbers.sort_unstable();
            postings::remove(&mut self.grams, &gram, &numbers)?;
        }
        for (gram, numbers) in std::mem::take(&mut self.added) {
            if !numbers.is_empty() {
                postings::append(&mut self.grams, &gram, &numbers)?;
            }
        }
        if self.next != self.first_new {
            self.meta.insert(NEXT, self.next)?;
        }
        Ok(self.changed)
    }
}
