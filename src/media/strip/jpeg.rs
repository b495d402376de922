//! JPEG: rewritten segment by segment up to the first scan (where metadata lives), then
//! copied byte for byte up to the end-of-image marker, with the tables between scans.
//! Metadata segments placed between scans keep their place and length but have their
//! content zeroed (removing them would change how damaged scan data decodes). The first
//! EXIF segment's orientation (the one the probe reports) and the ICC profile (while its
//! segments add up to the metadata bound, else it goes whole) are written first, before
//! the frame header, where every decoder reads them.

use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

use super::{malformed, orientation_tiff};
use crate::media::limits::{Limits, over};
use crate::media::probe::exif_orientation;

pub(super) fn jpeg<R: BufRead + Seek, W: Write>(
    src: &mut R,
    dst: &mut W,
    limits: &Limits,
) -> io::Result<()> {
    let mut soi = [0u8; 2];
    src.read_exact(&mut soi)?;
    if soi != [0xFF, 0xD8] {
        return Err(malformed("JPEG"));
    }
    let front = Front::read(src, limits)?;
    src.seek(SeekFrom::Start(2))?;
    dst.write_all(&soi)?;
    let (mut segments, mut front_written) = (0, false);
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
        limits.count(&mut segments, "JPEG segments before the first scan")?;
        let mut len = [0u8; 2];
        src.read_exact(&mut len)?;
        let body_len = usize::from(u16::from_be_bytes(len))
            .checked_sub(2)
            .ok_or_else(|| malformed("JPEG segment"))?;
        let mut body = vec![0u8; body_len];
        src.read_exact(&mut body)?;
        let jfif = m == 0xE0 && (body.starts_with(b"JFIF\0") || body.starts_with(b"JFXX\0"));
        if !front_written && !jfif {
            front.write(dst)?; // right after SOI and JFIF, before any frame header
            front_written = true;
        }
        match m {
            0xE1 if body.starts_with(b"Exif\0\0") => {} // written in front
            0xE2 if body.starts_with(b"ICC_PROFILE\0") => {} // written in front
            0xDA => {
                write_segment(dst, m, &body)?;
                return copy_scans(src, dst, limits, segments);
            }
            0xE0 if keeps(m, &body) => write_segment(dst, m, &without_thumbnail(&body))?,
            _ if keeps(m, &body) => write_segment(dst, m, &body)?,
            _ => {}
        }
    }
}

/// The metadata a cleaned JPEG keeps, written right after its start (and JFIF header),
/// before any frame header, where every decoder reads it (some stop at the frame
/// header): an EXIF segment holding only the first EXIF segment's orientation, and the
/// ICC profile's segments, dropped whole when they add up past the metadata bound.
#[derive(Default)]
struct Front {
    orientation: Option<u16>,
    icc: Vec<Vec<u8>>,
}

impl Front {
    /// Reads the segments up to the first scan (bounded like the copy that follows).
    fn read<R: Read>(src: &mut R, limits: &Limits) -> io::Result<Self> {
        let (mut front, mut segments, mut exif_seen, mut icc_bytes) =
            (Self::default(), 0, false, 0u64);
        loop {
            let m = next_marker(src)?;
            if m == 0x01 || (0xD0..=0xD7).contains(&m) {
                continue;
            }
            if m == 0xD9 || m == 0xDA {
                if icc_bytes > limits.max_metadata_bytes {
                    front.icc.clear();
                }
                return Ok(front);
            }
            limits.count(&mut segments, "JPEG segments before the first scan")?;
            let mut len = [0u8; 2];
            src.read_exact(&mut len)?;
            let body_len = u64::from(u16::from_be_bytes(len))
                .checked_sub(2)
                .ok_or_else(|| malformed("JPEG segment"))?;
            let mut body = vec![0u8; body_len as usize];
            src.read_exact(&mut body)?;
            if m == 0xE1 && !exif_seen && body.starts_with(b"Exif\0\0") {
                exif_seen = true;
                front.orientation = exif_orientation(&body[6..]).filter(|o| *o != 1);
            } else if m == 0xE2 && body.starts_with(b"ICC_PROFILE\0") {
                icc_bytes += body_len;
                if icc_bytes <= limits.max_metadata_bytes {
                    front.icc.push(body);
                }
            }
        }
    }

