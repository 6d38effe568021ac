//! Helpers for multi-node tests: nodes on 127.0.0.1 with port 0, deterministic keys, temporary
//! data directories, and waiting on events with timeouts instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use libp2p::identity::Keypair;
use op_gossip::chain::ChainSpec;
use op_gossip::node::{NodeConfig, RunningNode};
use op_gossip::p2p::GossipConfig;
use op_gossip::producer::{Schedule, SequencerConfig};
use op_gossip::validate::ValidatorConfig;

/// The devnet chain with genesis now (so wall-clock blocks are inside the timestamp window).
pub fn devnet_now() -> Arc<ChainSpec> {
    let mut chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    chain.genesis.l2_time = op_gossip::p2p::gossip_now();
    Arc::new(chain)
}

/// A deterministic node key for node `i`.
pub fn node_key(i: u8) -> Keypair {
    let mut secret = [0u8; 32];
    secret[0] = 0x42;
    secret[31] = i + 1;
    op_gossip::p2p::keys::keypair_from_hex(&alloy_primitives::hex::encode(secret), "test").unwrap()
}

pub fn config(chain: &Arc<ChainSpec>, i: u8, dir: &std::path::Path, sequencer: bool) -> NodeConfig {
    NodeConfig {
        chain: chain.clone(),
        data_dir: dir.join(format!("node{i}")),
        keypair: node_key(i),
        listen_ip: "127.0.0.1".parse().unwrap(),
        listen_port: 0,
        static_peers: vec![],
        gossip: GossipConfig::default(),
        validator: ValidatorConfig::default(),
        retention: 4096,
        sequencer: sequencer.then(|| SequencerConfig { signer: super::dev_signer(), schedule: Schedule::OnRequest, target_tx_bytes: 0 }),
    }
}

/// Dials `to` from `from`.
pub async fn connect(from: &RunningNode, to: &RunningNode) {
    from.network().dial(to.dial_address().await.unwrap()).await.unwrap();
}

/// Waits until every node has at least `n` connected peers.
pub async fn wait_for_peers(nodes: &[&RunningNode], n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for node in nodes {
        while node.network().connected_peers().await.unwrap().len() < n {
            assert!(tokio::time::Instant::now() < deadline, "peers did not connect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Subscriptions travel right after connecting; give gossipsub two heartbeats to build meshes.
    tokio::time::sleep(2 * op_gossip::p2p::gossip::HEARTBEAT).await;
}
