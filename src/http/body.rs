//! Request bodies under deadlines: every body (an upload's multipart stream, a JSON object)
//! is read through `Paced`, which gives up on a client that sends nothing for
//! `server.body_idle_timeout_secs`, or less than `server.min_body_rate_bytes` a second
//! averaged over `server.min_body_rate_window_secs` (a trickle that would hold a
//! connection and a spool for as long as it likes).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Body, Incoming};
use tokio::time::{Instant, Sleep};

use crate::config::Server;
use crate::error::ApiError;

/// Why a body was abandoned (answered 408).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stall {
    #[error("the client sent nothing for {0} s; the request was abandoned")]
    Idle(u64),
    #[error("the body arrived slower than {0} bytes/s; the request was abandoned")]
    TooSlow(u64),
}

/// The rule, from config.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    idle: Duration,
    /// Bytes each window must bring (0: no minimum rate).
    quota: u64,
    window: Duration,
}

impl Pace {
    pub fn new(server: &Server) -> Self {
        let window = server.min_body_rate_window_secs.max(1);
        Self {
            idle: Duration::from_secs(server.body_idle_timeout_secs),
            quota: server.min_body_rate_bytes * window,
            window: Duration::from_secs(window),
        }
    }

    fn stall_idle(&self) -> Stall {
        Stall::Idle(self.idle.as_secs())
    }
}

/// Where a body stands against its `Pace`: a window opens at the first byte awaited and
/// must bring `quota` bytes before it closes; the next one opens with the first chunk
/// after that.
#[derive(Debug)]
struct Progress {
    window_start: Instant,
    in_window: u64,
    last_chunk: Instant,
}

impl Progress {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            in_window: 0,
            last_chunk: now,
        }
    }

    /// Counts a chunk that arrived at `now`.
    fn received(&mut self, pace: &Pace, now: Instant, len: u64) {
        if now >= self.window_start + pace.window {
            self.window_start = now;
            self.in_window = 0;
        }
        self.in_window += len;
        self.last_chunk = now;
    }

    /// By when the next chunk must arrive, and what it is if it does not.
    fn deadline(&self, pace: &Pace) -> (Instant, Stall) {
        let idle = (self.last_chunk + pace.idle, pace.stall_idle());
        let window_end = self.window_start + pace.window;
        if pace.quota > 0 && self.in_window < pace.quota && window_end < idle.0 {
            (
                window_end,
                Stall::TooSlow(pace.quota / pace.window.as_secs()),
            )
        } else {
            idle
        }
    }
}

/// A request body as a stream of data chunks, failing with `Stall` (as an `io::Error` of
/// kind `TimedOut`, which is what multer passes through) when the client falls behind.
pub struct Paced {
    body: Incoming,
    pace: Pace,
    progress: Progress,
    timer: Pin<Box<Sleep>>,
    stall: Stall,
}

impl Paced {
    pub fn new(body: Incoming, server: &Server) -> Self {
        let pace = Pace::new(server);
        let progress = Progress::new(Instant::now());
        let (deadline, stall) = progress.deadline(&pace);
        Self {
            body,
            pace,
            progress,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            stall,
        }
    }

    /// Reads the whole body (at most `limit` bytes) under the same deadlines.
    pub async fn collect(mut self, limit: usize) -> Result<Bytes, ApiError> {
        use futures_util::StreamExt;
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await {
            let chunk = chunk.map_err(body_error)?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::TooLarge {
                    limit: limit as u64,
                });
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.into())
    }
}

impl Stream for Paced {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    this.progress
                        .received(&this.pace, Instant::now(), data.len() as u64);
                    let (deadline, stall) = this.progress.deadline(&this.pace);
                    this.timer.as_mut().reset(deadline);
                    this.stall = stall;
                    return Poll::Ready(Some(Ok(data)));
                }
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(std::io::Error::other(e))));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    ready!(this.timer.as_mut().poll(cx));
                    let stall = std::io::Error::new(std::io::ErrorKind::TimedOut, this.stall);
                    return Poll::Ready(Some(Err(stall)));
                }
            }
        }
    }
}

/// What a failed body read means for the client: a `Stall` is 408, anything else (the
/// connection broke) a body cut short.
pub fn body_error(e: std::io::Error) -> ApiError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Stall>()) {
        Some(stall) => ApiError::Timeout(*stall),
        None => ApiError::bad_request("invalid_body", "the request body was cut short"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(idle: u64, rate: u64, window: u64) -> Pace {
        Pace {
            idle: Duration::from_secs(idle),
            quota: rate * window,
            window: Duration::from_secs(window),
        }
    }

    #[test]
    fn a_window_short_of_its_quota_ends_the_body_at_the_window_end() {
        let pace = pace(30, 1024, 10);
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.received(&pace, t0 + Duration::from_secs(2), 1);
        let (deadline, stall) = p.deadline(&pace);
        assert_eq!(deadline, t0 + Duration::from_secs(10));
        assert_eq!(stall, Stall::TooSlow(1024));
    }

    #[test]
    fn a_window_that_met_its_quota_only_has_the_idle_deadline() {
        let pace = pace(30, 1024, 10);
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.received(&pace, t0 + Duration::from_secs(1), 10 * 1024);
        assert_eq!(
            p.deadline(&pace),
            (t0 + Duration::from_secs(31), Stall::Idle(30))
        );
        // The next chunk after the window opens a new one, with its own quota.
        p.received(&pace, t0 + Duration::from_secs(12), 10);
        assert_eq!(
            p.deadline(&pace),
            (t0 + Duration::from_secs(22), Stall::TooSlow(1024))
        );
    }

    #[test]
    fn without_a_minimum_rate_only_idleness_counts() {
        let pace = pace(30, 0, 10);
        let t0 = Instant::now();
        let mut p = Progress::new(t0);
        p.received(&pace, t0 + Duration::from_secs(5), 1);
        assert_eq!(
            p.deadline(&pace),
            (t0 + Duration::from_secs(35), Stall::Idle(30))
        );
    }

    #[test]
    fn an_idle_deadline_before_the_window_end_wins() {
        let pace = pace(3, 1024, 10);
        let t0 = Instant::now();
        let p = Progress::new(t0);
        assert_eq!(
            p.deadline(&pace),
            (t0 + Duration::from_secs(3), Stall::Idle(3))
        );
    }

    #[test]
    fn stalls_map_to_408_and_broken_bodies_to_400() {
        let stall = std::io::Error::new(std::io::ErrorKind::TimedOut, Stall::Idle(30));
        assert!(matches!(
            body_error(stall),
            ApiError::Timeout(Stall::Idle(30))
        ));
        let broken = std::io::Error::other("connection reset");
        assert!(matches!(body_error(broken), ApiError::BadRequest { .. }));
    }
}
