//! The decode pipeline (libjpeg-turbo with its scan limit, PNG by rows, the `image`
//! decoders for the rest) on inputs of every raster type: no panic, and no allocation
//! past the run's memory limit (`make fuzz` runs this target with -malloc_limit_mb); the
//! pixel limit is small here so that every input decodes quickly.
#![no_main]

use darkroom::media::image::{Settings, Worker, decode_cost};
use darkroom::media::sniff::sniff;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(kind) = sniff(data).filter(|k| k.is_raster()) else {
        return;
    };
    let settings = Settings {
        max_pixels: 1 << 22,
        max_scans: 100,
        ..Settings::default()
    };
    let _ = decode_cost(&mut std::io::Cursor::new(data), kind, &[]);
    let _ = Worker::new().process(data, kind, &settings);
});
