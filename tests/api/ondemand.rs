//! Crops of any size on demand behind signed URLs: refused (403/404) without decoding a
//! byte when unsigned, badly signed, too large or unknown; made once however many ask at
//! once; kept within the cache budget, least recently used out first; gone with their
//! item; made again under a new URL when the focal point moves.

use std::time::Duration;

use darkroom::config::Secret;
use darkroom::delivery::Signer;
use darkroom::model::CropSize;
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};

use crate::common::{Binary, Library, TestServer, error_code, sample};

const KEY: &str = "test-signing-key";

/// `darkroom_crops_made_total` counts for the whole process: the tests that make crops
/// take turns, so each one's count is its own.
static CROPPING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn signer() -> Signer {
    Signer::new(KEY.as_bytes())
}

fn size(width: u32, height: u32) -> CropSize {
    CropSize { width, height }
}

async fn spawn(budget: u64, s3: bool) -> TestServer {
    let library = if s3 {
        Library::in_bucket(|_| {}).await
    } else {
        Library::new().await
    };
    TestServer::spawn_in(library, move |c| {
        c.delivery.signing_key = Some(Secret::new(KEY));
        c.delivery.crop_cache_bytes = budget;
    })
    .await
}

async fn crops_made(s: &TestServer) -> f64 {
    let scrape = s.get("/metrics", None).await.text().await.expect("scrape");
    sample(&scrape, "darkroom_crops_made_total").unwrap_or(0.0)
}

/// The crop's redirect target (without following it).
async fn location(s: &TestServer, path: &str) -> (StatusCode, Option<String>) {
    let client = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client.get(s.url(path)).send().await.expect("GET");
    let to = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().expect("ascii").to_owned());
    (resp.status(), to)
}

/// Where the crop `url(id)` redirects to (made on first request).
async fn file(s: &TestServer, url: &impl Fn(&str) -> String, id: &str) -> Option<String> {
    location(s, &url(id)).await.1
}

