//! The bounds of every parse of an upload, decided before the work (from `[limits]` in
//! config): pixels, metadata bytes, structure records (JPEG segments, PNG and WebP
//! chunks, MP4 boxes), JPEG scans, animation frames, and the SVG bounds. A file past one is refused with a
//! message naming it; oversized metadata (an ICC profile, an EXIF block) is dropped.

use super::anim::AnimationLimits;
use super::svg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Width x height, from the header.
    pub max_pixels: u64,
    /// One metadata block (an inflated ICC profile, an EXIF block): larger ones are
    /// dropped when the original is cleaned, and ignored by the probes.
    pub max_metadata_bytes: u64,
    /// JPEG segments, PNG or WebP chunks, MP4 boxes in one file.
    pub max_records: u64,
    /// Scans of a progressive JPEG.
    pub max_scans: u32,
    /// Memory a raster image's decode may take (the processing pool's budget).
    pub max_decode_bytes: u64,
    pub svg: svg::Limits,
    /// Frames, pixels over all frames and running time of an animated GIF or WebP.
    pub animation: AnimationLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
            max_metadata_bytes: 4 << 20,
            max_records: 100_000,
            max_scans: 100,
            max_decode_bytes: 1 << 30,
            svg: svg::Limits::default(),
            animation: AnimationLimits::default(),
        }
    }
}

impl Limits {
    /// Counts one more record of `what`; past the bound, the error naming it.
    pub fn count(&self, seen: &mut u64, what: &'static str) -> std::io::Result<()> {
        *seen += 1;
        if *seen > self.max_records {
            return Err(over(what, self.max_records));
        }
        Ok(())
    }
}

/// A bound passed, as the I/O error the parsers return (see `Exceeded`).
pub fn over(what: &'static str, limit: u64) -> std::io::Error {
    std::io::Error::other(Exceeded { what, limit })
}

/// A file past one of the `Limits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the file has more than {limit} {what}")]
pub struct Exceeded {
    pub what: &'static str,
    pub limit: u64,
}

impl Exceeded {
    /// The bound an I/O error of a parser stands for, if it is one.
    pub fn of(e: &std::io::Error) -> Option<Self> {
        e.get_ref()?.downcast_ref::<Self>().copied()
    }
}

/// Moves `r` forward `n` bytes. Short gaps are read and dropped (a `BufReader`'s seek
/// would throw its buffer away: files of many tiny records cost thousands of times
/// their size in reads), long ones seeked over.
pub fn skip<R: std::io::Read + std::io::Seek>(r: &mut R, n: u64) -> std::io::Result<()> {
    const READ_UNDER: u64 = 64 * 1024;
    if n < READ_UNDER {
        let got = std::io::copy(&mut std::io::Read::take(&mut *r, n), &mut std::io::sink())?;
        if got < n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(());
    }
    let offset = i64::try_from(n).map_err(|_| std::io::ErrorKind::InvalidData)?;
    r.seek(std::io::SeekFrom::Current(offset))?;
    Ok(())
}
