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
//! Every channel is bounded. Observers (`subscribe`) get a broadcast of [`NodeEvent`]s; a lagging
//! observer loses events, never the node. Shutdown cancels one token; the store writer drains
//! what it already received before it exits, so a graceful stop loses nothing accepted.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::chain::ChainSpec;
use crate::metrics::{self, MetricSources, Metrics, MetricsConfig};
use crate::p2p::gate::GateStats;
use crate::p2p::peers::app_score::AppScores;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::lists::PeerLists;
use crate::p2p::peers::scorebook::ScoreBook;
use crate::p2p::reqresp::server::{self, ServerConfig, ServerStats};
use crate::p2p::{self, GossipConfig, NetworkConfig, NetworkEvent, NetworkHandle};
use crate::p2p::{BanConfig, ConnectionLimits};
use crate::producer::{ProduceRequest, Producer, SequencerConfig};
use crate::store::{BlockRef, Store, StoreError, StoredBlock};
use crate::sync::{self, SyncConfig, SyncContext, SyncStats};
use crate::validate::{BlockValidator, ValidatorConfig, Verdict};

/// Capacity of the queue into the store writer.
const STORE_QUEUE: usize = 256;
/// Blocks written in one transaction at most (one fsync per batch).
const STORE_BATCH: usize = 64;
/// Capacity of the observer broadcast; slower observers skip events.
const EVENT_BROADCAST: usize = 4096;
/// Capacity of the production request queue.
const PRODUCE_QUEUE: usize = 4;
/// File name of the block store inside the data directory.
pub const STORE_FILE: &str = "blocks.redb";

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
}

/// Where a stored block came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockSource {
    /// Accepted from gossip, forwarded by this peer.
    Gossip(PeerId),
    /// Built by this node's producer.
    Local,
    /// Fetched by the sync client from this peer (trusted through its child's parent hash).
    ReqResp(PeerId),
}

/// What the store writer is asked to do.
#[derive(Debug)]
pub enum StoreOp {
    /// Store a block.
    Insert(Box<StoreRequest>),
    /// Move the head to this stored block (a hole too long to fill).
    Reanchor(BlockRef),
}

/// A block on its way into the store.
#[derive(Debug)]
pub struct StoreRequest {
    /// The block.
    pub block: StoredBlock,
    /// Where it came from.
    pub source: BlockSource,
    /// When it was accepted (gossip) or published (local).
    pub at: SystemTime,
}

/// What observers of a node see.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A listen address is bound.
    Listening(Multiaddr),
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer disconnected.
    PeerDisconnected(PeerId),
    /// A peer was banned for its score.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// Its score when banned.
        score: f64,
        /// Ban expiry (unix seconds).
        until: u64,
    },
    /// A gossip message was judged.
    Validated {
        /// Forwarding peer.
        from: PeerId,
        /// Verdict.
        verdict: Verdict,
        /// Reason code (`None` on ACCEPT).
        reason: Option<&'static str>,
    },
    /// A block was accepted from gossip (before it is stored).
    Accepted {
        /// The block.
        id: BlockRef,
        /// Forwarding peer.
        from: PeerId,
        /// When validation finished.
        at: SystemTime,
    },
    /// This node published a block.
    Published {
        /// The block.
        id: BlockRef,
        /// When it was handed to gossipsub.
        at: SystemTime,
    },
    /// A block is durably stored.
    Stored {
        /// The block.
        id: BlockRef,
        /// Its source.
        source: BlockSource,
    },
    /// The unsafe head moved.
    HeadChanged(BlockRef),
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
    /// Production failed or the producer stopped.
    #[error("block production: {0}")]
    Produce(String),
    /// The L1 RPC could not be set up (a bad URL).
    #[error("l1: {0}")]
    L1(String),
    /// The execution engine could not be set up (a bad URL).
    #[error("engine: {0}")]
    Engine(String),
    /// The admin RPC could not start.
    #[error(transparent)]
    Rpc(#[from] crate::rpc::RpcError),
}

