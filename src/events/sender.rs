//! The sender: delivers the outboxes, at least once. One node of a cluster sends (a
//! cluster turn); it runs one task per enabled webhook, which reads the head of its
//! outbox, delivers what is due (up to `concurrency` at once, never two events of one
//! item, and an item's next only after its earlier one is out of the outbox), and
//! records the attempts and what becomes of each event in one catalog write. An event
//! leaves the outbox only in that write, after its receiver answered 2xx: a crash in
//! between sends it again, with the same `webhook-id`.
//!
//! Retries: any answer but 2xx and 410, a timeout or a connection error is tried again
//! after `retry_base_ms`, doubling up to `retry_max_delay_secs`, each delay drawn from
//! its upper half (jitter), or after the receiver's `Retry-After`; an event older than
//! `retry_window_secs` is given up. 410 disables the webhook. A second task counts the
//! outboxes for `/metrics` and drops the events past the first `max_pending` (the newest:
//! the receiver gets an unbroken run, and what is being delivered stays).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use rand::Rng;
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinSet};

use super::{WebhookConfig, payload, sign, target};
use crate::actors::catalog::CatalogHandle;
use crate::catalog::{CatalogError, Outcome, WebhookWrite};
use crate::delivery::Links;
use crate::metrics as m;
use crate::model::{Attempt, Next, Queued, Settled, WebhookRecord, now_us};

/// Outbox entries a webhook's task reads at once (the head of its outbox).
const WINDOW: usize = 256;
/// How long a task waits, hearing nothing, before it looks at its outbox again.
const IDLE: Duration = Duration::from_secs(5);
/// How often the webhooks are looked up and the outboxes counted.
const UPKEEP: Duration = Duration::from_secs(1);
/// How long a node holds the cluster's turn to send (renewed every `UPKEEP`), at least:
/// three delivery timeouts, so that a node that stalls is past its deliveries before
/// another takes over.
const TURN: Duration = Duration::from_secs(10);
/// The longest wait after a failed attempt to record deliveries.
const MAX_SETTLE_WAIT: Duration = Duration::from_secs(30);

struct Sender {
    catalog: CatalogHandle,
    links: Links,
    client: reqwest::Client,
    config: WebhookConfig,
}

/// Starts the sender; it runs until the returned handle is aborted (its tasks with it).
pub fn start(
    catalog: CatalogHandle,
    links: Links,
    config: &WebhookConfig,
) -> Result<tokio::task::JoinHandle<()>, reqwest::Error> {
    let sender = Arc::new(Sender {
        client: client(config)?,
        catalog,
        links,
        config: config.clone(),
    });
    Ok(tokio::spawn(sender.run()))
}

