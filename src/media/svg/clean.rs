//! The SVG check and its cleaning, in one pass over a real XML parse (quick-xml, with
//! namespaces resolved): active content is refused (`Unsafe`), everything not on the
//! allow-lists of `rules` is dropped, and what is kept is written out anew, so what is
//! stored is exactly what was judged (no comments, processing instructions, DOCTYPE,
//! editor namespaces, or prefixes that could make one element look like another).
//! Bounded by `Limits` before any work grows: bytes read, nesting depth, elements and
//! attributes per element.

use std::io::{BufRead, Write};

use quick_xml::NsReader;
use quick_xml::escape::escape;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::rules::{self, Reference, SVG_NS, XLINK_NS, XML_NS};
use super::{SvgError, intrinsic_size};
use crate::media::probe::Dimensions;

/// The bounds of one SVG (from `[limits]` in config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_depth: usize,
    pub max_elements: u64,
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 << 20,
            max_depth: 256,
            max_elements: 200_000,
            max_attributes: 256,
        }
    }
}

/// An open element of the output.
struct Open {
    name: String,
    /// A `<style>` element: its text is collected and checked as CSS at its end.
    style: bool,
}

/// One pass: the document read from `src`, the cleaned one written to `dst`.
struct Cleaner<'w, W> {
    dst: &'w mut W,
    limits: Limits,
    open: Vec<Open>,
    /// Depth inside an element being dropped with its content (0: none).
    dropping: usize,
    elements: u64,
    root_seen: bool,
    root_done: bool,
    /// The text of the `<style>` element being read.
    css: Option<String>,
    dims: Option<Dimensions>,
}

/// Checks the SVG in `src` and writes its cleaned form to `dst`; returns its intrinsic
/// size (from width/height, else the viewBox; `None` when it declares neither).
pub fn clean<R: BufRead, W: Write>(
    src: R,
    dst: &mut W,
    limits: Limits,
) -> Result<Option<Dimensions>, SvgError> {
    let mut reader = NsReader::from_reader(src);
    let mut cleaner = Cleaner {
        dst,
        limits,
        open: Vec::new(),
        dropping: 0,
        elements: 0,
        root_seen: false,
        root_done: false,
        css: None,
        dims: None,
    };
    let mut buf = Vec::new();
    loop {
        if reader.buffer_position() > limits.max_bytes {
            return Err(SvgError::Limit {
                what: "bytes",
                limit: limits.max_bytes,
            });
        }
        buf.clear();
        let event = reader.read_event_into(&mut buf).map_err(not_xml)?;
        match event {
            Event::Start(e) => cleaner.start(&reader, &e, false)?,
            Event::Empty(e) => cleaner.start(&reader, &e, true)?,
            Event::End(_) => cleaner.end()?,
            Event::Text(t) => cleaner.text(&t.decode().map_err(|_| SvgError::NotText)?)?,
            Event::CData(c) => cleaner.text(&c.decode().map_err(|_| SvgError::NotText)?)?,
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    let c = r.resolve_char_ref().map_err(not_xml)?;
                    c.ok_or_else(|| SvgError::NotXml("a bad character reference".into()))?
                        .to_string()
                } else {
                    let name = r.decode().map_err(|_| SvgError::NotText)?;
                    predefined(&name)
                        .ok_or(SvgError::Unsafe("entity reference"))?
                        .to_owned()
                };
                cleaner.text(&resolved)?;
            }
            Event::DocType(d) if d.contains(&b'[') => {
                return Err(SvgError::Unsafe("DOCTYPE with declarations"));
            }
            Event::DocType(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !cleaner.root_done {
        return Err(SvgError::NoRoot);
    }
    Ok(cleaner.dims)
}

fn not_xml(e: impl std::fmt::Display) -> SvgError {
    SvgError::NotXml(e.to_string())
}

fn utf8(bytes: &[u8]) -> Result<&str, SvgError> {
    std::str::from_utf8(bytes).map_err(|_| SvgError::NotText)
}

/// Refuses characters XML 1.0 does not allow (NUL and other controls, U+FFFE, U+FFFF),
/// raw or as character references: what is written out must parse again.
fn xml_chars(text: &str) -> Result<(), SvgError> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    match text.chars().find(|&c| !allowed(c)) {
        None => Ok(()),
        Some(c) => Err(SvgError::NotXml(format!(
            "the character U+{:04X}, which XML does not allow",
            u32::from(c)
        ))),
    }
}

