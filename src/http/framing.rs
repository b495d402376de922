//! Bounds on a multipart body's framing, before multer buffers it: multer keeps every byte
//! while it looks for the first boundary (the preamble) and for the blank line that ends a
//! part's headers, bounded only by the whole body's limit (hundreds of MB on S3). This
//! stream passes the body through unchanged, watching where it is in the form: more than
//! `MAX_FRAMING` bytes of preamble, or of one part's headers, fail the request at once.
//! It also hands the body on in slices of at most `slice` bytes a poll, so multer's buffer
//! never takes in more than that at a time (it drains whatever is ready in one go).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use memchr::memmem::Finder;

/// Preamble, or one part's headers, at most (a part's headers are a name, a filename and
/// a type: well under 1 KB from any browser or HTTP library).
pub const MAX_FRAMING: usize = 16 * 1024;

/// Framing past `MAX_FRAMING` (see the module docs).
#[derive(Debug, thiserror::Error)]
#[error("the multipart preamble or a part's headers run past {MAX_FRAMING} bytes")]
pub struct FramingTooLong;

/// Where the form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the first boundary.
    Preamble,
    /// After a boundary, before the line break ending its line (or `--`, the last one).
    Delimiter,
    /// After a boundary's line, before the blank line ending the part's headers.
    Headers,
    /// In a part's content.
    Content,
    /// After the last boundary: multer reads no further.
    Epilogue,
}

pub struct Framing<S> {
    inner: S,
    /// `--boundary` (the first may start the body) and `\r\n--boundary` (every other).
    first: Finder<'static>,
    next: Finder<'static>,
    blank: Finder<'static>,
    at: At,
    /// Bytes of preamble or of the current headers seen so far.
    framing: usize,
    /// The last bytes seen, so that a delimiter split over two chunks is still found.
    tail: Vec<u8>,
    /// Of a chunk larger than `slice`, the part not handed on yet.
    pending: Bytes,
    slice: usize,
    /// Bytes handed on since the stream last answered `Pending`.
    burst: usize,
}

impl<S> Framing<S> {
    pub fn new(inner: S, boundary: &str, slice: usize) -> Self {
        let delimiter = format!("--{boundary}").into_bytes();
        let mut after_crlf = b"\r\n".to_vec();
        after_crlf.extend_from_slice(&delimiter);
        Self {
            inner,
            first: Finder::new(&delimiter).into_owned(),
            next: Finder::new(&after_crlf).into_owned(),
            blank: Finder::new(b"\r\n\r\n").into_owned(),
            at: At::Preamble,
            framing: 0,
            tail: Vec::new(),
            pending: Bytes::new(),
            slice: slice.max(1),
            burst: 0,
        }
    }

    /// Follows the form through `chunk`.
    fn watch(&mut self, chunk: &[u8]) -> Result<(), FramingTooLong> {
        let mut seen = std::mem::take(&mut self.tail);
        let carried = seen.len(); // already counted with the chunk they came in
        seen.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let rest = &seen[pos..];
            let found = match self.at {
                At::Epilogue => return Ok(()),
                At::Preamble => self.first.find(rest).map(|i| i + self.first.needle().len()),
                // As multer reads it: `--` ends the form; else the line ends with a CRLF,
                // and only after it does the search for the headers' blank line begin.
                At::Delimiter if rest.starts_with(b"--") => {
                    self.at = At::Epilogue;
                    return Ok(());
                }
                At::Delimiter if rest.len() < 2 => None,
                At::Delimiter => memchr::memmem::find(rest, b"\r\n").map(|i| i + 2),
                At::Headers => self.blank.find(rest).map(|i| i + 4),
                At::Content => self.next.find(rest).map(|i| i + self.next.needle().len()),
            };
            let upto = found.map_or(seen.len(), |end| pos + end);
            if self.at != At::Content {
                self.framing += upto.saturating_sub(pos.max(carried));
                if self.framing > MAX_FRAMING {
                    return Err(FramingTooLong);
                }
            }
            if found.is_none() {
                break;
            }
            self.at = match self.at {
                At::Preamble | At::Content => At::Delimiter,
                At::Delimiter => At::Headers,
                At::Headers | At::Epilogue => At::Content,
            };
            self.framing = 0;
            pos = upto;
        }
        let keep = self.next.needle().len();
        self.tail = seen[seen.len().saturating_sub(keep).max(pos)..].to_vec();
        Ok(())
    }
}

