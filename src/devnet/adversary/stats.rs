//! The adversary's live counters (atomics, written by its event loop and request tasks) and their
//! serialisable snapshot, which the devnet report embeds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

use super::spam::Answer;

/// Marks "not yet" in a timestamp or count stored in an atomic.
const UNSET: u64 = u64::MAX;

/// Answers to payload_by_number requests, by result.
#[derive(Debug, Default)]
pub(super) struct AnswerStats {
    served: AtomicU64,
    not_found: AtomicU64,
    invalid: AtomicU64,
    rate_limited: AtomicU64,
    other_code: AtomicU64,
    open_failed: AtomicU64,
    stream_errors: AtomicU64,
}

/// A snapshot of `AnswerStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Answers {
    /// Code 0 with a payload.
    pub served: u64,
    /// Code 1.
    pub not_found: u64,
    /// Code 2.
    pub invalid: u64,
    /// Code 3: refused by the server's rate limits.
    pub rate_limited: u64,
    /// Codes 4 and up.
    pub other_code: u64,
    /// No stream could be opened.
    pub open_failed: u64,
    /// Writing or reading the stream failed.
    pub stream_errors: u64,
}

impl Answers {
    fn add(&mut self, other: &Self) {
        self.served += other.served;
        self.not_found += other.not_found;
        self.invalid += other.invalid;
        self.rate_limited += other.rate_limited;
        self.other_code += other.other_code;
        self.open_failed += other.open_failed;
        self.stream_errors += other.stream_errors;
    }
}

