//! HTTP/1.1 serving for the node's two operator surfaces, the admin JSON-RPC ([`crate::rpc`]) and
//! the `/metrics` endpoint ([`crate::metrics::http`]): one accept loop whose bounds keep slow or
//! idle clients from locking everyone else out. The inner service (jsonrpsee's, axum's router)
//! only ever sees whole requests.
//!
//! ```text
//!  TcpListener ──accept──► table::ConnTable (≤ max_connections; when full the longest-idle
//!                           connection is closed for the new one; a handler's never is)
//!      one task per connection: hyper http1 over service::TrackedIo (first byte: Waiting → Reading)
//!        │ head parsed
//!        ▼
//!  service::ConnService: body ≤ max_body_bytes, in by read_timeout from the first byte (else 408)
//!        ──► in-flight permit (≤ max_in_flight, else 429) ──► inner service ≤ handler_timeout
//!        (else 503) ──► response written within write_timeout ──► Waiting (≤ idle_timeout)
//! ```
//!
//! Each connection's task sleeps until its phase's deadline and closes the socket when it has
//! passed, so an idle keep-alive connection, a slow head or body, or a client that does not read
//! its answer each hold a place for a bounded time; and a full table makes room at once, so a
//! new caller is answered even while hundreds of idle sockets are open. Requests in flight are
//! counted apart from open connections: reading a body never holds a permit, so slow senders
//! cannot exhaust them. `max_in_flight < max_connections` guarantees that a full table always
//! holds a connection that may be evicted. What each bound did is counted ([`stats`]).
//!
//! On shutdown the listener closes at once, connections between requests are closed, and answers
//! under way get [`SHUTDOWN_GRACE`] to finish.

pub mod service;
pub mod stats;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::log_limit::LogEvery;
use service::{ConnService, Shared, TrackedIo};
pub use stats::{HttpCollector, HttpStats, Refusal};
use table::{Admission, Conn, ConnTable, DropCause, Slot};

/// The error type of inner services and bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Largest request head (request line and headers) hyper buffers: 16 KiB, twice nginx's 8 KiB
/// header buffers, ample for a JSON-RPC client or a scraper (a few hundred bytes) and for a
/// browser's cookies; a bigger head is answered 431. Bounds a connection's read buffer.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// How long answers under way may take to finish once the node shuts down. An admin call or a
/// scrape takes milliseconds; a longer one (a 30 s `opp2p_connectPeer`) is cut off rather than
/// holding up the node's exit.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Pause after an accept error other than a connection reset (typically too many open files),
/// so a persistent error does not spin the accept loop; 100 ms keeps a freed descriptor usable
/// almost at once.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One line per interval per place for events that clients can cause at will.
static LIMIT_HITS: LogEvery = LogEvery::new(Duration::from_secs(10));
static ACCEPT_ERRORS: LogEvery = LogEvery::new(Duration::from_secs(10));

/// The bounds of one server. Each server states its values and why beside them
/// ([`crate::rpc::RPC_HTTP_LIMITS`], [`crate::metrics::http::METRICS_HTTP_LIMITS`]); tests use
/// shorter timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Open connections, idle or busy. When full, the connection idle the longest is closed
    /// for the new one.
    pub max_connections: usize,
    /// Requests handled at once (after their body is in); beyond it a request gets 429. Must be
    /// below `max_connections`.
    pub max_in_flight: usize,
    /// From a request's first byte until its head and body are in; then 408, or the connection
    /// is closed.
    pub read_timeout: Duration,
    /// How long a connection may wait for its next request (keep-alive) or its first one.
    pub idle_timeout: Duration,
    /// How long the client may take to receive a response.
    pub write_timeout: Duration,
    /// How long the inner service may take to answer; then 503.
    pub handler_timeout: Duration,
    /// Largest request body; a bigger one gets 413.
    pub max_body_bytes: usize,
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The limits contradict each other.
    #[error("invalid HTTP limits: {0}")]
    Limits(&'static str),
}

