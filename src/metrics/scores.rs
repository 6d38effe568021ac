//! The `peer_scores` histogram's inputs: which peers are connected from which IP, and each
//! peer's score taken apart into op-node's components.
//!
//! op-node observes, per peer, gossipsub's score snapshot as its scorebook stores it: the total,
//! the **unweighted** IP colocation factor (surplus² over the threshold) and the **unweighted**
//! behaviour penalty counter, the summed block-topic counters, and the req/resp counters
//! (`shared/spec/op-p2p.md` §7.1). rust-libp2p exposes only the total, so the parts come from
//! [`ScoreBreakdown`] and are turned back into op-node's raw units here:
//!
//! * `ipColocation` = weighted term / [`IP_COLOCATION_WEIGHT`];
//! * `behavioralPenalty` = [`BEHAVIOUR_PENALTY_THRESHOLD`] + √(weighted term /
//!   [`BEHAVIOUR_PENALTY_WEIGHT`]) when the term is below zero; a counter still at or under the
//!   threshold costs nothing and cannot be seen in the total, so it reads 0;
//! * `blocks*` are always 0: at op-node's "light" level there are no topic score parameters, so
//!   gossipsub keeps no per-topic counters (op-node shows 0 as well);
//! * `reqResp*` are the application counters (decayed, capped) as they are.
//!
//! The peer → IP map is bounded by [`MAX_TRACKED_PEERS`]; a peer beyond it is left out of the
//! samples (it is still counted in `p2p_peer_count`).

use std::collections::HashMap;
use std::net::IpAddr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::p2p::peers::app_score::AppScores;
use crate::p2p::peers::breakdown::ScoreBreakdown;
use crate::p2p::scoring::{
    BEHAVIOUR_PENALTY_THRESHOLD, BEHAVIOUR_PENALTY_WEIGHT, IP_COLOCATION_WEIGHT,
    ip_colocation_exempt,
};

/// Connected peers tracked for the samples at most: far above any connection limit (op-node's
/// high water mark is 30), so only a pathological swarm reaches it.
pub const MAX_TRACKED_PEERS: usize = 4096;

/// op-node's component names (the `type` label), in op-node's order.
pub const COMPONENTS: [&str; 10] = [
    "total",
    "ipColocation",
    "behavioralPenalty",
    "blocksFirstMessage",
    "blocksTimeInMesh",
    "blocksMessageDeliveries",
    "blocksInvalidMessageDeliveries",
    "reqRespValidResponses",
    "reqRespErrorResponses",
    "reqRespRejectedPayloads",
];

/// One peer's score in op-node's components and units.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreComponents {
    /// gossipsub's total.
    pub total: f64,
    /// Unweighted IP colocation factor (surplus² of peers on the IP beyond the threshold).
    pub ip_colocation: f64,
    /// Unweighted behaviour penalty counter (0 while at or below the threshold).
    pub behavioural_penalty: f64,
    /// Valid responses (application counter).
    pub valid_responses: f64,
    /// Error responses (application counter).
    pub error_responses: f64,
    /// Rejected payloads (application counter).
    pub rejected_payloads: f64,
}

impl ScoreComponents {
    /// op-node's units from a breakdown.
    pub fn from_breakdown(b: &ScoreBreakdown) -> Self {
        let ip_colocation = if IP_COLOCATION_WEIGHT == 0.0 {
            0.0
        } else {
            (b.ip_colocation / IP_COLOCATION_WEIGHT).max(0.0)
        };
        let behavioural_penalty = if b.behavioural_penalty < 0.0 && BEHAVIOUR_PENALTY_WEIGHT < 0.0 {
            BEHAVIOUR_PENALTY_THRESHOLD + (b.behavioural_penalty / BEHAVIOUR_PENALTY_WEIGHT).sqrt()
        } else {
            0.0
        };
        Self {
            total: b.total,
            ip_colocation,
            behavioural_penalty,
            valid_responses: b.app.valid_responses,
            error_responses: b.app.error_responses,
            rejected_payloads: b.app.rejected_payloads,
        }
    }

