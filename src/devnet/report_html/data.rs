//! The HTML report's data: the time series the orchestrator collected ([`RunRecord`], taken from
//! its per-node [`NodeStats`] at the end of the run), and the figures derived from them for the
//! plots (latency samples, how long each block took to reach a share of the nodes, cumulative
//! counts). The JSON report ([`super::super::report`]) keeps only aggregates; this keeps the
//! samples, in memory only, for drawing.

use std::collections::{BTreeMap, HashMap};

use crate::devnet::report::NodeStats;

/// Everything the plots need, per node, in node order (0 = the sequencer).
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    /// Unix ms the plots' time axes start at: the first block's publication.
    pub t0_ms: u64,
    /// Number → publish time (unix ms) of each requested block.
    pub published: BTreeMap<u64, u64>,
    /// Per node.
    pub nodes: Vec<NodeRecord>,
    /// The topology the devnet asked for: (dialer, dialee) node indices.
    pub planned_edges: Vec<(usize, usize)>,
}

/// One node's series.
#[derive(Debug, Clone, Default)]
pub struct NodeRecord {
    /// libp2p peer id.
    pub peer_id: String,
    /// Number → time (unix ms) it accepted the published block from gossip.
    pub accepted: BTreeMap<u64, u64>,
    /// Number → time (unix ms) it stored the block from payload_by_number.
    pub fetched: BTreeMap<u64, u64>,
    /// (unix ms, head number) at each head change.
    pub heads: Vec<(u64, u64)>,
    /// With `--l2`: (unix ms, blocks the engine inserted so far).
    pub engine: Vec<(u64, u64)>,
    /// `--adversary`: its messages validated here, per bin (start unix ms → count).
    pub adversary_messages: BTreeMap<u64, u64>,
    /// `--adversary`: when this node banned it (unix ms).
    pub adversary_banned_at: Option<u64>,
    /// Devnet nodes it was connected to at the end (indices).
    pub peers: Vec<usize>,
    /// Of those, the ones in its gossipsub mesh.
    pub mesh: Vec<usize>,
    /// Connected peers at the end that are not devnet nodes (the adversary).
    pub outside_peers: usize,
    /// It answered the topology request (else its edges are unknown).
    pub topology_known: bool,
}

/// When a block reached a share of the followers, in ms after its publication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// Block number.
    pub number: u64,
    /// Half of the followers had it.
    pub p50: Option<u64>,
    /// 90% of them.
    pub p90: Option<u64>,
    /// All of them.
    pub all: Option<u64>,
}

impl RunRecord {
    /// Takes the series out of the orchestrator's stats (index 0 is the sequencer); `blocks`
    /// is the number of blocks requested (tail blocks after them are left out, as in the JSON
    /// report), `edges` the planned topology.
    pub fn collect(stats: &[NodeStats], blocks: u64, edges: &[(usize, usize)]) -> Self {
        let published: BTreeMap<u64, u64> =
            crate::devnet::report::requested_blocks(stats, blocks).collect();
        let published_hashes = stats.first().map(|s| &s.published_hashes);
        let index: HashMap<&str, usize> = stats
            .iter()
            .enumerate()
            .map(|(i, s)| (s.peer_id.as_str(), i))
            .collect();
        let nodes = stats
            .iter()
            .map(|s| {
                // Only the published block itself counts, as in the JSON report (an
                // equivocator's block shares its number).
                let accepted = s
                    .accepted
                    .iter()
                    .filter(|(n, _)| published.contains_key(n))
                    .filter(|(n, _)| {
                        published_hashes
                            .and_then(|h| h.get(n))
                            .is_none_or(|h| s.accepted_hashes.contains(h))
                    })
                    .map(|(n, at)| (*n, *at))
                    .collect();
                let known: Vec<usize> = s
                    .connected_to
                    .iter()
                    .filter_map(|p| index.get(p.as_str()).copied())
                    .collect();
                let mesh = s
                    .mesh
                    .iter()
                    .filter_map(|p| index.get(p.as_str()).copied())
                    .collect();
                let mut heads: Vec<(u64, u64)> =
                    s.head_at.iter().map(|(n, at)| (*at, *n)).collect();
                heads.sort_unstable();
                NodeRecord {
                    peer_id: s.peer_id.clone(),
                    accepted,
                    fetched: s
                        .fetched
                        .iter()
                        .filter(|(n, _)| published.contains_key(n))
                        .map(|(n, at)| (*n, *at))
                        .collect(),
                    heads,
                    engine: s.engine_at.clone(),
                    adversary_messages: s.adversary.message_bins.clone(),
                    adversary_banned_at: s.adversary.banned_at_ms,
                    outside_peers: s.connected_to.len().saturating_sub(known.len()),
                    peers: known,
                    mesh,
                    topology_known: s.topology_reported,
                }
            })
            .collect();
        Self {
            t0_ms: published.values().min().copied().unwrap_or(0),
            published,
            nodes,
            planned_edges: edges.to_vec(),
        }
    }

