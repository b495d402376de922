//! The catalog's write rules over a real redb file: jobs, presigns, reopening.

use redb::ReadableTable;

use super::*;
use crate::model::{
    JobResult, MediaRecord, MediaType, PresignRecord, Processing, Status, VariantRecord,
};
use crate::storage::key::variant_key;

pub(super) fn open() -> (tempfile::TempDir, Catalog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(&dir.path().join("c.redb")).expect("open");
    (dir, catalog)
}

pub(super) fn image(tail: char) -> MediaRecord {
    MediaRecord {
        processing: Processing::initial(MediaType::Png),
        ..MediaRecord::sample(tail, "p.png", 1, 10)
    }
}

pub(super) fn ready(r: &MediaRecord) -> JobResult {
    JobResult::Ready {
        poster: None,
        variants: vec![VariantRecord {
            width: 150,
            height: 100,
            size: 5,
            storage_key: variant_key(&r.storage_key, 150),
        }],
        crops: Vec::new(),
        crop_version: r.crop_version,
        thumbhash: Some("hash".into()),
        dominant_color: Some("#102030".into()),
    }
}

pub(super) fn start(c: &Catalog, id: &str) -> bool {
    let write = Write::StartJob {
        id: id.into(),
        max_attempts: 2,
    };
    c.apply_single(write).expect("start") == Outcome::JobStarted
}

/// Finishes a job for the item's current original (or a made-up one once it is gone).
pub(super) fn finish(c: &Catalog, id: &str, result: JobResult) -> Outcome {
    let current = c.get(id).expect("get").map(|r| r.storage_key);
    let source = current.unwrap_or_else(|| "2026/01/gone.png".into());
    c.apply_single(Write::FinishJob {
        id: id.into(),
        result,
        source,
    })
    .expect("finish")
}

#[test]
fn a_job_is_committed_with_its_item_and_recorded_once() {
    let (_dir, c) = open();
    let (a, doc) = (image('a'), MediaRecord::sample('d', "d.png", 1, 1));
    c.apply_single(Write::InsertMedia(vec![a.clone(), doc]))
        .expect("insert");
    assert_eq!(c.job_count(), 1, "only the image has a job");
    assert_eq!(c.unfinished_jobs().expect("jobs"), vec![a.id.clone()]);

    assert!(start(&c, &a.id));
    let outcome = finish(&c, &a.id, ready(&a));
    assert_eq!(
        outcome,
        Outcome::Job(JobOutcome::Recorded { queued: vec![] })
    );
    assert_eq!(c.job_count(), 0);
    let got = c.get(&a.id).expect("get").expect("item");
    let p = got.processing.as_ref().expect("processing");
    assert_eq!(p.status, Status::Ready);
    assert_eq!(p.dominant_color.as_deref(), Some("#102030"));
    let variant = variant_key(&a.storage_key, 150);
    assert_eq!(
        c.owner_of_file(&variant).expect("owner"),
        Some(a.id.clone())
    );

    // A second run of the same job (a restart raced it) changes nothing.
    assert!(!start(&c, &a.id));
    let again = finish(
        &c,
        &a.id,
        JobResult::Failed {
            reason: "x".into(),
            crop_version: 0,
        },
    );
    assert_eq!(again, Outcome::Job(JobOutcome::AlreadyDone));
    assert_eq!(c.get(&a.id).expect("get"), Some(got.clone()));

    // Deleting the item queues the variant with the original.
    c.apply_single(Write::DeleteMedia { id: a.id.clone() })
        .expect("delete");
    let mut pending = c.pending_deletes().expect("pending");
    pending.sort();
    assert_eq!(pending, [variant, a.storage_key.clone()]);
}

