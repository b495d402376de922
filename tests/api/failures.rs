//! When the world around Darkroom fails: a disk below its free-space floor refuses
//! uploads with 507 while deletes still work, and a frozen object store is reported by
//! `/readyz` (which never waits on it) and fails uploads within the configured deadlines,
//! until it answers again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::{
    TestServer, error_code, fixture, s3_config, sample, unique_prefix, until_readiness,
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
    assert_eq!(sample(&scrape, declined), Some(1.0));
    assert!(sample(&scrape, "darkroom_data_dir_free_bytes").is_some_and(|b| b > 0.0));
}

/// A loopback TCP proxy in front of the test S3 server that can be frozen: while frozen
/// it accepts connections and reads nothing, forwards nothing (what SIGSTOP does to a
/// server), and resumes when thawed.
struct Freezer {
    url: String,
    frozen: Arc<AtomicBool>,
}

impl Freezer {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (flag, upstream) = (flag.clone(), upstream.clone());
                tokio::spawn(async move {
                    thawed(&flag).await;
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(pump(cr, sw, flag.clone()));
                    pump(sr, cw, flag).await;
                });
            }
        });
        Self { url, frozen }
    }

    fn freeze(&self, on: bool) {
        self.frozen.store(on, Ordering::SeqCst);
    }
}

async fn thawed(flag: &AtomicBool) {
    while flag.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    flag: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        thawed(&flag).await;
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        thawed(&flag).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn a_frozen_store_is_reported_and_fails_uploads_within_the_deadlines() {
    let endpoint = std::env::var("S3_TEST_ENDPOINT").unwrap_or_default();
    let freezer = Freezer::start(endpoint.trim_start_matches("http://").to_owned()).await;
    let mut s3 = s3_config(&unique_prefix());
    s3.endpoint = Some(freezer.url.clone());
    (s3.connect_timeout_secs, s3.request_timeout_secs) = (1, 1);
    (s3.retry_timeout_secs, s3.max_retries) = (2, 1);
    let s = TestServer::spawn_with(move |c| {
        c.server.readiness_timeout_secs = 1;
        c.storage = darkroom::config::StorageConfig::S3(s3);
    })
    .await;
    let before = s.upload_one(PDF, &[]).await;
    until_readiness(&s, StatusCode::OK).await;

    freezer.freeze(true);
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
    assert_eq!(
        error_code(resp, StatusCode::SERVICE_UNAVAILABLE).await,
        "storage_unavailable"
    );

    freezer.freeze(false);
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
}
