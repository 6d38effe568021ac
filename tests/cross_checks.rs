//! Our hand-written encodings checked against independent implementations and published values:
//! alloy's header hashing, op-alloy's deposit encoding, and the spec's message-id and
//! signing-hash vectors (`shared/spec/op-p2p.md` §12).

mod common;

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, TxKind, U256, hex};
use common::*;
use op_gossip::block_builder::{Deposit, L1Info};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::block_hash::BlockHeader;
use op_gossip::wire::message_id::message_id;
use op_gossip::wire::signature::signing_hash;

#[test]
fn header_hash_equals_alloy_consensus_for_every_version() {
    for version in BlockVersion::ALL {
        let chain = chain_up_to(version);
        let mut env = block(&chain, 77, NOW, 10_000);
        env.payload.extra_data = vec![1, 2, 3].into();
        if version >= BlockVersion::V3 {
            env.payload.blob_gas_used = Some(123);
        }
        let ours = BlockHeader::from_envelope(&env);
        let alloy = alloy_consensus::Header {
            parent_hash: ours.parent_hash,
            ommers_hash: ours.ommers_hash,
            beneficiary: ours.beneficiary,
            state_root: ours.state_root,
            transactions_root: ours.transactions_root,
            receipts_root: ours.receipts_root,
            logs_bloom: ours.logs_bloom,
            difficulty: ours.difficulty,
            number: ours.number,
            gas_limit: ours.gas_limit,
            gas_used: ours.gas_used,
            timestamp: ours.timestamp,
            extra_data: ours.extra_data.clone(),
            mix_hash: ours.mix_hash,
            nonce: ours.nonce,
            base_fee_per_gas: Some(ours.base_fee_per_gas.to::<u64>()),
            withdrawals_root: ours.withdrawals_root,
            blob_gas_used: ours.blob_gas_used,
            excess_blob_gas: ours.excess_blob_gas,
            parent_beacon_block_root: ours.parent_beacon_block_root,
            requests_hash: ours.requests_hash,
            ..Default::default()
        };
        assert_eq!(ours.hash(), alloy.hash_slow(), "{version}");
        // And the transactions root is alloy's ordered trie over the raw bytes.
        let txs: Vec<&[u8]> = env.payload.transactions.iter().collect();
        assert_eq!(
            ours.transactions_root,
            alloy_consensus::proofs::ordered_trie_root_encoded(&txs)
        );
    }
}

#[test]
fn a_base_fee_beyond_u64_is_hashed_as_the_full_u256() {
    // alloy's Header cannot hold it; op-node's big.Int can. The hash must change with the high bits.
    let chain = chain_up_to(BlockVersion::V4);
    let mut env = block(&chain, 1, NOW, 0);
    let low = BlockHeader::from_envelope(&env).hash();
    env.payload.base_fee_per_gas += U256::from(1u128 << 64);
    assert_ne!(BlockHeader::from_envelope(&env).hash(), low);
}

#[test]
fn deposit_encoding_equals_op_alloy() {
    let chain = chain_with_jovian();
    let l1 = L1Info {
        number: 19,
        timestamp: 1_700_000_000,
        base_fee: U256::from(7u64),
        hash: B256::repeat_byte(3),
        sequence_number: 2,
        base_fee_scalar: 5,
        ..Default::default()
    };
    for timestamp in [JOVIAN - 1, JOVIAN] {
        let ours = Deposit::l1_info(&chain, &l1, timestamp);
        let theirs = op_alloy_consensus::TxDeposit {
            source_hash: ours.source_hash,
            from: ours.from,
            to: TxKind::Call(ours.to.unwrap()),
            mint: 0,
            value: ours.value,
            gas_limit: ours.gas,
            is_system_transaction: ours.is_system_tx,
            input: ours.data.clone(),
        };
        assert_eq!(ours.encode_2718(), theirs.encoded_2718());
        // Jovian calldata is 4 + 174 bytes, Isthmus 4 + 172 (shared/spec/engine-api.md).
        let expected = if timestamp >= JOVIAN { 178 } else { 176 };
        assert_eq!(ours.data.len(), expected);
    }
}

#[test]
fn message_ids_match_the_spec_values_for_chain_10() {
    // §12.3: op-node ids (topic included) of op-alloy's synthetic messages on chain 10.
    let expected = [
        (
            "opalloy_golden.v1.hex",
            0,
            "89a3015ab0f41b00cc8789405f5146a84e7aa350",
        ),
        (
            "opalloy_golden.v2.hex",
            1,
            "01e8c773b34b79aa5a2cbcdfc40ce04a2be3c4fe",
        ),
        (
            "opalloy_golden.v3.hex",
            2,
            "0326973484758c392e8055f7f8053713ddef7a69",
        ),
        (
            "opalloy_golden.v4.hex",
            3,
            "019c60341be0edc43df4298441f1885544c47494",
        ),
    ];
    for (file, topic_index, id) in expected {
        let topic = format!("/optimism/10/{topic_index}/blocks");
        assert_eq!(hex::encode(message_id(&topic, &vector(file))), id, "{file}");
    }
    // Data that is not valid snappy is hashed raw under the other domain.
    let raw = message_id("/optimism/10/0/blocks", &[0xff; 8]);
    assert_ne!(
        raw,
        message_id("/optimism/10/1/blocks", &[0xff; 8]),
        "the topic is part of the id"
    );
}

#[test]
fn signing_hash_matches_op_alloy() {
    // §12.2: payload bytes 32 × 0x99 on chain 10 (hashed to the payload hash first).
    assert_eq!(
        signing_hash(10, op_gossip::wire::signature::payload_hash(&[0x99; 32])).to_string(),
        "0x44a0e2b1aba1aae1771eddae1dcd2ad18a8cdac8891517153f03253e49d3f206"
    );
}

#[test]
fn the_devnet_key_derives_the_documented_address() {
    assert_eq!(dev_signer().address(), dev_address());
}
