//! Video probing without shelling out: width, height and duration from an MP4's `moov`
//! (at the start or the end of the file) or a WebM's `Info` and `Tracks` elements. The
//! container is validated on the way: an MP4 needs consistent top-level boxes and a
//! `moov` with at least one track, a WebM a `Tracks` element with at least one entry;
//! otherwise the file is no playable video (`Invalid`, with the reason). An MP4's size is
//! the displayed one: a track turned a quarter by its matrix (a phone filmed upright)
//! has its width and height swapped. Top-level boxes are bounded by `Limits`.

use std::io::{self, Read, Seek, SeekFrom};

use super::limits::{Limits, skip};

/// What the container says about a video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Seconds.
    pub duration: Option<f64>,
}

/// Largest `moov` box read into memory; real ones are kilobytes to a few megabytes.
const MAX_MOOV: u64 = 64 * 1024 * 1024;
/// WebM headers (Info, Tracks) sit before the first cluster, well inside this.
const WEBM_HEAD: u64 = 4 * 1024 * 1024;

/// Why a file with a video's magic is not a playable video.
pub type Invalid = &'static str;

pub fn probe_mp4<R: Read + Seek>(
    r: &mut R,
    limits: &Limits,
) -> io::Result<Result<VideoInfo, Invalid>> {
    let len = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(0))?;
    let mut pos = 0u64;
    let mut moov = None;
    let mut boxes = 0;
    while pos + 8 <= len {
        limits.count(&mut boxes, "MP4 boxes")?;
        let mut head = [0u8; 16];
        r.read_exact(&mut head[..8])?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let mut header = 8;
        if size == 1 {
            r.read_exact(&mut head[8..16])?;
            size = u64::from_be_bytes(head[8..16].try_into().unwrap_or_default());
            header = 16;
        } else if size == 0 {
            size = len - pos;
        }
        // A 64-bit size near u64::MAX must not wrap around (it would send `pos` back).
        let end = pos
            .checked_add(size)
            .filter(|&end| size >= header && end <= len);
        let Some(end) = end else {
            return Ok(Err("a box runs past the end of the file (cut short?)"));
        };
        let body_len = size - header;
        if &head[4..8] == b"moov" && moov.is_none() {
            if body_len > MAX_MOOV {
                return Ok(Err("its `moov` box is implausibly large"));
            }
            let mut body = vec![0u8; body_len as usize];
            r.read_exact(&mut body)?;
            moov = Some(parse_moov(&body));
        } else if end < len {
            skip(r, body_len)?; // the last box need not be read past
        }
        pos = end; // every top-level box is checked, so a file cut short is seen
    }
    Ok(moov.unwrap_or(Err("it has no `moov` box (no metadata: unplayable)")))
}

/// Child boxes of a container box body: `(type, body)`.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let mut size = u64::from(u32::from_be_bytes([data[0], data[1], data[2], data[3]]));
        let mut header = 8usize;
        if size == 1 {
            size = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
            header = 16;
        } else if size == 0 {
            size = data.len() as u64;
        }
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s >= header && *s <= data.len())?;
        let (kind, body) = (&data[4..8], &data[header..size]);
        data = &data[size..];
        Some((kind, body))
    })
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn parse_moov(moov: &[u8]) -> Result<VideoInfo, Invalid> {
    let mut info = VideoInfo {
        width: None,
        height: None,
        duration: None,
    };
    let mut tracks = 0;
    for (kind, body) in boxes(moov) {
        match kind {
            b"mvhd" => info.duration = mvhd_duration(body),
            b"trak" => {
                tracks += 1;
                if info.width.is_none()
                    && let Some((w, h)) = video_track_size(body)
                {
                    info.width = Some(w);
                    info.height = Some(h);
                }
            }
            _ => {}
        }
    }
    if tracks == 0 {
        return Err("its `moov` box has no tracks");
    }
    Ok(info)
}

fn mvhd_duration(b: &[u8]) -> Option<f64> {
    let (timescale, duration) = match b.first()? {
        0 => (be32(b, 12)?, u64::from(be32(b, 16)?)),
        1 => (be32(b, 20)?, be64(b, 24)?),
        _ => return None,
    };
    (timescale > 0 && duration != u64::from(u32::MAX))
        .then(|| duration as f64 / f64::from(timescale))
}

/// The presentation size of a track whose handler is `vide`.
fn video_track_size(trak: &[u8]) -> Option<(u32, u32)> {
    let is_video = boxes(trak)
        .filter(|(k, _)| *k == b"mdia")
        .flat_map(|(_, mdia)| boxes(mdia))
        .any(|(k, hdlr)| k == b"hdlr" && hdlr.get(8..12) == Some(b"vide"));
    if !is_video {
        return None;
    }
    let (_, tkhd) = boxes(trak).find(|(k, _)| *k == b"tkhd")?;
    let (matrix, at) = if tkhd.first()? == &1 {
        (52, 88)
    } else {
        (40, 76)
    };
    let (w, h) = (be32(tkhd, at)? >> 16, be32(tkhd, at + 4)? >> 16);
    // The matrix's a, b, c, d (16.16): a quarter turn has a = d = 0.
    let entry = |i: usize| be32(tkhd, matrix + 4 * i).map(|v| v as i32);
    let (a, b, c, d) = (entry(0)?, entry(1)?, entry(3)?, entry(4)?);
    let quarter_turn = a == 0 && d == 0 && b != 0 && c != 0;
    match (w > 0 && h > 0, quarter_turn) {
        (false, _) => None,
        (true, true) => Some((h, w)),
        (true, false) => Some((w, h)),
    }
}

