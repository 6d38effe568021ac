//! Each peer's share of the validation queue: how many of its gossip messages, and how many of
//! their (compressed) bytes, may wait for or be in validation at once; and the bytes of the
//! whole queue. Taken by the event loop before a message gets a queue slot, given back when its
//! validation task ends; a message over its forwarder's share, or over the queue's bytes, is
//! IGNOREd at once.
//!
//! The share is the queue divided by the most peers the node can have connected
//! ([`share_for`]), so the shares of every connected peer together never exceed the queue: a few
//! peers (or many fresh peer ids, which the connection bounds cap) flooding forged blocks fill
//! only their own shares, and an honest peer's block always finds a place. An honest peer
//! forwards a block every block time or so, validated in under a millisecond: it never has more
//! than one or two in flight.
//!
//! Bytes are bounded too, because a waiting message holds its data twice (the copy handed to
//! us and gossipsub's own copy for its history) until it is judged: with counts alone, six
//! peers with five 480 KiB compression bombs each kept 14 MiB waiting (measured with
//! `tests/bomb_flood.rs` under heaptrack). A peer's waiting bytes are bounded by
//! [`SHARE_BYTES`] and the queue's by [`QUEUE_BYTES`]; a single message bigger than either is
//! still let in when its forwarder (for the share) or the queue (for the total) has nothing
//! else waiting, so an honest block of any size the wire allows can always be validated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use libp2p::PeerId;

/// The smallest share: a peer may always have a block in validation and one waiting.
pub const MIN_SHARE: usize = 2;

/// Compressed bytes one peer may have waiting for or in validation: the default share of five
/// messages ([`share_for`]) at a typical 100 KiB each, several times what an honest peer ever
/// has in flight (one block per block time, judged in about a millisecond). A bigger message is
/// let in alone. Under `tests/bomb_flood.rs` this leaves each bomber one 480 KiB message waiting
/// (held twice, see the module docs): with 1 MiB shares the node's peak RSS there was
/// 53.5–63.0 MiB over three release runs, with 512 KiB 52.8–55.6 MiB over four.
pub const SHARE_BYTES: usize = 512 << 10;

/// Compressed bytes the whole queue may hold: sixteen peers' full shares. Beyond it a message is
/// IGNOREd (an honest block dropped here is fetched by gap filling). A bigger message is let in
/// when the queue is empty, so the bound is `max(QUEUE_BYTES, one message)`, and the largest
/// message is 10 MiB.
pub const QUEUE_BYTES: usize = 8 << 20;

/// The share of each peer for a queue of `queue` slots and at most `max_peers` peers.
pub fn share_for(queue: usize, max_peers: usize) -> usize {
    (queue / max_peers.max(1)).max(MIN_SHARE)
}

/// Why a message gets no place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its forwarder already has its share of messages or bytes waiting.
    ShareUsed,
    /// The queue holds its bytes' worth.
    QueueFull,
}

/// What one peer has in flight.
#[derive(Debug, Default, Clone, Copy)]
struct InFlight {
    messages: usize,
    bytes: usize,
}

/// Peers with messages in flight, and the bytes of all of them.
#[derive(Debug, Default)]
struct State {
    peers: HashMap<PeerId, InFlight>,
    bytes: usize,
}

/// Messages and bytes in flight per peer. Holds an entry only for a peer with messages in
/// flight, so it is bounded by the queue.
#[derive(Debug)]
pub struct ValidationShares {
    share: usize,
    share_bytes: usize,
    queue_bytes: usize,
    state: Mutex<State>,
}

impl ValidationShares {
    /// Shares of `share` messages and [`SHARE_BYTES`] per peer, in a queue of [`QUEUE_BYTES`].
    pub fn new(share: usize) -> Self {
        Self::with_bytes(share, SHARE_BYTES, QUEUE_BYTES)
    }

    /// Shares with explicit byte bounds.
    pub fn with_bytes(share: usize, share_bytes: usize, queue_bytes: usize) -> Self {
        Self {
            share: share.max(1),
            share_bytes,
            queue_bytes,
            state: Mutex::default(),
        }
    }

    /// The share of each peer, in messages.
    pub fn share(&self) -> usize {
        self.share
    }