#[test]
fn jobs_of_deleted_items_end_and_interrupted_jobs_stop_at_the_limit() {
    let (_dir, c) = open();
    let (a, b) = (image('a'), image('b'));
    c.apply_single(Write::InsertMedia(vec![a.clone(), b.clone()]))
        .expect("insert");
    assert_eq!(c.job_count(), 2);

    c.apply_single(Write::DeleteMedia { id: a.id.clone() })
        .expect("delete");
    assert_eq!(c.job_count(), 1, "the delete removed the job");
    assert!(!start(&c, &a.id));
    let gone = finish(&c, &a.id, ready(&a));
    assert_eq!(gone, Outcome::Job(JobOutcome::ItemGone));

    // A start given back (an outage, not a crash) does not count.
    assert!(start(&c, &b.id));
    c.apply_single(Write::ReleaseJob { id: b.id.clone() })
        .expect("release");
    // Two starts that never finished (crashes): the third start fails the job.
    assert!(start(&c, &b.id) && start(&c, &b.id));
    assert!(!start(&c, &b.id));
    assert_eq!(c.job_count(), 0);
    let p = c.get(&b.id).expect("get").expect("item").processing;
    let p = p.expect("processing");
    assert_eq!(p.status, Status::Failed);
    assert!(p.error.is_some_and(|e| e.contains("interrupted 2 times")));
}

#[test]
fn a_presign_is_confirmed_once_and_only_before_it_expires() {
    let (_dir, c) = open();
    let a = image('a');
    let presign = |expires_us| PresignRecord {
        filename: "p.png".into(),
        media_type: MediaType::Png,
        size: 10,
        expires_us,
        staged: true,
        confirmed: false,
        confirming: None,
    };
    let confirm = |record: &MediaRecord, now_us| {
        c.apply_single(Write::ConfirmPresign {
            record: Box::new(record.clone()),
            token: "t1".into(),
            now_us,
        })
    };
    let begin = |token: &str, now_us, until_us| {
        c.apply_single(Write::BeginConfirm {
            key: a.storage_key.clone(),
            token: token.into(),
            now_us,
            until_us,
        })
    };
    assert!(matches!(
        confirm(&a, 1),
        Err(CatalogError::NotFound(
            "presigned upload with this storageKey"
        ))
    ));
    c.apply_single(Write::RecordPresign {
        key: a.storage_key.clone(),
        presign: presign(100),
    })
    .expect("record");
    assert_eq!(
        c.presign_to_confirm(&a.storage_key, 100).expect("read"),
        presign(100)
    );
    assert!(matches!(
        confirm(&a, 101),
        Err(CatalogError::PresignExpired)
    ));
    assert_eq!(
        c.expired_presigns(101).expect("expired"),
        vec![(a.storage_key.clone(), presign(100))]
    );
    assert!(c.expired_presigns(99).expect("expired").is_empty());

    // One confirm at a time: a second is refused while the first holds the presign, and
    // cannot commit in its place; once the first gives it back, a retry may take it.
    begin("t2", 10, 40).expect("t2 takes it");
    assert!(matches!(
        begin("t1", 20, 50),
        Err(CatalogError::ConfirmInProgress)
    ));
    assert!(matches!(
        confirm(&a, 20),
        Err(CatalogError::ConfirmInProgress)
    ));
    c.apply_single(Write::EndConfirm {
        key: a.storage_key.clone(),
        token: "t1".into(),
    })
    .expect("not t1's to end: nothing changes");
    assert!(matches!(
        begin("t1", 30, 60),
        Err(CatalogError::ConfirmInProgress)
    ));
    // A lease that ran out (its confirm died with the server) is taken over.
    begin("t1", 41, 90).expect("t2's lease ran out");
    c.apply_single(Write::EndConfirm {
        key: a.storage_key.clone(),
        token: "t1".into(),
    })
    .expect("end");
    // A confirm that no longer holds the lease (it ran out and was given back) cannot
    // commit: it may not have checked what the key holds now.
    assert!(matches!(confirm(&a, 44), Err(CatalogError::LeaseLost)));
    begin("t1", 45, 90).expect("taken again after it was given back");

    confirm(&a, 50).expect("confirmed");
    assert_eq!(c.get(&a.id).expect("get"), Some(a.clone()));
    assert_eq!(c.job_count(), 1, "an image gets its job");
    assert!(matches!(
        c.presign_to_confirm(&a.storage_key, 50),
        Err(CatalogError::AlreadyConfirmed)
    ));
    let again = MediaRecord {
        id: "media_bbbbbbbbbbbbbbbb".into(),
        ..a.clone()
    };
    assert!(matches!(
        confirm(&again, 50),
        Err(CatalogError::AlreadyConfirmed)
    ));
    assert!(c.get(&again.id).expect("get").is_none(), "no second item");
    // Kept, confirmed, until it expires: then the sweep deletes what its URL uploaded.
    let kept = PresignRecord {
        confirmed: true,
        ..presign(100)
    };
    assert_eq!(
        c.expired_presigns(101).expect("expired"),
        vec![(a.storage_key.clone(), kept)]
    );
}

