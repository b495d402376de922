//! The root supervisor: starts the catalog, storage and processing actors linked to it and
//! restarts a child that fails, with a short bounded backoff, publishing the new
//! reference through the child's `Slot` so existing handles keep working. A restart that
//! fails is tried again (the backoff growing to `MAX_BACKOFF`), for as long as it takes:
//! the supervisor itself never gives up, since failures cluster exactly when restarts
//! are needed.

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::Slot;
use super::catalog::{CatalogActor, CatalogMsg};
use super::processing::{ProcessingArgs, ProcessingMsg, ProcessingPool};
use super::storage::{StorageActor, StorageArgs, StorageMsg};
use crate::catalog::Backend;

const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Without a failure for this long, the backoff starts over.
const CALM_AFTER: Duration = Duration::from_secs(60);

pub struct Supervisor;

/// What the children need, kept to restart them.
pub struct SupervisorArgs {
    pub catalog: Backend,
    pub catalog_slot: Slot<CatalogMsg>,
    pub storage: StorageArgs,
    pub storage_slot: Slot<StorageMsg>,
    pub processing: ProcessingArgs,
    pub processing_slot: Slot<ProcessingMsg>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    /// Each child and its running actor (`None` while a restart is pending).
    children: Vec<(Child, Option<ActorCell>)>,
    restarts: u32,
    /// When the last restart was needed.
    last_failure: Option<tokio::time::Instant>,
    stopping: bool,
}

pub enum SupervisorMsg {
    /// Drain the children (finish queued writes) and stop.
    Shutdown(RpcReplyPort<()>),
    /// Start the child at this index again (after a failed restart and its backoff).
    Restart(usize),
}

/// The supervised children.
#[derive(Debug, Clone, Copy)]
enum Child {
    Catalog,
    Storage,
    Processing,
}

impl Child {
    fn name(self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Storage => "storage",
            Self::Processing => "processing",
        }
    }
}

impl SupervisorArgs {
    /// Starts `child` linked to the supervisor and publishes its reference.
    async fn start(
        &self,
        child: Child,
        supervisor: &ActorRef<SupervisorMsg>,
    ) -> Result<ActorCell, ActorProcessingErr> {
        match child {
            Child::Catalog => {
                spawn_into(
                    supervisor,
                    CatalogActor,
                    self.catalog.clone(),
                    &self.catalog_slot,
                )
                .await
            }
            Child::Storage => {
                spawn_into(
                    supervisor,
                    StorageActor,
                    self.storage.clone(),
                    &self.storage_slot,
                )
                .await
            }
            Child::Processing => {
                spawn_into(
                    supervisor,
                    ProcessingPool,
                    self.processing.clone(),
                    &self.processing_slot,
                )
                .await
            }
        }
    }

    /// Empties the child's slot: callers get a clean `Unavailable` until it is back.
    fn clear(&self, child: Child) {
        match child {
            Child::Catalog => self.catalog_slot.set(None),
            Child::Storage => self.storage_slot.set(None),
            Child::Processing => self.processing_slot.set(None),
        }
    }
}

