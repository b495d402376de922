//! What decoding and processing an image will take in memory, from its headers alone,
//! before any of it is done: the processing pool admits jobs by this (its memory budget,
//! `processing.memory_budget_bytes`), and an upload whose image could never fit the
//! budget is refused at once. Estimates err on the high side.
//!
//! - JPEG: the output at its DCT scale, and the coefficients of the whole image (2 bytes
//!   a sample, by component sampling) when they are buffered: progressive files, and
//!   baseline ones whose first scan does not carry every component;
//! - PNG: rows shrunk on load (see `png`), or the whole 8-bit picture when interlaced;
//! - GIF and WebP: decoded whole, 12 bytes a pixel (canvas, frame and conversion);
//! - then a copy of the picture (colour conversion), the variants and each crop.

use std::io::{self, Read, Seek};

use super::crop::needed_width;
use super::resize::variant_widths;
use crate::media::limits::skip;
use crate::media::probe::exif_orientation;
use crate::model::{CropSize, MediaType};

/// Bytes to decode and process the image in `r` (a `kind` file) with `crops`.
pub fn decode_cost<R: Read + Seek>(
    r: &mut R,
    kind: MediaType,
    crops: &[CropSize],
) -> io::Result<u64> {
    let decode = match kind {
        MediaType::Jpeg => jpeg(r, crops)?,
        MediaType::Png => png(r, crops)?,
        MediaType::Gif => {
            let mut head = [0u8; 10];
            r.read_exact(&mut head)?;
            let (w, h) = (
                u16::from_le_bytes([head[6], head[7]]),
                u16::from_le_bytes([head[8], head[9]]),
            );
            Decode::whole(u64::from(w), u64::from(h), 12)
        }
        MediaType::Webp => {
            let mut head = [0u8; 30];
            r.read_exact(&mut head)?;
            let d = crate::media::probe::raster_dimensions(
                MediaType::Webp,
                &mut io::Cursor::new(&head[..]),
                &crate::media::Limits {
                    max_pixels: u64::MAX,
                    ..Default::default()
                },
            )
            .map_err(|_| io::ErrorKind::InvalidData)?;
            Decode::whole(u64::from(d.width), u64::from(d.height), 12)
        }
        _ => return Ok(0),
    };
    Ok(decode.total(crops))
}

/// The decode's own memory, and the picture it hands on (upright width x height, at 4
/// bytes a pixel at most).
struct Decode {
    working: u64,
    picture: (u64, u64),
    /// The original's full width and height (variant and crop sizes come from them).
    full: (u64, u64),
}

impl Decode {
    fn whole(w: u64, h: u64, per_pixel: u64) -> Self {
        Self {
            working: product(&[w, h, per_pixel]),
            picture: (w, h),
            full: (w, h),
        }
    }

    fn total(&self, crops: &[CropSize]) -> u64 {
        let (w, h) = self.full;
        let picture = product(&[self.picture.0, self.picture.1, 4]);
        let largest = variant_widths(u32::try_from(w).unwrap_or(u32::MAX))
            .next()
            .map_or(0, u64::from);
        // The variants cascade down from the largest: about 1.6 times its pixels.
        let variants = product(&[product(&[largest, largest, h]) / w.max(1), 4, 8]) / 5;
        let crops: u64 = crops
            .iter()
            .map(|c| product(&[c.width.into(), c.height.into(), 4, 2]))
            .fold(0, u64::saturating_add);
        [self.working, picture, picture, variants, crops]
            .into_iter()
            .fold(0, u64::saturating_add)
    }
}

/// The product, or `u64::MAX` past it: header sizes are the attacker's (a PNG may claim
/// 2^32 x 2^32 pixels), and a cost that wraps would let anything in.
fn product(factors: &[u64]) -> u64 {
    factors.iter().fold(1, |a, b| a.saturating_mul(*b))
}

