//! The connection table of one HTTP server ([`super::serve`]): every open connection, the phase
//! it is in, and the deadline that phase gives it. The accept loop admits each new connection
//! here (evicting the longest-idle one when the table is full); the connection's own task sleeps
//! until its phase's deadline and closes it when the deadline has passed; the request path moves
//! it from phase to phase.
//!
//! Sans-IO: every transition takes `now`, so the tests below drive time by hand.
//!
//! ```text
//!  accept ─► Waiting ─first byte─► Reading ─head + body in─► Handling ─response─► Writing ─┐
//!               ▲    (idle_timeout)        (read_timeout)     (in-flight permit)  (write_timeout)
//!               └──────────────────────────────── response body sent ◄────────────────────┘
//!  any phase but Handling ─(table full, longest idle)─► Evicted (closed at once)
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::HttpLimits;
use super::stats::HttpStats;

/// Where a connection is in its request cycle, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted, or between two requests, with no byte of the next request yet.
    Waiting(Instant),
    /// The first byte of a request arrived at this instant; its head and body are not all in.
    Reading(Instant),
    /// The whole request is in and the handler runs (it holds an in-flight permit).
    Handling,
    /// The response is being written since this instant.
    Writing(Instant),
    /// Closed to make room for a newer connection.
    Evicted,
}

/// Why the server closed a connection or refused to take one (a label of
/// `op_gossip_http_connections_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropCause {
    /// No request began within the idle timeout.
    IdleTimeout,
    /// A request's head and body did not arrive within the read timeout.
    ReadTimeout,
    /// A response was not taken by the client within the write timeout.
    WriteTimeout,
    /// Closed for a newer connection while the table was full.
    Evicted,
    /// Not taken: the table was full and every connection in it was handling a request.
    Refused,
}

impl DropCause {
    /// Every cause, in the order of the counters.
    pub const ALL: [DropCause; 5] = [
        DropCause::IdleTimeout,
        DropCause::ReadTimeout,
        DropCause::WriteTimeout,
        DropCause::Evicted,
        DropCause::Refused,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropCause::IdleTimeout => "idle_timeout",
            DropCause::ReadTimeout => "read_timeout",
            DropCause::WriteTimeout => "write_timeout",
            DropCause::Evicted => "evicted",
            DropCause::Refused => "refused",
        }
    }
}

/// One open connection: its phase, and the wake-up of its task when the phase changes.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    phase: Mutex<Phase>,
    /// Woken on every phase change, so the connection's task re-reads its deadline.
    /// (`notify_one` keeps the wake-up if the task is not waiting yet.)
    pub wake: Notify,
}