/// The five entities XML predefines; any other is refused (no DTD is read).
fn predefined(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

impl<W: Write> Cleaner<'_, W> {
    fn start<R>(
        &mut self,
        reader: &NsReader<R>,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<(), SvgError> {
        let depth = self.open.len() + self.dropping + 1;
        if depth > self.limits.max_depth {
            let limit = self.limits.max_depth as u64;
            return Err(SvgError::Limit {
                what: "levels of nesting",
                limit,
            });
        }
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            let limit = self.limits.max_elements;
            return Err(SvgError::Limit {
                what: "elements",
                limit,
            });
        }
        if self.root_done {
            return Err(SvgError::NotXml("content after the root element".into()));
        }
        let (ns, local) = reader.resolver().resolve_element(e.name());
        let local = utf8(local.into_inner())?;
        if let Some(why) = rules::is_forbidden_element(local) {
            return Err(SvgError::Unsafe(why));
        }
        if self.css.is_some() {
            // A browser reads a style's text whole; elements in it would split what is
            // checked from what is written.
            return Err(SvgError::Unsafe("an element inside <style>"));
        }
        if self.dropping > 0 {
            self.dropping += usize::from(!empty);
            return Ok(());
        }
        let is_svg = match ns {
            ResolveResult::Bound(n) => n.as_ref() == SVG_NS,
            ResolveResult::Unbound => true,
            ResolveResult::Unknown(_) => false,
        };
        let root = !self.root_seen;
        if root && !(is_svg && local == "svg") {
            return Err(SvgError::NoRoot);
        }
        self.root_seen = true;
        let mut attrs = self.attributes(reader, e, local)?;
        let dropped = !is_svg
            || !rules::is_allowed_element(local)
            || (rules::is_animation(local) && !animates_safely(&attrs)?);
        if dropped {
            self.dropping = usize::from(!empty);
            return Ok(());
        }
        if root {
            self.dims = intrinsic_size(&attrs);
            attrs.insert(0, ("xmlns".into(), String::from_utf8_lossy(SVG_NS).into()));
            attrs.insert(
                1,
                (
                    "xmlns:xlink".into(),
                    String::from_utf8_lossy(XLINK_NS).into(),
                ),
            );
        }
        self.write_start(local, &attrs, empty)?;
        if empty {
            self.root_done |= root;
        } else {
            let style = local == "style";
            if style {
                self.css = Some(String::new());
            }
            self.open.push(Open {
                name: local.to_owned(),
                style,
            });
        }
        Ok(())
    }

    /// The attributes kept, with their decoded values; refuses handlers, unsafe
    /// references and CSS.
    fn attributes<R>(
        &self,
        reader: &NsReader<R>,
        e: &BytesStart<'_>,
        element: &str,
    ) -> Result<Vec<(String, String)>, SvgError> {
        let mut kept = Vec::new();
        for (count, attr) in e.attributes().enumerate() {
            if count >= self.limits.max_attributes {
                let limit = self.limits.max_attributes as u64;
                return Err(SvgError::Limit {
                    what: "attributes on one element",
                    limit,
                });
            }
            let attr = attr.map_err(not_xml)?;
            if attr.key.as_namespace_binding().is_some() {
                continue; // the output declares its own namespaces
            }
            let (ns, local) = reader.resolver().resolve_attribute(attr.key);
            let local = utf8(local.into_inner())?;
            if local.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("on")) {
                return Err(SvgError::Unsafe("event handler attribute"));
            }
            let value = match attr.normalized_value(quick_xml::XmlVersion::Implicit1_0) {
                Ok(v) => v.into_owned(),
                Err(quick_xml::Error::Escape(_)) => {
                    return Err(SvgError::Unsafe("entity reference"));
                }
                Err(e) => return Err(not_xml(e)),
            };
            let name = match ns {
                ResolveResult::Bound(n) if n.as_ref() == XLINK_NS && local == "href" => {
                    check_href(element, &value)?;
                    "xlink:href".to_owned()
                }
                ResolveResult::Bound(n) if n.as_ref() == XML_NS => match local {
                    "space" | "lang" => format!("xml:{local}"),
                    _ => continue,
                },
                // `xlink:href` without its declaration (hand-written files): still a
                // reference, judged as one.
                ResolveResult::Unknown(prefix) if prefix == b"xlink" && local == "href" => {
                    check_href(element, &value)?;
                    "xlink:href".to_owned()
                }
                ResolveResult::Bound(_) | ResolveResult::Unknown(_) => continue,
                ResolveResult::Unbound if local == "href" => {
                    check_href(element, &value)?;
                    local.to_owned()
                }
                ResolveResult::Unbound if rules::is_allowed_attribute(local) => {
                    if let Some(why) = rules::value_refusal(&value) {
                        return Err(SvgError::Unsafe(why));
                    }
                    local.to_owned()
                }
                ResolveResult::Unbound => continue,
            };
            xml_chars(&value)?;
            if kept.iter().any(|(k, _)| *k == name) {
                // Two prefixes bound to one namespace name the same attribute twice.
                return Err(SvgError::NotXml(format!(
                    "the attribute {name} given twice"
                )));
            }
            kept.push((name, value));
        }
        Ok(kept)
    }

    fn end(&mut self) -> Result<(), SvgError> {
        if self.dropping > 0 {
            self.dropping -= 1;
            return Ok(());
        }
        let Some(open) = self.open.pop() else {
            return Err(SvgError::NotXml("an end tag without its start".into()));
        };
        if open.style {
            let css = self.css.take().unwrap_or_default();
            if let Some(why) = rules::css_refusal(&css) {
                return Err(SvgError::Unsafe(why));
            }
            self.write(escape(css.as_str()).as_bytes())?;
        }
        self.write(format!("</{}>", open.name).as_bytes())?;
        self.root_done |= self.open.is_empty();
        Ok(())
    }

    fn text(&mut self, text: &str) -> Result<(), SvgError> {
        xml_chars(text)?;
        if self.open.is_empty() && self.dropping == 0 {
            return match text.trim().is_empty() {
                true => Ok(()),
                false => Err(SvgError::NotXml("text outside the root element".into())),
            };
        }
        if self.dropping > 0 {
            return Ok(());
        }
        match &mut self.css {
            Some(css) => {
                css.push_str(text);
                Ok(())
            }
            None => self.write(escape(text).as_bytes()),
        }
    }

    fn write_start(
        &mut self,
        name: &str,
        attrs: &[(String, String)],
        empty: bool,
    ) -> Result<(), SvgError> {
        let mut tag = format!("<{name}");
        for (key, value) in attrs {
            tag.push_str(&format!(" {key}=\"{}\"", escape(value.as_str())));
        }
        tag.push_str(if empty { "/>" } else { ">" });
        self.write(tag.as_bytes())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), SvgError> {
        self.dst.write_all(bytes).map_err(SvgError::Io)
    }
}

