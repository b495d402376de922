//! The catalog conformance suite: the rules every catalog keeps, as plain tests against
//! the interface the rest of the program uses (`CatalogHandle`), not HTTP. Each rule is
//! one `async fn(&Fixture)`; `conformance!` runs every rule on every catalog, so a second
//! implementation passes the same list unchanged by adding its `Fixture` constructor.
//!
//! The rules: a delete queues every file the catalog knows for the item, whatever its
//! record says; a failed re-run for crops keeps the variants; search finds every
//! spelling (NFC/NFD, full case folding, final sigma, dotted I); one unreadable record
//! fails only its own write and can still be deleted; a search answer is one snapshot
//! under concurrent commits; queries past the bounds are refused; crop files get keys of
//! their own, so an evicted crop never takes a re-made one with it; private items are
//! listed, searched and counted apart from public ones (and together for a key holder);
//! a visibility move commits only over the files it copied; a folder's subtree (what a
//! key limited to it sees) is listed, searched and counted whole, and nothing beside it;
//! every committed change (and no failed one) puts its event in the outbox of each
//! webhook that wants it, in order, and deliveries settle, retry, give up and disable as
//! the sender says.

use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;

use super::pg::PgCatalog;
use super::{Backend, CacheCrop, Catalog, CatalogError, JobOutcome, Outcome, WebhookWrite};
use crate::actors::catalog::{CatalogHandle, CatalogMsg, JobStart};
use crate::model::{
    Attempt, CropRecord, CropSize, Event, FolderPath, JobResult, ListQuery, MediaPatch,
    MediaRecord, MediaType, Next, Processing, QueryBound, Queued, Settled, SortField, Status,
    Subject, VariantRecord, Visibility, WebhookRecord, cursor, fold,
};
use crate::storage::key::{
    crop_key, moved, moves, ondemand_crop_key, ondemand_crop_prefix, variant_key,
};

type Hook<T> = Box<dyn Fn(String) -> futures_util::future::BoxFuture<'static, T> + Send + Sync>;

/// One catalog under test, with its hooks.
struct Fixture {
    handle: CatalogHandle,
    actor: ActorRef<CatalogMsg>,
    /// Fault injection: make a record unreadable.
    corrupt: Hook<()>,
    /// Holds commits back until the returned guard drops (writes sent meanwhile are
    /// committed together).
    hold_commits: Hook<Box<dyn Send>>,
    /// What the catalog lives in, removed by `finish`.
    place: Place,
}

enum Place {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Database(Box<crate::catalog::pg::tests::Scratch>),
}

impl Fixture {
    async fn redb() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(Catalog::open(&dir.path().join("c.redb")).expect("open"));
        let (handle, actor) = CatalogHandle::spawn(Backend::Redb(catalog.clone()))
            .await
            .expect("spawn");
        let held = catalog.clone();
        Self {
            handle,
            actor,
            corrupt: Box::new(move |id| {
                catalog.corrupt_record(&id);
                Box::pin(async {})
            }),
            hold_commits: Box::new(move |_| {
                let guard: Box<dyn Send> = Box::new(held.hold_writes());
                Box::pin(async move { guard })
            }),
            place: Place::Dir(dir),
        }
    }

    /// A scratch database of its own on the test server (`PG_TEST_URL`).
    async fn postgres() -> Self {
        let db = crate::catalog::pg::tests::Scratch::new().await;
        let options = crate::catalog::pg::tests::options(db.url.clone());
        let catalog = PgCatalog::open(options, Duration::from_secs(60))
            .await
            .expect("open");
        let catalog = Arc::new(catalog);
        let (handle, actor) = CatalogHandle::spawn(Backend::Postgres(catalog.clone()))
            .await
            .expect("spawn");
        let held = catalog.clone();
        Self {
            handle,
            actor,
            corrupt: Box::new(move |id| {
                let catalog = catalog.clone();
                Box::pin(async move { catalog.corrupt_record(&id).await })
            }),
            hold_commits: Box::new(move |_| {
                let held = held.clone();
                Box::pin(async move {
                    let guard: Box<dyn Send> = Box::new(held.hold_writes().await);
                    guard
                })
            }),
            place: Place::Database(Box::new(db)),
        }
    }

    async fn finish(self) {
        self.actor.stop(None);
        if let Place::Database(db) = self.place {
            (*db).drop().await;
        }
    }
}

/// Every rule, on every catalog.
macro_rules! conformance {
    ($($rule:ident),* $(,)?) => {
        mod on_redb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    let f = super::Fixture::redb().await;
                    super::$rule(&f).await;
                    f.finish().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $rule() {
                    let f = super::Fixture::postgres().await;
                    super::$rule(&f).await;
                    f.finish().await;
                }
            )*
        }
    };
}

conformance!(
    a_delete_queues_every_file_the_catalog_knows,
    a_poster_and_its_variants_are_the_items_files,
    a_failed_rerun_for_crops_keeps_the_variants,
    a_failed_rerun_of_an_image_without_variants_keeps_it_ready,
    a_stale_failed_run_leaves_the_newer_job,
    search_finds_every_spelling,
    filename_order_follows_the_fold,
    one_unreadable_record_fails_only_its_own_write_and_can_be_deleted,
    a_search_answer_is_one_snapshot_under_concurrent_commits,
    queries_past_the_bounds_are_refused,
    a_remade_crop_never_shares_a_key_with_an_evicted_one,
    a_crop_larger_than_the_cache_is_not_kept,
    a_new_crop_never_evicts_itself,
    private_items_are_apart_in_listings_searches_and_counts,
    a_visibility_move_takes_the_new_keys_and_queues_the_old,
    a_subtree_is_listed_searched_and_counted_whole,
    a_confined_handle_changes_only_items_in_its_folder,
    every_committed_change_is_in_the_outbox_and_nothing_else,
    deliveries_settle_retry_give_up_and_disable,
    an_outbox_is_trimmed_from_its_newest_event,
);

// ---- records ---------------------------------------------------------------------------

/// An image item numbered `n` named `filename`, waiting for its job.
fn image(n: usize, filename: &str) -> MediaRecord {
    let token = format!("{n:0>16}");
    MediaRecord {
        id: format!("media_{token}"),
        filename: filename.into(),
        storage_key: format!("2026/01/{token}.png"),
        created_us: n as u64 + 1,
        processing: Processing::initial(MediaType::Png),
        ..MediaRecord::sample('x', filename, 1, 10)
    }
}

/// A document item (no job) numbered `n`.
fn document(n: usize, filename: &str) -> MediaRecord {
    MediaRecord {
        processing: None,
        media_type: MediaType::Pdf,
        ..image(n, filename)
    }
}