impl Conn {
    fn new(id: u64, now: Instant) -> Self {
        Self {
            id,
            phase: Mutex::new(Phase::Waiting(now)),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        // A poisoned lock only means a panic elsewhere while it was held; the phase is still
        // a valid value.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the phase and wakes the task.
    fn set(&self, phase: &mut Phase, to: Phase) {
        *phase = to;
        self.wake.notify_one();
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        *self.lock()
    }

    /// Bytes arrived: a waiting connection starts reading a request.
    pub fn on_read(&self, now: Instant) {
        let mut phase = self.lock();
        if let Phase::Waiting(_) = *phase {
            self.set(&mut phase, Phase::Reading(now));
        }
    }

    /// The instant by which the request now being read must be in (its head is already parsed;
    /// the body follows). A request parsed from bytes read earlier starts reading now.
    pub fn read_deadline(&self, now: Instant, limits: &HttpLimits) -> Instant {
        let mut phase = self.lock();
        let since = match *phase {
            Phase::Reading(since) => since,
            Phase::Waiting(_) => {
                self.set(&mut phase, Phase::Reading(now));
                now
            }
            Phase::Handling | Phase::Writing(_) | Phase::Evicted => now,
        };
        since + limits.read_timeout
    }

    /// The request is in: the handler starts. False if the connection was evicted meanwhile.
    pub fn begin_handling(&self) -> bool {
        let mut phase = self.lock();
        if *phase == Phase::Evicted {
            return false;
        }
        self.set(&mut phase, Phase::Handling);
        true
    }

    /// The response is ready and is being written.
    pub fn begin_writing(&self, now: Instant) {
        let mut phase = self.lock();
        if *phase != Phase::Evicted {
            self.set(&mut phase, Phase::Writing(now));
        }
    }

    /// The response is sent (or abandoned): the connection waits for the next request.
    pub fn end_request(&self, now: Instant) {
        let mut phase = self.lock();
        if matches!(*phase, Phase::Handling | Phase::Writing(_)) {
            self.set(&mut phase, Phase::Waiting(now));
        }
    }

    /// When the current phase runs out (`None`: no deadline from the table, the handler's own
    /// timeout bounds it).
    pub fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        match self.phase() {
            Phase::Waiting(since) => Some(since + limits.idle_timeout),
            Phase::Reading(since) => Some(since + limits.read_timeout),
            Phase::Writing(since) => Some(since + limits.write_timeout),
            Phase::Handling => None,
            // At once: the task closes the connection.
            Phase::Evicted => Some(Instant::now()),
        }
    }

    /// Whether the connection must be closed at `now`, and why.
    pub fn expired(&self, now: Instant, limits: &HttpLimits) -> Option<DropCause> {
        let (since, timeout, cause) = match self.phase() {
            Phase::Waiting(since) => (since, limits.idle_timeout, DropCause::IdleTimeout),
            Phase::Reading(since) => (since, limits.read_timeout, DropCause::ReadTimeout),
            Phase::Writing(since) => (since, limits.write_timeout, DropCause::WriteTimeout),
            Phase::Handling => return None,
            Phase::Evicted => return Some(DropCause::Evicted),
        };
        (now >= since + timeout).then_some(cause)
    }

    /// Whether the connection has no request under way (closed at once on shutdown).
    pub fn is_between_requests(&self) -> bool {
        matches!(self.phase(), Phase::Waiting(_) | Phase::Reading(_))
    }

    /// Evicts the connection unless it is handling a request; returns whether it did.
    fn evict(&self) -> bool {
        let mut phase = self.lock();
        match *phase {
            Phase::Handling | Phase::Evicted => false,
            Phase::Waiting(_) | Phase::Reading(_) | Phase::Writing(_) => {
                self.set(&mut phase, Phase::Evicted);
                true
            }
        }
    }

    /// Since when it has been idle, for picking the one to evict (`None`: not evictable).
    fn idle_since(&self) -> Option<Instant> {
        match self.phase() {
            Phase::Waiting(since) | Phase::Reading(since) | Phase::Writing(since) => Some(since),
            Phase::Handling | Phase::Evicted => None,
        }
    }
}

/// The open connections of one server, at most `max` of them.
#[derive(Debug)]
pub struct ConnTable {
    max: usize,
    inner: Mutex<Inner>,
    /// Where the number of connections in the table is published.
    stats: Arc<HttpStats>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: BTreeMap<u64, Arc<Conn>>,
}

/// A connection's place in the table; dropping it (when the connection's task ends) frees it.
#[derive(Debug)]
pub struct Slot {
    table: Arc<ConnTable>,
    id: u64,
}

impl std::ops::Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.table.lock();
        inner.conns.remove(&self.id);
        self.table.stats.set_open(inner.conns.len());
    }
}

/// The table's answer to a new connection.
#[derive(Debug)]
pub enum Admission {
    /// Taken; `evicted` tells whether an idle connection was closed to make room.
    Admitted {
        /// The new connection.
        conn: Arc<Conn>,
        /// Its place, held by its task.
        slot: Slot,
        /// Whether another connection was evicted for it.
        evicted: bool,
    },
    /// The table is full of connections handling requests.
    Full,
}

/// How many times admission looks for a victim again when the one it picked began a request
/// in the meantime (each retry is a scan of at most `max` entries under the table's lock).
const EVICTION_ATTEMPTS: usize = 3;

