//! Metadata stripping (JPEG, PNG, WebP): no panic, and a round trip keeps the picture:
//! when the input decodes, the stripped output decodes to the same pixels. Except for a
//! JPEG with a metadata segment after its first scan header: its content is zeroed by
//! design (it could carry what the segments before the scan had), and a decoder that
//! reads such a segment as scan data (a corrupt file's recovery) then sees other bits.
#![no_main]

use std::io::Cursor;

use darkroom::media::Limits;
use darkroom::media::strip::strip;
use darkroom::model::MediaType;
use libfuzzer_sys::fuzz_target;

/// An APPn or COM marker after the first SOS (see the module docs).
fn metadata_after_a_scan(jpeg: &[u8]) -> bool {
    let Some(sos) = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    jpeg[sos..]
        .windows(2)
        .any(|w| w[0] == 0xFF && (matches!(w[1], 0xE0..=0xEF) || w[1] == 0xFE))
}

fuzz_target!(|data: &[u8]| {
    for (kind, format) in [
        (MediaType::Jpeg, image::ImageFormat::Jpeg),
        (MediaType::Png, image::ImageFormat::Png),
        (MediaType::Webp, image::ImageFormat::WebP),
    ] {
        let mut out = Vec::new();
        if strip(kind, &mut Cursor::new(data), &mut out, &Limits::default()).is_err() {
            continue;
        }
        let Ok(before) = image::load_from_memory_with_format(data, format) else {
            continue;
        };
        if kind == MediaType::Jpeg && metadata_after_a_scan(data) {
            continue;
        }
        let after = image::load_from_memory_with_format(&out, format)
            .expect("a stripped image that decoded before still decodes");
        assert_eq!(
            before.to_rgba8().as_raw(),
            after.to_rgba8().as_raw(),
            "{kind:?}"
        );
    }
});
