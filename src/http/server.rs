//! The accept loop: HTTP/1.1 and h2c on one listener (hyper-util's auto builder), caps on
//! open connections (a fast 503 past them), a deadline in every state of a connection,
//! graceful shutdown, and one log line and metric sample per request (cancelled ones
//! included).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::Ctx;
use super::conn::{Activity, Shutdown, ShutdownWatch};
use super::handlers::dispatch;
use super::handlers::ops::metrics as metrics_response;
use super::linger::Lingering;
use super::response::{Resp, error, with_public_cors};
use super::router::{Route, route};
use super::slots::Slots;
use crate::config::Server as ServerConfig;
use crate::metrics as m;
use crate::model::random_token;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Unsent bytes under which a connection's socket is writable again (`TCP_NOTSENT_LOWAT`).
#[cfg(target_os = "linux")]
const UNSENT_LOW_WATER: u32 = 128 * 1024;

/// Serves until `shutdown` resolves; then drains: `/readyz` answers 503 for
/// `server.drain_secs` while requests are still served (so a load balancer takes the node
/// out before it closes), then it stops accepting and gives in-flight requests up to
/// `server.shutdown_grace_secs` to finish.
pub async fn serve(listener: TcpListener, ctx: Arc<Ctx>, shutdown: impl Future<Output = ()>) {
    let limits = &ctx.config.server;
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    let drain = Duration::from_secs(limits.drain_secs);
    let builder = Arc::new(builder(limits));
    let slots = Slots::new(limits.max_connections, limits.max_connections_per_client);
    let connections = Shutdown::new();
    tokio::pin!(shutdown);
    let drained = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(drained);
    let mut draining = false;
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
                let slot = match slots.try_take(peer.ip()) {
                    Ok(slot) => slot,
                    Err(cap) => {
                        metrics::counter!(m::HTTP_CONNECTIONS_REFUSED, "limit" => cap.label())
                            .increment(1);
                        tokio::spawn(refuse(stream));
                        continue;
                    }
                };
                let (ctx, builder, watch) = (ctx.clone(), builder.clone(), connections.watcher());
                tokio::spawn(async move {
                    connection(stream, &builder, ctx, watch).await;
                    drop(slot);
                });
            }
            () = &mut shutdown, if !draining => {
                draining = true;
                ctx.draining.store(true, Ordering::Relaxed);
                if drain.is_zero() {
                    break;
                }
                tracing::info!(?drain, "draining: /readyz answers 503, still serving");
                drained.as_mut().reset(tokio::time::Instant::now() + drain);
            }
            () = &mut drained, if draining => break,
        }
    }
    ctx.draining.store(true, Ordering::Relaxed);
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(grace, connections.run())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "grace period over; closing remaining connections");
    }
}

/// HTTP/1.1 and h2c on one listener, with the limits from config.
fn builder(limits: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(limits.max_header_bytes);
    let mut h2 = builder.http2();
    h2.timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(limits.http2_max_streams);
    if limits.http2_keep_alive_secs > 0 {
        // A peer that does not answer a ping within the interval is gone: close.
        let every = Duration::from_secs(limits.http2_keep_alive_secs);
        h2.keep_alive_interval(Some(every))
            .keep_alive_timeout(every);
    }
    builder
}

