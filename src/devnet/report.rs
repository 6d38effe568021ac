//! The devnet report: per-node delivery, publish→accept latency, peak memory, and what gap
//! filling did (blocks fetched by payload_by_number, catch-up time, fetch rate next to the bound
//! the rate limits allow).
//!
//! Built at the end of the run ([`super::scenario`]) from the events its child nodes print
//! ([`super::collect`]), written as JSON with `--report`, summarised on stdout.

use std::collections::{HashMap, HashSet};

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
    /// Every published block is stored (from gossip or payload_by_number).
    pub has_all_blocks: bool,
    /// Gap filling, for nodes that fetched anything.
    pub sync: Option<SyncReport>,
    /// With `--l2` (the first follower): blocks inserted into the engine and its final head.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::engine::driver::EngineCounters>,
    /// Peers connected at the end (before the nodes were stopped).
    pub peers: usize,
    /// With discovery: distinct records of the chain the node found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discovered: Option<u64>,
}

/// What one node's sync client did.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// Blocks stored from payload_by_number.
    pub fetched: u64,
    /// Requests sent.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// "Not found" answers.
    pub not_found: u64,
    /// Payloads rejected (never linked).
    pub rejected: u64,
    /// Late joiner: seconds from its first connection until its head reached the chain it
    /// missed.
    pub catch_up_secs: Option<f64>,
    /// `fetched` over the time from the first request to the last fetched block.
    pub fetch_rate_per_sec: f64,
    /// The sustained rate the client limits allow with this node's peers:
    /// min(global rate, peers × per-peer rate).
    pub rate_bound_per_sec: f64,
    /// The best average rate for `fetched` blocks: the first min(global burst, peers × peer
    /// burst) requests go at once, the rest at the sustained bound.
    pub rate_bound_with_burst_per_sec: f64,
    /// `fetch_rate_per_sec / rate_bound_with_burst_per_sec`.
    pub fraction_of_bound: f64,
    /// Most peers the node had (the bound's peer count).
    pub peers: usize,
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
    /// Requested blocks the sequencer published.
    pub published: u64,
    /// Blocks published after the requested ones so that a follower which lost the last ones
    /// hears of them (`--drop`: a hole at the tip has no signed block above it to be trusted).
    pub tail_blocks: u64,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// Transaction bytes per block.
    pub block_size_bytes: usize,
    /// Seconds from the first publish to the end of collection.
    pub duration_secs: f64,
    /// True when every follower accepted every published block from gossip.
    pub all_delivered: bool,
    /// True when every follower stored every published block (gossip or payload_by_number).
    pub all_stored: bool,
    /// `--late-joiner`: blocks produced before the last follower started.
    pub late_joiner_after: Option<u64>,
    /// `--drop`: fraction of gossip deliveries each follower lost on purpose.
    pub drop_fraction: f64,
    /// Latency over all followers.
    pub latency_ms: Latency,
    /// Largest peak RSS of any node.
    pub max_peak_rss_mib: f64,
    /// Per node, sequencer first.
    pub per_node: Vec<NodeReport>,
    /// `--adversary`: what the hostile node did and how the honest nodes handled it.
    pub adversary: Option<super::hostile::AdversaryReport>,
    /// CPU the nodes used while the blocks were produced, and the host's steal (Linux only).
    pub cpu: Option<super::cpu::CpuReport>,
    /// `--op-reth`: each node's engine and its final head.
    pub engines: Option<super::op_reth::EnginesReport>,
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
    /// Most peers connected at once.
    pub max_peers: usize,
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
    /// number → time (unix ms) it was stored from payload_by_number.
    pub fetched: HashMap<u64, u64>,
    /// Unix ms of the first `peers` event with a peer (the node joined the network).
    pub joined_ms: Option<u64>,
    /// Unix ms of each head change, by head number.
    pub head_at: Vec<(u64, u64)>,
    /// Sync counters from the exit line.
    pub sync: Option<crate::sync::SyncCounters>,
    /// payload_by_number server counters from the exit line.
    pub server: Option<crate::p2p::reqresp::server::ServerCounters>,
    /// The engine insertion counters from its `exit` line (with `--l2`).
    pub engine: Option<crate::engine::driver::EngineCounters>,
    /// Connected peers when the devnet began stopping the nodes.
    pub peers_at_end: Option<usize>,
    /// Distinct records of the chain discovery found (from the `exit` line).
    pub discovered: Option<u64>,
    /// Hashes of every block accepted from gossip (so delivery counts the published block, not
    /// just any block at its number: an equivocator's blocks share numbers with honest ones).
    pub accepted_hashes: HashSet<String>,
    /// number → hash of each published block, sequencer only.
    pub published_hashes: HashMap<u64, String>,
    /// What this node said about the adversary (`--adversary`).
    pub adversary: super::hostile::Watched,
    /// Peer ids it was connected to when asked at the end of the run (`topology` event).
    pub connected_to: Vec<String>,
    /// Of those, the peers in its gossipsub mesh.
    pub mesh: Vec<String>,
    /// The node answered the `topology` request.
    pub topology_reported: bool,
    /// With `--l2`: (unix ms, blocks inserted so far) each time the engine's count changed.
    pub engine_at: Vec<(u64, u64)>,
}

impl NodeStats {
    /// Whether the node has block `number`, from gossip or payload_by_number.
    pub fn has(&self, number: u64) -> bool {
        self.accepted.contains_key(&number) || self.fetched.contains_key(&number)
    }
}

