//! Who answers for a block REJECTed because its height already holds too many blocks.
//!
//! Sits between the validation task and the application score ([`super::app_score`]): every
//! REJECT charges the forwarder an invalid block, except this one. The seen cache REJECTs any
//! block at a height where 6 distinct blocks were already accepted (`shared/spec/op-p2p.md` §3
//! row 19). An honest node forwards up to 6 distinct blocks per height, the ones *it* accepted;
//! when an equivocating sequencer signs more than 6, two honest nodes can accept different sets
//! of 6, and the honest neighbour's 6th arrives here as our 7th. Charging that forwarder would let
//! whoever holds the sequencer key get honest peers banned. So the per-height REJECT is charged
//! only to a peer that itself delivered more than 6 distinct blocks at that height, which an
//! honest op-node never does (gossipsub forwards only what it accepted, and it accepts at most 6).
//!
//! Forgetting can only spare a peer, never blame an honest one: a height (or peer) not tracked
//! counts from zero again. An equivocator that spreads at most 6 blocks per height over each of
//! its identities is never charged by this rule, as op-node charges nobody at all.
//!
//! Sans-IO: no clock, no sockets; the peer manager owns it.

use std::collections::HashMap;

use alloy_primitives::B256;
use libp2p::PeerId;

use crate::validate::{MAX_BLOCKS_PER_HEIGHT, PeerFault, ValidBlock, ValidationError};

/// Distinct blocks per height an honest node may forward: the most op-node (and we) accept at
/// one height (5 stored, the 6th accepted, the 7th REJECTed).
pub const HONEST_BLOCKS_PER_HEIGHT: usize = MAX_BLOCKS_PER_HEIGHT + 1;

/// Heights tracked; beyond it the least recently used height is forgotten. A block reaches the
/// tracker only after every other check passed, its timestamp included, so live heights are
/// those of the last 65 s (op-node's 60 s past + 5 s future window): 65 heights at 1 s blocks,
/// 130 at 0.5 s. 256 covers both with room; it stays far below the seen cache's 1000 heights, so a
/// height tracked here is still in the seen cache and counts never straddle a seen-cache
/// eviction (after which an honest node could legitimately accept 6 more).
pub const TRACKED_HEIGHTS: usize = 256;

/// Peers tracked per height; a further peer is not tracked there (never charged by this rule).
/// Only the first delivery of each gossip message is validated, so every tracked peer delivered a
/// distinct validly-signed block at the height; 64 is twice op-node's high-water peer count (30)
/// with room, and filling it takes 64 distinct sequencer-signed blocks at one height.
pub const MAX_PEERS_PER_HEIGHT: usize = 64;

/// Per height, per peer, the distinct block hashes it delivered (at most
/// [`HONEST_BLOCKS_PER_HEIGHT`] + 1 each). Worst case 256 × 64 × 7 × 32 B ≈ 3.5 MiB, reachable
/// only with the sequencer key.
#[derive(Debug)]
pub struct EquivocationTracker {
    max_heights: usize,
    max_peers: usize,
    heights: HashMap<u64, Height>,
    /// Monotonic use counter; the height with the smallest `last_used` is evicted.
    clock: u64,
}

#[derive(Debug, Default)]
struct Height {
    last_used: u64,
    peers: HashMap<PeerId, Vec<B256>>,
}

impl Default for EquivocationTracker {
    fn default() -> Self {
        Self::with_limits(TRACKED_HEIGHTS, MAX_PEERS_PER_HEIGHT)
    }
}

impl EquivocationTracker {
    /// A tracker with the default bounds.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tracker of at most `heights` heights and `peers` peers per height (each at least 1).
    pub fn with_limits(heights: usize, peers: usize) -> Self {
        Self {
            max_heights: heights.max(1),
            max_peers: peers.max(1),
            heights: HashMap::new(),
            clock: 0,
        }
    }

    /// Heights tracked now.
    pub fn len(&self) -> usize {
        self.heights.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.heights.is_empty()
    }

