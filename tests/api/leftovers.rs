//! Nothing left behind by a client that goes away: an upload whose connection is reset
//! after its body leaves no file without a record, and the periodic sweep removes files
//! no record names (on disk and in the bucket) once they are older than the grace period.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use crate::common::{TestServer, fixture, holds_within, is_original, storage_key};

/// Bounded waits around cleanup that happens in the background.
const WITHIN: Duration = Duration::from_secs(20);

/// Storage keys of every item's original.
async fn recorded_originals(s: &TestServer) -> BTreeSet<String> {
    let page = s.get_json("/api/v1/media?limit=100").await;
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(storage_key)
        .collect()
}

/// Stored originals, without the variants.
async fn stored_originals(s: &TestServer) -> BTreeSet<String> {
    let stored = s.stored_files().await.into_iter();
    stored.filter(|k| is_original(k)).collect()
}

/// A whole multipart upload request for `bytes`, ready to write to a socket.
fn raw_upload(key: &str, filename: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let mut req = format!(
        "POST /api/v1/media HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend(body);
    req
}

#[tokio::test]
async fn uploads_whose_client_resets_after_the_body_leave_no_orphans() {
    let s = TestServer::spawn().await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let files = [
        (
            "a.jpg",
            fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg"),
        ),
        ("b.pdf", fixture("pdf/ltnews18_1page.pdf")),
        ("c.png", fixture("png/spacefun_2048x1542_palette.png")),
    ];
    for round in 0..30 {
        let (name, bytes) = &files[round % files.len()];
        let mut conn = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        conn.write_all(&raw_upload(&s.write_key, name, bytes))
            .await
            .expect("write");
        // Gone at once, with a reset: whatever the server was doing is abandoned.
        tokio::time::sleep(Duration::from_millis((round % 6) as u64 * 3)).await;
        conn.set_zero_linger().expect("linger");
        drop(conn);
    }
    let settled = holds_within(WITHIN, || async {
        let (stored, recorded) = (stored_originals(&s).await, recorded_originals(&s).await);
        stored.is_subset(&recorded)
    })
    .await;
    let orphans: Vec<String> = stored_originals(&s)
        .await
        .difference(&recorded_originals(&s).await)
        .cloned()
        .collect();
    assert!(settled, "files without a record: {orphans:?}");
}

async fn the_sweep_removes_unclaimed_files_and_keeps_the_rest(s: TestServer) {
    let item = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    let id = item["id"].as_str().expect("id");
    assert_eq!(s.until_processed(id).await["status"], "ready");
    let kept: BTreeSet<String> = s.stored_files().await.into_iter().collect();
    s.plant("2026/01/orphanorphanorphan0.jpg", b"left behind")
        .await;
    s.plant("2026/01/orphanorphanorphan0-400.webp", b"its variant")
        .await;
    let swept = holds_within(WITHIN, || async {
        let now: BTreeSet<String> = s.stored_files().await.into_iter().collect();
        now == kept
    })
    .await;
    assert!(swept, "left: {:?}", s.stored_files().await);
    let resp = s
        .get(&format!("/api/v1/media/{id}"), Some(&s.read_key))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

fn sweep_often(c: &mut darkroom::config::Config) {
    c.maintenance.orphan_sweep_secs = 1;
    c.maintenance.orphan_grace_secs = 2;
}

#[tokio::test]
async fn the_sweep_removes_unclaimed_files_on_disk() {
    let s = TestServer::spawn_with(sweep_often).await;
    the_sweep_removes_unclaimed_files_and_keeps_the_rest(s).await;
}

#[tokio::test]
async fn the_sweep_removes_unclaimed_objects_in_the_bucket() {
    let s = TestServer::spawn_s3_with(|_| {}, sweep_often).await;
    the_sweep_removes_unclaimed_files_and_keeps_the_rest(s).await;
}

#[tokio::test]
async fn young_files_are_left_for_a_later_sweep() {
    let s = TestServer::spawn_on_disk(|c| {
        c.maintenance.orphan_sweep_secs = 1;
        c.maintenance.orphan_grace_secs = 3600;
    })
    .await;
    // Serving means the start-up sweep (which spares nothing unclaimed) is over.
    assert_eq!(s.get("/healthz", None).await.status(), StatusCode::OK);
    s.plant("2026/01/youngyoungyoungyoung.jpg", b"in progress?")
        .await;
    let old = "2026/01/oldoldoldoldoldoldol.jpg";
    s.plant(old, b"long gone").await;
    let path = s.library.path().join("uploads").join(old);
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .append(true)
        .open(&path)
        .and_then(|f| f.set_modified(two_hours_ago))
        .expect("backdate");
    let swept = holds_within(WITHIN, || async { !path.exists() }).await;
    assert!(swept, "the old orphan was not swept");
    assert_eq!(
        s.stored_files().await,
        ["2026/01/youngyoungyoungyoung.jpg"],
        "the young one stays until it is older than the grace period"
    );
}

/// The sweep runs every second with a one-second grace while a two-file upload's second
/// part is held back for three: the first file, stored when its part ended, is held for
/// its request (it was swept before its record was written, leaving an item without its
/// original).
async fn the_sweep_leaves_files_of_uploads_in_progress_alone(s: TestServer) {
    let jpeg = fixture("jpeg/grace_hopper_512x600.jpg");
    let pdf = fixture("pdf/ltnews18_1page.pdf");
    let (upload, release) = s.held_multipart(
        reqwest::Method::POST,
        "/api/v1/media?wait=true",
        vec![
            ("files", "first.jpg", jpeg.clone()),
            ("files", "second.pdf", pdf),
        ],
    );
    tokio::time::sleep(Duration::from_secs(3)).await; // three sweeps past the grace
    release.send(()).expect("release");
    let resp = upload.await.expect("upload task");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: serde_json::Value = resp.json().await.expect("json");
    let first = &body["data"][0];
    assert_eq!(first["status"], "ready", "{first}");
    assert_eq!(
        s.served(first).await.len() as u64,
        first["size"].as_u64().expect("size")
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // more sweeps after the commit
    assert_eq!(stored_originals(&s).await, recorded_originals(&s).await);
}

mod the_sweep_leaves_files_of_uploads_in_progress_alone {
    use crate::common::TestServer;

    fn sweep_often(c: &mut darkroom::config::Config) {
        c.maintenance.orphan_sweep_secs = 1;
        c.maintenance.orphan_grace_secs = 1;
    }

    #[tokio::test]
    async fn local() {
        let s = TestServer::spawn_with(sweep_often).await;
        super::the_sweep_leaves_files_of_uploads_in_progress_alone(s).await
    }

    #[tokio::test]
    async fn s3() {
        let s = TestServer::spawn_s3_with(|_| {}, sweep_often).await;
        super::the_sweep_leaves_files_of_uploads_in_progress_alone(s).await
    }
}
