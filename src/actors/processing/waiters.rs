//! `?wait=true`: requests waiting for their items' jobs to end. A request registers
//! before its items are committed, so it cannot miss the end of a job; the pool notifies
//! only on final outcomes (ready or failed), never on a retry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

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

    pub(crate) fn notify(&self, id: &str) {
        let senders = self.0.lock().ok().and_then(|mut map| map.remove(id));
        for tx in senders.into_iter().flatten() {
            let _ = tx.send(());
        }
    }

    /// Waits for the jobs of `ids` to end (registered now: call it before the jobs are
    /// committed). However the wait ends (done, timed out, or the request dropped with
    /// its client gone), its registrations go with it.
    pub fn watch(&self, ids: Vec<String>) -> Watch {
        let done = ids.iter().map(|id| self.subscribe(id)).collect();
        Watch {
            waiters: self.clone(),
            ids,
            done,
        }
    }

    /// Drops registrations whose waiter gave up (timed out or disconnected).
    fn prune(&self, ids: &[String]) {
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

/// A request waiting for some jobs (see `Waiters::watch`).
pub struct Watch {
    waiters: Waiters,
    ids: Vec<String>,
    done: Vec<oneshot::Receiver<()>>,
}

impl Watch {
    /// Returns once every job has ended, or after `limit`.
    pub async fn until_done(mut self, limit: std::time::Duration) {
        let all = futures_util::future::join_all(std::mem::take(&mut self.done));
        let _ = tokio::time::timeout(limit, all).await;
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.done.clear(); // closes this watch's channels, so the prune sees them gone
        self.waiters.prune(&self.ids);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_of_a_job_is_woken_once_and_others_are_not() {
        let waiters = Waiters::default();
        let (a1, a2, b) = (
            waiters.subscribe("a"),
            waiters.subscribe("a"),
            waiters.subscribe("b"),
        );
        waiters.notify("a");
        assert!(a1.await.is_ok() && a2.await.is_ok());
        waiters.notify("a"); // nobody left: nothing happens
        let mut b = b;
        assert!(b.try_recv().is_err(), "b's job has not ended");
    }

    #[tokio::test]
    async fn a_watch_dropped_before_its_jobs_end_leaves_no_registration() {
        let waiters = Waiters::default();
        let watch = waiters.watch(vec!["a".to_owned(), "b".to_owned()]);
        let waiting = tokio::spawn(watch.until_done(std::time::Duration::from_secs(600)));
        tokio::task::yield_now().await;
        waiting.abort(); // the client went away
        let _ = waiting.await;
        assert!(waiters.0.lock().expect("lock").is_empty());
        let done = waiters.watch(vec!["c".to_owned()]);
        waiters.notify("c");
        done.until_done(std::time::Duration::from_secs(600)).await;
        assert!(waiters.0.lock().expect("lock").is_empty());
    }

    #[test]
    fn registrations_of_waiters_that_gave_up_are_pruned() {
        let waiters = Waiters::default();
        let gone = waiters.subscribe("a");
        let _kept = waiters.subscribe("b");
        drop(gone);
        waiters.prune(&["a".to_owned(), "b".to_owned()]);
        let map = waiters.0.lock().expect("lock");
        assert!(!map.contains_key("a"));
        assert_eq!(map.get("b").map(Vec::len), Some(1));
    }
}
