//! The accept loop: HTTP/1.1 and h2c on one listener (hyper-util's auto builder), every
//! connection watched for graceful shutdown, one log line per request.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::Ctx;
use super::handlers::dispatch;
use super::response::{Resp, error, with_public_cors};
use super::router::{Route, route};

/// Serves until `shutdown` resolves, then stops accepting and gives in-flight requests
/// up to `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let ctx = ctx.clone();
                let service = service_fn(move |req| {
                    let ctx = ctx.clone();
                    async move { Ok::<_, Infallible>(handle(&ctx, req).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?grace, "grace period over; closing remaining connections");
    }
}

/// Routes, dispatches, maps errors, adds CORS to public routes, logs one line.
async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let routed = route(&method, &path);
    let public = matches!(
        routed,
        Ok(Route::PublicList | Route::PublicGet(_) | Route::PublicPreflight)
    ) || path.starts_with("/api/v1/public/");
    let resp: Response<_> = match routed {
        Ok(r) => dispatch(ctx, r, req).await.unwrap_or_else(|e| error(&e)),
        Err(e) => error(&e),
    };
    let resp = if public { with_public_cors(resp) } else { resp };
    tracing::info!(
        %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_us = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}
