//! The sans-IO heart of gap filling: which numbers to ask for, what to make of each answer, and
//! when a fetched payload may enter the store (op-node's trusted walk-back, spec §6.3).
//!
//! ```text
//!  Store::holes ──on_holes──► queue (highest first) ──next_request──► peer worker ──► peer
//!                                                                      │ answer
//!  Store ◄── SyncAction::Store ◄── promote ◄── quarantine ◄──on_response┘
//!  peer manager ◄── SyncAction::Score (valid / error / rejected), via the PeerReporter
//! ```
//!
//! Trust: a block stored from gossip was signed by the sequencer, so the parent hash it claims
//! is trusted. A fetched payload (unsigned, anyone could make one with a self-consistent hash)
//! waits in the quarantine until its hash is trusted, then is promoted: handed to the store and
//! its own parent hash becomes trusted, which may promote the payload below it. Payloads that
//! can no longer be on the chain (another hash was promoted at their number, or they fall out of
//! the quarantine untrusted) count as rejected for the peer that sent them.
//!
//! Bounds: queued plus in-flight numbers ≤ `max_gap`; quarantine ≤ [`QUARANTINE_CAPACITY`]
//! payloads and [`QUARANTINE_MAX_BYTES`], [`QUARANTINE_PEER_BYTES`] per peer
//! ([`super::quarantine`]); trusted set ≤ [`TRUSTED_CAPACITY`] hashes; promoted-but-not-yet-stored and expected hashes: one entry per
//! number above the head, at most `max_gap` plus the holes' edges.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use libp2p::PeerId;

use super::quarantine::Quarantine;
use crate::p2p::peers::app_score::PeerOutcome;
use crate::p2p::reqresp::client::RequestError;
use crate::store::{BlockRef, Holes, StoredBlock};

/// The code op-node's server answers when it rate limits a requester (its "unknown error";
/// our server answers it for rate-limit waits that ran out and for overload).
const RATE_LIMITED_CODE: u8 = 3;

pub use super::quarantine::{QUARANTINE_CAPACITY, QUARANTINE_MAX_BYTES, QUARANTINE_PEER_BYTES};
/// Hashes known to be on the chain (op-node's trusted-hash LRU: 10,000).
pub const TRUSTED_CAPACITY: usize = 10_000;
/// Queue entries looked at when picking a number for a peer (skipping those it lacks).
const NOT_FOUND_SCAN: usize = 64;
/// A promoted payload not seen in the store after this long is asked for again (its write was
/// lost or it never linked).
const PROMOTED_EXPIRY: Duration = Duration::from_secs(30);

/// Settings of the plan.
#[derive(Debug, Clone, Copy)]
pub struct PlanConfig {
    /// Longest hole that is filled; the head jumps over a longer one ([`SyncAction::Reanchor`]).
    pub max_gap: u64,
    /// After a "not found" cancels the plan, how long to wait before planning again (op-node
    /// re-checks its unsafe queue every two block times).
    pub replan_after_not_found: Duration,
}

/// What the I/O side must do.
#[derive(Debug)]
pub enum SyncAction {
    /// Store this trusted payload (fetched from `from`).
    Store {
        /// The payload.
        block: Box<StoredBlock>,
        /// The peer that sent it.
        from: PeerId,
    },
    /// Record an outcome in the peer's application score.
    Score {
        /// The peer.
        peer: PeerId,
        /// What its answer amounted to.
        outcome: PeerOutcome,
    },
    /// The hole below this stored block is longer than `max_gap` (or the chain re-organised
    /// under the head): move the head to it instead of filling.
    Reanchor(BlockRef),
}

/// Counters of what the plan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanStats {
    /// Payloads promoted into the store.
    pub promoted: u64,
    /// Valid responses.
    pub valid: u64,
    /// Failed requests (error codes, transport, decoding, wrong number or hash).
    pub errors: u64,
    /// "Not found" answers (each cancels the plan without penalty).
    pub not_found: u64,
    /// Payloads rejected (never linked to the chain).
    pub rejected: u64,
    /// Times the head jumped over a hole.
    pub reanchored: u64,
}

