//! Actor glue (ractor): message enums, handles and lifecycles. The logic they run lives
//! in `catalog/`, `storage/` and `media/`. Handles are cheap to clone and look their actor
//! up through a `Slot`, which the supervisor refills after a restart.

pub mod catalog;
pub mod processing;
pub mod storage;
pub mod supervisor;

use std::sync::{Arc, RwLock};

use ractor::rpc::CallResult;
use ractor::{ActorRef, Message, RpcReplyPort};

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
