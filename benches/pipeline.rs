//! The image pipeline per stage and whole, on a 1920x1080 progressive JPEG photo:
//! `cargo bench --bench pipeline`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use darkroom::media::MediaType;
use darkroom::media::pipeline::{Settings, Worker, decode};

const PHOTO: &str = "tests/fixtures/jpeg/elephants_1920x1080_progressive.jpg";

fn pipeline(c: &mut Criterion) {
    let bytes = std::fs::read(PHOTO).expect("fixture");
    let settings = Settings::default();
    let mut group = c.benchmark_group("pipeline_1920x1080");
    group.sample_size(20);
    group.bench_function("decode + orient", |b| {
        b.iter(|| black_box(decode(&bytes, MediaType::Jpeg, settings.max_pixels).expect("decode")))
    });
    let mut worker = Worker::new();
    group.bench_function("whole: 4 WebP variants q80 m4 + placeholders", |b| {
        b.iter(|| {
            black_box(
                worker
                    .process(&bytes, MediaType::Jpeg, &settings)
                    .expect("process"),
            )
        })
    });
    let rgb = decode(&bytes, MediaType::Jpeg, settings.max_pixels)
        .expect("decode")
        .into_rgb8();
    for width in [1200u32, 150] {
        let height = rgb.height() * width / rgb.width();
        let small = image::imageops::thumbnail(&rgb, width, height);
        group.bench_function(format!("encode only: {width}px WebP q80 m4"), |b| {
            b.iter(|| {
                let mut config = webp::WebPConfig::new().expect("config");
                config.quality = 80.0;
                config.method = 4;
                let enc = webp::Encoder::from_rgb(small.as_raw(), width, height);
                black_box(enc.encode_advanced(&config).expect("encode").len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
