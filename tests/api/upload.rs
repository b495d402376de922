use std::collections::HashSet;

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestServer, error_code, fixture, manifest};

on_every_backend!(
    every_supported_fixture_gets_its_sniffed_type_and_upright_size,
    location_and_camera_metadata_never_leave_the_server,
    each_file_succeeds_or_fails_on_its_own,
    fields_after_the_files_still_apply,
    malformed_requests_are_400_and_store_nothing,
    concurrent_uploads_all_land_with_unique_ids,
);

async fn every_supported_fixture_gets_its_sniffed_type_and_upright_size(s: TestServer) {
    for entry in manifest()
        .iter()
        .filter(|e| e["expected_outcome"] == "accept")
    {
        let path = entry["path"].as_str().expect("path");
        let name = entry["upload_filename"].as_str().expect("name");
        let resp = s
            .upload_parts(vec![(name.to_owned(), fixture(path))], &[])
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{path}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["errors"], serde_json::json!([]), "{path}");
        let item = &body["data"][0];
        assert_eq!(item["mimeType"], entry["expected_mime"], "{path}");
        let size = item["size"].as_u64().expect("size");
        let original = entry["size_bytes"].as_u64().expect("size_bytes");
        if matches!(kind_of(entry), "image/jpeg" | "image/png" | "image/webp") {
            assert!(
                size <= original,
                "{path}: metadata removal never grows a file"
            );
        } else if kind_of(entry) == "image/svg+xml" {
            let mut cleaned = Vec::new();
            let limits = darkroom::media::svg::Limits::default();
            darkroom::media::svg::clean(fixture(path).as_slice(), &mut cleaned, limits)
                .expect("a fixture SVG is clean");
            assert_eq!(
                size,
                cleaned.len() as u64,
                "{path}: stored as its check wrote it"
            );
        } else {
            assert_eq!(size, original, "{path}: stored as uploaded");
        }
        let served = s.served(item).await;
        assert_eq!(served.len() as u64, size, "{path}: size is what is served");
        let kind = entry["expected_mime"].as_str().expect("mime");
        if kind.starts_with("image/") || kind.starts_with("video/") {
            let w = entry
                .get("display_width")
                .filter(|v| !v.is_null())
                .unwrap_or(&entry["width"]);
            let h = entry
                .get("display_height")
                .filter(|v| !v.is_null())
                .unwrap_or(&entry["height"]);
            assert_eq!((&item["width"], &item["height"]), (w, h), "{path}");
        }
        if let Some(expected) = entry["duration_s"].as_f64() {
            let got = item["duration"].as_f64().expect("videos carry a duration");
            assert!((got - expected).abs() < 0.05, "{path}: {got} vs {expected}");
        } else {
            assert!(
                item.get("duration").is_none(),
                "{path}: only videos have a duration"
            );
        }
        let ext = item["url"]
            .as_str()
            .expect("url")
            .rsplit('.')
            .next()
            .expect("ext")
            .to_owned();
        let expected_ext = match kind {
            "image/jpeg" => "jpg",
            "image/svg+xml" => "svg",
            other => other.rsplit('/').next().expect("subtype"),
        };
        assert_eq!(ext, expected_ext, "{path}: the server picks the extension");
        assert_eq!(item["folder"], "/");
        assert_eq!(
            (item["focalX"].as_i64(), item["focalY"].as_i64()),
            (Some(50), Some(50))
        );
        assert!(item["id"].as_str().expect("id").starts_with("media_"));
    }
}

fn kind_of(entry: &Value) -> &str {
    entry["expected_mime"].as_str().expect("mime")
}