async fn spawn_into<A: Actor>(
    supervisor: &ActorRef<SupervisorMsg>,
    actor: A,
    args: A::Arguments,
    slot: &Slot<A::Msg>,
) -> Result<ActorCell, ActorProcessingErr> {
    let (started, _) = Actor::spawn_linked(None, actor, args, supervisor.get_cell()).await?;
    slot.set(Some(started.clone()));
    Ok(started.get_cell())
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut children = Vec::new();
        for child in [Child::Catalog, Child::Storage, Child::Processing] {
            children.push((child, Some(args.start(child, &myself).await?)));
        }
        Ok(SupervisorState {
            args,
            children,
            restarts: 0,
            last_failure: None,
            stopping: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Shutdown(reply) => {
                state.stopping = true;
                myself
                    .drain_children_and_wait(Some(Duration::from_secs(10)))
                    .await;
                for (child, _) in &state.children {
                    state.args.clear(*child);
                }
                let _ = reply.send(());
                myself.stop(None);
            }
            SupervisorMsg::Restart(index) if !state.stopping => {
                state.restart(&myself, index).await;
            }
            SupervisorMsg::Restart(_) => {}
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, why) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let found = state
            .children
            .iter()
            .position(|(_, c)| c.as_ref().is_some_and(|c| c.get_id() == cell.get_id()));
        let Some(index) = found.filter(|_| !state.stopping) else {
            return Ok(());
        };
        let child = state.children[index].0;
        tracing::error!(?child, reason = %why, "actor died; restarting");
        metrics::counter!(crate::metrics::ACTOR_RESTARTS, "actor" => child.name()).increment(1);
        state.args.clear(child);
        state.children[index].1 = None;
        // After the backoff, by a message to itself: the supervisor keeps answering (its
        // other children's failures, a shutdown) meanwhile.
        let wait = state.backoff();
        myself.send_after(wait, move || SupervisorMsg::Restart(index));
        Ok(())
    }
}

impl SupervisorState {
    /// The wait before the next restart: 10 ms doubling with every restart in a row, at
    /// most `MAX_BACKOFF`; a failure a minute after the last starts again at 10 ms.
    fn backoff(&mut self) -> Duration {
        let now = tokio::time::Instant::now();
        if self
            .last_failure
            .is_some_and(|at| now.duration_since(at) > CALM_AFTER)
        {
            self.restarts = 0;
        }
        self.last_failure = Some(now);
        let wait = Duration::from_millis(10u64 << self.restarts.min(8)).min(MAX_BACKOFF);
        self.restarts += 1;
        wait
    }

