//! Private media: items only signed, expiring links can read. On every backend: local
//! disk (this server's HMAC links), the bucket (presigned GETs of the private bucket, which
//! refuses anonymous reads itself) and PostgreSQL.

use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Library, TestServer, fixture, holds_within, pinned};

const JPEG: &str = "jpeg/grace_hopper_512x600.jpg";
const PDF: &str = "pdf/ltnews18_1page.pdf";

on_every_backend!(
    private_items_are_invisible_to_the_public_api,
    private_links_are_signed_expire_and_bind_their_path,
    every_answer_that_holds_a_private_item_signs_its_urls,
    a_visibility_change_moves_the_files_both_ways,
);

/// Every URL of an item view: the original's, its variants' and its crops'.
fn urls(item: &Value) -> Vec<String> {
    let mut out = vec![item["url"].as_str().expect("url").to_owned()];
    for list in ["variants", "crops"] {
        for v in item[list].as_array().into_iter().flatten() {
            out.push(v["url"].as_str().expect("url").to_owned());
        }
    }
    out
}

/// A link only its signature opens: this server's (`expires`, `sig`) or a presigned GET.
fn is_signed(url: &str) -> bool {
    (url.contains("?expires=") && url.contains("&sig=")) || url.contains("X-Amz-Signature=")
}

/// Asserts every URL of `item` is a signed link (`what` names the answer).
fn all_signed(item: &Value, what: &str) {
    assert_eq!(item["visibility"], "private", "{what}: {item}");
    assert!(item["urlExpiresAt"].is_string(), "{what}: {item}");
    for url in urls(item) {
        assert!(
            is_signed(&url),
            "{what}: an unsigned URL of a private item: {url}"
        );
    }
}

/// Uploads one fixture with `fields` sent before it (and `?query`), expecting 201.
async fn upload(s: &TestServer, fixture_path: &str, fields: &[(&str, &str)], query: &str) -> Value {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let name = fixture_path.rsplit('/').next().expect("name").to_owned();
    form = form.part("files", Part::bytes(fixture(fixture_path)).file_name(name));
    let resp = s
        .request(
            Method::POST,
            &format!("/api/v1/media{query}"),
            Some(&s.write_key),
        )
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), StatusCode::CREATED, "upload {fixture_path}");
    let body: Value = resp.json().await.expect("json");
    body["data"][0].clone()
}

async fn private(s: &TestServer, fixture_path: &str) -> Value {
    upload(s, fixture_path, &[("visibility", "private")], "?wait=true").await
}

async fn status_of(s: &TestServer, url: &str) -> StatusCode {
    s.get(url, None).await.status()
}

async fn ids(s: &TestServer, path: &str, key: Option<&str>) -> (Vec<String>, u64) {
    let resp = s.get(path, key).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    let body: Value = resp.json().await.expect("json");
    let ids = body["data"].as_array().expect("data").iter();
    let ids = ids
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    (ids, body["total"].as_u64().expect("total"))
}

