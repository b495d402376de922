//! What a cleaned SVG may hold: the allow-lists of elements, attributes and animated
//! attributes, and the rules for references (`href`, CSS `url()`) and CSS. Everything
//! here judges text already decoded (XML character references resolved, CSS escapes
//! undone), so an encoded scheme (`javascript&#58;`, `u\72l(`) is seen as what it is.

/// The SVG namespace; elements in it (or in none, for files that declare none) are SVG.
pub const SVG_NS: &[u8] = b"http://www.w3.org/2000/svg";
pub const XLINK_NS: &[u8] = b"http://www.w3.org/1999/xlink";
pub const XML_NS: &[u8] = b"http://www.w3.org/XML/1998/namespace";

/// Elements that are refused in any namespace (the file is active content).
pub fn is_forbidden_element(local: &str) -> Option<&'static str> {
    match local.to_ascii_lowercase().as_str() {
        "script" | "handler" | "listener" => Some("script element"),
        "foreignobject" => Some("foreignObject"),
        "iframe" | "object" | "embed" | "frame" | "frameset" | "applet" | "base" => {
            Some("embedded document")
        }
        _ => None,
    }
}

/// SVG elements kept; any other element is dropped with its content.
pub fn is_allowed_element(local: &str) -> bool {
    matches!(
        local,
        "svg"
            | "g"
            | "defs"
            | "symbol"
            | "use"
            | "title"
            | "desc"
            | "switch"
            | "view"
            | "a"
            | "image"
            | "style"
            | "path"
            | "rect"
            | "circle"
            | "ellipse"
            | "line"
            | "polyline"
            | "polygon"
            | "text"
            | "tspan"
            | "textPath"
            | "linearGradient"
            | "radialGradient"
            | "stop"
            | "pattern"
            | "clipPath"
            | "mask"
            | "marker"
            | "filter"
            | "feBlend"
            | "feColorMatrix"
            | "feComponentTransfer"
            | "feComposite"
            | "feConvolveMatrix"
            | "feDiffuseLighting"
            | "feDisplacementMap"
            | "feDistantLight"
            | "feDropShadow"
            | "feFlood"
            | "feFuncA"
            | "feFuncB"
            | "feFuncG"
            | "feFuncR"
            | "feGaussianBlur"
            | "feImage"
            | "feMerge"
            | "feMergeNode"
            | "feMorphology"
            | "feOffset"
            | "fePointLight"
            | "feSpecularLighting"
            | "feSpotLight"
            | "feTile"
            | "feTurbulence"
            | "animate"
            | "animateTransform"
            | "animateMotion"
            | "set"
            | "mpath"
    )
}

/// True for the animation elements, whose target and values are checked.
pub fn is_animation(local: &str) -> bool {
    matches!(
        local,
        "animate" | "animateTransform" | "animateMotion" | "set"
    )
}

