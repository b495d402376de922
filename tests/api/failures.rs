//! When the world around Darkroom fails: a disk below its free-space floor refuses
//! uploads with 507 while deletes still work, and a frozen object store is reported by
//! `/readyz` (which never waits on it) and fails uploads within the configured deadlines,
//! until it answers again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{
    Library, TestServer, error_code, fixture, holds_within, sample, storage_key, until_readiness,
};

const PDF: &str = "pdf/ltnews18_1page.pdf";

#[tokio::test]
async fn below_the_free_space_floor_uploads_get_507_and_deletes_still_work() {
    let s = TestServer::spawn().await;
    let item = s.upload_one(PDF, &[]).await;
    let id = item["id"].as_str().expect("id").to_owned();
    let dir = s.stop().await;
    // No disk has this much free: the server is "full" from its first request.
    let s = TestServer::spawn_in(dir, |c| c.limits.min_free_bytes = u64::MAX / 2).await;
    let resp = s.upload(&[PDF], &[]).await;
    let message = resp.text().await.expect("body");
    let body: Value = serde_json::from_str(&message).expect("json");
    assert_eq!(body["error"]["status"], 507, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_storage");
    assert!(message.contains("out of space"), "{message}");
    let deleted = s.delete_item(&id).await;
    assert_eq!(
        deleted.status(),
        StatusCode::OK,
        "deleting frees space, so it works"
    );
    let ready = s.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["disk"], "low", "{ready}");
    let scrape = s.get("/metrics", None).await.text().await.expect("scrape");
    let declined = r#"darkroom_uploads_declined_total{reason="out_of_space"}"#;
    // The recorder is one per test process (other tests decline uploads too).
    assert!(
        sample(&scrape, declined).is_some_and(|n| n >= 1.0),
        "{declined}"
    );
    assert!(sample(&scrape, "darkroom_data_dir_free_bytes").is_some_and(|b| b > 0.0));
}

/// What the store behind the proxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Up,
    /// Accepts connections, reads and forwards nothing (what SIGSTOP does to a server);
    /// resumes where it was when thawed.
    Frozen,
    /// Every connection is dropped at once, new ones too (a killed server).
    Dead,
}

/// A loopback TCP proxy in front of the test S3 server, whose store can be frozen or
/// killed and brought back.
struct Faulty {
    url: String,
    store: tokio::sync::watch::Sender<Store>,
}

impl Faulty {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (store, state) = tokio::sync::watch::channel(Store::Up);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (mut state, upstream) = (state.clone(), upstream.clone());
                tokio::spawn(async move {
                    if usable(&mut state).await.is_none() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, state.clone()));
                    pump(sr, cw, state).await;
                });
            }
        });
        Self { url, store }
    }

    fn set(&self, store: Store) {
        self.store.send_replace(store);
    }
}

/// Waits while frozen; `None` once dead.
async fn usable(state: &mut tokio::sync::watch::Receiver<Store>) -> Option<()> {
    let now = *state.wait_for(|s| *s != Store::Frozen).await.ok()?;
    (now == Store::Up).then_some(())
}

async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut state: tokio::sync::watch::Receiver<Store>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = state.wait_for(|s| *s == Store::Dead) => return,
        };
        let Ok(n) = read else { return };
        if n == 0 || usable(&mut state).await.is_none() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A server on the test bucket behind a `Faulty` proxy, with short store deadlines.
async fn behind_faulty_store() -> (TestServer, Faulty) {
    let endpoint = std::env::var("S3_TEST_ENDPOINT").unwrap_or_default();
    let proxy = Faulty::start(endpoint.trim_start_matches("http://").to_owned()).await;
    let front = proxy.url.clone();
    let s = TestServer::spawn_s3_with(
        move |s3| {
            s3.endpoint = Some(front);
            (s3.connect_timeout_secs, s3.request_timeout_secs) = (1, 1);
            (s3.retry_timeout_secs, s3.max_retries) = (2, 1);
        },
        |c| {
            c.server.readiness_timeout_secs = 1;
            // The PDFs here stand for files that need no job (the bucket holds just the
            // originals); posters behind a faulty store are the jobs' retries, tested with
            // images.
            c.previews.pdftoppm = String::new();
        },
    )
    .await;
    (s, proxy)
}

/// Waits (bounded: 30 s) until the bucket holds exactly `keys`.
async fn until_bucket_holds(s: &TestServer, mut keys: Vec<String>) {
    keys.sort();
    let held = holds_within(Duration::from_secs(30), || async {
        s.stored_files().await == keys
    });
    if !held.await {
        let left = s.stored_files().await;
        panic!("the bucket holds {left:?}, the items {keys:?}");
    }
}

