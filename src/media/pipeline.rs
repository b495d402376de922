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
use image::metadata::Orientation;
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
        let source = decode_for_variants(bytes, kind, settings.max_pixels)?;
        let decoded = Instant::now();
        let (width, height) = (source.width, source.height);
        let (renditions, has_alpha) = self.resize_all(source)?;
        let smallest = &renditions[renditions.len() - 1];
        let (thumbhash, dominant_color) = self.placeholders(smallest, has_alpha)?;
        let resized = Instant::now();
        let variants = encode_variants(&renditions[1..], has_alpha, settings)?;
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

    /// The decoded picture followed by each variant's pixels, largest first, each resized
    /// from the previous one (cascade). Variant sizes derive from the original's upright
    /// size, whatever scale the picture was decoded at.
    pub fn resize_all(
        &mut self,
        source: Source,
    ) -> Result<(Vec<Image<'static>>, bool), PipelineError> {
        let Source {
            image,
            width,
            height,
        } = source;
        let has_alpha = image.color().has_alpha();
        let (w, h) = (image.width(), image.height());
        let (pixel_type, raw) = if has_alpha {
            (PixelType::U8x4, image.into_rgba8().into_raw())
        } else {
            (PixelType::U8x3, image.into_rgb8().into_raw())
        };
        let decoded = Image::from_vec_u8(w, h, raw, pixel_type)
            .map_err(|e| PipelineError::Resize(e.to_string()))?;
        let mut out = vec![decoded];
        for target in variant_widths(width) {
            let mut dst = Image::new(target, scaled_height(width, height, target), pixel_type);
            let src = &out[out.len() - 1];
            self.resizer
                .resize(src, &mut dst, &self.options)
                .map_err(|e| PipelineError::Resize(e.to_string()))?;
            out.push(dst);
        }
        Ok((out, has_alpha))
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

/// A decoded, upright picture and the upright size of the original (the picture itself
/// may be smaller: see `decode_for_variants`).
pub struct Source {
    pub image: DynamicImage,
    pub width: u32,
    pub height: u32,
}

/// The variant widths an image of this upright width gets (never upscaled), largest first.
pub fn variant_widths(width: u32) -> impl Iterator<Item = u32> {
    VARIANT_WIDTHS.into_iter().filter(move |w| *w < width)
}

/// Decodes just enough pixels for the variants: a JPEG at least four times as wide as its
/// largest variant (20 MP camera originals) is decoded at 1/4 or 1/8 scale in the DCT
/// (shrink-on-load),
/// which skips most of the IDCT, colour conversion and memory of a full decode.
/// Everything else is decoded whole by `decode`.
pub fn decode_for_variants(
    bytes: &[u8],
    kind: MediaType,
    max_pixels: u64,
) -> Result<Source, PipelineError> {
    if kind == MediaType::Jpeg
        && let Some(source) = shrink_on_load(bytes, max_pixels)?
    {
        return Ok(source);
    }
    let image = decode(bytes, kind, max_pixels)?;
    Ok(Source {
        width: image.width(),
        height: image.height(),
        image,
    })
}

/// The scaled JPEG decode, or `None` when it would not save anything (or the JPEG is
/// CMYK or 12-bit, which the full decoder handles).
fn shrink_on_load(bytes: &[u8], max_pixels: u64) -> Result<Option<Source>, PipelineError> {
    let mut decoder = jpeg_decoder::Decoder::new(bytes);
    if decoder.read_info().is_err() {
        return Ok(None); // the full decoder reports the error in its own words
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let stored = Dimensions {
        width: u32::from(info.width),
        height: u32::from(info.height),
    };
    check_pixels(stored, max_pixels)?;
    let simple_pixels = matches!(
        info.pixel_format,
        jpeg_decoder::PixelFormat::L8 | jpeg_decoder::PixelFormat::RGB24
    );
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = if turned {
        (stored.height, stored.width)
    } else {
        (stored.width, stored.height)
    };
    let Some(needed) = variant_widths(width).next() else {
        return Ok(None);
    };
    // The smallest 1/8 steps of the upright width that still cover the largest variant.
    // Measured (benches/pipeline.rs): at 1/2 scale jpeg-decoder is no faster than the
    // full zune-jpeg decode; at 1/4 and 1/8 it is (the IDCT and colour work shrink 16-64x).
    let eighths = (u64::from(needed) * 8).div_ceil(u64::from(width));
    if !simple_pixels || eighths > 2 {
        return Ok(None);
    }
    let needed = u16::try_from(needed).unwrap_or(u16::MAX);
    let request = if turned {
        (u16::MAX, needed)
    } else {
        (needed, u16::MAX)
    };
    let (w, h) = decoder
        .scale(request.0, request.1)
        .map_err(|e| PipelineError::Decode(e.to_string()))?;
    let pixels = decoder
        .decode()
        .map_err(|e| PipelineError::Decode(e.to_string()))?;
    let icc = decoder.icc_profile();
    let (w, h) = (u32::from(w), u32::from(h));
    let bad_size = || PipelineError::Decode("decoded size does not match the header".into());
    let image = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(bad_size)?)
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(bad_size)?),
    };
    let mut image = to_srgb(image, icc.as_deref());
    image.apply_orientation(orientation);
    Ok(Some(Source {
        image,
        width,
        height,
    }))
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
    let icc = decoder.icc_profile().ok().flatten();
    let img =
        DynamicImage::from_decoder(decoder).map_err(|e| PipelineError::Decode(e.to_string()))?;
    let mut img = to_srgb(img, icc.as_deref());
    img.apply_orientation(orientation);
    Ok(img)
}

