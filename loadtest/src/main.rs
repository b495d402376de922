//! Darkroom's load-test harness: `loadtest <scenario> --url http://127.0.0.1:8080 ...`.
//!
//! It prepares a scenario (bodies, ids, folders: `scenario.rs`), runs it closed- or
//! open-loop (`run.rs`), and reports throughput, latency quantiles from an HDR histogram,
//! statuses, errors and bytes (`stats.rs`); `--json FILE` writes the same for machines.
//! Around the measured window it reads the server's `/metrics` for the image jobs finished,
//! so `upload-images` reports the processing rate the server sustained, not just uploads.
//! It only ever talks to the URL it is given (and, for `presign`, to the store URL the
//! server hands out, which must be on the same host).

mod client;
mod jobs;
mod prepare;
mod run;
mod scenario;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::client::Client;
use crate::jobs::server_jobs;
use crate::prepare::prepare;
use crate::run::{Pace, Plan};
use crate::scenario::Target;
use crate::stats::Summary;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    /// POST /api/v1/media with a JPEG (fixture files or generated ones).
    UploadImages,
    /// POST /api/v1/media with a generated PDF (100 KB by default).
    UploadDocs,
    /// POST /api/v1/media with one large generated PDF, streamed (memory tests).
    UploadLarge,
    /// GET /api/v1/public/media/{id} for random existing ids.
    GetPublic,
    /// GET /api/v1/media listings: a mix of folder, type, search and sort queries.
    List,
    /// Several of the above, weighted by --mix.
    Mixed,
    /// presign → PUT to the store → confirm (servers on S3 storage).
    Presign,
}

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    about = "Load-test a Darkroom server (or the bare hyper anchor)"
)]
struct Args {
    scenario: Kind,
    /// Base URL of the server under test.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API key for authenticated endpoints (write scope for uploads).
    #[arg(long, env = "LOADTEST_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Workers, each with its own connection (closed loop: operations in flight).
    #[arg(short, long, default_value_t = 64)]
    concurrency: usize,
    /// Threads of the harness's own runtime (it shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Open loop: operations per second, latency measured from each one's due time.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds measured (default 10; with --requests, the most it may take: default 600).
    #[arg(short, long)]
    duration: Option<f64>,
    /// Stop after this many measured operations.
    #[arg(long)]
    requests: Option<u64>,
    /// Seconds run before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds one operation may take before it counts as a timeout.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Don't pause a closed-loop worker for a 503's Retry-After.
    #[arg(long)]
    ignore_retry_after: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Image files to upload (repeatable); default: generated JPEGs of --generate.
    #[arg(long)]
    image: Vec<PathBuf>,
    /// Size of generated JPEGs, WIDTHxHEIGHT.
    #[arg(long, default_value = "1920x1080")]
    generate: String,
    /// How many different JPEGs to generate.
    #[arg(long, default_value_t = 4)]
    images: u64,
    /// Upload with ?wait=true (the 201 waits for the variants).
    #[arg(long)]
    wait: bool,
    /// Size of the generated PDF for upload-docs and presign, in bytes.
    #[arg(long, default_value_t = 102_400)]
    doc_bytes: usize,
    /// Size of each upload-large file, in bytes (the server's limit is 50 MiB).
    #[arg(long, default_value_t = 50_000_000)]
    large_bytes: u64,
    /// File of media ids for get-public, one per line; default: listed from the server.
    #[arg(long)]
    ids_file: Option<PathBuf>,
    /// How many ids get-public lists from the server.
    #[arg(long, default_value_t = 5_000)]
    ids: usize,
    /// Listing kinds for `list`: folder-sort, folder-size, type, sort-size, default, search.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "folder-sort,folder-size,type,sort-size,default"
    )]
    list_mix: Vec<String>,
    /// File of listing paths for `list`, one per line (e.g. `/api/v1/media?search=beach`);
    /// replaces --list-mix.
    #[arg(long)]
    paths_file: Option<PathBuf>,
    /// Search terms for the `search` listing kind.
    #[arg(long, value_delimiter = ',', default_value = "alt,doc,photo")]
    search_terms: Vec<String>,
    /// Weights for `mixed`, e.g. get-public=90,list=8,upload-docs=2.
    #[arg(long, default_value = "get-public=90,list=8,upload-docs=2")]
    mix: String,
}

