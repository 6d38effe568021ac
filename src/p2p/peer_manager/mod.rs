//! The peer manager: the one owner of what the node knows and decides about its peers.
//!
//! ```text
//!  validation task ── GossipJudgement ─┐
//!  sync client ───── PeerOutcome ──────┤ (NetworkHandle::reporter, bounded)
//!  req/resp server ─ PeerOutcome ──────┤
//!  admin RPC ─────── OperatorChange ───┤ (command)
//!  event loop timers (monitor, trim,   │
//!  slot decay, ban expiry) ────────────┤
//!                                      ▼
//!        PeerManager (sans-IO; time and gossipsub scores passed in)
//!          owns: application scores, equivocation tracker, peer book,
//!                ban books and operator lists (sole writer), scorebook (sole writer)
//!                                      │ Vec<PeerAction>
//!                                      ▼
//!        event loop: push score into gossipsub, judge, close, emit, disk writes off the loop
//! ```
//!
//! It lives inside the swarm's first behaviour ([`gate::Gate`]), so the same state that decides
//! a ban refuses the peer's next connection before any protocol runs. Nothing here does I/O or
//! reads a clock: every call gets `now` (unix seconds), which is what lets the decisions be
//! tested without a swarm (`tests.rs`). Punishment comes only from typed outcomes
//! ([`PeerOutcome`], [`GossipJudgement`]): a REJECT that depends on our clock or settings carries
//! no fault and costs nothing (`shared/spec/op-p2p.md`, project decision 5).
//!
//! The ban books, the lists and the scorebook keep their in-memory tables behind `Arc`s so the
//! admin RPC and the metrics can read them; only this manager writes them.

pub mod actions;
pub mod gate;
pub mod metrics;
pub mod reporter;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use libp2p::PeerId;

pub use actions::{OperatorChange, PeerAction};
pub use reporter::PeerReporter;

use super::peers::app_score::{AppCounters, AppScores, PeerOutcome};
use super::peers::bans::BanList;
use super::peers::book::{DisconnectReason, PeerBook};
use super::peers::equivocation::{EquivocationTracker, GossipJudgement, charge};
use super::peers::lists::{ListChange, ListFull, PeerLists};
use super::peers::scorebook::ScoreBook;
use super::{BanConfig, ConnectionLimits};
use gate::{Admission, Refusal};

/// What the peer manager starts from.
pub struct PeerManagerConfig {
    /// Application scores (restored from the scorebook).
    pub scores: AppScores,
    /// The ban books (loaded from the store).
    pub bans: Arc<BanList>,
    /// The operator's lists (loaded from the store).
    pub lists: Arc<PeerLists>,
    /// Score snapshots (loaded from the store).
    pub scorebook: Arc<ScoreBook>,
    /// `--p2p.static` peers: never banned, never trimmed.
    pub static_ids: HashSet<PeerId>,
    /// When peers are banned.
    pub ban: BanConfig,
    /// The connection manager's water marks.
    pub limits: ConnectionLimits,
}

/// The peer manager's state and decisions (see the module docs).
pub struct PeerManager {
    scores: AppScores,
    forwarded: EquivocationTracker,
    book: PeerBook,
    admission: Admission,
    bans: Arc<BanList>,
    lists: Arc<PeerLists>,
    scorebook: Arc<ScoreBook>,
    static_ids: HashSet<PeerId>,
    ban: BanConfig,
    limits: ConnectionLimits,
    /// Round-robin position of the ban monitor among the connected peers.
    cursor: usize,
}

impl PeerManager {
    /// A manager over `config`'s books; peers with a score record are known to the book.
    pub fn new(config: PeerManagerConfig) -> Self {
        let mut book = PeerBook::new();
        for (peer, (updated, _)) in config.scorebook.records() {
            book.remember(peer, updated);
        }
        Self {
            scores: config.scores,
            forwarded: EquivocationTracker::new(),
            book,
            admission: Admission::new(config.bans.clone(), config.lists.clone()),
            bans: config.bans,
            lists: config.lists,
            scorebook: config.scorebook,
            static_ids: config.static_ids,
            ban: config.ban,
            limits: config.limits,
            cursor: 0,
        }
    }

    /// Why `peer` (when known) at `ip` (when known) is refused at `now`, if it is.
    pub fn refusal(&self, peer: Option<PeerId>, ip: Option<IpAddr>, now: u64) -> Option<Refusal> {
        self.admission.refusal(peer, ip, now)
    }

