//! API keys managed while the server runs: an admin key creates, lists and revokes keys,
//! and a revoked key fails its very next request.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, error_code};

async fn create(s: &TestServer, key: &str, body: Value) -> reqwest::Response {
    s.request(Method::POST, "/api/v1/keys", Some(key))
        .json(&body)
        .send()
        .await
        .expect("send")
}

async fn revoke(s: &TestServer, key: &str, id: &str) -> reqwest::Response {
    s.request(Method::DELETE, &format!("/api/v1/keys/{id}"), Some(key))
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn an_admin_key_creates_lists_and_revokes_keys_without_a_restart() {
    let s = TestServer::spawn().await;
    let resp = create(
        &s,
        &s.admin_key,
        json!({"scope": "write", "name": "cms-production"}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers().get("cache-control").map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    let created: Value = resp.json().await.expect("json");
    let (key, id) = (
        created["data"]["key"].as_str().expect("key").to_owned(),
        created["data"]["id"].as_str().expect("id").to_owned(),
    );
    assert!(key.starts_with(&format!("drk_{id}_")), "{key}");
    assert_eq!(created["data"]["scope"], "write");
    assert_eq!(created["data"]["name"], "cms-production");

    // The new key works at once, with its scope.
    let item = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    let path = format!("/api/v1/media/{}", item["id"].as_str().expect("id"));
    assert_eq!(s.get(&path, Some(&key)).await.status(), StatusCode::OK);
    let folder = s
        .request(Method::POST, "/api/v1/media/folders", Some(&key))
        .json(&json!({"path": "/from-new-key"}));
    assert_eq!(
        folder.send().await.expect("send").status(),
        StatusCode::CREATED
    );

    // Listed without any secret.
    let listed = s
        .request(Method::GET, "/api/v1/keys", Some(&s.admin_key))
        .send()
        .await
        .expect("send");
    assert_eq!(listed.status(), StatusCode::OK);
    let text = listed.text().await.expect("text");
    assert!(!text.contains(&key[13..]), "a secret is listed: {text}");
    assert!(!text.contains("hash"), "{text}");
    let listed: Value = serde_json::from_str(&text).expect("json");
    let ours: Vec<&Value> = listed["data"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|k| k["id"] == id.as_str())
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["scope"], "write");
    assert!(
        ours[0]["createdAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(listed["data"].as_array().expect("array").len(), 4); // 3 of the tests + 1

    // Revoked: its next request is 401; a second revoke is 404.
    let resp = revoke(&s, &s.admin_key, &id).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        error_code(s.get(&path, Some(&key)).await, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );
    assert_eq!(
        error_code(revoke(&s, &s.admin_key, &id).await, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    assert_eq!(
        revoke(&s, &s.admin_key, "not-an-id!").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn only_admin_keys_manage_keys() {
    let s = TestServer::spawn().await;
    for key in [&s.write_key, &s.read_key] {
        let resp = create(&s, key, json!({"scope": "admin"})).await;
        assert_eq!(error_code(resp, StatusCode::FORBIDDEN).await, "forbidden");
        let list = s.get("/api/v1/keys", Some(key)).await;
        assert_eq!(list.status(), StatusCode::FORBIDDEN);
        let id = &s.admin_key[4..12];
        assert_eq!(revoke(&s, key, id).await.status(), StatusCode::FORBIDDEN);
    }
    let none = s.get("/api/v1/keys", None).await;
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    // An admin key does what a write key does.
    let folder = s
        .request(Method::POST, "/api/v1/media/folders", Some(&s.admin_key))
        .json(&json!({"path": "/by-admin"}));
    assert_eq!(
        folder.send().await.expect("send").status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn bad_requests_are_400_and_the_last_admin_key_stays() {
    let s = TestServer::spawn().await;
    for (body, code) in [
        (json!({}), "invalid_scope"),
        (json!({"scope": "root"}), "invalid_scope"),
        (json!({"scope": "Admin"}), "invalid_scope"),
        (json!({"scope": 1}), "invalid_scope"),
        (
            json!({"scope": "read", "name": "x".repeat(101)}),
            "invalid_name",
        ),
        (json!({"scope": "read", "name": "a\nb"}), "invalid_name"),
        (json!({"scope": "read", "name": 7}), "invalid_name"),
    ] {
        let resp = create(&s, &s.admin_key, body.clone()).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            code,
            "{body}"
        );
    }
    let not_json = s
        .request(Method::POST, "/api/v1/keys", Some(&s.admin_key))
        .body("scope=read")
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_code(not_json, StatusCode::BAD_REQUEST).await,
        "invalid_json"
    );

    // The only admin key cannot revoke itself; with a second one, it can.
    let own_id = s.admin_key[4..12].to_owned();
    let resp = revoke(&s, &s.admin_key, &own_id).await;
    assert_eq!(
        error_code(resp, StatusCode::CONFLICT).await,
        "last_admin_key"
    );
    let second: Value = create(&s, &s.admin_key, json!({"scope": "admin"}))
        .await
        .json()
        .await
        .expect("json");
    let second = second["data"]["key"].as_str().expect("key").to_owned();
    assert_eq!(revoke(&s, &second, &own_id).await.status(), StatusCode::OK);
    assert_eq!(
        s.get("/api/v1/keys", Some(&s.admin_key)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.get("/api/v1/keys", Some(&second)).await.status(),
        StatusCode::OK
    );
}
