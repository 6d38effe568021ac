//! The peers concern's metrics: each connected peer's score taken apart (op-node's
//! `peer_scores` histogram), the invalid-block penalties the peer manager charged, and, read at
//! scrape time, the gate's and the ban books' counters. Registered by this concern into the
//! node's registry ([`crate::metrics::Metrics`]).
//!
//! ```text
//!  event loop, every 15 s: each connected peer's score, taken apart
//!     (p2p::peers::breakdown) ──────────────────► peer_scores{type} histogram
//!  peer manager: a REJECT's fault charged ──────► invalid_block_penalties{kind}
//!  PeerReporter: a report the loop had no room for ► peer_reports_dropped
//!  at scrape time: GateStats ───────────────────► p2p_dials{allow}, p2p_accepts{allow}
//!                  BanList ─────────────────────► p2p_peer_unbans, p2p_ip_unbans, peer bans
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use super::gate::GateStats;
use crate::metrics::{Histograms, Labels1, Metrics, NAMESPACE, OWN_PREFIX};
use crate::p2p::peers::app_score::PeerOutcome;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::breakdown::ScoreBreakdown;

/// op-node's `peer_scores` buckets (op-node `metrics/p2p.go`): from the ban threshold (−100) up
/// through the graylist (−40) and gossip (−10) thresholds to the +40 a well-behaved peer can reach.
pub const PEER_SCORE_BUCKETS: [f64; 18] = [
    -100.0, -40.0, -20.0, -10.0, -5.0, -2.0, -1.0, -0.5, -0.05, 0.0, 0.05, 0.5, 1.0, 2.0, 5.0,
    10.0, 20.0, 40.0,
];

/// How often every connected peer's score is sampled into `peer_scores`: op-node's scorebook
/// snapshot runs from gossipsub's score inspection every 15 s (`peerScoreInspectFrequency`), so a
/// histogram rate means the same thing on both nodes.
pub const PEER_SCORE_SAMPLE_INTERVAL: Duration = crate::p2p::peers::scorebook::SNAPSHOT_INTERVAL;

fn peer_score_histogram() -> Histogram {
    Histogram::new(PEER_SCORE_BUCKETS)
}

/// What the scrape reads directly from the stats the network keeps anyway.
#[derive(Debug, Clone)]
pub struct MetricSources {
    /// The connection gate's counters.
    pub gate: Arc<GateStats>,
    /// The ban book (bans and expiries).
    pub bans: Arc<BanList>,
}

/// The peers metrics.
#[derive(Debug)]
pub struct PeerMetrics {
    /// `op_node_default_peer_scores{type}` (histogram, [`PEER_SCORE_BUCKETS`]): each connected
    /// peer's score components, sampled every [`PEER_SCORE_SAMPLE_INTERVAL`].
    peer_scores: Histograms<Labels1>,
    /// `op_gossip_invalid_block_penalties_total{kind}` (counter): application-score penalties for
    /// forwarding a REJECTed block, `invalid_block` or `invalid_signature`.
    invalid_block_penalties: Family<Labels1, Counter>,
    /// `op_gossip_peer_reports_dropped_total` (counter): peer outcomes from the sync client and
    /// the req/resp server dropped because the network loop was too far behind to take them.
    reports_dropped: Counter,
    /// How often `peer_scores` is sampled.
    score_sample_interval: Duration,
}

impl PeerMetrics {
    /// Registers the peers metrics into `metrics` (and the scrape-time collector over `sources`),
    /// sampling scores every `score_sample_interval`.
    pub fn register(
        metrics: &Metrics,
        sources: MetricSources,
        score_sample_interval: Duration,
    ) -> Arc<Self> {
        let this = Self {
            peer_scores: Family::new_with_constructor(peer_score_histogram),
            invalid_block_penalties: Family::default(),
            reports_dropped: Counter::default(),
            score_sample_interval,
        };
        metrics.register_op_node(|op_node| {
            op_node.register(
                "peer_scores",
                "Histogram of currently connected peer scores, by score component",
                this.peer_scores.clone(),
            );
        });
        metrics.register_own(|own| {
            own.register(
                "invalid_block_penalties",
                "Application-score penalties for forwarding a REJECTed block, by kind",
                this.invalid_block_penalties.clone(),
            );
            own.register(
                "peer_reports_dropped",
                "Peer outcomes (req/resp, sync) dropped because the network loop was behind",
                this.reports_dropped.clone(),
            );
        });
        metrics.register_collector(Box::new(StatsCollector(sources)));
        for kind in [PeerOutcome::InvalidBlock, PeerOutcome::InvalidSignature] {
            let _ = this
                .invalid_block_penalties
                .get_or_create(&[("kind", penalty_kind(kind))]);
        }
        Arc::new(this)
    }

    /// The counter of dropped peer reports, for the reporter.
    pub fn reports_dropped(&self) -> Counter {
        self.reports_dropped.clone()
    }

    /// How often the event loop samples peer scores.
    pub fn score_sample_interval(&self) -> Duration {
        self.score_sample_interval
    }

    /// The forwarder of a REJECTed message was charged `outcome` (project decision 5; not for a
    /// height-limit REJECT from a peer that is not itself an equivocator).
    pub fn penalised(&self, outcome: PeerOutcome) {
        self.invalid_block_penalties
            .get_or_create(&[("kind", penalty_kind(outcome))])
            .inc();
    }

    /// Observes connected peers' scores into `peer_scores` (op-node's scorebook snapshot). The
    /// event loop calls this every [`Self::score_sample_interval`] with the peers gossipsub
    /// scores (none when scoring is off, as op-node, which has no snapshot without scoring).
    pub fn observe_peer_scores<'a>(&self, scores: impl IntoIterator<Item = &'a ScoreBreakdown>) {
        for breakdown in scores {
            for (name, value) in crate::p2p::peers::score_labels::labelled(breakdown) {
                self.peer_scores
                    .get_or_create(&[("type", name)])
                    .observe(value);
            }
        }
    }
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
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;
    use crate::metrics::MetricsConfig;

    #[test]
    fn op_node_names_and_suffixes_and_the_sample_interval() {
        let registry = Metrics::new(&MetricsConfig::default());
        let gate = Arc::new(GateStats::default());
        let m = PeerMetrics::register(
            &registry,
            MetricSources {
                gate: gate.clone(),
                bans: Arc::new(BanList::in_memory()),
            },
            PEER_SCORE_SAMPLE_INTERVAL,
        );
        gate.dials_allowed.fetch_add(2, Ordering::Relaxed);
        m.penalised(PeerOutcome::InvalidSignature);
        let text = registry.encode().unwrap();
        for line in [
            "# TYPE op_node_default_p2p_dials unknown",
            "op_node_default_p2p_dials{allow=\"true\"} 2",
            "op_node_default_p2p_accepts{allow=\"false\"} 0",
            "op_node_default_p2p_peer_unbans 0",
            "op_gossip_p2p_peer_bans_total 0",
            "op_gossip_invalid_block_penalties_total{kind=\"invalid_signature\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(
            crate::metrics::DEFAULT_SCORE_SAMPLE_INTERVAL,
            PEER_SCORE_SAMPLE_INTERVAL,
            "the default sample interval is the scorebook's snapshot interval"
        );
    }
}
