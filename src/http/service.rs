//! The per-connection side of [`super::serve`]: the socket wrapper that notices the first byte
//! of a request, the hyper service that reads the body within the request's deadline, takes an
//! in-flight permit and runs the inner service (jsonrpsee, axum) within the handler timeout, and
//! the response body that returns the connection to waiting once it is sent. Each step moves the
//! connection's [`Phase`](super::table::Phase) in the [`ConnTable`](super::table::ConnTable).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

use super::stats::{HttpStats, Refusal};
use super::table::{Conn, DropCause};
use super::{BoxError, HttpLimits};
use crate::log_limit::LogEvery;

/// The body of every response the servers write.
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// What every connection of one server shares.
#[derive(Debug)]
pub(super) struct Shared {
    /// The bounds.
    pub limits: HttpLimits,
    /// Requests handled at once ([`HttpLimits::max_in_flight`] permits).
    pub in_flight: Arc<Semaphore>,
    /// What the bounds did.
    pub stats: Arc<HttpStats>,
}

/// One line per interval for inner-service errors (a caller could cause them at will).
static SERVICE_ERRORS: LogEvery = LogEvery::new(Duration::from_secs(10));

/// The socket, telling the connection's phase when bytes arrive.
pub(super) struct TrackedIo {
    pub stream: TcpStream,
    pub conn: Arc<Conn>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.conn.on_read(Instant::now());
        }
        polled
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A response body that returns its connection to waiting when it is sent (or dropped).
pub struct TrackedBody {
    inner: ResponseBody,
    sent: Option<EndOfRequest>,
}

/// Ends the connection's request when dropped.
struct EndOfRequest(Arc<Conn>);

impl Drop for EndOfRequest {
    fn drop(&mut self) {
        self.0.end_request(Instant::now());
    }
}

impl Body for TrackedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            this.sent = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The hyper service of one connection over the server's inner service `S`.
pub(super) struct ConnService<S> {
    pub conn: Arc<Conn>,
    pub shared: Arc<Shared>,
    pub inner: S,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnService<S>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let conn = self.conn.clone();
        let shared = self.shared.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let response = handle(request, &conn, &shared, inner).await;
            conn.begin_writing(Instant::now());
            Ok(response.map(|inner| TrackedBody {
                inner,
                sent: Some(EndOfRequest(conn)),
            }))
        })
    }
}

/// Reads the body, takes a permit, runs the inner service; every bound hit is a short answer.
async fn handle<S, B>(
    request: Request<Incoming>,
    conn: &Conn,
    shared: &Shared,
    inner: S,
) -> Response<ResponseBody>
where
    S: tower::Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let limits = &shared.limits;
    let stats = &shared.stats;
    // The head is in; the body must follow within the same deadline.
    let deadline = conn.read_deadline(Instant::now(), limits);
    let (parts, body) = request.into_parts();
    let max = limits.max_body_bytes;
    if body.size_hint().lower() > u64::try_from(max).unwrap_or(u64::MAX) {
        stats.refused(Refusal::TooLarge);
        return short(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
    }
    let bytes = match tokio::time::timeout_at(deadline, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            stats.refused(Refusal::TooLarge);
            return short(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        }
        // The client broke off or sent a malformed chunked body.
        Ok(Err(_)) => return short(StatusCode::BAD_REQUEST, "cannot read the request body\n"),
        Err(_) => {
            stats.dropped(DropCause::ReadTimeout);
            return short(
                StatusCode::REQUEST_TIMEOUT,
                "request not received in time\n",
            );
        }
    };
    let Ok(_permit) = shared.in_flight.clone().try_acquire_owned() else {
        stats.refused(Refusal::InFlight);
        return short(
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests in progress; retry\n",
        );
    };
    if !conn.begin_handling() {
        return short(StatusCode::SERVICE_UNAVAILABLE, "connection closed\n");
    }
    let request = Request::from_parts(parts, Full::new(bytes));
    match tokio::time::timeout(limits.handler_timeout, inner.oneshot(request)).await {
        Ok(Ok(response)) => response.map(|body| body.map_err(Into::into).boxed_unsync()),
        Ok(Err(e)) => {
            let e: BoxError = e.into();
            if let Some(events) = SERVICE_ERRORS.event() {
                tracing::warn!(server = stats.server(), error = %e, events, "HTTP handler failed");
            }
            short(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
        Err(_) => {
            stats.refused(Refusal::HandlerTimeout);
            short(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request took too long\n",
            )
        }
    }
}

/// A plain-text answer of the server itself. Anything but 429 closes the connection: its body
/// may be unread, or the client is not behaving.
fn short(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status != StatusCode::TOO_MANY_REQUESTS {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
