//! A worker's HTTP/1.1 client: one kept-alive hyper connection per host, reconnected when
//! the server closes it. Each worker owns its client, so no pool is shared or locked, and
//! N workers hold exactly N connections to the target.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HOST, HeaderValue};
use hyper::{HeaderMap, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response read to its end.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no response; the engine counts these by kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Failure {
    Connect,
    Io,
}

impl Failure {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Io => "io",
        }
    }
}

#[derive(Default)]
pub struct Client {
    conns: HashMap<String, SendRequest<Body>>,
}

impl Client {
    /// Sends `req` (an absolute URI) on this worker's connection to its host and reads the
    /// whole response.
    pub async fn send(&mut self, mut req: Request<Body>) -> Result<Reply, Failure> {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or(Failure::Connect)?;
        // On the wire: origin-form request target plus Host, as a browser sends it.
        let origin: Uri = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| Failure::Connect)?;
        *req.uri_mut() = origin;
        let host = HeaderValue::from_str(&authority).map_err(|_| Failure::Connect)?;
        req.headers_mut().insert(HOST, host);

        let sender = self.connection(&authority).await?;
        let result = sender.send_request(req).await;
        let resp = match result {
            Ok(resp) => resp,
            Err(_) => {
                self.conns.remove(&authority);
                return Err(Failure::Io);
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                self.conns.remove(&authority);
                return Err(Failure::Io);
            }
        };
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Drops every connection (after a timeout the old one may still carry a late reply).
    pub fn reset(&mut self) {
        self.conns.clear();
    }

    async fn connection(&mut self, authority: &str) -> Result<&mut SendRequest<Body>, Failure> {
        let reusable = match self.conns.get_mut(authority) {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let sender = connect(authority).await?;
            self.conns.insert(authority.to_owned(), sender);
        }
        self.conns.get_mut(authority).ok_or(Failure::Connect)
    }
}

async fn connect(authority: &str) -> Result<SendRequest<Body>, Failure> {
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|_| Failure::Connect)?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Failure::Connect)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.ready().await.map_err(|_| Failure::Connect)?;
    Ok(sender)
}

/// A request body made on the fly: `head`, then `len` filler bytes in 64 KiB chunks, then
/// `tail`. Large uploads are generated as they are sent, never held in memory.
pub struct Generated {
    head: Option<Bytes>,
    tail: Option<Bytes>,
    chunk: Bytes,
    left: u64,
}

impl Generated {
    pub fn new(head: Bytes, len: u64, tail: Bytes) -> Self {
        Self {
            head: Some(head),
            tail: Some(tail),
            chunk: Bytes::from(vec![b' '; 64 * 1024]),
            left: len,
        }
    }

    pub fn total_len(&self) -> u64 {
        self.head.as_ref().map_or(0, |h| h.len() as u64)
            + self.left
            + self.tail.as_ref().map_or(0, |t| t.len() as u64)
    }
}

impl HttpBody for Generated {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if self.left > 0 {
            let n = self.left.min(self.chunk.len() as u64);
            self.left -= n;
            let chunk = self.chunk.slice(..n as usize);
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Poll::Ready(self.tail.take().map(|t| Ok(Frame::data(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.left == 0 && self.tail.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.total_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn generated_body_streams_head_filler_and_tail_with_exact_length() {
        let body = Generated::new(Bytes::from_static(b"<"), 200_000, Bytes::from_static(b">"));
        assert_eq!(body.size_hint().exact(), Some(200_002));
        let bytes = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(bytes.len(), 200_002);
        assert_eq!(bytes[0], b'<');
        assert_eq!(bytes[200_001], b'>');
        assert!(bytes[1..200_001].iter().all(|&b| b == b' '));
    }
}
