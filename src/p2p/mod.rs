//! The libp2p host: TCP + noise + yamux, gossipsub on the chain's block topics, identify, ping.
//!
//! ```text
//!            NetworkHandle (bounded commands) ──► EventLoop (sole owner of the Swarm)
//!                                                   │  gossipsub message
//!                                                   ▼
//!                          validation task (≤ `validation_queue` pending, ≤ `validation_concurrency`
//!                          running: on its async worker up to `INLINE_VALIDATION_MAX_BYTES`,
//!                          on the blocking pool above, `validation_timeout` each)
//!                                                   │ verdict ──► EventLoop ──► gossipsub
//!                                                   │             (only ACCEPT is forwarded)
//!                                                   ▼
//!                                   NetworkEvent::BlockAccepted (bounded; back-pressure lands on
//!                                   the validation tasks, never on the event loop)
//! ```
//!
//! Peer state and punishment live in one place, the [`peer_manager`] (inside the swarm's first
//! behaviour); payload_by_number runs over raw streams served outside the loop ([`reqresp`]).
//! Reference: `shared/spec/op-p2p.md` §4, §7.4.

pub mod conn_caps;
mod event_loop;
pub mod gossip;
pub mod keys;
pub mod metrics;
pub mod peer_manager;
pub mod peers;
pub mod recent_messages;
pub mod record_queue;
pub mod reqresp;
pub mod scoring;
pub mod validation_shares;
pub mod validation_task;
pub mod views;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::validate::{BlockValidator, ValidBlock, Verdict};
use crate::wire::BlockVersion;

pub use event_loop::EventLoop;
pub use gossip::GossipConfig;
pub use peer_manager::gate;

/// op-node's per-topic validator timeout (`WithValidatorTimeout(3s)`).
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(3);
/// Validations running at once (op-node: 4 per topic; one pool here since only one topic is live
/// at a time).
pub const VALIDATION_CONCURRENCY: usize = 4;
/// Messages whose body declares at most this many bytes are validated on the async worker that
/// received them; bigger ones go to the blocking pool. Validation costs about 110 µs (signature
/// recovery) plus 2.3 µs per KiB (`cargo bench --bench validation`: 115 µs at 1 KiB, 347 µs at
/// 100 KiB), so an inline validation holds a worker for at most about 0.7 ms, while each handoff
/// to a blocking thread and back waits for the OS to schedule two threads: on the 20-node
/// propagation benchmark (2 cores) those waits averaged 5.6 ms per hop (16 ms in the slowest 2%
/// of deliveries), twelve times the validation itself. Validating inline took that benchmark's
/// p99 publish→accept from 41 to 32 ms (p50 16 → 11), for about 8% more CPU per block: blocks
/// move faster, so more peers start forwarding a copy before our IDONTWANT reaches them (3.9
/// duplicates per node per block instead of 3.1). The timeout only matters for the big ones: an
/// inline validation ends long before it.
pub const INLINE_VALIDATION_MAX_BYTES: usize = 256 << 10;
/// Messages waiting for or in validation (op-node `maxValidateQueue`); beyond it a message is
/// IGNOREd at once and counted.
pub const VALIDATION_QUEUE: usize = 256;
/// Capacity of the command channel into the event loop.
pub const COMMAND_CHANNEL: usize = 64;
/// Capacity of the event channel out of the network.
pub const EVENT_CHANNEL: usize = 256;
/// How often static peers that are not connected are dialled again (op-node: 1 min).
pub const STATIC_REDIAL_INTERVAL: Duration = Duration::from_secs(60);
/// How long an idle connection (no gossipsub interest) is kept.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// Events one connection may have waiting for the network loop before libp2p stops reading from
/// that peer (libp2p's default is 7). An event can be a whole gossipsub RPC (up to the 10 MiB
/// transmit size), so this is what bounds the bytes a peer can park in memory while the loop is
/// busy: under `tests/bomb_flood.rs` (measured with heaptrack) the default let six peers park
/// ~20 MiB of 480 KiB messages ahead of the loop, which spent that time on their message ids.
/// With one, a connection reads at most a message or two ahead; beyond that yamux and TCP flow
/// control hold the sender back. An honest peer's events are handled within microseconds, so
/// it never waits here.
pub const CONNECTION_EVENT_BUFFER: usize = 1;

