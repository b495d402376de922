//! StorageActor: owns the backend and dispatches file operations. Each operation runs
//! on its own task, so one slow fsync never holds up the others; the actor only routes.
//!
//! Two kinds of removal: files of deleted items go through the catalog's durable queue
//! (the catalog queued them with the record's removal; this actor removes the files and
//! then clears them from the queue), while files that no record ever named (an upload
//! that failed, an expired presign, variants of an item deleted meanwhile) are discarded.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;

use super::catalog::CatalogHandle;
use super::{Slot, rpc};
use crate::metrics::{self as m, Timer};
use crate::storage::{
    Held, InFlight, LocalFile, ObjectInfo, RangedObject, Sink, Storage, StorageError, StoredFile,
    Sweep, SweepReport,
};

type Result<T> = std::result::Result<T, StorageError>;

pub struct StorageActor;

/// Immutable for the actor's life: the backend, where to report finished deletes, and
/// the health probe's verdict on the backend (see `Health::storage_up`).
#[derive(Clone)]
pub struct StorageArgs {
    pub storage: Arc<Storage>,
    pub catalog: CatalogHandle,
    pub storage_up: watch::Receiver<bool>,
}

pub enum StorageMsg {
    /// An operation whose caller waits for its answer.
    Request(StorageRequest),
    /// Remove files the catalog queued for deletion, then clear them from its queue; the
    /// reply, if asked for, comes when that is done.
    DrainDeletes(Vec<String>, Option<RpcReplyPort<()>>),
    /// Remove files that no record names; the reply, if asked for, lists those removed.
    Discard(Vec<String>, Option<RpcReplyPort<Vec<String>>>),
    /// Test-only fault injection: fail, so the supervisor restarts this actor.
    Crash,
}

/// The operations that answer their caller, each run on its own task and timed.
pub enum StorageRequest {
    /// A new temp file for an incoming upload.
    Begin(RpcReplyPort<Result<Sink>>),
    /// Make a spooled upload durable under a key, with its content type.
    /// The last field: answered only once the write has ended (`Until::End`), or as soon
    /// as the probe says storage is down (`Until::Down`).
    Commit(
        Box<Sink>,
        String,
        &'static str,
        Until,
        RpcReplyPort<Result<u64>>,
    ),
    /// Store generated files (variants) durably.
    Put(Vec<(String, Vec<u8>)>, RpcReplyPort<Result<()>>),
    /// Read a stored file whole (processing input).
    Read(String, RpcReplyPort<Result<Option<Vec<u8>>>>),
    /// Open a stored file for serving.
    Open(String, RpcReplyPort<Result<Option<StoredFile>>>),
    /// Remove temp files and stored files the catalog does not claim (see `Sweep`).
    Sweep(Sweep, RpcReplyPort<Result<SweepReport>>),
    /// Sign a PUT URL for a presigned upload.
    Presign(String, &'static str, Duration, RpcReplyPort<Result<String>>),
    /// HEAD what a client uploaded for a key.
    HeadUpload(String, RpcReplyPort<Result<Option<ObjectInfo>>>),
    /// A stored file in a temp file of its own (a tool's input).
    Fetch(String, RpcReplyPort<Result<Option<LocalFile>>>),
    /// Copy what a client uploaded into a temp file (at most the limit + 1 bytes).
    FetchUpload(String, u64, RpcReplyPort<Result<Option<Sink>>>),
    /// Copy what a client uploaded to the key itself, inside the store.
    PromoteUpload(String, RpcReplyPort<Result<bool>>),
    /// Remove what clients uploaded for these keys; the reply lists those removed.
    DeleteUploads(Vec<String>, RpcReplyPort<Result<Vec<String>>>),
    /// Copy a stored file to another key (how a private item's files move).
    Copy(String, String, RpcReplyPort<Result<bool>>),
    /// Sign GET URLs of private items' files (S3; `None` on local disk).
    PresignGets(
        Vec<String>,
        Duration,
        RpcReplyPort<Result<Option<Vec<String>>>>,
    ),
    /// HEAD a stored object.
    Head(String, RpcReplyPort<Result<Option<ObjectInfo>>>),
    /// A stored object, of a known size, to read in ranges.
    Ranged(String, u64, RpcReplyPort<Result<RangedObject>>),
    /// Is the backend reachable?
    Check(RpcReplyPort<Result<()>>),
}

impl Actor for StorageActor {
    type Msg = StorageMsg;
    type State = StorageArgs;
    type Arguments = StorageArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<StorageMsg>,
        args: StorageArgs,
    ) -> std::result::Result<StorageArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<StorageMsg>,
        msg: StorageMsg,
        state: &mut StorageArgs,
    ) -> std::result::Result<(), ActorProcessingErr> {
        let storage = state.storage.clone();
        match msg {
            StorageMsg::DrainDeletes(keys, reply) => {
                let catalog = state.catalog.clone();
                tokio::spawn(async move {
                    drain_deletes(&storage, &catalog, keys).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                });
            }
            StorageMsg::Discard(keys, reply) => {
                tokio::spawn(async move {
                    let removed = remove_files(&storage, keys).await;
                    if let Some(reply) = reply {
                        let _ = reply.send(removed);
                    }
                });
            }
            StorageMsg::Crash => return Err("injected fault".into()),
            StorageMsg::Request(request) => {
                answer_request(Op::new(storage, state.storage_up.clone()), request)
            }
        }
        Ok(())
    }
}