#[test]
fn a_presign_made_before_uploads_were_staged_is_refused_as_expired() {
    let (_dir, c) = open();
    let a = image('a');
    let mut older = serde_json::to_value(PresignRecord {
        filename: "p.png".into(),
        media_type: MediaType::Png,
        size: 10,
        expires_us: 100,
        staged: true,
        confirmed: false,
        confirming: None,
    })
    .expect("json");
    let fields = older.as_object_mut().expect("object");
    fields.remove("staged");
    fields.remove("confirmed");
    let legacy: PresignRecord = serde_json::from_value(older).expect("the older layout");
    assert!(!legacy.staged);
    c.apply_single(Write::RecordPresign {
        key: a.storage_key.clone(),
        presign: legacy,
    })
    .expect("record");
    assert!(matches!(
        c.presign_to_confirm(&a.storage_key, 1),
        Err(CatalogError::PresignExpired)
    ));
}

#[test]
fn the_job_count_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.redb");
    {
        let c = Catalog::open(&path).expect("open");
        c.apply_single(Write::InsertMedia(vec![image('a'), image('b')]))
            .expect("insert");
    }
    let c = Catalog::open(&path).expect("reopen");
    assert_eq!(c.job_count(), 2);
}

#[test]
fn the_confirm_rule_reads_the_same_before_and_in_the_write() {
    let (_dir, c) = open();
    let a = image('a');
    let presign = PresignRecord {
        filename: "p.png".into(),
        media_type: MediaType::Png,
        size: 10,
        expires_us: 100,
        staged: true,
        confirmed: false,
        confirming: None,
    };
    let key = a.storage_key.clone();
    assert!(matches!(
        c.presign_to_confirm(&key, 1),
        Err(CatalogError::NotFound(_))
    ));
    c.apply_single(Write::RecordPresign {
        key: key.clone(),
        presign: presign.clone(),
    })
    .expect("record");
    assert_eq!(c.presign_to_confirm(&key, 100).expect("at expiry"), presign);
    assert!(matches!(
        c.presign_to_confirm(&key, 101),
        Err(CatalogError::PresignExpired)
    ));
}

#[test]
fn folders_say_whether_they_were_new_and_keys_whether_they_existed() {
    let (_dir, c) = open();
    let path = crate::model::FolderPath::parse("/x").expect("path");
    let create = |p: &crate::model::FolderPath| c.apply_single(Write::CreateFolder(p.clone()));
    assert_eq!(create(&path).expect("create"), Outcome::FolderCreated);
    assert_eq!(create(&path).expect("again"), Outcome::FolderExisted);
    let root = crate::model::FolderPath::root();
    assert_eq!(create(&root).expect("root"), Outcome::FolderExisted);

    let (_, key) = keys::generate(crate::model::Scope::Read, "k");
    let id = key.id.clone();
    c.apply_single(Write::PutKey(key)).expect("put");
    let revoke = |id: &str| c.apply_single(Write::RevokeKey { id: id.into() });
    assert_eq!(revoke(&id).expect("revoke"), Outcome::Done);
    assert!(matches!(
        revoke(&id),
        Err(CatalogError::NotFound("API key"))
    ));
}

