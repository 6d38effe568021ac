//! The block store knows its chain (refuses another chain's, another genesis's or an unknown
//! format's store, leaving it untouched; adopts a store from before the record only when its
//! blocks prove the chain), and a damaged file is an error, never a panic.

mod common;

use std::path::Path;
use std::sync::Arc;

use alloy_primitives::B256;
use common::*;
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain::ChainSpec;
use op_gossip::store::{PeerRecords, Store, StoreError, StoredBlock};
use op_gossip::wire::BlockVersion;
use redb::{ReadableDatabase, TableDefinition};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// `n` linked blocks from number 1, at the timestamps `chain` gives their numbers.
fn blocks_of(chain: &ChainSpec, n: u64, tx_bytes: usize) -> Vec<StoredBlock> {
    let mut parent = chain.genesis.l2.hash;
    (1..=n)
        .map(|number| {
            let env = rehash(build_block(
                chain,
                &BlockSpec {
                    parent_hash: parent,
                    number,
                    timestamp: chain.timestamp_for_block(number).unwrap(),
                    target_tx_bytes: tx_bytes,
                    l1: L1Info::default(),
                },
            ));
            parent = env.payload.block_hash;
            StoredBlock {
                version: BlockVersion::V4,
                envelope: env,
                ssz: None,
            }
        })
        .collect()
}

fn chain_a() -> ChainSpec {
    chain_up_to(BlockVersion::V4)
}

/// A store of `chain` at `path` holding `n` blocks.
fn filled(path: &Path, chain: &ChainSpec, n: u64) -> Vec<StoredBlock> {
    let store = Store::open(path, 100, chain).unwrap();
    let blocks = blocks_of(chain, n, 0);
    store.insert_batch(&blocks).unwrap();
    blocks
}

/// Turns a store into one written before chain records existed (no `format`, no `chain`).
fn strip_record(path: &Path) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(META).unwrap();
        meta.remove("format").unwrap();
        meta.remove("chain").unwrap();
    }
    txn.commit().unwrap();
}

fn has_record(path: &Path) -> bool {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get("format").unwrap().is_some() && meta.get("chain").unwrap().is_some()
}

#[test]
fn a_store_of_another_chain_or_genesis_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    let a = chain_a();
    let blocks = filled(&path, &a, 5);
    let before = std::fs::read(&path).unwrap();

    let mut other_id = a.clone();
    other_id.chain_id = 11155420;
    other_id.name = "op-sepolia".into();
    let err = Store::open(&path, 100, &other_id).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::OtherChain { .. }), "{text}");
    assert!(
        text.contains("chain id 901") && text.contains("chain id 11155420"),
        "{text}"
    );
    assert!(text.contains(&path.display().to_string()), "{text}");

    let mut other_genesis = a.clone();
    other_genesis.genesis.l2.hash = B256::repeat_byte(7);
    let text = Store::open(&path, 100, &other_genesis)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&B256::ZERO.to_string()),
        "names the store's genesis: {text}"
    );
    assert!(
        text.contains(&B256::repeat_byte(7).to_string()),
        "and the chain's: {text}"
    );

    let mut other_time = a.clone();
    other_time.genesis.l2_time = 1_700_000_000;
    assert!(matches!(
        Store::open(&path, 100, &other_time),
        Err(StoreError::OtherChain { .. })
    ));

    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");
    let store = Store::open(&path, 100, &a).unwrap();
    assert_eq!(store.head().unwrap(), Some(blocks[4].id()));
}

