//! Gap filling between real nodes on 127.0.0.1: a late joiner catches up from several peers, a
//! restarted follower fills what it missed, holes from lost gossip are filled, misbehaving peers are penalised while the client moves
//! on, and `onlyreqtostatic` keeps requests to static peers.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::fake_server::{Behaviour, FakeServer};
use common::net::*;
use common::wait::wait_until;
use libp2p::PeerId;
use op_gossip::node::{BlockSource, NodeConfig, NodeEvent, RunningNode, start};
use op_gossip::p2p::reqresp::client::RequestTimeouts;
use op_gossip::p2p::reqresp::limits::Rate;
use op_gossip::p2p::reqresp::server::ServerConfig;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(90);

/// Rates high enough that a test moving hundreds of blocks takes seconds (the benchmark
/// measures the default limits).
fn fast(mut config: NodeConfig) -> NodeConfig {
    let global = Rate {
        per_second: 200,
        burst: 200,
    };
    let per_peer = Rate {
        per_second: 50,
        burst: 50,
    };
    config.reqresp_server = Some(ServerConfig {
        global,
        per_peer,
        ..ServerConfig::default()
    });
    if let Some(sync) = config.sync.as_mut() {
        sync.global = global;
        sync.per_peer = per_peer;
    }
    config
}

/// Counts, per peer, the blocks a node stored from req/resp, until its head reaches `head`.
async fn fetched_by_peer(
    events: &mut broadcast::Receiver<NodeEvent>,
    node: &RunningNode,
    head: u64,
) -> HashMap<PeerId, u64> {
    let mut by_peer = HashMap::new();
    let mut count = |event: &NodeEvent| {
        if let NodeEvent::Stored {
            source: BlockSource::ReqResp(p),
            ..
        } = event
        {
            *by_peer.entry(*p).or_insert(0) += 1;
        }
    };
    let _ = tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) => count(&event),
                Err(broadcast::error::RecvError::Closed) => return,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    panic!("the test fell {n} events behind the node")
                }
            }
            if node.head().is_some_and(|h| h.number >= head) {
                // The store writer sends a batch's Stored events before it moves the head, so
                // they are all in the channel now; a loaded machine leaves the reader behind
                // (CI counted 483 of 500 when this returned at once).
                loop {
                    match events.try_recv() {
                        Ok(event) => count(&event),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            panic!("the test fell {n} events behind the node")
                        }
                        Err(_) => return,
                    }
                }
            }
        }
    })
    .await;
    by_peer
}

