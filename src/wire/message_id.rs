//! op-node's gossipsub message id: SHA-256 over a domain, the topic and the decompressed data,
//! truncated to 20 bytes.
//!
//! Called by gossipsub for every message before validation (and by `check-message`). op-node
//! hashes the topic too; the public spec and kona do not, which still interoperates but wastes
//! IHAVE/IWANT bandwidth, so we match op-node. Reference: `shared/spec/op-p2p.md` §4.

use sha2::{Digest, Sha256};

use super::MAX_GOSSIP_SIZE_BYTES;
use super::snappy::decompress_block_bounded;

/// Domain for data that decompresses (op-node `MessageDomainValidSnappy`).
pub const DOMAIN_VALID_SNAPPY: [u8; 4] = [1, 0, 0, 0];
/// Domain for data that does not (op-node `MessageDomainInvalidSnappy`).
pub const DOMAIN_INVALID_SNAPPY: [u8; 4] = [0, 0, 0, 0];
/// Message ids are truncated SHA-256 digests of this many bytes.
pub const MESSAGE_ID_BYTES: usize = 20;

/// Computes the id of a message with raw (compressed) `data` published on `topic`.
pub fn message_id(topic: &str, data: &[u8]) -> [u8; MESSAGE_ID_BYTES] {
    message_id_and_body(topic, data).0
}

/// The id of raw (compressed) `data` on `topic`, with the decompressed body when the data is
/// valid snappy within 10 MiB (the body the id hashes; without one the raw bytes are hashed).
pub fn message_id_and_body(topic: &str, data: &[u8]) -> ([u8; MESSAGE_ID_BYTES], Option<Vec<u8>>) {
    match decompress_block_bounded(data, MAX_GOSSIP_SIZE_BYTES) {
        Ok(body) => (message_id_decompressed(topic, &body), Some(body)),
        Err(_) => (digest(DOMAIN_INVALID_SNAPPY, topic, data), None),
    }
}

/// The id when the caller already holds the decompressed bytes of valid snappy data.
pub fn message_id_decompressed(topic: &str, decompressed: &[u8]) -> [u8; MESSAGE_ID_BYTES] {
    digest(DOMAIN_VALID_SNAPPY, topic, decompressed)
}

fn digest(domain: [u8; 4], topic: &str, data: &[u8]) -> [u8; MESSAGE_ID_BYTES] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(data);
    let full = h.finalize();
    let mut id = [0u8; MESSAGE_ID_BYTES];
    id.copy_from_slice(&full[..MESSAGE_ID_BYTES]);
    id
}
