//! Metric names (all `darkroom_*`, units as suffixes), each described once, and the
//! Prometheus recorder behind `GET /metrics`. Labels are bounded: routes are templates,
//! never raw paths.

use std::collections::HashMap;
use std::sync::{LazyLock, OnceLock, RwLock};
use std::time::Instant;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "darkroom_http_requests_total";
pub const HTTP_DURATION: &str = "darkroom_http_request_duration_seconds";
pub const HTTP_CONNECTIONS_REFUSED: &str = "darkroom_http_connections_refused_total";
pub const UPLOAD_BYTES: &str = "darkroom_upload_bytes_total";
pub const UPLOAD_FILES: &str = "darkroom_upload_files_total";
pub const CATALOG_COMMIT_DURATION: &str = "darkroom_catalog_commit_duration_seconds";
pub const CATALOG_COMMIT_BATCH: &str = "darkroom_catalog_commit_batch_size";
pub const STORAGE_DURATION: &str = "darkroom_storage_operation_duration_seconds";
pub const STORAGE_ERRORS: &str = "darkroom_storage_errors_total";
pub const CROPS_MADE: &str = "darkroom_crops_made_total";
pub const STORAGE_FETCHED_BYTES: &str = "darkroom_storage_fetched_bytes_total";
pub const POSTER_FETCHED_BYTES: &str = "darkroom_storage_poster_fetched_bytes_total";
pub const STORAGE_RANGED_BYTES: &str = "darkroom_storage_ranged_read_bytes_total";
pub const UPLOADS_DECLINED: &str = "darkroom_uploads_declined_total";
pub const DATA_DIR_FREE_BYTES: &str = "darkroom_data_dir_free_bytes";
pub const ORPHANS_SWEPT: &str = "darkroom_orphan_files_swept_total";
pub const ACTOR_RESTARTS: &str = "darkroom_actor_restarts_total";
pub const BUILD_INFO: &str = "darkroom_build_info";
pub const PANICS: &str = "darkroom_panics_total";
pub const PROCESSING_QUEUE_DEPTH: &str = "darkroom_processing_queue_depth";
pub const PROCESSING_IN_FLIGHT: &str = "darkroom_processing_in_flight";
pub const PROCESSING_BACKLOG: &str = "darkroom_processing_backlog";
pub const PROCESSING_STAGE_DURATION: &str = "darkroom_processing_stage_duration_seconds";
pub const PROCESSING_JOBS: &str = "darkroom_processing_jobs_total";
pub const PROCESSING_VARIANTS: &str = "darkroom_processing_variants_total";
pub const POSTERS: &str = "darkroom_posters_total";
pub const PROCESSING_VARIANT_BYTES: &str = "darkroom_processing_variant_bytes_total";
pub const PROCESSING_REJECTED: &str = "darkroom_processing_rejected_uploads_total";
pub const PROCESSING_MEMORY_HELD: &str = "darkroom_processing_memory_held_bytes";
pub const WEBHOOK_DELIVERIES: &str = "darkroom_webhook_deliveries_total";
pub const WEBHOOK_DELIVERY_DURATION: &str = "darkroom_webhook_delivery_duration_seconds";
pub const WEBHOOK_PENDING: &str = "darkroom_webhook_pending_events";
pub const WEBHOOK_OLDEST_PENDING: &str = "darkroom_webhook_oldest_pending_age_seconds";
pub const WEBHOOK_DROPPED: &str = "darkroom_webhook_dropped_events_total";

