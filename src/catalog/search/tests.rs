//! The search index against the obvious answer: every query compared with a scan of the
//! records, after inserts, edits and deletes spread over many batches.

use std::collections::BTreeSet;

use redb::ReadableDatabase;

use super::*;
use crate::catalog::{Catalog, Write};
use crate::model::{FolderPath, Kind, ListQuery, MediaPatch, MediaRecord, SortField, cursor};

#[test]
fn grams_are_every_run_of_one_to_three_characters_within_one_text() {
    let grams = grams_of(&["abcd", "é_"]);
    let expected: BTreeSet<Vec<u8>> = [
        "a", "b", "c", "d", "ab", "bc", "cd", "abc", "bcd", "é", "_", "é_",
    ]
    .iter()
    .map(|g| g.as_bytes().to_vec())
    .collect();
    assert_eq!(grams, expected, "no gram spans the two texts");
    assert_eq!(grams_of_term("ab"), vec![b"ab".to_vec()]);
    assert_eq!(
        grams_of_term("abcab"),
        vec![b"abc".to_vec(), b"bca".to_vec(), b"cab".to_vec()]
    );
}

#[test]
fn blocks_round_trip_and_keep_their_numbers_through_appends_and_removals() {
    let mut block = Vec::new();
    let numbers = [5, 6, 200, 70_000, u64::MAX / 2];
    postings::decode(5, &postings::encode(5, &numbers), &mut block);
    assert_eq!(block, numbers);

    let dir = tempfile::tempdir().expect("tempdir");
    let db = redb::Database::create(dir.path().join("p.redb")).expect("db");
    let table_def = crate::catalog::tables::SEARCH_GRAMS;
    let mut model = BTreeSet::new();
    let txn = db.begin_write().expect("txn");
    {
        let mut table = txn.open_table(table_def).expect("table");
        for chunk in (1..2000u64).step_by(3).collect::<Vec<_>>().chunks(97) {
            postings::append(&mut table, b"ab", chunk).expect("append");
            model.extend(chunk.iter().copied());
        }
        postings::append(&mut table, b"abc", &[1, 2, 3]).expect("other gram");
        let gone: Vec<u64> = model.iter().copied().filter(|n| n % 7 < 3).collect();
        postings::remove(&mut table, b"ab", &gone).expect("remove");
        postings::remove(&mut table, b"ab", &[2, 3, 5000]).expect("unlisted numbers");
        for n in gone {
            model.remove(&n);
        }
    }
    txn.commit().expect("commit");
    let read = db.begin_read().expect("read");
    let table = read.open_table(table_def).expect("table");
    let mut list = postings::Postings::new(&table, b"ab");
    let mut seen = Vec::new();
    let mut at = 0;
    while let Some(n) = list.seek(at).expect("seek") {
        seen.push(n);
        at = n + 1;
    }
    assert_eq!(seen, model.iter().copied().collect::<Vec<_>>());
    let mut skipping = postings::Postings::new(&table, b"ab");
    let target = 1501;
    let first = model.range(target..).next().copied();
    assert_eq!(skipping.seek(target).expect("seek"), first);
}

/// A small deterministic generator (no shared state between tests).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn text(&mut self) -> String {
        const PARTS: [&str; 10] = ["ab", "Abc", "x", "_", "%", "bé", "ÉTÉ", "cab", "img_", "."];
        (0..1 + self.roll(4))
            .map(|_| PARTS[self.roll(PARTS.len() as u64) as usize])
            .collect()
    }
}

fn record(dice: &mut Dice, i: u64) -> MediaRecord {
    let mut r = MediaRecord::synthetic(i);
    r.filename = format!("{}.png", dice.text());
    r.alt = (dice.roll(3) > 0).then(|| dice.text());
    r.folder = ["/a", "/b"][dice.roll(2) as usize].into();
    r.size = dice.roll(5);
    r.created_us = dice.roll(50);
    r
}

