//! The `/metrics` endpoint (`--metrics.enabled`, `--metrics.addr`, `--metrics.port`): `GET
//! /metrics` answers the registry as OpenMetrics text; every other path or method is 404.
//!
//! Bounded like the rest of the node: at most [`MAX_CONNECTIONS`] connections at once (further
//! ones wait in the kernel's backlog until a slot frees up), and each connection lives at most
//! [`CONNECTION_LIFETIME`], so a client that never finishes its request cannot hold a slot, or
//! delay shutdown, for longer. The server stops accepting when the node's shutdown token is
//! cancelled and ends once the connections in progress have finished.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// The OpenMetrics text content type (what `prometheus_client`'s text encoder writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Connections served at once: a scraper or two (Prometheus keeps one connection alive per
/// target), plus room for an operator's curl; the rest wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest life of one connection: Prometheus's default scrape timeout (10 s). A scrape takes
/// milliseconds; a kept-alive scraper connection is simply reopened on its next scrape.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {reason}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why.
    pub reason: String,
}

/// Binds the endpoint's socket (before anything else of the node starts, so a taken port is a
/// clear start-up error).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr).await.map_err(|e| MetricsError {
        addr,
        reason: e.to_string(),
    })
}

/// Serves `metrics` on `listener` until `shutdown` is cancelled.
pub fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let listener = BoundedListener {
        inner: listener,
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
    };
    tokio::spawn(async move {
        let served = axum::serve(listener, router(metrics))
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
        tracing::debug!("metrics endpoint stopped");
    })
}

/// `GET /metrics`; 404 for everything else.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape).fallback(not_found))
        .fallback(not_found)
        .with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// A TCP listener that accepts a connection only when one of its slots is free.
struct BoundedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match self.slots.clone().acquire_owned().await {
            Ok(permit) => permit,
            // The semaphore is never closed; should it be, accept nothing more.
            Err(_) => std::future::pending().await,
        };
        // axum's own accept retries (with a pause) on errors such as too many open files.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (
            BoundedStream {
                stream,
                deadline: Box::pin(tokio::time::sleep(CONNECTION_LIFETIME)),
                _slot: permit,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that holds a slot and fails every read and write after its lifetime.
struct BoundedStream {
    stream: TcpStream,
    deadline: Pin<Box<Sleep>>,
    _slot: OwnedSemaphorePermit,
}

impl BoundedStream {
    /// Ready with an error once the lifetime is over (and registers the wake-up until then).
    fn expired(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.deadline
            .as_mut()
            .poll(cx)
            .is_ready()
            .then(|| io::Error::new(io::ErrorKind::TimedOut, "metrics connection lifetime over"))
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