    /// Seconds from the time axis' origin to `at_ms` (negative before it).
    pub fn secs(&self, at_ms: u64) -> f64 {
        (at_ms as f64 - self.t0_ms as f64) / 1000.0
    }

    /// Publish → accept latency of every block `node` accepted from gossip, in ms.
    pub fn latencies(&self, node: usize) -> Vec<u64> {
        let Some(n) = self.nodes.get(node) else {
            return Vec::new();
        };
        n.accepted
            .iter()
            .filter_map(|(number, at)| Some(at.saturating_sub(*self.published.get(number)?)))
            .collect()
    }

    /// When `node` first had block `number` (gossip or payload_by_number), unix ms.
    pub fn had_at(&self, node: usize, number: u64) -> Option<u64> {
        let n = self.nodes.get(node)?;
        match (n.accepted.get(&number), n.fetched.get(&number)) {
            (Some(a), Some(f)) => Some(*a.min(f)),
            (a, f) => a.or(f).copied(),
        }
    }

    /// Per published block: how long until 50%, 90% and all of the followers had it.
    pub fn reach(&self) -> Vec<Reach> {
        let followers = self.nodes.len().saturating_sub(1);
        self.published
            .iter()
            .map(|(&number, &published_at)| {
                let mut times: Vec<u64> = (1..self.nodes.len())
                    .filter_map(|i| self.had_at(i, number))
                    .map(|at| at.saturating_sub(published_at))
                    .collect();
                times.sort_unstable();
                // The time the k-th follower had it, for the smallest k covering the share.
                let at_share = |share: f64| -> Option<u64> {
                    let k = ((share * followers as f64).ceil() as usize).max(1);
                    times.get(k - 1).copied()
                };
                Reach {
                    number,
                    p50: at_share(0.5),
                    p90: at_share(0.9),
                    all: at_share(1.0),
                }
            })
            .collect()
    }

    /// Blocks `node` has (gossip or payload_by_number), among the published ones.
    pub fn stored(&self, node: usize) -> usize {
        if node == 0 {
            return self.published.len();
        }
        self.published
            .keys()
            .filter(|n| self.had_at(node, **n).is_some())
            .count()
    }
}

/// Running total of `bins` (time → count) as (time, total) steps.
pub fn cumulative(bins: &BTreeMap<u64, u64>) -> Vec<(u64, u64)> {
    let mut total = 0;
    bins.iter()
        .map(|(at, count)| {
            total += count;
            (*at, total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(followers: &[&[(u64, u64)]]) -> RunRecord {
        let mut r = RunRecord {
            published: [(1, 1000), (2, 2000)].into_iter().collect(),
            t0_ms: 1000,
            ..RunRecord::default()
        };
        r.nodes.push(NodeRecord::default());
        for accepted in followers {
            r.nodes.push(NodeRecord {
                accepted: accepted.iter().copied().collect(),
                ..NodeRecord::default()
            });
        }
        r
    }

    #[test]
    fn reach_is_the_time_the_kth_follower_had_the_block() {
        let mut r = record(&[
            &[(1, 1010), (2, 2010)],
            &[(1, 1020)],
            &[(1, 1030)],
            &[(1, 1100), (2, 2400)],
        ]);
        // Block 2 reaches node 2 late through payload_by_number.
        r.nodes[2].fetched.insert(2, 2900);
        let reach = r.reach();
        assert_eq!(
            reach[0],
            Reach {
                number: 1,
                p50: Some(20),
                p90: Some(100),
                all: Some(100)
            }
        );
        // Block 2: 3 of 4 followers had it (10, 400, 900 ms); node 3 never did.
        assert_eq!(
            reach[1],
            Reach {
                number: 2,
                p50: Some(400),
                p90: None,
                all: None
            }
        );
        assert_eq!(r.latencies(1), vec![10, 10]);
        assert_eq!(r.stored(2), 2);
        assert_eq!(r.stored(3), 1);
        assert_eq!(r.secs(3500), 2.5);
    }

    #[test]
    fn cumulative_counts_add_up() {
        let bins: BTreeMap<u64, u64> = [(100, 2), (300, 1), (400, 5)].into_iter().collect();
        assert_eq!(cumulative(&bins), vec![(100, 2), (300, 3), (400, 8)]);
    }
}