/// The scale (1, 2, 4 or 8) at which a picture stored `w` x `h` still covers what is
/// made of it, upright (`turned`: its orientation swaps width and height).
fn shrink(w: u64, h: u64, turned: bool, crops: &[CropSize]) -> u64 {
    let factor = |upright_w: u64, upright_h: u64| {
        let (uw, uh) = (upright_w as u32, upright_h as u32);
        let needed = crops
            .iter()
            .map(|c| needed_width(uw, uh, *c))
            .chain(variant_widths(uw).next())
            .max()
            .unwrap_or(uw);
        [8u64, 4, 2]
            .into_iter()
            .find(|f| upright_w.div_ceil(*f) >= u64::from(needed))
            .unwrap_or(1)
    };
    if turned { factor(h, w) } else { factor(w, h) }
}

/// A JPEG's frame header: its size, whether it is progressive, and each component's
/// horizontal and vertical sampling factors.
type JpegFrame = (u64, u64, bool, Vec<(u8, u8)>);

fn jpeg<R: Read + Seek>(r: &mut R, crops: &[CropSize]) -> io::Result<Decode> {
    let mut frame: Option<JpegFrame> = None;
    let mut orientation = None;
    let mut marker = [0u8; 4];
    r.read_exact(&mut marker[..2])?;
    loop {
        r.read_exact(&mut marker[..2])?;
        while marker[1] == 0xFF {
            r.read_exact(&mut marker[1..2])?;
        }
        let m = marker[1];
        if m == 0x01 || (0xD0..=0xD7).contains(&m) {
            continue;
        }
        r.read_exact(&mut marker[2..4])?;
        let len = u64::from(u16::from_be_bytes([marker[2], marker[3]])).saturating_sub(2);
        let is_sof = matches!(m, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF);
        if m == 0xE1 && orientation.is_none() {
            let mut body = vec![0u8; len as usize];
            r.read_exact(&mut body)?;
            if let Some(tiff) = body.strip_prefix(b"Exif\0\0") {
                orientation = Some(exif_orientation(tiff).unwrap_or(1));
            }
            continue;
        }
        if is_sof || m == 0xDA {
            let mut body = vec![0u8; len as usize];
            r.read_exact(&mut body)?;
            if is_sof {
                if body.len() < 6 {
                    return Err(io::ErrorKind::InvalidData.into()); // a frame header too short
                }
                let (h, w) = (
                    u16::from_be_bytes([body[1], body[2]]),
                    u16::from_be_bytes([body[3], body[4]]),
                );
                let count = usize::from(*body.get(5).unwrap_or(&0));
                let sampling = (0..count)
                    .filter_map(|i| body.get(6 + 3 * i + 1))
                    .map(|hv| (hv >> 4, hv & 0x0F))
                    .collect();
                if body[0] != 8 {
                    // 12-bit (or lossless 16-bit): decoded whole by the `image` crate.
                    return Ok(Decode::whole(u64::from(w), u64::from(h), 8));
                }
                let progressive = matches!(m, 0xC2 | 0xC6 | 0xCA | 0xCE);
                frame = Some((u64::from(w), u64::from(h), progressive, sampling));
                continue;
            }
            let (w, h, progressive, sampling) = frame.ok_or(io::ErrorKind::InvalidData)?;
            let in_first_scan = usize::from(*body.first().unwrap_or(&0));
            let buffered = progressive || in_first_scan < sampling.len();
            let turned = orientation.is_some_and(|o| (5..=8).contains(&o));
            let f = shrink(w, h, turned, crops);
            let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
            let channels = sampling.len().clamp(1, 4) as u64;
            let coefficients = if buffered {
                let hmax = sampling
                    .iter()
                    .map(|s| u64::from(s.0))
                    .max()
                    .unwrap_or(1)
                    .max(1);
                let vmax = sampling
                    .iter()
                    .map(|s| u64::from(s.1))
                    .max()
                    .unwrap_or(1)
                    .max(1);
                let share: u64 = sampling
                    .iter()
                    .map(|(sh, sv)| {
                        let across = (w * u64::from(*sh)).div_ceil(hmax).div_ceil(8);
                        let down = (h * u64::from(*sv)).div_ceil(vmax).div_ceil(8);
                        product(&[across, 8, down, 8])
                    })
                    .fold(0, u64::saturating_add);
                share.saturating_mul(2)
            } else {
                0
            };
            return Ok(Decode {
                working: coefficients.saturating_add(product(&[ow, oh, channels])),
                picture: (ow, oh),
                full: (w, h),
            });
        }
        skip(r, len)?;
    }
}

