use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestServer, error_code, fixture};

on_every_backend!(
    filters_sorts_and_pages_with_exact_totals,
    pagination_is_stable_and_exact,
    search_is_case_insensitive_and_literal,
    search_finds_every_spelling,
    bad_query_values_are_400,
    public_list_shows_public_fields_with_cors,
);

/// Uploads small files with chosen names, folders and alt texts, one request each so
/// creation times differ; returns ids in upload order.
async fn seed(s: &TestServer, items: &[(&str, &str, &str, &str)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (name, fixture_path, folder, alt) in items {
        let mut fields = vec![("folder", *folder)];
        if !alt.is_empty() {
            fields.push(("alt", *alt));
        }
        let resp = s
            .upload_parts(vec![(name.to_string(), fixture(fixture_path))], &fields)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.expect("json");
        ids.push(body["data"][0]["id"].as_str().expect("id").to_owned());
    }
    ids
}

fn ids(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["filename"].as_str().expect("f").to_owned())
        .collect()
}

const JPG: &str = "jpeg/hopper_128x128.jpg"; // 6412 bytes
const PNG: &str = "png/chessboard_200x200_rgb16.png"; // 1127 bytes
const PDF: &str = "pdf/ltnews18_1page.pdf"; // 38033 bytes
const WEBM: &str = "video/bigbuckbunny_640x360_vp9_opus.webm";

async fn filters_sorts_and_pages_with_exact_totals(s: TestServer) {
    let seeded = seed(
        &s,
        &[
            ("banana.jpg", JPG, "/images", "Yellow fruit"),
            ("Apple.png", PNG, "/images", ""),
            ("cherry.pdf", PDF, "/docs", ""),
            ("date.webm", WEBM, "/", ""),
            ("elder.jpg", JPG, "/images/sub", "50%_off banner"),
        ],
    )
    .await;

    let all = s.get_json("/api/v1/media").await;
    assert_eq!(all["total"], 5);
    assert_eq!(
        (all["limit"].as_u64(), all["offset"].as_u64()),
        (Some(24), Some(0))
    );
    let newest_first: Vec<String> = seeded.iter().rev().cloned().collect();
    assert_eq!(ids(&all), newest_first, "default: createdAt desc");
    assert_eq!(
        all["folders"],
        serde_json::json!(["/", "/docs", "/images", "/images/sub"])
    );
    let item = &all["data"][0];
    for field in [
        "size",
        "title",
        "description",
        "folder",
        "createdAt",
        "alt",
        "url",
    ] {
        assert!(item.get(field).is_some(), "full items carry {field}");
    }

    let asc = s.get_json("/api/v1/media?sort=createdAt&order=asc").await;
    assert_eq!(ids(&asc), seeded);
    let by_name = s.get_json("/api/v1/media?sort=filename&order=asc").await;
    assert_eq!(
        names(&by_name),
        [
            "Apple.png",
            "banana.jpg",
            "cherry.pdf",
            "date.webm",
            "elder.jpg"
        ]
    );
    let by_size = s.get_json("/api/v1/media?sort=size&order=desc").await;
    let sizes: Vec<u64> = by_size["data"]
        .as_array()
        .expect("d")
        .iter()
        .map(|d| d["size"].as_u64().expect("n"))
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    assert_eq!(sizes.len(), 5);

    let images = s.get_json("/api/v1/media?type=image").await;
    assert_eq!((images["total"].as_u64(), ids(&images).len()), (Some(3), 3));
    let docs = s.get_json("/api/v1/media?type=document").await;
    assert_eq!(names(&docs), ["cherry.pdf"]);
    let videos = s.get_json("/api/v1/media?type=video").await;
    assert_eq!(names(&videos), ["date.webm"]);

    let folder = s
        .get_json("/api/v1/media?folder=/images&sort=filename&order=asc")
        .await;
    assert_eq!(
        names(&folder),
        ["Apple.png", "banana.jpg"],
        "exact folder, not subfolders"
    );
    assert_eq!(folder["total"], 2);
    let folder_type = s
        .get_json("/api/v1/media?folder=/images&type=document")
        .await;
    assert_eq!(folder_type["total"], 0);
    let folder_type = s
        .get_json(
            "/api/v1/media?folder=%2Fimages&type=image&limit=1&offset=1&sort=filename&order=asc",
        )
        .await;
    assert_eq!(
        (names(&folder_type), folder_type["total"].as_u64()),
        (vec!["banana.jpg".to_owned()], Some(2))
    );
}

