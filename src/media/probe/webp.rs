//! WebP: the size from the VP8X canvas (extended files) or the VP8/VP8L frame header;
//! an extended file's EXIF chunk gives its orientation, which the decoders apply.

use std::io::{Read, Seek};

use super::{Dimensions, ProbeError, exif_orientation, orient, read_exact_or};
use crate::media::limits::{Limits, skip};

const WHAT: &str = "WebP";

pub(super) fn dimensions<R: Read + Seek>(
    r: &mut R,
    limits: &Limits,
) -> Result<Dimensions, ProbeError> {
    let mut head = [0u8; 30];
    read_exact_or(r, &mut head, WHAT)?;
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    match &head[12..16] {
        b"VP8X" => {
            let canvas = Dimensions {
                width: le24(&head[24..27]) + 1,
                height: le24(&head[27..30]) + 1,
            };
            let has_exif = head[20] & 0x08 != 0;
            let orientation = if has_exif { exif(r, limits)? } else { 1 };
            Ok(orient(canvas, orientation))
        }
        b"VP8 " => {
            if head[23..26] != [0x9D, 0x01, 0x2A] {
                return Err(ProbeError::Malformed(WHAT));
            }
            let width = u32::from(u16::from_le_bytes([head[26], head[27]]) & 0x3FFF);
            let height = u32::from(u16::from_le_bytes([head[28], head[29]]) & 0x3FFF);
            Ok(Dimensions { width, height })
        }
        b"VP8L" => {
            if head[20] != 0x2F {
                return Err(ProbeError::Malformed(WHAT));
            }
            let bits = u32::from_le_bytes([head[21], head[22], head[23], head[24]]);
            Ok(Dimensions {
                width: (bits & 0x3FFF) + 1,
                height: ((bits >> 14) & 0x3FFF) + 1,
            })
        }
        _ => Err(ProbeError::Malformed(WHAT)),
    }
}

/// The orientation in the EXIF chunk of an extended file (read just past its VP8X
/// chunk), 1 when there is none or it is too large to keep.
fn exif<R: Read + Seek>(r: &mut R, limits: &Limits) -> Result<u16, ProbeError> {
    let mut chunks = 1;
    loop {
        let mut chunk = [0u8; 8];
        if r.read_exact(&mut chunk).is_err() {
            return Ok(1);
        }
        limits.count(&mut chunks, "WebP chunks")?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        let padded = size + (size & 1);
        if &chunk[..4] == b"EXIF" && size <= limits.max_metadata_bytes {
            let mut exif = vec![0u8; size as usize];
            read_exact_or(r, &mut exif, WHAT)?;
            let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(&exif);
            return Ok(exif_orientation(tiff).unwrap_or(1));
        }
        if skip(r, padded).is_err() {
            return Ok(1);
        }
    }
}
