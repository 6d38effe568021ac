//! The application score of each peer: op-node's req/resp counters ("light" level,
//! `shared/spec/op-p2p.md` §7.1), fed by the sync client's outcomes, plus our invalid-block
//! counter (project decision 5), pushed into gossipsub as P5 by the event loop.
//!
//! `score = 0.5·valid − 1·errors − 20·rejected − 20·invalid_blocks`, each counter capped, every
//! counter multiplied by the decay once per slot for connected peers and zeroed below 0.01.
//! Sans-IO: time comes in as "a slot passed" calls, so tests drive it.

use std::collections::HashMap;

use libp2p::PeerId;

use crate::validate::PeerFault;

/// Weight of a valid response (op-node `ValidResponseWeight`).
pub const VALID_RESPONSE_WEIGHT: f64 = 0.5;
/// Cap of the valid-response counter (op-node `ValidResponseCap`): at most +5.
pub const VALID_RESPONSE_CAP: f64 = 10.0;
/// Weight of an error response (op-node `ErrorResponseWeight`).
pub const ERROR_RESPONSE_WEIGHT: f64 = -1.0;
/// Cap of the error counter (op-node `ErrorResponseCap`): at most −9, which stays above the
/// gossip threshold −10, so errors alone never cut a peer off gossip.
pub const ERROR_RESPONSE_CAP: f64 = 9.0;
/// Weight of a rejected payload (op-node `RejectedPayloadWeight`).
pub const REJECTED_PAYLOAD_WEIGHT: f64 = -20.0;
/// Cap of the rejected counter (op-node `RejectedPayloadCap`): 5 rejections reach the ban
/// threshold −100.
pub const REJECTED_PAYLOAD_CAP: f64 = 20.0;
/// Weight of a gossip block this peer forwarded and we REJECTed (ours, project decision 5:
/// op-node's light scoring has no topic terms, so an invalid-block spammer would go unpunished).
/// The value is op-node's former `InvalidMessageDeliveriesWeight` (−140.4475, removed with its
/// topic parameters in v1.13.4). One invalid block must take the peer below the ban threshold
/// (−100) at once: below the graylist threshold (−40) gossipsub ignores the peer's messages, so
/// a smaller weight would leave it graylisted but never banned. Gossipsub forwards only ACCEPTed
/// messages and op-node judges blocks as we do, so an honest peer never forwards one.
pub const INVALID_BLOCK_WEIGHT: f64 = -140.4475;
/// Cap of the invalid-block counter.
pub const INVALID_BLOCK_CAP: f64 = 20.0;
/// Weight of a request our server refused for rate (ours): at most −5 with the cap, half the
/// gossip threshold (−10), so flooding alone never cuts a peer off gossip or bans it; the
/// limiter is what stops the flood.
pub const REFUSED_REQUEST_WEIGHT: f64 = -0.5;
/// Cap of the refused-request counter.
pub const REFUSED_REQUEST_CAP: f64 = 10.0;
/// Per-slot decay (op-node `ScoreDecay(10 epochs)` with 32-slot epochs: 0.01^(1/320)).
pub const DECAY_PER_SLOT: f64 = 0.926_119;
/// Counters below this after decaying are set to 0 (op-node `DecayToZero`).
pub const DECAY_TO_ZERO: f64 = 0.01;
/// Peers tracked at most. A new peer beyond it evicts the peer whose score is closest to zero,
/// so a flood of fresh peer ids can neither grow the table nor wash out a penalised peer.
pub const MAX_TRACKED_PEERS: usize = 4096;

/// What a peer did that counts for its application score: req/resp outcomes (op-node's
/// `onValidResponse`, `onResponseError`, `onRejectedPayload`) and invalid gossip blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerOutcome {
    /// A payload of the number asked for, with a correct hash.
    ValidResponse,
    /// An error code other than "not found", a failed stream, a timeout, or a payload that does
    /// not decode or whose number or hash is wrong.
    ErrorResponse,
    /// A payload that proved not to be on the chain (it never linked to a trusted block).
    RejectedPayload,
    /// Like [`Self::ErrorResponse`], but the error was code 3, which op-node's server answers
    /// when it rate limits the requester (it also covers other server-side failures). Counts as
    /// an error response; tracked apart only to tell the operator why.
    RateLimitedResponse,
    /// A gossip block we REJECTed for a fault in its bytes (bad hash, wrong fork fields,
    /// undecodable, over the height limit as delivered by this peer).
    InvalidBlock,
    /// Our server refused one of its payload_by_number requests (over its rate limit for the
    /// whole throttle wait, over its open-stream limit or the server's capacity), or it opened a
    /// stream and never sent its request within the read timeout. Ours (op-node does not score
    /// requesters): a peer keeping a queue that deep is flooding us; the weight is small and
    /// capped, so it shows (`rate_limited`) and costs gossip only together with other faults.
    RequestRefused,
    /// A gossip block we REJECTed for a cryptographically invalid signature (a valid signature by
    /// a key we do not accept costs nothing). Counts as an invalid block; tracked apart only to
    /// tell the operator why.
    InvalidSignature,
}

