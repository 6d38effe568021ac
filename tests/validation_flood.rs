//! A Sybil flood of forged blocks (row 2 of issue 18's attack table): 15 peers, each its own
//! identity, publish thousands of well-formed blocks signed by a key that is not the sequencer's
//! (REJECTed, but proving nothing against the forwarder, so nobody is banned for them) while the
//! sequencer produces. Every peer has its own share of the validation queue, so the honest
//! blocks are still judged: at least 90% are accepted by gossip and every one is stored.

mod common;

use std::time::Duration;

use common::net::*;
use common::*;
use libp2p::Multiaddr;
use op_gossip::node::{NodeEvent, start};
use op_gossip::wire::BlockVersion;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const ATTACKERS: u8 = 15;
/// Forged messages per attacker, published in bursts of [`BURST`] (rust-libp2p packs a burst into
/// few RPCs, as the Python attackers packed 500 per RPC).
const FORGED_PER_ATTACKER: u64 = 3000;
const BURST: u64 = 500;
const HONEST_BLOCKS: u64 = 30;

/// One attacker: publishes `messages` to the node at `addr` in bursts of [`BURST`].
async fn attacker(addr: Multiaddr, messages: Vec<Vec<u8>>, stop: CancellationToken) {
    let mut peer = AnonymousPublisher::dial(addr, "/optimism/901/3/blocks");
    // Until the follower's subscription is known (it sends it right after connecting); an
    // attacker the node will not take publishes all the same after 2 s.
    peer.drive_until_subscribed(Duration::from_secs(2)).await;
    for (n, data) in messages.into_iter().enumerate() {
        if stop.is_cancelled() {
            return;
        }
        peer.publish(data);
        if (n as u64 + 1).is_multiple_of(BURST) {
            peer.drive(Duration::from_millis(50)).await;
        }
    }
    tokio::select! {
        () = stop.cancelled() => {}
        () = peer.drive(Duration::from_secs(60)) => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_blocks_get_through_a_sybil_flood_of_forged_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let sequencer = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    // A small queue with one validation at a time, so that this test's flood (slower than a
    // hand-written client's 500 messages per RPC) fills it: 32 slots, shares of 2 per peer.
    let mut follower_config = config(&chain, 1, dir.path(), false);
    follower_config.gossip.validation_queue = 32;
    follower_config.gossip.validation_concurrency = 1;
    let follower = start(follower_config).await.unwrap();
    connect(&follower, &sequencer).await;
    wait_for_peers(&[&sequencer, &follower], 1).await;
    let addr = follower.dial_address().await.unwrap();

    // Counted as they come: the broadcast channel drops what a slow reader misses.
    let mut events = follower.subscribe();
    let honest = sequencer.peer_id();
    let counter = tokio::spawn(async move {
        let (mut by_gossip, mut forged_judged, mut lagged) = (0u64, 0u64, 0u64);
        loop {
            match events.recv().await {
                Ok(NodeEvent::Accepted { from, .. }) if from == honest => by_gossip += 1,
                Ok(NodeEvent::Validated { from, .. }) if from != honest => forged_judged += 1,
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => return (by_gossip, forged_judged, lagged),
            }
        }
    });

    // Forged messages made up front, so the attackers spend their time sending. Signing is free
    // for a forger: one signature of the sequencer's, replayed over other blocks, recovers to
    // some other address (unknown signer: REJECT, and nothing proven against the forwarder).
    let stop = CancellationToken::new();
    let now = op_gossip::clock::unix_now();
    let replayed = dev_signer().sign_payload(
        chain.chain_id,
        &op_gossip::wire::ssz::encode_envelope(BlockVersion::V4, &block(&chain, 1, now, 100))
            .unwrap(),
    );
    let mut floods = Vec::new();
    for i in 0..u64::from(ATTACKERS) {
        let messages: Vec<Vec<u8>> = (0..FORGED_PER_ATTACKER)
            .map(|n| {
                // Distinct per attacker and message, so no copy is a duplicate of another.
                let env = block(&chain, 1_000_000 * (i + 1) + n, now, 100);
                with_raw_signature(BlockVersion::V4, &env, replayed)
            })
            .collect();
        floods.push(tokio::spawn(attacker(addr.clone(), messages, stop.clone())));
    }
    // Every attacker connected (the sequencer's mesh with the follower is up since above; the
    // attackers' own mesh places are theirs to lose, so they are not waited for).
    wait_for_connections(&[&follower], 1 + usize::from(ATTACKERS)).await;
    sequencer
        .produce(HONEST_BLOCKS, Duration::from_millis(200), 1000)
        .await
        .unwrap();
    let stored = follower.wait_for_head(HONEST_BLOCKS, WAIT).await;
    stop.cancel();
    for flood in floods {
        let _ = flood.await;
    }
    let overflows = follower
        .metrics()
        .encode()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("op_gossip_validation_queue_overflows_total "))
        .map_or(0.0, |v| v.trim().parse::<f64>().unwrap());
    follower.shutdown().await;
    let (by_gossip, forged_judged, lagged) = counter.await.unwrap();
    eprintln!(
        "{by_gossip} of {HONEST_BLOCKS} honest blocks accepted by gossip; {forged_judged} forged \
         messages judged, {overflows} IGNOREd for a full queue ({lagged} events missed); head {:?}",
        stored.map(|h| h.number)
    );
    assert_eq!(lagged, 0, "the count is complete");
    assert!(forged_judged > 1000, "the flood reached the validator");
    assert!(
        stored.is_some_and(|h| h.number >= HONEST_BLOCKS),
        "every honest block stored"
    );
    assert!(
        by_gossip * 10 >= HONEST_BLOCKS * 9,
        "{by_gossip} of {HONEST_BLOCKS} honest blocks by gossip"
    );
    sequencer.shutdown().await;
}
