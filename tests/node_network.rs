//! Several nodes on 127.0.0.1: a sequencer publishes, followers validate, forward and store.

mod common;

use std::time::Duration;

use common::net::*;
use common::*;
use op_gossip::node::{NodeEvent, start};
use op_gossip::p2p::INLINE_VALIDATION_MAX_BYTES;
use op_gossip::validate::Verdict;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_every_follower_stores_every_block() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let sequencer = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let mut followers = Vec::new();
    for i in 1..5 {
        followers.push(start(config(&chain, i, dir.path(), false)).await.unwrap());
    }
    // A line: 0 - 1 - 2 - 3 - 4, so blocks must be forwarded hop by hop.
    connect(&followers[0], &sequencer).await;
    for i in 1..4 {
        connect(&followers[i], &followers[i - 1]).await;
    }
    let all: Vec<_> = std::iter::once(&sequencer)
        .chain(followers.iter())
        .collect();
    wait_for_peers(&all, 1).await;

    sequencer
        .produce(20, Duration::from_millis(100), 10_000)
        .await
        .unwrap();
    let expected = sequencer.wait_for_head(20, WAIT).await.unwrap();
    assert_eq!(expected.number, 20);
    for (i, f) in followers.iter().enumerate() {
        assert_eq!(
            f.wait_for_head(20, WAIT).await,
            Some(expected),
            "follower {i}"
        );
        for n in 1..=20 {
            let stored = f
                .store()
                .canonical_block(n)
                .unwrap()
                .unwrap_or_else(|| panic!("follower {i} misses {n}"));
            assert_eq!(
                stored,
                sequencer.store().canonical_block(n).unwrap().unwrap()
            );
        }
    }
    // Blocks above the inline bound are validated on the blocking pool instead of the worker
    // that received them; they travel the line all the same.
    let big = INLINE_VALIDATION_MAX_BYTES + 64 * 1024;
    sequencer
        .produce(2, Duration::from_millis(100), big)
        .await
        .unwrap();
    let expected = sequencer.wait_for_head(22, WAIT).await.unwrap();
    for (i, f) in followers.iter().enumerate() {
        assert_eq!(
            f.wait_for_head(22, WAIT).await,
            Some(expected),
            "follower {i}, big blocks"
        );
        let stored = f.store().canonical_block(22).unwrap().unwrap();
        let tx_bytes: usize = stored
            .envelope
            .payload
            .transactions
            .iter()
            .map(|t| t.len())
            .sum();
        assert!(tx_bytes > INLINE_VALIDATION_MAX_BYTES, "{tx_bytes} bytes");
    }
    for node in followers {
        node.shutdown().await;
    }
    sequencer.shutdown().await;
}