/// Attributes (without a namespace) kept on any allowed element; others are dropped.
pub fn is_allowed_attribute(name: &str) -> bool {
    matches!(
        name,
        // core and structure
        "id" | "class" | "style" | "lang" | "tabindex" | "role" | "focusable"
            | "version" | "baseProfile" | "viewBox" | "preserveAspectRatio"
            | "width" | "height" | "x" | "y" | "x1" | "y1" | "x2" | "y2" | "cx" | "cy"
            | "r" | "rx" | "ry" | "fx" | "fy" | "fr" | "d" | "points" | "pathLength"
            | "transform" | "href" | "requiredExtensions" | "systemLanguage"
            | "target" | "type" | "media" | "aria-label" | "aria-hidden"
            | "aria-labelledby" | "aria-describedby"
            // presentation
            | "fill" | "fill-opacity" | "fill-rule" | "stroke" | "stroke-width"
            | "stroke-linecap" | "stroke-linejoin" | "stroke-miterlimit"
            | "stroke-dasharray" | "stroke-dashoffset" | "stroke-opacity" | "opacity"
            | "color" | "color-interpolation" | "color-interpolation-filters"
            | "color-rendering" | "shape-rendering" | "text-rendering" | "image-rendering"
            | "display" | "visibility" | "overflow" | "clip" | "clip-path" | "clip-rule"
            | "mask" | "filter" | "marker-start" | "marker-mid" | "marker-end"
            | "paint-order" | "vector-effect" | "mix-blend-mode" | "isolation"
            | "stop-color" | "stop-opacity" | "flood-color" | "flood-opacity"
            | "lighting-color" | "font-family" | "font-size" | "font-size-adjust"
            | "font-stretch" | "font-style" | "font-variant" | "font-weight"
            | "text-anchor" | "text-decoration" | "dominant-baseline"
            | "alignment-baseline" | "baseline-shift" | "letter-spacing" | "word-spacing"
            | "writing-mode" | "direction" | "unicode-bidi" | "dx" | "dy" | "rotate"
            | "textLength" | "lengthAdjust" | "startOffset" | "method" | "spacing" | "side"
            // gradients, patterns, clipping, markers
            | "gradientUnits" | "gradientTransform" | "spreadMethod" | "offset"
            | "patternUnits" | "patternContentUnits" | "patternTransform"
            | "clipPathUnits" | "maskUnits" | "maskContentUnits" | "markerUnits"
            | "markerWidth" | "markerHeight" | "refX" | "refY" | "orient"
            // filters
            | "filterUnits" | "primitiveUnits" | "in" | "in2" | "result" | "mode"
            | "operator" | "k1" | "k2" | "k3" | "k4" | "values" | "tableValues"
            | "slope" | "intercept" | "amplitude" | "exponent" | "stdDeviation"
            | "edgeMode" | "order" | "kernelMatrix" | "divisor" | "bias" | "targetX"
            | "targetY" | "kernelUnitLength" | "preserveAlpha" | "surfaceScale"
            | "diffuseConstant" | "specularConstant" | "specularExponent" | "azimuth"
            | "elevation" | "z" | "pointsAtX" | "pointsAtY" | "pointsAtZ"
            | "limitingConeAngle" | "scale" | "xChannelSelector" | "yChannelSelector"
            | "radius" | "baseFrequency" | "numOctaves" | "seed" | "stitchTiles"
            // animation timing and values (targets and values are checked)
            | "attributeName" | "attributeType" | "begin" | "dur" | "end" | "min" | "max"
            | "restart" | "repeatCount" | "repeatDur" | "fill-mode" | "calcMode"
            | "keyTimes" | "keySplines" | "keyPoints" | "from" | "to" | "by" | "additive"
            | "accumulate" | "path"
    )
}

/// Attributes an animation may change: geometry and paint, never a reference, an event
/// handler or a style (through which a reference could come).
pub fn is_animatable(name: &str) -> bool {
    matches!(
        name,
        "x" | "y"
            | "x1"
            | "y1"
            | "x2"
            | "y2"
            | "cx"
            | "cy"
            | "r"
            | "rx"
            | "ry"
            | "fx"
            | "fy"
            | "width"
            | "height"
            | "d"
            | "points"
            | "transform"
            | "offset"
            | "opacity"
            | "fill"
            | "fill-opacity"
            | "stroke"
            | "stroke-width"
            | "stroke-opacity"
            | "stroke-dasharray"
            | "stroke-dashoffset"
            | "stop-color"
            | "stop-opacity"
            | "visibility"
            | "display"
            | "font-size"
            | "letter-spacing"
            | "word-spacing"
            | "color"
            | "flood-color"
            | "flood-opacity"
            | "viewBox"
            | "stdDeviation"
            | "dx"
            | "dy"
            | "rotate"
            | "startOffset"
            | "baseFrequency"
            | "values"
            | "in"
            | "result"
            | "mode"
            | "operator"
            | "k1"
            | "k2"
            | "k3"
            | "k4"
    )
}

