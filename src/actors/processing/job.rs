//! One job, start to end: claim an attempt in the catalog, read the picture (an image's
//! original, a poster for a crops-only run), run the pipeline on a rayon thread, store
//! the variants, record the result. A video's or PDF's first run renders its poster
//! there first (`media::poster`, a sandboxed tool on the pool thread). Bad pixels end an
//! image as `failed`; a poster that cannot be made leaves its item `ready` without one.
//! Only an unavailable dependency returns `Err`, and the pool retries the job with
//! backoff while it stays away.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::ProcessingArgs;
use crate::actors::catalog::JobStart;
use crate::catalog::{CatalogError, JobOutcome};
use crate::media::image::{
    Focal, Make, PipelineError, Processed, Settings, Variant, Worker, animation_cost, decode_cost,
};
use crate::media::poster::PosterError;
use crate::metrics as m;
use crate::model::{
    CropRecord, CropSize, JobResult, MediaRecord, MediaType, Processing, VariantRecord,
};
use crate::storage::StorageError;
use crate::storage::key::{crop_key, poster_key, variant_key};

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
    // A focal point moved (or the file replaced) while the job ran: run it again (a few
    // times at most; a job left in the catalog is run again at the next start anyway).
    for _ in 0..STALE_RERUNS {
        match attempt(args, id).await? {
            // Another node runs it: that node's commit wakes `?wait=true` requests.
            None => return Ok(()),
            Some(JobOutcome::Stale | JobOutcome::Superseded) => continue,
            Some(_) => break,
        }
    }
    args.waiters.notify(id); // only final outcomes wake `?wait=true` requests
    Ok(())
}

/// Runs of one job in a row that a moving focal point or a replaced file made stale.
const STALE_RERUNS: usize = 4;

/// One run; `Stale` or `Superseded` when the focal point moved or the file was replaced
/// meanwhile (then nothing it made was recorded); `None` when another node runs the job.
async fn attempt(args: &ProcessingArgs, id: &str) -> Result<Option<JobOutcome>, Interrupted> {
    match args
        .catalog
        .start_job(id.to_owned(), args.max_attempts)
        .await?
    {
        JobStart::Run => {}
        // Finished, deleted, or out of attempts.
        JobStart::Skip => return Ok(Some(JobOutcome::AlreadyDone)),
        JobStart::Elsewhere => return Ok(None),
    }
    let Some(record) = args.catalog.get(id).await? else {
        return Ok(Some(JobOutcome::ItemGone));
    };
    let total = Instant::now();
    let sizes = args.presets.sizes();
    // Run again for its crops (a moved focal point, presets added): the variants and
    // placeholders it has stay; only the crops are made.
    let previous = record.processing.as_ref().filter(|p| p.was_made());
    let Some((key, kind)) = record.picture() else {
        // A video or PDF without its poster yet.
        let result = poster(args, &record, &sizes).await?;
        let outcome = record_result(args, &record, result).await?;
        stage("total", total.elapsed());
        return Ok(Some(outcome));
    };
    let read = Instant::now();
    let original = args.storage.read(key.to_owned()).await?;
    stage("read", read.elapsed());
    let make = match (previous, record.frames) {
        (Some(_), _) => Make::CropsOnly,
        (None, Some(_)) => Make::Animated,
        (None, None) => Make::All,
    };
    let result = match original {
        None => JobResult::Failed {
            reason: "the original file is missing from storage".into(),
            crop_version: record.crop_version,
        },
        Some(bytes) => match process_on_pool(args, bytes, kind, &record, &sizes, make).await? {
            Ok(processed) => store_files(args, &record, &sizes, processed, previous).await?,
            Err(e) => JobResult::Failed {
                reason: e.to_string(),
                crop_version: record.crop_version,
            },
        },
    };
    let outcome = record_result(args, &record, result).await?;
    stage("total", total.elapsed());
    Ok(Some(outcome))
}

/// Records a run's result; what it wrote that is nobody's (the item deleted or its file
/// replaced meanwhile, or crops made for an old focal point) is discarded.
async fn record_result(
    args: &ProcessingArgs,
    record: &MediaRecord,
    result: JobResult,
) -> Result<JobOutcome, Interrupted> {
    let (written, crops) = (result.written_keys(), result.crop_keys());
    let outcome_label = match &result {
        JobResult::Ready { .. } => "ready",
        JobResult::Failed { reason, .. } => {
            tracing::warn!(id = %record.id, %reason, "image processing failed");
            "failed"
        }
    };
    let (id, source) = (record.id.clone(), record.storage_key.clone());
    let outcome = args.catalog.finish_job(id, result, source).await?;
    match &outcome {
        JobOutcome::ItemGone | JobOutcome::Superseded if !written.is_empty() => {
            args.storage.discard(written);
        }
        // Stale crops go; the variants are the item's (the same keys and bytes).
        JobOutcome::Stale if !crops.is_empty() => args.storage.discard(crops),
        // Crops of presets no longer configured: queued by the write, removed now.
        JobOutcome::Recorded { queued } => args.storage.drain_deletes(queued.clone()),
        _ => {}
    }
    metrics::counter!(m::PROCESSING_JOBS, "outcome" => outcome_label).increment(1);
    Ok(outcome)
}

