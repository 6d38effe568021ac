//! The last gossip messages seen, with their message id and decompressed body, shared by
//! gossipsub's message-id function and the validation tasks.
//!
//! Sits at the very start of the gossip-in path. gossipsub computes op-node's message id (snappy
//! decompression plus SHA-256 over the whole body, [`crate::wire::message_id`]) for *every* copy
//! it receives, before it can tell the copy is a duplicate; with a mesh of 8 a node receives each
//! block several times (measured: 4.9 copies per node per block in the 20-node propagation
//! benchmark). Here a copy already seen costs one fast hash and one comparison of its bytes
//! instead, and the validator takes the body the id function decompressed instead of
//! decompressing it again. Measured on a 100 KiB block (release build): an id costs 102 µs
//! without the cache; with it 10.6 µs for a duplicate and about 170 µs for a first copy (the copy
//! of the raw bytes into fresh memory), so a node receiving 4.9 copies spends about 210 µs per
//! block instead of about 535 µs (ids plus the validator's own decompression). The price is up
//! to [`BUDGET_BYTES`] of memory (peak RSS in that benchmark: 44 MiB instead of 36 MiB).
//!
//! A lookup is exact: the fast hash only picks the candidate, whose topic and raw bytes are then
//! compared in full, so a crafted hash collision costs a comparison and nothing else. Bounds:
//! at most [`MAX_ENTRIES`] messages and [`BUDGET_BYTES`] of raw plus decompressed bytes, oldest
//! first out. A body that would take the entry over half the budget is not kept, and neither
//! are its raw bytes: the entry holds their SHA-256 instead, so a copy of a highly compressed
//! message (480 KiB declaring 10 MiB) costs a SHA-256 of its 480 KiB rather than another 10 MiB
//! decompression, and a flood of them no longer fills the budget with raw bytes (they took
//! 8 MiB of the node's memory in `tests/bomb_flood.rs` before, measured under heaptrack).

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Mutex;

use alloy_primitives::Bytes;
use sha2::{Digest, Sha256};

use crate::validate::{BlockValidator, ValidBlock, ValidationError};
use crate::wire::message_id::{MESSAGE_ID_BYTES, message_id_and_body};
use crate::wire::{BlockVersion, MIN_GOSSIP_SIZE_BYTES};

/// Messages remembered. Duplicates of a block arrive within a second of the first copy and IWANT
/// requests within gossipsub's 6 s history; at op-node's block times that is a handful of
/// messages, and 64 covers bursts of gap-filled or equivocating blocks too.
pub const MAX_ENTRIES: usize = 64;

/// Raw plus decompressed bytes remembered: 16 typical 100 KiB blocks (each kept twice), or two
/// 2 MiB ones. Well inside the node's 64 MiB memory target.
pub const BUDGET_BYTES: usize = 8 << 20;

/// The largest message (raw plus decompressed bytes) kept: half the budget, so one message never
/// evicts all the others.
const MAX_ENTRY_BYTES: usize = BUDGET_BYTES / 2;

/// How a remembered message's raw bytes are kept, for the exact comparison.
#[derive(Clone)]
enum RawCopy {
    /// The bytes themselves (a message whose body is kept: compared with `memcmp`).
    Bytes(Bytes),
    /// Their SHA-256 (a message whose body is not kept: compared by hashing the new copy).
    Digest([u8; 32]),
}

impl RawCopy {
    fn size(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Digest(d) => d.len(),
        }
    }

    fn matches(&self, raw: &[u8]) -> bool {
        match self {
            Self::Bytes(b) => b.as_ref() == raw,
            Self::Digest(d) => Sha256::digest(raw)[..] == d[..],
        }
    }
}

/// One remembered message.
struct Entry {
    /// Fast hash of the raw bytes (picks candidates only).
    key: u64,
    topic: String,
    raw_len: usize,
    raw: RawCopy,
    id: [u8; MESSAGE_ID_BYTES],
    /// The body, when the data was valid snappy within 10 MiB and small enough to keep.
    decompressed: Option<Bytes>,
}

impl Entry {
    fn size(&self) -> usize {
        self.raw.size() + self.decompressed.as_ref().map_or(0, |b| b.len())
    }
}

#[derive(Default)]
struct Entries {
    list: VecDeque<Entry>,
    bytes: usize,
}

