//! What a run measured: latencies in an HDR histogram (microseconds, 3 significant digits),
//! outcomes by status and by error kind, bytes each way. Each worker keeps its own
//! `Recorder`; they are merged once at the end, so recording never contends.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies above an hour are clamped to it (a stalled run still reports a number).
const MAX_MICROS: u64 = 3_600_000_000;

/// How one operation ended, as the engine records it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// The HTTP status of the last response, if one arrived.
    pub status: Option<u16>,
    /// Why no (or no acceptable) response arrived: "connect", "io", "timeout", "protocol".
    pub error: Option<&'static str>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Seconds from a Retry-After header on a 429/503.
    pub retry_after: Option<u64>,
}

impl Outcome {
    pub fn failed(kind: &'static str) -> Self {
        Self {
            error: Some(kind),
            ..Self::default()
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub struct Recorder {
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    bytes_sent: u64,
    bytes_received: u64,
    retry_after: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency: Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            bytes_sent: 0,
            bytes_received: 0,
            retry_after: 0,
        }
    }
}

impl Recorder {
    pub fn record(&mut self, outcome: &Outcome, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, MAX_MICROS);
        self.latency.saturating_record(micros);
        if let Some(status) = outcome.status {
            *self.statuses.entry(status).or_default() += 1;
        }
        if let Some(kind) = outcome.error {
            *self.errors.entry(kind).or_default() += 1;
        }
        self.bytes_sent += outcome.bytes_sent;
        self.bytes_received += outcome.bytes_received;
        self.retry_after += u64::from(outcome.retry_after.is_some());
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        for (status, n) in &other.statuses {
            *self.statuses.entry(*status).or_default() += n;
        }
        for (kind, n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.retry_after += other.retry_after;
    }

    /// The figures of a measured window of `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let requests = self.latency.len();
        let ok: u64 = self
            .statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        Summary {
            seconds: secs,
            requests,
            ok,
            requests_per_s: requests as f64 / secs,
            ok_per_s: ok as f64 / secs,
            latency_ms: Latency {
                mean: self.latency.mean() / 1000.0,
                p50: ms(0.50),
                p90: ms(0.90),
                p99: ms(0.99),
                p999: ms(0.999),
                max: self.latency.max() as f64 / 1000.0,
            },
            statuses: self
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            errors: self
                .errors
                .iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect(),
            retry_after_responses: self.retry_after,
            bytes_sent: self.bytes_sent,
            bytes_received: self.bytes_received,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// The measured window, as printed and as written by `--json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub seconds: f64,
    /// Operations completed in the window (any outcome).
    pub requests: u64,
    /// Operations answered 2xx.
    pub ok: u64,
    pub requests_per_s: f64,
    pub ok_per_s: f64,
    pub latency_ms: Latency,
    /// Final response status → count.
    pub statuses: BTreeMap<String, u64>,
    /// Failures without an acceptable response, by kind.
    pub errors: BTreeMap<String, u64>,
    /// 429/503 responses that carried Retry-After.
    pub retry_after_responses: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Summary {
    pub fn print(&self) {
        let l = &self.latency_ms;
        println!(
            "{:>10} ops in {:.1} s: {:.1} ops/s, {:.1} ok/s",
            self.requests, self.seconds, self.requests_per_s, self.ok_per_s
        );
        println!(
            "latency ms: mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            l.mean, l.p50, l.p90, l.p99, l.p999, l.max
        );
        println!("statuses: {}", counts(&self.statuses));
        if !self.errors.is_empty() {
            println!("errors: {}", counts(&self.errors));
        }
        if self.retry_after_responses > 0 {
            println!("responses with Retry-After: {}", self.retry_after_responses);
        }
        println!(
            "bytes: sent {:.1} MB, received {:.1} MB",
            self.bytes_sent as f64 / 1e6,
            self.bytes_received as f64 / 1e6
        );
    }
}

/// `key: count, key: count`.
fn counts(map: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = map.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16) -> Outcome {
        Outcome {
            status: Some(status),
            bytes_sent: 10,
            bytes_received: 100,
            ..Outcome::default()
        }
    }

    #[test]
    fn merged_recorders_give_quantiles_counts_and_rates() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for ms in 1..=99 {
            a.record(&outcome(200), Duration::from_millis(ms));
        }
        b.record(&outcome(503), Duration::from_millis(1000));
        b.record(&Outcome::failed("timeout"), Duration::from_secs(5));
        a.merge(&b);
        let s = a.summary(Duration::from_secs(2));
        assert_eq!(s.requests, 101);
        assert_eq!(s.ok, 99);
        assert!((s.ok_per_s - 49.5).abs() < 1e-9);
        assert!(
            (s.latency_ms.p50 - 51.0).abs() < 0.1,
            "p50 {}",
            s.latency_ms.p50
        );
        assert!(
            (s.latency_ms.p99 - 1000.0).abs() < 1.0,
            "p99 {}",
            s.latency_ms.p99
        );
        assert!(
            (s.latency_ms.max - 5000.0).abs() < 5.0,
            "max {}",
            s.latency_ms.max
        );
        assert_eq!(s.statuses.get("503"), Some(&1));
        assert_eq!(s.errors.get("timeout"), Some(&1));
        assert_eq!(s.bytes_sent, 1000);
    }

    #[test]
    fn only_2xx_without_error_is_ok() {
        assert!(outcome(201).ok());
        assert!(!outcome(503).ok());
        assert!(!Outcome::failed("io").ok());
    }
}