/// A video's or PDF's first run: its poster rendered by the tool on a pool thread (the
/// job holds `POSTER_COST` of the budget), then made into variants like an image. No
/// tool, or one that fails, times out or writes nothing usable: the item is ready
/// without a poster (the reason logged and counted), never failed for it.
async fn poster(
    args: &ProcessingArgs,
    record: &MediaRecord,
    sizes: &[CropSize],
) -> Result<JobResult, Interrupted> {
    let kind = record.media_type;
    let outcome = |label: &'static str| {
        metrics::counter!(m::POSTERS, "type" => kind.ext(), "outcome" => label).increment(1);
    };
    if !args.previews.makes(kind) {
        outcome("off");
        return Ok(no_poster(record));
    }
    let read = Instant::now();
    let Some(input) = args.storage.fetch(record.storage_key.clone()).await? else {
        return Ok(JobResult::Failed {
            reason: "the original file is missing from storage".into(),
            crop_version: record.crop_version,
        });
    };
    stage("read", read.elapsed());
    let (previews, duration) = (args.previews.clone(), record.duration);
    let (settings, crop_sizes, focal) = (args.settings, sizes.to_vec(), focal_of(record));
    let _held = args.budget.hold(POSTER_COST).await;
    let made = on_pool(&args.pool, &record.id, move |worker| {
        let render = Instant::now();
        let png = previews.render(kind, input.path(), duration)?;
        drop(input);
        stage("render", render.elapsed());
        let poster = Make::Poster;
        worker.process_with_crops(&png, MediaType::Png, &settings, &crop_sizes, focal, poster)
    })
    .await
    .ok_or(Interrupted::PoolGone)?;
    match made {
        Ok(processed) => {
            outcome("made");
            store_files(args, record, sizes, processed, None).await
        }
        Err(e) => {
            tracing::warn!(id = %record.id, reason = %e, "no poster: the item is ready without one");
            outcome(
                if matches!(e, PipelineError::Poster(PosterError::TimedOut { .. })) {
                    "timed_out"
                } else {
                    "failed"
                },
            );
            Ok(no_poster(record))
        }
    }
}

/// What a poster run holds of the pool's memory budget: the tool's resident memory (60
/// MB for ffmpeg on 720p, measured) and the picture's decode, with room to spare.
const POSTER_COST: u64 = 256 << 20;

/// A video or PDF ready without a poster.
fn no_poster(record: &MediaRecord) -> JobResult {
    JobResult::Ready {
        variants: Vec::new(),
        poster: None,
        crops: Vec::new(),
        crop_version: record.crop_version,
        thumbhash: None,
        dominant_color: None,
    }
}

fn focal_of(record: &MediaRecord) -> Focal {
    Focal {
        x: record.focal_x,
        y: record.focal_y,
    }
}

/// Runs the pipeline on a pool thread, within the pool's memory budget (the job holds
/// its estimated cost while it runs); a panic in a codec fails the job, not the server.
async fn process_on_pool(
    args: &ProcessingArgs,
    bytes: Vec<u8>,
    kind: MediaType,
    record: &MediaRecord,
    sizes: &[CropSize],
    make: Make,
) -> Result<Result<Processed, PipelineError>, Interrupted> {
    let (settings, sizes, focal) = (args.settings, sizes.to_vec(), focal_of(record));
    let mut held = cost(&bytes, kind, &sizes);
    if let (Make::Animated, Some(w), Some(h)) = (make, record.width, record.height) {
        held = held.saturating_add(animation_cost(w, h));
    }
    let _held = args.budget.hold(held).await;
    let processed = on_pool(&args.pool, &record.id, move |worker| {
        worker.process_with_crops(&bytes, kind, &settings, &sizes, focal, make)
    })
    .await
    .ok_or(Interrupted::PoolGone)?;
    if let Ok(p) = &processed {
        stage("decode", p.timings.decode);
        stage("resize", p.timings.resize);
        stage("encode", p.timings.encode);
    }
    Ok(processed)
}

/// What processing `bytes` will hold in memory: the original itself and its decode's
/// estimate (a file whose headers cannot be read holds the whole budget: it runs alone).
/// (A panic in the estimate counts as unreadable: it never takes the job's task down.)
pub(super) fn cost(bytes: &[u8], kind: MediaType, crops: &[CropSize]) -> u64 {
    let decode = std::panic::catch_unwind(|| {
        decode_cost(&mut std::io::Cursor::new(bytes), kind, crops).ok()
    });
    (bytes.len() as u64).saturating_add(decode.ok().flatten().unwrap_or(u64::MAX))
}