    /// Records that `peer` delivered block `hash` at height `number`. Returns true when this peer
    /// has now delivered more distinct blocks at that height than an honest node forwards.
    pub fn record(&mut self, peer: PeerId, number: u64, hash: B256) -> bool {
        self.clock += 1;
        let now = self.clock;
        if !self.heights.contains_key(&number) && self.heights.len() >= self.max_heights {
            // Linear over ≤ 256 entries, once per new height (about once per block time).
            if let Some(oldest) = self
                .heights
                .iter()
                .min_by_key(|(_, h)| h.last_used)
                .map(|(n, _)| *n)
            {
                self.heights.remove(&oldest);
            }
        }
        let height = self.heights.entry(number).or_default();
        height.last_used = now;
        if !height.peers.contains_key(&peer) && height.peers.len() >= self.max_peers {
            return false;
        }
        let hashes = height.peers.entry(peer).or_default();
        if hashes.len() <= HONEST_BLOCKS_PER_HEIGHT && !hashes.contains(&hash) {
            hashes.push(hash);
        }
        hashes.len() > HONEST_BLOCKS_PER_HEIGHT
    }
}

/// What a judged gossip message says about its forwarder, taken from the validation result in
/// the validation task and handed to the peer manager (which owns the tracker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipJudgement {
    /// Nothing to record or charge (IGNOREd without a fault, or a timeout).
    Nothing,
    /// The block reached the seen cache (accepted or a duplicate): its delivery is recorded.
    Seen {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// REJECTed because its height already holds too many blocks.
    OverHeight {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
    },
    /// REJECTed for a fault provable from the bytes ([`ValidationError::peer_fault`]).
    Fault(PeerFault),
}

impl GossipJudgement {
    /// The judgement of a validation result.
    pub fn of(result: &Result<ValidBlock, ValidationError>) -> Self {
        match result {
            Ok(block) => {
                let payload = &block.envelope.payload;
                Self::Seen {
                    number: payload.block_number,
                    hash: payload.block_hash,
                }
            }
            Err(ValidationError::AlreadySeen { number, hash }) => Self::Seen {
                number: *number,
                hash: *hash,
            },
            Err(ValidationError::TooManyBlocksAtHeight { number, hash, .. }) => Self::OverHeight {
                number: *number,
                hash: *hash,
            },
            Err(e) => e.peer_fault().map_or(Self::Nothing, Self::Fault),
        }
    }
}

/// The blame rule for one judged gossip message from `peer`: records the block if it reached the
/// seen cache (accepted, duplicate, or over the height limit), and returns the fault the
/// forwarder is charged with: the REJECT's provable fault ([`ValidationError::peer_fault`]),
/// except a height-limit REJECT from a peer that delivered no more blocks at that height than an
/// honest node forwards.
pub fn charge(
    tracker: &mut EquivocationTracker,
    peer: PeerId,
    judgement: GossipJudgement,
) -> Option<PeerFault> {
    match judgement {
        GossipJudgement::Nothing => None,
        GossipJudgement::Seen { number, hash } => {
            tracker.record(peer, number, hash);
            None
        }
        GossipJudgement::OverHeight { number, hash } => tracker
            .record(peer, number, hash)
            .then_some(PeerFault::TooManyAtHeight),
        GossipJudgement::Fault(fault) => Some(fault),
    }
}

