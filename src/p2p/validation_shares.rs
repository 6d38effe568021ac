//! Each peer's share of the validation queue: how many of its gossip messages may wait for or
//! be in validation at once. Taken by the event loop before a message gets a queue slot, given
//! back when its validation task ends; a message over its forwarder's share is IGNOREd at once.
//!
//! The share is the queue divided by the most peers the node can have connected
//! ([`share_for`]), so the shares of every connected peer together never exceed the queue: a few
//! peers (or many fresh peer ids, which the connection bounds cap) flooding forged blocks fill
//! only their own shares, and an honest peer's block always finds a place. An honest peer
//! forwards a block every block time or so, validated in under a millisecond: it never has more
//! than one or two in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

/// The smallest share: a peer may always have a block in validation and one waiting.
pub const MIN_SHARE: usize = 2;

/// The share of each peer for a queue of `queue` slots and at most `max_peers` peers.
pub fn share_for(queue: usize, max_peers: usize) -> usize {
    (queue / max_peers.max(1)).max(MIN_SHARE)
}

/// Messages in flight per peer. Holds an entry only for a peer with messages in flight, so it
/// is bounded by the queue.
#[derive(Debug)]
pub struct ValidationShares {
    share: usize,
    in_flight: Mutex<HashMap<PeerId, usize>>,
}

impl ValidationShares {
    /// Shares of `share` messages per peer.
    pub fn new(share: usize) -> Self {
        Self {
            share: share.max(1),
            in_flight: Mutex::default(),
        }
    }

    /// The share of each peer.
    pub fn share(&self) -> usize {
        self.share
    }

    /// Takes a place in `peer`'s share; `None` when its share is used up. The place is given
    /// back when the guard drops.
    pub fn try_take(self: &Arc<Self>, peer: PeerId) -> Option<ShareGuard> {
        let mut in_flight = self.lock();
        let n = in_flight.entry(peer).or_default();
        if *n >= self.share {
            return None;
        }
        *n += 1;
        Some(ShareGuard {
            shares: self.clone(),
            peer,
        })
    }

    /// Messages of `peer` in flight.
    pub fn in_flight(&self, peer: &PeerId) -> usize {
        self.lock().get(peer).copied().unwrap_or(0)
    }

    fn give_back(&self, peer: &PeerId) {
        let mut in_flight = self.lock();
        if let Some(n) = in_flight.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.remove(peer);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, usize>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A place in a peer's share, given back on drop.
#[derive(Debug)]
pub struct ShareGuard {
    shares: Arc<ValidationShares>,
    peer: PeerId,
}

impl Drop for ShareGuard {
    fn drop(&mut self) {
        self.shares.give_back(&self.peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_cannot_take_more_than_its_share_and_others_keep_theirs() {
        let shares = Arc::new(ValidationShares::new(3));
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let held: Vec<ShareGuard> = (0..3).filter_map(|_| shares.try_take(flooder)).collect();
        assert_eq!(held.len(), 3);
        assert!(shares.try_take(flooder).is_none(), "over its share");
        let honest_place = shares.try_take(honest);
        assert!(honest_place.is_some(), "another peer keeps its share");
        drop(held);
        assert_eq!(shares.in_flight(&flooder), 0);
        let again = shares.try_take(flooder);
        assert!(again.is_some(), "given back");
        drop(honest_place);
        assert_eq!(
            shares.lock().len(),
            1,
            "only peers with messages in flight are held"
        );
    }

    #[test]
    fn shares_of_all_peers_fit_the_queue() {
        // The defaults: a 256-slot queue, peers.hi 30 + 5 inbound slack + 10 outbound reserve.
        let share = share_for(256, 45);
        assert_eq!(share, 5);
        assert!(share * 45 <= 256);
        assert_eq!(share_for(16, 100), MIN_SHARE);
    }
}
