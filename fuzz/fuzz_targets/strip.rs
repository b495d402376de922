//! Metadata stripping (JPEG, PNG, WebP): no panic, and a round trip keeps the picture:
//! when the input decodes, the stripped output decodes to the same pixels.
#![no_main]

use std::io::Cursor;

use darkroom::media::Limits;
use darkroom::media::strip::strip;
use darkroom::model::MediaType;
use libfuzzer_sys::fuzz_target;

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
        let after = image::load_from_memory_with_format(&out, format)
            .expect("a stripped image that decoded before still decodes");
        assert_eq!(
            before.to_rgba8().as_raw(),
            after.to_rgba8().as_raw(),
            "{kind:?}"
        );
    }
});
