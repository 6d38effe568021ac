//! The admin JSON-RPC over real HTTP on 127.0.0.1: every `opp2p_*` method with op-node's JSON
//! shapes (integers for connectedness and direction, nanoseconds for latency, Go's `net.IPNet`),
//! the extension fields with their reasons (a banned invalid-signature forwarder, a peer serving
//! broken payload_by_number answers), blocking and banning taking effect on open connections, and
//! the lists surviving a restart.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{call, rpc};
use common::net::*;
use common::wait::wait_for;
use common::*;
use libp2p::PeerId;
use op_gossip::node::{NodeConfig, RunningNode, start};
use op_gossip::rpc::RpcConfig;
use op_gossip::wire::BlockVersion;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn rpc_config(
    chain: &std::sync::Arc<op_gossip::chain::ChainSpec>,
    i: u8,
    dir: &std::path::Path,
) -> NodeConfig {
    let mut cfg = config(chain, i, dir, false);
    cfg.rpc = Some(RpcConfig {
        addr: "127.0.0.1".parse().unwrap(),
        port: 0,
        // The tests below call the admin methods too.
        enable_admin: true,
        ..RpcConfig::default()
    });
    cfg
}

fn addr_of(node: &RunningNode) -> SocketAddr {
    node.rpc_addr().expect("the admin RPC is served")
}

/// Polls `opp2p_peers(false)` until `check` holds for `peer`'s entry (or the wait runs out).
async fn wait_peer(rpc_addr: SocketAddr, peer: &PeerId, check: impl Fn(&Value) -> bool) -> Value {
    let info = async || {
        call(rpc_addr, "opp2p_peers", json!([false])).await["peers"][peer.to_string()].clone()
    };
    let matched = wait_for(WAIT, async || Some(info().await).filter(&check)).await;
    match matched {
        Some(info) => info,
        None => panic!("peer {peer} never matched: {}", info().await),
    }
}