/// The delivery client: the resolver that keeps deliveries off inside addresses, no
/// redirects, no proxy from the environment, the configured deadline.
fn client(config: &WebhookConfig) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_secs(config.timeout_secs);
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(target::Resolver {
            allow_private: config.allow_private_targets,
        }))
        .user_agent(concat!("Darkroom-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
}

impl Sender {
    async fn run(self: Arc<Self>) {
        let wake = Arc::new(watch::channel(0u64).0);
        // Commits wake the webhooks' tasks at once, whatever the upkeep below is doing
        // (the set ends the forwarding with this task).
        let mut forwarding = JoinSet::new();
        let (catalog, w) = (self.catalog.clone(), wake.clone());
        forwarding.spawn(async move {
            loop {
                catalog.outbox_filled().await;
                w.send_modify(|n| *n = n.wrapping_add(1));
            }
        });
        let turn = TURN.max(Duration::from_secs(3 * self.config.timeout_secs));
        let mut tasks = JoinSet::new();
        let mut running: HashMap<String, AbortHandle> = HashMap::new();
        let mut counted: HashSet<String> = HashSet::new();
        let mut upkeep = tokio::time::interval(UPKEEP);
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            upkeep.tick().await;
            while let Some(ended) = tasks.try_join_next() {
                if let Err(e) = ended
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "a webhook's sender task panicked; restarting it");
                }
            }
            if !self.catalog.take_turn("webhooks", turn).await {
                tasks.abort_all(); // another node sends
                running.clear();
                continue;
            }
            let hooks = match self.catalog.webhooks().await {
                Ok(hooks) => hooks,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the webhooks; retrying");
                    continue;
                }
            };
            let live: HashSet<&str> = hooks
                .iter()
                .filter(|h| h.disabled.is_none())
                .map(|h| h.id.as_str())
                .collect();
            running.retain(|id, task| {
                let keep = live.contains(id.as_str()) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for hook in hooks.iter().filter(|h| h.disabled.is_none()) {
                if !running.contains_key(&hook.id) {
                    let task =
                        tasks.spawn(self.clone().deliver_all(hook.clone(), wake.subscribe()));
                    running.insert(hook.id.clone(), task);
                }
            }
            self.count(&mut counted).await;
        }
    }

    /// Sets the backlog gauges and drops what is over `max_pending`.
    async fn count(&self, counted: &mut HashSet<String>) {
        let backlogs = match self.catalog.backlogs().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot count the webhooks' outboxes");
                return;
            }
        };
        let now = now_us();
        let mut seen = HashSet::new();
        for b in backlogs {
            let age = b
                .oldest_us
                .map_or(0.0, |t| now.saturating_sub(t) as f64 / 1e6);
            metrics::gauge!(m::WEBHOOK_PENDING, "webhook" => b.webhook.clone())
                .set(b.pending as f64);
            metrics::gauge!(m::WEBHOOK_OLDEST_PENDING, "webhook" => b.webhook.clone()).set(age);
            if b.pending > self.config.max_pending {
                let trim = WebhookWrite::Trim {
                    id: b.webhook.clone(),
                    keep: self.config.max_pending,
                };
                if let Ok(Outcome::Dropped(n)) = self.catalog.webhook_write(trim).await {
                    tracing::warn!(
                        webhook = %b.webhook,
                        dropped = n,
                        "a webhook's outbox was over webhooks.max_pending: its newest events were dropped"
                    );
                    metrics::counter!(m::WEBHOOK_DROPPED, "webhook" => b.webhook.clone(), "reason" => "over_limit")
                        .increment(n);
                }
            }
            seen.insert(b.webhook);
        }
        for gone in counted.difference(&seen) {
            metrics::gauge!(m::WEBHOOK_PENDING, "webhook" => gone.clone()).set(0.0);
            metrics::gauge!(m::WEBHOOK_OLDEST_PENDING, "webhook" => gone.clone()).set(0.0);
        }
        *counted = seen;
    }

    /// Delivers webhook `hook`'s outbox until it is disabled or removed (or the task is
    /// aborted). The head of the outbox is kept in `window` (read again when events were
    /// added: a wake); up to `concurrency` deliveries fly at once, and the attempts that
    /// ended are recorded in one catalog write while the next ones fly, so the pace of
    /// deliveries is the receiver's, not that of commits. An item's next event goes once
    /// its earlier one was delivered (or given up).
    async fn deliver_all(self: Arc<Self>, hook: WebhookRecord, mut wake: watch::Receiver<u64>) {
        // The head only: an event past `max_pending` may be dropped from the outbox.
        let depth = WINDOW.min(usize::try_from(self.config.max_pending).unwrap_or(WINDOW));
        let mut window: Vec<Queued> = Vec::new();
        // Being delivered; delivered or given up and not recorded yet (kept out of the
        // window when it is read again).
        let (mut flying, mut done) = (HashSet::new(), HashSet::new());
        let mut deliveries = FuturesUnordered::new();
        let (mut ended, mut recording): (Vec<Settled>, Vec<Settled>) = (Vec::new(), Vec::new());
        let mut settling: Option<BoxFuture<'static, Result<Outcome, CatalogError>>> = None;
        let (mut added, mut more, mut disabled, mut unrecorded) = (true, false, false, 0u32);
        loop {
            if wake.has_changed().unwrap_or(false) {
                wake.mark_unchanged();
                added = true;
            }
            // Read again when events were added, or when the last read filled the window
            // (more wait behind it) and half of it is delivered.
            let refill = added || (more && window.len() <= depth / 2);
            if refill && !disabled && window.len() < depth {
                let after = window.last().map_or(0, |q| q.seq);
                // From the head, a read brings what the window and `done` hold as well
                // (PostgreSQL reads from there whatever `after` says).
                let limit = depth + done.len();
                match self.catalog.queued(&hook.id, after, limit).await {
                    Ok(read) => {
                        more = read.len() == limit;
                        let read = read.into_iter().filter(|q| !done.contains(&q.seq));
                        merge(&mut window, read.collect(), depth);
                        added = false;
                    }
                    Err(e) => {
                        tracing::warn!(webhook = %hook.id, error = %e, "cannot read a webhook's outbox");
                    }
                }
            }
            let now = now_us();
            let free = self.config.concurrency.saturating_sub(deliveries.len());
            let (due, next) = pick(&window, now, free, &flying);
            for q in due {
                flying.insert(q.seq);
                let (this, hook, q) = (self.clone(), hook.clone(), q.clone());
                deliveries.push(async move { this.deliver(&hook, &q).await });
            }
            if settling.is_none() && !ended.is_empty() {
                recording = std::mem::take(&mut ended);
                let (catalog, write) = (
                    self.catalog.clone(),
                    WebhookWrite::Settle(recording.clone()),
                );
                settling = Some(Box::pin(async move { catalog.webhook_write(write).await }));
            }
            if disabled && deliveries.is_empty() && settling.is_none() && ended.is_empty() {
                tracing::warn!(webhook = %hook.id, "the receiver answered 410 Gone: webhook disabled");
                return;
            }
            let wait = next.map_or(IDLE, |t| Duration::from_micros(t.saturating_sub(now)));
            tokio::select! {
                Some(s) = deliveries.next(), if !deliveries.is_empty() => {
                    flying.remove(&s.seq);
                    match &s.next {
                        Next::Delivered | Next::GiveUp => {
                            window.retain(|q| q.seq != s.seq);
                            done.insert(s.seq);
                        }
                        Next::Retry { due_us } => {
                            if let Some(q) = window.iter_mut().find(|q| q.seq == s.seq) {
                                (q.attempts, q.due_us) = (s.attempt.attempt, *due_us);
                            }
                        }
                        Next::Disable { .. } => {
                            disabled = true;
                            window.clear();
                        }
                    }
                    ended.push(s);
                }
                recorded = async { settling.as_mut().expect("settling").await }, if settling.is_some() => {
                    settling = None;
                    match recorded {
                        Ok(Outcome::Settled { missing, live }) => {
                            unrecorded = 0;
                            for s in recording.drain(..) {
                                done.remove(&s.seq);
                                if s.next == Next::GiveUp {
                                    metrics::counter!(m::WEBHOOK_DROPPED, "webhook" => s.webhook, "reason" => "expired")
                                        .increment(1);
                                }
                            }
                            if missing > 0 {
                                tracing::debug!(webhook = %hook.id, missing, "attempts at events gone from the outbox");
                            }
                            if !live && !disabled {
                                return; // removed meanwhile (its events with it)
                            }
                        }
                        other => {
                            // Not recorded: tried again with the next attempts, after a
                            // wait that grows while recording fails (the events stay in
                            // the outbox, so a restart sends them again: at least once).
                            let error = other.err().map(|e| e.to_string()).unwrap_or_default();
                            tracing::warn!(webhook = %hook.id, %error, "cannot record deliveries");
                            recording.append(&mut ended);
                            ended = std::mem::take(&mut recording);
                            unrecorded = unrecorded.saturating_add(1);
                            let wait = UPKEEP.saturating_mul(1 << unrecorded.min(5));
                            tokio::time::sleep(wait.min(MAX_SETTLE_WAIT)).await;
                        }
                    }
                }
                _ = wake.changed() => added = true,
                () = tokio::time::sleep(wait.min(IDLE)) => added = true,
            }
        }
    }

    /// One attempt at `q`, and what becomes of it.
    async fn deliver(&self, hook: &WebhookRecord, q: &Queued) -> Settled {
        let (at_us, started) = (now_us(), Instant::now());
        let answer = self.post(hook, q).await;
        let elapsed = started.elapsed();
        metrics::histogram!(m::WEBHOOK_DELIVERY_DURATION).record(elapsed.as_secs_f64());
        let attempt = q.attempts + 1;
        let (status, error, next) = match answer {
            Ok((s, _)) if (200..300).contains(&s) => (Some(s), None, Next::Delivered),
            Ok((410, _)) => {
                let reason = "the receiver answered 410 Gone".to_owned();
                (Some(410), Some(reason.clone()), Next::Disable { reason })
            }
            Ok((s, retry_after)) => {
                let error = format!("the receiver answered {s}");
                (Some(s), Some(error), self.retry(q, attempt, retry_after))
            }
            Err(e) => (None, Some(e), self.retry(q, attempt, None)),
        };
        let outcome = match next {
            Next::Delivered => "delivered",
            Next::Retry { .. } => "retried",
            Next::GiveUp => "given_up",
            Next::Disable { .. } => "disabled",
        };
        metrics::counter!(m::WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
        Settled {
            webhook: hook.id.clone(),
            seq: q.seq,
            attempt: Attempt {
                at_us,
                event: q.event.id.clone(),
                kind: q.event.kind,
                attempt,
                status,
                latency_ms: elapsed.as_millis() as u64,
                error,
            },
            next,
        }
    }

    /// Posts `q` to `hook`: the status and `Retry-After`, or why there was no answer.
    async fn post(
        &self,
        hook: &WebhookRecord,
        q: &Queued,
    ) -> Result<(u16, Option<Duration>), String> {
        target::check(&hook.url, self.config.allow_private_targets).map_err(|e| e.to_string())?;
        let body = payload(&q.event, &self.links)
            .await
            .map_err(|e| format!("the payload could not be made: {e}"))?;
        let timestamp = now_us() / 1_000_000;
        let signature = sign::signature(&hook.secret, &q.event.id, timestamp, &body)
            .ok_or("the webhook's secret is unreadable")?;
        let response = self
            .client
            .post(&hook.url)
            .header("webhook-id", &q.event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe(&e, self.config.timeout_secs))?;
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry_after);
        Ok((response.status().as_u16(), retry_after))
    }

    /// When to try again after attempt `attempt` failed, or give up: past the retry
    /// window counted from the event.
    fn retry(&self, q: &Queued, attempt: u32, retry_after: Option<Duration>) -> Next {
        // A receiver's Retry-After, but never sooner than the first retry would be.
        let floor = Duration::from_millis(self.config.retry_base_ms);
        let delay = match retry_after {
            Some(asked) => asked.max(floor),
            None => backoff(
                attempt,
                self.config.retry_base_ms,
                self.config.retry_max_delay_secs,
            ),
        };
        let due_us = now_us().saturating_add(delay.as_micros() as u64);
        let window_us = self.config.retry_window_secs.saturating_mul(1_000_000);
        if due_us > q.event.at_us.saturating_add(window_us) {
            Next::GiveUp
        } else {
            Next::Retry { due_us }
        }
    }
}