    /// Starts child `index`; should that fail, tries again after the backoff (a message
    /// to itself, so the supervisor keeps answering meanwhile).
    async fn restart(&mut self, myself: &ActorRef<SupervisorMsg>, index: usize) {
        let child = self.children[index].0;
        match self.args.start(child, myself).await {
            Ok(cell) => self.children[index].1 = Some(cell),
            Err(e) => {
                let wait = self.backoff();
                tracing::error!(?child, error = %e, ?wait, "restart failed; trying again");
                myself.send_after(wait, move || SupervisorMsg::Restart(index));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::actors::catalog::CatalogHandle;
    use crate::actors::processing::{ProcessingArgs, Waiters, build_pool};
    use crate::actors::storage::{StorageHandle, StorageRequest};
    use crate::catalog::Catalog;
    use crate::model::{FolderPath, MediaRecord, MediaType, Processing, Status};
    use crate::storage::{LocalStorage, Storage};

    async fn wait_for_new<M: ractor::Message>(slot: &Slot<M>, old: ractor::ActorId) -> ActorRef<M> {
        for _ in 0..200 {
            if let Some(actor) = slot.get().filter(|a| a.get_id() != old) {
                return actor;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the actor was not restarted");
    }

    /// A supervisor over a catalog and local storage in `dir`, and what reaches them.
    struct Supervised {
        catalog: Arc<Catalog>,
        handle: CatalogHandle,
        storage: StorageHandle,
        catalog_slot: Slot<CatalogMsg>,
        storage_slot: Slot<StorageMsg>,
        processing_slot: Slot<ProcessingMsg>,
        supervisor: ActorRef<SupervisorMsg>,
        done: ractor::concurrency::JoinHandle<()>,
    }

    async fn supervised(dir: &std::path::Path) -> Supervised {
        let catalog = Arc::new(Catalog::open(&dir.join("c.redb")).expect("catalog"));
        let storage = Arc::new(Storage::Local(LocalStorage::new(dir).expect("storage")));
        let in_flight = storage.in_flight();
        let (_up, storage_up) = tokio::sync::watch::channel(true);
        let (catalog_slot, storage_slot, processing_slot) =
            (Slot::empty(), Slot::empty(), Slot::empty());
        let handle = CatalogHandle::new(catalog_slot.clone(), Backend::Redb(catalog.clone()));
        let storage_handle =
            StorageHandle::new(storage_slot.clone(), in_flight, storage_up.clone());
        let args = SupervisorArgs {
            catalog: Backend::Redb(catalog.clone()),
            catalog_slot: catalog_slot.clone(),
            storage: StorageArgs {
                storage,
                catalog: handle.clone(),
                storage_up,
            },
            storage_slot: storage_slot.clone(),
            processing: ProcessingArgs {
                catalog: handle.clone(),
                storage: storage_handle.clone(),
                pool: Arc::new(build_pool(1).expect("pool")),
                settings: Default::default(),
                max_in_flight: 1,
                run_jobs: true,
                max_attempts: 3,
                waiters: Waiters::default(),
                presets: Default::default(),
                budget: crate::actors::processing::Budget::new(1 << 30),
                previews: Default::default(),
            },
            processing_slot: processing_slot.clone(),
        };
        let (supervisor, done) = Actor::spawn(None, Supervisor, args).await.expect("spawn");
        Supervised {
            catalog,
            handle,
            storage: storage_handle,
            catalog_slot,
            storage_slot,
            processing_slot,
            supervisor,
            done,
        }
    }

    impl Supervised {
        async fn shut_down(self) {
            self.supervisor
                .call(SupervisorMsg::Shutdown, None)
                .await
                .expect("shutdown");
            self.done.await.expect("stopped");
            assert!(self.catalog_slot.get().is_none() && self.storage_slot.get().is_none());
        }
    }

    #[tokio::test]
    async fn failed_children_are_restarted_and_handles_keep_working() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = supervised(dir.path()).await;

        let first = s.catalog_slot.get().expect("catalog started");
        first.kill();
        wait_for_new(&s.catalog_slot, first.get_id()).await;
        assert!(
            s.handle
                .create_folder(FolderPath::parse("/after").expect("path"))
                .await
                .expect("write")
        );

        let first = s.storage_slot.get().expect("storage started");
        first.kill();
        let second = wait_for_new(&s.storage_slot, first.get_id()).await;
        let sink = ractor::call!(second, |r| StorageMsg::Request(StorageRequest::Begin(r)))
            .expect("call")
            .expect("sink");
        drop(sink);
        s.shut_down().await;
    }

    /// The processing pool dies while the catalog is unavailable (its restart used to
    /// fail in `pre_start`, and the failed restart stopped the supervisor, leaving images
    /// in `processing` for good): it comes back, and once the catalog is back it finds
    /// and finishes the job committed meanwhile.
    #[tokio::test]
    async fn the_pool_restarts_while_the_catalog_is_down_and_resumes_when_it_is_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = supervised(dir.path()).await;
        s.catalog.take_offline();
        let first = s.processing_slot.get().expect("pool started");
        first.kill();
        wait_for_new(&s.processing_slot, first.get_id()).await;
        assert!(
            s.supervisor.get_status() == ractor::ActorStatus::Running,
            "the supervisor kept going"
        );

        s.catalog.heal().expect("the catalog is back");
        let jpeg = crate::media::test_fixture("jpeg/hopper_128x128.jpg");
        let record = MediaRecord {
            processing: Processing::initial(MediaType::Jpeg),
            media_type: MediaType::Jpeg,
            storage_key: "2026/01/HopperHopper0001.jpg".into(),
            ..MediaRecord::sample('h', "hopper.jpg", 1, jpeg.len() as u64)
        };
        s.storage
            .put_all(vec![(record.storage_key.clone(), jpeg)])
            .await
            .expect("original stored");
        s.handle
            .insert_media(vec![record.clone()])
            .await
            .expect("committed without telling the pool");
        let mut status = None;
        for _ in 0..300 {
            status = s
                .handle
                .get(&record.id)
                .await
                .expect("read")
                .and_then(|r| r.processing);
            if status.as_ref().is_some_and(|p| p.status == Status::Ready) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status.map(|p| p.status),
            Some(Status::Ready),
            "found by its rescan"
        );
        s.shut_down().await;
    }
}