/// Converts pixels tagged with an RGB ICC profile (Display P3, Adobe RGB, a camera's
/// own...) to sRGB, the colour space browsers assume for untagged WebP. Untagged
/// images, grey and CMYK profiles, and profiles that cannot be read are left as they are.
pub fn to_srgb(image: DynamicImage, icc: Option<&[u8]>) -> DynamicImage {
    let Some(profile) = icc.and_then(|b| moxcms::ColorProfile::new_from_slice(b).ok()) else {
        return image;
    };
    if profile.color_space != moxcms::DataColorSpace::Rgb {
        return image;
    }
    let layout = if image.color().has_alpha() {
        moxcms::Layout::Rgba
    } else {
        moxcms::Layout::Rgb
    };
    let srgb = moxcms::ColorProfile::new_srgb();
    let options = moxcms::TransformOptions::default();
    let Ok(transform) = profile.create_transform_8bit(layout, &srgb, layout, options) else {
        return image;
    };
    if is_identity(transform.as_ref(), layout) {
        return image; // an sRGB profile under another name (most cameras and editors)
    }
    let (w, h) = (image.width(), image.height());
    let pixels = match layout {
        moxcms::Layout::Rgba => image.into_rgba8().into_raw(),
        _ => image.into_rgb8().into_raw(),
    };
    let mut out = vec![0u8; pixels.len()];
    let data = if transform.transform(&pixels, &mut out).is_ok() {
        out
    } else {
        pixels
    };
    let rebuilt = match layout {
        moxcms::Layout::Rgba => image::RgbaImage::from_raw(w, h, data).map(DynamicImage::from),
        _ => image::RgbImage::from_raw(w, h, data).map(DynamicImage::from),
    };
    rebuilt.unwrap_or_else(|| DynamicImage::new_rgb8(w, h))
}

/// Decoded pixels and every variant's resized pixels, largest first (for measuring the
/// encoder on its own): `(renditions, has_alpha)`, the decoded picture excluded.
pub fn renditions(
    worker: &mut Worker,
    bytes: &[u8],
    kind: MediaType,
    settings: &Settings,
) -> Result<(Vec<Image<'static>>, bool), PipelineError> {
    let source = decode_for_variants(bytes, kind, settings.max_pixels)?;
    let (mut all, has_alpha) = worker.resize_all(source)?;
    all.remove(0);
    Ok((all, has_alpha))
}

