//! Hostile media found by review, each made here (never a large fixture): through the
//! upload path for its status, and through `darkroom check` (the same checks and job in
//! a process of their own) for what it costs in CPU time and peak memory, measured by
//! that process itself. The bounds are generous multiples of what the fixed code takes
//! and small fractions of what the old code took.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestServer, error_code, fixture};

/// `darkroom check` on `bytes`: its JSON report.
fn check(bytes: &[u8]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("input");
    std::fs::write(&path, bytes).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_darkroom"))
        .arg("check")
        .arg(&path)
        .env("DARKROOM_DATA_DIR", dir.path())
        .output()
        .expect("darkroom check");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn mb(report: &Value) -> f64 {
    report["peakRssBytes"].as_f64().expect("peak RSS") / 1e6
}

fn cpu(report: &Value) -> f64 {
    report["cpuSeconds"].as_f64().expect("CPU seconds")
}

async fn upload(s: &TestServer, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    s.upload_parts(vec![(name.to_owned(), bytes)], &[]).await
}

/// A PNG chunk with its CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    c.extend_from_slice(kind);
    c.extend_from_slice(data);
    c.extend_from_slice(&crc.sum().to_be_bytes());
    c
}

fn zlib(data: impl FnOnce(&mut dyn Write)) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    data(&mut z);
    z.finish().expect("zlib")
}

/// A 1x1 grey PNG with an iCCP chunk that inflates to 400 MB of zeros (407 KB).
fn icc_bomb_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]));
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib(|z| {
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..400 {
            z.write_all(&zeros).expect("deflate");
        }
    }));
    png.extend(chunk(b"iCCP", &iccp));
    png.extend(chunk(
        b"IDAT",
        &zlib(|z| z.write_all(&[0, 128]).expect("row")),
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[tokio::test]
async fn an_icc_bomb_png_is_cleaned_at_a_bounded_cost() {
    let bomb = icc_bomb_png();
    assert!(bomb.len() < 500_000);
    let report = check(&bomb);
    assert_eq!(report["verdict"], "accepted", "{report}");
    assert_eq!(report["variants"], 0, "processed: {report}");
    assert!(
        mb(&report) < 100.0,
        "peak {} MB (it took 1.3 GB)",
        mb(&report)
    );
    let s = TestServer::spawn().await;
    let resp = s.upload_parts(vec![("bomb.png".into(), bomb)], &[]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    let stored = s.served(&body["data"][0]).await;
    assert!(
        stored.len() < 1000,
        "the profile was dropped: {} bytes",
        stored.len()
    );
}

/// A JPEG of `segments` 20-byte APP1 segments whose EXIF claims 65,535 IFD entries.
fn exif_loop_jpeg(segments: usize) -> Vec<u8> {
    let base = fixture("jpeg/hopper_128x128.jpg");
    let mut app1 = vec![0xFF, 0xE1, 0, 20];
    app1.extend_from_slice(b"Exif\0\0MM\0\x2a\0\0\0\x08\xff\xff\0\0");
    let mut jpeg = base[..2].to_vec();
    for _ in 0..segments {
        jpeg.extend_from_slice(&app1);
    }
    jpeg.extend_from_slice(&base[2..]);
    jpeg
}

#[tokio::test]
async fn exif_that_claims_more_entries_than_it_has_costs_its_bytes_not_its_claims() {
    // Under the record bound: accepted, at the cost of reading 1 MB (it took 4.5 s).
    let report = check(&exif_loop_jpeg(50_000));
    assert_eq!(report["verdict"], "accepted", "{report}");
    assert!(cpu(&report) < 2.0, "{} CPU seconds", cpu(&report));
    // Past it (250,000 segments, 5 MB: 22.7 s of CPU before): a clear refusal.
    let report = check(&exif_loop_jpeg(250_000));
    assert_eq!(report["code"], "file_too_complex", "{report}");
    assert!(cpu(&report) < 2.0, "{} CPU seconds", cpu(&report));
    let s = TestServer::spawn().await;
    let resp = upload(&s, "loop.jpg", exif_loop_jpeg(250_000)).await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "file_too_complex", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("100000 JPEG segments")),
        "{body}"
    );
}

/// The fixture's progressive JPEG with its smallest scan (a refinement) repeated `extra`
/// times before its end (each a pass over the whole image for a decoder).
fn scan_bomb(extra: usize) -> Vec<u8> {
    let jpeg = fixture("jpeg/elephants_1920x1080_progressive.jpg");
    let eoi = jpeg.len() - 2;
    assert_eq!(&jpeg[eoi..], [0xFF, 0xD9]);
    let mut starts: Vec<usize> = (0..eoi - 1)
        .filter(|&i| jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA)
        .collect();
    starts.push(eoi);
    let (from, to) = starts
        .windows(2)
        .map(|w| (w[0], w[1]))
        .min_by_key(|(a, b)| b - a)
        .expect("scans");
    let scan = jpeg[from..to].to_vec();
    let mut bomb = jpeg[..eoi].to_vec();
    for _ in 0..extra {
        bomb.extend_from_slice(&scan);
    }
    bomb.extend_from_slice(&[0xFF, 0xD9]);
    bomb
}

#[tokio::test]
async fn a_progressive_jpeg_with_thousands_of_scans_is_refused_before_any_decode() {
    let bomb = scan_bomb(2000);
    assert!(bomb.len() < 50 << 20, "{} bytes", bomb.len());
    let report = check(&bomb);
    assert_eq!(report["code"], "file_too_complex", "{report}");
    assert!(cpu(&report) < 2.0, "{} CPU seconds", cpu(&report));
    let s = TestServer::spawn().await;
    let resp = upload(&s, "scans.jpg", bomb).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "file_too_complex"
    );
}

