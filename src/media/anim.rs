//! Animated GIF and WebP, from their structure alone: frames, canvas, running time and
//! loop count, walked without decoding a pixel (GIF blocks and sub-blocks, WebP RIFF
//! chunks). Upload checks refuse an animation past its `Limits` with this, before any
//! of it reaches the processing pool; the pipeline reads the frames themselves later.

use std::io::{self, Read};

use super::limits::{Limits, over};
use crate::model::MediaType;

/// What an animation is made of (a file of one frame is a still image, not this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Animation {
    pub frames: u32,
    /// The canvas every frame is composited onto.
    pub width: u32,
    pub height: u32,
    /// The frames' delays added up, in milliseconds, as browsers play them (a delay of
    /// 10 ms or less plays as 100 ms).
    pub duration_ms: u64,
    /// Times it plays; 0 is forever. A GIF without a NETSCAPE2.0 block plays once, one
    /// that says "repeat n" n + 1 times (as browsers and gif2webp read it).
    pub loops: u16,
}

impl Animation {
    /// Pixels over all frames: what decoding it composites, frame after frame.
    pub fn total_pixels(&self) -> u64 {
        u64::from(self.frames) * u64::from(self.width) * u64::from(self.height)
    }

    /// Refuses an animation past `limits`, naming the bound.
    pub fn check(&self, limits: &Limits) -> io::Result<()> {
        let a = &limits.animation;
        if u64::from(self.frames) > a.max_frames {
            return Err(over("animation frames", a.max_frames));
        }
        if self.total_pixels() > a.max_pixels {
            return Err(over("pixels over all its frames", a.max_pixels));
        }
        if self.duration_ms > a.max_secs.saturating_mul(1000) {
            return Err(over("seconds of animation", a.max_secs));
        }
        Ok(())
    }
}

/// The bounds of an animation (`[limits]` in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnimationLimits {
    pub max_frames: u64,
    /// Canvas pixels times frames.
    pub max_pixels: u64,
    pub max_secs: u64,
}

impl Default for AnimationLimits {
    fn default() -> Self {
        Self {
            max_frames: 1000,
            max_pixels: 400_000_000,
            max_secs: 600,
        }
    }
}

/// The animation in a GIF or WebP file, or `None` for a still one (and other types).
/// `InvalidData` for a structure no decoder would read (a GIF frame outside its
/// screen, an unknown block); a file cut short ends the walk with what was seen. The
/// frame count is bounded while walking: a file of millions of tiny frames stops at the
/// limit, not at its end.
pub fn scan<R: Read>(kind: MediaType, r: &mut R, limits: &Limits) -> io::Result<Option<Animation>> {
    let found = match kind {
        MediaType::Gif => Some(gif(r, limits)?),
        MediaType::Webp => webp(r, limits)?,
        _ => return Ok(None),
    };
    Ok(found.filter(|a| a.frames > 1))
}

