//! Discovery: finding the chain's peers through discv5 and the `opstack` ENR entry (spec §8),
//! and being found.
//!
//! ```text
//!  chain file / --p2p.bootnodes ─► records::Bootnode (enr: added, enode:// asked for its record)
//!  persist (--p2p.discovery.path) ─► last ENR (sequence only grows) + node table
//!        │
//!        ▼
//!  service (own task; discv5 runs its own socket/handler tasks on our UDP socket)
//!     random lookups, table walks, inbound sessions ─► opstack::classify (our chain, v0)
//!     ─► gate (banned/blocked peer, IP, subnet), --p2p.netrestrict ─► dial_queue (bounded,
//!     per-IP/subnet shares, backoff) ─► link ─► p2p event loop dials, reports outcomes and
//!     identify's observed IPs ─► votes (our public IP when not advertised)
//!     DiscoveryHandle ◄── admin RPC (opp2p_discoveryTable, ENR in opp2p_self), devnet report
//! ```
//!
//! Records of other chains or without `opstack` stay in the table (the DHT is shared with L1)
//! and are never dialled. `op-gossip bootnode` runs the service without the dialling half.
//! With `--p2p.no-discovery` none of this starts and no UDP socket is opened.

pub mod dial_queue;
pub mod link;
pub mod metrics;
pub mod opstack;
pub mod persist;
pub mod records;
pub mod service;
pub mod votes;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use records::Bootnode;
pub use service::{Dialling, DiscoveryHandle, start};

use crate::p2p::peers::subnet::Subnet;

/// op-node's discover tick while below the peer target (5 s; 20 s when above: one lookup at a
/// time either way, and a lookup costs a few dozen small packets).
pub const DEFAULT_LOOKUP_INTERVAL: Duration = Duration::from_secs(5);

/// Everything discovery needs.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Our chain: the `opstack` entry we announce and accept.
    pub chain_id: u64,
    /// `--p2p.listen.ip`: the UDP socket's address (a specific one is also the ENR's address
    /// until one is advertised or learned).
    pub listen_ip: IpAddr,
    /// `--p2p.listen.udp` (0: any free port, op-node's default).
    pub udp_port: u16,
    /// The libp2p TCP port actually bound (the ENR's `tcp` unless advertised).
    pub tcp_port: u16,
    /// `--p2p.advertise.ip`.
    pub advertise_ip: Option<IpAddr>,
    /// `--p2p.advertise.tcp`.
    pub advertise_tcp: Option<u16>,
    /// `--p2p.advertise.udp`.
    pub advertise_udp: Option<u16>,
    /// `--p2p.bootnodes`, else the chain file's.
    pub bootnodes: Vec<Bootnode>,
    /// `--p2p.discovery.path`.
    pub store: persist::TableStore,
    /// `--p2p.netrestrict`: only peers in these networks are dialled (empty: any).
    pub netrestrict: Vec<Subnet>,
    /// How often a random lookup runs.
    pub lookup_interval: Duration,
}

impl DiscoveryConfig {
    /// Defaults for `chain_id` on `listen_ip` (any UDP port, nothing persisted, no bootnodes).
    pub fn new(chain_id: u64, listen_ip: IpAddr) -> Self {
        Self {
            chain_id,
            listen_ip,
            udp_port: 0,
            tcp_port: 0,
            advertise_ip: None,
            advertise_tcp: None,
            advertise_udp: None,
            bootnodes: Vec::new(),
            store: persist::TableStore::Memory,
            netrestrict: Vec::new(),
            lookup_interval: DEFAULT_LOOKUP_INTERVAL,
        }
    }
}

/// Why discovery could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The node key or a record is unusable.
    #[error(transparent)]
    Record(#[from] records::RecordError),
    /// The UDP socket could not be bound.
    #[error("cannot bind the discovery UDP socket {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        error: std::io::Error,
    },
    /// The discovery file could not be read.
    #[error("discovery file: {0}")]
    Persist(#[from] persist::PersistError),
    /// The blocking task reading the discovery file panicked or was cancelled.
    #[error("discovery file: {0}")]
    PersistTask(#[from] tokio::task::JoinError),
    /// The node's TCP listener (whose port the ENR announces) did not come up in time.
    #[error("discv5: the TCP listener is not up")]
    NoTcpListener,
    /// discv5 refused to start (its reason; discv5's errors are not `std::error::Error`s).
    #[error("discv5: {0}")]
    Start(String),
    /// The service has stopped.
    #[error("discovery has stopped")]
    Stopped,
}

/// How long a node waits for its TCP listener before discovery starts (the ENR needs the port).
const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// Starts a node's discovery once its TCP listener is bound: the ENR's `tcp` is the bound
/// port unless `--p2p.advertise.tcp` is given. Registers the discovery metrics.
pub async fn start_for_node(
    mut config: DiscoveryConfig,
    keypair: &libp2p::identity::Keypair,
    network: &crate::p2p::NetworkHandle,
    mut dialling: Dialling,
    metrics: &crate::metrics::Metrics,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(DiscoveryHandle, tokio::task::JoinHandle<()>), DiscoveryError> {
    dialling.local = network.local_peer_id();
    let deadline = tokio::time::Instant::now() + LISTEN_WAIT;
    config.tcp_port = loop {
        let addrs = network
            .listen_addrs()
            .await
            .map_err(|_| DiscoveryError::Stopped)?;
        let port = addrs.iter().flat_map(|a| a.iter()).find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        });
        match port {
            Some(port) => break port,
            None if tokio::time::Instant::now() > deadline => {
                return Err(DiscoveryError::NoTcpListener);
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let stats = std::sync::Arc::new(metrics::DiscoveryStats::default());
    metrics_register(metrics, &stats);
    start(config, keypair, Some(dialling), stats, shutdown).await
}

/// Registers discovery's collector on the node's registry.
pub fn metrics_register(
    metrics: &crate::metrics::Metrics,
    stats: &std::sync::Arc<metrics::DiscoveryStats>,
) {
    metrics.register_collector(Box::new(metrics::DiscoveryCollector(stats.clone())));
}
