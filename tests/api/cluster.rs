//! N nodes, one library: three `darkroom` processes on one PostgreSQL catalog and one
//! bucket, nginx in front of them round-robin, as a site that outgrew one node runs.
//! What one node writes every other reads at once; node 0 runs no jobs
//! (`processing.run_jobs = false`), so its uploads are processed by the others, its
//! `?wait=true` answers when they are done, and after a `kill -9` right behind its
//! acknowledgements nothing is lost; node 1, killed the same way while it runs jobs,
//! has them finished by node 2 once its leases run out; a key revoked on one node fails
//! on every node; nginx keeps serving past the dead nodes.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::common::{Binary, Catalog, Files, Library, ScratchDb, fixture, pinned};

/// nginx, round-robin over the nodes, on a port of its own.
struct Nginx {
    child: Child,
    base: String,
    _dir: TempDir,
}

impl Nginx {
    fn start(nodes: &[String]) -> Self {
        crate::common::require_command("nginx");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("port");
            probe.local_addr().expect("addr").port()
        };
        let servers: String = nodes
            .iter()
            .map(|base| {
                let addr = base.trim_start_matches("http://");
                format!("server {addr} max_fails=1 fail_timeout=30s;\n")
            })
            .collect();
        let d = dir.path().display();
        let conf = format!(
            "master_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n access_log off;\n client_max_body_size 0;\n\
             client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n\
             scgi_temp_path {d}/scgi;\n\
             upstream darkroom {{\n{servers}}}\n\
             server {{\n listen 127.0.0.1:{port};\n location / {{\n\
             proxy_pass http://darkroom;\n proxy_http_version 1.1;\n\
             proxy_set_header Connection \"\";\n proxy_request_buffering off;\n\
             proxy_buffering off;\n proxy_next_upstream error timeout;\n }}\n }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).expect("nginx.conf");
        // One process (`master_process off`), so killing it leaves no workers behind; it
        // may drop to `nobody`: it must be able to enter the directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let child = Command::new("nginx")
            .args([
                "-p",
                &d.to_string(),
                "-c",
                "nginx.conf",
                "-g",
                "daemon off;",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            base,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn send(method: Method, url: String, key: &str, body: Option<Value>) -> reqwest::Response {
    let mut rb = Client::new().request(method, url).bearer_auth(key);
    if let Some(body) = body {
        rb = rb.json(&body);
    }
    rb.send().await.expect("request")
}

async fn json_of(resp: reqwest::Response) -> Value {
    resp.json().await.expect("json")
}

/// Uploads one fixture to `base` (a node or the balancer); the item as answered.
async fn upload(base: &str, key: &str, path: &str, name: &str, query: &str) -> Value {
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(fixture(path)).file_name(name.to_owned()),
    );
    // A bound on the test, not a figure: an answer takes a second or two, a wait nobody
    // wakes ten minutes.
    let resp = Client::new()
        .post(format!("{base}/api/v1/media{query}"))
        .timeout(Duration::from_secs(60))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(resp.status(), StatusCode::CREATED);
    json_of(resp).await["data"][0].clone()
}

/// Uploads `path` four times to `base`, one request each (`{name}-N.jpg`); their ids.
async fn upload_four(base: &str, key: &str, path: &str, name: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..4 {
        let item = upload(base, key, path, &format!("{name}-{n}.jpg"), "").await;
        ids.push(item["id"].as_str().expect("id").to_owned());
    }
    ids
}

/// Waits until every item of `ids`, read at `base` (a node or the balancer), is ready:
/// bounded (90 s), then fails with what `logs` says the node doing the work did.
async fn until_ready(base: &str, key: &str, ids: &[String], logs: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    for id in ids {
        loop {
            let url = format!("{base}/api/v1/media/{id}");
            let resp = send(Method::GET, url, key, None).await;
            assert_eq!(resp.status(), StatusCode::OK, "{id} at {base}");
            let got = json_of(resp).await;
            if got["data"]["status"] == "ready" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} was not processed by a live node: {got}\n{}",
                logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_library_one_job_queue_and_one_set_of_keys() {
    if !pinned() {
        return;
    }
    // The nodes' shared config: a scratch database and a prefix of the test bucket of
    // their own, job leases short so a dead node's jobs move on within the test (each
    // node has a data dir of its own).
    let library = Library::of(Catalog::Postgres, Files::Bucket).await;
    let config = library.config_file();
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    // `darkroom keys create` against the shared catalog (no server needs to be stopped).
    let args = ["--config", config.to_str().expect("path")];
    let write = Binary::create_key_with(dirs[0].path(), &args, "write");
    let admin = Binary::create_key_with(dirs[0].path(), &args, "admin");
    // Node 0 would hold a `?wait=true` for ten minutes if no other node's commit woke it.
    let ingest_only = [
        ("DARKROOM_PROCESSING__RUN_JOBS", "false"),
        ("DARKROOM_PROCESSING__WAIT_TIMEOUT_SECS", "600"),
    ];
    let mut nodes: Vec<Binary> = dirs
        .iter()
        .enumerate()
        .map(|(n, d)| Binary::start_env(d.path(), &args, if n == 0 { &ingest_only } else { &[] }))
        .collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let lb = Nginx::start(&bases);

    // What one node writes, the others read at once.
    let item = upload(
        &bases[0],
        &write,
        "jpeg/hopper_128x128.jpg",
        "Hopper.jpg",
        "",
    )
    .await;
    let id = item["id"].as_str().expect("id").to_owned();
    let path = format!("/api/v1/media/{id}");
    for base in &bases[1..] {
        let got = json_of(send(Method::GET, format!("{base}{path}"), &write, None).await).await;
        assert_eq!(got["data"]["filename"], "Hopper.jpg", "{base}: {got}");
    }
    let found = send(
        Method::GET,
        format!("{}/api/v1/media?search=hopp", bases[2]),
        &write,
        None,
    )
    .await;
    let found = json_of(found).await;
    assert_eq!(found["total"], 1, "{found}");
    let patched = send(
        Method::PATCH,
        format!("{}{path}", bases[1]),
        &write,
        Some(json!({"alt": "Rear Admiral"})),
    )
    .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let got = json_of(send(Method::GET, format!("{}{path}", bases[0]), &write, None).await).await;
    assert_eq!(
        got["data"]["alt"], "Rear Admiral",
        "a patch on node 1, read on node 0"
    );
    let folder = send(
        Method::POST,
        format!("{}/api/v1/media/folders", bases[2]),
        &write,
        Some(json!({"path": "/cluster"})),
    )
    .await;
    assert_eq!(folder.status(), StatusCode::CREATED);
    let folders = send(
        Method::GET,
        format!("{}/api/v1/media/folders", bases[0]),
        &write,
        None,
    )
    .await;
    let folders = json_of(folders).await;
    assert!(
        folders["folders"]
            .as_array()
            .expect("folders")
            .contains(&json!("/cluster")),
        "{folders}"
    );

    // A key made on one node works on the others; revoked on a third, it fails on all.
    let made = send(
        Method::POST,
        format!("{}/api/v1/keys", bases[0]),
        &admin,
        Some(json!({"scope": "read", "name": "cms"})),
    )
    .await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made = json_of(made).await;
    let (reader, reader_id) = (
        made["data"]["key"].as_str().expect("key").to_owned(),
        made["data"]["id"].as_str().expect("id").to_owned(),
    );
    let read = send(Method::GET, format!("{}{path}", bases[1]), &reader, None).await;
    assert_eq!(read.status(), StatusCode::OK);
    let revoked = send(
        Method::DELETE,
        format!("{}/api/v1/keys/{reader_id}", bases[2]),
        &admin,
        None,
    )
    .await;
    assert!(revoked.status().is_success(), "{}", revoked.status());
    for base in &bases {
        let read = send(Method::GET, format!("{base}{path}"), &reader, None).await;
        assert_eq!(read.status(), StatusCode::UNAUTHORIZED, "{base}");
    }

    // `?wait=true` on node 0, which runs no jobs, answers once another node made them.
    let waited = upload(
        &bases[0],
        &write,
        "jpeg/grace_hopper_512x600.jpg",
        "waited.jpg",
        "?wait=true",
    )
    .await;
    assert_eq!(waited["status"], "ready", "{waited}");
    // Through the balancer too, wherever the upload lands.
    for n in 0..3 {
        let item = upload(
            &lb.base,
            &write,
            "jpeg/grace_hopper_512x600.jpg",
            &format!("wait-{n}.jpg"),
            "?wait=true",
        )
        .await;
        assert_eq!(item["status"], "ready", "{item}");
    }

    // Node 0 acknowledges uploads and dies at once: the others run their jobs.
    let orphaned = upload_four(&bases[0], &write, "jpeg/grace_hopper_512x600.jpg", "orphan").await;
    nodes[0].child.kill().expect("kill -9");
    let _ = nodes[0].child.wait();
    until_ready(&lb.base, &write, &orphaned, || nodes[1].logs()).await;

    // Node 1 runs jobs: killed right after acknowledging uploads, whatever it had claimed
    // (leased) or queued is finished by node 2 once the leases run out.
    let cups = "jpeg/colorfulcups_2560x1600_progressive_gps.jpg";
    let claimed = upload_four(&bases[1], &write, cups, "claimed").await;
    nodes[1].child.kill().expect("kill -9");
    let _ = nodes[1].child.wait();
    until_ready(&bases[2], &write, &claimed, || nodes[2].logs()).await;

    // The balancer keeps serving past the dead nodes; a delete there is read everywhere.
    let late = upload(&lb.base, &write, "jpeg/hopper_128x128.jpg", "late.jpg", "").await;
    let late_path = format!("/api/v1/media/{}", late["id"].as_str().expect("id"));
    let deleted = send(
        Method::DELETE,
        format!("{}{late_path}", lb.base),
        &write,
        None,
    )
    .await;
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let gone = send(
        Method::GET,
        format!("{}{late_path}", bases[2]),
        &write,
        None,
    )
    .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND, "read on node 2");
    let listed = send(
        Method::GET,
        format!("{}/api/v1/media", bases[2]),
        &write,
        None,
    )
    .await;
    let listed = json_of(listed).await;
    assert_eq!(listed["total"], 1 + 1 + 3 + 4 + 4, "{listed}");
    drop(lb);
    for node in &mut nodes[2..] {
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
}

/// A loopback proxy in front of PostgreSQL that can cut every connection, as a network
/// partition or a database restart would.
struct Cuttable {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Cuttable {
    async fn to(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, watching) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if *watching.borrow() {
                    continue; // dropped: the connection closes at once
                }
                let (target, mut watching) = (target.clone(), watching.clone());
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = watching.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Self { addr, cut, task }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_its_catalog_says_so_refuses_writes_and_comes_back() {
    use crate::common::{TestServer, until_readiness};
    let db = ScratchDb::new().await;
    // postgres://user:password@HOST:PORT/db: the same database, through the proxy.
    let (head, rest) = db.url.split_once('@').expect("url with a user");
    let (host, tail) = rest.split_once('/').expect("url with a database");
    let proxy = Cuttable::to(host.to_owned()).await;
    let url = format!("{head}@{}/{tail}", proxy.addr);
    let s = TestServer::spawn_with(move |c| {
        c.catalog.url = Some(darkroom::config::Secret::new(url));
        c.catalog.query_timeout_secs = 2;
    })
    .await;
    let kept = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    let kept_path = format!("/api/v1/media/{}", kept["id"].as_str().expect("id"));

    proxy.set_cut(true);
    until_readiness(&s, StatusCode::SERVICE_UNAVAILABLE).await;
    let body: Value = s.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(body["catalog"], "unavailable", "{body}");
    let refused = s.upload(&["jpeg/hopper_128x128.jpg"], &[]).await;
    assert_eq!(
        refused.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "never a 201 for an item the catalog did not take"
    );
    assert!(refused.headers().contains_key("retry-after"));
    let patch = s
        .send_json(Method::PATCH, &kept_path, json!({"alt": "lost?"}))
        .await;
    assert_eq!(patch.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The pool opens new connections by itself once the database answers again.
    proxy.set_cut(false);
    until_readiness(&s, StatusCode::OK).await;
    let again = s.upload_one("jpeg/hopper_128x128.jpg", &[]).await;
    assert!(again["id"].is_string());
    let listed = s.get_json("/api/v1/media").await;
    assert_eq!(
        listed["total"], 2,
        "the refused upload left no item: {listed}"
    );
    let item = s.get_json(&kept_path).await;
    assert!(
        item["data"]["alt"].is_null(),
        "the refused patch changed nothing"
    );
}