/// The rule for `href` on each element: links may point anywhere a person may go;
/// `image`/`feImage` show only internal or raster `data:` images; everything else
/// (`use`, gradients, `textPath`, `mpath`...) refers inside the document only.
fn check_href(element: &str, value: &str) -> Result<(), SvgError> {
    let allowed = match rules::reference(value) {
        Reference::Internal => true,
        Reference::RasterData => matches!(element, "image" | "feImage"),
        Reference::Link => element == "a",
        Reference::Other => false,
    };
    if allowed {
        Ok(())
    } else if element == "a" {
        Err(SvgError::Unsafe("link to a script or another scheme"))
    } else {
        Err(SvgError::Unsafe("reference to an external resource"))
    }
}

/// An animation may change geometry and paint only (see `rules::is_animatable`);
/// one aimed at a reference, a handler or a style is refused, any other dropped.
fn animates_safely(attrs: &[(String, String)]) -> Result<bool, SvgError> {
    let Some((_, target)) = attrs.iter().find(|(k, _)| k == "attributeName") else {
        return Ok(true); // animateMotion moves along its path
    };
    let target = target.trim();
    let bare = target.rsplit(':').next().unwrap_or(target);
    let lower = bare.to_ascii_lowercase();
    if lower.starts_with("on") || lower == "href" || lower == "style" {
        return Err(SvgError::Unsafe(
            "animation of a reference, handler or style",
        ));
    }
    Ok(rules::is_animatable(bare) && bare == target)
}
