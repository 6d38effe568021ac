//! The gossip concern's metrics: the host's gossip events in op-node's names (publish, deliver,
//! reject, duplicate, peers joining and leaving, drops to slow peers), every verdict by reason,
//! and the validation queue (depth, time to verdict, overflows). Registered by this concern into
//! the node's registry ([`crate::metrics::Metrics`]).
//!
//! ```text
//!  p2p::EventLoop ── connection up/down ──────────► peer count, ADD_PEER / REMOVE_PEER
//!       │         ── publish accepted ─────────────► PUBLISH_MESSAGE (+ DELIVER_MESSAGE)
//!       │         ── gossipsub SlowPeer ───────────► DROP_RPC
//!       ▼
//!  validation task ── verdict + static reason ─────► validation{verdict,reason},
//!                                                    DELIVER / REJECT / DUPLICATE_MESSAGE,
//!                     slot taken / verdict ────────► validation_queue_depth, _duration_seconds
//!                     ACCEPT, non-canonical SSZ ───► noncanonical_blocks
//! ```

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::metrics::{Labels1, Labels2, Metrics};
use crate::validate::{ValidationError, Verdict};

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

/// Buckets of `validation_duration_seconds`: a small block validates in well under a millisecond,
/// a 10 MiB one in tens of milliseconds, and a message waits at most the validation timeout
/// (seconds) for a place; 0.25 ms to 5 s covers all three.
pub const VALIDATION_DURATION_BUCKETS: [f64; 12] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// The validation queue's metrics (always registered).
#[derive(Debug)]
pub struct ValidationQueueMetrics {
    /// `op_gossip_validation_queue_depth` (gauge): messages holding a queue slot (waiting or
    /// in validation).
    depth: Gauge,
    /// `op_gossip_validation_duration_seconds` (histogram, [`VALIDATION_DURATION_BUCKETS`]):
    /// from taking a queue slot to the verdict, the wait for a validation worker included.
    duration: Histogram,
}

impl Default for ValidationQueueMetrics {
    fn default() -> Self {
        Self {
            depth: Gauge::default(),
            duration: Histogram::new(VALIDATION_DURATION_BUCKETS),
        }
    }
}