impl AnswerStats {
    fn record(&self, answer: Answer) {
        let counter = match answer {
            Answer::Served => &self.served,
            Answer::NotFound => &self.not_found,
            Answer::Invalid => &self.invalid,
            Answer::RateLimited => &self.rate_limited,
            Answer::OtherCode => &self.other_code,
            Answer::OpenFailed => &self.open_failed,
            Answer::StreamError => &self.stream_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Answers {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Answers {
            served: get(&self.served),
            not_found: get(&self.not_found),
            invalid: get(&self.invalid),
            rate_limited: get(&self.rate_limited),
            other_code: get(&self.other_code),
            open_failed: get(&self.open_failed),
            stream_errors: get(&self.stream_errors),
        }
    }
}

/// Counters of one target.
#[derive(Debug)]
pub(super) struct TargetStats {
    peer_id: String,
    pub(super) connected: AtomicBool,
    pub(super) connections: AtomicU64,
    pub(super) refused: AtomicU64,
    requests: AtomicU64,
    answers: AnswerStats,
    /// Requests sent to this target when its first code-3 answer came back.
    first_limited_after: AtomicU64,
}

impl TargetStats {
    pub(super) fn new(peer_id: String) -> Self {
        Self {
            peer_id,
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            answers: AnswerStats::default(),
            first_limited_after: AtomicU64::new(UNSET),
        }
    }

    pub(super) fn request_sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn answered(&self, answer: Answer) {
        self.answers.record(answer);
        if answer == Answer::RateLimited {
            let sent = self.requests.load(Ordering::Relaxed);
            let _ = self.first_limited_after.compare_exchange(
                UNSET,
                sent,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }
}

/// One target as seen by the adversary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetCounters {
    /// The target's peer id.
    pub peer_id: String,
    /// Connected at the time of the snapshot.
    pub connected: bool,
    /// Connections established.
    pub connections: u64,
    /// Dials that failed, and connections closed before the target identified itself: its gate
    /// refusing a banned peer.
    pub connections_refused: u64,
    /// payload_by_number requests sent (`spam-reqresp`).
    pub requests: u64,
    /// Their answers.
    pub answers: Answers,
    /// Requests sent to this target when its first code-3 answer arrived (`None`: never limited).
    pub requests_before_first_limit: Option<u64>,
}

/// Counters of the whole adversary.
#[derive(Debug)]
pub(super) struct AdversaryStats {
    pub(super) sent: AtomicU64,
    pub(super) publish_failures: AtomicU64,
    pub(super) idle_ticks: AtomicU64,
    pub(super) max_connected: AtomicU64,
    joined_at_ms: AtomicU64,
    first_sent_ms: AtomicU64,
    last_sent_ms: AtomicU64,
    pub(super) targets: Vec<TargetStats>,
}

impl AdversaryStats {
    pub(super) fn new(targets: Vec<TargetStats>) -> Self {
        Self {
            sent: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            idle_ticks: AtomicU64::new(0),
            max_connected: AtomicU64::new(0),
            joined_at_ms: AtomicU64::new(UNSET),
            first_sent_ms: AtomicU64::new(UNSET),
            last_sent_ms: AtomicU64::new(UNSET),
            targets,
        }
    }

    pub(super) fn joined(&self, at_ms: u64) {
        let _ =
            self.joined_at_ms
                .compare_exchange(UNSET, at_ms, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub(super) fn has_joined(&self) -> bool {
        self.joined_at_ms.load(Ordering::Relaxed) != UNSET
    }

    pub(super) fn sent_one(&self, at_ms: u64) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let _ =
            self.first_sent_ms
                .compare_exchange(UNSET, at_ms, Ordering::Relaxed, Ordering::Relaxed);
        self.last_sent_ms.store(at_ms, Ordering::Relaxed);
    }

    pub(super) fn connected_now(&self) -> u64 {
        self.targets
            .iter()
            .filter(|t| t.connected.load(Ordering::Relaxed))
            .count() as u64
    }

    pub(super) fn snapshot(&self) -> AdversaryCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let opt = |c: &AtomicU64| Some(get(c)).filter(|v| *v != UNSET);
        let targets: Vec<TargetCounters> = self
            .targets
            .iter()
            .map(|t| TargetCounters {
                peer_id: t.peer_id.clone(),
                connected: t.connected.load(Ordering::Relaxed),
                connections: get(&t.connections),
                connections_refused: get(&t.refused),
                requests: get(&t.requests),
                answers: t.answers.snapshot(),
                requests_before_first_limit: opt(&t.first_limited_after),
            })
            .collect();
        let mut answers = Answers::default();
        for t in &targets {
            answers.add(&t.answers);
        }
        AdversaryCounters {
            sent: get(&self.sent),
            publish_failures: get(&self.publish_failures),
            idle_ticks: get(&self.idle_ticks),
            connected: self.connected_now(),
            max_connected: get(&self.max_connected),
            connections_refused: targets.iter().map(|t| t.connections_refused).sum(),
            joined_at_ms: opt(&self.joined_at_ms),
            first_sent_ms: opt(&self.first_sent_ms),
            last_sent_ms: opt(&self.last_sent_ms),
            answers,
            targets,
        }
    }
}

/// What the adversary did, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AdversaryCounters {
    /// Gossip messages published (each goes to every target), or payload_by_number requests sent
    /// (all targets together, `spam-reqresp`).
    pub sent: u64,
    /// Publishes gossipsub refused (no target left on the topic: every one banned it).
    pub publish_failures: u64,
    /// Ticks on which nothing was sent: no honest block old enough to equivocate on yet, or
    /// (`spam-reqresp`) a target already at the in-flight cap.
    pub idle_ticks: u64,
    /// Targets connected now.
    pub connected: u64,
    /// Most targets connected at once.
    pub max_connected: u64,
    /// Refused connections over all targets (see [`TargetCounters::connections_refused`]).
    pub connections_refused: u64,
    /// Unix ms when every target had it on the block topic (or the join timeout passed).
    pub joined_at_ms: Option<u64>,
    /// Unix ms of the first message or request sent.
    pub first_sent_ms: Option<u64>,
    /// Unix ms of the last one.
    pub last_sent_ms: Option<u64>,
    /// payload_by_number answers over all targets.
    pub answers: Answers,
    /// Per target, in the order given.
    pub targets: Vec<TargetCounters>,
}