/// A job result with one variant and one preset crop of crop version `version`.
fn made(r: &MediaRecord, version: u32) -> JobResult {
    let card = CropSize {
        width: 120,
        height: 63,
    };
    JobResult::Ready {
        poster: None,
        variants: vec![VariantRecord {
            width: 150,
            height: 100,
            size: 5,
            storage_key: variant_key(&r.storage_key, 150),
        }],
        crops: vec![CropRecord {
            name: "card".into(),
            width: 120,
            height: 63,
            size: 7,
            storage_key: crop_key(&r.storage_key, card, version),
        }],
        crop_version: version,
        thumbhash: Some("hash".into()),
        dominant_color: Some("#102030".into()),
    }
}

/// Inserts `r` and runs its job to `result`.
async fn processed(f: &Fixture, r: &MediaRecord, result: JobResult) -> MediaRecord {
    let c = &f.handle;
    c.insert_media(vec![r.clone()]).await.expect("insert");
    assert_eq!(
        c.start_job(r.id.clone(), 3).await.expect("start"),
        JobStart::Run
    );
    c.finish_job(r.id.clone(), result, r.storage_key.clone())
        .await
        .expect("finish");
    c.get(&r.id).await.expect("get").expect("item")
}

/// Image 1, processed, with a 40x30 crop made on demand and kept: the item, and the
/// crop's key.
async fn processed_with_a_crop(f: &Fixture) -> (MediaRecord, String) {
    let a = processed(f, &image(1, "a.png"), made(&image(1, "a.png"), 0)).await;
    let size = CropSize {
        width: 40,
        height: 30,
    };
    let on_demand = ondemand_crop_key(&a.storage_key, size, a.crop_version);
    let cached = f.handle.cache_crop(crop(&a, &on_demand, 10, 1 << 20)).await;
    assert!(cached.expect("cache").kept);
    (a, on_demand)
}

fn crop(r: &MediaRecord, key: &str, size: u64, budget: u64) -> CacheCrop {
    CacheCrop {
        id: r.id.clone(),
        key: key.into(),
        size,
        source: r.storage_key.clone(),
        version: r.crop_version,
        now_us: crate::model::now_us(),
        budget,
    }
}

fn search(term: &str) -> ListQuery {
    ListQuery {
        search: Some(fold(term)),
        limit: 100,
        ..ListQuery::default()
    }
}

async fn found(f: &Fixture, term: &str) -> Vec<String> {
    let page = f.handle.list(search(term)).await.expect("search");
    let mut names: Vec<String> = page.items.into_iter().map(|r| r.filename).collect();
    names.sort();
    names
}

fn sorted(mut keys: Vec<String>) -> Vec<String> {
    keys.sort();
    keys
}

// ---- rules -------------------------------------------------------------------------------

async fn a_delete_queues_every_file_the_catalog_knows(f: &Fixture) {
    let c = &f.handle;
    // A crop made on demand, then a focal move with presets (the preset crop goes).
    let (a, on_demand) = processed_with_a_crop(f).await;
    let patch = MediaPatch {
        focal_x: Some(10.0),
        ..MediaPatch::default()
    };
    let moved = c
        .update_media(a.id.clone(), patch, true)
        .await
        .expect("move");
    assert_eq!(
        sorted(moved.queued),
        sorted([a.crop_keys(), vec![on_demand.clone()]].concat()),
        "a focal move queues the preset and on-demand crops made for the old point"
    );
    let mut known = a.storage_keys();
    known.retain(|k| !a.crop_keys().contains(k));
    let deleted = c.delete_media(a.id.clone()).await.expect("delete");
    assert_eq!(sorted(deleted.clone()), sorted(known.clone()));
    let pending = c.pending_deletes().await.expect("pending");
    for key in &known {
        assert!(pending.contains(key), "{key} is on the delete queue");
        assert_eq!(
            c.owner_of_file(key).await.expect("owner"),
            None,
            "{key} has no owner"
        );
    }
    assert_eq!(c.get(&a.id).await.expect("get"), None);
    assert!(matches!(
        c.delete_media(a.id.clone()).await,
        Err(CatalogError::NotFound(_))
    ));
}

/// A video's job records its poster (a file of the item's, like its variants): claimed by
/// the item, kept by a crops-only re-run, queued for deletion with it. A video whose
/// poster cannot be made is ready without one, and without placeholders.
async fn a_poster_and_its_variants_are_the_items_files(f: &Fixture) {
    let c = &f.handle;
    let video = MediaRecord {
        media_type: MediaType::Mp4,
        processing: Processing::initial(MediaType::Mp4),
        storage_key: format!("2026/01/{:0>16}.mp4", 7),
        ..image(7, "clip.mp4")
    };
    assert!(video.is_processing(), "a video waits for its poster");
    let poster = VariantRecord {
        width: 640,
        height: 360,
        size: 9,
        storage_key: crate::storage::key::poster_key(&video.storage_key),
    };
    let mut result = made(&video, 0);
    if let JobResult::Ready { poster: p, .. } = &mut result {
        *p = Some(poster.clone());
    }
    let done = processed(f, &video, result).await;
    let p = done.processing.as_ref().expect("processing");
    assert_eq!(
        (p.status, p.poster.as_ref()),
        (Status::Ready, Some(&poster))
    );
    assert_eq!(
        done.picture(),
        Some((poster.storage_key.as_str(), MediaType::Webp))
    );
    for key in done.storage_keys() {
        let owner = c.owner_of_file(&key).await.expect("owner");
        assert_eq!(owner.as_deref(), Some(done.id.as_str()), "{key}");
    }
    // A focal move re-runs it for crops alone: the poster stays.
    let moved = c
        .update_media(
            done.id.clone(),
            MediaPatch {
                focal_x: Some(20.0),
                ..MediaPatch::default()
            },
            true,
        )
        .await
        .expect("move");
    assert!(moved.record.is_processing());
    assert_eq!(
        moved.record.processing.as_ref().expect("p").poster,
        Some(poster.clone())
    );
    let deleted = c.delete_media(done.id.clone()).await.expect("delete");
    assert!(deleted.contains(&poster.storage_key), "{deleted:?}");

    let pdf = MediaRecord {
        media_type: MediaType::Pdf,
        processing: Processing::initial(MediaType::Pdf),
        storage_key: format!("2026/01/{:0>16}.pdf", 8),
        ..image(8, "locked.pdf")
    };
    let none = JobResult::Ready {
        variants: Vec::new(),
        poster: None,
        crops: Vec::new(),
        crop_version: 0,
        thumbhash: None,
        dominant_color: None,
    };
    let locked = processed(f, &pdf, none).await;
    let p = locked.processing.as_ref().expect("processing");
    assert_eq!(
        (p.status, &p.poster, &p.thumbhash),
        (Status::Ready, &None, &None)
    );
    assert_eq!(locked.picture(), None, "no crops of it");
    assert_eq!(locked.storage_keys(), vec![pdf.storage_key.clone()]);
}

