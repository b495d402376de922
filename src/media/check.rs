//! One file through what an upload and its job do to it, outside the server: sniffed,
//! inspected and cleaned (on a temporary copy) under `Limits`, then, for a raster image,
//! processed as its job would be. `darkroom check FILE` prints this, with what it cost.

use std::io::Read;
use std::path::Path;

use serde::Serialize;

use super::image::{Focal, Make, Settings, Worker};
use super::{Limits, MediaError, clean_in_place, inspect, sniff};
use crate::model::random_token;

/// What an accepted file would become.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    pub verdict: &'static str,
    pub mime: &'static str,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<f64>,
    /// Frames of an animated GIF or WebP (its variants are animated).
    pub frames: Option<u32>,
    /// Bytes stored once cleaned.
    pub stored_bytes: u64,
    /// Variants its job would make (raster images).
    pub variants: Option<usize>,
    /// Why its job would fail (the upload itself is accepted: the item ends `failed`).
    pub processing_error: Option<String>,
}

/// Checks `path` as an upload, without changing it.
pub fn check_file(
    path: &Path,
    limits: &Limits,
    settings: &Settings,
) -> Result<Checked, MediaError> {
    let io = |e: std::io::Error| MediaError::Probe(super::probe::ProbeError::Io(e));
    let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
    let file = std::fs::File::open(path).map_err(io)?;
    file.take(sniff::SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    if head.is_empty() {
        return Err(MediaError::Empty);
    }
    let media_type = sniff::sniff(&head).ok_or(MediaError::Unsupported)?;
    let copy = std::env::temp_dir().join(format!("darkroom-check-{}", random_token(12)));
    std::fs::copy(path, &copy).map_err(io)?;
    let checked = (|| {
        let inspection = inspect(&copy, media_type, limits)?;
        clean_in_place(&copy, media_type, limits)?;
        let stored_bytes = std::fs::metadata(&copy).map_err(io)?.len();
        let (mut variants, mut processing_error) = (None, None);
        if media_type.is_raster() {
            let bytes = std::fs::read(&copy).map_err(io)?;
            let make = if inspection.frames.is_some() {
                Make::Animated
            } else {
                Make::All
            };
            let processed = Worker::new().process_with_crops(
                &bytes,
                media_type,
                settings,
                &[],
                Focal::CENTRE,
                make,
            );
            match processed {
                Ok(processed) => variants = Some(processed.variants.len()),
                Err(e) => processing_error = Some(e.to_string()),
            }
        }
        Ok(Checked {
            verdict: "accepted",
            mime: media_type.mime(),
            width: inspection.dims.map(|d| d.width),
            height: inspection.dims.map(|d| d.height),
            duration: inspection.duration,
            frames: inspection.frames,
            stored_bytes,
            variants,
            processing_error,
        })
    })();
    let _ = std::fs::remove_file(&copy);
    checked
}
