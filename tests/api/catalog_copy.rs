//! `darkroom catalog copy`: a single node's redb catalog moved into PostgreSQL keeps its
//! items, ids, keys, folders and URLs; a second copy into the same database is refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Binary, Catalog, Files, Library, ScratchDb, TestServer, pinned};
use darkroom::config::Secret;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redb_library_moves_into_postgres_with_its_ids_keys_and_urls() {
    if !pinned() {
        return;
    }
    let s = TestServer::spawn_in(Library::of(Catalog::Redb, Files::Disk).await, |_| {}).await;
    // A webhook whose receiver cannot be reached here: its events wait in its outbox.
    let hook = s
        .request(Method::POST, "/api/v1/webhooks", Some(&s.admin_key))
        .json(&json!({"url": "https://hooks.invalid/in", "events": ["*"]}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(hook.status(), StatusCode::CREATED);
    let admin_key = s.admin_key.clone();
    let photo = s.upload_waiting_one("jpeg/grace_hopper_512x600.jpg").await;
    let doc = s
        .upload_one("pdf/ltnews18_1page.pdf", &[("alt", "Straße plan")])
        .await;
    let moved = s.upload_one("png/chessboard_200x200_rgb16.png", &[]).await;
    let folder = s
        .send_json(
            Method::POST,
            "/api/v1/media/folders",
            json!({"path": "/kept"}),
        )
        .await;
    assert_eq!(folder.status(), StatusCode::CREATED);
    let moved_path = format!("/api/v1/media/{}", moved["id"].as_str().expect("id"));
    let patched = s
        .send_json(Method::PATCH, &moved_path, json!({"folder": "/kept/sub"}))
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    // Their jobs done (the PDF's poster too), nothing changes (or adds an event) after the
    // snapshots below.
    s.until_processed(moved["id"].as_str().expect("id")).await;
    s.until_processed(doc["id"].as_str().expect("id")).await;
    let before: Value = s.get_json("/api/v1/media?limit=100").await;
    let folders_before = s.get_json("/api/v1/media/folders").await;
    let webhooks =
        |s: &TestServer, key: &str| s.request(Method::GET, "/api/v1/webhooks", Some(key)).send();
    let hooks_before: Value = webhooks(&s, &admin_key)
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let pending = hooks_before["data"][0]["pending"]
        .as_u64()
        .expect("pending");
    // Created and ready for each of the three, the folder, the PATCH.
    assert_eq!(pending, 3 * 2 + 1 + 1, "{hooks_before}");
    let write_key = s.write_key.clone();
    let dir = s.stop().await;

    let db = ScratchDb::new().await;
    let copy = || {
        let out = Binary::command(dir.path())
            .args(["catalog", "copy", "--to", &db.url])
            .output()
            .expect("darkroom catalog copy");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (ok, stdout, stderr) = copy();
    assert!(ok, "{stderr}");
    assert!(stdout.contains("media 3"), "{stdout}");
    assert!(stdout.contains("webhooks 1"), "{stdout}");
    assert!(
        stdout.contains(&format!("webhook_outbox {pending},")),
        "{stdout}"
    );
    assert!(stdout.contains("records read back and equal"), "{stdout}");
    let (ok, _, stderr) = copy();
    assert!(!ok, "a second copy into a used database is refused");
    assert!(stderr.contains("already holds items"), "{stderr}");

    let url = db.url.clone();
    let s = TestServer::spawn_in(dir, move |c| c.catalog.url = Some(Secret::new(url))).await;
    let after = s.get("/api/v1/media?limit=100", Some(&write_key)).await;
    assert_eq!(
        after.status(),
        StatusCode::OK,
        "the old key works on PostgreSQL"
    );
    let after: Value = after.json().await.expect("json");
    assert_eq!(after, before, "the same listing, ids, fields and URLs");
    assert_eq!(s.get_json("/api/v1/media/folders").await, folders_before);
    let hooks_after: Value = webhooks(&s, &admin_key)
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(hooks_after["data"][0]["id"], hooks_before["data"][0]["id"]);
    assert_eq!(
        hooks_after["data"][0]["pending"], pending,
        "the waiting events came along"
    );
    for item in [&photo, &doc] {
        let url = item["url"].as_str().expect("url");
        assert_eq!(s.get(url, None).await.status(), StatusCode::OK, "{url}");
    }
    let found = s.get_json("/api/v1/media?search=STRASSE").await;
    assert_eq!(found["total"], 1, "{found}");
    let kept = s.get_json("/api/v1/media?folder=/kept/sub").await;
    assert_eq!(kept["total"], 1, "{kept}");
    drop(s);
    drop(db);
}
