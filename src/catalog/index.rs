//! Key layout of the listing index, so that listing by any sort, in either order,
//! optionally within one folder or one kind, is a range scan and never a full scan.
//!
//! `key = [sort tag] [p] [partition] 0x00 [sort value] [id]`, where `p` is there for private
//! items only (public and private items are disjoint ranges: the public API walks one,
//! a key holder's listing merges both), the partition is `a` (everything),
//! `f<folder>`, `k<kind tag>` or `x<kind tag><folder>`, and the sort value is the big-endian
//! creation time, the big-endian size, or the folded filename (`model::fold`) followed by
//! 0x00. Ids
//! have a fixed length, so the id is the key's tail and breaks ties. The part after the
//! partition (`tail`) is an item's position in its order: a listing cursor carries it.

use crate::model::{ID_LEN, Kind, MediaRecord, SortField, Visibility, fold};

/// Which part of the catalog a listing walks: each record is indexed in all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition<'a> {
    All,
    Folder(&'a str),
    Kind(Kind),
    FolderKind(&'a str, Kind),
}

const SORTS: [SortField; 3] = [SortField::CreatedAt, SortField::Filename, SortField::Size];

fn sort_tag(sort: SortField) -> u8 {
    match sort {
        SortField::CreatedAt => b'c',
        SortField::Filename => b'n',
        SortField::Size => b's',
    }
}

/// The prefix every key of `(sort, partition)` of items of `visibility` starts with.
pub fn prefix(sort: SortField, partition: Partition<'_>, visibility: Visibility) -> Vec<u8> {
    let mut key = vec![sort_tag(sort)];
    if visibility.is_private() {
        key.push(b'p');
    }
    match partition {
        Partition::All => key.push(b'a'),
        Partition::Folder(f) => {
            key.push(b'f');
            key.extend_from_slice(f.as_bytes());
        }
        Partition::Kind(k) => key.extend_from_slice(&[b'k', k.tag()]),
        Partition::FolderKind(f, k) => {
            key.extend_from_slice(&[b'x', k.tag()]);
            key.extend_from_slice(f.as_bytes());
        }
    }
    key.push(0);
    key
}

/// The exclusive upper bound of a prefix range (prefixes end in 0x00).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

/// All index keys of one record (3 sorts × 4 partitions).
pub fn keys_of(r: &MediaRecord) -> Vec<Vec<u8>> {
    let facts = Facts {
        created_us: r.created_us,
        size: r.size,
        filename: &fold(&r.filename),
        folder: &r.folder,
        kind: r.kind(),
        id: &r.id,
        visibility: r.visibility,
    };
    facts.keys()
}

/// What an item's index keys and counters are made of (a record has them, and so does its
/// search document, from which an item whose record cannot be read is still deleted).
pub struct Facts<'a> {
    pub created_us: u64,
    pub size: u64,
    /// Folded (`model::fold`).
    pub filename: &'a str,
    pub folder: &'a str,
    pub kind: Kind,
    pub id: &'a str,
    pub visibility: Visibility,
}

impl Facts<'_> {
    /// The 12 index keys (in the ranges of the item's visibility).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let partitions = [
            Partition::All,
            Partition::Folder(self.folder),
            Partition::Kind(self.kind),
            Partition::FolderKind(self.folder, self.kind),
        ];
        let mut keys = Vec::with_capacity(SORTS.len() * partitions.len());
        for sort in SORTS {
            for partition in partitions {
                let mut key = prefix(sort, partition, self.visibility);
                push_tail(
                    &mut key,
                    sort,
                    self.created_us,
                    self.size,
                    self.filename,
                    self.id,
                );
                keys.push(key);
            }
        }
        keys
    }

    /// The counter names: the 4 of every item, and for a private item the same 4 again
    /// in its own counters (`private_count_key`).
    pub fn count_keys(&self) -> Vec<String> {
        scopes(self.folder, self.kind, self.visibility)
    }
}

/// Appends an item's position in `sort` order: its sort value, then its id.
/// `filename` is folded (`model::fold`).
pub fn push_tail(
    key: &mut Vec<u8>,
    sort: SortField,
    created_us: u64,
    size: u64,
    filename: &str,
    id: &str,
) {
    match sort {
        SortField::CreatedAt => key.extend_from_slice(&created_us.to_be_bytes()),
        SortField::Size => key.extend_from_slice(&size.to_be_bytes()),
        SortField::Filename => {
            key.extend_from_slice(filename.as_bytes());
            key.push(0);
        }
    }
    key.extend_from_slice(id.as_bytes());
}

/// The media id at the tail of an index key.
pub fn id_of(key: &[u8]) -> Option<&str> {
    let start = key.len().checked_sub(ID_LEN)?;
    std::str::from_utf8(&key[start..]).ok()
}

/// Counter names touched by a record.
pub fn count_keys(r: &MediaRecord) -> Vec<String> {
    let kind = r.kind();
    let facts = Facts {
        created_us: r.created_us,
        size: r.size,
        filename: "",
        folder: &r.folder,
        kind,
        id: &r.id,
        visibility: r.visibility,
    };
    facts.count_keys()
}