    /// Takes a place for a message of `bytes` (compressed) from `peer`, or says why there is
    /// none. The place is given back when the guard drops.
    pub fn try_take(self: &Arc<Self>, peer: PeerId, bytes: usize) -> Result<ShareGuard, Refused> {
        let mut state = self.lock();
        let held = state.peers.get(&peer).copied().unwrap_or_default();
        let over_bytes = held.bytes > 0 && held.bytes.saturating_add(bytes) > self.share_bytes;
        if held.messages >= self.share || over_bytes {
            return Err(Refused::ShareUsed);
        }
        if state.bytes > 0 && state.bytes.saturating_add(bytes) > self.queue_bytes {
            return Err(Refused::QueueFull);
        }
        let entry = state.peers.entry(peer).or_default();
        entry.messages += 1;
        entry.bytes += bytes;
        state.bytes += bytes;
        Ok(ShareGuard {
            shares: self.clone(),
            peer,
            bytes,
        })
    }

    /// Messages of `peer` in flight.
    pub fn in_flight(&self, peer: &PeerId) -> usize {
        self.lock().peers.get(peer).map_or(0, |f| f.messages)
    }

    /// Compressed bytes of all messages in flight.
    pub fn bytes_in_flight(&self) -> usize {
        self.lock().bytes
    }

    fn give_back(&self, peer: &PeerId, bytes: usize) {
        let mut state = self.lock();
        state.bytes = state.bytes.saturating_sub(bytes);
        if let Some(f) = state.peers.get_mut(peer) {
            f.messages = f.messages.saturating_sub(1);
            f.bytes = f.bytes.saturating_sub(bytes);
            if f.messages == 0 {
                state.peers.remove(peer);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A place in a peer's share, given back on drop.
#[derive(Debug)]
pub struct ShareGuard {
    shares: Arc<ValidationShares>,
    peer: PeerId,
    bytes: usize,
}

impl Drop for ShareGuard {
    fn drop(&mut self) {
        self.shares.give_back(&self.peer, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_cannot_take_more_than_its_share_and_others_keep_theirs() {
        let shares = Arc::new(ValidationShares::new(3));
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let held: Vec<ShareGuard> = (0..3)
            .filter_map(|_| shares.try_take(flooder, 100).ok())
            .collect();
        assert_eq!(held.len(), 3);
        assert_eq!(
            shares.try_take(flooder, 100).err(),
            Some(Refused::ShareUsed),
            "over its share"
        );
        let honest_place = shares.try_take(honest, 100);
        assert!(honest_place.is_ok(), "another peer keeps its share");
        drop(held);
        assert_eq!(shares.in_flight(&flooder), 0);
        let again = shares.try_take(flooder, 100);
        assert!(again.is_ok(), "given back");
        drop(honest_place);
        assert_eq!(
            shares.lock().peers.len(),
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

    #[test]
    fn bytes_are_bounded_per_peer_and_in_total_but_one_big_message_always_fits() {
        let shares = Arc::new(ValidationShares::with_bytes(10, 1000, 2500));
        let (a, b, c, d) = (
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
            PeerId::random(),
        );
        // A message bigger than the share is let in alone, not beside another.
        let big = shares.try_take(a, 1500).unwrap();
        assert_eq!(shares.try_take(a, 1).err(), Some(Refused::ShareUsed));
        drop(big);
        let first = shares.try_take(a, 600).unwrap();
        assert_eq!(
            shares.try_take(a, 600).err(),
            Some(Refused::ShareUsed),
            "1200 bytes over a 1000-byte share"
        );
        let _second = shares.try_take(a, 400).unwrap();
        let _b = shares.try_take(b, 900).unwrap();
        let _c = shares.try_take(c, 500).unwrap();
        assert_eq!(shares.bytes_in_flight(), 2400);
        assert_eq!(
            shares.try_take(d, 200).err(),
            Some(Refused::QueueFull),
            "2600 bytes over a 2500-byte queue"
        );
        drop(first);
        assert!(shares.try_take(d, 200).is_ok(), "given back");
        assert_eq!(shares.bytes_in_flight(), 1800);
        // An empty queue takes a message bigger than the whole queue.
        let empty = Arc::new(ValidationShares::with_bytes(10, 1000, 2500));
        assert!(empty.try_take(a, 10_000).is_ok());
    }
}
