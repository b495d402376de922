//! The real binary, killed and restarted over the same data directory.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Binary, Library};

#[tokio::test]
async fn acknowledged_uploads_survive_a_kill() {
    let dir = Library::new().await;
    let key = Binary::create_key(dir.path(), "write");
    assert!(
        key.starts_with("drk_"),
        "keys create prints the key alone: {key:?}"
    );

    let server = Binary::start(dir.path());
    let client = reqwest::Client::new();
    let files = [
        ("jpeg/hopper_128x128.jpg", "h.jpg"),
        ("pdf/ltnews18_1page.pdf", "n.pdf"),
    ];
    let resp = server.upload(&key, &files, &[("folder", "/kept")]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    server.kill(); // SIGKILL: no graceful shutdown, no flush

    // Debris a crash can leave: a temp file and a stored file without a record.
    std::fs::write(dir.path().join("tmp/crashed.part"), b"half an upload").expect("tmp");
    dir.plant("2020/01/orphan.jpg", b"no record").await;

    let server = Binary::start_env(dir.path(), &[], dir.sweep_soon());
    for item in body["data"].as_array().expect("data") {
        let id = item["id"].as_str().expect("id");
        let got = client
            .get(format!("{}/api/v1/media/{id}", server.base))
            .bearer_auth(&key)
            .send()
            .await
            .expect("get");
        assert_eq!(got.status(), StatusCode::OK);
        let got: Value = got.json().await.expect("json");
        for field in ["filename", "mimeType", "size", "url", "folder", "createdAt"] {
            assert_eq!(got["data"][field], item[field], "{field}");
        }
        let file = client
            .get(server.url(item["url"].as_str().expect("url")))
            .send()
            .await
            .expect("file");
        assert_eq!(file.status(), StatusCode::OK);
        assert_eq!(
            file.bytes().await.expect("bytes").len() as u64,
            item["size"].as_u64().expect("size")
        );
    }
    let list: Value = client
        .get(format!("{}/api/v1/media?folder=/kept", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["total"], 2);
    // The orphan goes; the two originals stay (with the PDF's poster files, once made).
    let orphan = "2020/01/orphan.jpg".to_owned();
    let stored = dir.after_sweep(|stored| !stored.contains(&orphan)).await;
    assert!(
        !stored.contains(&orphan),
        "the orphan was swept: {stored:?}"
    );
    for item in list["data"].as_array().expect("data") {
        let key = crate::common::storage_key(item);
        assert!(stored.contains(&key), "{key} kept: {stored:?}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp"))
            .expect("tmp")
            .count(),
        0,
        "temp files swept"
    );
    server.kill();
}

#[tokio::test]
async fn first_start_prints_a_bootstrap_key_once() {
    let dir = Library::new().await;
    let mut child = Binary::command(dir.path())
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).expect("read");
    let _ = child.kill();
    let _ = child.wait();
    let key = line.split_whitespace().last().expect("key").to_owned();
    assert!(key.starts_with("drk_"), "{line}");

    let listed = Binary::command(dir.path())
        .args(["keys", "list"])
        .output()
        .expect("list");
    let listed = String::from_utf8(listed.stdout).expect("utf8");
    assert!(
        listed.contains("admin") && listed.contains("bootstrap"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "secrets are never listed");
    let id = &key[4..12];
    let revoke = || {
        Binary::command(dir.path())
            .args(["keys", "revoke", id])
            .output()
            .expect("revoke")
    };
    let last = revoke();
    assert!(!last.status.success(), "the last admin key stays");
    let said = String::from_utf8_lossy(&last.stderr);
    assert!(said.contains("last admin key"), "{said}");
    let another = Binary::command(dir.path())
        .args(["keys", "create", "--scope", "admin"])
        .output()
        .expect("create");
    assert!(another.status.success());
    assert!(revoke().status.success());
    assert!(!revoke().status.success(), "revoking an unknown key fails");
}

#[tokio::test]
async fn queued_deletes_finish_after_a_restart() {
    let s = crate::common::TestServer::spawn().await;
    let item = s
        .upload_one("jpeg/hopper_128x128.jpg", &[("folder", "/q")])
        .await;
    let id = item["id"].as_str().expect("id").to_owned();
    let dir = s.stop().await;
    assert_eq!(dir.stored_files().await.len(), 1);

    // As if the process died right after committing a delete, before removing the file.
    let catalog = dir.open_catalog().await;
    let queued = catalog
        .handle
        .delete_media(id.clone())
        .await
        .expect("delete");
    assert_eq!(queued.len(), 1);
    let pending = catalog.handle.pending_deletes().await.expect("pending");
    assert_eq!(pending, queued);
    catalog.close().await;

    let s = crate::common::TestServer::spawn_in(dir, |_| {}).await;
    assert_eq!(
        s.get(&format!("/api/v1/media/{id}"), Some(&s.write_key))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        s.stored_files().await.is_empty(),
        "the queued delete ran at start-up"
    );
    let dir = s.stop().await;
    let catalog = dir.open_catalog().await;
    let pending = catalog.handle.pending_deletes().await.expect("pending");
    assert!(pending.is_empty(), "and left the queue");
    catalog.close().await;
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly() {
    let dir = Library::new().await;
    let key = Binary::create_key(dir.path(), "write");
    let mut server = Binary::start(dir.path());
    let resp = server
        .upload(&key, &[("jpeg/hopper_128x128.jpg", "h.jpg")], &[])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = server.child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let status = status.expect("the server exits within 5 s of SIGTERM");
    assert!(status.success(), "clean exit: {status:?}");

    // A clean stop leaves the catalog consistent and unlocked for the next process.
    let catalog = dir.open_catalog().await;
    let page = catalog.handle.list(Default::default()).await.expect("list");
    assert_eq!(page.total, 1);
    catalog.close().await;
}

/// On SIGTERM the server drains first: `/readyz` answers 503 `draining` while requests
/// are still served, for `server.drain_secs`; then it exits (it used to close its
/// listener at once, so a load balancer never saw it not ready).
#[tokio::test]
async fn sigterm_drains_with_readyz_503_before_closing() {
    let dir = Library::new().await;
    let mut server = Binary::start_env(dir.path(), &[], &[("DARKROOM_SERVER__DRAIN_SECS", "3")]);
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/readyz", server.base)).send().await;
    assert_eq!(ready.expect("readyz").status(), StatusCode::OK);
    let pid = server.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut saw_draining = false;
    for _ in 0..100 {
        let Ok(resp) = client.get(format!("{}/readyz", server.base)).send().await else {
            break; // closed: the drain is over
        };
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = resp.json().await.expect("json");
            assert_eq!(body["status"], "draining");
            let served = client.get(format!("{}/healthz", server.base)).send().await;
            assert_eq!(served.expect("still served").status(), StatusCode::OK);
            saw_draining = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        saw_draining,
        "/readyz said draining while the server still served"
    );
    let mut status = None;
    for _ in 0..600 {
        if let Some(s) = server.child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(status.expect("exited after the drain").success());
}

#[tokio::test]
async fn an_upload_in_flight_during_sigterm_completes_and_is_kept() {
    let dir = Library::new().await;
    let key = Binary::create_key(dir.path(), "write");
    let mut server = Binary::start(dir.path());

    let jpeg = crate::common::fixture("jpeg/grace_hopper_512x600.jpg");
    let mut head =
        b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"g.jpg\"\r\n\r\n"
            .to_vec();
    head.extend_from_slice(&jpeg[..jpeg.len() / 2]);
    let mut tail = jpeg[jpeg.len() / 2..].to_vec();
    tail.extend_from_slice(b"\r\n--B--\r\n");
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(chunk), rx))
    });
    let request = reqwest::Client::new()
        .post(format!("{}/api/v1/media", server.base))
        .bearer_auth(&key)
        .header("content-type", "multipart/form-data; boundary=B")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let upload = tokio::spawn(request);
    tx.send(head).await.expect("first half");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let pid = server.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "still draining the upload"
    );
    tx.send(tail).await.expect("second half");
    drop(tx);

    let resp = upload
        .await
        .expect("join")
        .expect("the in-flight upload gets an answer");
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "graceful shutdown lets it finish"
    );
    let body: Value = resp.json().await.expect("json");
    let id = body["data"][0]["id"].as_str().expect("id").to_owned();
    let status = server.child.wait().expect("exit");
    assert!(status.success(), "{status:?}");

    let server = Binary::start(dir.path());
    let got = reqwest::Client::new()
        .get(format!("{}/api/v1/media/{id}", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(
        got.status(),
        StatusCode::OK,
        "a 201 during shutdown is never lost"
    );
    server.kill();
}