/// How much of each bounded piece of the plan's state is in use (see the module docs for the
/// bounds); checked by the `sync_plan` fuzz target after every step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanFootprint {
    /// Numbers waiting for a request (with `in_flight`, at most `max_gap`).
    pub queued: usize,
    /// Numbers asked for and not yet answered or handed back.
    pub in_flight: usize,
    /// Payloads in the quarantine (at most [`QUARANTINE_CAPACITY`]).
    pub quarantined: usize,
    /// Their bytes (at most [`QUARANTINE_MAX_BYTES`]).
    pub quarantined_bytes: usize,
    /// Trusted hashes (at most [`TRUSTED_CAPACITY`]).
    pub trusted: usize,
    /// Promoted numbers not yet below the head.
    pub promoted: usize,
    /// Numbers whose hash is known from the block above.
    pub expected: usize,
}

/// The plan. One owner (the sync task); workers go through it for every request and answer.
pub struct SyncPlan {
    config: PlanConfig,
    head: u64,
    queue: BTreeSet<u64>,
    in_flight: HashSet<u64>,
    /// Number → hash handed to the store, not yet below the head.
    promoted: BTreeMap<u64, (B256, Instant)>,
    /// Number → the only hash it can have (the parent claimed by a trusted block above it).
    expected: BTreeMap<u64, B256>,
    quarantine: Quarantine,
    trusted: HashSet<B256>,
    trusted_order: VecDeque<B256>,
    paused_until: Option<Instant>,
    /// Number → peers that answered "not found" for it (not asked for it again).
    not_found: HashMap<u64, HashSet<PeerId>>,
    /// Peers that can be asked (a number all of them lack cancels the plan).
    peers: usize,
    /// Numbers stored above the head at the edges of the holes: never asked for.
    stored_above: HashSet<u64>,
    stats: PlanStats,
}

impl SyncPlan {
    /// An empty plan.
    pub fn new(config: PlanConfig) -> Self {
        Self {
            config,
            head: 0,
            queue: BTreeSet::new(),
            in_flight: HashSet::new(),
            promoted: BTreeMap::new(),
            expected: BTreeMap::new(),
            quarantine: Quarantine::default(),
            trusted: HashSet::new(),
            trusted_order: VecDeque::new(),
            paused_until: None,
            stored_above: HashSet::new(),
            not_found: HashMap::new(),
            peers: 0,
            stats: PlanStats::default(),
        }
    }

    /// What the plan did so far.
    pub fn stats(&self) -> PlanStats {
        self.stats
    }

    /// The sizes of the plan's bounded state.
    pub fn footprint(&self) -> PlanFootprint {
        PlanFootprint {
            queued: self.queue.len(),
            in_flight: self.in_flight.len(),
            quarantined: self.quarantine.len(),
            quarantined_bytes: self.quarantine.bytes(),
            trusted: self.trusted.len(),
            promoted: self.promoted.len(),
            expected: self.expected.len(),
        }
    }

