//! What the server's own `/metrics` says about image jobs, read around the measured window
//! so that `upload-images` reports the processing rate the server sustained.

use std::collections::BTreeMap;

use crate::client::{self, Client};
use crate::scenario::Target;

/// The server's finished image jobs and backlog, from /metrics; None when it has none.
pub struct Jobs {
    pub ready: f64,
    pub failed: f64,
    pub backlog: f64,
}

pub async fn server_jobs(target: &Target, client: &mut Client) -> Option<Jobs> {
    let req = target
        .request(hyper::Method::GET, "/metrics", false)
        .body(client::empty())
        .ok()?;
    let reply = client.send(req).await.ok()?;
    if !reply.status.is_success() {
        return None;
    }
    let text = String::from_utf8_lossy(&reply.body);
    let jobs = parse_jobs(&text);
    // A Darkroom before its first image job has no job series yet: that counts as zero.
    text.contains("darkroom_").then(|| Jobs {
        ready: jobs.get("ready").copied().unwrap_or(0.0),
        failed: jobs.get("failed").copied().unwrap_or(0.0),
        backlog: metric_sum(&text, "darkroom_processing_backlog"),
    })
}

/// darkroom_processing_jobs_total by outcome.
fn parse_jobs(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix("darkroom_processing_jobs_total{"))
        .filter_map(|rest| {
            let (labels, value) = rest.split_once("} ")?;
            let outcome = labels
                .split(',')
                .find_map(|l| l.strip_prefix("outcome=\""))?;
            Some((
                outcome.trim_end_matches('"').to_owned(),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_counters_are_read_from_the_exposition() {
        let text = "# TYPE darkroom_processing_jobs_total counter\n\
                    darkroom_processing_jobs_total{outcome=\"ready\"} 12\n\
                    darkroom_processing_jobs_total{outcome=\"failed\"} 1\n\
                    darkroom_processing_backlog 40\n\
                    darkroom_processing_backlog_other 7\n";
        let jobs = parse_jobs(text);
        assert_eq!(jobs.get("ready"), Some(&12.0));
        assert_eq!(jobs.get("failed"), Some(&1.0));
        assert_eq!(metric_sum(text, "darkroom_processing_backlog"), 40.0);
    }
}
