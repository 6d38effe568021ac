//! The devnet report: per-node delivery, publish→accept latency and peak memory.
//!
//! Built by the orchestrator ([`super::Devnet`]) from the events its child nodes print, written
//! as JSON with `--report`, summarised on stdout.

use std::collections::HashMap;

use serde::Serialize;

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Maximum.
    pub max: u64,
    /// Number of samples.
    pub samples: usize,
}

impl Latency {
    /// Percentiles of `samples` (need not be sorted).
    pub fn of(samples: &[u64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| -> u64 {
            if sorted.is_empty() {
                return 0;
            }
            let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted.get(idx).copied().unwrap_or(0)
        };
        Self {
            p50: rank(0.50),
            p95: rank(0.95),
            p99: rank(0.99),
            max: sorted.last().copied().unwrap_or(0),
            samples: sorted.len(),
        }
    }
}

/// One node's figures.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// Index (0 = sequencer).
    pub node: usize,
    /// `sequencer` or `follower`.
    pub role: &'static str,
    /// libp2p peer id.
    pub peer_id: String,
    /// Distinct published blocks this node accepted from gossip (the sequencer: published).
    pub received: u64,
    /// Unsafe head number at the end.
    pub head: Option<u64>,
    /// `received / published`.
    pub delivery_ratio: f64,
    /// Publish → accept latency.
    pub latency_ms: Latency,
    /// Gossip messages this node rejected / ignored.
    pub rejected: u64,
    /// See `rejected`.
    pub ignored: u64,
    /// Peak resident memory of the node process.
    pub peak_rss_mib: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct DevnetReport {
    /// Nodes, the sequencer included.
    pub nodes: usize,
    /// Topology description.
    pub topology: String,
    /// Blocks requested.
    pub blocks: u64,
    /// Blocks the sequencer published.
    pub published: u64,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// Transaction bytes per block.
    pub block_size_bytes: usize,
    /// Seconds from the first publish to the end of collection.
    pub duration_secs: f64,
    /// True when every follower accepted every published block.
    pub all_delivered: bool,
    /// Latency over all followers.
    pub latency_ms: Latency,
    /// Largest peak RSS of any node.
    pub max_peak_rss_mib: f64,
    /// Per node, sequencer first.
    pub per_node: Vec<NodeReport>,
}

/// What the orchestrator collected about one node.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// libp2p peer id (from its address).
    pub peer_id: String,
    /// Dialable address, once reported.
    pub listening: Option<String>,
    /// Connected peers, last reported.
    pub peers: usize,
    /// number → accept time (unix ms), first accept only.
    pub accepted: HashMap<u64, u64>,
    /// number → publish time (unix ms), sequencer only.
    pub published: HashMap<u64, u64>,
    /// Last reported head number.
    pub head: Option<u64>,
    /// Gossip messages rejected.
    pub rejected: u64,
    /// Gossip messages ignored.
    pub ignored: u64,
    /// Peak RSS reported at exit.
    pub peak_rss_kib: Option<u64>,
    /// The sequencer's production result.
    pub produced: Option<Result<(), String>>,
    /// The node reported its exit.
    pub exited: bool,
}

/// Builds the report from the collected stats (index 0 is the sequencer).
pub fn build(
    stats: &[NodeStats],
    topology: String,
    blocks: u64,
    block_time_ms: u64,
    block_size_bytes: usize,
    duration_secs: f64,
) -> DevnetReport {
    let published = stats.first().map(|s| &s.published);
    let published_count = published.map_or(0, |p| p.len() as u64);
    let mut all_latencies = Vec::new();
    let mut per_node = Vec::new();
    for (i, s) in stats.iter().enumerate() {
        let mib = s.peak_rss_kib.unwrap_or(0) as f64 / 1024.0;
        if i == 0 {
            per_node.push(NodeReport {
                node: 0,
                role: "sequencer",
                peer_id: s.peer_id.clone(),
                received: published_count,
                head: s.head,
                delivery_ratio: 1.0,
                latency_ms: Latency::default(),
                rejected: s.rejected,
                ignored: s.ignored,
                peak_rss_mib: mib,
            });
            continue;
        }
        let mut latencies = Vec::new();
        let mut received = 0;
        for (number, published_at) in published.into_iter().flatten() {
            if let Some(accepted_at) = s.accepted.get(number) {
                received += 1;
                latencies.push(accepted_at.saturating_sub(*published_at));
            }
        }
        all_latencies.extend_from_slice(&latencies);
        per_node.push(NodeReport {
            node: i,
            role: "follower",
            peer_id: s.peer_id.clone(),
            received,
            head: s.head,
            delivery_ratio: if published_count == 0 {
                0.0
            } else {
                received as f64 / published_count as f64
            },
            latency_ms: Latency::of(&latencies),
            rejected: s.rejected,
            ignored: s.ignored,
            peak_rss_mib: mib,
        });
    }
    let all_delivered = published_count == blocks
        && per_node
            .iter()
            .skip(1)
            .all(|n| n.received == published_count);
    DevnetReport {
        nodes: stats.len(),
        topology,
        blocks,
        published: published_count,
        block_time_ms,
        block_size_bytes,
        duration_secs,
        all_delivered,
        latency_ms: Latency::of(&all_latencies),
        max_peak_rss_mib: per_node.iter().map(|n| n.peak_rss_mib).fold(0.0, f64::max),
        per_node,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latency::of(&(1..=100).collect::<Vec<_>>());
        assert_eq!(
            (l.p50, l.p95, l.p99, l.max, l.samples),
            (50, 95, 99, 100, 100)
        );
        assert_eq!(Latency::of(&[]), Latency::default());
        assert_eq!(Latency::of(&[7]).p99, 7);
    }
}
