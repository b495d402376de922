//! A search document: the part of a record that search filters, checks and sorts by,
//! small and read without a JSON decode.
//!
//! `created (u64 BE) size (u64 BE) kind tag (u8, its top bit set for a private item)` then
//! four length-prefixed (u32 LE) strings: id, folder, folded filename, folded alt (empty
//! when none; see `model::fold`).

use crate::model::{MediaRecord, SortField, Visibility, fold};

use super::super::index;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc<'a> {
    pub created_us: u64,
    pub size: u64,
    pub kind: u8,
    pub visibility: Visibility,
    pub id: &'a str,
    pub folder: &'a str,
    pub filename: &'a str,
    pub alt: &'a str,
}

/// The folded texts search looks in (see `model::fold`).
pub fn texts(r: &MediaRecord) -> (String, String) {
    (fold(&r.filename), fold(r.alt.as_deref().unwrap_or("")))
}

pub fn encode(r: &MediaRecord, filename: &str, alt: &str) -> Vec<u8> {
    let strings = [r.id.as_str(), r.folder.as_str(), filename, alt];
    let len: usize = strings.iter().map(|s| s.len() + 4).sum();
    let mut out = Vec::with_capacity(17 + len);
    out.extend_from_slice(&r.created_us.to_be_bytes());
    out.extend_from_slice(&r.size.to_be_bytes());
    out.push(
        r.kind().tag()
            | if r.visibility.is_private() {
                PRIVATE
            } else {
                0
            },
    );
    for s in strings {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// The bit of the kind byte that marks a private item (kind tags are ASCII).
const PRIVATE: u8 = 0x80;

impl<'a> Doc<'a> {
    /// `None` for bytes this module did not write.
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let (head, mut rest) = bytes.split_at_checked(17)?;
        let mut next = || {
            let (len, tail) = rest.split_at_checked(4)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (s, tail) = tail.split_at_checked(len)?;
            rest = tail;
            std::str::from_utf8(s).ok()
        };
        Some(Self {
            created_us: u64::from_be_bytes(head[..8].try_into().ok()?),
            size: u64::from_be_bytes(head[8..16].try_into().ok()?),
            kind: head[16] & !PRIVATE,
            visibility: if head[16] & PRIVATE == 0 {
                Visibility::Public
            } else {
                Visibility::Private
            },
            id: next()?,
            folder: next()?,
            filename: next()?,
            alt: next()?,
        })
    }

    /// The spec's search over the folded texts (`needle` is folded too).
    pub fn matches(&self, needle: &str) -> bool {
        self.filename.contains(needle) || self.alt.contains(needle)
    }

    /// Writes this item's position in `sort` order into `key` (cleared first): the same
    /// bytes as the tail of its listing-index key, so cursors work for both.
    pub fn sort_key(&self, sort: SortField, key: &mut Vec<u8>) {
        key.clear();
        index::push_tail(
            key,
            sort,
            self.created_us,
            self.size,
            self.filename,
            self.id,
        );
    }
}
