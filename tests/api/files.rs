use reqwest::{Method, StatusCode};

use crate::common::{TestServer, fixture, header};

#[tokio::test]
async fn files_are_served_with_validators_and_ranges() {
    let s = TestServer::spawn_on_disk(|_| {}).await;
    let item = s
        .upload_one("video/bigbuckbunny_640x360_vp9_opus.webm", &[])
        .await;
    let url = item["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("/uploads/") && url.ends_with(".webm"));
    let original = fixture("video/bigbuckbunny_640x360_vp9_opus.webm");
    let len = original.len();

    let resp = s.get(&url, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type").as_deref(), Some("video/webm"));
    assert_eq!(
        header(&resp, "cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        header(&resp, "x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(header(&resp, "accept-ranges").as_deref(), Some("bytes"));
    assert!(header(&resp, "content-security-policy").is_none());
    let etag = header(&resp, "etag").expect("etag");
    let last_modified = header(&resp, "last-modified").expect("last-modified");
    assert_eq!(
        resp.bytes().await.expect("body").as_ref(),
        original.as_slice()
    );

    let cached = s.get_with(&url, &[("If-None-Match", &etag)]).await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let since = s
        .get_with(&url, &[("If-Modified-Since", &last_modified)])
        .await;
    assert_eq!(since.status(), StatusCode::NOT_MODIFIED);

    let part = s.get_with(&url, &[("Range", "bytes=100-199")]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, "content-range"),
        Some(format!("bytes 100-199/{len}"))
    );
    assert_eq!(
        part.bytes().await.expect("body").as_ref(),
        &original[100..200]
    );
    let tail = s.get_with(&url, &[("Range", "bytes=-10")]).await;
    assert_eq!(
        tail.bytes().await.expect("body").as_ref(),
        &original[len - 10..]
    );
    let open = s
        .get_with(&url, &[("Range", &format!("bytes={}-", len - 5))])
        .await;
    assert_eq!(open.bytes().await.expect("body").len(), 5);
    let bad = s
        .get_with(&url, &[("Range", &format!("bytes={len}-"))])
        .await;
    assert_eq!(bad.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        header(&bad, "content-range"),
        Some(format!("bytes */{len}"))
    );
    let stale = s
        .get_with(&url, &[("Range", "bytes=0-9"), ("If-Range", "\"old\"")])
        .await;
    assert_eq!(
        stale.status(),
        StatusCode::OK,
        "a stale If-Range gets the whole file"
    );

    let head = s
        .request(Method::HEAD, &url, None)
        .send()
        .await
        .expect("send");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), Some(len.to_string()));
}

#[tokio::test]
async fn svg_is_sandboxed_and_unknown_files_are_404() {
    let s = TestServer::spawn_on_disk(|_| {}).await;
    let item = s.upload_one("svg/debian_logo_128.svg", &[]).await;
    let resp = s.get(item["url"].as_str().expect("url"), None).await;
    assert_eq!(
        resp.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"image/svg+xml"[..])
    );
    assert_eq!(
        resp.headers()
            .get("content-security-policy")
            .map(|v| v.as_bytes()),
        Some(&b"default-src 'none'; style-src 'unsafe-inline'; sandbox"[..])
    );
    for path in [
        "/uploads/2026/01/nothere.jpg",
        "/uploads/2026/01/..%2F..%2Fdarkroom.redb",
        "/uploads/../darkroom.redb",
        "/uploads/x",
    ] {
        let resp = s.get(path, None).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A file on disk that no record names is not served.
    let dir = s.library.path().join("uploads/2026/01");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("planted.jpg"), fixture("jpeg/hopper_128x128.jpg")).expect("write");
    assert_eq!(
        s.get("/uploads/2026/01/planted.jpg", None).await.status(),
        StatusCode::NOT_FOUND
    );
}
