//! The event loop: the only owner of the `Swarm`.
//!
//! It never awaits anything slow: commands are answered from swarm state, gossip messages are
//! handed to validation tasks (or IGNOREd at once when [`super::VALIDATION_QUEUE`] is full), and
//! events go out with `try_send` (dropped and counted when the consumer lags, except accepted
//! blocks, which the validation task delivers with back-pressure).

mod admin;
mod peer_manager;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};

use super::conn_caps::IpCaps;
use super::gate::{Admission, Gate};
use super::peers::app_score::AppScores;
use super::peers::bans::BanList;
use super::peers::book::{Direction, PeerBook};
use super::peers::lists::PeerLists;
use super::peers::scorebook::ScoreBook;
use super::validation_shares::{ValidationShares, share_for};
use super::{BanConfig, ConnectionLimits};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, noise, ping, tcp, yamux};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::gossip::{self, Gossipsub};
use super::recent_messages::RecentMessages;
use super::reqresp::inbound::{self, InboundStreams};
use super::{
    Command, IDLE_CONNECTION_TIMEOUT, INLINE_VALIDATION_MAX_BYTES, NetworkConfig, NetworkError,
    NetworkEvent, STATIC_REDIAL_INTERVAL, VALIDATION_TIMEOUT, peer_id_of,
};
use crate::clock::unix_now;
use crate::metrics::Metrics;
use crate::validate::{BlockValidator, Verdict};
use crate::wire::MAX_GOSSIP_SIZE_BYTES;
use crate::wire::snappy::declared_len;

/// Replies waiting for a dial to finish (`opp2p_connectPeer`).
type PendingConnects = HashMap<PeerId, Vec<tokio::sync::oneshot::Sender<Result<(), NetworkError>>>>;

/// The protocols every op-gossip node runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so a banned peer is refused before any other protocol sees the connection.
    gate: Gate,
    /// Then the hard bounds (see [`super::conn_caps`]): per IP and subnet, the totals, memory.
    ip_caps: IpCaps,
    limits: libp2p::connection_limits::Behaviour,
    memory: libp2p::memory_connection_limits::Behaviour,
    gossipsub: Gossipsub,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    /// Raw streams for payload_by_number, opened outside this loop.
    stream: libp2p_stream::Behaviour,
    /// Inbound payload_by_number streams, served outside this loop (see [`inbound`]).
    inbound: inbound::Behaviour,
}

/// KiB of bodies decompressed at once by validations (those the message-id cache did not keep,
/// over 4 MiB less their raw size): one of the largest messages (10 MiB) with room to spare, so
/// that four validations of 10 MiB bombs at once cannot take 40 MiB of the node's 64 MiB memory
/// target (measured with `tests/bomb_flood.rs`, release: 20 MiB here left a 64.9 MiB peak).
/// Blocks whose body the cache kept never wait for it. A validation waiting here counts against
/// its 3 s timeout.
pub const DECOMPRESS_BUDGET_KIB: u32 = 12 * 1024;

/// A finished validation, on its way back to gossipsub.
struct Judged {
    message_id: MessageId,
    source: PeerId,
    acceptance: MessageAcceptance,
    /// The forwarder was charged a fault: its score goes to gossipsub and the ban check looks
    /// at it now, not at the next push or round-robin turn.
    penalised: bool,
}

/// Owns the swarm and runs until shutdown.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    inbound_streams: InboundStreams,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    judged_tx: mpsc::Sender<Judged>,
    judged_rx: mpsc::Receiver<Judged>,
    validator: Arc<BlockValidator>,
    /// Recent messages' ids and decompressed bodies, filled by gossipsub's id function.
    recent: Arc<RecentMessages>,
    /// Free places in the validation queue.
    queue: Arc<Semaphore>,
    /// Each peer's share of the queue.
    shares: Arc<ValidationShares>,
    /// KiB of message bodies being decompressed for validation ([`DECOMPRESS_BUDGET_KIB`]).
    decompress_budget: Arc<Semaphore>,
    /// Validations allowed to run at once.
    running: Arc<Semaphore>,
    static_peers: Vec<Multiaddr>,
    listen_addrs: Vec<Multiaddr>,
    shutdown: CancellationToken,
    /// Events dropped because the consumer lagged.
    pub(crate) dropped_events: Arc<AtomicU64>,
    /// Simulated loss of gossip deliveries (devnet `--drop`); 0 in production.
    lose_gossip: LossSimulation,
    /// Application scores, pushed into gossipsub every [`APP_SCORE_PUSH`].
    app_scores: Arc<AppScores>,
    /// Static peers: never banned by the monitor.
    static_ids: HashSet<PeerId>,
    bans: Arc<BanList>,
    ban: BanConfig,
    /// Round-robin position of the ban monitor among the connected peers.
    monitor_cursor: usize,
    /// Who may connect (the gate's rules, also applied to open connections after a change).
    admission: Admission,
    lists: Arc<PeerLists>,
    scorebook: Arc<ScoreBook>,
    limits: ConnectionLimits,
    /// What we know of every peer met.
    book: PeerBook,
    /// Dials started by `connect`, by peer; at most [`MAX_PENDING_CONNECTS`] replies.
    pending_connects: PendingConnects,
    /// Our identify agent version.
    agent_version: String,
    /// Gossip events, verdicts, peers and the peer score samples are recorded here.
    metrics: Arc<Metrics>,
}

