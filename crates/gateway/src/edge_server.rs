//! Serving HTTP connections with bounds, so that idle or slow clients cannot
//! take the edge down:
//!
//! - a cap on open connections ([`EdgeLimits::max_connections`]): past it,
//!   new connections wait in the kernel's accept queue (they hold none of our
//!   file descriptors) until one closes;
//! - a header-read timeout: a client that does not send a request's headers
//!   in time is closed (HTTP/1.1, hyper's own timer);
//! - an idle timeout: a connection that moved no byte either way for that
//!   long is closed gracefully (a request in flight is finished first, so a
//!   quiet SSE stream is not cut; an HTTP/2 connection gets a GOAWAY);
//! - a deadline for a request's body ([`body_deadline`]): one byte now and
//!   then does not keep a connection for ever;
//! - a cap per client address ([`client_slots`]): past it, a new connection
//!   from that address gets a 429 and is closed.
//!
//! Requests carry the peer's address as `ConnectInfo<SocketAddr>`, as
//! `axum::serve` did.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::Service;

mod body_deadline;
mod client_slots;

use body_deadline::DeadlineBody;
use client_slots::ClientSlots;

/// The edge's connection bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections one client address may hold open at once.
    pub max_connections_per_client: usize,
    /// Addresses not held to `max_connections_per_client` (the trusted proxies).
    pub uncapped_clients: Vec<std::net::IpAddr>,
    /// Longest a client may take to send a request's headers.
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request's body, from its headers.
    pub body_read_timeout: Duration,
    /// Longest a connection may stay open moving no byte.
    pub idle_timeout: Duration,
}

impl EdgeLimits {
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 256;
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// The cap when none is configured: half the process's open-file limit
    /// (the rest is for the bus, the database and webhooks), at most this.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

    /// Half the soft open-file limit, at most [`Self::DEFAULT_MAX_CONNECTIONS`].
    pub fn default_max_connections() -> usize {
        let soft = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(soft, _hard)| soft)
            .unwrap_or(1024);
        usize::try_from(soft / 2)
            .unwrap_or(usize::MAX)
            .clamp(1, Self::DEFAULT_MAX_CONNECTIONS)
    }
}

/// Serve `app` on `listener` until `stop` fires, then finish the requests in
/// flight (connections are shut down gracefully) and return.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: EdgeLimits,
    stop: impl Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let client_slots = ClientSlots::new(
        limits.max_connections_per_client,
        limits.uncapped_clients.clone(),
    );
    let (stopping, stop_seen) = watch::channel(false);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let builder = Arc::new(builder);
    tokio::pin!(stop);
    loop {
        // A free slot first: at the cap, connections wait in the kernel's queue.
        let slot = tokio::select! {
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accept failed; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let Some(client_slot) = client_slots.take(peer.ip()) else {
            tracing::debug!(%peer, "refusing a connection over the client's share");
            client_slots::refuse(stream, client_slots.per_client());
            continue;
        };
        // Answers go out as soon as they are written, not held back by Nagle's
        // algorithm waiting for the client's ack of an earlier segment.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
        let app = app.clone();
        let builder = builder.clone();
        let stop_seen = stop_seen.clone();
        let timeouts = (limits.idle_timeout, limits.body_read_timeout);
        tokio::spawn(async move {
            serve_connection(&builder, stream, peer, app, timeouts, stop_seen).await;
            drop(client_slot);
            drop(slot);
        });
    }
    let _ = stopping.send(true);
    // Every connection holds a slot until it ends: having them all means all ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn serve_connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    (idle_timeout, body_read_timeout): (Duration, Duration),
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let request = request.map(|body| DeadlineBody::new(body, body_read_timeout));
        app.clone().call(request)
    });
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    // When a graceful close was asked; one that neither ends nor moves a byte
    // for another idle timeout (a client that stopped reading) is dropped.
    let mut closing_since: Option<Instant> = None;
    loop {
        let idle_left = idle_timeout.saturating_sub(activity.idle_for());
        let wait = match closing_since {
            None => idle_left,
            Some(since) => idle_left.max(idle_timeout.saturating_sub(since.elapsed())),
        };
        tokio::select! {
            outcome = connection.as_mut() => {
                if let Err(e) = outcome {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep(wait) => {
                if activity.idle_for() < idle_timeout {
                    continue;
                }
                match closing_since {
                    None => {
                        tracing::debug!(%peer, "closing an idle connection");
                        connection.as_mut().graceful_shutdown();
                        closing_since = Some(Instant::now());
                    }
                    Some(since) if since.elapsed() >= idle_timeout => {
                        tracing::debug!(%peer, "dropping a connection stuck without progress");
                        return;
                    }
                    Some(_) => {}
                }
            }
            changed = stopping.changed(), if closing_since.is_none() => {
                if changed.is_err() || *stopping.borrow() {
                    connection.as_mut().graceful_shutdown();
                    closing_since = Some(Instant::now());
                }
            }
        }
    }
}

/// When a connection last moved a byte.
#[derive(Clone)]
struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last byte read or written.
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// A stream that notes in [`Activity`] every byte it moves.
struct Tracked {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
