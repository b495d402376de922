//! The search index: the spec's search (a case-insensitive substring of the filename or
//! the alt text) answered from posting lists, at a cost that grows with the matches and
//! never with the library.
//!
//! Every item gets a document number (`SEARCH_IDS`, increasing, never reused) and a
//! document (`SEARCH_DOCS`: what search filters and sorts by, see `Doc`), and its number
//! is listed under every distinct 1-, 2- and 3-character gram of its lower-cased filename
//! and alt (`SEARCH_GRAMS`, see `postings`). A term of up to 3 characters has its own list,
//! which is exact; a longer one is looked up as the intersection of its trigrams' lists.
//! Either way each candidate's document is checked against the real text, so the index is
//! only ever a filter. All of it is written in the same transaction as the record.
//! `memo` keeps recent answers until the next commit.

mod doc;
pub mod memo;
pub mod postings;
mod query;
mod writer;

pub use doc::Doc;
pub use query::{Hit, search};
pub use writer::Writer;

use std::collections::BTreeSet;

/// The distinct grams of an item's searchable texts (each already lower-cased): every run
/// of 1 to 3 characters within one text.
pub fn grams_of(texts: &[&str]) -> BTreeSet<Vec<u8>> {
    let mut grams = BTreeSet::new();
    for text in texts {
        let bounds = char_bounds(text);
        for n in 1..=3 {
            for w in bounds.windows(n + 1) {
                grams.insert(text.as_bytes()[w[0]..w[n]].to_vec());
            }
        }
    }
    grams
}

/// The grams whose lists hold every match of `needle` (lower-cased, not empty): the
/// needle itself up to 3 characters, else its distinct trigrams.
pub fn grams_of_term(needle: &str) -> Vec<Vec<u8>> {
    if needle.chars().count() <= 3 {
        return vec![needle.as_bytes().to_vec()];
    }
    let bounds = char_bounds(needle);
    let set: BTreeSet<Vec<u8>> = bounds
        .windows(4)
        .map(|w| needle.as_bytes()[w[0]..w[3]].to_vec())
        .collect();
    set.into_iter().collect()
}

/// The byte offsets where `text`'s characters start, and its length.
fn char_bounds(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect()
}

#[cfg(test)]
mod tests;
