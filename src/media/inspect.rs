//! Inspecting a spooled upload of a sniffed type: its size (with the pixel limit), SVG
//! safety, a video's size and duration; and removing location and camera metadata from
//! it in place. Used by `ingest` on every upload and confirm.

use std::io::{BufReader, Read, Seek};
use std::path::Path;

use super::probe::{self, Dimensions, ProbeError};
use super::svg::{self, SvgError};
use super::video;
use crate::model::MediaType;

/// Why an uploaded file is refused.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("the file is empty")]
    Empty,
    #[error(
        "unsupported file type: the content is not JPEG, PNG, GIF, WebP, SVG, PDF, MP4 or WebM"
    )]
    Unsupported,
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Svg(#[from] SvgError),
    #[error("the file is not a playable video: {0}")]
    InvalidVideo(video::Invalid),
}

/// What inspecting an upload found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inspection {
    /// Upright size (images, SVG with a size, videos whose container says).
    pub dims: Option<Dimensions>,
    /// Seconds (videos).
    pub duration: Option<f64>,
}

/// Checks a spooled upload of a sniffed type: header dimensions (with the pixel limit)
/// for rasters, a safety check and intrinsic size for SVG, size and duration from the
/// container for videos, nothing for PDF.
pub fn inspect(
    path: &Path,
    media_type: MediaType,
    max_pixels: u64,
) -> Result<Inspection, MediaError> {
    let file = std::fs::File::open(path).map_err(ProbeError::Io)?;
    let mut reader = BufReader::with_capacity(16 * 1024, file);
    inspect_reader(&mut reader, media_type, max_pixels)
}

/// As `inspect`, from any reader that can seek (a spooled file, an object read in ranges).
pub fn inspect_reader<R: Read + Seek>(
    reader: &mut R,
    media_type: MediaType,
    max_pixels: u64,
) -> Result<Inspection, MediaError> {
    let dims = |d| Inspection {
        dims: Some(d),
        duration: None,
    };
    match media_type {
        t if t.is_raster() => Ok(dims(probe::raster_dimensions(
            media_type, reader, max_pixels,
        )?)),
        MediaType::Svg => {
            let mut text = Vec::new();
            reader.read_to_end(&mut text).map_err(ProbeError::Io)?;
            match svg::inspect(&text)? {
                Some(d) => Ok(dims(probe::check_pixels(d, max_pixels)?)),
                None => Ok(Inspection::default()),
            }
        }
        MediaType::Mp4 | MediaType::Webm => {
            let info = if media_type == MediaType::Mp4 {
                video::probe_mp4(reader)
            } else {
                video::probe_webm(reader)
            };
            let v = info
                .map_err(ProbeError::Io)?
                .map_err(MediaError::InvalidVideo)?;
            Ok(Inspection {
                dims: v
                    .width
                    .zip(v.height)
                    .map(|(width, height)| Dimensions { width, height }),
                duration: v.duration,
            })
        }
        _ => Ok(Inspection::default()),
    }
}

/// Rewrites a spooled JPEG, PNG or WebP without location and camera metadata (see
/// `strip`). A file whose structure cannot be rewritten is refused rather than stored
/// with its metadata.
pub fn strip_in_place(path: &Path, media_type: MediaType) -> Result<(), MediaError> {
    if !media_type.is_strippable() {
        return Ok(());
    }
    let stripped = path.with_extension("stripped");
    let result = (|| -> std::io::Result<()> {
        let mut src = BufReader::with_capacity(64 * 1024, std::fs::File::open(path)?);
        let mut dst =
            std::io::BufWriter::with_capacity(64 * 1024, std::fs::File::create(&stripped)?);
        super::strip::strip(media_type, &mut src, &mut dst)?;
        std::io::Write::flush(&mut dst)?;
        std::fs::rename(&stripped, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&stripped);
        match e.kind() {
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                MediaError::Probe(ProbeError::Malformed(
                    "image (its metadata cannot be removed)",
                ))
            }
            _ => MediaError::Probe(ProbeError::Io(e)),
        }
    })
}
