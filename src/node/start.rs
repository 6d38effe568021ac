//! Starting a node, one small step at a time. Every task a step spawns goes into one
//! [`Tasks`] set; should a later step fail, [`start`] cancels and joins everything already
//! running (and the store writer thread) before it returns the error, so a failed start leaves
//! nothing behind.
//!
//! Order: store → engine (the store resumes from its head) → metrics port (a taken port fails
//! before any task runs) → validator and L1 signer (its source shared with the producer) → peer
//! books → metrics → network → metrics server → store writer and forward task → req/resp server
//! → engine driver → sync client → producer → admin RPC.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::forward::forward_network_events;
use super::sequencer::{ProducerInputs, attach_engine, sequencer_tip, start_producer};
use super::{EVENT_BROADCAST, NodeConfig, NodeError, ProducerClient, RunningNode};
use crate::engine::metrics::EngineMetrics;
use crate::events::NodeEvent;
use crate::metrics::{self, Metrics};
use crate::p2p::gate::GateStats;
use crate::p2p::peer_manager::metrics::{MetricSources, PeerMetrics};
use crate::p2p::peers::app_score::AppScores;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::lists::PeerLists;
use crate::p2p::peers::scorebook::ScoreBook;
use crate::p2p::reqresp::metrics::ReqRespMetrics;
use crate::p2p::reqresp::server::{self, ServerStats};
use crate::p2p::{self, NetworkConfig, NetworkHandle};
use crate::store::writer::{StoreOutputs, StoreWriter};
use crate::store::{BlockRef, Store, StoreError};
use crate::sync::{self, SyncContext, SyncStats};
use crate::validate::BlockValidator;

/// File name of the block store inside the data directory.
pub const STORE_FILE: &str = "blocks.redb";

/// The node's tasks and the token that stops them.
pub(super) struct Tasks {
    pub(super) set: JoinSet<()>,
    pub(super) shutdown: CancellationToken,
    /// The store writer's thread, joined after every task (they hold its senders).
    pub(super) store_thread: Option<std::thread::JoinHandle<()>>,
}

impl Tasks {
    fn new() -> Self {
        Self {
            set: JoinSet::new(),
            shutdown: CancellationToken::new(),
            store_thread: None,
        }
    }

    pub(super) fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.set.spawn(task);
    }

    /// Cancels every task, waits for them, then for the store writer to drain and exit.
    pub(super) async fn stop(mut self) {
        self.shutdown.cancel();
        while self.set.join_next().await.is_some() {}
        if let Some(writer) = self.store_thread.take() {
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
    }
}

/// Starts a node on the current tokio runtime.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    let mut tasks = Tasks::new();
    match build(config, &mut tasks).await {
        Ok(parts) => Ok(parts.into_node(tasks)),
        Err(e) => {
            tasks.stop().await;
            Err(e)
        }
    }
}

/// What `build` hands to the running node (the tasks are kept apart, for the error path).
pub(super) struct Parts {
    pub(super) network: NetworkHandle,
    pub(super) store: Arc<Store>,
    pub(super) validator: Arc<BlockValidator>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) head: watch::Receiver<Option<BlockRef>>,
    pub(super) produce: Option<ProducerClient>,
    pub(super) server_stats: Option<Arc<ServerStats>>,
    pub(super) sync_stats: Option<Arc<SyncStats>>,
    pub(super) rpc_addr: Option<SocketAddr>,
    pub(super) engine_stats: Option<Arc<crate::engine::driver::EngineStats>>,
    pub(super) books: PeerBooks,
    pub(super) metrics: Arc<Metrics>,
    pub(super) metrics_addr: Option<SocketAddr>,
    pub(super) discovery: Option<crate::discovery::DiscoveryHandle>,
}

impl Parts {
    fn into_node(self, tasks: Tasks) -> RunningNode {
        RunningNode { parts: self, tasks }
    }
}

