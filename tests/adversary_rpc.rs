//! The admin RPC in the adversary scenarios: for each hostile kind, a node on 127.0.0.1 with the
//! RPC served faces the in-process adversary, and `opp2p_peers` shows the adversary with the four
//! extension fields an operator needs: its `agentVersion`, a `score` below the ban threshold, the
//! `disconnectReason` of its ban, and the `downscoreReasons` that caused it (for the spammer,
//! which is rate limited rather than banned: still connected, no reason to disconnect, and
//! `rate_limited`).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::call;
use common::net::*;
use common::*;
use libp2p::PeerId;
use op_gossip::devnet::adversary::{self, AdversaryConfig, AdversaryKind};
use op_gossip::node::{RunningNode, start};
use op_gossip::rpc::RpcConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(40);

/// Polls the victim's `opp2p_peers(false)` until `peer`'s entry satisfies `done`.
async fn wait_for(rpc: SocketAddr, peer: &PeerId, done: impl Fn(&Value) -> bool) -> Value {
    let info =
        async || call(rpc, "opp2p_peers", json!([false])).await["peers"][peer.to_string()].clone();
    let matched = wait::wait_for(WAIT, async || Some(info().await).filter(&done)).await;
    match matched {
        Some(info) => info,
        None => panic!("{peer}: {}", info().await),
    }
}

/// Runs `kind` against a fresh victim (a sequencer producing blocks when the kind needs honest
/// heights to equivocate on) and returns the adversary's entry once `done` holds.
async fn scenario(kind: AdversaryKind, done: impl Fn(&Value) -> bool) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let chain = devnet_now();
    let sequencing = kind == AdversaryKind::Equivocate;
    let mut cfg = config(&chain, 0, dir.path(), sequencing);
    cfg.rpc = Some(RpcConfig {
        addr: "127.0.0.1".parse().unwrap(),
        port: 0,
        ..RpcConfig::default()
    });
    let victim: RunningNode = start(cfg).await.unwrap();
    let rpc = victim.rpc_addr().unwrap();
    let shutdown = CancellationToken::new();
    let adv = adversary::spawn(
        AdversaryConfig {
            kind,
            chain: chain.clone(),
            targets: vec![victim.dial_address().await.unwrap()],
            rate: 20,
            sequencer_key: Some(dev_signer()),
            keypair: node_key(9),
        },
        &shutdown,
    )
    .unwrap();
    if sequencing {
        assert!(
            wait::wait_until(WAIT, async || adv.joined()).await,
            "the adversary never joined"
        );
        let producer = victim.producer().unwrap();
        tokio::spawn(async move {
            let _ = producer.produce(40, Duration::from_millis(500), 0).await;
        });
    }
    let info = wait_for(rpc, &adv.peer_id(), done).await;
    assert_eq!(info["agentVersion"], json!("op-gossip-adversary"), "{info}");
    assert_eq!(info["userAgent"], info["agentVersion"]);
    adv.stop().await;
    victim.shutdown().await;
    info
}

/// Banned and gone: the reason shows as soon as the ban is decided, while the connection may
/// still be closing.
fn banned(info: &Value) -> bool {
    info["disconnectReason"] == json!("score_below_threshold") && info["connectedness"] == json!(0)
}

async fn banned_for(kind: AdversaryKind, reason: &str) {
    let info = scenario(kind, banned).await;
    assert_eq!(info["connectedness"], json!(0), "{info}");
    assert_eq!(
        info["downscoreReasons"],
        json!([reason]),
        "{kind:?}: {info}"
    );
    let score = info["score"].as_f64().unwrap();
    assert!(score < -100.0, "{kind:?}: {score}");
    assert_eq!(info["scores"]["gossip"]["total"].as_f64(), Some(score));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_sig_is_banned_for_invalid_signature() {
    banned_for(AdversaryKind::InvalidSig, "invalid_signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_block_is_banned_for_invalid_block() {
    banned_for(AdversaryKind::InvalidBlock, "invalid_block").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_is_banned_for_invalid_block() {
    banned_for(AdversaryKind::Oversize, "invalid_block").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocate_is_banned_for_invalid_block() {
    banned_for(AdversaryKind::Equivocate, "invalid_block").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spam_reqresp_is_rate_limited_not_banned() {
    let info = scenario(AdversaryKind::SpamReqResp, |i| {
        i["downscoreReasons"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("rate_limited")))
    })
    .await;
    assert_eq!(info["connectedness"], json!(1), "{info}");
    assert!(info.get("disconnectReason").is_none(), "{info}");
    assert_eq!(info["downscoreReasons"], json!(["rate_limited"]));
    // Refusals cost at most 5 points: never enough to ban (or even to stop gossip, at −10).
    let score = info["score"].as_f64().unwrap();
    assert!((-5.0..0.0).contains(&score), "{score}");
}