/// Scenario and limits the report needs besides the collected stats.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    /// Blocks requested.
    pub blocks: u64,
    /// Milliseconds between blocks.
    pub block_time_ms: u64,
    /// Transaction bytes per block.
    pub block_size_bytes: usize,
    /// Seconds from the first publish to the end of collection.
    pub duration_secs: f64,
    /// `--late-joiner`.
    pub late_joiner_after: Option<u64>,
    /// `--drop`.
    pub drop_fraction: f64,
    /// Client limits of every node.
    pub global_rate: crate::p2p::reqresp::limits::Rate,
    /// See `global_rate`.
    pub peer_rate: crate::p2p::reqresp::limits::Rate,
}

/// The sequencer's (index 0) publish times of the `blocks` requested, as (number, unix ms);
/// tail blocks published after them are left out.
pub fn requested_blocks(stats: &[NodeStats], blocks: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    stats
        .first()
        .into_iter()
        .flat_map(|s| s.published.iter())
        .filter(move |(n, _)| **n <= blocks)
        .map(|(n, at)| (*n, *at))
}

/// Builds the report from the collected stats (index 0 is the sequencer).
pub fn build(stats: &[NodeStats], topology: String, facts: RunFacts) -> DevnetReport {
    let blocks = facts.blocks;
    let last = stats.len().saturating_sub(1);
    // The requested blocks; tail blocks (published after them to close trailing holes in the
    // `--drop` scenario) are counted apart.
    let requested: HashMap<u64, u64> = requested_blocks(stats, blocks).collect();
    let tail_blocks = stats.first().map_or(0, |s| {
        s.published.len().saturating_sub(requested.len()) as u64
    });
    let published_count = requested.len() as u64;
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
                has_all_blocks: true,
                sync: None,
                engine: s.engine,
                peers: s.peers_at_end.unwrap_or(s.peers),
                discovered: s.discovered,
            });
            continue;
        }
        let late = facts.late_joiner_after.filter(|_| i == last);
        let sync = sync_report(s, late, &facts);
        let mut latencies = Vec::new();
        let mut received = 0;
        for (number, published_at) in &requested {
            // The published block itself, when its hash is known.
            let published_hash = stats.first().and_then(|q| q.published_hashes.get(number));
            if published_hash.is_some_and(|h| !s.accepted_hashes.contains(h)) {
                continue;
            }
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
            has_all_blocks: requested.keys().all(|n| s.has(*n)),
            sync,
            engine: s.engine,
            peers: s.peers_at_end.unwrap_or(s.peers),
            discovered: s.discovered,
        });
    }
    let all_delivered = published_count == blocks
        && per_node
            .iter()
            .skip(1)
            .all(|n| n.received == published_count);
    let all_stored = published_count == blocks && per_node.iter().skip(1).all(|n| n.has_all_blocks);
    DevnetReport {
        nodes: stats.len(),
        topology,
        blocks,
        published: published_count,
        tail_blocks,
        block_time_ms: facts.block_time_ms,
        block_size_bytes: facts.block_size_bytes,
        duration_secs: facts.duration_secs,
        all_delivered,
        all_stored,
        late_joiner_after: facts.late_joiner_after,
        drop_fraction: facts.drop_fraction,
        latency_ms: Latency::of(&all_latencies),
        max_peak_rss_mib: per_node.iter().map(|n| n.peak_rss_mib).fold(0.0, f64::max),
        per_node,
        adversary: None,
        cpu: None,
        engines: None,
    }
}

/// The sync part of a follower's report; `None` when it fetched nothing.
fn sync_report(
    s: &NodeStats,
    late_joiner_after: Option<u64>,
    facts: &RunFacts,
) -> Option<SyncReport> {
    let exit = s.sync.unwrap_or_default();
    let fetched = exit.fetched.max(s.fetched.len() as u64);
    if fetched == 0 {
        return None;
    }
    let span_secs = exit.last_fetched_ms.saturating_sub(exit.first_request_ms) as f64 / 1000.0;
    let catch_up_secs = late_joiner_after.and_then(|k| {
        let joined = s.joined_ms?;
        let reached = s.head_at.iter().find(|(n, _)| *n >= k).map(|(_, at)| *at)?;
        Some(reached.saturating_sub(joined) as f64 / 1000.0)
    });
    let peers = s.max_peers as f64;
    let bound = (f64::from(facts.peer_rate.per_second) * peers)
        .min(f64::from(facts.global_rate.per_second));
    let burst = (f64::from(facts.peer_rate.burst) * peers).min(f64::from(facts.global_rate.burst));
    let min_secs = (fetched as f64 - burst).max(0.0) / bound.max(f64::MIN_POSITIVE);
    let bound_with_burst = if min_secs > 0.0 {
        fetched as f64 / min_secs
    } else {
        f64::INFINITY
    };
    let rate = if span_secs > 0.0 {
        fetched as f64 / span_secs
    } else {
        0.0
    };
    Some(SyncReport {
        fetched,
        requests: exit.requests,
        errors: exit.errors,
        not_found: exit.not_found,
        rejected: exit.rejected,
        catch_up_secs,
        fetch_rate_per_sec: rate,
        rate_bound_per_sec: bound,
        // JSON has no infinity: a gap within the burst has no meaningful bound, report 0.
        rate_bound_with_burst_per_sec: if bound_with_burst.is_finite() {
            bound_with_burst
        } else {
            0.0
        },
        fraction_of_bound: if bound_with_burst.is_finite() {
            rate / bound_with_burst
        } else {
            0.0
        },
        peers: s.max_peers,
    })
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
