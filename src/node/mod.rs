//! Builds and runs a node: the network, the block store writer, and (for a sequencer) the
//! embedded producer; owns shutdown.
//!
//! ```text
//!  p2p::EventLoop ──NetworkEvent──► forward task ──StoreOp──► store writer ──► Store (redb)
//!                                      │                        ▲  ▲       ├─► head (watch)
//!                                      └──NodeEvent (broadcast) │  │       └─► writes (watch)
//!  Producer (sequencer) ──publish──► NetworkHandle ──StoreOp────┘  │              │
//!  sync client (gap filling) ◄───── Store::holes ◄─────────────────┼──────────────┘
//!        └──payload_by_number──► peers; promoted payloads ──StoreOp┘
//! ```
//! Every task records into one shared [`Metrics`] (see [`crate::metrics`]); with
//! `--metrics.enabled` the node also serves them at `/metrics`.
//! Every channel is bounded. Observers (`subscribe`) get a broadcast of [`NodeEvent`]s
//! ([`crate::events`]); a lagging observer loses events, never the node. [`start`] (in
//! `start.rs`) runs one small step per part and, on any error, cancels and joins what already
//! runs. Shutdown cancels one token; the store writer ([`crate::store::writer`]) drains what it
//! already received before it exits, so a graceful stop loses nothing accepted.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::chain::ChainSpec;
use crate::metrics::{self, Metrics, MetricsConfig};
use crate::p2p::gate::GateStats;
use crate::p2p::peers::app_score::AppCounters;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::lists::PeerLists;
use crate::p2p::peers::scorebook::ScoreBook;
use crate::p2p::reqresp::server::{ServerConfig, ServerStats};
use crate::p2p::{self, GossipConfig, NetworkHandle};
use crate::p2p::{BanConfig, ConnectionLimits};
use crate::producer::{ProduceError, ProduceRequest, SequencerConfig};
use crate::store::{BlockRef, Store, StoreError};
use crate::sync::{SyncConfig, SyncStats};
use crate::validate::{BlockValidator, ValidatorConfig};

mod forward;
mod sequencer;
mod start;
mod wiring;

pub use crate::events::NodeEvent;
pub use crate::store::writer::{BlockSource, StoreOp, StoreRequest};
pub use start::{STORE_FILE, start};

/// Capacity of the observer broadcast; slower observers skip events.
const EVENT_BROADCAST: usize = 4096;
/// Capacity of the production request queue.
const PRODUCE_QUEUE: usize = 4;

/// Everything a node needs.
#[derive(Clone)]
pub struct NodeConfig {
    /// The chain.
    pub chain: Arc<ChainSpec>,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// Node identity.
    pub keypair: libp2p::identity::Keypair,
    /// `--p2p.listen.ip`.
    pub listen_ip: IpAddr,
    /// `--p2p.listen.tcp`.
    pub listen_port: u16,
    /// `--p2p.static`.
    pub static_peers: Vec<Multiaddr>,
    /// Gossip mesh parameters.
    pub gossip: GossipConfig,
    /// Validator settings.
    pub validator: ValidatorConfig,
    /// Blocks kept below the head.
    pub retention: u64,
    /// Set for a sequencer.
    pub sequencer: Option<SequencerConfig>,
    /// Serve payload_by_number from the store (`--p2p.sync.req-resp`); `None` = do not serve.
    pub reqresp_server: Option<ServerConfig>,
    /// Fill gaps with payload_by_number (`--syncmode.req-resp`); `None` = never fetch.
    pub sync: Option<SyncConfig>,
    /// `--l1`: the unsafe block signer is read from the L1 SystemConfig.
    pub l1: Option<crate::l1::L1Config>,
    /// `--l2`: the execution engine accepted blocks are inserted into.
    pub engine: Option<crate::engine::EngineConfig>,
    /// Fraction of gossip deliveries lost on purpose (devnet `--drop`); 0 for a real node.
    pub lose_gossip_fraction: f64,
    /// `--p2p.scoring`.
    pub scoring: p2p::scoring::ScoringLevel,
    /// `--p2p.ban.*`.
    pub ban: BanConfig,
    /// `--p2p.peers.lo/hi/grace`.
    pub limits: ConnectionLimits,
    /// The admin RPC (`None`: not served).
    pub rpc: Option<crate::rpc::RpcConfig>,
    /// `--metrics.*`.
    pub metrics: MetricsConfig,
    /// Discovery (`None`: `--p2p.no-discovery`, no UDP socket).
    pub discovery: Option<crate::discovery::DiscoveryConfig>,
}