    fn write<W: Write>(&self, dst: &mut W) -> io::Result<()> {
        if let Some(o) = self.orientation {
            let mut exif = b"Exif\0\0".to_vec();
            exif.extend(orientation_tiff(o));
            write_segment(dst, 0xE1, &exif)?;
        }
        for body in &self.icc {
            write_segment(dst, 0xE2, body)?;
        }
        Ok(())
    }
}

fn write_segment<W: Write>(dst: &mut W, marker: u8, body: &[u8]) -> io::Result<()> {
    let len = u16::try_from(body.len() + 2).map_err(|_| malformed("JPEG segment"))?;
    dst.write_all(&[0xFF, marker])?;
    dst.write_all(&len.to_be_bytes())?;
    dst.write_all(body)
}

/// From the first scan on, the scans and the tables of later progressive scans are
/// copied as they are, up to and including the end-of-image marker; metadata segments
/// between scans are dropped, and what follows the end is too. A file cut short keeps
/// what it has. Segments are copied by their length, so an `FF D9` inside a table is not
/// taken for the end. More than `max_scans` scans is refused (each costs a decoder a
/// pass over the whole image).
fn copy_scans<R: BufRead, W: Write>(
    src: &mut R,
    dst: &mut W,
    limits: &Limits,
    mut segments: u64,
) -> io::Result<()> {
    let mut scans = 1u32;
    while let Some(m) = copy_scan(src, dst)? {
        match m {
            0xD9 => {
                dst.write_all(&[0xFF, m])?;
                return Ok(());
            }
            0x01 => dst.write_all(&[0xFF, m])?, // TEM: a marker without a segment
            _ => {
                limits.count(&mut segments, "JPEG segments")?;
                if m == 0xDA {
                    scans += 1;
                    if scans > limits.max_scans {
                        let limit = u64::from(limits.max_scans);
                        return Err(over("scans (a progressive JPEG)", limit));
                    }
                }
                let mut len = [0u8; 2];
                let got = read_up_to(src, &mut len)?;
                let body = u64::from(u16::from_be_bytes(len)).saturating_sub(2);
                dst.write_all(&[0xFF, m])?;
                dst.write_all(&len[..got])?;
                let metadata = (0xE1..=0xEF).contains(&m) || m == 0xFE;
                let copied = if got < 2 {
                    0
                } else if metadata {
                    let read = io::copy(&mut src.by_ref().take(body), &mut io::sink())?;
                    io::copy(&mut io::repeat(0).take(read), dst)?
                } else {
                    io::copy(&mut src.by_ref().take(body), dst)?
                };
                if copied < body {
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

/// Whether a segment before the first scan (not EXIF, ICC or a scan) is copied: JFIF
/// and Adobe (colour transform) stay; other APPn (maker data, IPTC, XMP) and comments
/// go; tables and frame headers stay.
/// An allow-list: the segments a decoder needs (frame headers, Huffman, arithmetic and
/// quantization tables, restart interval), JFIF (its thumbnail goes, see `without_thumbnail`) and
/// Adobe's colour transform; every other segment goes (EXIF, XMP, JFXX thumbnails, comments,
/// the JPGn extensions, any application segment).
fn keeps(marker: u8, body: &[u8]) -> bool {
    match marker {
        0xE0 => body.starts_with(b"JFIF\0"),
        0xEE => body.starts_with(b"Adobe"),
        0xC0..=0xCF | 0xDB | 0xDD => true,
        _ => false,
    }
}

/// A JFIF segment without its thumbnail (a picture of its own, which may show what the
/// image was cropped from): version, units and density stay, the thumbnail is 0x0.
fn without_thumbnail(body: &[u8]) -> Vec<u8> {
    let mut kept = body[..body.len().min(14)].to_vec();
    if kept.len() == 14 {
        kept[12] = 0;
        kept[13] = 0;
    }
    kept
}