async fn location_and_camera_metadata_never_leave_the_server(s: TestServer) {
    let original = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    assert!(original.windows(4).any(|w| w == b"GPS\0") || original.windows(3).any(|w| w == b"GPS"));
    let item = s
        .upload_one("jpeg/colorfulcups_2560x1600_progressive_gps.jpg", &[])
        .await;
    assert_eq!(
        (item["width"].as_u64(), item["height"].as_u64()),
        (Some(2560), Some(1600))
    );
    let served = s.served(&item).await;
    assert!(
        !served.windows(3).any(|w| w == b"GPS"),
        "no GPS bytes are served"
    );
    assert!(
        !served
            .windows(28)
            .any(|w| w == b"http://ns.adobe.com/xap/1.0/"),
        "no XMP"
    );
    assert!(served.len() < original.len() && served.starts_with(&[0xFF, 0xD8]));
    assert!(
        !std::fs::read_dir(s.library.path().join("tmp"))
            .expect("tmp")
            .any(|_| true),
        "no stripped leftovers"
    );

    // Orientation survives, so the upright size stays right for every client.
    let rotated = s.upload_one("jpeg/orientation/Landscape_6.jpg", &[]).await;
    let served = s.served(&rotated).await;
    assert!(
        served.windows(6).any(|w| w == b"Exif\0\0"),
        "a minimal EXIF with the orientation remains"
    );
    assert_eq!(
        (rotated["width"].as_u64(), rotated["height"].as_u64()),
        (Some(600), Some(450))
    );
}

async fn each_file_succeeds_or_fails_on_its_own(s: TestServer) {
    let files = vec![
        ("a.jpg".to_owned(), fixture("jpeg/hopper_128x128.jpg")),
        ("notes.png".to_owned(), b"just text, not a picture".to_vec()),
        ("doc.pdf".to_owned(), fixture("pdf/ltnews18_1page.pdf")),
    ];
    let resp = s
        .upload_parts(files, &[("folder", "/docs"), ("alt", "Team photo")])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 2);
    assert!(
        data.iter()
            .all(|d| d["folder"] == "/docs" && d["alt"] == "Team photo")
    );
    assert_eq!(body["errors"][0]["filename"], "notes.png");
    assert_eq!(body["errors"][0]["code"], "unsupported_type");
    assert_eq!(s.get_json("/api/v1/media").await["total"], 2);

    let all_bad = vec![
        ("x.jpg".to_owned(), b"<html>".to_vec()),
        ("e.gif".to_owned(), Vec::new()),
    ];
    let resp = s.upload_parts(all_bad, &[]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unsupported_type");
    assert_eq!(body["errors"][1]["code"], "empty_file");
    assert_eq!(
        s.get_json("/api/v1/media").await["total"],
        2,
        "nothing added"
    );
}

async fn fields_after_the_files_still_apply(s: TestServer) {
    let form = reqwest::multipart::Form::new()
        .part(
            "files",
            reqwest::multipart::Part::bytes(fixture("gif/toucan_200x150_static_transparent.gif"))
                .file_name("t.gif"),
        )
        .text("folder", "/late/field")
        .text("alt", "A toucan");
    let resp = s
        .request(reqwest::Method::POST, "/api/v1/media", Some(&s.write_key))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"][0]["folder"], "/late/field");
    assert_eq!(body["data"][0]["alt"], "A toucan");
}

