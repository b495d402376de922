//! The SVG safety check and size: no panic; what it accepts has no script, event
//! handler or external reference that the plain-text checks would see.
#![no_main]

use darkroom::media::svg::inspect;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if inspect(data).is_ok() {
        let lower = String::from_utf8_lossy(data).to_ascii_lowercase();
        assert!(!lower.contains("<script"));
        assert!(!lower.contains("javascript:"));
        assert!(!lower.contains("@import"));
    }
});