/// The answer by definition: filter, sort by the listing order, page.
fn scan(records: &[MediaRecord], q: &ListQuery) -> (Vec<String>, u64) {
    let needle = q.search.as_deref().unwrap_or("");
    let mut hits: Vec<(Vec<u8>, &MediaRecord)> = records
        .iter()
        .filter(|r| q.folder.as_ref().is_none_or(|f| f.as_str() == r.folder))
        .filter(|r| q.kind.is_none_or(|k| k == r.kind()))
        .filter(|r| {
            r.filename.to_lowercase().contains(needle)
                || r.alt
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(needle)
        })
        .map(|r| {
            let mut key = Vec::new();
            let name = r.filename.to_lowercase();
            crate::catalog::index::push_tail(&mut key, q.sort, r.created_us, r.size, &name, &r.id);
            (key, r)
        })
        .collect();
    hits.sort_by(|a, b| a.0.cmp(&b.0));
    if q.descending {
        hits.reverse();
    }
    let total = hits.len() as u64;
    let page = hits.iter().skip(q.offset).take(q.limit);
    (page.map(|(_, r)| r.id.clone()).collect(), total)
}

fn ids(page: &crate::model::Page) -> Vec<String> {
    page.items.iter().map(|r| r.id.clone()).collect()
}

#[test]
fn search_answers_exactly_what_a_scan_of_the_records_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(&dir.path().join("c.redb")).expect("open");
    let mut dice = Dice(0x5EED);
    let mut records: Vec<MediaRecord> = Vec::new();
    for batch in 0..6u64 {
        let new: Vec<MediaRecord> = (0..60)
            .map(|i| record(&mut dice, batch * 100 + i))
            .collect();
        records.extend(new.iter().cloned());
        catalog
            .apply_single(Write::InsertMedia(new))
            .expect("insert");
        churn(&catalog, &mut records, &mut dice);
    }
    let needles = [
        "a", "é", "_", "%", "ab", "b.", "abc", "cab", "img_", "abab", "été", "zz", "x.png",
    ];
    for needle in needles {
        for (folder, kind, sort, descending) in [
            (None, None, SortField::CreatedAt, true),
            (Some("/a"), None, SortField::Filename, false),
            (None, Some(Kind::Image), SortField::Size, true),
            (
                Some("/b"),
                Some(Kind::Document),
                SortField::CreatedAt,
                false,
            ),
        ] {
            let q = ListQuery {
                folder: folder.map(|f| FolderPath::parse(f).expect("folder")),
                kind,
                search: Some(needle.to_lowercase()),
                sort,
                descending,
                limit: 7,
                offset: 3,
                cursor: None,
                visibility: None,
                within: None,
            };
            let page = catalog.list(&q).expect("list");
            let (want, total) = scan(&records, &q);
            assert_eq!((ids(&page), page.total), (want, total), "{needle:?} {q:?}");
            walk_by_cursor(&catalog, &records, q);
        }
    }
}

/// Edits and deletes in one batch, some of items inserted by the batch before.
fn churn(catalog: &Catalog, records: &mut Vec<MediaRecord>, dice: &mut Dice) {
    let mut writes = Vec::new();
    for _ in 0..15 {
        let at = dice.roll(records.len() as u64) as usize;
        if dice.roll(2) == 0 {
            writes.push(Write::DeleteMedia {
                id: records.swap_remove(at).id,
            });
        } else {
            let alt = dice.text();
            records[at].alt = Some(alt.clone());
            let patch = MediaPatch {
                alt: Some(Some(alt)),
                ..MediaPatch::default()
            };
            writes.push(Write::UpdateMedia {
                id: records[at].id.clone(),
                patch,
                recrop: false,
            });
        }
    }
    for result in catalog.apply(writes).expect("batch") {
        result.expect("write");
    }
}

/// Following `next` cursors page by page visits every match once, in order.
fn walk_by_cursor(catalog: &Catalog, records: &[MediaRecord], mut q: ListQuery) {
    q.offset = 0;
    let (want, _) = scan(
        records,
        &ListQuery {
            limit: usize::MAX,
            ..q.clone()
        },
    );
    let mut got = Vec::new();
    loop {
        let page = catalog.list(&q).expect("list");
        got.extend(ids(&page));
        match page.next {
            Some(position) => {
                let raw = cursor::encode(q.sort, q.descending, &position);
                q.cursor = Some(cursor::decode(&raw, q.sort, q.descending).expect("cursor"));
            }
            None => break,
        }
    }
    assert_eq!(got, want, "cursor walk of {q:?}");
}

