//! Regression tests for what the fuzz targets in `fuzz/` found, or what writing them exposed.
//! Each test names the target and the input shape.

mod common;

use common::{NOW, block, chain_up_to};
use op_gossip::engine::json::{PayloadJsonError, new_payload_params, payload_from_get_payload};
use op_gossip::wire::BlockVersion;
use serde_json::{Value, json};

/// `engine_json`: before Canyon, `engine_getPayloadV2` answers with an `ExecutionPayloadV1` (no
/// `withdrawals`; op-geth writes `"withdrawals": null`). alloy's `ExecutionPayloadV2` requires the
/// list, so every pre-Canyon payload from the engine was refused.
#[test]
fn a_pre_canyon_get_payload_answer_without_withdrawals_parses() {
    let envelope = block(&chain_up_to(BlockVersion::V1), 5, NOW, 300);
    let params = new_payload_params(BlockVersion::V1, &envelope).unwrap();
    let payload = params[0].clone();
    assert!(payload.get("withdrawals").is_none(), "V1 JSON has no list");
    let answer = json!({ "executionPayload": payload, "blockValue": "0x0" });
    assert_eq!(
        payload_from_get_payload(BlockVersion::V1, answer).unwrap(),
        envelope
    );
    let mut with_null = payload.clone();
    with_null["withdrawals"] = Value::Null;
    let answer = json!({ "executionPayload": with_null });
    assert_eq!(
        payload_from_get_payload(BlockVersion::V1, answer).unwrap(),
        envelope
    );
    let mut with_empty = payload.clone();
    with_empty["withdrawals"] = json!([]);
    let answer = json!({ "executionPayload": with_empty });
    assert_eq!(
        payload_from_get_payload(BlockVersion::V1, answer).unwrap(),
        envelope
    );

    // A V1 payload with withdrawals is not a V1 payload; a V2 payload needs its list.
    let mut with_list = payload.clone();
    with_list["withdrawals"] = json!([{
        "index": "0x1", "validatorIndex": "0x2",
        "address": "0x0000000000000000000000000000000000000003", "amount": "0x4"
    }]);
    let answer = json!({ "executionPayload": with_list });
    assert!(matches!(
        payload_from_get_payload(BlockVersion::V1, answer),
        Err(PayloadJsonError::WithdrawalsBeforeCanyon)
    ));
    let answer = json!({ "executionPayload": payload });
    assert!(matches!(
        payload_from_get_payload(BlockVersion::V2, answer),
        Err(PayloadJsonError::Missing {
            field: "withdrawals",
            ..
        })
    ));
}

/// `engine_json`: every version's getPayload answer, as this node writes newPayload parameters,
/// parses back to the same payload (the target's round trip, on the seed blocks).
#[test]
fn get_payload_answers_round_trip_for_every_version() {
    for version in BlockVersion::ALL {
        let envelope = block(&chain_up_to(version), 5, NOW, 1500);
        let params = new_payload_params(version, &envelope).unwrap();
        let mut answer = json!({ "executionPayload": params[0] });
        if version >= BlockVersion::V3 {
            answer["parentBeaconBlockRoot"] = params[2].clone();
        }
        assert_eq!(
            payload_from_get_payload(version, answer).unwrap(),
            envelope,
            "{version}"
        );
    }
}