/// What every request runs with: the backend, and the probe's verdict on it.
struct Op {
    storage: Arc<Storage>,
    up: watch::Receiver<bool>,
}

impl Op {
    fn new(storage: Arc<Storage>, up: watch::Receiver<bool>) -> Self {
        Self { storage, up }
    }
}

/// Starts a request on its own task; its answer goes to its reply port.
fn answer_request(s: Op, msg: StorageRequest) {
    match msg {
        StorageRequest::Begin(r) => answer(r, s, "begin", |s| async move { s.begin().await }),
        StorageRequest::Commit(sink, key, mime, until, r) => {
            let op = move |s: Arc<Storage>| async move { s.commit(*sink, &key, mime).await };
            match until {
                Until::Down => answer(r, s, "commit", op),
                Until::End => answer_at_end(r, s, "commit", op),
            }
        }
        StorageRequest::Put(files, r) => {
            answer(r, s, "put", |s| async move { s.put_all(files).await })
        }
        StorageRequest::Read(key, r) => answer(r, s, "read", |s| async move { s.read(&key).await }),
        StorageRequest::Open(key, r) => answer(r, s, "open", |s| async move { s.open(&key).await }),
        StorageRequest::Head(key, r) => answer(r, s, "head", |s| async move { s.head(&key).await }),
        StorageRequest::HeadUpload(key, r) => {
            answer(r, s, "head", |s| async move { s.head_upload(&key).await })
        }
        StorageRequest::Fetch(key, r) => {
            answer(r, s, "fetch", |s| async move { s.fetch(&key).await })
        }
        StorageRequest::FetchUpload(key, limit, r) => answer(r, s, "fetch", move |s| async move {
            s.fetch_upload(&key, limit).await
        }),
        StorageRequest::PromoteUpload(key, r) => {
            answer_at_end(
                r,
                s,
                "copy",
                |s| async move { s.promote_upload(&key).await },
            )
        }
        StorageRequest::Copy(from, to, r) => {
            answer_at_end(r, s, "copy", |s| async move { s.copy(&from, &to).await })
        }
        // Local signing: it needs no answer from the store, so a probe's "down" does not
        // cut it short.
        StorageRequest::PresignGets(keys, expires, r) => {
            answer_at_end(r, s, "presign", move |s| async move {
                let mut urls = Vec::with_capacity(keys.len());
                for key in keys {
                    match s.presign_get(&key, expires).await? {
                        Some(url) => urls.push(url),
                        None => return Ok(None),
                    }
                }
                Ok(Some(urls))
            })
        }
        StorageRequest::DeleteUploads(keys, r) => answer(r, s, "delete", |s| async move {
            let mut gone = Vec::with_capacity(keys.len());
            for key in keys {
                match s.delete_upload(&key).await {
                    Ok(()) => gone.push(key),
                    Err(e) => tracing::warn!(%key, error = %e, "upload delete failed"),
                }
            }
            Ok(gone)
        }),
        StorageRequest::Ranged(key, len, r) => {
            answer(r, s, "ranged", move |s| async move { s.ranged(&key, len) })
        }
        // The probe's own check must see the store come back: it never gives up early.
        StorageRequest::Check(r) => {
            answer_at_end(r, s, "check", |s| async move { s.check().await })
        }
        StorageRequest::Presign(key, mime, expires, r) => {
            answer(r, s, "presign", move |s| async move {
                s.presign_put(&key, mime, expires).await
            })
        }
        StorageRequest::Sweep(sweep, r) => {
            answer(r, s, "sweep", |s| async move { s.sweep(sweep).await })
        }
    }
}

