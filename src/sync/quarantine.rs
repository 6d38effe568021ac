//! The quarantine of the sync plan ([`super::plan`]): payloads fetched with payload_by_number
//! that wait until a trusted block above names their hash. They come from any peer and are not
//! signed, so the quarantine is bounded three ways, and what it drops counts as rejected for the
//! peer that sent it (the plan scores it):
//!
//! - [`QUARANTINE_CAPACITY`] payloads (op-node's LRU of 100);
//! - [`QUARANTINE_MAX_BYTES`] in total: 100 payloads of up to 10 MiB would be a gigabyte;
//! - [`QUARANTINE_PEER_BYTES`] per peer, so one peer's payloads cannot push out everyone
//!   else's: a peer over its share loses its own oldest payload first.
//!
//! The newest payload is never dropped by the byte bounds (a single payload of the 10 MiB
//! maximum always fits), so the memory held is at most the total bound plus one payload.
//! Sans-IO, like the plan.

use std::collections::HashMap;

use alloy_primitives::B256;
use libp2p::PeerId;

use crate::store::StoredBlock;

/// Fetched payloads waiting for trust (op-node's quarantine LRU: 100).
pub const QUARANTINE_CAPACITY: usize = 100;
/// Bytes of quarantined payloads in total: 32 MiB keeps the node within its memory target with
/// the 1–100 KiB blocks of today's chains by a wide margin (hundreds of payloads' worth), and
/// holds three of the largest payloads (10 MiB) a peer may send.
pub const QUARANTINE_MAX_BYTES: usize = 32 << 20;
/// Bytes of quarantined payloads from one peer: a quarter of the total, so at least four peers'
/// payloads fit side by side.
pub const QUARANTINE_PEER_BYTES: usize = QUARANTINE_MAX_BYTES / 4;
/// Fixed part of a payload's memory: the header fields, the envelope, the map entry.
const FIXED_BYTES: usize = 1024;

/// The memory a quarantined payload holds: its transaction bodies (they share the response
/// buffer), their 4-byte index entries, its extra data and withdrawals, and a fixed part.
pub fn payload_bytes(block: &StoredBlock) -> usize {
    let payload = &block.envelope.payload;
    let txs = &payload.transactions;
    txs.total_bytes()
        .saturating_add(txs.len().saturating_mul(4))
        .saturating_add(payload.extra_data.len())
        .saturating_add(payload.withdrawals.as_ref().map_or(0, |w| w.len() * 44))
        .saturating_add(FIXED_BYTES)
}

/// A payload waiting for trust.
#[derive(Debug)]
pub struct Quarantined {
    /// The payload.
    pub block: StoredBlock,
    /// The peer that sent it.
    pub from: PeerId,
    arrival: u64,
    bytes: usize,
}

/// The quarantine, by block hash.
#[derive(Debug, Default)]
pub struct Quarantine {
    entries: HashMap<B256, Quarantined>,
    arrivals: u64,
    bytes: usize,
    per_peer: HashMap<PeerId, usize>,
}

impl Quarantine {
    /// Adds `block` from `from`, then drops what the bounds no longer allow (oldest first, the
    /// sender's own first when it is over its share), returning the dropped payloads' senders.
    pub fn insert(&mut self, hash: B256, block: StoredBlock, from: PeerId) -> Vec<PeerId> {
        self.remove(&hash);
        self.arrivals += 1;
        let bytes = payload_bytes(&block);
        self.bytes = self.bytes.saturating_add(bytes);
        *self.per_peer.entry(from).or_default() += bytes;
        self.entries.insert(
            hash,
            Quarantined {
                block,
                from,
                arrival: self.arrivals,
                bytes,
            },
        );
        let mut dropped = Vec::new();
        loop {
            let victim = if self.per_peer.get(&from).copied().unwrap_or(0) > QUARANTINE_PEER_BYTES {
                self.oldest(|q| q.from == from, hash)
            } else if self.bytes > QUARANTINE_MAX_BYTES || self.entries.len() > QUARANTINE_CAPACITY
            {
                self.oldest(|_| true, hash)
            } else {
                None
            };
            // Linear over ≤ QUARANTINE_CAPACITY + 1 entries, only when a bound is exceeded.
            let Some(victim) = victim.and_then(|h| self.remove(&h)) else {
                return dropped;
            };
            dropped.push(victim.from);
        }
    }

    /// The oldest entry matching `filter`, never `keep` (the payload just added).
    fn oldest(&self, filter: impl Fn(&Quarantined) -> bool, keep: B256) -> Option<B256> {
        self.entries
            .iter()
            .filter(|(h, q)| **h != keep && filter(q))
            .min_by_key(|(_, q)| q.arrival)
            .map(|(h, _)| *h)
    }

