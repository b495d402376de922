//! Image dimensions from headers alone, without decoding pixels: JPEG (SOF + EXIF
//! orientation), PNG (IHDR), GIF (logical screen), WebP (VP8/VP8L/VP8X). The pixel
//! limit is checked here, so a decompression bomb is refused before anything allocates.

use std::io::{self, Read, Seek, SeekFrom};

use crate::model::MediaType;

/// Upright (EXIF-oriented) size of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("the file is not a valid {0} (its header is damaged or cut short)")]
    Malformed(&'static str),
    #[error("the image is {width}x{height} pixels, more than the {limit} pixel limit")]
    TooLarge { width: u32, height: u32, limit: u64 },
    #[error("reading the upload failed: {0}")]
    Io(#[from] io::Error),
}

/// Reads the upright size of a raster image and enforces `max_pixels`.
pub fn raster_dimensions<R: Read + Seek>(
    kind: MediaType,
    r: &mut R,
    max_pixels: u64,
) -> Result<Dimensions, ProbeError> {
    let dims = match kind {
        MediaType::Jpeg => jpeg(r)?,
        MediaType::Png => png(r)?,
        MediaType::Gif => gif(r)?,
        MediaType::Webp => webp(r)?,
        _ => return Err(ProbeError::Malformed("raster image")),
    };
    check_pixels(dims, max_pixels)
}

/// Refuses zero-sized images and images over the pixel limit.
pub fn check_pixels(d: Dimensions, max_pixels: u64) -> Result<Dimensions, ProbeError> {
    if d.width == 0 || d.height == 0 {
        return Err(ProbeError::Malformed("image (zero width or height)"));
    }
    if u64::from(d.width) * u64::from(d.height) > max_pixels {
        return Err(ProbeError::TooLarge {
            width: d.width,
            height: d.height,
            limit: max_pixels,
        });
    }
    Ok(d)
}

fn read_exact_or<R: Read>(r: &mut R, buf: &mut [u8], what: &'static str) -> Result<(), ProbeError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProbeError::Malformed(what),
        _ => ProbeError::Io(e),
    })
}

fn be16(b: &[u8]) -> u32 {
    u32::from(u16::from_be_bytes([b[0], b[1]]))
}

fn jpeg<R: Read + Seek>(r: &mut R) -> Result<Dimensions, ProbeError> {
    const WHAT: &str = "JPEG";
    let mut soi = [0u8; 2];
    read_exact_or(r, &mut soi, WHAT)?;
    let mut orientation = 1u16;
    loop {
        // Find the next marker, skipping fill bytes.
        let mut byte = [0u8; 1];
        read_exact_or(r, &mut byte, WHAT)?;
        if byte[0] != 0xFF {
            return Err(ProbeError::Malformed(WHAT));
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            read_exact_or(r, &mut byte, WHAT)?;
            marker = byte[0];
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            continue; // standalone markers carry no length
        }
        if marker == 0xD9 || marker == 0xDA {
            return Err(ProbeError::Malformed(WHAT)); // EOI or scan before any frame header
        }
        let mut len = [0u8; 2];
        read_exact_or(r, &mut len, WHAT)?;
        let body_len = be16(&len)
            .checked_sub(2)
            .ok_or(ProbeError::Malformed(WHAT))? as usize;
        let is_sof = matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if is_sof {
            let mut sof = [0u8; 5];
            if body_len < sof.len() {
                return Err(ProbeError::Malformed(WHAT));
            }
            read_exact_or(r, &mut sof, WHAT)?;
            let (height, width) = (be16(&sof[1..3]), be16(&sof[3..5]));
            return Ok(orient(Dimensions { width, height }, orientation));
        }
        if marker == 0xE1 && orientation == 1 {
            let mut body = vec![0u8; body_len];
            read_exact_or(r, &mut body, WHAT)?;
            if let Some(o) = body.strip_prefix(b"Exif\0\0").and_then(exif_orientation) {
                orientation = o;
            }
        } else {
            r.seek(SeekFrom::Current(body_len as i64))?;
        }
    }
}

/// Orientations 5-8 swap width and height.
fn orient(d: Dimensions, orientation: u16) -> Dimensions {
    if (5..=8).contains(&orientation) {
        Dimensions {
            width: d.height,
            height: d.width,
        }
    } else {
        d
    }
}

