//! The per-height seen cache: the last stateful step of gossip validation.
//!
//! op-node keeps an LRU of 1000 block heights, each with the list of distinct block hashes
//! accepted there. Once more than 5 are stored, every further block at that height (even one
//! already seen) is REJECTed; a hash already stored is IGNOREd; otherwise it is stored and the
//! block ACCEPTed. Bound: 1000 heights × 6 hashes × 32 B ≈ 192 KiB, and only blocks that passed
//! every other check (including the signature) ever reach it.
//! Reference: `shared/spec/op-p2p.md` §3 rules 19–21.

use std::collections::HashMap;

use alloy_primitives::B256;

use super::error::ValidationError;

/// Heights remembered (op-node `lru.New(1000)`).
pub const SEEN_CACHE_HEIGHTS: usize = 1000;
/// Distinct hashes at one height beyond which blocks are rejected (op-node's `count > 5`).
pub const MAX_BLOCKS_PER_HEIGHT: usize = 5;

/// LRU of heights → distinct hashes accepted there.
#[derive(Debug)]
pub struct SeenCache {
    capacity: usize,
    entries: HashMap<u64, SeenHeight>,
    /// Monotonic use counter; the entry with the smallest `last_used` is evicted.
    clock: u64,
}

#[derive(Debug)]
struct SeenHeight {
    hashes: Vec<B256>,
    last_used: u64,
}

impl Default for SeenCache {
    fn default() -> Self {
        Self::with_capacity(SEEN_CACHE_HEIGHTS)
    }
}

impl SeenCache {
    /// A cache remembering `capacity` heights (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            entries: HashMap::with_capacity(capacity),
            clock: 0,
        }
    }

    /// Number of heights remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records block `hash` at `number` if allowed, in op-node's order: look up (refreshing the
    /// height), add an empty entry if new, then the count check, then the duplicate check.
    pub fn observe(&mut self, number: u64, hash: B256) -> Result<(), ValidationError> {
        self.clock += 1;
        let now = self.clock;
        if !self.entries.contains_key(&number) && self.entries.len() >= self.capacity {
            self.evict_least_recent();
        }
        let entry = self.entries.entry(number).or_insert_with(|| SeenHeight {
            hashes: Vec::new(),
            last_used: now,
        });
        entry.last_used = now;
        let seen = entry.hashes.len();
        if seen > MAX_BLOCKS_PER_HEIGHT {
            return Err(ValidationError::TooManyBlocksAtHeight { number, hash, seen });
        }
        if entry.hashes.contains(&hash) {
            return Err(ValidationError::AlreadySeen { number, hash });
        }
        entry.hashes.push(hash);
        Ok(())
    }

    /// Linear scan over at most `capacity` (1000) entries; runs once per new height, i.e. about
    /// once per block time, so a heap or linked list would not pay for itself.
    fn evict_least_recent(&mut self) {
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_used)
            .map(|(n, _)| *n)
        {
            self.entries.remove(&oldest);
        }
    }
}
