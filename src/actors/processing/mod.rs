//! ProcessingPool: turns image items into WebP variants. Jobs are rows in the catalog,
//! committed with their item; this actor admits them through a bounded in-flight window
//! into a rayon pool (one `media::image::Worker` per thread), so its memory stays bounded
//! however long the backlog is. On (re)start it queues every unfinished job again.
//!
//! - `job`: one job's workflow; `admission`: the backpressure gate in front of the pool
//!   (image uploads get 503 once the durable backlog is full); `waiters`: `?wait=true`.

mod admission;
mod job;
mod waiters;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

pub use admission::{Admission, Budget, Reservation};
pub use waiters::{Waiters, Watch};

use super::Slot;
use super::catalog::CatalogHandle;
use super::storage::StorageHandle;
use crate::media::image::{Focal, PipelineError, Settings};
use crate::metrics as m;
use crate::model::{CropSize, MediaRecord, MediaType, Presets};

/// Delay before a job whose storage or catalog was unavailable is tried again; it doubles
/// with each retry of the same job, up to `MAX_RETRY_DELAY`.
const RETRY_DELAY: Duration = Duration::from_secs(1);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// How often the pool looks in the catalog for jobs it was never handed (committed while
/// it was restarting).
const RESCAN_EVERY: Duration = Duration::from_secs(10);
/// The same with N nodes (PostgreSQL): jobs queued on a busy node are claimed by idle
/// ones, so they look often (one indexed query).
const CLUSTER_RESCAN_EVERY: Duration = Duration::from_secs(2);

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
    /// False: this node leaves every job to other nodes (`processing.run_jobs`).
    pub run_jobs: bool,
    pub max_attempts: u32,
    pub waiters: Waiters,
    /// Crop presets every image also gets.
    pub presets: Presets,
    /// The memory a job's decode may hold (shared with on-demand crops).
    pub budget: Budget,
    /// The tools that make posters of videos and PDFs, where installed.
    pub previews: Arc<crate::media::poster::Previews>,
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
        // Never fails on the catalog (failures cluster when restarts are needed): jobs it
        // cannot list now are found by the next rescan.
        let pending = match args.catalog.unfinished_jobs().await {
            Ok(pending) => pending,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list unfinished image jobs yet; rescanning");
                myself.send_after(RETRY_DELAY, || ProcessingMsg::Rescan);
                Vec::new()
            }
        };
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
        let every = if state.args.catalog.is_single_node() {
            RESCAN_EVERY
        } else {
            CLUSTER_RESCAN_EVERY
        };
        myself.send_interval(every, || ProcessingMsg::Rescan);
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
                let delay = retry_delay(*retries);
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

/// The wait before the next try of a job that met an outage `retries` times already.
fn retry_delay(retries: u32) -> Duration {
    RETRY_DELAY
        .saturating_mul(1 << retries.min(6))
        .min(MAX_RETRY_DELAY)
}

impl PoolState {
    fn enqueue(&mut self, ids: Vec<String>) {
        if !self.args.run_jobs {
            return; // other nodes run them
        }
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
                let reply = match job::run(&args, &id).await {
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

/// The processing pool for the rest of the program.
#[derive(Clone)]
pub struct ProcessingHandle {
    slot: Slot<ProcessingMsg>,
    waiters: Waiters,
    admission: Arc<Admission>,
    /// The jobs' rayon pool, which on-demand crops share.
    pool: Arc<rayon::ThreadPool>,
    settings: Settings,
    budget: Budget,
    /// On-demand crops reading their original at once (the pool's in-flight window).
    crop_window: Arc<tokio::sync::Semaphore>,
    /// False: committed jobs are announced to the nodes that run them.
    run_jobs: bool,
    catalog: CatalogHandle,
    previews: Arc<crate::media::poster::Previews>,
}

impl ProcessingHandle {
    pub fn new(
        args: &ProcessingArgs,
        slot: Slot<ProcessingMsg>,
        admission: Arc<Admission>,
    ) -> Self {
        Self {
            slot,
            waiters: args.waiters.clone(),
            admission,
            pool: args.pool.clone(),
            settings: args.settings,
            budget: args.budget.clone(),
            crop_window: Arc::new(tokio::sync::Semaphore::new(args.max_in_flight)),
            run_jobs: args.run_jobs,
            catalog: args.catalog.clone(),
            previews: args.previews.clone(),
        }
    }

    /// A new item as it is to be recorded: a video or PDF gets its poster job only when
    /// this node has the tool and the backlog has room for it (see
    /// `Admission::room_for_posters`); otherwise it is ready without a poster at once,
    /// counted in `darkroom_posters_total` (`off`, `skipped`).
    pub fn with_poster_plan(&self, mut record: MediaRecord) -> MediaRecord {
        let kind = record.media_type;
        if !kind.has_poster() {
            return record;
        }
        let skipped = if !self.previews.makes(kind) {
            "off"
        } else if !self.admission.room_for_posters() {
            "skipped"
        } else {
            return record;
        };
        metrics::counter!(m::POSTERS, "type" => kind.ext(), "outcome" => skipped).increment(1);
        record.processing = Some(crate::model::Processing::without_poster());
        record
    }

    /// Waits for a place among the on-demand crops reading their original (the pool's
    /// in-flight window: each holds a whole original in memory).
    pub async fn crop_turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.crop_window.clone().acquire_owned().await.ok()
    }

    /// Makes one crop of an original on the pool (the caller holds a `Reservation`),
    /// within the pool's memory budget.
    pub async fn make_crop(
        &self,
        original: Vec<u8>,
        kind: MediaType,
        size: CropSize,
        focal: Focal,
    ) -> Result<Vec<u8>, PipelineError> {
        let cost = job::cost(&original, kind, &[size]);
        let _held = self.budget.hold(cost).await;
        job::crop_on_pool(&self.pool, self.settings, original, kind, size, focal).await
    }

    /// Hands committed jobs to the pool. Should the pool be restarting, it finds them
    /// in the catalog when it starts. A node that runs no jobs announces them to the
    /// nodes that do.
    pub fn enqueue(&self, ids: Vec<String>) {
        if !self.run_jobs {
            let catalog = self.catalog.clone();
            tokio::spawn(async move { catalog.announce(&ids).await });
            return;
        }
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(ProcessingMsg::Enqueue(ids));
        }
    }

    pub fn try_reserve(&self) -> Option<Reservation> {
        self.admission.try_reserve()
    }

    /// `?wait=true`: a wait for these jobs, registered now (see `Waiters::watch`).
    pub fn watch(&self, ids: Vec<String>) -> Watch {
        self.waiters.watch(ids)
    }

    /// Test-only fault injection.
    pub fn crash(&self) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(ProcessingMsg::Crash);
        }
    }

    /// Whether the pool's actor runs (readiness: images would wait for ever otherwise).
    pub fn is_running(&self) -> bool {
        self.slot.get().is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_from_one_second_to_a_minute() {
        let delays: Vec<u64> = (0..9).map(|r| retry_delay(r).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