#[tokio::test]
async fn a_frozen_store_is_reported_and_fails_uploads_within_the_deadlines() {
    let (s, store) = behind_faulty_store().await;
    let before = s.upload_one(PDF, &[]).await;
    until_readiness(&s, StatusCode::OK).await;

    store.set(Store::Frozen);
    let started = Instant::now();
    let resp = s.upload(&[PDF], &[]).await;
    let waited = started.elapsed();
    let status = resp.status();
    assert!(
        status == StatusCode::BAD_GATEWAY || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}"
    );
    // The deadlines allow 1 s per request and 2 s with retries; generous slack on top.
    assert!(
        waited < Duration::from_secs(8),
        "an upload waited {waited:?}"
    );
    until_readiness(&s, StatusCode::SERVICE_UNAVAILABLE).await;
    let resp = s.upload(&[PDF], &[]).await;
    let code = error_code(resp, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(code, "storage_unavailable");

    store.set(Store::Up);
    until_readiness(&s, StatusCode::OK).await;
    let after = s.upload_one(PDF, &[]).await;
    for item in [&before, &after] {
        let id = item["id"].as_str().expect("id");
        let got = s
            .get(&format!("/api/v1/media/{id}"), Some(&s.read_key))
            .await;
        assert_eq!(got.status(), StatusCode::OK);
        assert_eq!(s.served(item).await, fixture(PDF));
    }
    // The PUT that failed while frozen reached the store at the thaw; it was queued for
    // deletion before its 502, and the queue is drained once the store answers again.
    until_bucket_holds(&s, vec![storage_key(&before), storage_key(&after)]).await;
}

#[tokio::test]
async fn a_store_killed_mid_upload_loses_nothing_acknowledged() {
    let (s, store) = behind_faulty_store().await;
    let s = Arc::new(s);
    let files = ["jpeg/hopper_128x128.jpg", PDF];
    let uploads = (0..4).map(|n| {
        let s = s.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let until = Instant::now() + Duration::from_secs(4);
            while Instant::now() < until {
                let resp = s.upload(&[files[n % 2]], &[]).await;
                let status = resp.status();
                let body: Value = resp.json().await.expect("json");
                match status {
                    StatusCode::CREATED => acknowledged.push(body["data"][0].clone()),
                    StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => {}
                    other => panic!("{other}: {body}"),
                }
            }
            acknowledged
        })
    });
    let uploads: Vec<_> = uploads.collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    store.set(Store::Dead);
    until_readiness(&s, StatusCode::SERVICE_UNAVAILABLE).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    store.set(Store::Up);
    until_readiness(&s, StatusCode::OK).await;
    let mut items = Vec::new();
    for task in uploads {
        items.extend(task.await.expect("uploader"));
    }
    assert!(!items.is_empty());
    let mut keys = Vec::new();
    for item in &items {
        let id = item["id"].as_str().expect("id");
        let now = s.until_processed(id).await;
        assert_ne!(now["status"], "failed", "{now}");
        keys.push(storage_key(item));
        for variant in now["variants"].as_array().into_iter().flatten() {
            keys.push(storage_key(variant));
        }
    }
    until_bucket_holds(&s, keys).await;
}

