//! What one operation of each scenario sends: prepared once (bodies built, ids and folders
//! fetched from the server), then executed by every worker. A scenario is a weighted set of
//! operations; a single scenario is a set of one.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Method, Request};
use rand::Rng;
use rand::rngs::SmallRng;
use serde_json::{Value, json};

use crate::client::{self, Body, Client, Generated, Reply};
use crate::stats::Outcome;

/// The server under test: a base URL (validated to be http on a loopback address) and
/// an optional API key.
#[derive(Clone)]
pub struct Target {
    pub base: String,
    pub api_key: Option<String>,
}

impl Target {
    pub fn request(&self, method: Method, path: &str, auth: bool) -> hyper::http::request::Builder {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if auth && let Some(key) = &self.api_key {
            builder = builder.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        builder
    }

    /// GET `path` (with the key) and parse the JSON body; for setup, not measured.
    pub async fn get_json(&self, client: &mut Client, path: &str) -> Result<Value, String> {
        let req = self
            .request(Method::GET, path, true)
            .body(client::empty())
            .map_err(|e| e.to_string())?;
        let reply = client
            .send(req)
            .await
            .map_err(|f| format!("GET {path}: {}", f.kind()))?;
        if !reply.status.is_success() {
            return Err(format!("GET {path}: status {}", reply.status));
        }
        serde_json::from_slice(&reply.body).map_err(|e| format!("GET {path}: {e}"))
    }
}

/// A multipart/form-data body, built once and shared by every request.
#[derive(Clone)]
pub struct Multipart {
    pub content_type: String,
    pub body: Bytes,
}

const BOUNDARY: &str = "darkroom-loadtest-6b1f0c2e9a";

impl Multipart {
    /// One `files` part, plus a `folder` field.
    pub fn upload(filename: &str, mime: &str, file: &[u8], folder: &str) -> Self {
        let (head, tail) = multipart_frame(filename, mime, folder);
        let mut body = Vec::with_capacity(head.len() + file.len() + tail.len());
        body.extend_from_slice(&head);
        body.extend_from_slice(file);
        body.extend_from_slice(&tail);
        Self {
            content_type: format!("multipart/form-data; boundary={BOUNDARY}"),
            body: body.into(),
        }
    }
}

/// The bytes before and after a file's content in a one-file upload.
fn multipart_frame(filename: &str, mime: &str, folder: &str) -> (Bytes, Bytes) {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"folder\"\r\n\r\n{folder}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{filename}\"\r\n\
         Content-Type: {mime}\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    (head.into(), tail.into())
}

/// A valid one-page PDF of exactly `size` bytes (its content stream is padded).
pub fn pdf(size: usize) -> Vec<u8> {
    let text = b"BT /F1 24 Tf 72 720 Td (Darkroom load test) Tj ET\n";
    let build = |pad: usize| {
        let mut stream = text.to_vec();
        stream.extend(std::iter::repeat_n(b'%', pad));
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_owned(),
        ];
        for (i, obj) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{obj}\nendobj\n", i + 1).bytes());
        }
        offsets.push(out.len());
        out.extend(format!("4 0 obj\n<< /Length {} >>\nstream\n", stream.len()).bytes());
        out.extend(&stream);
        out.extend(b"\nendstream\nendobj\n");
        let xref = out.len();
        out.extend(b"xref\n0 5\n0000000000 65535 f \n");
        for o in offsets {
            out.extend(format!("{o:010} 00000 n \n").bytes());
        }
        out.extend(
            format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").bytes(),
        );
        out
    };
    // The /Length and offset digits grow with the padding: settle in a few steps.
    let mut pad = size.saturating_sub(build(0).len());
    let mut doc = build(pad);
    for _ in 0..4 {
        if doc.len() == size || (pad == 0 && doc.len() > size) {
            break;
        }
        pad = (pad + size).saturating_sub(doc.len());
        doc = build(pad);
    }
    doc
}

