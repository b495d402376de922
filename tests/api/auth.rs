use reqwest::{Method, StatusCode};

use crate::common::{TestServer, error_code};

#[tokio::test]
async fn missing_malformed_and_unknown_keys_are_401() {
    let s = TestServer::spawn().await;
    let resp = s.get("/api/v1/media", None).await;
    assert_eq!(
        resp.headers().get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    assert_eq!(
        error_code(resp, StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );

    let basic = s
        .client
        .get(s.url("/api/v1/media"))
        .header("Authorization", "Basic dXNlcjpwYXNz");
    assert_eq!(
        error_code(basic.send().await.expect("send"), StatusCode::UNAUTHORIZED).await,
        "unauthorized"
    );

    let unknown = "drk_AAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    assert_eq!(
        s.get("/api/v1/media", Some(unknown)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let mut tampered = s.write_key.clone();
    tampered.replace_range(
        tampered.len() - 1..,
        if tampered.ends_with('x') { "y" } else { "x" },
    );
    assert_eq!(
        s.get("/api/v1/media", Some(&tampered)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn read_keys_read_and_write_keys_write() {
    let s = TestServer::spawn().await;
    assert_eq!(
        s.get("/api/v1/media", Some(&s.read_key)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get("/api/v1/media/folders", Some(&s.read_key))
            .await
            .status(),
        StatusCode::OK
    );

    let as_reader = |m: Method, p: &str| s.request(m, p, Some(&s.read_key));
    let upload = as_reader(Method::POST, "/api/v1/media")
        .multipart(reqwest::multipart::Form::new().text("folder", "/"));
    assert_eq!(
        error_code(upload.send().await.expect("send"), StatusCode::FORBIDDEN).await,
        "forbidden"
    );
    let folder =
        as_reader(Method::POST, "/api/v1/media/folders").json(&serde_json::json!({"path": "/x"}));
    assert_eq!(
        folder.send().await.expect("send").status(),
        StatusCode::FORBIDDEN
    );
    let presign = as_reader(Method::POST, "/api/v1/media/presign").json(&serde_json::json!({}));
    assert_eq!(
        presign.send().await.expect("send").status(),
        StatusCode::FORBIDDEN
    );
    let item = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    let path = format!("/api/v1/media/{}", item["id"].as_str().expect("id"));
    assert_eq!(
        s.get(&path, Some(&s.read_key)).await.status(),
        StatusCode::OK
    );
    let del = as_reader(Method::DELETE, &path).send().await.expect("send");
    assert_eq!(del.status(), StatusCode::FORBIDDEN);
    let patch = as_reader(Method::PATCH, &path).json(&serde_json::json!({"alt": "x"}));
    assert_eq!(
        patch.send().await.expect("send").status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get(&path, Some(&s.read_key)).await.status(),
        StatusCode::OK,
        "nothing changed"
    );
}

#[tokio::test]
async fn presign_and_confirm_explain_local_storage() {
    let s = TestServer::spawn_on_disk(|_| {}).await;
    for path in ["/api/v1/media/presign", "/api/v1/media/confirm"] {
        let body = serde_json::json!({"filename": "v.mp4", "mimeType": "video/mp4", "size": 10});
        assert_eq!(
            s.request(Method::POST, path, None)
                .json(&body)
                .send()
                .await
                .expect("send")
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let resp = s.send_json(Method::POST, path, body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["error"]["code"], "presign_unavailable");
        assert!(
            v["error"]["message"]
                .as_str()
                .expect("msg")
                .contains("POST /api/v1/media")
        );
    }
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods() {
    let s = TestServer::spawn().await;
    assert_eq!(
        error_code(s.get("/nope", None).await, StatusCode::NOT_FOUND).await,
        "not_found"
    );
    let resp = s
        .request(Method::PUT, "/api/v1/media", Some(&s.write_key))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.headers()
            .get("allow")
            .map(|v| v.to_str().expect("ascii").to_owned()),
        Some("GET, HEAD, POST".into())
    );
    assert_eq!(
        error_code(resp, StatusCode::METHOD_NOT_ALLOWED).await,
        "method_not_allowed"
    );
    let resp = s
        .request(Method::GET, "/api/v1/media/confirm", Some(&s.write_key))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(s.get("/healthz", None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn http2_without_tls_is_served() {
    let s = TestServer::spawn().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let resp = h2
        .get(s.url("/api/v1/media"))
        .bearer_auth(&s.read_key)
        .send()
        .await
        .expect("h2c");
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(crate::common::fixture("jpeg/hopper_128x128.jpg"))
            .file_name("h.jpg"),
    );
    let up = h2
        .post(s.url("/api/v1/media"))
        .bearer_auth(&s.write_key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(up.status(), StatusCode::CREATED);
}

/// A client that sends its whole upload before it reads gets its 401 even when the server
/// refused the upload at the head: the server closes such a connection by draining what
/// the client still sends (it used to close at once, so the rest of the body was met with
/// a connection reset and the client never saw the answer), and the answer carries
/// `Connection: close` (a keep-alive client used to send its next request on it).
#[tokio::test]
async fn an_upload_refused_before_its_body_is_read_still_gets_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::spawn().await;
    let body = vec![b'x'; 2 << 20];
    let mut conn = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/media HTTP/1.1\r\nHost: test\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("head");
    // The server answers the head at once; the body comes after that.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    conn.write_all(&body)
        .await
        .expect("the whole body is taken, not reset");
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.expect("the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains(r#""code":"unauthorized""#), "{answer}");
    // It says the connection ends, so no client sends its next request on it.
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}
