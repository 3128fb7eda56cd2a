//! A request body that must arrive whole within a time from when its headers
//! did. The idle timeout alone would let a client hold a connection for ever
//! by sending one byte now and then; with this, the handler reading the body
//! gets an error at the deadline (axum answers 400) and the connection closes,
//! since its body was not read to the end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

/// `inner`, failing once `deadline` passes with the body still incomplete.
pub struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    allowed: Duration,
    /// Made at the first wait: most bodies are read at once and need no timer.
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    pub fn new(inner: Incoming, allowed: Duration) -> Self {
        Self {
            inner,
            deadline: Instant::now() + allowed,
            allowed,
            timer: None,
        }
    }
}

/// Why the body was cut off, for the handler's error.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}; send it whole, at once")]
pub struct BodyTooSlow(Duration);

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTooSlow(this.allowed).into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