/// One on-demand crop of item `id`, made on the pool like a job (a codec panic is an
/// error).
pub(super) async fn crop_on_pool(
    pool: &rayon::ThreadPool,
    settings: Settings,
    original: Vec<u8>,
    kind: MediaType,
    size: CropSize,
    focal: Focal,
) -> Result<Vec<u8>, PipelineError> {
    let crop = on_pool(pool, "an on-demand crop", move |worker| {
        worker.crop_only(&original, kind, &settings, size, focal)
    });
    crop.await
        .unwrap_or_else(|| Err(PipelineError::Decode("the processing pool is gone".into())))
}

/// Runs `work` on a pool thread with that thread's `Worker`; `None` when the pool is
/// gone. A panic in it (a codec's fault, never the file's) is reported with `input`
/// (logged, counted in `darkroom_panics_total`) and answered as a decode failure.
async fn on_pool<T: Send + 'static>(
    pool: &rayon::ThreadPool,
    input: &str,
    work: impl FnOnce(&mut Worker) -> Result<T, PipelineError> + Send + 'static,
) -> Option<Result<T, PipelineError>> {
    let (tx, rx) = oneshot::channel();
    pool.spawn(move || {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            WORKER.with(|w| work(&mut w.borrow_mut()))
        }));
        let _ = tx.send(run.map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default()
        }));
    });
    let run = rx.await.ok()?;
    Some(run.unwrap_or_else(|message| {
        tracing::error!(%input, panic = %message, "image processing panicked; the job fails");
        metrics::counter!(m::PANICS, "where" => "job").increment(1);
        Err(PipelineError::Decode(
            "the decoder failed on this file".into(),
        ))
    }))
}

/// Stores the variants and crops, and says what the item now has.
async fn store_files(
    args: &ProcessingArgs,
    record: &MediaRecord,
    sizes: &[CropSize],
    processed: Processed,
    previous: Option<&Processing>,
) -> Result<JobResult, Interrupted> {
    let write = Instant::now();
    let mut variants = Vec::with_capacity(processed.variants.len());
    let mut files = Vec::with_capacity(processed.variants.len() + sizes.len() + 1);
    let mut poster = processed.poster.map(|p| {
        let (key, size) = (poster_key(&record.storage_key), p.webp.len() as u64);
        files.push((key.clone(), p.webp));
        VariantRecord {
            width: p.width,
            height: p.height,
            size,
            storage_key: key,
        }
    });
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
    let version = record.crop_version;
    let crops = crop_files(args, record, sizes, processed.crops, &mut files);
    if !files.is_empty() {
        args.storage.put_all(files).await?;
    }
    stage("write", write.elapsed());
    let bytes: u64 = variants.iter().map(|v| v.size).sum();
    metrics::counter!(m::PROCESSING_VARIANTS).increment(variants.len() as u64);
    metrics::counter!(m::PROCESSING_VARIANT_BYTES).increment(bytes);
    let (thumbhash, dominant_color) = match previous {
        Some(p) => {
            variants.clone_from(&p.variants);
            poster.clone_from(&p.poster);
            (p.thumbhash.clone(), p.dominant_color.clone())
        }
        None => (Some(processed.thumbhash), Some(processed.dominant_color)),
    };
    Ok(JobResult::Ready {
        variants,
        poster,
        crops,
        crop_version: version,
        thumbhash,
        dominant_color,
    })
}

/// The crops' files (onto `files`) and their records, one per preset (presets of one
/// size share a file).
fn crop_files(
    args: &ProcessingArgs,
    record: &MediaRecord,
    sizes: &[CropSize],
    crops: Vec<Variant>,
    files: &mut Vec<(String, Vec<u8>)>,
) -> Vec<CropRecord> {
    let made: Vec<(CropSize, String, u64)> = sizes
        .iter()
        .zip(crops)
        .map(|(size, crop)| {
            let key = crop_key(&record.storage_key, *size, record.crop_version);
            let len = crop.webp.len() as u64;
            files.push((key.clone(), crop.webp));
            (*size, key, len)
        })
        .collect();
    let presets = args.presets.iter();
    presets
        .filter_map(|(name, size)| {
            let (_, key, len) = made.iter().find(|(s, ..)| *s == size)?;
            Some(CropRecord {
                name: name.to_owned(),
                width: size.width,
                height: size.height,
                size: *len,
                storage_key: key.clone(),
            })
        })
        .collect()
}

fn stage(name: &'static str, took: Duration) {
    metrics::histogram!(m::PROCESSING_STAGE_DURATION, "stage" => name).record(took.as_secs_f64());
}
