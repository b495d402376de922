//! Actor glue (ractor): message enums, handles and lifecycles. The logic they run lives
//! in `catalog/`, `storage/` and `media/`. `start` brings up the supervisor and its three
//! children and hands back their `Handles`; handles are cheap to clone and look their
//! actor up through a `Slot`, which the supervisor refills after a restart.

pub mod catalog;
pub mod processing;
pub mod storage;
pub mod supervisor;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef, Message, RpcReplyPort};

use crate::catalog::{Backend, JobEvent};
use crate::config::Config;
use crate::storage::Storage;
use catalog::CatalogHandle;
use processing::{
    Admission, Budget, ProcessingArgs, ProcessingHandle, ProcessingMsg, Waiters, build_pool,
};
use storage::{StorageArgs, StorageHandle};
use supervisor::{Supervisor, SupervisorArgs, SupervisorMsg};

#[derive(Debug, thiserror::Error)]
#[error("cannot start the actors: {0}")]
pub struct StartError(String);

/// The running actors, and the handles the rest of the program reaches them by.
pub struct Handles {
    pub catalog: CatalogHandle,
    pub storage: StorageHandle,
    pub processing: ProcessingHandle,
    supervisor: ActorRef<SupervisorMsg>,
    stopped: JoinHandle<()>,
    /// Hears the cluster's jobs (a PostgreSQL catalog; see `start`).
    jobs_heard: Option<tokio::task::JoinHandle<()>>,
}

/// Starts the supervisor with the catalog, storage and processing actors under it;
/// `storage_up` is the health probe's verdict on storage (see `Health::storage_up`).
pub async fn start(
    catalog: Backend,
    storage: Arc<Storage>,
    config: &Config,
    storage_up: tokio::sync::watch::Receiver<bool>,
) -> Result<Handles, StartError> {
    let (catalog_slot, storage_slot, processing_slot) =
        (Slot::empty(), Slot::empty(), Slot::empty());
    let catalog_handle = CatalogHandle::new(catalog_slot.clone(), catalog.clone());
    let storage_handle = StorageHandle::new(
        storage_slot.clone(),
        storage.in_flight(),
        storage_up.clone(),
    );
    let waiters = Waiters::default();
    let p = &config.processing;
    // The cluster's jobs (PostgreSQL): ends wake `?wait=true` here wherever the job ran;
    // jobs of nodes that run none are taken here at once (else at the next rescan).
    let jobs_heard = catalog_handle.on_jobs({
        let (waiters, processing, run_jobs) =
            (waiters.clone(), processing_slot.clone(), p.run_jobs);
        move |event| match event {
            JobEvent::Done(id) => waiters.notify(&id),
            JobEvent::Queued(id) if run_jobs => {
                if let Some(actor) = processing.get() {
                    let _ = actor.cast(ProcessingMsg::Enqueue(vec![id]));
                }
            }
            JobEvent::Queued(_) => {}
        }
    });
    let threads = p.thread_count();
    let previews = config.previews();
    previews.log();
    let processing = ProcessingArgs {
        catalog: catalog_handle.clone(),
        storage: storage_handle.clone(),
        pool: Arc::new(build_pool(threads).map_err(|e| StartError(e.to_string()))?),
        settings: config.image_settings(),
        max_in_flight: threads * 2,
        run_jobs: p.run_jobs,
        max_attempts: p.max_attempts,
        waiters: waiters.clone(),
        presets: config.delivery.presets.clone(),
        budget: Budget::new(p.memory_budget_bytes),
        previews: Arc::new(previews),
    };
    let admission = Admission::new(catalog_handle.clone(), p.max_backlog);
    let processing_handle = ProcessingHandle::new(&processing, processing_slot.clone(), admission);
    let args = SupervisorArgs {
        catalog,
        catalog_slot,
        storage: StorageArgs {
            storage,
            catalog: catalog_handle.clone(),
            storage_up,
        },
        storage_slot,
        processing,
        processing_slot: processing_slot.clone(),
    };
    let (supervisor, stopped) = Actor::spawn(None, Supervisor, args)
        .await
        .map_err(|e| StartError(e.to_string()))?;
    Ok(Handles {
        catalog: catalog_handle,
        storage: storage_handle,
        processing: processing_handle,
        supervisor,
        stopped,
        jobs_heard,
    })
}

impl Handles {
    /// Drains the children (queued catalog writes are committed) and stops them.
    pub async fn stop(self) {
        if let Some(task) = &self.jobs_heard {
            task.abort();
        }
        let _ = self
            .supervisor
            .call(SupervisorMsg::Shutdown, Some(Duration::from_secs(15)))
            .await;
        let _ = self.stopped.await;
    }
}

/// The current reference of a restartable actor; empty while it is (re)starting.
pub struct Slot<M>(Arc<RwLock<Option<ActorRef<M>>>>);

impl<M> Clone for Slot<M> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<M: Message> Slot<M> {
    pub fn empty() -> Self {
        Self(Arc::new(RwLock::new(None)))
    }

    pub fn get(&self) -> Option<ActorRef<M>> {
        self.0.read().ok().and_then(|r| r.clone())
    }

    pub fn set(&self, actor: Option<ActorRef<M>>) {
        if let Ok(mut slot) = self.0.write() {
            *slot = actor;
        }
    }
}

/// Sends a request and waits for the reply; `None` when the actor is gone or died
/// before answering (the caller maps that to its `Unavailable` error).
pub async fn rpc<M: Message, R: Send + 'static>(
    slot: &Slot<M>,
    build: impl FnOnce(RpcReplyPort<R>) -> M,
) -> Option<R> {
    match slot.get()?.call(build, None).await {
        Ok(CallResult::Success(reply)) => Some(reply),
        _ => None,
    }
}
