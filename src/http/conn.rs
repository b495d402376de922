//! Bookkeeping for one connection's life, apart from hyper: whether a request is in
//! flight or a response body still streaming, and since when it has been idle (the idle
//! deadline, which hyper has for HTTP/1 keep-alive but not for HTTP/2), and the shutdown
//! signal every connection watches (mini-redis's pattern: a watch channel to tell, a
//! sender clone per connection to count those still open).
//!
//! A response body being sent counts as activity while the client takes it at least at
//! `server.min_send_rate_bytes` a second: a frame hyper pulls (it pulls the next once the
//! last is on its way) marks progress when the bytes pulled since the last mark keep that
//! rate. So a 50 MB video read at 2 Mbit/s is not cut off, while a client that stops
//! reading, or reads a frame a minute to hold the connection, is idle from its last
//! progress.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::response::Body as RespBody;

/// Bodies up to this size go out with their head (one write): not worth tracking.
const TRACK_OVER: u64 = 64 * 1024;

/// Requests in flight on a connection (handlers running, bodies streaming) and when the
/// last one ended or made progress.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    /// Handlers running.
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the end of the last request, or the last progress of
    /// a body being sent.
    last_ms: AtomicU64,
    /// Bytes a second a response body must be taken at to count as progress (0: any).
    min_send_rate: u64,
}

impl Activity {
    pub fn new(min_send_rate: u64) -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            min_send_rate,
        })
    }

    /// Marks now as the last sign of life.
    fn stamp(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// A response body that counts as activity while it is sent (see the module docs);
    /// small bodies, which leave with their head, are not tracked.
    pub fn track(self: &Arc<Self>, body: RespBody) -> RespBody {
        if body.is_end_stream() || body.size_hint().exact().is_some_and(|n| n <= TRACK_OVER) {
            return body;
        }
        http_body_util::BodyExt::boxed(Tracked {
            body,
            activity: self.clone(),
            since: Instant::now(),
            pulled: 0,
        })
    }

    /// Marks a request in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// How long the connection has been without a request at `now` (or, while a
    /// response body streams, without progress in sending it); `None` while a handler
    /// runs (handlers have deadlines of their own).
    pub fn idle_at(&self, now: Instant) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(now.saturating_duration_since(last))
    }

    /// When to look again at a connection idle for `timeout` at most, or `None` once it
    /// has been idle that long.
    pub fn recheck_at(&self, now: Instant, timeout: Duration) -> Option<Instant> {
        match self.idle_at(now) {
            Some(quiet) if quiet >= timeout => None,
            quiet => Some(now + timeout - quiet.unwrap_or_default()),
        }
    }
}

/// A request in flight; see `Activity::begin`.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.stamp();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body whose frames mark the connection's progress (see `Activity::track`).
struct Tracked {
    body: RespBody,
    activity: Arc<Activity>,
    /// The last progress marked, and the bytes pulled since.
    since: Instant,
    pulled: u64,
}

impl Tracked {
    /// Counts `n` bytes pulled; marks progress if the pace since the last mark is kept.
    fn pulled(&mut self, n: u64) {
        self.pulled += n;
        let now = Instant::now();
        let owed = self.activity.min_send_rate as f64 * (now - self.since).as_secs_f64();
        if self.pulled as f64 >= owed {
            self.activity.stamp();
            (self.since, self.pulled) = (now, 0);
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                self.pulled(n);
            }
            Poll::Ready(_) => self.activity.stamp(), // the end, or an error
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.activity.stamp();
    }
}

/// The server's side: tells every connection to finish, then waits for them.
pub struct Shutdown {
    tell: watch::Sender<bool>,
    open: mpsc::Sender<()>,
    closed: mpsc::Receiver<()>,
}

/// A connection's side: the signal, and (by being held) one count of open connections.
#[derive(Clone)]
pub struct ShutdownWatch {
    told: watch::Receiver<bool>,
    _open: mpsc::Sender<()>,
}

impl Shutdown {
    pub fn new() -> Self {
        let (tell, _) = watch::channel(false);
        let (open, closed) = mpsc::channel(1);
        Self { tell, open, closed }
    }

    pub fn watcher(&self) -> ShutdownWatch {
        ShutdownWatch {
            told: self.tell.subscribe(),
            _open: self.open.clone(),
        }
    }

    /// Tells every connection to finish and returns once all have closed.
    pub async fn run(self) {
        let Self {
            tell,
            open,
            mut closed,
        } = self;
        let _ = tell.send(true);
        drop(open);
        // Every watcher holds a sender: `None` comes when the last one is dropped.
        let _ = closed.recv().await;
    }
}

impl ShutdownWatch {
    /// Resolves once shutdown has begun.
    pub async fn told(&mut self) {
        let _ = self.told.wait_for(|&told| told).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_time_counts_from_the_end_of_the_last_request_and_not_during_one() {
        let activity = Activity::new(0);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            activity.idle_at(Instant::now()),
            Some(Duration::from_secs(5))
        );
        let busy = activity.begin();
        tokio::time::advance(Duration::from_secs(100)).await;
        assert_eq!(activity.idle_at(Instant::now()), None);
        drop(busy);
        tokio::time::advance(Duration::from_secs(2)).await;
        let now = Instant::now();
        assert_eq!(activity.idle_at(now), Some(Duration::from_secs(2)));
        let timeout = Duration::from_secs(10);
        assert_eq!(
            activity.recheck_at(now, timeout),
            Some(now + Duration::from_secs(8))
        );
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(activity.recheck_at(Instant::now(), timeout), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_taken_below_the_minimum_rate_is_no_progress() {
        let activity = Activity::new(1000); // 1 KB a second
        let mut body = Tracked {
            body: super::super::response::empty(),
            activity: activity.clone(),
            since: Instant::now(),
            pulled: 0,
        };
        let idle = || activity.idle_at(Instant::now());
        let step = Duration::from_secs(10);
        tokio::time::advance(step).await;
        body.pulled(20_000); // 2 KB/s: progress
        assert_eq!(idle(), Some(Duration::ZERO));
        tokio::time::advance(step).await;
        body.pulled(5_000); // 0.5 KB/s (a frame now and then): no progress
        assert_eq!(idle(), Some(step));
        tokio::time::advance(step).await;
        body.pulled(30_000); // 35 KB in 20 s: the pace is kept again
        assert_eq!(idle(), Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn shutdown_waits_for_every_watcher_and_each_is_told() {
        let shutdown = Shutdown::new();
        let mut watchers: Vec<ShutdownWatch> = (0..3).map(|_| shutdown.watcher()).collect();
        let told = tokio::spawn(async move {
            for w in &mut watchers {
                w.told().await;
            }
            drop(watchers);
        });
        tokio::time::timeout(Duration::from_secs(5), shutdown.run())
            .await
            .expect("shutdown finished once every watcher was dropped");
        told.await.expect("every watcher was told");
    }
}
