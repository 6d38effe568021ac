//! A peer's score taken apart: what the admin RPC shows (`scores`, `downscoreReasons`) and what
//! the metrics histogram records per component. Built from the gossipsub total (read from the
//! swarm by the event loop), the application counters ([`super::app_score`]) and the number of
//! connected peers sharing the peer's IP.
//!
//! rust-libp2p's gossipsub exposes only a peer's total, so the parts it adds itself are derived:
//! the IP colocation term is recomputed from its formula, and the behaviour penalty is what is
//! left (at op-node's "light" level there are no topic terms, so total = app + IP colocation +
//! behaviour penalty; any float noise below `NOISE` is treated as zero).

use serde::Serialize;

use super::app_score::AppCounters;
use crate::p2p::scoring::{IP_COLOCATION_THRESHOLD, IP_COLOCATION_WEIGHT};

/// Differences smaller than this are float noise, not a penalty.
const NOISE: f64 = 1e-6;

/// A peer's score and its parts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreBreakdown {
    /// gossipsub's total (op-node's `GetPeerScore`); 0 when scoring is off or the peer unknown.
    pub total: f64,
    /// The application counters (P5, weight 1).
    pub app: AppCounters,
    /// The IP colocation term (P6, weighted; ≤ 0).
    pub ip_colocation: f64,
    /// The behaviour penalty term (P7, weighted; ≤ 0).
    pub behavioural_penalty: f64,
}

impl ScoreBreakdown {
    /// Takes `total` apart. `peers_on_ip` counts the connected peers sharing this peer's IP
    /// (itself included); `ip_exempt` is true for IPs the scoring whitelists (loopback).
    pub fn new(total: Option<f64>, app: AppCounters, peers_on_ip: usize, ip_exempt: bool) -> Self {
        let Some(total) = total else {
            // Scoring off: nothing is computed by gossipsub, only our counters exist.
            return Self {
                app,
                ..Self::default()
            };
        };
        let surplus = peers_on_ip as f64 - IP_COLOCATION_THRESHOLD;
        let ip_colocation = if ip_exempt || surplus <= 0.0 {
            0.0
        } else {
            IP_COLOCATION_WEIGHT * surplus * surplus
        };
        let rest = total - app.score() - ip_colocation;
        Self {
            total,
            app,
            ip_colocation,
            behavioural_penalty: if rest < -NOISE { rest } else { 0.0 },
        }
    }

    /// The reasons currently pulling the score down, most damaging first (the vocabulary is
    /// [`DownscoreReason`]); empty when none.
    pub fn downscore_reasons(&self) -> Vec<DownscoreReason> {
        use crate::p2p::peers::app_score::{
            ERROR_RESPONSE_WEIGHT, INVALID_BLOCK_WEIGHT, REFUSED_REQUEST_WEIGHT,
            REJECTED_PAYLOAD_WEIGHT,
        };
        let a = &self.app;
        let mut parts = [
            (
                DownscoreReason::InvalidBlock,
                INVALID_BLOCK_WEIGHT * (a.invalid_blocks - a.invalid_signatures),
            ),
            (
                DownscoreReason::InvalidSignature,
                INVALID_BLOCK_WEIGHT * a.invalid_signatures,
            ),
            (
                DownscoreReason::RpcErrorResponse,
                ERROR_RESPONSE_WEIGHT * (a.error_responses - a.rate_limited_responses),
            ),
            (
                DownscoreReason::RateLimited,
                ERROR_RESPONSE_WEIGHT * a.rate_limited_responses
                    + REFUSED_REQUEST_WEIGHT * a.refused_requests,
            ),
            (
                DownscoreReason::RpcRejectedPayload,
                REJECTED_PAYLOAD_WEIGHT * a.rejected_payloads,
            ),
            (DownscoreReason::BehaviourPenalty, self.behavioural_penalty),
            (DownscoreReason::IpColocation, self.ip_colocation),
        ];
        parts.sort_by(|x, y| x.1.total_cmp(&y.1));
        parts
            .into_iter()
            .filter(|(_, v)| *v < -NOISE)
            .map(|(r, _)| r)
            .collect()
    }
}

/// Why a peer's score is down (the `downscoreReasons` vocabulary of the admin RPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DownscoreReason {
    /// It forwarded gossip blocks we REJECTed (other than for their signature).
    InvalidBlock,
    /// It forwarded gossip blocks with a bad signature or not signed by the chain's signer.
    InvalidSignature,
    /// Its payload_by_number answers failed: error codes, broken streams, timeouts, wrong
    /// payloads.
    RpcErrorResponse,
    /// It served payloads that never linked to the chain.
    RpcRejectedPayload,
    /// gossipsub's behaviour penalty (broken promises, GRAFT floods, backoff violations).
    BehaviourPenalty,
    /// Too many peers from its IP (gossipsub's IP colocation factor).
    IpColocation,
    /// Rate limiting in either direction: our server refused its payload_by_number requests
    /// (over its rate or open-stream limit), or it answered ours with code 3 (op-node's
    /// rate-limit answer).
    RateLimited,
}

impl DownscoreReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidBlock => "invalid_block",
            Self::InvalidSignature => "invalid_signature",
            Self::RpcErrorResponse => "rpc_error_response",
            Self::RpcRejectedPayload => "rpc_rejected_payload",
            Self::BehaviourPenalty => "behaviour_penalty",
            Self::IpColocation => "ip_colocation",
            Self::RateLimited => "rate_limited",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_and_reasons_are_ordered() {
        let app = AppCounters {
            invalid_blocks: 1.0,
            invalid_signatures: 1.0,
            error_responses: 2.0,
            rate_limited_responses: 1.0,
            ..AppCounters::default()
        };
        // 12 peers on one IP: −35 × 2² = −140; behaviour −16 × 1² = −16.
        let total = app.score() - 140.0 - 16.0;
        let b = ScoreBreakdown::new(Some(total), app, 12, false);
        assert_eq!(b.ip_colocation, -140.0);
        assert!((b.behavioural_penalty + 16.0).abs() < 1e-9);
        assert_eq!(
            b.downscore_reasons(),
            vec![
                DownscoreReason::InvalidSignature,
                DownscoreReason::IpColocation,
                DownscoreReason::BehaviourPenalty,
                DownscoreReason::RpcErrorResponse,
                DownscoreReason::RateLimited,
            ]
        );
    }

    #[test]
    fn loopback_and_scoring_off_have_no_colocation() {
        let b = ScoreBreakdown::new(Some(0.0), AppCounters::default(), 50, true);
        assert_eq!(b.ip_colocation, 0.0);
        assert!(b.downscore_reasons().is_empty());
        let off = ScoreBreakdown::new(None, AppCounters::default(), 50, false);
        assert_eq!(off, ScoreBreakdown::default());
    }
}