fn png<R: Read + Seek>(r: &mut R, crops: &[CropSize]) -> io::Result<Decode> {
    let mut head = [0u8; 29];
    r.read_exact(&mut head)?;
    let w = u64::from(u32::from_be_bytes([head[16], head[17], head[18], head[19]]));
    let h = u64::from(u32::from_be_bytes([head[20], head[21], head[22], head[23]]));
    let channels = match head[25] {
        0 => 1,
        4 => 2,
        2 => 3,
        _ => 4, // RGBA, or a palette that may expand to RGBA
    };
    let interlaced = head[28] != 0;
    // An eXIf may turn it: the smaller scale of the two covers either.
    let f = if interlaced {
        1
    } else {
        shrink(w, h, false, crops).min(shrink(w, h, true, crops))
    };
    let (ow, oh) = (w.div_ceil(f), h.div_ceil(f));
    // Rows: one decoded (16 bits a sample at most) and the running sums (8 bytes a sample).
    let rows = product(&[w, channels, 2 + 8]);
    Ok(Decode {
        working: product(&[ow, oh, channels]).saturating_add(rows),
        picture: (ow, oh),
        full: (w, h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_fixture as fixture;

    fn cost(path: &str, kind: MediaType) -> u64 {
        decode_cost(&mut io::Cursor::new(fixture(path)), kind, &[]).expect("headers")
    }

    #[test]
    fn progressive_jpegs_count_their_coefficients_and_shrink_their_output() {
        // 2560x1600 progressive at 4:2:2: 16.4 MB of coefficients, the output at 1/2
        // (3 MB), its copies at 4 bytes a pixel, and the variants.
        let progressive = cost(
            "jpeg/colorfulcups_2560x1600_progressive_gps.jpg",
            MediaType::Jpeg,
        );
        assert_eq!(
            progressive,
            16_384_000 + 3_072_000 + 2 * 4_096_000 + 5_760_000
        );
        // A small baseline JPEG, read in one interleaved scan: no coefficients kept.
        let baseline = cost("jpeg/hopper_128x128.jpg", MediaType::Jpeg);
        assert_eq!(baseline, 128 * 128 * 3 + 2 * 128 * 128 * 4);
    }

    #[test]
    fn pngs_shrunk_on_load_cost_their_rows_not_their_pixels() {
        // 2048 wide: not shrunk (half would be under the 1200 px variant).
        let png = cost("png/spacefun_2048x1542_palette.png", MediaType::Png);
        assert!(png > 2048 * 1542 * 4 && png < 2048 * 1542 * 16, "{png}");
        // 5000x4000 RGBA: shrunk by 4 as its rows stream in, it never holds 80 MB.
        let mut head = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        head.extend_from_slice(&5000u32.to_be_bytes());
        head.extend_from_slice(&4000u32.to_be_bytes());
        head.extend_from_slice(&[8, 6, 0, 0, 0]);
        let shrunk = decode_cost(&mut io::Cursor::new(head), MediaType::Png, &[]).expect("ok");
        assert!(shrunk < 5000 * 4000 * 4, "{shrunk}");
        // Sizes near the header's maximum cost the most, never wrap around to little.
        let mut huge = Vec::from(&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"[..]);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&[8, 6, 0, 0, 0]);
        let cost = decode_cost(&mut io::Cursor::new(&huge), MediaType::Png, &[]).expect("cost");
        assert!(cost > 1 << 60, "{cost}");
    }
}
