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
mod run;
mod scenario;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::client::Client;
use crate::run::{Pace, Plan};
use crate::scenario::{Multipart, Op, Scenario, Target};
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
    #[arg(long, env = "DARKROOM_API_KEY", hide_env_values = true)]
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
    /// Seconds measured (with --requests: the most it may take).
    #[arg(short, long, default_value_t = 10.0)]
    duration: f64,
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
        duration: secs(if args.requests.is_some() && args.duration == 10.0 {
            600.0
        } else {
            args.duration
        })?,
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

/// Builds the operations of a scenario; `mixed` builds each weighted part.
async fn prepare(args: &Args, target: &Target, client: &mut Client) -> Result<Scenario, String> {
    let name = kind_name(args.scenario);
    let parts = if args.scenario == Kind::Mixed {
        let mut parts = Vec::new();
        for (kind, weight) in parse_mix(&args.mix)? {
            parts.push((weight, op(kind, args, target, client).await?));
        }
        parts
    } else {
        vec![(1, op(args.scenario, args, target, client).await?)]
    };
    Ok(Scenario::new(&name, parts))
}

async fn op(kind: Kind, args: &Args, target: &Target, client: &mut Client) -> Result<Op, String> {
    Ok(match kind {
        Kind::UploadDocs => {
            // 64 bodies with distinct filenames, so index keys spread as real names do.
            let doc = scenario::pdf(args.doc_bytes);
            let bodies = (0..64)
                .map(|i| {
                    Multipart::upload(
                        &format!("report-{i:02}.pdf"),
                        "application/pdf",
                        &doc,
                        "/loadtest/docs",
                    )
                })
                .collect();
            Op::Upload {
                bodies,
                wait: args.wait,
            }
        }
        Kind::UploadImages => Op::Upload {
            bodies: image_bodies(args)?,
            wait: args.wait,
        },
        Kind::UploadLarge => Op::UploadLarge {
            bytes: args.large_bytes,
        },
        Kind::GetPublic => Op::GetPublic {
            ids: ids(args, target, client).await?,
        },
        Kind::List => Op::List {
            paths: list_paths(args, target, client).await?,
        },
        Kind::Presign => Op::Presign {
            file: scenario::pdf(args.doc_bytes).into(),
            filename: "doc.pdf".into(),
            mime: "application/pdf".into(),
        },
        Kind::Mixed => return Err("a mix cannot contain `mixed`".into()),
    })
}

fn parse_mix(mix: &str) -> Result<Vec<(Kind, u32)>, String> {
    mix.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|part| {
            let (name, weight) = part
                .split_once('=')
                .ok_or(format!("--mix part {part}: name=weight"))?;
            let kind = Kind::from_str(name.trim(), true)
                .map_err(|_| format!("--mix: unknown scenario {name}"))?;
            let weight = weight
                .trim()
                .parse()
                .map_err(|_| format!("--mix {name}: weight must be a whole number"))?;
            Ok((kind, weight))
        })
        .collect::<Result<Vec<_>, String>>()
        .and_then(|parts| {
            if parts.iter().map(|(_, w)| w).sum::<u32>() == 0 {
                Err("--mix needs a weight above 0".into())
            } else {
                Ok(parts)
            }
        })
}

fn image_bodies(args: &Args) -> Result<Vec<Multipart>, String> {
    if !args.image.is_empty() {
        return args
            .image
            .iter()
            .map(|path| {
                let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let mime = image_mime(&bytes)
                    .ok_or(format!("{}: not a JPEG, PNG, GIF or WebP", path.display()))?;
                let name = path
                    .file_name()
                    .map_or("image".into(), |n| n.to_string_lossy().into_owned());
                Ok(Multipart::upload(&name, mime, &bytes, "/loadtest/images"))
            })
            .collect();
    }
    let (w, h) = args
        .generate
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)))
        .ok_or(format!("--generate {}: WIDTHxHEIGHT", args.generate))?;
    (0..args.images.max(1))
        .map(|seed| {
            let jpg = scenario::jpeg(w, h, seed)?;
            Ok(Multipart::upload(
                &format!("gen-{seed}.jpg"),
                "image/jpeg",
                &jpg,
                "/loadtest/images",
            ))
        })
        .collect()
}

fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("image/webp"),
        _ => None,
    }
}

/// Ids from --ids-file, else from the server's public listing (pages of 100).
async fn ids(args: &Args, target: &Target, client: &mut Client) -> Result<Vec<String>, String> {
    let ids: Vec<String> = if let Some(path) = &args.ids_file {
        std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        let mut ids = Vec::new();
        while ids.len() < args.ids {
            let page = target
                .get_json(
                    client,
                    &format!("/api/v1/public/media?limit=100&offset={}", ids.len()),
                )
                .await?;
            let items = page["data"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                break;
            }
            ids.extend(
                items
                    .iter()
                    .filter_map(|i| i["id"].as_str().map(str::to_owned)),
            );
        }
        ids
    };
    if ids.is_empty() {
        return Err(
            "get-public needs existing items: upload some first (e.g. loadtest upload-docs)".into(),
        );
    }
    Ok(ids)
}

