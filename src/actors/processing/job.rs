//! One image job, start to end: claim an attempt in the catalog, read the original, run
//! the pipeline on a rayon thread, store the variants, record the result. Bad pixels end
//! as `failed`; only an unavailable dependency returns `Err`, and the pool retries the
//! job with backoff while it stays away.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ProcessingArgs;
use crate::catalog::{CatalogError, JobOutcome};
use crate::media::image::{PipelineError, Processed, Worker};
use crate::metrics as m;
use crate::model::{JobResult, MediaRecord, VariantRecord};
use crate::storage::StorageError;
use crate::storage::key::variant_key;

thread_local! {
    /// Each rayon thread keeps its resizer and buffers between jobs.
    static WORKER: RefCell<Worker> = RefCell::new(Worker::new());
}

/// A dependency was unavailable: the job stays in the catalog and is tried again.
#[derive(Debug, thiserror::Error)]
pub enum Interrupted {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the processing pool is gone")]
    PoolGone,
}

/// One job: claim an attempt, read the original, run the pipeline on the pool, store
/// the variants, record the result. Bad pixels end as `failed`; only unavailable
/// dependencies return `Err` (the job is retried with backoff while they stay away).
pub async fn run(args: &ProcessingArgs, id: &str) -> Result<(), Interrupted> {
    attempt(args, id).await?;
    args.waiters.notify(id); // only final outcomes wake `?wait=true` requests
    Ok(())
}

async fn attempt(args: &ProcessingArgs, id: &str) -> Result<(), Interrupted> {
    if !args
        .catalog
        .start_job(id.to_owned(), args.max_attempts)
        .await?
    {
        return Ok(()); // finished, deleted, or out of attempts (then recorded as failed)
    }
    let Some(record) = args.catalog.get(id)? else {
        return Ok(());
    };
    let total = Instant::now();
    let read = Instant::now();
    let original = args.storage.read(record.storage_key.clone()).await?;
    stage("read", read.elapsed());
    let result = match original {
        None => JobResult::Failed {
            reason: "the original file is missing from storage".into(),
        },
        Some(bytes) => match process_on_pool(args, bytes, &record).await? {
            Ok(processed) => store_variants(args, &record, processed).await?,
            Err(e) => JobResult::Failed {
                reason: e.to_string(),
            },
        },
    };
    let written = result.written_keys();
    let outcome_label = match &result {
        JobResult::Ready { .. } => "ready",
        JobResult::Failed { reason } => {
            tracing::warn!(%id, %reason, "image processing failed");
            "failed"
        }
    };
    if args.catalog.finish_job(id.to_owned(), result).await? == JobOutcome::ItemGone
        && !written.is_empty()
    {
        args.storage.discard(written); // deleted while processing: nobody owns them
    }
    stage("total", total.elapsed());
    metrics::counter!(m::PROCESSING_JOBS, "outcome" => outcome_label).increment(1);
    Ok(())
}

/// Runs the pipeline on a pool thread; a panic in a codec fails the job, not the server.
async fn process_on_pool(
    args: &ProcessingArgs,
    bytes: Vec<u8>,
    record: &MediaRecord,
) -> Result<Result<Processed, PipelineError>, Interrupted> {
    let (tx, rx) = oneshot::channel();
    let (kind, settings) = (record.media_type, args.settings);
    args.pool.spawn(move || {
        let run = std::panic::catch_unwind(|| {
            WORKER.with(|w| w.borrow_mut().process(&bytes, kind, &settings))
        });
        let _ = tx.send(run.unwrap_or_else(|_| {
            Err(PipelineError::Decode(
                "the decoder failed on this file".into(),
            ))
        }));
    });
    let processed = rx.await.map_err(|_| Interrupted::PoolGone)?;
    if let Ok(p) = &processed {
        stage("decode", p.timings.decode);
        stage("resize", p.timings.resize);
        stage("encode", p.timings.encode);
    }
    Ok(processed)
}

async fn store_variants(
    args: &ProcessingArgs,
    record: &MediaRecord,
    processed: Processed,
) -> Result<JobResult, Interrupted> {
    let write = Instant::now();
    let mut variants = Vec::with_capacity(processed.variants.len());
    let mut files = Vec::with_capacity(processed.variants.len());
    for v in processed.variants {
        let key = variant_key(&record.storage_key, v.width);
        variants.push(VariantRecord {
            width: v.width,
            height: v.height,
            size: v.webp.len() as u64,
            storage_key: key.clone(),
        });
        files.push((key, v.webp));
    }
    if !files.is_empty() {
        args.storage.put_all(files).await?;
    }
    stage("write", write.elapsed());
    let bytes: u64 = variants.iter().map(|v| v.size).sum();
    metrics::counter!(m::PROCESSING_VARIANTS).increment(variants.len() as u64);
    metrics::counter!(m::PROCESSING_VARIANT_BYTES).increment(bytes);
    Ok(JobResult::Ready {
        variants,
        thumbhash: processed.thumbhash,
        dominant_color: processed.dominant_color,
    })
}

fn stage(name: &'static str, took: Duration) {
    metrics::histogram!(m::PROCESSING_STAGE_DURATION, "stage" => name).record(took.as_secs_f64());
}
