//! SSZ payload and envelope decoding for each layout. Must never panic, and anything that decodes
//! must re-encode to exactly the input bytes, so a non-canonical encoding the decoder lets through
//! is caught. The one accepted exception is op-node's documented quirk (`src/wire/ssz.rs`,
//! `decode_transactions`): a transaction list whose first offset is zero is empty, whatever bytes
//! follow; its re-encoding is the input without those bytes. The decoder's own canonical flag
//! (`wire::canonical::decode_envelope_canonical`) must say exactly whether the re-encoding is the
//! input.
//!
//! Input: `selector ‖ bytes`; `selector % 4` picks V1..V4 (seeds: `fuzz/seeds/ssz_payload/`,
//! written by `tests/fuzz_seeds.rs`).
#![no_main]

use alloy_primitives::Bytes;
use libfuzzer_sys::fuzz_target;
use op_gossip::wire::BlockVersion;
use op_gossip::wire::canonical::decode_envelope_canonical;
use op_gossip::wire::ssz::{decode_envelope, decode_payload, encode_envelope, encode_payload};

/// Where the transactions offset sits in every layout's fixed part: parent hash 32, fee recipient
/// 20, state root 32, receipts root 32, bloom 256, prev randao 32, four u64s, the extra-data
/// offset 4, base fee 32, block hash 32.
const TX_OFFSET_AT: usize = 32 + 20 + 32 + 32 + 256 + 32 + 4 * 8 + 4 + 32 + 32;
/// The withdrawals offset follows it (V2 and later).
const WITHDRAWALS_OFFSET_AT: usize = TX_OFFSET_AT + 4;

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b) as usize)
}

/// The canonical encoding of a payload that decoded from `input`: the input itself, or, under
/// op-node's zero-first-offset quirk, the input without the ignored transaction bytes (and the
/// withdrawals offset moved down to the transactions offset).
fn canonical(version: BlockVersion, input: &[u8]) -> Vec<u8> {
    let (Some(tx_offset), Some(end)) = (
        read_u32(input, TX_OFFSET_AT),
        if version.has_withdrawals() {
            read_u32(input, WITHDRAWALS_OFFSET_AT)
        } else {
            Some(input.len())
        },
    ) else {
        return input.to_vec();
    };
    if end <= tx_offset || read_u32(input, tx_offset) != Some(0) {
        return input.to_vec();
    }
    let mut out = input[..tx_offset].to_vec();
    out.extend_from_slice(&input[end..]);
    if version.has_withdrawals() {
        out[WITHDRAWALS_OFFSET_AT..WITHDRAWALS_OFFSET_AT + 4]
            .copy_from_slice(&(tx_offset as u32).to_le_bytes());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = BlockVersion::ALL[usize::from(selector % 4)];
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(payload) = decode_payload(version, &bytes) {
        let encoded = encode_payload(version, &payload).expect("decoded payload re-encodes");
        assert_eq!(encoded, canonical(version, data), "payload re-encoding");
        let again =
            decode_payload(version, &Bytes::from(encoded)).expect("re-encoded payload decodes");
        assert_eq!(again, payload);
    }
    if let Ok(envelope) = decode_envelope(version, &bytes) {
        let encoded = encode_envelope(version, &envelope).expect("decoded envelope re-encodes");
        // V3/V4: the 32-byte beacon root, then the payload.
        let prefix = if version.has_parent_beacon_root() {
            32
        } else {
            0
        };
        let mut expected = data[..prefix].to_vec();
        expected.extend_from_slice(&canonical(version, &data[prefix..]));
        assert_eq!(encoded, expected, "envelope re-encoding");
        let (same, ssz) = decode_envelope_canonical(version, &bytes).expect("decoded above");
        assert_eq!(same, envelope);
        assert_eq!(ssz.is_some(), encoded == data, "canonical flag");
        let again =
            decode_envelope(version, &Bytes::from(encoded)).expect("re-encoded envelope decodes");
        assert_eq!(again, envelope);
    }
});