    /// What we know of every peer met.
    pub fn book(&self) -> &PeerBook {
        &self.book
    }

    /// The peer book, for the connection events the event loop sees.
    pub fn book_mut(&mut self) -> &mut PeerBook {
        &mut self.book
    }

    /// The application scores.
    pub fn scores(&self) -> &AppScores {
        &self.scores
    }

    /// `peer`'s application counters.
    pub fn counters(&self, peer: &PeerId) -> AppCounters {
        self.scores.counters(peer)
    }

    /// The score snapshots.
    pub fn scorebook(&self) -> &Arc<ScoreBook> {
        &self.scorebook
    }

    /// The connection manager's water marks.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Whether the connection manager must keep `peer` (static or operator-protected).
    pub fn is_protected(&self, peer: &PeerId) -> bool {
        self.static_ids.contains(peer) || self.lists.is_protected(peer)
    }

    /// One outcome of `peer` (req/resp client or server). A penalty of a connected peer goes
    /// into gossipsub and to the ban check at once.
    pub fn report(
        &mut self,
        peer: PeerId,
        outcome: PeerOutcome,
        connected: bool,
    ) -> Vec<PeerAction> {
        self.scores.record(peer, outcome);
        if !connected {
            return Vec::new();
        }
        let mut actions = vec![PeerAction::PushScore {
            peer,
            score: self.scores.score(&peer),
        }];
        if outcome.is_penalty() {
            actions.push(PeerAction::Judge(peer));
        }
        actions
    }

    /// A gossip message `peer` forwarded was judged: records its delivery and charges the fault
    /// the judgement proves, if any (see [`super::peers::equivocation`]). Returns the outcome
    /// charged and the actions.
    pub fn on_gossip(
        &mut self,
        peer: PeerId,
        judgement: GossipJudgement,
        connected: bool,
    ) -> (Option<PeerOutcome>, Vec<PeerAction>) {
        match charge(&mut self.forwarded, peer, judgement) {
            Some(fault) => {
                let outcome = PeerOutcome::of_fault(fault);
                (Some(outcome), self.report(peer, outcome, connected))
            }
            None => (None, Vec::new()),
        }
    }

    /// The ban rule (op-node's peer monitor): a peer that is neither static nor already banned,
    /// whose gossipsub score (application score included) is below the threshold, is banned for
    /// the configured time and disconnected. Without scoring (`score` unknown) nobody is banned.
    pub fn judge(&mut self, peer: PeerId, score: Option<f64>, now: u64) -> Vec<PeerAction> {
        let Some(score) = score else {
            return Vec::new();
        };
        if !self.ban.enabled
            || self.static_ids.contains(&peer)
            || score >= self.ban.threshold
            || self.bans.banned_until(&peer, now).is_some()
        {
            return Vec::new();
        }
        let until = now.saturating_add(self.ban.duration.as_secs());
        let mut actions = vec![PeerAction::Banned { peer, score, until }];
        actions.extend(self.bans.record_peer(peer, until).map(PeerAction::Persist));
        actions.extend(self.disconnect(peer, DisconnectReason::ScoreBelowThreshold, now));
        actions
    }

    /// The peer the ban monitor looks at on this tick: one connected peer per tick, round robin
    /// over the peers in id order (op-node checks one per second).
    pub fn next_to_check(&mut self, mut connected: Vec<PeerId>) -> Option<PeerId> {
        if connected.is_empty() {
            return None;
        }
        connected.sort_unstable();
        self.cursor = (self.cursor + 1) % connected.len();
        connected.get(self.cursor).copied()
    }

    /// Peers whose ban expired start afresh: their application counters and score records are
    /// dropped, so a peer that served its ban is not banned again at once for the same faults.
    /// The expired ban records of peers and IPs are removed from disk (unless banned again).
    pub fn expire_bans(&mut self) -> Vec<PeerAction> {
        let expired = self.bans.take_expired();
        let expired_ips = self.bans.take_expired_ips();
        let mut actions = Vec::with_capacity(2 * expired.len() + expired_ips.len() + 1);
        for ip in expired_ips {
            actions.extend(self.bans.expired_ip_write(ip).map(PeerAction::Persist));
        }
        if expired.is_empty() {
            return actions;
        }
        for peer in &expired {
            tracing::info!(%peer, "ban expired: its score starts afresh");
            self.scores.forget(peer);
            actions.push(PeerAction::PushScore {
                peer: *peer,
                score: 0.0,
            });
            actions.extend(self.bans.expired_peer_write(*peer).map(PeerAction::Persist));
        }
        actions.push(PeerAction::ForgetRecords(expired));
        actions
    }

