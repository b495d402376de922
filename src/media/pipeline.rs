//! The image pipeline, as pure functions: decode (with a pixel limit checked from the
//! header first) → apply EXIF orientation → resize with fast_image_resize, largest variant
//! first and each next one from the previous (cascade), never upscaling → encode WebP
//! (libwebp, quality and method from config, no metadata) → placeholders (thumbhash and
//! dominant colour) from the smallest rendition.
//!
//! A `Worker` owns the reusable resizer; a processing pool keeps one per thread.

use std::io::Cursor;
use std::time::{Duration, Instant};

use fast_image_resize::images::Image;
use fast_image_resize::{PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::MediaType;
use super::probe::{Dimensions, ProbeError, check_pixels};

/// The variant widths of the spec, largest first.
pub const VARIANT_WIDTHS: [u32; 4] = [1200, 800, 400, 150];

/// Encoder and safety settings (from config).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// WebP quality, 0-100.
    pub quality: f32,
    /// WebP method (effort), 0-6.
    pub method: i32,
    pub max_pixels: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            quality: 80.0,
            method: 4,
            max_pixels: 100_000_000,
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

    /// Runs the whole pipeline on an image file's bytes.
    pub fn process(
        &mut self,
        bytes: &[u8],
        kind: MediaType,
        settings: &Settings,
    ) -> Result<Processed, PipelineError> {
        let started = Instant::now();
        let upright = decode(bytes, kind, settings.max_pixels)?;
        let (width, height) = (upright.width(), upright.height());
        let has_alpha = upright.color().has_alpha();
        let (pixel_type, raw) = if has_alpha {
            (PixelType::U8x4, upright.into_rgba8().into_raw())
        } else {
            (PixelType::U8x3, upright.into_rgb8().into_raw())
        };
        let original = Image::from_vec_u8(width, height, raw, pixel_type)
            .map_err(|e| PipelineError::Resize(e.to_string()))?;

        let decoded = Instant::now();
        let mut renditions: Vec<Image<'static>> = Vec::new();
        for target in VARIANT_WIDTHS.into_iter().filter(|w| *w < width) {
            let target_height = scaled_height(width, height, target);
            let mut dst = Image::new(target, target_height, pixel_type);
            let src = renditions.last().unwrap_or(&original);
            self.resizer
                .resize(src, &mut dst, &self.options)
                .map_err(|e| PipelineError::Resize(e.to_string()))?;
            renditions.push(dst);
        }
        let smallest = renditions.last().unwrap_or(&original);
        let (thumbhash, dominant_color) = self.placeholders(smallest, has_alpha)?;
        let resized = Instant::now();
        let variants = renditions
            .iter()
            .map(|img| encode_webp(img, has_alpha, settings))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Processed {
            width,
            height,
            variants,
            thumbhash,
            dominant_color,
            timings: Timings {
                decode: decoded - started,
                resize: resized - decoded,
                encode: resized.elapsed(),
            },
        })
    }

    /// Thumbhash (from at most 100x100) and the average colour of the smallest rendition.
    fn placeholders(
        &mut self,
        img: &Image<'_>,
        has_alpha: bool,
    ) -> Result<(String, String), PipelineError> {
        let scale = 100.0 / f64::from(img.width().max(img.height()));
        let (w, h) = if scale < 1.0 {
            let w = ((f64::from(img.width()) * scale).round() as u32).max(1);
            let h = ((f64::from(img.height()) * scale).round() as u32).max(1);
            (w, h)
        } else {
            (img.width(), img.height())
        };
        let mut small = Image::new(w, h, img.pixel_type());
        self.resizer
            .resize(img, &mut small, &self.options)
            .map_err(|e| PipelineError::Resize(e.to_string()))?;
        let rgba: Vec<u8> = if has_alpha {
            small.into_vec()
        } else {
            small
                .buffer()
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        };
        let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &rgba);
        Ok((base64(&hash), dominant_color(&rgba)))
    }
}

