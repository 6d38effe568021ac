//! Payload parsing from the execution engine's `engine_getPayload*` answers
//! (`src/engine/json.rs`), for each block version. Must never panic; a payload that parses is
//! turned back into `engine_newPayload*` parameters, which rebuilt into a getPayload answer parse
//! to the same payload; and encoding it for gossip either fails with an error or round-trips.
//!
//! Input: `selector ‖ JSON`; `selector % 4` picks V1..V4. Seeds: `fuzz/seeds/engine_json/`,
//! written by `tests/fuzz_seeds.rs`.
#![no_main]

use alloy_primitives::Bytes;
use libfuzzer_sys::fuzz_target;
use op_gossip::engine::json::{new_payload_params, payload_from_get_payload};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::ssz::{decode_envelope, encode_envelope};
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = BlockVersion::ALL[usize::from(selector % 4)];
    let Ok(response) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(envelope) = payload_from_get_payload(version, response) else {
        return;
    };
    let params = new_payload_params(version, &envelope).expect("a parsed payload has its fields");
    // newPayload params: [payload] (V1/V2), [payload, hashes, beacon root, …] (V3/V4).
    let mut answer = json!({ "executionPayload": params[0] });
    if version >= BlockVersion::V3 {
        answer["parentBeaconBlockRoot"] = params[2].clone();
    }
    let again = payload_from_get_payload(version, answer).expect("our own JSON parses");
    assert_eq!(again, envelope, "JSON round trip");
    if let Ok(encoded) = encode_envelope(version, &envelope) {
        let decoded =
            decode_envelope(version, &Bytes::from(encoded)).expect("our encoding decodes");
        assert_eq!(decoded, envelope, "SSZ round trip");
    }
});
