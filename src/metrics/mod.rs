//! Prometheus metrics: one [`Metrics`] struct owning one `prometheus_client` registry, served as
//! OpenMetrics text at `GET /metrics` by [`http`] when `--metrics.enabled` is set.
//!
//! ## Where metrics sit in the data flow
//!
//! ```text
//!  p2p::EventLoop ── connection up/down ──────────► peer count, ADD_PEER / REMOVE_PEER
//!       │         ── publish accepted ─────────────► PUBLISH_MESSAGE (+ DELIVER_MESSAGE)
//!       │         ── gossipsub SlowPeer ───────────► DROP_RPC
//!       │         ── every 15 s: each connected peer's score, taken apart
//!       │            (p2p::peers::breakdown) ──────► peer_scores{type} histogram
//!       ▼
//!  validation task ── verdict + static reason ─────► validation{verdict,reason},
//!                                                    DELIVER / REJECT / DUPLICATE_MESSAGE,
//!                                                    invalid-block penalties{kind}
//!  p2p::reqresp::server ── each stream's code, time ► req_total / req_duration{server},
//!                                                    rate-limit waits / refusals{server}
//!  sync worker (client) ── each request ────────────► req_total / req_duration{client},
//!                                                    rate-limit waits / refusals{client}
//!
//!  at scrape time (no hook on any hot path):
//!  p2p::gate::GateStats ──────────────────────────► p2p_dials{allow}, p2p_accepts{allow}
//!  p2p::peers::bans::BanList ─────────────────────► p2p_peer_unbans, peer bans
//!  gossipsub's own metrics (its `metrics` feature) ► op_gossip_gossipsub_* (mesh, GRAFT/PRUNE
//!                                                    reasons, queues; labelled by topic only)
//! ```
//!
//! Recording is a few relaxed atomic operations (behind a read lock for labelled families), and is
//! always on: the same code path runs whether or not the HTTP endpoint is enabled, and tests can
//! read [`Metrics::encode`] without a server.
//!
//! ## Names
//!
//! What op-node also measures keeps op-node's name under the `op_node_default` namespace
//! (`shared/spec/op-p2p.md` §10.2), so existing dashboards work. Three op-node counters have no
//! `_total` suffix (`p2p_dials`, `p2p_accepts`, `p2p_peer_unbans`); an OpenMetrics counter must
//! end in `_total`, so they are exposed as type `unknown` to keep op-node's exact series name.
//! Everything op-node lacks is prefixed `op_gossip_`.
//!
//! ## Bounded labels
//!
//! Every label value comes from a fixed enum or a `&'static str` in a known list (validation
//! reasons are [`crate::validate::ValidationError::REASONS`] plus the event loop's own
//! [`LOOP_REASONS`]; anything else would be counted as `other`). No peer id, address, block hash
//! or number is ever a label. gossipsub's own metrics are labelled by topic (it tracks at most
//! [`GOSSIPSUB_MAX_TOPICS`]) and by small enums of its own (message type, churn reason...).
//!
//! ## What op-node has and we do not (yet)
//!
//! `p2p_stream_count`, `p2p_bandwidth_bytes_total` and `p2p_payloads_quarantine_total`. Of op-node's gossip event types, rust-libp2p's gossipsub does
//! not report RECV_RPC, SEND_RPC, GRAFT and PRUNE to the application: they are never counted here
//! (mesh inclusions and removals by reason are in `op_gossip_gossipsub_mesh_peer_*`).

pub mod http;
pub mod pipeline;
pub mod scores;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::p2p::gate::GateStats;
use crate::p2p::peers::app_score::PeerOutcome;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::breakdown::ScoreBreakdown;
use crate::p2p::reqresp::client::RequestError;
use crate::validate::{ValidationError, Verdict};
use crate::wire::reqresp::ResultCode;

