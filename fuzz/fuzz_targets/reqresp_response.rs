//! payload_by_number frames: request decoding, and a response run through the client's whole
//! check (`check_response`: frame, framed snappy within 10 MiB, body in the layout of the block's
//! fork, then the block number and the block hash), for a chain at each fork. Must never panic; a
//! response the client accepts is the block asked for, with a correct hash, and answering it again
//! in the layout the server would use gives the same block.
//!
//! Input: `selector ‖ requested number (u64 LE) ‖ response stream`; `selector % 4` picks the fork
//! active at every block (V1..V4). Seeds: `fuzz/seeds/reqresp_response/`, written by
//! `tests/fuzz_seeds.rs`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use op_gossip::chain::ChainSpec;
use op_gossip::chain_config::load_chain;
use op_gossip::p2p::reqresp::client::{RequestError, check_response};
use op_gossip::validate::check_block_hash;
use op_gossip::wire::reqresp::{
    decode_request, encode_request, encode_success, response_version_for,
};
use op_gossip::wire::ssz::encode_envelope;
use op_gossip::wire::{BlockVersion, ExecutionPayload};

/// The devnet chain with the forks up to V1..V4 active from genesis and none after.
fn chains() -> &'static [ChainSpec; 4] {
    static C: OnceLock<[ChainSpec; 4]> = OnceLock::new();
    C.get_or_init(|| {
        BlockVersion::ALL.map(|last| {
            let mut chain = load_chain("devnet").expect("embedded chain");
            let at = |v: BlockVersion| (last >= v).then_some(0);
            let f = &mut chain.forks;
            (f.canyon, f.delta) = (at(BlockVersion::V2), at(BlockVersion::V2));
            (f.ecotone, f.fjord, f.granite, f.holocene) = (
                at(BlockVersion::V3),
                at(BlockVersion::V3),
                at(BlockVersion::V3),
                at(BlockVersion::V3),
            );
            f.isthmus = at(BlockVersion::V4);
            f.jovian = at(BlockVersion::V4);
            assert_eq!(chain.block_version_at(0), last);
            chain
        })
    })
}

/// The layout a decoded payload came in, from the fields it carries.
fn layout_of(p: &ExecutionPayload, has_beacon_root: bool) -> BlockVersion {
    if p.withdrawals_root.is_some() {
        BlockVersion::V4
    } else if has_beacon_root {
        BlockVersion::V3
    } else if p.withdrawals.is_some() {
        BlockVersion::V2
    } else {
        BlockVersion::V1
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(number) = decode_request(data) {
        assert_eq!(decode_request(&encode_request(number)), Ok(number));
    }
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let Some((number, response)) = data.split_first_chunk::<8>() else {
        return;
    };
    let number = u64::from_le_bytes(*number);
    let chain = &chains()[usize::from(selector % 4)];
    let fork = chain.block_version_at(0);
    match check_response(chain, number, response) {
        Ok(fetched) => {
            let envelope = fetched.envelope;
            assert_eq!(envelope.payload.block_number, number);
            assert!(check_block_hash(&envelope).is_ok());
            // Answered again in the layout it came in (op-node's version for it, or the spec's
            // version 2 for a V4 envelope before Isthmus), it is accepted and the same block.
            let layout = layout_of(
                &envelope.payload,
                envelope.parent_beacon_block_root.is_some(),
            );
            let version = match layout {
                BlockVersion::V4 if fork < BlockVersion::V4 => 2,
                _ => response_version_for(layout),
            };
            let body = encode_envelope(layout, &envelope).expect("accepted block re-encodes");
            // Kept bytes are the canonical encoding in the layout they came in.
            if let Some(ssz) = &fetched.ssz {
                assert_eq!(ssz.version(), layout);
                assert_eq!(ssz.bytes().as_ref(), body.as_slice());
            }
            let again = check_response(chain, number, &encode_success(version, &body))
                .expect("the same block in its own layout is accepted");
            assert_eq!(again.envelope, envelope);
            assert!(again.ssz.is_some(), "an encoded body is canonical");
        }
        Err(RequestError::Frame(_) | RequestError::WrongPayload(_)) => {}
        Err(RequestError::NotFound | RequestError::ErrorCode(_)) => {
            assert!(response.first().is_some_and(|&code| code != 0));
        }
        Err(other) => panic!("no I/O here, yet {other}"),
    }
});
