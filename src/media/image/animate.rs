//! Animations: an animated GIF or WebP becomes animated WebP variants. Each frame is
//! decoded (composited onto the canvas by the `image` decoders), resized to every
//! variant width in cascade, and handed to that width's encoder (`webp-anim`) before the
//! next frame is decoded: memory is the canvas, one frame and each encoder's state,
//! however many frames there are. Timing and loop count are kept; a delay of 10 ms or
//! less plays as 100 ms, as browsers and gif2webp play it.

use std::io::Cursor;

use fast_image_resize::PixelType;
use fast_image_resize::images::Image;
use image::codecs::gif::GifDecoder;
use image::codecs::webp::WebPDecoder;
use image::{AnimationDecoder, Frames, ImageDecoder};

use super::resize::{scaled_height, variant_widths};
use super::{PipelineError, Settings, Variant, Worker};
use crate::media::anim::{self, shown_ms};
use crate::media::probe::{Dimensions, check_pixels};
use crate::model::MediaType;

impl Worker {
    /// The animated WebP variants of an animated GIF or WebP, largest first (none for
    /// an animation no wider than the smallest variant).
    pub fn animate(
        &mut self,
        bytes: &[u8],
        kind: MediaType,
        settings: &Settings,
    ) -> Result<Vec<Variant>, PipelineError> {
        let (frames, width, height) = open(bytes, kind)?;
        // The loop count as the header walk reads it (the decoders' reading of a GIF's is
        // not what browsers play).
        let limits = crate::media::Limits {
            max_pixels: settings.max_pixels,
            ..Default::default()
        };
        let loops = anim::scan(kind, &mut &bytes[..], &limits)
            .ok()
            .flatten()
            .map_or(0, |a| a.loops);
        check_pixels(Dimensions { width, height }, settings.max_pixels)?;
        let sizes: Vec<(u32, u32)> = variant_widths(width)
            .map(|w| (w, scaled_height(width, height, w)))
            .collect();
        if sizes.is_empty() {
            return Ok(Vec::new());
        }
        let options = webp_anim::Options {
            quality: settings.quality,
            method: settings.method,
            loops,
        };
        let mut encoders = sizes
            .iter()
            .map(|(w, h)| webp_anim::Encoder::new(*w, *h, &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(encode_error)?;
        let (mut at_ms, mut count) = (0i32, 0u64);
        for frame in frames {
            let frame = match frame {
                Ok(frame) => frame,
                // Cut short or damaged past its first frames: what decoded plays (as a
                // browser shows it).
                Err(e) if count > 0 => {
                    tracing::debug!(error = %e, frames = count, "animation ends early");
                    break;
                }
                Err(e) => return Err(PipelineError::Decode(e.to_string())),
            };
            count += 1;
            if count > settings.max_frames {
                return Err(PipelineError::Decode(format!(
                    "the animation has more than {} frames",
                    settings.max_frames
                )));
            }
            let (numer, denom) = frame.delay().numer_denom_ms();
            let canvas = frame.into_buffer().into_raw();
            let mut previous = Image::from_vec_u8(width, height, canvas, PixelType::U8x4)
                .map_err(|e| PipelineError::Resize(e.to_string()))?;
            for ((w, h), encoder) in sizes.iter().zip(&mut encoders) {
                let mut resized = Image::new(*w, *h, PixelType::U8x4);
                self.resizer
                    .resize(&previous, &mut resized, &self.options)
                    .map_err(|e| PipelineError::Resize(e.to_string()))?;
                encoder
                    .add_rgba(resized.buffer(), at_ms)
                    .map_err(encode_error)?;
                previous = resized;
            }
            let shown = shown_ms(u64::from(numer / denom.max(1)));
            at_ms = i32::try_from(shown)
                .ok()
                .and_then(|ms| at_ms.checked_add(ms))
                .ok_or_else(|| PipelineError::Decode("the animation is too long".into()))?;
        }
        sizes
            .iter()
            .zip(encoders)
            .map(|((width, height), encoder)| {
                Ok(Variant {
                    width: *width,
                    height: *height,
                    webp: encoder.finish(at_ms).map_err(encode_error)?,
                })
            })
            .collect()
    }
}

/// The frames of an animated GIF or WebP and its canvas.
fn open(bytes: &[u8], kind: MediaType) -> Result<(Frames<'_>, u32, u32), PipelineError> {
    let error = |e: image::ImageError| PipelineError::Decode(e.to_string());
    match kind {
        MediaType::Gif => {
            let decoder = GifDecoder::new(Cursor::new(bytes)).map_err(error)?;
            let (w, h) = decoder.dimensions();
            Ok((decoder.into_frames(), w, h))
        }
        MediaType::Webp => {
            let decoder = WebPDecoder::new(Cursor::new(bytes)).map_err(error)?;
            let (w, h) = decoder.dimensions();
            Ok((decoder.into_frames(), w, h))
        }
        _ => Err(PipelineError::Decode("not an animation".into())),
    }
}

/// What streaming an animation of a `width` x `height` canvas holds beyond a still
/// image's decode (`decode_cost`): each width's encoder keeps about six canvases of its
/// size (libwebp's previous, current and disposed canvases, and candidate frames), and
/// each frame is decoded onto the canvas and copied out of it.
pub fn animation_cost(width: u32, height: u32) -> u64 {
    let canvas = u64::from(width) * u64::from(height) * 4;
    let encoders: u64 = variant_widths(width)
        .map(|w| u64::from(w) * u64::from(scaled_height(width, height, w)) * 4 * 6)
        .sum();
    canvas * 2 + encoders
}

fn encode_error(e: webp_anim::Error) -> PipelineError {
    PipelineError::Encode(e.0)
}
