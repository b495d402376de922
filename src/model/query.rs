//! Listing requests and their answers, validated before any actor is called.

use super::folder::FolderPath;
use super::media::{MediaRecord, Visibility};
use super::media_type::Kind;

/// Sort field of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Search text, folded (`model::fold`).
    pub search: Option<String>,
    pub sort: SortField,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
    /// Where the page starts: the position (see `catalog::index`) of the item just before
    /// it, from a previous page's `nextCursor`. Used instead of `offset`.
    pub cursor: Option<Vec<u8>>,
    /// Only items of this visibility (the public API lists public items only); `None`
    /// lists both.
    pub visibility: Option<Visibility>,
    /// Only items in this folder's subtree (the caller's key is limited to it); `folder`,
    /// when given, lies within it.
    pub within: Option<FolderPath>,
}

/// A listing too costly to answer: past these bounds a client pages by cursor or narrows
/// its search. Checked by the HTTP parser (for its error codes) and by the catalog
/// interface (for every other caller), so both catalogs answer the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryBound {
    #[error(
        "offset is at most {max}; page deeper with the previous page's nextCursor (as cursor)",
        max = ListQuery::MAX_OFFSET
    )]
    Offset,
    #[error(
        "search is at most {max} characters (counted after case folding: ß counts as ss)",
        max = ListQuery::MAX_SEARCH_CHARS
    )]
    Search,
    #[error("limit is at most {max}", max = ListQuery::MAX_LIMIT)]
    Limit,
    #[error("cursor is not one this server issued")]
    Cursor,
}

impl ListQuery {
    /// Largest page (the HTTP parser answers a larger `limit` with this many).
    pub const MAX_LIMIT: usize = 100;
    /// Deepest `offset`: a page past it walks (and for a search, ranks) that many items
    /// first; deeper pages come by cursor, at the same cost at any depth.
    pub const MAX_OFFSET: usize = 10_000;
    /// Longest search term (folded): each character adds a posting list to intersect.
    pub const MAX_SEARCH_CHARS: usize = 200;

    /// Refuses a query past the bounds above.
    pub fn check(&self) -> Result<(), QueryBound> {
        if self.offset > Self::MAX_OFFSET {
            return Err(QueryBound::Offset);
        }
        if self.limit > Self::MAX_LIMIT {
            return Err(QueryBound::Limit);
        }
        match &self.search {
            Some(s) if s.chars().count() > Self::MAX_SEARCH_CHARS => Err(QueryBound::Search),
            _ => Ok(()),
        }
    }

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
            cursor: None,
            visibility: None,
            within: None,
        }
    }
}

/// One page of a listing with the exact total.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<MediaRecord>,
    pub total: u64,
    /// The last item's position when more items follow (for `nextCursor`).
    pub next: Option<Vec<u8>>,
}

/// Listing cursors, opaque to clients: URL-safe base64 of a format byte, the sort and
/// order they were made for, and a position. A cursor only works with the same sort and
/// order; stable under inserts and deletes, since it names a position, not a count.
pub mod cursor {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::SortField;
    use crate::model::ID_LEN;

    const FORMAT: u8 = 1;
    /// Longest position: a 255-byte filename, its terminator and an id, with room to spare.
    const MAX_POSITION: usize = 1024;

    fn tags(sort: SortField, descending: bool) -> [u8; 3] {
        let sort = match sort {
            SortField::CreatedAt => b'c',
            SortField::Filename => b'n',
            SortField::Size => b's',
        };
        [FORMAT, sort, if descending { b'd' } else { b'a' }]
    }

    pub fn encode(sort: SortField, descending: bool, position: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode([tags(sort, descending).as_slice(), position].concat())
    }

    /// The position in a cursor made for `sort` and `order`, or why it cannot be used.
    pub fn decode(raw: &str, sort: SortField, descending: bool) -> Result<Vec<u8>, &'static str> {
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| "cursor is not one this server issued")?;
        let (head, position) = bytes
            .split_at_checked(3)
            .ok_or("cursor is not one this server issued")?;
        if head[0] != FORMAT || !(ID_LEN..=MAX_POSITION).contains(&position.len()) {
            return Err("cursor is not one this server issued");
        }
        if head != tags(sort, descending) {
            return Err(
                "cursor was made for another sort or order: keep sort and order unchanged between pages",
            );
        }
        Ok(position.to_vec())
    }
}
