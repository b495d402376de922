//! Stripping: what goes, what stays, and that the pictures do not change.

use super::*;
use crate::media::limits::Limits;
use crate::media::probe::raster_dimensions;
use crate::media::test_fixture as fixture;
use std::io::Cursor;

fn stripped(kind: MediaType, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(strip(kind, &mut Cursor::new(bytes), &mut out, &Limits::default()).expect("strip"));
    out
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn jpeg_loses_gps_and_xmp_but_keeps_scan_and_orientation() {
    let original = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    let out = stripped(MediaType::Jpeg, &original);
    assert!(find(&original, b"http://ns.adobe.com/xap/1.0/") || find(&original, b"Exif\0\0"));
    assert!(!find(&out, b"http://ns.adobe.com/xap/1.0/"), "no XMP");
    assert!(!find(&out, b"GPS"), "no GPS");
    // The metadata sits before the scans; the last 500 KB (scan data) are untouched.
    let tail = 500_000;
    assert_eq!(
        &out[out.len() - tail..],
        &original[original.len() - tail..],
        "scans untouched"
    );
    assert!(out.len() < original.len());
    let d = raster_dimensions(MediaType::Jpeg, &mut Cursor::new(&out), &Limits::default())
        .expect("still a JPEG");
    assert_eq!((d.width, d.height), (2560, 1600));

    for o in [6u16, 8] {
        let rotated = fixture(&format!("jpeg/orientation/Landscape_{o}.jpg"));
        let out = stripped(MediaType::Jpeg, &rotated);
        let d = raster_dimensions(MediaType::Jpeg, &mut Cursor::new(&out), &Limits::default())
            .expect("jpeg");
        assert_eq!((d.width, d.height), (600, 450), "orientation {o} survives");
    }
}

#[test]
fn data_after_the_image_is_dropped() {
    let zip = b"PK\x03\x04\x14\0\0\0\0\0payload.sh#!/bin/sh\nrm -rf /\n";
    for (kind, name) in [
        (MediaType::Jpeg, "jpeg/grace_hopper_512x600.jpg"),
        (MediaType::Jpeg, "jpeg/elephants_1920x1080_progressive.jpg"),
        (
            MediaType::Jpeg,
            "jpeg/colorfulcups_2560x1600_progressive_gps.jpg",
        ),
        (MediaType::Png, "png/spacefun_2048x1542_palette.png"),
        (MediaType::Webp, "webp/skimage_logo_500x500_lossless.webp"),
    ] {
        let original = fixture(name);
        let clean = stripped(kind, &original);
        let mut smuggled = original.clone();
        smuggled.extend_from_slice(zip);
        assert_eq!(stripped(kind, &smuggled), clean, "{name}");
        assert!(!find(&clean, b"PK\x03\x04"), "{name}");
    }
    // A JPEG whose scans are exactly the original's: stripping kept every scan byte.
    let plain = fixture("jpeg/elephants_1920x1080_progressive.jpg");
    let out = stripped(MediaType::Jpeg, &plain);
    let sos = |b: &[u8]| b.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
    assert_eq!(&out[sos(&out)..], &plain[sos(&plain)..plain.len()]);
}

/// Decoded RGBA pixels, as the image pipeline's decoder sees them.
fn pixels(bytes: &[u8]) -> Vec<u8> {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
        .expect("decodes")
        .to_rgba8()
        .into_raw()
}

/// Bytes removed before the first scan (the rest is as long as it was).
fn removed_before_scan(original: &[u8], stripped: &[u8]) -> usize {
    let sos = |b: &[u8]| b.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
    sos(original) - sos(stripped)
}

#[test]
fn marker_like_bytes_in_damaged_scan_data_are_copied_not_interpreted() {
    // Found by `make fuzz` (strip): scan bytes that look like an APP1 marker were
    // dropped as metadata, and the picture changed.
    let damaged = fixture("fuzz/strip-8581a0e2.jpg");
    let out = stripped(MediaType::Jpeg, &damaged);
    assert_eq!(pixels(&out), pixels(&damaged));
    // The XMP of its header still goes; the copy the fuzzer pasted into the scan data
    // keeps its place and length, its content zeroed (metadata between scans is blanked).
    assert!(!find(&out, b"http://ns.adobe.com/xap/1.0/"));
    assert_eq!(
        out.len() + removed_before_scan(&damaged, &out),
        damaged.len()
    );
}

#[test]
fn a_jpeg_cut_short_in_its_scan_is_kept_as_it_came() {
    let original = fixture("jpeg/hopper_128x128.jpg");
    let cut = &original[..original.len() - 100];
    let out = stripped(MediaType::Jpeg, cut);
    let sos = |b: &[u8]| b.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
    assert_eq!(&out[sos(&out)..], &cut[sos(cut)..]);
}

#[test]
fn png_loses_text_and_exif_chunks() {
    let mut png = fixture("png/chessboard_200x200_rgb16.png");
    let iend = png.len() - 12;
    let mut text = Vec::new();
    let data = b"Comment\0taken at 48.85N 2.35E";
    text.extend_from_slice(&(data.len() as u32).to_be_bytes());
    text.extend_from_slice(b"tEXt");
    text.extend_from_slice(data);
    text.extend_from_slice(&[0, 0, 0, 0]);
    png.splice(iend..iend, text);
    // And chunks not on the allow-list: C2PA (which can carry a location), an editor's.
    let c2pa = b"\0\0\0\x05caBXGPS!!\0\0\0\0";
    png.splice(iend..iend, c2pa.iter().copied());
    let out = stripped(MediaType::Png, &png);
    assert!(!find(&out, b"48.85N") && !find(&out, b"caBX") && !find(&out, b"GPS!!"));
    // The picture is untouched: the fixture's chunks, less its editor's vpAg.
    let original = fixture("png/chessboard_200x200_rgb16.png");
    let vpag = original
        .windows(4)
        .position(|w| w == b"vpAg")
        .expect("vpAg")
        - 4;
    let mut expected = original.clone();
    expected.drain(vpag..vpag + 21);
    assert_eq!(out, expected);
}

#[test]
fn webp_loses_exif_and_stays_valid() {
    let original = fixture("webp/flower_480x360_lossy_exif.webp");
    assert!(find(&original, b"EXIF"));
    let out = stripped(MediaType::Webp, &original);
    assert!(!find(&out, b"XMP "));
    let riff = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
    assert_eq!(riff + 8, out.len(), "RIFF size matches");
    let d = raster_dimensions(MediaType::Webp, &mut Cursor::new(&out), &Limits::default())
        .expect("webp");
    assert_eq!((d.width, d.height), (480, 360));
    assert!(out.len() < original.len());
}

#[test]
fn other_types_are_left_alone() {
    let mut out = Vec::new();
    assert!(
        !strip(
            MediaType::Pdf,
            &mut Cursor::new(b"%PDF-1.4"),
            &mut out,
            &Limits::default()
        )
        .expect("ok")
    );
    assert!(
        strip(
            MediaType::Jpeg,
            &mut Cursor::new(b"not a jpeg"),
            &mut out,
            &Limits::default()
        )
        .is_err()
    );
}

/// `bytes` with a RIFF chunk appended (the RIFF size grown to match).
fn with_chunk(bytes: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

#[test]
fn webp_keeps_only_the_chunks_of_its_picture() {
    let original = fixture("webp/flower_480x360_lossy_exif.webp");
    let odd = with_chunk(&with_chunk(&original, b"C2PA", b"GPS!!"), b"ZZZZ", b"x");
    let out = stripped(MediaType::Webp, &odd);
    assert!(!find(&out, b"C2PA") && !find(&out, b"GPS!!") && !find(&out, b"ZZZZ"));
    // A last dropped chunk of odd size without its pad byte is no reason to refuse.
    let unpadded = &odd[..odd.len() - 1];
    let mut fixed = unpadded.to_vec();
    let riff = (fixed.len() - 8) as u32;
    fixed[4..8].copy_from_slice(&riff.to_le_bytes());
    assert_eq!(stripped(MediaType::Webp, &fixed), out);
    // A RIFF holding no picture is refused, not stored as an empty file.
    let mut empty = Vec::new();
    let no_picture = strip(
        MediaType::Webp,
        &mut Cursor::new(b"RIFF\x04\0\0\0WEBP"),
        &mut empty,
        &Limits::default(),
    );
    assert!(no_picture.is_err());
}

#[test]
fn jpeg_thumbnails_go_with_the_metadata() {
    let original = fixture("jpeg/hopper_128x128.jpg");
    assert_eq!(&original[2..4], [0xFF, 0xE0], "starts with JFIF");
    let app0_len = usize::from(u16::from_be_bytes([original[4], original[5]]));
    let after_jfif = 4 + app0_len;
    // A JFIF thumbnail of 1x1 (3 bytes of RGB), and a JFXX extension with its own picture.
    let mut jfif = original[4..after_jfif].to_vec();
    jfif[14] = 1;
    jfif[15] = 1;
    jfif.extend_from_slice(&[9, 9, 9]);
    let len = (jfif.len() as u16).to_be_bytes();
    jfif[..2].copy_from_slice(&len);
    let jfxx = b"\xFF\xE0\x00\x0DJFXX\x00\x10THUMB";
    let mut jpeg = original[..4].to_vec();
    jpeg.extend_from_slice(&jfif);
    jpeg.extend_from_slice(jfxx);
    jpeg.extend_from_slice(&original[after_jfif..]);
    let out = stripped(MediaType::Jpeg, &jpeg);
    assert!(!find(&out, b"JFXX") && !find(&out, b"THUMB"));
    let kept_len = usize::from(u16::from_be_bytes([out[4], out[5]]));
    assert_eq!(kept_len, 16, "JFIF without its thumbnail");
    assert_eq!(&out[18..20], [0, 0], "a 0x0 thumbnail");
}
