//! Writes the worst images the upload checks allow, for `make perf`'s decode-memory row
//! (`loadtest/memory.py`): `cargo run --release --example worst_inputs -- DIR`.
//!
//! - `progressive-100mp.jpg`: 10000x10000 progressive JPEG (4:2:0), a smooth gradient so
//!   it stays under the 50 MB upload limit; decoding buffers all its coefficients;
//! - `rgba16-100mp.png`: 10000x10000 16-bit RGBA PNG (800 MB of samples);
//! - `lossless-42mp.webp`: 6500x6500 lossless WebP, decoded whole: about the largest the
//!   default 1 GB budget admits.

use std::io::Write;
use std::path::PathBuf;

fn gradient(w: usize, h: usize, channels: usize) -> Vec<u8> {
    let mut px = vec![0u8; w * h * channels];
    for (i, row) in px.chunks_exact_mut(w * channels).enumerate() {
        for (x, p) in row.chunks_exact_mut(channels).enumerate() {
            p[0] = (x * 255 / w) as u8;
            p[1] = (i * 255 / h) as u8;
            p[2] = ((x + i) * 127 / (w + h)) as u8;
            if channels == 4 {
                p[3] = 255 - (x * 64 / w) as u8;
            }
        }
    }
    px
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: worst_inputs DIR")?);
    std::fs::create_dir_all(&dir)?;

    let (w, h) = (10_000usize, 10_000usize);
    let rgb = gradient(w, h, 3);
    let mut jpeg = turbojpeg::Compressor::new()?;
    jpeg.set_quality(85)?;
    jpeg.set_subsamp(turbojpeg::Subsamp::Sub2x2)?;
    jpeg.set_progressive(true)?;
    let image = turbojpeg::Image {
        pixels: rgb.as_slice(),
        width: w,
        pitch: w * 3,
        height: h,
        format: turbojpeg::PixelFormat::RGB,
    };
    std::fs::write(
        dir.join("progressive-100mp.jpg"),
        jpeg.compress_to_vec(image)?,
    )?;
    drop(rgb);

    let file = std::fs::File::create(dir.join("rgba16-100mp.png"))?;
    let mut png = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
    png.set_color(png::ColorType::Rgba);
    png.set_depth(png::BitDepth::Sixteen);
    png.set_filter(png::Filter::Sub);
    let mut writer = png.write_header()?;
    let mut stream = writer.stream_writer()?;
    let mut row = vec![0u8; w * 8];
    for y in 0..h {
        for (x, p) in row.chunks_exact_mut(8).enumerate() {
            let v = [(x * 65535 / w) as u16, (y * 65535 / h) as u16, 32768, 65535];
            for (c, s) in v.iter().enumerate() {
                p[2 * c..2 * c + 2].copy_from_slice(&s.to_be_bytes());
            }
        }
        stream.write_all(&row)?;
    }
    stream.finish()?;

    let side = 6500u32;
    let rgba = gradient(side as usize, side as usize, 4);
    let webp = webp::Encoder::from_rgba(&rgba, side, side).encode_lossless();
    std::fs::write(dir.join("lossless-42mp.webp"), &*webp)?;
    Ok(())
}
