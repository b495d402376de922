//! Stage 2: colour. Pixels tagged with an RGB ICC profile (Display P3, Adobe RGB, a
//! camera's own...) are converted to sRGB, the colour space browsers assume for untagged
//! WebP; profiles that change nothing visible are skipped.

use image::DynamicImage;

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

/// CMYK samples (four a pixel, inverted when `inverted`: Adobe's JPEGs store them so)
/// to sRGB: through the file's CMYK ICC profile when it has one (a press profile, as
/// print workflows embed), else by the plain formula `(1 - C)(1 - K)` (colours then come
/// out brighter and more saturated than print; without a profile nothing better is known).
pub fn cmyk_to_srgb(
    w: u32,
    h: u32,
    mut samples: Vec<u8>,
    icc: Option<&[u8]>,
    inverted: bool,
) -> DynamicImage {
    if inverted {
        samples.iter_mut().for_each(|s| *s = 255 - *s);
    }
    let mut rgb = vec![0u8; samples.len() / 4 * 3];
    let profile = icc
        .and_then(|b| moxcms::ColorProfile::new_from_slice(b).ok())
        .filter(|p| p.color_space == moxcms::DataColorSpace::Cmyk);
    let srgb = moxcms::ColorProfile::new_srgb();
    let options = moxcms::TransformOptions::default();
    let transform = profile.and_then(|p| {
        // CMYK samples use the RGBA layout (four 8-bit channels).
        let layouts = (moxcms::Layout::Rgba, moxcms::Layout::Rgb);
        p.create_transform_8bit(layouts.0, &srgb, layouts.1, options)
            .ok()
    });
    let converted = transform.is_some_and(|t| t.transform(&samples, &mut rgb).is_ok());
    if !converted {
        for (px, out) in samples.chunks_exact(4).zip(rgb.chunks_exact_mut(3)) {
            let k = 255 - u32::from(px[3]);
            for (c, o) in px[..3].iter().zip(out.iter_mut()) {
                *o = ((255 - u32::from(*c)) * k / 255) as u8;
            }
        }
    }
    image::RgbImage::from_raw(w, h, rgb)
        .map(DynamicImage::from)
        .unwrap_or_else(|| DynamicImage::new_rgb8(w, h))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_without_a_cmyk_profile_uses_the_plain_formula_and_adobe_inversion() {
        // White, black, 50% cyan, and 100% magenta with 50% black.
        let samples = vec![0, 0, 0, 0, 0, 0, 0, 255, 128, 0, 0, 0, 0, 255, 0, 128];
        let plain = cmyk_to_srgb(4, 1, samples.clone(), None, false).into_rgb8();
        let px: Vec<[u8; 3]> = plain.pixels().map(|p| p.0).collect();
        assert_eq!(
            px,
            [[255, 255, 255], [0, 0, 0], [127, 255, 255], [127, 0, 127]]
        );
        // Adobe's files store the same colours inverted.
        let inverted: Vec<u8> = samples.iter().map(|s| 255 - s).collect();
        let adobe = cmyk_to_srgb(4, 1, inverted, None, true).into_rgb8();
        assert_eq!(adobe, plain);
        // An RGB profile says nothing about CMYK samples: the formula again.
        let srgb = moxcms::ColorProfile::new_srgb().encode().expect("encode");
        let tagged = cmyk_to_srgb(4, 1, samples, Some(&srgb), false).into_rgb8();
        assert_eq!(tagged, plain);
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
}