/// Adds entries read from an outbox to `window` (in order by `seq`; one read from the
/// head again brings entries the window has, which it keeps as they are, and perhaps an
/// entry that committed late between them), at most `WINDOW`.
fn merge(window: &mut Vec<Queued>, read: Vec<Queued>, depth: usize) {
    let had: HashSet<u64> = window.iter().map(|q| q.seq).collect();
    window.extend(read.into_iter().filter(|q| !had.contains(&q.seq)));
    window.sort_by_key(|q| q.seq);
    window.truncate(depth);
}

/// The entries to deliver now from the head of an outbox (`queued`, in order): each
/// item's first entry if it is due and not `flying` already, at most `max`; and when the
/// first of the others that wait for their time falls due.
fn pick<'q>(
    queued: &'q [Queued],
    now: u64,
    max: usize,
    flying: &HashSet<u64>,
) -> (Vec<&'q Queued>, Option<u64>) {
    let mut seen = HashSet::new();
    let (mut due, mut next) = (Vec::new(), None::<u64>);
    if max == 0 {
        return (due, next);
    }
    for q in queued {
        if !seen.insert(q.event.key()) || flying.contains(&q.seq) {
            continue; // behind an earlier event of its item, or on its way
        }
        if q.due_us <= now {
            due.push(q);
            if due.len() == max {
                break;
            }
        } else {
            next = Some(next.map_or(q.due_us, |n| n.min(q.due_us)));
        }
    }
    (due, next)
}

