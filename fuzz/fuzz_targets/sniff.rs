//! The content sniffer on an upload's head (what the server hands it): any bytes, no
//! panic; whatever it names SVG, the SVG check agrees with.
#![no_main]

use darkroom::media::sniff::{SNIFF_LEN, sniff};
use darkroom::media::svg::looks_like_svg;
use darkroom::model::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(SNIFF_LEN)];
    if sniff(head) == Some(MediaType::Svg) {
        assert!(looks_like_svg(head));
    }
});
