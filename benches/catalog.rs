//! Catalog benchmarks: insert throughput with and without group commit (real fsyncs on a
//! temp file), and listing latency over one million records.
//!
//! `cargo bench --bench catalog` (set DARKROOM_BENCH_RECORDS to change the 1M).

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use darkroom::catalog::{Catalog, Write};
use darkroom::model::{FolderPath, Kind, ListQuery, MediaRecord, SortField};

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(&dir.path().join("bench.redb")).expect("open");
    let mut group = c.benchmark_group("insert_64_uploads");
    group.throughput(Throughput::Elements(64));
    group.sample_size(20);
    let mut n = 0u64;
    group.bench_function(BenchmarkId::new("commits", "64 (one per upload)"), |b| {
        b.iter(|| {
            for _ in 0..64 {
                n += 1;
                catalog
                    .apply_single(Write::InsertMedia(vec![MediaRecord::synthetic(n)]))
                    .expect("insert");
            }
        })
    });
    group.bench_function(BenchmarkId::new("commits", "1 (group commit)"), |b| {
        b.iter(|| {
            let writes = (0..64)
                .map(|_| {
                    n += 1;
                    Write::InsertMedia(vec![MediaRecord::synthetic(n)])
                })
                .collect();
            catalog.apply(writes).expect("insert");
        })
    });
    group.finish();
}

fn list_at_scale(c: &mut Criterion) {
    // `cargo test --all-targets` runs benches once without `--bench`: keep that quick.
    let default = if std::env::args().any(|a| a == "--bench") {
        1_000_000
    } else {
        2_000
    };
    let records: u64 = std::env::var("DARKROOM_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = Catalog::open(&dir.path().join("list.redb")).expect("open");
    let started = Instant::now();
    for chunk in (0..records).collect::<Vec<_>>().chunks(20_000) {
        let batch = chunk.iter().map(|&i| MediaRecord::synthetic(i)).collect();
        catalog
            .apply_single(Write::InsertMedia(batch))
            .expect("seed");
    }
    eprintln!("seeded {records} records in {:.1?}", started.elapsed());

    let folder = FolderPath::parse("/f42");
    let cases = [
        ("default (createdAt desc)", ListQuery::default()),
        (
            "folder + filename asc",
            ListQuery {
                folder: folder.clone(),
                sort: SortField::Filename,
                descending: false,
                ..Default::default()
            },
        ),
        (
            "folder + size desc, offset 500 (at 1M)",
            ListQuery {
                folder: folder.clone(),
                sort: SortField::Size,
                offset: (records / 2000).min(500) as usize,
                ..Default::default()
            },
        ),
        (
            "folder + type + createdAt",
            ListQuery {
                folder,
                kind: Some(Kind::Video),
                ..Default::default()
            },
        ),
        (
            "type=document, limit 100",
            ListQuery {
                kind: Some(Kind::Document),
                limit: 100,
                ..Default::default()
            },
        ),
    ];
    let mut group = c.benchmark_group(format!("list_{records}"));
    for (name, q) in cases {
        let page = catalog.list(&q).expect("list");
        assert!(page.total > 0 && !page.items.is_empty(), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(catalog.list(&q).expect("list")))
        });
    }
    group.sample_size(10);
    let search = ListQuery {
        search: Some("alt text 99999".into()),
        ..Default::default()
    };
    group.bench_function("search (full scan)", |b| {
        b.iter(|| black_box(catalog.list(&search).expect("list")))
    });
    group.finish();
}

criterion_group!(benches, group_commit, list_at_scale);
criterion_main!(benches);
