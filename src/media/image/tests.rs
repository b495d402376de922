//! The whole pipeline over real photos from `tests/fixtures`.

use std::io::Cursor;

use super::*;
use crate::media::probe::ProbeError;
use crate::media::test_fixture as fixture;

fn webp_size(data: &[u8]) -> (u32, u32) {
    let d = crate::media::probe::raster_dimensions(
        MediaType::Webp,
        &mut Cursor::new(data),
        &crate::media::Limits::default(),
    )
    .expect("a WebP");
    (d.width, d.height)
}

#[test]
fn every_orientation_comes_out_upright_with_the_right_variants() {
    let mut worker = Worker::new();
    for o in 1..=8 {
        let bytes = fixture(&format!("jpeg/orientation/Landscape_{o}.jpg"));
        let p = worker
            .process(&bytes, MediaType::Jpeg, &Settings::default())
            .expect("process");
        assert_eq!((p.width, p.height), (600, 450), "orientation {o}");
        let widths: Vec<u32> = p.variants.iter().map(|v| v.width).collect();
        assert_eq!(widths, [400, 150], "orientation {o}");
        for v in &p.variants {
            assert_eq!(webp_size(&v.webp), (v.width, v.height));
            assert_eq!(v.height, scaled_height(600, 450, v.width));
        }
    }
}

#[test]
fn decodes_each_format_and_never_upscales() {
    let mut worker = Worker::new();
    for (path, kind, size, widths) in [
        ("jpeg/cmyk_100x100.jpg", MediaType::Jpeg, (100, 100), vec![]),
        (
            "jpeg/grace_hopper_512x600.jpg",
            MediaType::Jpeg,
            (512, 600),
            vec![400, 150],
        ),
        (
            "png/spacefun_2048x1542_palette.png",
            MediaType::Png,
            (2048, 1542),
            vec![1200, 800, 400, 150],
        ),
        (
            "png/chessboard_200x200_rgb16.png",
            MediaType::Png,
            (200, 200),
            vec![150],
        ),
        (
            "gif/toucan_200x150_static_transparent.gif",
            MediaType::Gif,
            (200, 150),
            vec![150],
        ),
        (
            "webp/flower_480x360_lossy_exif.webp",
            MediaType::Webp,
            (480, 360),
            vec![400, 150],
        ),
        (
            "webp/skimage_logo_500x500_lossless.webp",
            MediaType::Webp,
            (500, 500),
            vec![400, 150],
        ),
    ] {
        let p = worker
            .process(&fixture(path), kind, &Settings::default())
            .expect(path);
        assert_eq!((p.width, p.height), size, "{path}");
        let got: Vec<u32> = p.variants.iter().map(|v| v.width).collect();
        assert_eq!(got, widths, "{path}");
        assert!(p.dominant_color.starts_with('#') && p.dominant_color.len() == 7);
        assert!(!p.thumbhash.is_empty());
    }
}

#[test]
fn bombs_and_garbage_are_refused() {
    let mut worker = Worker::new();
    let bomb = worker.process(
        &fixture("hostile/png_bomb_50000x50000.png"),
        MediaType::Png,
        &Settings::default(),
    );
    assert!(matches!(
        bomb,
        Err(PipelineError::Probe(ProbeError::TooLarge { .. }))
    ));
    let huge_gif = fixture("hostile/gif_huge_logical_screen_65535x65535.gif");
    assert!(
        worker
            .process(&huge_gif, MediaType::Gif, &Settings::default())
            .is_err()
    );
    let truncated = worker.process(
        &fixture("hostile/truncated_rocket.jpg"),
        MediaType::Jpeg,
        &Settings::default(),
    );
    if let Ok(p) = truncated {
        assert_eq!(
            (p.width, p.height),
            (640, 427),
            "a partial decode keeps the size"
        );
    }
    assert!(
        worker
            .process(
                b"\xFF\xD8\xFF\xE0garbage",
                MediaType::Jpeg,
                &Settings::default()
            )
            .is_err()
    );
}

/// A 4800x3000 baseline JPEG made from the camera fixture (a 14 MP original).
fn large_jpeg() -> Vec<u8> {
    let photo = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    let small = image::load_from_memory(&photo).expect("decode").into_rgb8();
    let big = image::imageops::resize(&small, 4800, 3000, image::imageops::Triangle);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&big)
        .expect("encode");
    out
}

#[test]
fn large_jpegs_are_decoded_scaled_with_the_same_variants() {
    let bytes = large_jpeg();
    let scaled =
        decode_for_variants(&bytes, MediaType::Jpeg, &Settings::default(), &[]).expect("decode");
    assert_eq!((scaled.width, scaled.height), (4800, 3000));
    assert_eq!(
        (scaled.image.width(), scaled.image.height()),
        (1200, 750),
        "1/4 scale still covers the 1200 px variant"
    );
    let p = Worker::new()
        .process(&bytes, MediaType::Jpeg, &Settings::default())
        .expect("process");
    assert_eq!((p.width, p.height), (4800, 3000));
    let sizes: Vec<(u32, u32)> = p.variants.iter().map(|v| (v.width, v.height)).collect();
    assert_eq!(sizes, [(1200, 750), (800, 500), (400, 250), (150, 94)]);

    // The scaled decode shows the same picture as the full one.
    let full = decode(&bytes, MediaType::Jpeg, 100_000_000).expect("full");
    let full = image::imageops::thumbnail(&full.into_rgb8(), 300, 188);
    let quarter = image::imageops::thumbnail(&scaled.image.into_rgb8(), 300, 188);
    let diff: u64 = full
        .as_raw()
        .iter()
        .zip(quarter.as_raw())
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    let mean = diff as f64 / full.as_raw().len() as f64;
    assert!(mean < 3.0, "mean channel difference {mean:.2}");

    // Every JPEG decodes at the smallest 1/8, 1/4 or 1/2 of its size that covers its
    // largest variant (1200 px): 2560 at 1/2; 1920, and one no wider than a variant, whole.
    for (path, decoded) in [
        ("jpeg/colorfulcups_2560x1600_progressive_gps.jpg", 1280),
        ("jpeg/elephants_1920x1080_progressive.jpg", 1920),
        ("jpeg/hopper_128x128.jpg", 128),
    ] {
        let bytes = fixture(path);
        let source =
            decode_for_variants(&bytes, MediaType::Jpeg, &Settings::default(), &[]).expect(path);
        assert_eq!(source.image.width(), decoded, "{path}");
    }
}

