//! The engine. `concurrency` workers, each with its own connection, run operations either
//! closed-loop (the next starts when the last ends) or open-loop (operation k is due at
//! start + k/rate, and its latency counts from when it was due, so a stalled server cannot
//! hide the requests it delayed: no coordinated omission). Operations before the warm-up
//! ends run but are not recorded. A progress line is printed each second.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::client::Client;
use crate::scenario::{Scenario, Target, backoff};
use crate::stats::{Outcome, Recorder};

#[derive(Clone, Copy, Debug)]
pub enum Pace {
    Closed,
    /// Operations per second, spread evenly over the run.
    Open(f64),
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub concurrency: usize,
    pub pace: Pace,
    pub warmup: Duration,
    /// The measured window (a cap when `requests` is set).
    pub duration: Duration,
    /// Stop after this many measured operations.
    pub requests: Option<u64>,
    /// Per operation; a timed-out operation counts as error kind "timeout".
    pub timeout: Duration,
    /// Closed loop only: pause a worker for a response's Retry-After, as a polite client does.
    pub honor_retry_after: bool,
}

/// What the run recorded, and the measured window it covers.
pub struct Report {
    pub recorder: Recorder,
    pub window: Duration,
}

struct Shared {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    /// Open loop: the index of the next operation to schedule.
    next: AtomicU64,
    /// Measured operations claimed so far (for `requests`).
    claimed: AtomicU64,
    stop: AtomicBool,
    done: AtomicU64,
    ok: AtomicU64,
    /// The last completion, in microseconds after `start`.
    last_done_us: AtomicU64,
}

pub async fn run(plan: &Plan, scenario: Arc<Scenario>, target: Arc<Target>) -> Report {
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let shared = Arc::new(Shared {
        start,
        measure_from,
        end: measure_from + plan.duration,
        next: AtomicU64::new(0),
        claimed: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        done: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        last_done_us: AtomicU64::new(0),
    });
    let ticker = tokio::spawn(progress(shared.clone()));
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|i| {
            let (plan, scenario, target, shared) = (
                plan.clone(),
                scenario.clone(),
                target.clone(),
                shared.clone(),
            );
            tokio::spawn(async move { worker(i as u64, &plan, &scenario, &target, &shared).await })
        })
        .collect();
    let mut recorder = Recorder::default();
    for w in workers {
        if let Ok(rec) = w.await {
            recorder.merge(&rec);
        }
    }
    ticker.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    let last_done = start + Duration::from_micros(shared.last_done_us.load(Ordering::Relaxed));
    Report {
        recorder,
        window: last_done.saturating_duration_since(measure_from),
    }
}

async fn worker(
    i: u64,
    plan: &Plan,
    scenario: &Scenario,
    target: &Target,
    shared: &Shared,
) -> Recorder {
    let mut client = Client::default();
    let mut rec = Recorder::default();
    let mut rng = SmallRng::seed_from_u64(0x5eed ^ i);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let due = match plan.pace {
            Pace::Closed => Instant::now(),
            Pace::Open(rate) => {
                let k = shared.next.fetch_add(1, Ordering::Relaxed);
                shared.start + Duration::from_secs_f64(k as f64 / rate)
            }
        };
        if due >= shared.end {
            break;
        }
        let measured = due >= shared.measure_from;
        if measured
            && let Some(n) = plan.requests
            && shared.claimed.fetch_add(1, Ordering::Relaxed) >= n
        {
            shared.stop.store(true, Ordering::Relaxed);
            break;
        }
        sleep_until(due).await;
        let op = scenario.pick(&mut rng);
        let outcome = match timeout(plan.timeout, op.execute(&mut client, target, &mut rng)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                client.reset();
                Outcome::failed("timeout")
            }
        };
        let now = Instant::now();
        if measured {
            rec.record(&outcome, now - due);
            shared.done.fetch_add(1, Ordering::Relaxed);
            shared
                .ok
                .fetch_add(u64::from(outcome.ok()), Ordering::Relaxed);
            let at = (now - shared.start).as_micros() as u64;
            shared.last_done_us.fetch_max(at, Ordering::Relaxed);
        }
        if matches!(plan.pace, Pace::Closed)
            && plan.honor_retry_after
            && let Some(pause) = backoff(&outcome)
        {
            sleep(pause.min(shared.end.saturating_duration_since(now))).await;
        }
    }
    rec
}

/// One line a second on stderr: elapsed, operations and successes per second (rewritten
/// in place on a terminal, one line each otherwise).
async fn progress(shared: Arc<Shared>) {
    let (start, end) = if std::io::stderr().is_terminal() {
        ("\r", "      ")
    } else {
        ("", "\n")
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_done, mut last_ok) = (0, 0);
    loop {
        tick.tick().await;
        let (done, ok) = (
            shared.done.load(Ordering::Relaxed),
            shared.ok.load(Ordering::Relaxed),
        );
        let phase = if Instant::now() < shared.measure_from {
            " (warm-up)"
        } else {
            ""
        };
        eprint!(
            "{start}{:>5.0} s  {:>9} ops/s  {:>9} ok/s  {:>10} ops{phase}{end}",
            shared.start.elapsed().as_secs_f64(),
            done - last_done,
            ok - last_ok,
            done
        );
        (last_done, last_ok) = (done, ok);
    }
}
