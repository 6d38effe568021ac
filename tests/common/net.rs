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

/// The devnet chain as `op-gossip devnet` sets it up: genesis one day ago, so blocks produced on
/// request (faster than the 2 s block time) stay within the range the chain clock allows, which
/// the payload_by_number server checks.
pub fn devnet_now() -> Arc<ChainSpec> {
    let mut chain = op_gossip::chain_config::load_chain("devnet").unwrap();
    chain.genesis.l2_time = op_gossip::devnet::devnet_genesis_time(op_gossip::clock::unix_now());
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
        reqresp_server: Some(op_gossip::p2p::reqresp::server::ServerConfig::default()),
        sync: Some(op_gossip::sync::SyncConfig::for_block_time(
            chain.block_time,
        )),
        lose_gossip_fraction: 0.0,
        scoring: op_gossip::p2p::scoring::ScoringLevel::Light,
        ban: op_gossip::p2p::BanConfig::default(),
        limits: op_gossip::p2p::ConnectionLimits::default(),
        rpc: None,
        engine: None,
        l1: None,
        metrics: op_gossip::metrics::MetricsConfig::default(),
        discovery: None,
        sequencer: sequencer.then(|| SequencerConfig {
            signer: super::dev_signer(),
            schedule: Schedule::OnRequest,
            target_tx_bytes: 0,
        }),
    }
}

/// Dials `to` from `from`.
pub async fn connect(from: &RunningNode, to: &RunningNode) {
    from.network()
        .dial(to.dial_address().await.unwrap())
        .await
        .unwrap();
}

/// Waits until every node has at least `n` connected peers.
pub async fn wait_for_peers(nodes: &[&RunningNode], n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for node in nodes {
        while node.network().connected_peers().await.unwrap().len() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "peers did not connect"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Subscriptions travel right after connecting; give gossipsub two heartbeats to build meshes.
    tokio::time::sleep(2 * op_gossip::p2p::gossip::HEARTBEAT).await;
}

/// A bare libp2p peer with identity `key` over TCP + noise + yamux (what our nodes speak), running
/// `behaviour`; idle connections are kept for an hour, so only the node decides when they close.
pub fn bare_swarm<B: libp2p::swarm::NetworkBehaviour>(
    key: libp2p::identity::Keypair,
    behaviour: impl FnOnce(&libp2p::identity::Keypair) -> B,
) -> libp2p::Swarm<B> {
    use libp2p::{noise, tcp, yamux};
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build()
}

/// A bare gossipsub peer that signs its messages (author, seqno and signature fields set), as a
/// non-OP libp2p application would: our nodes must reject what it publishes.
pub struct AuthoredPeer {
    pub swarm: libp2p::Swarm<libp2p::gossipsub::Behaviour>,
}

impl AuthoredPeer {
    pub fn new(topics: &[&str]) -> Self {
        use libp2p::gossipsub;
        let mut swarm = bare_swarm(node_key(200), |key| {
            let config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(Duration::from_millis(500))
                .max_transmit_size(10 << 20)
                .build()
                .unwrap();
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(key.clone()), config)
                .unwrap()
        });
        for t in topics {
            swarm
                .behaviour_mut()
                .subscribe(&gossipsub::IdentTopic::new(*t))
                .unwrap();
        }
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        Self { swarm }
    }

    /// Polls the swarm for `duration` (it has no task of its own).
    pub async fn drive(&mut self, duration: Duration) {
        use futures::StreamExt;
        let _ = tokio::time::timeout(duration, async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }
}

/// A bare gossipsub peer that publishes anonymously (as OP nodes do) with a fresh identity: an
/// attacker sending whatever bytes it likes on a topic, as many per RPC as rust-libp2p packs.
pub struct AnonymousPublisher {
    pub swarm: libp2p::Swarm<libp2p::gossipsub::Behaviour>,
    topic: libp2p::gossipsub::IdentTopic,
}

impl AnonymousPublisher {
    /// Dials `addr` and subscribes to `topic`; drive it before publishing so it learns the
    /// node's subscription.
    pub fn dial(addr: libp2p::Multiaddr, topic: &str) -> Self {
        use libp2p::{gossipsub, identity};
        let config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .message_id_fn(|m: &gossipsub::Message| {
                gossipsub::MessageId::from(alloy_primitives::keccak256(&m.data).to_vec())
            })
            .max_transmit_size(10 << 20)
            .build()
            .unwrap();
        let mut swarm = bare_swarm(identity::Keypair::generate_ed25519(), |_| {
            gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, config).unwrap()
        });
        let topic = gossipsub::IdentTopic::new(topic);
        swarm.behaviour_mut().subscribe(&topic).unwrap();
        swarm.dial(addr).unwrap();
        Self { swarm, topic }
    }

    /// Queues `data` for the node (dropped silently when gossipsub will not take it).
    pub fn publish(&mut self, data: Vec<u8>) {
        let _ = self.swarm.behaviour_mut().publish(self.topic.clone(), data);
    }

    /// Polls the swarm for `duration` (it has no task of its own).
    pub async fn drive(&mut self, duration: Duration) {
        use futures::StreamExt;
        let _ = tokio::time::timeout(duration, async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }
}