/// Frame count, delays (ms) and loop count of an animated file, read back by a decoder.
fn frames_of(bytes: &[u8], kind: MediaType) -> (Vec<u32>, u32, u32) {
    use image::AnimationDecoder;
    let (frames, (w, h)): (image::Frames<'_>, (u32, u32)) = match kind {
        MediaType::Gif => {
            let d = image::codecs::gif::GifDecoder::new(Cursor::new(bytes)).expect("gif");
            let size = image::ImageDecoder::dimensions(&d);
            (d.into_frames(), size)
        }
        _ => {
            let d = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes)).expect("webp");
            let size = image::ImageDecoder::dimensions(&d);
            (d.into_frames(), size)
        }
    };
    let delays = frames
        .map(|f| {
            let (n, d) = f.expect("frame").delay().numer_denom_ms();
            n / d
        })
        .collect();
    (delays, w, h)
}

#[test]
fn an_animation_keeps_every_frame_and_its_timing_in_each_variant() {
    let mut worker = Worker::new();
    for (path, kind) in [
        ("gif/iss634_245x245_animated.gif", MediaType::Gif),
        ("webp/iss634_245x245_animated.webp", MediaType::Webp),
    ] {
        let bytes = fixture(path);
        let (source, ..) = frames_of(&bytes, kind);
        assert!(source.len() > 10, "{path}: {} frames", source.len());
        let p = worker
            .process_with_crops(
                &bytes,
                kind,
                &Settings::default(),
                &[],
                Focal::CENTRE,
                Make::Animated,
            )
            .expect("animate");
        let widths: Vec<u32> = p.variants.iter().map(|v| v.width).collect();
        assert_eq!(widths, [150], "{path}");
        assert!(!p.thumbhash.is_empty());
        for v in &p.variants {
            let (delays, w, h) = frames_of(&v.webp, MediaType::Webp);
            assert_eq!((w, h), (v.width, v.height), "{path}");
            // Every frame is there (libwebp may merge two identical ones: their times add
            // up), and the whole animation lasts as long as the source's.
            let shown: Vec<u32> = source
                .iter()
                .map(|d| crate::media::anim::shown_ms(u64::from(*d)) as u32)
                .collect();
            assert_eq!(
                delays.iter().sum::<u32>(),
                shown.iter().sum::<u32>(),
                "{path}"
            );
            assert!(
                delays.len() + 2 >= shown.len(),
                "{path}: {delays:?} vs {shown:?}"
            );
        }
    }
}

#[test]
fn frames_past_the_limit_stop_the_run_and_a_cut_animation_keeps_what_decodes() {
    let bytes = fixture("gif/iss634_245x245_animated.gif");
    let settings = Settings {
        max_frames: 5,
        ..Settings::default()
    };
    let e = Worker::new()
        .animate(&bytes, MediaType::Gif, &settings)
        .expect_err("over the frame limit");
    assert!(e.to_string().contains("more than 5 frames"), "{e}");
    // Cut in half: the frames before the cut play.
    let half = &bytes[..bytes.len() / 2];
    let made = Worker::new()
        .animate(half, MediaType::Gif, &Settings::default())
        .expect("the first half");
    let (delays, ..) = frames_of(&made[0].webp, MediaType::Webp);
    let (all, ..) = frames_of(&bytes, MediaType::Gif);
    assert!(
        delays.len() > 1 && delays.len() < all.len(),
        "{} of {}",
        delays.len(),
        all.len()
    );
}

/// A 200x100 GIF of three 1x1 frames, with "repeat `repeat`" (none: no NETSCAPE block).
fn tiny_gif(repeat: Option<u16>) -> Vec<u8> {
    let mut g = b"GIF89a\xc8\x00\x64\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff".to_vec();
    if let Some(n) = repeat {
        g.extend(b"\x21\xff\x0bNETSCAPE2.0\x03\x01");
        g.extend(n.to_le_bytes());
        g.push(0);
    }
    for _ in 0..3 {
        g.extend([0x21, 0xF9, 4, 0, 5, 0, 0, 0]);
        g.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0]);
    }
    g.push(0x3B);
    g
}

/// The loop count in an animated WebP's ANIM chunk.
fn webp_loops(webp: &[u8]) -> u16 {
    let at = webp
        .windows(4)
        .position(|w| w == b"ANIM")
        .expect("ANIM chunk");
    u16::from_le_bytes([webp[at + 12], webp[at + 13]])
}

#[test]
fn a_gif_plays_as_often_as_browsers_play_it() {
    // No NETSCAPE block: once; "repeat 3": four times; "repeat 0": forever.
    for (repeat, plays) in [(None, 1), (Some(3), 4), (Some(0), 0)] {
        let made = Worker::new()
            .animate(&tiny_gif(repeat), MediaType::Gif, &Settings::default())
            .expect("animate");
        assert_eq!(made.len(), 1, "one variant, 150 px");
        assert_eq!(webp_loops(&made[0].webp), plays, "{repeat:?}");
    }
}
