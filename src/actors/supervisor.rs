//! The root supervisor: starts the catalog, storage and processing actors linked to it and
//! restarts a child that fails, with a short bounded backoff, publishing the new
//! reference through the child's `Slot` so existing handles keep working.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::Slot;
use super::catalog::{CatalogActor, CatalogMsg};
use super::processing::{ProcessingArgs, ProcessingMsg, ProcessingPool};
use super::storage::{StorageActor, StorageArgs, StorageMsg};
use crate::catalog::Catalog;

const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub struct Supervisor;

/// What the children need, kept to restart them.
pub struct SupervisorArgs {
    pub catalog: Arc<Catalog>,
    pub catalog_slot: Slot<CatalogMsg>,
    pub storage: StorageArgs,
    pub storage_slot: Slot<StorageMsg>,
    pub processing: ProcessingArgs,
    pub processing_slot: Slot<ProcessingMsg>,
}

pub struct SupervisorState {
    args: SupervisorArgs,
    children: Vec<(Child, ActorCell)>,
    restarts: u32,
    stopping: bool,
}

pub enum SupervisorMsg {
    /// Drain the children (finish queued writes) and stop.
    Shutdown(RpcReplyPort<()>),
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
            children.push((child, args.start(child, &myself).await?));
        }
        Ok(SupervisorState {
            args,
            children,
            restarts: 0,
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
            .position(|(_, c)| c.get_id() == cell.get_id());
        let Some(index) = found.filter(|_| !state.stopping) else {
            return Ok(());
        };
        let child = state.children[index].0;
        tracing::error!(?child, reason = %why, "actor died; restarting");
        metrics::counter!(crate::metrics::ACTOR_RESTARTS, "actor" => child.name()).increment(1);
        state.args.clear(child);
        let backoff = Duration::from_millis(10u64 << state.restarts.min(8)).min(MAX_BACKOFF);
        state.restarts += 1;
        tokio::time::sleep(backoff).await;
        state.children[index].1 = state.args.start(child, &myself).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::catalog::CatalogHandle;
    use crate::actors::processing::{ProcessingArgs, Waiters, build_pool};
    use crate::actors::storage::{StorageHandle, StorageRequest};
    use crate::model::FolderPath;
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

    #[tokio::test]
    async fn failed_children_are_restarted_and_handles_keep_working() {
        let dir = tempfile::tempdir().expect("tempdir");
        let catalog = Arc::new(Catalog::open(&dir.path().join("c.redb")).expect("catalog"));
        let storage = Arc::new(Storage::Local(
            LocalStorage::new(dir.path()).expect("storage"),
        ));
        let (catalog_slot, storage_slot) = (Slot::empty(), Slot::empty());
        let handle = CatalogHandle::new(catalog_slot.clone(), catalog.clone());
        let args = SupervisorArgs {
            catalog,
            catalog_slot: catalog_slot.clone(),
            storage: StorageArgs {
                storage,
                catalog: handle.clone(),
            },
            storage_slot: storage_slot.clone(),
            processing: ProcessingArgs {
                catalog: handle.clone(),
                storage: StorageHandle::new(storage_slot.clone()),
                pool: Arc::new(build_pool(1).expect("pool")),
                settings: Default::default(),
                max_in_flight: 1,
                max_attempts: 3,
                waiters: Waiters::default(),
                presets: Default::default(),
            },
            processing_slot: Slot::empty(),
        };
        let (supervisor, done) = Actor::spawn(None, Supervisor, args).await.expect("spawn");

        let first = catalog_slot.get().expect("catalog started");
        first.kill();
        wait_for_new(&catalog_slot, first.get_id()).await;
        assert!(
            handle
                .create_folder(FolderPath::parse("/after").expect("path"))
                .await
                .expect("write")
        );

        let first = storage_slot.get().expect("storage started");
        first.kill();
        let second = wait_for_new(&storage_slot, first.get_id()).await;
        let sink = ractor::call!(second, |r| StorageMsg::Request(StorageRequest::Begin(r)))
            .expect("call")
            .expect("sink");
        drop(sink);

        supervisor
            .call(SupervisorMsg::Shutdown, None)
            .await
            .expect("shutdown");
        done.await.expect("stopped");
        assert!(catalog_slot.get().is_none() && storage_slot.get().is_none());
    }
}