    /// Takes out `hash`.
    pub fn remove(&mut self, hash: &B256) -> Option<Quarantined> {
        let entry = self.entries.remove(hash)?;
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        if let Some(n) = self.per_peer.get_mut(&entry.from) {
            *n = n.saturating_sub(entry.bytes);
            if *n == 0 {
                self.per_peer.remove(&entry.from);
            }
        }
        Some(entry)
    }

    /// Whether `hash` is quarantined.
    pub fn contains(&self, hash: &B256) -> bool {
        self.entries.contains_key(hash)
    }

    /// The hashes of the payloads at `number`.
    pub fn hashes_at(&self, number: u64) -> Vec<B256> {
        self.entries
            .iter()
            .filter(|(_, q)| q.block.envelope.payload.block_number == number)
            .map(|(h, _)| *h)
            .collect()
    }

    /// Drops the payloads at or below `head` (no longer needed; not the senders' fault).
    pub fn drop_through(&mut self, head: u64) {
        let stale: Vec<B256> = self
            .entries
            .iter()
            .filter(|(_, q)| q.block.envelope.payload.block_number <= head)
            .map(|(h, _)| *h)
            .collect();
        for hash in stale {
            self.remove(&hash);
        }
    }

    /// Payloads held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held ([`payload_bytes`] summed).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::wire::{BlockVersion, ExecutionPayload, ExecutionPayloadEnvelope, Transactions};

    /// A payload at `number` carrying one transaction of `tx_bytes`.
    fn payload(number: u64, tx_bytes: usize) -> (B256, StoredBlock) {
        let mut envelope = ExecutionPayloadEnvelope {
            parent_beacon_block_root: Some(B256::ZERO),
            payload: ExecutionPayload::empty(BlockVersion::V4),
        };
        envelope.payload.block_number = number;
        let tx = vec![0u8; tx_bytes];
        envelope.payload.transactions = Transactions::from_slices([tx.as_slice()]).unwrap();
        let hash = B256::from(alloy_primitives::U256::from(number));
        envelope.payload.block_hash = hash;
        (hash, StoredBlock::new(BlockVersion::V4, envelope))
    }

    #[test]
    fn one_peer_over_its_share_loses_its_own_oldest_payloads_first() {
        let mut q = Quarantine::default();
        let (honest, flooder) = (PeerId::random(), PeerId::random());
        let (h, b) = payload(1, 1 << 20);
        assert!(q.insert(h, b, honest).is_empty());
        // The flooder sends 3 MiB payloads: its share (8 MiB) holds two.
        let mut dropped = Vec::new();
        for n in 2..12 {
            let (h, b) = payload(n, 3 << 20);
            dropped.extend(q.insert(h, b, flooder));
        }
        assert!(dropped.iter().all(|p| *p == flooder), "{dropped:?}");
        assert_eq!(dropped.len(), 8);
        assert!(q.contains(&payload(1, 0).0), "the honest payload stays");
        assert!(q.bytes() <= QUARANTINE_MAX_BYTES);
        assert!(q.per_peer[&flooder] <= QUARANTINE_PEER_BYTES);
    }

    #[test]
    fn the_total_and_the_count_are_bounded_and_the_newest_always_fits() {
        let mut q = Quarantine::default();
        // Five peers of 7 MiB payloads: the total bound (32 MiB) drops the oldest.
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        for (n, peer) in peers.iter().enumerate() {
            let (h, b) = payload(n as u64 + 1, 7 << 20);
            q.insert(h, b, *peer);
        }
        assert_eq!(q.len(), 4);
        assert!(!q.contains(&payload(1, 0).0), "the oldest went first");
        // One 10 MiB payload (the largest a peer may send) fits on its own.
        let mut alone = Quarantine::default();
        let (h, b) = payload(1, 10 << 20);
        assert!(alone.insert(h, b, peers[0]).is_empty());
        assert_eq!(alone.len(), 1);
        // Small payloads: the count bound.
        let mut small = Quarantine::default();
        for n in 0..(QUARANTINE_CAPACITY as u64 + 20) {
            let (h, b) = payload(n + 1, 10);
            small.insert(h, b, PeerId::random());
        }
        assert_eq!(small.len(), QUARANTINE_CAPACITY);
        // Taking everything out leaves no bytes counted.
        for n in 0..(QUARANTINE_CAPACITY as u64 + 20) {
            small.remove(&payload(n + 1, 0).0);
        }
        assert_eq!((small.bytes(), small.per_peer.len()), (0, 0));
    }
}
