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

/// How long peers may take to connect, or meshes to form, on a loaded machine.
const PEERS_WAIT: Duration = Duration::from_secs(20);

/// Waits until every node has at least `n` connected peers (and, for gossip, meshes: see
/// [`wait_for_peers`]).
pub async fn wait_for_connections(nodes: &[&RunningNode], n: usize) {
    for node in nodes {
        let connected = super::wait::wait_until(PEERS_WAIT, async || {
            node.network().connected_peers().await.unwrap().len() >= n
        })
        .await;
        assert!(connected, "peers did not connect");
    }
}

/// Waits until every node has at least `n` peers in its gossipsub mesh (of any block topic), or
/// the default `mesh_d_lo` when `n` is larger (a mesh takes new subscribers only while below it):
/// from then on what it publishes or forwards reaches them. A mesh forms when a peer's
/// subscription arrives (a GRAFT, usually well before the next heartbeat).
pub async fn wait_for_mesh(nodes: &[&RunningNode], n: usize) {
    let n = n.min(GossipConfig::default().mesh_d_lo);
    for node in nodes {
        let meshed = super::wait::wait_until(PEERS_WAIT, async || {
            node.network().mesh_peers().await.unwrap().len() >= n
        })
        .await;
        assert!(
            meshed,
            "mesh of {} did not reach {n} peers: {:?}",
            node.peer_id(),
            node.network().mesh_peers().await
        );
    }
}

/// Waits until every node has at least `n` connected peers and at least `n` in its gossip mesh:
/// what a test needs before it gossips. Peers that do not speak gossipsub never join a mesh; wait
/// for them with [`wait_for_connections`].
pub async fn wait_for_peers(nodes: &[&RunningNode], n: usize) {
    wait_for_connections(nodes, n).await;
    wait_for_mesh(nodes, n).await;
}

/// `from` dials `to` again and waits until `to`'s gate refused the connection (a banned or
/// blocked peer, or a blocked address).
pub async fn redial_refused(from: &RunningNode, to: &RunningNode) {
    use std::sync::atomic::Ordering;
    let refused = || to.gate_stats().accepts_refused.load(Ordering::Relaxed);
    let before = refused();
    let _ = from.network().dial(to.dial_address().await.unwrap()).await;
    let seen = super::wait::wait_until(PEERS_WAIT, async || refused() > before).await;
    assert!(seen, "the gate did not refuse the redial");
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

    /// Polls the swarm until a peer's subscription arrives (then `true`) or `timeout` passes.
    pub async fn drive_until_subscribed(&mut self, timeout: Duration) -> bool {
        drive_until_subscribed(&mut self.swarm, timeout).await
    }

    /// Polls the swarm until `done` holds (then `true`) or `timeout` passes.
    pub async fn drive_until(
        &mut self,
        timeout: Duration,
        done: impl AsyncFnMut() -> bool,
    ) -> bool {
        use futures::StreamExt;
        let swarm = &mut self.swarm;
        tokio::select! {
            held = super::wait::wait_until(timeout, done) => held,
            () = async { loop { swarm.select_next_some().await; } } => unreachable!(),
        }
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

    /// Polls the swarm until the node's subscription arrives (then `true`: what it publishes
    /// now goes to the node) or `timeout` passes.
    pub async fn drive_until_subscribed(&mut self, timeout: Duration) -> bool {
        drive_until_subscribed(&mut self.swarm, timeout).await
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

/// Polls `swarm` until a peer's subscription arrives (then `true`) or `timeout` passes.
async fn drive_until_subscribed(
    swarm: &mut libp2p::Swarm<libp2p::gossipsub::Behaviour>,
    timeout: Duration,
) -> bool {
    use futures::StreamExt;
    use libp2p::gossipsub::Event;
    use libp2p::swarm::SwarmEvent;
    tokio::time::timeout(timeout, async {
        while !matches!(
            swarm.select_next_some().await,
            SwarmEvent::Behaviour(Event::Subscribed { .. })
        ) {}
    })
    .await
    .is_ok()
}