/// [`charge`] for a validation result.
pub fn charge_forwarder(
    tracker: &mut EquivocationTracker,
    peer: PeerId,
    result: &Result<ValidBlock, ValidationError>,
) -> Option<PeerFault> {
    charge(tracker, peer, GossipJudgement::of(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charged(
        t: &mut EquivocationTracker,
        peer: PeerId,
        result: &Result<ValidBlock, ValidationError>,
    ) -> bool {
        charge_forwarder(t, peer, result).is_some()
    }

    fn no_charge(
        t: &mut EquivocationTracker,
        peer: PeerId,
        result: &Result<ValidBlock, ValidationError>,
    ) -> bool {
        charge_forwarder(t, peer, result).is_none()
    }

    fn hash(i: u8) -> B256 {
        B256::repeat_byte(i)
    }

    fn too_many(number: u64, i: u8) -> Result<ValidBlock, ValidationError> {
        Err(ValidationError::TooManyBlocksAtHeight {
            number,
            hash: hash(i),
            seen: 6,
        })
    }

    #[test]
    fn a_peer_is_over_the_limit_only_at_its_seventh_distinct_block_at_one_height() {
        let mut t = EquivocationTracker::new();
        let peer = PeerId::random();
        for i in 1..=6 {
            assert!(!t.record(peer, 10, hash(i)), "block {i}");
            // Repeats of the same hash do not count.
            assert!(!t.record(peer, 10, hash(i)));
        }
        // Other heights and other peers are counted apart.
        assert!(!t.record(peer, 11, hash(7)));
        assert!(!t.record(PeerId::random(), 10, hash(7)));
        assert!(t.record(peer, 10, hash(7)));
        assert!(t.record(peer, 10, hash(8)), "stays over the limit");
        assert!(
            t.record(peer, 10, hash(1)),
            "even for a hash it sent before"
        );
    }

    #[test]
    fn an_honest_forwarder_is_never_charged_for_the_height_limit() {
        // Our 6 blocks at height 5 came from the equivocator; the honest peer accepted a
        // different set of 6 and forwards its last one, our 7th: REJECT, but not its fault.
        let mut t = EquivocationTracker::new();
        let (honest, equivocator) = (PeerId::random(), PeerId::random());
        for i in 1..=6 {
            assert!(no_charge(&mut t, equivocator, &too_many(5, i)));
        }
        for i in 10..16 {
            assert!(no_charge(&mut t, honest, &too_many(5, i)));
        }
        assert!(charged(&mut t, equivocator, &too_many(5, 7)));
        // A REJECT with a fault in the bytes charges; one that depends on our settings (a
        // signer we do not accept) or clock does not; IGNORE never does.
        let bad = Err(ValidationError::BlockHashMismatch {
            claimed: hash(1),
            computed: hash(2),
        });
        assert!(charged(&mut t, honest, &bad));
        let stranger = Err(ValidationError::UnknownSigner {
            recovered: Default::default(),
        });
        assert!(no_charge(&mut t, honest, &stranger));
        let late = Err(ValidationError::TimestampTooOld {
            timestamp: 1,
            now: 100,
            window_secs: 60,
        });
        assert!(no_charge(&mut t, honest, &late));
        let seen = Err(ValidationError::AlreadySeen {
            number: 5,
            hash: hash(1),
        });
        assert!(no_charge(&mut t, honest, &seen));
        assert!(no_charge(
            &mut t,
            honest,
            &Err(ValidationError::SignerUnset)
        ));
    }

    #[test]
    fn accepted_and_duplicate_deliveries_count_towards_the_limit() {
        let mut t = EquivocationTracker::new();
        let peer = PeerId::random();
        for i in 1..=6 {
            let seen = Err(ValidationError::AlreadySeen {
                number: 3,
                hash: hash(i),
            });
            assert!(no_charge(&mut t, peer, &seen));
        }
        assert!(charged(&mut t, peer, &too_many(3, 7)));
    }

    #[test]
    fn heights_and_peers_are_bounded_and_forgetting_only_spares() {
        let mut t = EquivocationTracker::with_limits(4, 2);
        let peer = PeerId::random();
        for i in 1..=6 {
            t.record(peer, 100, hash(i));
        }
        // Four newer heights push height 100 out; its count starts again from zero.
        for n in 0..4 {
            t.record(PeerId::random(), n, hash(1));
        }
        assert_eq!(t.len(), 4);
        assert!(!t.record(peer, 100, hash(7)));
        // A third peer at a height with two tracked is not tracked (never charged there).
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        t.record(a, 200, hash(1));
        t.record(b, 200, hash(1));
        for i in 1..=10 {
            assert!(!t.record(c, 200, hash(i)));
        }
        assert!(t.len() <= 4);
    }
}
