//! The recent-message cache (`src/p2p/recent_messages.rs`) against the plain functions it stands
//! in for: for any sequence of messages on any topics (repeats, equal lengths, invalid snappy,
//! evictions past its 64 entries), the cached id equals `message_id`, a remembered body equals
//! the decompressed data, and validating through the cache gives what validating the raw bytes
//! gives.
//!
//! Input: pieces, each preceded by its length (u16 little-endian); the first piece is the script,
//! the others the messages. Script byte `b`: message `(b >> 3) % count`,
//! topic `b & 3`, and with bit 2 set the message is snappy-compressed first (so most steps carry
//! valid snappy). Seeds: `fuzz/seeds/recent_messages/`, written by `tests/fuzz_seeds.rs`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use op_gossip::chain::ChainSpec;
use op_gossip::chain_config::load_chain;
use op_gossip::p2p::recent_messages::RecentMessages;
use op_gossip::validate::{BlockValidator, ValidatorConfig};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::message_id::{message_id, message_id_and_body};
use op_gossip::wire::snappy::compress_block;

/// The clock the validators see (messages are judged, not accepted, here).
const NOW: u64 = 1_700_000_000;

fn chain() -> &'static Arc<ChainSpec> {
    static C: OnceLock<Arc<ChainSpec>> = OnceLock::new();
    C.get_or_init(|| Arc::new(load_chain("devnet").expect("embedded chain")))
}

fn pieces(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((len, rest)) = data.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (piece, rest) = rest.split_at(len);
        out.push(piece);
        data = rest;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let parts = pieces(data);
    let Some((script, messages)) = parts.split_first() else {
        return;
    };
    if messages.is_empty() {
        return;
    }
    let chain = chain();
    let topics = chain.topics();
    let cache = RecentMessages::default();
    // Two validators with the same history: one fed through the cache, one with the raw bytes.
    let cached_validator = BlockValidator::new(chain.clone(), ValidatorConfig::default());
    let raw_validator = BlockValidator::new(chain.clone(), ValidatorConfig::default());
    for &step in *script {
        let piece = messages[usize::from(step >> 3) % messages.len()];
        let version = BlockVersion::ALL[usize::from(step & 3)];
        let topic = &topics[usize::from(step & 3)];
        let compressed;
        let raw = if step & 4 != 0 {
            compressed = compress_block(piece);
            &compressed
        } else {
            piece
        };
        let id = cache.message_id(topic, raw);
        assert_eq!(id, message_id(topic, raw), "cached id");
        if let Some(body) = cache.decompressed(&id) {
            assert_eq!(
                Some(body.to_vec()),
                message_id_and_body(topic, raw).1,
                "remembered body"
            );
        }
        let through_cache = cache.validate(&cached_validator, version, &id, raw, NOW);
        let direct = raw_validator.validate(version, raw, NOW);
        assert_eq!(through_cache.as_ref().err(), direct.as_ref().err());
        assert_eq!(
            through_cache.as_ref().ok().map(|b| &b.envelope),
            direct.as_ref().ok().map(|b| &b.envelope)
        );
    }
});