/// The cache; shared by reference between gossipsub's id function and the event loop.
pub struct RecentMessages {
    hasher: foldhash::quality::RandomState,
    entries: Mutex<Entries>,
}

impl Default for RecentMessages {
    fn default() -> Self {
        Self {
            hasher: foldhash::quality::RandomState::default(),
            entries: Mutex::new(Entries::default()),
        }
    }
}

impl std::fmt::Debug for RecentMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.lock();
        f.debug_struct("RecentMessages")
            .field("entries", &entries.list.len())
            .field("bytes", &entries.bytes)
            .finish()
    }
}

impl RecentMessages {
    /// op-node's message id of `raw` (compressed) data published on `topic`: remembered, or
    /// computed and remembered.
    pub fn message_id(&self, topic: &str, raw: &[u8]) -> [u8; MESSAGE_ID_BYTES] {
        let key = self.hasher.hash_one(raw);
        if let Some(id) = self.find(key, topic, raw) {
            return id;
        }
        let (id, body) = message_id_and_body(topic, raw);
        // A body too big to keep is dropped, and the raw bytes are remembered by their digest
        // only: a copy of a highly compressed message (480 KiB declaring 10 MiB) then costs a
        // SHA-256 of its raw bytes, not another 10 MiB decompression on the network loop.
        let body = body.filter(|b| raw.len() + b.len() <= MAX_ENTRY_BYTES);
        let copy = match body {
            Some(_) => RawCopy::Bytes(Bytes::copy_from_slice(raw)),
            None => RawCopy::Digest(Sha256::digest(raw).into()),
        };
        self.remember(Entry {
            key,
            topic: topic.to_owned(),
            raw_len: raw.len(),
            raw: copy,
            id,
            decompressed: body.map(Bytes::from),
        });
        id
    }

    /// The decompressed body of the message with id `id`, if it is still remembered and was valid
    /// snappy. Equal ids mean equal bodies (SHA-256 over domain, topic and body).
    pub fn decompressed(&self, id: &[u8]) -> Option<Bytes> {
        self.lock()
            .list
            .iter()
            .rev()
            .find(|e| e.id.as_slice() == id)
            .and_then(|e| e.decompressed.clone())
    }

    /// Validates a message received on the `version` topic with gossipsub id `id`: from the body
    /// the id function decompressed when it is still remembered, else from the raw bytes. The
    /// outcome is the same either way; a body below the minimum size takes the raw path so the
    /// validator reports its exact error.
    pub fn validate(
        &self,
        validator: &BlockValidator,
        version: BlockVersion,
        id: &[u8],
        raw: &[u8],
        now: u64,
    ) -> Result<ValidBlock, ValidationError> {
        match self.decompressed(id) {
            Some(body) if body.len() >= MIN_GOSSIP_SIZE_BYTES => {
                validator.validate_decompressed(version, body, now)
            }
            _ => validator.validate(version, raw, now),
        }
    }

    /// The id of an exact copy of (`topic`, `raw`), if remembered.
    fn find(&self, key: u64, topic: &str, raw: &[u8]) -> Option<[u8; MESSAGE_ID_BYTES]> {
        // The candidate's copy is cheap to clone (shared bytes or a digest) and compared
        // outside the lock.
        let candidate = self
            .lock()
            .list
            .iter()
            .rev()
            .find(|e| e.key == key && e.raw_len == raw.len() && e.topic == topic)
            .map(|e| (e.raw.clone(), e.id))?;
        candidate.0.matches(raw).then_some(candidate.1)
    }

