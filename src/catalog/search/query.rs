//! Answering a search: walk the intersection of the term's posting lists, check each
//! candidate's document (filters and the real text), count every match for the exact
//! total, and keep only the `offset + limit` best positions in a bounded heap. Memory
//! grows with the page asked for, time with the matches.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use redb::ReadTransaction;

use super::postings::{self, Postings};
use super::{Doc, grams_of_term};
use crate::catalog::tables::{SEARCH_DOCS, SEARCH_GRAMS};
use crate::catalog::{CatalogError, Result};
use crate::model::ListQuery;

/// One page of a search, as positions in the listing order (see `Doc::sort_key`).
#[derive(Debug, Default)]
pub struct Hit {
    pub keys: Vec<Vec<u8>>,
    /// Every match of the search and filters.
    pub total: u64,
    /// More matches follow this page.
    pub more: bool,
}

/// `needle` is lower-cased and not empty; `after` is the position a cursor points past.
pub fn search(
    txn: &ReadTransaction,
    q: &ListQuery,
    needle: &str,
    after: Option<&[u8]>,
) -> Result<Hit> {
    let grams_table = txn.open_table(SEARCH_GRAMS)?;
    let docs = txn.open_table(SEARCH_DOCS)?;
    let mut lists: Vec<_> = grams_of_term(needle)
        .iter()
        .map(|g| Postings::new(&grams_table, g))
        .collect();
    let folder = q.folder.as_ref().map(|f| f.as_str());
    let kind = q.kind.map(|k| k.tag());
    let mut best = Best::new(q, after);
    postings::intersect(&mut lists, |n| {
        let Some(bytes) = docs.get(n)? else {
            return Ok(()); // a stale posting: the document is the truth
        };
        let doc = Doc::decode(bytes.value())
            .ok_or_else(|| CatalogError::Corrupt(format!("search document {n}")))?;
        if folder.is_none_or(|f| f == doc.folder)
            && kind.is_none_or(|k| k == doc.kind)
            && q.visibility.is_none_or(|v| v == doc.visibility)
            && q.within.as_ref().is_none_or(|root| root.holds(doc.folder))
            && doc.matches(needle)
        {
            best.offer(&doc);
        }
        Ok(())
    })?;
    Ok(best.finish())
}

/// Counts the matches and keeps the `offset + limit` best positions past the cursor.
struct Best<'q> {
    q: &'q ListQuery,
    after: Option<&'q [u8]>,
    kept: BinaryHeap<Ranked>,
    keep: usize,
    total: u64,
    /// Matches past the cursor.
    beyond: u64,
    key: Vec<u8>,
}

impl<'q> Best<'q> {
    fn new(q: &'q ListQuery, after: Option<&'q [u8]>) -> Self {
        let keep = q.offset.saturating_add(q.limit);
        Self {
            q,
            after,
            kept: BinaryHeap::with_capacity(keep.min(4096) + 1),
            keep,
            total: 0,
            beyond: 0,
            key: Vec::with_capacity(64),
        }
    }

    fn offer(&mut self, doc: &Doc<'_>) {
        self.total += 1;
        doc.sort_key(self.q.sort, &mut self.key);
        let wanted = if self.q.descending {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        let past_cursor = self
            .after
            .is_none_or(|a| self.key.as_slice().cmp(a) == wanted);
        if !past_cursor {
            return;
        }
        self.beyond += 1;
        let candidate = Ranked {
            key: std::mem::take(&mut self.key),
            descending: self.q.descending,
        };
        if self.kept.len() < self.keep {
            self.kept.push(candidate);
        } else if self.kept.peek().is_some_and(|worst| candidate < *worst) {
            self.kept.pop();
            self.kept.push(candidate);
        } else {
            self.key = candidate.key; // not kept: reuse its buffer
        }
    }

    fn finish(self) -> Hit {
        let keys: Vec<Vec<u8>> = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .skip(self.q.offset)
            .map(|r| r.key)
            .collect();
        let more = self.beyond > (self.q.offset + keys.len()) as u64;
        Hit {
            keys,
            total: self.total,
            more,
        }
    }
}

/// A position ordered as the listing wants it, best first.
#[derive(PartialEq, Eq)]
struct Ranked {
    key: Vec<u8>,
    descending: bool,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        let order = self.key.cmp(&other.key);
        if self.descending {
            order.reverse()
        } else {
            order
        }
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
