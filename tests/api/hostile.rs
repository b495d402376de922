//! Every file of the corpus's hostile set, through the upload path.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestServer, fixture, is_original, manifest};

/// Stored originals (`YYYY/MM/<token>.<ext>`; variants are `<token>-<width>.webp`). A
/// refused upload could only leave an original behind, while variants of images accepted
/// earlier in the loop keep arriving as their jobs finish.
async fn stored_originals(s: &TestServer) -> usize {
    let stored = s.stored_files().await;
    stored.iter().filter(|k| is_original(k)).count()
}

#[tokio::test]
async fn hostile_files_are_refused_or_made_harmless() {
    let s = TestServer::spawn().await;
    for entry in manifest().iter().filter(|e| {
        e["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("hostile/"))
    }) {
        let path = entry["path"].as_str().expect("path");
        let name = entry["upload_filename"].as_str().expect("name");
        let before = stored_originals(&s).await;
        let resp = s
            .upload_parts(vec![(name.to_owned(), fixture(path))], &[])
            .await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        match entry["expected_outcome"].as_str().expect("outcome") {
            "reject" => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
                assert!(body["error"]["code"].is_string());
                assert_eq!(stored_originals(&s).await, before, "{path}: nothing stored");
            }
            "accept" => assert_eq!(status, StatusCode::CREATED, "{path}: {body}"),
            _ => assert!(
                status == StatusCode::CREATED || status == StatusCode::BAD_REQUEST,
                "{path}"
            ),
        }
        if status == StatusCode::CREATED {
            let item = &body["data"][0];
            assert_eq!(
                item["mimeType"], entry["expected_mime"],
                "{path}: type from content"
            );
            let filename = item["filename"].as_str().expect("filename");
            assert!(
                !filename.contains('/') && !filename.contains('\\') && !filename.contains(".."),
                "{path}: {filename}"
            );
            assert!(
                !filename.chars().any(|c| c == '\u{202E}' || c.is_control()),
                "{path}: {filename:?}"
            );
            let url = item["url"].as_str().expect("url");
            let served = s.get(url, None).await;
            // The file route says nosniff; a bucket answers with the headers it keeps (the
            // object's content type, checked below for both).
            if !s.is_s3() {
                assert_eq!(
                    served
                        .headers()
                        .get("x-content-type-options")
                        .map(|v| v.as_bytes()),
                    Some(&b"nosniff"[..])
                );
            }
            assert_eq!(
                served
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                entry["expected_mime"].as_str()
            );
        }
    }
    assert!(
        !std::path::Path::new("/tmp/pwned.jpg").exists(),
        "nothing written outside the data dir"
    );
    // The SVG with scripts and an external entity is refused, so no copy can leak it.
    let svg = s.get_json("/api/v1/media?type=image&limit=100").await;
    assert!(
        svg["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|d| d["mimeType"] != "image/svg+xml")
    );
}

#[tokio::test]
async fn bombs_are_refused_from_the_header() {
    let s = TestServer::spawn().await;
    for (path, name) in [
        ("hostile/png_bomb_50000x50000.png", "wallpaper.png"),
        ("hostile/gif_huge_logical_screen_65535x65535.gif", "dot.gif"),
    ] {
        let resp = s
            .upload_parts(vec![(name.into(), fixture(path))], &[])
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "image_too_large", "{path}");
    }
}

#[tokio::test]
async fn accepted_hostile_images_are_processed_harmlessly() {
    let s = TestServer::spawn().await;
    for entry in manifest().iter().filter(|e| {
        let path = e["path"].as_str().unwrap_or("");
        let raster = ["image/jpeg", "image/png", "image/gif", "image/webp"]
            .contains(&e["expected_mime"].as_str().unwrap_or(""));
        path.starts_with("hostile/") && raster && e["expected_outcome"] != "reject"
    }) {
        let path = entry["path"].as_str().expect("path");
        let resp = s
            .request(
                reqwest::Method::POST,
                "/api/v1/media?wait=true",
                Some(&s.write_key),
            )
            .multipart(reqwest::multipart::Form::new().part(
                "files",
                reqwest::multipart::Part::bytes(fixture(path)).file_name("hostile"),
            ))
            .send()
            .await
            .expect("upload");
        if resp.status() == StatusCode::BAD_REQUEST {
            continue; // refused at upload: nothing to process
        }
        assert_eq!(resp.status(), StatusCode::CREATED, "{path}");
        let body: Value = resp.json().await.expect("json");
        let item = &body["data"][0];
        // Processing ends either way; a damaged file never leaves the job hanging.
        assert!(
            item["status"] == "ready" || item["status"] == "failed",
            "{path}: {item}"
        );
        let forbidden: Vec<&str> = entry["must_not_contain_in_output"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for v in item["variants"].as_array().expect("variants") {
            let url = v["url"].as_str().expect("url");
            let bytes = s.get(url, None).await.bytes().await.expect("variant");
            assert!(bytes.starts_with(b"RIFF"), "{path}: {url} is a WebP");
            for needle in &forbidden {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{path}: {url} contains {needle}"
                );
            }
        }
    }
}