    /// Numbers waiting for a request.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// True when there is nothing to fetch and nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Re-plans from the store's view of what lies above the head.
    pub fn on_holes(&mut self, view: &Holes, now: Instant) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        let Some(head) = view.head else {
            return actions;
        };
        self.set_head(head.number, now);
        self.stored_above = view
            .holes
            .iter()
            .flat_map(|h| [h.after, h.before])
            .collect();
        if let Some(next) = view.unlinked_next {
            self.stats.reanchored += 1;
            actions.push(SyncAction::Reanchor(next.id));
            return actions;
        }
        if self.paused_until.is_some_and(|until| now < until) {
            return actions;
        }
        self.paused_until = None;
        let mut budget = self.config.max_gap.saturating_sub(self.outstanding());
        for hole in &view.holes {
            if hole.len() > self.config.max_gap {
                if let Some(above) = hole.above.first() {
                    self.stats.reanchored += 1;
                    actions.push(SyncAction::Reanchor(above.id));
                }
                // Holes above the new head are planned once the store has moved it.
                break;
            }
            for link in &hole.above {
                self.trust(link.parent);
            }
            if let [only] = hole.above.as_slice() {
                self.expected
                    .insert(hole.before.saturating_sub(1), only.parent);
            }
            for number in (hole.after.saturating_add(1)..hole.before).rev() {
                if budget == 0 {
                    return actions;
                }
                if self.in_flight.contains(&number)
                    || self.promoted.contains_key(&number)
                    || self.queue.contains(&number)
                {
                    continue;
                }
                if self.promote_quarantined_at(number, &mut actions, now) {
                    continue;
                }
                self.enqueue(number);
                budget -= 1;
            }
        }
        actions
    }

    /// How many peers can be asked.
    pub fn set_peer_count(&mut self, peers: usize) {
        self.peers = peers;
    }

    /// The next number to ask `peer` for (highest first: the walk-back promotes from the top,
    /// so the quarantine stays small), now counted as in flight. Numbers the peer said it does
    /// not have are left for others.
    pub fn next_request(&mut self, peer: &PeerId) -> Option<u64> {
        let number = self.next_for(peer)?;
        self.queue.remove(&number);
        self.in_flight.insert(number);
        Some(number)
    }

    /// True when something in the queue may be asked of `peer`.
    pub fn has_work_for(&self, peer: &PeerId) -> bool {
        self.next_for(peer).is_some()
    }

    fn next_for(&self, peer: &PeerId) -> Option<u64> {
        self.queue
            .iter()
            .rev()
            // Bounded scan: a peer that lacks this many of the top numbers waits for the rest.
            .take(NOT_FOUND_SCAN)
            .find(|n| {
                self.not_found
                    .get(n)
                    .is_none_or(|peers| !peers.contains(peer))
            })
            .copied()
    }

    /// Takes a request back unasked (its worker stopped).
    pub fn return_request(&mut self, number: u64) {
        if self.in_flight.remove(&number) && number > self.head {
            self.enqueue(number);
        }
    }

    /// Judges `peer`'s answer for `number`.
    pub fn on_response(
        &mut self,
        peer: PeerId,
        number: u64,
        answer: Result<StoredBlock, RequestError>,
        now: Instant,
    ) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        self.in_flight.remove(&number);
        let block = match answer {
            Ok(block) => block,
            Err(RequestError::NotFound) => {
                // No penalty. The number goes to the other peers; once every peer lacks it the
                // whole plan is cancelled (op-node cancels the range at the first "not found")
                // and resumes after a pause, when the peers may have it.
                self.stats.not_found += 1;
                let lacking = self.not_found.entry(number).or_default();
                lacking.insert(peer);
                if lacking.len() >= self.peers.max(1) {
                    self.queue.clear();
                    self.not_found.clear();
                    self.paused_until = Some(now + self.config.replan_after_not_found);
                } else if number > self.head {
                    self.enqueue(number);
                }
                return actions;
            }
            Err(error) => {
                self.stats.errors += 1;
                let outcome = match error {
                    RequestError::ErrorCode(RATE_LIMITED_CODE) => PeerOutcome::RateLimitedResponse,
                    _ => PeerOutcome::ErrorResponse,
                };
                actions.push(SyncAction::Score { peer, outcome });
                // Retried by whichever worker is ready next; this peer's worker backs off.
                if number > self.head && !self.promoted.contains_key(&number) {
                    self.enqueue(number);
                }
                return actions;
            }
        };
        self.stats.valid += 1;
        actions.push(SyncAction::Score {
            peer,
            outcome: PeerOutcome::ValidResponse,
        });
        let hash = block.envelope.payload.block_hash;
        if number <= self.head {
            return actions;
        }
        if let Some((promoted, _)) = self.promoted.get(&number) {
            if *promoted != hash {
                self.reject(peer, &mut actions);
            }
            return actions;
        }
        if self.expected.get(&number).is_some_and(|e| *e != hash) {
            // The chain above says otherwise: this payload can never link. Ask someone else.
            self.reject(peer, &mut actions);
            self.enqueue(number);
            return actions;
        }
        // What the quarantine's bounds drop counts as rejected for its sender.
        for sender in self.quarantine.insert(hash, block, peer) {
            self.reject(sender, &mut actions);
        }
        if self.trusted.contains(&hash) {
            self.promote(hash, &mut actions, now);
        }
        actions
    }

    /// Numbers queued or in flight: together at most `max_gap`.
    fn outstanding(&self) -> u64 {
        (self.queue.len() + self.in_flight.len()) as u64
    }

    /// Queues `number` unless the queue and the requests in flight already hold `max_gap`
    /// numbers. A number taken back from the requests in flight always fits again; a new one
    /// that does not fit is planned by a later [`Self::on_holes`], as the holes still show it.
    fn enqueue(&mut self, number: u64) {
        if self.queue.contains(&number) || self.outstanding() < self.config.max_gap {
            self.queue.insert(number);
        }
    }

    fn set_head(&mut self, head: u64, now: Instant) {
        self.head = head;
        self.queue = self.queue.split_off(&head.saturating_add(1));
        self.promoted = self.promoted.split_off(&head.saturating_add(1));
        self.expected = self.expected.split_off(&head.saturating_add(1));
        self.not_found.retain(|n, _| *n > head);
        self.promoted
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < PROMOTED_EXPIRY);
        self.quarantine.drop_through(head);
    }

    fn trust(&mut self, hash: B256) {
        if self.trusted.insert(hash) {
            self.trusted_order.push_back(hash);
            if self.trusted_order.len() > TRUSTED_CAPACITY
                && let Some(old) = self.trusted_order.pop_front()
            {
                self.trusted.remove(&old);
            }
        }
    }

    /// Promotes a trusted payload already quarantined at `number`, if there is one.
    fn promote_quarantined_at(
        &mut self,
        number: u64,
        actions: &mut Vec<SyncAction>,
        now: Instant,
    ) -> bool {
        let found = self
            .quarantine
            .hashes_at(number)
            .into_iter()
            .find(|h| self.trusted.contains(h));
        match found {
            Some(hash) => {
                self.promote(hash, actions, now);
                true
            }
            None => false,
        }
    }

    /// Promotes `hash` from the quarantine, then its parent, and so on down while they are
    /// quarantined. At each promoted number, other payloads are rejected; the number below is
    /// asked for again when no payload there matches (its answer was wrong or never came).
    fn promote(&mut self, mut hash: B256, actions: &mut Vec<SyncAction>, now: Instant) {
        while let Some(entry) = self.quarantine.remove(&hash) {
            let payload = &entry.block.envelope.payload;
            let number = payload.block_number;
            let parent = payload.parent_hash;
            self.trust(parent);
            if let Some(below) = number.checked_sub(1) {
                self.expected.insert(below, parent);
            }
            self.promoted.insert(number, (hash, now));
            self.queue.remove(&number);
            self.stats.promoted += 1;
            actions.push(SyncAction::Store {
                block: Box::new(entry.block),
                from: entry.from,
            });
            self.reject_quarantined_at(number, actions);
            let Some(below) = number.checked_sub(1).filter(|b| *b > self.head) else {
                return;
            };
            if !self.quarantine.contains(&parent) {
                self.reject_quarantined_at(below, actions);
                if !self.in_flight.contains(&below)
                    && !self.promoted.contains_key(&below)
                    && !self.stored_above.contains(&below)
                {
                    self.enqueue(below);
                }
            }
            hash = parent;
        }
    }

    /// Rejects every payload still quarantined at `number` (called once the number's hash is
    /// known and none of them has it).
    fn reject_quarantined_at(&mut self, number: u64, actions: &mut Vec<SyncAction>) {
        for hash in self.quarantine.hashes_at(number) {
            if let Some(q) = self.quarantine.remove(&hash) {
                self.reject(q.from, actions);
            }
        }
    }

    fn reject(&mut self, peer: PeerId, actions: &mut Vec<SyncAction>) {
        self.stats.rejected += 1;
        actions.push(SyncAction::Score {
            peer,
            outcome: PeerOutcome::RejectedPayload,
        });
    }
}
