//! The image pipeline per stage (decode, resize, encode) and whole, on the 1920x1080
//! progressive JPEG, plus full vs shrink-on-load decode of a 14 MP JPEG:
//! `cargo bench --bench pipeline`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use darkroom::media::image::{
    Settings, Source, Worker, decode, decode_for_variants, encode_variants,
};
use darkroom::model::MediaType;

const PHOTO: &str = "tests/fixtures/jpeg/elephants_1920x1080_progressive.jpg";
const CAMERA: &str = "tests/fixtures/jpeg/colorfulcups_2560x1600_progressive_gps.jpg";

fn pipeline(c: &mut Criterion) {
    let bytes = std::fs::read(PHOTO).expect("fixture");
    let settings = Settings::default();
    let mut group = c.benchmark_group("pipeline_1920x1080");
    group.sample_size(20);
    group.bench_function("decode + orient", |b| {
        b.iter(|| black_box(decode(&bytes, MediaType::Jpeg, settings.max_pixels).expect("decode")))
    });
    let mut worker = Worker::new();
    let decoded = decode(&bytes, MediaType::Jpeg, settings.max_pixels).expect("decode");
    group.bench_function("resize: cascade 1200/800/400/150 (Lanczos3)", |b| {
        b.iter_batched(
            || Source {
                width: decoded.width(),
                height: decoded.height(),
                image: decoded.clone(),
            },
            |source| black_box(worker.resize_all(source).expect("resize")),
            BatchSize::LargeInput,
        )
    });
    // The encoder's input alone: every variant's pixels (the decoded picture left out).
    let source = decode_for_variants(&bytes, MediaType::Jpeg, &settings, &[]).expect("decode");
    let (mut images, has_alpha) = worker.resize_all(source).expect("resize");
    images.remove(0);
    group.bench_function("encode: 4 WebP variants q80 m4", |b| {
        b.iter(|| black_box(encode_variants(&images, has_alpha, &settings).expect("encode")))
    });
    group.bench_function("whole: 4 WebP variants q80 m4 + placeholders", |b| {
        b.iter(|| {
            black_box(
                worker
                    .process(&bytes, MediaType::Jpeg, &settings)
                    .expect("process"),
            )
        })
    });
    group.finish();

    // A 4800x3000 (14 MP) baseline JPEG made from the camera photo: wide enough for the
    // 1/4-scale decode.
    let photo = image::load_from_memory(&std::fs::read(CAMERA).expect("fixture"))
        .expect("decode")
        .into_rgb8();
    let big = image::imageops::resize(&photo, 4800, 3000, image::imageops::Triangle);
    let mut large = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut large, 85)
        .encode_image(&big)
        .expect("encode");
    let mut group = c.benchmark_group("decode_4800x3000");
    group.sample_size(20);
    group.bench_function("full decode", |b| {
        b.iter(|| black_box(decode(&large, MediaType::Jpeg, settings.max_pixels).expect("decode")))
    });
    group.bench_function("shrink-on-load (1/4 scale, covers 1200 px)", |b| {
        b.iter(|| {
            black_box(decode_for_variants(&large, MediaType::Jpeg, &settings, &[]).expect("decode"))
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
