//! Peer management, run by the event loop on its timers (spec §7): application scores pushed
//! into gossipsub, the ban monitor, the connection manager (trim above `--p2p.peers.hi` down to
//! `--p2p.peers.lo`), and the scorebook snapshot. Disk writes (bans, scores) go to the blocking
//! pool so the loop never waits on the database.

use std::collections::HashMap;
use std::net::IpAddr;

use libp2p::PeerId;

use super::EventLoop;
use crate::clock::unix_now;
use crate::p2p::NetworkEvent;
use crate::p2p::peers::book::DisconnectReason;
use crate::p2p::peers::breakdown::ScoreBreakdown;

impl EventLoop {
    /// Copies every connected peer's application score into gossipsub (a no-op without
    /// scoring).
    pub(super) fn push_app_scores(&mut self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        let gossipsub = &mut self.swarm.behaviour_mut().gossipsub;
        for peer in peers {
            gossipsub.set_application_score(&peer, self.app_scores.score(&peer));
        }
    }

    /// op-node's ban monitor: one connected peer per tick, round robin; a non-static peer whose
    /// gossipsub score (application score included) is below the threshold is banned and
    /// disconnected. Without scoring, scores stay unknown and nobody is banned.
    pub(super) fn check_one_peer(&mut self) {
        self.clear_expired_bans();
        let mut peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        if peers.is_empty() {
            return;
        }
        peers.sort_unstable();
        self.monitor_cursor = (self.monitor_cursor + 1) % peers.len();
        if let Some(peer) = peers.get(self.monitor_cursor).copied() {
            self.check_peer(peer);
        }
    }

    /// A validation just charged `peer` a fault: its application score goes into gossipsub and
    /// the ban check runs on it now, so a peer flooding invalid messages is cut off after the
    /// first one judged instead of at its next round-robin turn (up to a second per peer later).
    pub(super) fn punish_now(&mut self, peer: PeerId) {
        if !self.swarm.is_connected(&peer) {
            return;
        }
        let score = self.app_scores.score(&peer);
        self.swarm
            .behaviour_mut()
            .gossipsub
            .set_application_score(&peer, score);
        self.check_peer(peer);
    }

    /// Bans and disconnects `peer` if its score is below the threshold (never a static peer).
    fn check_peer(&mut self, peer: PeerId) {
        if !self.ban.enabled || self.static_ids.contains(&peer) {
            return;
        }
        let Some(score) = self.swarm.behaviour().gossipsub.peer_score(&peer) else {
            return;
        };
        if score < self.ban.threshold {
            let until = unix_now().saturating_add(self.ban.duration.as_secs());
            tracing::warn!(%peer, score, until, reasons = ?self.breakdown(&peer).downscore_reasons(),
                "banning peer: score below threshold");
            // In force now; only the disk write goes to the blocking pool.
            tokio::task::spawn_blocking(self.bans.ban_then_persist(peer, until));
            self.close_peer(peer, DisconnectReason::ScoreBelowThreshold);
            self.emit(NetworkEvent::PeerBanned { peer, score, until });
        }
    }

    /// Clears the scores of peers whose ban expired (see [`crate::p2p::peers::bans::BanList::
    /// take_expired`]): before the ban monitor looks at them and before their score is pushed.
    pub(super) fn clear_expired_bans(&mut self) {
        let expired = self.bans.take_expired();
        if expired.is_empty() {
            return;
        }
        for peer in &expired {
            tracing::info!(%peer, "ban expired: its score starts afresh");
            self.app_scores.forget(peer);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(peer, 0.0);
        }
        let scorebook = self.scorebook.clone();
        tokio::task::spawn_blocking(move || {
            for peer in &expired {
                scorebook.forget(peer);
            }
        });
    }

