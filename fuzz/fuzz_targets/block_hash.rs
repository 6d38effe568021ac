//! The block hash and transactions root of any decoded payload against alloy's: the header is
//! rebuilt the way op-node does (withdrawals root, requests hash, beacon root per layout) into
//! `alloy_consensus::Header` and hashed with `hash_slow`, the transactions root with alloy-trie's
//! ordered root. These are computed on unsigned bytes from any peer (payload_by_number answers),
//! so they must equal the reference for every input the decoder lets through.
//!
//! alloy's header holds the base fee as a u64 while the payload carries a u256: for a base fee
//! above u64::MAX only the transactions and withdrawals roots are compared (src/wire/block_hash.rs
//! encodes the full u256, as op-node does).
//!
//! Input: `selector ‖ envelope bytes` (V3/V4: beacon root ‖ payload); `selector % 4` picks
//! V1..V4. Seeds: `fuzz/seeds/block_hash/`, written by `tests/fuzz_seeds.rs`.
#![no_main]

use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::eip4895::Withdrawal as AlloyWithdrawal;
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_primitives::{B64, B256, Bytes, U256};
use alloy_trie::root::{ordered_trie_root, ordered_trie_root_encoded};
use libfuzzer_sys::fuzz_target;
use op_gossip::validate::check_block_hash;
use op_gossip::wire::block_hash::{BlockHeader, compute_block_hash, withdrawals_trie_root};
use op_gossip::wire::ssz::decode_envelope;
use op_gossip::wire::{BlockVersion, ExecutionPayloadEnvelope};

/// alloy's header for the payload, with op-node's derived fields, or `None` if the base fee does
/// not fit alloy's u64.
fn alloy_header(envelope: &ExecutionPayloadEnvelope, transactions_root: B256) -> Option<Header> {
    let p = &envelope.payload;
    let (withdrawals_root, requests_hash) = match (p.withdrawals_root, &p.withdrawals) {
        // V4 (Isthmus): OP's withdrawals root is the message passer's storage root, and the
        // requests hash is that of no requests.
        (Some(root), _) => (Some(root), Some(EMPTY_REQUESTS_HASH)),
        (None, Some(list)) => (Some(ordered_trie_root(&alloy_withdrawals(list))), None),
        (None, None) => (None, None),
    };
    Some(Header {
        parent_hash: p.parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: p.fee_recipient,
        state_root: p.state_root,
        transactions_root,
        receipts_root: p.receipts_root,
        logs_bloom: p.logs_bloom,
        difficulty: U256::ZERO,
        number: p.block_number,
        gas_limit: p.gas_limit,
        gas_used: p.gas_used,
        timestamp: p.timestamp,
        extra_data: p.extra_data.clone(),
        mix_hash: p.prev_randao,
        nonce: B64::ZERO,
        base_fee_per_gas: Some(u64::try_from(p.base_fee_per_gas).ok()?),
        withdrawals_root,
        blob_gas_used: p.blob_gas_used,
        excess_blob_gas: p.excess_blob_gas,
        parent_beacon_block_root: envelope.parent_beacon_block_root,
        requests_hash,
        ..Header::default()
    })
}

fn alloy_withdrawals(list: &[op_gossip::wire::Withdrawal]) -> Vec<AlloyWithdrawal> {
    list.iter()
        .map(|w| AlloyWithdrawal {
            index: w.index,
            validator_index: w.validator_index,
            address: w.address,
            amount: w.amount,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let version = BlockVersion::ALL[usize::from(selector % 4)];
    let Ok(envelope) = decode_envelope(version, &Bytes::copy_from_slice(data)) else {
        return;
    };
    let p = &envelope.payload;
    let txs: Vec<&[u8]> = p.transactions.iter().collect();
    let transactions_root = ordered_trie_root_encoded(&txs);
    let ours = BlockHeader::from_envelope(&envelope);
    assert_eq!(
        ours.transactions_root, transactions_root,
        "transactions root"
    );
    if let Some(list) = &p.withdrawals {
        assert_eq!(
            withdrawals_trie_root(list),
            ordered_trie_root(&alloy_withdrawals(list)),
            "withdrawals root"
        );
    }
    let computed = compute_block_hash(&envelope);
    assert_eq!(computed, ours.hash());
    if let Some(header) = alloy_header(&envelope, transactions_root) {
        assert_eq!(computed, header.hash_slow(), "block hash");
    }
    // The check accepts exactly the payloads that claim the recomputed hash.
    assert_eq!(
        check_block_hash(&envelope).is_ok(),
        p.block_hash == computed
    );
});