async fn malformed_requests_are_400_and_store_nothing(s: TestServer) {
    let resp = s.upload_parts(vec![], &[("folder", "/x")]).await;
    assert_eq!(error_code(resp, StatusCode::BAD_REQUEST).await, "no_files");
    let resp = s
        .upload(&["jpeg/hopper_128x128.jpg"], &[("folder", "../etc")])
        .await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "invalid_folder"
    );
    let resp = s
        .request(reqwest::Method::POST, "/api/v1/media", Some(&s.write_key))
        .json(&serde_json::json!({"files": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "invalid_content_type"
    );
    let broken = s
        .request(reqwest::Method::POST, "/api/v1/media", Some(&s.write_key))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\nabc")
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_code(broken, StatusCode::BAD_REQUEST).await,
        "invalid_multipart"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(s.stored_files().await.is_empty());
    assert_eq!(s.get_json("/api/v1/media").await["total"], 0);
}

#[tokio::test]
async fn oversized_uploads_are_413_from_length_or_while_streaming() {
    let s = TestServer::spawn_with(|c| {
        c.limits.max_file_bytes = 64 * 1024;
        // A bucket has a limit of its own (the largest object it takes).
        if let darkroom::config::StorageConfig::S3(s3) = &mut c.storage {
            s3.max_file_bytes = 64 * 1024;
        }
    })
    .await;
    // Declared length over the limit (a 2 MB body): refused before reading.
    let big = vec![0xFFu8; 2 * 1024 * 1024];
    let resp = s
        .upload_parts(vec![("big.jpg".into(), big.clone())], &[])
        .await;
    assert_eq!(
        error_code(resp, StatusCode::PAYLOAD_TOO_LARGE).await,
        "payload_too_large"
    );

    // One file over the per-file limit inside a body the length check lets through.
    let resp = s
        .upload_parts(
            vec![
                ("a.jpg".into(), fixture("jpeg/grace_hopper_512x600.jpg")),
                ("b.jpg".into(), big[..100 * 1024].to_vec()),
            ],
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // No Content-Length at all (chunked): enforced while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..64).map(|_| Ok(vec![0u8; 32 * 1024])).collect();
    let mut body = b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"s.jpg\"\r\n\r\n\xFF\xD8\xFF".to_vec();
    body.extend(vec![0u8; 1000]);
    let head: Result<Vec<u8>, std::io::Error> = Ok(body);
    let stream = futures_util::stream::iter(std::iter::once(head).chain(chunks));
    let resp = s
        .request(reqwest::Method::POST, "/api/v1/media", Some(&s.write_key))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        s.stored_files().await.is_empty(),
        "a refused request leaves no file"
    );
    assert_eq!(
        std::fs::read_dir(s.library.path().join("tmp"))
            .expect("tmp")
            .count(),
        0,
        "no temp file"
    );
    assert_eq!(s.get_json("/api/v1/media").await["total"], 0);
}

async fn concurrent_uploads_all_land_with_unique_ids(s: TestServer) {
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("doc-{i:02}.pdf");
            let resp = s
                .upload_parts(vec![(name, fixture("pdf/ltnews18_1page.pdf"))], &[])
                .await;
            assert_eq!(resp.status(), StatusCode::CREATED);
            let body: Value = resp.json().await.expect("json");
            body["data"][0]["id"].as_str().expect("id").to_owned()
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.expect("task"));
    }
    assert_eq!(ids.len(), 64);
    let list = s.get_json("/api/v1/media?limit=100").await;
    assert_eq!(list["total"], 64);
    let listed: HashSet<String> = list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(s.stored_files().await.len(), 64);
}

/// A text field far past its limit is refused as soon as it passes it, not after it has
/// been read whole (it was buffered up to the 50 MB part limit first): the answer comes
/// while the rest of the field is still held back.
#[tokio::test]
async fn a_text_field_past_its_limit_is_refused_before_it_is_read_whole() {
    let s = TestServer::spawn().await;
    let alt = vec![b'a'; 4 << 20];
    let (answer, release) = s.held_multipart(
        reqwest::Method::POST,
        "/api/v1/media",
        vec![
            ("files", "doc.pdf", fixture("pdf/ltnews18_1page.pdf")),
            ("alt", "", alt),
        ],
    );
    // A deadlock guard: the field's second half only comes once the answer is in.
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), answer).await;
    drop(release);
    let resp = resp
        .expect("answered with half the field unsent")
        .expect("task");
    assert_eq!(
        crate::common::error_code(resp, StatusCode::BAD_REQUEST).await,
        "invalid_field"
    );
}

/// The multipart preamble and a part's headers are bounded before they are buffered:
/// 4 MB of either (with no end in sight) is refused at once, the rest never read.
#[tokio::test]
async fn endless_multipart_framing_is_refused_before_it_is_buffered() {
    let s = TestServer::spawn().await;
    let boundary = "bound-9f2c";
    let preamble = vec![b'p'; 4 << 20];
    let mut headers =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; ").into_bytes();
    headers.resize(4 << 20, b'x');
    for body in [preamble, headers] {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) })
            .chain(futures_util::stream::once(async move {
                let _ = released.await;
                Ok(b"\r\n\r\nnever read".to_vec())
            }));
        let request = s
            .request(reqwest::Method::POST, "/api/v1/media", Some(&s.write_key))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(stream));
        // A deadlock guard: the end only comes once the answer is in.
        let resp = tokio::time::timeout(std::time::Duration::from_secs(20), request.send()).await;
        drop(release);
        let resp = resp
            .expect("answered with the body unfinished")
            .expect("response");
        assert_eq!(
            crate::common::error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_multipart"
        );
    }
}
