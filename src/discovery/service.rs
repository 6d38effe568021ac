//! The discovery task: runs discv5 (its own socket, handler and service tasks) and turns what it
//! finds into dial requests for the event loop.
//!
//! ```text
//!  UDP ─► discv5 (sigp) ─events─► Service ─offer─► DialQueue ─DialTarget─► link ─► event loop
//!           ▲   ▲                   │   ▲                                        │
//!  random lookups (every            │   └──────── dial outcomes, identify IPs ◄──┘
//!  lookup_interval, one at a time)  ├─► local ENR: logged at start and on every change,
//!  table walks (every 30 s)         │   persisted with the table (persist.rs)
//!                                   └─► DiscoveryHandle requests (table, ENR) for the RPC
//! ```
//! The service never waits on the event loop (dial requests go out with `try_send`, a refused
//! one counts as a failed dial) and answers the RPC from discv5's state.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discv5::{ConfigBuilder, Discv5, Enr, Event, ListenConfig};
use enr::NodeId;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::dial_queue::{DialQueue, Offer};
use super::link::{NetworkReport, ServiceLink};
use super::metrics::{CandidateResult, DiscoveryStats};
use super::opstack::{ChainMatch, classify};
use super::persist::{self, TableStore};
use super::records::{self, Bootnode, LocalRecord};
use super::votes::IpVotes;
use super::{DiscoveryConfig, DiscoveryError};
use crate::p2p::gate::Admission;

/// How often the table is walked for records of our chain (op-node feeds `AllNodes()` once, 3 s
/// after start; walking again picks up records that arrived without a lookup, e.g. inbound).
pub const TABLE_WALK_INTERVAL: Duration = Duration::from_secs(30);
/// The first walk, after the bootnodes had time to answer (op-node's table kickoff).
pub const TABLE_KICKOFF: Duration = Duration::from_secs(3);
/// With the peer target met, one lookup tick in this many runs (op-node: 5 s fast, 20 s slow).
pub const SLOW_LOOKUP_TICKS: u64 = 4;
/// How often the queue is looked at besides after each event.
pub const DIAL_INTERVAL: Duration = Duration::from_secs(1);
/// How often the table is saved (besides on every change of our record and at shutdown).
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Distinct records of our chain remembered for the `discovered` count (4,096 node ids, 128 KiB).
pub const MAX_FOUND: usize = 4096;
/// Requests from the RPC waiting at most.
const REQUEST_CHANNEL: usize = 16;
/// How long an `enode://` bootnode's host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Addresses of one bootnode host name asked for its record.
const MAX_RESOLVED: usize = 4;

/// What a node's discovery dials with: the link to the event loop and the gate's rules.
#[derive(Debug)]
pub struct Dialling {
    /// The service's end of the link.
    pub link: ServiceLink,
    /// Banned and blocked peers, IPs and subnets are never dialled.
    pub admission: Admission,
    /// `--p2p.peers.lo`: dial while fewer peers are connected.
    pub target_peers: usize,
    /// Our peer id (never dialled).
    pub local: PeerId,
}

impl Dialling {
    /// A node's dialling half (our peer id is filled in by [`super::start_for_node`]).
    pub fn new(link: ServiceLink, admission: Admission, target_peers: usize) -> Self {
        Self {
            link,
            admission,
            target_peers,
            local: PeerId::random(),
        }
    }
}

enum Request {
    LocalEnr(oneshot::Sender<Enr>),
    Table(oneshot::Sender<Vec<Enr>>),
}

/// A cheap handle to the running service (the RPC and the devnet report read through it).
#[derive(Clone, Debug)]
pub struct DiscoveryHandle {
    requests: mpsc::Sender<Request>,
    stats: Arc<DiscoveryStats>,
    udp: SocketAddr,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

impl DiscoveryHandle {
    /// Our current ENR.
    pub async fn local_enr(&self) -> Result<Enr, DiscoveryError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::LocalEnr(tx))
            .await
            .map_err(|_| DiscoveryError::Stopped)?;
        rx.await.map_err(|_| DiscoveryError::Stopped)
    }

    /// The records in the node table.
    pub async fn table(&self) -> Result<Vec<Enr>, DiscoveryError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Table(tx))
            .await
            .map_err(|_| DiscoveryError::Stopped)?;
        rx.await.map_err(|_| DiscoveryError::Stopped)
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<DiscoveryStats> {
        &self.stats
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }
}

