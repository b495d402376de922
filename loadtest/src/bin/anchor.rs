//! The floor for `get-public`: a bare hyper 1 HTTP/1.1 server that answers every request
//! with the same JSON body (by default a ~400-byte media item; `--body FILE` serves a real
//! item's bytes), with no routing, lookup, logging or metrics.
//!
//! `anchor [--listen 127.0.0.1:0] [--body FILE]` prints the bound address on stdout.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const ITEM: &str = r##"{"data":{"id":"media_0123456789abcdef","filename":"product-photo.jpg","mimeType":"image/jpeg","width":1920,"height":1080,"alt":"Product showcase","url":"/uploads/2026/03/Xk2PqR7vLm9sT4wZ.jpg","status":"ready","variants":[{"width":1200,"height":675,"url":"/uploads/2026/03/Xk2PqR7vLm9sT4wZ-1200.webp","size":93011}],"thumbhash":"3OcRJYB4d3h/iIeHeEh3eIhw+j2w","dominantColor":"#8a7b6c"}}"##;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut body = Bytes::from_static(ITEM.as_bytes());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            "--body" => body = std::fs::read(args.next().ok_or("--body needs a file")?)?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let listener = TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let mut resp = Response::new(Full::new(body.clone()));
                resp.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