async fn build(config: NodeConfig, tasks: &mut Tasks) -> Result<Parts, NodeError> {
    let store = open_store(&config)?;
    let engine_metrics = EngineMetrics::default();
    let engine = attach_engine(&config, &store, &engine_metrics).await?;
    anchor_for_sync(&config, &store)?;
    let metrics_listener = bind_metrics(&config).await?;
    let initial_head = store.head()?;
    let tip = sequencer_tip(&config, &store, initial_head, engine.as_ref())?;
    let validator = Arc::new(BlockValidator::new(config.chain.clone(), config.validator));
    let l1 = start_l1(&config, &validator, &tasks.shutdown).await?;
    let (events, _) = broadcast::channel(EVENT_BROADCAST);
    let (head_tx, head_rx) = watch::channel(initial_head);
    let (writes_tx, writes_rx) = watch::channel(0u64);
    let (mut books, app_scores) = load_peer_books(&config, &store);
    let http = HttpServers {
        metrics: crate::http::HttpStats::new("metrics"),
        rpc: crate::http::HttpStats::new("rpc"),
    };
    let node_metrics = build_metrics(&config, &books, metrics_listener.is_some(), &http);
    let metrics = node_metrics.registry.clone();
    if engine.is_some() {
        metrics.register_op_node(|r| engine_metrics.register_op_node(r));
        metrics.register_under("engine", |r| engine_metrics.register_own(r));
    }
    let (loop_link, service_link) = crate::discovery::link::link_if(config.discovery.is_some());
    let mut net_config = network_config(
        &config,
        &validator,
        &mut books,
        app_scores,
        &store,
        &node_metrics,
    );
    net_config.discovery = loop_link;
    let (network, net_events, net_task) = p2p::spawn(net_config, tasks.shutdown.clone()).await?;
    tasks.spawn(async move {
        let _ = net_task.await;
    });
    let discovery =
        super::wiring::start_discovery(&config, &network, &books, service_link, &metrics, tasks)
            .await?;
    let metrics_addr = serve_metrics(&config, metrics_listener, &metrics, http.metrics, tasks)?;
    let writer = StoreWriter::spawn(
        store.clone(),
        StoreOutputs {
            head: head_tx,
            writes: writes_tx,
            events: events.clone(),
        },
    )
    .map_err(StoreError::WriterThread)?;
    tasks.store_thread = Some(writer.thread);
    let store_tx = writer.tx;
    tasks.spawn(forward_network_events(
        net_events,
        store_tx.clone(),
        events.clone(),
    ));
    let server_stats = serve_payloads(
        &config,
        &network,
        &store,
        &node_metrics.reqresp,
        &tasks.shutdown,
    )?;
    let mut sequencer_engine = None;
    let engine_stats = engine.clone().map(|attached| {
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
        let driver = crate::engine::driver::InsertionDriver::new(
            attached,
            store.clone(),
            config.chain.clone(),
            writes_rx.clone(),
            head,
            retry,
            tasks.shutdown.clone(),
        );
        let stats = driver.stats();
        tasks.spawn(driver.run());
        metrics.register_collector(Box::new(crate::engine::collector::EngineCollector {
            stats: stats.clone(),
            head: head_rx.clone(),
        }));
        stats
    });
    let sync_stats = config.sync.clone().map(|sync_config| {
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
                scores: network.reporter(),
                metrics: node_metrics.reqresp.clone(),
            },
            tasks.shutdown.clone(),
        );
        tasks.spawn(async move {
            let _ = task.await;
        });
        stats
    });
    let produce = start_producer(
        &config,
        ProducerInputs {
            validator: &validator,
            network: &network,
            store_tx: &store_tx,
            events: &events,
            tip,
            engine: sequencer_engine,
            l1,
        },
        tasks,
    );
    let sources = super::wiring::RpcSources {
        network: &network,
        discovery: discovery.as_ref(),
        books: &books,
        store_tx: &store_tx,
        validator: &validator,
    };
    let rpc_addr = super::wiring::start_rpc(&config, sources, http.rpc, tasks).await?;
    Ok(Parts {
        network,
        store,
        validator,
        events,
        head: head_rx,
        produce,
        server_stats,
        sync_stats,
        rpc_addr,
        engine_stats,
        books,
        metrics,
        metrics_addr,
        discovery,
    })
}