/// Sub-millisecond reads up to multi-second uploads.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Writes per group commit.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once per process (tests start many servers) and
/// returns the handle that renders the scrape.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(CATALOG_COMMIT_BATCH.into()),
                        BATCH_BUCKETS,
                    )
                })
                .expect("bucket lists are non-empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

/// One `describe_*!` per metric: a table, longer than a function should be and clearer
/// kept whole.
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by route template, method and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by route template."
    );
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "Connections answered 503 by the cap they met (limit: server or client)."
    );
    describe_counter!(
        UPLOAD_BYTES,
        Unit::Bytes,
        "Bytes of accepted uploads by media type."
    );
    describe_counter!(UPLOAD_FILES, "Uploaded files by media type and outcome.");
    describe_gauge!(
        PROCESSING_MEMORY_HELD,
        Unit::Bytes,
        "Decode memory held from the pool's budget (processing.memory_budget_bytes) by running jobs."
    );
    describe_counter!(
        PANICS,
        "Panics caught (where: upload_check, job): each refused or failed its input and is logged with it."
    );
    describe_histogram!(
        CATALOG_COMMIT_DURATION,
        Unit::Seconds,
        "Catalog group-commit latency (one redb transaction)."
    );
    describe_histogram!(
        CATALOG_COMMIT_BATCH,
        "Writes committed together in one transaction."
    );
    describe_histogram!(
        STORAGE_DURATION,
        Unit::Seconds,
        "Storage operation latency by backend."
    );
    describe_counter!(
        STORAGE_ERRORS,
        "Failed storage operations by backend and operation."
    );
    describe_counter!(
        CROPS_MADE,
        "On-demand crops computed (decoded, cut and encoded); cache hits are not counted."
    );
    describe_counter!(
        STORAGE_FETCHED_BYTES,
        Unit::Bytes,
        "Bytes of presigned uploads downloaded whole to be checked (JPEG, PNG, WebP, SVG: they are cleaned)."
    );
    describe_counter!(
        POSTER_FETCHED_BYTES,
        Unit::Bytes,
        "Bytes of stored videos and PDFs copied from the bucket for the tool that makes their poster."
    );
    describe_counter!(
        STORAGE_RANGED_BYTES,
        Unit::Bytes,
        "Bytes of presigned uploads copied and read in ranges to be checked (videos, documents, GIF)."
    );
    describe_counter!(
        UPLOADS_DECLINED,
        "Uploads and confirms declined before reading a byte (reason: out_of_space, storage_down)."
    );
    describe_gauge!(
        DATA_DIR_FREE_BYTES,
        Unit::Bytes,
        "Free bytes of the data dir's filesystem (below limits.min_free_bytes uploads get 507)."
    );
    describe_counter!(
        ORPHANS_SWEPT,
        "Files removed by the periodic orphan sweep (kind: temp or stored)."
    );
    describe_counter!(
        ACTOR_RESTARTS,
        "Actor restarts by the supervisor, by actor."
    );
    describe_gauge!(
        PROCESSING_QUEUE_DEPTH,
        "Image jobs queued in the processing pool, not yet started."
    );
    describe_gauge!(PROCESSING_IN_FLIGHT, "Image jobs running now.");
    describe_gauge!(
        PROCESSING_BACKLOG,
        "Unfinished image jobs recorded in the catalog (what backpressure limits)."
    );
    describe_histogram!(
        PROCESSING_STAGE_DURATION,
        Unit::Seconds,
        "Processing time per stage (read, render, decode, resize, encode, write, total)."
    );
    describe_counter!(
        PROCESSING_JOBS,
        "Finished image jobs by outcome (ready, failed, retried)."
    );
    describe_counter!(PROCESSING_VARIANTS, "WebP variants written.");
    describe_counter!(
        POSTERS,
        "Posters of videos and PDFs by type and outcome: made, failed, timed_out; off (no tool \
         here) and skipped (the backlog past half its limit), both without a job."
    );
    describe_counter!(
        PROCESSING_VARIANT_BYTES,
        Unit::Bytes,
        "Bytes of WebP variants written."
    );
    describe_counter!(
        PROCESSING_REJECTED,
        "Upload requests refused with 503 because the processing backlog was full."
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts by outcome: delivered, retried (failed, tried again later), given_up (out of its retry window), disabled (the receiver answered 410)."
    );
    describe_histogram!(
        WEBHOOK_DELIVERY_DURATION,
        Unit::Seconds,
        "Time of one webhook delivery attempt, until the receiver's status line or the error."
    );
    describe_gauge!(
        WEBHOOK_PENDING,
        "Events waiting in a webhook's outbox (label webhook), as last counted by the node that sends."
    );
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING,
        Unit::Seconds,
        "Age of the oldest event waiting in a webhook's outbox (0 when none waits)."
    );
    describe_counter!(
        WEBHOOK_DROPPED,
        "Events dropped from a webhook's outbox by this node: past the first webhooks.max_pending (reason over_limit), or out of their retry window (expired). Events waiting when a receiver answered 410 count in the webhook's own dropped field."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the labels name the running build.");
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// The series one request writes, resolved once per route, method and status rather than
/// on every request (which builds the label strings and hashes them into the registry).
#[derive(Clone)]
pub struct RequestSeries {
    pub count: metrics::Counter,
    pub duration: metrics::Histogram,
}

/// Methods outside the standard ones share the label `OTHER`: a client cannot mint series.
pub fn method_label(method: &hyper::Method) -> &'static str {
    use hyper::Method as M;
    match *method {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

type SeriesKey = (&'static str, &'static str, u16);

static REQUEST_SERIES: LazyLock<RwLock<HashMap<SeriesKey, RequestSeries>>> =
    LazyLock::new(Default::default);

/// The series of requests to `route` (a template) with `method` answered `status`.
pub fn request_series(route: &'static str, method: &'static str, status: u16) -> RequestSeries {
    let key = (route, method, status);
    if let Some(series) = REQUEST_SERIES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return series.clone();
    }
    let series = RequestSeries {
        count: metrics::counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status.to_string()),
        duration: metrics::histogram!(HTTP_DURATION, "route" => route, "method" => method),
    };
    REQUEST_SERIES
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(series)
        .clone()
}

/// Records the time from creation to drop into a histogram, so early returns count too.
pub struct Timer {
    started: Instant,
    histogram: metrics::Histogram,
}

impl Timer {
    pub fn new(histogram: metrics::Histogram) -> Self {
        Self {
            started: Instant::now(),
            histogram,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.histogram.record(self.started.elapsed().as_secs_f64());
    }
}