/// The whole result, as `--json` writes it.
#[derive(Serialize)]
struct Results<'a> {
    scenario: Kind,
    url: &'a str,
    mode: &'static str,
    concurrency: usize,
    rate: Option<f64>,
    warmup_s: f64,
    summary: Summary,
    server: Option<ServerDelta>,
}

/// What the server's /metrics said changed over the measured window.
#[derive(Serialize)]
struct ServerDelta {
    /// Image jobs finished (ready or failed) per second.
    jobs_per_s: f64,
    jobs_ready: f64,
    jobs_failed: f64,
    /// Unfinished image jobs at the end.
    backlog_end: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run_cli(args)),
        Err(e) => Err(format!("tokio runtime: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_cli(args: Args) -> Result<(), String> {
    let base = args.url.trim_end_matches('/').to_owned();
    let uri: hyper::Uri = base.parse().map_err(|e| format!("--url {base}: {e}"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!("--url {base}: an http://host:port URL is needed"));
    }
    let target = Arc::new(Target {
        base: base.clone(),
        api_key: args.api_key.clone(),
    });
    let mut setup = Client::default();
    let scenario = Arc::new(prepare(&args, &target, &mut setup).await?);
    let plan = Plan {
        concurrency: args.concurrency,
        pace: args.rate.map_or(Pace::Closed, Pace::Open),
        warmup: secs(args.warmup)?,
        duration: secs(args.duration.unwrap_or(if args.requests.is_some() {
            600.0
        } else {
            10.0
        }))?,
        requests: args.requests,
        timeout: secs(args.timeout)?,
        honor_retry_after: !args.ignore_retry_after,
    };
    eprintln!("{} against {base}: {plan:?}", scenario.name);

    let before = tokio::spawn({
        let target = target.clone();
        let at = tokio::time::Instant::now() + plan.warmup;
        async move {
            tokio::time::sleep_until(at).await;
            server_jobs(&target, &mut Client::default()).await
        }
    });
    let report = run::run(&plan, scenario, target.clone()).await;
    let before = before.await.ok().flatten();
    let after = server_jobs(&target, &mut setup).await;
    let summary = report.recorder.summary(report.window);
    let server = before.zip(after).map(|(b, a)| {
        let (ready, failed) = (a.ready - b.ready, a.failed - b.failed);
        ServerDelta {
            jobs_per_s: (ready + failed) / report.window.as_secs_f64().max(1e-9),
            jobs_ready: ready,
            jobs_failed: failed,
            backlog_end: a.backlog,
        }
    });

    println!(
        "{} (c={}, {}):",
        kind_name(args.scenario),
        args.concurrency,
        mode(&plan)
    );
    summary.print();
    if let Some(s) = &server {
        println!(
            "server: {:.2} image jobs/s finished ({} ready, {} failed), backlog at end {}",
            s.jobs_per_s, s.jobs_ready, s.jobs_failed, s.backlog_end
        );
    }
    if let Some(path) = &args.json {
        let results = Results {
            scenario: args.scenario,
            url: &base,
            mode: mode(&plan),
            concurrency: args.concurrency,
            rate: args.rate,
            warmup_s: args.warmup,
            summary,
            server,
        };
        let text = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn secs(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|e| format!("{s} seconds: {e}"))
}

fn mode(plan: &Plan) -> &'static str {
    match plan.pace {
        Pace::Closed => "closed-loop",
        Pace::Open(_) => "open-loop",
    }
}

fn kind_name(kind: Kind) -> String {
    kind.to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}
