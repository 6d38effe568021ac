//! The event loop: the only owner of the `Swarm`.
//!
//! It never awaits anything slow: commands are answered from swarm state, gossip messages are
//! handed to the validation scheduler ([`super::validation_task`]; IGNOREd at once when the
//! forwarder's share or the queue is full), verdicts go back to gossipsub and to the peer manager
//! ([`super::peer_manager`], whose actions `peer_actions` carries out), and events go out with
//! `try_send` (dropped and counted when the consumer lags, except accepted blocks, which the
//! validation task delivers with back-pressure).

mod admin;
mod discovery;
mod peer_actions;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};

use super::conn_caps::IpCaps;
use super::gate::Gate;
use super::peer_manager::{PeerManager, PeerManagerConfig};
use super::peers::app_score::PeerOutcome;
use super::peers::book::Direction;
use super::validation_shares::{ValidationShares, share_for};
use super::validation_task::{DECOMPRESS_BUDGET_KIB, Judged, Scheduler, Unqueued};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, noise, ping, tcp, yamux};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::NetworkMetrics;
use super::gossip::{self, Gossipsub};
use super::recent_messages::RecentMessages;
use super::reqresp::inbound::{self, InboundStreams};
use super::{
    Command, IDLE_CONNECTION_TIMEOUT, NetworkConfig, NetworkError, NetworkEvent,
    STATIC_REDIAL_INTERVAL, SetupError, peer_id_of,
};
use crate::clock::unix_now;
use crate::validate::{BlockValidator, Verdict};

/// Replies waiting for a dial to finish (`opp2p_connectPeer`).
type PendingConnects = HashMap<PeerId, Vec<tokio::sync::oneshot::Sender<Result<(), NetworkError>>>>;

/// The protocols every op-gossip node runs.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so a banned peer is refused before any other protocol sees the connection. It
    /// holds the peer manager.
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

/// Owns the swarm and runs until shutdown.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    inbound_streams: InboundStreams,
    commands: mpsc::Receiver<Command>,
    /// Outcomes reported by the sync client and the req/resp server.
    reports: mpsc::Receiver<(PeerId, PeerOutcome)>,
    events: mpsc::Sender<NetworkEvent>,
    judged_rx: mpsc::Receiver<Judged>,
    validator: Arc<BlockValidator>,
    /// Finds each gossip message its place in validation.
    scheduler: Scheduler,
    static_peers: Vec<Multiaddr>,
    listen_addrs: Vec<Multiaddr>,
    shutdown: CancellationToken,
    /// Events dropped because the consumer lagged.
    pub(crate) dropped_events: Arc<AtomicU64>,
    /// Deliveries lost on purpose before validation (the devnet's simulated loss; none in
    /// production).
    delivery_filter: Option<Arc<dyn super::DeliveryFilter>>,
    /// Where the peer manager's ban and list changes go to disk, in order (`None`: no store).
    records: Option<super::record_queue::RecordQueue>,
    /// The chain's block time: application scores decay once per slot.
    slot: Duration,
    /// Dials started by `connect`, by peer; at most [`MAX_PENDING_CONNECTS`] replies.
    pending_connects: PendingConnects,
    /// Our identify agent version.
    agent_version: String,
    /// Gossip events, verdicts, peers and the peer score samples are recorded here.
    metrics: NetworkMetrics,
    /// Discovery's dial requests and our reports (`None`: `--p2p.no-discovery`).
    discovery: Option<crate::discovery::link::LoopLink>,
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

