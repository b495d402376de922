//! The harness end to end: a real Darkroom (in this process, on 127.0.0.1:0, temp data dir)
//! and the bare anchor, driven by the real `loadtest` binary through short, bounded runs.
//! Each run's `--json` is checked for what the server must have answered.

use std::path::Path;
use std::process::{Command, Stdio};

use darkroom::catalog::{Catalog, keys};
use darkroom::config::Config;
use darkroom::model::Scope;
use serde_json::Value;

struct Server {
    base: String,
    key: String,
    _dir: tempfile::TempDir,
}

async fn spawn() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::defaults();
    config.data_dir = dir.path().to_owned();
    let key = {
        let catalog = Catalog::open(&config.catalog_path()).expect("catalog");
        keys::create(&catalog, Scope::Write, "loadtest").expect("key")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(darkroom::app::run(listener, config, std::future::pending()));
    Server {
        base,
        key,
        _dir: dir,
    }
}

/// Runs the harness to completion (off the test's runtime threads) and returns its JSON.
async fn loadtest(url: &str, key: &str, json: &Path, args: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadtest"));
    cmd.args(args)
        .args(["--url", url, "--warmup", "0", "--timeout", "60", "--json"])
        .arg(json)
        .env("LOADTEST_API_KEY", key)
        .stdout(Stdio::null());
    let status = tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("join")
        .expect("loadtest runs");
    assert!(status.success(), "loadtest {args:?} failed");
    serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("valid json")
}

/// Waits (bounded: 60 s) until the server's processing backlog is empty.
async fn until_no_backlog(url: &str) {
    let addr = url.trim_start_matches("http://").to_owned();
    for _ in 0..600 {
        let addr = addr.clone();
        let scrape = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut conn = std::net::TcpStream::connect(addr).ok()?;
            conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
            let mut text = String::new();
            conn.read_to_string(&mut text).ok()?;
            Some(text)
        })
        .await
        .expect("join")
        .unwrap_or_default();
        if scrape.lines().any(|l| l == "darkroom_processing_backlog 0") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the processing backlog did not drain in 60 s");
}

fn count(results: &Value, status: &str) -> u64 {
    results["summary"]["statuses"][status].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_gets_the_answers_the_api_promises() {
    let server = spawn().await;
    let out = tempfile::tempdir().expect("tempdir");
    let json = |name: &str| out.path().join(format!("{name}.json"));
    let (url, key) = (server.base.as_str(), server.key.as_str());

    let docs = loadtest(
        url,
        key,
        &json("docs"),
        &["upload-docs", "-c", "4", "--requests", "20"],
    )
    .await;
    assert_eq!(count(&docs, "201"), 20, "{docs}");
    assert_eq!(docs["summary"]["requests"], 20);
    assert!(docs["summary"]["bytes_sent"].as_u64().unwrap_or(0) >= 20 * 102_400);
    assert!(docs["summary"]["latency_ms"]["p50"].as_f64().unwrap_or(0.0) > 0.0);

    // The documents' poster jobs (the server makes one per PDF) end before the images'
    // window opens, so the job counts below are the images' alone.
    until_no_backlog(url).await;
    let images = loadtest(
        url,
        key,
        &json("images"),
        &[
            "upload-images",
            "--generate",
            "640x480",
            "--images",
            "2",
            "-c",
            "2",
            "--requests",
            "4",
            "--wait",
        ],
    )
    .await;
    assert_eq!(count(&images, "201"), 4, "{images}");
    let jobs = &images["server"];
    assert_eq!(
        jobs["jobs_ready"], 4.0,
        "the waited-for images were processed: {jobs}"
    );
    assert_eq!(jobs["jobs_failed"], 0.0);

    let reads = loadtest(
        url,
        key,
        &json("get"),
        &["get-public", "-c", "4", "--requests", "200"],
    )
    .await;
    assert_eq!(count(&reads, "200"), 200, "{reads}");

    let lists = loadtest(
        url,
        key,
        &json("list"),
        &[
            "list",
            "--list-mix",
            "folder-sort,type,search,default",
            "-c",
            "2",
            "--requests",
            "40",
        ],
    )
    .await;
    assert_eq!(count(&lists, "200"), 40, "{lists}");

    let mixed = loadtest(
        url,
        key,
        &json("mixed"),
        &[
            "mixed",
            "--mix",
            "get-public=5,upload-docs=1",
            "-c",
            "2",
            "--requests",
            "30",
        ],
    )
    .await;
    assert_eq!(mixed["summary"]["ok"], 30, "{mixed}");
    assert!(
        count(&mixed, "201") > 0 && count(&mixed, "200") > 0,
        "{mixed}"
    );

    // Local storage has no presigned uploads: the harness reports the server's 400s.
    let presign = loadtest(
        url,
        key,
        &json("presign"),
        &["presign", "-c", "1", "--requests", "3"],
    )
    .await;
    assert_eq!(count(&presign, "400"), 3, "{presign}");

    // Without a key, uploads are refused and counted by status, not as harness errors.
    let refused = loadtest(
        url,
        "",
        &json("refused"),
        &["upload-docs", "-c", "1", "--requests", "3"],
    )
    .await;
    assert_eq!(count(&refused, "401"), 3, "{refused}");
    assert_eq!(refused["summary"]["ok"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_answers_every_path_with_its_json_and_open_loop_keeps_its_schedule() {
    let mut anchor = Command::new(env!("CARGO_BIN_EXE_anchor"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("anchor starts");
    let mut line = String::new();
    let stdout = anchor.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("address");
    let url = format!("http://{}", line.trim());
    let out = tempfile::tempdir().expect("tempdir");
    let ids = out.path().join("ids.txt");
    std::fs::write(&ids, "media_a\nmedia_b\n").expect("ids");
    let ids = ids.to_string_lossy().into_owned();

    let open = loadtest(
        &url,
        "",
        &out.path().join("open.json"),
        &[
            "get-public",
            "--ids-file",
            &ids,
            "-c",
            "4",
            "--rate",
            "200",
            "--duration",
            "1",
        ],
    )
    .await;
    let _ = anchor.kill();
    let _ = anchor.wait();
    let done = open["summary"]["requests"].as_u64().unwrap_or(0);
    assert!(
        (190..=201).contains(&done),
        "200/s for 1 s ran {done} operations: {open}"
    );
    assert_eq!(count(&open, "200"), done);
    assert_eq!(open["mode"], "open-loop");
    assert!(open["summary"]["bytes_received"].as_u64().unwrap_or(0) >= done * 300);
}
