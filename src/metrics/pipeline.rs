//! Metrics of what happens to a block after gossip hands it over: the validation queue (how many
//! messages hold a slot, how long from taking a slot to the verdict) and, with `--l2`, the engine
//! (its head, how far it trails the node's unsafe head, insertions and failures).
//!
//! ```text
//!  p2p::EventLoop ── slot taken / validation task ends ─► validation_queue_depth (gauge)
//!  validation task ── verdict ─────────────────────────► validation_duration_seconds (histogram)
//!  at scrape time (with --l2): EngineStats + head watch ► engine_head, engine_head_lag_blocks,
//!                                                         engine_inserted_total, engine_errors_total
//! ```
//!
//! All under `op_gossip_` (op-node has none of these), no labels.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::OWN_PREFIX;
use crate::engine::driver::EngineStats;
use crate::store::BlockRef;

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

/// The engine's metrics, read at scrape time from the insertion driver's counters and the
/// node's head (registered only with `--l2`).
#[derive(Debug)]
pub struct EngineCollector {
    /// The driver's counters.
    pub stats: Arc<EngineStats>,
    /// The node's unsafe head.
    pub head: watch::Receiver<Option<BlockRef>>,
}

impl Collector for EngineCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let engine_head = self.stats.head_number.load(Ordering::Relaxed);
        let unsafe_head = self.head.borrow().map_or(0, |h| h.number);
        let gauges = [
            (
                "engine_head",
                "Block number of the execution engine's head",
                engine_head,
            ),
            (
                "engine_head_lag_blocks",
                "Blocks the engine's head trails the node's unsafe head",
                unsafe_head.saturating_sub(engine_head),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(
                &format!("{OWN_PREFIX}_{name}"),
                help,
                None,
                gauge.metric_type(),
            )?)?;
        }
        let counters = [
            (
                "engine_inserted",
                "Blocks the engine made its head",
                self.stats.inserted.load(Ordering::Relaxed),
            ),
            (
                "engine_invalid",
                "Blocks the engine declared INVALID",
                self.stats.invalid.load(Ordering::Relaxed),
            ),
            (
                "engine_errors",
                "Engine API calls that failed",
                self.stats.errors.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                &format!("{OWN_PREFIX}_{name}"),
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly
mod tests {
    use super::*;
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
    fn engine_lag_is_the_unsafe_head_minus_the_engines() {
        let stats = Arc::new(EngineStats::default());
        stats.head_number.store(7, Ordering::Relaxed);
        stats.inserted.store(7, Ordering::Relaxed);
        let (_tx, head) = watch::channel(Some(BlockRef {
            number: 10,
            hash: Default::default(),
        }));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(EngineCollector { stats, head }));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(text.contains("op_gossip_engine_head 7\n"), "{text}");
        assert!(
            text.contains("op_gossip_engine_head_lag_blocks 3\n"),
            "{text}"
        );
        assert!(
            text.contains("op_gossip_engine_inserted_total 7\n"),
            "{text}"
        );
    }
}