/// A reader that counts a cut-short file as the end of it.
fn cut_short(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

fn byte<R: Read>(r: &mut R) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<()> {
    if io::copy(&mut r.take(n), &mut io::sink())? < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// A GIF's screen and blocks (a still GIF is an `Animation` of one frame here): frames
/// must lie inside the logical screen. `UnexpectedEof` only for a header cut short.
pub(super) fn gif<R: Read>(r: &mut R, limits: &Limits) -> io::Result<Animation> {
    let mut head = [0u8; 13];
    r.read_exact(&mut head)?;
    if &head[..3] != b"GIF" {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let le16 = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let mut a = Animation {
        frames: 0,
        width: u32::from(le16(&head[6..8])),
        height: u32::from(le16(&head[8..10])),
        duration_ms: 0,
        loops: 1, // no NETSCAPE2.0 block: played once
    };
    match gif_blocks(r, head[10], &mut a, limits) {
        Err(e) if cut_short(&e) => Ok(a),
        Err(e) => Err(e),
        Ok(()) => Ok(a),
    }
}

fn gif_blocks<R: Read>(
    r: &mut R,
    packed: u8,
    a: &mut Animation,
    limits: &Limits,
) -> io::Result<()> {
    let color_table = |packed: u8| {
        if packed & 0x80 != 0 {
            3u64 << ((packed & 7) + 1)
        } else {
            0
        }
    };
    // Sub-blocks to their terminator; the first one's bytes are handed to `first`.
    let sub_blocks = |r: &mut R, first: &mut dyn FnMut(&[u8])| -> io::Result<()> {
        let mut seen_first = false;
        loop {
            match byte(r)? {
                0 => return Ok(()),
                len => {
                    let mut block = [0u8; 255];
                    let block = &mut block[..usize::from(len)];
                    r.read_exact(block)?;
                    if !seen_first {
                        first(block);
                        seen_first = true;
                    }
                }
            }
        }
    };
    skip(r, color_table(packed))?;
    let mut delay_cs: Option<u16> = None;
    let mut netscape = false;
    loop {
        match byte(r)? {
            0x3B => return Ok(()), // trailer
            0x21 => match byte(r)? {
                0xF9 => sub_blocks(r, &mut |b| {
                    if b.len() >= 3 {
                        delay_cs = Some(u16::from_le_bytes([b[1], b[2]]));
                    }
                })?,
                0xFF => {
                    let mut loops = None;
                    let mut label = true;
                    // The application id, then its data: NETSCAPE2.0's is 1, loops (LE).
                    loop {
                        let len = byte(r)?;
                        if len == 0 {
                            break;
                        }
                        let mut block = [0u8; 255];
                        let block = &mut block[..usize::from(len)];
                        r.read_exact(block)?;
                        if label {
                            netscape = matches!(&block[..], b"NETSCAPE2.0" | b"ANIMEXTS1.0");
                            label = false;
                        } else if netscape && loops.is_none() && block.len() >= 3 && block[0] == 1 {
                            loops = Some(u16::from_le_bytes([block[1], block[2]]));
                        }
                    }
                    if let Some(n) = loops {
                        a.loops = if n == 0 { 0 } else { n.saturating_add(1) };
                    }
                }
                _ => sub_blocks(r, &mut |_| {})?,
            },
            0x2C => {
                let mut d = [0u8; 9];
                r.read_exact(&mut d)?;
                let at = |i: usize| u32::from(u16::from_le_bytes([d[i], d[i + 1]]));
                let (left, top, w, h) = (at(0), at(2), at(4), at(6));
                if left + w > a.width || top + h > a.height {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                a.frames += 1;
                if u64::from(a.frames) > limits.animation.max_frames {
                    return Err(over("animation frames", limits.animation.max_frames));
                }
                a.duration_ms += gif_delay_ms(delay_cs.take());
                skip(r, color_table(d[8]))?;
                byte(r)?; // LZW minimum code size
                sub_blocks(r, &mut |_| {})?;
            }
            _ => return Err(io::ErrorKind::InvalidData.into()),
        }
    }
}

/// How long a GIF frame shows (none said: 0).
fn gif_delay_ms(delay_cs: Option<u16>) -> u64 {
    shown_ms(u64::from(delay_cs.unwrap_or(0)) * 10)
}

/// How long a frame of `ms` shows, as browsers (and gif2webp) play it: 10 ms or less is
/// 100 ms. The walker's running time and the encoder's timestamps both use it.
pub fn shown_ms(ms: u64) -> u64 {
    if ms <= 10 { 100 } else { ms }
}

/// A WebP's chunks: an extended file (VP8X) flagged animated has an ANIM chunk (loops)
/// and one ANMF chunk a frame (its duration in its header).
fn webp<R: Read>(r: &mut R, limits: &Limits) -> io::Result<Option<Animation>> {
    let mut head = [0u8; 12];
    r.read_exact(&mut head)?;
    if &head[..4] != b"RIFF" || &head[8..12] != b"WEBP" {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    let mut a: Option<Animation> = None;
    let mut chunks = 0;
    loop {
        let mut chunk = [0u8; 8];
        match r.read_exact(&mut chunk) {
            Err(e) if cut_short(&e) => return Ok(a),
            other => other?,
        }
        limits.count(&mut chunks, "WebP chunks")?;
        let size = u64::from(u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]));
        let padded = size + (size & 1);
        let mut body = [0u8; 16];
        let read = match &chunk[..4] {
            b"VP8X" if size >= 10 => 10,
            b"ANIM" if size >= 6 => 6,
            b"ANMF" if size >= 16 => 16,
            b"VP8X" | b"ANIM" | b"ANMF" => return Err(io::ErrorKind::InvalidData.into()),
            _ => 0,
        };
        let outcome = r.read_exact(&mut body[..read]).and_then(|()| {
            match &chunk[..4] {
                b"VP8X" if a.is_none() => {
                    if body[0] & 0x02 == 0 {
                        return Err(io::Error::other(Still));
                    }
                    a = Some(Animation {
                        frames: 0,
                        width: le24(&body[4..7]) + 1,
                        height: le24(&body[7..10]) + 1,
                        duration_ms: 0,
                        loops: 0,
                    });
                }
                b"ANIM" => {
                    if let Some(a) = a.as_mut() {
                        a.loops = u16::from_le_bytes([body[4], body[5]]);
                    }
                }
                b"ANMF" => {
                    let a = a.as_mut().ok_or(io::ErrorKind::InvalidData)?;
                    let (x, y) = (le24(&body[0..3]) * 2, le24(&body[3..6]) * 2);
                    let (w, h) = (le24(&body[6..9]) + 1, le24(&body[9..12]) + 1);
                    if u64::from(x) + u64::from(w) > u64::from(a.width)
                        || u64::from(y) + u64::from(h) > u64::from(a.height)
                    {
                        return Err(io::ErrorKind::InvalidData.into());
                    }
                    a.frames += 1;
                    if u64::from(a.frames) > limits.animation.max_frames {
                        return Err(over("animation frames", limits.animation.max_frames));
                    }
                    a.duration_ms += shown_ms(u64::from(le24(&body[12..15])));
                }
                // A still file's first chunk is its image.
                b"VP8 " | b"VP8L" if a.is_none() => return Err(io::Error::other(Still)),
                _ => {}
            }
            skip(r, padded - read as u64)
        });
        match outcome {
            Err(e) if cut_short(&e) => return Ok(a),
            Err(e) if e.get_ref().is_some_and(|e| e.is::<Still>()) => return Ok(None),
            other => other?,
        }
    }
}

/// A WebP file of one image: the walk ends.
#[derive(Debug)]
struct Still;

impl std::fmt::Display for Still {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a still WebP")
    }
}

impl std::error::Error for Still {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::limits::Exceeded;

    /// A GIF of `frames` 1x1 frames on a `w` x `h` screen, each `delay_cs`, looping `loops`.
    fn gif(w: u16, h: u16, frames: usize, delay_cs: u16, loops: Option<u16>) -> Vec<u8> {
        let mut g = b"GIF89a".to_vec();
        g.extend(w.to_le_bytes());
        g.extend(h.to_le_bytes());
        g.extend([0x80, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff]);
        if let Some(n) = loops {
            g.extend(b"\x21\xff\x0bNETSCAPE2.0\x03\x01");
            g.extend(n.to_le_bytes());
            g.push(0);
        }
        for _ in 0..frames {
            g.extend([0x21, 0xF9, 4, 0]);
            g.extend(delay_cs.to_le_bytes());
            g.extend([0, 0]);
            g.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x4C, 0x01, 0]);
        }
        g.push(0x3B);
        g
    }

    fn scan_gif(g: &[u8]) -> io::Result<Option<Animation>> {
        scan(MediaType::Gif, &mut &g[..], &Limits::default())
    }

    #[test]
    fn a_gif_animation_is_counted_from_its_blocks() {
        let a = scan_gif(&gif(10, 5, 3, 5, Some(0)))
            .expect("scan")
            .expect("animated");
        assert_eq!(
            a,
            Animation {
                frames: 3,
                width: 10,
                height: 5,
                duration_ms: 150,
                loops: 0
            }
        );
        // No NETSCAPE block: once; delays of 10 ms or less play as 100 ms; "repeat 3" is
        // four plays.
        let a = scan_gif(&gif(10, 5, 2, 2, Some(3)))
            .expect("scan")
            .expect("animated");
        assert_eq!((a.loops, a.duration_ms), (4, 40));
        let a = scan_gif(&gif(10, 5, 2, 1, None))
            .expect("scan")
            .expect("animated");
        assert_eq!((a.loops, a.duration_ms), (1, 200));
        // One frame is a still image; a cut-short file counts what it has.
        assert_eq!(scan_gif(&gif(10, 5, 1, 5, None)).expect("scan"), None);
        let g = gif(10, 5, 4, 5, Some(3));
        let a = scan_gif(&g[..g.len() - 20])
            .expect("scan")
            .expect("animated");
        assert_eq!((a.frames, a.loops), (3, 4));
    }

    #[test]
    fn a_frame_bomb_stops_the_walk_at_the_frame_limit() {
        let limits = Limits::default();
        let g = gif(1, 1, 10_000, 5, Some(0));
        let e = scan(MediaType::Gif, &mut &g[..], &limits).expect_err("too many frames");
        assert_eq!(
            Exceeded::of(&e),
            Some(Exceeded {
                what: "animation frames",
                limit: 1000
            })
        );
        // 50 frames of 8000x8000: allowed by count, refused by pixels over all frames.
        let big = Animation {
            frames: 50,
            width: 8000,
            height: 8000,
            duration_ms: 5000,
            loops: 0,
        };
        let e = big.check(&limits).expect_err("too many pixels");
        assert_eq!(
            Exceeded::of(&e).map(|x| x.what),
            Some("pixels over all its frames")
        );
        let long = Animation {
            duration_ms: 601_000,
            width: 10,
            height: 10,
            ..big
        };
        assert!(long.check(&limits).is_err());
        assert!(
            Animation {
                duration_ms: 600_000,
                ..long
            }
            .check(&limits)
            .is_ok()
        );
    }

    #[test]
    fn gif_frames_must_lie_inside_the_screen() {
        let mut g = gif(1, 1, 2, 5, None);
        let frame = g.iter().position(|b| *b == 0x2C).expect("frame");
        g[frame + 1] = 1; // left = 1 on a 1-wide screen
        let e = scan_gif(&g).expect_err("outside");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    /// An animated WebP of `frames` ANMF chunks (empty frame data) on a `w` x `h` canvas.
    fn webp(w: u32, h: u32, frames: usize, ms: u32, loops: u16) -> Vec<u8> {
        let le24 = |v: u32| [v as u8, (v >> 8) as u8, (v >> 16) as u8];
        let mut body = b"WEBP".to_vec();
        body.extend(b"VP8X");
        body.extend(10u32.to_le_bytes());
        body.extend([0x02, 0, 0, 0]);
        body.extend(le24(w - 1));
        body.extend(le24(h - 1));
        body.extend(b"ANIM");
        body.extend(6u32.to_le_bytes());
        body.extend([0, 0, 0, 0]);
        body.extend(loops.to_le_bytes());
        for _ in 0..frames {
            body.extend(b"ANMF");
            body.extend(16u32.to_le_bytes());
            body.extend(le24(0));
            body.extend(le24(0));
            body.extend(le24(w - 1));
            body.extend(le24(h - 1));
            body.extend(le24(ms));
            body.push(0);
        }
        let mut f = b"RIFF".to_vec();
        f.extend((body.len() as u32).to_le_bytes());
        f.extend(body);
        f
    }

    #[test]
    fn a_webp_animation_is_counted_from_its_chunks() {
        let limits = Limits::default();
        let w = webp(300, 200, 4, 70, 2);
        let zero = webp(300, 200, 3, 0, 0); // 0 ms frames play as 100 ms
        let z = scan(MediaType::Webp, &mut &zero[..], &limits)
            .expect("scan")
            .expect("animated");
        assert_eq!(z.duration_ms, 300);
        let a = scan(MediaType::Webp, &mut &w[..], &limits)
            .expect("scan")
            .expect("animated");
        assert_eq!(
            a,
            Animation {
                frames: 4,
                width: 300,
                height: 200,
                duration_ms: 280,
                loops: 2
            }
        );
        let e = scan(MediaType::Webp, &mut &webp(2, 2, 1001, 10, 0)[..], &limits);
        assert!(Exceeded::of(&e.expect_err("over")).is_some());
        let still =
            std::fs::read("tests/fixtures/webp/flower_480x360_lossy_exif.webp").expect("fixture");
        assert_eq!(
            scan(MediaType::Webp, &mut &still[..], &limits).expect("scan"),
            None
        );
        let fixture =
            std::fs::read("tests/fixtures/webp/iss634_245x245_animated.webp").expect("fixture");
        let a = scan(MediaType::Webp, &mut &fixture[..], &limits)
            .expect("scan")
            .expect("animated");
        assert_eq!((a.width, a.height), (245, 245));
        assert!(a.frames > 1);
    }
}
