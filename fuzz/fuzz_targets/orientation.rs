//! Orientation and size agree before and after cleaning: for JPEG, PNG and WebP, an
//! input the probe reads and the cleaning accepts has the same upright size once cleaned
//! (the orientation the probe reports is the one the cleaned original keeps), and EXIF
//! blocks of any shape are read at the cost of their bytes.
#![no_main]

use std::io::Cursor;

use darkroom::media::Limits;
use darkroom::media::probe::{exif_orientation, raster_dimensions};
use darkroom::media::strip::strip;
use darkroom::model::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = exif_orientation(data);
    let limits = Limits::default();
    for kind in [MediaType::Jpeg, MediaType::Png, MediaType::Webp] {
        let Ok(before) = raster_dimensions(kind, &mut Cursor::new(data), &limits) else {
            continue;
        };
        let mut out = Vec::new();
        if strip(kind, &mut Cursor::new(data), &mut out, &limits).is_err() {
            continue;
        }
        let after = raster_dimensions(kind, &mut Cursor::new(&out), &limits)
            .expect("a cleaned image still probes");
        assert_eq!(before, after, "{kind:?}");
    }
});