/// Namespace of the metrics op-node also has (`op_node_<process name>`, "default" when op-node
/// runs without a process name, which is how it is deployed).
pub const NAMESPACE: &str = "op_node_default";
/// Prefix of the metrics that are ours alone.
pub const OWN_PREFIX: &str = "op_gossip";
/// Sub-prefix (under [`OWN_PREFIX`]) of rust-libp2p gossipsub's own metrics.
pub const GOSSIPSUB_PREFIX: &str = "gossipsub";

/// op-node's `peer_scores` buckets (op-node `metrics/p2p.go`): from the ban threshold (−100) up
/// through the graylist (−40) and gossip (−10) thresholds to the +40 a well-behaved peer can reach.
pub const PEER_SCORE_BUCKETS: [f64; 18] = [
    -100.0, -40.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, -0.05, 0.0, 0.05, 0.5, 1.0, 2.0, 5.0,
    10.0, 20.0, 40.0,
];

/// Buckets of `p2p_req_duration_seconds`: op-node gives its histogram no buckets, so the Go
/// client's default buckets (`prometheus.DefBuckets`) apply; the same here so quantiles compare.
pub const REQ_DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often every connected peer's score is sampled into `peer_scores`: op-node's scorebook
/// snapshot runs from gossipsub's score inspection every 15 s (`peerScoreInspectFrequency`), so a
/// histogram rate means the same thing on both nodes.
pub const PEER_SCORE_SAMPLE_INTERVAL: Duration = crate::p2p::peers::scorebook::SNAPSHOT_INTERVAL;

/// op-node's `/metrics` port (`--metrics.port`).
pub const DEFAULT_METRICS_PORT: u16 = 7300;

/// Topics gossipsub's own metrics track at most: the chain's four block topics (V1..V4), which is
/// all our subscription filter lets in.
pub const GOSSIPSUB_MAX_TOPICS: usize = 4;

/// The `p2p_method` label: the only req/resp method there is.
pub const PAYLOAD_BY_NUMBER: &str = "payload_by_number";

/// Validation reasons the event loop adds to the validator's own
/// ([`ValidationError::REASONS`]): every `reason` label is in one of the two lists.
pub const LOOP_REASONS: [&str; 4] = [
    // Validation took longer than op-node's 3 s validator timeout (IGNORE).
    "validation_timeout",
    // The validation queue was full (IGNORE, op-node's "validation queue full" drop).
    "validation_queue_full",
    // A topic our subscription filter should have kept out (REJECT).
    "unknown_topic",
    // Devnet `--drop` / `--test.lose-gossip`: the delivery was lost on purpose (IGNORE).
    "simulated_loss",
];

/// The reason label of an ACCEPT.
pub const ACCEPT_REASON: &str = "none";
/// The reason label of a reason in neither list (never expected; keeps the label set bounded).
pub const OTHER_REASON: &str = "other";

/// Settings of the metrics (`--metrics.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics` is served (`--metrics.addr`, `--metrics.port`; port 0 = any free port);
    /// `None` when `--metrics.enabled` is off. Metrics are recorded either way.
    pub listen: Option<SocketAddr>,
    /// How often peer scores are sampled ([`PEER_SCORE_SAMPLE_INTERVAL`]; tests shorten it).
    pub score_sample_interval: Duration,
    /// The endpoint's HTTP bounds ([`http::METRICS_HTTP_LIMITS`]; tests shorten the timeouts).
    pub http: crate::http::HttpLimits,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            score_sample_interval: PEER_SCORE_SAMPLE_INTERVAL,
            http: http::METRICS_HTTP_LIMITS,
        }
    }
}

