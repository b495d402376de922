//! Lossless removal of location and camera metadata from originals (JPEG, PNG, WebP):
//! EXIF (GPS, maker notes, serials), XMP, IPTC and text chunks go; pixels, the ICC
//! profile (up to `Limits::max_metadata_bytes` inflated), Adobe colour info and the
//! EXIF orientation (in a minimal EXIF block of its own, the first one's) stay.
//! Streaming: only headers are parsed, entropy-coded data is copied byte for byte.
//! Whatever follows the image (after a JPEG's end-of-image marker, a PNG's IEND, a
//! WebP's RIFF length: an appended ZIP, say) is dropped too. Every structure is bounded
//! by `Limits` (records, scans, metadata bytes) before it is read.

mod jpeg;
mod png;
mod webp;

use std::io::{self, BufRead, Seek, Write};

use super::limits::Limits;
use crate::model::MediaType;

/// Copies `src` to `dst` without metadata. Returns false (writing nothing useful) for
/// types that carry none of it.
pub fn strip<R: BufRead + Seek, W: Write>(
    kind: MediaType,
    src: &mut R,
    dst: &mut W,
    limits: &Limits,
) -> io::Result<bool> {
    match kind {
        MediaType::Jpeg => jpeg::jpeg(src, dst, limits).map(|()| true),
        MediaType::Png => png::png(src, dst, limits).map(|()| true),
        MediaType::Webp => webp::webp(src, dst, limits).map(|()| true),
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

#[cfg(test)]
mod tests;
