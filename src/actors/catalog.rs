//! CatalogActor: the single writer of this node, with group commit, over either catalog
//! (`catalog::Backend`). Writes that wait in the mailbox are applied in one transaction:
//! the first write of a batch queues a `Flush` behind whatever is already waiting, and
//! while a commit is in progress new writes pile up for the next one. Reads never come
//! here (see `CatalogHandle`).

use std::collections::HashSet;
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{Slot, rpc};
use crate::catalog::{
    Backend, CacheCrop, Catalog, CatalogError, Changed, CropCached, JobEvent, JobOutcome, Outcome,
    WebhookWrite, Write, keys,
};
use crate::metrics as m;
use crate::model::{
    ApiKeyRecord, Attempt, Backlog, FolderPath, JobResult, ListQuery, MediaPatch, MediaRecord,
    Page, PresignRecord, Queued, Scope, Visibility, WebhookRecord, now_us,
};
use crate::storage::Claims;

type Reply = RpcReplyPort<Result<Outcome, CatalogError>>;

pub struct CatalogActor;

pub struct CatalogState {
    catalog: Backend,
    pending: Vec<(Write, Reply)>,
    flush_queued: bool,
    /// Barriers waiting for the commit of the writes queued before them.
    barriers: Vec<RpcReplyPort<()>>,
}

pub enum CatalogMsg {
    /// Queue one write for the next commit.
    Write(Write, Reply),
    /// Commit everything queued so far.
    Flush,
    /// Answers once every write sent before it is committed (or has failed).
    Barrier(RpcReplyPort<()>),
    /// Test-only fault injection: fail, so the supervisor restarts this actor.
    Crash,
}

impl Actor for CatalogActor {
    type Msg = CatalogMsg;
    type State = CatalogState;
    type Arguments = Backend;

    async fn pre_start(
        &self,
        _myself: ActorRef<CatalogMsg>,
        catalog: Backend,
    ) -> Result<CatalogState, ActorProcessingErr> {
        Ok(CatalogState {
            catalog,
            pending: Vec::new(),
            flush_queued: false,
            barriers: Vec::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<CatalogMsg>,
        msg: CatalogMsg,
        state: &mut CatalogState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CatalogMsg::Write(write, reply) => {
                state.pending.push((write, reply));
                if !state.flush_queued {
                    state.flush_queued = true;
                    myself.cast(CatalogMsg::Flush)?;
                }
            }
            CatalogMsg::Crash => return Err("injected fault".into()),
            // Writes are committed in the order they arrive: with none queued, every
            // earlier one is settled; else the barrier waits for the commit that takes them.
            CatalogMsg::Barrier(reply) if state.pending.is_empty() => {
                let _ = reply.send(());
            }
            CatalogMsg::Barrier(reply) => state.barriers.push(reply),
            CatalogMsg::Flush => {
                state.flush_queued = false;
                let barriers = std::mem::take(&mut state.barriers);
                let (writes, replies): (Vec<Write>, Vec<Reply>) =
                    std::mem::take(&mut state.pending).into_iter().unzip();
                if writes.is_empty() {
                    return Ok(());
                }
                metrics::histogram!(m::CATALOG_COMMIT_BATCH).record(writes.len() as f64);
                let _timer = m::Timer::new(metrics::histogram!(m::CATALOG_COMMIT_DURATION));
                let batch = match &state.catalog {
                    Backend::Redb(catalog) => {
                        let catalog = catalog.clone();
                        tokio::task::spawn_blocking(move || catalog.apply(writes)).await?
                    }
                    Backend::Postgres(catalog) => catalog.apply(writes).await,
                };
                match batch {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "catalog commit failed");
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                        if let Backend::Redb(catalog) = &state.catalog {
                            heal(catalog).await;
                        }
                    }
                }
                for barrier in barriers {
                    let _ = barrier.send(());
                }
            }
        }
        Ok(())
    }
}

/// Reopens the database after a failed commit (see `Catalog::heal`); when that fails
/// too (the disk is still full), the health probe tries again every second.
pub async fn heal(catalog: &Arc<Catalog>) {
    let catalog = catalog.clone();
    match tokio::task::spawn_blocking(move || catalog.heal()).await {
        Ok(Ok(())) => tracing::info!("catalog reopened after a failed commit"),
        Ok(Err(e)) => tracing::warn!(error = %e, "catalog not reopened yet; retrying"),
        Err(e) => tracing::warn!(error = %e, "catalog reopen did not run"),
    }
}