impl PeerOutcome {
    /// Whether the outcome lowers the peer's score (everything but a valid response).
    pub fn is_penalty(self) -> bool {
        self != Self::ValidResponse
    }

    /// The outcome of a gossip message whose REJECT proved `fault` against its forwarder.
    pub fn of_fault(fault: PeerFault) -> Self {
        match fault {
            PeerFault::InvalidSignature => Self::InvalidSignature,
            PeerFault::Malformed
            | PeerFault::WrongBlockHash
            | PeerFault::ForkFields
            | PeerFault::TooManyAtHeight => Self::InvalidBlock,
        }
    }
}

/// One peer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AppCounters {
    /// Valid responses (≤ [`VALID_RESPONSE_CAP`]).
    pub valid_responses: f64,
    /// Error responses (≤ [`ERROR_RESPONSE_CAP`]).
    pub error_responses: f64,
    /// Rejected payloads (≤ [`REJECTED_PAYLOAD_CAP`]).
    pub rejected_payloads: f64,
    /// REJECTed gossip blocks (≤ [`INVALID_BLOCK_CAP`]).
    pub invalid_blocks: f64,
    /// The part of `error_responses` that were code 3 (rate limited): attribution only.
    pub rate_limited_responses: f64,
    /// The part of `invalid_blocks` rejected for their signature: attribution only.
    pub invalid_signatures: f64,
    /// Requests of this peer our server refused for rate (≤ [`REFUSED_REQUEST_CAP`]).
    pub refused_requests: f64,
}

impl AppCounters {
    /// The application score these counters give.
    pub fn score(&self) -> f64 {
        VALID_RESPONSE_WEIGHT * self.valid_responses
            + ERROR_RESPONSE_WEIGHT * self.error_responses
            + REJECTED_PAYLOAD_WEIGHT * self.rejected_payloads
            + INVALID_BLOCK_WEIGHT * self.invalid_blocks
            + REFUSED_REQUEST_WEIGHT * self.refused_requests
    }

    fn record(&mut self, outcome: PeerOutcome) {
        let bump = |counter: &mut f64, cap: f64| *counter = (*counter + 1.0).min(cap);
        match outcome {
            PeerOutcome::ValidResponse => bump(&mut self.valid_responses, VALID_RESPONSE_CAP),
            PeerOutcome::ErrorResponse => bump(&mut self.error_responses, ERROR_RESPONSE_CAP),
            PeerOutcome::RateLimitedResponse => {
                bump(&mut self.error_responses, ERROR_RESPONSE_CAP);
                bump(&mut self.rate_limited_responses, ERROR_RESPONSE_CAP);
            }
            PeerOutcome::RejectedPayload => bump(&mut self.rejected_payloads, REJECTED_PAYLOAD_CAP),
            PeerOutcome::InvalidBlock => bump(&mut self.invalid_blocks, INVALID_BLOCK_CAP),
            PeerOutcome::RequestRefused => bump(&mut self.refused_requests, REFUSED_REQUEST_CAP),
            PeerOutcome::InvalidSignature => {
                bump(&mut self.invalid_blocks, INVALID_BLOCK_CAP);
                bump(&mut self.invalid_signatures, INVALID_BLOCK_CAP);
            }
        }
    }

    fn decay(&mut self) {
        for counter in [
            &mut self.valid_responses,
            &mut self.error_responses,
            &mut self.rejected_payloads,
            &mut self.invalid_blocks,
            &mut self.rate_limited_responses,
            &mut self.invalid_signatures,
            &mut self.refused_requests,
        ] {
            *counter *= DECAY_PER_SLOT;
            if *counter < DECAY_TO_ZERO {
                *counter = 0.0;
            }
        }
    }

