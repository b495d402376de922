//! Pure media logic: what a file is (`sniff`), how big it is (`probe`, `svg`), and how
//! client-supplied names are cleaned (`name`). No actors, no I/O beyond the reader given.

pub mod name;
pub mod pipeline;
pub mod probe;
pub mod sniff;
pub mod strip;
pub mod svg;
pub mod video;

use serde::{Deserialize, Serialize};

/// The eight supported file types, decided from the bytes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MediaType {
    Jpeg,
    Png,
    Gif,
    Webp,
    Svg,
    Pdf,
    Mp4,
    Webm,
}

/// The spec's `type` filter: image, document or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Image,
    Document,
    Video,
}

impl MediaType {
    pub const ALL: [MediaType; 8] = [
        Self::Jpeg,
        Self::Png,
        Self::Gif,
        Self::Webp,
        Self::Svg,
        Self::Pdf,
        Self::Mp4,
        Self::Webm,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Svg => "image/svg+xml",
            Self::Pdf => "application/pdf",
            Self::Mp4 => "video/mp4",
            Self::Webm => "video/webm",
        }
    }

    /// The extension the server gives stored files (never the client's).
    pub fn ext(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
            Self::Gif => "gif",
            Self::Webp => "webp",
            Self::Svg => "svg",
            Self::Pdf => "pdf",
            Self::Mp4 => "mp4",
            Self::Webm => "webm",
        }
    }

    /// False for types stored exactly as uploaded, with nothing to probe or strip (PDF).
    pub fn needs_inspection(self) -> bool {
        self != Self::Pdf
    }

    /// Pixel images: the ones that get WebP variants.
    pub fn is_raster(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png | Self::Gif | Self::Webp)
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::Pdf => Kind::Document,
            Self::Mp4 | Self::Webm => Kind::Video,
            _ => Kind::Image,
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.mime().eq_ignore_ascii_case(mime))
    }

    pub fn from_ext(ext: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.ext() == ext)
    }
}

impl Kind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(Self::Image),
            "document" => Some(Self::Document),
            "video" => Some(Self::Video),
            _ => None,
        }
    }

    /// One byte for index keys.
    pub fn tag(self) -> u8 {
        match self {
            Self::Image => b'i',
            Self::Document => b'd',
            Self::Video => b'v',
        }
    }
}

use std::io::{BufReader, Read};
use std::path::Path;

use probe::{Dimensions, ProbeError};
use svg::SvgError;

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
    let dims = |d| Inspection {
        dims: Some(d),
        duration: None,
    };
    match media_type {
        MediaType::Jpeg | MediaType::Png | MediaType::Gif | MediaType::Webp => Ok(dims(
            probe::raster_dimensions(media_type, &mut reader, max_pixels)?,
        )),
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
                video::probe_mp4(&mut reader)
            } else {
                video::probe_webm(&mut reader)
            };
            // A container we cannot read is still the type its magic says; no size then.
            let info = info.map_err(ProbeError::Io)?;
            Ok(info.map_or_else(Inspection::default, |v| Inspection {
                dims: v
                    .width
                    .zip(v.height)
                    .map(|(width, height)| Dimensions { width, height }),
                duration: v.duration,
            }))
        }
        MediaType::Pdf => Ok(Inspection::default()),
    }
}

/// Rewrites a spooled JPEG, PNG or WebP without location and camera metadata (see
/// `strip`). A file whose structure cannot be rewritten is refused rather than stored
/// with its metadata.
pub fn strip_in_place(path: &Path, media_type: MediaType) -> Result<(), MediaError> {
    if !matches!(
        media_type,
        MediaType::Jpeg | MediaType::Png | MediaType::Webp
    ) {
        return Ok(());
    }
    let stripped = path.with_extension("stripped");
    let result = (|| -> std::io::Result<()> {
        let mut src = BufReader::with_capacity(64 * 1024, std::fs::File::open(path)?);
        let mut dst =
            std::io::BufWriter::with_capacity(64 * 1024, std::fs::File::create(&stripped)?);
        strip::strip(media_type, &mut src, &mut dst)?;
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

/// A file of `tests/fixtures` (copied from the shared corpus), for unit tests.
#[cfg(test)]
pub(crate) fn test_fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}
