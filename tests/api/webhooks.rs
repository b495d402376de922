//! Events: webhooks made through the API get every change, signed per Standard Webhooks,
//! at least once and in order per item, from a receiver on loopback (with
//! `webhooks.allow_private_targets`; without it such targets are refused).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use darkroom::config::Config;
use darkroom::events::sign;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{
    Catalog, Files, Library, TestServer, error_code, fixture, header, pinned, sample,
};

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    json: Value,
    answered: u16,
    at: Instant,
}

impl Delivery {
    fn kind(&self) -> &str {
        self.json["type"].as_str().unwrap_or_default()
    }

    /// The item id or folder path the event is about.
    fn subject(&self) -> String {
        let data = &self.json["data"];
        data["id"]
            .as_str()
            .or(data["path"].as_str())
            .or(data["webhookId"].as_str())
            .unwrap_or_default()
            .to_owned()
    }
}

/// A webhook receiver on 127.0.0.1: records every request, answers `status`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<AtomicU16>,
    /// `Retry-After` seconds sent with non-2xx answers (0: none).
    retry_after: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let retry_after = Arc::new(AtomicU16::new(0));
        let (g, st, ra) = (got.clone(), status.clone(), retry_after.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (g, st, ra) = (g.clone(), st.clone(), ra.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (g, st, ra) = (g.clone(), st.clone(), ra.clone());
                        async move {
                            let at = Instant::now();
                            let h = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let (id, timestamp, signature) = (
                                h("webhook-id"),
                                h("webhook-timestamp"),
                                h("webhook-signature"),
                            );
                            let body = req.into_body().collect().await?.to_bytes().to_vec();
                            let answered = st.load(Ordering::SeqCst);
                            g.lock().expect("lock").push(Delivery {
                                id,
                                timestamp,
                                signature,
                                json: serde_json::from_slice(&body).unwrap_or(Value::Null),
                                body,
                                answered,
                                at,
                            });
                            let mut resp = hyper::Response::builder()
                                .status(answered)
                                .header("location", "/elsewhere");
                            let wait = ra.load(Ordering::SeqCst);
                            if wait > 0 && answered >= 300 {
                                resp = resp.header("retry-after", wait.to_string());
                            }
                            let resp = resp
                                .body(http_body_util::Empty::<bytes::Bytes>::new())
                                .expect("response");
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url,
            got,
            status,
            retry_after,
            task,
        }
    }

    fn all(&self) -> Vec<Delivery> {
        self.got.lock().expect("lock").clone()
    }

    /// The deliveries it accepted (answered 2xx).
    fn accepted(&self) -> Vec<Delivery> {
        self.all()
            .into_iter()
            .filter(|d| (200..300).contains(&d.answered))
            .collect()
    }

    /// Waits (at most `limit`) until `n` deliveries were accepted.
    async fn until_accepted(&self, n: usize, limit: Duration) -> Vec<Delivery> {
        let started = Instant::now();
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n || started.elapsed() > limit {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Deliveries to loopback, and retries quick enough for a test.
fn receivable(c: &mut Config) {
    c.webhooks.allow_private_targets = true;
    c.webhooks.retry_base_ms = 200;
    c.webhooks.retry_max_delay_secs = 2;
    // The PDFs here are cheap items of two events (no tool, so no poster job: their
    // `media.ready` comes with `media.created`); a poster's `media.ready` is its job's
    // end, as an image's is.
    c.previews.pdftoppm = String::new();
}

async fn create_webhook(s: &TestServer, url: &str, events: Value) -> reqwest::Response {
    s.request(Method::POST, "/api/v1/webhooks", Some(&s.admin_key))
        .json(&json!({"url": url, "events": events, "description": "test receiver"}))
        .send()
        .await
        .expect("create webhook")
}

/// A webhook for every event to `r`: its id and secret.
async fn subscribe(s: &TestServer, r: &Receiver) -> (String, String) {
    let resp = create_webhook(s, &r.url, json!(["*"])).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "cache-control").as_deref(), Some("no-store"));
    let body: Value = resp.json().await.expect("json");
    let data = &body["data"];
    let secret = data["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (data["id"].as_str().expect("id").to_owned(), secret)
}

async fn admin_json(s: &TestServer, method: Method, path: &str) -> (StatusCode, Value) {
    let resp = s
        .request(method, path, Some(&s.admin_key))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The webhook as `GET /api/v1/webhooks` lists it.
async fn listed(s: &TestServer, id: &str) -> Value {
    let (status, body) = admin_json(s, Method::GET, "/api/v1/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    let hooks = body["data"].as_array().expect("data").clone();
    hooks
        .into_iter()
        .find(|h| h["id"] == id)
        .expect("the webhook is listed")
}

/// The webhook as listed once `holds` holds of it, or as listed last after `secs`.
async fn listed_when(s: &TestServer, id: &str, secs: u64, holds: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let hook = listed(s, id).await;
        if holds(&hook) || started.elapsed() > Duration::from_secs(secs) {
            return hook;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every delivery verifies with the webhook's secret, and its timestamp is now.
fn assert_signed(deliveries: &[Delivery], secret: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    for d in deliveries {
        let ts: u64 = d.timestamp.parse().expect("webhook-timestamp");
        assert!(now.abs_diff(ts) < 120, "timestamp {ts} vs {now}");
        let expected = sign::signature(secret, &d.id, ts, &d.body).expect("sign");
        assert_eq!(d.signature, expected, "{}", d.kind());
        assert!(d.id.starts_with("msg_"), "{}", d.id);
        assert!(
            d.json["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }
}

/// The kinds `deliveries` brought for `subject`, in arrival order.
fn kinds_of(deliveries: &[Delivery], subject: &str) -> Vec<String> {
    deliveries
        .iter()
        .filter(|d| d.subject() == subject)
        .map(|d| d.kind().to_owned())
        .collect()
}

// ---- every change, once, signed -----------------------------------------------------

#[tokio::test]
async fn every_change_arrives_once_signed_local() {
    if pinned() {
        every_change_arrives_once_signed(Library::of(Catalog::Redb, Files::Disk).await).await;
    }
}

#[tokio::test]
async fn every_change_arrives_once_signed_s3() {
    if pinned() {
        every_change_arrives_once_signed(Library::of(Catalog::Redb, Files::Bucket).await).await;
    }
}

#[tokio::test]
async fn every_change_arrives_once_signed_postgres() {
    if pinned() {
        every_change_arrives_once_signed(Library::of(Catalog::Postgres, Files::Bucket).await).await;
    }
}

async fn every_change_arrives_once_signed(library: Library) {
    let s = TestServer::spawn_in(library, receivable).await;
    let r = Receiver::start(204).await;
    let (hook, secret) = subscribe(&s, &r).await;
    let listed_hook = listed(&s, &hook).await;
    assert!(listed_hook.get("secret").is_none(), "{listed_hook}");
    assert_eq!(listed_hook["events"], json!(["*"]));
    assert_eq!(listed_hook["enabled"], true);

    let (status, ping) =
        admin_json(&s, Method::POST, &format!("/api/v1/webhooks/{hook}/test")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let ping_id = ping["data"]["eventId"]
        .as_str()
        .expect("eventId")
        .to_owned();

    let a = s.upload_waiting_one("jpeg/grace_hopper_512x600.jpg").await;
    let a_id = a["id"].as_str().expect("id").to_owned();
    let resp = s
        .send_json(
            Method::PATCH,
            &format!("/api/v1/media/{a_id}"),
            json!({"alt": "Grace Hopper"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(fixture("jpeg/hopper_128x128.jpg")).file_name("h.jpg"),
    );
    let resp = s
        .request(
            Method::PUT,
            &format!("/api/v1/media/{a_id}/file"),
            Some(&s.write_key),
        )
        .multipart(form)
        .send()
        .await
        .expect("replace");
    assert_eq!(resp.status(), StatusCode::OK);
    s.until_processed(&a_id).await;
    for method in [Method::POST, Method::DELETE] {
        let resp = s
            .send_json(method, "/api/v1/media/folders", json!({"path": "/hooks/a"}))
            .await;
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    // Presign and confirm (S3 only): the other way in emits the same events.
    let confirmed = if s.is_s3() {
        Some(presign_and_confirm(&s).await)
    } else {
        None
    };
    assert_eq!(s.delete_item(&a_id).await.status(), StatusCode::OK);

    let mut expected = 1 + 6 + 2;
    if confirmed.is_some() {
        expected += 2;
    }
    let got = r.until_accepted(expected, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(800)).await; // anything more would show now
    let got_all = r.accepted();
    assert_eq!(got_all.len(), expected, "{:#?}", kinds(&got));
    let mut ids: Vec<&str> = got_all.iter().map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), expected, "each event once");
    assert_signed(&got_all, &secret);

    let ping = got_all
        .iter()
        .find(|d| d.kind() == "webhook.ping")
        .expect("ping");
    assert_eq!(
        (ping.id.as_str(), ping.subject()),
        (ping_id.as_str(), hook.clone())
    );
    assert_eq!(
        kinds_of(&got_all, &a_id),
        [
            "media.created",
            "media.ready",
            "media.updated",
            "media.replaced",
            "media.ready",
            "media.deleted"
        ]
    );
    let of_a: Vec<&Delivery> = got_all.iter().filter(|d| d.subject() == a_id).collect();
    let ready = &of_a[1].json["data"];
    assert_eq!(ready["status"], "ready");
    assert!(
        ready["variants"].as_array().is_some_and(|v| !v.is_empty()),
        "{ready}"
    );
    assert!(ready["thumbhash"].is_string() && ready["dominantColor"].is_string());
    assert_eq!(ready["width"], 512);
    let updated = &of_a[2].json["data"];
    assert_eq!(
        (&updated["alt"], &updated["changed"]),
        (&json!("Grace Hopper"), &json!(["alt"]))
    );
    let replaced_ready = &of_a[4].json["data"];
    assert_eq!(
        (&replaced_ready["width"], &replaced_ready["alt"]),
        (&json!(128), &json!("Grace Hopper"))
    );
    assert_eq!(of_a[5].json["data"]["id"], a_id.as_str());
    assert_eq!(
        kinds_of(&got_all, "/hooks/a"),
        ["folder.created", "folder.deleted"]
    );
    if let Some(b) = confirmed {
        assert_eq!(kinds_of(&got_all, &b), ["media.created", "media.ready"]);
    }
    // The attempts are listed, newest first.
    let (status, attempts) = admin_json(
        &s,
        Method::GET,
        &format!("/api/v1/webhooks/{hook}/deliveries"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let attempts = attempts["data"].as_array().expect("data").clone();
    // One 204 per event (a connection reset on the way would add an attempt without one).
    let answered: Vec<&Value> = attempts.iter().filter(|a| a["status"] == 204).collect();
    assert_eq!(answered.len(), expected, "{attempts:?}");
    assert!(answered.iter().all(|a| a["error"].is_null()));
    assert!(
        attempts
            .iter()
            .all(|a| a["status"] == 204 || a["status"].is_null())
    );
    assert_eq!(attempts[0]["type"], got_all[expected - 1].kind());
    // Removed: nothing more is delivered.
    let (status, _) = admin_json(&s, Method::DELETE, &format!("/api/v1/webhooks/{hook}")).await;
    assert_eq!(status, StatusCode::OK);
    s.upload_one("pdf/ltnews18_1page.pdf", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(r.accepted().len(), expected);
    let (status, _) = admin_json(
        &s,
        Method::GET,
        &format!("/api/v1/webhooks/{hook}/deliveries"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn kinds(d: &[Delivery]) -> Vec<(String, String)> {
    d.iter()
        .map(|d| (d.kind().to_owned(), d.subject()))
        .collect()
}

/// A PDF through presign, PUT and confirm: its id.
async fn presign_and_confirm(s: &TestServer) -> String {
    let pdf = fixture("pdf/ltnews18_1page.pdf");
    let resp = s
        .send_json(
            Method::POST,
            "/api/v1/media/presign",
            json!({"filename": "doc.pdf", "mimeType": "application/pdf", "size": pdf.len()}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let p: Value = resp.json().await.expect("json");
    let put = Client::new()
        .put(p["uploadUrl"].as_str().expect("uploadUrl"))
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .expect("PUT");
    assert_eq!(put.status(), StatusCode::OK);
    let resp = s
        .send_json(
            Method::POST,
            "/api/v1/media/confirm",
            json!({"storageKey": p["storageKey"], "filename": "doc.pdf",
                   "mimeType": "application/pdf", "size": pdf.len()}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.expect("json");
    body["data"]["id"].as_str().expect("id").to_owned()
}

// ---- retries and order ----------------------------------------------------------------

/// A receiver that answers 500 for 20 s gets every event once it answers 200, each
/// item's in the order they happened, each under the id its failed attempts had.
#[tokio::test]
async fn a_receiver_that_fails_for_20_s_gets_every_event_after_in_order() {
    let s = TestServer::spawn_with(receivable).await;
    let r = Receiver::start(500).await;
    let (hook, secret) = subscribe(&s, &r).await;
    let outage = Instant::now();
    let mut items = Vec::new();
    for n in 0..3 {
        let item = s.upload_waiting_one("pdf/ltnews18_1page.pdf").await;
        let id = item["id"].as_str().expect("id").to_owned();
        for alt in ["first", "second"] {
            let resp = s
                .send_json(
                    Method::PATCH,
                    &format!("/api/v1/media/{id}"),
                    json!({"alt": format!("{alt} {n}")}),
                )
                .await;
            assert_eq!(resp.status(), StatusCode::OK);
        }
        items.push(id);
    }
    // Meanwhile: attempts fail and are retried; /metrics counts what waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(r.all().len() >= 3, "attempts during the outage");
    let scrape = s.get("/metrics", None).await.text().await.expect("metrics");
    let pending = sample(
        &scrape,
        &format!("darkroom_webhook_pending_events{{webhook=\"{hook}\"}}"),
    );
    assert_eq!(pending, Some(12.0), "{scrape}");
    assert!(
        sample(
            &scrape,
            "darkroom_webhook_deliveries_total{outcome=\"retried\"}"
        )
        .is_some_and(|n| n >= 3.0)
    );
    let age = sample(
        &scrape,
        &format!("darkroom_webhook_oldest_pending_age_seconds{{webhook=\"{hook}\"}}"),
    );
    assert!(age.is_some_and(|a| a >= 1.0), "{age:?}");
    let (_, attempts) = admin_json(
        &s,
        Method::GET,
        &format!("/api/v1/webhooks/{hook}/deliveries"),
    )
    .await;
    let first = &attempts["data"][0];
    assert_eq!(
        (&first["status"], &first["error"]),
        (&json!(500), &json!("the receiver answered 500"))
    );

    tokio::time::sleep(Duration::from_secs(20).saturating_sub(outage.elapsed())).await;
    r.status.store(200, Ordering::SeqCst);
    let got = r.until_accepted(12, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 12, "{:#?}", kinds(&got));
    assert_signed(&got, &secret);
    for (n, id) in items.iter().enumerate() {
        assert_eq!(
            kinds_of(&got, id),
            [
                "media.created",
                "media.ready",
                "media.updated",
                "media.updated"
            ]
        );
        let alts: Vec<&Value> = got
            .iter()
            .filter(|d| d.subject() == *id && d.kind() == "media.updated")
            .map(|d| &d.json["data"]["alt"])
            .collect();
        assert_eq!(
            alts,
            [&json!(format!("first {n}")), &json!(format!("second {n}"))]
        );
    }
    // Retries kept the event's id: every id that failed was later accepted, once.
    let accepted: HashMap<&str, usize> = got.iter().fold(HashMap::new(), |mut m, d| {
        *m.entry(d.id.as_str()).or_default() += 1;
        m
    });
    assert!(accepted.values().all(|n| *n == 1), "{accepted:?}");
    let failed = r.all();
    assert!(
        failed
            .iter()
            .filter(|d| d.answered == 500)
            .all(|d| accepted.contains_key(d.id.as_str()))
    );
    let scrape = s.get("/metrics", None).await.text().await.expect("metrics");
    assert!(
        sample(
            &scrape,
            "darkroom_webhook_deliveries_total{outcome=\"delivered\"}"
        )
        .is_some_and(|n| n >= 12.0)
    );
}

// ---- what is refused ---------------------------------------------------------------------

#[tokio::test]
async fn private_targets_and_bad_webhooks_are_refused() {
    let s = TestServer::spawn().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let resp = create_webhook(&s, url, json!(["*"])).await;
        let status = resp.status();
        let body: Value = resp.json().await.expect("json");
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert_eq!(body["error"]["code"], "invalid_webhook_url", "{url}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("allow_private_targets"), "{message}");
    }
    for (url, events, code) in [
        ("ftp://example.com/", json!(["*"]), "invalid_webhook_url"),
        (
            "https://u:p@example.com/",
            json!(["*"]),
            "invalid_webhook_url",
        ),
        ("https://example.com/", json!([]), "invalid_events"),
        (
            "https://example.com/",
            json!(["media.nope"]),
            "invalid_events",
        ),
        (
            "https://example.com/",
            json!(["webhook.ping"]),
            "invalid_events",
        ),
        ("https://example.com/", json!("*"), "invalid_events"),
    ] {
        let resp = create_webhook(&s, url, events.clone()).await;
        assert_eq!(
            error_code(resp, StatusCode::BAD_REQUEST).await,
            code,
            "{url} {events}"
        );
    }
    // Public targets are accepted (nothing is delivered: nothing happens after).
    let resp = create_webhook(&s, "https://hooks.example.com/in", json!(["media.ready"])).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    // Only an admin key manages webhooks.
    for key in [&s.write_key, &s.read_key] {
        let resp = s
            .request(Method::GET, "/api/v1/webhooks", Some(key))
            .send()
            .await
            .expect("list");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let missing = "wh_0000000000000000";
    for (method, path) in [
        (Method::DELETE, format!("/api/v1/webhooks/{missing}")),
        (Method::POST, format!("/api/v1/webhooks/{missing}/test")),
        (
            Method::GET,
            format!("/api/v1/webhooks/{missing}/deliveries"),
        ),
        (
            Method::GET,
            "/api/v1/webhooks/nothing/deliveries".to_owned(),
        ),
    ] {
        let (status, _) = admin_json(&s, method.clone(), &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

#[tokio::test]
async fn a_410_disables_the_webhook() {
    let s = TestServer::spawn_with(receivable).await;
    // Unavailable first, so that all six events wait; then gone.
    let r = Receiver::start(503).await;
    let (hook, _) = subscribe(&s, &r).await;
    for _ in 0..3 {
        s.upload_waiting_one("pdf/ltnews18_1page.pdf").await;
    }
    listed_when(&s, &hook, 10, |h| h["pending"] == 6).await;
    r.status.store(410, Ordering::SeqCst);
    let listed_hook = listed_when(&s, &hook, 20, |h| h["enabled"] == false).await;
    assert_eq!(listed_hook["enabled"], false, "{listed_hook}");
    assert_eq!(
        listed_hook["disabledReason"],
        "the receiver answered 410 Gone"
    );
    assert_eq!(listed_hook["pending"], 0);
    let tried = r.all().len();
    assert!(tried >= 1);
    // Every event went undelivered: the one answered 410 too.
    assert_eq!(listed_hook["dropped"].as_u64(), Some(6), "{listed_hook}");
    let resp = s
        .request(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/test"),
            Some(&s.admin_key),
        )
        .send()
        .await
        .expect("ping");
    assert_eq!(
        error_code(resp, StatusCode::CONFLICT).await,
        "webhook_disabled"
    );
    s.upload_one("pdf/ltnews18_1page.pdf", &[]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(r.all().len(), tried, "nothing more is sent to it");
}

#[tokio::test]
async fn an_outbox_over_its_limit_drops_its_newest_events() {
    let s = TestServer::spawn_with(|c| {
        receivable(c);
        c.webhooks.max_pending = 3;
        // The first attempts fail, then everything waits (and piles up).
        c.webhooks.retry_base_ms = 600_000;
        c.webhooks.retry_max_delay_secs = 3600;
    })
    .await;
    let r = Receiver::start(503).await;
    let (hook, _) = subscribe(&s, &r).await;
    for _ in 0..5 {
        s.upload_waiting_one("pdf/ltnews18_1page.pdf").await; // two events each
    }
    let listed_hook = listed_when(&s, &hook, 20, |h| h["pending"] == 3).await;
    assert_eq!(
        (&listed_hook["pending"], &listed_hook["dropped"]),
        (&json!(3), &json!(7)),
        "{listed_hook}"
    );
    let scrape = s.get("/metrics", None).await.text().await.expect("metrics");
    let dropped = sample(
        &scrape,
        &format!(
            "darkroom_webhook_dropped_events_total{{webhook=\"{hook}\",reason=\"over_limit\"}}"
        ),
    );
    assert_eq!(dropped, Some(7.0), "{scrape}");
}

/// A private item's events carry links that work, signed for the delivery.
#[tokio::test]
async fn a_private_items_events_carry_signed_links() {
    let s = TestServer::spawn_on_disk(receivable).await;
    let r = Receiver::start(200).await;
    subscribe(&s, &r).await;
    let item = s
        .upload_one("pdf/ltnews18_1page.pdf", &[("visibility", "private")])
        .await;
    let got = r.until_accepted(2, Duration::from_secs(20)).await;
    let created = got
        .iter()
        .find(|d| d.kind() == "media.created")
        .expect("created");
    let data = &created.json["data"];
    assert_eq!(
        (&data["id"], &data["visibility"]),
        (&item["id"], &json!("private"))
    );
    assert!(data["urlExpiresAt"].is_string(), "{data}");
    let url = data["url"].as_str().expect("url");
    assert!(url.contains("sig="), "{url}");
    let resp = s.get(url, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.bytes().await.expect("bytes").as_ref(),
        fixture("pdf/ltnews18_1page.pdf")
    );
}

/// A redirect is a failure (never followed), a `Retry-After` is waited for, and an event
/// past the retry window is given up and counted.
#[tokio::test]
async fn redirects_fail_retry_after_is_honoured_and_old_events_are_given_up() {
    let s = TestServer::spawn_with(|c| {
        receivable(c);
        c.webhooks.retry_window_secs = 4;
    })
    .await;
    let r = Receiver::start(302).await;
    let (hook, _) = subscribe(&s, &r).await;
    let ping = |s: &TestServer| {
        s.request(
            Method::POST,
            &format!("/api/v1/webhooks/{hook}/test"),
            Some(&s.admin_key),
        )
        .send()
    };
    assert_eq!(ping(&s).await.expect("ping").status(), StatusCode::ACCEPTED);
    let started = Instant::now();
    let listed_hook = listed_when(&s, &hook, 20, |h| h["dropped"] == 1).await;
    assert_eq!(
        (&listed_hook["dropped"], &listed_hook["pending"]),
        (&json!(1), &json!(0))
    );
    let tried = r.all();
    assert!(tried.len() >= 2, "retried before it was given up");
    assert!(
        tried
            .iter()
            .all(|d| d.kind() == "webhook.ping" && d.id == tried[0].id)
    );
    let (_, attempts) = admin_json(
        &s,
        Method::GET,
        &format!("/api/v1/webhooks/{hook}/deliveries"),
    )
    .await;
    assert_eq!(attempts["data"][0]["status"], 302);
    let scrape = s.get("/metrics", None).await.text().await.expect("metrics");
    let given_up =
        format!("darkroom_webhook_dropped_events_total{{webhook=\"{hook}\",reason=\"expired\"}}");
    assert_eq!(sample(&scrape, &given_up), Some(1.0), "{scrape}");

    // 429 with Retry-After: 2: the next attempt waits that long.
    r.status.store(429, Ordering::SeqCst);
    r.retry_after.store(2, Ordering::SeqCst);
    let before = r.all().len();
    assert_eq!(ping(&s).await.expect("ping").status(), StatusCode::ACCEPTED);
    let arrivals = loop {
        let all = r.all();
        if all.len() >= before + 2 || started.elapsed() > Duration::from_secs(40) {
            break all[before..].to_vec();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(arrivals.len() >= 2, "{arrivals:?}");
    let gap = arrivals[1].at.duration_since(arrivals[0].at);
    assert!(
        gap >= Duration::from_millis(1900),
        "retried after {gap:?}, asked 2 s"
    );
}

/// A backlog deeper than what the sender holds at once (256 events) flows on without
/// pausing once the receiver is back: the sender reads on as it delivers, not only when
/// new events are committed (it once waited 5 s per 256 when nothing new came).
#[tokio::test]
async fn a_deep_backlog_flows_on_without_pauses() {
    let s = TestServer::spawn_with(receivable).await;
    let r = Receiver::start(503).await;
    let (hook, _) = subscribe(&s, &r).await;
    let items: Vec<(String, Vec<u8>)> = (0..10)
        .map(|n| (format!("d{n}.pdf"), fixture("pdf/ltnews18_1page.pdf")))
        .collect();
    for _ in 0..16 {
        let resp = s.upload_parts(items.clone(), &[]).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let expected = 16 * 10 * 2;
    listed_when(&s, &hook, 20, |h| h["pending"] == expected).await;
    r.status.store(204, Ordering::SeqCst);
    let got = r.until_accepted(expected, Duration::from_secs(60)).await;
    assert_eq!(got.len(), expected);
    let accepted: Vec<Instant> = r
        .all()
        .iter()
        .filter(|d| d.answered == 204)
        .map(|d| d.at)
        .collect();
    let longest = accepted
        .windows(2)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    assert!(
        longest < Duration::from_millis(4500),
        "a pause of {longest:?} in the flow"
    );
}
