//! Every message in `tests/fixtures/vectors/` gives the verdict its README lists, through the library
//! and through `op-gossip check-message`.

mod common;

use std::process::Command;

use alloy_primitives::{Address, Bytes};
use common::*;
use op_gossip::p2p::recent_messages::RecentMessages;
use op_gossip::validate::{ValidatorConfig, Verdict, verdict_of};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::envelope::decode_message;
use op_gossip::wire::ssz::{decode_envelope, encode_envelope};

/// (file, topic version, clock, expected verdict, expected reason). The clock is each message's
/// own timestamp (they date from 2024–2025); for the ones that do not decode any clock will do.
const CASES: &[(&str, BlockVersion, u64, Verdict, Option<&str>)] = &[
    (
        "opalloy_golden.v1.hex",
        BlockVersion::V1,
        1725271882,
        Verdict::Accept,
        None,
    ),
    (
        "opalloy_golden.v2.hex",
        BlockVersion::V2,
        1708427627,
        Verdict::Accept,
        None,
    ),
    (
        "opalloy_golden.v3.hex",
        BlockVersion::V3,
        1708427461,
        Verdict::Accept,
        None,
    ),
    // Signed by another key and with a zero block hash: rejected on the signer first.
    (
        "opalloy_golden.v4.hex",
        BlockVersion::V4,
        1741842007,
        Verdict::Reject,
        Some("unknown_signer"),
    ),
    (
        "hildr_invalid_nonzero_excess_blob_gas.v3.hex",
        BlockVersion::V3,
        1708422510,
        Verdict::Reject,
        Some("excess_blob_gas_nonzero"),
    ),
    (
        "hildr_invalid_nonzero_blob_gas_used.v3.hex",
        BlockVersion::V3,
        1708423101,
        Verdict::Reject,
        Some("blob_gas_used_nonzero"),
    ),
    (
        "hildr_invalid_nonzero_withdrawals.v2.hex",
        BlockVersion::V2,
        1708427725,
        Verdict::Reject,
        Some("withdrawals_not_empty"),
    ),
    (
        "hildr_invalid_blob_fields_on_v2_topic.v2.hex",
        BlockVersion::V2,
        1708427627,
        Verdict::Reject,
        Some("invalid_payload_encoding"),
    ),
    (
        "hildr_invalid_bare_payload_on_v3_topic.v3.hex",
        BlockVersion::V3,
        1708427461,
        Verdict::Reject,
        Some("invalid_payload_encoding"),
    ),
];

fn vectors_chain() -> op_gossip::chain::ChainSpec {
    op_gossip::chain_config::load_chain(&fixture("vectors-chain-100.toml")).unwrap()
}

fn fixture(name: &str) -> String {
    fixture_path(name).display().to_string()
}

#[test]
fn every_vector_gets_its_verdict_through_the_library() {
    for &(file, version, now, verdict, reason) in CASES {
        let v = validator(vectors_chain());
        let result = v.validate(version, &vector(file), now);
        assert_eq!(verdict_of(&result), verdict, "{file}: {result:?}");
        assert_eq!(result.as_ref().err().map(|e| e.reason()), reason, "{file}");
    }
}

/// The event loop validates from the body gossipsub's id function decompressed: same verdicts.
#[test]
fn every_vector_gets_its_verdict_through_the_message_cache() {
    let chain = vectors_chain();
    let topics = chain.topics();
    let cache = RecentMessages::default();
    for &(file, version, now, verdict, reason) in CASES {
        let v = validator(vectors_chain());
        let raw = vector(file);
        let topic = &topics[usize::from(version.topic_index())];
        let id = cache.message_id(topic, &raw);
        assert!(cache.decompressed(&id).is_some(), "{file}: body kept");
        let result = cache.validate(&v, version, &id, &raw, now);
        assert_eq!(verdict_of(&result), verdict, "{file}: {result:?}");
        assert_eq!(result.as_ref().err().map(|e| e.reason()), reason, "{file}");
    }
    // A body below the minimum size is judged from the raw bytes, with the size error.
    let tiny = op_gossip::wire::snappy::compress_block(&[0u8; 10]);
    let id = cache.message_id(&topics[0], &tiny);
    let v = validator(vectors_chain());
    let result = cache.validate(&v, BlockVersion::V1, &id, &tiny, 0);
    assert_eq!(
        result.as_ref().err().map(|e| e.reason()),
        v.validate(BlockVersion::V1, &tiny, 0)
            .err()
            .map(|e| e.reason())
    );
    assert_eq!(verdict_of(&result), Verdict::Reject);
}

#[test]
fn every_vector_gets_its_verdict_through_check_message() {
    for &(file, version, now, verdict, reason) in CASES {
        let out = Command::new(env!("CARGO_BIN_EXE_op-gossip"))
            .args([
                "check-message",
                "--chain",
                &fixture("vectors-chain-100.toml"),
                "--topic",
                version.name(),
            ])
            .args(["--now", &now.to_string()])
            .arg(vector_path(file))
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["verdict"], verdict.as_str(), "{file}: {json}");
        assert_eq!(json["reason"].as_str(), reason, "{file}");
        assert_eq!(
            json["topic"],
            format!("/optimism/100/{}/blocks", version.topic_index())
        );
    }
}

