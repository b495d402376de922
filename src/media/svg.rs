//! SVG recognition, safety check and intrinsic size. Darkroom serves SVG as uploaded
//! (with a sandboxing CSP), so SVG with active content (scripts, event handlers,
//! `javascript:` links, entity declarations, foreignObject) is refused at upload, and so
//! is SVG that makes its viewer fetch something: `href`/`xlink:href`/`src` or CSS
//! `url()` pointing anywhere but into the document (`#id`) or at a `data:` image, and CSS
//! `@import`. Links (`<a href>`) are navigation, not fetches, and stay.

use super::probe::Dimensions;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SvgError {
    #[error("the SVG is not valid UTF-8 text")]
    NotText,
    #[error("the SVG has no <svg> root element")]
    NoRoot,
    #[error("the SVG contains active content ({0}); remove scripts, event handlers and entities")]
    Unsafe(&'static str),
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

/// Checks the whole document for active content and returns its intrinsic size
/// (from width/height, else the viewBox; `None` when it declares neither).
pub fn inspect(bytes: &[u8]) -> Result<Option<Dimensions>, SvgError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SvgError::NotText)?;
    let lower = text.to_ascii_lowercase();
    for (needle, what) in [
        ("<!entity", "entity declaration"),
        ("<script", "script element"),
        ("<foreignobject", "foreignObject"),
        ("javascript:", "javascript: URL"),
        ("vbscript:", "vbscript: URL"),
        ("data:text/html", "HTML data URL"),
    ] {
        if lower.contains(needle) {
            return Err(SvgError::Unsafe(what));
        }
    }
    check_css_references(&lower)?;
    let root = root_start(text).ok_or(SvgError::NoRoot)?;
    let mut root_attrs = None;
    for tag in Tags::new(text) {
        for (name, value) in &tag.attrs {
            let name = name.to_ascii_lowercase();
            if name.starts_with("on") {
                return Err(SvgError::Unsafe("event handler attribute"));
            }
            let fetches = name == "href" || name.ends_with(":href") || name == "src";
            if fetches && !tag.name.eq_ignore_ascii_case("a") && !is_internal(value) {
                return Err(SvgError::Unsafe("reference to an external resource"));
            }
        }
        if tag.start == root {
            root_attrs = Some(tag.attrs);
        }
    }
    let attrs = root_attrs.ok_or(SvgError::NoRoot)?;
    Ok(intrinsic_size(&attrs))
}

/// CSS in `<style>` or `style` attributes: `@import` (also spelled with an escape) and
/// `url()` pointing outside the document.
fn check_css_references(lower: &str) -> Result<(), SvgError> {
    if lower.contains("@import") || lower.contains("@\\") {
        return Err(SvgError::Unsafe("CSS @import"));
    }
    for (at, _) in lower.match_indices("url(") {
        let arg = lower[at + 4..].trim_start();
        let arg = arg.strip_prefix(['"', '\'']).unwrap_or(arg);
        let empty = arg.starts_with(['"', '\'', ')']);
        if !empty && !is_internal(arg) {
            return Err(SvgError::Unsafe("CSS url() to an external resource"));
        }
    }
    Ok(())
}

/// A reference that stays inside the document: `#id`, a `data:` URL, or nothing. Taken
/// literally (an escaped or entity-encoded scheme is not internal).
fn is_internal(reference: &str) -> bool {
    let r = reference.trim_start();
    r.is_empty()
        || r.starts_with('#')
        || r.get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
}

fn intrinsic_size(attrs: &[(&str, &str)]) -> Option<Dimensions> {
    let get = |name: &str| attrs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
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
    (n > 0.0).then_some(n * factor)
}

/// One start tag: where it begins, its name and its attributes.
struct Tag<'a> {
    start: usize,
    name: &'a str,
    attrs: Vec<(&'a str, &'a str)>,
}

/// A small lexer over start tags: enough to see every attribute name, no more.
struct Tags<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tags<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        loop {
            let start = self.pos + self.text[self.pos..].find('<')?;
            if !self.skip_markup(start) {
                return Some(self.open_tag(start));
            }
        }
    }
}

impl<'a> Tags<'a> {
    /// Skips a comment, CDATA section, processing instruction, end tag or declaration at
    /// `start`; false when an opening tag starts there.
    fn skip_markup(&mut self, start: usize) -> bool {
        let rest = &self.text[start..];
        for (open, close) in [("<!--", "-->"), ("<![CDATA[", "]]>"), ("<?", "?>")] {
            if rest.starts_with(open) {
                self.pos = rest
                    .find(close)
                    .map_or(self.text.len(), |e| start + e + close.len());
                return true;
            }
        }
        let i = start + 1;
        if matches!(self.text.as_bytes().get(i), Some(b'/') | Some(b'!')) {
            self.pos = self.text[i..]
                .find('>')
                .map_or(self.text.len(), |e| i + e + 1);
            return true;
        }
        false
    }