    /// Every component with its `type` label, in [`COMPONENTS`] order.
    pub fn labelled(&self) -> [(&'static str, f64); 10] {
        let v = [
            self.total,
            self.ip_colocation,
            self.behavioural_penalty,
            0.0,
            0.0,
            0.0,
            0.0,
            self.valid_responses,
            self.error_responses,
            self.rejected_payloads,
        ];
        std::array::from_fn(|i| (COMPONENTS[i], v[i]))
    }
}

/// Connected peers and the IP of the connection that made them connected.
#[derive(Debug, Default)]
pub(super) struct ConnectedPeers {
    ips: HashMap<PeerId, Option<IpAddr>>,
}

impl ConnectedPeers {
    pub(super) fn insert(&mut self, peer: PeerId, remote: &Multiaddr) {
        if self.ips.len() >= MAX_TRACKED_PEERS && !self.ips.contains_key(&peer) {
            return;
        }
        self.ips.insert(peer, ip_of(remote));
    }

    pub(super) fn remove(&mut self, peer: &PeerId) {
        self.ips.remove(peer);
    }

    /// Every tracked peer's components; peers `score_of` knows nothing about are skipped.
    pub(super) fn components(
        &self,
        score_of: impl Fn(&PeerId) -> Option<f64>,
        app: &AppScores,
    ) -> Vec<ScoreComponents> {
        let mut per_ip: HashMap<IpAddr, usize> = HashMap::new();
        for ip in self.ips.values().flatten() {
            *per_ip.entry(*ip).or_default() += 1;
        }
        self.ips
            .iter()
            .filter_map(|(peer, ip)| {
                let total = score_of(peer)?;
                // A peer without an IP (not TCP/IP) shares it with nobody.
                let (on_ip, exempt) = match ip {
                    Some(ip) => (
                        per_ip.get(ip).copied().unwrap_or(1),
                        ip_colocation_exempt(ip),
                    ),
                    None => (1, true),
                };
                let breakdown = ScoreBreakdown::new(Some(total), app.counters(peer), on_ip, exempt);
                Some(ScoreComponents::from_breakdown(&breakdown))
            })
            .collect()
    }
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly
mod tests {
    use super::*;
    use crate::p2p::peers::app_score::AppCounters;

    #[test]
    fn raw_units_as_op_node_stores_them() {
        // 12 peers on one IP: surplus 2, factor 4 (weighted −140); behaviour counter 7 (weighted
        // −16 × 1² = −16).
        let app = AppCounters {
            valid_responses: 3.0,
            error_responses: 1.0,
            ..AppCounters::default()
        };
        let total = app.score() - 140.0 - 16.0;
        let b = ScoreBreakdown::new(Some(total), app, 12, false);
        let c = ScoreComponents::from_breakdown(&b);
        assert!((c.ip_colocation - 4.0).abs() < 1e-9);
        assert!((c.behavioural_penalty - 7.0).abs() < 1e-9);
        assert_eq!(c.valid_responses, 3.0);
        let labelled = c.labelled();
        assert_eq!(labelled[0], ("total", total));
        assert_eq!(labelled[3], ("blocksFirstMessage", 0.0));
    }

    #[test]
    fn colocation_counts_peers_per_ip_and_skips_unscored_peers() {
        let mut peers = ConnectedPeers::default();
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/9222".parse().unwrap();
        let ids: Vec<PeerId> = (0..12).map(|_| PeerId::random()).collect();
        for id in &ids {
            peers.insert(*id, &addr);
        }
        let app = AppScores::new();
        // gossipsub's IP colocation term for 12 peers on one IP: −35 × 2².
        let c = peers.components(|_| Some(-140.0), &app);
        assert_eq!(c.len(), 12);
        assert!(c.iter().all(|c| (c.ip_colocation - 4.0).abs() < 1e-9));
        assert!(c.iter().all(|c| c.behavioural_penalty == 0.0));
        // Scoring off: nothing to sample.
        assert!(peers.components(|_| None, &app).is_empty());
        peers.remove(&ids[0]);
        assert_eq!(peers.components(|_| Some(0.0), &app).len(), 11);
    }
}
