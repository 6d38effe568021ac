//! Sans-IO codecs for every byte format of the OP Stack block-gossip protocol.
//!
//! Data flow (gossip in): raw `pubsub` data → [`snappy::decompress_gossip`] (bounded by the
//! declared length) → [`envelope::SignedBytes::split`] (signature ‖ payload bytes) →
//! [`signature`] (signing hash, recovery) → [`ssz`] (payload decode per [`BlockVersion`]) →
//! [`block_hash`] (header recomputation); the signed bytes, when canonical, travel on to the
//! store as a [`canonical::CanonicalSsz`]. Gossip out runs the same pieces backwards
//! ([`envelope::encode_signed`]). Request/response frames for `payload_by_number` live in
//! [`reqresp`], and op-node's gossipsub message id in [`message_id`].
//!
//! Nothing here does I/O or keeps state, so every decoder can be fuzzed on its own (see `fuzz/`),
//! and nothing here panics or sizes an allocation from an unchecked header.
//!
//! Reference: `shared/spec/op-p2p.md` §1, §2, §3 (block hash), §4 (message id), §6.1.

pub mod block_hash;
pub mod canonical;
pub mod envelope;
pub mod keccak;
pub mod message_id;
pub mod payload;
pub mod reqresp;
pub mod signature;
pub mod snappy;
pub mod ssz;
pub mod tx_trie;
mod version;

pub use payload::{ExecutionPayload, ExecutionPayloadEnvelope, Transactions, Withdrawal};
pub use version::BlockVersion;

/// Largest decompressed gossip message, and largest req/resp payload (op-node `maxGossipSize`).
pub const MAX_GOSSIP_SIZE_BYTES: usize = 10 * (1 << 20);

/// Smallest decompressed gossip message: a 65-byte signature plus at least one payload byte
/// (op-node `minGossipSize`).
pub const MIN_GOSSIP_SIZE_BYTES: usize = 66;