#[test]
fn a_remembered_answer_serves_the_pages_it_holds_and_no_others() {
    let positions: Vec<Vec<u8>> = (10u8..20).map(|p| vec![p]).collect();
    let answer = memo::Answer {
        generation: 1,
        total: 500,
        positions: positions.clone(),
        complete: false,
    };
    let q = |offset, limit, cursor: Option<u8>| ListQuery {
        offset,
        limit,
        cursor: cursor.map(|c| vec![c]),
        descending: false,
        ..ListQuery::default()
    };
    let page = answer.page(&q(2, 3, None)).expect("within");
    assert_eq!(
        (page.keys, page.total, page.more),
        (positions[2..5].to_vec(), 500, true)
    );
    let by_cursor = answer.page(&q(0, 4, Some(15))).expect("within");
    assert_eq!(by_cursor.keys, positions[6..10].to_vec());
    assert!(by_cursor.more, "matches beyond the held positions");
    assert!(
        answer.page(&q(8, 3, None)).is_none(),
        "runs past what it holds"
    );
    assert!(answer.page(&q(0, 1, Some(19))).is_none());
    let complete = memo::Answer {
        complete: true,
        total: 10,
        ..answer
    };
    let last = complete.page(&q(8, 3, None)).expect("all held");
    assert_eq!((last.keys.len(), last.more), (2, false));
    assert!(
        complete
            .page(&q(50, 3, None))
            .expect("past the end")
            .keys
            .is_empty()
    );
}

#[test]
fn a_commit_makes_remembered_answers_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(&dir.path().join("c.redb")).expect("open");
    let named = |i: u64, name: &str| MediaRecord {
        filename: name.into(),
        alt: None,
        ..MediaRecord::synthetic(i)
    };
    catalog
        .apply_single(Write::InsertMedia(vec![
            named(1, "beach.png"),
            named(2, "dog.png"),
        ]))
        .expect("insert");
    let q = ListQuery {
        search: Some("beach".into()),
        ..ListQuery::default()
    };
    assert_eq!(catalog.list(&q).expect("list").total, 1);
    assert_eq!(catalog.list(&q).expect("remembered").total, 1);
    catalog
        .apply_single(Write::InsertMedia(vec![named(3, "Beach-2.png")]))
        .expect("insert");
    let after = catalog.list(&q).expect("list");
    assert_eq!(
        (after.total, after.items[0].filename.as_str()),
        (2, "Beach-2.png")
    );
}

#[test]
fn recording_a_job_keeps_remembered_answers_and_an_edit_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(&dir.path().join("c.redb")).expect("open");
    let mut item = MediaRecord::synthetic(1);
    item.filename = "beach.png".into();
    item.processing = crate::model::Processing::initial(crate::model::MediaType::Png);
    let (id, source) = (item.id.clone(), item.storage_key.clone());
    catalog
        .apply_single(Write::InsertMedia(vec![item]))
        .expect("insert");
    let q = ListQuery {
        search: Some("beach".into()),
        ..ListQuery::default()
    };
    catalog.list(&q).expect("list");
    let generation = || {
        let txn = catalog.read_txn().expect("read");
        crate::catalog::list::search_generation(&txn).expect("generation")
    };
    let before = generation();
    let failed = crate::model::JobResult::Failed {
        reason: "test".into(),
        crop_version: 0,
    };
    catalog
        .apply_single(Write::FinishJob {
            id: id.clone(),
            result: failed,
            source,
        })
        .expect("finish");
    assert_eq!(
        generation(),
        before,
        "a job's result changes nothing search answers"
    );
    let patch = MediaPatch {
        alt: Some(Some("dunes".into())),
        ..MediaPatch::default()
    };
    catalog
        .apply_single(Write::UpdateMedia {
            id,
            patch,
            recrop: false,
        })
        .expect("edit");
    assert!(generation() > before);
    let dunes = ListQuery {
        search: Some("dunes".into()),
        ..ListQuery::default()
    };
    assert_eq!(catalog.list(&dunes).expect("list").total, 1);
}
