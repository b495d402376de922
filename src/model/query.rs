//! Listing requests and their answers, validated before any actor is called.

use super::folder::FolderPath;
use super::media::MediaRecord;
use super::media_type::Kind;

/// Sort field of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    CreatedAt,
    Filename,
    Size,
}

impl SortField {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "createdAt" => Some(Self::CreatedAt),
            "filename" => Some(Self::Filename),
            "size" => Some(Self::Size),
            _ => None,
        }
    }
}

/// A validated listing request.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub folder: Option<FolderPath>,
    pub kind: Option<Kind>,
    /// Lower-cased search text.
    pub search: Option<String>,
    pub sort: SortField,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

impl ListQuery {
    /// Index entries a listing may walk and still run inline on an async worker (about
    /// 100 µs of work); longer walks and searches go to the blocking pool.
    const INLINE_WALK: usize = 1_000;

    /// True when answering walks a short, bounded slice of the index: no search (a scan),
    /// and a page that starts near the front.
    pub fn is_short(&self) -> bool {
        self.search.is_none() && self.offset.saturating_add(self.limit) <= Self::INLINE_WALK
    }
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            folder: None,
            kind: None,
            search: None,
            sort: SortField::CreatedAt,
            descending: true,
            limit: 24,
            offset: 0,
        }
    }
}

/// One page of a listing with the exact total.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<MediaRecord>,
    pub total: u64,
}
