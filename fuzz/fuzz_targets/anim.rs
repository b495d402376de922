//! The animation header walk (GIF blocks and sub-blocks, WebP RIFF chunks) on any bytes
//! as either type: no panic, no loop past the frame limit, and what it reports is sane
//! (a counted animation has more than one frame, within the limit).
#![no_main]

use darkroom::media::Limits;
use darkroom::media::anim::scan;
use darkroom::model::MediaType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    for kind in [MediaType::Gif, MediaType::Webp] {
        if let Ok(Some(a)) = scan(kind, &mut &data[..], &limits) {
            assert!(a.frames > 1);
            assert!(u64::from(a.frames) <= limits.animation.max_frames);
            let _ = a.check(&limits);
        }
    }
});
