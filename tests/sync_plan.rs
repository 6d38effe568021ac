//! The sync plan without a network: walk-back order, promotion along parent hashes, quarantine,
//! rejection of payloads that cannot link, "not found" pauses, retries after errors, and the
//! head jump over a hole longer than the limit.

mod common;

use std::time::{Duration, Instant};

use alloy_primitives::B256;
use libp2p::PeerId;
use op_gossip::block_builder::{BlockSpec, L1Info, build_block};
use op_gossip::chain::ChainSpec;
use op_gossip::p2p::peers::app_score::PeerOutcome;
use op_gossip::p2p::reqresp::client::RequestError;
use op_gossip::store::{BlockLink, BlockRef, Hole, Holes, StoredBlock};
use op_gossip::sync::plan::{PlanConfig, QUARANTINE_CAPACITY, SyncAction, SyncPlan};
use op_gossip::wire::BlockVersion;

const PAUSE: Duration = Duration::from_secs(4);

fn chain() -> ChainSpec {
    op_gossip::chain_config::load_chain("devnet").unwrap()
}

/// Blocks 1..=n on top of genesis (hash zero), each a real block with its own hash; `salt`
/// makes a different chain with the same numbers.
fn chain_of(n: u64, salt: u64) -> Vec<StoredBlock> {
    let chain = chain();
    let mut parent = chain.genesis.l2.hash;
    let mut out = Vec::new();
    for number in 1..=n {
        let envelope = build_block(
            &chain,
            &BlockSpec {
                parent_hash: parent,
                number,
                timestamp: 1_000 + number * 2 + salt,
                target_tx_bytes: 0,
                l1: L1Info::default(),
            },
        );
        parent = envelope.payload.block_hash;
        out.push(StoredBlock {
            version: BlockVersion::V4,
            envelope,
            ssz: None,
        });
    }
    out
}

fn at(blocks: &[StoredBlock], number: u64) -> StoredBlock {
    blocks[number as usize - 1].clone()
}

/// The store's view: head at `head`, one block stored at `above`, nothing in between.
fn view(blocks: &[StoredBlock], head: u64, above: u64) -> Holes {
    let head_ref = if head == 0 {
        BlockRef {
            number: 0,
            hash: B256::ZERO,
        }
    } else {
        at(blocks, head).id()
    };
    let top = at(blocks, above);
    Holes {
        head: Some(head_ref),
        holes: vec![Hole {
            after: head,
            before: above,
            above: vec![BlockLink {
                id: top.id(),
                parent: top.envelope.payload.parent_hash,
            }],
        }],
        unlinked_next: None,
    }
}

fn plan(max_gap: u64) -> SyncPlan {
    SyncPlan::new(PlanConfig {
        max_gap,
        replan_after_not_found: PAUSE,
    })
}

fn stored(actions: &[SyncAction]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| match a {
            SyncAction::Store { block, .. } => Some(block.envelope.payload.block_number),
            _ => None,
        })
        .collect()
}

fn scores(actions: &[SyncAction]) -> Vec<(PeerId, PeerOutcome)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SyncAction::Score { peer, outcome } => Some((*peer, *outcome)),
            _ => None,
        })
        .collect()
}

