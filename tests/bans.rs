//! Scores, bans and the connection gate between real nodes on 127.0.0.1: a peer that forwards
//! an invalid block is banned and disconnected, cannot reconnect until the ban expires, stays
//! banned across a restart, and a static peer is never banned.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::net::*;
use common::wait::wait_until;
use common::*;
use op_gossip::node::{NodeConfig, NodeEvent, RunningNode, start};
use op_gossip::p2p::BanConfig;
use op_gossip::wire::BlockVersion;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(30);

/// Publishes from `from` a block whose signature is no valid signature (a provable fault).
async fn publish_invalid(from: &RunningNode, number: u64) {
    let chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    let env = block(&chain, number, op_gossip::clock::unix_now(), 500);
    let data = broken_signature(&chain, BlockVersion::V4, &env);
    from.network()
        .publish(BlockVersion::V4, data)
        .await
        .unwrap();
}

async fn banned_event(events: &mut broadcast::Receiver<NodeEvent>) -> Option<(f64, u64)> {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(NodeEvent::PeerBanned { score, until, .. }) => return Some((score, until)),
                Err(broadcast::error::RecvError::Closed) => return None,
                _ => {}
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// Whether `node` has a connection to `peer` now.
async fn is_connected(node: &RunningNode, peer: &libp2p::PeerId) -> bool {
    node.network()
        .connected_peers()
        .await
        .unwrap()
        .contains(peer)
}

fn victim_config(
    chain: &std::sync::Arc<op_gossip::chain::ChainSpec>,
    dir: &std::path::Path,
    ban: Duration,
) -> NodeConfig {
    let mut cfg = config(chain, 0, dir, false);
    cfg.ban = BanConfig {
        duration: ban,
        ..BanConfig::default()
    };
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_block_gets_its_forwarder_banned_across_restarts_until_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let victim = start(victim_config(&chain, dir.path(), Duration::from_secs(6)))
        .await
        .unwrap();
    let adversary = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    let mut events = victim.subscribe();
    connect(&adversary, &victim).await;
    wait_for_peers(&[&victim, &adversary], 1).await;

    publish_invalid(&adversary, 1).await;
    let (score, until) = banned_event(&mut events).await.expect("banned");
    assert!(score < -100.0, "one invalid block is enough: {score}");
    let peer = adversary.peer_id();
    assert!(
        victim
            .bans()
            .banned_until(&peer, op_gossip::clock::unix_now())
            .is_some()
    );
    // One invalid block, possibly decayed by a slot (×0.926) since.
    assert!(victim.app_counters(&peer).await.invalid_blocks > 0.9);
    // Disconnected, and a new dial is refused by the gate.
    assert!(
        wait_until(WAIT, async || !is_connected(&victim, &peer).await).await,
        "the banned peer is still connected"
    );
    redial_refused(&adversary, &victim).await;
    assert!(!is_connected(&victim, &peer).await);
    assert!(victim.gate_stats().accepts_refused.load(Ordering::Relaxed) >= 1);

    // The ban survives a restart.
    let addr_dir = dir.path().to_owned();
    victim.shutdown().await;
    let victim = start(victim_config(&chain, &addr_dir, Duration::from_secs(6)))
        .await
        .unwrap();
    assert_eq!(
        victim
            .bans()
            .banned_until(&peer, op_gossip::clock::unix_now()),
        Some(until),
        "restored from the store"
    );
    redial_refused(&adversary, &victim).await;
    assert!(!is_connected(&victim, &peer).await);

    // Once the ban expires (at `until`, a wall-clock second) the peer may connect again.
    let ban_secs = Duration::from_secs(until.saturating_sub(op_gossip::clock::unix_now()));
    assert!(
        wait_until(ban_secs + WAIT, async || {
            victim
                .bans()
                .banned_until(&peer, op_gossip::clock::unix_now())
                .is_none()
        })
        .await,
        "the ban never expired"
    );
    connect(&adversary, &victim).await;
    // Connected is what is checked (no gossip follows, and the adversary may still hold a
    // prune backoff for the victim, which keeps it out of the mesh).
    wait_for_connections(&[&victim], 1).await;
    assert!(is_connected(&victim, &peer).await);
    assert!(
        victim
            .bans()
            .banned_until(&peer, op_gossip::clock::unix_now())
            .is_none()
    );
    // Its penalty (restored from the scorebook at the restart) was cleared with the ban, so the
    // monitor does not ban it again at once.
    assert_eq!(victim.app_counters(&peer).await.invalid_blocks, 0.0);
    // Time passing is the point: the monitor (one peer a second) looks at it again and must
    // leave it connected.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(is_connected(&victim, &peer).await);
    adversary.shutdown().await;
    victim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_peer_is_never_banned() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let adversary = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    let mut cfg = victim_config(&chain, dir.path(), Duration::from_secs(3600));
    cfg.static_peers = vec![adversary.dial_address().await.unwrap()];
    let victim = start(cfg).await.unwrap();
    wait_for_peers(&[&victim, &adversary], 1).await;
    publish_invalid(&adversary, 1).await;
    // Its score sinks below the threshold, yet the monitor (one peer a second) leaves it alone.
    let peer = adversary.peer_id();
    assert!(
        wait_until(WAIT, async || {
            victim.app_counters(&peer).await.score() <= -100.0
        })
        .await,
        "the invalid block was not judged"
    );
    // Time passing is the point: three monitor rounds in which it must not be banned.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(victim.bans().list(op_gossip::clock::unix_now()).is_empty());
    assert!(is_connected(&victim, &peer).await);
    adversary.shutdown().await;
    victim.shutdown().await;
}

/// Waits until `events` reported `n` REJECTs; returns their reasons.
async fn rejects(events: &mut broadcast::Receiver<NodeEvent>, n: usize) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    tokio::time::timeout(WAIT, async {
        while reasons.len() < n {
            match events.recv().await {
                Ok(NodeEvent::Validated {
                    verdict: op_gossip::validate::Verdict::Reject,
                    reason,
                    ..
                }) => reasons.push(reason.unwrap_or("")),
                Ok(NodeEvent::PeerBanned { peer, score, .. }) => {
                    panic!("{peer} banned (score {score})")
                }
                Err(broadcast::error::RecvError::Closed) => panic!("node stopped"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {reasons:?}"));
    reasons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequencer_stall_or_a_signer_rotation_seen_through_strict_followers_bans_nobody() {
    // S (sequencer) ─ F (honest forwarder, default 60 s window) ─ T1 (10 s window)
    //                                                          └─ T2 (knows only a new signer)
    // S publishes blocks 24 s late (a stall): F accepts and forwards them; T1 REJECTs them as
    // too old and T2 as signed by a signer it does not accept. Neither proves anything about F:
    // it must keep a zero application score, stay connected and never be banned.
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let s = start(config(&chain, 0, dir.path(), false)).await.unwrap();
    let f = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    let mut strict = config(&chain, 2, dir.path(), false);
    strict.validator.past_window_secs = 10;
    let t1 = start(strict).await.unwrap();
    let mut rotated = (*chain).clone();
    rotated.unsafe_block_signers = vec![other_signer().address()];
    let t2 = start(config(&std::sync::Arc::new(rotated), 3, dir.path(), false))
        .await
        .unwrap();
    connect(&f, &s).await;
    connect(&t1, &f).await;
    connect(&t2, &f).await;
    wait_for_peers(&[&s, &t1, &t2], 1).await;
    wait_for_peers(&[&f], 3).await;
    let (mut t1_events, mut t2_events) = (t1.subscribe(), t2.subscribe());

    const BLOCKS: u64 = 3;
    let late = op_gossip::clock::unix_now() - 24;
    for n in 1..=BLOCKS {
        let env = block(&chain, n, late + 2 * n, 500);
        let data = signed(&chain, BlockVersion::V4, &env, &dev_signer());
        s.network().publish(BlockVersion::V4, data).await.unwrap();
    }
    assert_eq!(
        rejects(&mut t1_events, BLOCKS as usize).await,
        ["timestamp_too_old"; BLOCKS as usize]
    );
    assert_eq!(
        rejects(&mut t2_events, BLOCKS as usize).await,
        ["unknown_signer"; BLOCKS as usize]
    );
    // The ban monitor checks one connected peer a second: three seconds cover F on both (time
    // passing is the point: nothing may happen in them).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let forwarder = f.peer_id();
    for t in [&t1, &t2] {
        assert_eq!(t.app_counters(&forwarder).await.score(), 0.0);
        assert!(t.bans().list(op_gossip::clock::unix_now()).is_empty());
        assert!(is_connected(t, &forwarder).await);
    }
    for node in [s, f, t1, t2] {
        node.shutdown().await;
    }
}
