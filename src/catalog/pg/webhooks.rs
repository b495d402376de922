//! Webhooks and their outboxes on PostgreSQL: the twins of `catalog::write::webhooks`
//! (writes) and `catalog::webhooks` (reads), row for row.

use deadpool_postgres::Transaction;

use super::catalog::{PgCatalog, Result, decode, encode};
use super::write::{Done, W};
use crate::catalog::{CatalogError, Outcome, WebhookWrite};
use crate::model::{
    ATTEMPTS_KEPT, Attempt, Backlog, Event, Next, Queued, Settled, WebhookRecord, now_us,
};

/// The channel of commits that put events in an outbox (every node's sender hears it).
pub(super) const OUTBOX: &str = "darkroom_outbox";

/// Puts a batch's events into the outboxes of the webhooks that want them: one
/// statement, the events numbered in the order the batch made them. With `pinged` (or
/// when an outbox got an event), every node hears of it at commit.
pub(super) async fn fan_out(
    tx: &Transaction<'_>,
    events: Vec<Event>,
    pinged: bool,
) -> std::result::Result<(), tokio_postgres::Error> {
    let filled = if events.is_empty() {
        0
    } else {
        insert(tx, events).await?
    };
    if filled > 0 || pinged {
        let statement = tx.prepare_cached("SELECT pg_notify($1, '')").await?;
        tx.execute(&statement, &[&OUTBOX]).await?;
    }
    Ok(())
}

async fn insert(
    tx: &Transaction<'_>,
    events: Vec<Event>,
) -> std::result::Result<u64, tokio_postgres::Error> {
    let now = now_us();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
    let queued: Vec<String> = events
        .into_iter()
        .map(|event| {
            encode(&Queued {
                seq: 0,
                event,
                attempts: 0,
                due_us: now,
            })
        })
        .collect();
    let statement = tx
        .prepare_cached(
            "INSERT INTO webhook_outbox (webhook, queued) \
             SELECT w.id, e.queued \
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS e(kind, queued, n) \
             JOIN webhooks w ON w.enabled AND (e.kind = ANY (w.events) OR '*' = ANY (w.events)) \
             ORDER BY e.n, w.id",
        )
        .await?;
    tx.execute(&statement, &[&kinds, &queued]).await
}

