//! The event loop's side of peer management (spec §7): it feeds the peer manager
//! ([`crate::p2p::peer_manager`]) what it sees (reports, judged gossip, timers, gossipsub
//! scores) and carries out the actions it answers with: scores pushed into gossipsub, peers
//! closed, bans announced, disk writes sent off the loop so it never waits on the database (ban
//! and list records through the ordered [`crate::p2p::record_queue`], score records to the blocking
//! pool).

use std::collections::HashMap;
use std::net::IpAddr;

use libp2p::PeerId;

use super::EventLoop;
use crate::clock::unix_now;
use crate::p2p::NetworkEvent;
use crate::p2p::peer_manager::{PeerAction, PeerManager};
use crate::p2p::peers::app_score::PeerOutcome;
use crate::p2p::peers::breakdown::ScoreBreakdown;
use crate::p2p::peers::equivocation::GossipJudgement;

impl EventLoop {
    pub(super) fn manager(&self) -> &PeerManager {
        &self.swarm.behaviour().gate.manager
    }

    pub(super) fn manager_mut(&mut self) -> &mut PeerManager {
        &mut self.swarm.behaviour_mut().gate.manager
    }

    fn connected(&self) -> Vec<PeerId> {
        self.swarm.connected_peers().copied().collect()
    }

    /// Carries out the peer manager's actions, in order.
    pub(super) fn apply(&mut self, actions: Vec<PeerAction>) {
        for action in actions {
            match action {
                PeerAction::PushScore { peer, score } => {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .set_application_score(&peer, score);
                }
                PeerAction::Judge(peer) => {
                    if self.swarm.is_connected(&peer) {
                        let score = self.swarm.behaviour().gossipsub.peer_score(&peer);
                        let more = self.manager_mut().judge(peer, score, unix_now());
                        self.apply(more);
                    }
                }
                PeerAction::Banned { peer, score, until } => {
                    tracing::warn!(%peer, score, until,
                        reasons = ?self.breakdown(&peer).downscore_reasons(),
                        "banning peer: score below threshold");
                    self.emit(NetworkEvent::PeerBanned { peer, score, until });
                }
                PeerAction::Disconnect { peer, .. } => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                PeerAction::Persist(write) => {
                    if let Some(records) = &self.records {
                        records.push_or_log(vec![write]);
                    }
                }
                PeerAction::ForgetRecords(peers) => {
                    let scorebook = self.manager().scorebook().clone();
                    tokio::task::spawn_blocking(move || {
                        for peer in &peers {
                            scorebook.forget(peer);
                        }
                    });
                }
            }
        }
    }

    /// An outcome reported by the sync client or the req/resp server.
    pub(super) fn on_report(&mut self, peer: PeerId, outcome: PeerOutcome) {
        let connected = self.swarm.is_connected(&peer);
        let actions = self.manager_mut().report(peer, outcome, connected);
        self.apply(actions);
    }

    /// A validation finished: the forwarder is charged what the verdict proves, and a charged
    /// peer's score goes to gossipsub and to the ban check at once, so a peer flooding invalid
    /// messages is cut off after the first one judged.
    pub(super) fn on_judgement(&mut self, peer: PeerId, judgement: GossipJudgement) {
        let connected = self.swarm.is_connected(&peer);
        let (charged, actions) = self.manager_mut().on_gossip(peer, judgement, connected);
        if let Some(outcome) = charged {
            self.metrics.peers.penalised(outcome);
        }
        self.apply(actions);
    }

    /// Copies every connected peer's application score into gossipsub (a no-op without
    /// scoring).
    pub(super) fn push_app_scores(&mut self) {
        let actions: Vec<PeerAction> = self
            .connected()
            .into_iter()
            .map(|peer| PeerAction::PushScore {
                peer,
                score: self.manager().scores().score(&peer),
            })
            .collect();
        self.apply(actions);
    }

    /// op-node's ban monitor: expired bans first, then one connected peer per tick.
    pub(super) fn check_one_peer(&mut self) {
        let expired = self.manager_mut().expire_bans();
        self.apply(expired);
        let connected = self.connected();
        if let Some(peer) = self.manager_mut().next_to_check(connected) {
            self.apply(vec![PeerAction::Judge(peer)]);
        }
    }

    /// One slot passed: connected peers' application counters decay.
    pub(super) fn decay_scores(&mut self) {
        let connected = self.connected();
        self.manager_mut().decay_slot(&connected);
    }