/// Follows a crop URL to its WebP and decodes it.
async fn fetch(s: &TestServer, path: &str) -> image::DynamicImage {
    let resp = s.get(path, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let bytes = resp.bytes().await.expect("bytes");
    image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("webp")
}

#[tokio::test]
async fn signed_crops_are_made_once_and_refused_without_reading_a_byte() {
    made_once_and_refused(false).await;
}

#[tokio::test]
async fn signed_crops_in_a_bucket_are_made_once_and_refused_without_reading_a_byte() {
    made_once_and_refused(true).await;
}

async fn made_once_and_refused(s3: bool) {
    let _turn = CROPPING.lock().await;
    let s = spawn(1 << 30, s3).await;
    let photo = s
        .upload_waiting_one("jpeg/colorfulcups_2560x1600_progressive_gps.jpg")
        .await;
    let pdf = s.upload_one("pdf/ltnews18_1page.pdf", &[]).await;
    let (id, pdf_id) = (
        photo["id"].as_str().expect("id"),
        pdf["id"].as_str().expect("id"),
    );
    let made = crops_made(&s).await;

    let path = |id: &str, w: u32, h: u32, sig: &str| {
        format!("/api/v1/public/media/{id}/crop?w={w}&h={h}&sig={sig}")
    };
    let good = signer().sign(id, size(300, 200));
    for (bad, code) in [
        (
            format!("/api/v1/public/media/{id}/crop?w=300&h=200"),
            "invalid_signature",
        ),
        (
            path(id, 300, 200, "00112233445566778899aabbccddeeff"),
            "invalid_signature",
        ),
        (path(id, 301, 200, &good), "invalid_signature"),
        (
            path(id, 5000, 10, &signer().sign(id, size(5000, 10))),
            "crop_out_of_bounds",
        ),
    ] {
        assert_eq!(
            error_code(s.get(&bad, None).await, StatusCode::FORBIDDEN).await,
            code,
            "{bad}"
        );
    }
    let unknown = "media_AAAAAAAAAAAAAAAA";
    let sig = signer().sign(unknown, size(300, 200));
    assert_eq!(
        s.get(&path(unknown, 300, 200, &sig), None).await.status(),
        StatusCode::NOT_FOUND
    );
    let sig = signer().sign(pdf_id, size(300, 200));
    assert_eq!(
        s.get(&path(pdf_id, 300, 200, &sig), None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        crops_made(&s).await,
        made,
        "nothing was decoded for a refused request"
    );

    // The API signs the same URL; 32 first requests at once make one crop.
    let signed = s
        .send_json(
            Method::POST,
            &format!("/api/v1/media/{id}/crops"),
            json!({"width": 300, "height": 200}),
        )
        .await;
    assert_eq!(signed.status(), StatusCode::OK);
    let url = signed.json::<Value>().await.expect("json")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(url, path(id, 300, 200, &good));
    let s = std::sync::Arc::new(s);
    let firsts: Vec<_> = (0..32)
        .map(|_| {
            let (s, url) = (s.clone(), url.clone());
            tokio::spawn(async move { fetch(&s, &url).await })
        })
        .collect();
    for first in firsts {
        let img = first.await.expect("request");
        assert_eq!((img.width(), img.height()), (300, 200));
    }
    assert_eq!(
        crops_made(&s).await,
        made + 1.0,
        "one computation for 32 requests"
    );
    let (status, to) = location(&s, &url).await;
    assert_eq!(status, StatusCode::FOUND);
    let to = to.expect("location");
    assert!(to.contains("-c300x200-n") && to.ends_with(".webp"), "{to}");
    assert_eq!(crops_made(&s).await, made + 1.0, "served from the cache");

    // Bounds hold for the API too; an unknown id is 404.
    let too_big = json!({"width": 4097, "height": 10});
    let refused = s
        .send_json(Method::POST, &format!("/api/v1/media/{id}/crops"), too_big)
        .await;
    assert_eq!(
        error_code(refused, StatusCode::BAD_REQUEST).await,
        "invalid_crop_size"
    );
    let unknown_post = s
        .send_json(
            Method::POST,
            &format!("/api/v1/media/{unknown}/crops"),
            json!({"width": 1, "height": 1}),
        )
        .await;
    assert_eq!(unknown_post.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_crop_cache_keeps_its_budget_evicting_the_least_recently_used() {
    let _turn = CROPPING.lock().await;
    // One crop's size, from a first run (the same image gives the same bytes).
    let s = spawn(1 << 30, false).await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..5 {
            let item = s.upload_waiting_one("jpeg/grace_hopper_512x600.jpg").await;
            ids.push(item["id"].as_str().expect("id").to_owned());
        }
        ids
    };
    let url = |id: &str| signer().url(id, size(64, 64), None);
    let one = s
        .get(&url(&ids[0]), None)
        .await
        .bytes()
        .await
        .expect("bytes")
        .len() as u64;
    let dir = s.stop().await;
    let s = TestServer::spawn_in(dir, move |c| {
        c.delivery.signing_key = Some(Secret::new(KEY));
        c.delivery.crop_cache_bytes = 3 * one;
    })
    .await;
    let mut files = Vec::new();
    for id in &ids[..3] {
        let to = file(&s, &url, id).await.expect("location");
        files.push(to);
    }
    // The first is used again (a second later, so the use is recorded).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(file(&s, &url, &ids[0]).await.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A fourth crop pushes out the least recently used: the second, not the first.
    file(&s, &url, &ids[3]).await.expect("location");
    s.until_not_found(&files[1]).await;
    for kept in [&files[0], &files[2]] {
        assert_eq!(s.get(kept, None).await.status(), StatusCode::OK, "{kept}");
    }
    // Deleting an item removes its crops.
    assert_eq!(s.delete_item(&ids[0]).await.status(), StatusCode::OK);
    s.until_not_found(&files[0]).await;
    // A moved focal point gives a new crop under a new URL; the old one goes.
    let before = files[2].clone();
    let moved = s
        .send_json(
            Method::PATCH,
            &format!("/api/v1/media/{}", ids[2]),
            json!({"focalX": 10}),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let after = file(&s, &url, &ids[2]).await.expect("location");
    assert_ne!(after, before);
    assert!(after.contains("-c64x64-v2-n"), "{after}");
    s.until_not_found(&before).await;
    // The evicted crop, asked for again, is made under a key of its own: the delete of
    // the evicted file can never take the new one.
    let remade = file(&s, &url, &ids[1]).await.expect("location");
    assert_ne!(remade, files[1]);
    assert_eq!(s.get(&remade, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn darkroom_sign_prints_the_same_url_as_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "media_0Oqzd1Tb3f9KxQ2L";
    let out = Binary::command(dir.path())
        .env("DARKROOM_DELIVERY__SIGNING_KEY", KEY)
        .args(["sign", id, "1200x630"])
        .output()
        .expect("sign");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf8");
    assert_eq!(printed.trim(), signer().url(id, size(1200, 630), None));
    let bad = Binary::command(dir.path())
        .args(["sign", id, "5000x1"])
        .output()
        .expect("sign");
    assert!(!bad.status.success());
}
