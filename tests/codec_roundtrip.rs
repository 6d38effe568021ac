//! Property round trips for every codec: SSZ payloads and envelopes in all four layouts, gossip
//! messages (sign → compress → decode → recover), snappy in both formats, req/resp frames.

mod common;

use alloy_primitives::{Address, B256, Bloom, Bytes, U256};
use common::*;
use op_gossip::wire::envelope::{decode_message, encode_signed};
use op_gossip::wire::reqresp::{
    Response, ResultCode, decode_payload_body, decode_request, decode_response, encode_error,
    encode_request, encode_success, response_version_for,
};
use op_gossip::wire::signature::{BlockSigner, recover_signer, signing_hash};
use op_gossip::wire::snappy::{
    compress_block, compress_framed, decompress_block_bounded, decompress_framed,
};
use op_gossip::wire::ssz::{decode_envelope, decode_payload, encode_envelope, encode_payload};
use op_gossip::wire::{
    BlockVersion, ExecutionPayload, ExecutionPayloadEnvelope, MAX_GOSSIP_SIZE_BYTES, Transactions,
    Withdrawal,
};
use proptest::prelude::*;

fn arb_b256() -> impl Strategy<Value = B256> {
    any::<[u8; 32]>().prop_map(B256::from)
}

fn arb_version() -> impl Strategy<Value = BlockVersion> {
    prop::sample::select(BlockVersion::ALL.to_vec())
}

fn arb_withdrawal() -> impl Strategy<Value = Withdrawal> {
    (any::<u64>(), any::<u64>(), any::<[u8; 20]>(), any::<u64>()).prop_map(
        |(index, validator_index, a, amount)| Withdrawal {
            index,
            validator_index,
            address: Address::from(a),
            amount,
        },
    )
}

prop_compose! {
    fn arb_payload(version: BlockVersion)(
        hashes in prop::array::uniform6(arb_b256()),
        fee_recipient in any::<[u8; 20]>(),
        bloom in prop::collection::vec(any::<u8>(), 256),
        ints in any::<[u64; 6]>(),
        extra in prop::collection::vec(any::<u8>(), 0..=32),
        base_fee in any::<[u8; 32]>(),
        txs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
        withdrawals in prop::collection::vec(arb_withdrawal(), 0..=16),
    ) -> ExecutionPayload {
        let mut p = ExecutionPayload::empty(version);
        p.parent_hash = hashes[0];
        p.fee_recipient = Address::from(fee_recipient);
        p.state_root = hashes[1];
        p.receipts_root = hashes[2];
        p.logs_bloom = Bloom::from_slice(&bloom);
        p.prev_randao = hashes[3];
        p.block_number = ints[0];
        p.gas_limit = ints[1];
        p.gas_used = ints[2];
        p.timestamp = ints[3];
        p.extra_data = extra.into();
        p.base_fee_per_gas = U256::from_le_bytes(base_fee);
        p.block_hash = hashes[4];
        p.transactions = Transactions::from_slices(txs.iter().map(Vec::as_slice)).unwrap();
        if version.has_withdrawals() {
            p.withdrawals = Some(withdrawals);
        }
        if version.has_blob_fields() {
            p.blob_gas_used = Some(ints[4]);
            p.excess_blob_gas = Some(ints[5]);
        }
        if version.has_withdrawals_root() {
            p.withdrawals_root = Some(hashes[5]);
        }
        p
    }
}