    /// The connection manager: above the high water mark, close the lowest-scored peers (with
    /// their scores now) that are neither protected nor within their grace period, down to the
    /// low water mark.
    pub fn trim(&mut self, connected: &[(PeerId, f64)], now: u64) -> Vec<PeerAction> {
        if connected.len() <= self.limits.hi {
            return Vec::new();
        }
        let grace = self.limits.grace.as_secs();
        let mut candidates: Vec<(f64, PeerId)> = connected
            .iter()
            .filter(|(p, _)| !self.is_protected(p))
            .filter(|(p, _)| {
                self.book
                    .get(p)
                    .and_then(|r| r.connected_since)
                    .is_some_and(|since| since.saturating_add(grace) <= now)
            })
            .map(|(p, score)| (*score, *p))
            .collect();
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let excess = connected.len().saturating_sub(self.limits.lo);
        tracing::info!(
            connected = connected.len(),
            hi = self.limits.hi,
            lo = self.limits.lo,
            closing = excess.min(candidates.len()),
            "too many peers: trimming"
        );
        candidates
            .into_iter()
            .take(excess)
            .flat_map(|(_, peer)| self.disconnect(peer, DisconnectReason::TooManyPeers, now))
            .collect()
    }

    /// One slot passed: the application counters of `connected` peers decay (op-node decays
    /// only those).
    pub fn decay_slot(&mut self, connected: &[PeerId]) {
        self.scores.decay_slot(connected);
    }

    /// Marks `peer` as closing for `reason` and asks for its connections to be closed.
    pub fn disconnect(
        &mut self,
        peer: PeerId,
        reason: DisconnectReason,
        now: u64,
    ) -> Vec<PeerAction> {
        self.book.mark_disconnecting(peer, reason, now);
        vec![PeerAction::Disconnect { peer, reason }]
    }

    /// The operator's change: in memory now (the gate applies it to the next connection), the
    /// disk write and the closing of connections the gate would now refuse as actions.
    pub fn operator(
        &mut self,
        change: OperatorChange,
        connected: &[PeerId],
        now: u64,
    ) -> Result<Vec<PeerAction>, ListFull> {
        let mut actions = Vec::new();
        let write = match change {
            OperatorChange::BanPeer { peer, until } => self.bans.record_peer(peer, until),
            OperatorChange::UnbanPeer(peer) => self.bans.lift_peer(&peer),
            OperatorChange::BanIp { ip, until } => self.bans.record_ip(ip, until),
            OperatorChange::UnbanIp(ip) => self.bans.lift_ip(&ip),
            OperatorChange::List(list) => self.lists.apply(list)?,
            OperatorChange::Disconnect(peer) => {
                actions.extend(self.disconnect(peer, DisconnectReason::Operator, now));
                self.book.forget_addresses(&peer);
                self.lists.apply(ListChange::UnblockPeer(peer))?
            }
        };
        actions.extend(write.map(PeerAction::Persist));
        if change.may_refuse() {
            actions.extend(self.close_refused(connected, now));
        }
        Ok(actions)
    }

    /// Closes the connected peers the gate would now refuse (after a ban or a block).
    pub fn close_refused(&mut self, connected: &[PeerId], now: u64) -> Vec<PeerAction> {
        let refused: Vec<(PeerId, DisconnectReason)> = connected
            .iter()
            .filter_map(|peer| {
                let ip = self.book.get(peer).and_then(|r| r.remote_ip);
                self.admission.refusal(Some(*peer), ip, now).map(|r| {
                    let reason = if r.is_ban() {
                        DisconnectReason::Banned
                    } else {
                        DisconnectReason::Blocked
                    };
                    (*peer, reason)
                })
            })
            .collect();
        refused
            .into_iter()
            .flat_map(|(peer, reason)| {
                tracing::info!(%peer, reason = reason.as_str(), "closing a peer the gate now refuses");
                self.disconnect(peer, reason, now)
            })
            .collect()
    }
}
