//! Gossip validation cost next to its floor, for V4 messages of 1 KiB, 100 KiB, 1 MiB, 10 MiB and
//! for a 100 KiB message signed by the wrong key.
//!
//! The floor is the work no validator can skip for the same bytes: snappy decode, keccak of the
//! payload (the signing hash), the transaction trie (the block hash), and one signature recovery.
//! Target (issue 2): a valid 100 KiB message costs at most 1.25× its floor.
//! Run: `scripts/bench-validation.sh` (prints the table with ratios).

use std::sync::Arc;

use alloy_primitives::{B256, keccak256};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain_config::load_chain;
use op_gossip::validate::{BlockValidator, ValidatorConfig};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::block_hash::transactions_root;
use op_gossip::wire::envelope::encode_signed;
use op_gossip::wire::signature::{BlockSigner, recover_signer, signing_hash};
use op_gossip::wire::snappy::decompress_gossip;

/// The devnet sequencer key (Anvil account #5, see chains/devnet.toml).
const DEV_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// Anvil account #1: "not the sequencer".
const OTHER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const NOW: u64 = 1_800_000_000;
const KIB: usize = 1024;
/// Room left for the signature, beacon root, SSZ fixed part and offsets below the 10 MiB cap.
/// Room for the signature, beacon root, SSZ fixed part, offsets and the last filler's overshoot
/// (about 1.1 KiB at 10 MiB), so the "10 MiB" message stays under the 10 MiB cap.
const HEADROOM_BYTES: usize = 2 * KIB;

struct Case {
    name: &'static str,
    message: Vec<u8>,
    txs: op_gossip::wire::Transactions,
    valid: bool,
}

fn case(name: &'static str, size: usize, key: &str) -> Case {
    let mut chain = load_chain("devnet").unwrap();
    chain.genesis.l2_time = NOW - 1000;
    let env = build_block(
        &chain,
        &BlockSpec {
            parent_hash: B256::repeat_byte(1),
            number: 500,
            timestamp: NOW,
            target_tx_bytes: size.saturating_sub(HEADROOM_BYTES.min(size / 2)),
            l1: L1Info::default(),
        },
    );
    let message = encode_signed(
        chain.chain_id,
        BlockVersion::V4,
        &env,
        &BlockSigner::from_hex(key).unwrap(),
    )
    .unwrap();
    Case {
        name,
        message,
        txs: env.payload.transactions,
        valid: key == DEV_KEY,
    }
}

fn bench(c: &mut Criterion) {
    let chain = Arc::new(load_chain("devnet").unwrap());
    let cases = [
        case("valid_1KiB", KIB, DEV_KEY),
        case("valid_100KiB", 100 * KIB, DEV_KEY),
        case("valid_1MiB", 1024 * KIB, DEV_KEY),
        case("valid_10MiB", 10 * 1024 * KIB, DEV_KEY),
        case("invalid_sig_100KiB", 100 * KIB, OTHER_KEY),
    ];
    let mut group = c.benchmark_group("validation");
    for case in &cases {
        let decompressed = decompress_gossip(&case.message).unwrap();
        let mut sig = [0u8; 65];
        sig.copy_from_slice(&decompressed[..65]);
        let hash = signing_hash(chain.chain_id, keccak256(&decompressed[65..]));
        // Sanity: the validator's verdict is the one the case is named for.
        let v = BlockValidator::new(chain.clone(), ValidatorConfig::default());
        assert_eq!(
            v.validate(BlockVersion::V4, &case.message, NOW).is_ok(),
            case.valid,
            "{}",
            case.name
        );

        group.throughput(Throughput::Bytes(decompressed.len() as u64));
        if decompressed.len() > 1024 * KIB {
            group.sample_size(10);
        } else {
            group.sample_size(30);
        }
        group.bench_with_input(
            BenchmarkId::new("validate", case.name),
            &case.message,
            |b, msg| {
                b.iter_batched(
                    || BlockValidator::new(chain.clone(), ValidatorConfig::default()),
                    |v| v.validate(BlockVersion::V4, msg, NOW).is_ok(),
                    BatchSize::SmallInput,
                )
            },
        );
        group.bench_with_input(
            BenchmarkId::new("floor", case.name),
            &case.message,
            |b, msg| {
                b.iter(|| {
                    let d = decompress_gossip(msg).unwrap();
                    let payload_hash = keccak256(&d[65..]);
                    let root = if case.valid {
                        transactions_root(&case.txs)
                    } else {
                        B256::ZERO
                    };
                    let signer = recover_signer(&sig, &hash);
                    (payload_hash, root, signer)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
