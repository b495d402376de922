//! The MP4 and WebM probes: no panic, bounded reads; durations are finite.
#![no_main]

use std::io::Cursor;

use darkroom::media::video::{probe_mp4, probe_webm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for probed in [
        probe_mp4(&mut Cursor::new(data)),
        probe_webm(&mut Cursor::new(data)),
    ] {
        if let Ok(Ok(info)) = probed {
            assert!(info.duration.is_none_or(|d| d.is_finite() && d >= 0.0));
        }
    }
});