/// Moves item `a`'s focal point by `patch` (with crop presets), then fails the crops-only
/// re-run that follows because its original is unreadable: the item as it is after.
async fn failed_crop_rerun(f: &Fixture, a: &MediaRecord, patch: MediaPatch) -> MediaRecord {
    let c = &f.handle;
    let moved = c
        .update_media(a.id.clone(), patch, true)
        .await
        .expect("move");
    assert!(moved.record.is_processing());
    assert_eq!(
        c.start_job(a.id.clone(), 3).await.expect("start"),
        JobStart::Run
    );
    let failed = JobResult::Failed {
        reason: "the original is unreadable".into(),
        crop_version: moved.record.crop_version,
    };
    c.finish_job(a.id.clone(), failed, a.storage_key.clone())
        .await
        .expect("finish");
    c.get(&a.id).await.expect("get").expect("item")
}

async fn a_failed_rerun_for_crops_keeps_the_variants(f: &Fixture) {
    let c = &f.handle;
    let a = processed(f, &image(1, "a.png"), made(&image(1, "a.png"), 0)).await;
    let variants = a.processing.as_ref().expect("processing").variants.clone();
    let patch = MediaPatch {
        focal_y: Some(80.0),
        ..MediaPatch::default()
    };
    let after = failed_crop_rerun(f, &a, patch).await;
    let p = after.processing.as_ref().expect("processing");
    assert_eq!(p.status, Status::Ready, "the item stays usable");
    assert_eq!(p.variants, variants, "its variants stay");
    assert!(p.crops.is_empty());
    assert!(p.error.as_deref().is_some_and(|e| e.contains("unreadable")));
    for v in &variants {
        let owner = c.owner_of_file(&v.storage_key).await.expect("owner");
        assert_eq!(
            owner.as_ref(),
            Some(&a.id),
            "{} is still the item's",
            v.storage_key
        );
    }
    // And a delete takes them.
    let deleted = c.delete_media(a.id.clone()).await.expect("delete");
    for v in &variants {
        assert!(deleted.contains(&v.storage_key));
    }
    // An item whose first run fails has no variants: failed, the original queued on delete.
    let b = processed(
        f,
        &image(2, "b.png"),
        JobResult::Failed {
            reason: "x".into(),
            crop_version: 0,
        },
    )
    .await;
    assert_eq!(
        b.processing.as_ref().map(|p| p.status),
        Some(Status::Failed)
    );
    let deleted = c.delete_media(b.id.clone()).await.expect("delete");
    assert_eq!(deleted, std::slice::from_ref(&b.storage_key));
}

async fn a_failed_rerun_of_an_image_without_variants_keeps_it_ready(f: &Fixture) {
    // An icon of at most 150 px: no variants, but its placeholders and a preset crop.
    let mut small = made(&image(1, "icon.png"), 0);
    if let JobResult::Ready { variants, .. } = &mut small {
        variants.clear();
    }
    let a = processed(f, &image(1, "icon.png"), small).await;
    let patch = MediaPatch {
        focal_x: Some(5.0),
        ..MediaPatch::default()
    };
    let after = failed_crop_rerun(f, &a, patch).await;
    let p = after.processing.as_ref().expect("processing");
    assert_eq!(p.status, Status::Ready, "still usable");
    assert_eq!(
        p.thumbhash.as_deref(),
        Some("hash"),
        "its placeholders stay"
    );
}

async fn a_stale_failed_run_leaves_the_newer_job(f: &Fixture) {
    let c = &f.handle;
    let a = processed(f, &image(1, "a.png"), made(&image(1, "a.png"), 0)).await;
    let move_to = |x| MediaPatch {
        focal_x: Some(x),
        ..MediaPatch::default()
    };
    let first = c
        .update_media(a.id.clone(), move_to(10.0), true)
        .await
        .expect("move");
    assert_eq!(
        c.start_job(a.id.clone(), 3).await.expect("start"),
        JobStart::Run
    );
    // Moved again while the run for the first move is on its way to failing.
    let second = c
        .update_media(a.id.clone(), move_to(90.0), true)
        .await
        .expect("move");
    assert!(second.record.crop_version > first.record.crop_version);
    let failed = JobResult::Failed {
        reason: "interrupted".into(),
        crop_version: first.record.crop_version,
    };
    let outcome = c
        .finish_job(a.id.clone(), failed, a.storage_key.clone())
        .await
        .expect("finish");
    assert_eq!(outcome, JobOutcome::Stale);
    assert_eq!(
        c.unfinished_jobs().await.expect("jobs"),
        std::slice::from_ref(&a.id)
    );
    assert!(
        c.get(&a.id)
            .await
            .expect("get")
            .expect("item")
            .is_processing()
    );
    // The run for the second move records its crops.
    assert_eq!(
        c.start_job(a.id.clone(), 3).await.expect("start"),
        JobStart::Run
    );
    let done = c
        .finish_job(
            a.id.clone(),
            made(&a, second.record.crop_version),
            a.storage_key.clone(),
        )
        .await
        .expect("finish");
    let JobOutcome::Recorded { queued } = done else {
        panic!("not recorded: {done:?}");
    };
    let after = c.get(&a.id).await.expect("get").expect("item");
    assert_eq!(after.crop_keys().len(), 1);
    // The first move's crops were never recorded (its run failed; had it written them
    // and been killed, nothing would name them): their keys are queued with this commit.
    let crop = &after.processing.as_ref().expect("processing").crops[0];
    let size = crate::model::CropSize {
        width: crop.width,
        height: crop.height,
    };
    let unrecorded = crate::storage::key::crop_key(&a.storage_key, size, first.record.crop_version);
    let pending = c.pending_deletes().await.expect("pending");
    for queue in [&pending, &queued] {
        assert!(queue.contains(&unrecorded), "{unrecorded} not in {queue:?}");
        assert!(
            !queue.contains(&after.crop_keys()[0]),
            "the recorded crop stays"
        );
    }
    let mut once = queued.clone();
    once.sort_unstable();
    once.dedup();
    assert_eq!(once.len(), queued.len(), "each key once: {queued:?}");
}