/// Runs one operation on its own task, timed under `op`, and sends its result to `reply`;
/// should the health probe find the backend not answering meanwhile, the answer is
/// `Down` at once, while the operation itself runs on to its own end (never cut off in the
/// middle of a request or an S3 multipart upload).
fn answer<T, F>(
    reply: RpcReplyPort<Result<T>>,
    Op { storage, up }: Op,
    op: &'static str,
    run: impl FnOnce(Arc<Storage>) -> F + Send + 'static,
) where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let work = tokio::spawn(async move { timed(&storage, op, run(storage.clone())).await });
    tokio::spawn(async move {
        let waited = unless_down(up, async {
            work.await
                .map_err(|e| StorageError::Io(std::io::Error::other(e)))?
        });
        let _ = reply.send(waited.await);
    });
}

/// Runs one operation on its own task, timed under `op`, and answers only once it has
/// ended (bounded by the backend's own deadlines): for writes at a key that a client
/// knows, whose caller must not move on (delete what it wrote, give up its lease) while
/// the write may still land.
fn answer_at_end<T, F>(
    reply: RpcReplyPort<Result<T>>,
    Op { storage, .. }: Op,
    op: &'static str,
    run: impl FnOnce(Arc<Storage>) -> F + Send + 'static,
) where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T>> + Send + 'static,
{
    tokio::spawn(async move {
        let result = timed(&storage, op, run(storage.clone())).await;
        let _ = reply.send(result);
    });
}

/// When a write's answer comes (see `StorageRequest::Commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Its end, or `Down` as soon as the probe says storage does not answer.
    Down,
    /// Its end only.
    End,
}

/// `fut`'s result, or `Down` as soon as the probe says storage does not answer.
pub async fn unless_down<T>(
    mut up: watch::Receiver<bool>,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        result = fut => result,
        // A closed channel (no probe any more) is not a verdict: the branch then drops out.
        Ok(_) = up.wait_for(|up| !*up) => Err(StorageError::Down),
    }
}

/// Removes files of deleted items, then clears those that are gone from the catalog's
/// queue (the others stay queued and are retried at the next start). Each key is judged
/// right before its delete: one an item has claimed again since it was queued (a crop
/// made again under the same key) is kept, and one the catalog cannot judge now (a read
/// error) stays queued.
async fn drain_deletes(storage: &Storage, catalog: &CatalogHandle, keys: Vec<String>) {
    let mut done = Vec::with_capacity(keys.len());
    for key in keys {
        match catalog.owner_of_file(&key).await {
            Ok(Some(_)) => done.push(key), // claimed again: off the queue, file kept
            Ok(None) if remove_file(storage, &key).await => done.push(key),
            Ok(None) => {} // stays queued
            Err(e) => {
                tracing::warn!(%key, error = %e, "delete put off: the catalog did not answer")
            }
        }
    }
    if !done.is_empty()
        && let Err(e) = catalog.forget_deletes(done).await
    {
        tracing::warn!(error = %e, "could not clear finished deletes; retried at next start");
    }
}

