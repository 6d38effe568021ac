//! The `/metrics` endpoint (`--metrics.enabled`, `--metrics.addr`, `--metrics.port`): `GET
//! /metrics` answers the registry as OpenMetrics text; every other path or method is 404.
//!
//! Served by the node's shared HTTP server ([`crate::http`]) within [`METRICS_HTTP_LIMITS`]: the
//! endpoint listens on every interface by default (op-node's default), so anyone who can reach
//! the port can open sockets on it; idle and slow ones are closed after a bounded time, and a
//! full connection table closes the longest-idle one for a new caller, so a scraper is answered
//! even while hundreds of idle sockets are open. The server stops accepting when the node's
//! shutdown token is cancelled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::http::{HttpLimits, HttpStats};

/// The OpenMetrics text content type (what `prometheus_client`'s text encoder writes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The endpoint's HTTP bounds.
pub const METRICS_HTTP_LIMITS: HttpLimits = HttpLimits {
    // A scraper or two (Prometheus keeps one connection per target) and an operator's curl need
    // a handful; 64 leaves room, and a full table closes its longest-idle connection for a new
    // one, so more sockets cost only their memory (a task and a read buffer each).
    max_connections: 64,
    // Scrapes encode the registry under one lock, so parallel scrapes queue anyway; 4 lets two
    // scrapers and an operator overlap. A fifth gets 429 and the scraper retries next interval.
    max_in_flight: 4,
    // A scrape request is one small head sent at once; 5 s covers a slow WAN link.
    read_timeout: Duration::from_secs(5),
    // Longer than Prometheus's usual 15 s scrape interval, so a scraper's keep-alive connection
    // is reused; at a 1 m interval it reconnects per scrape, which costs one TCP handshake.
    idle_timeout: Duration::from_secs(30),
    // Prometheus's default scrape timeout: a scrape not delivered by then has failed anyway.
    write_timeout: Duration::from_secs(10),
    handler_timeout: Duration::from_secs(10),
    // Nothing here reads a body; a small one (a stray POST) is read and answered 404.
    max_body_bytes: 4 * 1024,
};

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source}")]
pub struct MetricsError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why.
    pub source: MetricsFailure,
}

/// What failed when the endpoint started.
#[derive(Debug, thiserror::Error)]
pub enum MetricsFailure {
    /// Binding or reading the socket.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The HTTP bounds contradict each other.
    #[error(transparent)]
    Limits(#[from] crate::http::HttpError),
}

/// Binds the endpoint's socket (before anything else of the node starts, so a taken port is a
/// clear start-up error).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr).await.map_err(|e| MetricsError {
        addr,
        source: e.into(),
    })
}

/// Serves `metrics` on `listener` within `limits` until `shutdown` is cancelled; what the limits
/// did is counted in `stats`.
pub fn spawn(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    limits: HttpLimits,
    stats: Arc<HttpStats>,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, MetricsError> {
    let addr = listener
        .local_addr()
        .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    crate::http::serve(listener, limits, stats, router(metrics), shutdown).map_err(|e| {
        MetricsError {
            addr,
            source: e.into(),
        }
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
