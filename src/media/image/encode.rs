//! Stage 4: encoding. Each rendition becomes a WebP variant through libwebp, with the
//! quality and method from config and no metadata.

use fast_image_resize::images::Image;

use super::{PipelineError, Settings, Variant};

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
