//! WebP: the chunks are listed first (bounded in count, each checked to lie within the
//! file), so the new RIFF size is known before writing; then the kept ones are copied.
//! Kept: the chunks of the picture (an allow-list: VP8, VP8L, VP8X, ALPH, ANIM, ANMF) and
//! an ICC profile within the metadata bound; everything else goes (EXIF, XMP, C2PA, any
//! chunk of a later format). The first EXIF chunk comes back holding only its
//! orientation, and VP8X's flags say what remains.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::{malformed, orientation_tiff};
use crate::media::limits::{Limits, skip};
use crate::media::probe::exif_orientation;

/// A WebP chunk: its FourCC and its data size.
type Chunk = ([u8; 4], u64);

const XMP_FLAG: u8 = 0x04;
const EXIF_FLAG: u8 = 0x08;
const ICC_FLAG: u8 = 0x20;

pub(super) fn webp<R: Read + Seek, W: Write>(
    src: &mut R,
    dst: &mut W,
    limits: &Limits,
) -> io::Result<()> {
    let mut riff = [0u8; 12];
    src.read_exact(&mut riff)?;
    if &riff[..4] != b"RIFF" || &riff[8..12] != b"WEBP" {
        return Err(malformed("WebP"));
    }
    let file_len = src.seek(SeekFrom::End(0))?;
    let riff_end =
        (8 + u64::from(u32::from_le_bytes([riff[4], riff[5], riff[6], riff[7]]))).min(file_len);
    src.seek(SeekFrom::Start(12))?;
    let (chunks, orientation) = list(src, riff_end, limits)?;
    let keep = |(kind, size): &Chunk| match kind {
        b"VP8 " | b"VP8L" | b"VP8X" | b"ALPH" | b"ANIM" | b"ANMF" => true,
        b"ICCP" => *size <= limits.max_metadata_bytes,
        _ => false,
    };
    let kept_flags: Vec<bool> = chunks.iter().map(keep).collect();
    let kept: Vec<&Chunk> = chunks.iter().filter(|c| keep(c)).collect();
    if !kept
        .iter()
        .any(|(k, _)| matches!(k, b"VP8 " | b"VP8L" | b"VP8X"))
    {
        return Err(malformed("WebP (no picture in it)"));
    }
    let has_icc = kept.iter().any(|(k, _)| k == b"ICCP");
    let new_exif = orientation.map(orientation_tiff);
    let padded = |n: u64| n + (n & 1);
    let mut body_len = 4u64; // "WEBP"
    for (_, size) in &kept {
        body_len += 8 + padded(*size);
    }
    if let Some(e) = &new_exif {
        body_len += 8 + padded(e.len() as u64);
    }
    dst.write_all(b"RIFF")?;
    let body_len = u32::try_from(body_len).map_err(|_| malformed("WebP size"))?;
    dst.write_all(&body_len.to_le_bytes())?;
    dst.write_all(b"WEBP")?;
    src.seek(SeekFrom::Start(12))?;
    for (chunk, keep) in chunks.iter().zip(kept_flags) {
        if !keep {
            skip(src, 8 + chunk.1)?;
            let mut pad = [0u8; 1];
            if chunk.1 & 1 == 1 {
                let _ = src.read(&mut pad)?; // a last chunk may lack its pad byte
            }
            continue;
        }
        let flags = |f: u8| {
            let f = f & !XMP_FLAG;
            let f = if new_exif.is_some() {
                f | EXIF_FLAG
            } else {
                f & !EXIF_FLAG
            };
            if has_icc { f } else { f & !ICC_FLAG }
        };
        copy_chunk(src, dst, chunk, flags)?;
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

/// Every chunk inside the RIFF (each must lie within it), and the orientation of the
/// first EXIF chunk (if not 1 and the chunk is within the metadata bound).
fn list<R: Read + Seek>(
    src: &mut R,
    riff_end: u64,
    limits: &Limits,
) -> io::Result<(Vec<Chunk>, Option<u16>)> {
    let (mut chunks, mut orientation, mut exif_seen) = (Vec::new(), None, false);
    // An EXIF chunk counts only where VP8X says there is one (as the probe and the
    // decoders read it).
    let mut exif_flagged = false;
    let mut pos = 12u64;
    while pos + 8 <= riff_end {
        let mut head = [0u8; 8];
        src.read_exact(&mut head)?;
        let count = &mut (chunks.len() as u64);
        limits.count(count, "WebP chunks")?;
        let size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        let kind: [u8; 4] = [head[0], head[1], head[2], head[3]];
        let end = pos + 8 + size + (size & 1);
        if pos + 8 + size > riff_end || (&kind == b"VP8X" && size != 10) {
            return Err(malformed("WebP chunk (it runs past the file)"));
        }
        if &kind == b"VP8X" && chunks.is_empty() {
            let mut flags = [0u8; 1];
            src.read_exact(&mut flags)?;
            exif_flagged = flags[0] & EXIF_FLAG != 0;
            skip(src, end - pos - 8 - 1)?;
        } else if &kind == b"EXIF"
            && exif_flagged
            && !exif_seen
            && size <= limits.max_metadata_bytes
        {
            exif_seen = true;
            let mut exif = vec![0u8; size as usize];
            src.read_exact(&mut exif)?;
            let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif);
            orientation = exif_orientation(tiff).filter(|o| *o != 1);
            skip(src, size & 1)?;
        } else if end <= riff_end {
            skip(src, end - pos - 8)?;
        }
        chunks.push((kind, size));
        pos = end;
    }
    Ok((chunks, orientation))
}

/// Copies one kept chunk; VP8X's flags byte is rewritten by `flags`.
fn copy_chunk<R: Read, W: Write>(
    src: &mut R,
    dst: &mut W,
    (kind, size): &Chunk,
    flags: impl Fn(u8) -> u8,
) -> io::Result<()> {
    let mut head = [0u8; 8];
    src.read_exact(&mut head)?;
    dst.write_all(&head)?;
    if kind == b"VP8X" {
        let mut vp8x = [0u8; 10];
        src.read_exact(&mut vp8x)?;
        vp8x[0] = flags(vp8x[0]);
        dst.write_all(&vp8x)?;
    } else if io::copy(&mut src.by_ref().take(*size), dst)? != *size {
        return Err(malformed("WebP chunk"));
    }
    if size & 1 == 1 {
        let mut pad = [0u8; 1];
        let _ = src.read(&mut pad)?; // a last chunk may lack its pad byte
        dst.write_all(&[0])?;
    }
    Ok(())
}
