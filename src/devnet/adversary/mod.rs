//! A hostile node, for devnet scenarios and tests: it joins the honest network like any peer and
//! then misbehaves at a steady rate until stopped.
//!
//! Where it sits: outside every honest node. `op-gossip devnet --adversary <kind>` runs it inside
//! the orchestrator process, next to the node processes it attacks; tests can spawn it next to an
//! in-process [`crate::node::RunningNode`]. It owns its own swarm with the honest transport stack
//! (TCP + noise + yamux, identify, ping), gossipsub built by [`crate::p2p::gossip::build`] (so it
//! joins the block topics' meshes; scoring off, flood publishing on so every target gets every
//! message straight from it), and raw streams for payload_by_number.
//!
//! ```text
//!  spawn ──► dial every target ──► wait until each has it on the block topic (≤ JOIN_TIMEOUT)
//!        ──► every 1/rate s: forge one message (forge.rs) and publish it to all targets,
//!            or (spam-reqresp) one request to each target (spam.rs), ≤ MAX_INFLIGHT open each
//!        ──► re-dial targets that dropped it every REDIAL_INTERVAL (a ban makes them refuse)
//!  counters (stats.rs, atomics) ──► AdversaryHandle::counters, live
//! ```
//!
//! Honest blocks received over gossip are IGNOREd (never forwarded) and remembered: the
//! equivocator copies them, the spammer asks for their numbers.

pub mod forge;
mod kind;
pub mod spam;
mod stats;
pub use kind::AdversaryKind;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, noise, ping, tcp, yamux};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

pub use stats::{AdversaryCounters, Answers, TargetCounters};

use crate::chain::ChainSpec;
use crate::clock::{unix_millis, unix_now};
use crate::p2p::gossip::{self, GossipConfig, Gossipsub};
use crate::p2p::scoring::ScoringLevel;
use crate::wire::envelope::decode_message;
use crate::wire::signature::BlockSigner;
use crate::wire::{BlockVersion, ExecutionPayloadEnvelope};
use spam::Answer;
use stats::{AdversaryStats, TargetStats};

/// Messages (or requests per target) per second by default: 5× op-node's per-peer server rate
/// (4/s) and 40× a 2 s chain's block rate, plainly hostile, yet light enough to run beside a
/// handful of debug-build nodes on two cores.
pub const DEFAULT_RATE: u32 = 20;
/// Highest accepted rate (a tick per millisecond).
pub const MAX_RATE: u32 = 1000;
/// How long the adversary waits for every target to have it on the block topic before it starts
/// with those that do. Subscriptions travel right after the connection (a few ms on 127.0.0.1).
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often targets that dropped the adversary are dialled again: often enough to show a gate
/// refusing a banned peer several times within a short devnet run, rarely enough not to load the
/// honest accept path.
pub const REDIAL_INTERVAL: Duration = Duration::from_secs(2);
/// Requests open to one target at most (`spam-reqresp`); beyond it a tick skips the target. Twice
/// the server's 64 concurrent streams, so the spammer can fill a server that does not bound each
/// peer, while its own memory stays bounded.
pub const MAX_INFLIGHT: usize = 128;
/// Honest blocks remembered (the highest numbers).
const RECENT_BLOCKS: usize = 32;
/// `equivocate` copies only an honest block the adversary received at least this long ago, so the
/// honest block has reached every node before its height fills with equivocations (on 127.0.0.1
/// a block spreads in tens of ms); otherwise an honest block could arrive as some node's 7th
/// block at its height and be REJECTed there.
pub const EQUIVOCATION_DELAY: Duration = Duration::from_secs(1);
/// Equivocations sent at one height before moving to a newer one. Honest nodes accept the first 5
/// (the honest block is the 6th) and may get them from each other before our copies arrive; the
/// 6th and later are REJECTed everywhere, so only we deliver them, and 7 of those (12 in all)
/// put us over the honest per-height limit at every target. 16 leaves a margin.
pub const EQUIVOCATIONS_PER_HEIGHT: u32 = 16;

/// What to run.
#[derive(Clone)]
pub struct AdversaryConfig {
    /// The misbehaviour.
    pub kind: AdversaryKind,
    /// The chain of the honest nodes.
    pub chain: Arc<ChainSpec>,
    /// Nodes to attack, each `/ip4/…/tcp/…/p2p/<id>`.
    pub targets: Vec<Multiaddr>,
    /// Gossip messages per second, or requests per second to each target (`spam-reqresp`);
    /// clamped to 1..=[`MAX_RATE`].
    pub rate: u32,
    /// The sequencer key, needed by `invalid-block` and `equivocate` (on a devnet it is public:
    /// [`crate::devnet::DEVNET_SEQUENCER_KEY`]).
    pub sequencer_key: Option<BlockSigner>,
    /// The adversary's libp2p identity.
    pub keypair: libp2p::identity::Keypair,
}

