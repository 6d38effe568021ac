//! The adversary's task: the only owner of its swarm. It dials its targets, answers nothing
//! (honest blocks it receives are IGNOREd and remembered), and once it joined their block topic
//! misbehaves every 1/rate s: a forged message published to all ([`super::forge`]) or one
//! payload_by_number request to each ([`super::spam`]). Its counters ([`super::stats`]) are
//! atomics the [`super::AdversaryHandle`] reads while it runs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::spam::{self, Answer};
use super::stats::AdversaryStats;
use super::swarm::{Behaviour, BehaviourEvent};
use super::{
    AdversaryConfig, AdversaryError, AdversaryKind, EQUIVOCATION_DELAY, EQUIVOCATIONS_PER_HEIGHT,
    JOIN_TIMEOUT, MAX_INFLIGHT, MAX_RATE, REDIAL_INTERVAL, forge,
};
use crate::chain::ChainSpec;
use crate::clock::{unix_millis, unix_now};
use crate::p2p::gossip;
use crate::wire::envelope::decode_message;
use crate::wire::signature::BlockSigner;
use crate::wire::{BlockVersion, ExecutionPayloadEnvelope};

/// Honest blocks remembered (the highest numbers).
const RECENT_BLOCKS: usize = 32;

/// One node under attack.
pub(super) struct Target {
    addr: Multiaddr,
    peer: PeerId,
    /// Connected now.
    connected: bool,
    /// The target sent its identify record on the current connection. A gate refusing a banned
    /// peer closes the connection as soon as the handshake names it, before identify runs.
    identified: bool,
}

impl Target {
    /// A target not connected yet.
    pub(super) fn new(addr: Multiaddr, peer: PeerId) -> Self {
        Self {
            addr,
            peer,
            connected: false,
            identified: false,
        }
    }
}

/// An honest block the adversary received.
struct Seen {
    envelope: ExecutionPayloadEnvelope,
    at: Instant,
}

/// The adversary's state, owned by its task.
pub(super) struct Runner {
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
    /// The runner for `config` on `swarm`; `stats` has one entry per target, in order.
    pub(super) fn new(
        config: &AdversaryConfig,
        swarm: Swarm<Behaviour>,
        targets: Vec<Target>,
        stats: Arc<AdversaryStats>,
        stop: CancellationToken,
    ) -> Result<Self, AdversaryError> {
        let control = swarm.behaviour().stream.new_control();
        Ok(Self {
            swarm,
            kind: config.kind,
            chain: config.chain.clone(),
            rate: config.rate.clamp(1, MAX_RATE),
            sequencer: config.sequencer_key.clone(),
            stranger: forge::stranger().map_err(AdversaryError::Stranger)?,
            stats,
            stop,
            started: Instant::now(),
            topics: gossip::topics(&config.chain),
            recent: BTreeMap::new(),
            serial: 0,
            equivocating: None,
            control,
            protocols: crate::p2p::reqresp::protocols(config.chain.chain_id),
            inflight: (0..targets.len())
                .map(|_| Arc::new(Semaphore::new(MAX_INFLIGHT)))
                .collect(),
            requests: JoinSet::new(),
            targets,
        })
    }

    /// Runs until stopped.
    pub(super) async fn run(mut self) {
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
