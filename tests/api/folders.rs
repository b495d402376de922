use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, error_code};

on_every_backend!(create_list_and_delete_folders, folder_bodies_are_validated,);

async fn create_list_and_delete_folders(s: TestServer) {
    assert_eq!(
        s.get_json("/api/v1/media/folders").await,
        json!({"folders": ["/"]})
    );

    let resp = s
        .send_json(
            Method::POST,
            "/api/v1/media/folders",
            json!({"path": "/images/new-category"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let again = s
        .send_json(
            Method::POST,
            "/api/v1/media/folders",
            json!({"path": "/images/new-category"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK, "creating twice is harmless");
    s.upload_one("jpeg/hopper_128x128.jpg", &[("folder", "/logos")])
        .await;
    let folders = s.get_json("/api/v1/media/folders").await;
    assert_eq!(
        folders["folders"],
        json!(["/", "/images", "/images/new-category", "/logos"])
    );

    for (path, code, status) in [
        ("/", "root_folder", StatusCode::BAD_REQUEST),
        ("/logos", "folder_not_empty", StatusCode::BAD_REQUEST),
        ("/images", "folder_not_empty", StatusCode::BAD_REQUEST),
        ("/nowhere", "not_found", StatusCode::NOT_FOUND),
        ("no-slash", "invalid_folder", StatusCode::BAD_REQUEST),
    ] {
        let resp = s
            .send_json(
                Method::DELETE,
                "/api/v1/media/folders",
                json!({"path": path}),
            )
            .await;
        assert_eq!(error_code(resp, status).await, code, "{path}");
    }
    let resp = s
        .send_json(
            Method::DELETE,
            "/api/v1/media/folders",
            json!({"path": "/images/new-category"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<Value>().await.expect("json"),
        json!({"success": true})
    );
    let by_query = s
        .request(
            Method::DELETE,
            "/api/v1/media/folders?path=%2Fimages",
            Some(&s.write_key),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(
        error_code(by_query, StatusCode::NOT_FOUND).await,
        "not_found",
        "/images vanished with its only child"
    );
    assert_eq!(
        s.get_json("/api/v1/media/folders").await["folders"],
        json!(["/", "/logos"])
    );
}

async fn folder_bodies_are_validated(s: TestServer) {
    for body in [
        json!({}),
        json!({"path": 5}),
        json!({"path": "/a/./b"}),
        json!({"path": format!("/{}", "x".repeat(65))}),
    ] {
        let resp = s
            .send_json(Method::POST, "/api/v1/media/folders", body.clone())
            .await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_folder",
            "{body}"
        );
    }
    let no_key = s
        .request(Method::POST, "/api/v1/media/folders", None)
        .json(&json!({"path": "/a"}))
        .send()
        .await
        .expect("send");
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get_json("/api/v1/media/folders").await["folders"],
        json!(["/"])
    );
}