/// The delay after failed attempt `attempt` (1 for the first): `base_ms` doubled for
/// each attempt before, at most `max_secs`, drawn from the upper half (jitter, so the
/// retries of many events do not arrive together).
fn backoff(attempt: u32, base_ms: u64, max_secs: u64) -> Duration {
    let doubled = base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(30));
    let ms = doubled.min(max_secs.saturating_mul(1000)).max(1);
    Duration::from_millis(rand::rng().random_range(ms.div_ceil(2)..=ms))
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(value: &str) -> Option<Duration> {
    if let Ok(secs) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// A failed request in one line, with its causes (a refused address says why).
fn describe(e: &reqwest::Error, timeout_secs: u64) -> String {
    if e.is_timeout() {
        return format!("no answer within {timeout_secs} s");
    }
    let mut text = if e.is_connect() {
        "could not connect".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, EventType};

    fn queued(seq: u64, key: &str, due_us: u64) -> Queued {
        Queued {
            seq,
            event: Event::folder(EventType::FolderCreated, key),
            attempts: 0,
            due_us,
        }
    }

    #[test]
    fn an_item_waits_behind_its_earlier_event() {
        let q = [
            queued(1, "/a", 50), // not due: /a waits
            queued(2, "/b", 0),
            queued(3, "/a", 0),
            queued(4, "/b", 0), // behind 2
            queued(5, "/c", 0),
        ];
        let none = HashSet::new();
        let (due, next) = pick(&q, 10, 8, &none);
        let seqs: Vec<u64> = due.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, [2, 5]);
        assert_eq!(next, Some(50));
        let (due, _) = pick(&q, 10, 1, &none);
        assert_eq!(due.len(), 1);
        // On its way: its item waits, the others go.
        let (due, _) = pick(&q, 10, 8, &HashSet::from([2]));
        let seqs: Vec<u64> = due.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, [5]);
        assert!(pick(&q, 10, 0, &none).0.is_empty());
    }

    #[test]
    fn an_entry_that_committed_late_takes_its_place_in_the_window() {
        let mut window = vec![queued(1, "/a", 0), queued(3, "/a", 0)];
        window[0].attempts = 2;
        let read = vec![queued(1, "/a", 0), queued(2, "/a", 0), queued(4, "/b", 0)];
        merge(&mut window, read, WINDOW);
        let seqs: Vec<u64> = window.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(window[0].attempts, 2, "what the window knows stays");
        let (due, _) = pick(&window, 10, 8, &HashSet::new());
        let seqs: Vec<u64> = due.iter().map(|q| q.seq).collect();
        assert_eq!(seqs, [1, 4], "2 and 3 wait behind 1");
        merge(&mut window, vec![queued(5, "/c", 0)], 4);
        assert_eq!(window.len(), 4, "at most the depth");
    }

    #[test]
    fn retries_back_off_with_jitter_up_to_the_cap() {
        for attempt in 1..40 {
            let d = backoff(attempt, 1000, 3600).as_millis() as u64;
            let full = (1000u64 << (attempt - 1).min(30)).min(3_600_000);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d}");
        }
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let d = retry_after(&httpdate::fmt_http_date(later)).expect("date");
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120));
        assert_eq!(retry_after("soon"), None);
    }
}
