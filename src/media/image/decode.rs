//! Stage 1: decoding. The pixel limit is checked from the header before anything is
//! allocated; JPEGs are decoded by libjpeg-turbo at a fraction of their size in the DCT
//! (shrink-on-load) with at most `max_scans` scans; PNGs by rows, 16 bits cut to 8 and
//! shrunk on load (`png`); EXIF orientation is applied and the colours converted to sRGB
//! (`color`, CMYK through the file's own profile); animated GIF/WebP give their first
//! frame. A file is decoded once: when the decoder chosen for it fails, that is the
//! answer (a second decoder would cost as much again, for a bomb too).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::crop::needed_width;
use super::png::decode_png;
use super::resize::variant_widths;
use super::{PipelineError, Settings, color, to_srgb};
use crate::media::probe::{Dimensions, check_pixels};
use crate::model::{CropSize, MediaType};

/// A decoded, upright picture and the upright size of the original (the picture itself
/// may be smaller: see `decode_for_variants`).
pub struct Source {
    pub image: DynamicImage,
    pub width: u32,
    pub height: u32,
}

/// Decodes just enough pixels for the variants and `crops`: JPEG through libjpeg-turbo
/// (SIMD Huffman and IDCT, one thread: the processing pool's), scaled in the DCT to the
/// smallest 1/8, 1/4 or 1/2 of its size that still covers the largest variant or crop it
/// will make (a 20 MP camera original for a 1200 px variant decodes at 1/4, with a
/// sixteenth of the IDCT, colour conversion and memory of a full decode); PNG by rows,
/// shrunk the same way; everything else whole, by the `image` crate (`decode`).
pub fn decode_for_variants(
    bytes: &[u8],
    kind: MediaType,
    settings: &Settings,
    crops: &[CropSize],
) -> Result<Source, PipelineError> {
    match kind {
        MediaType::Jpeg => {
            if let Some(source) = decode_jpeg_scaled(bytes, settings, crops)? {
                return Ok(source);
            }
        }
        MediaType::Png => {
            let needed = |w: u32, h: u32| needed_for(w, h, crops);
            return decode_png(bytes, settings.max_pixels, needed);
        }
        _ => {}
    }
    let image = decode(bytes, kind, settings.max_pixels)?;
    Ok(Source {
        width: image.width(),
        height: image.height(),
        image,
    })
}

/// The widest the decoded picture must be, upright: its largest variant or crop.
fn needed_for(width: u32, height: u32, crops: &[CropSize]) -> u32 {
    crops
        .iter()
        .map(|c| needed_width(width, height, *c))
        .chain(variant_widths(width).next())
        .max()
        .unwrap_or(width)
}

/// The libjpeg-turbo decode, or `None` for a JPEG it does not take (12-bit: the `image`
/// crate then decodes it whole, and `decode_cost` counts it so). The pixel limit is checked from
/// the header first. Crops count like variants: the scale keeps each one's frame at
/// least its size.
fn decode_jpeg_scaled(
    bytes: &[u8],
    settings: &Settings,
    crops: &[CropSize],
) -> Result<Option<Source>, PipelineError> {
    // Markers only (orientation, ICC profile, component layout): no pixel is decoded here.
    let mut markers = jpeg_decoder::Decoder::new(bytes);
    if markers.read_info().is_err() {
        // Refused at upload since; an older file goes no costlier way.
        return Err(PipelineError::Decode(
            "the JPEG's headers cannot be read".into(),
        ));
    }
    let Some(info) = markers.info() else {
        return Ok(None);
    };
    let stored = Dimensions {
        width: u32::from(info.width),
        height: u32::from(info.height),
    };
    check_pixels(stored, settings.max_pixels)?;
    let format = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => turbojpeg::PixelFormat::GRAY,
        jpeg_decoder::PixelFormat::RGB24 => turbojpeg::PixelFormat::RGB,
        jpeg_decoder::PixelFormat::CMYK32 => turbojpeg::PixelFormat::CMYK,
        jpeg_decoder::PixelFormat::L16 => return Ok(None),
    };
    let orientation = markers
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let (width, height) = if is_quarter_turn(orientation) {
        (stored.height, stored.width)
    } else {
        (stored.width, stored.height)
    };
    let factor = dct_scale(width, needed_for(width, height, crops));
    let icc = markers.icc_profile();
    let image = turbo_decompress(bytes, factor, format, settings.max_scans)?;
    let mut image = match image {
        Decoded::Pixels(image) => to_srgb(image, icc.as_deref()),
        Decoded::Cmyk { w, h, samples } => {
            color::cmyk_to_srgb(w, h, samples, icc.as_deref(), has_adobe_marker(bytes))
        }
    };
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

/// What libjpeg-turbo decoded: pixels, or CMYK samples for the colour stage.
enum Decoded {
    Pixels(DynamicImage),
    Cmyk { w: u32, h: u32, samples: Vec<u8> },
}

/// Decompresses at `factor` into 8-bit grey, RGB or CMYK, with at most `max_scans` scans.
fn turbo_decompress(
    bytes: &[u8],
    factor: turbojpeg::ScalingFactor,
    format: turbojpeg::PixelFormat,
    max_scans: u32,
) -> Result<Decoded, PipelineError> {
    let failed = |e: turbojpeg::Error| PipelineError::Decode(e.to_string());
    let mut decompressor = turbojpeg::Decompressor::new().map_err(failed)?;
    decompressor.set_scan_limit(max_scans).map_err(failed)?;
    let header = decompressor
        .read_header(bytes)
        .map_err(failed)?
        .scaled(factor);
    decompressor.set_scaling_factor(factor).map_err(failed)?;
    let (w, h, channels) = (header.width, header.height, format.size());
    let size = w.checked_mul(h).and_then(|n| n.checked_mul(channels));
    let mut pixels = vec![0u8; size.ok_or_else(|| PipelineError::Decode("too large".into()))?];
    let output = turbojpeg::Image {
        pixels: pixels.as_mut_slice(),
        width: w,
        pitch: w * channels,
        height: h,
        format,
    };
    decompressor.decompress(bytes, output).map_err(failed)?;
    let dims = u32::try_from(w).ok().zip(u32::try_from(h).ok());
    let (w, h) = dims.ok_or_else(|| PipelineError::Decode("too large".into()))?;
    let image = match format {
        turbojpeg::PixelFormat::CMYK => {
            return Ok(Decoded::Cmyk {
                w,
                h,
                samples: pixels,
            });
        }
        turbojpeg::PixelFormat::GRAY => {
            image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
        }
        _ => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    image
        .map(Decoded::Pixels)
        .ok_or_else(|| PipelineError::Decode("the decoded size does not match".into()))
}

/// True when the JPEG has an Adobe APP14 segment before its first scan: its CMYK samples
/// are stored inverted (as Photoshop writes them).
fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xDA {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        if marker == 0xEE && bytes.get(at + 4..at + 9) == Some(b"Adobe") {
            return true;
        }
        at += 2 + len;
    }
    false
}

/// True for the orientations that swap width and height.
pub(super) fn is_quarter_turn(orientation: Orientation) -> bool {
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