/// A PNG `w` x `h`, 16-bit RGBA, one colour (compresses to almost nothing).
fn solid_png_16bit(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    png.extend(chunk(b"IHDR", &ihdr));
    let row: Vec<u8> = std::iter::once(0)
        .chain((0..w).flat_map(|_| [0x40, 0x00, 0x80, 0x00, 0xC0, 0x00, 0xFF, 0xFF]))
        .collect();
    png.extend(chunk(
        b"IDAT",
        &zlib(|z| {
            for _ in 0..h {
                z.write_all(&row).expect("row");
            }
        }),
    ));
    png.extend(chunk(b"IEND", &[]));
    png
}

#[tokio::test]
async fn a_16_bit_png_is_decoded_by_rows_at_8_bits_and_shrunk_on_load() {
    // 20 MP at 16 bits RGBA: 160 MB of samples, which the old decode held twice over.
    let png = solid_png_16bit(5000, 4000);
    let report = check(&png);
    assert_eq!(report["verdict"], "accepted", "{report}");
    assert_eq!(report["variants"], 4, "{report}");
    assert!(mb(&report) < 120.0, "peak {} MB", mb(&report));
}

/// A lossless WebP header claiming `w` x `h` (what the upload check reads).
fn vp8l_header(w: u32, h: u32) -> Vec<u8> {
    let bits = (w - 1) | ((h - 1) << 14) | (1 << 28);
    let mut vp8l = vec![0x2F];
    vp8l.extend_from_slice(&bits.to_le_bytes());
    vp8l.extend_from_slice(&[0; 16]);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&((4 + 8 + vp8l.len()) as u32).to_le_bytes());
    webp.extend_from_slice(b"WEBPVP8L");
    webp.extend_from_slice(&(vp8l.len() as u32).to_le_bytes());
    webp.extend(vp8l);
    webp
}

#[tokio::test]
async fn images_whose_decode_would_pass_the_memory_budget_are_refused_at_upload() {
    let s = TestServer::spawn().await;
    // 10000x10000 lossless WebP: about 1.2 GB to decode, past the 1 GB budget.
    let resp = upload(&s, "solid.webp", vp8l_header(10_000, 10_000)).await;
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "image_too_large", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("memory")),
        "{body}"
    );
}

#[tokio::test]
async fn a_webp_declaring_chunks_past_its_end_is_refused_without_allocating_them() {
    // 30 bytes: a VP8X chunk claiming 4 GiB.
    let mut webp = b"RIFF\x16\0\0\0WEBPVP8X\xf0\xff\xff\xff".to_vec();
    webp.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let report = check(&webp);
    assert_eq!(report["verdict"], "refused", "{report}");
    assert!(mb(&report) < 50.0, "peak {} MB", mb(&report));
    let s = TestServer::spawn().await;
    let resp = upload(&s, "tiny.webp", webp).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn svg_bypasses_and_the_svg_that_panicked_are_clear_refusals() {
    let s = TestServer::spawn().await;
    for (svg, code) in [
        (
            r#"<svg xmlns="http://www.w3.org/2000/svg"><s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script></svg>"#,
            "unsafe_svg",
        ),
        (
            r#"<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript&#58;alert(1)"><text>x</text></a></svg>"#,
            "unsafe_svg",
        ),
        (
            r#"<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:u&#114;l(https://evil.example/p)"/></svg>"#,
            "unsafe_svg",
        ),
        (
            r#"<svg xmlns="http://www.w3.org/2000/svg"><use href="data:image/svg+xml;base64,PHN2Zy8+"/></svg>"#,
            "unsafe_svg",
        ),
        (
            r#"<svg xmlns="http://www.w3.org/2000/svg"><a><set attributeName="href" to="javascript:alert(1)"/></a></svg>"#,
            "unsafe_svg",
        ),
        (
            r#"<!DOCTYPE svg [<!ATTLIST svg onload CDATA "alert(1)">]><svg xmlns="http://www.w3.org/2000/svg"/>"#,
            "unsafe_svg",
        ),
        ("<svg =\"x\"é>", "invalid_svg"),
    ] {
        let resp = upload(&s, "x.svg", svg.as_bytes().to_vec()).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{svg}: {body}");
        assert_eq!(body["error"]["code"], code, "{svg}: {body}");
    }
    // What is stored is the cleaned document: no stylesheet PI, no comment.
    let svg = r#"<?xml-stylesheet href="https://evil.example/x.css"?><!-- c --><svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>"#;
    let item = s
        .upload_one_bytes("clean.svg", svg.as_bytes().to_vec())
        .await;
    let stored = String::from_utf8(s.served(&item).await).expect("utf-8");
    assert!(
        !stored.contains("<?") && !stored.contains("<!--"),
        "{stored}"
    );
    assert_eq!((&item["width"], &item["height"]), (&json!(4), &json!(4)));
}
