//! Simulated loss of gossip deliveries (devnet `--drop`, tests): the event loop IGNOREs the
//! messages this picks, so the sync client must fill the holes.

use libp2p::PeerId;
use libp2p::gossipsub::MessageId;

/// Loses a fixed fraction of gossip deliveries, as a lossy network would (devnet and tests: the
/// sync client must fill the holes). The choice hashes our peer id with the message id, so it is
/// reproducible and different nodes lose different blocks. A lost message is IGNOREd unvalidated;
/// gossipsub's duplicate cache then drops every other copy, so the block never arrives here.
#[derive(Debug, Clone, Copy)]
pub(super) struct LossSimulation {
    /// Messages whose hash falls below this are lost (fraction × 2^64).
    threshold: u64,
    salt: u64,
}

impl LossSimulation {
    pub(super) fn new(fraction: f64, local: &PeerId) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        local.hash(&mut hasher);
        Self {
            // `as` saturates: 1.0 maps to u64::MAX (lose everything), NaN to 0.
            threshold: (fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
            salt: hasher.finish(),
        }
    }

    pub(super) fn loses(&self, message_id: &MessageId) -> bool {
        use std::hash::{Hash, Hasher};
        if self.threshold == 0 {
            return false;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        self.salt.hash(&mut hasher);
        message_id.0.hash(&mut hasher);
        hasher.finish() < self.threshold
    }
}
