//! The req/resp concern's metrics (payload_by_number, both roles): requests served by
//! [`super::server`] and made by the sync client ([`crate::sync`]) through [`super::client`],
//! by result code and duration, the rate limits' waits and refusals, and the client's own
//! failures. Registered by this concern into the node's registry ([`crate::metrics::Metrics`]).
//!
//! ```text
//!  p2p::reqresp::server ── each stream's code, time ► req_total / req_duration{server},
//!                                                    rate-limit waits / refusals{server}
//!  sync worker (client) ── each request ────────────► req_total / req_duration{client},
//!                                                    rate-limit waits / refusals{client}
//! ```

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::client::RequestError;
use crate::metrics::{Histograms, Labels1, Labels2, Labels3, Metrics};
use crate::wire::reqresp::ResultCode;

/// Buckets of `p2p_req_duration_seconds`: op-node gives its histogram no buckets, so the Go
/// client's default buckets apply; the same here so quantiles compare.
pub const REQ_DURATION_BUCKETS: [f64; 11] = crate::metrics::GO_DEFAULT_BUCKETS;

/// The `p2p_method` label: the only req/resp method there is.
pub const PAYLOAD_BY_NUMBER: &str = "payload_by_number";

/// The `p2p_role` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReqRole {
    /// We asked (the sync client).
    Client,
    /// We answered (the payload_by_number server).
    Server,
}

impl ReqRole {
    /// Both roles.
    pub const ALL: [Self; 2] = [Self::Client, Self::Server];

    /// op-node's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }
}

/// Why a payload_by_number request was refused for rate limiting (the `cause` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateLimitRefusal {
    /// Server: the wait for a global and a per-peer token ran out (op-node `maxThrottleDelay`),
    /// answered code 3.
    WaitTimeout,
    /// Server: every stream slot was busy, answered code 3 at once.
    OverCapacity,
    /// Server: the peer already had its most streams open, answered code 3 at once.
    PeerStreams,
    /// Client: the peer answered code 3, which op-node's server answers when it throttles.
    AnsweredCode3,
}

impl RateLimitRefusal {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitTimeout => "wait_timeout",
            Self::OverCapacity => "over_capacity",
            Self::PeerStreams => "peer_streams",
            Self::AnsweredCode3 => "answered_code_3",
        }
    }

    /// The role that records this refusal.
    pub fn role(self) -> ReqRole {
        match self {
            Self::WaitTimeout | Self::OverCapacity | Self::PeerStreams => ReqRole::Server,
            Self::AnsweredCode3 => ReqRole::Client,
        }
    }
}

/// The `kind` label of a client request that failed on our side (no result code from the peer).
pub fn client_failure_kind(error: &RequestError) -> Option<&'static str> {
    match error {
        RequestError::NotFound | RequestError::ErrorCode(_) => None,
        RequestError::Open(_) => Some("open"),
        RequestError::Timeout(_) => Some("timeout"),
        RequestError::Io(_) => Some("stream"),
        RequestError::Frame(_) => Some("decode"),
        RequestError::WrongPayload(_) => Some("wrong_payload"),
    }
}

/// Every `kind` of [`client_failure_kind`].
pub const CLIENT_FAILURE_KINDS: [&str; 5] =
    ["open", "timeout", "stream", "decode", "wrong_payload"];

/// The `result_code` label op-node records for a client request: the peer's code, codes above 4
/// collapsed into "5" (op-node `ClientPayloadByNumberEvent`), and "1" for a failure on our side
/// (stream, timeout, decoding, wrong payload), as op-node's client records it.
pub fn client_result_code(result: &Result<(), &RequestError>) -> &'static str {
    match result {
        Ok(()) => "0",
        Err(RequestError::ErrorCode(code)) => result_code_label(*code),
        Err(_) => "1",
    }
}

/// A result code byte as its label, codes above 4 collapsed into "5" (bounded).
pub fn result_code_label(code: u8) -> &'static str {
    match code {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        4 => "4",
        _ => "5",
    }
}

fn req_duration_histogram() -> Histogram {
    Histogram::new(REQ_DURATION_BUCKETS)
}

/// The req/resp metrics.
#[derive(Debug)]
pub struct ReqRespMetrics {
    /// `op_node_default_p2p_req_total{p2p_role,p2p_method,result_code}` (counter): payload_by_number
    /// requests served and made, by result code.
    req_total: Family<Labels3, Counter>,
    /// `op_node_default_p2p_req_duration_seconds{p2p_role,p2p_method,result_code}` (histogram,
    /// [`REQ_DURATION_BUCKETS`]): how long each took, rate-limit waits included.
    req_duration: Histograms<Labels3>,
    /// `op_node_default_p2p_payload_by_number{p2p_role}` (gauge): the last block number requested
    /// (client) or asked of us (server).
    payload_by_number: Family<Labels1, Gauge>,
    /// `op_gossip_p2p_rate_limit_waits_total{p2p_role}` (counter): requests that waited for a
    /// rate-limit token (client: before asking; server: before answering).
    rate_limit_waits: Family<Labels1, Counter>,
    /// `op_gossip_p2p_rate_limit_refusals_total{p2p_role,cause}` (counter): requests refused
    /// for rate limiting, [`RateLimitRefusal`].
    rate_limit_refusals: Family<Labels2, Counter>,
    /// `op_gossip_p2p_client_request_failures_total{kind}` (counter): client requests that failed
    /// on our side, [`CLIENT_FAILURE_KINDS`] (op-node counts them as result code 1).
    client_failures: Family<Labels1, Counter>,
}

