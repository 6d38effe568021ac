//! The block store's head rule (linking by parent hash, gaps closing, equivocation), retention,
//! and persistence across reopening.

mod common;

use alloy_primitives::B256;
use common::*;
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::store::{BlockRef, Store, StoredBlock};
use op_gossip::wire::BlockVersion;

/// A chain of `n` blocks on top of `parent`, each linking to the previous one.
fn chain_of(parent: B256, first: u64, n: u64, salt: u8) -> Vec<StoredBlock> {
    let spec = chain_up_to(BlockVersion::V4);
    let mut parent = parent;
    (first..first + n)
        .map(|number| {
            let mut env = build_block(
                &spec,
                &BlockSpec {
                    parent_hash: parent,
                    number,
                    timestamp: NOW + number,
                    target_tx_bytes: 0,
                    l1: L1Info {
                        sequence_number: u64::from(salt),
                        ..L1Info::default()
                    },
                },
            );
            env.payload.extra_data = vec![salt].into();
            let env = rehash(env);
            parent = env.payload.block_hash;
            StoredBlock {
                version: BlockVersion::V4,
                envelope: env,
                ssz: None,
            }
        })
        .collect()
}

fn id(b: &StoredBlock) -> BlockRef {
    b.id()
}

#[test]
fn the_head_follows_parent_links_and_waits_for_gaps_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        100,
        &chain_up_to(BlockVersion::V4),
    )
    .unwrap();
    assert_eq!(store.head().unwrap(), None);
    let blocks = chain_of(B256::ZERO, 1, 6, 0);
    // The first block ever stored becomes the head.
    assert_eq!(
        store.insert_batch(&blocks[..1]).unwrap(),
        Some(id(&blocks[0]))
    );
    // 3 and 4 arrive before 2: stored, but the head cannot move past the gap.
    assert_eq!(
        store.insert_batch(&blocks[2..4]).unwrap(),
        Some(id(&blocks[0]))
    );
    // 2 closes the gap: the head jumps to 4.
    assert_eq!(
        store.insert_batch(&blocks[1..2]).unwrap(),
        Some(id(&blocks[3]))
    );
    // A competing block at height 5 that does not link is stored but not followed.
    let other = chain_of(B256::repeat_byte(9), 5, 1, 7);
    assert_eq!(store.insert_batch(&other).unwrap(), Some(id(&blocks[3])));
    assert_eq!(
        store.insert_batch(&blocks[4..]).unwrap(),
        Some(id(&blocks[5]))
    );
    for b in &blocks {
        assert_eq!(
            store.canonical_block(b.id().number).unwrap().as_ref(),
            Some(b)
        );
    }
    assert_eq!(
        store.block(id(&other[0])).unwrap().as_ref(),
        Some(&other[0])
    );
    assert_eq!(store.len().unwrap(), 7);
}

#[test]
fn retention_prunes_blocks_far_below_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        10,
        &chain_up_to(BlockVersion::V4),
    )
    .unwrap();
    let blocks = chain_of(B256::ZERO, 1, 30, 0);
    for chunk in blocks.chunks(7) {
        store.insert_batch(chunk).unwrap();
    }
    assert_eq!(store.head().unwrap().unwrap().number, 30);
    assert!(store.canonical_block(19).unwrap().is_none());
    assert!(store.canonical_block(20).unwrap().is_some());
    assert_eq!(store.len().unwrap(), 11);
}

#[test]
fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    let blocks = chain_of(B256::ZERO, 1, 5, 0);
    {
        let store = Store::open(&path, 100, &chain_up_to(BlockVersion::V4)).unwrap();
        store.insert_batch(&blocks).unwrap();
    }
    let store = Store::open(&path, 100, &chain_up_to(BlockVersion::V4)).unwrap();
    assert_eq!(store.head().unwrap(), Some(id(&blocks[4])));
    assert_eq!(store.canonical_block(3).unwrap().as_ref(), Some(&blocks[2]));
}

#[test]
fn a_file_that_is_not_a_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    std::fs::write(
        &path,
        b"this is not a redb file, just text that happens to be here",
    )
    .unwrap();
    assert!(Store::open(&path, 100, &chain_up_to(BlockVersion::V4)).is_err());
}

#[test]
fn holes_anchor_reanchor_and_serving_blocks_above_a_hole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        1000,
        &chain_up_to(BlockVersion::V4),
    )
    .unwrap();
    let genesis = BlockRef {
        number: 0,
        hash: B256::ZERO,
    };
    assert!(store.anchor_if_empty(genesis).unwrap());
    assert!(!store.anchor_if_empty(genesis).unwrap(), "only once");
    assert_eq!(store.head().unwrap(), Some(genesis));
    assert!(store.holes(100).unwrap().holes.is_empty());

    let blocks = chain_of(B256::ZERO, 1, 10, 0);
    // Stored: 1, 2, 5, 6, 9. Holes: 3..=4 and 7..=8.
    let pick = |ns: &[u64]| -> Vec<StoredBlock> {
        ns.iter().map(|n| blocks[*n as usize - 1].clone()).collect()
    };
    store.insert_batch(&pick(&[1, 2, 5, 6, 9])).unwrap();
    assert_eq!(store.head().unwrap(), Some(id(&blocks[1])));
    let view = store.holes(100).unwrap();
    let spans: Vec<(u64, u64)> = view.holes.iter().map(|h| (h.after, h.before)).collect();
    assert_eq!(spans, vec![(2, 5), (6, 9)]);
    assert_eq!(view.holes[0].len(), 2);
    assert_eq!(view.holes[0].above[0].id, id(&blocks[4]));
    assert_eq!(
        view.holes[0].above[0].parent, blocks[3].envelope.payload.block_hash,
        "the trusted end of the hole is block 5's parent"
    );
    assert_eq!(store.holes(1).unwrap().holes.len(), 1, "scan bounded");

    // Above a hole, the only block at a number is served even though it is not canonical.
    assert_eq!(store.canonical_block(5).unwrap(), None);
    assert_eq!(store.block_by_number(5).unwrap(), Some(blocks[4].clone()));
    assert_eq!(store.block_by_number(4).unwrap(), None);

    // Filling the first hole moves the head up to 6; the jump then skips the second.
    store.insert_batch(&pick(&[3, 4])).unwrap();
    assert_eq!(store.head().unwrap(), Some(id(&blocks[5])));
    assert_eq!(
        store.reanchor(id(&blocks[8])).unwrap(),
        Some(id(&blocks[8]))
    );
    assert_eq!(store.head().unwrap(), Some(id(&blocks[8])));
    assert_eq!(
        store.reanchor(id(&blocks[9])).unwrap(),
        None,
        "a block that is not stored cannot be the head"
    );
    assert!(store.holes(100).unwrap().holes.is_empty());
    // The chain continues from the new head.
    store.insert_batch(&pick(&[10])).unwrap();
    assert_eq!(store.head().unwrap(), Some(id(&blocks[9])));
}

#[test]
fn a_block_at_head_plus_one_that_does_not_link_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("s.redb"),
        1000,
        &chain_up_to(BlockVersion::V4),
    )
    .unwrap();
    let ours = chain_of(B256::ZERO, 1, 3, 0);
    let theirs = chain_of(B256::repeat_byte(9), 4, 2, 1);
    store.insert_batch(&ours).unwrap();
    store.insert_batch(&theirs).unwrap();
    let view = store.holes(100).unwrap();
    assert_eq!(view.unlinked_next.map(|l| l.id), Some(id(&theirs[0])));
}