pub fn probe_webm<R: Read>(r: &mut R) -> io::Result<Result<VideoInfo, Invalid>> {
    let mut head = Vec::new();
    r.take(WEBM_HEAD).read_to_end(&mut head)?;
    Ok(parse_webm(&head))
}

const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TRACKS: u32 = 0x1654_AE6B;
const CLUSTER: u32 = 0x1F43_B675;
const TRACK_ENTRY: u32 = 0xAE;

fn parse_webm(data: &[u8]) -> Result<VideoInfo, Invalid> {
    let mut info = VideoInfo {
        width: None,
        height: None,
        duration: None,
    };
    let mut tracks = None;
    let mut at = 0;
    while let Some((id, size, body_at)) = element(data, at) {
        if id == SEGMENT {
            at = body_at; // descend; its size is often "unknown"
            continue;
        }
        let end = size.map_or(data.len(), |s| body_at.saturating_add(s).min(data.len()));
        match id {
            INFO => info.duration = webm_duration(&data[body_at..end]),
            TRACKS => {
                let body = &data[body_at..end];
                tracks = Some(children(body).filter(|(id, _)| *id == TRACK_ENTRY).count());
                if let Some((w, h)) = webm_video_size(body) {
                    info.width = Some(w);
                    info.height = Some(h);
                }
            }
            CLUSTER => break,
            _ => {}
        }
        at = end;
    }
    match tracks {
        None => Err("it has no `Tracks` element before its media"),
        Some(0) => Err("its `Tracks` element has no tracks"),
        Some(_) => Ok(info),
    }
}

/// One EBML element at `at`: `(id with marker bits, size if known, body offset)`.
fn element(data: &[u8], at: usize) -> Option<(u32, Option<usize>, usize)> {
    let (id, id_len) = vint(data, at, true)?;
    let (size, size_len) = vint(data, at + id_len, false)?;
    let unknown = size == (1u64 << (7 * size_len)) - 1;
    let size = if unknown {
        None
    } else {
        Some(usize::try_from(size).ok()?)
    };
    Some((u32::try_from(id).ok()?, size, at + id_len + size_len))
}

/// An EBML variable-length integer; ids keep their length marker, sizes drop it.
fn vint(data: &[u8], at: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *data.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = data.get(at..at + len)?;
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & ((1 << (8 - len)) - 1)
    };
    for b in &bytes[1..] {
        value = (value << 8) | u64::from(*b);
    }
    Some((value, len))
}

fn children(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (id, size, body_at) = element(data, at)?;
        let end = body_at.checked_add(size?)?.min(data.len());
        at = end;
        Some((id, &data[body_at..end]))
    })
}

fn uint(b: &[u8]) -> u64 {
    b.iter().take(8).fold(0, |v, x| (v << 8) | u64::from(*x))
}

