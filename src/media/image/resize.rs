//! Stage 3: resizing. Every variant's pixels, largest first, each resized from the
//! previous one (cascade) with Lanczos3; variant sizes come from the original's upright
//! size, and nothing is upscaled.

use fast_image_resize::PixelType;
use fast_image_resize::images::Image;

use super::{PipelineError, Source, Worker};

/// The variant widths of the spec, largest first.
pub const VARIANT_WIDTHS: [u32; 4] = [1200, 800, 400, 150];

impl Worker {
    /// The decoded picture followed by each variant's pixels, largest first, each resized
    /// from the previous one (cascade). Variant sizes derive from the original's upright
    /// size, whatever scale the picture was decoded at.
    pub fn resize_all(
        &mut self,
        source: Source,
    ) -> Result<(Vec<Image<'static>>, bool), PipelineError> {
        let (width, height) = (source.width, source.height);
        let (decoded, has_alpha) = self.decoded(source)?;
        let pixel_type = decoded.pixel_type();
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
}

impl Worker {
    /// The decoded picture as resizer pixels (RGB, or RGBA when it has alpha).
    pub fn decoded(&self, source: Source) -> Result<(Image<'static>, bool), PipelineError> {
        let image = source.image;
        let has_alpha = image.color().has_alpha();
        let (w, h) = (image.width(), image.height());
        let (pixel_type, raw) = if has_alpha {
            (PixelType::U8x4, image.into_rgba8().into_raw())
        } else {
            (PixelType::U8x3, image.into_rgb8().into_raw())
        };
        let decoded = Image::from_vec_u8(w, h, raw, pixel_type)
            .map_err(|e| PipelineError::Resize(e.to_string()))?;
        Ok((decoded, has_alpha))
    }
}

/// The variant widths an image of this upright width gets (never upscaled), largest first.
pub fn variant_widths(width: u32) -> impl Iterator<Item = u32> {
    VARIANT_WIDTHS.into_iter().filter(move |w| *w < width)
}

/// Height for `target` width keeping the aspect ratio, at least 1 px.
pub fn scaled_height(width: u32, height: u32, target: u32) -> u32 {
    let h = (u64::from(height) * u64::from(target) + u64::from(width) / 2) / u64::from(width);
    u32::try_from(h).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_images_keep_at_least_one_pixel() {
        assert_eq!(scaled_height(10799, 10, 150), 1);
        assert_eq!(scaled_height(1920, 1080, 1200), 675);
    }

    #[test]
    fn only_narrower_variants_are_made() {
        assert_eq!(variant_widths(1201).collect::<Vec<_>>(), VARIANT_WIDTHS);
        assert_eq!(variant_widths(1200).collect::<Vec<_>>(), [800, 400, 150]);
        assert_eq!(variant_widths(150).count(), 0);
    }
}