/// Everything the network needs to start.
pub struct NetworkConfig {
    /// The node identity.
    pub keypair: libp2p::identity::Keypair,
    /// `--p2p.listen.ip`.
    pub listen_ip: IpAddr,
    /// `--p2p.listen.tcp` (0 = any free port).
    pub listen_port: u16,
    /// `--p2p.static`: dialled at start and every minute while disconnected.
    pub static_peers: Vec<Multiaddr>,
    /// Gossip mesh parameters.
    pub gossip: GossipConfig,
    /// The validator shared with the rest of the node.
    pub validator: Arc<BlockValidator>,
    /// Identify agent version.
    pub agent_version: String,
    /// Gossip deliveries to lose on purpose before validation (the devnet's `--drop`; `None`
    /// for a real node).
    pub delivery_filter: Option<Arc<dyn DeliveryFilter>>,
    /// `--p2p.scoring`.
    pub scoring: scoring::ScoringLevel,
    /// Application scores (restored from the scorebook), handed to the peer manager.
    pub app_scores: peers::app_score::AppScores,
    /// The ban books (the peer manager writes them, the RPC and metrics read them).
    pub bans: Arc<peers::bans::BanList>,
    /// Gate counters.
    pub gate_stats: Arc<gate::GateStats>,
    /// When peers are banned.
    pub ban: BanConfig,
    /// The operator's blocked and protected peers.
    pub lists: Arc<peers::lists::PeerLists>,
    /// Score snapshots (persisted).
    pub scorebook: Arc<peers::scorebook::ScoreBook>,
    /// Connection limits.
    pub limits: ConnectionLimits,
    /// Where the network records its metrics.
    pub metrics: NetworkMetrics,
    /// Where ban and list changes are written (none: in memory only).
    pub store: Option<Arc<crate::store::Store>>,
    /// The event loop's end of the link to discovery (`None`: `--p2p.no-discovery`).
    pub discovery: Option<crate::discovery::link::LoopLink>,
}

/// Loses chosen gossip deliveries before validation, as a lossy network would: the devnet
/// installs one ([`crate::devnet::loss`]) so the sync client must fill the holes. A lost message
/// is IGNOREd unvalidated; gossipsub's duplicate cache then drops every other copy.
pub trait DeliveryFilter: Send + Sync {
    /// Whether the delivery of the message with this id is lost.
    fn loses(&self, message_id: &[u8]) -> bool;
}

/// The network's metrics: the registry (gossipsub registers its own there) and the gossip and
/// peers concerns' metrics.
#[derive(Debug, Clone)]
pub struct NetworkMetrics {
    /// The node's registry.
    pub registry: Arc<crate::metrics::Metrics>,
    /// Gossip events, verdicts, the validation queue.
    pub gossip: Arc<metrics::GossipMetrics>,
    /// Peer score samples and penalties.
    pub peers: Arc<peer_manager::metrics::PeerMetrics>,
}

/// op-node `--p2p.peers.lo`: the connection manager trims down to this many peers.
pub const DEFAULT_PEERS_LO: usize = 20;
/// op-node `--p2p.peers.hi`: trimming starts above this many peers.
pub const DEFAULT_PEERS_HI: usize = 30;
/// op-node `--p2p.peers.grace`: a new connection is not trimmed for this long.
pub const DEFAULT_PEERS_GRACE: Duration = Duration::from_secs(30);

/// The connection manager's limits (spec §7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Low water mark.
    pub lo: usize,
    /// High water mark.
    pub hi: usize,
    /// Grace period of new connections.
    pub grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            lo: DEFAULT_PEERS_LO,
            hi: DEFAULT_PEERS_HI,
            grace: DEFAULT_PEERS_GRACE,
        }
    }
}

/// op-node `--p2p.ban.peers`: ban peers whose score fell below the threshold.
pub const DEFAULT_BAN_THRESHOLD: f64 = -100.0;
/// op-node `--p2p.ban.duration`.
pub const DEFAULT_BAN_DURATION: Duration = Duration::from_secs(60 * 60);

/// Ban monitor settings (spec §7.2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BanConfig {
    /// `--p2p.ban.peers`.
    pub enabled: bool,
    /// `--p2p.ban.threshold`: scores strictly below it are banned.
    pub threshold: f64,
    /// `--p2p.ban.duration`.
    pub duration: Duration,
}

impl Default for BanConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: DEFAULT_BAN_THRESHOLD,
            duration: DEFAULT_BAN_DURATION,
        }
    }
}

