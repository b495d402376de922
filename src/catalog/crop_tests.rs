//! The catalog's rules for crops and replaced files: a focal point that moves while a
//! job runs, a file replaced under a running job, the on-demand crop cache.

use super::tests::{finish, image, open, ready, start};
use super::*;
use crate::model::{CropRecord, JobResult, MediaPatch, MediaRecord, MediaType, Processing};

/// The image's result with one crop of version `version`.
fn ready_with_crop(r: &MediaRecord, version: u32) -> JobResult {
    let JobResult::Ready {
        variants,
        thumbhash,
        dominant_color,
        ..
    } = ready(r)
    else {
        unreachable!()
    };
    let crop = CropRecord {
        name: "card".into(),
        width: 120,
        height: 63,
        size: 7,
        storage_key: format!("{}-120x63-v{version}.webp", r.id),
    };
    JobResult::Ready {
        variants,
        poster: None,
        crops: vec![crop],
        crop_version: version,
        thumbhash,
        dominant_color,
    }
}

#[test]
fn a_focal_point_moved_during_a_job_makes_its_crops_stale_and_the_job_stays() {
    let (_dir, c) = open();
    let a = image('a');
    c.apply_single(Write::InsertMedia(vec![a.clone()]))
        .expect("insert");
    assert!(start(&c, &a.id));
    let recorded = finish(&c, &a.id, ready_with_crop(&a, 0));
    assert_eq!(
        recorded,
        Outcome::Job(JobOutcome::Recorded { queued: vec![] })
    );
    let patch = |x: f64, recrop: bool| Write::UpdateMedia {
        id: a.id.clone(),
        patch: MediaPatch {
            focal_x: Some(x),
            ..MediaPatch::default()
        },
        recrop,
    };
    // Without presets a move only versions the crops made on demand.
    c.apply_single(patch(20.0, false)).expect("patch");
    assert_eq!(c.job_count(), 0);
    assert_eq!(c.get(&a.id).expect("get").expect("item").crop_version, 2);
    // With presets: the crop is queued for deletion, the job is back, a new version.
    c.apply_single(patch(30.0, true)).expect("patch");
    let moved = c.get(&a.id).expect("get").expect("item");
    assert_eq!((moved.crop_version, moved.is_processing()), (3, true));
    assert_eq!(
        c.pending_deletes().expect("pending"),
        [format!("{}-120x63-v0.webp", a.id)]
    );
    assert_eq!(c.job_count(), 1);
    // A run that started before the move finishes with version 0: stale, the job stays.
    assert!(start(&c, &a.id));
    let stale = finish(&c, &a.id, ready_with_crop(&a, 0));
    assert_eq!(stale, Outcome::Job(JobOutcome::Stale));
    assert_eq!(c.job_count(), 1);
    // The next run, for version 2, is recorded.
    assert!(start(&c, &a.id));
    let done = finish(&c, &a.id, ready_with_crop(&moved, 3));
    // The keys of the versions in between, which a run killed before its commit would
    // have written, are queued with it.
    let size = crate::model::CropSize {
        width: 120,
        height: 63,
    };
    let key = |v| crate::storage::key::crop_key(&a.storage_key, size, v);
    let mut skipped = vec![key(1), key(2)];
    skipped.sort();
    assert_eq!(done, Outcome::Job(JobOutcome::Recorded { queued: skipped }));
    let got = c.get(&a.id).expect("get").expect("item");
    assert_eq!(got.crop_keys(), [format!("{}-120x63-v3.webp", a.id)]);
    assert_eq!(c.job_count(), 0);
}

