//! The SVG check through a real parse: every bypass found by review is a case here.

use super::*;

fn cleaned(svg: &str) -> Result<(String, Option<(u32, u32)>), SvgError> {
    let mut out = Vec::new();
    let dims = clean(svg.as_bytes(), &mut out, Limits::default())?;
    let out = String::from_utf8(out).expect("the output is UTF-8");
    Ok((out, dims.map(|d| (d.width, d.height))))
}

fn dims(svg: &str) -> Option<(u32, u32)> {
    cleaned(svg).expect("a safe svg").1
}

fn unsafe_reason(svg: &str) -> &'static str {
    match cleaned(svg) {
        Err(SvgError::Unsafe(why)) => why,
        other => panic!("{svg}: expected a refusal, got {other:?}"),
    }
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
    for (svg, why) in [
        (r#"<svg><script>alert(1)</script></svg>"#, "script element"),
        (
            r#"<svg onload="alert(1)"></svg>"#,
            "event handler attribute",
        ),
        (
            r#"<svg><rect ONCLICK='x'/></svg>"#,
            "event handler attribute",
        ),
        (
            r#"<svg><a href="JavaScript:alert(1)"/></svg>"#,
            "link to a script or another scheme",
        ),
        (
            r#"<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg>&x;</svg>"#,
            "DOCTYPE with declarations",
        ),
        (
            r#"<svg><foreignObject><div/></foreignObject></svg>"#,
            "foreignObject",
        ),
    ] {
        assert_eq!(unsafe_reason(svg), why, "{svg}");
    }
}

#[test]
fn refuses_the_bypasses_found_in_review() {
    for svg in [
        // A prefix bound to the SVG namespace is still a script.
        r#"<svg xmlns="http://www.w3.org/2000/svg"><s:script xmlns:s="http://www.w3.org/2000/svg">alert(1)</s:script></svg>"#,
        r#"<svg xmlns:h="http://www.w3.org/1999/xhtml"><h:script>alert(1)</h:script></svg>"#,
        // An entity-encoded scheme.
        r#"<svg><a href="javascript&#58;alert(1)"><text>x</text></a></svg>"#,
        r#"<svg><a xlink:href="&#106;avascript:alert(1)" xmlns:xlink="http://www.w3.org/1999/xlink"/></svg>"#,
        // Character references and CSS escapes inside CSS.
        r#"<svg><rect style="fill:u&#114;l(https://evil.example/p)"/></svg>"#,
        r#"<svg><style>@im\70 ort "https://evil.example/a.css";</style></svg>"#,
        r#"<svg><style><![CDATA[rect{fill:url("https://evil.example/p")}]]></style></svg>"#,
        // data: URLs that are documents, not raster images.
        r#"<svg><use href="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=#x"/></svg>"#,
        r#"<svg><image href="data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;"/></svg>"#,
        r#"<svg><rect style="fill:url(data:image/svg+xml,abc)"/></svg>"#,
        // Animations aimed at references and handlers.
        r#"<svg><a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a></svg>"#,
        r#"<svg><a><animate attributeName="xlink:href" values="javascript:alert(1)"/></a></svg>"#,
        r#"<svg><set attributeName="onmouseover" to="alert(1)"/></svg>"#,
        // A DOCTYPE whose ATTLIST would give the root a default handler.
        r#"<!DOCTYPE svg [<!ATTLIST svg onload CDATA "alert(1)">]><svg></svg>"#,
        // Entities that no DTD defines here.
        r#"<svg><text>&custom;</text></svg>"#,
    ] {
        assert!(
            matches!(cleaned(svg), Err(SvgError::Unsafe(_))),
            "{svg}: {:?}",
            cleaned(svg)
        );
    }
}

#[test]
fn refuses_references_outside_the_document() {
    for svg in [
        r#"<svg><image href="http://evil.example/x.png"/></svg>"#,
        r#"<svg xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="https://evil.example/x.png"/></svg>"#,
        r#"<svg><use href="file:///etc/passwd#x"/></svg>"#,
        r#"<svg><image href="other.png"/></svg>"#,
        r#"<svg><image href="//evil.example/x.png"/></svg>"#,
        r#"<svg><image href="&#104;ttp://evil.example/x.png"/></svg>"#,
        r#"<svg><feImage href="http://evil.example/x"/></svg>"#,
        r#"<svg><rect style="fill:url(http://evil.example/p.svg#g)"/></svg>"#,
        r#"<svg><rect fill="url(http://evil.example/p.svg#g)"/></svg>"#,
        r#"<svg><style>rect { fill: url( 'https://evil.example/p' ) }</style></svg>"#,
        r#"<svg><style>@import "https://evil.example/a.css";</style></svg>"#,
    ] {
        assert!(
            matches!(cleaned(svg), Err(SvgError::Unsafe(_))),
            "{svg}: {:?}",
            cleaned(svg)
        );
    }
}

