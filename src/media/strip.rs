//! Lossless removal of location and camera metadata from originals (JPEG, PNG, WebP):
//! EXIF (GPS, maker notes, serials), XMP, IPTC and text chunks go; pixels, the ICC
//! profile, Adobe colour info and the EXIF orientation stay. Streaming: only headers are
//! parsed, entropy-coded data is copied byte for byte. Whatever follows the image (after
//! a JPEG's end-of-image marker, a PNG's IEND, a WebP's RIFF length: an appended ZIP,
//! say) is dropped too.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use super::probe::exif_orientation;
use crate::model::MediaType;

/// Copies `src` to `dst` without metadata. Returns false (writing nothing useful) for
/// types that carry none of it.
pub fn strip<R: BufRead + Seek, W: Write>(
    kind: MediaType,
    src: &mut R,
    dst: &mut W,
) -> io::Result<bool> {
    match kind {
        MediaType::Jpeg => jpeg(src, dst).map(|()| true),
        MediaType::Png => png(src, dst).map(|()| true),
        MediaType::Webp => webp(src, dst).map(|()| true),
        _ => Ok(false),
    }
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what}"))
}

/// A minimal big-endian TIFF block holding only the Orientation tag.
fn orientation_tiff(o: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    t.extend_from_slice(&o.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

fn jpeg<R: BufRead, W: Write>(src: &mut R, dst: &mut W) -> io::Result<()> {
    let mut soi = [0u8; 2];
    src.read_exact(&mut soi)?;
    if soi != [0xFF, 0xD8] {
        return Err(malformed("JPEG"));
    }
    dst.write_all(&soi)?;
    // Up to the first scan, where the metadata lives: segment by segment.
    loop {
        let m = next_marker(src)?;
        if m == 0x01 || (0xD0..=0xD7).contains(&m) {
            dst.write_all(&[0xFF, m])?;
            continue;
        }
        if m == 0xD9 {
            dst.write_all(&[0xFF, m])?;
            return Ok(()); // end of image: anything after it is not part of the picture
        }
        let mut len = [0u8; 2];
        src.read_exact(&mut len)?;
        let body_len = usize::from(u16::from_be_bytes(len))
            .checked_sub(2)
            .ok_or_else(|| malformed("JPEG segment"))?;
        let mut body = vec![0u8; body_len];
        src.read_exact(&mut body)?;
        if keep_jpeg_segment(m, &body, dst)? {
            dst.write_all(&[0xFF, m])?;
            dst.write_all(&len)?;
            dst.write_all(&body)?;
        }
        if m == 0xDA {
            return copy_scans(src, dst);
        }
    }
}

/// From the first scan on, everything is copied as it is (scans, and the tables of later
/// progressive scans), up to and including the end-of-image marker; what follows it is
/// dropped. A file cut short keeps what it has. Segments are copied by their length, so
/// an `FF D9` inside a table is not taken for the end.
fn copy_scans<R: BufRead, W: Write>(src: &mut R, dst: &mut W) -> io::Result<()> {
    while let Some(m) = copy_scan(src, dst)? {
        dst.write_all(&[0xFF, m])?;
        match m {
            0xD9 => return Ok(()),
            0x01 => {} // TEM: a marker without a segment
            _ => {
                let mut len = [0u8; 2];
                let got = read_up_to(src, &mut len)?;
                dst.write_all(&len[..got])?;
                let body = u64::from(u16::from_be_bytes(len)).saturating_sub(2);
                if got < 2 || io::copy(&mut src.by_ref().take(body), dst)? < body {
                    return Ok(()); // cut short inside a segment
                }
            }
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_up_to<R: Read>(src: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The next marker's code, skipping fill bytes.
fn next_marker<R: Read>(src: &mut R) -> io::Result<u8> {
    let mut marker = [0u8; 2];
    src.read_exact(&mut marker)?;
    while marker[1] == 0xFF {
        src.read_exact(&mut marker[1..])?; // fill bytes
    }
    if marker[0] != 0xFF {
        return Err(malformed("JPEG marker"));
    }
    Ok(marker[1])
}

/// Copies entropy-coded data (with its stuffed `FF 00` and restart markers) up to the
/// next marker that ends it, and returns that marker's code unwritten; `None` at the end
/// of the file.
fn copy_scan<R: BufRead, W: Write>(src: &mut R, dst: &mut W) -> io::Result<Option<u8>> {
    let mut after_ff = false;
    loop {
        let buf = src.fill_buf()?;
        if buf.is_empty() {
            if after_ff {
                dst.write_all(&[0xFF])?;
            }
            return Ok(None);
        }
        if after_ff {
            let code = buf[0];
            src.consume(1);
            match code {
                0xFF => continue, // fill byte before a marker
                0x00 | 0xD0..=0xD7 => dst.write_all(&[0xFF, code])?,
                _ => return Ok(Some(code)),
            }
            after_ff = false;
            continue;
        }
        match buf.iter().position(|&b| b == 0xFF) {
            Some(at) => {
                dst.write_all(&buf[..at])?;
                src.consume(at + 1);
                after_ff = true;
            }
            None => {
                let n = buf.len();
                dst.write_all(buf)?;
                src.consume(n);
            }
        }
    }
}

/// Whether a segment is copied as it is. JFIF, ICC and Adobe (colour transform) segments
/// stay; EXIF is replaced by a minimal one holding only a non-default orientation
/// (written here); other APPn (maker data, IPTC, XMP) and comments go; the rest stays.
fn keep_jpeg_segment<W: Write>(marker: u8, body: &[u8], dst: &mut W) -> io::Result<bool> {
    Ok(match marker {
        0xE0 => body.starts_with(b"JFIF\0") || body.starts_with(b"JFXX\0"),
        0xE2 => body.starts_with(b"ICC_PROFILE\0"),
        0xEE => body.starts_with(b"Adobe"),
        0xE1 => {
            if let Some(o) = body
                .strip_prefix(b"Exif\0\0")
                .and_then(exif_orientation)
                .filter(|o| *o != 1)
            {
                let mut exif = b"Exif\0\0".to_vec();
                exif.extend(orientation_tiff(o));
                dst.write_all(&[0xFF, 0xE1])?;
                dst.write_all(&((exif.len() + 2) as u16).to_be_bytes())?;
                dst.write_all(&exif)?;
            }
            false
        }
        0xE3..=0xEF | 0xFE => false,
        _ => true,
    })
}

fn png<R: Read, W: Write>(src: &mut R, dst: &mut W) -> io::Result<()> {
    let mut sig = [0u8; 8];
    src.read_exact(&mut sig)?;
    if &sig != b"\x89PNG\r\n\x1a\n" {
        return Err(malformed("PNG"));
    }
    dst.write_all(&sig)?;
    loop {
        let mut head = [0u8; 8];
        src.read_exact(&mut head)?;
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let kind = [head[4], head[5], head[6], head[7]];
        let drop = matches!(&kind, b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME");
        let mut chunk = src.by_ref().take(len + 4); // data + CRC
        if drop {
            io::copy(&mut chunk, &mut io::sink())?;
        } else {
            dst.write_all(&head)?;
            if io::copy(&mut chunk, dst)? != len + 4 {
                return Err(malformed("PNG chunk"));
            }
        }
        if &kind == b"IEND" {
            return Ok(());
        }
    }
}

/// A WebP chunk: its FourCC, where its header starts, and its data size.
type Chunk = ([u8; 4], u64, u64);

fn webp<R: Read + Seek, W: Write>(src: &mut R, dst: &mut W) -> io::Result<()> {
    let mut riff = [0u8; 12];
    src.read_exact(&mut riff)?;
    if &riff[..4] != b"RIFF" || &riff[8..12] != b"WEBP" {
        return Err(malformed("WebP"));
    }
    let riff_end = 8 + u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]));
    // First pass: the chunks, so the new RIFF size is known before writing.
    let (chunks, orientation) = webp_chunks(src, riff_end)?;
    let kept: Vec<_> = chunks
        .iter()
        .filter(|(k, _, _)| k != b"EXIF" && k != b"XMP ")
        .collect();
    let new_exif = orientation.map(orientation_tiff);
    let padded = |n: u64| n + (n & 1);
    let mut body_len = 4u64; // "WEBP"
    for (_, _, size) in &kept {
        body_len += 8 + padded(*size);
    }
    if let Some(e) = &new_exif {
        body_len += 8 + padded(e.len() as u64);
    }
    dst.write_all(b"RIFF")?;
    dst.write_all(
        &u32::try_from(body_len)
            .map_err(|_| malformed("WebP size"))?
            .to_le_bytes(),
    )?;
    dst.write_all(b"WEBP")?;
    for chunk in kept {
        copy_webp_chunk(src, dst, chunk, new_exif.is_some())?;
    }
    if let Some(e) = new_exif {
        dst.write_all(b"EXIF")?;
        dst.write_all(&(e.len() as u32).to_le_bytes())?;
        dst.write_all(&e)?;
        if e.len() & 1 == 1 {
            dst.write_all(&[0])?;
        }
    }
    Ok(())
}

/// Every chunk inside the RIFF, and the orientation its EXIF chunk holds (if not 1).
fn webp_chunks<R: Read + Seek>(
    src: &mut R,
    riff_end: u64,
) -> io::Result<(Vec<Chunk>, Option<u16>)> {
    let mut chunks = Vec::new();
    let mut pos = 12u64;
    let mut orientation = None;
    while pos + 8 <= riff_end {
        src.seek(SeekFrom::Start(pos))?;
        let mut head = [0u8; 8];
        if src.read_exact(&mut head).is_err() {
            break; // trailing bytes shorter than a chunk header
        }
        let size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        let kind: [u8; 4] = [head[0], head[1], head[2], head[3]];
        if &kind == b"EXIF" && size <= 1 << 20 {
            let mut exif = vec![0u8; size as usize];
            src.read_exact(&mut exif)?;
            let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif);
            orientation = exif_orientation(tiff).filter(|o| *o != 1);
        }
        chunks.push((kind, pos, size));
        pos += 8 + size + (size & 1);
    }
    Ok((chunks, orientation))
}

/// Copies one kept chunk; VP8X's flags are rewritten to say there is no XMP, and EXIF
/// only when a new one follows.
fn copy_webp_chunk<R: Read + Seek, W: Write>(
    src: &mut R,
    dst: &mut W,
    (kind, at, size): &Chunk,
    has_exif: bool,
) -> io::Result<()> {
    src.seek(SeekFrom::Start(at + 8))?;
    dst.write_all(kind)?;
    dst.write_all(&(*size as u32).to_le_bytes())?;
    if kind == b"VP8X" {
        let mut vp8x = vec![0u8; *size as usize];
        src.read_exact(&mut vp8x)?;
        if let Some(flags) = vp8x.first_mut() {
            *flags &= !0x04; // no XMP
            *flags = if has_exif {
                *flags | 0x08
            } else {
                *flags & !0x08
            };
        }
        dst.write_all(&vp8x)?;
    } else if io::copy(&mut src.by_ref().take(*size), dst)? != *size {
        return Err(malformed("WebP chunk"));
    }
    if size & 1 == 1 {
        dst.write_all(&[0])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::probe::raster_dimensions;
    use crate::media::test_fixture as fixture;
    use std::io::Cursor;

    fn stripped(kind: MediaType, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(strip(kind, &mut Cursor::new(bytes), &mut out).expect("strip"));
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
        let d = raster_dimensions(MediaType::Jpeg, &mut Cursor::new(&out), u64::MAX)
            .expect("still a JPEG");
        assert_eq!((d.width, d.height), (2560, 1600));

        for o in [6u16, 8] {
            let rotated = fixture(&format!("jpeg/orientation/Landscape_{o}.jpg"));
            let out = stripped(MediaType::Jpeg, &rotated);
            let d =
                raster_dimensions(MediaType::Jpeg, &mut Cursor::new(&out), u64::MAX).expect("jpeg");
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

    #[test]
    fn marker_like_bytes_in_damaged_scan_data_are_copied_not_interpreted() {
        // Found by `make fuzz` (strip): scan bytes that look like an APP1 marker were
        // dropped as metadata, and the picture changed.
        let damaged = fixture("fuzz/strip-8581a0e2.jpg");
        let out = stripped(MediaType::Jpeg, &damaged);
        assert_eq!(pixels(&out), pixels(&damaged));
        // The XMP of its header still goes; the copy the fuzzer pasted into the scan data
        // is part of what is kept byte for byte.
        let sos = out.windows(2).position(|w| w == [0xFF, 0xDA]).expect("SOS");
        assert!(!find(&out[..sos], b"http://ns.adobe.com/xap/1.0/"));
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
        let out = stripped(MediaType::Png, &png);
        assert!(!find(&out, b"48.85N"));
        assert_eq!(out, fixture("png/chessboard_200x200_rgb16.png"));
    }

    #[test]
    fn webp_loses_exif_and_stays_valid() {
        let original = fixture("webp/flower_480x360_lossy_exif.webp");
        assert!(find(&original, b"EXIF"));
        let out = stripped(MediaType::Webp, &original);
        assert!(!find(&out, b"XMP "));
        let riff = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
        assert_eq!(riff + 8, out.len(), "RIFF size matches");
        let d = raster_dimensions(MediaType::Webp, &mut Cursor::new(&out), u64::MAX).expect("webp");
        assert_eq!((d.width, d.height), (480, 360));
        assert!(out.len() < original.len());
    }

    #[test]
    fn other_types_are_left_alone() {
        let mut out = Vec::new();
        assert!(!strip(MediaType::Pdf, &mut Cursor::new(b"%PDF-1.4"), &mut out).expect("ok"));
        assert!(strip(MediaType::Jpeg, &mut Cursor::new(b"not a jpeg"), &mut out).is_err());
    }
}