/// The Orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block.
pub fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let little = match tiff.get(..4)? {
        [b'I', b'I', 42, 0] => true,
        [b'M', b'M', 0, 42] => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at + 2)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = u16_at(ifd)? as usize;
    (0..count).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112)
            .then(|| u16_at(entry + 8))
            .flatten()
            .filter(|o| (1..=8).contains(o))
    })
}

fn png<R: Read>(r: &mut R) -> Result<Dimensions, ProbeError> {
    let mut head = [0u8; 24];
    read_exact_or(r, &mut head, "PNG")?;
    if &head[12..16] != b"IHDR" {
        return Err(ProbeError::Malformed("PNG"));
    }
    let width = u32::from_be_bytes([head[16], head[17], head[18], head[19]]);
    let height = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
    Ok(Dimensions { width, height })
}

/// The logical screen (canvas) size: what a decoder composites onto. Every frame must
/// lie inside it (a frame descriptor far outside would make a decoder allocate for it),
/// so the blocks are walked to the end without decoding; a file cut short ends the walk.
fn gif<R: Read>(r: &mut R) -> Result<Dimensions, ProbeError> {
    let mut head = [0u8; 13];
    read_exact_or(r, &mut head, "GIF")?;
    let width = u32::from(u16::from_le_bytes([head[6], head[7]]));
    let height = u32::from(u16::from_le_bytes([head[8], head[9]]));
    let screen = Dimensions { width, height };
    match gif_frames_inside(r, head[10], screen) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(screen),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(ProbeError::Malformed(
            "GIF (a frame lies outside its logical screen)",
        )),
        Err(e) => Err(ProbeError::Io(e)),
        Ok(()) => Ok(screen),
    }
}

/// Walks a GIF's blocks after the logical screen descriptor; `InvalidData` for a frame
/// outside `screen` or an unknown block.
fn gif_frames_inside<R: Read>(r: &mut R, packed: u8, screen: Dimensions) -> io::Result<()> {
    let byte = |r: &mut R| -> io::Result<u8> {
        let mut b = [0u8; 1];
        r.read_exact(&mut b)?;
        Ok(b[0])
    };
    let skip = |r: &mut R, n: u64| -> io::Result<()> {
        if io::copy(&mut r.take(n), &mut io::sink())? < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    };
    let color_table = |packed: u8| {
        if packed & 0x80 != 0 {
            3u64 << ((packed & 7) + 1)
        } else {
            0
        }
    };
    let sub_blocks = |r: &mut R| -> io::Result<()> {
        loop {
            match byte(r)? {
                0 => return Ok(()),
                len => skip(r, u64::from(len))?,
            }
        }
    };
    skip(r, color_table(packed))?;
    loop {
        match byte(r)? {
            0x3B => return Ok(()), // trailer
            0x21 => {
                byte(r)?; // extension label
                sub_blocks(r)?;
            }
            0x2C => {
                let mut d = [0u8; 9];
                r.read_exact(&mut d)?;
                let at = |i: usize| u32::from(u16::from_le_bytes([d[i], d[i + 1]]));
                let (left, top, w, h) = (at(0), at(2), at(4), at(6));
                if left + w > screen.width || top + h > screen.height {
                    return Err(io::ErrorKind::InvalidData.into());
                }
                skip(r, color_table(d[8]))?;
                byte(r)?; // LZW minimum code size
                sub_blocks(r)?;
            }
            _ => return Err(io::ErrorKind::InvalidData.into()),
        }
    }
}