#[test]
fn walks_back_from_the_trusted_block_and_promotes_in_chain_order() {
    let blocks = chain_of(6, 0);
    let mut plan = plan(100);
    let now = Instant::now();
    assert!(plan.on_holes(&view(&blocks, 0, 6), now).is_empty());
    let any = PeerId::random();
    let order: Vec<u64> = std::iter::from_fn(|| plan.next_request(&any)).collect();
    assert_eq!(order, vec![5, 4, 3, 2, 1], "highest first");

    let peer = PeerId::random();
    // 3 arrives before 4 and 5: it waits in the quarantine.
    let a = plan.on_response(peer, 3, Ok(at(&blocks, 3)), now);
    assert!(stored(&a).is_empty());
    assert_eq!(scores(&a), vec![(peer, PeerOutcome::ValidResponse)]);
    // 5 links to the trusted block 6: promoted. 4 then promotes itself and 3.
    assert_eq!(
        stored(&plan.on_response(peer, 5, Ok(at(&blocks, 5)), now)),
        vec![5]
    );
    assert_eq!(
        stored(&plan.on_response(peer, 4, Ok(at(&blocks, 4)), now)),
        vec![4, 3]
    );
    assert_eq!(
        stored(&plan.on_response(peer, 2, Ok(at(&blocks, 2)), now)),
        vec![2]
    );
    assert_eq!(
        stored(&plan.on_response(peer, 1, Ok(at(&blocks, 1)), now)),
        vec![1]
    );
    assert!(plan.is_idle());
    assert_eq!(plan.stats().promoted, 5);
    assert_eq!(plan.stats().rejected, 0);
}

#[test]
fn a_payload_that_cannot_link_is_rejected_and_asked_again_elsewhere() {
    let good = chain_of(6, 0);
    let fake = chain_of(6, 1);
    let mut plan = plan(100);
    let now = Instant::now();
    plan.on_holes(&view(&good, 0, 6), now);
    let (honest, liar) = (PeerId::random(), PeerId::random());
    assert_eq!(plan.next_request(&liar), Some(5));
    // Number 5's hash is known (block 6's parent): a different payload is rejected at once
    // and 5 goes back into the queue.
    let a = plan.on_response(liar, 5, Ok(at(&fake, 5)), now);
    assert_eq!(
        scores(&a),
        vec![
            (liar, PeerOutcome::ValidResponse),
            (liar, PeerOutcome::RejectedPayload)
        ]
    );
    assert!(stored(&a).is_empty());
    assert_eq!(plan.next_request(&liar), Some(5));
    // 4 from the liar waits (untrusted); when the real 5 arrives, 4's real hash is known and the
    // quarantined fake is rejected; 4 is asked for again.
    assert_eq!(plan.next_request(&liar), Some(4));
    assert!(stored(&plan.on_response(liar, 4, Ok(at(&fake, 4)), now)).is_empty());
    let a = plan.on_response(honest, 5, Ok(at(&good, 5)), now);
    assert_eq!(stored(&a), vec![5]);
    assert!(scores(&a).contains(&(liar, PeerOutcome::RejectedPayload)));
    assert_eq!(plan.next_request(&liar), Some(4));
    assert_eq!(plan.stats().rejected, 2);
}

#[test]
fn errors_are_retried_and_not_found_pauses_planning() {
    let blocks = chain_of(10, 0);
    let mut plan = plan(100);
    let now = Instant::now();
    plan.on_holes(&view(&blocks, 0, 10), now);
    let (peer, other) = (PeerId::random(), PeerId::random());
    plan.set_peer_count(2);
    assert_eq!(plan.next_request(&peer), Some(9));
    let a = plan.on_response(
        peer,
        9,
        Err(RequestError::Timeout("reading the response")),
        now,
    );
    assert_eq!(scores(&a), vec![(peer, PeerOutcome::ErrorResponse)]);
    assert_eq!(plan.next_request(&peer), Some(9), "retried");

    // Not found: no score; the peer is not asked for 9 again, the other peer is.
    let a = plan.on_response(peer, 9, Err(RequestError::NotFound), now);
    assert!(scores(&a).is_empty());
    assert_eq!(plan.next_request(&peer), Some(8));
    plan.return_request(8);
    assert_eq!(plan.next_request(&other), Some(9));
    // Once every peer lacks it, the queue is dropped and planning pauses.
    let a = plan.on_response(other, 9, Err(RequestError::NotFound), now);
    assert!(scores(&a).is_empty());
    assert_eq!(plan.queued(), 0);
    plan.on_holes(&view(&blocks, 0, 10), now + PAUSE / 2);
    assert_eq!(plan.queued(), 0, "paused");
    plan.on_holes(&view(&blocks, 0, 10), now + PAUSE);
    assert_eq!(plan.queued(), 9, "planned again after the pause");
    assert_eq!(plan.stats().not_found, 2);
    assert_eq!(plan.stats().errors, 1);
}

