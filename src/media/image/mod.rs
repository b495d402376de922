//! The image pipeline, one file per stage, as pure functions over bytes and pixels:
//!
//! 1. `decode`: pixel limit from the header first, shrink-on-load for large JPEGs and
//!    PNGs (`png`: by rows, 16 bits to 8), EXIF orientation applied, first frame of an
//!    animation;
//! 2. `color`: pixels tagged with an RGB ICC profile converted to sRGB;
//! 3. `resize`: fast_image_resize, largest variant first and each next one from the
//!    previous (cascade), never upscaling;
//! 4. `encode`: WebP (libwebp, quality and method from config, no metadata);
//! 5. `placeholder`: thumbhash and dominant colour from the smallest rendition;
//! 6. `crop`: preset sizes cut around the focal point from the decoded picture, encoded
//!    like the variants.
//!
//! An animated GIF or WebP (`animate`) gets animated variants, its frames streamed
//! through one encoder per width; its placeholders and crops come from its first frame.
//!
//! A `Worker` owns the reusable resizer; the processing pool keeps one per thread.

pub(crate) mod animate;
mod color;
mod cost;
mod crop;
mod decode;
mod encode;
mod placeholder;
mod png;
mod resize;

use std::time::{Duration, Instant};

use fast_image_resize::{ResizeAlg, ResizeOptions, Resizer};

pub use animate::animation_cost;
pub use color::to_srgb;
pub use cost::decode_cost;
pub use crop::{Focal, Frame, frame, needed_width};
pub use decode::{Source, decode, decode_for_variants};
pub use encode::encode_variants;
pub use resize::{VARIANT_WIDTHS, scaled_height, variant_widths};

use super::probe::ProbeError;
use crate::model::{CropSize, MediaType};

/// Encoder and safety settings (from config).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// WebP quality, 0-100.
    pub quality: f32,
    /// WebP method (effort), 0-6.
    pub method: i32,
    pub max_pixels: u64,
    /// Scans a progressive JPEG may have (libjpeg-turbo stops past them).
    pub max_scans: u32,
    /// Frames an animation may have (uploads past it are refused before; this stops a
    /// decoder that finds more than the header walk counted).
    pub max_frames: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            quality: 80.0,
            method: 4,
            max_pixels: 100_000_000,
            max_scans: 100,
            max_frames: 1000,
        }
    }
}

/// One encoded WebP variant.
#[derive(Debug, Clone)]
pub struct Variant {
    pub width: u32,
    pub height: u32,
    pub webp: Vec<u8>,
}

/// Everything the pipeline makes from one image.
#[derive(Debug, Clone)]
pub struct Processed {
    /// Upright size of the original.
    pub width: u32,
    pub height: u32,
    /// Largest first; empty when the image is no wider than the smallest variant.
    pub variants: Vec<Variant>,
    /// The whole picture as a WebP too (`Make::Poster`).
    pub poster: Option<Variant>,
    /// One per requested crop size, in the order asked.
    pub crops: Vec<Variant>,
    /// Base64 thumbhash.
    pub thumbhash: String,
    /// `#rrggbb`.
    pub dominant_color: String,
    pub timings: Timings,
}

/// Time spent in each stage of one run (placeholders count as resize).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub decode: Duration,
    pub resize: Duration,
    pub encode: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error("the image cannot be decoded: {0}")]
    Decode(String),
    #[error("resizing failed: {0}")]
    Resize(String),
    #[error("WebP encoding failed: {0}")]
    Encode(String),
    #[error(transparent)]
    Poster(#[from] crate::media::poster::PosterError),
}

/// What a run makes beside the crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Make {
    /// Variants and placeholders too.
    All,
    /// The crops alone.
    CropsOnly,
    /// As `All`, the variants animated (an animated GIF or WebP): every frame resized.
    Animated,
    /// As `All`, and the picture itself encoded whole (a video's or PDF's poster).
    Poster,
}

/// Reusable per-thread state.
pub struct Worker {
    resizer: Resizer,
    options: ResizeOptions,
}

impl Default for Worker {
    fn default() -> Self {
        Self::new()
    }
}

impl Worker {
    pub fn new() -> Self {
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(
            fast_image_resize::FilterType::Lanczos3,
        ));
        Self {
            resizer: Resizer::new(),
            options,
        }
    }

    /// Runs the whole pipeline on an image file's bytes: the stages, in order.
    pub fn process(
        &mut self,
        bytes: &[u8],
        kind: MediaType,
        settings: &Settings,
    ) -> Result<Processed, PipelineError> {
        self.process_with_crops(bytes, kind, settings, &[], Focal::CENTRE, Make::All)
    }

    /// One crop alone (on demand): decoded just large enough, cut, encoded.
    pub fn crop_only(
        &mut self,
        bytes: &[u8],
        kind: MediaType,
        settings: &Settings,
        size: CropSize,
        focal: Focal,
    ) -> Result<Vec<u8>, PipelineError> {
        let made = Make::CropsOnly;
        let mut made = self.process_with_crops(bytes, kind, settings, &[size], focal, made)?;
        Ok(made.crops.pop().map(|v| v.webp).unwrap_or_default())
    }

    /// As `process`, and `crops` cut around `focal` from the decoded picture. With
    /// `Make::CropsOnly` (an image whose variants and placeholders are made already: a
    /// moved focal point, presets added) no variant is resized or encoded again.
    pub fn process_with_crops(
        &mut self,
        bytes: &[u8],
        kind: MediaType,
        settings: &Settings,
        crops: &[CropSize],
        focal: Focal,
        make: Make,
    ) -> Result<Processed, PipelineError> {
        let started = Instant::now();
        let source = match make {
            // The poster is the picture itself: decoded whole, never shrunk on load.
            Make::Poster => {
                let image = decode(bytes, kind, settings.max_pixels)?;
                let (width, height) = (image.width(), image.height());
                Source {
                    image,
                    width,
                    height,
                }
            }
            _ => decode_for_variants(bytes, kind, settings, crops)?,
        };
        let decoded = Instant::now();
        let (width, height) = (source.width, source.height);
        let (renditions, has_alpha, (thumbhash, dominant_color)) = match make {
            Make::All | Make::Animated | Make::Poster => {
                let (renditions, has_alpha) = self.resize_all(source)?;
                let smallest = &renditions[renditions.len() - 1];
                let placeholders = self.placeholders(smallest, has_alpha)?;
                (renditions, has_alpha, placeholders)
            }
            Make::CropsOnly => {
                let (picture, has_alpha) = self.decoded(source)?;
                (vec![picture], has_alpha, Default::default())
            }
        };
        let cropped = crops
            .iter()
            .map(|size| self.crop(&renditions[0], *size, focal))
            .collect::<Result<Vec<_>, _>>()?;
        let resized = Instant::now();
        let variants = match make {
            Make::Animated => self.animate(bytes, kind, settings)?,
            _ => encode_variants(&renditions[1..], has_alpha, settings)?,
        };
        let crops = encode_variants(&cropped, has_alpha, settings)?;
        let poster = match make {
            Make::Poster => encode_variants(&renditions[..1], has_alpha, settings)?.pop(),
            _ => None,
        };
        Ok(Processed {
            width,
            height,
            variants,
            poster,
            crops,
            thumbhash,
            dominant_color,
            timings: Timings {
                decode: decoded - started,
                resize: resized - decoded,
                encode: resized.elapsed(),
            },
        })
    }
}

#[cfg(test)]
mod tests;