async fn pagination_is_stable_and_exact(s: TestServer) {
    let files: Vec<(String, Vec<u8>)> = (0..30)
        .map(|_| ("same.png".to_owned(), fixture(PNG)))
        .collect();
    let resp = s.upload_parts(files, &[]).await; // one request: many items share a timestamp range
    assert_eq!(resp.status(), StatusCode::CREATED);
    for sort in ["createdAt", "filename", "size"] {
        for order in ["asc", "desc"] {
            let mut seen = Vec::new();
            for offset in (0..30).step_by(7) {
                let page = s
                    .get_json(&format!(
                        "/api/v1/media?sort={sort}&order={order}&limit=7&offset={offset}"
                    ))
                    .await;
                assert_eq!(page["total"], 30);
                seen.extend(ids(&page));
            }
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                (seen.len(), unique.len()),
                (30, 30),
                "{sort} {order}: every item once"
            );
            let again: Vec<String> = {
                let p = s
                    .get_json(&format!("/api/v1/media?sort={sort}&order={order}&limit=30"))
                    .await;
                ids(&p)
            };
            assert_eq!(seen, again, "{sort} {order}: pages agree with one big page");
        }
    }
    let beyond = s.get_json("/api/v1/media?offset=100").await;
    assert_eq!(
        (beyond["total"].as_u64(), ids(&beyond).len()),
        (Some(30), 0)
    );
    let capped = s.get_json("/api/v1/media?limit=1000").await;
    assert_eq!(capped["limit"], 100);
}

async fn search_is_case_insensitive_and_literal(s: TestServer) {
    seed(
        &s,
        &[
            ("Holiday-Beach.jpg", JPG, "/", ""),
            ("notes.pdf", PDF, "/", "beach reading"),
            ("100%_real.png", PNG, "/", ""),
            ("1000_real.png", PNG, "/", ""),
            ("other.png", PNG, "/", "nothing"),
        ],
    )
    .await;
    let hits = s
        .get_json("/api/v1/media?search=BEACH&sort=filename&order=asc")
        .await;
    assert_eq!(
        names(&hits),
        ["Holiday-Beach.jpg", "notes.pdf"],
        "filename or alt"
    );
    assert_eq!(hits["total"], 2);
    let literal = s.get_json("/api/v1/media?search=%25_").await;
    assert_eq!(
        names(&literal),
        ["100%_real.png"],
        "% and _ are not wildcards"
    );
    let under = s.get_json("/api/v1/media?search=_real&sort=filename").await;
    assert_eq!(under["total"], 2);
    let paged = s
        .get_json("/api/v1/media?search=real&limit=1&offset=1&sort=filename&order=asc")
        .await;
    assert_eq!(
        (names(&paged), paged["total"].as_u64()),
        (vec!["1000_real.png".to_owned()], Some(2))
    );
    let none = s.get_json("/api/v1/media?search=zzz").await;
    assert_eq!((none["total"].as_u64(), ids(&none).len()), (Some(0), 0));
}

async fn search_finds_every_spelling(s: TestServer) {
    let nfd = "cafe\u{301}-terrasse.png"; // as a Mac names it
    seed(
        &s,
        &[
            (nfd, PNG, "/", ""),
            ("ΟΔΥΣΣΕΑΣ.png", PNG, "/", ""),
            ("Straße.png", PNG, "/", ""),
            ("İstanbul.png", PNG, "/", "Grüße"),
        ],
    )
    .await;
    for (term, expected) in [
        ("caf%C3%A9", nfd), // NFC
        ("CAFE%CC%81", nfd),
        (
            "%CE%BF%CE%B4%CF%85%CF%83%CF%83%CE%B5%CE%B1%CF%82",
            "ΟΔΥΣΣΕΑΣ.png",
        ), // οδυσσεας
        ("strasse", "Straße.png"),
        ("istanbul", "İstanbul.png"),
        ("GR%C3%9CSSE", "İstanbul.png"), // GRÜSSE, in the alt text
    ] {
        let hits = s.get_json(&format!("/api/v1/media?search={term}")).await;
        assert_eq!(names(&hits), [expected], "search={term}");
    }
}

