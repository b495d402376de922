//! The SVG check and cleaning: no panic; what it accepts it writes out as well-formed XML
//! that a different parser (roxmltree) finds free of scripts (in any namespace), event
//! handlers, processing instructions and references outside the document (a link on
//! `<a>` and raster `data:` images aside); and cleaning that output again changes nothing.
#![no_main]

use darkroom::media::svg::{Limits, clean};
use libfuzzer_sys::fuzz_target;

fn internal(value: &str) -> bool {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect();
    let v = v.to_ascii_lowercase();
    v.is_empty() || v.starts_with('#')
}

/// Whether `code` ends in the CSS function `url(`: not the tail of a longer name
/// (`overflourl(` is a function of its own, which fetches nothing), of a hash (`#url(`)
/// or of an at-keyword (`@url(`).
fn opens_url(code: &str) -> bool {
    let lower = code.to_ascii_lowercase();
    let Some(before) = lower.strip_suffix("url(") else {
        return false;
    };
    !before.chars().last().is_some_and(|c| {
        c.is_alphanumeric() || matches!(c, '-' | '_' | '\\' | '#' | '@') || !c.is_ascii()
    })
}

/// A second reading of CSS, independent of the server's tokenizer: outside strings and
/// comments, no `@import` and every `url(` (its argument quoted or not) internal or a
/// raster `data:` image. Escapes are not decoded: an escaped keyword is something the
/// server's check must refuse on its own (and its unit tests pin that).
fn css_is_safe(css: &str) -> bool {
    let chars: Vec<char> = css.chars().collect();
    let mut code = String::new(); // the CSS outside strings and comments
    let mut urls = Vec::new(); // each url( argument, as written
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
                code.push(' ');
            }
            q @ ('"' | '\'') => {
                let start = i + 1;
                i += 1;
                // As CSS reads it: an unescaped line break ends a string (a bad one), and
                // the text after it is code again.
                while i < chars.len() && chars[i] != q && !matches!(chars[i], '\n' | '\r' | '\x0c')
                {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                let string: String = chars[start..i.min(chars.len())].iter().collect();
                if opens_url(code.trim_end()) {
                    urls.push(string);
                }
                code.push_str("\"\"");
                if chars.get(i) == Some(&q) {
                    i += 1; // the closing quote; a line break stays, as code
                }
            }
            c => {
                code.push(c);
                if opens_url(&code) {
                    let rest: String = chars[i + 1..].iter().collect();
                    let arg = rest.trim_start();
                    if !arg.starts_with(['"', '\'']) {
                        urls.push(arg.split(')').next().unwrap_or("").to_owned());
                    }
                }
                i += 1;
            }
        }
    }
    let code = code.to_ascii_lowercase();
    // `@import` as an at-keyword of its own (`@importill-opacity` is another name).
    let imports = code.match_indices("@import").any(|(i, m)| {
        !code[i + m.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '\\') || !c.is_ascii())
    });
    !imports
        && urls.iter().all(|u| {
            let u = u.trim().to_ascii_lowercase();
            internal(&u) || u.starts_with("data:image/") // `url()`: this document
        })
}

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if clean(data, &mut out, Limits::default()).is_err() {
        return;
    }
    let text = std::str::from_utf8(&out).expect("the cleaned SVG is UTF-8");
    let doc = roxmltree::Document::parse(text).expect("the cleaned SVG is well-formed XML");
    for node in doc.descendants() {
        assert!(!node.is_pi(), "no processing instruction");
        if !node.is_element() {
            continue;
        }
        let name = node.tag_name().name().to_ascii_lowercase();
        assert!(name != "script" && name != "foreignobject", "{name}");
        if name == "style" {
            assert!(
                node.children().all(|c| c.is_text()),
                "a style holds text only: {text}"
            );
            let css: String = node.children().filter_map(|c| c.text()).collect();
            assert!(css_is_safe(&css), "{text}");
        }
        for a in node.attributes() {
            let attr = a.name().to_ascii_lowercase();
            assert!(!attr.starts_with("on"), "{attr}");
            // Path data (`d`, `points`) is geometry, never read as CSS: no `url(` there
            // fetches anything.
            let geometry = matches!(attr.as_str(), "d" | "points");
            if attr == "style" || (a.value().contains("url(") && !geometry) {
                assert!(css_is_safe(a.value()), "{attr}={}", a.value());
            }
            if attr == "href" {
                let v = a.value().trim().to_ascii_lowercase();
                let ok = internal(&v)
                    || (matches!(name.as_str(), "image" | "feimage")
                        && v.starts_with("data:image/"))
                    || (name == "a" && !v.contains("script:") && !v.starts_with("data:"));
                assert!(ok, "<{name} href={v:?}>");
            }
        }
    }
    let mut again = Vec::new();
    clean(out.as_slice(), &mut again, Limits::default()).expect("the output is accepted");
    assert_eq!(again, out, "cleaning is idempotent");
});