#[test]
fn a_taken_key_id_is_refused_and_the_last_admin_key_stays_even_in_one_batch() {
    use crate::model::Scope;
    let (_dir, c) = open();
    let (_, first) = keys::generate(Scope::Read, "first");
    c.apply_single(Write::PutKey(first.clone())).expect("put");
    let (_, mut same_id) = keys::generate(Scope::Admin, "same id");
    same_id.id = first.id.clone();
    assert!(matches!(
        c.apply_single(Write::PutKey(same_id)),
        Err(CatalogError::IdTaken)
    ));
    assert_eq!(
        c.list_keys().expect("keys"),
        vec![first.clone()],
        "not overwritten"
    );

    let (_, a) = keys::generate(Scope::Admin, "a");
    let (_, b) = keys::generate(Scope::Admin, "b");
    c.apply_single(Write::PutKey(a.clone())).expect("a");
    c.apply_single(Write::PutKey(b.clone())).expect("b");
    // Both admins revoked in one group commit: the second sees the first gone.
    let results = c
        .apply(vec![
            Write::RevokeKey { id: a.id.clone() },
            Write::RevokeKey { id: b.id.clone() },
        ])
        .expect("batch");
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(CatalogError::LastAdminKey)));
    let left: Vec<String> = c
        .list_keys()
        .expect("keys")
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert!(left.contains(&b.id) && !left.contains(&a.id));
    // A read or write key goes whatever is left.
    c.apply_single(Write::RevokeKey { id: first.id })
        .expect("read key");
}

/// Makes a schema-1 catalog out of a current one: no search tables, no schema, no
/// folder-and-type listing keys (what a Darkroom before the search index wrote).
fn downgrade(path: &std::path::Path) {
    let db = Database::create(path).expect("db");
    let txn = db.begin_write().expect("txn");
    txn.delete_table(SEARCH_DOCS).expect("docs");
    txn.delete_table(SEARCH_IDS).expect("ids");
    txn.delete_table(SEARCH_GRAMS).expect("grams");
    txn.open_table(META)
        .expect("meta")
        .remove("schema")
        .expect("schema");
    {
        let mut listing = txn.open_table(INDEX).expect("index");
        let x_keys: Vec<Vec<u8>> = listing
            .iter()
            .expect("iter")
            .map(|e| e.expect("entry").0.value().to_vec())
            .filter(|k| k[1] == b'x')
            .collect();
        assert!(!x_keys.is_empty());
        for key in x_keys {
            listing.remove(key.as_slice()).expect("remove");
        }
    }
    txn.commit().expect("commit");
}

#[test]
fn an_older_catalog_is_upgraded_in_place_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.redb");
    let (mut a, mut b) = (MediaRecord::sample('a', "Beach.png", 1, 10), image('b'));
    b.filename = "harbour.png".into();
    b.alt = Some("A beach at dusk".into());
    a.folder = "/x".into();
    {
        let c = Catalog::open(&path).expect("open");
        c.apply_single(Write::InsertMedia(vec![a.clone(), b.clone()]))
            .expect("insert");
    }
    downgrade(&path);
    let c = Catalog::open(&path).expect("upgrade");
    let query = |search: &str, folder: Option<&str>| crate::model::ListQuery {
        search: (!search.is_empty()).then(|| search.to_owned()),
        folder: folder.map(|f| crate::model::FolderPath::parse(f).expect("folder")),
        kind: Some(crate::model::Kind::Image),
        ..Default::default()
    };
    let found = c.list(&query("beach", None)).expect("search");
    assert_eq!(found.total, 2, "both records are in the search index");
    let in_x = c.list(&query("", Some("/x"))).expect("folder and type");
    assert_eq!(in_x.items, vec![a.clone()]);
    // Written after the upgrade: the numbers go on from the upgrade's.
    let mut d = MediaRecord::sample('d', "beach-2.png", 2, 1);
    d.folder = "/x".into();
    c.apply_single(Write::InsertMedia(vec![d])).expect("insert");
    c.apply_single(Write::DeleteMedia { id: a.id.clone() })
        .expect("delete");
    assert_eq!(c.list(&query("beach", None)).expect("search").total, 2);
    drop(c);
    let again = Catalog::open(&path).expect("reopen");
    assert_eq!(
        again
            .list(&query("each", Some("/x")))
            .expect("search")
            .total,
        1
    );
}