/// Dials with a waiting caller at most (operator RPC calls); beyond it `connect` fails at once.
const MAX_PENDING_CONNECTS: usize = 64;
/// How often the connection manager looks for peers above the high water mark (go-libp2p's
/// connection manager trims at most once per "silence period"; op-node's is 1 min, 10 s here
/// keeps the overshoot short at little cost: the check is a count unless over the limit).
const TRIM_INTERVAL: Duration = Duration::from_secs(10);
/// The identify protocol version op-node nodes announce.
const IDENTIFY_PROTOCOL: &str = "/opstack/identify/1";

/// op-node's `PeerMonitor` checks one connected peer per second.
const BAN_MONITOR_INTERVAL: Duration = Duration::from_secs(1);

/// How often application scores are copied into gossipsub (its score is read by the ban
/// monitor about as often).
const APP_SCORE_PUSH: Duration = Duration::from_secs(1);

/// Loses a fixed fraction of gossip deliveries, as a lossy network would (devnet and tests: the
/// sync client must fill the holes). The choice hashes our peer id with the message id, so it is
/// reproducible and different nodes lose different blocks. A lost message is IGNOREd unvalidated;
/// gossipsub's duplicate cache then drops every other copy, so the block never arrives here.
#[derive(Debug, Clone, Copy)]
struct LossSimulation {
    /// Messages whose hash falls below this are lost (fraction × 2^64).
    threshold: u64,
    salt: u64,
}

impl LossSimulation {
    fn new(fraction: f64, local: &PeerId) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        local.hash(&mut hasher);
        Self {
            // `as` saturates: 1.0 maps to u64::MAX (lose everything), NaN to 0.
            threshold: (fraction.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
            salt: hasher.finish(),
        }
    }

    fn loses(&self, message_id: &MessageId) -> bool {
        use std::hash::{Hash, Hasher};
        if self.threshold == 0 {
            return false;
        }
        let mut hasher = std::hash::DefaultHasher::new();
        self.salt.hash(&mut hasher);
        message_id.0.hash(&mut hasher);
        hasher.finish() < self.threshold
    }
}