#[test]
fn a_hole_longer_than_the_limit_moves_the_head_instead() {
    let blocks = chain_of(20, 0);
    let mut plan = plan(10);
    let actions = plan.on_holes(&view(&blocks, 0, 20), Instant::now());
    match actions.as_slice() {
        [SyncAction::Reanchor(to)] => assert_eq!(*to, at(&blocks, 20).id()),
        other => panic!("expected a reanchor, got {other:?}"),
    }
    assert_eq!(plan.queued(), 0);
    // 10 missing numbers are within the limit.
    plan.on_holes(&view(&blocks, 9, 20), Instant::now());
    assert_eq!(plan.queued(), 10);
}

#[test]
fn the_quarantine_is_bounded_and_overflow_counts_as_rejected() {
    let blocks = chain_of(QUARANTINE_CAPACITY as u64 + 20, 0);
    let top = blocks.len() as u64;
    let mut plan = plan(1000);
    let now = Instant::now();
    plan.on_holes(&view(&blocks, 0, top), now);
    let peer = PeerId::random();
    // Answers for every number except the top one of the hole: nothing links, all wait.
    let mut rejected = 0;
    for number in 1..top - 1 {
        let a = plan.on_response(peer, number, Ok(at(&blocks, number)), now);
        rejected += scores(&a)
            .iter()
            .filter(|(_, o)| *o == PeerOutcome::RejectedPayload)
            .count();
    }
    assert_eq!(rejected, (top - 2) as usize - QUARANTINE_CAPACITY);
}

/// Found by the `sync_plan` fuzz target: re-planning while requests were in flight queued a full
/// `max_gap` again, and the failed requests then came back on top, so more than `max_gap` numbers
/// were queued (and asked for at once). Queued plus in-flight numbers now stay within `max_gap`.
#[test]
fn queued_and_in_flight_numbers_stay_within_the_gap_limit() {
    let blocks = chain_of(8, 0);
    let max_gap = 5;
    let mut plan = plan(max_gap);
    let now = Instant::now();
    let link = |n: u64| BlockLink {
        id: at(&blocks, n).id(),
        parent: at(&blocks, n).envelope.payload.parent_hash,
    };
    // Two holes of 3 below blocks 4 and 8 (each within the limit, 6 numbers in all).
    let view = Holes {
        head: Some(BlockRef {
            number: 0,
            hash: B256::ZERO,
        }),
        holes: vec![
            Hole {
                after: 0,
                before: 4,
                above: vec![link(4)],
            },
            Hole {
                after: 4,
                before: 8,
                above: vec![link(8)],
            },
        ],
        unlinked_next: None,
    };
    let within = |plan: &SyncPlan| {
        let f = plan.footprint();
        assert!((f.queued + f.in_flight) as u64 <= max_gap, "{f:?}");
    };
    plan.on_holes(&view, now);
    within(&plan);
    let peer = PeerId::random();
    let asked: Vec<u64> = std::iter::from_fn(|| plan.next_request(&peer)).collect();
    assert_eq!(asked.len() as u64, max_gap);
    plan.on_holes(&view, now);
    within(&plan);
    for number in asked {
        plan.on_response(peer, number, Err(RequestError::ErrorCode(3)), now);
        within(&plan);
    }
    // Nothing is lost: once these are answered the last number is planned.
    let mut all = Vec::new();
    while let Some(number) = plan.next_request(&peer) {
        let block = at(&blocks, number);
        plan.on_response(peer, number, Ok(block), now);
        all.push(number);
        plan.on_holes(&view, now);
        within(&plan);
    }
    all.sort();
    assert_eq!(all, vec![1, 2, 3, 5, 6, 7]);
}