/// Waits (up to `WAIT`) until the node reports block `number` stored.
async fn stored(events: &mut tokio::sync::broadcast::Receiver<NodeEvent>, number: u64) -> bool {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::Stored { id, .. }) if id.number == number => return true,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// Collects the validation verdicts a node reports for `duration`.
async fn verdicts_for(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    duration: Duration,
) -> Vec<(Verdict, Option<&'static str>)> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(duration, async {
        while let Ok(e) = events.recv().await {
            if let NodeEvent::Validated {
                verdict, reason, ..
            } = e
            {
                out.push((verdict, reason));
            }
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_foreign_signers_stop_at_the_first_hop() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    // A (publisher) - B - C: B is the first hop, C must never see the bad blocks. B runs
    // without peer scoring: this test is about verdicts and forwarding; with scoring B bans A
    // for the first invalid block and ignores the rest (tests/bans.rs).
    let a = start(config(&chain, 0, dir.path(), false)).await.unwrap();
    let mut b_config = config(&chain, 1, dir.path(), false);
    b_config.scoring = op_gossip::p2p::scoring::ScoringLevel::None;
    let b = start(b_config).await.unwrap();
    let c = start(config(&chain, 2, dir.path(), false)).await.unwrap();
    connect(&b, &a).await;
    connect(&c, &b).await;
    wait_for_peers(&[&a, &b, &c], 1).await;
    let (mut b_events, mut c_events) = (b.subscribe(), c.subscribe());

    let now = op_gossip::clock::unix_now();
    // 1. Signed by a key that is not the sequencer.
    let env = block(&chain, 1, now, 2000);
    let foreign = signed(
        &chain,
        op_gossip::wire::BlockVersion::V4,
        &env,
        &other_signer(),
    );
    a.network()
        .publish(op_gossip::wire::BlockVersion::V4, foreign)
        .await
        .unwrap();
    // 2. The sequencer's block with a corrupted signature.
    let env2 = block(&chain, 2, now, 2000);
    let mut sig = dev_signer().sign_payload(
        chain.chain_id,
        &op_gossip::wire::ssz::encode_envelope(op_gossip::wire::BlockVersion::V4, &env2).unwrap(),
    );
    sig[10] ^= 0xff;
    let corrupted = with_raw_signature(op_gossip::wire::BlockVersion::V4, &env2, sig);
    a.network()
        .publish(op_gossip::wire::BlockVersion::V4, corrupted)
        .await
        .unwrap();

    let at_b = verdicts_for(&mut b_events, Duration::from_secs(3)).await;
    assert_eq!(at_b.len(), 2, "B judged both: {at_b:?}");
    assert!(at_b.iter().all(|(v, _)| *v == Verdict::Reject), "{at_b:?}");
    let at_c = verdicts_for(&mut c_events, Duration::from_millis(500)).await;
    assert!(
        at_c.is_empty(),
        "C must not receive rejected blocks: {at_c:?}"
    );
    // Nothing was stored; the heads are still the genesis the empty stores were anchored at.
    let genesis = Some(op_gossip::store::BlockRef {
        number: chain.genesis.l2.number,
        hash: chain.genesis.l2.hash,
    });
    assert!(b.store().is_empty().unwrap() && c.store().is_empty().unwrap());
    assert_eq!((b.head(), c.head()), (genesis, genesis));

    // A valid block from the same publisher still goes through both hops.
    let good = signed_dev(&chain, &block(&chain, 3, now, 2000));
    a.network()
        .publish(op_gossip::wire::BlockVersion::V4, good)
        .await
        .unwrap();
    // Stored at C (its head stays at genesis: blocks 1 and 2 exist nowhere to be fetched).
    assert!(stored(&mut c_events, 3).await, "block 3 reached C");
    for n in [a, b, c] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_keeps_its_store_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    let follower = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    seq.produce(10, Duration::from_millis(50), 1000)
        .await
        .unwrap();
    let head = follower.wait_for_head(10, WAIT).await.unwrap();
    assert_eq!(head.number, 10);
    follower.shutdown().await;

    // Same data directory: the head and every block are still there.
    let follower = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    assert_eq!(follower.head(), Some(head));
    for n in 1..=10 {
        assert!(
            follower.store().canonical_block(n).unwrap().is_some(),
            "block {n}"
        );
    }
    // And it goes on following from there.
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    seq.produce(5, Duration::from_millis(50), 1000)
        .await
        .unwrap();
    assert_eq!(
        follower.wait_for_head(15, WAIT).await.map(|h| h.number),
        Some(15)
    );
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authored_messages_are_rejected_and_foreign_topics_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let node = start(config(&chain, 0, dir.path(), false)).await.unwrap();
    let v4 = chain.topic(op_gossip::wire::BlockVersion::V4);
    let mut peer = AuthoredPeer::new(&[
        &v4,
        "/optimism/901/9/blocks",
        "/eth2/beacon_block/ssz_snappy",
    ]);
    peer.swarm.dial(node.dial_address().await.unwrap()).unwrap();
    assert!(
        peer.drive_until_subscribed(WAIT).await,
        "the node's subscriptions never arrived"
    );
    let peer_id = *peer.swarm.local_peer_id();
    let topics = async || node.network().peer_topics(peer_id).await.unwrap();
    assert!(
        peer.drive_until(WAIT, async || !topics().await.is_empty())
            .await,
        "the peer's subscriptions never arrived"
    );

    // The node tracks only the block topic for this peer.
    let topics = topics().await;
    assert_eq!(
        topics,
        vec![v4.clone()],
        "foreign subscriptions are filtered"
    );

    // A valid, sequencer-signed block, but carried in a message with author, seqno and signature.
    let mut events = node.subscribe();
    let msg = signed_dev(
        &chain,
        &block(&chain, 1, op_gossip::clock::unix_now(), 1000),
    );
    peer.swarm
        .behaviour_mut()
        .publish(libp2p::gossipsub::IdentTopic::new(&v4), msg.clone())
        .unwrap();
    // Time passing is the point: the message reaches the node, which must never validate it.
    peer.drive(Duration::from_secs(2)).await;
    let verdicts = verdicts_for(&mut events, Duration::from_millis(200)).await;
    assert!(
        verdicts.is_empty(),
        "gossipsub drops authored messages before validation: {verdicts:?}"
    );
    assert!(node.store().is_empty().unwrap());
    assert_eq!(
        node.head().map(|h| h.number),
        Some(chain.genesis.l2.number),
        "still at the genesis anchor"
    );

    // The same bytes published anonymously (by a second node) are accepted.
    let honest = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&honest, &node).await;
    wait_for_peers(&[&honest, &node], 1).await;
    honest
        .network()
        .publish(op_gossip::wire::BlockVersion::V4, msg)
        .await
        .unwrap();
    assert_eq!(node.wait_for_head(1, WAIT).await.map(|h| h.number), Some(1));
    honest.shutdown().await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_time_producer_builds_block_n_at_genesis_plus_n_block_times() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = (*devnet_now()).clone();
    spec.block_time = 1;
    spec.genesis.l2_time = op_gossip::clock::unix_now() - 1;
    let chain = std::sync::Arc::new(spec);
    let mut cfg = config(&chain, 0, dir.path(), true);
    cfg.sequencer.as_mut().unwrap().schedule = op_gossip::producer::Schedule::ChainTime;
    let seq = start(cfg).await.unwrap();
    let follower = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&follower, &seq).await;
    let head = seq.wait_for_head(4, WAIT).await.unwrap();
    assert!(head.number >= 4);
    for n in 1..=head.number {
        let Some(block) = seq.store().canonical_block(n).unwrap() else {
            continue;
        };
        assert_eq!(
            block.envelope.payload.timestamp,
            chain.timestamp_for_block(n).unwrap(),
            "block {n}"
        );
    }
    // The follower gets the chain too (it may have missed the first block before connecting).
    let target = head.number + 2;
    let reached = follower.wait_for_head(target, WAIT).await.unwrap();
    assert!(reached.number >= target);
    follower.shutdown().await;
    seq.shutdown().await;
}