/// op-node's gossip event types (go-libp2p-pubsub's trace event names) that we can observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GossipEvent {
    /// We published a message (our own block).
    PublishMessage,
    /// A message passed validation and was delivered (and forwarded); as in go-libp2p-pubsub,
    /// our own published messages are delivered too.
    DeliverMessage,
    /// A message failed validation with REJECT or IGNORE (go-libp2p-pubsub traces both, and a
    /// full validation queue, as a rejection) other than [`Self::DuplicateMessage`].
    RejectMessage,
    /// A block we had already accepted arrived again under another message id (our IGNORE
    /// `already_seen`). Copies with the same message id are dropped inside rust-libp2p's
    /// gossipsub and are not counted.
    DuplicateMessage,
    /// A peer connected (its first connection).
    AddPeer,
    /// A peer disconnected (its last connection closed).
    RemovePeer,
    /// Messages to a slow peer dropped because its send queue was full (gossipsub `SlowPeer`).
    DropRpc,
    /// We subscribed to a block topic (four at start-up).
    Join,
    /// We unsubscribed from a topic (never happens: always 0).
    Leave,
}

impl GossipEvent {
    /// Every type we record, created at 0 so dashboards see the series from the start.
    pub const ALL: [Self; 9] = [
        Self::PublishMessage,
        Self::DeliverMessage,
        Self::RejectMessage,
        Self::DuplicateMessage,
        Self::AddPeer,
        Self::RemovePeer,
        Self::DropRpc,
        Self::Join,
        Self::Leave,
    ];

    /// op-node's label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PublishMessage => "PUBLISH_MESSAGE",
            Self::DeliverMessage => "DELIVER_MESSAGE",
            Self::RejectMessage => "REJECT_MESSAGE",
            Self::DuplicateMessage => "DUPLICATE_MESSAGE",
            Self::AddPeer => "ADD_PEER",
            Self::RemovePeer => "REMOVE_PEER",
            Self::DropRpc => "DROP_RPC",
            Self::Join => "JOIN",
            Self::Leave => "LEAVE",
        }
    }
}

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

/// Label sets: arrays of (name, value) pairs, values always `&'static str` from the enums above.
type Labels1 = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];
type Labels3 = [(&'static str, &'static str); 3];
/// A family of histograms sharing one set of buckets.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn peer_score_histogram() -> Histogram {
    Histogram::new(PEER_SCORE_BUCKETS)
}

fn req_duration_histogram() -> Histogram {
    Histogram::new(REQ_DURATION_BUCKETS)
}

/// What the scrape reads directly from the stats the network keeps anyway.
#[derive(Debug, Clone)]
pub struct MetricSources {
    /// The connection gate's counters.
    pub gate: Arc<GateStats>,
    /// The ban book (bans and expiries).
    pub bans: Arc<BanList>,
}