/// A photo-like JPEG of `width`x`height` (smooth gradients plus noise, so it compresses
/// like a camera picture rather than a flat test card); `seed` varies the content.
pub fn jpeg(width: u16, height: u16, seed: u64) -> Result<Vec<u8>, String> {
    use rand::SeedableRng;
    let mut rng = SmallRng::seed_from_u64(seed);
    let (w, h) = (usize::from(width), usize::from(height));
    let mut pixels = Vec::with_capacity(w * h * 3);
    let phase = (seed % 97) as f32;
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let wave = ((fx * 9.0 + phase).sin() * (fy * 7.0).cos() * 60.0) as i32;
            let noise: i32 = rng.random_range(-24..=24);
            let base = [
                110 + wave,
                90 + (fy * 120.0) as i32,
                140 - (fx * 100.0) as i32,
            ];
            pixels.extend(base.iter().map(|c| (c + noise).clamp(0, 255) as u8));
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// One kind of operation.
pub enum Op {
    /// GET /api/v1/public/media/{id} for a random id.
    GetPublic { ids: Vec<String> },
    /// GET a random prepared listing (path and query).
    List { paths: Vec<String> },
    /// POST /api/v1/media with a random prepared body.
    Upload { bodies: Vec<Multipart>, wait: bool },
    /// POST /api/v1/media with one generated PDF of `bytes`, streamed as it is sent.
    UploadLarge { bytes: u64 },
    /// presign → PUT to the store → confirm, timed as one operation.
    Presign {
        file: Bytes,
        filename: String,
        mime: String,
    },
}

/// Weighted operations; `pick` chooses one per iteration.
pub struct Scenario {
    pub name: String,
    ops: Vec<(u32, Op)>,
    total: u32,
}

impl Scenario {
    pub fn new(name: &str, ops: Vec<(u32, Op)>) -> Self {
        let total = ops.iter().map(|(w, _)| w).sum();
        Self {
            name: name.to_owned(),
            ops,
            total,
        }
    }

    pub fn pick(&self, rng: &mut SmallRng) -> &Op {
        let mut n = rng.random_range(0..self.total.max(1));
        for (weight, op) in &self.ops {
            if n < *weight {
                return op;
            }
            n -= weight;
        }
        &self.ops[0].1
    }
}

impl Op {
    pub async fn execute(
        &self,
        client: &mut Client,
        target: &Target,
        rng: &mut SmallRng,
    ) -> Outcome {
        match self {
            Op::GetPublic { ids } => {
                let id = &ids[rng.random_range(0..ids.len())];
                let path = format!("/api/v1/public/media/{id}");
                send(
                    client,
                    target.request(Method::GET, &path, false),
                    client::empty(),
                    0,
                )
                .await
            }
            Op::List { paths } => {
                let path = &paths[rng.random_range(0..paths.len())];
                send(
                    client,
                    target.request(Method::GET, path, true),
                    client::empty(),
                    0,
                )
                .await
            }
            Op::Upload { bodies, wait } => {
                let mp = &bodies[rng.random_range(0..bodies.len())];
                let path = if *wait {
                    "/api/v1/media?wait=true"
                } else {
                    "/api/v1/media"
                };
                let req = target
                    .request(Method::POST, path, true)
                    .header(CONTENT_TYPE, &mp.content_type);
                let sent = mp.body.len() as u64;
                send(client, req, client::full(mp.body.clone()), sent).await
            }
            Op::UploadLarge { bytes } => {
                let (head, tail) = multipart_frame("large.pdf", "application/pdf", "/loadtest");
                let file_head = Bytes::from_static(b"%PDF-1.4\n%");
                let mut framed = head.to_vec();
                framed.extend_from_slice(&file_head);
                let filler = bytes.saturating_sub(file_head.len() as u64 + 7);
                let mut closing = b"\n%%EOF\n".to_vec();
                closing.extend_from_slice(&tail);
                let body = Generated::new(framed.into(), filler, closing.into());
                let sent = body.total_len();
                let req = target.request(Method::POST, "/api/v1/media", true).header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                );
                send(client, req, http_body_util::BodyExt::boxed(body), sent).await
            }
            Op::Presign {
                file,
                filename,
                mime,
            } => presign(client, target, file, filename, mime).await,
        }
    }
}

async fn send(
    client: &mut Client,
    req: hyper::http::request::Builder,
    body: Body,
    sent: u64,
) -> Outcome {
    exchange(client, req, body, sent).await.0
}

/// Sends one request of `sent` body bytes: how it went, and the reply when one came.
async fn exchange(
    client: &mut Client,
    req: hyper::http::request::Builder,
    body: Body,
    sent: u64,
) -> (Outcome, Option<Reply>) {
    let Ok(req) = req.body(body) else {
        return (Outcome::failed("protocol"), None);
    };
    match client.send(req).await {
        Ok(reply) => (outcome(&reply, sent), Some(reply)),
        Err(f) => (Outcome::failed(f.kind()), None),
    }
}

fn outcome(reply: &Reply, sent: u64) -> Outcome {
    let retry_after = matches!(reply.status.as_u16(), 429 | 503)
        .then(|| reply.headers.get(RETRY_AFTER))
        .flatten()
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    Outcome {
        status: Some(reply.status.as_u16()),
        error: None,
        bytes_sent: sent,
        bytes_received: reply.body.len() as u64,
        retry_after,
    }
}