    /// Marks `peer` as closing for `reason` and closes its connections.
    pub(super) fn close_peer(&mut self, peer: PeerId, reason: DisconnectReason) {
        self.book.mark_disconnecting(peer, reason, unix_now());
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    /// Whether the connection manager must keep `peer` (static or operator-protected).
    pub(super) fn is_protected(&self, peer: &PeerId) -> bool {
        self.static_ids.contains(peer) || self.lists.is_protected(peer)
    }

    /// The connection manager: above the high water mark, close the lowest-scored peers that
    /// are neither protected nor within their grace period, down to the low water mark.
    pub(super) fn trim_peers(&mut self) {
        let connected = self.swarm.connected_peers().count();
        if connected <= self.limits.hi {
            return;
        }
        let now = unix_now();
        let grace = self.limits.grace.as_secs();
        let mut candidates: Vec<(f64, PeerId)> = self
            .swarm
            .connected_peers()
            .copied()
            .filter(|p| !self.is_protected(p))
            .filter(|p| {
                self.book
                    .get(p)
                    .and_then(|r| r.connected_since)
                    .is_some_and(|since| since.saturating_add(grace) <= now)
            })
            .map(|p| (self.current_score(&p), p))
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let excess = connected.saturating_sub(self.limits.lo);
        tracing::info!(
            connected,
            hi = self.limits.hi,
            lo = self.limits.lo,
            closing = excess.min(candidates.len()),
            "too many peers: trimming"
        );
        for (_, peer) in candidates.into_iter().take(excess) {
            self.close_peer(peer, DisconnectReason::TooManyPeers);
        }
    }

    /// The peer's score now: gossipsub's total, or the application score without scoring.
    fn current_score(&self, peer: &PeerId) -> f64 {
        self.swarm
            .behaviour()
            .gossipsub
            .peer_score(peer)
            .unwrap_or_else(|| self.app_scores.score(peer))
    }

    /// A connected peer's score taken apart.
    pub(super) fn breakdown(&self, peer: &PeerId) -> ScoreBreakdown {
        let ip = self.book.get(peer).and_then(|r| r.remote_ip);
        let on_ip = ip.map_or(1, |ip| self.peers_per_ip().get(&ip).copied().unwrap_or(1));
        self.breakdown_with(peer, ip, on_ip)
    }

    fn breakdown_with(&self, peer: &PeerId, ip: Option<IpAddr>, on_ip: usize) -> ScoreBreakdown {
        ScoreBreakdown::new(
            self.swarm.behaviour().gossipsub.peer_score(peer),
            self.app_scores.counters(peer),
            on_ip,
            ip.is_some_and(|ip| ip.is_loopback()),
        )
    }

    /// Connected peers per IP (gossipsub's IP colocation input).
    fn peers_per_ip(&self) -> HashMap<IpAddr, usize> {
        let mut counts = HashMap::new();
        for peer in self.swarm.connected_peers() {
            if let Some(ip) = self.book.get(peer).and_then(|r| r.remote_ip) {
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
                let ip = self.book.get(peer).and_then(|r| r.remote_ip);
                let on_ip = ip.and_then(|ip| per_ip.get(&ip)).copied().unwrap_or(1);
                (*peer, self.breakdown_with(peer, ip, on_ip))
            })
            .collect()
    }

    /// A disconnected peer's score: its last snapshot with today's application counters
    /// (gossipsub no longer scores it; its other terms are as last seen).
    pub(super) fn last_known(&self, peer: &PeerId) -> ScoreBreakdown {
        let mut last = self.scorebook.get(peer).map(|(_, b)| b).unwrap_or_default();
        let app = self.app_scores.counters(peer);
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
        for (peer, counters) in self.app_scores.snapshot() {
            let recorded = self.scorebook.get(&peer).map(|(_, b)| b.app);
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
        self.metrics.observe_peer_scores(
            scores
                .iter()
                .filter(|(peer, _)| gossipsub.peer_score(peer).is_some())
                .map(|(_, b)| b),
        );
        let book = self.scorebook.clone();
        tokio::task::spawn_blocking(move || book.snapshot(unix_now(), scores));
    }
}
