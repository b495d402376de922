//! Keyset pages: `nextCursor` on every listing, `cursor` instead of `offset`, stable while
//! items come and go between pages.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{TestServer, error_code, fixture};

const PDF: &str = "pdf/ltnews18_1page.pdf";

/// `n` documents named `doc-00.pdf`.., one request each (distinct creation times).
async fn seed(s: &TestServer, n: usize, alt: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let file = vec![(format!("doc-{i:02}.pdf"), fixture(PDF))];
        let resp = s.upload_parts(file, &[("alt", alt)]).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let body: Value = resp.json().await.expect("json");
        ids.push(body["data"][0]["id"].as_str().expect("id").to_owned());
    }
    ids
}

fn ids(page: &Value) -> Vec<String> {
    let data = page["data"].as_array().expect("data");
    data.iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

fn next(page: &Value) -> Option<String> {
    page["nextCursor"].as_str().map(str::to_owned)
}

/// Every page of `query`, following `nextCursor` (at most 50 pages).
async fn walk(s: &TestServer, base: &str, query: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = format!("{base}?{query}");
    for _ in 0..50 {
        let page = s.get_json(&path).await;
        pages.push(ids(&page));
        match next(&page) {
            Some(cursor) => path = format!("{base}?{query}&cursor={cursor}"),
            None => return pages,
        }
    }
    panic!("{query}: more than 50 pages");
}

#[tokio::test]
async fn cursor_pages_visit_every_item_once_in_order_with_the_offset_pages() {
    let s = TestServer::spawn().await;
    let mut seeded = seed(&s, 11, "a harbour at dusk").await;
    seeded.reverse(); // newest first, the default order
    for base in ["/api/v1/media", "/api/v1/public/media"] {
        let pages = walk(&s, base, "limit=4").await;
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 3]);
        assert_eq!(pages.concat(), seeded, "{base}");
    }
    let by_name = walk(&s, "/api/v1/media", "limit=3&sort=filename&order=asc").await;
    let mut expected = seeded.clone();
    expected.reverse(); // doc-00 .. doc-10
    assert_eq!(by_name.concat(), expected);

    let offset_page = s.get_json("/api/v1/media?limit=4&offset=4").await;
    assert_eq!(
        ids(&offset_page),
        pages_of(&seeded, 4)[1],
        "offset and cursor agree"
    );
    assert!(
        next(&offset_page).is_some(),
        "an offset page has a nextCursor too"
    );
    let last = s.get_json("/api/v1/media?limit=4&offset=8").await;
    assert_eq!((last["total"].as_u64(), next(&last)), (Some(11), None));

    let searched = walk(&s, "/api/v1/media", "search=HARBOUR&limit=5&sort=size").await;
    assert_eq!(searched.concat().len(), 11, "search pages by cursor too");
    let sorted_by_size: Vec<String> = {
        let all = s
            .get_json("/api/v1/media?search=harbour&limit=100&sort=size")
            .await;
        ids(&all)
    };
    assert_eq!(searched.concat(), sorted_by_size);
}

fn pages_of(ids: &[String], size: usize) -> Vec<Vec<String>> {
    ids.chunks(size).map(<[String]>::to_vec).collect()
}

#[tokio::test]
async fn a_cursor_survives_inserts_and_deletes_between_pages() {
    let s = TestServer::spawn().await;
    let mut seeded = seed(&s, 10, "").await;
    seeded.reverse();
    let first = s.get_json("/api/v1/media?limit=4").await;
    assert_eq!(ids(&first), seeded[..4]);
    let cursor = next(&first).expect("more pages");

    // Meanwhile: a new item (it sorts before the cursor), the cursor's own item and one
    // item of the next page are deleted.
    seed(&s, 1, "").await;
    for gone in [&seeded[3], &seeded[5]] {
        assert_eq!(s.delete_item(gone).await.status(), StatusCode::OK);
    }
    let second = s
        .get_json(&format!("/api/v1/media?limit=4&cursor={cursor}"))
        .await;
    let expected: Vec<String> = [&seeded[4], &seeded[6], &seeded[7], &seeded[8]]
        .map(String::clone)
        .to_vec();
    assert_eq!(ids(&second), expected, "no item repeated or skipped");
    assert_eq!(second["total"], 9, "the total is of the whole listing, now");
    let third = s
        .get_json(&format!(
            "/api/v1/media?limit=4&cursor={}",
            next(&second).expect("more")
        ))
        .await;
    assert_eq!((ids(&third), next(&third)), (vec![seeded[9].clone()], None));
}

#[tokio::test]
async fn unusable_cursors_are_400_invalid_cursor() {
    let s = TestServer::spawn().await;
    seed(&s, 3, "").await;
    let page = s
        .get_json("/api/v1/media?limit=1&sort=size&order=asc")
        .await;
    let cursor = next(&page).expect("cursor");
    for query in [
        "cursor=not-a-cursor!".to_owned(),
        "cursor=AAAA".to_owned(),
        format!("cursor={cursor}&sort=filename&order=asc"),
        format!("cursor={cursor}&sort=size&order=desc"),
        format!("cursor={cursor}&sort=size&order=asc&offset=1"),
    ] {
        let resp = s
            .get(&format!("/api/v1/media?{query}"), Some(&s.write_key))
            .await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            "invalid_cursor",
            "{query}"
        );
    }
    let fine = s
        .get_json(&format!(
            "/api/v1/media?cursor={cursor}&sort=size&order=asc&offset=0"
        ))
        .await;
    assert_eq!(ids(&fine).len(), 2);
}