async fn private_items_are_invisible_to_the_public_api(s: TestServer) {
    let open = upload(&s, PDF, &[("alt", "shared words")], "").await;
    let hidden = upload(
        &s,
        PDF,
        &[("visibility", "private"), ("alt", "shared words")],
        "",
    )
    .await;
    let (open_id, hidden_id) = (
        open["id"].as_str().expect("id"),
        hidden["id"].as_str().expect("id"),
    );
    assert_eq!(open["visibility"], "public");
    assert!(open.get("urlExpiresAt").is_none(), "{open}");
    assert_eq!(hidden["visibility"], "private");

    // The public API: not listed, not counted, not found, with a key or without.
    let key = Some(s.read_key.as_str());
    for (path, key) in [
        ("/api/v1/public/media", None),
        ("/api/v1/public/media?folder=/&type=document", None),
        ("/api/v1/public/media?search=shared", key),
        ("/api/v1/public/media?visibility=private", key),
    ] {
        assert_eq!(
            ids(&s, path, key).await,
            (vec![open_id.to_owned()], 1),
            "{path}"
        );
    }
    let unknown = s
        .get("/api/v1/public/media/media_0000000000000000", None)
        .await;
    let (unknown_status, unknown_body) = (unknown.status(), unknown.text().await.expect("body"));
    let asked = s
        .get(&format!("/api/v1/public/media/{hidden_id}"), None)
        .await;
    assert_eq!(
        (asked.status(), asked.text().await.expect("body")),
        (unknown_status, unknown_body),
        "a private item answers exactly as an unknown id"
    );
    assert_eq!(
        status_of(&s, &format!("/api/v1/public/media/{open_id}")).await,
        StatusCode::OK
    );

    // A key holder sees both, and can ask for either.
    let mut both = vec![open_id.to_owned(), hidden_id.to_owned()];
    both.sort();
    let (mut all, total) = ids(&s, "/api/v1/media?search=shared", key).await;
    all.sort();
    assert_eq!((all, total), (both, 2));
    let only = |v: &str| format!("/api/v1/media?visibility={v}");
    assert_eq!(
        ids(&s, &only("private"), key).await,
        (vec![hidden_id.to_owned()], 1)
    );
    assert_eq!(
        ids(&s, &only("public"), key).await,
        (vec![open_id.to_owned()], 1)
    );
    assert_eq!(
        s.get(&only("secret"), key).await.status(),
        StatusCode::BAD_REQUEST
    );

    // The visibility field decides where the files go; after them, they are moved there
    // (as the explorer sends its form), and nothing is left at the first place.
    let before = s.library.stored_files().await;
    let resp = visibility_after_the_file(&s, "private").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    all_signed(&body["data"][0], "visibility after the file");
    assert_eq!(
        status_of(&s, body["data"][0]["url"].as_str().expect("url")).await,
        StatusCode::OK
    );
    let one_more = || async {
        let now = s.library.stored_files().await;
        let new: Vec<&String> = now.iter().filter(|k| !before.contains(k)).collect();
        new.len() == 1 && new[0].starts_with("private/")
    };
    let moved = holds_within(std::time::Duration::from_secs(10), one_more).await;
    assert!(
        moved,
        "one copy, in the private place: {:?}",
        s.library.stored_files().await
    );
    let resp = visibility_after_the_file(&s, "secret").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// An upload whose form names its visibility after its file.
async fn visibility_after_the_file(s: &TestServer, visibility: &str) -> reqwest::Response {
    let form = Form::new()
        .part("files", Part::bytes(fixture(PDF)).file_name("late.pdf"))
        .text("visibility", visibility.to_owned());
    s.request(Method::POST, "/api/v1/media", Some(&s.write_key))
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

async fn private_links_are_signed_expire_and_bind_their_path(s: TestServer) {
    let item = private(&s, JPEG).await;
    all_signed(&item, "upload");
    let url = item["url"].as_str().expect("url").to_owned();
    let variant = item["variants"][0]["url"]
        .as_str()
        .expect("a variant")
        .to_owned();

    // The link opens the file, in ranges too.
    let resp = s.get(&url, None).await;
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    let etag = resp.headers().get("etag").cloned();
    let cache = resp.headers().get("cache-control").cloned();
    assert!(!resp.bytes().await.expect("body").is_empty());
    let range = s
        .request(Method::GET, &url, None)
        .header("range", "bytes=0-99");
    let part = range.send().await.expect("range");
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.expect("part").len(), 100);

    let (path, query) = url.split_once('?').expect("a query");
    if s.library.is_s3() {
        // The bucket itself refuses an anonymous read of the object.
        assert_eq!(status_of(&s, path).await, StatusCode::FORBIDDEN, "{path}");
        let tampered = tamper(&url, "X-Amz-Signature=");
        assert_eq!(status_of(&s, &tampered).await, StatusCode::FORBIDDEN);
    } else {
        // Cached privately, never longer than the link lives.
        let cache = cache.expect("cache-control");
        let cache = cache.to_str().expect("ascii");
        let age: u64 = cache
            .strip_prefix("private, max-age=")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{cache}"));
        assert!(age <= 3600, "{cache}");
        let etag = etag.expect("etag");
        let again = s
            .request(Method::GET, &url, None)
            .header("if-none-match", etag);
        assert_eq!(
            again.send().await.expect("304").status(),
            StatusCode::NOT_MODIFIED
        );
        for (what, bad) in [
            ("no signature", path.to_owned()),
            (
                "no expiry",
                format!("{path}?{}", query.split('&').nth(1).expect("sig")),
            ),
            ("a tampered signature", tamper(&url, "sig=")),
            ("another expiry", url.replacen("expires=", "expires=1", 1)),
            (
                "another file's path",
                format!("{}?{query}", variant.split_once('?').expect("query").0),
            ),
        ] {
            let resp = s.get(&bad, None).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what}: {bad}");
            let body: Value = resp.json().await.expect("json");
            assert_eq!(body["error"]["code"], "invalid_link", "{what}");
        }
    }

    // A link asked to last one second stops working after it.
    let id = item["id"].as_str().expect("id");
    let short = s.get_json(&format!("/api/v1/media/{id}?urlTtl=1")).await["data"].clone();
    all_signed(&short, "a short link");
    let url = short["url"].as_str().expect("url").to_owned();
    assert_eq!(status_of(&s, &url).await, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(
        status_of(&s, &url).await,
        StatusCode::FORBIDDEN,
        "expired: {url}"
    );

    for bad in ["0", "-1", "86401", "soon"] {
        let resp = s
            .get(
                &format!("/api/v1/media/{id}?urlTtl={bad}"),
                Some(&s.read_key),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "urlTtl={bad}");
    }
}

/// `url` with the first character of the value after `marker` changed.
fn tamper(url: &str, marker: &str) -> String {
    let at = url.find(marker).expect("marker") + marker.len();
    let mut out = url.to_owned();
    let c = if &url[at..=at] == "0" { "1" } else { "0" };
    out.replace_range(at..=at, c);
    out
}

/// The operations this walk covers: every one whose answer holds an item's full view or
/// a crop URL, by the server's own OpenAPI document (so a new one cannot be forgotten).
const WALKED: &[&str] = &[
    "get /api/v1/media",
    "post /api/v1/media",
    "post /api/v1/media/confirm",
    "get /api/v1/media/{id}",
    "patch /api/v1/media/{id}",
    "post /api/v1/media/{id}/crops",
    "put /api/v1/media/{id}/file",
];

async fn every_answer_that_holds_a_private_item_signs_its_urls(s: TestServer) {
    let doc = s.get_json("/api/v1/openapi.json").await;
    let mut holding = Vec::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, op) in operations.as_object().expect("operations") {
            let answers = op["responses"].as_object().expect("responses").iter();
            let ok: Vec<String> = answers
                .filter(|(code, _)| code.starts_with('2'))
                .map(|(_, r)| r.to_string())
                .collect();
            let items = ["FullItem", "Uploaded", "Confirmed", "SignedCrop"];
            if ok.iter().any(|r| items.iter().any(|i| r.contains(i))) {
                holding.push(format!("{method} {path}"));
            }
        }
    }
    holding.sort();
    let mut walked: Vec<String> = WALKED.iter().map(|w| w.to_string()).collect();
    walked.sort();
    assert_eq!(
        holding, walked,
        "every answer that holds an item is walked below"
    );
    let fetches = |url: String| {
        let s = &s;
        async move {
            assert_eq!(status_of(s, &url).await, StatusCode::OK, "{url}");
        }
    };
    // Upload, with and without waiting.
    let item = upload(&s, JPEG, &[("visibility", "private")], "").await;
    all_signed(&item, "upload");
    let id = item["id"].as_str().expect("id").to_owned();
    let waited = private(&s, JPEG).await;
    all_signed(&waited, "upload ?wait=true");
    for url in urls(&waited) {
        fetches(url).await;
    }
    // Get, list, search.
    let got = s.get_json(&format!("/api/v1/media/{id}")).await["data"].clone();
    all_signed(&got, "get");
    for path in [
        "/api/v1/media",
        "/api/v1/media?search=grace",
        "/api/v1/media?visibility=private",
    ] {
        let page = s.get_json(path).await;
        let items = page["data"].as_array().expect("data");
        assert_eq!(items.len(), 2, "{path}");
        for i in items {
            all_signed(i, path);
        }
    }
    // Patch and replace.
    let path = format!("/api/v1/media/{id}");
    let patched = s.send_json(Method::PATCH, &path, json!({"alt": "a"})).await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.expect("json");
    all_signed(&patched["data"], "patch");
    let form = Form::new().part("file", Part::bytes(fixture(JPEG)).file_name("new.jpg"));
    let replaced = s
        .request(Method::PUT, &format!("{path}/file"), Some(&s.write_key))
        .multipart(form)
        .send()
        .await
        .expect("replace");
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.expect("json");
    all_signed(&replaced["data"], "replace");
    for url in urls(&replaced["data"]) {
        fetches(url).await;
    }
    // A crop URL that ends with the links; a lasting one is not for a private item.
    let signed = s
        .send_json(
            Method::POST,
            &format!("{path}/crops"),
            json!({"width": 40, "height": 30}),
        )
        .await;
    assert_eq!(signed.status(), StatusCode::OK);
    let signed: Value = signed.json().await.expect("json");
    let crop = signed["url"].as_str().expect("url");
    assert!(
        crop.contains("&expires=") && signed["expiresAt"].is_string(),
        "{signed}"
    );
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = direct.get(s.url(crop)).send().await.expect("crop");
    assert_eq!(resp.status(), StatusCode::FOUND, "{crop}");
    let cache = resp.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cache.starts_with("private"), "{cache}");
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(is_signed(&location), "{location}");
    fetches(location).await;
    let lasting = crop.replacen("&expires=", "&expired=", 1);
    assert_eq!(
        status_of(&s, &lasting).await,
        StatusCode::FORBIDDEN,
        "{lasting}"
    );
    if !s.library.is_s3() {
        // Even a lasting URL signed with the server's own key: to it the item is not there.
        let signer = darkroom::delivery::Signer::load(None, s.library.path()).expect("key");
        let size = darkroom::model::CropSize {
            width: 40,
            height: 30,
        };
        let lasting = signer.url(&id, size, None);
        assert_eq!(
            status_of(&s, &lasting).await,
            StatusCode::NOT_FOUND,
            "{lasting}"
        );
    }
    // Presign and confirm (bucket storage only).
    if s.library.is_s3() {
        let body = json!({"filename": "doc.pdf", "mimeType": "application/pdf",
            "size": fixture(PDF).len(), "visibility": "private"});
        let presigned = s
            .send_json(Method::POST, "/api/v1/media/presign", body)
            .await;
        assert_eq!(presigned.status(), StatusCode::OK);
        let presigned: Value = presigned.json().await.expect("json");
        assert!(presigned["publicUrl"].is_null(), "{presigned}");
        let mut put = s.client.put(presigned["uploadUrl"].as_str().expect("url"));
        let headers = presigned["headers"].as_object().expect("headers");
        assert_eq!(headers["Cache-Control"], "private, no-cache", "{presigned}");
        for (name, value) in headers {
            put = put.header(name, value.as_str().expect("a header value"));
        }
        let put = put.body(fixture(PDF)).send().await.expect("PUT");
        assert!(put.status().is_success(), "{}", put.status());
        let key = presigned["storageKey"].clone();
        let wrong = json!({"storageKey": key, "visibility": "public"});
        let resp = s
            .send_json(Method::POST, "/api/v1/media/confirm", wrong)
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::BAD_REQUEST,
            "visibility_mismatch"
        );
        let confirm = s
            .send_json(
                Method::POST,
                "/api/v1/media/confirm",
                json!({"storageKey": key}),
            )
            .await;
        assert_eq!(confirm.status(), StatusCode::CREATED);
        let confirmed: Value = confirm.json().await.expect("json");
        all_signed(&confirmed["data"], "confirm");
        fetches(confirmed["data"]["url"].as_str().expect("url").to_owned()).await;
    }
}

