//! PNG: the size from IHDR; then the chunks before the image data, for an `eXIf`
//! orientation (the decoders read metadata that comes before IDAT, and so does this).

use std::io::{Read, Seek};

use super::{Dimensions, ProbeError, exif_orientation, orient, read_exact_or};
use crate::media::limits::{Limits, skip};

const WHAT: &str = "PNG";

pub(super) fn dimensions<R: Read + Seek>(
    r: &mut R,
    limits: &Limits,
) -> Result<Dimensions, ProbeError> {
    let mut head = [0u8; 24]; // signature, IHDR's length and type, width and height
    read_exact_or(r, &mut head, WHAT)?;
    if &head[12..16] != b"IHDR" {
        return Err(ProbeError::Malformed(WHAT));
    }
    let width = u32::from_be_bytes([head[16], head[17], head[18], head[19]]);
    let height = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
    let stored = Dimensions { width, height };
    if skip(r, 9).is_err() {
        return Ok(stored); // the rest of IHDR and its CRC
    }
    let mut chunks = 1;
    loop {
        let mut chunk = [0u8; 8];
        if r.read_exact(&mut chunk).is_err() {
            return Ok(stored); // cut short: the decoder gets what there is
        }
        limits.count(&mut chunks, "PNG chunks")?;
        let len = u64::from(u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        match &chunk[4..8] {
            b"IDAT" | b"IEND" => return Ok(stored),
            b"eXIf" if len <= limits.max_metadata_bytes => {
                let mut exif = vec![0u8; len as usize];
                read_exact_or(r, &mut exif, WHAT)?;
                let orientation = exif_orientation(&exif).unwrap_or(1);
                return Ok(orient(stored, orientation));
            }
            _ => {
                if skip(r, len + 4).is_err() {
                    return Ok(stored);
                }
            }
        }
    }
}
