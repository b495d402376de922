//! The eight supported file types and the spec's three kinds (image, document, video).

use serde::{Deserialize, Serialize};

/// The eight supported file types, decided from the bytes only (see `media::sniff`).
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

    /// Types rewritten before storing (the stored original may then differ from the
    /// uploaded bytes): JPEG, PNG and WebP lose their location and camera metadata, SVG
    /// is written out anew from what its check kept.
    pub fn is_cleaned(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png | Self::Webp | Self::Svg)
    }

    /// Pixel images: the ones that get WebP variants.
    pub fn is_raster(self) -> bool {
        matches!(self, Self::Jpeg | Self::Png | Self::Gif | Self::Webp)
    }

    /// Videos and PDFs: a poster (a frame, the first page) stands for them, with its
    /// variants, when the tool that makes it is installed.
    pub fn has_poster(self) -> bool {
        matches!(self, Self::Mp4 | Self::Webm | Self::Pdf)
    }

    pub fn kind(self) -> Kind {
        match self {
            Self::Pdf => Kind::Document,
            Self::Mp4 | Self::Webm => Kind::Video,
            _ => Kind::Image,
        }
    }

    /// The type of a MIME name (case-insensitive, as MIME types are).
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

    /// The kind of a `tag`.
    pub fn from_tag(tag: u8) -> Option<Self> {
        [Self::Image, Self::Document, Self::Video]
            .into_iter()
            .find(|k| k.tag() == tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_names_round_trip_case_insensitively() {
        for t in MediaType::ALL {
            assert_eq!(MediaType::from_mime(t.mime()), Some(t));
            assert_eq!(MediaType::from_ext(t.ext()), Some(t));
        }
        assert_eq!(MediaType::from_mime("IMAGE/JPEG"), Some(MediaType::Jpeg));
        assert_eq!(MediaType::from_mime("text/html"), None);
    }

    #[test]
    fn only_rasters_are_processed_and_images_but_gif_are_cleaned() {
        let rasters: Vec<_> = MediaType::ALL
            .into_iter()
            .filter(|t| t.is_raster())
            .collect();
        assert_eq!(rasters.len(), 4);
        let cleaned: Vec<_> = MediaType::ALL
            .into_iter()
            .filter(|t| t.is_cleaned())
            .collect();
        let expected = [
            MediaType::Jpeg,
            MediaType::Png,
            MediaType::Webp,
            MediaType::Svg,
        ];
        assert_eq!(cleaned.len(), 4);
        assert!(expected.iter().all(|t| cleaned.contains(t)));
    }
}
