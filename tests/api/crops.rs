//! Crop presets (`delivery.presets`): made by the processing job next to the variants,
//! exactly their size, cut around the focal point; made again under new URLs when the
//! focal point moves; removed with their item. On both backends.

use std::io::Cursor;

use darkroom::config::Config;
use darkroom::model::Presets;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestServer;

on_every_backend!(every_preset_of_every_orientation_has_exactly_its_size);
on_every_backend!(crops_follow_the_focal_point_and_the_old_ones_go);

#[tokio::test]
async fn a_failed_rerun_keeps_the_variants_and_a_delete_removes_them() {
    let s = TestServer::spawn_with(presets(PRESETS)).await;
    let resp = s
        .upload_parts(vec![("marked.png".into(), marked(50.0, 50.0))], &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.expect("json")["data"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let first = s.until_processed(&id).await;
    // The original goes missing; a moved focal point re-runs the job for crops, which fails.
    s.remove(&crate::common::storage_key(&first)).await;
    let path = format!("/api/v1/media/{id}");
    let patched = s
        .send_json(Method::PATCH, &path, json!({"focalX": 10}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let after = s.until_processed(&id).await;
    assert_eq!(after["status"], "ready", "the item stays usable: {after}");
    assert_eq!(after["variants"], first["variants"], "its variants stay");
    assert!(
        after.get("crops").is_none(),
        "the stale crops went: {after}"
    );
    let variants: Vec<String> = first["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| v["url"].as_str().expect("url").to_owned())
        .collect();
    assert!(!variants.is_empty());
    for url in &variants {
        assert_eq!(s.get(url, None).await.status(), StatusCode::OK, "{url}");
    }
    // A delete removes every file the item had.
    assert_eq!(s.delete_item(&id).await.status(), StatusCode::OK);
    for url in &variants {
        s.until_not_found(url).await;
    }
}

const PRESETS: &str = r#"presets = { card = "1200x630", square = "400x400", tall = "300x600" }"#;

/// The same server `on_every_backend!` gave, restarted with the presets above.
async fn with_presets(s: TestServer) -> TestServer {
    TestServer::spawn_in(s.stop().await, presets(PRESETS)).await
}

async fn picture(s: &TestServer, url: &str) -> image::DynamicImage {
    let resp = s.get(url, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    let bytes = resp.bytes().await.expect("bytes");
    image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("a WebP")
}

/// Every crop's file is a WebP of exactly the size listed.
async fn each_has_its_size(s: &TestServer, crops: &[(String, u64, u64, String)]) {
    for (name, w, h, url) in crops {
        let img = picture(s, url).await;
        let size = (u64::from(img.width()), u64::from(img.height()));
        assert_eq!(size, (*w, *h), "{name}");
    }
}

/// `name` → (width, height, url) of an item's crops.
fn crops(item: &Value) -> Vec<(String, u64, u64, String)> {
    let list = item["crops"].as_array().expect("crops");
    list.iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().expect(k).to_owned();
            let n = |k: &str| c[k].as_u64().expect(k);
            (s("name"), n("width"), n("height"), s("url"))
        })
        .collect()
}

async fn every_preset_of_every_orientation_has_exactly_its_size(s: TestServer) {
    let s = with_presets(s).await;
    let fixtures: Vec<String> = (1..=8)
        .map(|n| format!("jpeg/orientation/Landscape_{n}.jpg"))
        .collect();
    let names: Vec<&str> = fixtures.iter().map(String::as_str).collect();
    for item in s.upload_waiting(&names).await {
        let made = crops(&item);
        let listed: Vec<(&str, u64, u64)> = made
            .iter()
            .map(|(n, w, h, _)| (n.as_str(), *w, *h))
            .collect();
        assert_eq!(
            listed,
            [
                ("card", 1200, 630),
                ("square", 400, 400),
                ("tall", 300, 600)
            ],
            "{item}"
        );
        each_has_its_size(&s, &made).await;
        // The public view lists them too.
        let id = item["id"].as_str().expect("id");
        let public = s.get_json(&format!("/api/v1/public/media/{id}")).await;
        assert_eq!(crops(&public["data"]), made);
    }
}

/// The variants' files and their modification times (local storage; empty on S3).
fn variant_files(s: &TestServer, item: &Value) -> Vec<(String, std::time::SystemTime)> {
    if s.is_s3() {
        return Vec::new();
    }
    let variants = item["variants"].as_array().expect("variants");
    variants
        .iter()
        .map(|v| {
            let key = crate::common::storage_key(v);
            let path = s.library.path().join("uploads").join(&key);
            let modified = std::fs::metadata(&path).and_then(|m| m.modified());
            (key, modified.expect("variant file"))
        })
        .collect()
}

/// A grey 1600x900 PNG with a red 40x40 square centred at (x%, y%).
fn marked(x: f64, y: f64) -> Vec<u8> {
    let (cx, cy) = (x / 100.0 * 1600.0, y / 100.0 * 900.0);
    let img = image::RgbImage::from_fn(1600, 900, |px, py| {
        let inside = (f64::from(px) - cx).abs() < 20.0 && (f64::from(py) - cy).abs() < 20.0;
        if inside {
            image::Rgb([230, 20, 20])
        } else {
            image::Rgb([120, 120, 120])
        }
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

/// Red pixels of the marker in a crop.
fn marker_pixels(img: &image::DynamicImage) -> usize {
    let rgb = img.to_rgb8();
    rgb.pixels()
        .filter(|p| p[0] > 180 && p[1] < 80 && p[2] < 80)
        .count()
}

async fn crops_follow_the_focal_point_and_the_old_ones_go(s: TestServer) {
    let s = with_presets(s).await;
    // Each corner, and near the centre (a move the centre's frame already covers).
    for (x, y) in [
        (3.0, 4.0),
        (97.0, 4.0),
        (3.0, 96.0),
        (97.0, 96.0),
        (45.0, 55.0),
    ] {
        let resp = s
            .upload_parts(vec![("marked.png".into(), marked(x, y))], &[])
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let id = resp.json::<Value>().await.expect("json")["data"][0]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let first = s.until_processed(&id).await;
        let before = crops(&first);
        // Made around the centre, a corner's marker is outside the square.
        let square = picture(&s, &before[1].3).await;
        assert_eq!(marker_pixels(&square) > 0, x == 45.0, "at {x},{y}");

        let variants_before = variant_files(&s, &first);
        let path = format!("/api/v1/media/{id}");
        let patched = s
            .send_json(Method::PATCH, &path, json!({"focalX": x, "focalY": y}))
            .await;
        assert_eq!(patched.status(), StatusCode::OK);
        let moved = s.until_processed(&id).await;
        assert_eq!(moved["variants"], first["variants"], "the variants stay");
        assert_eq!(
            variant_files(&s, &moved),
            variants_before,
            "only the crops were made again"
        );
        let after = crops(&moved);
        assert_eq!(after.len(), 3, "{moved}");
        for ((name, w, h, old_url), (_, _, _, url)) in before.iter().zip(&after) {
            assert_ne!(old_url, url, "{name}: a new URL for the new focal point");
            assert!(url.ends_with(&format!("-{w}x{h}-v2.webp")), "{url}");
            let img = picture(&s, url).await;
            assert!(
                marker_pixels(&img) > 50,
                "{name} at {x},{y}: the marker is in it"
            );
            s.until_not_found(old_url).await;
        }
        // Deleting the item removes its crops.
        assert_eq!(s.delete_item(&id).await.status(), StatusCode::OK);
        for (_, _, _, url) in &after {
            s.until_not_found(url).await;
        }
    }
}

/// `presets = {...}` as in the config file.
fn presets_of(text: &str) -> Presets {
    #[derive(serde::Deserialize)]
    struct Delivery {
        presets: Presets,
    }
    toml::from_str::<Delivery>(text).expect("presets").presets
}

fn presets(text: &str) -> impl FnOnce(&mut Config) {
    let presets = presets_of(text);
    move |c: &mut Config| c.delivery.presets = presets
}

/// Presets added to the config later are made for the images already there (at the next
/// start, through their jobs); a preset removed takes its files with it.
#[tokio::test]
async fn presets_added_later_are_backfilled_and_removed_ones_go() {
    let s = TestServer::spawn().await;
    let item = s.upload_waiting_one("jpeg/grace_hopper_512x600.jpg").await;
    let id = item["id"].as_str().expect("id").to_owned();
    assert!(item.get("crops").is_none(), "no presets, no crops: {item}");

    let both = r#"presets = { square = "200x200", wide = "300x100" }"#;
    let s = TestServer::spawn_in(s.stop().await, presets(both)).await;
    let made = crops(&s.until_processed(&id).await);
    let names: Vec<&str> = made.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["square", "wide"]);
    each_has_its_size(&s, &made).await;

    let one = r#"presets = { square = "200x200" }"#;
    let s = TestServer::spawn_in(s.stop().await, presets(one)).await;
    let item = s.until_processed(&id).await;
    let left = crops(&item);
    assert_eq!(left.len(), 1, "{item}");
    assert_eq!(left[0], made[0], "the kept preset keeps its file and URL");
    s.until_not_found(&made[1].3).await;
    // Its file is deleted, not only unlisted (the file route asks the catalog first).
    let dropped = crate::common::storage_key(&json!({ "url": made[1].3 }));
    let gone = || async { !s.stored_files().await.contains(&dropped) };
    crate::common::holds_within(std::time::Duration::from_secs(5), gone).await;
    assert!(
        !s.stored_files().await.contains(&dropped),
        "{dropped} is stored"
    );
    assert_eq!(item["variants"].as_array().expect("variants").len(), 2);
}