/// The counters of an item in `folder` of `kind`: the 4 of every item, and for a private
/// item the same 4 again in its own counters (`private_count_key`).
pub fn scopes(folder: &str, kind: Kind, visibility: Visibility) -> Vec<String> {
    let every = [
        count_key(None, None),
        count_key(Some(folder), None),
        count_key(None, Some(kind)),
        count_key(Some(folder), Some(kind)),
    ];
    let private = every.clone().map(|k| format!("{PRIVATE}{k}"));
    let private = private.into_iter().filter(|_| visibility.is_private());
    every.into_iter().chain(private).collect()
}

/// The range of every name that continues `name` with a `/` (`name/` up to, not
/// including, `name0`, as `0` follows `/`): a folder's subfolders, or the counters of the
/// folders below the one a counter name ends with. Both catalogs compare bytewise.
pub fn below(name: &str) -> (String, String) {
    (format!("{name}/"), format!("{name}0"))
}

/// The folder a folder's counter (`count_key(Some(folder), None)`) counts.
pub fn counted_folder(count_key: &str) -> Option<&str> {
    count_key.strip_prefix("f:")
}

/// What a private item's own counters start with.
const PRIVATE: char = 'p';

/// The counter of the private items of a filter (see `Facts::count_keys`).
pub fn private_count_key(folder: Option<&str>, kind: Option<Kind>) -> String {
    format!("{PRIVATE}{}", count_key(folder, kind))
}

/// The counter that holds the exact total of a filter (items of either visibility).
pub fn count_key(folder: Option<&str>, kind: Option<Kind>) -> String {
    match (folder, kind) {
        (None, None) => "a".to_owned(),
        (Some(f), None) => format!("f:{f}"),
        (None, Some(k)) => format!("k:{}", k.tag() as char),
        (Some(f), Some(k)) => format!("x:{}:{f}", k.tag() as char),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id_tail: char, name: &str, created: u64, size: u64) -> MediaRecord {
        MediaRecord::sample(id_tail, name, created, size)
    }

    fn key(sort: SortField, r: &MediaRecord) -> Vec<u8> {
        let p = prefix(sort, Partition::All, r.visibility);
        keys_of(r)
            .into_iter()
            .find(|k| k.starts_with(&p))
            .expect("key")
    }

    #[test]
    fn keys_sort_like_the_fields_with_id_as_tiebreak() {
        let a = rec('a', "Zebra.png", 2, 10);
        let b = rec('b', "apple.png", 1, 300);
        let c = rec('c', "apple.png", 1, 300);
        assert!(key(SortField::CreatedAt, &b) < key(SortField::CreatedAt, &a));
        assert!(
            key(SortField::Filename, &b) < key(SortField::Filename, &a),
            "case-insensitive"
        );
        assert!(key(SortField::Size, &a) < key(SortField::Size, &b));
        assert!(
            key(SortField::Filename, &b) < key(SortField::Filename, &c),
            "id breaks ties"
        );
        let shorter = rec('z', "a", 0, 0);
        let longer = rec('a', "a b", 0, 0);
        assert!(key(SortField::Filename, &shorter) < key(SortField::Filename, &longer));
    }

    #[test]
    fn ids_round_trip_and_partitions_are_disjoint() {
        let r = rec('q', "x.png", 5, 5);
        for k in keys_of(&r) {
            assert_eq!(id_of(&k), Some(r.id.as_str()));
        }
        let public = Visibility::Public;
        let folder = prefix(SortField::CreatedAt, Partition::Folder("/a"), public);
        let sub = prefix(SortField::CreatedAt, Partition::Folder("/a/b"), public);
        assert!(
            !sub.starts_with(&folder),
            "a folder's range excludes its subfolders"
        );
        assert!(prefix_end(&folder) > folder);
    }

    #[test]
    fn private_items_have_ranges_and_counters_of_their_own() {
        let public = rec('a', "x.png", 5, 5);
        let private = MediaRecord {
            visibility: Visibility::Private,
            ..rec('b', "x.png", 5, 5)
        };
        for sort in SORTS {
            for partition in [Partition::All, Partition::Folder("/a")] {
                let (p, q) = (
                    prefix(sort, partition, Visibility::Public),
                    prefix(sort, partition, Visibility::Private),
                );
                let in_range = |k: &Vec<u8>, start: &Vec<u8>| {
                    k.starts_with(start) && k.as_slice() < prefix_end(start).as_slice()
                };
                assert!(keys_of(&public).iter().any(|k| in_range(k, &p)));
                assert!(!keys_of(&public).iter().any(|k| in_range(k, &q)));
                assert!(keys_of(&private).iter().any(|k| in_range(k, &q)));
                assert!(!keys_of(&private).iter().any(|k| in_range(k, &p)));
            }
        }
        assert_eq!(count_keys(&public).len(), 4);
        let counted = count_keys(&private);
        assert!(counted.contains(&count_key(Some("/a"), None)));
        assert!(counted.contains(&private_count_key(Some("/a"), None)));
        assert!(counted.contains(&private_count_key(None, None)));
        assert_eq!(counted.len(), 8);
    }
}