#[test]
fn a_replaced_file_queues_the_old_set_and_a_job_of_the_old_file_is_not_recorded() {
    let (_dir, c) = open();
    let a = image('a');
    c.apply_single(Write::InsertMedia(vec![a.clone()]))
        .expect("insert");
    assert!(start(&c, &a.id));
    finish(&c, &a.id, ready(&a));
    let old = c.get(&a.id).expect("get").expect("item");
    let replacement = MediaRecord {
        storage_key: "2026/02/bbbbbbbbbbbbbbbb.png".into(),
        processing: Processing::initial(MediaType::Png),
        ..old.clone()
    };
    c.apply_single(Write::ReplaceFile(Box::new(replacement.clone())))
        .expect("replace");
    let mut pending = c.pending_deletes().expect("pending");
    pending.sort();
    let mut old_keys = old.storage_keys();
    old_keys.sort();
    assert_eq!(pending, old_keys, "the old original and variant are queued");
    assert_eq!(c.owner_of_file(&old.storage_key).expect("owner"), None);
    assert_eq!(
        c.owner_of_file(&replacement.storage_key).expect("owner"),
        Some(a.id.clone())
    );
    assert_eq!(c.job_count(), 1, "the new file has its job");
    // A run for the old file that ends now is not recorded; the job stays for the new one.
    assert!(start(&c, &a.id));
    let late = c
        .apply_single(Write::FinishJob {
            id: a.id.clone(),
            result: ready(&old),
            source: old.storage_key.clone(),
        })
        .expect("finish");
    assert_eq!(late, Outcome::Job(JobOutcome::Superseded));
    assert_eq!(c.job_count(), 1);
    assert!(c.get(&a.id).expect("get").expect("item").is_processing());
    assert_eq!(
        finish(&c, &a.id, ready(&replacement)),
        Outcome::Job(JobOutcome::Recorded { queued: vec![] })
    );
}

#[test]
fn the_crop_cache_evicts_least_recently_used_and_forgets_an_item_with_it() {
    let (_dir, c) = open();
    let a = image('a');
    c.apply_single(Write::InsertMedia(vec![a.clone()]))
        .expect("insert");
    let cache = |key: &str, now_us: u64, source: &str| {
        let write = Write::CacheCrop(CacheCrop {
            id: a.id.clone(),
            key: key.into(),
            size: 100,
            source: source.into(),
            version: 0,
            now_us,
            budget: 250,
        });
        match c.apply_single(write).expect("cache") {
            Outcome::Crop(done) => done,
            other => panic!("{other:?}"),
        }
    };
    let src = a.storage_key.as_str();
    assert!(cache("2026/01/a-c1x1.webp", 1, src).evicted.is_empty());
    assert!(cache("2026/01/a-c2x2.webp", 2, src).evicted.is_empty());
    c.apply_single(Write::TouchCrop {
        id: a.id.clone(),
        key: "2026/01/a-c1x1.webp".into(),
        now_us: 3,
    })
    .expect("touch");
    // A third crop does not fit 250 bytes: the least recently used (2x2) goes.
    let third = cache("2026/01/a-c3x3.webp", 4, src);
    assert_eq!(third.evicted, ["2026/01/a-c2x2.webp"]);
    assert_eq!(
        c.cached_crop(&a.id, "2026/01/a-c1x1").expect("read"),
        Some(("2026/01/a-c1x1.webp".to_owned(), 3))
    );
    assert_eq!(
        c.owner_of_file("2026/01/a-c3x3.webp").expect("owner"),
        Some(a.id.clone())
    );
    // A crop made from a file since replaced is not kept.
    assert!(!cache("2026/01/a-c4x4.webp", 5, "2026/01/old.png").kept);
    // Deleting the item queues its cached crops with its files.
    c.apply_single(Write::DeleteMedia { id: a.id.clone() })
        .expect("delete");
    let pending = c.pending_deletes().expect("pending");
    for key in [
        "2026/01/a-c1x1.webp",
        "2026/01/a-c3x3.webp",
        "2026/01/a-c4x4.webp",
    ] {
        assert!(
            pending.iter().any(|p| p == key),
            "{key} queued: {pending:?}"
        );
    }
    assert!(c.cached_crops_of(&a.id).expect("read").is_empty());
}

#[test]
fn a_replaced_file_takes_its_cached_crops_with_it() {
    let (_dir, c) = open();
    let a = image('a');
    c.apply_single(Write::InsertMedia(vec![a.clone()]))
        .expect("insert");
    let crop = "2026/01/aaaaaaaaaaaaaaaa-c10x10.webp";
    c.apply_single(Write::CacheCrop(CacheCrop {
        id: a.id.clone(),
        key: crop.into(),
        size: 100,
        source: a.storage_key.clone(),
        version: 0,
        now_us: 1,
        budget: 1 << 20,
    }))
    .expect("cache");
    let replacement = MediaRecord {
        storage_key: "2026/02/bbbbbbbbbbbbbbbb.png".into(),
        ..a.clone()
    };
    c.apply_single(Write::ReplaceFile(Box::new(replacement)))
        .expect("replace");
    assert!(c.cached_crops_of(&a.id).expect("read").is_empty());
    assert_eq!(c.owner_of_file(crop).expect("owner"), None);
    assert!(
        c.pending_deletes()
            .expect("pending")
            .iter()
            .any(|k| k == crop)
    );
}