/// Removes each file; returns the keys that are gone. A file that could not be removed is
/// logged.
async fn remove_files(storage: &Storage, keys: Vec<String>) -> Vec<String> {
    let mut done = Vec::with_capacity(keys.len());
    for key in keys {
        if remove_file(storage, &key).await {
            done.push(key);
        }
    }
    done
}

async fn remove_file(storage: &Storage, key: &str) -> bool {
    let removed = timed(storage, "delete", storage.delete(key)).await;
    if let Err(e) = &removed {
        tracing::warn!(%key, error = %e, "file delete failed");
    }
    removed.is_ok()
}

/// Runs one storage operation, recording its latency and counting failures.
async fn timed<T>(
    storage: &Storage,
    op: &'static str,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let backend = storage.backend_name();
    let _timer =
        Timer::new(metrics::histogram!(m::STORAGE_DURATION, "backend" => backend, "op" => op));
    let result = fut.await;
    if result.is_err() {
        metrics::counter!(m::STORAGE_ERRORS, "backend" => backend, "op" => op).increment(1);
    }
    result
}

#[derive(Clone)]
pub struct StorageHandle {
    slot: Slot<StorageMsg>,
    in_flight: InFlight,
    up: watch::Receiver<bool>,
}

impl StorageHandle {
    pub fn new(slot: Slot<StorageMsg>, in_flight: InFlight, up: watch::Receiver<bool>) -> Self {
        Self {
            slot,
            in_flight,
            up,
        }
    }

