//! Stage 1: decoding. The pixel limit is checked from the header before anything is
//! allocated; JPEGs are decoded by libjpeg-turbo at a fraction of their size in the DCT
//! (shrink-on-load); EXIF orientation is applied and the colours converted to sRGB
//! (`color`); animated GIF/WebP give their first frame.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::crop::needed_width;
use super::resize::variant_widths;
use super::{PipelineError, to_srgb};
use crate::media::probe::{Dimensions, check_pixels};
use crate::model::{CropSize, MediaType};

/// A decoded, upright picture and the upright size of the original (the picture itself
/// may be smaller: see `decode_for_variants`).
pub struct Source {
    pub image: DynamicImage,
    pub width: u32,
    pub height: u32,
}

/// Decodes just enough pixels for the variants and `crops`. A JPEG goes through libjpeg-turbo (SIMD
/// Huffman and IDCT, one thread: the processing pool's), scaled in the DCT to the
/// smallest 1/8, 1/4 or 1/2 of its size that still covers the largest variant it will make
/// (shrink-on-load: a 20 MP camera original for a 1200 px variant decodes at 1/4, with a
/// sixteenth of the IDCT, colour conversion and memory of a full decode). Everything
/// else, and the JPEGs libjpeg-turbo does not take here (CMYK, 12-bit, or any it fails
/// on), is decoded whole by `decode`.
pub fn decode_for_variants(
    bytes: &[u8],
    kind: MediaType,
    max_pixels: u64,
    crops: &[CropSize],
) -> Result<Source, PipelineError> {
    if kind == MediaType::Jpeg
        && let Some(source) = decode_jpeg_scaled(bytes, max_pixels, crops)?
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

/// The libjpeg-turbo decode, or `None` for a JPEG it does not take (the full decoder then
/// reports any error in its own words). The pixel limit is checked from the header first.
/// Crops count like variants: the scale keeps each one's frame at least its size.
fn decode_jpeg_scaled(
    bytes: &[u8],
    max_pixels: u64,
    crops: &[CropSize],
) -> Result<Option<Source>, PipelineError> {
    // Markers only (orientation, ICC profile, component layout): no pixel is decoded here.
    let mut markers = jpeg_decoder::Decoder::new(bytes);
    if markers.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = markers.info() else {
        return Ok(None);
    };
    let stored = Dimensions {
        width: u32::from(info.width),
        height: u32::from(info.height),
    };
    check_pixels(stored, max_pixels)?;
    let format = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => turbojpeg::PixelFormat::GRAY,
        jpeg_decoder::PixelFormat::RGB24 => turbojpeg::PixelFormat::RGB,
        _ => return Ok(None),
    };
    let orientation = markers
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let turned = is_quarter_turn(orientation);
    let (width, height) = if turned {
        (stored.height, stored.width)
    } else {
        (stored.width, stored.height)
    };
    let needed = crops
        .iter()
        .map(|c| needed_width(width, height, *c))
        .chain(variant_widths(width).next())
        .max()
        .unwrap_or(width);
    let factor = dct_scale(width, needed);
    let Some(image) = turbo_decompress(bytes, factor, format) else {
        return Ok(None);
    };
    let mut image = to_srgb(image, markers.icc_profile().as_deref());
    image.apply_orientation(orientation);
    Ok(Some(Source {
        image,
        width,
        height,
    }))
}

/// The smallest of 1/8, 1/4 and 1/2 (or whole) that keeps `width` at least `needed`
/// wide. libjpeg-turbo offers every M/8, but at 5/8 or 3/4 the DCT's own downscale leaves
/// the large variant sharper than a resize would (+4.6% WebP bytes on a 1080p photo) and
/// saves little: those decode whole.
fn dct_scale(width: u32, needed: u32) -> turbojpeg::ScalingFactor {
    let width = width as usize;
    [8, 4, 2]
        .into_iter()
        .map(|denom| turbojpeg::ScalingFactor::new(1, denom))
        .find(|f| f.scale(width) >= needed as usize)
        .unwrap_or(turbojpeg::ScalingFactor::ONE)
}

/// Decompresses at `factor` into 8-bit RGB or grey, or `None` when libjpeg-turbo refuses.
fn turbo_decompress(
    bytes: &[u8],
    factor: turbojpeg::ScalingFactor,
    format: turbojpeg::PixelFormat,
) -> Option<DynamicImage> {
    let mut decompressor = turbojpeg::Decompressor::new().ok()?;
    let header = decompressor.read_header(bytes).ok()?.scaled(factor);
    decompressor.set_scaling_factor(factor).ok()?;
    let (w, h, channels) = (header.width, header.height, format.size());
    let mut pixels = vec![0u8; w.checked_mul(h)?.checked_mul(channels)?];
    let output = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * channels,
        height: h,
        format,
    };
    decompressor.decompress(bytes, output).ok()?;
    let (w, h) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
    Some(match format {
        turbojpeg::PixelFormat::GRAY => {
            DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, pixels)?)
        }
        _ => DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, pixels)?),
    })
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
