//! SSZ payload and envelope decoding for each layout. Must never panic, and anything that
//! decodes must round-trip through the encoder to the same value.
#![no_main]

use alloy_primitives::Bytes;
use libfuzzer_sys::fuzz_target;
use op_gossip::wire::BlockVersion;
use op_gossip::wire::ssz::{decode_envelope, decode_payload, encode_envelope, encode_payload};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = BlockVersion::ALL[usize::from(selector % 4)];
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(payload) = decode_payload(version, &bytes) {
        let encoded = encode_payload(version, &payload).expect("decoded payload re-encodes");
        let again =
            decode_payload(version, &Bytes::from(encoded)).expect("re-encoded payload decodes");
        assert_eq!(again, payload);
    }
    if let Ok(envelope) = decode_envelope(version, &bytes) {
        let encoded = encode_envelope(version, &envelope).expect("decoded envelope re-encodes");
        let again =
            decode_envelope(version, &Bytes::from(encoded)).expect("re-encoded envelope decodes");
        assert_eq!(again, envelope);
    }
});
