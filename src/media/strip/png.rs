//! PNG: chunk by chunk, an allow-list. The chunks of the picture (`PICTURE`: header,
//! palette, data, transparency, colour space, animation) are copied as they are, CRC with
//! them; an `eXIf` before the image data comes back holding only its orientation (as the
//! decoders and browsers read it there); an ICC profile within the metadata bound stays
//! (a second one, or one that inflates past the bound, goes). Everything else goes: text,
//! time, EXIF elsewhere, C2PA (`caBX`), and any chunk this list does not know.

use std::io::{self, Read, Write};

use super::{malformed, orientation_tiff};
use crate::media::limits::Limits;
use crate::media::probe::exif_orientation;

/// Chunks copied as they are: the image, how its colours are meant, and APNG's frames.
const PICTURE: [&[u8; 4]; 16] = [
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"sBIT", b"sRGB", b"cICP",
    b"mDCV", b"cLLI", b"bKGD", b"pHYs", b"acTL", b"fcTL",
];

pub(super) fn png<R: Read, W: Write>(src: &mut R, dst: &mut W, limits: &Limits) -> io::Result<()> {
    let mut sig = [0u8; 8];
    src.read_exact(&mut sig)?;
    if &sig != b"\x89PNG\r\n\x1a\n" {
        return Err(malformed("PNG"));
    }
    dst.write_all(&sig)?;
    let (mut chunks, mut image_data, mut exif_seen, mut icc_seen) = (0, false, false, false);
    loop {
        let mut head = [0u8; 8];
        src.read_exact(&mut head)?;
        limits.count(&mut chunks, "PNG chunks")?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len > 0x7FFF_FFFF {
            return Err(malformed("PNG chunk length"));
        }
        let len = u64::from(len);
        let kind = [head[4], head[5], head[6], head[7]];
        let small = len <= limits.max_metadata_bytes;
        match &kind {
            b"eXIf" if !image_data && !exif_seen && small => {
                exif_seen = true;
                let body = read_chunk(src, len)?;
                if let Some(o) = exif_orientation(&body).filter(|o| *o != 1) {
                    write_chunk(dst, b"eXIf", &orientation_tiff(o))?;
                }
            }
            b"eXIf" => drop_chunk(src, len)?,
            b"iCCP" if !icc_seen && small => {
                icc_seen = true;
                let body = read_chunk(src, len)?;
                if icc_fits(&body, limits.max_metadata_bytes) {
                    write_chunk(dst, b"iCCP", &body)?;
                }
            }
            b"iCCP" => drop_chunk(src, len)?,
            kind if !PICTURE.contains(&kind) && kind != b"fdAT" => drop_chunk(src, len)?,
            _ => {
                image_data |= &kind == b"IDAT";
                dst.write_all(&head)?;
                if io::copy(&mut src.by_ref().take(len + 4), dst)? != len + 4 {
                    return Err(malformed("PNG chunk"));
                }
            }
        }
        if &kind == b"IEND" {
            return Ok(());
        }
    }
}

/// A chunk's data (its CRC read past and dropped: the chunk is written anew).
fn read_chunk<R: Read>(src: &mut R, len: u64) -> io::Result<Vec<u8>> {
    let mut body = vec![0u8; len as usize];
    src.read_exact(&mut body)?;
    let mut crc = [0u8; 4];
    src.read_exact(&mut crc)?;
    Ok(body)
}

fn drop_chunk<R: Read>(src: &mut R, len: u64) -> io::Result<()> {
    if io::copy(&mut src.by_ref().take(len + 4), &mut io::sink())? != len + 4 {
        return Err(malformed("PNG chunk"));
    }
    Ok(())
}

fn write_chunk<W: Write>(dst: &mut W, kind: &[u8; 4], data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| malformed("PNG chunk"))?;
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    dst.write_all(&len.to_be_bytes())?;
    dst.write_all(kind)?;
    dst.write_all(data)?;
    dst.write_all(&crc.sum().to_be_bytes())
}

/// Whether an iCCP chunk's profile inflates to at most `max` bytes (inflating stops one
/// byte past it, so a bomb costs no more than the bound).
fn icc_fits(body: &[u8], max: u64) -> bool {
    let Some(name_end) = body.iter().take(80).position(|b| *b == 0) else {
        return false;
    };
    let Some(compressed) = body.get(name_end + 2..) else {
        return false; // no compression method byte
    };
    let inflater = flate2::read::ZlibDecoder::new(compressed);
    let inflated = io::copy(&mut inflater.take(max + 1), &mut io::sink());
    inflated.is_ok_and(|n| n <= max)
}
