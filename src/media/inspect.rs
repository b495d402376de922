//! Inspecting a spooled upload of a sniffed type: its size (with the pixel limit), SVG
//! safety, an animation's frames (within their limits), a video's size and duration; and cleaning it in place: location and camera
//! metadata removed from JPEG, PNG and WebP, an SVG rewritten from what its check kept.
//! Used by `ingest` on every upload and confirm. Every bound comes from `Limits`.

use std::io::{BufReader, Read, Seek};
use std::path::Path;

use super::anim;
use super::limits::{Exceeded, Limits};
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
    /// Checking the file hit a fault of ours (a panic, reported as one); it is refused.
    #[error("this file could not be checked and was refused (the fault is logged)")]
    Unprocessable,
}

/// What inspecting an upload found.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Inspection {
    /// Upright size (images, SVG with a size, videos whose container says).
    pub dims: Option<Dimensions>,
    /// Seconds (videos).
    pub duration: Option<f64>,
    /// Frames of an animated GIF or WebP (none for a still image).
    pub frames: Option<u32>,
}

/// Checks a spooled upload of a sniffed type: header dimensions (with the pixel limit)
/// for rasters, the safety check and intrinsic size for SVG, size and duration from the
/// container for videos, nothing for PDF.
pub fn inspect(
    path: &Path,
    media_type: MediaType,
    limits: &Limits,
) -> Result<Inspection, MediaError> {
    let file = std::fs::File::open(path).map_err(ProbeError::Io)?;
    let mut reader = BufReader::with_capacity(16 * 1024, file);
    inspect_reader(&mut reader, media_type, limits)
}

/// As `inspect`, from any reader that can seek (a spooled file, an object read in ranges).
pub fn inspect_reader<R: Read + Seek>(
    reader: &mut R,
    media_type: MediaType,
    limits: &Limits,
) -> Result<Inspection, MediaError> {
    let dims = |d| Inspection {
        dims: Some(d),
        ..Inspection::default()
    };
    match media_type {
        t if t.is_raster() => {
            let d = probe::raster_dimensions(media_type, reader, limits)?;
            reader.rewind().map_err(ProbeError::Io)?;
            if media_type == MediaType::Jpeg {
                // The headers the decoder reads (markers up to the first scan): a file it
                // refuses would otherwise be decoded another, costlier way.
                let mut markers = jpeg_decoder::Decoder::new(BufReader::new(&mut *reader));
                markers
                    .read_info()
                    .map_err(|_| ProbeError::Malformed("JPEG (headers the decoder cannot read)"))?;
                reader.rewind().map_err(ProbeError::Io)?;
            }
            // What decoding it holds; headers the estimate cannot read are refused (the
            // job would have to hold the whole budget for it).
            let mut needed = super::image::decode_cost(reader, media_type, &[])
                .map_err(|_| ProbeError::Malformed("image (headers unreadable)"))?;
            reader.rewind().map_err(ProbeError::Io)?;
            let animation = anim::scan(media_type, reader, limits)
                .and_then(|a| a.map(|a| a.check(limits).map(|()| a)).transpose())
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::InvalidData => {
                        ProbeError::Malformed("animation (its frames cannot be read)")
                    }
                    _ => ProbeError::from(e),
                })?;
            if animation.is_some() {
                // Its frames streamed through one encoder per width hold more.
                needed = needed.saturating_add(super::image::animation_cost(d.width, d.height));
            }
            if needed > limits.max_decode_bytes {
                let budget = limits.max_decode_bytes;
                return Err(ProbeError::TooCostly { needed, budget }.into());
            }
            Ok(Inspection {
                frames: animation.map(|a| a.frames),
                ..dims(d)
            })
        }
        MediaType::Svg => match svg::inspect(BufReader::new(reader), limits.svg)? {
            Some(d) => Ok(dims(probe::check_pixels(d, limits.max_pixels)?)),
            None => Ok(Inspection::default()),
        },
        MediaType::Mp4 | MediaType::Webm => {
            let info = if media_type == MediaType::Mp4 {
                video::probe_mp4(reader, limits)
            } else {
                video::probe_webm(reader)
            };
            let v = info
                .map_err(ProbeError::from)?
                .map_err(MediaError::InvalidVideo)?;
            Ok(Inspection {
                dims: v
                    .width
                    .zip(v.height)
                    .map(|(width, height)| Dimensions { width, height }),
                duration: v.duration,
                frames: None,
            })
        }
        _ => Ok(Inspection::default()),
    }
}

/// Rewrites a spooled upload as it is to be stored (see `MediaType::is_cleaned`): a
/// JPEG, PNG or WebP without its location and camera metadata, an SVG as its check
/// wrote it. A file whose structure cannot be rewritten is refused rather than stored
/// as it came.
pub fn clean_in_place(
    path: &Path,
    media_type: MediaType,
    limits: &Limits,
) -> Result<(), MediaError> {
    if !media_type.is_cleaned() {
        return Ok(());
    }
    let cleaned = path.with_extension("cleaned");
    let result = (|| -> Result<(), MediaError> {
        let mut src = BufReader::with_capacity(
            64 * 1024,
            std::fs::File::open(path).map_err(ProbeError::Io)?,
        );
        let file = std::fs::File::create(&cleaned).map_err(ProbeError::Io)?;
        let mut dst = std::io::BufWriter::with_capacity(64 * 1024, file);
        if media_type == MediaType::Svg {
            svg::clean(&mut src, &mut dst, limits.svg)?;
        } else {
            super::strip::strip(media_type, &mut src, &mut dst, limits).map_err(strip_error)?;
        }
        std::io::Write::flush(&mut dst).map_err(ProbeError::Io)?;
        std::fs::rename(&cleaned, path).map_err(ProbeError::Io)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&cleaned);
    }
    result
}

fn strip_error(e: std::io::Error) -> MediaError {
    if let Some(bound) = Exceeded::of(&e) {
        return ProbeError::Exceeded(bound).into();
    }
    match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => MediaError::Probe(
            ProbeError::Malformed("image (its metadata cannot be removed)"),
        ),
        _ => MediaError::Probe(ProbeError::Io(e)),
    }
}
