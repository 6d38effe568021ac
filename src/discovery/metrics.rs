//! Discovery's counters, read by the `/metrics` scrape through [`DiscoveryCollector`] (the
//! service writes atomics; nothing waits). Labels are fixed sets: no peer ids, no addresses.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// What a found record became (the `result` label of the candidates counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateResult {
    /// Queued for a dial.
    Queued,
    /// Already queued, dialling, or connected.
    Duplicate,
    /// Backed off after failed dials.
    BackedOff,
    /// The queue (or its share for the IP or subnet) was full.
    QueueFull,
    /// Another chain, or another `opstack` version.
    OtherChain,
    /// No `opstack` entry.
    NoOpstack,
    /// An `opstack` entry that does not decode.
    Malformed,
    /// Banned or blocked peer, IP or subnet, or outside `--p2p.netrestrict`.
    Refused,
    /// No TCP endpoint or no secp256k1 key.
    NotDialable,
}

impl CandidateResult {
    /// Every value, in label order.
    pub const ALL: [Self; 9] = [
        Self::Queued,
        Self::Duplicate,
        Self::BackedOff,
        Self::QueueFull,
        Self::OtherChain,
        Self::NoOpstack,
        Self::Malformed,
        Self::Refused,
        Self::NotDialable,
    ];

    /// The label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Duplicate => "duplicate",
            Self::BackedOff => "backed_off",
            Self::QueueFull => "queue_full",
            Self::OtherChain => "other_chain",
            Self::NoOpstack => "no_opstack",
            Self::Malformed => "malformed",
            Self::Refused => "refused",
            Self::NotDialable => "not_dialable",
        }
    }
}

/// The numbers.
#[derive(Debug, Default)]
pub struct DiscoveryStats {
    table: AtomicU64,
    lookups: AtomicU64,
    lookup_failures: AtomicU64,
    candidates: [AtomicU64; 9],
    dials_ok: AtomicU64,
    dials_failed: AtomicU64,
    discovered: AtomicU64,
}

impl DiscoveryStats {
    /// Records a found record's fate.
    pub fn candidate(&self, result: CandidateResult) {
        if let Some(c) = CandidateResult::ALL
            .iter()
            .position(|r| *r == result)
            .and_then(|i| self.candidates.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A lookup finished.
    pub fn lookup(&self, ok: bool) {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.lookup_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A dial ended.
    pub fn dialled(&self, ok: bool) {
        let c = if ok {
            &self.dials_ok
        } else {
            &self.dials_failed
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The table's size now.
    pub fn set_table(&self, n: usize) {
        self.table.store(n as u64, Ordering::Relaxed);
    }

    /// Distinct records of our chain found so far.
    pub fn set_discovered(&self, n: usize) {
        self.discovered.store(n as u64, Ordering::Relaxed);
    }

    /// The table's size.
    pub fn table(&self) -> u64 {
        self.table.load(Ordering::Relaxed)
    }

    /// Distinct records of our chain found.
    pub fn discovered(&self) -> u64 {
        self.discovered.load(Ordering::Relaxed)
    }

    /// (succeeded, failed) dials.
    pub fn dials(&self) -> (u64, u64) {
        (
            self.dials_ok.load(Ordering::Relaxed),
            self.dials_failed.load(Ordering::Relaxed),
        )
    }

    /// Lookups run.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Found records with this fate.
    pub fn candidates(&self, result: CandidateResult) -> u64 {
        CandidateResult::ALL
            .iter()
            .position(|r| *r == result)
            .and_then(|i| self.candidates.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Encodes [`DiscoveryStats`] at scrape time.
#[derive(Debug)]
pub struct DiscoveryCollector(pub Arc<DiscoveryStats>);

impl Collector for DiscoveryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let s = &self.0;
        let table = encoder.encode_descriptor(
            "op_gossip_discovery_table_nodes",
            "Records in the discv5 node table.",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(s.table() as i64).encode(table)?;
        let found = encoder.encode_descriptor(
            "op_gossip_discovery_chain_nodes",
            "Distinct records of this chain found by discovery (bounded set).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(s.discovered() as i64).encode(found)?;
        let mut lookups = encoder.encode_descriptor(
            "op_gossip_discovery_lookups",
            "Random discv5 lookups run, by result.",
            None,
            MetricType::Counter,
        )?;
        let failed = s.lookup_failures.load(Ordering::Relaxed);
        ConstCounter::new(s.lookups().saturating_sub(failed))
            .encode(lookups.encode_family(&[("result", "ok")])?)?;
        ConstCounter::new(failed).encode(lookups.encode_family(&[("result", "failed")])?)?;
        let mut candidates = encoder.encode_descriptor(
            "op_gossip_discovery_candidates",
            "Records found by discovery, by what became of them.",
            None,
            MetricType::Counter,
        )?;
        for r in CandidateResult::ALL {
            ConstCounter::new(s.candidates(r))
                .encode(candidates.encode_family(&[("result", r.label())])?)?;
        }
        let mut dials = encoder.encode_descriptor(
            "op_gossip_discovery_dials",
            "Dials of discovered peers, by outcome.",
            None,
            MetricType::Counter,
        )?;
        let (ok, failed) = s.dials();
        ConstCounter::new(ok).encode(dials.encode_family(&[("outcome", "connected")])?)?;
        ConstCounter::new(failed).encode(dials.encode_family(&[("outcome", "failed")])?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::registry::Registry;

    #[test]
    fn encodes_every_series_with_bounded_labels() {
        let stats = Arc::new(DiscoveryStats::default());
        stats.set_table(7);
        stats.lookup(true);
        stats.lookup(false);
        stats.candidate(CandidateResult::OtherChain);
        stats.dialled(true);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(DiscoveryCollector(stats)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "op_gossip_discovery_table_nodes 7",
            "op_gossip_discovery_lookups_total{result=\"ok\"} 1",
            "op_gossip_discovery_lookups_total{result=\"failed\"} 1",
            "op_gossip_discovery_candidates_total{result=\"other_chain\"} 1",
            "op_gossip_discovery_dials_total{outcome=\"connected\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        // One series per label value, fixed sets.
        assert_eq!(
            text.matches("op_gossip_discovery_candidates_total{")
                .count(),
            9
        );
    }
}
