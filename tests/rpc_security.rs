//! The admin RPC cannot be turned against its operator, over real HTTP on 127.0.0.1: the methods
//! that sign, store or ban exist only with `--rpc.enable-admin`; a `Host` not on `--rpc.vhosts`
//! (a web page reaching loopback by DNS rebinding) gets 403; and `opp2p_connectPeer` tells its
//! caller nothing about the address it failed to reach.

mod common;

use std::net::SocketAddr;

use common::http::{call, request_as, rpc};
use common::net::*;
use common::*;
use libp2p::PeerId;
use op_gossip::node::{RunningNode, start};
use op_gossip::rpc::{ADMIN_METHODS, CONNECT_FAILED, RpcConfig, host_filter};
use op_gossip::wire::BlockVersion;
use serde_json::{Value, json};

fn with_rpc(
    chain: &std::sync::Arc<op_gossip::chain::ChainSpec>,
    i: u8,
    dir: &std::path::Path,
    rpc: RpcConfig,
) -> op_gossip::node::NodeConfig {
    let mut cfg = config(chain, i, dir, true);
    cfg.rpc = Some(RpcConfig {
        addr: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..rpc
    });
    cfg
}

/// op-node's `ExecutionPayloadEnvelope` JSON of two valid V4 blocks on the node's head, the
/// second on the first.
fn next_blocks(node: &RunningNode, chain: &op_gossip::chain::ChainSpec) -> [Value; 2] {
    let head = node.head().unwrap();
    let now = op_gossip::clock::unix_now();
    let mut first = block(chain, head.number + 1, now, 100);
    first.payload.parent_hash = head.hash;
    let first = rehash(first);
    let mut second = block(chain, head.number + 2, now, 200);
    second.payload.parent_hash = first.payload.block_hash;
    let second = rehash(second);
    [first, second].map(|env| {
        let mut params =
            op_gossip::engine::json::new_payload_params(BlockVersion::V4, &env).unwrap();
        json!({"executionPayload": params[0].take(), "parentBeaconBlockRoot": env.parent_beacon_block_root})
    })
}