impl W<'_> {
    pub(super) async fn webhook_write(&mut self, write: &WebhookWrite) -> Done<Outcome> {
        match write {
            WebhookWrite::Add(record) => {
                let added = self
                    .exec(
                        "INSERT INTO webhooks (id, record, events, enabled) \
                         VALUES ($1, $2, $3, true) ON CONFLICT DO NOTHING",
                        &[&record.id, &encode(record), &record.events],
                    )
                    .await?;
                if added == 0 {
                    return Err(CatalogError::IdTaken.into());
                }
            }
            WebhookWrite::Remove { id } => {
                if self
                    .exec("DELETE FROM webhooks WHERE id = $1", &[id])
                    .await?
                    == 0
                {
                    return Err(CatalogError::NotFound("webhook").into());
                }
                self.exec("DELETE FROM webhook_outbox WHERE webhook = $1", &[id])
                    .await?;
                self.exec("DELETE FROM webhook_attempts WHERE webhook = $1", &[id])
                    .await?;
            }
            WebhookWrite::Ping { id, event } => {
                let hook = self
                    .webhook(id)
                    .await?
                    .ok_or(CatalogError::NotFound("webhook"))?;
                if hook.disabled.is_some() {
                    return Err(CatalogError::WebhookDisabled.into());
                }
                let queued = Queued {
                    seq: 0,
                    event: event.clone(),
                    attempts: 0,
                    due_us: now_us(),
                };
                self.exec(
                    "INSERT INTO webhook_outbox (webhook, queued) VALUES ($1, $2)",
                    &[id, &encode(&queued)],
                )
                .await?;
            }
            WebhookWrite::Settle(settled) => {
                let (missing, live) = self.settle(settled).await?;
                return Ok(Outcome::Settled { missing, live });
            }
            WebhookWrite::Trim { id, keep } => {
                let dropped = self
                    .exec(
                        "DELETE FROM webhook_outbox WHERE webhook = $1 AND seq IN \
                         (SELECT seq FROM webhook_outbox WHERE webhook = $1 \
                          ORDER BY seq OFFSET $2)",
                        &[id, &(*keep as i64)],
                    )
                    .await?;
                if dropped > 0 {
                    self.count_dropped(id, dropped).await?;
                }
                return Ok(Outcome::Dropped(dropped));
            }
        }
        Ok(Outcome::Done)
    }

    /// Records attempts (of one webhook) and what becomes of their events, in a few
    /// statements whatever their number (see the redb twin).
    async fn settle(&mut self, settled: &[Settled]) -> Done<(u64, bool)> {
        let Some(first) = settled.first() else {
            return Ok((0, true));
        };
        let id = first.webhook.as_str();
        let Some(mut hook) = self.webhook(id).await? else {
            return Ok((settled.len() as u64, false));
        };
        let settled: Vec<&Settled> = settled.iter().filter(|s| s.webhook == id).collect();
        let attempts: Vec<String> = settled.iter().map(|s| encode(&s.attempt)).collect();
        self.exec(
            "INSERT INTO webhook_attempts (webhook, attempt) \
             SELECT $1, a FROM unnest($2::text[]) WITH ORDINALITY AS u(a, n) ORDER BY n",
            &[&id, &attempts],
        )
        .await?;
        self.exec(
            "DELETE FROM webhook_attempts WHERE webhook = $1 AND seq IN \
             (SELECT seq FROM webhook_attempts WHERE webhook = $1 ORDER BY seq DESC OFFSET $2)",
            &[&id, &(ATTEMPTS_KEPT as i64)],
        )
        .await?;
        let seq = |s: &&Settled| s.seq as i64;
        let out: Vec<i64> = settled
            .iter()
            .filter(|s| matches!(s.next, Next::Delivered | Next::GiveUp))
            .map(seq)
            .collect();
        let removed: Vec<i64> = self
            .rows(
                "DELETE FROM webhook_outbox WHERE webhook = $1 AND seq = ANY ($2) RETURNING seq",
                &[&id, &out],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut missing = (out.len() - removed.len()) as u64;
        let given_up = settled
            .iter()
            .filter(|s| s.next == Next::GiveUp && removed.contains(&seq(s)))
            .count() as u64;
        let mut changed = given_up > 0;
        hook.dropped += given_up;
        for s in &settled {
            match &s.next {
                Next::Delivered | Next::GiveUp => {}
                Next::Retry { due_us } => {
                    let row = self
                        .row(
                            "SELECT queued FROM webhook_outbox WHERE webhook = $1 AND seq = $2 \
                             FOR UPDATE",
                            &[&id, &seq(s)],
                        )
                        .await?;
                    let Some(row) = row else {
                        missing += 1;
                        continue;
                    };
                    let mut queued: Queued = decode(row.get(0))?;
                    (queued.attempts, queued.due_us) = (s.attempt.attempt, *due_us);
                    self.exec(
                        "UPDATE webhook_outbox SET queued = $3 WHERE webhook = $1 AND seq = $2",
                        &[&id, &seq(s), &encode(&queued)],
                    )
                    .await?;
                }
                Next::Disable { reason } => {
                    let left = self
                        .exec("DELETE FROM webhook_outbox WHERE webhook = $1", &[&id])
                        .await?;
                    missing += u64::from(left == 0);
                    hook.dropped += left;
                    hook.disabled = Some(reason.clone());
                    changed = true;
                }
            }
        }
        if changed {
            self.put_webhook(&hook).await?;
        }
        Ok((missing, hook.disabled.is_none()))
    }

    /// Adds `n` to webhook `id`'s dropped events.
    async fn count_dropped(&mut self, id: &str, n: u64) -> Done<()> {
        let Some(mut hook) = self.webhook(id).await? else {
            return Ok(());
        };
        hook.dropped += n;
        self.put_webhook(&hook).await
    }

    /// Writes back a webhook's record (and whether fan-out still sends to it).
    async fn put_webhook(&self, hook: &WebhookRecord) -> Done<()> {
        self.exec(
            "UPDATE webhooks SET record = $2, enabled = $3 WHERE id = $1",
            &[&hook.id, &encode(hook), &hook.disabled.is_none()],
        )
        .await?;
        Ok(())
    }

    /// Webhook `id`, its row locked until the batch commits.
    async fn webhook(&self, id: &str) -> Done<Option<WebhookRecord>> {
        let row = self
            .row(
                "SELECT record FROM webhooks WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        Ok(row.map(|r| decode(r.get(0))).transpose()?)
    }
}

impl PgCatalog {
    pub async fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        let rows = self
            .rows("SELECT record FROM webhooks ORDER BY id", &[])
            .await?;
        rows.iter().map(|r| decode(r.get(0))).collect()
    }

    /// The first `limit` events of webhook `id`'s outbox, in order, from its head whatever
    /// `after` says: two nodes' commits take their numbers before they commit, so an
    /// entry numbered before `after` may commit after it (and reading on from `after`
    /// would pass over it, and deliver its item's next event first).
    pub async fn queued(&self, id: &str, _after: u64, limit: usize) -> Result<Vec<Queued>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                "SELECT seq, queued FROM webhook_outbox WHERE webhook = $1 ORDER BY seq LIMIT $2",
                &[&id, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let mut q: Queued = decode(r.get(1))?;
                q.seq = r.get::<_, i64>(0) as u64;
                Ok(q)
            })
            .collect()
    }

    /// Every webhook's waiting events: how many, and the oldest.
    pub async fn backlogs(&self) -> Result<Vec<Backlog>> {
        let rows = self
            .rows(
                "SELECT w.id, count(o.seq), \
                 (SELECT queued FROM webhook_outbox f WHERE f.webhook = w.id ORDER BY seq LIMIT 1) \
                 FROM webhooks w LEFT JOIN webhook_outbox o ON o.webhook = w.id GROUP BY w.id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let first: Option<&str> = r.get(2);
                let oldest_us = match first {
                    Some(q) => Some(decode::<Queued>(q)?.event.at_us),
                    None => None,
                };
                Ok(Backlog {
                    webhook: r.get(0),
                    pending: r.get::<_, i64>(1) as u64,
                    oldest_us,
                })
            })
            .collect()
    }

    /// Webhook `id`'s last `limit` delivery attempts, newest first.
    pub async fn attempts(&self, id: &str, limit: usize) -> Result<Vec<Attempt>> {
        let rows = self
            .rows(
                "SELECT attempt FROM webhook_attempts WHERE webhook = $1 \
                 ORDER BY seq DESC LIMIT $2",
                &[&id, &(limit as i64)],
            )
            .await?;
        rows.iter().map(|r| decode(r.get(0))).collect()
    }
}
