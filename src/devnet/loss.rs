//! Simulated loss of gossip deliveries for the devnet's `--drop` (and tests): installed into the
//! network as its [`DeliveryFilter`], so the production event loop carries no simulation of its
//! own.

use libp2p::PeerId;

use crate::p2p::DeliveryFilter;

/// Loses a fixed fraction of gossip deliveries, as a lossy network would. The choice hashes our peer id with the message id, so it is
/// reproducible and different nodes lose different blocks. A lost message is IGNOREd unvalidated;
/// gossipsub's duplicate cache then drops every other copy, so the block never arrives here.
#[derive(Debug, Clone, Copy)]
pub struct LossSimulation {
    /// Messages whose hash falls below this are lost (fraction × 2^64).
    threshold: u64,
    salt: u64,
}

impl LossSimulation {
    /// Loses `fraction` (0–1) of the deliveries, chosen from `local` and the message id.
    pub fn new(fraction: f64, local: &PeerId) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        local.hash(&mut hasher);
        Self {
            // `as` saturates: 1.0 maps to u64::MAX (lose everything), NaN to 0.
            threshold: (fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
            salt: hasher.finish(),
        }
    }
}

impl DeliveryFilter for LossSimulation {
    fn loses(&self, message_id: &[u8]) -> bool {
        use std::hash::{Hash, Hasher};
        if self.threshold == 0 {
            return false;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        self.salt.hash(&mut hasher);
        message_id.hash(&mut hasher);
        hasher.finish() < self.threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loses_about_the_fraction_asked_and_the_same_messages_each_time() {
        let local = PeerId::random();
        let loss = LossSimulation::new(0.2, &local);
        let lost = (0u32..10_000)
            .filter(|i| loss.loses(&i.to_be_bytes()))
            .count();
        assert!((1_700..2_300).contains(&lost), "{lost}");
        assert_eq!(
            loss.loses(b"x"),
            LossSimulation::new(0.2, &local).loses(b"x")
        );
        assert!(!LossSimulation::new(0.0, &local).loses(b"x"));
        assert!(LossSimulation::new(1.0, &local).loses(b"x"));
    }
}