async fn search_finds_every_spelling(f: &Fixture) {
    let c = &f.handle;
    let names = [
        "cafe\u{301}-terrasse.jpg", // NFD, as a Mac names it
        "ΟΔΥΣΣΕΑΣ.jpg",
        "Straße.jpg",
        "İstanbul.jpg",
        "plain.jpg",
    ];
    let records: Vec<MediaRecord> = (0..names.len())
        .map(|i| document(i + 1, names[i]))
        .collect();
    c.insert_media(records).await.expect("insert");
    let mut greeting = document(10, "card.pdf");
    greeting.alt = Some("Grüße aus KÖLN".into());
    c.insert_media(vec![greeting]).await.expect("insert");
    for (term, expected) in [
        ("café", names[0]),         // NFC finds NFD
        ("CAFÉ-TERR", names[0]),    // and in capitals
        ("cafe\u{301}", names[0]),  // NFD finds NFD
        ("ΟΔΥΣΣΕΑΣ", names[1]),     // itself
        ("οδυσσεας", names[1]),     // lower case, without final sigma
        ("οδυσσεας.jpg", names[1]), // σ then ς, folded the same
        ("strasse", names[2]),      // ß folds to ss
        ("STRASSE", names[2]),
        ("straße", names[2]),
        ("istanbul", names[3]), // İ folds to i
        ("İSTANBUL", names[3]),
    ] {
        assert_eq!(found(f, term).await, [expected], "search {term:?}");
    }
    assert_eq!(found(f, "grüsse aus köln").await, ["card.pdf"]);
    assert_eq!(found(f, "GRUSSE").await, Vec::<String>::new(), "ü is not u");
    // The record keeps the name as it was given.
    let page = c.list(search("café")).await.expect("search");
    assert_eq!(page.items[0].filename, names[0]);
}

async fn filename_order_follows_the_fold(f: &Fixture) {
    let c = &f.handle;
    // Folded, not lower-cased: Straße sorts as strasse (before STRASSE-2), not after it.
    let names = [
        "b.pdf",
        "A.pdf",
        "C.pdf",
        "a2.pdf",
        "STRASSE-2.pdf",
        "Straße-1.pdf",
    ];
    let records = (0..names.len())
        .map(|i| document(i + 1, names[i]))
        .collect();
    c.insert_media(records).await.expect("insert");
    let page = c
        .list(ListQuery {
            sort: SortField::Filename,
            descending: false,
            ..ListQuery::default()
        })
        .await
        .expect("list");
    let order: Vec<&str> = page.items.iter().map(|r| r.filename.as_str()).collect();
    assert_eq!(
        order,
        [
            "A.pdf",
            "a2.pdf",
            "b.pdf",
            "C.pdf",
            "Straße-1.pdf",
            "STRASSE-2.pdf"
        ]
    );
}