/// The three steps of a presigned upload. The store's URL must be on the same host as the
/// target (the harness never sends anywhere else).
async fn presign(
    client: &mut Client,
    target: &Target,
    file: &Bytes,
    filename: &str,
    mime: &str,
) -> Outcome {
    let size = file.len() as u64;
    let mut total = Outcome::default();
    let ask = json!({"filename": filename, "mimeType": mime, "size": size}).to_string();
    let req = target
        .request(Method::POST, "/api/v1/media/presign", true)
        .header(CONTENT_TYPE, "application/json");
    let (asked, reply) = step(client, req, ask.into()).await;
    total.add(&asked);
    let Some(grant) = reply.filter(|_| asked.ok()) else {
        return total;
    };
    let Ok(grant) = serde_json::from_slice::<Value>(&grant.body) else {
        return Outcome::failed("protocol");
    };
    let (Some(url), Some(key)) = (grant["uploadUrl"].as_str(), grant["storageKey"].as_str()) else {
        return Outcome::failed("protocol");
    };
    if !same_host(url, &target.base) {
        return Outcome::failed("foreign-upload-url");
    }
    let put = Request::builder().method(Method::PUT).uri(url).header(
        CONTENT_TYPE,
        grant["headers"]["Content-Type"].as_str().unwrap_or(mime),
    );
    let (step_put, _) = step(client, put, file.clone()).await;
    total.add(&step_put);
    if !step_put.ok() {
        return total;
    }
    let confirm = json!({"storageKey": key, "filename": filename, "mimeType": mime, "size": size, "folder": "/loadtest"});
    let req = target
        .request(Method::POST, "/api/v1/media/confirm", true)
        .header(CONTENT_TYPE, "application/json");
    let (step_confirm, _) = step(client, req, confirm.to_string().into()).await;
    total.add(&step_confirm);
    total
}

/// One step of a presigned upload, with a body of `bytes`.
async fn step(
    client: &mut Client,
    req: hyper::http::request::Builder,
    bytes: Bytes,
) -> (Outcome, Option<Reply>) {
    let sent = bytes.len() as u64;
    exchange(client, req, client::full(bytes), sent).await
}

impl Outcome {
    /// Folds a later step into a multi-step operation: bytes add up, the status and error
    /// are the last step's.
    fn add(&mut self, step: &Outcome) {
        self.status = step.status;
        self.error = step.error;
        self.retry_after = step.retry_after;
        self.bytes_sent += step.bytes_sent;
        self.bytes_received += step.bytes_received;
    }
}

/// True when `url` names the same host as `base` (the port may differ: the store listens
/// on its own).
fn same_host(url: &str, base: &str) -> bool {
    let host = |u: &str| {
        u.parse::<hyper::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
    };
    host(url).is_some() && host(url) == host(base)
}

/// How long a closed-loop worker pauses after a response asked it to.
pub fn backoff(outcome: &Outcome) -> Option<Duration> {
    outcome.retry_after.map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pdf_has_the_asked_size_and_a_pdf_shape() {
        for size in [1_000, 100_000, 102_400] {
            let doc = pdf(size);
            assert_eq!(doc.len(), size);
            assert!(doc.starts_with(b"%PDF-1.4\n"));
            assert!(doc.ends_with(b"%%EOF\n"));
            let text = String::from_utf8_lossy(&doc);
            let xref: usize = text
                .rsplit("startxref\n")
                .next()
                .and_then(|t| t.lines().next()?.parse().ok())
                .expect("startxref");
            assert!(
                doc[xref..].starts_with(b"xref\n"),
                "startxref points at the xref table"
            );
        }
    }

    #[test]
    fn generated_jpeg_has_its_size_in_the_header() {
        let jpg = jpeg(64, 48, 1).expect("encode");
        assert!(jpg.starts_with(&[0xFF, 0xD8]));
        // The SOF0 segment: FF C0, length, precision, then height and width.
        let sof = jpg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("SOF0");
        assert_eq!(u16::from_be_bytes([jpg[sof + 5], jpg[sof + 6]]), 48);
        assert_eq!(u16::from_be_bytes([jpg[sof + 7], jpg[sof + 8]]), 64);
    }

    #[test]
    fn weighted_pick_follows_the_weights() {
        let ops = vec![
            (
                3,
                Op::List {
                    paths: vec!["/a".into()],
                },
            ),
            (
                1,
                Op::GetPublic {
                    ids: vec!["x".into()],
                },
            ),
        ];
        let scenario = Scenario::new("mixed", ops);
        let mut rng = SmallRng::seed_from_u64(7);
        let lists = (0..4000)
            .filter(|_| matches!(scenario.pick(&mut rng), Op::List { .. }))
            .count();
        assert!((2850..3150).contains(&lists), "{lists} of 4000 were lists");
    }

    #[test]
    fn upload_urls_must_stay_on_the_target_host() {
        assert!(same_host(
            "http://127.0.0.1:18333/b/k?sig",
            "http://127.0.0.1:8080"
        ));
        assert!(!same_host(
            "http://10.0.0.1:18333/b/k",
            "http://127.0.0.1:8080"
        ));
        assert!(!same_host("not a url", "http://127.0.0.1:8080"));
    }

    #[test]
    fn retry_after_is_read_only_from_429_and_503() {
        let reply = |status: u16| Reply {
            status: hyper::StatusCode::from_u16(status).expect("status"),
            headers: [(RETRY_AFTER, hyper::header::HeaderValue::from_static("2"))]
                .into_iter()
                .collect(),
            body: Bytes::new(),
        };
        assert_eq!(outcome(&reply(503), 0).retry_after, Some(2));
        assert_eq!(outcome(&reply(200), 0).retry_after, None);
    }
}
