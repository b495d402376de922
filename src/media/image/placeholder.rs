//! Stage 5: placeholders. A thumbhash (from at most 100x100 pixels) and the alpha-weighted
//! dominant colour, both from the smallest rendition, so a page can paint something
//! before any variant loads.

use fast_image_resize::images::Image;

use super::{PipelineError, Worker};

impl Worker {
    /// Thumbhash (from at most 100x100) and the average colour of the smallest rendition.
    pub(super) fn placeholders(
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

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn the_dominant_colour_weighs_pixels_by_alpha() {
        let opaque_red_and_clear_blue = [255, 0, 0, 255, 0, 0, 255, 0];
        assert_eq!(dominant_color(&opaque_red_and_clear_blue), "#ff0000");
        assert_eq!(dominant_color(&[9, 9, 9, 0]), "#000000");
    }
}