/// A running node.
pub struct RunningNode {
    network: NetworkHandle,
    store: Arc<Store>,
    validator: Arc<BlockValidator>,
    events: broadcast::Sender<NodeEvent>,
    head: watch::Receiver<Option<BlockRef>>,
    produce: Option<ProducerClient>,
    server_stats: Option<Arc<ServerStats>>,
    sync_stats: Option<Arc<SyncStats>>,
    rpc_addr: Option<std::net::SocketAddr>,
    engine_stats: Option<Arc<crate::engine::driver::EngineStats>>,
    app_scores: Arc<AppScores>,
    bans: Arc<BanList>,
    gate_stats: Arc<GateStats>,
    lists: Arc<PeerLists>,
    scorebook: Arc<ScoreBook>,
    metrics: Arc<Metrics>,
    metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    store_thread: std::thread::JoinHandle<()>,
}

/// A cloneable way to ask a sequencer's producer for blocks.
#[derive(Debug, Clone)]
pub struct ProducerClient(mpsc::Sender<ProduceRequest>);

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
            .map_err(|_| NodeError::Produce("producer stopped".into()))?;
        rx.await
            .map_err(|_| NodeError::Produce("producer stopped".into()))?
            .map_err(NodeError::Produce)
    }
}

/// Starts a node on the current tokio runtime.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    let store = Arc::new(Store::open(
        &config.data_dir.join(STORE_FILE),
        config.retention,
        &config.chain,
    )?);
    let genesis = BlockRef {
        number: config.chain.genesis.l2.number,
        hash: config.chain.genesis.l2.hash,
    };
    let engine_metrics = crate::engine::metrics::EngineMetrics::default();
    let engine = match &config.engine {
        Some(engine_config) => {
            // Waits for an engine that is not up yet; refuses one on another chain.
            let attached =
                crate::engine::attach(engine_config, &config.chain, engine_metrics.clone())
                    .await
                    .map_err(|e| NodeError::Engine(e.to_string()))?;
            if let Some(engine_head) = attached.head {
                // The engine's head is where this node resumes: a fresh store starts there, and
                // a store behind it jumps to it (the sync client fills the gap above).
                if store.head()?.is_none_or(|h| h.number < engine_head.number) {
                    let head = store.anchor_at(engine_head)?;
                    tracing::info!(
                        engine = engine_head.number,
                        head = head.number,
                        "store resumes from the engine's head"
                    );
                }
            }
            Some(attached)
        }
        None => None,
    };
    if config.sync.is_some() && store.anchor_if_empty(genesis)? {
        // A fresh store starts at genesis so the sync client fetches the chain from there; a
        // chain already longer than the fill limit makes the head jump to the first block seen.
        tracing::info!(number = genesis.number, "empty store anchored at genesis");
    }
    // Bound first: a taken metrics port fails the start before any task runs.
    let metrics_listener = match config.metrics.listen {
        Some(addr) => {
            config
                .metrics
                .http
                .validate()
                .map_err(|e| metrics::http::MetricsError {
                    addr,
                    reason: e.to_string(),
                })?;
            Some(metrics::http::bind(addr).await?)
        }
        None => None,
    };
    let initial_head = store.head()?;
    // Where a sequencer resumes; one on the chain's clock too far behind it does not start.
    let engine_head = engine
        .as_ref()
        .and_then(|a| a.head.map(|h| (h, a.head_timestamp)));
    let tip = crate::producer::pace::Tip::resume(
        &store,
        &config.chain,
        initial_head.unwrap_or(genesis),
        engine_head,
    );
    if config.sequencer.as_ref().map(|s| s.schedule) == Some(crate::producer::Schedule::ChainTime) {
        crate::producer::pace::check_start(&tip, &config.chain, crate::clock::unix_now())
            .map_err(NodeError::Produce)?;
    }
    let validator = Arc::new(BlockValidator::new(config.chain.clone(), config.validator));
    let shutdown = CancellationToken::new();
    if let Some(l1) = config.l1.clone() {
        let source = crate::l1::SignerSource::new(l1).map_err(|e| NodeError::L1(e.to_string()))?;
        if let Err(e) = source.start(validator.clone(), shutdown.clone()).await {
            // The configured signer stays; the reload keeps trying.
            tracing::error!(error = %e, "starting without the L1 signer");
        }
    }
    let (events, _) = broadcast::channel(EVENT_BROADCAST);
    let (head_tx, head_rx) = watch::channel(initial_head);
    let (store_tx, store_rx) = mpsc::channel(STORE_QUEUE);
    let (writes_tx, writes_rx) = watch::channel(0u64);
    let app_scores = Arc::new(AppScores::new());
    let bans = Arc::new(BanList::load(store.clone(), crate::clock::unix_now()));
    let gate_stats = Arc::new(GateStats::default());
    let lists = Arc::new(PeerLists::load(store.clone()));
    let scorebook = Arc::new(ScoreBook::load(
        store.clone(),
        p2p::scoring::retain_score(config.chain.block_time),
        crate::clock::unix_now(),
        &app_scores,
    ));
    let metrics = Arc::new(Metrics::new(
        &config.metrics,
        MetricSources {
            gate: gate_stats.clone(),
            bans: bans.clone(),
        },
    ));
    if engine.is_some() {
        metrics.register_op_node(|r| engine_metrics.register_op_node(r));
        metrics.register_under("engine", |r| engine_metrics.register_own(r));
    }
    // What the HTTP servers' bounds did, for the servers that run.
    let metrics_http = crate::http::HttpStats::new("metrics");
    let rpc_http = crate::http::HttpStats::new("rpc");
    let served: Vec<_> = [
        (metrics_listener.is_some(), &metrics_http),
        (config.rpc.is_some(), &rpc_http),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, stats)| stats.clone())
    .collect();
    if !served.is_empty() {
        metrics.register_collector(Box::new(crate::http::HttpCollector(served)));
    }

    let (network, net_events, net_task) = p2p::spawn(
        NetworkConfig {
            keypair: config.keypair.clone(),
            listen_ip: config.listen_ip,
            listen_port: config.listen_port,
            static_peers: config.static_peers.clone(),
            gossip: config.gossip,
            validator: validator.clone(),
            agent_version: format!("op-gossip/{}", env!("CARGO_PKG_VERSION")),
            lose_gossip_fraction: config.lose_gossip_fraction,
            scoring: config.scoring,
            app_scores: app_scores.clone(),
            bans: bans.clone(),
            gate_stats: gate_stats.clone(),
            ban: config.ban,
            lists: lists.clone(),
            scorebook: scorebook.clone(),
            limits: config.limits,
            metrics: metrics.clone(),
        },
        shutdown.clone(),
    )
    .await?;
    let mut tasks = vec![net_task];
    let mut metrics_addr = None;
    if let Some(listener) = metrics_listener {
        let addr = listener
            .local_addr()
            .map_err(|e| metrics::http::MetricsError {
                addr: config
                    .metrics
                    .listen
                    .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
                reason: e.to_string(),
            })?;
        tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
        metrics_addr = Some(addr);
        match metrics::http::spawn(
            listener,
            metrics.clone(),
            config.metrics.http,
            metrics_http,
            shutdown.clone(),
        ) {
            Ok(task) => tasks.push(task),
            Err(e) => {
                shutdown.cancel();
                return Err(e.into());
            }
        }
    }
    tasks.push(tokio::spawn(forward_network_events(
        net_events,
        store_tx.clone(),
        events.clone(),
    )));
    let store_thread = spawn_store_writer(
        store.clone(),
        store_rx,
        StoreOutputs {
            head: head_tx,
            writes: writes_tx,
            events: events.clone(),
        },
    )
    .map_err(|e| {
        NodeError::Store(StoreError::Db(format!(
            "cannot start the store writer: {e}"
        )))
    })?;

    let server_stats = match config.reqresp_server {
        Some(server_config) => Some(
            server::spawn(
                network.inbound_streams(),
                config.chain.clone(),
                store.clone(),
                server_config,
                app_scores.clone(),
                metrics.clone(),
                shutdown.clone(),
            )
            .map_err(|e| NodeError::Network(p2p::NetworkError::Setup(e)))?,
        ),
        None => None,
    };
    let mut sequencer_engine = None;
    let engine_stats = engine.clone().map(|attached| {
        let stats = Arc::new(crate::engine::driver::EngineStats::default());
        // The driver owns the engine's head; a sequencer builds on what it publishes.
        let (head, follower) = crate::engine::head::channel(attached.head);
        let retry = config.engine.as_ref().map(|e| e.retry).unwrap_or_default();
        sequencer_engine = Some(crate::producer::engine::SequencerEngine {
            client: attached.client.clone(),
            head: follower,
            safe: attached.safe,
            finalized: attached.finalized,
            retry,
        });
        let driver = crate::engine::driver::InsertionDriver {
            client: attached.client,
            store: store.clone(),
            chain: config.chain.clone(),
            store_writes: writes_rx.clone(),
            start_head: attached.head,
            safe: attached.safe,
            finalized: attached.finalized,
            stats: stats.clone(),
            shutdown: shutdown.clone(),
            reorg_depth: 1,
            head,
            retry,
        };
        tasks.push(tokio::spawn(driver.run()));
        stats
    });
    let sync_stats = match config.sync.clone() {
        Some(sync_config) => {
            let (stats, task) = sync::spawn(
                SyncContext {
                    chain: config.chain.clone(),
                    config: sync_config,
                    network: network.clone(),
                    store: store.clone(),
                    store_tx: store_tx.clone(),
                    store_writes: writes_rx,
                    static_peers: config
                        .static_peers
                        .iter()
                        .filter_map(p2p::peer_id_of)
                        .collect(),
                    scores: app_scores.clone(),
                    metrics: metrics.clone(),
                },
                shutdown.clone(),
            );
            tasks.push(task);
            Some(stats)
        }
        None => None,
    };
    let mut produce = None;
    if let Some(sequencer) = config.sequencer.clone() {
        let (tx, rx) = mpsc::channel(PRODUCE_QUEUE);
        produce = Some(ProducerClient(tx));
        tracing::info!(signer = %sequencer.signer.address(), schedule = ?sequencer.schedule, "sequencing");
        let producer = Producer {
            chain: config.chain.clone(),
            config: sequencer,
            validator: validator.clone(),
            network: network.clone(),
            store_tx: store_tx.clone(),
            events: events.clone(),
            requests: rx,
            shutdown: shutdown.clone(),
            tip,
            engine: sequencer_engine,
            unpublished: 0,
            l1: match config.l1.clone() {
                Some(l1) => Some(crate::l1::OriginTracker::new(
                    crate::l1::SignerSource::new(l1).map_err(|e| NodeError::L1(e.to_string()))?,
                )),
                None => None,
            },
        };
        tasks.push(tokio::spawn(producer.run()));
    }
    let rpc_addr = match config.rpc {
        Some(rpc) => {
            let context = crate::rpc::AdminContext {
                network: network.clone(),
                lists: lists.clone(),
                bans: bans.clone(),
                payloads: crate::rpc::payloads::PayloadContext {
                    chain: config.chain.clone(),
                    store_tx: store_tx.clone(),
                    network: network.clone(),
                    validator: validator.clone(),
                    signer: config.sequencer.as_ref().map(|s| s.signer.clone()),
                },
            };
            match crate::rpc::start(rpc, context, rpc_http, shutdown.clone()).await {
                Ok((addr, task)) => {
                    tasks.push(task);
                    Some(addr)
                }
                Err(e) => {
                    // Stop what already started before reporting.
                    shutdown.cancel();
                    return Err(e.into());
                }
            }
        }
        None => None,
    };
    Ok(RunningNode {
        rpc_addr,
        engine_stats,
        network,
        store,
        validator,
        events,
        head: head_rx,
        produce,
        server_stats,
        sync_stats,
        app_scores,
        bans,
        gate_stats,
        lists,
        scorebook,
        metrics,
        metrics_addr,
        shutdown,
        tasks,
        store_thread,
    })
}

