//! SVG: recognition (`looks_like_svg`), and the check that decides what is stored
//! (`clean`). Darkroom serves SVG as stored (from the bucket on S3, where no header of
//! ours applies), so the check is an allow-list applied through a real XML parser, and
//! the cleaned document it writes is what is stored. Active content is refused: scripts
//! (in any namespace), event handlers, `javascript:` and other non-web links, entity
//! declarations, foreignObject, and anything that would make a viewer fetch something
//! (a `href` or CSS `url()` pointing outside the document, except raster `data:` images
//! in `<image>`; CSS `@import`). Links (`<a href>` to http(s), mailto or a relative URL)
//! stay. Everything else not on the allow-lists (comments, processing instructions such
//! as `xml-stylesheet`, editor metadata, unknown elements and attributes) is dropped.

mod clean;
pub mod rules;

use std::io::BufRead;

pub use clean::{Limits, clean};

use super::probe::Dimensions;

#[derive(Debug, thiserror::Error)]
pub enum SvgError {
    #[error("the SVG is not valid UTF-8 text")]
    NotText,
    #[error("the SVG is not well-formed XML: {0}")]
    NotXml(String),
    #[error("the SVG has no <svg> root element")]
    NoRoot,
    #[error("the SVG contains active content ({0}); remove scripts, event handlers and entities")]
    Unsafe(&'static str),
    #[error("the SVG has more than {limit} {what} (the limit)")]
    Limit { what: &'static str, limit: u64 },
    #[error("reading or writing the SVG failed: {0}")]
    Io(std::io::Error),
}

/// Checks an SVG without keeping the cleaned form (see `clean`); returns its size.
pub fn inspect<R: BufRead>(src: R, limits: Limits) -> Result<Option<Dimensions>, SvgError> {
    clean(src, &mut std::io::sink(), limits)
}

/// True when the text starts (after an optional prolog) with an `<svg` element.
pub fn looks_like_svg(head: &[u8]) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // The head may end inside a multi-byte character.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return false,
    };
    root_start(text).is_some()
}

/// Byte offset of the `<svg` root tag, skipping BOM, XML declaration, comments,
/// processing instructions and a DOCTYPE.
fn root_start(text: &str) -> Option<usize> {
    let mut rest = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    loop {
        rest = rest.trim_start();
        let offset = text.len() - rest.len();
        if let Some(after) = rest.strip_prefix("<svg") {
            return after
                .starts_with(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
                .then_some(offset);
        }
        let end = if rest.starts_with("<?") {
            rest.find("?>")? + 2
        } else if rest.starts_with("<!--") {
            rest.find("-->")? + 3
        } else if rest.starts_with("<!DOCTYPE") || rest.starts_with("<!doctype") {
            doctype_end(rest)?
        } else {
            return None;
        };
        rest = &rest[end..];
    }
}

/// End of a DOCTYPE, including an internal subset in brackets.
fn doctype_end(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '>' if depth <= 0 => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The intrinsic size of the root's attributes: width/height (CSS lengths in px), else
/// the viewBox, one from the other where only one is given.
fn intrinsic_size(attrs: &[(String, String)]) -> Option<Dimensions> {
    let get = |name: &str| {
        attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let view_box: Option<(f64, f64)> = get("viewBox").and_then(|v| {
        let nums: Vec<f64> = v
            .split(|c: char| c.is_ascii_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        (nums.len() == 4 && nums[2] > 0.0 && nums[3] > 0.0).then(|| (nums[2], nums[3]))
    });
    let width = get("width").and_then(length_px);
    let height = get("height").and_then(length_px);
    let (w, h) = match (width, height, view_box) {
        (Some(w), Some(h), _) => (w, h),
        (Some(w), None, Some((vw, vh))) => (w, w * vh / vw),
        (None, Some(h), Some((vw, vh))) => (h * vw / vh, h),
        (_, _, Some(vb)) => vb,
        _ => return None,
    };
    let px = |v: f64| (v.round() >= 1.0 && v < 1e7).then(|| v.round() as u32);
    Some(Dimensions {
        width: px(w)?,
        height: px(h)?,
    })
}

/// A CSS length in px at 96 dpi; percentages and font-relative units are not sizes.
fn length_px(v: &str) -> Option<f64> {
    let v = v.trim();
    let split = v
        .find(|c: char| c.is_ascii_alphabetic() || c == '%')
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.trim().parse().ok()?;
    let factor = match unit {
        "" | "px" => 1.0,
        "pt" => 96.0 / 72.0,
        "pc" => 16.0,
        "in" => 96.0,
        "cm" => 96.0 / 2.54,
        "mm" => 96.0 / 25.4,
        _ => return None,
    };
    (n > 0.0 && n.is_finite()).then_some(n * factor)
}

#[cfg(test)]
mod tests;