async fn a_visibility_change_moves_the_files_both_ways(s: TestServer) {
    let open = upload(&s, JPEG, &[], "?wait=true").await;
    let id = open["id"].as_str().expect("id").to_owned();
    let open_urls = urls(&open);
    assert!(open_urls.len() > 1, "variants: {open}");
    let bytes = s.served(&open).await;
    let path = format!("/api/v1/media/{id}");

    let flip = |v: &str| json!({"visibility": v});
    let resp = s.send_json(Method::PATCH, &path, flip("private")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let hidden: Value = resp.json().await.expect("json");
    let hidden = hidden["data"].clone();
    all_signed(&hidden, "patch to private");
    assert_eq!(s.served(&hidden).await, bytes, "the same bytes, moved");
    for url in urls(&hidden) {
        assert_eq!(status_of(&s, &url).await, StatusCode::OK, "{url}");
    }
    for url in &open_urls {
        s.until_not_found(url).await; // the old public URLs stop working
    }
    assert_eq!(
        status_of(&s, &format!("/api/v1/public/media/{id}")).await,
        StatusCode::NOT_FOUND
    );
    let files = s
        .library
        .after_sweep(|f| f.iter().all(|k| k.starts_with("private/")))
        .await;
    assert_eq!(
        files.len(),
        open_urls.len(),
        "one whole copy, in the private place: {files:?}"
    );
    assert!(files.iter().all(|k| k.starts_with("private/")), "{files:?}");

    // And back, with another field in the same PATCH.
    let body = json!({"visibility": "public", "alt": "back in the open"});
    let resp = s.send_json(Method::PATCH, &path, body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let back: Value = resp.json().await.expect("json");
    let back = back["data"].clone();
    assert_eq!(
        (back["visibility"].as_str(), back["alt"].as_str()),
        (Some("public"), Some("back in the open"))
    );
    assert!(back.get("urlExpiresAt").is_none());
    for url in urls(&back) {
        assert!(!is_signed(&url), "{url}");
        assert!(
            !open_urls.contains(&url),
            "new keys, not the old ones: {url}"
        );
    }
    assert_eq!(s.served(&back).await, bytes);
    for url in urls(&hidden) {
        // The links are still signed and unexpired, but their files are gone.
        let mut gone = false;
        for _ in 0..100 {
            if status_of(&s, &url).await != StatusCode::OK {
                gone = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(gone, "{url} is still served");
    }
    assert_eq!(
        status_of(&s, &format!("/api/v1/public/media/{id}")).await,
        StatusCode::OK
    );
    let files = s
        .library
        .after_sweep(|f| f.iter().all(|k| !k.starts_with("private/")))
        .await;
    assert_eq!(files.len(), open_urls.len(), "{files:?}");
    assert!(
        files.iter().all(|k| !k.starts_with("private/")),
        "{files:?}"
    );
    // Asking for the visibility it has changes nothing.
    let same = s.send_json(Method::PATCH, &path, flip("public")).await;
    assert_eq!(same.status(), StatusCode::OK);
    let same: Value = same.json().await.expect("json");
    assert_eq!(urls(&same["data"]), urls(&back));
}

/// On a bucket store without `storage.private_bucket` nothing can be made private, and
/// the answer says what to configure.
#[tokio::test]
async fn private_needs_a_private_bucket_on_s3() {
    if !pinned() {
        return;
    }
    let library = Library::in_bucket(|s3| s3.private_bucket = None).await;
    let s = TestServer::spawn_in(library, |_| {}).await;
    let resp = s
        .upload_parts(
            vec![("a.pdf".into(), fixture(PDF))],
            &[("visibility", "private")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "private_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("private_bucket")
    );
    let item = upload(&s, PDF, &[], "").await;
    let path = format!("/api/v1/media/{}", item["id"].as_str().expect("id"));
    let resp = s
        .send_json(Method::PATCH, &path, json!({"visibility": "private"}))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(s.get_json(&path).await["data"]["visibility"], "public");
}