impl<S, E> Stream for Framing<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: From<std::io::Error>,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.burst >= this.slice {
            // Let multer work through what it has before it takes more.
            this.burst = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.pending.is_empty() {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = this.watch(&chunk) {
                        let e = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
                        return Poll::Ready(Some(Err(E::from(e))));
                    }
                    this.pending = chunk;
                }
                Poll::Pending => {
                    this.burst = 0;
                    return Poll::Pending;
                }
                other => return other,
            }
        }
        let n = this.pending.len().min(this.slice - this.burst);
        this.burst += n;
        Poll::Ready(Some(Ok(this.pending.split_to(n))))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn stream(chunks: Vec<&'static [u8]>) -> impl Stream<Item = std::io::Result<Bytes>> + Unpin {
        futures_util::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))))
    }

    async fn pass(chunks: Vec<&'static [u8]>, slice: usize) -> std::io::Result<Vec<u8>> {
        let mut framing = Framing::new(stream(chunks), "XyZ", slice);
        let mut out = Vec::new();
        while let Some(chunk) = framing.next().await {
            let chunk = chunk?;
            assert!(chunk.len() <= slice);
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_form_passes_through_unchanged_in_slices() {
        let form: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; \
            filename=\"a.pdf\"\r\n\r\n%PDF-1.4 data\r\n--XyZ\r\nContent-Disposition: \
            form-data; name=\"alt\"\r\n\r\nhi\r\n--XyZ--\r\n";
        let (a, b) = form.split_at(9); // a delimiter split over two chunks
        assert_eq!(pass(vec![a, b], 7).await.expect("ok"), form);
    }

    #[tokio::test]
    async fn endless_preamble_or_headers_fail_early() {
        let junk: &'static [u8] = Box::leak(vec![b'a'; MAX_FRAMING + 1].into_boxed_slice());
        let preamble = pass(vec![junk], 1 << 20).await;
        assert!(preamble.is_err_and(|e| e.get_ref().is_some_and(|e| e.is::<FramingTooLong>())));
        let headers = pass(
            vec![b"--XyZ\r\nContent-Disposition: form-data; name=\"x\"", junk],
            1 << 20,
        )
        .await;
        assert!(headers.is_err());
        // Part content may be as long as it likes.
        let long = pass(
            vec![
                b"--XyZ\r\nContent-Type: a\r\n\r\n",
                junk,
                junk,
                b"\r\n--XyZ--",
            ],
            1 << 20,
        )
        .await;
        assert!(long.is_ok());
    }

    /// multer takes the CRLF ending a boundary's line before it looks for the blank line
    /// ending the headers: `--XyZ\r\n\r\n` is not an empty set of headers to it, so junk
    /// after it must count as headers here too (or multer buffers it all).
    #[tokio::test]
    async fn the_boundary_line_break_does_not_end_the_headers() {
        let junk: &'static [u8] = Box::leak(vec![b'a'; MAX_FRAMING + 1].into_boxed_slice());
        let sneaky = pass(vec![b"--XyZ\r\n\r\n", junk], 1 << 20).await;
        assert!(sneaky.is_err_and(|e| e.get_ref().is_some_and(|e| e.is::<FramingTooLong>())));
        // Split anywhere, the same.
        let split = pass(vec![b"--XyZ\r", b"\n\r", b"\n", junk], 1 << 20).await;
        assert!(split.is_err());
        // A part without headers, then content, is still a form.
        let bare = pass(
            vec![b"--XyZ\r\n\r\n\r\ndata", junk, b"\r\n--XyZ--"],
            1 << 20,
        )
        .await;
        assert!(bare.is_ok());
        // After the last boundary, multer reads nothing: an epilogue is not framing.
        let epilogue = pass(vec![b"--XyZ\r\nA: b\r\n\r\nx\r\n--XyZ--", junk], 1 << 20).await;
        assert!(epilogue.is_ok());
    }
}