#[test]
fn reads_never_wait_for_a_heal_in_progress() {
    let (_dir, catalog) = open();
    let catalog = std::sync::Arc::new(catalog);
    catalog.commit_failed.store(true, Ordering::Relaxed); // as after a failed commit
    let (release, gate) = std::sync::mpsc::channel();
    *catalog.heal_gate.lock().expect("gate") = Some(gate);
    let healer = {
        let catalog = catalog.clone();
        std::thread::spawn(move || catalog.heal())
    };
    // Wait until the heal is inside its reopen (it has taken the gate).
    while catalog.heal_gate.lock().expect("gate").is_some() {
        std::thread::yield_now();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = catalog.clone();
    std::thread::spawn(move || {
        let _ = tx.send(reader.get("media_AAAAAAAAAAAAAAAA").map(|r| r.is_none()));
    });
    // A deadlock guard, not a timing claim: the read must answer while the heal waits.
    let answered = rx.recv_timeout(std::time::Duration::from_secs(10));
    release.send(()).expect("release the heal");
    healer.join().expect("heal thread").expect("healed");
    assert!(
        matches!(answered, Ok(Err(CatalogError::Unavailable))),
        "a point read during a heal answers Unavailable at once, got {answered:?}"
    );
    assert!(catalog.writable());
    assert_eq!(catalog.get("media_AAAAAAAAAAAAAAAA").expect("read"), None);
}

/// Makes a catalog at `path` with one item, marked as of layout `schema`.
fn one_item_marked(path: &std::path::Path, schema: u64) {
    let c = Catalog::open(path).expect("open");
    c.apply_single(Write::InsertMedia(vec![image('a')]))
        .expect("insert");
    let txn = c.write_txn().expect("write");
    txn.open_table(META)
        .expect("meta")
        .insert("schema", schema)
        .expect("schema");
    txn.commit().expect("commit");
}

#[test]
fn a_catalog_written_by_a_newer_darkroom_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.redb");
    one_item_marked(&path, upgrade::SCHEMA + 1);
    match Catalog::open(&path) {
        Err(CatalogError::TooNew { found, reads }) => {
            assert_eq!((found, reads), (upgrade::SCHEMA + 1, upgrade::SCHEMA));
        }
        Err(e) => panic!("expected TooNew, got {e}"),
        Ok(_) => panic!("a newer catalog was opened"),
    }
    // Nothing was rewritten: the newer build still finds its schema and the record.
    let db = redb::Database::open(&path).expect("db");
    let read = db.begin_read().expect("read");
    let schema = read
        .open_table(META)
        .expect("meta")
        .get("schema")
        .expect("get");
    assert_eq!(schema.map(|v| v.value()), Some(upgrade::SCHEMA + 1));
    assert_eq!(
        read.open_table(MEDIA).expect("media").len().expect("len"),
        1
    );
}

#[test]
fn layout_3_and_4_catalogs_are_marked_5_as_they_are_and_older_builds_then_refuse_them() {
    for layout in [3, 4] {
        a_layout_is_marked_current_as_it_is(layout);
    }
}