/// 256 listing paths drawn from --list-mix over the server's folders.
async fn list_paths(
    args: &Args,
    target: &Target,
    client: &mut Client,
) -> Result<Vec<String>, String> {
    let listed = target.get_json(client, "/api/v1/media/folders").await?;
    let mut folders: Vec<String> = listed["folders"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if folders.is_empty() {
        folders.push("/".into());
    }
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(11);
    (0..256)
        .map(|i| {
            let kind = &args.list_mix[i % args.list_mix.len().max(1)];
            list_path(kind, &folders, &args.search_terms, &mut rng)
        })
        .collect()
}

fn list_path(
    kind: &str,
    folders: &[String],
    terms: &[String],
    rng: &mut rand::rngs::SmallRng,
) -> Result<String, String> {
    use rand::Rng;
    let folder = &folders[rng.random_range(0..folders.len())];
    let folder: String = form_encode(folder);
    let q = match kind {
        "folder-sort" => format!("folder={folder}&sort=filename&order=asc&limit=24"),
        "folder-size" => format!(
            "folder={folder}&sort=size&order=desc&limit=24&offset={}",
            rng.random_range(0..20) * 24
        ),
        "type" => format!(
            "type={}&limit=24",
            ["image", "document", "video"][rng.random_range(0..3)]
        ),
        "sort-size" => "sort=size&order=asc&limit=24".to_owned(),
        "default" => "limit=24".to_owned(),
        "search" => format!(
            "search={}&limit=24",
            form_encode(
                terms
                    .get(rng.random_range(0..terms.len().max(1)))
                    .map_or("a", String::as_str)
            )
        ),
        other => return Err(format!("--list-mix: unknown kind {other}")),
    };
    Ok(format!("/api/v1/media?{q}"))
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The server's finished image jobs and backlog, from /metrics; None when it has none.
struct Jobs {
    ready: f64,
    failed: f64,
    backlog: f64,
}

async fn server_jobs(target: &Target, client: &mut Client) -> Option<Jobs> {
    let req = target
        .request(hyper::Method::GET, "/metrics", false)
        .body(client::empty())
        .ok()?;
    let reply = client.send(req).await.ok()?;
    if !reply.status.is_success() {
        return None;
    }
    let text = String::from_utf8_lossy(&reply.body);
    let jobs = parse_jobs(&text);
    // A Darkroom before its first image job has no job series yet: that counts as zero.
    text.contains("darkroom_").then(|| Jobs {
        ready: jobs.get("ready").copied().unwrap_or(0.0),
        failed: jobs.get("failed").copied().unwrap_or(0.0),
        backlog: metric_sum(&text, "darkroom_processing_backlog"),
    })
}

/// darkroom_processing_jobs_total by outcome.
fn parse_jobs(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("darkroom_processing_jobs_total{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            let outcome = labels
                .split(',')
                .find_map(|l| l.strip_prefix("outcome=\""))?;
            Some((
                outcome.trim_end_matches('"').to_owned(),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_weights_parse_and_reject_nonsense() {
        let parts = parse_mix("get-public=90, list=8,upload-docs=2").expect("valid");
        assert_eq!(
            parts,
            vec![
                (Kind::GetPublic, 90),
                (Kind::List, 8),
                (Kind::UploadDocs, 2)
            ]
        );
        assert!(parse_mix("get-public").is_err());
        assert!(parse_mix("nope=1").is_err());
        assert!(parse_mix("list=0").is_err());
    }

    #[test]
    fn job_counters_are_read_from_the_exposition() {
        let text = "# TYPE darkroom_processing_jobs_total counter\n\
                    darkroom_processing_jobs_total{outcome=\"ready\"} 12\n\
                    darkroom_processing_jobs_total{outcome=\"failed\"} 1\n\
                    darkroom_processing_backlog 40\n\
                    darkroom_processing_backlog_other 7\n";
        let jobs = parse_jobs(text);
        assert_eq!(jobs.get("ready"), Some(&12.0));
        assert_eq!(jobs.get("failed"), Some(&1.0));
        assert_eq!(metric_sum(text, "darkroom_processing_backlog"), 40.0);
    }

    #[test]
    fn listing_paths_encode_folders_and_reject_unknown_kinds() {
        let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(1);
        let folders = vec!["/a b".to_owned()];
        let path = list_path("folder-sort", &folders, &[], &mut rng).expect("kind");
        assert_eq!(
            path,
            "/api/v1/media?folder=/a%20b&sort=filename&order=asc&limit=24"
        );
        assert!(list_path("bogus", &folders, &[], &mut rng).is_err());
    }
}