/// Binds the UDP socket, builds the local record and starts discv5 and the service task.
pub async fn start(
    config: DiscoveryConfig,
    keypair: &libp2p::identity::Keypair,
    dialling: Option<Dialling>,
    stats: Arc<DiscoveryStats>,
    shutdown: CancellationToken,
) -> Result<(DiscoveryHandle, tokio::task::JoinHandle<()>), DiscoveryError> {
    let key = records::discv5_key(keypair)?;
    let bind = SocketAddr::new(config.listen_ip, config.udp_port);
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|error| DiscoveryError::Bind { addr: bind, error })?;
    let udp = socket
        .local_addr()
        .map_err(|error| DiscoveryError::Bind { addr: bind, error })?;
    let store = config.store.clone();
    let kept = tokio::task::spawn_blocking(move || persist::load(&store)).await??;
    if kept.skipped > 0 {
        tracing::warn!(
            skipped = kept.skipped,
            "discovery file: lines that do not parse were skipped"
        );
    }
    // geth's fallback: a specific listen IP is our address until one is advertised or learned.
    let listen_ip = (!config.listen_ip.is_unspecified()).then_some(config.listen_ip);
    let record = LocalRecord {
        ip: config.advertise_ip.or(listen_ip),
        udp: config.advertise_udp.unwrap_or(udp.port()),
        tcp: config.advertise_tcp.unwrap_or(config.tcp_port),
        chain_id: config.chain_id,
    };
    let fresh = records::local_enr(&key, &record, 1)?;
    let seq = persist::next_seq(kept.local.as_ref(), &fresh);
    let enr = records::local_enr(&key, &record, seq)?;
    let socket = Arc::new(socket);
    let listen = match config.listen_ip {
        IpAddr::V4(_) => ListenConfig::FromSockets {
            ipv4: Some(socket),
            ipv6: None,
        },
        IpAddr::V6(_) => ListenConfig::FromSockets {
            ipv4: None,
            ipv6: Some(socket),
        },
    };
    let mut builder = ConfigBuilder::new(listen);
    if !config.listen_ip.is_loopback() {
        // discv5's packet filter with its default limits, the ones lighthouse runs on mainnet
        // (unsolicited packets: 10/s in total, 9/s per IP, 8/s per node, bursts allowed; at most
        // 10 node ids per IP; bans on abuse). Off on loopback, where every node of a test or
        // devnet shares one IP.
        builder.enable_packet_filter();
    }
    if config.advertise_ip.is_some() {
        // The operator's address stands; endpoint votes do not replace it.
        builder.disable_enr_update();
    }
    let mut discv5 = Discv5::new(enr.clone(), key, builder.build())
        .map_err(|e| DiscoveryError::Start(e.to_owned()))?;
    discv5
        .start()
        .await
        .map_err(|e| DiscoveryError::Start(format!("{e:?}")))?;
    let local_id = enr.node_id();
    let mut added = 0usize;
    for node in kept
        .nodes
        .iter()
        .chain(config.bootnodes.iter().filter_map(|b| match b {
            Bootnode::Enr(e) => Some(e.as_ref()),
            Bootnode::Enode { .. } => None,
        }))
    {
        if node.node_id() != local_id && discv5.add_enr(node.clone()).is_ok() {
            added += 1;
        }
    }
    let events = discv5
        .event_stream()
        .await
        .map_err(|e| DiscoveryError::Start(format!("{e:?}")))?;
    tracing::info!(enr = %enr.to_base64(), seq = enr.seq(), %udp, table = added,
        "discovery started; our ENR (hand it out as a bootnode)");
    let (requests_tx, requests) = mpsc::channel(REQUEST_CHANNEL);
    let handle = DiscoveryHandle {
        requests: requests_tx,
        stats: stats.clone(),
        udp,
    };
    let service = Service {
        discv5,
        config,
        dialling,
        queue: DialQueue::new(),
        votes: IpVotes::new(),
        found: HashSet::new(),
        stats,
    };
    let task = tokio::spawn(service.run(events, requests, shutdown));
    Ok((handle, task))
}

struct Service {
    discv5: Discv5,
    config: DiscoveryConfig,
    dialling: Option<Dialling>,
    queue: DialQueue,
    votes: IpVotes,
    /// Records of our chain found (≤ [`MAX_FOUND`]).
    found: HashSet<NodeId>,
    stats: Arc<DiscoveryStats>,
}

async fn next_report(dialling: &mut Option<Dialling>) -> Option<NetworkReport> {
    match dialling {
        Some(d) => d.link.reports.recv().await,
        None => std::future::pending().await,
    }
}

