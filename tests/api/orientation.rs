//! Width, height and orientation agree across the record, the stored original and every
//! variant, whatever a file does to say how it is turned: an MP4 track's matrix, a WebP's
//! EXIF chunk, a PNG's `eXIf`, JPEGs with several EXIF segments or one between the frame
//! header and the first scan. Each file is made here from a fixture.

use std::io::Cursor;

use darkroom::media::Limits;
use darkroom::media::probe::raster_dimensions;
use darkroom::model::MediaType;
use serde_json::{Value, json};

use crate::common::{TestServer, fixture};

/// A big-endian TIFF holding only an Orientation tag.
fn tiff(orientation: u16) -> Vec<u8> {
    let mut t = b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    t.extend_from_slice(&orientation.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    t
}

fn app1_exif(orientation: u16) -> Vec<u8> {
    let mut body = b"Exif\0\0".to_vec();
    body.extend(tiff(orientation));
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    seg.extend(body);
    seg
}

/// The size of a stored file, as the probe reads it (upright).
fn probed(kind: MediaType, bytes: &[u8]) -> (u32, u32) {
    let d = raster_dimensions(kind, &mut Cursor::new(bytes), &Limits::default()).expect("probe");
    (d.width, d.height)
}

/// Uploads `bytes`, waits for its job, and checks that the record, the stored original
/// and every variant agree on `upright`.
async fn agrees(s: &TestServer, name: &str, kind: MediaType, bytes: Vec<u8>, upright: (u32, u32)) {
    let item = s.upload_one_bytes(name, bytes).await;
    let item = s.until_processed(item["id"].as_str().expect("id")).await;
    assert_eq!(item["status"], "ready", "{name}: {item}");
    assert_eq!(
        (&item["width"], &item["height"]),
        (&json!(upright.0), &json!(upright.1)),
        "{name}"
    );
    let stored = s.served(&item).await;
    assert_eq!(
        probed(kind, &stored),
        upright,
        "{name}: the stored original"
    );
    let variants = item["variants"].as_array().expect("variants");
    assert!(!variants.is_empty(), "{name}");
    for v in variants {
        let w = v["width"].as_u64().expect("width");
        let expected_h = (upright.1 as u64 * w + upright.0 as u64 / 2) / upright.0 as u64;
        assert_eq!(v["height"].as_u64(), Some(expected_h.max(1)), "{name}: {v}");
        let webp = s.served(v).await;
        assert_eq!(
            probed(MediaType::Webp, &webp),
            (w as u32, expected_h as u32),
            "{name}"
        );
    }
}

#[tokio::test]
async fn jpeg_orientation_is_the_first_exif_segment_s_wherever_it_sits_before_the_scan() {
    let s = TestServer::spawn().await;
    let base = fixture("jpeg/grace_hopper_512x600.jpg"); // no EXIF of its own
    // Two EXIF segments, the first saying "as stored", the second "turned": as stored.
    let mut two = base[..2].to_vec();
    two.extend(app1_exif(1));
    two.extend(app1_exif(6));
    two.extend_from_slice(&base[2..]);
    agrees(&s, "two.jpg", MediaType::Jpeg, two, (512, 600)).await;
    // One EXIF segment between the frame header and the first scan: turned.
    let sos = base
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS");
    let sof = base
        .windows(2)
        .position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2])
        .expect("SOF");
    assert!(sof < sos);
    let mut late = base[..sos].to_vec();
    late.extend(app1_exif(6));
    late.extend_from_slice(&base[sos..]);
    agrees(&s, "late.jpg", MediaType::Jpeg, late, (600, 512)).await;
}

#[tokio::test]
async fn a_png_s_exif_orientation_is_kept_and_its_size_is_the_upright_one() {
    let s = TestServer::spawn().await;
    let png = fixture("png/spacefun_2048x1542_palette.png");
    let idat = png.windows(4).position(|w| w == b"IDAT").expect("IDAT") - 4;
    let exif = tiff(6);
    let mut crc = flate2::Crc::new();
    crc.update(b"eXIf");
    crc.update(&exif);
    let mut turned = png[..idat].to_vec();
    turned.extend_from_slice(&(exif.len() as u32).to_be_bytes());
    turned.extend_from_slice(b"eXIf");
    turned.extend_from_slice(&exif);
    turned.extend_from_slice(&crc.sum().to_be_bytes());
    turned.extend_from_slice(&png[idat..]);
    agrees(&s, "turned.png", MediaType::Png, turned, (1542, 2048)).await;
}

#[tokio::test]
async fn a_webp_s_exif_orientation_turns_its_recorded_size_too() {
    let s = TestServer::spawn().await;
    let webp = fixture("webp/flower_480x360_lossy_exif.webp");
    // Its image chunk, in a new extended file whose EXIF says "turned a quarter".
    let vp8 = webp
        .windows(4)
        .position(|w| w == b"VP8 ")
        .expect("VP8 chunk");
    let size = u32::from_le_bytes(webp[vp8 + 4..vp8 + 8].try_into().expect("size")) as usize;
    let image = &webp[vp8..vp8 + 8 + size + (size & 1)];
    let exif = tiff(6);
    let mut body = b"WEBPVP8X\x0a\0\0\0\x08\0\0\0".to_vec();
    body.extend_from_slice(&(480u32 - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&(360u32 - 1).to_le_bytes()[..3]);
    body.extend_from_slice(image);
    body.extend_from_slice(b"EXIF");
    body.extend_from_slice(&(exif.len() as u32).to_le_bytes());
    body.extend_from_slice(&exif);
    let mut file = b"RIFF".to_vec();
    file.extend_from_slice(&(body.len() as u32).to_le_bytes());
    file.extend(body);
    agrees(&s, "turned.webp", MediaType::Webp, file, (360, 480)).await;
}

#[tokio::test]
async fn a_phone_video_filmed_upright_is_recorded_upright() {
    let s = TestServer::spawn().await;
    let mut mp4 = fixture("video/bigbuckbunny_1280x720_faststart.mp4");
    let matrix = |m: [u32; 9]| -> Vec<u8> { m.iter().flat_map(|v| v.to_be_bytes()).collect() };
    let identity = matrix([0x1_0000, 0, 0, 0, 0x1_0000, 0, 0, 0, 0x4000_0000]);
    let turned = matrix([0, 0x1_0000, 0, 0xFFFF_0000, 0, 0, 0, 0, 0x4000_0000]);
    let tkhd = mp4
        .windows(4)
        .position(|w| w == b"tkhd")
        .expect("a track header");
    let at = tkhd
        + mp4[tkhd..]
            .windows(identity.len())
            .position(|w| w == identity.as_slice())
            .expect("its matrix");
    mp4[at..at + turned.len()].copy_from_slice(&turned);
    let item: Value = s.upload_one_bytes("portrait.mp4", mp4).await;
    assert_eq!(
        (&item["width"], &item["height"]),
        (&json!(720), &json!(1280)),
        "{item}"
    );
}