pub(super) fn genesis(config: &NodeConfig) -> BlockRef {
    BlockRef {
        number: config.chain.genesis.l2.number,
        hash: config.chain.genesis.l2.hash,
    }
}

fn open_store(config: &NodeConfig) -> Result<Arc<Store>, NodeError> {
    Ok(Arc::new(Store::open(
        &config.data_dir.join(STORE_FILE),
        config.retention,
        &config.chain,
    )?))
}

/// A fresh store starts at genesis so the sync client fetches the chain from there; a chain
/// already longer than the fill limit makes the head jump to the first block seen.
fn anchor_for_sync(config: &NodeConfig, store: &Store) -> Result<(), NodeError> {
    let genesis = genesis(config);
    if config.sync.is_some() && store.anchor_if_empty(genesis)? {
        tracing::info!(number = genesis.number, "empty store anchored at genesis");
    }
    Ok(())
}

/// Binds the metrics port first: a taken port fails the start before any task runs.
async fn bind_metrics(config: &NodeConfig) -> Result<Option<TcpListener>, NodeError> {
    let Some(addr) = config.metrics.listen else {
        return Ok(None);
    };
    config
        .metrics
        .http
        .validate()
        .map_err(|e| metrics::http::MetricsError {
            addr,
            source: e.into(),
        })?;
    Ok(Some(metrics::http::bind(addr).await?))
}