/// The catalog for the rest of the program, the one interface the handlers, ingest,
/// delivery and the pool see, over either catalog (`Backend`). Every call that may wait
/// on the catalog is `async`, and which ones wait:
///
/// - point reads (`get`, `authenticate`, `owner_of_file`, `cached_crop`,
///   `presign_to_confirm`, `check`): on redb inline, without a hop; on PostgreSQL one
///   round trip (nothing is cached: another node may have written since);
/// - scans (`list` past its first page, `folders`, `keys`, the maintenance listings): on
///   redb a turn on the blocking pool; on PostgreSQL a query;
/// - writes wait for the actor's next group commit (one transaction on either);
/// - `claims` hands the orphan sweep a judge it asks in batches.
///
/// `job_count` (the durable backlog: a counter kept with every commit on redb, the
/// cluster's count as last read on PostgreSQL) does not wait.
#[derive(Clone)]
pub struct CatalogHandle {
    slot: Slot<CatalogMsg>,
    catalog: Backend,
    /// Scans running at once on the blocking pool (two per core): more would only share
    /// the same cores, each with its own thread and buffers; the rest wait their turn.
    scans: Arc<tokio::sync::Semaphore>,
    /// The subtree this handle's item writes are confined to (see `confined`).
    within: Option<FolderPath>,
}

