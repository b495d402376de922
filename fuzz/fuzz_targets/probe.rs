//! Header probes of the raster types (JPEG, PNG, GIF, WebP): no panic, no allocation
//! beyond the header, and what they accept is within the pixel limit and not empty.
#![no_main]

use std::io::Cursor;

use darkroom::media::Limits;
use darkroom::media::probe::raster_dimensions;
use darkroom::model::MediaType;
use libfuzzer_sys::fuzz_target;

const LIMIT: u64 = 100_000_000;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_pixels: LIMIT,
        ..Limits::default()
    };
    for kind in [
        MediaType::Jpeg,
        MediaType::Png,
        MediaType::Gif,
        MediaType::Webp,
    ] {
        if let Ok(d) = raster_dimensions(kind, &mut Cursor::new(data), &limits) {
            assert!(d.width > 0 && d.height > 0);
            assert!(u64::from(d.width) * u64::from(d.height) <= LIMIT);
        }
    }
});