    fn is_zero(&self) -> bool {
        *self == Self::default()
    }
}

/// The application scores of all peers, owned by the peer manager
/// ([`crate::p2p::peer_manager`]): every outcome reaches it as a report through the network
/// handle, so there is one writer and no lock.
#[derive(Debug, Clone, Default)]
pub struct AppScores {
    peers: HashMap<PeerId, AppCounters>,
}

impl AppScores {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one outcome for `peer`.
    pub fn record(&mut self, peer: PeerId, outcome: PeerOutcome) {
        let peers = &mut self.peers;
        if !peers.contains_key(&peer) && peers.len() >= MAX_TRACKED_PEERS {
            // Linear over ≤ MAX_TRACKED_PEERS, only when a new peer arrives at a full table.
            if let Some(victim) = peers
                .iter()
                .min_by(|a, b| a.1.score().abs().total_cmp(&b.1.score().abs()))
                .map(|(p, _)| *p)
            {
                peers.remove(&victim);
            }
        }
        peers.entry(peer).or_default().record(outcome);
    }

    /// Puts back counters recorded before a restart (the scorebook), unless `peer` already
    /// has counters.
    pub fn restore(&mut self, peer: PeerId, counters: AppCounters) {
        if counters.is_zero() {
            return;
        }
        if self.peers.len() < MAX_TRACKED_PEERS {
            self.peers.entry(peer).or_insert(counters);
        }
    }

    /// Forgets `peer`'s counters (its ban expired).
    pub fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// One slot passed: decays the counters of `connected` peers (op-node decays only those),
    /// and forgets peers whose counters all reached zero.
    pub fn decay_slot<'a>(&mut self, connected: impl IntoIterator<Item = &'a PeerId>) {
        for peer in connected {
            if let Some(counters) = self.peers.get_mut(peer) {
                counters.decay();
                if counters.is_zero() {
                    self.peers.remove(peer);
                }
            }
        }
    }

    /// The counters of `peer` (zero when unknown).
    pub fn counters(&self, peer: &PeerId) -> AppCounters {
        self.peers.get(peer).copied().unwrap_or_default()
    }

    /// The application score of `peer` (0 when unknown).
    pub fn score(&self, peer: &PeerId) -> f64 {
        self.counters(peer).score()
    }

    /// Every tracked peer with its counters.
    pub fn snapshot(&self) -> Vec<(PeerId, AppCounters)> {
        self.peers.iter().map(|(p, c)| (*p, *c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_caps_and_decay_follow_op_node() {
        let mut book = AppScores::new();
        let peer = PeerId::random();
        for _ in 0..30 {
            book.record(peer, PeerOutcome::ValidResponse);
        }
        assert_eq!(book.score(&peer), 5.0, "valid responses cap at +5");
        for _ in 0..30 {
            book.record(peer, PeerOutcome::ErrorResponse);
        }
        assert_eq!(book.score(&peer), 5.0 - 9.0, "errors cap at −9");
        for _ in 0..5 {
            book.record(peer, PeerOutcome::RejectedPayload);
        }
        assert_eq!(
            book.score(&peer),
            5.0 - 9.0 - 100.0,
            "5 rejections reach −100"
        );

        book.decay_slot([&peer]);
        let c = book.counters(&peer);
        assert!((c.rejected_payloads - 5.0 * DECAY_PER_SLOT).abs() < 1e-9);
        // A disconnected peer does not decay.
        let other = PeerId::random();
        book.record(other, PeerOutcome::ErrorResponse);
        book.decay_slot([&peer]);
        assert_eq!(book.counters(&other).error_responses, 1.0);
        // Enough slots bring everything to zero and the peer is forgotten.
        for _ in 0..200 {
            book.decay_slot([&peer]);
        }
        assert_eq!(book.score(&peer), 0.0);
        assert!(book.snapshot().iter().all(|(p, _)| *p != peer));
    }

    #[test]
    fn a_full_table_evicts_the_score_closest_to_zero() {
        let mut book = AppScores::new();
        let bad = PeerId::random();
        book.record(bad, PeerOutcome::RejectedPayload);
        for _ in 0..MAX_TRACKED_PEERS + 10 {
            book.record(PeerId::random(), PeerOutcome::ValidResponse);
        }
        assert_eq!(book.snapshot().len(), MAX_TRACKED_PEERS);
        assert_eq!(book.score(&bad), -20.0, "the penalised peer is kept");
    }
}
