//! Clients that go quiet do not keep what they took: a connection that never sends a
//! byte is closed at the header deadline (it used to hold its slot for ever), and a JSON
//! body that stalls is answered 408 (it used to have no deadline at all).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestServer, fixture, holds_within, sample};

/// Generous bounds around deadlines of 1 s: they catch "never", not slowness.
const WITHIN: Duration = Duration::from_secs(15);

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

#[tokio::test]
async fn silent_connections_are_closed_and_give_their_slots_back() {
    let s = TestServer::spawn_with(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.max_connections = 2;
    })
    .await;
    let mut silent = [connect(&s).await, connect(&s).await];
    for conn in &mut silent {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(WITHIN, conn.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "the server closes a silent connection: {read:?}"
        );
    }
    // Both slots are free again: a normal client is served, not refused with 503.
    let resp = s.get("/healthz", None).await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn a_json_body_that_stalls_is_answered_408() {
    let s = TestServer::spawn_with(|c| c.server.body_idle_timeout_secs = 1).await;
    let mut conn = connect(&s).await;
    let head = format!(
        "POST /api/v1/media/folders HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"path\":",
        s.write_key
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(WITHIN, async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let folders = s.get("/api/v1/media/folders", Some(&s.read_key)).await;
    let folders: serde_json::Value = folders.json().await.expect("json");
    assert_eq!(
        folders["folders"],
        serde_json::json!(["/"]),
        "nothing was created"
    );
}

/// The frames an h2c server sends on a connection that opens and then sends no request
/// (its SETTINGS acknowledged, its pings answered if `pong`), until the server closes
/// it: `(type, payload)` each.
async fn h2c_frames_until_closed(s: &TestServer, pong: bool) -> Vec<(u8, Vec<u8>)> {
    let mut conn = connect(s).await;
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .expect("preface");
    let mut frames = Vec::new();
    let read_all = async {
        loop {
            let mut head = [0u8; 9];
            if conn.read_exact(&mut head).await.is_err() {
                return; // closed
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if conn.read_exact(&mut payload).await.is_err() {
                return;
            }
            let (kind, flags) = (head[3], head[4]);
            if kind == 4 && flags & 1 == 0 {
                // Their SETTINGS: acknowledged, as any client would.
                conn.write_all(b"\0\0\0\x04\x01\0\0\0\0")
                    .await
                    .expect("ack");
            }
            if kind == PING && flags & 1 == 0 && pong {
                let mut ack = b"\0\0\x08\x06\x01\0\0\0\0".to_vec();
                ack.extend_from_slice(&payload);
                conn.write_all(&ack).await.expect("pong");
            }
            frames.push((kind, payload));
        }
    };
    let closed = tokio::time::timeout(WITHIN, read_all).await;
    assert!(closed.is_ok(), "the connection was not closed: {frames:?}");
    frames
}

const PING: u8 = 6;
const GOAWAY: u8 = 7;

#[tokio::test]
async fn idle_h2c_connections_are_closed() {
    let s = TestServer::spawn_with(|c| {
        c.server.idle_timeout_secs = 1;
        c.server.http2_keep_alive_secs = 0;
    })
    .await;
    let frames = h2c_frames_until_closed(&s, true).await;
    let goaway = frames.iter().find(|(kind, _)| *kind == GOAWAY);
    let (_, payload) = goaway.expect("a GOAWAY before the close");
    assert_eq!(&payload[4..8], &[0, 0, 0, 0], "NO_ERROR: a graceful close");
}

#[tokio::test]
async fn idle_h2c_peers_that_ignore_the_goodbye_are_closed_anyway() {
    let s = TestServer::spawn_with(|c| {
        c.server.idle_timeout_secs = 1;
        c.server.http2_keep_alive_secs = 0;
    })
    .await;
    // A graceful close waits for a ping's answer that never comes: closed all the same.
    let frames = h2c_frames_until_closed(&s, false).await;
    assert!(frames.iter().any(|(kind, _)| *kind == GOAWAY));
}

#[tokio::test]
async fn h2c_peers_that_do_not_answer_pings_are_dropped() {
    let s = TestServer::spawn_with(|c| {
        c.server.idle_timeout_secs = 3600;
        c.server.http2_keep_alive_secs = 1;
    })
    .await;
    let frames = h2c_frames_until_closed(&s, false).await;
    assert!(
        frames.iter().any(|(kind, _)| *kind == PING),
        "pinged before being dropped: {frames:?}"
    );
}

#[tokio::test]
async fn a_trickling_upload_is_cut_with_408_and_keeps_nothing() {
    let s = TestServer::spawn_with(|c| {
        c.server.min_body_rate_bytes = 100;
        c.server.min_body_rate_window_secs = 1;
    })
    .await;
    let mut conn = connect(&s).await;
    let head = format!(
        "POST /api/v1/media HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n\
         --b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.pdf\"\r\n\r\n%PDF-",
        s.write_key
    );
    conn.write_all(head.as_bytes()).await.expect("write");
    // One byte every 200 ms: never idle for long, far below 100 bytes/s.
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if conn.write_all(b"x").await.is_err() {
                return Vec::new();
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await
            {
                return buf[..n].to_vec();
            }
        }
    };
    let answer = tokio::time::timeout(WITHIN, trickle)
        .await
        .expect("the trickle was cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("bytes/s"), "says why: {answer}");
    assert!(s.stored_files().await.is_empty());
    let tmp = std::fs::read_dir(s.library.path().join("tmp"))
        .expect("tmp")
        .count();
    assert_eq!(tmp, 0, "no spool left behind");
}

#[tokio::test]
async fn requests_cancelled_by_their_client_are_counted_as_499() {
    let s = TestServer::spawn_with(|c| c.processing.threads = 1).await;
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let big = fixture("jpeg/colorfulcups_2560x1600_progressive_gps.jpg");
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(big).file_name("big.jpg"),
    );
    // `?wait=true` holds the answer while the image is processed: the client gives up
    // (and resets its stream) long before that.
    let sent = h2c
        .post(s.url("/api/v1/media?wait=true"))
        .bearer_auth(&s.write_key)
        .multipart(form)
        .timeout(Duration::from_millis(150))
        .send()
        .await;
    assert!(sent.is_err_and(|e| e.is_timeout()), "the client gave up");
    let series =
        r#"darkroom_http_requests_total{route="/api/v1/media",method="POST",status="499"}"#;
    let counted = holds_within(WITHIN, || async {
        let scrape = s.get("/metrics", None).await.text().await.expect("scrape");
        sample(&scrape, series) == Some(1.0)
    })
    .await;
    assert!(counted, "no 499 sample: {series}");
}

/// A download read slowly but steadily finishes, however long it takes past the idle
/// deadline (it was cut off once the idle time passed: a request counted as in flight
/// only until its head was ready). The reader takes about 8 s for 12 MB; idle is 1 s.
/// (The body is larger than loopback's socket buffers, up to 4 MB, which would
/// otherwise hold the rest of a cut-off body.)
#[tokio::test]
async fn a_slow_but_steady_download_is_not_cut_off_at_the_idle_deadline() {
    let s = TestServer::spawn_on_disk(|c| c.server.idle_timeout_secs = 1).await;
    let (pdf, url) = big_pdf(&s).await;
    let body = download_at_a_pace(&s, &url, pdf.len()).await;
    assert_eq!(body.len(), pdf.len(), "the whole file arrived");
    assert_eq!(body, pdf);
}

/// A client reading slower than `server.min_send_rate_bytes` (one frame now and then, to
/// hold the connection) is idle: its connection is closed.
#[tokio::test]
async fn a_download_slower_than_the_minimum_rate_is_cut_off() {
    let s = TestServer::spawn_on_disk(|c| {
        c.server.idle_timeout_secs = 1;
        c.server.min_send_rate_bytes = 8 * 1024 * 1024; // more than the pace below
    })
    .await;
    let (pdf, url) = big_pdf(&s).await;
    let body = download_at_a_pace(&s, &url, pdf.len()).await;
    assert!(
        body.len() < pdf.len(),
        "closed before the end: {} of {} bytes",
        body.len(),
        pdf.len()
    );
}

/// A 12 MB PDF (padded after %%EOF: still a PDF by its magic), uploaded; its URL.
async fn big_pdf(s: &TestServer) -> (Vec<u8>, String) {
    let mut pdf = fixture("pdf/ltnews18_1page.pdf");
    pdf.resize(12 * 1024 * 1024, b' ');
    let item = s
        .upload_parts(vec![("big.pdf".into(), pdf.clone())], &[])
        .await
        .json::<serde_json::Value>()
        .await
        .expect("json")["data"][0]
        .clone();
    let url = item["url"].as_str().expect("url").to_owned();
    (pdf, url)
}

/// GETs `url` over HTTP/1.1, reading ~1.6 MB/s, until `len` body bytes came or the server
/// closed the connection; returns the body bytes received.
async fn download_at_a_pace(s: &TestServer, url: &str, len: usize) -> Vec<u8> {
    let mut conn = connect(s).await;
    let request = format!("GET {url} HTTP/1.1\r\nHost: test\r\n\r\n");
    conn.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 80 * 1024];
    let read = tokio::time::timeout(WITHIN, async {
        loop {
            let n = conn.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
            let head_end = received.windows(4).position(|w| w == b"\r\n\r\n");
            if head_end.is_some_and(|at| received.len() - at - 4 >= len) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // ~1.6 MB/s
        }
    })
    .await;
    assert!(read.is_ok(), "the download neither ended nor stalled");
    let body_at = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    received.split_off(body_at)
}
