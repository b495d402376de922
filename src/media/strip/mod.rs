//! Lossless removal of location and camera metadata from originals (JPEG, PNG, WebP):
//! EXIF (GPS, maker notes, serials), XMP, IPTC and text chunks go; pixels, the ICC
//! profile, Adobe colour info and the EXIF orientation stay. Streaming: only headers are
//! parsed, entropy-coded data is copied byte for byte. Whatever follows the image (after
//! a JPEG's end-of-image marker, a PNG's IEND, a WebP's RIFF length: an appended ZIP,
//! say) is dropped too.

mod jpeg;

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
        MediaType::Jpeg => jpeg::jpeg(src, dst).map(|()| true),
        MediaType::Png => png(src, dst).map(|()| true),
        MediaType::Webp => webp(src, dst).map(|()| true),
        _ => Ok(false),
    }
}

pub(super) fn malformed(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed {what}"))
}

/// A minimal big-endian TIFF block holding only the Orientation tag.
pub(super) fn orientation_tiff(o: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    t.extend_from_slice(&o.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
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
#[cfg(test)]
mod tests;
