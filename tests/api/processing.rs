//! Image processing through the API: variants, placeholders, failures, backpressure,
//! deletes and restarts.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Binary, Library, TestServer, error_code, fixture, header, manifest};

const VARIANT_WIDTHS: [u64; 4] = [150, 400, 800, 1200];

/// Fetches a variant as an anonymous client and decodes it.
async fn decoded_variant(s: &TestServer, v: &Value) -> image::DynamicImage {
    let url = v["url"].as_str().expect("variant url");
    let resp = s.get(url, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {url}");
    assert_eq!(header(&resp, "content-type").as_deref(), Some("image/webp"));
    let bytes = resp.bytes().await.expect("body");
    assert_eq!(
        bytes.len() as u64,
        v["size"].as_u64().expect("size"),
        "{url}"
    );
    image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP).expect("a WebP")
}

fn widths(item: &Value) -> Vec<u64> {
    let mut w: Vec<u64> = item["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| v["width"].as_u64().expect("width"))
        .collect();
    w.sort_unstable();
    w
}

#[tokio::test]
async fn every_image_fixture_gets_upright_variants_and_placeholders() {
    let s = TestServer::spawn().await;
    let images: Vec<Value> = manifest()
        .into_iter()
        .filter(|f| {
            let mime = f["expected_mime"].as_str().unwrap_or("");
            f["expected_outcome"] == "accept"
                && ["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&mime)
        })
        .collect();
    assert!(images.len() >= 15, "the fixtures cover every raster type");
    let paths: Vec<&str> = images
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    let items = s.upload_waiting(&paths).await;
    assert_eq!(items.len(), images.len());

    for (f, item) in images.iter().zip(&items) {
        let path = f["path"].as_str().expect("path");
        assert_eq!(item["status"], "ready", "{path}: {item}");
        let (w, h) = (&f["display_width"], &f["display_height"]);
        assert_eq!(
            (&item["width"], &item["height"]),
            (w, h),
            "{path} upright size"
        );
        let w = w.as_u64().expect("width");
        let expected: Vec<u64> = VARIANT_WIDTHS.into_iter().filter(|v| *v < w).collect();
        assert_eq!(widths(item), expected, "{path} variant widths");
        for v in item["variants"].as_array().expect("variants") {
            let img = decoded_variant(&s, v).await;
            assert_eq!(
                img.width() as u64,
                v["width"].as_u64().expect("w"),
                "{path}"
            );
            assert_eq!(
                img.height() as u64,
                v["height"].as_u64().expect("h"),
                "{path}"
            );
            let url = v["url"].as_str().expect("url");
            let stem = item["url"]
                .as_str()
                .expect("url")
                .rsplit_once('.')
                .expect("ext")
                .0;
            assert_eq!(url, format!("{stem}-{}.webp", v["width"]), "{path}");
        }
        let hash = item["thumbhash"].as_str().expect("thumbhash");
        assert!(hash.len() >= 20 && !hash.contains(' '), "{path}: {hash}");
        let color = item["dominantColor"].as_str().expect("dominantColor");
        assert!(
            color.len() == 7
                && color.starts_with('#')
                && color[1..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{path}: {color}"
        );

        // The public view shows the same variants and placeholders.
        let id = item["id"].as_str().expect("id");
        let public: Value = s
            .get(&format!("/api/v1/public/media/{id}"), None)
            .await
            .json()
            .await
            .expect("json");
        for field in ["status", "variants", "thumbhash", "dominantColor"] {
            assert_eq!(public["data"][field], item[field], "{path} public {field}");
        }
    }
}

#[tokio::test]
async fn orientation_variants_all_show_the_upright_picture() {
    let s = TestServer::spawn().await;
    let paths: Vec<String> = (1..=8)
        .map(|o| format!("jpeg/orientation/Landscape_{o}.jpg"))
        .collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let items = s.upload_waiting(&refs).await;
    let mut smallest = Vec::new();
    for item in &items {
        let v150 = item["variants"]
            .as_array()
            .expect("variants")
            .iter()
            .find(|v| v["width"] == 150)
            .expect("a 150 px variant")
            .clone();
        smallest.push(decoded_variant(&s, &v150).await.to_luma8());
    }
    let upright = &smallest[0];
    for (o, img) in smallest.iter().enumerate().skip(1) {
        assert_eq!(img.dimensions(), upright.dimensions());
        let diff: f64 = img
            .pixels()
            .zip(upright.pixels())
            .map(|(a, b)| f64::from(a.0[0].abs_diff(b.0[0])))
            .sum::<f64>()
            / f64::from(img.width() * img.height());
        // Only the big orientation digit differs (~15); a wrong transform gives >= 50.
        assert!(
            diff < 30.0,
            "orientation {}: mean grey difference {diff:.1}",
            o + 1
        );
    }
}

#[tokio::test]
async fn no_gps_bytes_are_served_from_any_url() {
    let s = TestServer::spawn().await;
    let item = s
        .upload_waiting(&["jpeg/colorfulcups_2560x1600_progressive_gps.jpg"])
        .await
        .remove(0);
    let mut urls = vec![item["url"].as_str().expect("url").to_owned()];
    for v in item["variants"].as_array().expect("variants") {
        urls.push(v["url"].as_str().expect("url").to_owned());
    }
    assert_eq!(urls.len(), 5);
    for url in urls {
        let bytes = s.get(&url, None).await.bytes().await.expect("body");
        assert!(!bytes.windows(3).any(|w| w == b"GPS"), "{url} carries GPS");
        if url.ends_with(".webp") {
            assert!(
                !bytes.windows(4).any(|w| w == b"EXIF" || w == b"XMP "),
                "{url}"
            );
        }
    }
}

#[tokio::test]
async fn without_wait_the_item_is_processing_then_ready() {
    let s = TestServer::spawn().await;
    let item = s
        .upload_one("jpeg/elephants_1920x1080_progressive.jpg", &[])
        .await;
    assert_eq!(item["status"], "processing");
    assert_eq!(item["variants"], Value::Array(vec![]));
    assert!(item["thumbhash"].is_null() && item["dominantColor"].is_null());
    let id = item["id"].as_str().expect("id");
    let done = s.until_processed(id).await;
    assert_eq!(done["status"], "ready");
    assert_eq!(widths(&done), VARIANT_WIDTHS);
    let v1200 = &done["variants"]
        .as_array()
        .expect("v")
        .iter()
        .find(|v| v["width"] == 1200);
    assert_eq!(v1200.expect("1200")["height"], 675);

    // A PDF waits for its poster like an image; SVGs are ready with no variants.
    let pdf = s.upload_one("pdf/ltnews18_1page.pdf", &[]).await;
    assert_eq!(pdf["status"], "processing");
    assert_eq!(pdf["poster"], Value::Null);
    let pdf = s.until_processed(pdf["id"].as_str().expect("id")).await;
    assert_eq!(pdf["status"], "ready");
    assert!(pdf["poster"]["url"].is_string(), "{pdf}");
    let svg = s.upload_one("svg/matplotlib_logo_72pt.svg", &[]).await;
    assert_eq!(svg["status"], "ready");
    assert_eq!(svg["variants"], Value::Array(vec![]));
}

/// A PNG whose header is fine but whose pixel data is not (CRCs made valid again, so
/// only the decoder can tell).
fn png_with_corrupt_pixels() -> Vec<u8> {
    let mut png = fixture("png/chessboard_200x200_rgb16.png");
    let idat = png.windows(4).position(|w| w == b"IDAT").expect("IDAT");
    let len = u32::from_be_bytes(png[idat - 4..idat].try_into().expect("len")) as usize;
    for b in &mut png[idat + 6..idat + 4 + len] {
        *b ^= 0x5A;
    }
    let crc = crc32(&png[idat..idat + 4 + len]);
    png[idat + 4 + len..idat + 8 + len].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[tokio::test]
async fn undecodable_pixels_mark_the_item_failed_once() {
    let s = TestServer::spawn().await;
    let resp = s
        .upload_parts(vec![("bad.png".into(), png_with_corrupt_pixels())], &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    let id = body["data"][0]["id"].as_str().expect("id");
    let item = s.until_processed(id).await;
    assert_eq!(item["status"], "failed", "{item}");
    assert!(
        item["processingError"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    );
    assert_eq!(item["variants"], Value::Array(vec![]));
    // The original is still served, and the job is not tried again.
    s.served(&item).await;
    let metrics = s.get("/metrics", None).await.text().await.expect("metrics");
    assert!(
        metrics.contains("darkroom_processing_jobs_total{outcome=\"failed\"}"),
        "{metrics}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let later = s.get_json(&format!("/api/v1/media/{id}")).await;
    assert_eq!(later["data"], item);
}

#[tokio::test]
async fn a_full_backlog_refuses_images_with_503_but_not_documents() {
    let s = TestServer::spawn_with(|c| {
        c.processing.max_backlog = 1;
        c.processing.retry_after_secs = 7;
    })
    .await;
    // Two images in one request: the second finds the backlog full.
    let resp = s
        .upload(
            &["jpeg/grace_hopper_512x600.jpg", "jpeg/hopper_128x128.jpg"],
            &[],
        )
        .await;
    assert_eq!(header(&resp, "retry-after").as_deref(), Some("7"));
    assert_eq!(
        error_code(resp, StatusCode::SERVICE_UNAVAILABLE).await,
        "processing_backlog_full"
    );
    // Documents and videos pass whatever the backlog.
    let resp = s
        .upload(
            &[
                "pdf/ltnews18_1page.pdf",
                "video/bigbuckbunny_640x360_vp9_opus.webm",
            ],
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // The backlog is past half its limit: they are ready at once, without a poster job
    // (which would hold image uploads back).
    let passed: Value = resp.json().await.expect("json");
    for item in passed["data"].as_array().expect("data") {
        assert_eq!(item["status"], "ready", "{item}");
        assert_eq!(item["poster"], Value::Null, "{item}");
    }

    // Once the backlog has room again, images are accepted and processed.
    let item = s.upload_one("jpeg/grace_hopper_512x600.jpg", &[]).await;
    let done = s.until_processed(item["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "ready");
    let again = s.upload_waiting(&["jpeg/hopper_128x128.jpg"]).await;
    assert_eq!(again[0]["status"], "ready");

    // The refused request left no file behind: the 4 items' originals and variants.
    let list = s.get_json("/api/v1/media").await;
    assert_eq!(list["total"], 4);
    let named: usize = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| {
            let variants = |v: &Value| v["variants"].as_array().map_or(0, Vec::len);
            let poster = &item["poster"];
            1 + variants(item) + usize::from(poster.is_object()) + variants(poster)
        })
        .sum();
    assert_eq!(named, 4 + 2, "the originals and 2 variants of grace_hopper");
    assert_eq!(s.stored_files().await.len(), named);
}

#[tokio::test]
async fn deleting_an_item_removes_its_variants() {
    let s = TestServer::spawn().await;
    let item = s
        .upload_waiting(&["png/spacefun_2048x1542_palette.png"])
        .await
        .remove(0);
    assert_eq!(s.stored_files().await.len(), 5);
    let id = item["id"].as_str().expect("id");
    let resp = s.delete_item(id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    // The file route asks the catalog, so a deleted item's files are gone at once; a
    // bucket serves them until the delete queue has removed them.
    for v in item["variants"].as_array().expect("variants") {
        let url = v["url"].as_str().expect("url");
        if s.is_s3() {
            s.until_not_found(url).await;
        } else {
            let status = s.get(url, None).await.status();
            assert_eq!(status, StatusCode::NOT_FOUND, "{url}");
        }
    }
    s.until_no_files().await;
}

#[tokio::test]
async fn the_pool_heals_after_a_crash() {
    let s = TestServer::spawn_with(|c| c.admin.fault_injection = true).await;
    let resp = s
        .request(
            reqwest::Method::POST,
            "/admin/crash/processing",
            Some(&s.write_key),
        )
        .send()
        .await
        .expect("crash");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // Uploads keep working; jobs committed while the pool restarts are found on start.
    let item = s.upload_one("jpeg/grace_hopper_512x600.jpg", &[]).await;
    let done = s.until_processed(item["id"].as_str().expect("id")).await;
    assert_eq!(done["status"], "ready");
    let metrics = s.get("/metrics", None).await.text().await.expect("metrics");
    assert!(metrics.contains("darkroom_actor_restarts_total{actor=\"processing\"}"));
}

#[tokio::test]
async fn jobs_interrupted_by_a_kill_finish_after_restart() {
    let dir = Library::new().await;
    let key = Binary::create_key(dir.path(), "write");
    let server = Binary::start_with(dir.path(), &[]);
    let photo = (
        "jpeg/colorfulcups_2560x1600_progressive_gps.jpg",
        "cups.jpg",
    );
    let resp = server.upload(&key, &[photo; 6], &[]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    server.kill(); // right after the 201: most of the six jobs have not run

    let server = Binary::start(dir.path());
    for item in body["data"].as_array().expect("data") {
        let id = item["id"].as_str().expect("id");
        let mut status = Value::Null;
        for _ in 0..600 {
            let got = server.get_json(&key, &format!("/api/v1/media/{id}")).await;
            status = got["data"]["status"].clone();
            if status != "processing" {
                assert_eq!(widths(&got["data"]), VARIANT_WIDTHS);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(status, "ready", "{id}");
    }
    assert!(
        server.logs().contains("queueing unfinished image jobs"),
        "the restart found jobs to resume"
    );
    // 6 originals + 24 variants, nothing swept by mistake.
    assert_eq!(dir.stored_files().await.len(), 30);
    server.kill();
}