#[test]
fn a_store_of_an_unknown_format_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.redb");
    let a = chain_a();
    filled(&path, &a, 2);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("format", 99u32.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, 100, &a).unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownFormat { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("format 99"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_store_from_before_records_is_adopted_only_when_its_blocks_fit_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let a = chain_a();

    // Blocks at the chain's timestamps: adopted, and recorded from then on.
    let path = dir.path().join("fits.redb");
    let blocks = filled(&path, &a, 4);
    strip_record(&path);
    assert!(!has_record(&path));
    let store = Store::open(&path, 100, &a).unwrap();
    assert_eq!(store.head().unwrap(), Some(blocks[3].id()));
    drop(store);
    assert!(has_record(&path));

    // The devnet store that was reused for op-sepolia: its blocks are not at op-sepolia's times.
    let sepolia = op_gossip::chain_config::load_chain("op-sepolia").unwrap();
    let path = dir.path().join("devnet.redb");
    filled(&path, &a, 4);
    strip_record(&path);
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path, 100, &sepolia).unwrap_err();
    assert!(matches!(err, StoreError::Unproven { .. }), "{err}");
    assert!(err.to_string().contains("op-sepolia"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // No block, head at the genesis anchor: adopted. Head elsewhere without blocks: refused.
    let path = dir.path().join("anchored.redb");
    {
        let store = Store::open(&path, 100, &a).unwrap();
        store.anchor_if_empty(blocks[0].id()).unwrap();
    }
    strip_record(&path);
    assert!(matches!(
        Store::open(&path, 100, &a),
        Err(StoreError::Unproven { .. })
    ));
    let path = dir.path().join("genesis.redb");
    {
        let store = Store::open(&path, 100, &a).unwrap();
        let genesis = op_gossip::store::BlockRef {
            number: 0,
            hash: a.genesis.l2.hash,
        };
        store.anchor_if_empty(genesis).unwrap();
    }
    strip_record(&path);
    Store::open(&path, 100, &a).unwrap();
}

/// Every read and write the node makes of a store, in the order a starting node makes them.
/// Returns the first error; a panic escaping any of them fails the test.
fn exercise(store: &Store, chain: &ChainSpec, n: u64) -> Result<(), StoreError> {
    store.head()?;
    store.holes(1000)?;
    for records in PeerRecords::ALL {
        store.peer_records(records)?;
    }
    store.peer_scores()?;
    for number in 0..=n + 1 {
        store.canonical_block(number)?;
        store.block_by_number(number)?;
    }
    store.len()?;
    store.put_peer_record(PeerRecords::PeerBans, b"peer", 1)?;
    store.insert_batch(&blocks_of(chain, n + 1, 0)[n as usize..])?;
    Ok(())
}

/// What became of one damaged copy of the store.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Outcome {
    RefusedAtOpen,
    ReadError,
    Fine,
}

fn open_and_exercise(path: &Path, chain: &ChainSpec, n: u64) -> Outcome {
    match Store::open(path, 100, chain) {
        Err(e) => {
            let text = e.to_string();
            assert!(matches!(e, StoreError::Damaged { .. }), "{text}");
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("Move its directory away"), "{text}");
            Outcome::RefusedAtOpen
        }
        Ok(store) => match exercise(&store, chain, n) {
            Ok(()) => Outcome::Fine,
            Err(_) => Outcome::ReadError,
        },
    }
}

#[test]
fn a_truncated_or_zeroed_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let a = chain_a();
    let path = dir.path().join("blocks.redb");
    filled(&path, &a, 8);
    let whole = std::fs::read(&path).unwrap();

    for cut in [1, 100, 512, 4096, whole.len() / 2, whole.len() - 1] {
        std::fs::write(&path, &whole[..cut]).unwrap();
        assert_eq!(
            open_and_exercise(&path, &a, 8),
            Outcome::RefusedAtOpen,
            "cut at {cut}"
        );
    }
    let mut zeroed = whole.clone();
    zeroed[..4096].fill(0);
    std::fs::write(&path, &zeroed).unwrap();
    assert_eq!(open_and_exercise(&path, &a, 8), Outcome::RefusedAtOpen);
}

#[test]
fn a_damaged_page_anywhere_is_an_error_at_open_or_on_read_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let a = chain_a();
    let pristine = dir.path().join("pristine.redb");
    const N: u64 = 12;
    {
        let store = Store::open(&pristine, 100, &a).unwrap();
        store.insert_batch(&blocks_of(&a, N, 3_000)).unwrap();
        store
            .put_peer_record(PeerRecords::BlockedAddrs, b"10.0.0.1", 0)
            .unwrap();
        store
            .save_peer_scores(&[(b"peer".to_vec(), b"{}".to_vec())], &[])
            .unwrap();
    }
    let whole = std::fs::read(&pristine).unwrap();
    const PAGE: usize = 4096;
    let pages = whole.len().div_ceil(PAGE);
    assert!(pages >= 20, "a store of {pages} pages");
    let path = dir.path().join("blocks.redb");
    let mut outcomes = std::collections::HashMap::<Outcome, usize>::new();
    for page in 0..pages {
        let mut damaged = whole.clone();
        let start = page * PAGE;
        let end = (start + 256).min(damaged.len());
        damaged[start..end].fill(0xFF);
        std::fs::write(&path, &damaged).unwrap();
        *outcomes.entry(open_and_exercise(&path, &a, N)).or_default() += 1;
    }
    eprintln!("{pages} pages damaged one at a time: {outcomes:?}");
    assert!(outcomes.get(&Outcome::RefusedAtOpen).copied().unwrap_or(0) > 0);
}

#[test]
fn damage_that_appears_while_running_is_an_error_for_that_read() {
    // The integrity check runs at open; a file damaged under a running node is met on reads.
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let a = chain_a();
    let path = dir.path().join("blocks.redb");
    // 40 blocks of 150 KB: 6 MB, more than the store's 4 MiB page cache, so reads reach the file.
    const N: u64 = 40;
    let store = Arc::new(Store::open(&path, 100, &a).unwrap());
    store.insert_batch(&blocks_of(&a, N, 150_000)).unwrap();
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    // Damage every page after the header region, in place, under the open store.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&vec![0xFF; len - 8192], 8192).unwrap();
    drop(file);
    let mut errors = 0;
    for number in 1..=N {
        match store.block_by_number(number) {
            Err(e) => {
                assert!(e.to_string().contains("block store"), "{e}");
                errors += 1;
            }
            Ok(block) => assert!(block.is_some()),
        }
    }
    eprintln!("{errors} of {N} reads failed with an error");
    assert!(errors > 0, "every read was answered from the cache");
    // The store still answers (an error, not a poisoned panic) after the failures.
    let _ = store.head();
}