impl HttpLimits {
    /// Checks that the bounds can hold: a full table must always have a connection to evict.
    pub fn validate(&self) -> Result<(), HttpError> {
        if self.max_in_flight == 0 {
            return Err(HttpError::Limits("max_in_flight must be at least 1"));
        }
        if self.max_in_flight >= self.max_connections {
            return Err(HttpError::Limits(
                "max_in_flight must be below max_connections",
            ));
        }
        let timeouts = [
            self.read_timeout,
            self.idle_timeout,
            self.write_timeout,
            self.handler_timeout,
        ];
        if timeouts.iter().any(Duration::is_zero) {
            return Err(HttpError::Limits("every timeout must be above zero"));
        }
        Ok(())
    }
}

/// Serves `service` on `listener` within `limits` until `shutdown` is cancelled; the returned
/// task ends once the listener is closed and the connections are done (at most
/// [`SHUTDOWN_GRACE`] after the cancellation).
pub fn serve<S, B>(
    listener: TcpListener,
    limits: HttpLimits,
    stats: Arc<HttpStats>,
    service: S,
    shutdown: CancellationToken,
) -> Result<JoinHandle<()>, HttpError>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    limits.validate()?;
    let shared = Arc::new(Shared {
        limits,
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        stats,
    });
    Ok(tokio::spawn(accept_loop(
        listener,
        ConnTable::new(limits.max_connections, shared.stats.clone()),
        shared,
        service,
        shutdown,
    )))
}

async fn accept_loop<S, B>(
    listener: TcpListener,
    table: Arc<ConnTable>,
    shared: Arc<Shared>,
    service: S,
    shutdown: CancellationToken,
) where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let server = shared.stats.server();
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            // Reap finished connection tasks as they end (the set stays as small as the table).
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if let Some(events) = ACCEPT_ERRORS.event() {
                    tracing::warn!(server, error = %e, events, "HTTP accept failed");
                }
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        match table.admit(Instant::now()) {
            Admission::Admitted {
                conn,
                slot,
                evicted,
            } => {
                if evicted {
                    limit_hit(&shared, DropCause::Evicted);
                }
                tasks.spawn(serve_connection(
                    stream,
                    conn,
                    slot,
                    shared.clone(),
                    service.clone(),
                    shutdown.clone(),
                ));
            }
            // Dropping the stream closes it.
            Admission::Full => limit_hit(&shared, DropCause::Refused),
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            server,
            open = tasks.len(),
            "HTTP connections cut at shutdown"
        );
    }
    // Dropping the set aborts what is left.
}

/// Errors of one incoming connection, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Counts a bound hit and logs it (one line per interval).
fn limit_hit(shared: &Shared, cause: DropCause) {
    shared.stats.dropped(cause);
    if cause != DropCause::IdleTimeout
        && let Some(events) = LIMIT_HITS.event()
    {
        tracing::info!(
            server = shared.stats.server(),
            cause = cause.label(),
            events,
            "HTTP connections closed by the server's limits"
        );
    }
}

/// Serves one connection until it ends, its phase's deadline passes, or the server stops.
async fn serve_connection<S, B>(
    stream: TcpStream,
    conn: Arc<Conn>,
    _slot: Slot,
    shared: Arc<Shared>,
    service: S,
    shutdown: CancellationToken,
) where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    // Answers go out in one write; no reason to wait for more.
    let _ = stream.set_nodelay(true);
    let limits = shared.limits;
    let io = TokioIo::new(TrackedIo {
        stream,
        conn: conn.clone(),
    });
    let service = ConnService {
        conn: conn.clone(),
        shared: shared.clone(),
        inner: service,
    };
    let http = hyper::server::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service);
    tokio::pin!(http);
    let mut stopping = false;
    loop {
        let deadline = conn.deadline(&limits);
        let expiry = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            served = http.as_mut() => {
                if let Err(e) = served {
                    tracing::trace!(server = shared.stats.server(), error = %e, "HTTP connection ended");
                }
                return;
            }
            () = conn.wake.notified() => {}
            () = expiry => match conn.expired(Instant::now(), &limits) {
                // Counted when it was evicted.
                Some(DropCause::Evicted) => return,
                Some(cause) => {
                    limit_hit(&shared, cause);
                    return;
                }
                None => {}
            },
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                if conn.is_between_requests() {
                    return;
                }
                http.as_mut().graceful_shutdown();
            }
        }
    }
}
