//! Gossipsub peer scoring as op-node runs it (`--p2p.scoring light|none`, spec §5): the "light"
//! parameters (no topic terms; application score, IP colocation and behaviour penalty) and
//! op-node's thresholds. The application score comes from [`super::peers::app_score`] and is
//! pushed into gossipsub by the event loop.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libp2p::gossipsub::{PeerScoreParams, PeerScoreThresholds};

/// `--p2p.scoring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoringLevel {
    /// op-node's "light" parameters (default).
    #[default]
    Light,
    /// No gossipsub scoring: no thresholds, scores stay 0, nobody is banned for score.
    None,
}

impl std::str::FromStr for ScoringLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "light" => Ok(Self::Light),
            "none" => Ok(Self::None),
            other => Err(format!("scoring level {other:?}: expected light or none")),
        }
    }
}

/// op-node `IPColocationFactorWeight`.
pub const IP_COLOCATION_WEIGHT: f64 = -35.0;
/// op-node `IPColocationFactorThreshold`: peers from one IP before the penalty starts.
pub const IP_COLOCATION_THRESHOLD: f64 = 10.0;
/// Addresses exempt from the IP colocation penalty (our one deviation, see [`light_params`]).
pub const IP_COLOCATION_WHITELIST: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// Whether gossipsub leaves `ip` out of the IP colocation penalty.
pub fn ip_colocation_exempt(ip: &IpAddr) -> bool {
    IP_COLOCATION_WHITELIST.contains(ip)
}

/// op-node `BehaviourPenaltyWeight`.
pub const BEHAVIOUR_PENALTY_WEIGHT: f64 = -16.0;
/// op-node `BehaviourPenaltyThreshold`.
pub const BEHAVIOUR_PENALTY_THRESHOLD: f64 = 6.0;
/// op-node `DecayToZero`.
pub const DECAY_TO_ZERO: f64 = 0.01;
/// op-node `GossipThreshold`: below it, no gossip is exchanged with the peer.
pub const GOSSIP_THRESHOLD: f64 = -10.0;
/// op-node `PublishThreshold`.
pub const PUBLISH_THRESHOLD: f64 = -40.0;
/// op-node `GraylistThreshold`: below it, everything from the peer is ignored.
pub const GRAYLIST_THRESHOLD: f64 = -40.0;
/// op-node `AcceptPXThreshold` (moot: peer exchange is off).
pub const ACCEPT_PX_THRESHOLD: f64 = 20.0;
/// op-node `OpportunisticGraftThreshold`.
pub const OPPORTUNISTIC_GRAFT_THRESHOLD: f64 = 0.05;

/// op-node `ScoreDecay(duration, slot)`: the per-slot factor that brings a counter to 1% over
/// `duration`.
pub fn score_decay(duration: Duration, slot: Duration) -> f64 {
    let ticks = duration.as_secs_f64() / slot.as_secs_f64().max(f64::MIN_POSITIVE);
    0.01f64.powf(1.0 / ticks.max(1.0))
}

/// The slot (decay interval) of a chain with `block_time_secs` (2 s when 0).
fn slot(block_time_secs: u64) -> Duration {
    Duration::from_secs(if block_time_secs == 0 {
        2
    } else {
        block_time_secs
    })
}

/// op-node `RetainScore`: 100 epochs of 6 slots. Scores of peers gone longer are forgotten
/// (by gossipsub, and by the scorebook).
pub fn retain_score(block_time_secs: u64) -> Duration {
    slot(block_time_secs) * 6 * 100
}

/// op-node's "light" parameters for a chain with `block_time_secs` (2 s when 0).
///
/// One deviation: loopback addresses are exempt from the IP colocation penalty. Every peer of a
/// local devnet (or of several nodes an operator runs on one machine) shares 127.0.0.1; op-node
/// would push them all below the graylist threshold as soon as one has more than 10 such peers.
/// Remote peers are scored exactly as op-node scores them.
pub fn light_params(block_time_secs: u64) -> PeerScoreParams {
    let slot = slot(block_time_secs);
    let epoch = slot * 6;
    PeerScoreParams {
        topics: HashMap::new(),
        // Without topic parameters the cap is unused; 0 means "no cap".
        topic_score_cap: 0.0,
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: IP_COLOCATION_WEIGHT,
        ip_colocation_factor_threshold: IP_COLOCATION_THRESHOLD,
        ip_colocation_factor_whitelist: HashSet::from(IP_COLOCATION_WHITELIST),
        behaviour_penalty_weight: BEHAVIOUR_PENALTY_WEIGHT,
        behaviour_penalty_threshold: BEHAVIOUR_PENALTY_THRESHOLD,
        behaviour_penalty_decay: score_decay(epoch * 10, slot),
        decay_interval: slot,
        decay_to_zero: DECAY_TO_ZERO,
        retain_score: retain_score(block_time_secs),
        // rust-libp2p's slow-peer term has no op-node counterpart.
        slow_peer_weight: 0.0,
        ..PeerScoreParams::default()
    }
}

/// op-node's thresholds.
pub fn thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        accept_px_threshold: ACCEPT_PX_THRESHOLD,
        opportunistic_graft_threshold: OPPORTUNISTIC_GRAFT_THRESHOLD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn light_params_match_op_node_for_2s_blocks() {
        let p = light_params(2);
        assert!(p.validate().is_ok());
        assert!((p.behaviour_penalty_decay - 0.926_119).abs() < 1e-6);
        assert_eq!(p.decay_interval, Duration::from_secs(2));
        assert_eq!(p.retain_score, Duration::from_secs(1200));
        assert!(p.topics.is_empty());
        assert_eq!(light_params(0).decay_interval, Duration::from_secs(2));
        assert!(thresholds().validate().is_ok());
    }
}