/// A small tmpfs for the data dir, unmounted when dropped; `None` where mounting is not
/// allowed (not root, or no such capability in the container).
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|out| out.status.success());
        mounted.then_some(Self(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// A 1 MB document (the PDF magic, then filler).
fn megabyte_pdf() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\n".to_vec();
    pdf.resize(1 << 20, b'x');
    pdf
}

async fn upload_status(s: &TestServer) -> (StatusCode, Value) {
    let resp = s
        .upload_parts(vec![("big.pdf".into(), megabyte_pdf())], &[])
        .await;
    (resp.status(), resp.json().await.expect("json"))
}

/// Retries `attempt` (bounded: 20 s) until it gives `want`.
async fn eventually<F, Fut>(want: StatusCode, mut attempt: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let last = std::cell::Cell::new(None);
    let got_it = holds_within(Duration::from_secs(20), || {
        let got = attempt();
        let last = &last;
        async move {
            let got = got.await;
            last.set(Some(got));
            got == want
        }
    });
    assert!(got_it.await, "still {:?}, wanted {want}", last.get());
}

#[tokio::test]
async fn a_disk_filled_by_uploads_refuses_them_and_recovers_without_a_restart() {
    let Some(disk) = SmallDisk::mount(60) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)");
        return;
    };
    let data = Library::on_disk_in(tempfile::tempdir_in(disk.0.path()).expect("data dir")).await;
    let floor = |c: &mut darkroom::config::Config| c.limits.min_free_bytes = 8 << 20;
    let s = TestServer::spawn_in(data, floor).await;
    let mut kept = Vec::new();
    let refusal = loop {
        let (status, body) = upload_status(&s).await;
        if status != StatusCode::CREATED {
            break (status, body);
        }
        kept.push(body["data"][0]["id"].as_str().expect("id").to_owned());
        assert!(kept.len() < 60, "a 60 MB disk took 60 MB of uploads");
    };
    assert_eq!(refusal.0, StatusCode::INSUFFICIENT_STORAGE, "{}", refusal.1);
    assert_eq!(refusal.1["error"]["code"], "insufficient_storage");
    assert!(
        kept.len() >= 20,
        "only {} uploads before the floor",
        kept.len()
    );

    // Now fill it to the last byte behind the server's back: the catalog releases its
    // reserve, so every delete commits (5 of 8 answered 507 before it had one).
    let filler = disk.0.path().join("filler");
    let mut fill = std::fs::File::create(&filler).expect("filler");
    while std::io::Write::write_all(&mut fill, &[0u8; 1 << 16]).is_ok() {}
    drop(fill);
    let gone: Vec<String> = kept.drain(kept.len() - 8..).collect();
    for id in &gone {
        assert_eq!(
            s.delete_item(id).await.status(),
            StatusCode::OK,
            "at 0 bytes free"
        );
    }
    std::fs::remove_file(&filler).expect("free the disk");
    for id in kept.drain(..4) {
        assert_eq!(s.delete_item(&id).await.status(), StatusCode::OK);
    }
    eventually(StatusCode::CREATED, || async { upload_status(&s).await.0 }).await;
    until_readiness(&s, StatusCode::OK).await;

    // Everything acknowledged survives a restart, with nothing left behind.
    let dir = s.stop().await;
    let s = TestServer::spawn_in(dir, floor).await;
    for id in &kept {
        let got = s
            .get(&format!("/api/v1/media/{id}"), Some(&s.read_key))
            .await;
        assert_eq!(got.status(), StatusCode::OK, "{id}");
    }
    for id in &gone {
        let got = s
            .get(&format!("/api/v1/media/{id}"), Some(&s.read_key))
            .await;
        assert_eq!(got.status(), StatusCode::NOT_FOUND, "{id}");
    }
    let temp = std::fs::read_dir(s.library.path().join("tmp"))
        .expect("tmp")
        .count();
    assert_eq!(temp, 0, "no temp file left");
    let listed = s.get_json("/api/v1/media?limit=100").await["data"]
        .as_array()
        .expect("data")
        .len();
    assert_eq!(
        s.stored_files().await.len(),
        listed,
        "one file per item, no orphan"
    );
    drop(s.stop().await);
    drop(disk);
}

/// With the default deadlines (30 s a request, 45 s with retries), uploads already
/// waiting on a store that froze are failed as soon as the health probe finds it not
/// answering: 503 `storage_unavailable`, all of them while it is still frozen (they used
/// to wait for the thaw, a minute later, and get 201 then).
#[tokio::test]
async fn uploads_waiting_on_a_frozen_store_fail_once_the_probe_knows() {
    let endpoint = std::env::var("S3_TEST_ENDPOINT").unwrap_or_default();
    let store = Faulty::start(endpoint.trim_start_matches("http://").to_owned()).await;
    let front = store.url.clone();
    let s = TestServer::spawn_s3_with(
        move |s3| s3.endpoint = Some(front),
        |c| c.previews.pdftoppm = String::new(), // the PDFs stand for files without a job
    )
    .await;
    let before = s.upload_one(PDF, &[]).await;
    until_readiness(&s, StatusCode::OK).await;

    store.set(Store::Frozen);
    let s = Arc::new(s);
    let uploads: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.upload(&[PDF], &[]).await })
        })
        .collect();
    // A generous bound (the thaw comes after it), not a timing claim.
    let answered = tokio::time::timeout(
        Duration::from_secs(20),
        futures_util::future::join_all(uploads),
    )
    .await;
    store.set(Store::Up);
    let answered = answered.expect("every upload was answered while the store was frozen");
    for upload in answered {
        let resp = upload.expect("upload task");
        assert_eq!(
            error_code(resp, StatusCode::SERVICE_UNAVAILABLE).await,
            "storage_unavailable"
        );
    }
    until_readiness(&s, StatusCode::OK).await;
    let after = s.upload_one(PDF, &[]).await;
    // PUTs that reached the store at the thaw were queued for deletion first.
    until_bucket_holds(&s, vec![storage_key(&before), storage_key(&after)]).await;
}