/// Events the network reports. Sent on a bounded channel.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A listen address is bound.
    Listening(Multiaddr),
    /// A gossip block passed validation (it is being forwarded).
    BlockAccepted {
        /// The block.
        block: Box<ValidBlock>,
        /// The peer that forwarded it to us.
        from: PeerId,
        /// When validation finished.
        accepted_at: SystemTime,
    },
    /// A gossip message was judged (every verdict, including ACCEPT).
    MessageValidated {
        /// The forwarding peer.
        from: PeerId,
        /// The verdict.
        verdict: Verdict,
        /// The reason code (`None` on ACCEPT); see `ValidationError::reason`.
        reason: Option<&'static str>,
    },
    /// A connection to a peer was established (first connection).
    PeerConnected(PeerId),
    /// The last connection to a peer closed.
    PeerDisconnected(PeerId),
    /// The monitor banned a peer whose score fell below the threshold.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// Its gossipsub score when banned.
        score: f64,
        /// Ban expiry (unix seconds).
        until: u64,
    },
}

/// Commands into the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    Publish {
        version: BlockVersion,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    ConnectedPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    PeerTopics {
        peer: PeerId,
        reply: oneshot::Sender<Vec<String>>,
    },
    Peers {
        connected_only: bool,
        reply: oneshot::Sender<Vec<views::PeerView>>,
    },
    SelfView {
        reply: oneshot::Sender<views::SelfView>,
    },
    Stats {
        reply: oneshot::Sender<views::NetworkStats>,
    },
    /// Dial and report when connected (or failed).
    Connect {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    /// An operator's change to bans and lists; answered once it is written.
    Operator {
        change: peer_manager::OperatorChange,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    /// A peer's application counters.
    Counters {
        peer: PeerId,
        reply: oneshot::Sender<peers::app_score::AppCounters>,
    },
    /// Peers in our gossipsub mesh of any block topic.
    MeshPeers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
}

/// Why a network operation failed. Cloneable (one dial's outcome answers every caller waiting
/// on it), so the libp2p errors it carries are shared in `Arc`s.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NetworkError {
    /// Building the transport or behaviour failed.
    #[error("network setup: {0}")]
    Setup(#[source] Arc<SetupError>),
    /// Listening on the requested address failed.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        error: Arc<libp2p::TransportError<std::io::Error>>,
    },
    /// The event loop bound no listen address in time.
    #[error("cannot listen on any: no listen address bound")]
    NoListenAddress,
    /// gossipsub refused to publish (e.g. no peers on the topic yet, or a duplicate).
    #[error("publish failed: {0}")]
    Publish(#[source] Arc<libp2p::gossipsub::PublishError>),
    /// The chain has no topic for the block's version.
    #[error("publish failed: no topic for {0}")]
    NoTopic(BlockVersion),
    /// A dial could not be started, or failed.
    #[error("dial failed: {0}")]
    Dial(#[source] Arc<libp2p::swarm::DialError>),
    /// A connect's address names no peer to wait for.
    #[error("dial failed: {0}: the address must end in /p2p/<peer id>")]
    NoPeerId(Multiaddr),
    /// Too many connects wait for their dial already (at most 64, `MAX_PENDING_CONNECTS` in the
    /// event loop).
    #[error("dial failed: too many connects in progress")]
    TooManyConnects,
    /// The event loop has stopped.
    #[error("the network has shut down")]
    Closed,
    /// An operator list is full.
    #[error(transparent)]
    ListFull(#[from] peers::lists::ListFull),
    /// Too many ban and list records wait for the disk to take an operator's change.
    #[error(transparent)]
    RecordQueueFull(#[from] record_queue::RecordQueueFull),
}

impl From<SetupError> for NetworkError {
    fn from(e: SetupError) -> Self {
        Self::Setup(Arc::new(e))
    }
}

/// Why the network could not be set up: a bad configuration, nothing a peer can cause.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The TCP transport's noise upgrade could not be configured.
    #[error("{0}")]
    Transport(#[source] libp2p::noise::Error),
    /// The behaviour (gossipsub, the peer manager, connection limits) could not be built.
    #[error("{0}")]
    Behaviour(#[source] libp2p::BehaviourBuilderError),
    /// The listen IP and port do not form a multiaddr.
    #[error("{0}")]
    ListenAddr(#[source] libp2p::multiaddr::Error),
    /// The payload_by_number server could not take its protocols' streams.
    #[error("cannot serve {}: {}", .0.protocol, .0)]
    Serve(#[from] reqresp::inbound::AlreadyAccepted),
}

/// A cheap, cloneable handle to the network. Every call is a bounded command to the event loop.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    streams: libp2p_stream::Control,
    inbound: reqresp::inbound::InboundStreams,
    reporter: peer_manager::PeerReporter,
}

impl std::fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl NetworkHandle {
    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// A control to open and accept request/response streams outside the event loop.
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// Where request/response streams are accepted (without libp2p-stream's lossy hand-off).
    pub fn inbound_streams(&self) -> reqresp::inbound::InboundStreams {
        self.inbound.clone()
    }

    async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NetworkError::Closed)?;
        rx.await.map_err(|_| NetworkError::Closed)
    }

    /// Publishes a compressed gossip message on the topic of `version`.
    pub async fn publish(&self, version: BlockVersion, data: Vec<u8>) -> Result<(), NetworkError> {
        self.request(|reply| Command::Publish {
            version,
            data,
            reply,
        })
        .await?
    }

    /// Dials a multiaddr (with or without `/p2p/<id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.request(|reply| Command::Dial { addr, reply }).await?
    }

    /// The bound listen addresses (without the `/p2p/` suffix).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.request(|reply| Command::ListenAddrs { reply }).await
    }

    /// Currently connected peers.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        self.request(|reply| Command::ConnectedPeers { reply })
            .await
    }

    /// Peers in our gossipsub mesh of any block topic (the devnet report draws them).
    pub async fn mesh_peers(&self) -> Result<Vec<PeerId>, NetworkError> {
        self.request(|reply| Command::MeshPeers { reply }).await
    }

    /// Every known peer (or only the connected ones), with scores and reasons.
    pub async fn peers(&self, connected_only: bool) -> Result<Vec<views::PeerView>, NetworkError> {
        self.request(|reply| Command::Peers {
            connected_only,
            reply,
        })
        .await
    }

    /// This node.
    pub async fn self_view(&self) -> Result<views::SelfView, NetworkError> {
        self.request(|reply| Command::SelfView { reply }).await
    }

    /// Peer counts.
    pub async fn stats(&self) -> Result<views::NetworkStats, NetworkError> {
        self.request(|reply| Command::Stats { reply }).await
    }

    /// Dials `addr` (which must end in `/p2p/<id>`) and waits until the connection is up or the
    /// dial failed. The caller bounds the wait.
    pub async fn connect(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.request(|reply| Command::Connect { addr, reply })
            .await?
    }

    /// Applies an operator's change to bans and lists (written to disk, open connections the
    /// gate now refuses closed) and returns once it is written.
    pub async fn operator(&self, change: peer_manager::OperatorChange) -> Result<(), NetworkError> {
        self.request(|reply| Command::Operator { change, reply })
            .await?
    }

    /// `peer`'s application counters (zero when unknown).
    pub async fn app_counters(
        &self,
        peer: PeerId,
    ) -> Result<peers::app_score::AppCounters, NetworkError> {
        self.request(|reply| Command::Counters { peer, reply })
            .await
    }

    /// Where outcomes of peers are reported to the peer manager.
    pub fn reporter(&self) -> peer_manager::PeerReporter {
        self.reporter.clone()
    }

    /// The topics gossipsub tracks for `peer` (only those our subscription filter allows).
    pub async fn peer_topics(&self, peer: PeerId) -> Result<Vec<String>, NetworkError> {
        self.request(|reply| Command::PeerTopics { peer, reply })
            .await
    }
}

/// Builds the swarm, starts listening, and spawns the event loop on the current runtime.
/// Returns the handle and the event stream; the loop stops when `shutdown` is cancelled.
pub async fn spawn(
    config: NetworkConfig,
    shutdown: CancellationToken,
) -> Result<
    (
        NetworkHandle,
        mpsc::Receiver<NetworkEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetworkError,
> {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CHANNEL);
    let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL);
    let (reporter, reports) =
        peer_manager::PeerReporter::channel(config.metrics.peers.reports_dropped());
    let local_peer_id = config.keypair.public().to_peer_id();
    let event_loop = EventLoop::new(config, commands_rx, reports, events_tx, shutdown)?;
    let streams = event_loop.stream_control();
    let inbound = event_loop.inbound_streams();
    let task = tokio::spawn(event_loop.run());
    Ok((
        NetworkHandle {
            commands: commands_tx,
            local_peer_id,
            streams,
            inbound,
            reporter,
        },
        events_rx,
        task,
    ))
}

/// Appends `/p2p/<peer>` to an address.
pub fn with_peer_id(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    addr.clone().with(libp2p::multiaddr::Protocol::P2p(peer))
}

/// The peer id at the end of an address, if any.
pub fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}
