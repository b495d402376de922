//! Pipeline throughput on a thread pool, for `make bench-compare`:
//!
//! `cargo run --release --example throughput -- FILE [--threads N] [--count N] [--encode-only]`
//!
//! Runs the whole pipeline (decode → orient → cascaded resize → 4 WebP variants at q80
//! method 4 → placeholders) `count` times on `threads` rayon threads and prints one JSON
//! line: images per second and the bytes of one image's variants. `--encode-only` first
//! decodes and resizes once, then times only the WebP encoding of the same variants (the
//! floor the pipeline is compared with).

use std::time::Instant;

use darkroom::media::image::{Settings, Worker, decode_for_variants, encode_variants};
use darkroom::media::sniff;
use rayon::prelude::*;

struct Args {
    file: String,
    threads: usize,
    count: usize,
    encode_only: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        file: String::new(),
        threads: 2,
        count: 16,
        encode_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match a.as_str() {
            "--threads" => args.threads = number("--threads")?,
            "--count" => args.count = number("--count")?,
            "--encode-only" => args.encode_only = true,
            file if !file.starts_with("--") => args.file = file.to_owned(),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.file.is_empty() {
        return Err("usage: throughput FILE [--threads N] [--count N] [--encode-only]".into());
    }
    Ok(args)
}

fn main() -> Result<(), String> {
    let args = parse()?;
    let bytes = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let kind = sniff::sniff(&bytes).ok_or("not a supported file")?;
    let settings = Settings::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .map_err(|e| e.to_string())?;

    let (elapsed, variant_bytes, stages) = if args.encode_only {
        // The encoder's input alone: every variant's pixels, the decoded picture left out.
        let source =
            decode_for_variants(&bytes, kind, &settings, &[]).map_err(|e| e.to_string())?;
        let (mut images, has_alpha) = Worker::new()
            .resize_all(source)
            .map_err(|e| e.to_string())?;
        images.remove(0);
        let one = encode_variants(&images, has_alpha, &settings).map_err(|e| e.to_string())?;
        let started = Instant::now();
        pool.install(|| {
            (0..args.count).into_par_iter().for_each(|_| {
                let _ = encode_variants(&images, has_alpha, &settings);
            })
        });
        let bytes = one.iter().map(|v| v.webp.len()).sum::<usize>();
        (started.elapsed(), bytes, String::new())
    } else {
        let one = Worker::new()
            .process(&bytes, kind, &settings)
            .map_err(|e| e.to_string())?;
        let started = Instant::now();
        pool.install(|| {
            (0..args.count)
                .into_par_iter()
                .for_each_init(Worker::new, |w, _| {
                    let _ = w.process(&bytes, kind, &settings);
                })
        });
        let t = one.timings;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let stages = format!(
            ",\"stage_ms\":{{\"decode\":{:.1},\"resize\":{:.1},\"encode\":{:.1}}}",
            ms(t.decode),
            ms(t.resize),
            ms(t.encode)
        );
        let bytes = one.variants.iter().map(|v| v.webp.len()).sum::<usize>();
        (started.elapsed(), bytes, stages)
    };
    let per_sec = args.count as f64 / elapsed.as_secs_f64();
    println!(
        "{{\"tool\":\"darkroom{}\",\"threads\":{},\"count\":{},\"seconds\":{:.3},\"img_per_s\":{:.2},\"bytes\":{}{}}}",
        if args.encode_only { "-encode-only" } else { "" },
        args.threads,
        args.count,
        elapsed.as_secs_f64(),
        per_sec,
        variant_bytes,
        stages
    );
    Ok(())
}
