//! Clients that go quiet do not keep what they took: a connection that never sends a
//! byte is closed at the header deadline (it used to hold its slot for ever), and a JSON
//! body that stalls is answered 408 (it used to have no deadline at all).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::TestServer;

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
