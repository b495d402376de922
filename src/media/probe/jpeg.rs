//! JPEG: every segment up to the first scan, as the decoders read them. The frame header
//! (SOF) gives the stored size; the first EXIF APP1 segment anywhere before the first
//! scan gives the orientation (the one the cleaned original keeps, and the decoders
//! apply), so the reported size is the upright one.

use std::io::{Read, Seek};

use super::{Dimensions, ProbeError, be16, exif_orientation, orient, read_exact_or};
use crate::media::limits::{Limits, skip};

const WHAT: &str = "JPEG";

pub(super) fn dimensions<R: Read + Seek>(
    r: &mut R,
    limits: &Limits,
) -> Result<Dimensions, ProbeError> {
    let mut soi = [0u8; 2];
    read_exact_or(r, &mut soi, WHAT)?;
    let mut stored = None;
    let mut orientation = None;
    let mut segments = 0;
    loop {
        let marker = next_marker(r)?;
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue; // standalone markers carry no length
        }
        if marker == 0xD9 {
            return Err(ProbeError::Malformed(WHAT)); // the end before any scan
        }
        if marker == 0xDA {
            let d = stored.ok_or(ProbeError::Malformed(WHAT))?; // a scan before its frame
            return Ok(orient(d, orientation.unwrap_or(1)));
        }
        limits.count(&mut segments, "JPEG segments before the first scan")?;
        let mut len = [0u8; 2];
        read_exact_or(r, &mut len, WHAT)?;
        let body_len = be16(&len)
            .checked_sub(2)
            .ok_or(ProbeError::Malformed(WHAT))?;
        let is_sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof && stored.is_none() {
            let mut sof = [0u8; 5];
            if (body_len as usize) < sof.len() {
                return Err(ProbeError::Malformed(WHAT));
            }
            read_exact_or(r, &mut sof, WHAT)?;
            let (height, width) = (be16(&sof[1..3]), be16(&sof[3..5]));
            stored = Some(Dimensions { width, height });
            skip(r, u64::from(body_len) - 5).map_err(eof)?;
        } else if marker == 0xE1 && orientation.is_none() {
            let mut body = vec![0u8; body_len as usize]; // at most 64 KB
            read_exact_or(r, &mut body, WHAT)?;
            if let Some(tiff) = body.strip_prefix(b"Exif\0\0") {
                orientation = Some(exif_orientation(tiff).unwrap_or(1));
            }
        } else {
            skip(r, u64::from(body_len)).map_err(eof)?;
        }
    }
}

/// The next marker's code, skipping fill bytes.
fn next_marker<R: Read>(r: &mut R) -> Result<u8, ProbeError> {
    let mut byte = [0u8; 1];
    read_exact_or(r, &mut byte, WHAT)?;
    if byte[0] != 0xFF {
        return Err(ProbeError::Malformed(WHAT));
    }
    let mut marker = 0xFF;
    while marker == 0xFF {
        read_exact_or(r, &mut byte, WHAT)?;
        marker = byte[0];
    }
    Ok(marker)
}

fn eof(e: std::io::Error) -> ProbeError {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ProbeError::Malformed(WHAT),
        _ => ProbeError::from(e),
    }
}