#[test]
fn keeps_references_inside_the_document_links_and_raster_data() {
    let svg = r##"<svg width="4" height="4" xmlns:xlink="http://www.w3.org/1999/xlink">
        <defs><linearGradient id="g"/></defs>
        <rect fill="url(#g)" style="stroke: url( '#g' )"/>
        <use xlink:href="#g"/>
        <image href="data:image/png;base64,iVBORw0KGgo="/>
        <a href="https://example.com/about"><text>about</text></a>
    </svg>"##;
    let (out, size) = cleaned(svg).expect("safe");
    assert_eq!(size, Some((4, 4)));
    assert!(out.contains(r#"href="https://example.com/about""#), "{out}");
    assert!(out.contains(r##"xlink:href="#g""##), "{out}");
}

#[test]
fn writes_out_only_what_was_judged() {
    let svg = r#"<?xml version="1.0"?>
<?xml-stylesheet href="https://evil.example/x.css" type="text/css"?>
<!-- a comment -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" width="2" height="2" inkscape:version="1.0">
  <inkscape:namedview><inkscape:grid/></inkscape:namedview>
  <metadata><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></metadata>
  <unknown-element><rect/></unknown-element>
  <text x="0" y="1">a &lt; b &amp; c &#233;</text>
  <rect width="2" height="2" data-x="1" fill="red"><set attributeName="fill" to="blue"/></rect>
</svg>"#;
    let (out, _) = cleaned(svg).expect("safe");
    for gone in [
        "<?", "<!--", "inkscape", "rdf", "metadata", "unknown", "data-x",
    ] {
        assert!(!out.contains(gone), "{gone} is dropped: {out}");
    }
    assert!(
        out.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#),
        "{out}"
    );
    assert!(out.contains("a &lt; b &amp; c é"), "{out}");
    assert!(
        out.contains(r#"<set attributeName="fill" to="blue"/>"#),
        "{out}"
    );
    // The output parses and cleans to itself.
    assert_eq!(cleaned(&out).expect("clean output").0, out);
}

#[test]
fn input_that_made_the_old_lexer_panic_is_a_clear_error() {
    for svg in ["<svg =\"x\"é>", "<svg é=\"", "<svg><é", "<svg a='\u{10000}"] {
        assert!(
            matches!(cleaned(svg), Err(SvgError::NotXml(_) | SvgError::NoRoot)),
            "{svg:?}: {:?}",
            cleaned(svg)
        );
    }
}

#[test]
fn every_bound_is_a_clear_refusal() {
    let limits = Limits {
        max_bytes: 4096,
        max_depth: 8,
        max_elements: 50,
        max_attributes: 4,
    };
    let deep = format!("<svg>{}{}</svg>", "<g>".repeat(8), "</g>".repeat(8));
    let many = format!("<svg>{}</svg>", "<rect/>".repeat(60));
    let wide = r#"<svg><rect x="1" y="1" width="1" height="1" rx="1"/></svg>"#.to_owned();
    let long = format!("<svg><text>{}</text></svg>", "x".repeat(10_000));
    for (svg, what) in [
        (deep, "levels of nesting"),
        (many, "elements"),
        (wide, "attributes on one element"),
        (long, "bytes"),
    ] {
        let got = clean(svg.as_bytes(), &mut std::io::sink(), limits);
        assert!(
            matches!(got, Err(SvgError::Limit { what: w, .. }) if w == what),
            "{what}: {got:?}"
        );
    }
}

#[test]
fn text_and_comments_are_not_attributes() {
    let svg = r#"<svg width="1" height="1"><!-- <a onclick="x"> --><text>one = two</text></svg>"#;
    assert_eq!(dims(svg), Some((1, 1)));
}

#[test]
fn a_style_inside_a_style_cannot_smuggle_css_past_the_check() {
    let nested = r#"<svg xmlns="http://www.w3.org/2000/svg"><style><style></style>@import url(https://evil.example/x.css);</style></svg>"#;
    assert_eq!(unsafe_reason(nested), "an element inside <style>");
    let comment_in_string = r#"<svg xmlns="http://www.w3.org/2000/svg"><style>@charset "/*"; @import url(https://evil.example/x.css); /**/</style></svg>"#;
    assert_eq!(unsafe_reason(comment_in_string), "CSS @import");
    let attr = r#"<svg xmlns="http://www.w3.org/2000/svg"><rect style='font-family:"/*";cursor:url(https://evil.example/c)/**/'/></svg>"#;
    assert_eq!(unsafe_reason(attr), "CSS url() to an external resource");
}

#[test]
fn what_is_written_is_well_formed_xml() {
    for svg in [
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a\u{1}b</text></svg>",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a&#1;b</text></svg>",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>a\u{FFFE}b</text></svg>",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect fill=\"&#0;\"/></svg>",
    ] {
        assert!(cleaned(svg).is_err(), "{svg:?}: {:?}", cleaned(svg));
    }
    // Two prefixes for the xlink namespace would write xlink:href twice.
    let twice = r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:a="http://www.w3.org/1999/xlink" xmlns:b="http://www.w3.org/1999/xlink"><use a:href="#x" b:href="#y"/></svg>"##;
    assert!(matches!(cleaned(twice), Err(SvgError::NotXml(_))));
    // And what passes parses again, to the same output.
    let (out, _) = cleaned(
        r##"<svg xmlns="http://www.w3.org/2000/svg"><style>a{fill:url(#g)}</style><text>x &amp; y</text></svg>"##,
    )
    .expect("clean");
    assert_eq!(cleaned(&out).expect("again").0, out);
}