/// The node's metrics. Shared as `Arc<Metrics>` by the event loop, the validation tasks, the
/// req/resp server, the sync client and the HTTP endpoint.
#[derive(Debug)]
pub struct Metrics {
    /// The one registry. Behind a mutex only because gossipsub registers its metrics when the
    /// swarm is built, after this struct is shared; scrapes hold it while encoding.
    registry: Mutex<Registry>,
    /// How often `peer_scores` is sampled.
    score_sample_interval: Duration,
    /// Whether `/metrics` is served (gossipsub's own metrics are recorded only then).
    served: bool,
    /// `op_node_default_p2p_peer_count` (gauge): connected peers.
    peer_count: Gauge,
    /// `op_node_default_p2p_gossip_events_total{type}` (counter): gossip events, [`GossipEvent`].
    gossip_events: Family<Labels1, Counter>,
    /// `op_node_default_peer_scores{type}` (histogram, [`PEER_SCORE_BUCKETS`]): each connected
    /// peer's score components, sampled every [`PEER_SCORE_SAMPLE_INTERVAL`].
    peer_scores: Histograms<Labels1>,
    /// `op_node_default_p2p_req_total{p2p_role,p2p_method,result_code}` (counter): payload_by_number
    /// requests served and made, by result code.
    req_total: Family<Labels3, Counter>,
    /// `op_node_default_p2p_req_duration_seconds{p2p_role,p2p_method,result_code}` (histogram,
    /// [`REQ_DURATION_BUCKETS`]): how long each took, rate-limit waits included.
    req_duration: Histograms<Labels3>,
    /// `op_node_default_p2p_payload_by_number{p2p_role}` (gauge): the last block number requested
    /// (client) or asked of us (server).
    payload_by_number: Family<Labels1, Gauge>,
    /// `op_gossip_validation_total{verdict,reason}` (counter): every gossip message judged, by
    /// verdict and reason ([`ACCEPT_REASON`] for ACCEPT).
    validations: Family<Labels2, Counter>,
    /// `op_gossip_invalid_block_penalties_total{kind}` (counter): application-score penalties for
    /// forwarding a REJECTed block, `invalid_block` or `invalid_signature`.
    invalid_block_penalties: Family<Labels1, Counter>,
    /// `op_gossip_validation_queue_overflows_total` (counter): messages IGNOREd unvalidated
    /// because the validation queue was full.
    validation_queue_overflows: Counter,
    /// `op_gossip_p2p_rate_limit_waits_total{p2p_role}` (counter): requests that waited for a
    /// rate-limit token (client: before asking; server: before answering).
    rate_limit_waits: Family<Labels1, Counter>,
    /// `op_gossip_p2p_rate_limit_refusals_total{p2p_role,cause}` (counter): requests refused
    /// for rate limiting, [`RateLimitRefusal`].
    rate_limit_refusals: Family<Labels2, Counter>,
    /// `op_gossip_p2p_client_request_failures_total{kind}` (counter): client requests that failed
    /// on our side, [`CLIENT_FAILURE_KINDS`] (op-node counts them as result code 1).
    client_failures: Family<Labels1, Counter>,
    /// `op_gossip_validation_queue_depth`, `op_gossip_validation_duration_seconds`.
    validation_queue: pipeline::ValidationQueueMetrics,
}

impl Metrics {
    /// Builds the registry: every metric, the scrape-time collector over `sources`, and the
    /// label sets known in advance at 0.
    pub fn new(config: &MetricsConfig, sources: MetricSources) -> Self {
        let metrics = Self {
            registry: Mutex::new(Registry::default()),
            served: config.listen.is_some(),
            score_sample_interval: config.score_sample_interval,
            peer_count: Gauge::default(),
            gossip_events: Family::default(),
            peer_scores: Family::new_with_constructor(peer_score_histogram),
            req_total: Family::default(),
            req_duration: Family::new_with_constructor(req_duration_histogram),
            payload_by_number: Family::default(),
            validations: Family::default(),
            invalid_block_penalties: Family::default(),
            validation_queue_overflows: Counter::default(),
            rate_limit_waits: Family::default(),
            rate_limit_refusals: Family::default(),
            client_failures: Family::default(),
            validation_queue: pipeline::ValidationQueueMetrics::default(),
        };
        {
            let mut root = metrics.registry();
            let op_node = root.sub_registry_with_prefix(NAMESPACE);
            op_node.register(
                "p2p_peer_count",
                "Count of currently connected p2p peers",
                metrics.peer_count.clone(),
            );
            op_node.register(
                "p2p_gossip_events",
                "Count of gossip events by type",
                metrics.gossip_events.clone(),
            );
            op_node.register(
                "peer_scores",
                "Histogram of currently connected peer scores, by score component",
                metrics.peer_scores.clone(),
            );
            op_node.register(
                "p2p_req",
                "Number of P2P requests",
                metrics.req_total.clone(),
            );
            op_node.register(
                "p2p_req_duration_seconds",
                "Duration of P2P requests",
                metrics.req_duration.clone(),
            );
            op_node.register(
                "p2p_payload_by_number",
                "Last block number of a payload_by_number request, by role",
                metrics.payload_by_number.clone(),
            );
            let own = root.sub_registry_with_prefix(OWN_PREFIX);
            own.register(
                "validation",
                "Gossip messages judged, by verdict and reason",
                metrics.validations.clone(),
            );
            own.register(
                "invalid_block_penalties",
                "Application-score penalties for forwarding a REJECTed block, by kind",
                metrics.invalid_block_penalties.clone(),
            );
            own.register(
                "validation_queue_overflows",
                "Gossip messages ignored unvalidated because the validation queue was full",
                metrics.validation_queue_overflows.clone(),
            );
            own.register(
                "p2p_rate_limit_waits",
                "payload_by_number requests that waited for a rate-limit token, by role",
                metrics.rate_limit_waits.clone(),
            );
            own.register(
                "p2p_rate_limit_refusals",
                "payload_by_number requests refused for rate limiting, by role and cause",
                metrics.rate_limit_refusals.clone(),
            );
            own.register(
                "p2p_client_request_failures",
                "payload_by_number requests of ours that failed without a result code, by kind",
                metrics.client_failures.clone(),
            );
            metrics.validation_queue.register(own);
            root.register_collector(Box::new(StatsCollector(sources)));
        }
        metrics.create_known_series();
        metrics
    }

