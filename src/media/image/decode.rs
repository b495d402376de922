//! Stage 1: decoding. The pixel limit is checked from the header before anything is
//! allocated; large JPEGs are decoded at a fraction of their size in the DCT
//! (shrink-on-load); EXIF orientation is applied and the colours converted to sRGB
//! (`color`); animated GIF/WebP give their first frame.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::resize::variant_widths;
use super::{PipelineError, to_srgb};
use crate::media::probe::{Dimensions, check_pixels};
use crate::model::MediaType;

/// A decoded, upright picture and the upright size of the original (the picture itself
/// may be smaller: see `decode_for_variants`).
pub struct Source {
    pub image: DynamicImage,
    pub width: u32,
    pub height: u32,
}

/// Decodes just enough pixels for the variants: a JPEG at least four times as wide as its
/// largest variant (20 MP camera originals) is decoded at 1/4 or 1/8 scale in the DCT
/// (shrink-on-load), which skips most of the IDCT, colour conversion and memory of a
/// full decode.
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
    let turned = is_quarter_turn(orientation);
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
    let image = decode_scaled(&mut decoder, request, info.pixel_format)?;
    let mut image = to_srgb(image, decoder.icc_profile().as_deref());
    image.apply_orientation(orientation);
    Ok(Some(Source {
        image,
        width,
        height,
    }))
}

/// True for the orientations that swap width and height.
fn is_quarter_turn(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Decodes at the smallest DCT scale that covers `request` (width, height), as stored.
fn decode_scaled(
    decoder: &mut jpeg_decoder::Decoder<&[u8]>,
    request: (u16, u16),
    format: jpeg_decoder::PixelFormat,
) -> Result<DynamicImage, PipelineError> {
    let (w, h) = decoder
        .scale(request.0, request.1)
        .map_err(|e| PipelineError::Decode(e.to_string()))?;
    let pixels = decoder
        .decode()
        .map_err(|e| PipelineError::Decode(e.to_string()))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let bad_size = || PipelineError::Decode("decoded size does not match the header".into());
    Ok(match format {
        jpeg_decoder::PixelFormat::L8 => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels).ok_or_else(bad_size)?)
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels).ok_or_else(bad_size)?),
    })
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