impl ConnTable {
    /// A table of at most `max` connections, publishing its size in `stats`.
    pub fn new(max: usize, stats: Arc<HttpStats>) -> Arc<Self> {
        Arc::new(Self {
            max,
            inner: Mutex::new(Inner::default()),
            stats,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a new connection at `now`. When the table is full, the connection idle the longest
    /// (waiting, reading or writing since the earliest instant) is evicted for it; a connection
    /// handling a request never is.
    pub fn admit(self: &Arc<Self>, now: Instant) -> Admission {
        let mut inner = self.lock();
        let mut evicted = false;
        if inner.conns.len() >= self.max {
            for _ in 0..EVICTION_ATTEMPTS {
                let victim = inner
                    .conns
                    .values()
                    .filter_map(|c| c.idle_since().map(|since| (since, c.id)))
                    .min();
                let Some((_, id)) = victim else { break };
                if inner.conns.get(&id).is_some_and(|c| c.evict()) {
                    inner.conns.remove(&id);
                    evicted = true;
                    break;
                }
            }
            if !evicted {
                return Admission::Full;
            }
        }
        let id = inner.next_id;
        inner.next_id = inner.next_id.wrapping_add(1);
        let conn = Arc::new(Conn::new(id, now));
        inner.conns.insert(id, conn.clone());
        self.stats.set_open(inner.conns.len());
        Admission::Admitted {
            conn,
            slot: Slot {
                table: self.clone(),
                id,
            },
            evicted,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> HttpLimits {
        HttpLimits {
            max_connections: 3,
            max_in_flight: 2,
            read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            handler_timeout: Duration::from_secs(60),
            max_body_bytes: 1024,
        }
    }

    fn admit(table: &Arc<ConnTable>, now: Instant) -> (Arc<Conn>, Slot, bool) {
        match table.admit(now) {
            Admission::Admitted {
                conn,
                slot,
                evicted,
            } => (conn, slot, evicted),
            Admission::Full => panic!("table full"),
        }
    }

    #[test]
    fn each_phase_has_its_deadline() {
        let l = limits();
        let t0 = Instant::now();
        let table = ConnTable::new(3, HttpStats::new("test"));
        let (conn, _slot, _) = admit(&table, t0);
        assert_eq!(conn.deadline(&l), Some(t0 + l.idle_timeout));
        assert_eq!(
            conn.expired(t0 + l.idle_timeout, &l),
            Some(DropCause::IdleTimeout)
        );
        assert_eq!(conn.expired(t0 + Duration::from_secs(1), &l), None);

        // The first byte starts the read deadline, which the body shares with the head.
        let t1 = t0 + Duration::from_secs(20);
        conn.on_read(t1);
        conn.on_read(t1 + Duration::from_secs(1)); // more bytes: still the same request
        assert_eq!(conn.phase(), Phase::Reading(t1));
        assert_eq!(
            conn.read_deadline(t1 + Duration::from_secs(2), &l),
            t1 + l.read_timeout
        );
        assert_eq!(
            conn.expired(t1 + l.read_timeout, &l),
            Some(DropCause::ReadTimeout)
        );

        assert!(conn.begin_handling());
        assert_eq!(
            conn.deadline(&l),
            None,
            "the handler's own timeout bounds it"
        );
        assert_eq!(conn.expired(t1 + Duration::from_secs(3600), &l), None);

        let t2 = t1 + Duration::from_secs(3);
        conn.begin_writing(t2);
        assert_eq!(conn.deadline(&l), Some(t2 + l.write_timeout));
        assert_eq!(
            conn.expired(t2 + l.write_timeout, &l),
            Some(DropCause::WriteTimeout)
        );

        let t3 = t2 + Duration::from_secs(1);
        conn.end_request(t3);
        assert_eq!(conn.phase(), Phase::Waiting(t3), "keep-alive: idle again");
    }

    #[test]
    fn a_pipelined_request_starts_reading_when_its_head_is_parsed() {
        let l = limits();
        let t0 = Instant::now();
        let table = ConnTable::new(3, HttpStats::new("test"));
        let (conn, _slot, _) = admit(&table, t0);
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(conn.read_deadline(t1, &l), t1 + l.read_timeout);
        assert_eq!(conn.phase(), Phase::Reading(t1));
    }

    #[test]
    fn a_full_table_evicts_the_longest_idle_and_never_a_handler() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let table = ConnTable::new(3, HttpStats::new("test"));
        let (busy, _b, _) = admit(&table, t0);
        let (idle, _i, _) = admit(&table, t0 + s);
        let (reading, _r, _) = admit(&table, t0 + s * 2);
        assert!(busy.begin_handling());
        reading.on_read(t0 + s * 3);

        // Full: the oldest non-handling one (idle since t0 + 1 s) goes.
        let (new, _n, evicted) = admit(&table, t0 + s * 4);
        assert!(evicted);
        assert_eq!(idle.phase(), Phase::Evicted);
        assert_eq!(idle.expired(t0, &limits()), Some(DropCause::Evicted));
        assert_eq!(table.len(), 3);
        assert_eq!(busy.phase(), Phase::Handling);

        // Next: the reader (since t0 + 3 s) before the new one (since t0 + 4 s).
        let (_newer, _m, evicted) = admit(&table, t0 + s * 5);
        assert!(evicted);
        assert_eq!(reading.phase(), Phase::Evicted);
        assert!(matches!(new.phase(), Phase::Waiting(_)));
        // An evicted connection cannot start handling.
        assert!(!reading.begin_handling());
    }

    #[test]
    fn a_table_full_of_handlers_refuses() {
        let t0 = Instant::now();
        let table = ConnTable::new(2, HttpStats::new("test"));
        let (a, _a, _) = admit(&table, t0);
        let (b, _b, _) = admit(&table, t0);
        assert!(a.begin_handling() && b.begin_handling());
        assert!(matches!(table.admit(t0), Admission::Full));
        // One finishes: its place can be taken again.
        b.end_request(t0);
        assert!(matches!(
            table.admit(t0),
            Admission::Admitted { evicted: true, .. }
        ));
    }

    #[test]
    fn a_closed_connection_frees_its_slot() {
        let t0 = Instant::now();
        let table = ConnTable::new(2, HttpStats::new("test"));
        let (_a, slot, _) = admit(&table, t0);
        assert_eq!(table.len(), 1);
        drop(slot);
        assert!(table.is_empty());
    }
}