fn webm_duration(info: &[u8]) -> Option<f64> {
    let mut scale = 1_000_000u64; // TimecodeScale default: 1 ms in ns
    let mut duration = None;
    for (id, body) in children(info) {
        match id {
            0x2AD7B1 => scale = uint(body),
            0x4489 => {
                duration = match body.len() {
                    4 => Some(f64::from(f32::from_be_bytes(body.try_into().ok()?))),
                    8 => Some(f64::from_be_bytes(body.try_into().ok()?)),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    duration
        .map(|d| d * scale as f64 / 1e9)
        .filter(|d| d.is_finite() && *d >= 0.0)
}

fn webm_video_size(tracks: &[u8]) -> Option<(u32, u32)> {
    children(tracks)
        .filter(|(id, _)| *id == TRACK_ENTRY)
        .find_map(|(_, entry)| {
            let is_video = children(entry).any(|(id, b)| id == 0x83 && uint(b) == 1);
            let (_, video) = children(entry)
                .find(|(id, _)| *id == 0xE0)
                .filter(|_| is_video)?;
            let field = |want: u32| {
                children(video)
                    .find(|(id, _)| *id == want)
                    .map(|(_, b)| uint(b))
            };
            let (w, h) = (
                u32::try_from(field(0xB0)?).ok()?,
                u32::try_from(field(0xBA)?).ok()?,
            );
            (w > 0 && h > 0).then_some((w, h))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_fixture as fixture;
    use std::io::Cursor;

    #[test]
    fn mp4_size_and_duration() {
        let info = probe_mp4_default(&mut Cursor::new(fixture(
            "video/bigbuckbunny_1280x720_faststart.mp4",
        )))
        .expect("io")
        .expect("moov");
        assert_eq!((info.width, info.height), (Some(1280), Some(720)));
        let d = info.duration.expect("duration");
        assert!((d - 5.31).abs() < 0.05, "{d}");
    }

    #[test]
    fn mp4_with_moov_at_the_end() {
        // Move the moov of the fast-start file behind its mdat.
        let data = fixture("video/bigbuckbunny_1280x720_faststart.mp4");
        let parts: Vec<(&[u8], &[u8])> = boxes(&data).collect();
        let mut rebuilt = Vec::new();
        let mut moov = Vec::new();
        for (kind, body) in parts {
            let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(kind);
            b.extend_from_slice(body);
            if kind == b"moov" {
                moov = b
            } else {
                rebuilt.extend(b)
            }
        }
        rebuilt.extend(moov);
        let info = probe_mp4_default(&mut Cursor::new(rebuilt))
            .expect("io")
            .expect("moov");
        assert_eq!((info.width, info.height), (Some(1280), Some(720)));
    }

    #[test]
    fn webm_size_and_duration() {
        let info = probe_webm(&mut Cursor::new(fixture(
            "video/bigbuckbunny_640x360_vp9_opus.webm",
        )))
        .expect("io")
        .expect("info");
        assert_eq!((info.width, info.height), (Some(640), Some(360)));
        let d = info.duration.expect("duration");
        assert!((d - 5.31).abs() < 0.05, "{d}");
    }

    fn probe_mp4_default<R: Read + Seek>(r: &mut R) -> io::Result<Result<VideoInfo, Invalid>> {
        probe_mp4(r, &Limits::default())
    }

    /// The fixture with its video track's matrix turned a quarter (as a phone filming
    /// upright writes it): the displayed size is 720x1280.
    #[test]
    fn a_track_turned_a_quarter_has_its_size_swapped() {
        let mut data = fixture("video/bigbuckbunny_1280x720_faststart.mp4");
        let identity: Vec<u8> = [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let at = data
            .windows(identity.len())
            .position(|w| w == identity.as_slice())
            .expect("the video's matrix");
        let turned: Vec<u8> = [0u32, 0x0001_0000, 0, 0xFFFF_0000, 0, 0, 0, 0, 0x4000_0000]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        // The first identity matrix is the movie header's; the track's comes after.
        let track = at
            + identity.len()
            + data[at + identity.len()..]
                .windows(identity.len())
                .position(|w| w == identity.as_slice())
                .expect("the track's matrix");
        data[track..track + turned.len()].copy_from_slice(&turned);
        let info = probe_mp4_default(&mut Cursor::new(data))
            .expect("io")
            .expect("moov");
        assert_eq!((info.width, info.height), (Some(720), Some(1280)));
    }

    fn refusal<T: std::fmt::Debug>(probed: io::Result<Result<T, Invalid>>) -> Invalid {
        probed.expect("io").expect_err("not a playable video")
    }

    #[test]
    fn a_64_bit_box_size_near_the_limit_does_not_wrap_around() {
        // Found by `make fuzz` (video): a largesize of u64::MAX overflowed `pos + size`
        // (a panic in debug builds; in release, `pos` went backwards).
        let found = fixture("fuzz/video-6c4e9448.mp4");
        assert!(refusal(probe_mp4_default(&mut Cursor::new(found))).contains("past the end"));
        let mut crafted = b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x01free".to_vec();
        crafted.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(refusal(probe_mp4_default(&mut Cursor::new(crafted))).contains("past the end"));
    }

    #[test]
    fn containers_without_tracks_or_cut_short_are_not_videos() {
        let ftyp_only = b"\0\0\0\x10ftypisom\0\0\0\0".to_vec();
        assert!(refusal(probe_mp4_default(&mut Cursor::new(ftyp_only))).contains("no `moov`"));
        let past_end = b"\0\0\xff\xffmoov".to_vec();
        assert!(refusal(probe_mp4_default(&mut Cursor::new(past_end))).contains("past the end"));
        let empty_moov = b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x08moov".to_vec();
        assert!(refusal(probe_mp4_default(&mut Cursor::new(empty_moov))).contains("no tracks"));
        // The real file cut before its moov (moov at the end): no metadata left.
        let data = fixture("video/bigbuckbunny_1280x720_faststart.mp4");
        let (kind, _) = boxes(&data).nth(1).expect("a second box");
        assert_eq!(kind, b"moov", "the fixture is fast-start");
        let cut = data[..data.len() / 2].to_vec();
        assert!(refusal(probe_mp4_default(&mut Cursor::new(cut))).contains("past the end"));

        assert!(refusal(Ok(parse_webm(b"\x1A\x45\xDF\xA3\x80"))).contains("no `Tracks`"));
        let no_entries = [0x18, 0x53, 0x80, 0x67, 0x85, 0x16, 0x54, 0xAE, 0x6B, 0x80];
        assert!(refusal(Ok(parse_webm(&no_entries))).contains("no tracks"));
    }
}