/// Every admin method with valid parameters, in [`ADMIN_METHODS`]' order: the first block is
/// posted, the second published (signed with the node's sequencer key).
fn admin_calls(
    node: &RunningNode,
    chain: &op_gossip::chain::ChainSpec,
) -> Vec<(&'static str, Value)> {
    let peer = PeerId::random().to_string();
    let [first, second] = next_blocks(node, chain);
    let calls = vec![
        ("admin_postUnsafePayload", json!([first])),
        ("opgossip_publishPayload", json!([second])),
        ("opgossip_banPeer", json!([peer, 60])),
        ("opgossip_unbanPeer", json!([peer])),
        ("opgossip_banAddr", json!(["10.9.9.9", 30])),
        ("opgossip_unbanAddr", json!(["10.9.9.9"])),
    ];
    assert_eq!(
        calls.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
        ADMIN_METHODS,
        "every admin method is tried"
    );
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_methods_exist_only_with_enable_admin() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    // Both are sequencers (they hold the key opgossip_publishPayload signs with).
    let closed = start(with_rpc(&chain, 0, dir.path(), RpcConfig::default()))
        .await
        .unwrap();
    let open = start(with_rpc(
        &chain,
        1,
        dir.path(),
        RpcConfig {
            enable_admin: true,
            ..RpcConfig::default()
        },
    ))
    .await
    .unwrap();

    // Without the flag: not registered, JSON-RPC "method not found".
    let at = closed.rpc_addr().unwrap();
    let before = closed.head();
    for (method, params) in admin_calls(&closed, &chain) {
        let response = rpc(at, method, params).await;
        assert_eq!(
            response["error"]["code"],
            json!(-32601),
            "{method}: {response}"
        );
    }
    // Nothing was stored, published or banned.
    assert_eq!(closed.head(), before);
    assert_eq!(
        call(at, "opp2p_peers", json!([false])).await["tempBannedIPs"],
        json!([])
    );
    // op-node's opp2p_* are there either way.
    call(at, "opp2p_self", json!([])).await;
    let peer = PeerId::random().to_string();
    call(at, "opp2p_blockPeer", json!([peer])).await;
    assert_eq!(
        call(at, "opp2p_listBlockedPeers", json!([])).await,
        json!([peer])
    );
    call(at, "opp2p_unblockPeer", json!([peer])).await;

    // With it: each one works.
    let at = open.rpc_addr().unwrap();
    let base = open.head().unwrap().number;
    for (method, params) in admin_calls(&open, &chain) {
        let result = call(at, method, params).await;
        match method {
            "opgossip_publishPayload" => assert!(result.as_str().unwrap().starts_with("0x")),
            "opgossip_banPeer" | "opgossip_banAddr" => assert!(result.as_u64().is_some()),
            _ => assert_eq!(result, Value::Null, "{method}"),
        }
    }
    // Both blocks were stored: the posted one, and the published one on top.
    let head = open
        .wait_for_head(base + 2, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(head.number, base + 2);
    closed.shutdown().await;
    open.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_host_names_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "opp2p_self", "params": []}).to_string();
    let status = |at: SocketAddr, host: Option<String>| {
        let body = body.clone();
        async move {
            let response = request_as(at, host.as_deref(), "POST", "/", &body).await;
            assert!(
                !response.headers.contains_key("access-control-allow-origin"),
                "no CORS"
            );
            response.status
        }
    };

    // Default: localhost, 127.0.0.1 and [::1], with or without a port.
    let node = start(with_rpc(&chain, 0, dir.path(), RpcConfig::default()))
        .await
        .unwrap();
    let at = node.rpc_addr().unwrap();
    let port = at.port();
    for host in [
        "localhost".to_owned(),
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.0.0.1:{port}"),
        "[::1]".to_owned(),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(status(at, Some(host.clone())).await, 200, "{host}");
    }
    // A page under its own name that resolves to 127.0.0.1 (DNS rebinding) is refused.
    for host in [
        "evil.example".to_owned(),
        format!("evil.example:{port}"),
        "localhost.evil.example".to_owned(),
        format!("127.0.0.1.evil.example:{port}"),
        "127.0.0.2".to_owned(),
    ] {
        assert_eq!(status(at, Some(host.clone())).await, 403, "{host}");
    }
    // No Host at all: refused too (400).
    assert_eq!(status(at, None).await, 400);
    node.shutdown().await;

    // A list of names, one with a port; and `*`.
    let node = start(with_rpc(
        &chain,
        1,
        dir.path(),
        RpcConfig {
            vhosts: vec!["rpc.example.org".into(), "Node.Example.org:8545".into()],
            ..RpcConfig::default()
        },
    ))
    .await
    .unwrap();
    let at = node.rpc_addr().unwrap();
    for (host, expected) in [
        ("rpc.example.org:1234", 200),
        ("rpc.example.org", 200),
        ("node.example.org:8545", 200),
        ("node.example.org:8546", 403),
        ("localhost", 403),
        ("evil.example", 403),
    ] {
        assert_eq!(status(at, Some(host.into())).await, expected, "{host}");
    }
    node.shutdown().await;
    let node = start(with_rpc(
        &chain,
        2,
        dir.path(),
        RpcConfig {
            vhosts: vec!["*".into()],
            ..RpcConfig::default()
        },
    ))
    .await
    .unwrap();
    assert_eq!(
        status(node.rpc_addr().unwrap(), Some("evil.example".into())).await,
        200
    );
    node.shutdown().await;

    // A list that names nothing, or not a host, is a start-up error, never "allow all".
    for bad in [vec![], vec![" ".to_owned()], vec!["a b".to_owned()]] {
        assert!(host_filter(&bad).is_err(), "{bad:?}");
    }
    assert!(
        host_filter(&["::1".to_owned()]).is_ok(),
        "bare IPv6 gets brackets"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_peer_failures_all_look_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let a = start(with_rpc(&chain, 0, dir.path(), RpcConfig::default()))
        .await
        .unwrap();
    let b = start(config(&chain, 1, dir.path(), false)).await.unwrap();
    let at = a.rpc_addr().unwrap();
    let someone = || PeerId::random();

    // A closed port (connection refused).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A port that accepts and never says a word (libp2p's upgrade times out).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    // b's real address under another peer id.
    let b_tcp = b
        .dial_address()
        .await
        .unwrap()
        .to_string()
        .split("/p2p/")
        .next()
        .unwrap()
        .to_owned();
    let cases = [
        (
            "refused",
            format!("/ip4/127.0.0.1/tcp/{closed}/p2p/{}", someone()),
        ),
        (
            "silent",
            format!("/ip4/127.0.0.1/tcp/{silent_port}/p2p/{}", someone()),
        ),
        // An HTTP server: the admin RPC itself.
        (
            "not libp2p",
            format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", at.port(), someone()),
        ),
        ("wrong peer id", format!("{b_tcp}/p2p/{}", someone())),
    ];
    let answers = futures::future::join_all(
        cases
            .iter()
            .map(|(_, addr)| rpc(at, "opp2p_connectPeer", json!([addr]))),
    )
    .await;
    for ((case, _), answer) in cases.iter().zip(&answers) {
        assert_eq!(
            answer["error"],
            json!({"code": -32000, "message": CONNECT_FAILED}),
            "{case}: {answer}"
        );
    }
    // Bad input is still named as such (it says nothing about the network).
    let answer = rpc(at, "opp2p_connectPeer", json!(["/ip4/127.0.0.1/tcp/1"])).await;
    assert_eq!(answer["error"]["code"], json!(-32602), "{answer}");
    hold.abort();
    a.shutdown().await;
    b.shutdown().await;
}