fn a_layout_is_marked_current_as_it_is(layout: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.redb");
    one_item_marked(&path, layout);
    let c = Catalog::open(&path).expect("reopen");
    let db = c.database().expect("db");
    assert_eq!(upgrade::schema_of(&db).expect("schema"), Some(5));
    assert!(c.webhooks().expect("webhooks").is_empty());
    let page = c.list(&crate::model::ListQuery::default()).expect("list");
    assert_eq!(
        (page.items.len(), page.total),
        (1, 1),
        "its indexes are layout 4's"
    );
    let public = crate::model::ListQuery {
        visibility: Some(crate::model::Visibility::Public),
        ..crate::model::ListQuery::default()
    };
    assert_eq!(c.list(&public).expect("list").total, 1);
}

/// Makes a schema-2 catalog out of a current one (no `ITEM_FILES`; the listing and search
/// indexes, which the upgrade rebuilds whatever they hold, dropped), with what that
/// build's bugs could leave: a file row of an item deleted long ago, and a record that no
/// longer decodes.
fn to_schema_2(path: &std::path::Path, broken: &str) {
    let db = Database::create(path).expect("db");
    let txn = db.begin_write().expect("txn");
    txn.delete_table(ITEM_FILES).expect("item files");
    txn.delete_table(SEARCH_DOCS).expect("docs");
    txn.delete_table(SEARCH_IDS).expect("ids");
    txn.delete_table(SEARCH_GRAMS).expect("grams");
    txn.delete_table(INDEX).expect("index");
    txn.open_table(META)
        .expect("meta")
        .insert("schema", 2)
        .expect("schema");
    txn.open_table(FILES)
        .expect("files")
        .insert("2026/01/gone-150.webp", "media_GGGGGGGGGGGGGGGG")
        .expect("leftover");
    txn.open_table(MEDIA)
        .expect("media")
        .insert(broken, b"{torn".as_slice())
        .expect("broken");
    txn.commit().expect("commit");
}

#[test]
fn the_schema_3_upgrade_folds_queues_leftovers_and_survives_an_unreadable_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.redb");
    let (a, b) = (
        MediaRecord {
            filename: "Straße.png".into(),
            ..image('a')
        },
        image('b'),
    );
    {
        let c = Catalog::open(&path).expect("open");
        c.apply_single(Write::InsertMedia(vec![a.clone(), b.clone()]))
            .expect("insert");
        assert!(start(&c, &a.id));
        finish(&c, &a.id, ready(&a));
    }
    to_schema_2(&path, &b.id);
    let c = Catalog::open(&path).expect("the upgrade runs past the unreadable record");
    let search = |term: &str| crate::model::ListQuery {
        search: Some(crate::model::fold(term)),
        ..Default::default()
    };
    let found = c.list(&search("STRASSE")).expect("search");
    assert_eq!(found.items, vec![c.get(&a.id).expect("get").expect("a")]);
    let all = c.list(&crate::model::ListQuery::default()).expect("list");
    assert_eq!(
        all.total, 1,
        "counts are recounted: the unreadable record is not listed"
    );
    // The leftover is queued and no longer served; the unreadable item can be deleted.
    assert_eq!(
        c.pending_deletes().expect("pending"),
        ["2026/01/gone-150.webp"]
    );
    assert_eq!(
        c.owner_of_file("2026/01/gone-150.webp").expect("owner"),
        None
    );
    let deleted = c
        .apply_single(Write::DeleteMedia { id: b.id.clone() })
        .expect("delete the unreadable one");
    assert_eq!(
        deleted,
        Outcome::Deleted {
            queued: vec![b.storage_key.clone()]
        }
    );
    // ITEM_FILES was rebuilt: deleting a queues its variant.
    let deleted = c
        .apply_single(Write::DeleteMedia { id: a.id.clone() })
        .expect("delete");
    let Outcome::Deleted { queued } = deleted else {
        panic!("{deleted:?}")
    };
    assert!(
        queued.contains(&variant_key(&a.storage_key, 150)),
        "{queued:?}"
    );
    assert_eq!(
        c.list(&crate::model::ListQuery::default())
            .expect("list")
            .total,
        0
    );
}