#[test]
fn golden_vectors_decode_with_the_documented_facts() {
    // tests/fixtures/vectors/README.md: block hashes (V1–V3 match the recomputed header) and payload hashes.
    let facts = [
        (
            "opalloy_golden.v1.hex",
            BlockVersion::V1,
            "0xe60be0005b220117c32c0f3b394b346c2aa42cfa8157cd41f891aa0bec485a62",
            "0xfee30d6e38da5409c810752d4fea35546cfd234fb4995816189d89f512e68b2a",
        ),
        (
            "opalloy_golden.v2.hex",
            BlockVersion::V2,
            "0xda69cb5b9b73fc4eb2458b37d37f04ff507fe6c9cd2ab704a05ea9dae3cd6176",
            "0x320e2c2594fce63100151ce1bd93e29956db6b4d188b6287735a76a0ef5c7c2b",
        ),
        (
            "opalloy_golden.v3.hex",
            BlockVersion::V3,
            "0xfece77b89685f60e3663b6e0faf2de0734674eb91339700c4858c773a8ff921e",
            "0x310d0c1499b060968460616e77fc10cde58fe2310052378ab416d4bf27773db6",
        ),
    ];
    for (file, version, block_hash, payload_hash) in facts {
        let decoded = decode_message(version, &vector(file)).unwrap();
        assert_eq!(decoded.envelope.payload.block_hash.to_string(), block_hash);
        assert_eq!(
            op_gossip::wire::block_hash::compute_block_hash(&decoded.envelope).to_string(),
            block_hash
        );
        assert_eq!(decoded.payload_hash.to_string(), payload_hash);
    }
    let v4 = decode_message(BlockVersion::V4, &vector("opalloy_golden.v4.hex")).unwrap();
    assert_eq!(
        op_gossip::wire::block_hash::compute_block_hash(&v4.envelope).to_string(),
        "0x3385af194d25569c4a0925e29685eee10ff1fed544cc30949427066ae4c2832e"
    );
    assert_eq!(
        v4.envelope.payload.withdrawals_root.unwrap().to_string(),
        format!("0x{:064x}", 0x9876)
    );
}

#[test]
fn golden_v4_recovers_to_the_documented_other_key_and_is_rejected_even_if_that_key_were_accepted() {
    let other: Address = "0xEB9d71dBb0b5236E22498a5d032C3BFC828b85f7"
        .parse()
        .unwrap();
    let v = validator_with(vectors_chain(), ValidatorConfig::default(), &[other]);
    let result = v.validate(
        BlockVersion::V4,
        &vector("opalloy_golden.v4.hex"),
        1741842007,
    );
    assert_eq!(result.unwrap_err().reason(), "block_hash_mismatch");
}

/// The README calls this a V3 envelope, but its extra-data offset is 560 (the V4 fixed part) and
/// it carries a withdrawals root: it is op-alloy's Isthmus (V4) envelope. As V3 it must fail on
/// exactly that offset; as V4 it round-trips byte for byte.
#[test]
fn the_ssz_envelope_vector_is_v4_and_round_trips_byte_for_byte() {
    let raw = Bytes::from(vector("opalloy_execution_payload_envelope_ssz.v3.ssz.hex"));
    assert_eq!(raw.len(), 600);
    assert_eq!(
        decode_envelope(BlockVersion::V3, &raw).unwrap_err(),
        op_gossip::wire::ssz::SszError::BadExtraDataOffset {
            version: BlockVersion::V3,
            got: 560,
            expected: 528
        }
    );
    let envelope = decode_envelope(BlockVersion::V4, &raw).unwrap();
    assert_eq!(
        envelope.parent_beacon_block_root.unwrap().to_string(),
        format!("0x{:064x}", 0x0123)
    );
    assert_eq!(envelope.payload.extra_data.as_ref(), &[0x66, 0x66]);
    assert_eq!(
        envelope.payload.transactions.get(0),
        Some(&[0x99u8, 0x99][..])
    );
    assert_eq!(
        encode_envelope(BlockVersion::V4, &envelope).unwrap(),
        raw.to_vec()
    );
}

#[test]
fn every_decodable_gossip_vector_re_encodes_byte_for_byte() {
    for &(file, version, ..) in CASES {
        let wire = vector(file);
        let Ok(decoded) = decode_message(version, &wire) else {
            continue;
        };
        let body = encode_envelope(version, &decoded.envelope).unwrap();
        let again = op_gossip::wire::envelope::encode_with_signature(&decoded.signature, &body);
        // Compression output may differ between encoders; the decompressed bytes must not.
        assert_eq!(
            op_gossip::wire::snappy::decompress_gossip(&again).unwrap(),
            op_gossip::wire::snappy::decompress_gossip(&wire).unwrap(),
            "{file}"
        );
    }
}
