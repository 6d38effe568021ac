//! The connection manager between real nodes on 127.0.0.1: above `--p2p.peers.hi` it closes the
//! unprotected peers past their grace period down to `--p2p.peers.lo`, keeping static and
//! operator-protected peers, and the admin RPC shows `too_many_peers` for the ones it closed.

mod common;

use std::time::Duration;

use common::http::call;
use common::net::*;
use common::wait::wait_until;
use op_gossip::node::start;
use op_gossip::p2p::ConnectionLimits;
use op_gossip::rpc::RpcConfig;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trims_to_the_low_water_mark_and_keeps_static_and_protected_peers() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut peers = Vec::new();
    for i in 1..=5 {
        peers.push(start(config(&chain, i, dir.path(), false)).await.unwrap());
    }
    let mut cfg = config(&chain, 0, dir.path(), false);
    cfg.limits = ConnectionLimits {
        lo: 2,
        hi: 3,
        // A grace longer than the test: only peers connected before are trimmed (below).
        grace: Duration::from_secs(3),
    };
    cfg.rpc = Some(RpcConfig {
        addr: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..RpcConfig::default()
    });
    // Peer 1 is static.
    cfg.static_peers = vec![peers[0].dial_address().await.unwrap()];
    let hub = start(cfg).await.unwrap();
    let at = hub.rpc_addr().unwrap();
    // Peer 2 is protected by the operator.
    call(
        at,
        "opp2p_protectPeer",
        json!([peers[1].peer_id().to_string()]),
    )
    .await;
    for p in &peers[1..] {
        connect(p, &hub).await;
    }
    // Connections are what is managed (no gossip follows).
    wait_for_connections(&[&hub], 5).await;

    // The manager checks every 10 s; the peers are past their 3 s grace by then.
    let connected = async || hub.network().connected_peers().await.unwrap().len();
    assert!(
        wait_until(Duration::from_secs(30), async || connected().await <= 2).await,
        "never trimmed: {} peers",
        connected().await
    );
    let mut connected = hub.network().connected_peers().await.unwrap();
    connected.sort();
    let mut kept = vec![peers[0].peer_id(), peers[1].peer_id()];
    kept.sort();
    assert_eq!(connected, kept, "the static and the protected peer stay");
    let dump = call(at, "opp2p_peers", json!([false])).await;
    for p in &peers[2..] {
        let info = &dump["peers"][p.peer_id().to_string()];
        assert_eq!(info["connectedness"], json!(0), "{info}");
        assert_eq!(info["disconnectReason"], json!("too_many_peers"), "{info}");
    }
    for p in &peers[..2] {
        let info = &dump["peers"][p.peer_id().to_string()];
        assert_eq!(info["protected"], json!(true), "{info}");
    }
    hub.shutdown().await;
    for p in peers {
        p.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_within_their_grace_period_are_not_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut peers = Vec::new();
    for i in 1..=3 {
        peers.push(start(config(&chain, i, dir.path(), false)).await.unwrap());
    }
    let mut cfg = config(&chain, 0, dir.path(), false);
    cfg.limits = ConnectionLimits {
        lo: 1,
        hi: 1,
        grace: Duration::from_secs(60),
    };
    let hub = start(cfg).await.unwrap();
    for p in &peers {
        connect(p, &hub).await;
    }
    wait_for_connections(&[&hub], 3).await;
    // Past one check of the manager (every 10 s): all three are still within their grace. Time
    // passing is the point: the check must leave them.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(hub.network().connected_peers().await.unwrap().len(), 3);
    hub.shutdown().await;
    for p in peers {
        p.shutdown().await;
    }
}
