//! The MP4 and WebM probes (the MP4's track matrix, which turns its size, included): no
//! panic, bounded reads; durations are finite and sizes not empty.
#![no_main]

use std::io::Cursor;

use darkroom::media::Limits;
use darkroom::media::video::{probe_mp4, probe_webm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for probed in [
        probe_mp4(&mut Cursor::new(data), &Limits::default()),
        probe_webm(&mut Cursor::new(data)),
    ] {
        if let Ok(Ok(info)) = probed {
            assert!(info.duration.is_none_or(|d| d.is_finite() && d >= 0.0));
            assert!(info.width.is_none_or(|w| w > 0) && info.height.is_none_or(|h| h > 0));
            assert_eq!(info.width.is_some(), info.height.is_some());
        }
    }
});