    /// `fut` (work on storage done outside the actor, such as reads in ranges on a
    /// blocking thread), or `Down` as soon as the probe says storage does not answer.
    pub async fn unless_down<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        unless_down(self.up.clone(), fut).await
    }

    /// Keeps the orphan sweep away from a stored file whose record is not committed yet,
    /// until the guard drops.
    pub fn hold(&self, key: String) -> Held {
        self.in_flight.hold(key)
    }

    /// One request to the actor; an actor that is down or restarting is `Unavailable`.
    async fn call<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<Result<T>>) -> StorageRequest,
    ) -> Result<T> {
        rpc(&self.slot, |reply| StorageMsg::Request(build(reply)))
            .await
            .unwrap_or(Err(StorageError::Unavailable))
    }

    pub async fn begin(&self) -> Result<Sink> {
        self.call(StorageRequest::Begin).await
    }

    /// Stores the upload under `key`; returns the stored size.
    pub async fn commit(&self, sink: Sink, key: String, mime: &'static str) -> Result<u64> {
        self.call(|r| StorageRequest::Commit(Box::new(sink), key, mime, Until::Down, r))
            .await
    }

    /// As `commit`, answered only once the write has ended: for a key a client knows
    /// (a confirm's), where a write still running must not outlive its caller's lease.
    pub async fn commit_to_end(&self, sink: Sink, key: String, mime: &'static str) -> Result<u64> {
        self.call(|r| StorageRequest::Commit(Box::new(sink), key, mime, Until::End, r))
            .await
    }

    pub async fn put_all(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.call(|r| StorageRequest::Put(files, r)).await
    }

    pub async fn read(&self, key: String) -> Result<Option<Vec<u8>>> {
        self.call(|r| StorageRequest::Read(key, r)).await
    }

    /// A stored file where a tool can read it (see `Storage::fetch`).
    pub async fn fetch(&self, key: String) -> Result<Option<LocalFile>> {
        self.call(|r| StorageRequest::Fetch(key, r)).await
    }

    pub async fn open(&self, key: String) -> Result<Option<StoredFile>> {
        self.call(|r| StorageRequest::Open(key, r)).await
    }

    pub async fn presign_put(
        &self,
        key: String,
        mime: &'static str,
        expires: Duration,
    ) -> Result<String> {
        self.call(|r| StorageRequest::Presign(key, mime, expires, r))
            .await
    }

    /// The size of a stored object (S3).
    /// Copies the stored file `from` to `to`; answers once the copy has ended (durable, or
    /// failed); `false` when `from` does not exist.
    pub async fn copy(&self, from: String, to: String) -> Result<bool> {
        self.call(|r| StorageRequest::Copy(from, to, r)).await
    }

    /// Presigned GETs of private items' files on S3, in order (`None` on local disk,
    /// where this server signs its own links).
    pub async fn presign_gets(
        &self,
        keys: Vec<String>,
        expires: Duration,
    ) -> Result<Option<Vec<String>>> {
        self.call(|r| StorageRequest::PresignGets(keys, expires, r))
            .await
    }

    pub async fn head(&self, key: String) -> Result<Option<ObjectInfo>> {
        self.call(|r| StorageRequest::Head(key, r)).await
    }

    /// The size of what a client uploaded for `key` with a presigned URL.
    pub async fn head_upload(&self, key: String) -> Result<Option<ObjectInfo>> {
        self.call(|r| StorageRequest::HeadUpload(key, r)).await
    }

    /// What a client uploaded for `key`, in a temp file (at most `limit` + 1 bytes).
    pub async fn fetch_upload(&self, key: String, limit: u64) -> Result<Option<Sink>> {
        self.call(|r| StorageRequest::FetchUpload(key, limit, r))
            .await
    }

    /// Copies what a client uploaded for `key` to `key`; false when nothing was. Answered
    /// once the copy has ended (see `commit_to_end`).
    pub async fn promote_upload(&self, key: String) -> Result<bool> {
        self.call(|r| StorageRequest::PromoteUpload(key, r)).await
    }

    /// Removes what clients uploaded for these keys; returns those removed.
    pub async fn delete_uploads(&self, keys: Vec<String>) -> Result<Vec<String>> {
        self.call(|r| StorageRequest::DeleteUploads(keys, r)).await
    }

    pub async fn ranged(&self, key: String, len: u64) -> Result<RangedObject> {
        self.call(|r| StorageRequest::Ranged(key, len, r)).await
    }

    /// Ready when the actor runs and the backend answers.
    pub async fn check(&self) -> Result<()> {
        self.call(StorageRequest::Check).await
    }

    /// Test-only fault injection.
    pub fn crash(&self) {
        self.cast(StorageMsg::Crash);
    }

    /// Removes the files of deleted items (already on the catalog's delete queue) in the
    /// background, then clears them from the queue.
    pub fn drain_deletes(&self, keys: Vec<String>) {
        if !keys.is_empty() {
            self.cast(StorageMsg::DrainDeletes(keys, None));
        }
    }

    /// As `drain_deletes`, returning when it is done (start-up recovery).
    pub async fn finish_deletes(&self, keys: Vec<String>) -> Result<()> {
        rpc(&self.slot, |r| StorageMsg::DrainDeletes(keys, Some(r)))
            .await
            .ok_or(StorageError::Unavailable)
    }

    /// Removes files that no record names, in the background.
    pub fn discard(&self, keys: Vec<String>) {
        if !keys.is_empty() {
            self.cast(StorageMsg::Discard(keys, None));
        }
    }

    /// As `discard`, returning the keys removed.
    pub async fn discard_now(&self, keys: Vec<String>) -> Result<Vec<String>> {
        rpc(&self.slot, |r| StorageMsg::Discard(keys, Some(r)))
            .await
            .ok_or(StorageError::Unavailable)
    }

    /// Removes temp files and stored files the sweep allows; says what it removed.
    pub async fn sweep(&self, sweep: Sweep) -> Result<SweepReport> {
        self.call(|r| StorageRequest::Sweep(sweep, r)).await
    }

    fn cast(&self, msg: StorageMsg) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(msg);
        }
    }
}