/// One connection, with a deadline in every state: its first byte, request heads (hyper),
/// bodies (`body::Paced`), idleness between requests (here, for HTTP/2 as well) and its
/// close (`linger`); shutdown lets the request in flight finish.
async fn connection(
    stream: TcpStream,
    builder: &auto::Builder<TokioExecutor>,
    ctx: Arc<Ctx>,
    mut shutdown: ShutdownWatch,
) {
    let limits = &ctx.config.server;
    let (first_byte, idle) = (limits.header_read_timeout_secs, limits.idle_timeout_secs);
    let (first_byte, idle) = (Duration::from_secs(first_byte), Duration::from_secs(idle));
    if !sends_within(&stream, first_byte).await {
        return; // silent, or closed
    }
    let _ = stream.set_nodelay(true);
    // The kernel wakes a writer once little is left unsent (not once half its buffer has
    // drained, which on a slow reader can take longer than the idle deadline): a body
    // read steadily shows progress often (see `conn`).
    #[cfg(target_os = "linux")]
    let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_LOW_WATER);
    let activity = Activity::new(limits.min_send_rate_bytes);
    let service = {
        let (ctx, activity) = (ctx.clone(), activity.clone());
        service_fn(move |req| {
            let (ctx, activity) = (ctx.clone(), activity.clone());
            let busy = activity.begin();
            async move {
                let resp = handle(&ctx, req).await;
                // From here the body's progress is the connection's activity.
                let resp = resp.map(|body| activity.track(body));
                drop(busy);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let conn = builder.serve_connection_with_upgrades(Lingering::io(stream), service);
    tokio::pin!(conn);
    let idle_check = tokio::time::sleep(idle);
    tokio::pin!(idle_check);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = shutdown.told(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                idle_check.as_mut().reset(tokio::time::Instant::now() + idle);
            }
            () = &mut idle_check => {
                if closing {
                    // A peer that does not complete a graceful close (an HTTP/2 goodbye
                    // waits for a ping's answer) within another idle period is dropped.
                    return;
                }
                let now = tokio::time::Instant::now();
                if let Some(later) = activity.recheck_at(now, idle) {
                    idle_check.as_mut().reset(later);
                } else {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    idle_check.as_mut().reset(now + idle);
                }
            }
        }
    }
}

/// Whether a new connection sends its first byte within `deadline`. hyper-util picks
/// HTTP/1 or h2c from the first bytes, and its header timer starts only after that.
async fn sends_within(stream: &TcpStream, deadline: Duration) -> bool {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(deadline, stream.peek(&mut first)).await;
    matches!(peeked, Ok(Ok(n)) if n > 0)
}

/// Connections the separate metrics listener serves at once (scrapers are few).
const METRICS_CONNECTIONS: usize = 16;

/// The separate metrics listener (`server.metrics_listen`): `GET /metrics` only, with the
/// main listener's header deadline, a cap on open connections (past it a new one is
/// closed at once) and a pause after a failed accept (out of file descriptors).
pub async fn serve_metrics(listener: TcpListener, handle: PrometheusHandle, limits: ServerConfig) {
    let header = Duration::from_secs(limits.header_read_timeout_secs);
    // HTTP/1 only (what scrapers speak): an HTTP/2 connection could stay open idle, past
    // the header deadline, and hold one of the few slots.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header)
        .max_buf_size(limits.max_header_bytes);
    let builder = Arc::new(builder);
    let open = Arc::new(tokio::sync::Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = open.clone().try_acquire_owned() else {
            continue; // over the cap: dropped, closed
        };
        let (handle, builder) = (handle.clone(), builder.clone());
        tokio::spawn(async move {
            let _slot = slot;
            if !sends_within(&stream, header).await {
                return;
            }
            let service = service_fn(move |req: Request<Incoming>| {
                let resp = match route(req.method(), req.uri().path()) {
                    Ok(Route::Metrics) => metrics_response(&handle),
                    Ok(_) | Err(_) => error(&crate::error::ApiError::NoRoute),
                };
                async move { Ok::<_, Infallible>(resp) }
            });
            // Keep-alive idleness is bounded by the header deadline of the next request.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
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
    let request_id = request_id(&req);
    let routed = route(req.method(), req.uri().path());
    let mut outcome = Outcome {
        started: Instant::now(),
        method: req.method().clone(),
        route: routed.as_ref().map_or("unmatched", Route::template),
        request_id: request_id.clone(),
        finished: false,
    };
    // Every public route (and a wrong method on one) gets CORS headers.
    let public = req.uri().path().starts_with("/api/v1/public/");
    let sends_body = is_http1_with_body(&req);
    let resp: Response<_> = match routed {
        Ok(r) => dispatch(ctx, r, req).await.unwrap_or_else(|e| error(&e)),
        Err(e) => error(&e),
    };
    let mut resp = if public { with_public_cors(resp) } else { resp };
    if sends_body && (resp.status().is_client_error() || resp.status().is_server_error()) {
        // The body may be unread (refused at the head): say the connection ends, so the
        // client does not send its next request on a connection about to close.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp.headers_mut().insert(REQUEST_ID, request_id);
    outcome.record(resp.status().as_u16(), resp.body().size_hint().exact());
    resp
}

/// One request's log line and metric samples, written when it is answered, or (as
/// status 499, "client closed request") when the client goes away first and hyper drops
/// the request.
struct Outcome {
    started: Instant,
    method: Method,
    route: &'static str,
    request_id: HeaderValue,
    finished: bool,
}

impl Outcome {
    fn record(&mut self, status: u16, bytes: Option<u64>) {
        self.finished = true;
        let elapsed = self.started.elapsed();
        let method = m::method_label(&self.method);
        let series = m::request_series(self.route, method, status);
        series.count.increment(1);
        series.duration.record(elapsed.as_secs_f64());
        let request_id = self.request_id.to_str().unwrap_or("-");
        let latency_us = elapsed.as_micros() as u64;
        let route = self.route;
        if status == CLIENT_CLOSED {
            tracing::info!(
                request_id,
                method,
                route,
                status,
                latency_us,
                "request cancelled by the client"
            );
        } else {
            tracing::info!(
                request_id, method, route, status, bytes, latency_us, "request"
            );
        }
    }
}

/// nginx's code for a request whose client closed the connection before the answer.
const CLIENT_CLOSED: u16 = 499;

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.finished {
            self.record(CLIENT_CLOSED, None);
        }
    }
}

/// An HTTP/1 request that declares a body (HTTP/2 has no `Connection` header).
fn is_http1_with_body(req: &Request<Incoming>) -> bool {
    let h = req.headers();
    let declared = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    req.version() < hyper::Version::HTTP_2 && declared
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