/// Why the adversary could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdversaryError {
    /// The configuration cannot work.
    #[error("adversary: {0}")]
    Config(String),
    /// The swarm could not be built.
    #[error("adversary setup: {0}")]
    Setup(String),
}

/// A running adversary.
pub struct AdversaryHandle {
    peer_id: PeerId,
    kind: AdversaryKind,
    stats: Arc<AdversaryStats>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl AdversaryHandle {
    /// Its peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Its kind.
    pub fn kind(&self) -> AdversaryKind {
        self.kind
    }

    /// Whether it has joined its targets' topic and started misbehaving.
    pub fn joined(&self) -> bool {
        self.stats.has_joined()
    }

    /// Its counters now.
    pub fn counters(&self) -> AdversaryCounters {
        self.stats.snapshot()
    }

    /// Stops it (waiting at most a few seconds) and returns its final counters.
    pub async fn stop(self) -> AdversaryCounters {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        self.stats.snapshot()
    }
}

/// Spawns an adversary on the current runtime; it runs until `shutdown` is cancelled or
/// [`AdversaryHandle::stop`].
pub fn spawn(
    config: AdversaryConfig,
    shutdown: &CancellationToken,
) -> Result<AdversaryHandle, AdversaryError> {
    let sequencer = config.sequencer_key.clone();
    if config.kind.needs_sequencer_key() && sequencer.is_none() {
        return Err(AdversaryError::Config(format!(
            "{} needs the sequencer key",
            config.kind
        )));
    }
    let mut targets = Vec::new();
    for addr in &config.targets {
        let peer = crate::p2p::peer_id_of(addr).ok_or_else(|| {
            AdversaryError::Config(format!("target {addr} has no /p2p/<peer id>"))
        })?;
        targets.push(Target {
            addr: addr.clone(),
            peer,
            connected: false,
            identified: false,
        });
    }
    let stats = Arc::new(AdversaryStats::new(
        targets
            .iter()
            .map(|t| TargetStats::new(t.peer.to_string()))
            .collect(),
    ));
    let swarm = build_swarm(&config)?;
    let peer_id = *swarm.local_peer_id();
    let control = swarm.behaviour().stream.new_control();
    let stop = shutdown.child_token();
    let runner = Runner {
        swarm,
        kind: config.kind,
        chain: config.chain.clone(),
        rate: config.rate.clamp(1, MAX_RATE),
        sequencer,
        stranger: forge::stranger().map_err(|e| AdversaryError::Setup(e.to_string()))?,
        targets,
        stats: stats.clone(),
        stop: stop.clone(),
        started: Instant::now(),
        topics: gossip::topics(&config.chain),
        recent: BTreeMap::new(),
        serial: 0,
        equivocating: None,
        control,
        protocols: crate::p2p::reqresp::protocols(config.chain.chain_id),
        inflight: (0..config.targets.len())
            .map(|_| Arc::new(Semaphore::new(MAX_INFLIGHT)))
            .collect(),
        requests: JoinSet::new(),
    };
    let task = tokio::spawn(runner.run());
    Ok(AdversaryHandle {
        peer_id,
        kind: config.kind,
        stats,
        stop,
        task,
    })
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    gossipsub: Gossipsub,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    stream: libp2p_stream::Behaviour,
}

fn build_swarm(config: &AdversaryConfig) -> Result<Swarm<Behaviour>, AdversaryError> {
    let setup = |e: String| AdversaryError::Setup(e);
    let gossip_config = GossipConfig {
        flood_publish: true,
        ..GossipConfig::default()
    };
    let chain = config.chain.clone();
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(e.to_string()))?
        .with_behaviour(|key| {
            Ok(Behaviour {
                gossipsub: gossip::build(
                    &chain,
                    &gossip_config,
                    ScoringLevel::None,
                    None,
                    Default::default(),
                )?,
                identify: identify::Behaviour::new(
                    identify::Config::new("/opstack/identify/1".into(), key.public())
                        .with_agent_version("op-gossip-adversary".into()),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                stream: libp2p_stream::Behaviour::new(),
            })
        })
        .map_err(|e| setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(crate::p2p::IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

struct Target {
    addr: Multiaddr,
    peer: PeerId,
    /// Connected now.
    connected: bool,
    /// The target sent its identify record on the current connection. A gate refusing a banned
    /// peer closes the connection as soon as the handshake names it, before identify runs.
    identified: bool,
}

/// An honest block the adversary received.
struct Seen {
    envelope: ExecutionPayloadEnvelope,
    at: Instant,
}

struct Runner {
    swarm: Swarm<Behaviour>,
    kind: AdversaryKind,
    chain: Arc<ChainSpec>,
    rate: u32,
    sequencer: Option<BlockSigner>,
    stranger: BlockSigner,
    targets: Vec<Target>,
    stats: Arc<AdversaryStats>,
    stop: CancellationToken,
    started: Instant,
    topics: Vec<IdentTopic>,
    /// Honest blocks by number, the [`RECENT_BLOCKS`] highest.
    recent: BTreeMap<u64, Seen>,
    /// Makes every message distinct.
    serial: u64,
    /// `equivocate`: the height being attacked and the blocks sent there.
    equivocating: Option<(u64, u32)>,
    control: libp2p_stream::Control,
    protocols: [StreamProtocol; 2],
    /// Per target, places for open requests.
    inflight: Vec<Arc<Semaphore>>,
    requests: JoinSet<()>,
}

impl Runner {
    async fn run(mut self) {
        for i in 0..self.targets.len() {
            self.dial(i);
        }
        let mut act = tokio::time::interval(Duration::from_secs(1) / self.rate);
        act.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut redial = tokio::time::interval(REDIAL_INTERVAL);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        redial.tick().await; // the first tick is immediate; the first dials just went out
        loop {
            tokio::select! {
                () = self.stop.cancelled() => break,
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = redial.tick() => {
                    for i in 0..self.targets.len() {
                        if !self.targets[i].connected {
                            self.dial(i);
                        }
                    }
                }
                _ = act.tick() => {
                    if self.check_joined() {
                        self.act();
                    }
                }
                Some(_) = self.requests.join_next(), if !self.requests.is_empty() => {}
            }
        }
        // Dropping the set aborts requests still open.
        self.requests.abort_all();
    }

    fn dial(&mut self, i: usize) {
        if let Some(target) = self.targets.get(i)
            && let Err(e) = self.swarm.dial(target.addr.clone())
        {
            tracing::debug!(addr = %target.addr, error = %e, "adversary: dial failed");
            self.refused(i);
        }
    }

    fn refused(&self, i: usize) {
        if let Some(t) = self.stats.targets.get(i) {
            t.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn target_index(&self, peer: &PeerId) -> Option<usize> {
        self.targets.iter().position(|t| t.peer == *peer)
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                let Some(i) = self.target_index(&peer_id) else {
                    return;
                };
                if num_established.get() == 1
                    && let (Some(target), Some(t)) =
                        (self.targets.get_mut(i), self.stats.targets.get(i))
                {
                    target.connected = true;
                    target.identified = false;
                    t.connected.store(true, Ordering::Relaxed);
                    t.connections.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .max_connected
                        .fetch_max(self.stats.connected_now(), Ordering::Relaxed);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                let Some(i) = self.target_index(&peer_id) else {
                    return;
                };
                let identified = self.targets.get_mut(i).is_some_and(|t| {
                    t.connected = false;
                    std::mem::take(&mut t.identified)
                });
                if let Some(t) = self.stats.targets.get(i) {
                    t.connected.store(false, Ordering::Relaxed);
                }
                if !identified {
                    self.refused(i);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                ..
            })) => {
                if let Some(target) = self
                    .target_index(&peer_id)
                    .and_then(|i| self.targets.get_mut(i))
                {
                    target.identified = true;
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                ..
            } => {
                if let Some(i) = self.target_index(&peer) {
                    self.refused(i);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                // Never forward anything.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                self.remember(message.topic.as_str(), &message.data);
            }
            _ => {}
        }
    }

    /// Keeps an honest block from gossip (the first one seen at its number).
    fn remember(&mut self, topic: &str, data: &[u8]) {
        let Some(version) = self.chain.version_of_topic(topic) else {
            return;
        };
        let Ok(decoded) = decode_message(version, data) else {
            return;
        };
        let number = decoded.envelope.payload.block_number;
        self.recent.entry(number).or_insert(Seen {
            envelope: decoded.envelope,
            at: Instant::now(),
        });
        while self.recent.len() > RECENT_BLOCKS {
            self.recent.pop_first();
        }
    }

    /// Whether every target has the adversary on the current block topic (or the join timeout
    /// passed and at least one has).
    fn check_joined(&mut self) -> bool {
        if self.stats.has_joined() {
            return true;
        }
        let version = self.chain.block_version_at(unix_now());
        let Some(topic) = self.topics.get(usize::from(version.topic_index())) else {
            return false;
        };
        let topic = topic.hash();
        let subscribed = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(peer, topics)| self.target_index(peer).is_some() && topics.contains(&&topic))
            .count();
        let joined = subscribed == self.targets.len()
            || (subscribed > 0 && self.started.elapsed() >= JOIN_TIMEOUT);
        if joined {
            tracing::info!(kind = %self.kind, subscribed, "adversary joined; misbehaving");
            self.stats.joined(unix_millis(SystemTime::now()));
        }
        joined
    }

    fn act(&mut self) {
        self.serial += 1;
        let serial = self.serial;
        let now = unix_now();
        let key = self.sequencer.clone();
        let message = match (self.kind, key) {
            (AdversaryKind::SpamReqResp, _) => return self.spam(),
            (AdversaryKind::InvalidSig, _) => {
                forge::invalid_signature(&self.chain, &self.stranger, serial, now)
            }
            (AdversaryKind::InvalidBlock, Some(key)) => {
                forge::invalid_block(&self.chain, &key, serial, now)
            }
            (AdversaryKind::Equivocate, Some(key)) => {
                let honest = self.equivocation_height().and_then(|n| self.recent.get(&n));
                match honest {
                    Some(honest) => {
                        forge::equivocation(&self.chain, &key, &honest.envelope, serial)
                    }
                    None => {
                        self.stats.idle_ticks.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
            (AdversaryKind::Oversize, _) => {
                Ok((self.chain.block_version_at(now), forge::oversize(serial)))
            }
            // Refused at spawn: these kinds need the key.
            (AdversaryKind::InvalidBlock | AdversaryKind::Equivocate, None) => return,
        };
        match message {
            Ok((version, data)) => {
                if let Some((_, sent)) = self.equivocating.as_mut() {
                    *sent += 1;
                }
                self.publish(version, data);
            }
            Err(e) => tracing::warn!(error = %e, "adversary: cannot build its message"),
        }
    }

    /// The height to equivocate at: stay at one for [`EQUIVOCATIONS_PER_HEIGHT`] blocks, then move
    /// to the newest honest block received at least [`EQUIVOCATION_DELAY`] ago.
    fn equivocation_height(&mut self) -> Option<u64> {
        let eligible = self
            .recent
            .iter()
            .rev()
            .find(|(_, s)| s.at.elapsed() >= EQUIVOCATION_DELAY)
            .map(|(n, _)| *n);
        self.equivocating = match (self.equivocating, eligible) {
            (None, Some(n)) => Some((n, 0)),
            (Some((current, sent)), Some(n)) if sent >= EQUIVOCATIONS_PER_HEIGHT && n > current => {
                Some((n, 0))
            }
            (Some((current, _)), _) if !self.recent.contains_key(&current) => {
                eligible.map(|n| (n, 0))
            }
            (keep, _) => keep,
        };
        self.equivocating.map(|(n, _)| n)
    }

    fn publish(&mut self, version: BlockVersion, data: Vec<u8>) {
        let Some(topic) = self.topics.get(usize::from(version.topic_index())).cloned() else {
            return;
        };
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) => self.stats.sent_one(unix_millis(SystemTime::now())),
            Err(e) => {
                tracing::debug!(error = %e, "adversary: publish refused");
                self.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// One request to every connected target with a free in-flight place.
    fn spam(&mut self) {
        // Numbers cycle over the chain the adversary has seen, so servers look real blocks up.
        let head = self.recent.keys().next_back().copied().unwrap_or(1).max(1);
        for (i, target) in self.targets.iter().enumerate() {
            if !target.connected {
                continue;
            }
            let (Some(slots), Some(_)) = (self.inflight.get(i), self.stats.targets.get(i)) else {
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                self.stats.idle_ticks.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.serial += 1;
            let serial = self.serial;
            let protocol = self.protocols[(serial % 2) as usize].clone();
            let number = 1 + serial % head;
            let mut control = self.control.clone();
            let (peer, stats, stop) = (target.peer, self.stats.clone(), self.stop.clone());
            self.stats.sent_one(unix_millis(SystemTime::now()));
            if let Some(t) = stats.targets.get(i) {
                t.request_sent();
            }
            self.requests.spawn(async move {
                let _permit = permit;
                let answer = tokio::select! {
                    () = stop.cancelled() => return,
                    a = spam::request(&mut control, peer, protocol, number) => a,
                };
                if let Some(t) = stats.targets.get(i) {
                    t.answered(answer);
                }
                if answer == Answer::OpenFailed {
                    tracing::trace!(%peer, "adversary: request stream refused");
                }
            });
        }
    }
}