impl EventLoop {
    pub(crate) fn new(
        config: NetworkConfig,
        commands: mpsc::Receiver<Command>,
        reports: mpsc::Receiver<(PeerId, PeerOutcome)>,
        events: mpsc::Sender<NetworkEvent>,
        shutdown: CancellationToken,
    ) -> Result<Self, NetworkError> {
        let chain = config.validator.chain().clone();
        let gossip_config = config.gossip;
        let scoring = config.scoring;
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
            .map_err(SetupError::Transport)?
            .with_behaviour(|key| {
                let manager = PeerManager::new(PeerManagerConfig {
                    scores: config.app_scores,
                    bans: config.bans,
                    lists: config.lists,
                    scorebook: config.scorebook,
                    static_ids: static_ids.clone(),
                    ban: config.ban,
                    limits: config.limits,
                });
                let mut limits = libp2p::connection_limits::Behaviour::new(
                    super::conn_caps::libp2p_limits(&config.limits, static_ids.len()),
                );
                for peer in &static_ids {
                    limits.bypass_peer_id(peer);
                }
                Ok(Behaviour {
                    gate: Gate::new(manager, gate_stats),
                    ip_caps: IpCaps::default(),
                    limits,
                    memory: super::conn_caps::memory_limit(),
                    gossipsub: gossip::build(
                        &chain,
                        &gossip_config,
                        scoring,
                        metrics
                            .registry
                            .for_gossipsub()
                            .map(|r| (r, &*metrics.gossip)),
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
            .map_err(SetupError::Behaviour)?
            .with_swarm_config(|c| {
                c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT)
                    .with_per_connection_event_buffer_size(super::CONNECTION_EVENT_BUFFER)
            })
            .build();
        let addr: Multiaddr = match config.listen_ip {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}/tcp/{}", config.listen_port),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}/tcp/{}", config.listen_port),
        }
        .parse()
        .map_err(SetupError::ListenAddr)?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.clone(),
                error: Arc::new(e),
            })?;
        let (judged_tx, judged_rx) = mpsc::channel(gossip_config.validation_queue.max(1));
        // Every peer the connection bounds let in, each with its share of the queue.
        let max_peers = config.limits.hi
            + super::conn_caps::INBOUND_SLACK
            + super::conn_caps::OUTBOUND_RESERVE
            + static_ids.len();
        let scheduler = Scheduler {
            validator: config.validator.clone(),
            recent,
            queue: Arc::new(Semaphore::new(gossip_config.validation_queue)),
            shares: Arc::new(ValidationShares::new(share_for(
                gossip_config.validation_queue,
                max_peers,
            ))),
            running: Arc::new(Semaphore::new(gossip_config.validation_concurrency)),
            decompress_budget: Arc::new(Semaphore::new(DECOMPRESS_BUDGET_KIB as usize)),
            judged: judged_tx,
            events: events.clone(),
            metrics: config.metrics.gossip.clone(),
        };
        Ok(Self {
            swarm,
            inbound_streams,
            commands,
            reports,
            events,
            judged_rx,
            validator: config.validator,
            scheduler,
            static_peers: config.static_peers,
            listen_addrs: Vec::new(),
            shutdown,
            dropped_events: Arc::default(),
            delivery_filter: config.delivery_filter,
            records: config.store.map(super::record_queue::RecordQueue::start),
            slot: Duration::from_secs(chain.block_time.max(1)),
            pending_connects: HashMap::new(),
            agent_version: config.agent_version,
            metrics: config.metrics,
            discovery: config.discovery,
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
        let mut snapshot = tokio::time::interval(self.metrics.peers.score_sample_interval());
        snapshot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut slot = tokio::time::interval(self.slot);
        slot.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                Some(command) = self.commands.recv() => self.on_command(command),
                Some((peer, outcome)) = self.reports.recv() => self.on_report(peer, outcome),
                Some(judged) = self.judged_rx.recv() => {
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &judged.message_id, &judged.source, judged.acceptance);
                    self.on_judgement(judged.source, judged.judgement);
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(target) = discovery::next_dial(&mut self.discovery) => self.on_discovery_dial(target),
                _ = redial.tick() => self.dial_static_peers(),
                _ = push_scores.tick() => self.push_app_scores(),
                _ = monitor.tick() => self.check_one_peer(),
                _ = trim.tick() => self.trim_peers(),
                _ = snapshot.tick() => self.snapshot_scores(),
                _ = slot.tick() => self.decay_scores(),
            }
        }
        // The last snapshot is written before the loop returns, so a clean stop keeps the
        // latest scores.
        self.manager()
            .scorebook()
            .snapshot(unix_now(), self.scores_to_record());
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
                        .map(|_| self.metrics.gossip.published())
                        .map_err(|e| NetworkError::Publish(Arc::new(e))),
                    None => Err(NetworkError::NoTopic(version)),
                };
                let _ = reply.send(result);
            }
            Command::Dial { addr, reply } => {
                let _ = reply.send(
                    self.swarm
                        .dial(addr)
                        .map_err(|e| NetworkError::Dial(Arc::new(e))),
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
                self.manager_mut().book_mut().on_connected(
                    peer_id,
                    direction,
                    remote.clone(),
                    unix_now(),
                );
                // A peer back after its ban (the gate just let it in) starts afresh.
                let expired = self.manager_mut().expire_bans();
                self.apply(expired);
                self.finish_connects(peer_id, Ok(()));
                if num_established.get() == 1 {
                    self.discovery_on_connected(peer_id);
                    let peers = self.swarm.network_info().num_peers();
                    self.metrics.gossip.peer_connected(peers);
                    self.emit(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                let reason = self.manager_mut().book_mut().on_closed(
                    peer_id,
                    num_established as usize,
                    cause.as_ref(),
                    unix_now(),
                );
                tracing::debug!(%peer_id, ?cause, reason = reason.map(|r| r.as_str()), "connection closed");
                if num_established == 0 {
                    self.discovery_on_closed();
                    let peers = self.swarm.network_info().num_peers();
                    self.metrics.gossip.peer_disconnected(peers);
                    self.emit(NetworkEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
                self.discovery_on_dial_failed(peer_id);
                if let Some(peer) = peer_id {
                    self.finish_connects(peer, Err(NetworkError::Dial(Arc::new(error))));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                self.discovery_on_identify(peer_id, &info);
                self.manager_mut()
                    .book_mut()
                    .on_identify(peer_id, &info, unix_now());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            })) => self.manager_mut().book_mut().on_ping(peer, rtt, unix_now()),
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
            })) => self
                .metrics
                .gossip
                .dropped_messages(f.priority + f.non_priority),
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
                .gossip
                .validated(Verdict::Reject, Some("unknown_topic"));
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &source, MessageAcceptance::Reject);
            return;
        };
        if self
            .delivery_filter
            .as_ref()
            .is_some_and(|f| f.loses(&message_id.0))
        {
            tracing::trace!(%source, "gossip delivery lost (simulated)");
            self.metrics
                .gossip
                .validated(Verdict::Ignore, Some("simulated_loss"));
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&message_id, &source, MessageAcceptance::Ignore);
            return;
        }
        let scheduled = self
            .scheduler
            .schedule(source, message_id.clone(), version, message.data);
        match scheduled {
            Ok(()) => {}
            Err(Unqueued::ShareUsed) => {
                tracing::warn!(%source, share = self.scheduler.shares.share(),
                    "peer's share of the validation queue used up; ignoring message");
                self.ignore_unqueued(&message_id, source);
            }
            Err(Unqueued::QueueFull) => {
                tracing::warn!(%source, "validation queue full; ignoring message");
                self.ignore_unqueued(&message_id, source);
            }
        }
    }
}

impl EventLoop {
    /// IGNOREs a message that found no place to wait for validation (its forwarder's share or
    /// the queue is full), counting it.
    fn ignore_unqueued(&mut self, message_id: &MessageId, source: PeerId) {
        self.metrics.gossip.validation_queue_full();
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(message_id, &source, MessageAcceptance::Ignore);
    }
}
