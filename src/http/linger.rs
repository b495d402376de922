//! A lingering close (nginx's `lingering_close`): when the server ends a connection whose
//! client may still be sending (an upload refused with 401 or 413 before its body was
//! read), closing at once would make the kernel answer the unread bytes with a reset,
//! and a reset destroys the answer still waiting in the client's receive buffer: the
//! client sees "connection reset" instead of the 401. So the write side is shut first
//! (the answer and a FIN go out), and what the client still sends is read and dropped
//! until it closes, goes quiet for `LINGER_IDLE`, or `LINGER_MAX` has passed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a lingering connection may stay quiet before it is closed.
pub const LINGER_IDLE: Duration = Duration::from_secs(1);
/// How long a lingering connection is drained at most.
pub const LINGER_MAX: Duration = Duration::from_secs(5);

/// An IO (a `TcpStream`) whose `poll_shutdown` shuts the write side, then drains.
pub struct Lingering<T> {
    io: T,
    drain: Option<Drain>,
}

struct Drain {
    until: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> Lingering<T> {
    pub fn new(io: T) -> Self {
        Self { io, drain: None }
    }

    /// A socket for hyper, closed this way.
    pub fn io(io: T) -> hyper_util::rt::TokioIo<Self> {
        hyper_util::rt::TokioIo::new(Self::new(io))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Lingering<T> {
    /// Reads and drops what the peer sends until it closes, errs or the timer fires.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(drain) = self.drain.as_mut() else {
            return Poll::Ready(());
        };
        let mut scratch = [0u8; 8192];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    let quiet_until = (Instant::now() + LINGER_IDLE).min(drain.until);
                    drain.timer.as_mut().reset(quiet_until);
                }
                Poll::Ready(_) => return Poll::Ready(()), // closed, or gone
                Poll::Pending => return drain.timer.as_mut().poll(cx),
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Lingering<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Lingering<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.drain.is_none() {
            ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            let now = Instant::now();
            this.drain = Some(Drain {
                until: now + LINGER_MAX,
                timer: Box::pin(tokio::time::sleep_until(now + LINGER_IDLE)),
            });
        }
        this.poll_drain(cx).map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A server that answers after reading 16 bytes of a 4 MB request and closes: with a
    /// lingering close the client reads the whole answer; without it the unread bytes
    /// would reset the connection.
    #[tokio::test]
    async fn a_client_still_sending_reads_the_answer_of_a_server_that_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let mut io = Lingering::new(stream);
            let mut head = [0u8; 16];
            io.read_exact(&mut head).await.expect("head");
            io.write_all(b"HTTP/1.1 401 Unauthorized\r\n\r\n")
                .await
                .expect("answer");
            io.shutdown().await.expect("lingering close");
        });
        let client = TcpStream::connect(addr).await.expect("connect");
        let (mut rx, mut tx) = client.into_split();
        let sending = tokio::spawn(async move {
            let chunk = vec![7u8; 64 * 1024];
            for _ in 0..64 {
                if tx.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            tx
        });
        let mut answer = Vec::new();
        rx.read_to_end(&mut answer)
            .await
            .expect("the answer is read in full, not reset");
        assert_eq!(answer, b"HTTP/1.1 401 Unauthorized\r\n\r\n");
        drop(sending.await.expect("sender"));
        server.await.expect("server");
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_peer_is_given_up_after_the_idle_time() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let _client = TcpStream::connect(addr).await.expect("connect");
        let (stream, _) = listener.accept().await.expect("accept");
        let mut io = Lingering::new(stream);
        let started = Instant::now();
        io.shutdown().await.expect("lingering close");
        let waited = started.elapsed();
        assert!(waited >= LINGER_IDLE && waited < LINGER_MAX, "{waited:?}");
    }
}
