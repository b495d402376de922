//! Containers are validated, not just sniffed: videos without a playable structure, GIF
//! frames outside their screen and SVG that fetches from elsewhere are refused; data
//! smuggled after an image's end is not stored. On both backends.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestServer, error_code, fixture};

/// Uploads one file and returns the answer's error code (expecting 400).
async fn refused(s: &TestServer, name: &str, bytes: Vec<u8>) -> String {
    let resp = s.upload_parts(vec![(name.to_owned(), bytes)], &[]).await;
    error_code(resp, StatusCode::BAD_REQUEST).await
}

async fn accepted(s: &TestServer, name: &str, bytes: Vec<u8>) -> Value {
    let resp = s.upload_parts(vec![(name.to_owned(), bytes)], &[]).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{name}");
    let body: Value = resp.json().await.expect("json");
    body["data"][0].clone()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn videos_must_be_playable(s: TestServer) {
    let ftyp_only = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    assert_eq!(refused(&s, "clip.mp4", ftyp_only).await, "invalid_video");
    let mp4 = fixture("video/bigbuckbunny_1280x720_faststart.mp4");
    let cut = mp4[..mp4.len() / 2].to_vec();
    assert_eq!(refused(&s, "cut.mp4", cut).await, "invalid_video");
    let webm = fixture("video/bigbuckbunny_640x360_vp9_opus.webm");
    // The EBML header and the start of the segment, before its Tracks.
    let headless = webm[..60].to_vec();
    assert_eq!(refused(&s, "head.webm", headless).await, "invalid_video");
    assert!(
        s.stored_files().await.is_empty(),
        "nothing refused is stored"
    );
    let item = accepted(&s, "whole.mp4", mp4).await;
    assert_eq!(
        (item["width"].as_u64(), item["height"].as_u64()),
        (Some(1280), Some(720))
    );
}

async fn gif_frames_must_lie_inside_the_screen(s: TestServer) {
    // A 10x5 screen whose one frame claims 5000 px at x = 60000.
    let mut gif = b"GIF89a\x0a\0\x05\0\0\0\0".to_vec();
    gif.push(0x2C);
    for v in [60_000u16, 0, 5_000, 5] {
        gif.extend_from_slice(&v.to_le_bytes());
    }
    gif.extend_from_slice(b"\0\x02\x02\x44\x01\0\x3b");
    assert_eq!(refused(&s, "frame.gif", gif).await, "invalid_image");
    assert!(s.stored_files().await.is_empty());
}

async fn data_after_the_image_is_not_stored(s: TestServer) {
    let zip = b"PK\x03\x04\x14\0\0\0\0\0evil.sh#!/bin/sh\n";
    for (name, path) in [
        ("a.jpg", "jpeg/grace_hopper_512x600.jpg"),
        ("b.png", "png/chessboard_200x200_rgb16.png"),
        ("c.webp", "webp/skimage_logo_500x500_lossless.webp"),
    ] {
        let mut smuggled = fixture(path);
        smuggled.extend_from_slice(zip);
        let item = accepted(&s, name, smuggled.clone()).await;
        let stored = s.served(&item).await;
        assert!(!contains(&stored, b"PK\x03\x04"), "{name}: the ZIP is gone");
        assert_eq!(item["size"].as_u64(), Some(stored.len() as u64), "{name}");
        assert!(stored.len() < smuggled.len(), "{name}");
    }
}

async fn svg_that_fetches_from_elsewhere_is_refused(s: TestServer) {
    for svg in [
        r#"<svg xmlns="http://www.w3.org/2000/svg"><image href="https://evil.example/p.png"/></svg>"#,
        r#"<svg xmlns="http://www.w3.org/2000/svg"><image xlink:href="file:///etc/passwd"/></svg>"#,
        r#"<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(http://evil.example/a.css);</style></svg>"#,
        r#"<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(http://evil.example/g)"/></svg>"#,
    ] {
        assert_eq!(
            refused(&s, "x.svg", svg.into()).await,
            "unsafe_svg",
            "{svg}"
        );
    }
    let inside = r##"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><defs><linearGradient id="g"/></defs><rect fill="url(#g)"/><image href="data:image/png;base64,iVBORw0KGgo="/></svg>"##;
    let item = accepted(&s, "ok.svg", inside.into()).await;
    let stored = String::from_utf8(s.served(&item).await).expect("utf-8");
    for kept in [
        r##"fill="url(#g)""##,
        "data:image/png;base64,iVBORw0KGgo=",
        r#"id="g""#,
    ] {
        assert!(stored.contains(kept), "{kept} is kept: {stored}");
    }
}

on_every_backend!(
    videos_must_be_playable,
    gif_frames_must_lie_inside_the_screen,
    data_after_the_image_is_not_stored,
    svg_that_fetches_from_elsewhere_is_refused,
);