async fn one_unreadable_record_fails_only_its_own_write_and_can_be_deleted(f: &Fixture) {
    let c = &f.handle;
    let (bad, good) = (image(1, "bad.png"), document(2, "good.pdf"));
    c.insert_media(vec![bad.clone(), good.clone()])
        .await
        .expect("insert");
    (f.corrupt)(bad.id.clone()).await;
    let alt = |text: &str| MediaPatch {
        alt: Some(Some(text.into())),
        ..MediaPatch::default()
    };
    // Sent while a commit is held back, so the three wait and share the next commit.
    let held = (f.hold_commits)(String::new()).await;
    let first = tokio::spawn({
        let c = c.clone();
        async move { c.insert_media(vec![document(4, "first.pdf")]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await; // the first commit is waiting
    let writes = tokio::spawn({
        let (c, bad, good) = (c.clone(), bad.id.clone(), good.id.clone());
        async move {
            tokio::join!(
                c.update_media(bad, alt("x"), false),
                c.update_media(good, alt("kept"), false),
                c.insert_media(vec![document(3, "new.pdf")]),
            )
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await; // all three are queued
    drop(held);
    first.await.expect("task").expect("first");
    let (on_bad, on_good, new) = writes.await.expect("task");
    assert!(
        matches!(on_bad, Err(CatalogError::Corrupt(_))),
        "{on_bad:?}"
    );
    assert_eq!(on_good.expect("good").record.alt.as_deref(), Some("kept"));
    new.expect("insert beside a bad record");
    let got = c.get(&good.id).await.expect("get").expect("item");
    assert_eq!(got.alt.as_deref(), Some("kept"));
    // The bad item can be deleted: its file and listing rows go.
    let deleted = c.delete_media(bad.id.clone()).await.expect("delete");
    assert_eq!(deleted, std::slice::from_ref(&bad.storage_key));
    let all = c.list(ListQuery::default()).await.expect("list");
    assert_eq!(all.total, 3);
    assert!(all.items.iter().all(|r| r.id != bad.id));
    assert_eq!(found(f, "bad").await, Vec::<String>::new());
}

async fn a_search_answer_is_one_snapshot_under_concurrent_commits(f: &Fixture) {
    const ROUNDS: usize = 300;
    let c = f.handle.clone();
    let seed: Vec<MediaRecord> = (0..40)
        .map(|i| document(i, &format!("needle-{i}.pdf")))
        .collect();
    c.insert_media(seed).await.expect("seed");
    let writer = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let n = 1000 + i;
                c.insert_media(vec![document(n, &format!("needle-{n}.pdf"))])
                    .await
                    .expect("insert");
                let gone = if i < 40 { i } else { n - 40 };
                c.delete_media(document(gone, "").id)
                    .await
                    .or_else(|e| match e {
                        CatalogError::NotFound(_) => Ok(Vec::new()),
                        e => Err(e),
                    })
                    .expect("delete");
            }
        })
    };
    let mut searches = 0;
    while !writer.is_finished() {
        for offset in [0, 10] {
            let page = c
                .list(ListQuery {
                    offset,
                    limit: 20,
                    ..search("NEEDLE")
                })
                .await
                .expect("a search under writes answers");
            let expect = (page.total as usize).saturating_sub(offset).min(20);
            assert_eq!(page.items.len(), expect, "a page agrees with its total");
            assert!(page.items.iter().all(|r| r.filename.starts_with("needle-")));
            searches += 1;
        }
        tokio::task::yield_now().await;
    }
    writer.await.expect("writer");
    assert!(searches > 0);
    let last = c.list(search("needle")).await.expect("search");
    assert_eq!(last.total, 40, "inserts and deletes balance");
}

async fn queries_past_the_bounds_are_refused(f: &Fixture) {
    let c = &f.handle;
    c.insert_media(vec![document(1, "a.pdf")])
        .await
        .expect("insert");
    let at = |offset| ListQuery {
        offset,
        ..ListQuery::default()
    };
    assert_eq!(
        c.list(at(ListQuery::MAX_OFFSET)).await.expect("at").total,
        1
    );
    assert!(matches!(
        c.list(at(ListQuery::MAX_OFFSET + 1)).await,
        Err(CatalogError::Query(QueryBound::Offset))
    ));
    let long = "a".repeat(ListQuery::MAX_SEARCH_CHARS);
    assert_eq!(c.list(search(&long)).await.expect("at").total, 0);
    assert!(matches!(
        c.list(search(&format!("{long}a"))).await,
        Err(CatalogError::Query(QueryBound::Search))
    ));
    let page = ListQuery {
        limit: ListQuery::MAX_LIMIT + 1,
        ..ListQuery::default()
    };
    assert!(matches!(
        c.list(page).await,
        Err(CatalogError::Query(QueryBound::Limit))
    ));
    let deep_search = ListQuery {
        offset: ListQuery::MAX_OFFSET + 1,
        ..search("a")
    };
    assert!(matches!(
        c.list(deep_search).await,
        Err(CatalogError::Query(QueryBound::Offset))
    ));
}

async fn a_remade_crop_never_shares_a_key_with_an_evicted_one(f: &Fixture) {
    let c = &f.handle;
    let a = processed(f, &image(1, "a.png"), made(&image(1, "a.png"), 0)).await;
    let (small, large) = (
        CropSize {
            width: 10,
            height: 10,
        },
        CropSize {
            width: 20,
            height: 20,
        },
    );
    let small_prefix = ondemand_crop_prefix(&a.storage_key, small, a.crop_version);
    let first = ondemand_crop_key(&a.storage_key, small, a.crop_version);
    assert!(
        c.cache_crop(crop(&a, &first, 100, 150))
            .await
            .expect("1")
            .kept
    );
    // Another crop pushes the first out: its file is queued.
    let other = ondemand_crop_key(&a.storage_key, large, a.crop_version);
    let cached = c.cache_crop(crop(&a, &other, 100, 150)).await.expect("2");
    assert_eq!(cached.evicted, std::slice::from_ref(&first));
    assert_eq!(
        c.cached_crop(&a.id, &small_prefix).await.expect("read"),
        None
    );
    // Made again: a key of its own, which the queued delete of the first cannot touch.
    let again = ondemand_crop_key(&a.storage_key, small, a.crop_version);
    assert_ne!(again, first);
    assert!(
        c.cache_crop(crop(&a, &again, 100, 150))
            .await
            .expect("3")
            .kept
    );
    let hit = c.cached_crop(&a.id, &small_prefix).await.expect("read");
    assert_eq!(hit.map(|(key, _)| key), Some(again.clone()));
    let pending = c.pending_deletes().await.expect("pending");
    assert!(pending.contains(&first) && pending.contains(&other));
    assert!(!pending.contains(&again));
    assert_eq!(
        c.owner_of_file(&again).await.expect("owner"),
        Some(a.id.clone())
    );
    // A key recorded again while queued (a caller reusing one) leaves the queue.
    assert!(
        c.cache_crop(crop(&a, &first, 10, 150))
            .await
            .expect("4")
            .kept
    );
    let pending = c.pending_deletes().await.expect("pending");
    assert!(!pending.contains(&first), "a claimed file is never deleted");
}

async fn a_crop_larger_than_the_cache_is_not_kept(f: &Fixture) {
    let c = &f.handle;
    let a = processed(f, &image(1, "a.png"), made(&image(1, "a.png"), 0)).await;
    let size = |w| CropSize {
        width: w,
        height: w,
    };
    let fits = ondemand_crop_key(&a.storage_key, size(10), a.crop_version);
    assert!(
        c.cache_crop(crop(&a, &fits, 100, 150))
            .await
            .expect("fits")
            .kept
    );
    let huge = ondemand_crop_key(&a.storage_key, size(900), a.crop_version);
    let cached = c.cache_crop(crop(&a, &huge, 151, 150)).await.expect("huge");
    assert!(!cached.kept, "larger than the whole cache");
    assert!(cached.evicted.is_empty(), "and it evicts nothing for it");
    let prefix = |w| ondemand_crop_prefix(&a.storage_key, size(w), a.crop_version);
    assert_eq!(
        c.cached_crop(&a.id, &prefix(900)).await.expect("read"),
        None
    );
    assert!(
        c.cached_crop(&a.id, &prefix(10))
            .await
            .expect("read")
            .is_some()
    );
    assert!(c.pending_deletes().await.expect("pending").contains(&huge));
}

async fn a_new_crop_never_evicts_itself(f: &Fixture) {
    let c = &f.handle;
    let a = processed(f, &image(1, "a.png"), made(&image(1, "a.png"), 0)).await;
    let key = |w| {
        let size = CropSize {
            width: w,
            height: w,
        };
        ondemand_crop_key(&a.storage_key, size, a.crop_version)
    };
    let (older, newer) = (key(10), key(20));
    let now = crate::model::now_us();
    let at = |key: &str, now_us| CacheCrop {
        now_us,
        ..crop(&a, key, 100, 250)
    };
    assert!(c.cache_crop(at(&older, now)).await.expect("1").kept);
    assert!(c.cache_crop(at(&newer, now + 10)).await.expect("2").kept);
    // A crop whose last use is older than the others' (made before another was touched,
    // or a clock that stepped back): the others make room, not it.
    let made_before = key(30);
    let cached = c.cache_crop(at(&made_before, now - 10)).await.expect("3");
    assert!(cached.kept);
    assert_eq!(cached.evicted, std::slice::from_ref(&older));
    let prefix = ondemand_crop_prefix(
        &a.storage_key,
        CropSize {
            width: 30,
            height: 30,
        },
        a.crop_version,
    );
    let hit = c.cached_crop(&a.id, &prefix).await.expect("read");
    assert_eq!(hit.map(|(k, _)| k), Some(made_before.clone()));
    assert!(
        !c.pending_deletes()
            .await
            .expect("pending")
            .contains(&made_before)
    );
}

/// Item `n` of `visibility` in `folder`, a document (no job) created at `n`.
fn placed(n: usize, folder: &str, visibility: Visibility) -> MediaRecord {
    let r = document(n, &format!("doc-{n}.pdf"));
    let to = moved(&r.storage_key, visibility);
    MediaRecord {
        folder: folder.into(),
        storage_key: to(&r.storage_key),
        visibility,
        ..r
    }
}

/// The ids and the total of a search for every `placed` item (`doc-`) within `q`'s filters.
async fn every_doc(f: &Fixture, q: ListQuery) -> (Vec<String>, u64) {
    let q = ListQuery {
        search: Some("doc-".into()),
        limit: 100,
        ..q
    };
    let found = f.handle.list(q).await.expect("search");
    let ids = found.items.iter().map(|r| r.id.clone()).collect();
    (ids, found.total)
}

/// Every page of `q` by cursor, newest first: the ids, and the total of the first page.
async fn every_page(f: &Fixture, q: ListQuery) -> (Vec<String>, u64) {
    let (mut ids, mut at, mut total) = (Vec::new(), None, None);
    loop {
        let page = f
            .handle
            .list(ListQuery {
                cursor: at.take(),
                limit: 2,
                ..q.clone()
            })
            .await
            .expect("list");
        total.get_or_insert(page.total);
        ids.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) => {
                // As a client sends it back.
                let raw = cursor::encode(q.sort, q.descending, &next);
                at = Some(cursor::decode(&raw, q.sort, q.descending).expect("cursor"));
            }
            None => return (ids, total.unwrap_or(0)),
        }
    }
}

async fn private_items_are_apart_in_listings_searches_and_counts(f: &Fixture) {
    let c = &f.handle;
    let (public, private) = (Visibility::Public, Visibility::Private);
    // Interleaved in time, so a listing of both merges the two.
    let items: Vec<MediaRecord> = (1..=7)
        .map(|n| {
            let v = if n % 2 == 0 { private } else { public };
            placed(n, if n <= 4 { "/a" } else { "/b" }, v)
        })
        .collect();
    c.insert_media(items.clone()).await.expect("insert");
    c.insert_media(vec![placed(8, "/secret", private)])
        .await
        .expect("insert");
    let newest_first = |v: Option<Visibility>, folder: Option<&str>| -> Vec<String> {
        let mut all: Vec<&MediaRecord> = items.iter().collect();
        let eighth = placed(8, "/secret", private);
        all.push(&eighth);
        let mut ids: Vec<(u64, String)> = all
            .iter()
            .filter(|r| v.is_none_or(|v| r.visibility == v))
            .filter(|r| folder.is_none_or(|f| r.folder == f))
            .map(|r| (r.created_us, r.id.clone()))
            .collect();
        ids.sort();
        ids.into_iter().rev().map(|(_, id)| id).collect()
    };
    for v in [None, Some(public), Some(private)] {
        for folder in [None, Some("/a"), Some("/b")] {
            let q = ListQuery {
                visibility: v,
                folder: folder.and_then(FolderPath::parse),
                ..ListQuery::default()
            };
            let want = newest_first(v, folder);
            let (ids, total) = every_page(f, q.clone()).await;
            assert_eq!(ids, want, "{v:?} {folder:?} by cursor");
            assert_eq!(total, want.len() as u64, "{v:?} {folder:?} total");
            // By offset too (the merge walked past `offset` entries).
            let page = c
                .list(ListQuery {
                    offset: 1,
                    limit: 2,
                    ..q.clone()
                })
                .await
                .expect("offset");
            let got: Vec<String> = page.items.iter().map(|r| r.id.clone()).collect();
            let skipped: Vec<String> = want.iter().skip(1).take(2).cloned().collect();
            assert_eq!(got, skipped, "{v:?} {folder:?} at offset 1");
            // Search filters the same way.
            let found = every_doc(f, q).await;
            assert_eq!(
                found,
                (want.clone(), want.len() as u64),
                "{v:?} {folder:?} search"
            );
        }
    }
    let folders = c.folders().await.expect("folders");
    assert!(folders.contains(&"/secret".to_owned()), "{folders:?}");
    // Deleting a private item and making a public one private keep every count exact.
    c.delete_media(items[1].id.clone()).await.expect("delete");
    let counted = |v| {
        let q = ListQuery {
            visibility: v,
            ..ListQuery::default()
        };
        async move { c.list(q).await.expect("list").total }
    };
    assert_eq!(
        (
            counted(None).await,
            counted(Some(public)).await,
            counted(Some(private)).await
        ),
        (7, 4, 3)
    );
}

async fn a_visibility_move_takes_the_new_keys_and_queues_the_old(f: &Fixture) {
    let c = &f.handle;
    let (a, on_demand) = processed_with_a_crop(f).await;
    let pairs = moves(&a, Visibility::Private);
    // Files it does not have (one missing) are not a move of this item.
    let short = pairs[1..].to_vec();
    assert!(matches!(
        c.move_files(a.id.clone(), Visibility::Private, short).await,
        Err(CatalogError::ItemChanged)
    ));
    let changed = c
        .move_files(a.id.clone(), Visibility::Private, pairs.clone())
        .await
        .expect("move");
    let r = changed.record;
    assert_eq!(r.visibility, Visibility::Private);
    assert_eq!(r.storage_key, pairs[0].1);
    assert_eq!(
        sorted(r.storage_keys()),
        sorted(pairs.iter().map(|(_, n)| n.clone()).collect())
    );
    assert_eq!(c.get(&a.id).await.expect("get"), Some(r.clone()));
    let pending = c.pending_deletes().await.expect("pending");
    for (old, new) in &pairs {
        assert!(pending.contains(old), "{old} is queued");
        assert_eq!(c.owner_of_file(old).await.expect("owner"), None);
        assert_eq!(
            c.owner_of_file(new).await.expect("owner"),
            Some(a.id.clone())
        );
    }
    assert!(pending.contains(&on_demand), "the on-demand crop goes");
    // The same move again: the item no longer has those files.
    assert!(matches!(
        c.move_files(a.id.clone(), Visibility::Public, pairs).await,
        Err(CatalogError::ItemChanged)
    ));
    // A replace staged for the old place is refused; one for the new place is taken.
    let public_file = MediaRecord {
        id: a.id.clone(),
        ..image(2, "b.png")
    };
    assert!(matches!(
        c.replace_file(public_file).await,
        Err(CatalogError::ItemChanged)
    ));
    let private_file = MediaRecord {
        id: a.id.clone(),
        visibility: Visibility::Private,
        storage_key: moved(&image(2, "b.png").storage_key, Visibility::Private)(
            &image(2, "b.png").storage_key,
        ),
        ..image(2, "b.png")
    };
    let replaced = c.replace_file(private_file).await.expect("replace");
    assert!(replaced.record.is_processing());
    // While its variants are being made it does not move.
    let pairs = moves(&replaced.record, Visibility::Public);
    assert!(matches!(
        c.move_files(a.id.clone(), Visibility::Public, pairs).await,
        Err(CatalogError::StillProcessing)
    ));
    let q = ListQuery {
        visibility: Some(Visibility::Public),
        ..ListQuery::default()
    };
    assert_eq!(c.list(q).await.expect("list").total, 0);
}

async fn a_subtree_is_listed_searched_and_counted_whole(f: &Fixture) {
    let c = &f.handle;
    let folders = ["/c", "/c/a", "/c/a/b", "/c2", "/c-d", "/other", "/"];
    let items: Vec<MediaRecord> = (1..=21)
        .map(|n| {
            let v = if n % 3 == 0 {
                Visibility::Private
            } else {
                Visibility::Public
            };
            let mut r = placed(n, folders[n % folders.len()], v);
            if n % 4 == 0 {
                r.processing = Processing::initial(MediaType::Png);
                r.media_type = MediaType::Png;
            }
            r
        })
        .collect();
    c.insert_media(items.clone()).await.expect("insert");
    let root = FolderPath::parse("/c").expect("root");
    for kind in [None, Some(MediaType::Png.kind())] {
        for v in [None, Some(Visibility::Public), Some(Visibility::Private)] {
            let mut want: Vec<(u64, String)> = items
                .iter()
                .filter(|r| root.holds(&r.folder))
                .filter(|r| kind.is_none_or(|k| r.kind() == k))
                .filter(|r| v.is_none_or(|v| r.visibility == v))
                .map(|r| (r.created_us, r.id.clone()))
                .collect();
            want.sort();
            let want: Vec<String> = want.into_iter().rev().map(|(_, id)| id).collect();
            let q = ListQuery {
                within: Some(root.clone()),
                kind,
                visibility: v,
                ..ListQuery::default()
            };
            let (ids, total) = every_page(f, q.clone()).await;
            assert_eq!(
                (ids, total),
                (want.clone(), want.len() as u64),
                "{kind:?} {v:?}"
            );
            let found = every_doc(f, q).await;
            assert_eq!(
                found,
                (want.clone(), want.len() as u64),
                "search {kind:?} {v:?}"
            );
        }
    }
    // A subtree with nothing in it.
    let empty = ListQuery {
        within: FolderPath::parse("/nothing/here"),
        ..ListQuery::default()
    };
    let page = c.list(empty).await.expect("list");
    assert_eq!((page.items.len(), page.total), (0, 0));
}

async fn a_confined_handle_changes_only_items_in_its_folder(f: &Fixture) {
    let acme = FolderPath::parse("/clients/acme").expect("folder");
    let c = f.handle.confined(Some(&acme));
    let inside = placed(1, "/clients/acme/x", Visibility::Public);
    let outside = placed(2, "/clients/acme-old", Visibility::Public);
    f.handle
        .insert_media(vec![inside.clone(), outside.clone()])
        .await
        .expect("insert");
    let patch = MediaPatch {
        alt: Some(Some("mine".into())),
        ..MediaPatch::default()
    };
    let not_found = |r: Result<_, CatalogError>| matches!(r, Err(CatalogError::NotFound(_)));
    assert!(not_found(
        c.update_media(outside.id.clone(), patch.clone(), false)
            .await
            .map(drop)
    ));
    let file = MediaRecord {
        id: outside.id.clone(),
        ..placed(3, "/", Visibility::Public)
    };
    assert!(not_found(c.replace_file(file).await.map(drop)));
    let pairs = moves(&outside, Visibility::Private);
    assert!(not_found(
        c.move_files(outside.id.clone(), Visibility::Private, pairs)
            .await
            .map(drop)
    ));
    assert!(not_found(
        c.delete_media(outside.id.clone()).await.map(drop)
    ));
    assert_eq!(
        c.get(&outside.id).await.expect("get"),
        Some(outside.clone()),
        "untouched"
    );
    // Inside, the same handle works; moved out, the item is out of its reach.
    let out = MediaPatch {
        folder: FolderPath::parse("/archive"),
        ..patch.clone()
    };
    let changed = c
        .update_media(inside.id.clone(), out, false)
        .await
        .expect("update");
    assert_eq!(changed.record.folder, "/archive");
    assert!(not_found(
        c.update_media(inside.id.clone(), patch, false)
            .await
            .map(drop)
    ));
    assert!(not_found(c.delete_media(inside.id.clone()).await.map(drop)));
    f.handle
        .delete_media(inside.id.clone())
        .await
        .expect("unconfined");
}

// ---- events ----------------------------------------------------------------------------

fn webhook(id: &str, events: &[&str]) -> WebhookRecord {
    WebhookRecord {
        id: id.into(),
        url: "https://hooks.example.com/in".into(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        description: String::new(),
        secret: crate::events::sign::new_secret(),
        created_us: 1,
        disabled: None,
        dropped: 0,
    }
}

async fn add_webhook(f: &Fixture, hook: WebhookRecord) {
    f.handle
        .webhook_write(WebhookWrite::Add(hook))
        .await
        .expect("add webhook");
}

/// (type, the event's key) of what waits for webhook `id`, in order.
async fn outbox(f: &Fixture, id: &str) -> Vec<(&'static str, String)> {
    let queued = f.handle.queued(id, 0, 1000).await.expect("queued");
    queued
        .iter()
        .map(|q| (q.event.kind.name(), q.event.key().to_owned()))
        .collect()
}

async fn every_committed_change_is_in_the_outbox_and_nothing_else(f: &Fixture) {
    let c = &f.handle;
    add_webhook(f, webhook("wh_every", &["*"])).await;
    add_webhook(f, webhook("wh_ready", &["media.ready", "folder.deleted"])).await;
    let (img, doc) = (image(1, "a.png"), document(2, "b.pdf"));
    c.insert_media(vec![img.clone(), doc.clone()])
        .await
        .expect("insert");
    processed_result(f, &img).await;
    let patch = MediaPatch {
        alt: Some(Some("x".into())),
        ..Default::default()
    };
    c.update_media(doc.id.clone(), patch.clone(), false)
        .await
        .expect("patch");
    // Writes that fail commit no event.
    let missing = image(9, "gone.png").id;
    assert!(c.update_media(missing.clone(), patch, false).await.is_err());
    assert!(c.delete_media(missing).await.is_err());
    let folder = FolderPath::parse("/events").expect("folder");
    assert!(c.create_folder(folder.clone()).await.expect("create"));
    assert!(!c.create_folder(folder.clone()).await.expect("again")); // existed: nothing
    let parent = FolderPath::parse("/full").expect("folder");
    c.create_folder(FolderPath::parse("/full/child").expect("child"))
        .await
        .expect("child");
    assert!(c.delete_folder(parent).await.is_err()); // not empty
    c.delete_folder(folder).await.expect("delete folder");
    c.delete_media(doc.id.clone()).await.expect("delete");
    let every = outbox(f, "wh_every").await;
    let expected = [
        ("media.created", img.id.clone()),
        ("media.created", doc.id.clone()),
        ("media.ready", doc.id.clone()), // a document needs no processing
        ("media.ready", img.id.clone()),
        ("media.updated", doc.id.clone()),
        ("folder.created", "/events".to_owned()),
        ("folder.created", "/full/child".to_owned()),
        ("folder.deleted", "/events".to_owned()),
        ("media.deleted", doc.id.clone()),
    ];
    assert_eq!(every, expected);
    let ready = outbox(f, "wh_ready").await;
    assert_eq!(
        ready,
        [
            ("media.ready", doc.id.clone()),
            ("media.ready", img.id.clone()),
            ("folder.deleted", "/events".to_owned()),
        ]
    );
    // The payload's record is the item as the change wrote it.
    let queued = c.queued("wh_every", 0, 100).await.expect("queued");
    let Subject::Media { record, changed } = &queued[4].event.subject else {
        panic!("{:?}", queued[4]);
    };
    assert_eq!(
        (record.alt.as_deref(), changed.as_slice()),
        (Some("x"), &["alt".to_owned()][..])
    );
    let Subject::Media { record, .. } = &queued[3].event.subject else {
        panic!("{:?}", queued[3]);
    };
    assert_eq!(
        record.processing.as_ref().map(|p| p.variants.len()),
        Some(1)
    );
    // Every event of one change to two webhooks has one id.
    assert_eq!(
        queued[2].event.id,
        c.queued("wh_ready", 0, 1).await.expect("q")[0].event.id
    );
    let ids: std::collections::HashSet<&str> = queued.iter().map(|q| q.event.id.as_str()).collect();
    assert_eq!(ids.len(), queued.len(), "each event has its own id");
}

/// Runs `r`'s job to its result with one variant (it was inserted before).
async fn processed_result(f: &Fixture, r: &MediaRecord) {
    let c = &f.handle;
    assert_eq!(
        c.start_job(r.id.clone(), 3).await.expect("start"),
        JobStart::Run
    );
    c.finish_job(r.id.clone(), made(r, 0), r.storage_key.clone())
        .await
        .expect("finish");
}

fn settled(webhook: &str, q: &Queued, next: Next) -> Settled {
    Settled {
        webhook: webhook.into(),
        seq: q.seq,
        attempt: Attempt {
            at_us: 5,
            event: q.event.id.clone(),
            kind: q.event.kind,
            attempt: q.attempts + 1,
            status: Some(500),
            latency_ms: 3,
            error: Some("the receiver answered 500".into()),
        },
        next,
    }
}

async fn deliveries_settle_retry_give_up_and_disable(f: &Fixture) {
    let c = &f.handle;
    add_webhook(f, webhook("wh_settle", &["*"])).await;
    for n in 1..=4 {
        c.insert_media(vec![document(n, "d.pdf")])
            .await
            .expect("insert");
    }
    let q = c.queued("wh_settle", 0, 100).await.expect("queued");
    assert_eq!(q.len(), 8);
    let settle = |s: Vec<Settled>| c.webhook_write(WebhookWrite::Settle(s));
    settle(vec![
        settled("wh_settle", &q[0], Next::Delivered),
        settled("wh_settle", &q[1], Next::Retry { due_us: 777 }),
        settled("wh_settle", &q[2], Next::GiveUp),
    ])
    .await
    .expect("settle");
    let after = c.queued("wh_settle", 0, 100).await.expect("queued");
    assert_eq!(after.len(), 6);
    assert_eq!(
        (after[0].seq, after[0].attempts, after[0].due_us),
        (q[1].seq, 1, 777)
    );
    assert_eq!(
        after[0].event, q[1].event,
        "a retried event keeps its id and body"
    );
    let attempts = c.attempts("wh_settle", 10).await.expect("attempts");
    assert_eq!(attempts.len(), 3);
    assert_eq!(attempts[0].event, q[2].event.id, "newest first");
    let hook = |hooks: Vec<WebhookRecord>| {
        hooks
            .into_iter()
            .find(|h| h.id == "wh_settle")
            .expect("hook")
    };
    assert_eq!(hook(c.webhooks().await.expect("hooks")).dropped, 1);
    // A ping goes to its webhook's outbox, behind what waits.
    let ping = Event::ping("wh_settle");
    c.webhook_write(WebhookWrite::Ping {
        id: "wh_settle".into(),
        event: ping.clone(),
    })
    .await
    .expect("ping");
    assert_eq!(
        c.queued("wh_settle", 0, 100)
            .await
            .expect("q")
            .last()
            .map(|q| q.event.id.clone()),
        Some(ping.id)
    );
    // 410: disabled, its outbox emptied and counted; nothing more is queued for it.
    let reason = "the receiver answered 410 Gone".to_owned();
    settle(vec![settled(
        "wh_settle",
        &after[1],
        Next::Disable {
            reason: reason.clone(),
        },
    )])
    .await
    .expect("disable");
    let disabled = hook(c.webhooks().await.expect("hooks"));
    assert_eq!((disabled.disabled, disabled.dropped), (Some(reason), 1 + 7));
    c.insert_media(vec![document(5, "e.pdf")])
        .await
        .expect("insert");
    assert!(c.queued("wh_settle", 0, 100).await.expect("q").is_empty());
    assert!(matches!(
        c.webhook_write(WebhookWrite::Ping {
            id: "wh_settle".into(),
            event: Event::ping("wh_settle")
        })
        .await,
        Err(CatalogError::WebhookDisabled)
    ));
    // Removed: gone with its attempts.
    c.webhook_write(WebhookWrite::Remove {
        id: "wh_settle".into(),
    })
    .await
    .expect("remove");
    assert!(c.webhooks().await.expect("hooks").is_empty());
    assert!(
        c.attempts("wh_settle", 10)
            .await
            .expect("attempts")
            .is_empty()
    );
    assert!(matches!(
        c.webhook_write(WebhookWrite::Remove {
            id: "wh_settle".into()
        })
        .await,
        Err(CatalogError::NotFound(_))
    ));
}

async fn an_outbox_is_trimmed_from_its_newest_event(f: &Fixture) {
    let c = &f.handle;
    add_webhook(f, webhook("wh_trim", &["media.created"])).await;
    for n in 1..=5 {
        c.insert_media(vec![document(n, "d.pdf")])
            .await
            .expect("insert");
    }
    let before = c.queued("wh_trim", 0, 100).await.expect("queued");
    let backlog = c.backlogs().await.expect("backlogs");
    assert_eq!(
        (backlog[0].pending, backlog[0].oldest_us),
        (5, Some(before[0].event.at_us))
    );
    let trimmed = c
        .webhook_write(WebhookWrite::Trim {
            id: "wh_trim".into(),
            keep: 2,
        })
        .await
        .expect("trim");
    assert_eq!(trimmed, Outcome::Dropped(3));
    let after = c.queued("wh_trim", 0, 100).await.expect("queued");
    assert_eq!(after, before[..2].to_vec(), "the oldest two stay");
    let tail = c
        .queued("wh_trim", before[0].seq, 100)
        .await
        .expect("queued");
    // Read on after an entry: what follows it (PostgreSQL reads from the head all the
    // same, see `CatalogHandle::queued`).
    let later: Vec<_> = tail.into_iter().filter(|q| q.seq > before[0].seq).collect();
    assert_eq!(later, before[1..2].to_vec(), "read on after an entry");
    assert_eq!(c.webhooks().await.expect("hooks")[0].dropped, 3);
}
