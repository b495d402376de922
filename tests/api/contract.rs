//! The machine-readable contract and the explorer, as a client meets them: the document,
//! the Swagger UI page and its files, `/` leading there, and the contract fixes found
//! from outside (the key before the id, 405 for every unknown method).

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{TestServer, error_code, header};

#[tokio::test]
async fn the_document_is_served_without_a_key_and_matches_the_checked_in_copy() {
    let s = TestServer::spawn().await;
    let resp = s.get("/api/v1/openapi.json", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some("application/json")
    );
    let served: Value = resp.json().await.expect("json");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let checked_in: Value =
        serde_json::from_slice(&std::fs::read(path).expect("openapi.json")).expect("json");
    assert_eq!(served, checked_in);
    assert!(served["paths"]["/api/v1/media"]["post"].is_object());
}

#[tokio::test]
async fn the_explorer_is_served_from_the_binary_and_asks_nothing_of_other_origins() {
    let s = TestServer::spawn().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in ["/", "/docs"] {
        let resp = no_redirects.get(s.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), StatusCode::FOUND, "{path}");
        assert_eq!(
            header(&resp, "location").as_deref(),
            Some("/docs/"),
            "{path}"
        );
    }
    let page = s.get("/docs/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").is_some_and(|t| t.starts_with("text/html")));
    let csp = header(&page, "content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        let resp = s.get(&format!("/docs/{asset}"), None).await;
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        assert!(
            header(&resp, "content-security-policy").is_some(),
            "{asset}"
        );
    }
    let init = s.get("/docs/swagger-initializer.js", None).await;
    let init = init.text().await.expect("js");
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    assert!(
        !init.contains("petstore"),
        "the default document is replaced: {init}"
    );
    let missing = s.get("/docs/no-such-file.js", None).await;
    assert_eq!(
        error_code(missing, StatusCode::NOT_FOUND).await,
        "not_found"
    );
}

#[tokio::test]
async fn the_key_is_checked_before_the_id() {
    let s = TestServer::spawn().await;
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let path = "/api/v1/media/not-an-id";
        let anonymous = s
            .request(method.clone(), path, None)
            .send()
            .await
            .expect("send");
        let code = error_code(anonymous, StatusCode::UNAUTHORIZED).await;
        assert_eq!(code, "unauthorized", "{method}");
        let keyed = s
            .request(method.clone(), path, Some(&s.write_key))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("send");
        assert_eq!(
            error_code(keyed, StatusCode::NOT_FOUND).await,
            "not_found",
            "{method}"
        );
    }
    let public = s.get("/api/v1/public/media/not-an-id", None).await;
    assert_eq!(error_code(public, StatusCode::NOT_FOUND).await, "not_found");
}

#[tokio::test]
async fn methods_the_router_does_not_know_are_405_with_allow() {
    let s = TestServer::spawn().await;
    for (method, path, allow) in [
        ("TRACE", "/api/v1/media", "GET, HEAD, POST"),
        ("PUT", "/api/v1/media", "GET, HEAD, POST"),
        ("PUT", "/api/v1/media/folders", "GET, HEAD, POST, DELETE"),
        ("FOO", "/healthz", "GET, HEAD"),
        ("POST", "/api/v1/openapi.json", "GET, HEAD"),
        ("DELETE", "/docs/", "GET, HEAD"),
    ] {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let resp = s.request(m, path, None).send().await.expect("send");
        assert_eq!(
            header(&resp, "allow").as_deref(),
            Some(allow),
            "{method} {path}"
        );
        let code = error_code(resp, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(code, "method_not_allowed", "{method} {path}");
    }
}
