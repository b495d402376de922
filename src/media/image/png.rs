//! Stage 1 for PNG: decoded by rows into 8 bits a sample (16-bit samples are cut to 8 as
//! they arrive: the variants are 8-bit), and shrunk on load: a picture wider than twice
//! what its largest variant or crop needs is averaged down by 2, 4 or 8 while its rows
//! stream in (alpha-weighted, so transparent pixels do not darken the edges), so a
//! 100 MP PNG is never held whole. Interlaced PNGs, whose rows come in seven passes,
//! are decoded whole (at 8 bits).

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};

use super::decode::{Source, is_quarter_turn};
use super::{PipelineError, to_srgb};
use crate::media::probe::{Dimensions, check_pixels};

/// Decodes a PNG (upright, sRGB) at the smallest of 1/8, 1/4, 1/2 or whole that keeps its
/// upright width at least `needed(upright width, upright height)`.
pub(super) fn decode_png(
    bytes: &[u8],
    max_pixels: u64,
    needed: impl Fn(u32, u32) -> u32,
) -> Result<Source, PipelineError> {
    let mut decoder = ::png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(::png::Transformations::EXPAND | ::png::Transformations::STRIP_16);
    decoder.set_limits(::png::Limits { bytes: 64 << 20 }); // metadata and rows, not pixels
    let mut reader = decoder.read_info().map_err(decode_error)?;
    let info = reader.info();
    let stored = Dimensions {
        width: info.width,
        height: info.height,
    };
    check_pixels(stored, max_pixels)?;
    let orientation = info
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let icc = info.icc_profile.as_ref().map(|p| p.to_vec());
    let interlaced = info.interlaced;
    let (width, height) = if is_quarter_turn(orientation) {
        (stored.height, stored.width)
    } else {
        (stored.width, stored.height)
    };
    let factor = [8u32, 4, 2]
        .into_iter()
        .find(|f| width.div_ceil(*f) >= needed(width, height))
        .filter(|_| !interlaced)
        .unwrap_or(1);
    let (color, _) = reader.output_color_type();
    let channels = color.samples();
    let (w, h) = (
        stored.width.div_ceil(factor),
        stored.height.div_ceil(factor),
    );
    let pixels = if factor == 1 {
        let size = reader.output_buffer_size().ok_or(too_large())?;
        let mut buf = vec![0u8; size];
        reader.next_frame(&mut buf).map_err(decode_error)?;
        buf
    } else {
        shrink_rows(
            &mut reader,
            stored.width,
            factor,
            channels,
            w as usize * h as usize,
        )?
    };
    let image = match channels {
        1 => GrayImage::from_raw(w, h, pixels).map(DynamicImage::from),
        2 => GrayAlphaImage::from_raw(w, h, pixels).map(DynamicImage::from),
        3 => RgbImage::from_raw(w, h, pixels).map(DynamicImage::from),
        _ => RgbaImage::from_raw(w, h, pixels).map(DynamicImage::from),
    }
    .ok_or_else(|| PipelineError::Decode("the PNG's rows do not fill its size".into()))?;
    let mut image = to_srgb(image, icc.as_deref());
    image.apply_orientation(orientation);
    Ok(Source {
        image,
        width,
        height,
    })
}

/// Averages each `factor` x `factor` block of the rows `reader` gives (`channels` 8-bit
/// samples a pixel, the last of 2 or 4 being alpha) into one pixel.
fn shrink_rows<R: std::io::BufRead + std::io::Seek>(
    reader: &mut ::png::Reader<R>,
    width: u32,
    factor: u32,
    channels: usize,
    out_pixels: usize,
) -> Result<Vec<u8>, PipelineError> {
    let (f, out_w) = (factor as usize, width.div_ceil(factor) as usize);
    let alpha = channels == 2 || channels == 4;
    let mut out = Vec::with_capacity(out_pixels * channels);
    // Per output pixel: the (alpha-weighted) sums of its samples and how many it has.
    let mut sums = vec![0u64; out_w * channels];
    let mut counts = vec![0u32; out_w];
    let mut rows_in_block = 0;
    while let Some(row) = reader.next_row().map_err(decode_error)? {
        for (x, px) in row.data().chunks_exact(channels).enumerate() {
            let (o, weight) = (
                x / f,
                if alpha {
                    u64::from(px[channels - 1])
                } else {
                    1
                },
            );
            let sum = &mut sums[o * channels..(o + 1) * channels];
            for (c, s) in px
                .iter()
                .zip(sum.iter_mut())
                .take(channels - usize::from(alpha))
            {
                *s += u64::from(*c) * weight;
            }
            if alpha {
                sum[channels - 1] += weight;
            }
            counts[o] += 1;
        }
        rows_in_block += 1;
        if rows_in_block == f {
            emit(&mut out, &mut sums, &mut counts, channels, alpha);
            rows_in_block = 0;
        }
    }
    if rows_in_block > 0 {
        emit(&mut out, &mut sums, &mut counts, channels, alpha);
    }
    Ok(out)
}

/// Writes one output row from the block sums, and clears them.
fn emit(out: &mut Vec<u8>, sums: &mut [u64], counts: &mut [u32], channels: usize, alpha: bool) {
    for (sum, count) in sums.chunks_exact_mut(channels).zip(counts.iter_mut()) {
        let n = u64::from((*count).max(1));
        let weight = if alpha { sum[channels - 1] } else { n };
        for s in &sum[..channels - usize::from(alpha)] {
            out.push(((s + weight / 2).checked_div(weight).unwrap_or(0)) as u8);
        }
        if alpha {
            out.push(((weight + n / 2) / n) as u8);
        }
        sum.fill(0);
        *count = 0;
    }
}

fn decode_error(e: ::png::DecodingError) -> PipelineError {
    PipelineError::Decode(e.to_string())
}

fn too_large() -> PipelineError {
    PipelineError::Decode("the PNG's size does not fit in memory".into())
}