/// `--l1`: the signer set follows the L1 SystemConfig; a failed first read keeps the configured
/// signer (the reload keeps trying). The source is returned for the sequencer, which follows
/// L1 through the same client.
async fn start_l1(
    config: &NodeConfig,
    validator: &Arc<BlockValidator>,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<crate::l1::SignerSource>>, NodeError> {
    let Some(l1) = config.l1.clone() else {
        return Ok(None);
    };
    let source = Arc::new(crate::l1::SignerSource::new(l1)?);
    if let Err(e) = source
        .clone()
        .start(validator.clone(), shutdown.clone())
        .await
    {
        tracing::error!(error = %e, "starting without the L1 signer");
    }
    Ok(Some(source))
}

/// The persisted peer books the peer manager starts from (and the RPC and metrics read).
pub(super) struct PeerBooks {
    pub(super) bans: Arc<BanList>,
    pub(super) gate_stats: Arc<GateStats>,
    pub(super) lists: Arc<PeerLists>,
    pub(super) scorebook: Arc<ScoreBook>,
}

fn load_peer_books(config: &NodeConfig, store: &Arc<Store>) -> (PeerBooks, AppScores) {
    let mut app_scores = AppScores::new();
    let now = crate::clock::unix_now();
    let books = PeerBooks {
        bans: Arc::new(BanList::load(store.clone(), now)),
        gate_stats: Arc::new(GateStats::default()),
        lists: Arc::new(PeerLists::load(store.clone())),
        scorebook: Arc::new(ScoreBook::load(
            store.clone(),
            p2p::scoring::retain_score(config.chain.block_time),
            now,
            &mut app_scores,
        )),
    };
    (books, app_scores)
}

/// What the HTTP servers' bounds did (each server counts into its own).
struct HttpServers {
    metrics: Arc<crate::http::HttpStats>,
    rpc: Arc<crate::http::HttpStats>,
}

/// The metrics every concern registered into the one registry.
struct NodeMetrics {
    registry: Arc<Metrics>,
    network: p2p::NetworkMetrics,
    reqresp: Arc<ReqRespMetrics>,
}

/// The one registry, each concern's metrics registered into it, and the HTTP servers' counters
/// for the servers that run.
fn build_metrics(
    config: &NodeConfig,
    books: &PeerBooks,
    serving_metrics: bool,
    http: &HttpServers,
) -> NodeMetrics {
    let metrics = Arc::new(Metrics::new(&config.metrics));
    let network = p2p::NetworkMetrics {
        registry: metrics.clone(),
        gossip: p2p::metrics::GossipMetrics::register(&metrics),
        peers: PeerMetrics::register(
            &metrics,
            MetricSources {
                gate: books.gate_stats.clone(),
                bans: books.bans.clone(),
            },
            config.metrics.score_sample_interval,
        ),
    };
    let reqresp = ReqRespMetrics::register(&metrics);
    let served: Vec<_> = [
        (serving_metrics, http.metrics.clone()),
        (config.rpc.is_some(), http.rpc.clone()),
    ]
    .into_iter()
    .filter_map(|(on, stats)| on.then_some(stats))
    .collect();
    if !served.is_empty() {
        metrics.register_collector(Box::new(crate::http::HttpCollector(served)));
    }
    NodeMetrics {
        registry: metrics,
        network,
        reqresp,
    }
}

fn network_config(
    config: &NodeConfig,
    validator: &Arc<BlockValidator>,
    books: &mut PeerBooks,
    app_scores: AppScores,
    store: &Arc<Store>,
    metrics: &NodeMetrics,
) -> NetworkConfig {
    NetworkConfig {
        keypair: config.keypair.clone(),
        listen_ip: config.listen_ip,
        listen_port: config.listen_port,
        static_peers: config.static_peers.clone(),
        gossip: config.gossip,
        validator: validator.clone(),
        agent_version: format!("op-gossip/{}", env!("CARGO_PKG_VERSION")),
        delivery_filter: (config.lose_gossip_fraction > 0.0).then(|| {
            Arc::new(crate::devnet::loss::LossSimulation::new(
                config.lose_gossip_fraction,
                &config.keypair.public().to_peer_id(),
            )) as Arc<dyn p2p::DeliveryFilter>
        }),
        scoring: config.scoring,
        app_scores,
        bans: books.bans.clone(),
        gate_stats: books.gate_stats.clone(),
        ban: config.ban,
        lists: books.lists.clone(),
        scorebook: books.scorebook.clone(),
        limits: config.limits,
        store: Some(store.clone()),
        metrics: metrics.network.clone(),
        discovery: None,
    }
}

/// `--metrics.enabled`: serves `/metrics` on the listener bound earlier.
fn serve_metrics(
    config: &NodeConfig,
    listener: Option<TcpListener>,
    metrics: &Arc<Metrics>,
    http: Arc<crate::http::HttpStats>,
    tasks: &mut Tasks,
) -> Result<Option<SocketAddr>, NodeError> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let addr = listener
        .local_addr()
        .map_err(|e| metrics::http::MetricsError {
            addr: config
                .metrics
                .listen
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            source: e.into(),
        })?;
    tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
    let task = metrics::http::spawn(
        listener,
        metrics.clone(),
        config.metrics.http,
        http,
        tasks.shutdown.clone(),
    )?;
    tasks.spawn(async move {
        let _ = task.await;
    });
    Ok(Some(addr))
}

/// `--p2p.sync.req-resp`: serves payload_by_number from the store.
fn serve_payloads(
    config: &NodeConfig,
    network: &NetworkHandle,
    store: &Arc<Store>,
    metrics: &Arc<ReqRespMetrics>,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<ServerStats>>, NodeError> {
    let Some(server_config) = config.reqresp_server else {
        return Ok(None);
    };
    let stats = server::spawn(
        network.inbound_streams(),
        config.chain.clone(),
        store.clone(),
        server_config,
        network.reporter(),
        metrics.clone(),
        shutdown.clone(),
    )
    .map_err(|e| NodeError::Network(p2p::SetupError::from(e).into()))?;
    Ok(Some(stats))
}
