//! ProcessingPool: turns image items into WebP variants. Jobs are rows in the catalog,
//! committed with their item; this actor admits them through a bounded in-flight window
//! into a rayon pool (one `pipeline::Worker` per thread), so its memory stays bounded
//! however long the backlog is. On (re)start it queues every unfinished job again.
//!
//! Backpressure sits in front of it: `Admission` refuses image uploads once the durable
//! backlog (unfinished jobs plus uploads in progress) reaches `processing.max_backlog`.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use super::Slot;
use super::catalog::CatalogHandle;
use super::storage::StorageHandle;
use crate::catalog::model::{JobResult, MediaRecord, VariantRecord, variant_key};
use crate::catalog::{CatalogError, JobOutcome};
use crate::media::pipeline::{PipelineError, Processed, Settings, Worker};
use crate::metrics as m;
use crate::storage::StorageError;

/// Delay before a job whose storage or catalog was unavailable is tried again; it doubles
/// with each retry of the same job, up to `MAX_RETRY_DELAY`.
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// How often the pool looks in the catalog for jobs it was never handed (committed while
/// it was restarting).
const RESCAN_EVERY: Duration = Duration::from_secs(10);

thread_local! {
    /// Each rayon thread keeps its resizer and buffers between jobs.
    static WORKER: RefCell<Worker> = RefCell::new(Worker::new());
}

pub struct ProcessingPool;

/// Immutable for the actor's life.
#[derive(Clone)]
pub struct ProcessingArgs {
    pub catalog: CatalogHandle,
    pub storage: StorageHandle,
    pub pool: Arc<rayon::ThreadPool>,
    pub settings: Settings,
    /// Jobs running at once (reading, on the pool, or writing variants).
    pub max_in_flight: usize,
    pub max_attempts: u32,
    pub waiters: Waiters,
}

pub struct PoolState {
    args: ProcessingArgs,
    queue: VecDeque<String>,
    /// Ids queued or running, so a job is never run twice at once.
    known: HashSet<String>,
    in_flight: usize,
    /// Retries so far of jobs that met an outage (for their backoff).
    retries: HashMap<String, u32>,
}

pub enum ProcessingMsg {
    /// Jobs just committed with their items.
    Enqueue(Vec<String>),
    /// A job finished (whatever its outcome): its slot is free.
    Done(String),
    /// A job met an unavailable dependency; it goes back to the queue.
    Retry(String),
    /// Queue unfinished jobs from the catalog that are not queued or running yet.
    Rescan,
    /// Test-only fault injection: fail, so the supervisor restarts this actor.
    Crash,
}

impl Actor for ProcessingPool {
    type Msg = ProcessingMsg;
    type State = PoolState;
    type Arguments = ProcessingArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ProcessingMsg>,
        args: ProcessingArgs,
    ) -> Result<PoolState, ActorProcessingErr> {
        let pending = args.catalog.unfinished_jobs().await?;
        if !pending.is_empty() {
            tracing::info!(jobs = pending.len(), "queueing unfinished image jobs");
        }
        let mut state = PoolState {
            args,
            queue: VecDeque::new(),
            known: HashSet::new(),
            in_flight: 0,
            retries: HashMap::new(),
        };
        state.enqueue(pending);
        state.dispatch(&myself);
        // Ends by itself when this instance stops.
        myself.send_interval(RESCAN_EVERY, || ProcessingMsg::Rescan);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ProcessingMsg>,
        msg: ProcessingMsg,
        state: &mut PoolState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ProcessingMsg::Enqueue(ids) => state.enqueue(ids),
            ProcessingMsg::Done(id) => {
                state.in_flight -= 1;
                state.known.remove(&id);
                state.retries.remove(&id);
            }
            ProcessingMsg::Retry(id) => {
                state.in_flight -= 1;
                state.known.remove(&id);
                let retries = state.retries.entry(id.clone()).or_insert(0);
                let delay = RETRY_DELAY
                    .saturating_mul(1 << (*retries).min(6))
                    .min(MAX_RETRY_DELAY);
                *retries += 1;
                myself.send_after(delay, move || ProcessingMsg::Enqueue(vec![id]));
            }
            ProcessingMsg::Rescan => match state.args.catalog.unfinished_jobs().await {
                Ok(ids) => state.enqueue(ids),
                Err(e) => tracing::warn!(error = %e, "cannot scan for unfinished image jobs"),
            },
            ProcessingMsg::Crash => return Err("injected fault".into()),
        }
        state.dispatch(&myself);
        Ok(())
    }
}

impl PoolState {
    fn enqueue(&mut self, ids: Vec<String>) {
        for id in ids {
            if self.known.insert(id.clone()) {
                self.queue.push_back(id);
            }
        }
    }

