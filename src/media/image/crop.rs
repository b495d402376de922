//! Crops around the focal point: the largest frame of the wanted shape that puts the
//! focal point as near its centre as the image allows (centred on it, then clamped into
//! the image), resized by the pipeline's resizer to exactly the wanted size.

use fast_image_resize::images::Image;

use super::{PipelineError, Worker};
use crate::model::CropSize;

/// A focal point, in percent of the width and of the height (0-100).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focal {
    pub x: f64,
    pub y: f64,
}

impl Focal {
    pub const CENTRE: Self = Self { x: 50.0, y: 50.0 };
}

/// Where a crop is cut from an image, in that image's pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

/// The frame for `size` in an image of `width` x `height` around `focal`.
pub fn frame(width: u32, height: u32, size: CropSize, focal: Focal) -> Frame {
    let (w, h) = (f64::from(width), f64::from(height));
    let (cw, ch) = (f64::from(size.width), f64::from(size.height));
    let scale = (w / cw).min(h / ch);
    let (fw, fh) = ((cw * scale).min(w), (ch * scale).min(h));
    let place = |percent: f64, extent: f64, frame: f64| {
        (percent.clamp(0.0, 100.0) / 100.0 * extent - frame / 2.0).clamp(0.0, extent - frame)
    };
    Frame {
        left: place(focal.x, w, fw),
        top: place(focal.y, h, fh),
        width: fw,
        height: fh,
    }
}

/// The width a picture of this upright size must be decoded at so that this crop is not
/// made from fewer pixels than it has (at most the full width).
pub fn needed_width(width: u32, height: u32, size: CropSize) -> u32 {
    let f = frame(width, height, size, Focal::CENTRE);
    let needed = (f64::from(width) * f64::from(size.width) / f.width).ceil();
    (needed as u32).min(width)
}

impl Worker {
    /// `size` cut from `src` around `focal`.
    pub fn crop(
        &mut self,
        src: &Image<'_>,
        size: CropSize,
        focal: Focal,
    ) -> Result<Image<'static>, PipelineError> {
        let f = frame(src.width(), src.height(), size, focal);
        let mut dst = Image::new(size.width, size.height, src.pixel_type());
        let options = self.options.crop(f.left, f.top, f.width, f.height);
        self.resizer
            .resize(src, &mut dst, &options)
            .map_err(|e| PipelineError::Resize(e.to_string()))?;
        Ok(dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: CropSize = CropSize {
        width: 1200,
        height: 630,
    };

    #[test]
    fn the_frame_is_the_largest_of_its_shape_centred_on_the_focal_point_when_it_can_be() {
        // A square frame in a landscape picture: full height, centred on x = 30%.
        let square = CropSize {
            width: 400,
            height: 400,
        };
        let f = frame(2000, 1000, square, Focal { x: 30.0, y: 50.0 });
        assert_eq!(
            f,
            Frame {
                left: 100.0,
                top: 0.0,
                width: 1000.0,
                height: 1000.0
            }
        );
        // Near an edge it is clamped into the picture.
        let f = frame(2000, 1000, square, Focal { x: 5.0, y: 50.0 });
        assert_eq!(f.left, 0.0);
        let f = frame(2000, 1000, square, Focal { x: 100.0, y: 0.0 });
        assert_eq!((f.left, f.top), (1000.0, 0.0));
        // A wide frame in a portrait picture: full width.
        let f = frame(1000, 3000, CARD, Focal { x: 50.0, y: 90.0 });
        assert_eq!((f.left, f.width), (0.0, 1000.0));
        assert!((f.height - 525.0).abs() < 1e-9);
        assert!((f.top - (2700.0 - 262.5)).abs() < 1e-9);
    }

    #[test]
    fn the_focal_point_lies_inside_every_frame() {
        for (w, h) in [(4000, 3000), (3000, 4000), (1200, 630), (150, 2000)] {
            for (x, y) in [(0.0, 0.0), (100.0, 100.0), (50.0, 50.0), (12.5, 87.5)] {
                let f = frame(w, h, CARD, Focal { x, y });
                let (px, py) = (x / 100.0 * f64::from(w), y / 100.0 * f64::from(h));
                assert!(
                    f.left <= px && px <= f.left + f.width,
                    "{w}x{h} at {x},{y}: {f:?}"
                );
                assert!(
                    f.top <= py && py <= f.top + f.height,
                    "{w}x{h} at {x},{y}: {f:?}"
                );
                assert!(f.left + f.width <= f64::from(w) && f.top + f.height <= f64::from(h));
            }
        }
    }

    #[test]
    fn a_crop_needs_the_pixels_of_its_frame_and_no_more_than_the_picture() {
        // A 6000x4000 picture: the card's frame is 6000 wide, so 1200 px suffice.
        assert_eq!(needed_width(6000, 4000, CARD), 1200);
        // A square's frame is 4000 wide: 400 px of it need 600 px of the whole.
        let square = CropSize {
            width: 400,
            height: 400,
        };
        assert_eq!(needed_width(6000, 4000, square), 600);
        // Never more than the picture has.
        assert_eq!(needed_width(800, 600, CARD), 800);
    }
}