    /// Creates the series whose labels are known in advance, at 0, so that a rate over them is
    /// defined before the first event.
    fn create_known_series(&self) {
        for event in GossipEvent::ALL {
            let _ = self
                .gossip_events
                .get_or_create(&[("type", event.as_str())]);
        }
        for role in ReqRole::ALL {
            let _ = self
                .rate_limit_waits
                .get_or_create(&[("p2p_role", role.as_str())]);
        }
        for cause in [
            RateLimitRefusal::WaitTimeout,
            RateLimitRefusal::OverCapacity,
            RateLimitRefusal::PeerStreams,
            RateLimitRefusal::AnsweredCode3,
        ] {
            let _ = self
                .rate_limit_refusals
                .get_or_create(&refusal_labels(cause));
        }
        for kind in [PeerOutcome::InvalidBlock, PeerOutcome::InvalidSignature] {
            let _ = self
                .invalid_block_penalties
                .get_or_create(&[("kind", penalty_kind(kind))]);
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a component register its own metrics under `op_gossip_<prefix>` (gossipsub, when the
    /// swarm is built). Registering the same prefix twice would repeat its metric names.
    pub fn register_under<T>(&self, prefix: &str, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut root = self.registry();
        let own = root.sub_registry_with_prefix(format!("{OWN_PREFIX}_{prefix}"));
        f(own)
    }

    /// Lets a concern register metrics that op-node also has, under op-node's namespace
    /// ([`NAMESPACE`]), so they keep op-node's names (the engine's, [`crate::engine::metrics`]).
    pub fn register_op_node<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut root = self.registry();
        f(root.sub_registry_with_prefix(NAMESPACE))
    }

    /// Adds a collector read at scrape time (the HTTP servers' counters, [`crate::http::stats`]).
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.registry().register_collector(collector);
    }

    /// The whole exposition in OpenMetrics text, `# EOF` included.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry())?;
        Ok(out)
    }

    /// Where gossipsub should record its own metrics: here when `/metrics` is served, else
    /// nowhere. They are not free: rust-libp2p's gossipsub updates labelled families and
    /// histograms on every message, which measurably slowed propagation in the 20-node
    /// benchmark (p99 publish→accept 69 ms with them, 52–60 ms without), so a node that nobody
    /// scrapes does not pay for them.
    pub fn for_gossipsub(&self) -> Option<&Self> {
        self.served.then_some(self)
    }

    /// How often the event loop samples peer scores.
    pub fn score_sample_interval(&self) -> Duration {
        self.score_sample_interval
    }

    /// Counts one gossip event.
    pub fn gossip_event(&self, event: GossipEvent) {
        self.gossip_events_n(event, 1);
    }

