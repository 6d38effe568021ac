//! Prometheus metrics: the node's one `prometheus_client` registry ([`Metrics`]), served as
//! OpenMetrics text at `GET /metrics` by [`http`] when `--metrics.enabled` is set.
//!
//! ## Where metrics are defined
//!
//! Each concern defines its own metrics beside its code and registers them here:
//!
//! ```text
//!  gossip (p2p::metrics) ─────────────── gossip events, verdicts by reason, validation queue
//!  peers (p2p::peer_manager::metrics) ── peer score samples, penalties; gate and ban counters
//!                                        read at scrape time
//!  req/resp (p2p::reqresp::metrics) ──── payload_by_number requests by role and code, rate
//!                                        limits (the sync client records the client role)
//!  engine (engine::collector) ────────── engine head, lag, insertions (with --l2)
//!  gossipsub's own (its `metrics` feature) ► op_gossip_gossipsub_* (only when served)
//!  http::HttpCollector ───────────────── the HTTP servers' bounds
//! ```
//!
//! Recording is a few relaxed atomic operations (behind a read lock for labelled families), and is
//! always on: the same code path runs whether or not the HTTP endpoint is enabled, and tests can
//! read [`Metrics::encode`] without a server. This module knows no concern's types.
//!
//! ## Names
//!
//! What op-node also measures keeps op-node's name under the `op_node_default` namespace
//! (`shared/spec/op-p2p.md` §10.2), so existing dashboards work ([`Metrics::register_op_node`]).
//! Three op-node counters have no `_total` suffix (`p2p_dials`, `p2p_accepts`,
//! `p2p_peer_unbans`); an OpenMetrics counter must end in `_total`, so they are exposed as type
//! `unknown` to keep op-node's exact series name. Everything op-node lacks is prefixed
//! `op_gossip_` ([`Metrics::register_own`]).
//!
//! ## Bounded labels
//!
//! Every label value comes from a fixed enum or a `&'static str` in a known list, named by the
//! domain type itself (as `ValidationError::reason`). No peer id, address, block hash or number
//! is ever a label. gossipsub's own metrics are labelled by topic (it tracks at most
//! [`GOSSIPSUB_MAX_TOPICS`]) and by small enums of its own (message type, churn reason...).
//!
//! ## What op-node has and we do not (yet)
//!
//! `p2p_stream_count`, `p2p_bandwidth_bytes_total` and `p2p_payloads_quarantine_total`. Of
//! op-node's gossip event types, rust-libp2p's gossipsub does not report RECV_RPC, SEND_RPC,
//! GRAFT and PRUNE to the application: they are never counted (mesh inclusions and removals by
//! reason are in `op_gossip_gossipsub_mesh_peer_*`).

pub mod http;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Namespace of the metrics op-node also has (`op_node_<process name>`, "default" when op-node
/// runs without a process name, which is how it is deployed).
pub const NAMESPACE: &str = "op_node_default";
/// Prefix of the metrics that are ours alone.
pub const OWN_PREFIX: &str = "op_gossip";
/// Sub-prefix (under [`OWN_PREFIX`]) of rust-libp2p gossipsub's own metrics.
pub const GOSSIPSUB_PREFIX: &str = "gossipsub";

/// How often peer scores are sampled by default: op-node's scorebook snapshot period (15 s,
/// `peerScoreInspectFrequency`), so a histogram rate means the same thing on both nodes (the
/// peers concern checks that its snapshot interval is this).
pub const DEFAULT_SCORE_SAMPLE_INTERVAL: Duration = Duration::from_secs(15);

/// The Go client's default histogram buckets (`prometheus.DefBuckets`), which op-node's
/// histograms declared without buckets use; ours that mirror them use the same, so quantiles
/// compare.
pub const GO_DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// op-node's `/metrics` port (`--metrics.port`).
pub const DEFAULT_METRICS_PORT: u16 = 7300;

/// Topics gossipsub's own metrics track at most: the chain's four block topics (V1..V4), which is
/// all our subscription filter lets in.
pub const GOSSIPSUB_MAX_TOPICS: usize = 4;

/// Settings of the metrics (`--metrics.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Where `/metrics` is served (`--metrics.addr`, `--metrics.port`; port 0 = any free port);
    /// `None` when `--metrics.enabled` is off. Metrics are recorded either way.
    pub listen: Option<SocketAddr>,
    /// How often peer scores are sampled ([`DEFAULT_SCORE_SAMPLE_INTERVAL`]; tests shorten it).
    pub score_sample_interval: Duration,
    /// The endpoint's HTTP bounds ([`http::METRICS_HTTP_LIMITS`]; tests shorten the timeouts).
    pub http: crate::http::HttpLimits,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: None,
            score_sample_interval: DEFAULT_SCORE_SAMPLE_INTERVAL,
            http: http::METRICS_HTTP_LIMITS,
        }
    }
}

/// Label sets: arrays of (name, value) pairs, values always `&'static str` from a concern's
/// fixed enums or lists.
pub type Labels1 = [(&'static str, &'static str); 1];
/// Two labels.
pub type Labels2 = [(&'static str, &'static str); 2];
/// Three labels.
pub type Labels3 = [(&'static str, &'static str); 3];
/// A family of histograms sharing one set of buckets.
pub type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The node's registry, shared as `Arc<Metrics>`; concerns register into it at start.
#[derive(Debug)]
pub struct Metrics {
    /// The one registry. Behind a mutex because concerns register while the node starts (gossipsub
    /// when the swarm is built); scrapes hold it while encoding.
    registry: Mutex<Registry>,
    /// Whether `/metrics` is served (gossipsub's own metrics are recorded only then).
    served: bool,
}

impl Metrics {
    /// An empty registry for a node with `config`.
    pub fn new(config: &MetricsConfig) -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            served: config.listen.is_some(),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lets a concern register metrics that op-node also has, under op-node's namespace
    /// ([`NAMESPACE`]), so they keep op-node's names.
    pub fn register_op_node<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut root = self.registry();
        f(root.sub_registry_with_prefix(NAMESPACE))
    }

    /// Lets a concern register metrics of ours alone, under [`OWN_PREFIX`].
    pub fn register_own<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut root = self.registry();
        f(root.sub_registry_with_prefix(OWN_PREFIX))
    }

    /// Lets a component register its own metrics under `op_gossip_<prefix>` (gossipsub, when the
    /// swarm is built). Registering the same prefix twice would repeat its metric names.
    pub fn register_under<T>(&self, prefix: &str, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut root = self.registry();
        let own = root.sub_registry_with_prefix(format!("{OWN_PREFIX}_{prefix}"));
        f(own)
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
}
