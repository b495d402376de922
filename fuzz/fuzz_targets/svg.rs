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

fn css_is_safe(css: &str) -> bool {
    let css: String = css
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    !css.contains("@import")
        && !css.contains("javascript:")
        && css.match_indices("url(").all(|(at, _)| {
            let arg = css[at + 4..].trim_start_matches(['"', '\'']);
            arg.starts_with('#') || arg.starts_with("data:image/")
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
            assert!(css_is_safe(&node.text().unwrap_or_default()), "{text}");
        }
        for a in node.attributes() {
            let attr = a.name().to_ascii_lowercase();
            assert!(!attr.starts_with("on"), "{attr}");
            if attr == "style" || a.value().contains("url(") {
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
