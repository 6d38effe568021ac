//! What opening the block store costs, and how much of it is redb's integrity check
//! (`Store::open` always runs it: every page of the committed trees is read and its checksum
//! verified, so a damaged file is refused at start instead of failing some later read).
//!
//!   cargo bench --bench store_open [-- BLOCKS KIB_PER_BLOCK]   (default: 4096 blocks of 100 KiB,
//!   the default retention of blocks as large as the propagation benchmark's)
//!
//! Prints, for a store of that size: the file size, `Store::open` (read-only chain check, then
//! the checked open), and redb's open with and without the check, each the median of 5, cold
//! (page cache dropped, when run as root) and warm.

use std::path::Path;
use std::time::{Duration, Instant};

use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain_config::load_chain;
use op_gossip::store::{Store, StoredBlock};
use op_gossip::wire::BlockVersion;
use op_gossip::wire::block_hash::compute_block_hash;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Drops the OS page cache so the next open reads from disk (needs root; skipped otherwise).
fn drop_caches() -> bool {
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn time(runs: usize, cold: bool, mut f: impl FnMut()) -> Option<Duration> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        if cold && !drop_caches() {
            return None;
        }
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    Some(median(samples))
}

fn redb_open(path: &Path, check: bool) {
    let db = redb::Builder::new()
        .set_cache_size(4 << 20)
        .set_check_integrity_on_open(check)
        .create(path)
        .unwrap();
    drop(db);
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let blocks = args.first().copied().unwrap_or(4096);
    let kib = args.get(1).copied().unwrap_or(100) as usize;
    let mut chain = load_chain("devnet").unwrap();
    chain.genesis.l2_time = 1_700_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    {
        let store = Store::open(&path, blocks, &chain).unwrap();
        let mut parent = chain.genesis.l2.hash;
        let mut batch = Vec::new();
        for number in 1..=blocks {
            let mut env = build_block(
                &chain,
                &BlockSpec {
                    parent_hash: parent,
                    number,
                    timestamp: chain.timestamp_for_block(number).unwrap(),
                    target_tx_bytes: kib * 1024,
                    l1: L1Info::default(),
                },
            );
            env.payload.block_hash = compute_block_hash(&env);
            parent = env.payload.block_hash;
            batch.push(StoredBlock {
                version: BlockVersion::V4,
                envelope: env,
                ssz: None,
            });
            // Batches as the node's writer makes them.
            if batch.len() == 64 {
                store.insert_batch(&batch).unwrap();
                batch.clear();
            }
        }
        store.insert_batch(&batch).unwrap();
    }
    let size = std::fs::metadata(&path).unwrap().len();
    println!(
        "store: {blocks} blocks of {kib} KiB, file {:.1} MiB",
        size as f64 / (1 << 20) as f64
    );
    for cold in [true, false] {
        let label = if cold { "cold" } else { "warm" };
        let store = time(5, cold, || {
            drop(Store::open(&path, blocks, &chain).unwrap())
        });
        let Some(store) = store else {
            println!("{label}: skipped (dropping the page cache needs root)");
            continue;
        };
        let checked = time(5, cold, || redb_open(&path, true)).unwrap_or_default();
        let plain = time(5, cold, || redb_open(&path, false)).unwrap_or_default();
        println!(
            "{label}: Store::open {:.1} ms | redb open with integrity check {:.1} ms, without {:.1} ms",
            store.as_secs_f64() * 1e3,
            checked.as_secs_f64() * 1e3,
            plain.as_secs_f64() * 1e3
        );
    }
}