/// Decodes with the pixel limit enforced before any allocation, then turns the image
/// upright (all eight EXIF orientations). Animated GIF/WebP give their first frame.
pub fn decode(
    bytes: &[u8],
    kind: MediaType,
    max_pixels: u64,
) -> Result<DynamicImage, PipelineError> {
    let format = match kind {
        MediaType::Jpeg => image::ImageFormat::Jpeg,
        MediaType::Png => image::ImageFormat::Png,
        MediaType::Gif => image::ImageFormat::Gif,
        MediaType::Webp => image::ImageFormat::WebP,
        _ => return Err(PipelineError::Decode("not a raster image".into())),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| PipelineError::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    check_pixels(
        Dimensions {
            width: w,
            height: h,
        },
        max_pixels,
    )?;
    let orientation = decoder
        .orientation()
        .map_err(|e| PipelineError::Decode(e.to_string()))?;
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| PipelineError::Decode(e.to_string()))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Height for `target` width keeping the aspect ratio, at least 1 px.
pub fn scaled_height(width: u32, height: u32, target: u32) -> u32 {
    let h = (u64::from(height) * u64::from(target) + u64::from(width) / 2) / u64::from(width);
    u32::try_from(h).unwrap_or(u32::MAX).max(1)
}

fn encode_webp(img: &Image<'_>, has_alpha: bool, s: &Settings) -> Result<Variant, PipelineError> {
    let encoder = if has_alpha {
        webp::Encoder::from_rgba(img.buffer(), img.width(), img.height())
    } else {
        webp::Encoder::from_rgb(img.buffer(), img.width(), img.height())
    };
    let mut config =
        webp::WebPConfig::new().map_err(|()| PipelineError::Encode("config".into()))?;
    config.quality = s.quality;
    config.method = s.method;
    let out = encoder
        .encode_advanced(&config)
        .map_err(|e| PipelineError::Encode(format!("{e:?}")))?;
    Ok(Variant {
        width: img.width(),
        height: img.height(),
        webp: out.to_vec(),
    })
}

/// Alpha-weighted mean colour.
fn dominant_color(rgba: &[u8]) -> String {
    let (mut r, mut g, mut b, mut weight) = (0u64, 0u64, 0u64, 0u64);
    for p in rgba.chunks_exact(4) {
        let a = u64::from(p[3]);
        r += u64::from(p[0]) * a;
        g += u64::from(p[1]) * a;
        b += u64::from(p[2]) * a;
        weight += a;
    }
    if weight == 0 {
        return "#000000".to_owned();
    }
    format!("#{:02x}{:02x}{:02x}", r / weight, g / weight, b / weight)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_fixture as fixture;

    fn webp_size(data: &[u8]) -> (u32, u32) {
        let d = crate::media::probe::raster_dimensions(
            MediaType::Webp,
            &mut Cursor::new(data),
            u64::MAX,
        )
        .expect("a WebP");
        (d.width, d.height)
    }

    #[test]
    fn every_orientation_comes_out_upright_with_the_right_variants() {
        let mut worker = Worker::new();
        for o in 1..=8 {
            let bytes = fixture(&format!("jpeg/orientation/Landscape_{o}.jpg"));
            let p = worker
                .process(&bytes, MediaType::Jpeg, &Settings::default())
                .expect("process");
            assert_eq!((p.width, p.height), (600, 450), "orientation {o}");
            let widths: Vec<u32> = p.variants.iter().map(|v| v.width).collect();
            assert_eq!(widths, [400, 150], "orientation {o}");
            for v in &p.variants {
                assert_eq!(webp_size(&v.webp), (v.width, v.height));
                assert_eq!(v.height, scaled_height(600, 450, v.width));
            }
        }
    }

    #[test]
    fn decodes_each_format_and_never_upscales() {
        let mut worker = Worker::new();
        for (path, kind, size, widths) in [
            ("jpeg/cmyk_100x100.jpg", MediaType::Jpeg, (100, 100), vec![]),
            (
                "jpeg/grace_hopper_512x600.jpg",
                MediaType::Jpeg,
                (512, 600),
                vec![400, 150],
            ),
            (
                "png/spacefun_2048x1542_palette.png",
                MediaType::Png,
                (2048, 1542),
                vec![1200, 800, 400, 150],
            ),
            (
                "png/chessboard_200x200_rgb16.png",
                MediaType::Png,
                (200, 200),
                vec![150],
            ),
            (
                "gif/toucan_200x150_static_transparent.gif",
                MediaType::Gif,
                (200, 150),
                vec![150],
            ),
            (
                "webp/flower_480x360_lossy_exif.webp",
                MediaType::Webp,
                (480, 360),
                vec![400, 150],
            ),
            (
                "webp/skimage_logo_500x500_lossless.webp",
                MediaType::Webp,
                (500, 500),
                vec![400, 150],
            ),
        ] {
            let p = worker
                .process(&fixture(path), kind, &Settings::default())
                .expect(path);
            assert_eq!((p.width, p.height), size, "{path}");
            let got: Vec<u32> = p.variants.iter().map(|v| v.width).collect();
            assert_eq!(got, widths, "{path}");
            assert!(p.dominant_color.starts_with('#') && p.dominant_color.len() == 7);
            assert!(!p.thumbhash.is_empty());
        }
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let mut worker = Worker::new();
        let bomb = worker.process(
            &fixture("hostile/png_bomb_50000x50000.png"),
            MediaType::Png,
            &Settings::default(),
        );
        assert!(matches!(
            bomb,
            Err(PipelineError::Probe(ProbeError::TooLarge { .. }))
        ));
        let huge_gif = fixture("hostile/gif_huge_logical_screen_65535x65535.gif");
        assert!(
            worker
                .process(&huge_gif, MediaType::Gif, &Settings::default())
                .is_err()
        );
        let truncated = worker.process(
            &fixture("hostile/truncated_rocket.jpg"),
            MediaType::Jpeg,
            &Settings::default(),
        );
        if let Ok(p) = truncated {
            assert_eq!(
                (p.width, p.height),
                (640, 427),
                "a partial decode keeps the size"
            );
        }
        assert!(
            worker
                .process(
                    b"\xFF\xD8\xFF\xE0garbage",
                    MediaType::Jpeg,
                    &Settings::default()
                )
                .is_err()
        );
    }

    #[test]
    fn thin_images_keep_at_least_one_pixel() {
        assert_eq!(scaled_height(10799, 10, 150), 1);
        assert_eq!(scaled_height(1920, 1080, 1200), 675);
    }

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