impl CatalogHandle {
    pub fn new(slot: Slot<CatalogMsg>, catalog: Backend) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            slot,
            catalog,
            scans: Arc::new(tokio::sync::Semaphore::new(2 * cores)),
            within: None,
        }
    }

    /// This handle, its writes to items confined to `within`'s subtree (a key limited to a
    /// folder): an item outside it when the write is applied is `NotFound`.
    pub fn confined(&self, within: Option<&FolderPath>) -> Self {
        Self {
            within: within.cloned(),
            ..self.clone()
        }
    }

    /// A catalog actor of its own, outside the supervisor (tools and the conformance
    /// suite); it runs until the returned reference is stopped.
    pub async fn spawn(catalog: Backend) -> Result<(Self, ActorRef<CatalogMsg>), ractor::SpawnErr> {
        let (actor, _) = Actor::spawn(None, CatalogActor, catalog.clone()).await?;
        let slot = Slot::empty();
        slot.set(Some(actor.clone()));
        Ok((Self::new(slot, catalog), actor))
    }

    async fn write(&self, write: Write) -> Result<Outcome, CatalogError> {
        let write = match &self.within {
            Some(folder) if write.item().is_some() => Write::Within {
                folder: folder.clone(),
                write: Box::new(write),
            },
            _ => write,
        };
        rpc(&self.slot, |reply| CatalogMsg::Write(write, reply))
            .await
            .unwrap_or(Err(CatalogError::Unavailable))
    }

    /// A scan of the redb catalog on the blocking pool.
    async fn scan<T: Send + 'static>(
        &self,
        catalog: &Arc<Catalog>,
        f: impl FnOnce(&Catalog) -> Result<T, CatalogError> + Send + 'static,
    ) -> Result<T, CatalogError> {
        let catalog = catalog.clone();
        let permit = self.scans.clone().acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(&catalog)
        })
        .await
        .map_err(|_| CatalogError::Unavailable)?
    }

    /// Returns once every write sent before this call is committed or failed, so a read
    /// after it sees their outcome.
    pub async fn barrier(&self) -> Result<(), CatalogError> {
        rpc(&self.slot, CatalogMsg::Barrier)
            .await
            .ok_or(CatalogError::Unavailable)
    }

    /// Tries to reopen a catalog whose last commit failed (the health probe calls this).
    pub async fn heal(&self) {
        if let Backend::Redb(catalog) = &self.catalog
            && !catalog.writable()
        {
            heal(catalog).await;
        }
    }

    /// Makes the disk reserve again if a full disk made the catalog release it (the
    /// health probe calls this while the disk has room).
    pub async fn restore_reserve(&self) {
        let Backend::Redb(catalog) = &self.catalog else {
            return;
        };
        if catalog.reserve_held() {
            return;
        }
        let catalog = catalog.clone();
        let _ = tokio::task::spawn_blocking(move || catalog.restore_reserve()).await;
    }

    /// Ready when the actor runs, the database answers a read and (redb) its last
    /// commit succeeded.
    pub async fn check(&self) -> Result<(), CatalogError> {
        self.slot.get().ok_or(CatalogError::Unavailable)?;
        match &self.catalog {
            Backend::Redb(catalog) if !catalog.writable() => Err(CatalogError::Unavailable),
            Backend::Redb(catalog) => catalog.get("").map(drop),
            Backend::Postgres(catalog) => catalog.check().await,
        }
    }

    /// Test-only fault injection.
    pub fn crash(&self) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(CatalogMsg::Crash);
        }
    }

    /// An item's record (redb: a point read inline, from the record cache when it can).
    pub async fn get(&self, id: &str) -> Result<Option<MediaRecord>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.get(id),
            Backend::Postgres(catalog) => catalog.get(id).await,
        }
    }

    /// The key `key` if it is one, checked in constant time.
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiKeyRecord>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.authenticate(key),
            Backend::Postgres(catalog) => catalog.authenticate(key).await,
        }
    }

    /// Makes a key and stores it: its plaintext (shown once, kept nowhere) and record.
    pub async fn create_key(
        &self,
        scope: Scope,
        name: &str,
        folder: Option<FolderPath>,
    ) -> Result<(String, ApiKeyRecord), CatalogError> {
        loop {
            let (plaintext, mut record) = keys::generate(scope, name);
            record.folder = folder.clone();
            match self.write(Write::PutKey(record.clone())).await {
                Err(CatalogError::IdTaken) => continue, // a new id: another draw
                other => return other.map(|_| (plaintext, record)),
            }
        }
    }

    /// Every key, oldest first (their records: secrets are never stored).
    pub async fn keys(&self) -> Result<Vec<ApiKeyRecord>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => self.scan(catalog, Catalog::list_keys).await,
            Backend::Postgres(catalog) => catalog.list_keys().await,
        }
    }

    /// Revokes a key at once (`NotFound`, or `LastAdminKey`: see `Write::RevokeKey`).
    pub async fn revoke_key(&self, id: String) -> Result<(), CatalogError> {
        self.write(Write::RevokeKey { id }).await.map(drop)
    }

    /// The item whose record names the stored file `storage_key`, if any.
    pub async fn owner_of_file(&self, storage_key: &str) -> Result<Option<String>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.owner_of_file(storage_key),
            Backend::Postgres(catalog) => catalog.owner_of_file(storage_key).await,
        }
    }

    /// Short listings run inline (a hop to the blocking pool and back costs more than
    /// they do); searches and deep pages go to the blocking pool. A query past the bounds
    /// (`ListQuery::check`) is refused before any work.
    pub async fn list(&self, query: ListQuery) -> Result<Page, CatalogError> {
        query.check()?;
        match &self.catalog {
            Backend::Redb(catalog) if query.is_short() => catalog.list(&query),
            Backend::Redb(catalog) => self.scan(catalog, move |c| c.list(&query)).await,
            Backend::Postgres(catalog) => catalog.list(&query).await,
        }
    }

    pub async fn folders(&self) -> Result<Vec<String>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => match catalog.cached_folders() {
                Some(folders) => Ok(folders),
                None => self.scan(catalog, Catalog::folders).await,
            },
            Backend::Postgres(catalog) => catalog.folders().await,
        }
    }

    pub async fn insert_media(&self, records: Vec<MediaRecord>) -> Result<(), CatalogError> {
        self.write(Write::InsertMedia(records)).await.map(drop)
    }

    /// A metadata patch; `recrop` when crop presets are configured (see `Write`).
    pub async fn update_media(
        &self,
        id: String,
        patch: MediaPatch,
        recrop: bool,
    ) -> Result<Changed, CatalogError> {
        let write = Write::UpdateMedia { id, patch, recrop };
        changed(self.write(write).await?)
    }

    /// Records an on-demand crop written (see `Write::CacheCrop`).
    pub async fn cache_crop(&self, crop: CacheCrop) -> Result<CropCached, CatalogError> {
        match self.write(Write::CacheCrop(crop)).await? {
            Outcome::Crop(c) => Ok(c),
            _ => Err(unexpected()),
        }
    }

    /// Marks a cached on-demand crop used now.
    pub async fn touch_crop(&self, id: String, key: String) -> Result<(), CatalogError> {
        let now_us = crate::model::now_us();
        self.write(Write::TouchCrop { id, key, now_us })
            .await
            .map(drop)
    }

    /// The cached on-demand crop whose key starts with `prefix`: its key and last use.
    pub async fn cached_crop(
        &self,
        id: &str,
        prefix: &str,
    ) -> Result<Option<(String, u64)>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.cached_crop(id, prefix),
            Backend::Postgres(catalog) => catalog.cached_crop(id, prefix).await,
        }
    }

    /// The item with a new file (see `Write::ReplaceFile`).
    pub async fn replace_file(&self, file: MediaRecord) -> Result<Changed, CatalogError> {
        changed(self.write(Write::ReplaceFile(Box::new(file))).await?)
    }

    /// Moves item `id` to `visibility`, its files already copied to the new keys of
    /// `moved` (see `Write::Move`); the old ones are on the delete queue.
    pub async fn move_files(
        &self,
        id: String,
        visibility: Visibility,
        moved: Vec<(String, String)>,
    ) -> Result<Changed, CatalogError> {
        let write = Write::Move {
            id,
            visibility,
            moved,
        };
        changed(self.write(write).await?)
    }

    /// Deletes an item; returns the keys of every file it had (already on the delete
    /// queue: the caller drains them at once).
    pub async fn delete_media(&self, id: String) -> Result<Vec<String>, CatalogError> {
        match self.write(Write::DeleteMedia { id }).await? {
            Outcome::Deleted { queued } => Ok(queued),
            _ => Err(unexpected()),
        }
    }

    // ---- webhooks -------------------------------------------------------------------

    pub async fn webhooks(&self) -> Result<Vec<WebhookRecord>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => self.scan(catalog, Catalog::webhooks).await,
            Backend::Postgres(catalog) => catalog.webhooks().await,
        }
    }

    /// The first `limit` events waiting for webhook `id` after its entry `after` (0: from
    /// the head), in order. On PostgreSQL from the head whatever `after` says (an entry
    /// numbered earlier may commit later): callers merge what they get by `seq`.
    pub async fn queued(
        &self,
        id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Queued>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => {
                let id = id.to_owned();
                self.scan(catalog, move |c| c.queued(&id, after, limit))
                    .await
            }
            Backend::Postgres(catalog) => catalog.queued(id, after, limit).await,
        }
    }

    /// How many events wait for each webhook, and since when.
    pub async fn backlogs(&self) -> Result<Vec<Backlog>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => self.scan(catalog, Catalog::backlogs).await,
            Backend::Postgres(catalog) => catalog.backlogs().await,
        }
    }

    /// Webhook `id`'s last `limit` delivery attempts, newest first.
    pub async fn attempts(&self, id: &str, limit: usize) -> Result<Vec<Attempt>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => {
                let id = id.to_owned();
                self.scan(catalog, move |c| c.attempts(&id, limit)).await
            }
            Backend::Postgres(catalog) => catalog.attempts(id, limit).await,
        }
    }

    /// A webhook write (see `WebhookWrite`).
    pub async fn webhook_write(&self, write: WebhookWrite) -> Result<Outcome, CatalogError> {
        self.write(Write::Webhooks(write)).await
    }

    /// Resolves after a commit of this node that put events in an outbox (at once if one
    /// happened since the last call).
    pub async fn outbox_filled(&self) {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.outbox_filled().notified().await,
            Backend::Postgres(catalog) => catalog.outbox_filled().notified().await,
        }
    }

    /// True when the folder was new.
    pub async fn create_folder(&self, path: FolderPath) -> Result<bool, CatalogError> {
        Ok(self.write(Write::CreateFolder(path)).await? == Outcome::FolderCreated)
    }

    pub async fn delete_folder(&self, path: FolderPath) -> Result<(), CatalogError> {
        self.write(Write::DeleteFolder(path)).await.map(drop)
    }

    /// Queues files for deletion that no record names (see `Write::QueueDeletes`).
    pub async fn queue_deletes(&self, keys: Vec<String>) -> Result<(), CatalogError> {
        self.write(Write::QueueDeletes(keys)).await.map(drop)
    }

    pub async fn forget_deletes(&self, keys: Vec<String>) -> Result<(), CatalogError> {
        self.write(Write::ForgetDeletes(keys)).await.map(drop)
    }

    pub async fn record_presign(
        &self,
        key: String,
        presign: PresignRecord,
    ) -> Result<(), CatalogError> {
        self.write(Write::RecordPresign { key, presign })
            .await
            .map(drop)
    }

    /// Takes presign `key` for the confirm `token` for `lease` (see `Write::BeginConfirm`).
    pub async fn begin_confirm(
        &self,
        key: String,
        token: String,
        lease: std::time::Duration,
    ) -> Result<(), CatalogError> {
        let now_us = now_us();
        let until_us = now_us.saturating_add(lease.as_micros() as u64);
        let write = Write::BeginConfirm {
            key,
            token,
            now_us,
            until_us,
        };
        self.write(write).await.map(drop)
    }

    /// Gives presign `key` back from the confirm `token` (see `Write::EndConfirm`).
    pub async fn end_confirm(&self, key: String, token: String) -> Result<(), CatalogError> {
        self.write(Write::EndConfirm { key, token }).await.map(drop)
    }

    /// Creates the item of a confirmed presign (see `Write::ConfirmPresign`).
    pub async fn confirm_presign(
        &self,
        record: MediaRecord,
        token: String,
    ) -> Result<(), CatalogError> {
        let now_us = now_us();
        let record = Box::new(record);
        self.write(Write::ConfirmPresign {
            record,
            token,
            now_us,
        })
        .await
        .map(drop)
    }

    pub async fn forget_presigns(&self, keys: Vec<String>) -> Result<(), CatalogError> {
        self.write(Write::ForgetPresigns(keys)).await.map(drop)
    }

    /// The presign of `key` if it may be confirmed now (see `Catalog::presign_to_confirm`).
    pub async fn presign_to_confirm(&self, key: &str) -> Result<PresignRecord, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.presign_to_confirm(key, now_us()),
            Backend::Postgres(catalog) => catalog.presign_to_confirm(key, now_us()).await,
        }
    }

    pub async fn expired_presigns(
        &self,
        now_us: u64,
    ) -> Result<Vec<(String, PresignRecord)>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => {
                self.scan(catalog, move |c| c.expired_presigns(now_us))
                    .await
            }
            Backend::Postgres(catalog) => catalog.expired_presigns(now_us).await,
        }
    }

    /// Unfinished processing jobs (the durable backlog; the cluster's on PostgreSQL).
    pub fn job_count(&self) -> u64 {
        match &self.catalog {
            Backend::Redb(catalog) => catalog.job_count(),
            Backend::Postgres(catalog) => catalog.job_count(),
        }
    }

    /// Records a job's result for the original `source` it processed.
    pub async fn finish_job(
        &self,
        id: String,
        result: JobResult,
        source: String,
    ) -> Result<JobOutcome, CatalogError> {
        match self.write(Write::FinishJob { id, result, source }).await? {
            Outcome::Job(o) => Ok(o),
            _ => Err(unexpected()),
        }
    }

    /// Counts a start of the job, claiming it for this node (see `Write::StartJob`).
    pub async fn start_job(&self, id: String, max_attempts: u32) -> Result<JobStart, CatalogError> {
        Ok(
            match self.write(Write::StartJob { id, max_attempts }).await? {
                Outcome::JobStarted => JobStart::Run,
                Outcome::JobElsewhere => JobStart::Elsewhere,
                _ => JobStart::Skip,
            },
        )
    }

    /// Gives back a job's attempt (it met an outage, it did not crash).
    pub async fn release_job(&self, id: String) -> Result<(), CatalogError> {
        self.write(Write::ReleaseJob { id }).await.map(drop)
    }

    /// Whether this node is the whole cluster (redb): what it does not hold in flight is
    /// nobody's.
    pub fn is_single_node(&self) -> bool {
        matches!(self.catalog, Backend::Redb(_))
    }

    /// Whether this node runs cluster task `task` now (for `hold`, renewed at each of its
    /// rounds): on PostgreSQL one node at a time does, on redb the one node always does.
    /// A catalog that cannot say answers no (the round is skipped).
    pub async fn take_turn(&self, task: &str, hold: std::time::Duration) -> bool {
        match &self.catalog {
            Backend::Redb(_) => true,
            Backend::Postgres(catalog) => catalog.take_turn(task, hold).await.unwrap_or(false),
        }
    }

    /// Holds `name` against every other node until the guard drops, waiting for it up to
    /// `hold` (PostgreSQL: a crop made on demand is made once across the cluster); on
    /// redb, where this node is the cluster, nothing to hold.
    pub async fn exclusive(
        &self,
        name: &str,
        hold: std::time::Duration,
    ) -> Option<crate::catalog::pg::Exclusive> {
        match &self.catalog {
            Backend::Redb(_) => None,
            Backend::Postgres(catalog) => catalog.exclusive(name, hold).await,
        }
    }

    /// Hands back this node's job leases and task turns (a graceful stop; PostgreSQL).
    pub async fn let_go(&self) {
        if let Backend::Postgres(catalog) = &self.catalog
            && let Err(e) = catalog.let_go().await
        {
            tracing::warn!(error = %e, "job leases not handed back; they run out by themselves");
        }
    }

    /// Calls `heard` with each job any node ends or announces (PostgreSQL: `?wait=true`
    /// requests wait here for jobs other nodes run; on redb every job runs here and
    /// nothing is started).
    pub fn on_jobs(
        &self,
        heard: impl Fn(JobEvent) + Send + Sync + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match &self.catalog {
            Backend::Redb(_) => None,
            Backend::Postgres(catalog) => Some(catalog.on_jobs(heard)),
        }
    }

    /// Hands committed jobs this node will not run to the nodes that do (PostgreSQL; a
    /// lost announcement is found by their next rescan).
    pub async fn announce(&self, ids: &[String]) {
        if let Backend::Postgres(catalog) = &self.catalog
            && let Err(e) = catalog.announce(ids).await
        {
            tracing::warn!(error = %e, "new jobs not announced; other nodes find them by rescan");
        }
    }

    /// Jobs this node may run (on PostgreSQL, those no live node holds).
    pub async fn unfinished_jobs(&self) -> Result<Vec<String>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => self.scan(catalog, Catalog::unfinished_jobs).await,
            Backend::Postgres(catalog) => catalog.unfinished_jobs().await,
        }
    }

    /// Files queued for deletion and not yet gone.
    pub async fn pending_deletes(&self) -> Result<Vec<String>, CatalogError> {
        match &self.catalog {
            Backend::Redb(catalog) => self.scan(catalog, Catalog::pending_deletes).await,
            Backend::Postgres(catalog) => catalog.pending_deletes().await,
        }
    }

    /// The orphan sweep's judge (see `Catalog::claims_file`): of a batch of stored files,
    /// those the catalog still wants, read on the blocking pool. A file it cannot decide
    /// on (a read error) is kept.
    pub fn claims(&self) -> Claims {
        let handle = self.clone();
        Arc::new(move |keys: Vec<String>| {
            let handle = handle.clone();
            Box::pin(async move { handle.claimed(keys).await })
        })
    }

    async fn claimed(&self, keys: Vec<String>) -> HashSet<String> {
        let all = keys.clone();
        let judged = match &self.catalog {
            Backend::Redb(catalog) => {
                self.scan(catalog, move |c| {
                    let claimed = keys
                        .into_iter()
                        .filter(|k| c.claims_file(k).unwrap_or(true));
                    Ok(claimed.collect::<HashSet<String>>())
                })
                .await
            }
            Backend::Postgres(catalog) => catalog.claimed(keys).await,
        };
        judged.unwrap_or_else(|_| all.into_iter().collect())
    }
}

/// Whether a job should run here (see `CatalogHandle::start_job`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStart {
    /// Claimed: run it.
    Run,
    /// Finished, gone, or out of attempts (then recorded failed).
    Skip,
    /// Another node runs it now; it tells `?wait=true` requests when it is done.
    Elsewhere,
}

fn unexpected() -> CatalogError {
    CatalogError::Corrupt("unexpected write outcome".into())
}

fn changed(outcome: Outcome) -> Result<Changed, CatalogError> {
    match outcome {
        Outcome::Media { record, queued } => Ok(Changed {
            record: *record,
            queued,
        }),
        _ => Err(unexpected()),
    }
}
