//! The accept loop: HTTP/1.1 and h2c on one listener (hyper-util's auto builder), a cap
//! on open connections (a fast 503 past it), deadlines for a connection's first byte and
//! for request heads, every connection watched for graceful shutdown, and one log line
//! and metric sample per request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::Ctx;
use super::handlers::dispatch;
use super::handlers::ops::metrics as metrics_response;
use super::response::{Resp, error, with_public_cors};
use super::router::{Route, route};
use super::slots::Slots;
use crate::metrics as m;
use crate::model::random_token;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Serves until `shutdown` resolves, then stops accepting and gives in-flight requests
/// up to `server.shutdown_grace_secs` to finish.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, shutdown: impl Future<Output = ()>) {
    let limits = &ctx.config.server;
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .max_header_list_size(limits.max_header_bytes as u32);
    let builder = Arc::new(builder);
    let first_byte = Duration::from_secs(limits.header_read_timeout_secs);
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let permit = match slots.try_take(peer.ip()) {
                    Ok(slot) => slot,
                    Err(cap) => {
                        metrics::counter!(m::HTTP_CONNECTIONS_REFUSED, "limit" => cap.label())
                            .increment(1);
                        tokio::spawn(refuse(stream));
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                let service = service_fn(move |req| {
                    let ctx = ctx.clone();
                    async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
                });
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                tokio::spawn(async move {
                    // hyper-util picks HTTP/1 or h2c from the first bytes, and the header
                    // timer starts only after that: a client must send something within the
                    // same deadline, or its slot goes back.
                    let mut first = [0u8; 1];
                    match tokio::time::timeout(first_byte, stream.peek(&mut first)).await {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return, // silent, or closed: the permit is released here
                    }
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            () = &mut shutdown => break,
        }
    }
    ctx.draining.store(true, Ordering::Relaxed);
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "grace period over; closing remaining connections");
    }
}

/// The separate metrics listener (`server.metrics_listen`): `GET /metrics` only.
pub async fn serve_metrics(listener: TcpListener, handle: PrometheusHandle) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let resp = match route(req.method(), req.uri().path()) {
                Ok(Route::Metrics) => metrics_response(&handle),
                Ok(_) | Err(_) => error(&crate::error::ApiError::NoRoute),
            };
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(conn);
    }
}

/// Over the connection cap: answer 503 at once and close, rather than queue.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":{"status":503,"code":"overloaded","message":"too many open connections, retry shortly"}}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(BODY.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// Routes, dispatches, maps errors, adds CORS to public routes, records metrics and
/// logs one line.
async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = request_id(&req);
    let routed = route(&method, req.uri().path());
    let template = routed.as_ref().map_or("unmatched", Route::template);
    // Every public route (and a wrong method on one) gets CORS headers.
    let public = req.uri().path().starts_with("/api/v1/public/");
    let resp: Response<_> = match routed {
        Ok(r) => dispatch(ctx, r, req).await.unwrap_or_else(|e| error(&e)),
        Err(e) => error(&e),
    };
    let mut resp = if public { with_public_cors(resp) } else { resp };
    resp.headers_mut().insert(REQUEST_ID, request_id.clone());

    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    let method_label = method.as_str().to_owned();
    metrics::counter!(m::HTTP_REQUESTS, "route" => template, "method" => method_label.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(m::HTTP_DURATION, "route" => template, "method" => method_label)
        .record(elapsed.as_secs_f64());
    tracing::info!(
        request_id = request_id.to_str().unwrap_or("-"),
        %method,
        route = template,
        status,
        bytes = resp.body().size_hint().exact(),
        latency_us = elapsed.as_micros() as u64,
        "request"
    );
    resp
}

/// The client's `X-Request-Id` when it is short and printable, else a new one.
fn request_id(req: &Request<Incoming>) -> HeaderValue {
    req.headers()
        .get(&REQUEST_ID)
        .filter(|v| (1..=128).contains(&v.len()) && v.as_bytes().iter().all(u8::is_ascii_graphic))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&random_token(16)).unwrap_or(HeaderValue::from_static("-"))
        })
}