/// Every block from 1 to the head is stored and links to the one below.
fn assert_contiguous(node: &RunningNode) {
    let head = node.head().unwrap();
    let mut parent = node.store().canonical_block(1).unwrap().unwrap();
    assert_eq!(parent.envelope.payload.block_number, 1);
    for n in 2..=head.number {
        let block = node
            .store()
            .canonical_block(n)
            .unwrap()
            .unwrap_or_else(|| panic!("block {n} missing below head {}", head.number));
        assert_eq!(
            block.envelope.payload.parent_hash, parent.envelope.payload.block_hash,
            "block {n} does not link"
        );
        parent = block;
    }
    assert_eq!(parent.envelope.payload.block_hash, head.hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_catches_up_500_blocks_from_3_peers() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq = start(fast(config(&chain, 0, dir.path(), true)))
        .await
        .unwrap();
    let a = start(fast(config(&chain, 1, dir.path(), false)))
        .await
        .unwrap();
    let b = start(fast(config(&chain, 2, dir.path(), false)))
        .await
        .unwrap();
    connect(&a, &seq).await;
    connect(&b, &seq).await;
    connect(&b, &a).await;
    wait_for_peers(&[&seq, &a, &b], 2).await;
    seq.produce(500, Duration::from_millis(2), 0).await.unwrap();
    for n in [&a, &b] {
        assert_eq!(n.wait_for_head(500, WAIT).await.unwrap().number, 500);
    }

    // The late joiner knows none of it; it hears of the chain from the next gossip blocks.
    let late = start(fast(config(&chain, 3, dir.path(), false)))
        .await
        .unwrap();
    let mut events = late.subscribe();
    for peer in [&seq, &a, &b] {
        connect(&late, peer).await;
    }
    wait_for_peers(&[&late], 3).await;
    seq.produce(5, Duration::from_millis(100), 0).await.unwrap();
    let by_peer = fetched_by_peer(&mut events, &late, 505).await;
    assert_eq!(late.head(), seq.head(), "caught up with the sequencer");
    assert_contiguous(&late);
    let fetched: u64 = by_peer.values().sum();
    // Gossipsub's message cache may hand a joining peer the newest block or two; the rest of
    // the 500 came by req/resp.
    assert!(fetched >= 495, "fetched {fetched} blocks: {by_peer:?}");
    let expected: HashSet<PeerId> = [seq.peer_id(), a.peer_id(), b.peer_id()].into();
    assert_eq!(
        by_peer.keys().copied().collect::<HashSet<_>>(),
        expected,
        "requests spread over the three peers: {by_peer:?}"
    );
    let stats = late.sync_stats().unwrap();
    assert_eq!(stats.snapshot().rejected, 0);
    for n in [late, b, a, seq] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holes_from_lost_gossip_are_filled_and_the_head_stays_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq = start(fast(config(&chain, 0, dir.path(), true)))
        .await
        .unwrap();
    let mut followers = Vec::new();
    for i in 1..=3 {
        let mut cfg = fast(config(&chain, i, dir.path(), false));
        cfg.lose_gossip_fraction = 0.2;
        let node = start(cfg).await.unwrap();
        connect(&node, &seq).await;
        followers.push(node);
    }
    connect(&followers[1], &followers[0]).await;
    connect(&followers[2], &followers[1]).await;
    let refs: Vec<&RunningNode> = followers.iter().collect();
    wait_for_peers(&refs, 2).await;
    seq.produce(150, Duration::from_millis(20), 0)
        .await
        .unwrap();

    for node in &followers {
        // Settled: nothing stored above the head, so every hole below it was filled.
        let settled = wait_until(WAIT, async || {
            let view = node.store().holes(10_000).unwrap();
            view.holes.is_empty()
                && view.unlinked_next.is_none()
                && node.head().is_some_and(|h| h.number >= 140)
        })
        .await;
        assert!(
            settled,
            "holes left: {:?}",
            node.store().holes(10_000).unwrap()
        );
        assert_contiguous(node);
        let fetched = node.sync_stats().unwrap().snapshot().fetched;
        assert!(
            fetched > 0,
            "a fifth of the gossip was lost, so blocks were fetched"
        );
    }
    for n in followers {
        n.shutdown().await;
    }
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_fills_what_it_missed_while_down() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq = start(fast(config(&chain, 0, dir.path(), true)))
        .await
        .unwrap();
    let follower = start(fast(config(&chain, 1, dir.path(), false)))
        .await
        .unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;
    seq.produce(20, Duration::from_millis(10), 0).await.unwrap();
    assert_eq!(follower.wait_for_head(20, WAIT).await.unwrap().number, 20);
    follower.shutdown().await;

    seq.produce(80, Duration::from_millis(5), 0).await.unwrap();
    let follower = start(fast(config(&chain, 1, dir.path(), false)))
        .await
        .unwrap();
    assert_eq!(
        follower.head().unwrap().number,
        20,
        "resumes from its store"
    );
    connect(&follower, &seq).await;
    wait_for_peers(&[&follower, &seq], 1).await;
    seq.produce(1, Duration::from_millis(10), 0).await.unwrap();
    assert_eq!(follower.wait_for_head(101, WAIT).await, seq.head());
    assert_contiguous(&follower);
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_peers_are_penalised_and_the_client_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq = start(config(&chain, 0, dir.path(), true)).await.unwrap();
    seq.produce(30, Duration::from_millis(5), 1000)
        .await
        .unwrap();
    seq.wait_for_head(30, WAIT).await.unwrap();

    let bad_kinds = [
        Behaviour::WrongNumber,
        Behaviour::WrongHash,
        Behaviour::BadVersion,
        Behaviour::Oversize,
        Behaviour::Truncated,
        Behaviour::Silent,
        Behaviour::NoProtocol,
        Behaviour::RateLimited,
    ];
    let mut fakes = Vec::new();
    for (i, kind) in bad_kinds.iter().enumerate() {
        fakes.push((
            *kind,
            FakeServer::start(10 + i as u8, chain.chain_id, seq.store().clone(), *kind).await,
        ));
    }
    let spec_only = FakeServer::start(
        30,
        chain.chain_id,
        seq.store().clone(),
        Behaviour::HonestSpecFormOnly,
    )
    .await;

    let mut cfg = config(&chain, 1, dir.path(), false);
    cfg.rpc = Some(op_gossip::rpc::RpcConfig {
        addr: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..op_gossip::rpc::RpcConfig::default()
    });
    if let Some(sync) = cfg.sync.as_mut() {
        // A silent peer costs one read deadline; keep it short so the test is quick.
        sync.timeouts = RequestTimeouts {
            read: Duration::from_secs(2),
            ..RequestTimeouts::default()
        };
    }
    let follower = start(cfg).await.unwrap();
    for (_, fake) in &fakes {
        follower.network().dial(fake.addr.clone()).await.unwrap();
    }
    follower
        .network()
        .dial(spec_only.addr.clone())
        .await
        .unwrap();
    connect(&follower, &seq).await;
    // The fakes speak only req/resp: connected is all they get; the sequencer gossips.
    wait_for_connections(&[&follower], fakes.len() + 2).await;
    wait_for_mesh(&[&follower, &seq], 1).await;
    // Every peer has a sync worker before the gap appears.
    let sync_stats = follower.sync_stats().unwrap();
    assert!(
        wait_until(WAIT, async || {
            sync_stats.workers() >= fakes.len() as u64 + 2
        })
        .await,
        "{} sync workers",
        sync_stats.workers()
    );
    seq.produce(1, Duration::from_millis(10), 1000)
        .await
        .unwrap();

    let head = follower.wait_for_head(31, WAIT).await.unwrap();
    assert_eq!(Some(head), seq.head(), "filled despite the bad peers");
    assert_contiguous(&follower);
    for (kind, fake) in &fakes {
        let counters = follower.app_counters(&fake.peer_id).await;
        // At least one error, possibly decayed since (×0.926 per 2 s slot: the silent peer's
        // error comes after a 2 s read deadline, so on a slow machine a slot may pass).
        assert!(
            counters.error_responses > 0.0 && counters.score() < 0.0,
            "{kind:?} must be penalised: {counters:?}"
        );
    }
    assert!(
        follower.app_counters(&spec_only.peer_id).await.score() > 0.0,
        "a peer serving only the spec's protocol id is asked through it and rewarded"
    );
    assert!(follower.app_counters(&seq.peer_id()).await.score() > 0.0);

    // The admin RPC tells the operator why each peer's score is down.
    let dump = common::http::call(
        follower.rpc_addr().unwrap(),
        "opp2p_peers",
        serde_json::json!([true]),
    )
    .await;
    let reasons =
        |peer: &libp2p::PeerId| dump["peers"][peer.to_string()]["downscoreReasons"].clone();
    for (kind, fake) in &fakes {
        let expected = match kind {
            Behaviour::RateLimited => "rate_limited",
            _ => "rpc_error_response",
        };
        assert_eq!(
            reasons(&fake.peer_id),
            serde_json::json!([expected]),
            "{kind:?}"
        );
    }
    assert_eq!(reasons(&spec_only.peer_id), serde_json::json!([]));
    assert_eq!(reasons(&seq.peer_id()), serde_json::json!([]));
    follower.shutdown().await;
    seq.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_static_peers_are_asked_with_onlyreqtostatic() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let seq = start(fast(config(&chain, 0, dir.path(), true)))
        .await
        .unwrap();
    let other = start(fast(config(&chain, 1, dir.path(), false)))
        .await
        .unwrap();
    connect(&other, &seq).await;
    wait_for_peers(&[&seq, &other], 1).await;
    seq.produce(40, Duration::from_millis(5), 0).await.unwrap();
    other.wait_for_head(40, WAIT).await.unwrap();

    let mut cfg = fast(config(&chain, 2, dir.path(), false));
    cfg.static_peers = vec![seq.dial_address().await.unwrap()];
    cfg.sync.as_mut().unwrap().only_static = true;
    let late = start(cfg).await.unwrap();
    let mut events = late.subscribe();
    connect(&late, &other).await;
    wait_for_peers(&[&late], 2).await;
    seq.produce(2, Duration::from_millis(50), 0).await.unwrap();
    let by_peer = fetched_by_peer(&mut events, &late, 42).await;
    // The sequencer stores its own block 42 on its writer thread, which may come after the late
    // node has it from gossip: wait for it rather than read its head at once.
    assert_eq!(late.head(), seq.wait_for_head(42, WAIT).await);
    assert_eq!(
        by_peer.keys().copied().collect::<Vec<_>>(),
        vec![seq.peer_id()],
        "only the static peer was asked: {by_peer:?}"
    );
    for n in [late, other, seq] {
        n.shutdown().await;
    }
}