/// Why the node could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network could not start.
    #[error(transparent)]
    Network(#[from] p2p::NetworkError),
    /// The metrics endpoint could not start.
    #[error(transparent)]
    Metrics(#[from] metrics::http::MetricsError),
    /// The node is not a sequencer (no producer to ask).
    #[error("this node has no sequencer key")]
    NotSequencer,
    /// Production failed, the producer stopped, or a sequencer cannot start where it is.
    #[error("block production: {0}")]
    Produce(#[from] crate::producer::ProduceError),
    /// The L1 RPC could not be set up (a bad URL).
    #[error("l1: {0}")]
    L1(#[from] crate::l1::L1Error),
    /// The execution engine could not be used (unreachable URL, another chain).
    #[error("engine: {0}")]
    Engine(#[from] crate::engine::startup::StartupError),
    /// Discovery could not start.
    #[error(transparent)]
    Discovery(#[from] crate::discovery::DiscoveryError),
    /// The admin RPC could not start.
    #[error(transparent)]
    Rpc(#[from] crate::rpc::RpcError),
}

/// A running node: the handles `start` built, and the tasks behind them.
pub struct RunningNode {
    parts: start::Parts,
    /// Every task, the shutdown token and the store writer's thread.
    tasks: start::Tasks,
}

/// A cloneable way to ask a sequencer's producer for blocks.
#[derive(Debug, Clone)]
pub struct ProducerClient(pub(crate) mpsc::Sender<ProduceRequest>);

impl ProducerClient {
    /// Asks for `count` blocks, one every `interval`; resolves when all are published.
    pub async fn produce(
        &self,
        count: u64,
        interval: Duration,
        target_tx_bytes: usize,
    ) -> Result<(), NodeError> {
        let (done, rx) = oneshot::channel();
        self.0
            .send(ProduceRequest {
                count,
                interval,
                target_tx_bytes,
                done,
            })
            .await
            .map_err(|_| ProduceError::Stopped)?;
        rx.await.map_err(|_| ProduceError::Stopped)??;
        Ok(())
    }
}

impl RunningNode {
    /// The network handle.
    pub fn network(&self) -> &NetworkHandle {
        &self.parts.network
    }

    /// Discovery (`None` with `--p2p.no-discovery`).
    pub fn discovery(&self) -> Option<&crate::discovery::DiscoveryHandle> {
        self.parts.discovery.as_ref()
    }

    /// The block store.
    pub fn store(&self) -> &Arc<Store> {
        &self.parts.store
    }

    /// The validator (signer set, seen cache).
    pub fn validator(&self) -> &Arc<BlockValidator> {
        &self.parts.validator
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.parts.network.local_peer_id()
    }

    /// Subscribes to node events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.parts.events.subscribe()
    }

    /// The current unsafe head.
    pub fn head(&self) -> Option<BlockRef> {
        *self.parts.head.borrow()
    }

    /// A receiver that sees every head change.
    pub fn head_watch(&self) -> watch::Receiver<Option<BlockRef>> {
        self.parts.head.clone()
    }

    /// Waits until the head reaches `number`, or `timeout` passes. Returns the head reached.
    pub async fn wait_for_head(&self, number: u64, timeout: Duration) -> Option<BlockRef> {
        let mut head = self.parts.head.clone();
        let reached = tokio::time::timeout(
            timeout,
            head.wait_for(|h| h.is_some_and(|h| h.number >= number)),
        )
        .await;
        match reached {
            Ok(Ok(h)) => *h,
            _ => self.head(),
        }
    }

    /// Our dialable address: the first listen address with `/p2p/<id>` appended.
    pub async fn dial_address(&self) -> Result<Multiaddr, NodeError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(addr) = self.parts.network.listen_addrs().await?.first() {
                return Ok(p2p::with_peer_id(addr, self.peer_id()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(NodeError::Network(p2p::NetworkError::NoListenAddress));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asks the producer for `count` blocks, one every `interval`; resolves when all are published.
    pub async fn produce(
        &self,
        count: u64,
        interval: Duration,
        target_tx_bytes: usize,
    ) -> Result<(), NodeError> {
        self.producer()
            .ok_or(NodeError::NotSequencer)?
            .produce(count, interval, target_tx_bytes)
            .await
    }

    /// What the payload_by_number server did (`None` when not serving).
    pub fn server_stats(&self) -> Option<&Arc<ServerStats>> {
        self.parts.server_stats.as_ref()
    }

    /// What the sync client did (`None` when gap filling is off).
    pub fn sync_stats(&self) -> Option<&Arc<SyncStats>> {
        self.parts.sync_stats.as_ref()
    }

    /// `peer`'s application counters, as the peer manager holds them (zero when unknown or
    /// when the network has stopped).
    pub async fn app_counters(&self, peer: &libp2p::PeerId) -> AppCounters {
        self.parts
            .network
            .app_counters(*peer)
            .await
            .unwrap_or_default()
    }

    /// The ban book.
    pub fn bans(&self) -> &Arc<BanList> {
        &self.parts.books.bans
    }

    /// What the connection gate allowed and refused.
    pub fn gate_stats(&self) -> &Arc<GateStats> {
        &self.parts.books.gate_stats
    }

    /// The engine insertion driver's counters (`None` without `--l2`).
    pub fn engine_stats(&self) -> Option<&Arc<crate::engine::driver::EngineStats>> {
        self.parts.engine_stats.as_ref()
    }

    /// Where the admin RPC listens, if it is served.
    pub fn rpc_addr(&self) -> Option<std::net::SocketAddr> {
        self.parts.rpc_addr
    }

    /// The operator's blocked and protected peers.
    pub fn lists(&self) -> &Arc<PeerLists> {
        &self.parts.books.lists
    }

    /// The scorebook.
    pub fn scorebook(&self) -> &Arc<ScoreBook> {
        &self.parts.books.scorebook
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.parts.metrics
    }

    /// Where `/metrics` is served (`None` unless `--metrics.enabled`); with port 0 the port
    /// actually bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.parts.metrics_addr
    }

    /// The producer of a sequencer (`None` for a follower).
    pub fn producer(&self) -> Option<ProducerClient> {
        self.parts.produce.clone()
    }

    /// Stops every task; the store writer finishes what it already received.
    pub async fn shutdown(self) {
        // Every task stops, dropping its store senders; the writer then drains its queue and
        // exits.
        self.tasks.stop().await;
    }
}
