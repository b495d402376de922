//! `PUT /api/v1/media/{id}/file`: a new file for an item, same id and metadata, new URL,
//! new variants; the old files go only after the new record is committed, and a crash in
//! the middle leaves one whole set of files, never a mix or an orphan.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Binary, Library, TestServer, error_code, fixture, is_original, storage_key};

on_every_backend!(a_replace_keeps_the_item_and_changes_its_files);

/// `PUT /api/v1/media/{id}/file` with `files` as `file` parts.
pub(crate) async fn replace(
    s: &TestServer,
    id: &str,
    files: &[(&str, Vec<u8>)],
) -> reqwest::Response {
    let mut form = Form::new();
    for (name, bytes) in files {
        form = form.part(
            "file",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    s.request(
        Method::PUT,
        &format!("/api/v1/media/{id}/file"),
        Some(&s.write_key),
    )
    .multipart(form)
    .send()
    .await
    .expect("PUT")
}

/// The keys of an item's files: its original and variants.
fn files_of(item: &Value) -> Vec<String> {
    let variants = item["variants"].as_array().into_iter().flatten();
    let mut keys: Vec<String> = std::iter::once(item)
        .chain(variants)
        .map(storage_key)
        .collect();
    keys.sort();
    keys
}

async fn a_replace_keeps_the_item_and_changes_its_files(s: TestServer) {
    let old = s.upload_waiting_one("jpeg/grace_hopper_512x600.jpg").await;
    let id = old["id"].as_str().expect("id").to_owned();
    let meta = json!({"alt": "Grace", "title": "Portrait", "focalX": 30, "folder": "/people"});
    let patched = s
        .send_json(Method::PATCH, &format!("/api/v1/media/{id}"), meta)
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let old = s.get_json(&format!("/api/v1/media/{id}")).await["data"].clone();
    let old_files = files_of(&old);

    // A PNG for a JPEG: another type of the same kind.
    let png = fixture("png/chessboard_200x200_rgb16.png");
    let resp = replace(&s, &id, &[("logo.png", png)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let new: Value = resp.json().await.expect("json");
    let new = &new["data"];
    assert_eq!(new["id"], old["id"]);
    for field in [
        "alt",
        "title",
        "description",
        "folder",
        "focalX",
        "focalY",
        "createdAt",
    ] {
        assert_eq!(new[field], old[field], "{field} is kept");
    }
    assert_eq!(
        (&new["mimeType"], &new["filename"]),
        (&json!("image/png"), &json!("logo.png"))
    );
    assert_eq!((&new["width"], &new["height"]), (&json!(200), &json!(200)));
    assert_ne!(
        new["url"], old["url"],
        "a new URL, so no cache serves the old bytes"
    );
    assert!(
        new["updatedAt"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{new}"
    );

    let done = s.until_processed(&id).await;
    assert_eq!(done["status"], "ready");
    assert_eq!(done["variants"].as_array().expect("variants").len(), 1);
    let public = s.get_json(&format!("/api/v1/public/media/{id}")).await;
    assert_eq!(public["data"]["updatedAt"], done["updatedAt"]);
    // The old original and variants are gone; the new set is all there is.
    for key in &old_files {
        s.until_not_found(&old_url(&s, &old, key)).await;
    }
    let mut stored = s.stored_files().await;
    stored.sort();
    assert_eq!(stored, files_of(&done));
}

/// The URL a key was served at, next to the item's own URL.
fn old_url(_s: &TestServer, item: &Value, key: &str) -> String {
    let url = item["url"].as_str().expect("url");
    let base = &url[..url.len() - storage_key(item).len()];
    format!("{base}{key}")
}

#[tokio::test]
async fn a_replace_that_is_refused_changes_nothing_and_keeps_nothing() {
    let s = TestServer::spawn().await;
    let item = s.upload_waiting_one("jpeg/grace_hopper_512x600.jpg").await;
    let id = item["id"].as_str().expect("id").to_owned();
    let before = s.stored_files().await;

    let pdf = fixture("pdf/ltnews18_1page.pdf");
    let code = error_code(
        replace(&s, &id, &[("a.pdf", pdf)]).await,
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(code.await, "kind_mismatch");
    let jpeg = fixture("jpeg/hopper_128x128.jpg");
    let two = replace(&s, &id, &[("a.jpg", jpeg.clone()), ("b.jpg", jpeg.clone())]).await;
    assert_eq!(
        error_code(two, StatusCode::BAD_REQUEST).await,
        "too_many_files"
    );
    let junk = replace(&s, &id, &[("a.jpg", b"not an image at all".to_vec())]).await;
    assert_eq!(junk.status(), StatusCode::BAD_REQUEST);
    let unknown = replace(&s, "media_AAAAAAAAAAAAAAAA", &[("a.jpg", jpeg.clone())]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let as_reader = s
        .request(
            Method::PUT,
            &format!("/api/v1/media/{id}/file"),
            Some(&s.read_key),
        )
        .multipart(Form::new().part("file", Part::bytes(jpeg).file_name("a.jpg")))
        .send()
        .await
        .expect("PUT");
    assert_eq!(as_reader.status(), StatusCode::FORBIDDEN);

    let now = s.get_json(&format!("/api/v1/media/{id}")).await["data"].clone();
    assert_eq!(now, item, "the item is as it was");
    // Refused files leave nothing behind (their guards remove them once settled).
    for _ in 0..50 {
        if s.stored_files().await == before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(s.stored_files().await, before);
}

/// SIGKILL at moments spread over a replace: after the restart (recovery and the start-up
/// sweep) the item has either its old or its new file, with every file of that set
/// stored and nothing else. On PostgreSQL the start-up sweep leaves stored files to the
/// periodic one (another node may be storing them), so the orphan goes a grace later.
#[tokio::test]
async fn a_crash_during_a_replace_leaves_one_whole_set_of_files() {
    let dir = Library::new().await;
    let key = Binary::create_key(dir.path(), "write");
    let big = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    for delay_ms in [0, 5, 15, 40, 120] {
        let server = Binary::start(dir.path());
        let up = server
            .upload(&key, &[("jpeg/hopper_128x128.jpg", "a.jpg")], &[])
            .await;
        assert_eq!(up.status(), StatusCode::CREATED);
        let item: Value = up.json().await.expect("json");
        let id = item["data"][0]["id"].as_str().expect("id").to_owned();
        let url = format!("{}/api/v1/media/{id}/file", server.base);
        let form = Form::new().part("file", Part::bytes(big.clone()).file_name("b.jpg"));
        let request = Client::new()
            .put(url)
            .bearer_auth(&key)
            .multipart(form)
            .send();
        let in_flight = tokio::spawn(request);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill();
        let _ = in_flight.await;

        let server = Binary::start_env(dir.path(), &[], dir.sweep_soon());
        let now = server.get_json(&key, &format!("/api/v1/media/{id}")).await;
        let original = storage_key(&now["data"]);
        let owned = |stored: &[String]| -> Vec<String> {
            stored.iter().filter(|k| is_original(k)).cloned().collect()
        };
        assert!(
            owned(&dir.stored_files().await).contains(&original),
            "after {delay_ms} ms: {original} missing"
        );
        // Originals: this item's, and those of the earlier rounds' items; none unclaimed.
        let listed = server.get_json(&key, "/api/v1/media?limit=100").await;
        let mut claimed: Vec<String> = listed["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(storage_key)
            .collect();
        claimed.sort();
        let stored = dir.after_sweep(|stored| owned(stored) == claimed).await;
        assert_eq!(
            owned(&stored),
            claimed,
            "after {delay_ms} ms: no orphan, no missing original"
        );
        server.kill();
    }
}

/// A replace reads the item's metadata when it commits, not when its upload began: a
/// PATCH that lands while the new file streams is kept (it was undone before).
#[tokio::test]
async fn a_patch_made_while_a_replacement_streams_is_kept() {
    let s = TestServer::spawn().await;
    let item = s
        .upload_one("jpeg/hopper_128x128.jpg", &[("alt", "before")])
        .await;
    let id = item["id"].as_str().expect("id").to_owned();
    let png = fixture("png/chessboard_200x200_rgb16.png");
    let (replacing, release) = s.held_multipart(
        Method::PUT,
        &format!("/api/v1/media/{id}/file"),
        vec![("file", "board.png", png)],
    );
    // The replace has begun (its head and half its file are in); now a PATCH lands.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let meta = json!({"alt": "during", "title": "T", "focalX": 20});
    let patched = s
        .send_json(Method::PATCH, &format!("/api/v1/media/{id}"), meta)
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    release.send(()).expect("release");
    let resp = replacing.await.expect("replace task");
    assert_eq!(resp.status(), StatusCode::OK);
    let now = s.get_json(&format!("/api/v1/media/{id}")).await["data"].clone();
    assert_eq!(now["mimeType"], "image/png", "the file was replaced");
    assert_eq!(
        (&now["alt"], &now["title"], &now["focalX"]),
        (&json!("during"), &json!("T"), &json!(20)),
        "the PATCH made during the replace is kept"
    );
}
