//! Reading webhooks and their outboxes (the writes are `write::webhooks`).

use redb::ReadableTable;

use super::tables::{ATTEMPTS, OUTBOX, WEBHOOKS, queue_key, queue_of, queue_seq};
use super::{Catalog, Result, decode};
use crate::model::{Attempt, Backlog, Queued, WebhookRecord};

impl Catalog {
    pub fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(WEBHOOKS)?;
        let mut hooks = Vec::new();
        for row in table.iter()? {
            hooks.push(decode(row?.1.value())?);
        }
        Ok(hooks)
    }

    /// The first `limit` events of webhook `id`'s outbox after entry `after`, in order.
    pub fn queued(&self, id: &str, after: u64, limit: usize) -> Result<Vec<Queued>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(OUTBOX)?;
        let (_, to) = queue_of(id);
        let from = queue_key(id, after.saturating_add(1));
        let mut queued = Vec::new();
        for row in table.range(from.as_slice()..to.as_slice())?.take(limit) {
            let (key, value) = row?;
            let mut q: Queued = decode(value.value())?;
            q.seq = queue_seq(key.value());
            queued.push(q);
        }
        Ok(queued)
    }

    /// Every webhook's waiting events: how many, and the oldest.
    pub fn backlogs(&self) -> Result<Vec<Backlog>> {
        let txn = self.read_txn()?;
        let (hooks, outbox) = (txn.open_table(WEBHOOKS)?, txn.open_table(OUTBOX)?);
        let mut backlogs = Vec::new();
        for row in hooks.iter()? {
            let id = row?.0.value().to_owned();
            let (from, to) = queue_of(&id);
            let pending = outbox.range(from.as_slice()..to.as_slice())?.count() as u64;
            let oldest = outbox.range(from.as_slice()..to.as_slice())?.next();
            let oldest_us = match oldest {
                Some(row) => Some(decode::<Queued>(row?.1.value())?.event.at_us),
                None => None,
            };
            backlogs.push(Backlog {
                webhook: id,
                pending,
                oldest_us,
            });
        }
        Ok(backlogs)
    }

    /// Webhook `id`'s last `limit` delivery attempts, newest first.
    pub fn attempts(&self, id: &str, limit: usize) -> Result<Vec<Attempt>> {
        let txn = self.read_txn()?;
        let table = txn.open_table(ATTEMPTS)?;
        let (from, to) = queue_of(id);
        let mut attempts = Vec::new();
        for row in table
            .range(from.as_slice()..to.as_slice())?
            .rev()
            .take(limit)
        {
            attempts.push(decode(row?.1.value())?);
        }
        Ok(attempts)
    }
}
