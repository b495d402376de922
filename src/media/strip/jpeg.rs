//! JPEG: rewritten segment by segment up to the first scan (where metadata lives), then
//! copied byte for byte up to the end-of-image marker.

use std::io::{self, BufRead, Read, Write};

use super::{malformed, orientation_tiff};
use crate::media::probe::exif_orientation;

pub(super) fn jpeg<R: BufRead, W: Write>(src: &mut R, dst: &mut W) -> io::Result<()> {
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