/// What a reference is, once surrounding whitespace and the control characters a
/// browser's URL parser skips are removed.
#[derive(Debug, PartialEq, Eq)]
pub enum Reference {
    /// Nothing, or `#id`: inside the document.
    Internal,
    /// A `data:` URL of a raster image type (shown, never run).
    RasterData,
    /// A link a person follows: http(s), mailto, or relative.
    Link,
    /// Anything else that would fetch or run: another scheme, `data:` of other types.
    Other,
}

pub fn reference(raw: &str) -> Reference {
    let cleaned: String = raw
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && !c.is_control())
        .collect();
    let lower = cleaned.to_ascii_lowercase();
    if lower.is_empty() || lower.starts_with('#') {
        return Reference::Internal;
    }
    if let Some(data) = lower.strip_prefix("data:") {
        let raster = [
            "image/png",
            "image/jpeg",
            "image/jpg",
            "image/gif",
            "image/webp",
        ];
        let media = data.split([';', ',']).next().unwrap_or("");
        return if raster.contains(&media) {
            Reference::RasterData
        } else {
            Reference::Other
        };
    }
    let scheme = lower
        .find(':')
        .filter(|at| !lower[..*at].contains(['/', '?', '#']))
        .map(|at| &lower[..at]);
    match scheme {
        None | Some("http" | "https" | "mailto") => Reference::Link,
        Some(_) => Reference::Other,
    }
}

/// Nesting of CSS blocks and functions read before a style is refused as too deep.
const CSS_DEPTH: usize = 64;

/// Why a CSS text (a `style` attribute or element) is refused, if it is. Read by a CSS
/// tokenizer (Servo's cssparser), in one linear pass, so strings, comments and escapes
/// are what a browser sees: `@import`; `url()` (quoted or not) or `src()` to anything
/// but a fragment or a raster `data:` image; `expression()`, `image-set()`, bindings and
/// behaviors; malformed URLs or strings (a browser recovers from those in ways a check
/// should not guess).
pub fn css_refusal(css: &str) -> Option<&'static str> {
    css_tokens(&mut cssparser::Parser::new(css), 0).err()
}

