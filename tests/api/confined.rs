//! API keys limited to a folder: confined on every route of the router's table (a new
//! route fails `every_route_confines_a_folder_limited_key` until it says what such a key
//! gets there), and made by the keys API and `darkroom keys create --folder`.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use std::time::Duration;

use crate::common::{Binary, TestServer, fixture, holds_within};

const PDF: &str = "pdf/ltnews18_1page.pdf";
const JPEG: &str = "jpeg/hopper_128x128.jpg";
const HOME: &str = "/clients/acme";

/// A key of `scope` limited to `folder`, made through the keys API.
async fn limited_key(s: &TestServer, scope: &str, folder: &str) -> String {
    let resp = s
        .request(Method::POST, "/api/v1/keys", Some(&s.admin_key))
        .json(&json!({"scope": scope, "name": "acme", "folder": folder}))
        .send()
        .await
        .expect("create key");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["data"]["folder"], folder, "{body}");
    body["data"]["key"].as_str().expect("key").to_owned()
}

async fn upload_as(
    s: &TestServer,
    key: &str,
    fields: &[(&str, &str)],
    file: &str,
) -> reqwest::Response {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let name = file.rsplit('/').next().expect("name").to_owned();
    form = form.part("files", Part::bytes(fixture(file)).file_name(name));
    s.request(Method::POST, "/api/v1/media?wait=true", Some(key))
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

async fn item_in(s: &TestServer, folder: &str, file: &str) -> Value {
    let resp = upload_as(s, &s.write_key, &[("folder", folder)], file).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    body["data"][0].clone()
}

async fn send(
    s: &TestServer,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> StatusCode {
    let mut rb = s.request(method, path, Some(key));
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    rb.send().await.expect("send").status()
}

/// Every route, and what a write key limited to `/clients/acme` gets for what lies outside
/// it: 404 as for something that does not exist (or, for routes no folder bounds, what any
/// write key gets).
#[tokio::test]
async fn every_route_confines_a_folder_limited_key() {
    let s = TestServer::spawn().await;
    let key = limited_key(&s, "write", HOME).await;
    let inside = item_in(&s, &format!("{HOME}/2026"), JPEG).await;
    let outside = item_in(&s, "/clients/acme-old", JPEG).await;
    let (inside_id, outside_id) = (
        inside["id"].as_str().expect("id"),
        outside["id"].as_str().expect("id"),
    );
    let outside_path = format!("/api/v1/media/{outside_id}");
    let create = json!({"path": "/clients/other"});
    assert_eq!(
        send(
            &s,
            &s.write_key,
            Method::POST,
            "/api/v1/media/folders",
            Some(create)
        )
        .await,
        StatusCode::CREATED
    );
    let not_found = StatusCode::NOT_FOUND;
    for (method, template) in darkroom::http::router::TABLE {
        match (*method, *template) {
            // The public API, public files, operations, docs: no key bounds them.
            ("GET" | "OPTIONS", "/api/v1/public/media" | "/api/v1/public/media/{id}")
            | ("GET", "/api/v1/public/media/{id}/crop")
            | (
                "GET",
                "/uploads/{year}/{month}/{file}" | "/uploads/private/{year}/{month}/{file}",
            ) => {}
            (
                "GET",
                "/healthz"
                | "/readyz"
                | "/metrics"
                | "/api/v1/openapi.json"
                | "/docs"
                | "/docs/{file}"
                | "/",
            ) => {}
            // Keys and webhooks: an admin key is never limited, so a limited key manages
            // none (a webhook hears of the whole library).
            ("GET" | "POST", "/api/v1/keys")
            | ("DELETE", "/api/v1/keys/{id}")
            | ("GET" | "POST", "/api/v1/webhooks")
            | ("DELETE", "/api/v1/webhooks/{id}")
            | ("POST", "/api/v1/webhooks/{id}/test")
            | ("GET", "/api/v1/webhooks/{id}/deliveries") => {
                let id = if template.contains("webhooks") {
                    "wh_0000000000000000"
                } else {
                    "AbCdEfGh"
                };
                let path = template.replace("{id}", id);
                let m = Method::from_bytes(method.as_bytes()).expect("method");
                let body = (*method == "POST").then(|| json!({"scope": "read"}));
                assert_eq!(
                    send(&s, &key, m, &path, body).await,
                    StatusCode::FORBIDDEN,
                    "{method} {template}"
                );
            }
            ("GET", "/api/v1/media") => {
                let page = s.get("/api/v1/media", Some(&key)).await;
                assert_eq!(page.status(), StatusCode::OK);
                let page: Value = page.json().await.expect("json");
                let ids: Vec<&str> = page["data"]
                    .as_array()
                    .expect("data")
                    .iter()
                    .map(|i| i["id"].as_str().expect("id"))
                    .collect();
                assert_eq!(
                    (ids, page["total"].as_u64()),
                    (vec![inside_id], Some(1)),
                    "its subtree only"
                );
                let folders: Vec<&str> = page["folders"]
                    .as_array()
                    .expect("folders")
                    .iter()
                    .map(|f| f.as_str().expect("f"))
                    .collect();
                assert!(folders.iter().all(|f| f.starts_with(HOME)), "{folders:?}");
                let searched = s.get("/api/v1/media?search=hopper", Some(&key)).await;
                let searched: Value = searched.json().await.expect("json");
                assert_eq!(searched["total"], 1, "{searched}");
                for folder in ["/clients/acme-old", "/clients", "/"] {
                    let path = format!("/api/v1/media?folder={folder}");
                    assert_eq!(s.get(&path, Some(&key)).await.status(), not_found, "{path}");
                }
                let own = format!("/api/v1/media?folder={HOME}/2026");
                assert_eq!(s.get(&own, Some(&key)).await.status(), StatusCode::OK);
            }
            ("POST", "/api/v1/media") => {
                let before = s.library.stored_files().await;
                let resp = upload_as(&s, &key, &[("folder", "/clients/acme-old")], PDF).await;
                assert_eq!(resp.status(), not_found, "upload outside");
                let gone = || async { s.library.stored_files().await == before };
                assert!(
                    holds_within(Duration::from_secs(10), gone).await,
                    "nothing of it is kept"
                );
                let resp = upload_as(&s, &key, &[], PDF).await;
                assert_eq!(resp.status(), StatusCode::CREATED);
                let made: Value = resp.json().await.expect("json");
                assert_eq!(made["data"][0]["folder"], HOME, "lands in the key's folder");
                let below = upload_as(&s, &key, &[("folder", &format!("{HOME}/deep"))], PDF).await;
                assert_eq!(below.status(), StatusCode::CREATED);
            }
            ("GET", "/api/v1/media/{id}") => {
                // Exactly the answer for an id that does not exist.
                let answer = |path: String| {
                    let s = &s;
                    let key = key.clone();
                    async move {
                        let resp = s.get(&path, Some(&key)).await;
                        (resp.status(), resp.text().await.expect("body"))
                    }
                };
                let unknown = answer("/api/v1/media/media_0000000000000000".into()).await;
                assert_eq!(answer(outside_path.clone()).await, unknown);
                assert_eq!(unknown.0, not_found);
                let own = format!("/api/v1/media/{inside_id}");
                assert_eq!(s.get(&own, Some(&key)).await.status(), StatusCode::OK);
            }
            ("PATCH", "/api/v1/media/{id}") => {
                let body = Some(json!({"alt": "mine now"}));
                assert_eq!(
                    send(&s, &key, Method::PATCH, &outside_path, body).await,
                    not_found
                );
                let own = format!("/api/v1/media/{inside_id}");
                let out = Some(json!({"folder": "/clients/acme-old"}));
                assert_eq!(
                    send(&s, &key, Method::PATCH, &own, out).await,
                    not_found,
                    "moved out"
                );
                let within = Some(json!({"folder": format!("{HOME}/moved")}));
                assert_eq!(
                    send(&s, &key, Method::PATCH, &own, within).await,
                    StatusCode::OK
                );
            }
            ("DELETE", "/api/v1/media/{id}") => {
                assert_eq!(
                    send(&s, &key, Method::DELETE, &outside_path, None).await,
                    not_found
                );
            }
            ("PUT", "/api/v1/media/{id}/file") => {
                let form = Form::new().part("file", Part::bytes(fixture(JPEG)).file_name("x.jpg"));
                let resp = s
                    .request(Method::PUT, &format!("{outside_path}/file"), Some(&key))
                    .multipart(form)
                    .send()
                    .await
                    .expect("replace");
                assert_eq!(resp.status(), not_found);
            }
            ("POST", "/api/v1/media/{id}/crops") => {
                let body = Some(json!({"width": 10, "height": 10}));
                let path = format!("{outside_path}/crops");
                assert_eq!(send(&s, &key, Method::POST, &path, body).await, not_found);
            }
            ("GET", "/api/v1/media/folders") => {
                let folders = s.get("/api/v1/media/folders", Some(&key)).await;
                let folders: Value = folders.json().await.expect("json");
                let list = folders["folders"].as_array().expect("folders");
                assert!(
                    !list.is_empty()
                        && list
                            .iter()
                            .all(|f| f.as_str().expect("f").starts_with(HOME)),
                    "{folders}"
                );
            }
            ("POST", "/api/v1/media/folders") => {
                let out = Some(json!({"path": "/clients/new"}));
                assert_eq!(
                    send(&s, &key, Method::POST, "/api/v1/media/folders", out).await,
                    not_found
                );
                let own = Some(json!({"path": format!("{HOME}/new")}));
                assert_eq!(
                    send(&s, &key, Method::POST, "/api/v1/media/folders", own).await,
                    StatusCode::CREATED
                );
            }
            ("DELETE", "/api/v1/media/folders") => {
                let path = "/api/v1/media/folders?path=/clients/other";
                assert_eq!(send(&s, &key, Method::DELETE, path, None).await, not_found);
                let all = s.get_json("/api/v1/media/folders").await;
                assert!(
                    all["folders"]
                        .as_array()
                        .expect("folders")
                        .contains(&json!("/clients/other"))
                );
            }
            // A presign is bound to no folder; its confirm is (and needs S3).
            ("POST", "/api/v1/media/presign") => {}
            ("POST", "/api/v1/media/confirm") => confirm_is_confined(&s, &key).await,
            other => panic!("{other:?}: say what a folder-limited key gets on this route"),
        }
    }
    // Nothing outside changed.
    let after = s.get_json(&outside_path).await["data"].clone();
    assert_eq!(after["alt"], outside["alt"]);
    assert_eq!(after["folder"], "/clients/acme-old");
}

#[tokio::test]
async fn admin_keys_are_never_limited_and_the_cli_makes_limited_keys() {
    let s = TestServer::spawn().await;
    let resp = s
        .request(Method::POST, "/api/v1/keys", Some(&s.admin_key))
        .json(&json!({"scope": "admin", "folder": HOME}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    for bad in [json!("no-slash"), json!(3), json!("/a/../b")] {
        let resp = s
            .request(Method::POST, "/api/v1/keys", Some(&s.admin_key))
            .json(&json!({"scope": "read", "folder": bad}))
            .send()
            .await
            .expect("create");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let read = limited_key(&s, "read", HOME).await;
    assert_eq!(
        s.get("/api/v1/media", Some(&read)).await.status(),
        StatusCode::OK
    );
    let resp = upload_as(&s, &read, &[], PDF).await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a read key stays a read key"
    );
    let library = s.stop().await;

    let dir = library.path();
    let out = Binary::command(dir)
        .args(["keys", "create", "--scope", "write", "--folder", HOME])
        .output()
        .expect("keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Binary::command(dir)
        .args(["keys", "create", "--scope", "admin", "--folder", HOME])
        .output()
        .expect("keys create");
    assert!(!out.status.success(), "an admin key cannot be limited");
    let listed = Binary::command(dir)
        .args(["keys", "list"])
        .output()
        .expect("keys list");
    let listed = String::from_utf8(listed.stdout).expect("utf8");
    assert!(
        listed
            .lines()
            .any(|l| l.ends_with(&format!("\t{HOME}")) && l.contains("\twrite\t")),
        "{listed}"
    );
}

/// On S3: a real upload confirmed outside the key's folder is 404, and into it (without a
/// folder) lands in its root. On local storage confirm is not there for anyone (400).
async fn confirm_is_confined(s: &TestServer, key: &str) {
    let confirm = |body: Value| {
        s.request(Method::POST, "/api/v1/media/confirm", Some(key))
            .json(&body)
            .send()
    };
    if !s.library.is_s3() {
        let resp = confirm(json!({"storageKey": "2026/01/none.pdf"}))
            .await
            .expect("confirm");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        return;
    }
    let bytes = fixture(PDF);
    let presign = json!({"filename": "c.pdf", "mimeType": "application/pdf", "size": bytes.len()});
    let resp = s
        .request(Method::POST, "/api/v1/media/presign", Some(key))
        .json(&presign)
        .send()
        .await
        .expect("presign");
    assert_eq!(resp.status(), StatusCode::OK);
    let presigned: Value = resp.json().await.expect("json");
    let put = s
        .client
        .put(presigned["uploadUrl"].as_str().expect("url"))
        .header("content-type", "application/pdf")
        .body(bytes)
        .send()
        .await
        .expect("PUT");
    assert!(put.status().is_success());
    let storage_key = presigned["storageKey"].clone();
    let body = json!({"storageKey": storage_key, "folder": "/clients/other"});
    let out = confirm(body).await.expect("confirm");
    assert_eq!(out.status(), StatusCode::NOT_FOUND, "confirm outside");
    let home = confirm(json!({"storageKey": storage_key}))
        .await
        .expect("confirm");
    assert_eq!(home.status(), StatusCode::CREATED);
    let made: Value = home.json().await.expect("json");
    assert_eq!(made["data"]["folder"], HOME);
}
