//! Image dimensions from headers alone, without decoding pixels: JPEG (SOF, and the EXIF
//! orientation found before the first scan), PNG (IHDR, and an `eXIf` orientation
//! before the image data), GIF (logical screen), WebP (VP8/VP8L/VP8X, and the EXIF
//! chunk's orientation). The size reported is the upright one, the size every variant
//! has. The pixel limit is checked here, so a decompression bomb is refused before
//! anything allocates; structure and metadata are bounded by `Limits`.

mod jpeg;
mod png;
mod webp;

use std::io::{self, Read, Seek};

use super::limits::{Exceeded, Limits};
use crate::model::MediaType;

/// Upright (EXIF-oriented) size of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the file is not a valid {0} (its header is damaged or cut short)")]
    Malformed(&'static str),
    #[error("the image is {width}x{height} pixels, more than the {limit} pixel limit")]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error(
        "decoding this image would take {needed} bytes of memory, more than the {budget} \
         byte processing budget"
    )]
    TooCostly { needed: u64, budget: u64 },
    #[error(transparent)]
    Exceeded(Exceeded),
    #[error("reading the upload failed: {0}")]
    Io(io::Error),
}

impl From<io::Error> for ProbeError {
    fn from(e: io::Error) -> Self {
        match Exceeded::of(&e) {
            Some(bound) => Self::Exceeded(bound),
            None => Self::Io(e),
        }
    }
}

/// Reads the upright size of a raster image and enforces the pixel limit.
pub fn raster_dimensions<R: Read + Seek>(
    kind: MediaType,
    r: &mut R,
    limits: &Limits,
) -> Result<Dimensions, ProbeError> {
    let dims = match kind {
        MediaType::Jpeg => jpeg::dimensions(r, limits)?,
        MediaType::Png => png::dimensions(r, limits)?,
        MediaType::Gif => gif(r, limits)?,
        MediaType::Webp => webp::dimensions(r, limits)?,
        _ => return Err(ProbeError::Malformed("raster image")),
    };
    check_pixels(dims, limits.max_pixels)
}

/// Refuses zero-sized images and images over the pixel limit.
pub fn check_pixels(d: Dimensions, max_pixels: u64) -> Result<Dimensions, ProbeError> {
    if d.width == 0 || d.height == 0 {
        return Err(ProbeError::Malformed("image (zero width or height)"));
    }
    if u64::from(d.width) * u64::from(d.height) > max_pixels {
        return Err(ProbeError::TooLarge {
            width: d.width,
            height: d.height,
            limit: max_pixels,
        });
    }
    Ok(d)
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<(), ProbeError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProbeError::Malformed(what),
        _ => ProbeError::from(e),
    })
}

fn be16(b: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([b[0], b[1]]))
}

/// Orientations 5-8 swap width and height.
pub fn orient(d: Dimensions, orientation: u16) -> Dimensions {
    if (5..=8).contains(&orientation) {
        Dimensions {
            width: d.height,
            height: d.width,
        }
    } else {
        d
    }
}

/// The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block. The entry count
/// is bounded by the bytes present (a block claiming 65,535 entries in 20 bytes is read
/// as the one or none it holds).
pub fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let claimed = u16_at(ifd)? as usize;
    let present = tiff.len().saturating_sub(ifd + 2) / 12;
    (0..claimed.min(present)).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112)
            .then(|| u16_at(entry + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

/// The logical screen (canvas) size: what a decoder composites onto. Every frame must
/// lie inside it (a frame descriptor far outside would make a decoder allocate for it),
/// so the blocks are walked to the end without decoding (see `anim`), frames counted
/// within their limit; a file cut short ends the walk.
fn gif<R: Read>(r: &mut R, limits: &Limits) -> Result<Dimensions, ProbeError> {
    match super::anim::gif(r, limits) {
        Ok(a) => Ok(Dimensions {
            width: a.width,
            height: a.height,
        }),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ProbeError::Malformed("GIF")),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(ProbeError::Malformed(
            "GIF (a frame lies outside its logical screen)",
        )),
        Err(e) => Err(ProbeError::from(e)),
    }
}

#[cfg(test)]
mod tests;