async fn bad_query_values_are_400(s: TestServer) {
    for (q, code) in [
        ("limit=abc", "invalid_limit"),
        ("limit=-5", "invalid_limit"),
        ("limit=0", "invalid_limit"),
        ("offset=x", "invalid_offset"),
        ("type=audio", "invalid_type"),
        ("sort=name", "invalid_sort"),
        ("order=sideways", "invalid_order"),
        ("folder=images", "invalid_folder"),
        ("folder=/a/../b", "invalid_folder"),
        ("offset=10001", "invalid_offset"),
        (&format!("search={}", "a".repeat(201)), "invalid_search"),
        (
            &format!("search={}", "%C3%9F".repeat(101)),
            "invalid_search",
        ), // ß folds to ss
    ] {
        let resp = s
            .get(&format!("/api/v1/media?{q}"), Some(&s.write_key))
            .await;
        assert_eq!(error_code(resp, StatusCode::BAD_REQUEST).await, code, "{q}");
    }
    // At the bounds: answered. Past them on the public list too.
    for q in ["offset=10000", &format!("search={}", "a".repeat(200))] {
        let resp = s
            .get(&format!("/api/v1/media?{q}"), Some(&s.write_key))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{q}");
    }
    let public = s.get("/api/v1/public/media?offset=10001", None).await;
    assert_eq!(
        error_code(public, StatusCode::BAD_REQUEST).await,
        "invalid_offset"
    );
}

async fn public_list_shows_public_fields_with_cors(s: TestServer) {
    seed(
        &s,
        &[
            ("b.jpg", JPG, "/pub", "Bee"),
            ("a.png", PNG, "/pub", ""),
            ("c.pdf", PDF, "/", ""),
        ],
    )
    .await;
    let resp = s.get("/api/v1/public/media?folder=/pub", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["total"], 2);
    assert!(body.get("folders").is_none());
    let item = body["data"][0].as_object().expect("item");
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "alt",
            "dominantColor",
            "filename",
            "focalX",
            "focalY",
            "height",
            "id",
            "mimeType",
            "status",
            "thumbhash",
            "url",
            "variants",
            "width"
        ]
    );

    // Without a key search/sort/order are ignored; with one they apply.
    let ignored: Value = s
        .get(
            "/api/v1/public/media?search=zzz&sort=filename&order=asc",
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ignored["total"], 3);
    let keyed: Value = s
        .get(
            "/api/v1/public/media?sort=filename&order=asc",
            Some(&s.read_key),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(names(&keyed), ["a.png", "b.jpg", "c.pdf"]);
    assert!(
        keyed["data"][0].get("size").is_none(),
        "still public fields"
    );
    let searched: Value = s
        .get("/api/v1/public/media?search=bee", Some(&s.read_key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(names(&searched), ["b.jpg"]);

    let clamped: Value = s
        .get("/api/v1/public/media?limit=500&type=document", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (clamped["limit"].as_u64(), clamped["total"].as_u64()),
        (Some(100), Some(1))
    );
    let bad = s.get("/api/v1/public/media?limit=x", None).await;
    assert_eq!(
        bad.headers()
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(&b"*"[..])
    );
    assert_eq!(
        error_code(bad, StatusCode::BAD_REQUEST).await,
        "invalid_limit"
    );

    let preflight = s
        .request(reqwest::Method::OPTIONS, "/api/v1/public/media", None)
        .header("Origin", "https://site.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("send");
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert!(
        preflight
            .headers()
            .get("access-control-allow-methods")
            .is_some()
    );
    let private = s.get("/api/v1/media", Some(&s.write_key)).await;
    assert!(
        private
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