fn arb_envelope() -> impl Strategy<Value = (BlockVersion, ExecutionPayloadEnvelope)> {
    arb_version().prop_flat_map(|version| {
        (arb_payload(version), arb_b256()).prop_map(move |(payload, root)| {
            (
                version,
                ExecutionPayloadEnvelope {
                    parent_beacon_block_root: version.has_parent_beacon_root().then_some(root),
                    payload,
                },
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn ssz_payload_round_trips((version, envelope) in arb_envelope()) {
        let bytes = encode_payload(version, &envelope.payload).unwrap();
        prop_assert_eq!(bytes.len() >= version.fixed_part_bytes(), true);
        let decoded = decode_payload(version, &Bytes::from(bytes.clone())).unwrap();
        prop_assert_eq!(&decoded, &envelope.payload);
        prop_assert_eq!(encode_payload(version, &decoded).unwrap(), bytes);
    }

    #[test]
    fn ssz_envelope_round_trips((version, envelope) in arb_envelope()) {
        let bytes = encode_envelope(version, &envelope).unwrap();
        let decoded = decode_envelope(version, &Bytes::from(bytes.clone())).unwrap();
        prop_assert_eq!(&decoded, &envelope);
        prop_assert_eq!(encode_envelope(version, &decoded).unwrap(), bytes);
    }

    #[test]
    fn a_payload_never_decodes_in_another_layout((version, envelope) in arb_envelope(), other in arb_version()) {
        prop_assume!(other != version);
        let bytes = encode_payload(version, &envelope.payload).unwrap();
        prop_assert!(decode_payload(other, &Bytes::from(bytes)).is_err());
    }

    #[test]
    fn gossip_message_round_trips_and_recovers_the_signer((version, envelope) in arb_envelope(), key in any::<[u8; 32]>(), chain_id in 1u64..u64::MAX) {
        let Ok(signer) = BlockSigner::from_bytes(&key) else { return Ok(()) };
        let wire = encode_signed(chain_id, version, &envelope, &signer).unwrap();
        let decoded = decode_message(version, &wire).unwrap();
        prop_assert_eq!(&decoded.envelope, &envelope);
        prop_assert!(decoded.signature[64] <= 1, "v is the raw y parity");
        let recovered = recover_signer(&decoded.signature, &signing_hash(chain_id, decoded.payload_hash)).unwrap();
        prop_assert_eq!(recovered, signer.address());
    }

    #[test]
    fn snappy_block_and_framed_round_trip(data in prop::collection::vec(any::<u8>(), 0..70_000)) {
        prop_assert_eq!(decompress_block_bounded(&compress_block(&data), MAX_GOSSIP_SIZE_BYTES).unwrap(), data.clone());
        prop_assert_eq!(decompress_framed(&compress_framed(&data), MAX_GOSSIP_SIZE_BYTES).unwrap(), data);
    }

    #[test]
    fn reqresp_frames_round_trip((version, envelope) in arb_envelope(), number in any::<u64>(), code in 1u8..=255) {
        prop_assert_eq!(decode_request(&encode_request(number)).unwrap(), number);
        prop_assert_eq!(decode_response(&encode_error(ResultCode::from_byte(code))).unwrap(), Response::Error(ResultCode::from_byte(code)));
        prop_assert_eq!(ResultCode::from_byte(code).byte(), code);
        let wire_version = response_version_for(version);
        let body = encode_envelope(version, &envelope).unwrap();
        let Response::Payload { version: got, body: got_body } = decode_response(&encode_success(wire_version, &body)).unwrap() else {
            return Err(TestCaseError::fail("expected a payload"));
        };
        prop_assert_eq!(got, wire_version);
        prop_assert_eq!(&decode_payload_body(got, version, &got_body).unwrap(), &envelope);
    }
}

#[test]
fn op_node_response_versions() {
    assert_eq!(response_version_for(BlockVersion::V1), 0);
    assert_eq!(response_version_for(BlockVersion::V2), 0);
    assert_eq!(response_version_for(BlockVersion::V3), 1);
    assert_eq!(response_version_for(BlockVersion::V4), 1);
    assert_eq!(
        op_gossip::wire::reqresp::protocol_id(10),
        "/opstack/req/payload_by_number/10/0"
    );
    assert_eq!(
        op_gossip::wire::reqresp::protocol_id_spec_form(10),
        "/opstack/req/payload_by_number/10/0/"
    );
    assert_eq!(encode_request(0x0102), [2, 1, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn a_real_block_from_the_builder_round_trips_on_its_topic() {
    let chain = chain_up_to(BlockVersion::V4);
    let env = block(&chain, 5, NOW, 100_000);
    let wire = signed_dev(&chain, &env);
    assert_eq!(
        decode_message(BlockVersion::V4, &wire).unwrap().envelope,
        env
    );
}