impl Service {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut requests: mpsc::Receiver<Request>,
        shutdown: CancellationToken,
    ) {
        let mut lookups: JoinSet<Result<Vec<Enr>, discv5::QueryError>> = JoinSet::new();
        let mut resolving: JoinSet<Vec<(PeerId, SocketAddr)>> = JoinSet::new();
        let mut bootstrap: JoinSet<Result<Enr, discv5::RequestError>> = JoinSet::new();
        for node in &self.config.bootnodes {
            if let Bootnode::Enode { peer, host, udp } = node {
                resolving.spawn(resolve(*peer, host.clone(), *udp));
            }
        }
        let mut lookup_tick = tokio::time::interval(self.config.lookup_interval);
        lookup_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let start = tokio::time::Instant::now();
        let mut walk_tick = tokio::time::interval_at(
            start + TABLE_KICKOFF.min(self.config.lookup_interval),
            TABLE_WALK_INTERVAL,
        );
        let mut dial_tick = tokio::time::interval(DIAL_INTERVAL);
        dial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut persist_tick = tokio::time::interval_at(start + PERSIST_INTERVAL, PERSIST_INTERVAL);
        let mut saving: Option<tokio::task::JoinHandle<()>> = None;
        let mut ticks: u64 = 0;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(event) = events.recv() => self.on_event(event),
                Some(request) = requests.recv() => match request {
                    Request::LocalEnr(reply) => { let _ = reply.send(self.discv5.local_enr()); }
                    Request::Table(reply) => { let _ = reply.send(self.discv5.table_entries_enr()); }
                },
                Some(done) = lookups.join_next() => {
                    let result = done.unwrap_or_else(|e| Err(discv5::QueryError::ChannelFailed(e.to_string())));
                    self.stats.lookup(result.is_ok());
                    match result {
                        Ok(found) => {
                            tracing::debug!(found = found.len(), "lookup finished");
                            for enr in found { self.offer(&enr); }
                        }
                        Err(e) => tracing::debug!(error = ?e, "lookup failed"),
                    }
                    self.schedule();
                }
                Some(Ok(addrs)) = resolving.join_next() => {
                    // An enode:// names no record: ask the node for its signed one.
                    for (peer, addr) in addrs {
                        bootstrap.spawn(self.discv5.request_enr(Bootnode::enode_multiaddr(peer, addr)));
                    }
                }
                Some(done) = bootstrap.join_next() => {
                    if let Ok(Err(e)) = &done {
                        tracing::warn!(error = ?e, "an enode:// bootnode did not send its record");
                    }
                    if let Ok(Ok(enr)) = done {
                        tracing::info!(enr = %enr.to_base64(), "bootnode record received");
                        if let Err(e) = self.discv5.add_enr(enr.clone()) {
                            tracing::debug!(error = e, "bootnode record not added");
                        }
                        self.offer(&enr);
                    }
                }
                Some(report) = next_report(&mut self.dialling) => self.on_report(report),
                _ = lookup_tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    // One lookup at a time (op-node pulls one random node per tick), slower
                    // once the peer target is met (a bootnode keeps the fast pace).
                    let satisfied = self
                        .dialling
                        .as_ref()
                        .is_some_and(|d| d.link.connected() >= d.target_peers);
                    if lookups.is_empty() && (!satisfied || ticks.is_multiple_of(SLOW_LOOKUP_TICKS)) {
                        lookups.spawn(self.discv5.find_node(NodeId::random()));
                    }
                    self.stats.set_table(self.discv5.table_entries_id().len());
                }
                _ = walk_tick.tick() => {
                    for enr in self.discv5.table_entries_enr() { self.offer(&enr); }
                    self.schedule();
                }
                _ = dial_tick.tick() => self.schedule(),
                _ = persist_tick.tick() => {
                    if saving.as_ref().is_none_or(|s| s.is_finished()) {
                        saving = Some(self.save());
                    }
                }
            }
        }
        lookups.abort_all();
        resolving.abort_all();
        bootstrap.abort_all();
        // A clean stop keeps the latest table and record.
        if let Some(s) = saving {
            let _ = s.await;
        }
        let _ = self.save().await;
        self.discv5.shutdown();
        tracing::debug!("discovery stopped");
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Discovered(enr) => self.offer(&enr),
            // A node that contacted us, or that we reached: a candidate too.
            Event::SessionEstablished(enr, _) => {
                self.offer(&enr);
                self.schedule();
            }
            Event::SocketUpdated(addr) => {
                tracing::info!(%addr, "discv5 endpoint votes changed our address");
                self.on_local_change();
            }
            Event::NodeInserted { .. } => {
                self.stats.set_table(self.discv5.table_entries_id().len());
            }
            _ => {}
        }
    }

    fn on_report(&mut self, report: NetworkReport) {
        match report {
            NetworkReport::Dialled { peer, ok } => {
                self.queue.on_result(peer, ok, Instant::now());
                self.stats.dialled(ok);
                self.schedule();
            }
            NetworkReport::Observed { peer, ip } => {
                if self.config.advertise_ip.is_some() {
                    return;
                }
                let Some(winner) = self.votes.vote(peer, ip) else {
                    return;
                };
                let enr = self.discv5.local_enr();
                let current = enr.ip4().map(IpAddr::V4).or(enr.ip6().map(IpAddr::V6));
                if current == Some(winner) {
                    return;
                }
                let udp = enr.udp4().or(enr.udp6()).unwrap_or(0);
                let tcp = enr.tcp4().or(enr.tcp6()).unwrap_or(self.config.tcp_port);
                let changed = self
                    .discv5
                    .update_local_enr_socket(SocketAddr::new(winner, udp), false)
                    | self
                        .discv5
                        .update_local_enr_socket(SocketAddr::new(winner, tcp), true);
                if changed {
                    tracing::info!(ip = %winner, "peers agree on our public address (identify)");
                    self.on_local_change();
                }
            }
        }
    }

    /// Logs and saves our record after a change.
    fn on_local_change(&mut self) {
        let enr = self.discv5.local_enr();
        tracing::info!(enr = %enr.to_base64(), seq = enr.seq(), "our ENR changed");
        drop(self.save());
    }

    /// Saves the record and table on the blocking pool.
    fn save(&mut self) -> tokio::task::JoinHandle<()> {
        let local = self.discv5.local_enr();
        let nodes = self.discv5.table_entries_enr();
        let store = self.config.store.clone();
        tokio::task::spawn_blocking(move || {
            if store == TableStore::Memory {
                return;
            }
            if let Err(e) = persist::save(&store, &local, &nodes) {
                tracing::warn!(error = %e, "cannot save the discovery table");
            }
        })
    }

    /// Classifies a found record and queues it if it is a dialable peer of our chain.
    fn offer(&mut self, enr: &Enr) {
        let chain_id = self.config.chain_id;
        match classify(enr, chain_id) {
            ChainMatch::Ours(_) => {
                if self.found.len() < MAX_FOUND && self.found.insert(enr.node_id()) {
                    self.stats.set_discovered(self.found.len());
                }
            }
            ChainMatch::Other(_) => return self.stats.candidate(CandidateResult::OtherChain),
            ChainMatch::Missing => return self.stats.candidate(CandidateResult::NoOpstack),
            ChainMatch::Malformed => return self.stats.candidate(CandidateResult::Malformed),
        }
        let Some(dialling) = &self.dialling else {
            return;
        };
        let Some(target) = records::dial_target(enr, chain_id) else {
            return self.stats.candidate(CandidateResult::NotDialable);
        };
        if target.peer == dialling.local {
            return;
        }
        let restricted = !self.config.netrestrict.is_empty()
            && !self
                .config
                .netrestrict
                .iter()
                .any(|n| n.contains(&target.ip));
        if restricted
            || dialling
                .admission
                .refusal(Some(target.peer), Some(target.ip), crate::clock::unix_now())
                .is_some()
        {
            return self.stats.candidate(CandidateResult::Refused);
        }
        let result = match self.queue.offer(target, Instant::now()) {
            Offer::Queued => CandidateResult::Queued,
            Offer::Duplicate => CandidateResult::Duplicate,
            Offer::BackedOff => CandidateResult::BackedOff,
            Offer::Full => CandidateResult::QueueFull,
        };
        self.stats.candidate(result);
    }

    /// Hands the event loop what may be dialled now.
    fn schedule(&mut self) {
        let Some(dialling) = &self.dialling else {
            return;
        };
        let now = Instant::now();
        let (dials, expired) =
            self.queue
                .next_dials(now, dialling.link.connected(), dialling.target_peers);
        for _ in &expired {
            self.stats.dialled(false);
        }
        for target in dials {
            let peer = target.peer;
            tracing::debug!(%peer, addr = %target.addr, "dialling a discovered peer");
            if dialling.link.dials.try_send(target).is_err() {
                self.queue.on_result(peer, false, now);
                self.stats.dialled(false);
            }
        }
    }
}

/// Resolves an `enode://` bootnode's host (an IP is used as is), bounded in time and in the
/// addresses kept.
async fn resolve(peer: PeerId, host: String, udp: u16) -> Vec<(PeerId, SocketAddr)> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![(peer, SocketAddr::new(ip, udp))];
    }
    match tokio::time::timeout(
        RESOLVE_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), udp)),
    )
    .await
    {
        Ok(Ok(addrs)) => addrs.take(MAX_RESOLVED).map(|a| (peer, a)).collect(),
        _ => {
            tracing::warn!(%host, "cannot resolve a bootnode's host name");
            Vec::new()
        }
    }
}
