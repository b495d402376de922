//! The webhook writes of a batch, and the outbox: the events a batch's writes made go
//! into the outbox of every webhook that wants them, in the same commit.

use redb::{ReadableTable, Table};

use super::{Outcome, Result, Tables, WebhookWrite};
use crate::catalog::tables::{queue_key, queue_of, queue_seq};
use crate::catalog::{CatalogError, decode, encode};
use crate::model::{ATTEMPTS_KEPT, Event, Next, Queued, Settled, WebhookRecord, now_us};

impl Tables<'_> {
    /// Puts the events of the batch into the outboxes of the webhooks that want them;
    /// whether any outbox got one (a ping included).
    pub(super) fn fan_out(&mut self) -> Result<bool> {
        let events = std::mem::take(&mut self.events);
        if events.is_empty() {
            return Ok(self.filled);
        }
        let hooks = self.webhook_records()?;
        let now = now_us();
        for event in events {
            for hook in hooks.iter().filter(|h| h.wants(event.kind)) {
                self.enqueue(&hook.id, event.clone(), now)?;
            }
        }
        Ok(self.filled)
    }

    pub(super) fn webhook_write(&mut self, write: &WebhookWrite) -> Result<Outcome> {
        match write {
            WebhookWrite::Add(record) => {
                if self.webhooks.get(record.id.as_str())?.is_some() {
                    return Err(CatalogError::IdTaken);
                }
                self.put_webhook(record)?;
            }
            WebhookWrite::Remove { id } => {
                if self.webhooks.remove(id.as_str())?.is_none() {
                    return Err(CatalogError::NotFound("webhook"));
                }
                clear(&mut self.outbox, id)?;
                clear(&mut self.attempts, id)?;
            }
            WebhookWrite::Ping { id, event } => {
                let hook = self.webhook(id)?.ok_or(CatalogError::NotFound("webhook"))?;
                if hook.disabled.is_some() {
                    return Err(CatalogError::WebhookDisabled);
                }
                self.enqueue(id, event.clone(), now_us())?;
            }
            WebhookWrite::Settle(settled) => {
                let (missing, live) = self.settle(settled)?;
                return Ok(Outcome::Settled { missing, live });
            }
            WebhookWrite::Trim { id, keep } => {
                let (from, to) = queue_of(id);
                let n = self.outbox.range(from.as_slice()..to.as_slice())?.count() as u64;
                let over = n.saturating_sub(*keep);
                if over > 0 {
                    let mut newest = Vec::new();
                    let kept = usize::try_from(*keep).unwrap_or(usize::MAX);
                    for row in self
                        .outbox
                        .range(from.as_slice()..to.as_slice())?
                        .skip(kept)
                    {
                        newest.push(row?.0.value().to_vec());
                    }
                    for key in newest {
                        self.outbox.remove(key.as_slice())?;
                    }
                    self.count_dropped(id, over)?;
                }
                return Ok(Outcome::Dropped(over));
            }
        }
        Ok(Outcome::Done)
    }

    /// Records attempts (of one webhook) and what becomes of their entries: how many
    /// entries were gone already (trimmed), and whether the webhook is still there and
    /// enabled. A delivered entry is only removed (never decoded): the common case, cheap.
    fn settle(&mut self, settled: &[Settled]) -> Result<(u64, bool)> {
        let Some(first) = settled.first() else {
            return Ok((0, true));
        };
        let id = first.webhook.as_str();
        let Some(mut hook) = self.webhook(id)? else {
            return Ok((settled.len() as u64, false)); // removed: nothing to record
        };
        let (from, to) = queue_of(id);
        let mut last = last_seq(&self.attempts, id)?;
        let (mut missing, mut changed) = (0, false);
        for s in settled.iter().filter(|s| s.webhook == id) {
            last += 1;
            self.attempts.insert(
                queue_key(id, last).as_slice(),
                encode(&s.attempt).as_slice(),
            )?;
            let key = queue_key(id, s.seq);
            let found = match &s.next {
                Next::Delivered => self.outbox.remove(key.as_slice())?.is_some(),
                Next::GiveUp => {
                    let found = self.outbox.remove(key.as_slice())?.is_some();
                    hook.dropped += u64::from(found);
                    changed |= found;
                    found
                }
                Next::Retry { due_us } => {
                    let queued: Option<Queued> = self
                        .outbox
                        .get(key.as_slice())?
                        .map(|v| decode(v.value()))
                        .transpose()?;
                    match queued {
                        Some(mut q) => {
                            (q.attempts, q.due_us) = (s.attempt.attempt, *due_us);
                            self.outbox.insert(key.as_slice(), encode(&q).as_slice())?;
                            true
                        }
                        None => false,
                    }
                }
                Next::Disable { reason } => {
                    let left = clear(&mut self.outbox, id)?;
                    hook.dropped += left;
                    hook.disabled = Some(reason.clone());
                    changed = true;
                    left > 0
                }
            };
            missing += u64::from(!found);
        }
        // The newest `ATTEMPTS_KEPT` attempts stay.
        let n = self.attempts.range(from.as_slice()..to.as_slice())?.count();
        if n > ATTEMPTS_KEPT {
            let mut oldest = Vec::new();
            for row in self
                .attempts
                .range(from.as_slice()..to.as_slice())?
                .take(n - ATTEMPTS_KEPT)
            {
                oldest.push(row?.0.value().to_vec());
            }
            for key in oldest {
                self.attempts.remove(key.as_slice())?;
            }
        }
        if changed {
            self.put_webhook(&hook)?;
        }
        Ok((missing, hook.disabled.is_none()))
    }

    /// Appends `event` to webhook `id`'s outbox, after everything in it.
    fn enqueue(&mut self, id: &str, event: Event, now: u64) -> Result<()> {
        let last = last_seq(&self.outbox, id)?;
        let queued = Queued {
            seq: last + 1,
            event,
            attempts: 0,
            due_us: now,
        };
        self.outbox.insert(
            queue_key(id, queued.seq).as_slice(),
            encode(&queued).as_slice(),
        )?;
        self.filled = true;
        Ok(())
    }

    fn count_dropped(&mut self, id: &str, n: u64) -> Result<()> {
        if let Some(mut hook) = self.webhook(id)? {
            hook.dropped += n;
            self.put_webhook(&hook)?;
        }
        Ok(())
    }

    fn webhook(&self, id: &str) -> Result<Option<WebhookRecord>> {
        self.webhooks
            .get(id)?
            .map(|v| decode(v.value()))
            .transpose()
    }

    fn put_webhook(&mut self, record: &WebhookRecord) -> Result<()> {
        self.webhooks
            .insert(record.id.as_str(), encode(record).as_slice())?;
        Ok(())
    }

    /// Every webhook (one whose record cannot be read gets nothing, and says so).
    fn webhook_records(&self) -> Result<Vec<WebhookRecord>> {
        let mut hooks = Vec::new();
        for row in self.webhooks.iter()? {
            let (id, value) = row?;
            match decode(value.value()) {
                Ok(hook) => hooks.push(hook),
                Err(e) => tracing::error!(id = id.value(), error = %e, "unreadable webhook"),
            }
        }
        Ok(hooks)
    }
}

/// The sequence number of the last entry of webhook `id` in `table` (0: none).
fn last_seq(table: &Table<'_, &'static [u8], &'static [u8]>, id: &str) -> Result<u64> {
    let (from, to) = queue_of(id);
    let last = table
        .range(from.as_slice()..to.as_slice())?
        .next_back()
        .transpose()?;
    Ok(last.map_or(0, |(k, _)| queue_seq(k.value())))
}

/// Empties webhook `id`'s range of `table`; how many entries it had.
fn clear(table: &mut Table<'_, &'static [u8], &'static [u8]>, id: &str) -> Result<u64> {
    let (from, to) = queue_of(id);
    let mut keys = Vec::new();
    for row in table.range(from.as_slice()..to.as_slice())? {
        keys.push(row?.0.value().to_vec());
    }
    for key in &keys {
        table.remove(key.as_slice())?;
    }
    Ok(keys.len() as u64)
}
