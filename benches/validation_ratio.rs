//! Paired measurement of validation against its floor: the two are timed alternately, round by
//! round (order swapped every round), and the median per-round ratio is reported. Machines here
//! drift by ±20% over a criterion run, which swamps a 1.25× target when the two sides are measured
//! minutes apart; pairing cancels the drift. `benches/validation.rs` gives the absolute figures.
//!
//! Run: `cargo bench --bench validation_ratio` (or `scripts/bench-validation.sh`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, keccak256};
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain_config::load_chain;
use op_gossip::validate::{BlockValidator, ValidatorConfig};
use op_gossip::wire::block_hash::transactions_root;
use op_gossip::wire::envelope::encode_signed;
use op_gossip::wire::signature::{BlockSigner, recover_signer, signing_hash};
use op_gossip::wire::snappy::decompress_gossip;
use op_gossip::wire::{BlockVersion, Transactions};

const DEV_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
const OTHER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const NOW: u64 = 1_800_000_000;
const KIB: usize = 1024;
/// Room for the signature, beacon root, SSZ fixed part, offsets and the last filler's overshoot
/// (about 1.1 KiB at 10 MiB), so the "10 MiB" message stays under the 10 MiB cap.
const HEADROOM_BYTES: usize = 2 * KIB;

fn main() {
    // `cargo test --benches` runs bench binaries with --bench absent; do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let chain = Arc::new(load_chain("devnet").unwrap());
    println!(
        "| message | decompressed | validate median (µs) | floor median (µs) | median paired ratio | rounds |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, size, key, rounds) in [
        ("valid_1KiB", KIB, DEV_KEY, 400),
        ("valid_100KiB", 100 * KIB, DEV_KEY, 300),
        ("valid_1MiB", 1024 * KIB, DEV_KEY, 60),
        ("valid_10MiB", 10 * 1024 * KIB, DEV_KEY, 15),
        ("invalid_sig_100KiB", 100 * KIB, OTHER_KEY, 300),
    ] {
        let valid = key == DEV_KEY;
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
        let decompressed = decompress_gossip(&message).unwrap();
        let mut sig = [0u8; 65];
        sig.copy_from_slice(&decompressed[..65]);
        let hash = signing_hash(chain.chain_id, keccak256(&decompressed[65..]));
        let txs: Transactions = env.payload.transactions.clone();

        let validate = || {
            let v = BlockValidator::new(chain.clone(), ValidatorConfig::default());
            let start = Instant::now();
            let ok = v
                .validate(BlockVersion::V4, black_box(&message), NOW)
                .is_ok();
            let took = start.elapsed();
            assert_eq!(ok, valid, "{name}");
            took
        };
        let floor = || {
            let start = Instant::now();
            let d = decompress_gossip(black_box(&message)).unwrap();
            let payload_hash = keccak256(&d[65..]);
            // An invalid signature stops validation before the block hash, so its floor has no trie.
            let root = if valid {
                transactions_root(&txs)
            } else {
                B256::ZERO
            };
            let signer = recover_signer(&sig, &hash).ok();
            black_box((payload_hash, root, signer, d));
            start.elapsed()
        };
        for _ in 0..(rounds / 10).max(3) {
            validate();
            floor();
        }
        let mut v_times = Vec::with_capacity(rounds);
        let mut f_times = Vec::with_capacity(rounds);
        let mut ratios = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let (v, f) = if round % 2 == 0 {
                let v = validate();
                (v, floor())
            } else {
                let f = floor();
                (validate(), f)
            };
            ratios.push(v.as_secs_f64() / f.as_secs_f64());
            v_times.push(v);
            f_times.push(f);
        }
        let med = |xs: &mut Vec<Duration>| {
            xs.sort();
            xs[xs.len() / 2].as_secs_f64() * 1e6
        };
        ratios.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} B | {:.1} | {:.1} | {:.3} | {rounds} |",
            decompressed.len(),
            med(&mut v_times),
            med(&mut f_times),
            ratios[ratios.len() / 2]
        );
    }
}