/// Encodes each rendition as a WebP variant.
pub fn encode_variants(
    renditions: &[Image<'_>],
    has_alpha: bool,
    settings: &Settings,
) -> Result<Vec<Variant>, PipelineError> {
    renditions
        .iter()
        .map(|img| encode_webp(img, has_alpha, settings))
        .collect()
}

/// True when the transform leaves a grid of 125 colours within ±1: converting the whole
/// image would change nothing visible, so it is skipped.
fn is_identity(t: &moxcms::Transform8BitExecutor, layout: moxcms::Layout) -> bool {
    const LEVELS: [u8; 5] = [0, 64, 128, 192, 255];
    let channels = if layout == moxcms::Layout::Rgba { 4 } else { 3 };
    let mut probe = Vec::with_capacity(125 * channels);
    for r in LEVELS {
        for g in LEVELS {
            for b in LEVELS {
                probe.extend_from_slice(&[r, g, b, 255][..channels]);
            }
        }
    }
    let mut out = vec![0u8; probe.len()];
    t.transform(&probe, &mut out).is_ok()
        && probe.iter().zip(&out).all(|(a, b)| a.abs_diff(*b) <= 1)
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

    /// A 4800x3000 baseline JPEG made from the camera fixture (a 14 MP original).
    fn large_jpeg() -> Vec<u8> {
        let photo = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
        let small = image::load_from_memory(&photo).expect("decode").into_rgb8();
        let big = image::imageops::resize(&small, 4800, 3000, image::imageops::Triangle);
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
            .encode_image(&big)
            .expect("encode");
        out
    }

    #[test]
    fn large_jpegs_are_decoded_scaled_with_the_same_variants() {
        let bytes = large_jpeg();
        let scaled = decode_for_variants(&bytes, MediaType::Jpeg, 100_000_000).expect("decode");
        assert_eq!((scaled.width, scaled.height), (4800, 3000));
        assert_eq!(
            (scaled.image.width(), scaled.image.height()),
            (1200, 750),
            "1/4 scale still covers the 1200 px variant"
        );
        let p = Worker::new()
            .process(&bytes, MediaType::Jpeg, &Settings::default())
            .expect("process");
        assert_eq!((p.width, p.height), (4800, 3000));
        let sizes: Vec<(u32, u32)> = p.variants.iter().map(|v| (v.width, v.height)).collect();
        assert_eq!(sizes, [(1200, 750), (800, 500), (400, 250), (150, 94)]);

        // The scaled decode shows the same picture as the full one.
        let full = decode(&bytes, MediaType::Jpeg, 100_000_000).expect("full");
        let full = image::imageops::thumbnail(&full.into_rgb8(), 300, 188);
        let quarter = image::imageops::thumbnail(&scaled.image.into_rgb8(), 300, 188);
        let diff: u64 = full
            .as_raw()
            .iter()
            .zip(quarter.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        let mean = diff as f64 / full.as_raw().len() as f64;
        assert!(mean < 3.0, "mean channel difference {mean:.2}");

        // JPEGs less than four times their largest variant decode whole.
        for path in [
            "jpeg/colorfulcups_2560x1600_progressive_gps.jpg",
            "jpeg/elephants_1920x1080_progressive.jpg",
        ] {
            let bytes = fixture(path);
            let whole = decode_for_variants(&bytes, MediaType::Jpeg, 100_000_000).expect(path);
            assert_eq!(whole.image.width(), whole.width, "{path}");
        }
    }

    #[test]
    fn icc_tagged_pixels_are_converted_to_srgb() {
        // Linear-light primaries of sRGB: 20% light is stored as 51, shown as ~124 in sRGB.
        let mut linear = moxcms::ColorProfile::new_srgb();
        let gamma_1 = moxcms::ToneReprCurve::Parametric(vec![1.0]);
        linear.red_trc = Some(gamma_1.clone());
        linear.green_trc = Some(gamma_1.clone());
        linear.blue_trc = Some(gamma_1);
        linear.cicp = None; // else the profile claims sRGB by its CICP tag
        let icc = linear.encode().expect("encode profile");
        let tagged =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(4, 4, image::Rgb([51, 51, 51])));
        let out = to_srgb(tagged.clone(), Some(&icc)).into_rgb8();
        let v = out.get_pixel(0, 0).0;
        assert!(
            (120..=128).contains(&v[0]) && v[0] == v[1] && v[1] == v[2],
            "{v:?}"
        );

        // Untagged, unreadable or sRGB-tagged pixels keep their values.
        assert_eq!(to_srgb(tagged.clone(), None), tagged);
        assert_eq!(to_srgb(tagged.clone(), Some(b"not a profile")), tagged);
        let srgb = moxcms::ColorProfile::new_srgb().encode().expect("encode");
        let same = to_srgb(tagged, Some(&srgb)).into_rgb8();
        let p = same.get_pixel(0, 0).0;
        assert!(p.iter().all(|c| c.abs_diff(51) <= 1), "{p:?}");
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