fn css_tokens(p: &mut cssparser::Parser<'_>, depth: usize) -> Result<(), &'static str> {
    use cssparser::Token;
    if depth > CSS_DEPTH {
        return Err("CSS nested too deeply");
    }
    while let Ok(token) = p.next_including_whitespace_and_comments() {
        let block = match token {
            Token::AtKeyword(name) if name.eq_ignore_ascii_case("import") => {
                return Err("CSS @import");
            }
            Token::Ident(name)
                if name.eq_ignore_ascii_case("-moz-binding")
                    || name.eq_ignore_ascii_case("behavior") =>
            {
                return Err("CSS binding or behavior");
            }
            Token::UnquotedUrl(url) => {
                css_url(url)?;
                continue;
            }
            Token::Function(name) => {
                let name = name.to_ascii_lowercase();
                match name.as_str() {
                    "url" | "src" => Block::Url,
                    "expression" => return Err("CSS expression()"),
                    "image-set" | "-webkit-image-set" => return Err("CSS image-set()"),
                    _ => Block::Plain,
                }
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                Block::Plain
            }
            Token::BadUrl(_) | Token::BadString(_) => return Err("malformed CSS URL or string"),
            _ => continue,
        };
        p.parse_nested_block(|p| {
            let checked = match block {
                Block::Url => css_url_argument(p),
                Block::Plain => Ok(()),
            }
            .and_then(|()| css_tokens(p, depth + 1));
            checked.map_err(cssparser::ParseError::<&'static str>::custom)
        })
        .map_err(|e| match e.kind {
            cssparser::ParseErrorKind::Custom(why) => why,
            cssparser::ParseErrorKind::Basic(_) => "malformed CSS",
        })?;
    }
    Ok(())
}

/// What follows a block-opening token.
#[derive(Clone, Copy)]
enum Block {
    /// `url(` or `src(`: one quoted URL, checked.
    Url,
    Plain,
}

/// The argument of `url("...")` or `src("...")`: one string, to an allowed place.
fn css_url_argument(p: &mut cssparser::Parser<'_>) -> Result<(), &'static str> {
    match p.next() {
        Ok(cssparser::Token::QuotedString(url)) => css_url(url),
        _ => Err("CSS url() without one quoted URL"),
    }
}

fn css_url(url: &str) -> Result<(), &'static str> {
    match reference(url) {
        Reference::Internal | Reference::RasterData => Ok(()),
        Reference::Link | Reference::Other => Err("CSS url() to an external resource"),
    }
}

/// A presentation value with `url(...)` in it (`fill="url(#g)"`): only internal ones.
pub fn value_refusal(value: &str) -> Option<&'static str> {
    css_refusal(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_judged_after_decoding_and_skipping_what_browsers_skip() {
        assert_eq!(reference("#g"), Reference::Internal);
        assert_eq!(reference(""), Reference::Internal);
        assert_eq!(
            reference("data:image/png;base64,iVBO"),
            Reference::RasterData
        );
        assert_eq!(reference(" DATA:image/webp,xx"), Reference::RasterData);
        assert_eq!(
            reference("data:image/svg+xml;base64,PHN2Zz4="),
            Reference::Other
        );
        assert_eq!(reference("data:text/html,<script>"), Reference::Other);
        assert_eq!(reference("https://example.com/a"), Reference::Link);
        assert_eq!(reference("about.html"), Reference::Link);
        assert_eq!(reference("/x/y?a=b:c"), Reference::Link);
        assert_eq!(reference("mailto:a@b.c"), Reference::Link);
        assert_eq!(reference("java\tscript:alert(1)"), Reference::Other);
        assert_eq!(reference("JavaScript:alert(1)"), Reference::Other);
        assert_eq!(reference("\u{1}javascript:x"), Reference::Other);
        assert_eq!(reference("file:///etc/passwd"), Reference::Other);
    }

    #[test]
    fn css_escapes_and_comments_do_not_hide_fetches() {
        assert_eq!(css_refusal("fill: url(#g); stroke: red"), None);
        assert_eq!(css_refusal("fill:url( '#g' )"), None);
        assert!(css_refusal("fill: url(https://evil.example/p)").is_some());
        assert!(css_refusal("fill: u\\72l(https://evil.example/p)").is_some());
        assert!(css_refusal("fill: u\\000072 l(https://evil.example/p)").is_some());
        assert!(css_refusal("@im\\70 ort 'https://evil.example/a.css'").is_some());
        assert!(css_refusal("a{background:url(//evil.example/x)}").is_some());
        assert!(css_refusal("x{behavior: url(#default#time2)}").is_some());
        assert!(css_refusal("x{width: expression(alert(1))}").is_some());
        assert!(css_refusal("x{background-image: image-set('a.png' 1x)}").is_some());
        assert!(css_refusal("x{background: url(data:image/png;base64,iVBO)}").is_none());
        assert!(css_refusal("@font-face{src: url(https://evil.example/f.woff)}").is_some());
        assert!(css_refusal("x{fill: src('https://evil.example/p')}").is_some());
    }

    #[test]
    fn css_strings_hide_nothing_from_the_check() {
        // A "/*" inside a string is no comment: what follows is read.
        assert!(
            css_refusal("@charset \"/*\"; @import url(https://evil.example/x); /**/").is_some()
        );
        assert!(
            css_refusal("x{font-family:\"/*\";cursor:url(https://evil.example/c)/**/}").is_some()
        );
        assert!(css_refusal("x{content: \"url(https://fine.example/just-text)\"}").is_none());
        assert!(css_refusal("x{background: url(\"https://evil.example/unclosed").is_some());
        assert!(css_refusal("x{background: url(https://evil.example/a b)}").is_some());
    }

    #[test]
    fn css_checks_are_linear_and_bounded_in_depth() {
        // Once quadratic: every url( scanned to the end of the input.
        let many = "url(#".repeat(200_000);
        assert!(css_refusal(&many).is_some());
        let deep = format!("{}{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(css_refusal(&deep), Some("CSS nested too deeply"));
    }
}