    /// Reads the opening tag at `start` with its attributes, up to its `>`.
    fn open_tag(&mut self, start: usize) -> Tag<'a> {
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"/>".contains(&bytes[i]) {
            i += 1;
        }
        let name = &self.text[start + 1..i];
        let mut attrs = Vec::new();
        loop {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'>' {
                self.pos = (i + 1).min(bytes.len());
                return Tag { start, name, attrs };
            }
            let (name, value, next) = self.attribute(i);
            if name.is_empty() {
                i = next + 1;
            } else {
                attrs.push((name, value));
                i = next;
            }
        }
    }

    /// The attribute starting at `i` (`name`, `name=value`, `name="value"`) and where
    /// the text after it starts.
    fn attribute(&self, mut i: usize) -> (&'a str, &'a str, usize) {
        let (text, bytes) = (self.text, self.text.as_bytes());
        let skip_space = |mut i: usize| {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            i
        };
        let name_start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"=/>".contains(&bytes[i]) {
            i += 1;
        }
        let name = &text[name_start..i];
        i = skip_space(i);
        if bytes.get(i) != Some(&b'=') {
            return (name, "", i);
        }
        i = skip_space(i + 1);
        if let Some(&q) = bytes.get(i).filter(|q| **q == b'"' || **q == b'\'') {
            let end = text[i + 1..]
                .find(q as char)
                .map_or(bytes.len(), |e| i + 1 + e);
            return (name, &text[i + 1..end], (end + 1).min(bytes.len()));
        }
        let s = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
            i += 1;
        }
        (name, &text[s..i], i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(svg: &str) -> Option<(u32, u32)> {
        inspect(svg.as_bytes())
            .expect("safe svg")
            .map(|d| (d.width, d.height))
    }

    #[test]
    fn recognises_svg_after_a_prolog() {
        assert!(looks_like_svg(
            b"\xEF\xBB\xBF<?xml version='1.0'?>\n<!-- c -->\n<svg>"
        ));
        assert!(looks_like_svg(
            b"<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg "
        ));
        assert!(!looks_like_svg(b"<!DOCTYPE html><html>"));
        assert!(!looks_like_svg(b"<svgfoo>"));
        assert!(!looks_like_svg(b"hello <svg>"));
    }

    #[test]
    fn size_from_attributes_units_or_viewbox() {
        assert_eq!(
            dims(r#"<svg width="128" height="128" viewBox="0 0 64 64"/>"#),
            Some((128, 128))
        );
        assert_eq!(
            dims(r#"<svg width="72pt" height="72pt"></svg>"#),
            Some((96, 96))
        );
        assert_eq!(
            dims(r#"<svg viewBox="0 0 1920 1080"></svg>"#),
            Some((1920, 1080))
        );
        assert_eq!(
            dims(r#"<svg width="100%" viewBox="0,0,300,150"></svg>"#),
            Some((300, 150))
        );
        assert_eq!(
            dims(r#"<svg width="200" viewBox="0 0 100 50"></svg>"#),
            Some((200, 100))
        );
        assert_eq!(dims(r#"<svg></svg>"#), None);
    }

    #[test]
    fn refuses_active_content() {
        let cases = [
            r#"<svg><script>alert(1)</script></svg>"#,
            r#"<svg onload="alert(1)"></svg>"#,
            r#"<svg><rect ONCLICK='x'/></svg>"#,
            r#"<svg><a href="JavaScript:alert(1)"/></svg>"#,
            r#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>"#,
            r#"<svg><foreignObject><div/></foreignObject></svg>"#,
        ];
        for c in cases {
            assert!(
                matches!(inspect(c.as_bytes()), Err(SvgError::Unsafe(_))),
                "{c}"
            );
        }
    }

    #[test]
    fn refuses_references_outside_the_document() {
        let cases = [
            r#"<svg><image href="http://evil.example/x.png"/></svg>"#,
            r#"<svg><image xlink:href="https://evil.example/x.png"/></svg>"#,
            r#"<svg><use href="file:///etc/passwd#x"/></svg>"#,
            r#"<svg><image href="other.png"/></svg>"#,
            r#"<svg><image href="//evil.example/x.png"/></svg>"#,
            r#"<svg><image href="&#104;ttp://evil.example/x.png"/></svg>"#,
            r#"<svg><feImage src="http://evil.example/x"/></svg>"#,
            r#"<svg><rect style="fill:url(http://evil.example/p.svg#g)"/></svg>"#,
            r#"<svg><style>rect { fill: url( 'https://evil.example/p' ) }</style></svg>"#,
            r#"<svg><style>@import "https://evil.example/a.css";</style></svg>"#,
            r#"<svg><style>@\69mport "https://evil.example/a.css";</style></svg>"#,
        ];
        for c in cases {
            assert!(
                matches!(inspect(c.as_bytes()), Err(SvgError::Unsafe(_))),
                "{c}"
            );
        }
    }

    #[test]
    fn keeps_references_inside_the_document_and_links() {
        let svg = r##"<svg width="4" height="4" xmlns:xlink="http://www.w3.org/1999/xlink">
            <defs><linearGradient id="g"/></defs>
            <rect fill="url(#g)" style="stroke: url( '#g' )"/>
            <use xlink:href="#g"/>
            <image href="data:image/png;base64,iVBORw0KGgo="/>
            <a href="https://example.com/about"><text>about</text></a>
        </svg>"##;
        assert_eq!(dims(svg), Some((4, 4)));
    }

    #[test]
    fn text_and_comments_are_not_attributes() {
        let svg =
            r#"<svg width="1" height="1"><!-- <a onclick="x"> --><text>one = two</text></svg>"#;
        assert_eq!(dims(svg), Some((1, 1)));
    }
}