impl RunningNode {
    /// The network handle.
    pub fn network(&self) -> &NetworkHandle {
        &self.network
    }

    /// The block store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The validator (signer set, seen cache).
    pub fn validator(&self) -> &Arc<BlockValidator> {
        &self.validator
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.network.local_peer_id()
    }

    /// Subscribes to node events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The current unsafe head.
    pub fn head(&self) -> Option<BlockRef> {
        *self.head.borrow()
    }

    /// A receiver that sees every head change.
    pub fn head_watch(&self) -> watch::Receiver<Option<BlockRef>> {
        self.head.clone()
    }

    /// Waits until the head reaches `number`, or `timeout` passes. Returns the head reached.
    pub async fn wait_for_head(&self, number: u64, timeout: Duration) -> Option<BlockRef> {
        let mut head = self.head.clone();
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
            if let Some(addr) = self.network.listen_addrs().await?.first() {
                return Ok(p2p::with_peer_id(addr, self.peer_id()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(NodeError::Network(p2p::NetworkError::Listen {
                    addr: "any".into(),
                    reason: "no listen address bound".into(),
                }));
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
        self.server_stats.as_ref()
    }

    /// What the sync client did (`None` when gap filling is off).
    pub fn sync_stats(&self) -> Option<&Arc<SyncStats>> {
        self.sync_stats.as_ref()
    }

    /// The application scores (req/resp outcomes) of the peers.
    pub fn app_scores(&self) -> &Arc<AppScores> {
        &self.app_scores
    }

    /// The ban book.
    pub fn bans(&self) -> &Arc<BanList> {
        &self.bans
    }

    /// What the connection gate allowed and refused.
    pub fn gate_stats(&self) -> &Arc<GateStats> {
        &self.gate_stats
    }

    /// The engine insertion driver's counters (`None` without `--l2`).
    pub fn engine_stats(&self) -> Option<&Arc<crate::engine::driver::EngineStats>> {
        self.engine_stats.as_ref()
    }

    /// Where the admin RPC listens, if it is served.
    pub fn rpc_addr(&self) -> Option<std::net::SocketAddr> {
        self.rpc_addr
    }

    /// The operator's blocked and protected peers.
    pub fn lists(&self) -> &Arc<PeerLists> {
        &self.lists
    }

    /// The scorebook.
    pub fn scorebook(&self) -> &Arc<ScoreBook> {
        &self.scorebook
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Where `/metrics` is served (`None` unless `--metrics.enabled`); with port 0 the port
    /// actually bound.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The producer of a sequencer (`None` for a follower).
    pub fn producer(&self) -> Option<ProducerClient> {
        self.produce.clone()
    }

    /// Stops every task; the store writer finishes what it already received.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        // Every sender is gone now; the writer drains its queue and exits.
        let writer = self.store_thread;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}

async fn forward_network_events(
    mut net_events: mpsc::Receiver<NetworkEvent>,
    store_tx: mpsc::Sender<StoreOp>,
    events: broadcast::Sender<NodeEvent>,
) {
    while let Some(event) = net_events.recv().await {
        let node_event = match event {
            NetworkEvent::Listening(addr) => NodeEvent::Listening(addr),
            NetworkEvent::PeerConnected(p) => NodeEvent::PeerConnected(p),
            NetworkEvent::PeerDisconnected(p) => NodeEvent::PeerDisconnected(p),
            NetworkEvent::PeerBanned { peer, score, until } => {
                NodeEvent::PeerBanned { peer, score, until }
            }
            NetworkEvent::MessageValidated {
                from,
                verdict,
                reason,
            } => NodeEvent::Validated {
                from,
                verdict,
                reason,
            },
            NetworkEvent::BlockAccepted {
                block,
                from,
                accepted_at,
            } => {
                let block = *block;
                let id = BlockRef {
                    number: block.envelope.payload.block_number,
                    hash: block.envelope.payload.block_hash,
                };
                let _ = events.send(NodeEvent::Accepted {
                    id,
                    from,
                    at: accepted_at,
                });
                let request = StoreRequest {
                    block: StoredBlock {
                        version: block.version,
                        envelope: block.envelope,
                    },
                    source: BlockSource::Gossip(from),
                    at: accepted_at,
                };
                if store_tx
                    .send(StoreOp::Insert(Box::new(request)))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        let _ = events.send(node_event);
    }
}

/// Nice value of the store writer thread: below the network and validation threads, so that
/// durable writes (not on the propagation path) yield the CPU to validating and forwarding the
/// next hop. Measured on the 20-node devnet: with equal priority the writes sit inside every
/// block's CPU burst and add ~10 ms to p99 publish→accept.
const STORE_WRITER_NICE: i32 = 10;

/// Where the store writer reports.
struct StoreOutputs {
    head: watch::Sender<Option<BlockRef>>,
    /// Counts write batches (the sync client re-plans on every tick).
    writes: watch::Sender<u64>,
    events: broadcast::Sender<NodeEvent>,
}

/// Starts the store writer on its own OS thread. It writes blocks in batches (one durable
/// transaction each), publishes head changes, and exits once every sender is gone and the queue
/// is drained, so a graceful shutdown stores everything already accepted.
fn spawn_store_writer(
    store: Arc<Store>,
    mut ops: mpsc::Receiver<StoreOp>,
    out: StoreOutputs,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || {
            lower_thread_priority(STORE_WRITER_NICE);
            let mut pending = None;
            loop {
                let first = match pending.take() {
                    Some(op) => op,
                    None => match ops.blocking_recv() {
                        Some(op) => op,
                        None => break,
                    },
                };
                let mut batch = match first {
                    StoreOp::Insert(r) => vec![*r],
                    StoreOp::Reanchor(to) => {
                        match store.reanchor(to) {
                            Ok(Some(head)) => publish_head(Some(head), &out),
                            Ok(None) => {
                                tracing::warn!(number = to.number, "reanchor target not stored")
                            }
                            Err(e) => tracing::error!(error = %e, "failed to move the head"),
                        }
                        out.writes.send_modify(|n| *n = n.wrapping_add(1));
                        continue;
                    }
                };
                while batch.len() < STORE_BATCH {
                    match ops.try_recv() {
                        Ok(StoreOp::Insert(r)) => batch.push(*r),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                write_batch(&store, batch, &out);
            }
        })
}

fn write_batch(store: &Store, batch: Vec<StoreRequest>, out: &StoreOutputs) {
    let meta: Vec<(BlockRef, BlockSource)> =
        batch.iter().map(|r| (r.block.id(), r.source)).collect();
    let blocks: Vec<StoredBlock> = batch.into_iter().map(|r| r.block).collect();
    match store.insert_batch(&blocks) {
        Ok(new_head) => {
            for (id, source) in meta {
                let _ = out.events.send(NodeEvent::Stored { id, source });
            }
            publish_head(new_head, out);
        }
        Err(e) => tracing::error!(error = %e, "failed to store blocks"),
    }
    out.writes.send_modify(|n| *n = n.wrapping_add(1));
}

fn publish_head(new_head: Option<BlockRef>, out: &StoreOutputs) {
    if new_head != *out.head.borrow() {
        out.head.send_replace(new_head);
        if let Some(h) = new_head {
            tracing::debug!(number = h.number, hash = %h.hash, "new unsafe head");
            let _ = out.events.send(NodeEvent::HeadChanged(h));
        }
    }
}

/// Raises the calling thread's nice value (Linux: nice is per thread). Best effort: on failure
/// or elsewhere the thread keeps its priority.
fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0 {
            tracing::debug!("could not lower the store writer's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