impl ReqRespMetrics {
    /// Registers the req/resp metrics into `metrics`, their known series at 0.
    pub fn register(metrics: &Metrics) -> Arc<Self> {
        let this = Self {
            req_total: Family::default(),
            req_duration: Family::new_with_constructor(req_duration_histogram),
            payload_by_number: Family::default(),
            rate_limit_waits: Family::default(),
            rate_limit_refusals: Family::default(),
            client_failures: Family::default(),
        };
        metrics.register_op_node(|op_node| {
            op_node.register("p2p_req", "Number of P2P requests", this.req_total.clone());
            op_node.register(
                "p2p_req_duration_seconds",
                "Duration of P2P requests",
                this.req_duration.clone(),
            );
            op_node.register(
                "p2p_payload_by_number",
                "Last block number of a payload_by_number request, by role",
                this.payload_by_number.clone(),
            );
        });
        metrics.register_own(|own| {
            own.register(
                "p2p_rate_limit_waits",
                "payload_by_number requests that waited for a rate-limit token, by role",
                this.rate_limit_waits.clone(),
            );
            own.register(
                "p2p_rate_limit_refusals",
                "payload_by_number requests refused for rate limiting, by role and cause",
                this.rate_limit_refusals.clone(),
            );
            own.register(
                "p2p_client_request_failures",
                "payload_by_number requests of ours that failed without a result code, by kind",
                this.client_failures.clone(),
            );
        });
        for role in ReqRole::ALL {
            let _ = this
                .rate_limit_waits
                .get_or_create(&[("p2p_role", role.as_str())]);
        }
        for cause in [
            RateLimitRefusal::WaitTimeout,
            RateLimitRefusal::OverCapacity,
            RateLimitRefusal::PeerStreams,
            RateLimitRefusal::AnsweredCode3,
        ] {
            let _ = this
                .rate_limit_refusals
                .get_or_create(&refusal_labels(cause));
        }
        Arc::new(this)
    }

    /// The server finished a stream: the code it answered (or, for a request it could not read,
    /// the code op-node would have answered: 3), the block asked for if it was read, and how long
    /// the stream took.
    pub fn server_request(&self, code: ResultCode, number: Option<u64>, elapsed: Duration) {
        self.request(
            ReqRole::Server,
            result_code_label(code.byte()),
            number,
            elapsed,
        );
    }

    /// The client finished a request for `number` after `elapsed`.
    pub fn client_request(
        &self,
        number: u64,
        result: Result<(), &RequestError>,
        elapsed: Duration,
    ) {
        self.request(
            ReqRole::Client,
            client_result_code(&result),
            Some(number),
            elapsed,
        );
        if let Err(e) = result {
            if matches!(e, RequestError::ErrorCode(3)) {
                self.rate_limit_refusal(RateLimitRefusal::AnsweredCode3);
            }
            if let Some(kind) = client_failure_kind(e) {
                self.client_failures.get_or_create(&[("kind", kind)]).inc();
            }
        }
    }

    fn request(&self, role: ReqRole, code: &'static str, number: Option<u64>, elapsed: Duration) {
        let labels = [
            ("p2p_role", role.as_str()),
            ("p2p_method", PAYLOAD_BY_NUMBER),
            ("result_code", code),
        ];
        self.req_total.get_or_create(&labels).inc();
        self.req_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(n) = number {
            self.payload_by_number
                .get_or_create(&[("p2p_role", role.as_str())])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// A request had to wait for a rate-limit token.
    pub fn rate_limit_wait(&self, role: ReqRole) {
        self.rate_limit_waits
            .get_or_create(&[("p2p_role", role.as_str())])
            .inc();
    }

    /// A request was refused for rate limiting.
    pub fn rate_limit_refusal(&self, cause: RateLimitRefusal) {
        self.rate_limit_refusals
            .get_or_create(&refusal_labels(cause))
            .inc();
    }
}

fn refusal_labels(cause: RateLimitRefusal) -> Labels2 {
    [
        ("p2p_role", cause.role().as_str()),
        ("cause", cause.as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_codes_follow_op_node() {
        assert_eq!(client_result_code(&Ok(())), "0");
        assert_eq!(client_result_code(&Err(&RequestError::NotFound)), "1");
        assert_eq!(client_result_code(&Err(&RequestError::ErrorCode(3))), "3");
        assert_eq!(client_result_code(&Err(&RequestError::ErrorCode(200))), "5");
        assert_eq!(
            client_result_code(&Err(&RequestError::Timeout("reading"))),
            "1"
        );
    }
}
