use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, error_code, header, without_processing};

on_every_backend!(
    get_patch_delete_lifecycle,
    patch_validation,
    public_item_is_cacheable,
);

async fn get_patch_delete_lifecycle(s: TestServer) {
    let item = s
        .upload_one("jpeg/grace_hopper_512x600.jpg", &[("alt", "Grace")])
        .await;
    let id = item["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/media/{id}");

    let got = s.get_json(&path).await;
    assert_eq!(
        without_processing(&got["data"]),
        without_processing(&item),
        "GET returns what the upload returned (processing may have moved on)"
    );
    assert_eq!(got["data"]["width"], 512);
    assert!(
        got["data"]["createdAt"]
            .as_str()
            .expect("ts")
            .ends_with('Z')
    );

    let patch = json!({
        "alt": "Rear Admiral Grace Hopper", "title": "Portrait", "description": "1984",
        "folder": "/people/navy", "focalX": 35, "focalY": 65.5
    });
    let resp = s.send_json(Method::PATCH, &path, patch).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let patched: Value = resp.json().await.expect("json");
    let d = &patched["data"];
    assert_eq!(
        (
            d["alt"].as_str(),
            d["title"].as_str(),
            d["description"].as_str()
        ),
        (
            Some("Rear Admiral Grace Hopper"),
            Some("Portrait"),
            Some("1984")
        )
    );
    assert_eq!(
        (
            d["folder"].as_str(),
            d["focalX"].as_i64(),
            d["focalY"].as_f64()
        ),
        (Some("/people/navy"), Some(35), Some(65.5))
    );
    assert_eq!(
        (d["id"].clone(), d["url"].clone(), d["size"].clone()),
        (
            item["id"].clone(),
            item["url"].clone(),
            item["size"].clone()
        )
    );
    assert_eq!(s.get_json(&path).await["data"], *d, "the change is stored");

    let moved = s.get_json("/api/v1/media?folder=/people/navy").await;
    assert_eq!(moved["total"], 1);
    assert_eq!(s.get_json("/api/v1/media?folder=/").await["total"], 0);
    let folders = s.get_json("/api/v1/media/folders").await;
    assert_eq!(folders["folders"], json!(["/", "/people", "/people/navy"]));

    let cleared = s
        .send_json(Method::PATCH, &path, json!({"title": null}))
        .await;
    let cleared: Value = cleared.json().await.expect("json");
    assert_eq!(cleared["data"]["title"], Value::Null);
    assert_eq!(
        cleared["data"]["alt"], "Rear Admiral Grace Hopper",
        "untouched fields stay"
    );

    let file_url = item["url"].as_str().expect("url").to_owned();
    assert_eq!(s.get(&file_url, None).await.status(), StatusCode::OK);
    let resp = s.delete_item(&id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"success": true})
    );
    assert_eq!(
        error_code(
            s.get(&path, Some(&s.write_key)).await,
            StatusCode::NOT_FOUND
        )
        .await,
        "not_found"
    );
    // Local files stop being served at once; bucket objects once the delete queue ran.
    s.until_not_found(&file_url).await;
    let public = s.get(&format!("/api/v1/public/media/{id}"), None).await;
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let again = s.delete_item(&id).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(s.get_json("/api/v1/media").await["total"], 0);
    assert_eq!(
        s.get_json("/api/v1/media/folders").await["folders"],
        json!(["/"])
    );

    // The delete queue removes the file itself shortly after.
    for _ in 0..50 {
        if s.stored_files().await.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the deleted item's file is still on disk");
}

async fn patch_validation(s: TestServer) {
    let item = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    let item = s.until_processed(item["id"].as_str().expect("id")).await;
    let path = format!("/api/v1/media/{}", item["id"].as_str().expect("id"));
    for (body, code) in [
        (json!({"focalX": 101}), "invalid_focal_point"),
        (json!({"focalY": -0.5}), "invalid_focal_point"),
        (json!({"focalX": "50"}), "invalid_focal_point"),
        (json!({"folder": "images"}), "invalid_folder"),
        (json!({"folder": "/a//b"}), "invalid_folder"),
        (json!({"filename": "x.jpg"}), "unknown_field"),
        (json!({"size": 1}), "unknown_field"),
        (json!({"alt": 42}), "invalid_field"),
        // No catalog can keep a NUL in text (PostgreSQL refuses it): refused everywhere.
        (json!({"alt": "a\u{0}b"}), "invalid_field"),
        (json!({"description": "\u{0}"}), "invalid_field"),
        (json!([1, 2]), "invalid_json"),
    ] {
        let resp = s.send_json(Method::PATCH, &path, body.clone()).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            code,
            "{body}"
        );
    }
    let garbage = s
        .request(Method::PATCH, &path, Some(&s.write_key))
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_code(garbage, StatusCode::BAD_REQUEST).await,
        "invalid_json"
    );
    let huge = json!({"alt": "x".repeat(100_000)});
    let resp = s.send_json(Method::PATCH, &path, huge).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(s.get_json(&path).await["data"], item, "nothing changed");

    let missing = s
        .send_json(
            Method::PATCH,
            "/api/v1/media/media_0000000000000000",
            json!({"alt": "x"}),
        )
        .await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let ok = s.send_json(Method::PATCH, &path, json!({})).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

async fn public_item_is_cacheable(s: TestServer) {
    let item = s
        .upload_one("png/chessboard_200x200_rgb16.png", &[("alt", "Board")])
        .await;
    // The ETag covers the processing state too: let it settle first.
    let item = s.until_processed(item["id"].as_str().expect("id")).await;
    let path = format!("/api/v1/public/media/{}", item["id"].as_str().expect("id"));
    let resp = s.get(&path, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(
        h.get("cache-control").map(|v| v.as_bytes()),
        Some(&b"public, max-age=3600"[..])
    );
    assert_eq!(
        h.get("access-control-allow-origin").map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    let etag = h
        .get("etag")
        .expect("etag")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["alt"], "Board");
    assert_eq!(body["data"]["width"], 200);
    assert!(body["data"].get("size").is_none() && body["data"].get("folder").is_none());

    let cached = s.get_with(&path, &[("If-None-Match", &etag)]).await;
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&cached, "etag").as_deref(), Some(etag.as_str()));

    let id = item["id"].as_str().expect("id");
    s.send_json(
        Method::PATCH,
        &format!("/api/v1/media/{id}"),
        json!({"alt": "Chess"}),
    )
    .await;
    let changed = s.get_with(&path, &[("If-None-Match", &etag)]).await;
    assert_eq!(
        changed.status(),
        StatusCode::OK,
        "a changed item gets a new ETag"
    );
    assert_ne!(header(&changed, "etag").as_deref(), Some(etag.as_str()));

    let unknown = s
        .get("/api/v1/public/media/media_0000000000000000", None)
        .await;
    assert_eq!(
        unknown
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    assert_eq!(
        error_code(unknown, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    assert_eq!(
        s.get("/api/v1/public/media/not-an-id", None).await.status(),
        StatusCode::NOT_FOUND
    );
}