impl ValidationQueueMetrics {
    /// Registers them in `registry` (the `op_gossip` sub-registry).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "validation_queue_depth",
            "Gossip messages holding a validation queue slot (waiting or in validation)",
            self.depth.clone(),
        );
        registry.register(
            "validation_duration_seconds",
            "Time from a gossip message's validation queue slot to its verdict",
            self.duration.clone(),
        );
    }

    /// A message took a queue slot; the depth goes down when the returned guard is dropped.
    pub fn entered(&self) -> QueueSlot {
        self.depth.inc();
        QueueSlot(self.depth.clone())
    }

    /// A message got its verdict `elapsed` after taking its slot.
    pub fn judged(&self, elapsed: Duration) {
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Counts one message in the validation queue while it lives.
#[derive(Debug)]
pub struct QueueSlot(Gauge);

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The gossip metrics.
#[derive(Debug)]
pub struct GossipMetrics {
    /// `op_node_default_p2p_peer_count` (gauge): connected peers.
    peer_count: Gauge,
    /// `op_node_default_p2p_gossip_events_total{type}` (counter): gossip events, [`GossipEvent`].
    gossip_events: Family<Labels1, Counter>,
    /// `op_gossip_validation_total{verdict,reason}` (counter): every gossip message judged, by
    /// verdict and reason ([`ACCEPT_REASON`] for ACCEPT).
    validations: Family<Labels2, Counter>,
    /// `op_gossip_validation_queue_overflows_total` (counter): messages IGNOREd unvalidated
    /// because the validation queue (or the forwarder's share of it) was full.
    validation_queue_overflows: Counter,
    /// `op_gossip_validation_queue_depth`, `op_gossip_validation_duration_seconds`.
    validation_queue: ValidationQueueMetrics,
    /// `op_gossip_noncanonical_blocks_total` (counter): ACCEPTed blocks whose signed SSZ is in a
    /// form op-node accepts but never writes (`wire::canonical`), stored re-encoded.
    noncanonical_blocks: Counter,
}

impl GossipMetrics {
    /// Registers the gossip metrics into `metrics`, their known series at 0.
    pub fn register(metrics: &Metrics) -> Arc<Self> {
        let this = Self {
            peer_count: Gauge::default(),
            gossip_events: Family::default(),
            validations: Family::default(),
            validation_queue_overflows: Counter::default(),
            validation_queue: ValidationQueueMetrics::default(),
            noncanonical_blocks: Counter::default(),
        };
        metrics.register_op_node(|op_node| {
            op_node.register(
                "p2p_peer_count",
                "Count of currently connected p2p peers",
                this.peer_count.clone(),
            );
            op_node.register(
                "p2p_gossip_events",
                "Count of gossip events by type",
                this.gossip_events.clone(),
            );
        });
        metrics.register_own(|own| {
            own.register(
                "validation",
                "Gossip messages judged, by verdict and reason",
                this.validations.clone(),
            );
            own.register(
                "validation_queue_overflows",
                "Gossip messages ignored unvalidated because the validation queue was full",
                this.validation_queue_overflows.clone(),
            );
            this.validation_queue.register(own);
            own.register(
                "noncanonical_blocks",
                "Accepted gossip blocks in a non-canonical SSZ form, stored re-encoded",
                this.noncanonical_blocks.clone(),
            );
        });
        for event in GossipEvent::ALL {
            let _ = this
                .gossip_events
                .get_or_create(&[("type", event.as_str())]);
        }
        Arc::new(this)
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

    /// The validation queue's depth and time-to-verdict metrics.
    pub fn validation_queue(&self) -> &ValidationQueueMetrics {
        &self.validation_queue
    }

    /// A message was IGNOREd unvalidated because the validation queue was full.
    pub fn validation_queue_full(&self) {
        self.validation_queue_overflows.inc();
        self.validated(Verdict::Ignore, Some("validation_queue_full"));
    }

    /// An ACCEPTed block's signed bytes were not in canonical SSZ form (the store re-encodes it).
    pub fn noncanonical_block(&self) {
        self.noncanonical_blocks.inc();
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;
    use crate::metrics::{MetricsConfig, OWN_PREFIX};
    use prometheus_client::encoding::text::encode;

    #[test]
    fn the_queue_depth_follows_the_slots_and_durations_are_observed() {
        let m = ValidationQueueMetrics::default();
        let mut registry = Registry::with_prefix(OWN_PREFIX);
        m.register(&mut registry);
        let a = m.entered();
        let b = m.entered();
        drop(a);
        m.judged(Duration::from_millis(2));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("op_gossip_validation_queue_depth 1\n"),
            "{text}"
        );
        assert!(
            text.contains("op_gossip_validation_duration_seconds_count 1\n"),
            "{text}"
        );
        drop(b);
    }

    #[test]
    fn gossip_names_and_reasons_follow_op_node() {
        let registry = Metrics::new(&MetricsConfig::default());
        let m = GossipMetrics::register(&registry);
        m.validated(Verdict::Reject, Some("unknown_signer"));
        m.validated(Verdict::Ignore, Some("already_seen"));
        m.validated(Verdict::Ignore, Some("made_up_at_runtime"));
        m.noncanonical_block();
        let text = registry.encode().unwrap();
        for line in [
            "op_node_default_p2p_gossip_events_total{type=\"REJECT_MESSAGE\"} 2",
            "op_node_default_p2p_gossip_events_total{type=\"DUPLICATE_MESSAGE\"} 1",
            "op_node_default_p2p_gossip_events_total{type=\"LEAVE\"} 0",
            "op_gossip_validation_total{verdict=\"reject\",reason=\"unknown_signer\"} 1",
            "op_gossip_validation_total{verdict=\"ignore\",reason=\"other\"} 1",
            "op_gossip_noncanonical_blocks_total 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
