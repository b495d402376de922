//! The S3 backend and presigned uploads against a real S3 server (SeaweedFS, started by
//! `make test` / `make s3-up`; its endpoint comes in `S3_TEST_ENDPOINT`). Each
//! test works under its own key prefix in the shared bucket.

use std::time::Duration;

use darkroom::config::S3Config;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, error_code, fixture, header};

/// A server on its own prefix of the test bucket; also returns its public base URL.
async fn spawn_s3(tweak: impl FnOnce(&mut S3Config)) -> (TestServer, String) {
    let s = TestServer::spawn_s3_with(tweak, |_| {}).await;
    let base = format!("{}/", s.s3().public_base_url);
    (s, base)
}

async fn presign(s: &TestServer, body: Value) -> reqwest::Response {
    s.send_json(Method::POST, "/api/v1/media/presign", body)
        .await
}

async fn presign_ok(s: &TestServer, filename: &str, mime: &str, size: usize) -> Value {
    let resp = presign(
        s,
        json!({"filename": filename, "mimeType": mime, "size": size}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("json")
}

/// PUTs bytes to a presigned URL as a browser would.
async fn put(url: &str, content_type: &str, bytes: Vec<u8>) -> StatusCode {
    Client::new()
        .put(url)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .expect("PUT")
        .status()
}

/// Where a presign's PUT lands: its URL without the signature (readable anonymously on
/// the test server, as the whole bucket is).
fn staged_url(p: &Value) -> String {
    let url = p["uploadUrl"].as_str().expect("uploadUrl");
    url.split('?').next().expect("path").to_owned()
}

async fn confirm(s: &TestServer, body: Value) -> reqwest::Response {
    s.send_json(Method::POST, "/api/v1/media/confirm", body)
        .await
}

#[tokio::test]
async fn uploads_are_stored_in_the_bucket_served_publicly_and_deleted_with_variants() {
    let (s, base) = spawn_s3(|_| {}).await;
    let items = s
        .upload_waiting(&["jpeg/grace_hopper_512x600.jpg", "pdf/ltnews18_1page.pdf"])
        .await;
    let (photo, pdf) = (&items[0], &items[1]);
    for item in [photo, pdf] {
        let url = item["url"].as_str().expect("url");
        assert!(url.starts_with(&base), "{url} under {base}");
        let resp = s.get(url, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        assert_eq!(
            header(&resp, "content-type"),
            item["mimeType"].as_str().map(String::from)
        );
        let bytes = resp.bytes().await.expect("bytes");
        assert_eq!(bytes.len() as u64, item["size"].as_u64().expect("size"));
    }
    assert_eq!(photo["status"], "ready");
    let variants = photo["variants"].as_array().expect("variants");
    assert_eq!(variants.len(), 2);
    for v in variants {
        let resp = s.get(v["url"].as_str().expect("url"), None).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header(&resp, "content-type").as_deref(), Some("image/webp"));
        let img = image::load_from_memory(&resp.bytes().await.expect("bytes")).expect("webp");
        assert_eq!(u64::from(img.width()), v["width"].as_u64().expect("width"));
    }
    // This server does not serve bucket files itself.
    let local = photo["url"]
        .as_str()
        .expect("url")
        .replace(&base, "/uploads/");
    assert_eq!(s.get(&local, None).await.status(), StatusCode::NOT_FOUND);

    let list = s.get_json("/api/v1/media").await;
    assert_eq!(list["total"], 2);
    let id = photo["id"].as_str().expect("id");
    let resp = s.delete_item(id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    s.until_not_found(photo["url"].as_str().expect("url")).await;
    for v in variants {
        s.until_not_found(v["url"].as_str().expect("url")).await;
    }
    let resp = s.get(pdf["url"].as_str().expect("url"), None).await;
    assert_eq!(resp.status(), StatusCode::OK, "the other item stays");
}

#[tokio::test]
async fn presign_put_confirm_makes_one_item_with_variants() {
    let (s, _) = spawn_s3(|_| {}).await;
    let bytes = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    let p = presign_ok(&s, "cups.jpg", "image/jpeg", bytes.len()).await;
    assert_eq!(p["method"], "PUT");
    assert_eq!(p["headers"], json!({"Content-Type": "image/jpeg"}));
    let key = p["storageKey"].as_str().expect("storageKey");
    assert!(key.ends_with(".jpg") && key.starts_with('t'), "{key}");
    let public_url = p["publicUrl"].as_str().expect("publicUrl");
    assert!(public_url.ends_with(key.split_once('/').expect("prefix").1));
    assert!(p["expiresAt"].as_str().is_some_and(|e| e.ends_with('Z')));

    let upload_url = p["uploadUrl"].as_str().expect("uploadUrl");
    assert_eq!(
        put(upload_url, "image/jpeg", bytes.clone()).await,
        StatusCode::OK
    );
    let resp = confirm(
        &s,
        json!({"storageKey": key, "filename": "cups.jpg", "mimeType": "image/jpeg",
               "size": bytes.len(), "folder": "/direct"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["success"], true);
    let item = &body["data"];
    assert_eq!(item["url"], public_url);
    assert_eq!(item["folder"], "/direct");
    assert_eq!(
        (&item["width"], &item["height"]),
        (&json!(2560), &json!(1600))
    );

    // The GPS data went with the metadata clean-up: the bucket now holds the clean copy.
    let served = s.get(public_url, None).await.bytes().await.expect("bytes");
    assert!(!served.windows(3).any(|w| w == b"GPS"));
    assert_eq!(served.len() as u64, item["size"].as_u64().expect("size"));

    let id = item["id"].as_str().expect("id");
    let done = s.until_processed(id).await;
    assert_eq!(done["variants"].as_array().expect("variants").len(), 4);
    let listed = s.get_json("/api/v1/media?folder=/direct").await;
    assert_eq!(listed["total"], 1);

    // A second confirm never makes a second item.
    let again = confirm(&s, json!({"storageKey": key})).await;
    assert_eq!(
        error_code(again, StatusCode::BAD_REQUEST).await,
        "already_confirmed"
    );
    assert_eq!(s.get_json("/api/v1/media").await["total"], 1);
}

/// A video PUT to a presigned URL and confirmed gets its poster like an upload: ffmpeg
/// reads the object fetched from the bucket, the poster and its variants land there.
#[tokio::test]
async fn a_presigned_video_gets_its_poster_made_from_the_bucket() {
    let (s, base) = spawn_s3(|_| {}).await;
    let bytes = fixture("video/bigbuckbunny_640x360_vp9_opus.webm");
    let p = presign_ok(&s, "clip.webm", "video/webm", bytes.len()).await;
    let upload_url = p["uploadUrl"].as_str().expect("uploadUrl");
    assert_eq!(put(upload_url, "video/webm", bytes).await, StatusCode::OK);
    let key = p["storageKey"].as_str().expect("storageKey");
    let resp = confirm(&s, json!({"storageKey": key})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    let item = s
        .until_processed(body["data"]["id"].as_str().expect("id"))
        .await;
    assert_eq!(item["status"], "ready", "{item}");
    let poster = &item["poster"];
    assert_eq!(
        (&poster["width"], &poster["height"]),
        (&json!(640), &json!(360))
    );
    for url in std::iter::once(&poster["url"]).chain(
        poster["variants"]
            .as_array()
            .expect("variants")
            .iter()
            .map(|v| &v["url"]),
    ) {
        let url = url.as_str().expect("url");
        assert!(url.starts_with(&base), "served by the bucket: {url}");
        let resp = s.get(url, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let webp = resp.bytes().await.expect("bytes");
        assert_eq!(&webp[8..12], b"WEBP", "{url}");
    }
}

#[tokio::test]
async fn the_store_refuses_tampered_expired_and_mistyped_puts() {
    let (s, _) = spawn_s3(|c| c.presign_expiry_secs = 1).await;
    let pdf = fixture("pdf/ltnews18_1page.pdf");
    let p = presign_ok(&s, "doc.pdf", "application/pdf", pdf.len()).await;
    let url = p["uploadUrl"].as_str().expect("url").to_owned();

    let wrong_type = put(&url, "image/png", pdf.clone()).await;
    assert_eq!(wrong_type, StatusCode::FORBIDDEN, "Content-Type is signed");
    let (head, sig) = url.split_once("X-Amz-Signature=").expect("signature");
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    let tampered = format!("{head}X-Amz-Signature={flipped}{}", &sig[1..]);
    assert_eq!(
        put(&tampered, "application/pdf", pdf.clone()).await,
        StatusCode::FORBIDDEN
    );
    let other_key = url.replacen(".pdf?", "x.pdf?", 1);
    assert_eq!(
        put(&other_key, "application/pdf", pdf.clone()).await,
        StatusCode::FORBIDDEN
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        put(&url, "application/pdf", pdf).await,
        StatusCode::FORBIDDEN,
        "expired"
    );
    let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "presign_expired"
    );
}

#[tokio::test]
async fn confirm_refuses_what_was_not_issued_or_does_not_match_and_keeps_nothing() {
    let (s, _) = spawn_s3(|_| {}).await;
    let prefix = {
        let p = presign_ok(&s, "a.pdf", "application/pdf", 10).await;
        p["storageKey"]
            .as_str()
            .expect("key")
            .split('/')
            .next()
            .expect("prefix")
            .to_owned()
    };

    // A key this server never issued, and keys outside its prefix or shape.
    for key in [
        format!("{prefix}/2026/01/NeverIssued0000.pdf"),
        "other/2026/01/abc.pdf".to_owned(),
        format!("{prefix}/../x.pdf"),
    ] {
        let resp = confirm(&s, json!({"storageKey": key})).await;
        assert_eq!(
            error_code(resp, StatusCode::NOT_FOUND).await,
            "not_found",
            "{key}"
        );
    }

    // Issued but never uploaded.
    let p = presign_ok(&s, "b.pdf", "application/pdf", 100).await;
    let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "upload_missing"
    );

    // Uploaded with another size than presigned: refused and the object deleted.
    let pdf = fixture("pdf/ltnews18_1page.pdf");
    let p = presign_ok(&s, "c.pdf", "application/pdf", pdf.len() + 1).await;
    let url = p["uploadUrl"].as_str().expect("url");
    assert_eq!(
        put(url, "application/pdf", pdf.clone()).await,
        StatusCode::OK
    );
    let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "size_mismatch"
    );
    s.until_not_found(p["publicUrl"].as_str().expect("url"))
        .await;

    // Declared PNG, sent a PDF (with the signed PNG Content-Type): refused and deleted.
    let p = presign_ok(&s, "d.png", "image/png", pdf.len()).await;
    let url = p["uploadUrl"].as_str().expect("url");
    assert_eq!(put(url, "image/png", pdf.clone()).await, StatusCode::OK);
    let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "type_mismatch"
    );
    s.until_not_found(p["publicUrl"].as_str().expect("url"))
        .await;

    // Repeated fields must match the presign.
    let p = presign_ok(&s, "e.pdf", "application/pdf", pdf.len()).await;
    let resp = confirm(
        &s,
        json!({"storageKey": p["storageKey"], "mimeType": "video/mp4"}),
    )
    .await;
    assert_eq!(
        error_code(resp, StatusCode::BAD_REQUEST).await,
        "mime_mismatch"
    );

    assert_eq!(
        s.get_json("/api/v1/media").await["total"],
        0,
        "no item was made"
    );
}

/// Once confirmed, an item's bytes are the ones checked: PUTting again to the presign's
/// URL (valid for an hour) changes nothing that is served. It used to replace the
/// checked object in place: a scripted SVG served from the bucket, a JPEG with its GPS
/// block back.
#[tokio::test]
async fn a_confirmed_upload_cannot_be_overwritten_through_its_signed_url() {
    let (s, _) = spawn_s3(|_| {}).await;
    let clean = br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>"#.to_vec();
    let mut evil = br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><script>alert(document.domain)</script></svg>"#.to_vec();
    evil.resize(clean.len(), b' ');
    evil.truncate(clean.len()); // the same size, so only the bytes differ
    let gps = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    for (name, mime, first, again) in [
        ("logo.svg", "image/svg+xml", clean.clone(), evil.clone()),
        ("cups.jpg", "image/jpeg", gps.clone(), gps.clone()),
    ] {
        let p = presign_ok(&s, name, mime, first.len()).await;
        let url = p["uploadUrl"].as_str().expect("url");
        assert_eq!(put(url, mime, first).await, StatusCode::OK);
        let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{name}");
        let item: Value = resp.json().await.expect("json");
        let served = s.served(&item["data"]).await;
        assert_eq!(
            put(url, mime, again).await,
            StatusCode::OK,
            "the URL still PUTs"
        );
        assert_eq!(s.served(&item["data"]).await, served, "{name}: unchanged");
        let confirmed_again = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
        assert_eq!(
            error_code(confirmed_again, StatusCode::BAD_REQUEST).await,
            "already_confirmed"
        );
        if mime == "image/jpeg" {
            assert!(served.len() < gps.len(), "stripped of its GPS block");
        } else {
            assert!(!String::from_utf8_lossy(&served).contains("script"));
        }
    }
}

/// Confirms raced by PUTs of other bytes to the same URL: whatever the confirm answers,
/// what it made an item of is what it checked.
#[tokio::test]
async fn a_put_racing_a_confirm_never_gets_unchecked_bytes_served() {
    let (s, _) = spawn_s3(|_| {}).await;
    let clean = br#"<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>"#.to_vec();
    let mut evil =
        br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    evil.resize(clean.len(), b' ');
    for round in 0..6 {
        let p = presign_ok(&s, "race.svg", "image/svg+xml", clean.len()).await;
        let url = p["uploadUrl"].as_str().expect("url").to_owned();
        assert_eq!(
            put(&url, "image/svg+xml", clean.clone()).await,
            StatusCode::OK
        );
        let racer = {
            let (url, evil) = (url.clone(), evil.clone());
            tokio::spawn(async move {
                for _ in 0..5 {
                    put(&url, "image/svg+xml", evil.clone()).await;
                }
            })
        };
        let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        racer.await.expect("racer");
        if status == StatusCode::CREATED {
            let served = s.served(&body["data"]).await;
            assert!(
                !String::from_utf8_lossy(&served).contains("script"),
                "round {round}"
            );
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "round {round}: {body}");
        }
    }
}

/// Confirms of one upload run one at a time: a second sent while the first works is
/// refused (409 `confirm_in_progress`) without touching the key, so two attempts never
/// write it at once (one copying new bytes over what the other checked, or deleting what
/// the other is about to record). A refused confirm frees the upload for a retry at once.
#[tokio::test]
async fn confirms_of_one_upload_run_one_at_a_time_and_a_refused_one_frees_it() {
    let (s, _) = spawn_s3(|_| {}).await;
    let mut pdf = fixture("pdf/ltnews18_1page.pdf");
    pdf.resize(6 * 1024 * 1024, b' '); // a copy worth waiting for
    for round in 0..4 {
        let p = presign_ok(&s, "twice.pdf", "application/pdf", pdf.len()).await;
        let url = p["uploadUrl"].as_str().expect("url").to_owned();
        assert_eq!(
            put(&url, "application/pdf", pdf.clone()).await,
            StatusCode::OK
        );
        let key = json!({"storageKey": p["storageKey"]});
        let (a, b) = tokio::join!(confirm(&s, key.clone()), confirm(&s, key.clone()));
        let mut outcomes = Vec::new();
        for resp in [a, b] {
            let status = resp.status();
            let body: Value = resp.json().await.expect("json");
            outcomes.push((status, body));
        }
        outcomes.sort_by_key(|(status, _)| *status);
        let (won, lost) = (&outcomes[0], &outcomes[1]);
        assert_eq!(won.0, StatusCode::CREATED, "round {round}: {outcomes:?}");
        let code = lost.1["error"]["code"].as_str().unwrap_or_default();
        assert!(
            matches!(
                (lost.0, code),
                (StatusCode::CONFLICT, "confirm_in_progress")
                    | (StatusCode::BAD_REQUEST, "already_confirmed")
            ),
            "round {round}: {outcomes:?}"
        );
        assert_eq!(s.served(&won.1["data"]).await, pdf, "round {round}");
    }
    // Refused (its size is not the presigned one), then PUT right and confirmed at once.
    let p = presign_ok(&s, "again.pdf", "application/pdf", pdf.len()).await;
    let url = p["uploadUrl"].as_str().expect("url").to_owned();
    assert_eq!(
        put(&url, "application/pdf", pdf[..pdf.len() - 1].to_vec()).await,
        StatusCode::OK
    );
    let key = json!({"storageKey": p["storageKey"]});
    let refused = confirm(&s, key.clone()).await;
    assert_eq!(
        error_code(refused, StatusCode::BAD_REQUEST).await,
        "size_mismatch"
    );
    assert_eq!(
        put(&url, "application/pdf", pdf.clone()).await,
        StatusCode::OK
    );
    assert_eq!(confirm(&s, key).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn presign_validates_its_request() {
    let (s, _) = spawn_s3(|_| {}).await;
    for (body, code) in [
        (
            json!({"mimeType": "image/png", "size": 10}),
            "invalid_filename",
        ),
        (
            json!({"filename": "", "mimeType": "image/png", "size": 10}),
            "invalid_filename",
        ),
        (
            json!({"filename": "a.exe", "mimeType": "application/x-msdownload", "size": 10}),
            "invalid_mime_type",
        ),
        (
            json!({"filename": "a.png", "size": 10}),
            "invalid_mime_type",
        ),
        (
            json!({"filename": "a.png", "mimeType": "image/png", "size": 0}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.png", "mimeType": "image/png", "size": 524_288_001}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.png", "mimeType": "image/png", "size": "10"}),
            "invalid_size",
        ),
        (
            json!({"filename": "a.png", "mimeType": "image/png"}),
            "invalid_size",
        ),
    ] {
        let resp = presign(&s, body.clone()).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            code,
            "{body}"
        );
    }
    let read = s
        .request(Method::POST, "/api/v1/media/presign", Some(&s.read_key))
        .json(&json!({"filename": "a.png", "mimeType": "image/png", "size": 10}))
        .send()
        .await
        .expect("presign");
    assert_eq!(read.status(), StatusCode::FORBIDDEN);
    let ok = presign_ok(&s, "../../evil name.png", "image/png", 524_288_000).await;
    assert!(
        ok["storageKey"]
            .as_str()
            .is_some_and(|k| !k.contains("..") && !k.contains("evil"))
    );
}

#[tokio::test]
async fn expired_unconfirmed_uploads_are_swept() {
    let (s, _) = spawn_s3(|s3| s3.presign_expiry_secs = 1).await;
    let pdf = fixture("pdf/ltnews18_1page.pdf");
    let p = presign_ok(&s, "late.pdf", "application/pdf", pdf.len()).await;
    let url = p["uploadUrl"].as_str().expect("url");
    assert_eq!(put(url, "application/pdf", pdf).await, StatusCode::OK);
    let public_url = p["publicUrl"].as_str().expect("url").to_owned();
    let staged = staged_url(&p);
    assert_eq!(s.get(&staged, None).await.status(), StatusCode::OK);
    assert_eq!(
        s.get(&public_url, None).await.status(),
        StatusCode::NOT_FOUND,
        "an upload is not at its public URL before it is confirmed"
    );

    // The sweep runs at start and every minute: restart after the expiry.
    let dir = s.stop().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = TestServer::spawn_in(dir, |_| {}).await;
    s.until_not_found(&staged).await;
    // The sweep deletes the object, then forgets the presign: in between, a confirm is
    // told the presign expired; after, that there is nothing to confirm.
    for _ in 0..100 {
        let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
        if resp.status() == StatusCode::NOT_FOUND {
            assert_eq!(error_code(resp, StatusCode::NOT_FOUND).await, "not_found");
            return;
        }
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "presign_expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the expired presign was never forgotten");
}

#[tokio::test]
async fn hostile_files_through_presign_and_confirm_are_refused_and_removed() {
    let (s, _) = spawn_s3(|_| {}).await;
    for entry in crate::common::manifest().iter().filter(|e| {
        e["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("hostile/"))
            && e["size_bytes"].as_u64().is_some_and(|n| n > 0)
    }) {
        let path = entry["path"].as_str().expect("path");
        let bytes = fixture(path);
        // Declare what the name claims (the browser's guess), not what the bytes are.
        let name = entry["upload_filename"].as_str().expect("name");
        let claimed = match name.rsplit('.').next().unwrap_or("") {
            "png" => "image/png",
            "gif" => "image/gif",
            "svg" => "image/svg+xml",
            "pdf" => "application/pdf",
            "mp4" => "video/mp4",
            _ => "image/jpeg",
        };
        let p = presign_ok(&s, name, claimed, bytes.len()).await;
        let url = p["uploadUrl"].as_str().expect("url");
        assert_eq!(put(url, claimed, bytes).await, StatusCode::OK, "{path}");
        let resp = confirm(&s, json!({"storageKey": p["storageKey"]})).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        let public_url = p["publicUrl"].as_str().expect("url");
        if entry["expected_outcome"] == "reject" || entry["expected_mime"] != claimed {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
            s.until_not_found(public_url).await;
        } else {
            assert!(
                status == StatusCode::CREATED || status == StatusCode::BAD_REQUEST,
                "{path}: {body}"
            );
            if status == StatusCode::BAD_REQUEST {
                s.until_not_found(public_url).await;
            } else {
                let filename = body["data"]["filename"].as_str().expect("filename");
                assert!(
                    !filename.contains('/') && !filename.contains('\u{202E}'),
                    "{path}"
                );
            }
        }
    }
}

/// The fixture MP4 rebuilt as a camera writes it: `ftyp`, then `len` bytes of media data,
/// then the `moov` at the end (the layout that makes a probe look far).
fn mp4_with_moov_last(len: usize) -> Vec<u8> {
    let src = fixture("video/bigbuckbunny_1280x720_faststart.mp4");
    let mut boxes = std::collections::HashMap::new();
    let mut at = 0;
    while at + 8 <= src.len() {
        let size = u32::from_be_bytes(src[at..at + 4].try_into().expect("size")) as usize;
        boxes.insert(src[at + 4..at + 8].to_vec(), src[at..at + size].to_vec());
        at += size;
    }
    let mut out = boxes[&b"ftyp".to_vec()].clone();
    out.extend_from_slice(&((len + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    out.resize(out.len() + len, 0);
    out.extend_from_slice(&boxes[&b"moov".to_vec()]);
    out
}

/// Confirming a 200 MB video reads its head and its `moov` in ranges, a few hundred KB,
/// never the whole object (it used to download all of it into a temp file).
#[tokio::test]
async fn confirming_a_large_video_reads_only_its_head_and_moov() {
    let (s, _) = spawn_s3(|_| {}).await;
    let video = mp4_with_moov_last(200 << 20);
    let size = video.len();
    let p = presign_ok(&s, "clip.mp4", "video/mp4", size).await;
    let upload_url = p["uploadUrl"].as_str().expect("uploadUrl");
    assert_eq!(put(upload_url, "video/mp4", video).await, StatusCode::OK);
    let read_before = bytes_read(&s).await;
    let started = std::time::Instant::now();
    let resp = confirm(
        &s,
        json!({"storageKey": p["storageKey"], "filename": "clip.mp4",
               "mimeType": "video/mp4", "size": size}),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let item: Value = resp.json().await.expect("json");
    let item = &item["data"];
    assert_eq!(item["size"], size);
    assert_eq!(
        (&item["width"], &item["height"]),
        (&json!(1280), &json!(720))
    );
    assert!(item["duration"].as_f64().is_some_and(|d| d > 0.0), "{item}");
    // Other tests confirm small files meanwhile: the bound leaves room for them.
    let read = bytes_read(&s).await - read_before;
    assert!(read < 8.0 * 1024.0 * 1024.0, "{read} bytes read of {size}");
    assert!(read > 0.0, "the head and the moov were read");
    println!("confirmed a {size}-byte video in {took:?}, reading {read} bytes");
}

/// Bytes of presigned uploads read back to be checked, whole or in ranges.
async fn bytes_read(s: &TestServer) -> f64 {
    let scrape = s.get("/metrics", None).await.text().await.expect("scrape");
    [
        "darkroom_storage_fetched_bytes_total",
        "darkroom_storage_ranged_read_bytes_total",
    ]
    .iter()
    .filter_map(|name| crate::common::sample(&scrape, name))
    .sum()
}
