//! StorageActor: owns the backend and dispatches file operations. Each operation runs
//! on its own task, so one slow fsync never holds up the others; the actor only routes.
//! Deletes go through the catalog's durable queue: the catalog queued them with the
//! record's removal, this actor removes the files and then clears them from the queue.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::catalog::CatalogHandle;
use super::{Slot, rpc};
use crate::metrics::{self as m, Timer};
use crate::storage::{ObjectInfo, Sink, Storage, StorageError, StoredFile};

type Result<T> = std::result::Result<T, StorageError>;

pub struct StorageActor;

/// Immutable for the actor's life: the backend and where to report finished deletes.
#[derive(Clone)]
pub struct StorageArgs {
    pub storage: Arc<Storage>,
    pub catalog: CatalogHandle,
}

pub enum StorageMsg {
    /// A new temp file for an incoming upload.
    Begin(RpcReplyPort<Result<Sink>>),
    /// Make a spooled upload durable under a key, with its content type.
    Commit(Box<Sink>, String, &'static str, RpcReplyPort<Result<u64>>),
    /// Store generated files (variants) durably.
    Put(Vec<(String, Vec<u8>)>, RpcReplyPort<Result<()>>),
    /// Read a stored file whole (processing input).
    Read(String, RpcReplyPort<Result<Option<Vec<u8>>>>),
    /// Open a stored file for serving.
    Open(String, RpcReplyPort<Result<Option<StoredFile>>>),
    /// Remove files queued for deletion in the catalog (fire and forget).
    Delete(Vec<String>),
    /// Sign a PUT URL for a presigned upload.
    Presign(String, &'static str, Duration, RpcReplyPort<Result<String>>),
    /// HEAD an object a client uploaded.
    Head(String, RpcReplyPort<Result<Option<ObjectInfo>>>),
    /// Copy an object a client uploaded into a temp file.
    Fetch(String, RpcReplyPort<Result<Option<Sink>>>),
    /// Is the backend reachable?
    Check(RpcReplyPort<Result<()>>),
    /// Test-only fault injection: fail, so the supervisor restarts this actor.
    Crash,
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
            StorageMsg::Begin(reply) => {
                tokio::spawn(
                    async move { reply.send(timed(&storage, "begin", storage.begin()).await) },
                );
            }
            StorageMsg::Commit(sink, key, mime, reply) => {
                tokio::spawn(async move {
                    let commit = storage.commit(*sink, &key, mime);
                    reply.send(timed(&storage, "commit", commit).await)
                });
            }
            StorageMsg::Put(files, reply) => {
                tokio::spawn(async move {
                    reply.send(timed(&storage, "put", storage.put_all(files)).await)
                });
            }
            StorageMsg::Read(key, reply) => {
                tokio::spawn(async move {
                    reply.send(timed(&storage, "read", storage.read(&key)).await)
                });
            }
            StorageMsg::Presign(key, mime, expires, reply) => {
                tokio::spawn(async move {
                    let sign = storage.presign_put(&key, mime, expires);
                    reply.send(timed(&storage, "presign", sign).await)
                });
            }
            StorageMsg::Head(key, reply) => {
                tokio::spawn(async move {
                    reply.send(timed(&storage, "head", storage.head(&key)).await)
                });
            }
            StorageMsg::Fetch(key, reply) => {
                tokio::spawn(async move {
                    reply.send(timed(&storage, "fetch", storage.fetch(&key)).await)
                });
            }
            StorageMsg::Open(key, reply) => {
                tokio::spawn(async move {
                    reply.send(timed(&storage, "open", storage.open(&key)).await)
                });
            }
            StorageMsg::Check(reply) => {
                tokio::spawn(
                    async move { reply.send(timed(&storage, "check", storage.check()).await) },
                );
            }
            StorageMsg::Crash => return Err("injected fault".into()),
            StorageMsg::Delete(keys) => {
                let catalog = state.catalog.clone();
                tokio::spawn(delete_files(storage, catalog, keys));
            }
        }
        Ok(())
    }
}

/// Removes each file, then clears the ones that are gone from the durable queue; a file
/// that could not be removed stays queued and is retried at the next start.
pub async fn delete_files(storage: Arc<Storage>, catalog: CatalogHandle, keys: Vec<String>) {
    let mut done = Vec::with_capacity(keys.len());
    for key in keys {
        match timed(&storage, "delete", storage.delete(&key)).await {
            Ok(()) => done.push(key),
            Err(e) => tracing::warn!(%key, error = %e, "file delete failed; stays queued"),
        }
    }
    if done.is_empty() {
        return;
    }
    if let Err(e) = catalog.forget_deletes(done).await {
        tracing::warn!(error = %e, "could not clear finished deletes; retried at next start");
    }
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
}

impl StorageHandle {
    pub fn new(slot: Slot<StorageMsg>) -> Self {
        Self { slot }
    }

    /// One request to the actor; an actor that is down or restarting is `Unavailable`.
    async fn call<T: Send + 'static>(
        &self,
        build: impl FnOnce(RpcReplyPort<Result<T>>) -> StorageMsg,
    ) -> Result<T> {
        rpc(&self.slot, build)
            .await
            .unwrap_or(Err(StorageError::Unavailable))
    }

    pub async fn begin(&self) -> Result<Sink> {
        self.call(StorageMsg::Begin).await
    }

    /// Stores the upload under `key`; returns the stored size.
    pub async fn commit(&self, sink: Sink, key: String, mime: &'static str) -> Result<u64> {
        self.call(|r| StorageMsg::Commit(Box::new(sink), key, mime, r))
            .await
    }

    pub async fn put_all(&self, files: Vec<(String, Vec<u8>)>) -> Result<()> {
        self.call(|r| StorageMsg::Put(files, r)).await
    }

    pub async fn read(&self, key: String) -> Result<Option<Vec<u8>>> {
        self.call(|r| StorageMsg::Read(key, r)).await
    }

    pub async fn open(&self, key: String) -> Result<Option<StoredFile>> {
        self.call(|r| StorageMsg::Open(key, r)).await
    }

    pub async fn presign_put(
        &self,
        key: String,
        mime: &'static str,
        expires: Duration,
    ) -> Result<String> {
        self.call(|r| StorageMsg::Presign(key, mime, expires, r))
            .await
    }

    pub async fn head(&self, key: String) -> Result<Option<ObjectInfo>> {
        self.call(|r| StorageMsg::Head(key, r)).await
    }

    pub async fn fetch(&self, key: String) -> Result<Option<Sink>> {
        self.call(|r| StorageMsg::Fetch(key, r)).await
    }

    /// Ready when the actor runs and the backend answers.
    pub async fn check(&self) -> Result<()> {
        self.call(StorageMsg::Check).await
    }

    /// Test-only fault injection.
    pub fn crash(&self) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(StorageMsg::Crash);
        }
    }

    /// Queues removal of files the catalog already put on its delete queue.
    pub fn delete(&self, keys: Vec<String>) {
        if let Some(actor) = self.slot.get() {
            let _ = actor.cast(StorageMsg::Delete(keys));
        }
    }
}
