//! Operations: health, readiness, metrics, supervision that heals, timeouts.

use std::io::{Read, Write};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Binary, Library, TestServer, header, sample, until_readiness};

#[tokio::test]
async fn metrics_count_a_known_sequence_of_requests() {
    // A separate process: the metrics registry is per process. Files on disk: the
    // storage series below are the local backend's.
    let dir = Library::on_disk().await;
    let key = Binary::create_key(dir.path(), "write");
    let server = Binary::start(dir.path());
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", server.base)).send();

    let mut jpeg_bytes = 0;
    for files in [
        &[
            ("jpeg/hopper_128x128.jpg", "a.jpg"),
            ("pdf/ltnews18_1page.pdf", "b.pdf"),
        ][..],
        &[("jpeg/hopper_128x128.jpg", "c.jpg")],
    ] {
        let resp = server.upload(&key, files, &[]).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.expect("json");
        jpeg_bytes += body["data"][0]["size"].as_u64().expect("size");
    }
    let refused = server
        .upload(&key, &[("hostile/text_named.png", "notes.png")], &[])
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    for _ in 0..3 {
        assert_eq!(
            get("/api/v1/public/media").await.expect("get").status(),
            StatusCode::OK
        );
    }
    let item = get("/api/v1/public/media/media_0000000000000000")
        .await
        .expect("get");
    assert_eq!(item.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get("/no/such/route").await.expect("get").status(),
        StatusCode::NOT_FOUND
    );

    let resp = get("/metrics").await.expect("scrape");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(&resp, "content-type").is_some_and(|c| c.starts_with("text/plain")));
    let scrape = resp.text().await.expect("text");
    let count = |labels: &str| {
        sample(
            &scrape,
            &format!("darkroom_http_requests_total{{{labels}}}"),
        )
    };
    assert_eq!(
        count(r#"route="/api/v1/public/media",method="GET",status="200""#),
        Some(3.0),
        "{scrape}"
    );
    assert_eq!(
        count(r#"route="/api/v1/public/media/{id}",method="GET",status="404""#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"route="/api/v1/media",method="POST",status="201""#),
        Some(2.0)
    );
    assert_eq!(
        count(r#"route="/api/v1/media",method="POST",status="400""#),
        Some(1.0)
    );
    assert_eq!(
        count(r#"route="unmatched",method="GET",status="404""#),
        Some(1.0)
    );
    assert!(
        !scrape.contains("/no/such/route"),
        "raw paths never become labels"
    );

    let files = |labels: &str| sample(&scrape, &format!("darkroom_upload_files_total{{{labels}}}"));
    assert_eq!(files(r#"type="image/jpeg",outcome="accepted""#), Some(2.0));
    assert_eq!(
        files(r#"type="application/pdf",outcome="accepted""#),
        Some(1.0)
    );
    assert_eq!(files(r#"type="unknown",outcome="refused""#), Some(1.0));
    assert_eq!(
        sample(&scrape, r#"darkroom_upload_bytes_total{type="image/jpeg"}"#),
        Some(jpeg_bytes as f64),
        "bytes as stored"
    );
    let commits =
        sample(&scrape, "darkroom_catalog_commit_batch_size_count").expect("commit batches");
    assert!(
        commits >= 2.0,
        "two uploads, at least two commits: {commits}"
    );
    assert!(
        sample(
            &scrape,
            r#"darkroom_storage_operation_duration_seconds_count{backend="local",op="commit"}"#
        ) >= Some(3.0)
    );
    assert_eq!(
        sample(
            &scrape,
            &format!(
                "darkroom_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    assert!(scrape.contains("# HELP darkroom_http_request_duration_seconds"));
    assert!(scrape.contains("darkroom_http_request_duration_seconds_bucket{route=\"/api/v1/public/media\",method=\"GET\",le=\"0.001\"}"));

    // The scrape is valid exposition format, as Prometheus's own checker sees it.
    let promtool = which("promtool")
        .expect("promtool is missing: `make test` installs it (Debian package prometheus)");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill();
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let s = TestServer::spawn_on_disk(|_| {}).await;
    assert_eq!(s.get("/healthz", None).await.status(), StatusCode::OK);
    let ready = s.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(
        (body["catalog"].as_str(), body["storage"].as_str()),
        (Some("ok"), Some("ok"))
    );

    let echoed = s.get_with("/healthz", &[("X-Request-Id", "abc-123")]).await;
    assert_eq!(header(&echoed, "x-request-id").as_deref(), Some("abc-123"));
    let made = s.get("/healthz", None).await;
    let id = header(&made, "x-request-id").expect("a request id is generated");
    assert_eq!(id.len(), 16);

    // Storage that cannot take files makes the server unready (from the next probe).
    std::fs::remove_dir_all(s.library.path().join("tmp")).expect("rm tmp");
    until_readiness(&s, StatusCode::SERVICE_UNAVAILABLE).await;
    let body: Value = s.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(body["storage"], "unavailable");
    assert_eq!(body["disk"], "ok");
    std::fs::create_dir(s.library.path().join("tmp")).expect("mkdir");
    until_readiness(&s, StatusCode::OK).await;
}

#[tokio::test]
async fn crashed_actors_are_restarted_and_counted() {
    let s = TestServer::spawn_with(|c| c.admin.fault_injection = true).await;
    let restarts = |scrape: &str, actor: &str| {
        sample(
            scrape,
            &format!("darkroom_actor_restarts_total{{actor=\"{actor}\"}}"),
        )
        .unwrap_or(0.0)
    };
    for actor in ["catalog", "storage"] {
        let before = s.get("/metrics", None).await.text().await.expect("scrape");
        let resp = s
            .request(Method::POST, &format!("/admin/crash/{actor}"), None)
            .send()
            .await
            .expect("crash");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);

        // A request racing the restart may get a clean 503; within a moment they succeed.
        let mut healed = false;
        for _ in 0..100 {
            let resp = s.upload(&["jpeg/hopper_128x128.jpg"], &[]).await;
            match resp.status() {
                StatusCode::CREATED => {
                    healed = true;
                    break;
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(header(&resp, "retry-after").is_some());
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => panic!("{actor}: unexpected {other}"),
            }
        }
        assert!(healed, "{actor}: requests work again after the restart");
        let after = s.get("/metrics", None).await.text().await.expect("scrape");
        assert_eq!(
            restarts(&after, actor) - restarts(&before, actor),
            1.0,
            "{actor}"
        );
    }
    assert_eq!(
        s.get_json("/api/v1/media").await["total"],
        2,
        "both uploads after the crashes are kept"
    );
}

#[tokio::test]
async fn fault_injection_is_off_by_default() {
    let s = TestServer::spawn().await;
    let resp = s
        .request(Method::POST, "/admin/crash/catalog", None)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn slow_headers_are_cut_off_while_others_are_served() {
    let s = TestServer::spawn_with(|c| c.server.header_read_timeout_secs = 1).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow = std::net::TcpStream::connect(&addr).expect("connect");
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("partial headers");
    slow.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");

    // Meanwhile other clients are served.
    assert_eq!(s.get("/healthz", None).await.status(), StatusCode::OK);

    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::task::spawn_blocking(move || slow.read_to_end(&mut buf).map(|_| buf))
        .await
        .expect("join");
    let elapsed = started.elapsed();
    let got = read.expect("the server closes the connection, not our read timeout");
    assert!(
        elapsed < Duration::from_secs(4),
        "closed after the header timeout: {elapsed:?}"
    );
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

#[tokio::test]
async fn connections_over_the_cap_get_a_fast_503() {
    let s = TestServer::spawn_with(|c| c.server.max_connections = 2).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let held: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = std::net::TcpStream::connect(&addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let buf = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        third.read_to_end(&mut buf).map(|_| buf)
    })
    .await
    .expect("join")
    .expect("read");
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.contains("retry-after: 1") && text.contains("\"code\":\"overloaded\""),
        "{text}"
    );
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        s.get("/healthz", None).await.status(),
        StatusCode::OK,
        "served again once below the cap"
    );
}

/// A connection to the server from a chosen loopback address.
async fn connect_from(from: [u8; 4], to: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((from, 0)))
        .expect("bind");
    socket
        .connect(to.parse().expect("addr"))
        .await
        .expect("connect")
}

/// Sends a bare `GET /healthz` and reads the answer until the server closes.
async fn healthz_over(mut conn: tokio::net::TcpStream) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let _ = conn.write_all(request).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), conn.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "no answer");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let s = TestServer::spawn_with(|c| c.server.max_connections_per_client = 2).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let _held = [
        connect_from([127, 0, 0, 1], &addr).await,
        connect_from([127, 0, 0, 1], &addr).await,
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = healthz_over(connect_from([127, 0, 0, 1], &addr).await).await;
    assert!(third.starts_with("HTTP/1.1 503"), "{third}");
    assert!(third.contains("retry-after: 1"), "{third}");
    let other = healthz_over(connect_from([127, 0, 0, 2], &addr).await).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another address is served: {other}"
    );
}

#[tokio::test]
async fn stalled_upload_bodies_time_out() {
    let s = TestServer::spawn_with(|c| c.server.body_idle_timeout_secs = 1).await;
    let first: Result<Vec<u8>, std::io::Error> =
        Ok(b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n\r\n\xFF\xD8\xFF".to_vec());
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::iter([first]),
        futures_util::stream::pending(),
    );
    let resp = s
        .request(Method::POST, "/api/v1/media", Some(&s.write_key))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.stored_files().await.is_empty());
    assert_eq!(
        std::fs::read_dir(s.library.path().join("tmp"))
            .expect("tmp")
            .count(),
        0
    );
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_and_no_secrets() {
    let dir = Library::new().await;
    let key = Binary::create_key(dir.path(), "write");
    let server = Binary::start_with(dir.path(), &["--log-format", "json"]);
    let client = reqwest::Client::new();
    let resp = client
        .get(format!(
            "{}/api/v1/media?search=secret-term&key={key}",
            server.base
        ))
        .bearer_auth(&key)
        .header("X-Request-Id", "trace-42")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), StatusCode::OK);
    let denied = client
        .get(format!("{}/api/v1/media", server.base))
        .bearer_auth("drk_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB")
        .send()
        .await
        .expect("get");
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.logs();
    server.kill();

    assert!(
        !logs.contains(&key) && !logs.contains("drk_AAAAAAAA"),
        "keys never reach the logs:\n{logs}"
    );
    // Nor the store's secret or the catalog's password (a library on PostgreSQL and S3
    // has both in its config).
    for secret in ["darkroom-test-secret", ":darkroom@"] {
        assert!(!logs.contains(secret), "{secret} logged: {logs}");
    }
    assert!(
        !logs.contains("secret-term"),
        "query strings are not logged"
    );
    let requests: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{logs}");
    let first = &requests[0]["fields"];
    assert_eq!(first["request_id"], "trace-42");
    assert_eq!(first["route"], "/api/v1/media");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 200);
    assert!(first["latency_us"].is_u64() && first["bytes"].is_u64());
    assert_eq!(requests[1]["fields"]["status"], 401);
}

#[tokio::test]
async fn metrics_can_move_to_their_own_listener() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = free.local_addr().expect("addr");
    drop(free);
    let s = TestServer::spawn_with(|c| {
        c.server.metrics_listen = Some(addr);
        c.server.header_read_timeout_secs = 1;
    })
    .await;
    assert_eq!(
        s.get("/metrics", None).await.status(),
        StatusCode::NOT_FOUND,
        "not on the main listener"
    );
    let mut scrape = None;
    for _ in 0..50 {
        if let Ok(resp) = s.client.get(format!("http://{addr}/metrics")).send().await {
            scrape = Some((resp.status(), resp.text().await.expect("text")));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, text) = scrape.expect("the metrics listener answers");
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("darkroom_build_info"), "{text}");
    let other = s
        .client
        .get(format!("http://{addr}/api/v1/media"))
        .send()
        .await
        .expect("get");
    assert_eq!(other.status(), StatusCode::NOT_FOUND, "only /metrics there");

    // Silent connections are closed at the header deadline (they were held for ever),
    // and more of them than the cap are closed at once: a scrape still gets through.
    let silent: Vec<_> = (0..20)
        .map(|_| std::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    let closed = tokio::task::spawn_blocking(move || {
        silent.into_iter().all(|mut conn| {
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut buf = [0u8; 8];
            match std::io::Read::read(&mut conn, &mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        })
    });
    assert!(
        closed.await.expect("join"),
        "every silent connection was closed"
    );
    let again = s.client.get(format!("http://{addr}/metrics")).send().await;
    assert_eq!(again.expect("scrape").status(), StatusCode::OK);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let s = TestServer::spawn_with(|c| c.server.header_read_timeout_secs = 1).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let result = tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(&addr).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let started = std::time::Instant::now();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).map(|_| (all, started.elapsed()))
    })
    .await
    .expect("join");
    let (bytes, elapsed) = result.expect("the server closes the idle connection");
    assert!(
        String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"),
        "served first"
    );
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let s = TestServer::spawn_with(|c| c.server.max_header_bytes = 16 * 1024).await;
    let big = "x".repeat(32 * 1024);
    let resp = s
        .client
        .get(s.url("/healthz"))
        .header("X-Big", big)
        .send()
        .await;
    match resp {
        Ok(r) => assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(e) => assert!(
            e.is_request() || e.is_connect() || e.to_string().contains("closed"),
            "{e}"
        ),
    }
    let fine = s
        .client
        .get(s.url("/healthz"))
        .header("X-Small", "x".repeat(1024))
        .send()
        .await
        .expect("send");
    assert_eq!(fine.status(), StatusCode::OK);
}