    fn gossip_events_n(&self, event: GossipEvent, n: u64) {
        self.gossip_events
            .get_or_create(&[("type", event.as_str())])
            .inc_by(n);
    }

    /// We published a block: gossipsub took it (PUBLISH_MESSAGE) and, as go-libp2p-pubsub does
    /// for a local message that passes validation, delivered it (DELIVER_MESSAGE).
    pub fn published(&self) {
        self.gossip_event(GossipEvent::PublishMessage);
        self.gossip_event(GossipEvent::DeliverMessage);
    }

    /// A gossip message was judged. `reason` is `None` on ACCEPT, else a static reason code
    /// (`ValidationError::reason` or one of [`LOOP_REASONS`]).
    pub fn validated(&self, verdict: Verdict, reason: Option<&'static str>) {
        let reason = match reason {
            None => ACCEPT_REASON,
            Some(r) if ValidationError::REASONS.contains(&r) || LOOP_REASONS.contains(&r) => r,
            Some(_) => OTHER_REASON,
        };
        self.validations
            .get_or_create(&[("verdict", verdict.as_str()), ("reason", reason)])
            .inc();
        let event = match verdict {
            Verdict::Accept => GossipEvent::DeliverMessage,
            _ if reason == "already_seen" => GossipEvent::DuplicateMessage,
            _ => GossipEvent::RejectMessage,
        };
        self.gossip_event(event);
    }

    /// The forwarder of a REJECTed message was charged `outcome` (project decision 5; not for a
    /// height-limit REJECT from a peer that is not itself an equivocator).
    pub fn penalised(&self, outcome: PeerOutcome) {
        self.invalid_block_penalties
            .get_or_create(&[("kind", penalty_kind(outcome))])
            .inc();
    }

    /// The validation queue's depth and time-to-verdict metrics.
    pub fn validation_queue(&self) -> &pipeline::ValidationQueueMetrics {
        &self.validation_queue
    }

    /// A message was IGNOREd unvalidated because the validation queue was full.
    pub fn validation_queue_full(&self) {
        self.validation_queue_overflows.inc();
        self.validated(Verdict::Ignore, Some("validation_queue_full"));
    }

    /// gossipsub reported messages to a slow peer that could not be queued (DROP_RPC).
    pub fn dropped_messages(&self, count: usize) {
        self.gossip_events_n(
            GossipEvent::DropRpc,
            u64::try_from(count).unwrap_or(u64::MAX),
        );
    }

    /// A peer's first connection is up; `connected` peers now.
    pub fn peer_connected(&self, connected: usize) {
        self.set_peer_count(connected);
        self.gossip_event(GossipEvent::AddPeer);
    }

    /// A peer's last connection closed; `connected` peers now.
    pub fn peer_disconnected(&self, connected: usize) {
        self.set_peer_count(connected);
        self.gossip_event(GossipEvent::RemovePeer);
    }

    fn set_peer_count(&self, connected: usize) {
        self.peer_count
            .set(i64::try_from(connected).unwrap_or(i64::MAX));
    }

    /// Observes connected peers' scores into `peer_scores` (op-node's scorebook snapshot). The
    /// event loop calls this every [`Self::score_sample_interval`] with the peers gossipsub
    /// scores (none when scoring is off, as op-node, which has no snapshot without scoring).
    pub fn observe_peer_scores<'a>(&self, scores: impl IntoIterator<Item = &'a ScoreBreakdown>) {
        for breakdown in scores {
            for (name, value) in scores::labelled(breakdown) {
                self.peer_scores
                    .get_or_create(&[("type", name)])
                    .observe(value);
            }
        }
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

/// The `kind` label of an invalid-block penalty.
fn penalty_kind(outcome: PeerOutcome) -> &'static str {
    match outcome {
        PeerOutcome::InvalidSignature => "invalid_signature",
        _ => "invalid_block",
    }
}

/// Reads the counters the gate and the ban book keep anyway, at scrape time.
#[derive(Debug)]
struct StatsCollector(MetricSources);

