//! The engine's metrics read at scrape time from the insertion driver's counters and the node's
//! head (registered only with `--l2`): its head, how far it trails the node's unsafe head,
//! insertions and failures, all under `op_gossip_` with no labels.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::sync::watch;

use crate::engine::driver::EngineStats;
use crate::metrics::OWN_PREFIX;
use crate::store::BlockRef;

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
    use prometheus_client::registry::Registry;

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
