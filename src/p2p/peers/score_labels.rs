//! The `peer_scores` histogram's samples: each connected peer's score, taken apart by the event
//! loop ([`ScoreBreakdown`]), in op-node's components and units (`shared/spec/op-p2p.md` §7.1):
//! the total, the **unweighted** IP colocation factor and behaviour penalty counter (converted
//! once, in the scorebook's [`PeerScores`]), the summed block-topic counters, and the req/resp
//! counters. The `blocks*` components are always 0: at op-node's "light" level there are no
//! topic score parameters, so gossipsub keeps no per-topic counters (op-node shows 0 as well).

use crate::p2p::peers::breakdown::ScoreBreakdown;
use crate::p2p::peers::scorebook::PeerScores;

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

/// Every component of `breakdown` with its `type` label, in [`COMPONENTS`] order.
pub fn labelled(breakdown: &ScoreBreakdown) -> [(&'static str, f64); 10] {
    let s = PeerScores::from(breakdown);
    let blocks = &s.gossip.blocks;
    let v = [
        s.gossip.total,
        s.gossip.ip_colocation_factor,
        s.gossip.behavioral_penalty,
        blocks.first_message_deliveries,
        blocks.time_in_mesh,
        blocks.mesh_message_deliveries,
        blocks.invalid_message_deliveries,
        s.req_resp.valid_responses,
        s.req_resp.error_responses,
        s.req_resp.rejected_payloads,
    ];
    std::array::from_fn(|i| (COMPONENTS[i], v[i]))
}

#[cfg(test)]
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
        let labelled = labelled(&b);
        assert_eq!(labelled[0], ("total", total));
        assert!((labelled[1].1 - 4.0).abs() < 1e-9, "{labelled:?}");
        assert!((labelled[2].1 - 7.0).abs() < 1e-9, "{labelled:?}");
        assert_eq!(labelled[3], ("blocksFirstMessage", 0.0));
        assert_eq!(labelled[7], ("reqRespValidResponses", 3.0));
        assert_eq!(labelled[8], ("reqRespErrorResponses", 1.0));
    }
}