impl StatsCollector {
    /// op-node's un-suffixed counters: type `unknown` keeps the exact series name
    /// (see the module docs).
    fn encode_allow(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        allowed: u64,
        refused: u64,
    ) -> fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Unknown)?;
        for (allow, value) in [("true", allowed), ("false", refused)] {
            let labels = [("allow", allow)];
            metric.encode_family(&labels)?.encode_gauge(&value)?;
        }
        Ok(())
    }
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let gate = &self.0.gate;
        let bans = &self.0.bans;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Self::encode_allow(
            &mut encoder,
            &format!("{NAMESPACE}_p2p_dials"),
            "Count of outgoing dial attempts, with label to filter to allowed attempts.",
            load(&gate.dials_allowed),
            load(&gate.dials_refused),
        )?;
        Self::encode_allow(
            &mut encoder,
            &format!("{NAMESPACE}_p2p_accepts"),
            "Count of incoming dial attempts to accept, with label to filter to allowed attempts.",
            load(&gate.accepts_allowed),
            load(&gate.accepts_refused),
        )?;
        let unbans_name = format!("{NAMESPACE}_p2p_peer_unbans");
        let mut unbans = encoder.encode_descriptor(
            &unbans_name,
            "Count of peer unbans.",
            None,
            MetricType::Unknown,
        )?;
        let counts = bans.counts();
        unbans.encode_gauge(&counts.peer_unbans)?;
        let ip_unbans_name = format!("{NAMESPACE}_p2p_ip_unbans");
        let mut ip_unbans = encoder.encode_descriptor(
            &ip_unbans_name,
            "Count of IP unbans.",
            None,
            MetricType::Unknown,
        )?;
        ip_unbans.encode_gauge(&counts.ip_unbans)?;
        let bans_total = ConstCounter::new(counts.peer_bans);
        let bans_name = format!("{OWN_PREFIX}_p2p_peer_bans");
        bans_total.encode(encoder.encode_descriptor(
            &bans_name,
            "Peers banned for their score.",
            None,
            bans_total.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly
mod tests {
    use super::*;

    fn metrics() -> (Metrics, Arc<GateStats>) {
        let gate = Arc::new(GateStats::default());
        let m = Metrics::new(
            &MetricsConfig::default(),
            MetricSources {
                gate: gate.clone(),
                bans: Arc::new(BanList::in_memory()),
            },
        );
        (m, gate)
    }

    #[test]
    fn op_node_names_and_suffixes() {
        let (m, gate) = metrics();
        gate.dials_allowed.fetch_add(2, Ordering::Relaxed);
        m.validated(Verdict::Reject, Some("unknown_signer"));
        m.validated(Verdict::Ignore, Some("already_seen"));
        m.validated(Verdict::Ignore, Some("made_up_at_runtime"));
        m.penalised(PeerOutcome::InvalidSignature);
        let text = m.encode().unwrap();
        for line in [
            "# TYPE op_node_default_p2p_dials unknown",
            "op_node_default_p2p_dials{allow=\"true\"} 2",
            "op_node_default_p2p_accepts{allow=\"false\"} 0",
            "op_node_default_p2p_peer_unbans 0",
            "op_gossip_p2p_peer_bans_total 0",
            "op_node_default_p2p_gossip_events_total{type=\"REJECT_MESSAGE\"} 2",
            "op_node_default_p2p_gossip_events_total{type=\"DUPLICATE_MESSAGE\"} 1",
            "op_node_default_p2p_gossip_events_total{type=\"LEAVE\"} 0",
            "op_gossip_validation_total{verdict=\"reject\",reason=\"unknown_signer\"} 1",
            "op_gossip_validation_total{verdict=\"ignore\",reason=\"other\"} 1",
            "op_gossip_invalid_block_penalties_total{kind=\"invalid_signature\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

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