    /// The connection manager: trims above the high water mark, lowest scores first.
    pub(super) fn trim_peers(&mut self) {
        if self.swarm.connected_peers().count() <= self.manager().limits().hi {
            return;
        }
        let scored: Vec<(PeerId, f64)> = self
            .connected()
            .into_iter()
            .map(|p| (p, self.current_score(&p)))
            .collect();
        let actions = self.manager_mut().trim(&scored, unix_now());
        self.apply(actions);
    }

    /// The peer's score now: gossipsub's total, or the application score without scoring.
    fn current_score(&self, peer: &PeerId) -> f64 {
        self.swarm
            .behaviour()
            .gossipsub
            .peer_score(peer)
            .unwrap_or_else(|| self.manager().scores().score(peer))
    }

    /// A connected peer's score taken apart.
    pub(super) fn breakdown(&self, peer: &PeerId) -> ScoreBreakdown {
        let ip = self.manager().book().get(peer).and_then(|r| r.remote_ip);
        let on_ip = ip.map_or(1, |ip| self.peers_per_ip().get(&ip).copied().unwrap_or(1));
        self.breakdown_with(peer, ip, on_ip)
    }

    fn breakdown_with(&self, peer: &PeerId, ip: Option<IpAddr>, on_ip: usize) -> ScoreBreakdown {
        ScoreBreakdown::new(
            self.swarm.behaviour().gossipsub.peer_score(peer),
            self.manager().counters(peer),
            on_ip,
            ip.is_some_and(|ip| ip.is_loopback()),
        )
    }

    /// Connected peers per IP (gossipsub's IP colocation input).
    fn peers_per_ip(&self) -> HashMap<IpAddr, usize> {
        let mut counts = HashMap::new();
        for peer in self.swarm.connected_peers() {
            if let Some(ip) = self.manager().book().get(peer).and_then(|r| r.remote_ip) {
                *counts.entry(ip).or_default() += 1;
            }
        }
        counts
    }

    /// Every connected peer's score taken apart (one pass over the IP counts).
    pub(super) fn breakdowns(&self) -> Vec<(PeerId, ScoreBreakdown)> {
        let per_ip = self.peers_per_ip();
        self.swarm
            .connected_peers()
            .map(|peer| {
                let ip = self.manager().book().get(peer).and_then(|r| r.remote_ip);
                let on_ip = ip.and_then(|ip| per_ip.get(&ip)).copied().unwrap_or(1);
                (*peer, self.breakdown_with(peer, ip, on_ip))
            })
            .collect()
    }

    /// A disconnected peer's score: its last snapshot with today's application counters
    /// (gossipsub no longer scores it; its other terms are as last seen).
    pub(super) fn last_known(&self, peer: &PeerId) -> ScoreBreakdown {
        let manager = self.manager();
        let mut last = manager
            .scorebook()
            .get(peer)
            .map(|(_, b)| b)
            .unwrap_or_default();
        let app = manager.counters(peer);
        last.total += app.score() - last.app.score();
        last.app = app;
        last
    }

    /// What the scorebook records: every connected peer, and every disconnected peer whose
    /// application counters changed since its last record (a peer banned between two snapshots
    /// must still have its penalty recorded, so it outlives a restart). A disconnected peer's
    /// record is otherwise left to age out after the retention, as op-node's does.
    pub(super) fn scores_to_record(&self) -> Vec<(PeerId, ScoreBreakdown)> {
        let mut scores = self.breakdowns();
        let connected: std::collections::HashSet<PeerId> = scores.iter().map(|(p, _)| *p).collect();
        let manager = self.manager();
        for (peer, counters) in manager.scores().snapshot() {
            let recorded = manager.scorebook().get(&peer).map(|(_, b)| b.app);
            if !connected.contains(&peer) && recorded != Some(counters) {
                scores.push((peer, self.last_known(&peer)));
            }
        }
        scores
    }

    /// The scorebook snapshot (op-node: every 15 s), written off the loop, and the metrics'
    /// score sample of the connected peers (application scores pushed first, so gossipsub's
    /// total and the counters agree; nothing is sampled without scoring, as op-node).
    pub(super) fn snapshot_scores(&mut self) {
        self.push_app_scores();
        let scores = self.scores_to_record();
        let gossipsub = &self.swarm.behaviour().gossipsub;
        self.metrics.peers.observe_peer_scores(
            scores
                .iter()
                .filter(|(peer, _)| gossipsub.peer_score(peer).is_some())
                .map(|(_, b)| b),
        );
        let book = self.manager().scorebook().clone();
        tokio::task::spawn_blocking(move || book.snapshot(unix_now(), scores));
    }
}