impl EventLoop {
    pub(crate) fn new(
        config: NetworkConfig,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<NetworkEvent>,
        shutdown: CancellationToken,
    ) -> Result<Self, NetworkError> {
        let chain = config.validator.chain().clone();
        let gossip_config = config.gossip;
        let local_peer_id = config.keypair.public().to_peer_id();
        let scoring = config.scoring;
        let admission = Admission::new(config.bans.clone(), config.lists.clone());
        let gate_stats = config.gate_stats.clone();
        let static_ids: HashSet<PeerId> = config
            .static_peers
            .iter()
            .filter_map(super::peer_id_of)
            .collect();
        let agent = config.agent_version.clone();
        let metrics = config.metrics.clone();
        let inbound_streams = InboundStreams::default();
        let recent = Arc::new(RecentMessages::default());
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| NetworkError::Setup(e.to_string()))?
            .with_behaviour(|key| {
                let mut limits = libp2p::connection_limits::Behaviour::new(
                    super::conn_caps::libp2p_limits(&config.limits, static_ids.len()),
                );
                for peer in &static_ids {
                    limits.bypass_peer_id(peer);
                }
                Ok(Behaviour {
                    gate: Gate::new(admission.clone(), gate_stats),
                    ip_caps: IpCaps::default(),
                    limits,
                    memory: super::conn_caps::memory_limit(),
                    gossipsub: gossip::build(
                        &chain,
                        &gossip_config,
                        scoring,
                        metrics.for_gossipsub(),
                        recent.clone(),
                    )?,
                    identify: identify::Behaviour::new(
                        identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                            .with_agent_version(agent.clone()),
                    ),
                    ping: ping::Behaviour::new(ping::Config::new()),
                    stream: libp2p_stream::Behaviour::new(),
                    inbound: inbound::Behaviour::new(inbound_streams.clone()),
                })
            })
            .map_err(|e| NetworkError::Setup(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();
        let addr: Multiaddr = match config.listen_ip {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}/tcp/{}", config.listen_port),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}/tcp/{}", config.listen_port),
        }
        .parse()
        .map_err(|e: libp2p::multiaddr::Error| NetworkError::Setup(e.to_string()))?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        let (judged_tx, judged_rx) = mpsc::channel(gossip_config.validation_queue.max(1));
        // Every peer the connection bounds let in, each with its share of the queue.
        let max_peers = config.limits.hi
            + super::conn_caps::INBOUND_SLACK
            + super::conn_caps::OUTBOUND_RESERVE
            + static_ids.len();
        Ok(Self {
            swarm,
            inbound_streams,
            commands,
            events,
            judged_tx,
            judged_rx,
            validator: config.validator,
            recent,
            queue: Arc::new(Semaphore::new(gossip_config.validation_queue)),
            shares: Arc::new(ValidationShares::new(share_for(
                gossip_config.validation_queue,
                max_peers,
            ))),
            running: Arc::new(Semaphore::new(gossip_config.validation_concurrency)),
            decompress_budget: Arc::new(Semaphore::new(DECOMPRESS_BUDGET_KIB as usize)),
            static_peers: config.static_peers,
            listen_addrs: Vec::new(),
            shutdown,
            dropped_events: Arc::default(),
            lose_gossip: LossSimulation::new(config.lose_gossip_fraction, &local_peer_id),
            app_scores: config.app_scores,
            static_ids,
            bans: config.bans,
            ban: config.ban,
            monitor_cursor: 0,
            admission,
            lists: config.lists,
            scorebook: config.scorebook.clone(),
            limits: config.limits,
            book: {
                let mut book = PeerBook::new();
                for (peer, (updated, _)) in config.scorebook.records() {
                    book.remember(peer, updated);
                }
                book
            },
            pending_connects: HashMap::new(),
            agent_version: config.agent_version,
            metrics: config.metrics,
        })
    }

    /// A control for request/response streams.
    pub(crate) fn stream_control(&self) -> libp2p_stream::Control {
        self.swarm.behaviour().stream.new_control()
    }

    /// Where inbound request/response streams are accepted.
    pub(crate) fn inbound_streams(&self) -> InboundStreams {
        self.inbound_streams.clone()
    }

    /// Runs until the shutdown token is cancelled.
    pub async fn run(mut self) {
        self.dial_static_peers();
        let mut redial = tokio::time::interval(STATIC_REDIAL_INTERVAL);
        redial.tick().await; // the first tick is immediate; the start-up dial already ran
        let mut push_scores = tokio::time::interval(APP_SCORE_PUSH);
        push_scores.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut monitor = tokio::time::interval(BAN_MONITOR_INTERVAL);
        monitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut trim = tokio::time::interval(TRIM_INTERVAL);
        trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshot = tokio::time::interval(self.metrics.score_sample_interval());
        snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.on_command(command),
                Some(judged) = self.judged_rx.recv() => {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &judged.message_id, &judged.source, judged.acceptance);
                    if judged.penalised {
                        self.punish_now(judged.source);
                    }
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = redial.tick() => self.dial_static_peers(),
                _ = push_scores.tick() => self.push_app_scores(),
                _ = monitor.tick() => self.check_one_peer(),
                _ = trim.tick() => self.trim_peers(),
                _ = snapshot.tick() => self.snapshot_scores(),
            }
        }
        // The last snapshot is written before the loop returns, so a clean stop keeps the
        // latest scores.
        self.scorebook.snapshot(unix_now(), self.scores_to_record());
        tracing::debug!("network event loop stopped");
    }

    fn emit(&self, event: NetworkEvent) {
        if self.events.try_send(event).is_err() {
            self.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn dial_static_peers(&mut self) {
        for addr in self.static_peers.clone() {
            let connected = peer_id_of(&addr).is_some_and(|p| self.swarm.is_connected(&p));
            if !connected && let Err(e) = self.swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "cannot dial static peer");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish {
                version,
                data,
                reply,
            } => {
                let topic = gossip::topics(self.validator.chain())
                    .into_iter()
                    .nth(usize::from(version.topic_index()));
                let result = match topic {
                    Some(topic) => self
                        .swarm
                        .behaviour_mut()
                        .gossipsub
                        .publish(topic, data)
                        .map(|_| self.metrics.published())
                        .map_err(|e| NetworkError::Publish(e.to_string())),
                    None => Err(NetworkError::Publish(format!("no topic for {version}"))),
                };
                let _ = reply.send(result);
            }
            Command::Dial { addr, reply } => {
                let _ = reply.send(
                    self.swarm
                        .dial(addr)
                        .map_err(|e| NetworkError::Dial(e.to_string())),
                );
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::PeerTopics { peer, reply } => {
                let topics = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(p, _)| **p == peer)
                    .flat_map(|(_, topics)| topics.into_iter().map(|t| t.as_str().to_owned()))
                    .collect::<HashSet<_>>();
                let _ = reply.send(topics.into_iter().collect());
            }
            other => self.on_admin_command(other),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, peer_id = %self.swarm.local_peer_id(), "listening");
                self.listen_addrs.push(address.clone());
                self.emit(NetworkEvent::Listening(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                let remote = endpoint.get_remote_address();
                tracing::debug!(%peer_id, addr = %remote, "connected");
                let direction = if endpoint.is_dialer() {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                self.book
                    .on_connected(peer_id, direction, remote.clone(), unix_now());
                // A peer back after its ban (the gate just let it in) starts afresh.
                self.clear_expired_bans();
                self.finish_connects(peer_id, Ok(()));
                if num_established.get() == 1 {
                    let peers = self.swarm.network_info().num_peers();
                    self.metrics.peer_connected(peers);
                    self.emit(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                let reason = self.book.on_closed(
                    peer_id,
                    num_established as usize,
                    cause.as_ref(),
                    unix_now(),
                );
                tracing::debug!(%peer_id, ?cause, reason = reason.map(|r| r.as_str()), "connection closed");
                if num_established == 0 {
                    let peers = self.swarm.network_info().num_peers();
                    self.metrics.peer_disconnected(peers);
                    self.emit(NetworkEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
                if let Some(peer) = peer_id {
                    self.finish_connects(peer, Err(NetworkError::Dial(error.to_string())));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.book.on_identify(peer_id, &info, unix_now()),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => self.book.on_ping(peer, rtt, unix_now()),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip_message(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                gossipsub::Event::GossipsubNotSupported { peer_id },
            )) => {
                tracing::debug!(%peer_id, "peer does not speak gossipsub");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::SlowPeer {
                failed_messages: f,
                ..
            })) => self.metrics.dropped_messages(f.priority + f.non_priority),
            _ => {}
        }
    }

    /// Hands a message to a validation task, or IGNOREs it when the queue is full.
    fn on_gossip_message(
        &mut self,
        source: PeerId,
        message_id: MessageId,
        message: gossipsub::Message,
    ) {
        let Some(version) = self
            .validator
            .chain()
            .version_of_topic(message.topic.as_str())
        else {
            // The subscription filter keeps other topics out; reject anything that slips through.
            self.metrics
                .validated(Verdict::Reject, Some("unknown_topic"));
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &source, MessageAcceptance::Reject);
            return;
        };
        if self.lose_gossip.loses(&message_id) {
            tracing::trace!(%source, "gossip delivery lost (simulated)");
            self.metrics
                .validated(Verdict::Ignore, Some("simulated_loss"));
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &source, MessageAcceptance::Ignore);
            return;
        }
        // The forwarder's share first: a flooding peer fills its own share, not the queue.
        let Some(share) = self.shares.try_take(source) else {
            tracing::warn!(%source, share = self.shares.share(),
                "peer's share of the validation queue used up; ignoring message");
            self.ignore_unqueued(&message_id, source);
            return;
        };
        let Ok(slot) = self.queue.clone().try_acquire_owned() else {
            tracing::warn!(%source, "validation queue full; ignoring message");
            self.ignore_unqueued(&message_id, source);
            return;
        };
        let depth = self.metrics.validation_queue().entered();
        let entered_at = std::time::Instant::now();
        let validator = self.validator.clone();
        let recent = self.recent.clone();
        let running = self.running.clone();
        let judged = self.judged_tx.clone();
        let events = self.events.clone();
        let app_scores = self.app_scores.clone();
        let metrics = self.metrics.clone();
        let data = message.data;
        let id = message_id.clone();
        // Small blocks are validated on this task's worker, big ones on the blocking pool (see
        // `INLINE_VALIDATION_MAX_BYTES`). Invalid snappy fails validation at once: small.
        let declared = declared_len(&data).ok();
        let inline = declared.is_none_or(|n| n <= INLINE_VALIDATION_MAX_BYTES);
        // A body the id function did not keep is decompressed again by the validator: its
        // declared size (bodies over the 10 MiB limit are refused before decompressing) is
        // taken from the decompression budget first.
        let decompress_kib = match declared {
            Some(n) if n <= MAX_GOSSIP_SIZE_BYTES && self.recent.decompressed(&id.0).is_none() => {
                u32::try_from(n.div_ceil(1024)).unwrap_or(u32::MAX)
            }
            _ => 0,
        };
        let budget = self.decompress_budget.clone();
        tokio::spawn(async move {
            let _slot = (slot, share, depth);
            let work = async {
                // The permit moves into the validation, so a timed-out one keeps its place until
                // it really ends and concurrency never exceeds the bound.
                let memory = match decompress_kib {
                    0 => None,
                    kib => Some(budget.acquire_many_owned(kib).await.ok()?),
                };
                let permit = running.acquire_owned().await.ok()?;
                let validate = move || {
                    let _permits = (permit, memory);
                    recent.validate(&validator, version, &id.0, &data, unix_now())
                };
                if inline {
                    return Some(validate());
                }
                tokio::task::spawn_blocking(validate).await.ok()
            };
            let result = tokio::time::timeout(VALIDATION_TIMEOUT, work)
                .await
                .ok()
                .flatten();
            let (acceptance, verdict, reason) = match &result {
                Some(Ok(_)) => (MessageAcceptance::Accept, Verdict::Accept, None),
                Some(Err(e)) => (to_acceptance(e.verdict()), e.verdict(), Some(e.reason())),
                None => (
                    MessageAcceptance::Ignore,
                    Verdict::Ignore,
                    Some("validation_timeout"),
                ),
            };
            metrics.validated(verdict, reason);
            metrics.validation_queue().judged(entered_at.elapsed());
            if let Some(Err(e)) = &result {
                tracing::debug!(%source, verdict = verdict.as_str(), error = %e, "gossip block not accepted");
            }
            // Gossipsub only forwards ACCEPTed messages: the forwarder answers for a REJECT whose
            // fault is in the bytes (never one that depends on our clock or settings), and for
            // the per-height limit only past its own share (see `peers::equivocation`).
            let mut penalised = false;
            if let Some(result) = &result
                && let Some(outcome) = app_scores.blame_forwarder(source, result)
            {
                app_scores.record(source, outcome);
                metrics.penalised(outcome);
                penalised = true;
            }
            let _ = judged
                .send(Judged {
                    message_id,
                    source,
                    acceptance,
                    penalised,
                })
                .await;
            let _ = events.try_send(NetworkEvent::MessageValidated {
                from: source,
                verdict,
                reason,
            });
            if let Some(Ok(block)) = result {
                let accepted_at = SystemTime::now();
                let _ = events
                    .send(NetworkEvent::BlockAccepted {
                        block: Box::new(block),
                        from: source,
                        accepted_at,
                    })
                    .await;
            }
        });
    }
}

impl EventLoop {
    /// IGNOREs a message that found no place to wait for validation (its forwarder's share or
    /// the queue is full), counting it.
    fn ignore_unqueued(&mut self, message_id: &MessageId, source: PeerId) {
        self.metrics.validation_queue_full();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, &source, MessageAcceptance::Ignore);
    }
}

/// Our verdict as gossipsub's.
fn to_acceptance(verdict: Verdict) -> MessageAcceptance {
    match verdict {
        Verdict::Accept => MessageAcceptance::Accept,
        Verdict::Ignore => MessageAcceptance::Ignore,
        Verdict::Reject => MessageAcceptance::Reject,
    }
}
