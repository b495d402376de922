//! Animated WebP, one frame at a time: each frame goes into libwebp's `WebPAnimEncoder`
//! as it is added (libwebp keeps the previous canvas and the encoded frames, not the
//! frames themselves), so an animation is encoded in the memory of a few canvases and
//! its output, whatever its length. The only unsafe code of Darkroom: the FFI calls, each
//! with the invariant it relies on.

use std::ffi::{CStr, c_int};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use libwebp_sys as sys;

/// Encoder settings.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Lossy quality, 0-100.
    pub quality: f32,
    /// Effort, 0-6.
    pub method: i32,
    /// Times the animation plays; 0 is forever.
    pub loops: u16,
}

/// Why encoding failed (libwebp's own message when it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// WebP's largest side.
pub const MAX_SIDE: u32 = 16383;

/// One animation being encoded, frame by frame.
pub struct Encoder {
    enc: NonNull<sys::WebPAnimEncoder>,
    config: sys::WebPConfig,
    width: u32,
    height: u32,
    frames: u32,
    last_ms: i32,
}

// SAFETY: the encoder's state is owned by this value alone (libwebp keeps no reference
// to the thread that made it), and every call takes `&mut self` or `self`.
unsafe impl Send for Encoder {}

impl Encoder {
    /// An encoder of `width` x `height` frames.
    pub fn new(width: u32, height: u32, options: &Options) -> Result<Self, Error> {
        if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
            return Err(Error(format!("{width}x{height} is not a WebP size")));
        }
        let mut config = MaybeUninit::<sys::WebPConfig>::zeroed();
        // SAFETY: zeroed first (libwebp leaves padding fields alone), then every field set.
        let ok = unsafe {
            sys::WebPConfigInitInternal(
                config.as_mut_ptr(),
                sys::WebPPreset::WEBP_PRESET_DEFAULT,
                options.quality,
                sys::WEBP_ENCODER_ABI_VERSION as c_int,
            )
        };
        if ok == 0 {
            return Err(Error("libwebp's encoder version does not match".into()));
        }
        // SAFETY: initialized just above (ok != 0).
        let mut config = unsafe { config.assume_init() };
        config.method = options.method.clamp(0, 6);
        // SAFETY: a pointer to an initialized config, only read.
        if unsafe { sys::WebPValidateConfig(&config) } == 0 {
            return Err(Error(format!("invalid settings {options:?}")));
        }
        let mut anim = MaybeUninit::<sys::WebPAnimEncoderOptions>::zeroed();
        // SAFETY: zeroed first (libwebp leaves its `padding` alone), then every field set.
        let ok = unsafe {
            sys::WebPAnimEncoderOptionsInitInternal(
                anim.as_mut_ptr(),
                sys::WEBP_MUX_ABI_VERSION as c_int,
            )
        };
        if ok == 0 {
            return Err(Error("libwebp's mux version does not match".into()));
        }
        // SAFETY: initialized just above (ok != 0).
        let mut anim = unsafe { anim.assume_init() };
        anim.anim_params.loop_count = c_int::from(options.loops);
        anim.anim_params.bgcolor = 0; // transparent: what browsers show under a frame
        // SAFETY: sizes checked above; the options are initialized and only read.
        let enc = unsafe {
            sys::WebPAnimEncoderNewInternal(
                width as c_int,
                height as c_int,
                &anim,
                sys::WEBP_MUX_ABI_VERSION as c_int,
            )
        };
        let enc = NonNull::new(enc).ok_or_else(|| Error("out of memory".into()))?;
        Ok(Self {
            enc,
            config,
            width,
            height,
            frames: 0,
            last_ms: 0,
        })
    }

    /// Adds a frame of `width` x `height` RGBA pixels (row by row, 4 bytes a pixel),
    /// shown from `timestamp_ms` (not before the previous frame's).
    pub fn add_rgba(&mut self, rgba: &[u8], timestamp_ms: i32) -> Result<(), Error> {
        let expected = self.width as usize * self.height as usize * 4;
        if rgba.len() != expected {
            return Err(Error(format!(
                "a frame of {} bytes for {}x{} RGBA",
                rgba.len(),
                self.width,
                self.height
            )));
        }
        if timestamp_ms < self.last_ms {
            return Err(Error("frames out of order".into()));
        }
        let mut picture = MaybeUninit::<sys::WebPPicture>::zeroed();
        // SAFETY: zeroed first (libwebp leaves padding fields alone), then every field set.
        if unsafe {
            sys::WebPPictureInitInternal(
                picture.as_mut_ptr(),
                sys::WEBP_ENCODER_ABI_VERSION as c_int,
            )
        } == 0
        {
            return Err(Error("libwebp's encoder version does not match".into()));
        }
        // SAFETY: initialized just above.
        let mut picture = unsafe { picture.assume_init() };
        picture.use_argb = 1; // the anim encoder works on ARGB
        picture.width = self.width as c_int;
        picture.height = self.height as c_int;
        // SAFETY: `rgba` holds height rows of width * 4 bytes (checked above); the picture
        // allocates its own copy, freed below.
        let imported = unsafe {
            sys::WebPPictureImportRGBA(&mut picture, rgba.as_ptr(), (self.width * 4) as c_int)
        };
        let added = imported != 0
            // SAFETY: the encoder is live; the picture and config are initialized, and the
            // encoder copies what it keeps of the picture.
            && unsafe {
                sys::WebPAnimEncoderAdd(self.enc.as_ptr(), &mut picture, timestamp_ms, &self.config)
            } != 0;
        // SAFETY: frees what the import allocated (nothing when it failed), once.
        unsafe { sys::WebPPictureFree(&mut picture) };
        if !added {
            return Err(self.error(imported == 0));
        }
        self.frames += 1;
        self.last_ms = timestamp_ms;
        Ok(())
    }

    /// Frames added so far.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// The animation, its last frame shown until `end_ms`.
    pub fn finish(self, end_ms: i32) -> Result<Vec<u8>, Error> {
        if self.frames == 0 {
            return Err(Error("an animation of no frames".into()));
        }
        // SAFETY: the encoder is live; a null frame marks the end at `end_ms`.
        let ended = unsafe {
            sys::WebPAnimEncoderAdd(
                self.enc.as_ptr(),
                std::ptr::null_mut(),
                end_ms.max(self.last_ms + 1),
                std::ptr::null(),
            )
        };
        if ended == 0 {
            return Err(self.error(false));
        }
        let mut data = sys::WebPData::default();
        // SAFETY: the encoder is live; on success `data` owns a libwebp allocation.
        if unsafe { sys::WebPAnimEncoderAssemble(self.enc.as_ptr(), &mut data) } == 0 {
            return Err(self.error(false));
        }
        // SAFETY: `data.bytes` points at `data.size` bytes written by libwebp.
        let bytes = unsafe { std::slice::from_raw_parts(data.bytes, data.size) }.to_vec();
        // SAFETY: frees libwebp's allocation once; `bytes` is a copy.
        unsafe { sys::WebPDataClear(&mut data) };
        Ok(bytes)
    }

    fn error(&self, import: bool) -> Error {
        if import {
            return Error("out of memory importing a frame".into());
        }
        // SAFETY: the encoder is live; the message it returns lives as long as it does,
        // and is copied at once.
        let message = unsafe { sys::WebPAnimEncoderGetError(self.enc.as_ptr()) };
        if message.is_null() {
            return Error("animated WebP encoding failed".into());
        }
        // SAFETY: a NUL-terminated string owned by the encoder.
        Error(
            unsafe { CStr::from_ptr(message) }
                .to_string_lossy()
                .into_owned(),
        )
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: made by WebPAnimEncoderNewInternal, deleted only here.
        unsafe { sys::WebPAnimEncoderDelete(self.enc.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Options {
        Options {
            quality: 80.0,
            method: 4,
            loops: 3,
        }
    }

    #[test]
    fn frames_make_an_animation_with_its_timing_and_loops() {
        let mut e = Encoder::new(4, 2, &options()).expect("encoder");
        for (i, ts) in [0, 100, 250].into_iter().enumerate() {
            let shade = (i * 100) as u8;
            e.add_rgba(&[shade; 4 * 2 * 4], ts).expect("frame");
        }
        assert_eq!(e.frames(), 3);
        let webp = e.finish(400).expect("finish");
        assert_eq!(&webp[..4], b"RIFF");
        assert_eq!(&webp[8..12], b"WEBP");
        let anim = webp
            .windows(4)
            .position(|w| w == b"ANIM")
            .expect("ANIM chunk");
        assert_eq!(u16::from_le_bytes([webp[anim + 12], webp[anim + 13]]), 3);
        let frames = webp.windows(4).filter(|w| *w == b"ANMF").count();
        assert!(frames >= 2, "{frames} frames"); // equal frames may merge
    }

    #[test]
    fn bad_frames_are_errors_not_crashes() {
        assert!(Encoder::new(0, 5, &options()).is_err());
        assert!(Encoder::new(MAX_SIDE + 1, 5, &options()).is_err());
        let mut e = Encoder::new(4, 2, &options()).expect("encoder");
        assert!(e.add_rgba(&[0; 7], 0).is_err());
        e.add_rgba(&[0; 32], 50).expect("frame");
        assert!(e.add_rgba(&[0; 32], 10).is_err());
        let empty = Encoder::new(4, 2, &options()).expect("encoder");
        assert!(empty.finish(100).is_err());
    }
}
