//! Probes over hand-made headers: sizes, orientation, bombs and malformed files.

use super::*;
use std::io::Cursor;

fn probe(kind: MediaType, bytes: &[u8]) -> Result<Dimensions, ProbeError> {
    raster_dimensions(kind, &mut Cursor::new(bytes), &Limits::default())
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