    fn remember(&self, entry: Entry) {
        let size = entry.size();
        let mut entries = self.lock();
        while entries.list.len() >= MAX_ENTRIES || entries.bytes + size > BUDGET_BYTES {
            match entries.list.pop_front() {
                Some(old) => entries.bytes -= old.size(),
                None => break,
            }
        }
        entries.bytes += size;
        entries.list.push_back(entry);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::message_id::message_id;

    const TOPIC: &str = "/optimism/901/2/blocks";

    fn compressed(body: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(body).unwrap()
    }

    #[test]
    fn ids_equal_the_uncached_function_for_first_copies_and_duplicates() {
        let cache = RecentMessages::default();
        let raw = compressed(&[7u8; 5000]);
        let expected = message_id(TOPIC, &raw);
        assert_eq!(cache.message_id(TOPIC, &raw), expected);
        assert_eq!(cache.message_id(TOPIC, &raw), expected, "duplicate");
        // Another topic is another id, never the cached one.
        let other = "/optimism/901/1/blocks";
        assert_eq!(cache.message_id(other, &raw), message_id(other, &raw));
        // Invalid snappy hashes the raw bytes under the other domain.
        let junk = vec![0xffu8; 100];
        assert_eq!(cache.message_id(TOPIC, &junk), message_id(TOPIC, &junk));
        assert_eq!(cache.message_id(TOPIC, &junk), message_id(TOPIC, &junk));
        assert_eq!(cache.decompressed(&message_id(TOPIC, &junk)), None);
    }

    #[test]
    fn the_validator_gets_the_body_decompressed_for_the_id() {
        let cache = RecentMessages::default();
        let body = b"a block body long enough to be a block body".repeat(10);
        let raw = compressed(&body);
        let id = cache.message_id(TOPIC, &raw);
        assert_eq!(cache.decompressed(&id).map(|b| b.to_vec()), Some(body));
        assert_eq!(cache.decompressed(&[0u8; MESSAGE_ID_BYTES]), None);
    }

    #[test]
    fn messages_of_equal_length_get_their_own_ids() {
        // Two different messages of equal length: the second must get its own id even though it
        // is looked up among entries of the same size.
        let cache = RecentMessages::default();
        let a = compressed(&[1u8; 4000]);
        let b = compressed(&[2u8; 4000]);
        assert_eq!(a.len(), b.len());
        assert_eq!(cache.message_id(TOPIC, &a), message_id(TOPIC, &a));
        assert_eq!(cache.message_id(TOPIC, &b), message_id(TOPIC, &b));
        assert_ne!(message_id(TOPIC, &a), message_id(TOPIC, &b));
    }

    #[test]
    fn memory_stays_within_the_entry_and_byte_bounds() {
        let cache = RecentMessages::default();
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            let raw = compressed(&i.to_be_bytes().repeat(100));
            cache.message_id(TOPIC, &raw);
        }
        assert_eq!(cache.lock().list.len(), MAX_ENTRIES);
        // 1 MiB of incompressible data: raw ≈ body, so each entry is ~2 MiB.
        let big = crate::block_builder::filler_data(1, 1 << 20);
        for i in 0..8u8 {
            let mut body = big.clone();
            body[0] = i;
            cache.message_id(TOPIC, &compressed(&body));
            assert!(cache.lock().bytes <= BUDGET_BYTES);
        }
        let entries = cache.lock();
        assert_eq!(
            entries.bytes,
            entries.list.iter().map(Entry::size).sum::<usize>()
        );
        drop(entries);
        // Too big to keep: computed, correct, remembered by its digest only.
        let huge = compressed(&big.repeat(5));
        let before = cache.lock().bytes;
        assert_eq!(cache.message_id(TOPIC, &huge), message_id(TOPIC, &huge));
        assert_eq!(cache.message_id(TOPIC, &huge), message_id(TOPIC, &huge));
        assert!(cache.lock().bytes <= before + 32);
        assert_eq!(cache.decompressed(&message_id(TOPIC, &huge)), None);
    }

    #[test]
    fn a_body_too_big_to_keep_still_has_its_id_remembered() {
        // 480 KiB-class messages that declare megabytes: the id is remembered from the raw
        // bytes, the body is not kept (the validator decompresses it again itself).
        let cache = RecentMessages::default();
        let body = vec![0u8; MAX_ENTRY_BYTES + 1];
        let raw = compressed(&body);
        assert!(raw.len() < 1 << 20);
        let id = cache.message_id(TOPIC, &raw);
        assert_eq!(id, message_id(TOPIC, &raw));
        assert_eq!(
            cache.find(cache.hasher.hash_one(&raw), TOPIC, &raw),
            Some(id)
        );
        assert_eq!(cache.decompressed(&id), None);
        assert_eq!(cache.lock().bytes, 32, "only the raw bytes' digest is held");
        // A different message of the same length and fast-hash bucket is not taken for it.
        let mut other = raw.clone();
        *other.last_mut().unwrap() ^= 1;
        assert_eq!(cache.find(cache.hasher.hash_one(&raw), TOPIC, &other), None);
    }
}