fn webp<R: Read>(r: &mut R) -> Result<Dimensions, ProbeError> {
    const WHAT: &str = "WebP";
    let mut head = [0u8; 30];
    read_exact_or(r, &mut head, WHAT)?;
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    match &head[12..16] {
        b"VP8X" => Ok(Dimensions {
            width: le24(&head[24..27]) + 1,
            height: le24(&head[27..30]) + 1,
        }),
        b"VP8 " => {
            if head[23..26] != [0x9D, 0x01, 0x2A] {
                return Err(ProbeError::Malformed(WHAT));
            }
            let width = u32::from(u16::from_le_bytes([head[26], head[27]]) & 0x3FFF);
            let height = u32::from(u16::from_le_bytes([head[28], head[29]]) & 0x3FFF);
            Ok(Dimensions { width, height })
        }
        b"VP8L" => {
            if head[20] != 0x2F {
                return Err(ProbeError::Malformed(WHAT));
            }
            let bits = u32::from_le_bytes([head[21], head[22], head[23], head[24]]);
            Ok(Dimensions {
                width: (bits & 0x3FFF) + 1,
                height: ((bits >> 14) & 0x3FFF) + 1,
            })
        }
        _ => Err(ProbeError::Malformed(WHAT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn probe(kind: MediaType, bytes: &[u8]) -> Result<Dimensions, ProbeError> {
        raster_dimensions(kind, &mut Cursor::new(bytes), 100_000_000)
    }

    fn tiff_with_orientation(o: u16) -> Vec<u8> {
        let mut t = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        t.extend_from_slice(&o.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        t
    }

    fn jpeg_bytes(orientation: Option<u16>, w: u16, h: u16) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        if let Some(o) = orientation {
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend(tiff_with_orientation(o));
            j.extend_from_slice(&[0xFF, 0xE1]);
            j.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
            j.extend(app1);
        }
        j.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8]);
        j.extend_from_slice(&h.to_be_bytes());
        j.extend_from_slice(&w.to_be_bytes());
        j.extend_from_slice(&[1, 1, 0x11, 0]);
        j.extend_from_slice(&[0xFF, 0xDA]);
        j
    }

    #[test]
    fn jpeg_size_follows_exif_orientation() {
        for o in 1..=8u16 {
            let d = probe(MediaType::Jpeg, &jpeg_bytes(Some(o), 450, 600)).expect("probe");
            let expect = if o >= 5 { (600, 450) } else { (450, 600) };
            assert_eq!((d.width, d.height), expect, "orientation {o}");
        }
        let d = probe(MediaType::Jpeg, &jpeg_bytes(None, 640, 427)).expect("probe");
        assert_eq!((d.width, d.height), (640, 427));
    }

    #[test]
    fn truncated_jpeg_header_is_malformed() {
        let j = jpeg_bytes(None, 10, 10);
        assert!(matches!(
            probe(MediaType::Jpeg, &j[..8]),
            Err(ProbeError::Malformed(_))
        ));
    }

    #[test]
    fn png_bomb_is_refused_from_the_header() {
        let mut p = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        p.extend_from_slice(&50_000u32.to_be_bytes());
        p.extend_from_slice(&50_000u32.to_be_bytes());
        assert!(matches!(
            probe(MediaType::Png, &p),
            Err(ProbeError::TooLarge { .. })
        ));
    }

    #[test]
    fn gif_uses_logical_screen() {
        let g = b"GIF89a\xff\xff\xff\xff\x80\0\0";
        assert!(matches!(
            probe(MediaType::Gif, g),
            Err(ProbeError::TooLarge { .. })
        ));
        let g = b"GIF89a\x0a\0\x05\0\x80\0\0";
        assert_eq!(
            probe(MediaType::Gif, g).expect("gif"),
            Dimensions {
                width: 10,
                height: 5
            }
        );
    }

    #[test]
    fn gif_frames_must_lie_inside_the_logical_screen() {
        // 10x5 screen, no colour table; one graphic control extension, then a frame.
        let gif = |left: u16, w: u16| {
            let mut g = b"GIF89a\x0a\0\x05\0\0\0\0".to_vec();
            g.extend_from_slice(b"\x21\xf9\x04\0\0\0\0\0");
            g.push(0x2C);
            for v in [left, 0, w, 5] {
                g.extend_from_slice(&v.to_le_bytes());
            }
            g.extend_from_slice(b"\0\x02\x02\x44\x01\0\x3b");
            g
        };
        assert!(probe(MediaType::Gif, &gif(0, 10)).is_ok());
        assert!(probe(MediaType::Gif, &gif(2, 8)).is_ok());
        for (left, w) in [(60_000, 5_000), (1, 10), (0, 65_535)] {
            assert!(
                matches!(
                    probe(MediaType::Gif, &gif(left, w)),
                    Err(ProbeError::Malformed(m)) if m.contains("outside")
                ),
                "frame at {left} of width {w}"
            );
        }
        // Cut short inside the frame's data: the decoder gets what there is.
        let g = gif(0, 10);
        assert!(probe(MediaType::Gif, &g[..g.len() - 3]).is_ok());
    }

    #[test]
    fn zero_sized_images_are_malformed() {
        let g = b"GIF89a\0\0\x05\0\x80\0\0";
        assert!(matches!(
            probe(MediaType::Gif, g),
            Err(ProbeError::Malformed(_))
        ));
    }
}