    /// Starts queued jobs while the in-flight window has room.
    fn dispatch(&mut self, myself: &ActorRef<ProcessingMsg>) {
        while self.in_flight < self.args.max_in_flight {
            let Some(id) = self.queue.pop_front() else {
                break;
            };
            self.in_flight += 1;
            let (args, me) = (self.args.clone(), myself.clone());
            tokio::spawn(async move {
                let reply = match run_job(&args, &id).await {
                    Ok(()) => ProcessingMsg::Done(id),
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "image job interrupted; retrying");
                        // An outage is not a crash: it must not use up the job's attempts.
                        let _ = args.catalog.release_job(id.clone()).await;
                        metrics::counter!(m::PROCESSING_JOBS, "outcome" => "retried").increment(1);
                        ProcessingMsg::Retry(id)
                    }
                };
                let _ = me.cast(reply);
            });
        }
        metrics::gauge!(m::PROCESSING_QUEUE_DEPTH).set(self.queue.len() as f64);
        metrics::gauge!(m::PROCESSING_IN_FLIGHT).set(self.in_flight as f64);
        metrics::gauge!(m::PROCESSING_BACKLOG).set(self.args.catalog.job_count() as f64);
    }
}

/// A dependency was unavailable: the job stays in the catalog and is tried again.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
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
async fn run_job(args: &ProcessingArgs, id: &str) -> Result<(), Interrupted> {
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
    let written: Vec<String> = match &result {
        JobResult::Ready { variants, .. } => {
            variants.iter().map(|v| v.storage_key.clone()).collect()
        }
        JobResult::Failed { .. } => Vec::new(),
    };
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
        args.storage.delete(written); // deleted while processing: nobody owns them
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

/// Requests waiting (`?wait=true`) for their items' jobs to end.
#[derive(Clone, Default)]
pub struct Waiters(Arc<Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>>);

impl Waiters {
    /// Registers interest in `id`; the receiver fires when its job ends (any outcome).
    /// Register before the job is committed, so its end cannot be missed.
    pub fn subscribe(&self, id: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.0.lock() {
            map.entry(id.to_owned()).or_default().push(tx);
        }
        rx
    }

    fn notify(&self, id: &str) {
        let senders = self.0.lock().ok().and_then(|mut map| map.remove(id));
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(());
        }
    }

    /// Drops registrations whose waiter gave up (timed out or disconnected).
    pub fn prune(&self, ids: &[String]) {
        if let Ok(mut map) = self.0.lock() {
            for id in ids {
                if let Some(list) = map.get_mut(id) {
                    list.retain(|tx| !tx.is_closed());
                    if list.is_empty() {
                        map.remove(id);
                    }
                }
            }
        }
    }
}

/// The backpressure gate for image uploads: unfinished jobs in the catalog plus images
/// of uploads still in progress must stay under `max_backlog`.
pub struct Admission {
    catalog: CatalogHandle,
    in_progress: AtomicU64,
    limit: u64,
}

/// One admitted image of an upload in progress; released when the request ends (by
/// then its job, if the upload succeeded, counts in the catalog instead).
pub struct Reservation(Arc<Admission>);

impl Drop for Reservation {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub fn new(catalog: CatalogHandle, limit: u64) -> Arc<Self> {
        Arc::new(Self {
            catalog,
            in_progress: AtomicU64::new(0),
            limit,
        })
    }

    /// A slot for one more image, or `None` when the backlog is full.
    pub fn try_reserve(self: &Arc<Self>) -> Option<Reservation> {
        let before = self.in_progress.fetch_add(1, Ordering::Relaxed);
        let reservation = Reservation(self.clone());
        (self.catalog.job_count() + before < self.limit).then_some(reservation)
    }
}

/// The processing pool for the rest of the program.
#[derive(Clone)]
pub struct ProcessingHandle {
    slot: Slot<ProcessingMsg>,
    waiters: Waiters,
    admission: Arc<Admission>,
}

impl ProcessingHandle {
    pub fn new(slot: Slot<ProcessingMsg>, waiters: Waiters, admission: Arc<Admission>) -> Self {
        Self {
            slot,
            waiters,
            admission,
        }
    }

    /// Hands committed jobs to the pool. Should the pool be restarting, it finds them
    /// in the catalog when it starts.
    pub fn enqueue(&self, ids: Vec<String>) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(ProcessingMsg::Enqueue(ids));
        }
    }

    pub fn try_reserve(&self) -> Option<Reservation> {
        self.admission.try_reserve()
    }

    pub fn subscribe(&self, id: &str) -> oneshot::Receiver<()> {
        self.waiters.subscribe(id)
    }

    pub fn prune_waiters(&self, ids: &[String]) {
        self.waiters.prune(ids);
    }

    /// Test-only fault injection.
    pub fn crash(&self) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(ProcessingMsg::Crash);
        }
    }
}

/// The rayon pool of image work, its threads named for `top` and profilers.
pub fn build_pool(threads: usize) -> std::io::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("darkroom-img-{i}"))
        .build()
        .map_err(std::io::Error::other)
}