fn is_connected(info: &Value) -> bool {
    info["connectedness"] == json!(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_answers_in_op_node_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let a = start(rpc_config(&chain, 0, dir.path())).await.unwrap();
    let b = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    let c = start(config(&chain, 2, dir.path(), false)).await.unwrap();
    connect(&b, &a).await;
    connect(&c, &a).await;
    wait_for_peers(&[&a], 2).await;
    let at = addr_of(&a);
    let (b_id, c_id) = (b.peer_id(), c.peer_id());

    // opp2p_self.
    let me = call(at, "opp2p_self", json!([])).await;
    assert_eq!(me["peerID"], json!(a.peer_id().to_string()));
    let node_id = me["nodeID"].as_str().unwrap();
    assert_eq!(node_id.len(), 64);
    assert!(node_id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(me["gossipBlocks"], json!(true));
    assert_eq!(me["latency"], json!(0));
    assert!(me["userAgent"].as_str().unwrap().starts_with("op-gossip/"));
    let addrs = me["addresses"].as_array().unwrap();
    assert!(addrs.iter().all(|a| {
        a.as_str()
            .unwrap()
            .ends_with(&format!("/p2p/{}", me["peerID"].as_str().unwrap()))
    }));
    assert!(
        me["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().contains("payload_by_number"))
    );

    // opp2p_peers(true): both inbound peers, integers, identify data, ping latency in ns.
    let info = wait_peer(at, &b_id, |i| {
        i["latency"].as_i64().is_some_and(|l| l > 0) && i["userAgent"] != json!("")
    })
    .await;
    let dump = call(at, "opp2p_peers", json!([true])).await;
    assert_eq!(dump["totalConnected"], json!(2));
    assert_eq!(dump["peers"].as_object().unwrap().len(), 2);
    for key in [
        "bannedPeers",
        "bannedIPS",
        "bannedSubnets",
        "tempBannedPeers",
        "tempBannedIPs",
    ] {
        assert_eq!(dump[key], json!([]), "{key}");
    }
    assert_eq!(info["connectedness"], json!(1));
    assert_eq!(info["direction"], json!(1), "b dialled a: inbound");
    assert!(info["latency"].is_i64());
    assert!(
        info["latency"].as_i64().unwrap() < 1_000_000_000,
        "loopback ping well under 1 s in ns"
    );
    assert_eq!(info["userAgent"], info["agentVersion"]);
    assert!(
        info["agentVersion"]
            .as_str()
            .unwrap()
            .starts_with("op-gossip/")
    );
    assert_eq!(info["protocolVersion"], json!("/opstack/identify/1"));
    assert!(
        info["protocols"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.as_str().unwrap().starts_with("/meshsub/"))
    );
    assert_eq!(info["gossipBlocks"], json!(true));
    assert_eq!(info["protected"], json!(false));
    assert_eq!(info["chainID"], json!(0));
    assert_eq!(info["ENR"], json!(""));
    assert!(info["addresses"].is_array());
    assert!(
        info.get("disconnectReason").is_none(),
        "connected: no reason"
    );
    assert_eq!(info["downscoreReasons"], json!([]));
    assert!(info["score"].is_f64());
    let scores = &info["scores"];
    for key in ["total", "IPColocationFactor", "behavioralPenalty"] {
        assert!(scores["gossip"][key].is_number(), "gossip.{key}: {scores}");
    }
    for key in [
        "timeInMesh",
        "firstMessageDeliveries",
        "meshMessageDeliveries",
        "invalidMessageDeliveries",
    ] {
        assert!(scores["gossip"]["blocks"][key].is_number(), "blocks.{key}");
    }
    for key in ["validResponses", "errorResponses", "rejectedPayloads"] {
        assert!(scores["reqResp"][key].is_number(), "reqResp.{key}");
    }

    // opp2p_peerStats: every node subscribes to the chain's four block topics.
    let stats = call(at, "opp2p_peerStats", json!([])).await;
    assert_eq!(stats["connected"], json!(2));
    assert_eq!(stats["table"], json!(0));
    assert_eq!(stats["banned"], json!(0));
    assert!(stats["known"].as_u64().unwrap() >= 2);
    for key in [
        "blocksTopic",
        "blocksTopicV2",
        "blocksTopicV3",
        "blocksTopicV4",
    ] {
        assert_eq!(stats[key], json!(2), "{key}: {stats}");
    }

    // Discovery is not part of this node: op-node's error.
    let table = rpc(at, "opp2p_discoveryTable", json!([])).await;
    assert_eq!(table["error"]["message"], json!("discovery disabled"));

    // Protection.
    assert_eq!(
        call(at, "opp2p_protectPeer", json!([b_id.to_string()])).await,
        Value::Null
    );
    wait_peer(at, &b_id, |i| i["protected"] == json!(true)).await;
    call(at, "opp2p_unprotectPeer", json!([b_id.to_string()])).await;
    wait_peer(at, &b_id, |i| i["protected"] == json!(false)).await;

    // Blocking a peer closes it, shows why, and keeps it out until unblocked.
    call(at, "opp2p_blockPeer", json!([b_id.to_string()])).await;
    let info = wait_peer(at, &b_id, |i| !is_connected(i)).await;
    assert_eq!(info["connectedness"], json!(0));
    assert_eq!(info["direction"], json!(0));
    assert_eq!(info["disconnectReason"], json!("blocked"));
    assert_eq!(
        call(at, "opp2p_listBlockedPeers", json!([])).await,
        json!([b_id.to_string()])
    );
    let dump = call(at, "opp2p_peers", json!([false])).await;
    assert_eq!(dump["bannedPeers"], json!([b_id.to_string()]));
    assert_eq!(dump["totalConnected"], json!(1));
    assert_eq!(
        call(at, "opp2p_peerStats", json!([])).await["banned"],
        json!(1)
    );
    redial_refused(&b, &a).await;
    assert!(!is_connected(
        &call(at, "opp2p_peers", json!([false])).await["peers"][b_id.to_string()]
    ));
    call(at, "opp2p_unblockPeer", json!([b_id.to_string()])).await;
    assert_eq!(
        call(at, "opp2p_listBlockedPeers", json!([])).await,
        json!([])
    );

    // opp2p_connectPeer dials and returns once connected.
    let b_addr = b.dial_address().await.unwrap().to_string();
    assert_eq!(
        call(at, "opp2p_connectPeer", json!([b_addr])).await,
        Value::Null
    );
    let info = wait_peer(at, &b_id, is_connected).await;
    assert_eq!(info["direction"], json!(2), "a dialled b: outbound");
    assert!(info.get("disconnectReason").is_none());

    // Blocking an address (here loopback) closes the peers on it and refuses new ones.
    call(at, "opp2p_blockAddr", json!(["127.0.0.1"])).await;
    wait_peer(at, &c_id, |i| {
        !is_connected(i) && i["disconnectReason"] == json!("blocked")
    })
    .await;
    assert_eq!(
        call(at, "opp2p_listBlockedAddrs", json!([])).await,
        json!(["127.0.0.1"])
    );
    redial_refused(&c, &a).await;
    assert_eq!(
        call(at, "opp2p_peerStats", json!([])).await["connected"],
        json!(0)
    );
    call(at, "opp2p_unblockAddr", json!(["127.0.0.1"])).await;
    assert_eq!(
        call(at, "opp2p_listBlockedAddrs", json!([])).await,
        json!([])
    );

    // Subnets in both forms; listed in Go's form.
    call(
        at,
        "opp2p_blockSubnet",
        json!([{"IP": "10.0.0.0", "Mask": "/wAAAA=="}]),
    )
    .await;
    call(at, "opp2p_blockSubnet", json!(["192.168.1.7/16"])).await;
    let mut subnets = call(at, "opp2p_listBlockedSubnets", json!([]))
        .await
        .as_array()
        .unwrap()
        .clone();
    subnets.sort_by_key(|s| s["IP"].as_str().unwrap().to_owned());
    assert_eq!(
        subnets,
        vec![
            json!({"IP": "10.0.0.0", "Mask": "/wAAAA=="}),
            json!({"IP": "192.168.0.0", "Mask": "//8AAA=="})
        ]
    );
    call(at, "opp2p_unblockSubnet", json!(["10.0.0.0/8"])).await;
    call(
        at,
        "opp2p_unblockSubnet",
        json!([{"IP": "192.168.0.0", "Mask": "//8AAA=="}]),
    )
    .await;
    assert_eq!(
        call(at, "opp2p_listBlockedSubnets", json!([])).await,
        json!([])
    );

    // Back together, then the operator disconnects c.
    call(
        at,
        "opp2p_connectPeer",
        json!([c.dial_address().await.unwrap().to_string()]),
    )
    .await;
    wait_peer(at, &c_id, is_connected).await;
    call(at, "opp2p_disconnectPeer", json!([c_id.to_string()])).await;
    let info = wait_peer(at, &c_id, |i| !is_connected(i)).await;
    assert_eq!(info["disconnectReason"], json!("operator"));
    assert_eq!(
        info["addresses"],
        json!([]),
        "disconnectPeer clears the addresses"
    );

    // Temporary bans (extension): the peer is closed as banned and listed with its expiry.
    call(
        at,
        "opp2p_connectPeer",
        json!([b.dial_address().await.unwrap().to_string()]),
    )
    .await;
    wait_peer(at, &b_id, is_connected).await;
    let until = call(at, "opgossip_banPeer", json!([b_id.to_string(), 60])).await;
    let info = wait_peer(at, &b_id, |i| !is_connected(i)).await;
    assert_eq!(info["disconnectReason"], json!("banned"));
    let dump = call(at, "opp2p_peers", json!([false])).await;
    assert_eq!(
        dump["tempBannedPeers"],
        json!([{"id": b_id.to_string(), "until": until}])
    );
    call(at, "opgossip_unbanPeer", json!([b_id.to_string()])).await;
    let until_ip = call(at, "opgossip_banAddr", json!(["10.9.9.9", 30])).await;
    let dump = call(at, "opp2p_peers", json!([false])).await;
    assert_eq!(
        dump["tempBannedIPs"],
        json!([{"id": "10.9.9.9", "until": until_ip}])
    );
    call(at, "opgossip_unbanAddr", json!(["10.9.9.9"])).await;

    // Bad input is a JSON-RPC error, never a crash.
    for (method, params) in [
        ("opp2p_blockPeer", json!(["not-a-peer"])),
        ("opp2p_blockPeer", json!([])),
        ("opp2p_blockAddr", json!(["300.1.1.1"])),
        ("opp2p_blockSubnet", json!(["10.0.0.0/33"])),
        (
            "opp2p_blockSubnet",
            json!([{"IP": "10.0.0.0", "Mask": "AP8AAA=="}]),
        ),
        ("opp2p_connectPeer", json!(["/ip4/127.0.0.1/tcp/1"])),
        ("opp2p_peers", json!(["yes"])),
        ("opgossip_banPeer", json!([b_id.to_string(), -5])),
    ] {
        let response = rpc(at, method, params.clone()).await;
        let code = response["error"]["code"].as_i64();
        assert!(
            matches!(code, Some(-32602) | Some(-32000)),
            "{method} {params}: {response}"
        );
    }
    assert_eq!(
        rpc(at, "opp2p_nope", json!([])).await["error"]["code"],
        json!(-32601)
    );
    // The node is still serving.
    call(at, "opp2p_self", json!([])).await;

    for node in [a, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_and_protection_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let a = start(rpc_config(&chain, 0, dir.path())).await.unwrap();
    let at = addr_of(&a);
    let (blocked, protected) = (PeerId::random(), PeerId::random());
    call(at, "opp2p_blockPeer", json!([blocked.to_string()])).await;
    call(at, "opp2p_protectPeer", json!([protected.to_string()])).await;
    call(at, "opp2p_blockAddr", json!(["10.1.2.3"])).await;
    call(at, "opp2p_blockSubnet", json!(["fd00::/8"])).await;
    let until = call(at, "opgossip_banAddr", json!(["10.4.4.4", 600])).await;
    a.shutdown().await;

    let a = start(rpc_config(&chain, 0, dir.path())).await.unwrap();
    let at = addr_of(&a);
    assert_eq!(
        call(at, "opp2p_listBlockedPeers", json!([])).await,
        json!([blocked.to_string()])
    );
    assert_eq!(
        call(at, "opp2p_listBlockedAddrs", json!([])).await,
        json!(["10.1.2.3"])
    );
    assert_eq!(
        call(at, "opp2p_listBlockedSubnets", json!([])).await,
        json!([{"IP": "fd00::", "Mask": "/wAAAAAAAAAAAAAAAAAAAA=="}])
    );
    assert!(a.lists().is_protected(&protected));
    let dump = call(at, "opp2p_peers", json!([false])).await;
    assert_eq!(
        dump["tempBannedIPs"],
        json!([{"id": "10.4.4.4", "until": until}])
    );
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_invalid_signature_forwarder_shows_its_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let victim = start(rpc_config(&chain, 0, dir.path())).await.unwrap();
    let adversary = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    connect(&adversary, &victim).await;
    wait_for_peers(&[&victim, &adversary], 1).await;
    let at = addr_of(&victim);
    let peer = adversary.peer_id();

    let env = block(&chain, 1, op_gossip::clock::unix_now(), 500);
    let data = broken_signature(&chain, BlockVersion::V4, &env);
    adversary
        .network()
        .publish(BlockVersion::V4, data)
        .await
        .unwrap();

    let info = wait_peer(at, &peer, |i| !is_connected(i)).await;
    assert_eq!(info["disconnectReason"], json!("score_below_threshold"));
    assert_eq!(info["downscoreReasons"], json!(["invalid_signature"]));
    assert!(info["score"].as_f64().unwrap() < -100.0, "{info}");
    let dump = call(at, "opp2p_peers", json!([false])).await;
    assert_eq!(dump["tempBannedPeers"][0]["id"], json!(peer.to_string()));

    // The penalty is in the scorebook and survives a restart: the peer is listed with its
    // recorded score and reasons, and its application counters are back.
    victim.shutdown().await;
    let victim = start(rpc_config(&chain, 0, dir.path())).await.unwrap();
    assert!(victim.app_counters(&peer).await.invalid_signatures > 0.9);
    let info = call(addr_of(&victim), "opp2p_peers", json!([false])).await["peers"]
        [peer.to_string()]
    .clone();
    assert_eq!(info["connectedness"], json!(0), "{info}");
    assert_eq!(info["downscoreReasons"], json!(["invalid_signature"]));
    assert!(info["score"].as_f64().unwrap() < -100.0, "{info}");
    assert!(
        info["scores"]["gossip"]["total"].as_f64().unwrap() < -100.0,
        "{info}"
    );
    adversary.shutdown().await;
    victim.shutdown().await;
}

/// op-node's `ExecutionPayloadEnvelope` JSON of `env` (a V4 block).
fn envelope_json(env: &op_gossip::wire::payload::ExecutionPayloadEnvelope) -> Value {
    let mut params = op_gossip::engine::json::new_payload_params(BlockVersion::V4, env).unwrap();
    json!({"executionPayload": params[0].take(), "parentBeaconBlockRoot": env.parent_beacon_block_root})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_payloads_are_stored_and_published() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let mut seq_cfg = config(&chain, 0, dir.path(), true);
    seq_cfg.rpc = rpc_config(&chain, 0, dir.path()).rpc;
    let seq = start(seq_cfg).await.unwrap();
    let follower = start(rpc_config(&chain, 1, dir.path())).await.unwrap();
    connect(&follower, &seq).await;
    wait_for_peers(&[&seq, &follower], 1).await;

    // A block built elsewhere, on the genesis: published by the sequencer, accepted by the
    // follower (signed with the sequencer key, so it passes validation).
    let now = op_gossip::clock::unix_now();
    let genesis = seq.head().unwrap();
    let mut env = block(&chain, genesis.number + 1, now, 200);
    env.payload.parent_hash = genesis.hash;
    let env = rehash(env);
    let hash = call(
        addr_of(&seq),
        "opgossip_publishPayload",
        json!([envelope_json(&env)]),
    )
    .await;
    assert_eq!(hash, json!(env.payload.block_hash));
    let head = follower
        .wait_for_head(genesis.number + 1, WAIT)
        .await
        .unwrap();
    assert_eq!(head.hash, env.payload.block_hash);

    // admin_postUnsafePayload stores without publishing.
    let mut next = block(&chain, genesis.number + 2, now, 100);
    next.payload.parent_hash = env.payload.block_hash;
    let next = rehash(next);
    assert_eq!(
        call(
            addr_of(&follower),
            "admin_postUnsafePayload",
            json!([envelope_json(&next)])
        )
        .await,
        Value::Null
    );
    let head = follower
        .wait_for_head(genesis.number + 2, WAIT)
        .await
        .unwrap();
    assert_eq!(head.hash, next.payload.block_hash);

    // A follower has no key to publish with; a tampered payload is refused by both.
    let response = rpc(
        addr_of(&follower),
        "opgossip_publishPayload",
        json!([envelope_json(&next)]),
    )
    .await;
    assert_eq!(response["error"]["code"], json!(-32000), "{response}");
    let mut tampered = envelope_json(&next);
    tampered["executionPayload"]["gasUsed"] = json!("0x1");
    for (node, method) in [
        (&seq, "opgossip_publishPayload"),
        (&follower, "admin_postUnsafePayload"),
    ] {
        let response = rpc(addr_of(node), method, json!([tampered.clone()])).await;
        assert_eq!(
            response["error"]["code"],
            json!(-32602),
            "{method}: {response}"
        );
        assert!(
            response["error"]["message"]
                .as_str()
                .unwrap()
                .contains("block hash"),
            "{response}"
        );
    }
    let response = rpc(
        addr_of(&seq),
        "admin_postUnsafePayload",
        json!([{"executionPayload": {}}]),
    )
    .await;
    assert_eq!(response["error"]["code"], json!(-32602), "{response}");
    follower.shutdown().await;
    seq.shutdown().await;
}
