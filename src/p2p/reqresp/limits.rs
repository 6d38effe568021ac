//! Rate limits of payload_by_number: one global token bucket and one per peer, the per-peer ones
//! kept in a bounded LRU (op-node: 1000 peers) so a swarm of peer ids cannot grow the table; on
//! the server also one per IP ([`IpLimiters`], same LRU), so more peer ids from one address do
//! not buy more of the global rate; and (server side) a cap on the requests one peer may have
//! open at once ([`PeerSlots`]).
//!
//! Waiting happens outside any lock: the table lock is held only to fetch (or create) a peer's
//! limiter, then the caller awaits tokens on its own `Arc`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use libp2p::PeerId;

/// A rate: `per_second` tokens per second, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained tokens per second (≥ 1).
    pub per_second: u32,
    /// Bucket size (≥ 1).
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Quota {
        let per_second = NonZeroU32::new(self.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::per_second(per_second).allow_burst(burst)
    }

    /// A fresh limiter with this rate, its bucket full.
    pub fn limiter(self) -> DefaultDirectRateLimiter {
        RateLimiter::direct(self.quota())
    }
}

/// Limiters by key (peer id or IP), least recently used evicted beyond `capacity`.
pub struct Limiters<K> {
    rate: Rate,
    capacity: usize,
    inner: Mutex<Table<K>>,
}

/// Per-peer limiters.
pub type PeerLimiters = Limiters<PeerId>;
/// Per-IP limiters.
pub type IpLimiters = Limiters<IpAddr>;

struct Table<K> {
    clock: u64,
    limiters: HashMap<K, (Arc<DefaultDirectRateLimiter>, u64)>,
}

impl<K: Hash + Eq + Copy> Limiters<K> {
    /// A table of at most `capacity` keys, each limited to `rate`.
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            capacity: capacity.max(1),
            inner: Mutex::new(Table {
                clock: 0,
                limiters: HashMap::new(),
            }),
        }
    }

    /// The limiter of `peer` (a peer id or an IP), created (bucket full) if unknown.
    pub fn get(&self, peer: K) -> Arc<DefaultDirectRateLimiter> {
        let mut table = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        table.clock += 1;
        let now = table.clock;
        if let Some((limiter, used)) = table.limiters.get_mut(&peer) {
            *used = now;
            return limiter.clone();
        }
        if table.limiters.len() >= self.capacity {
            // Linear scan over ≤ capacity (1000) entries, only when a new peer arrives.
            if let Some(oldest) = table
                .limiters
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| *p)
            {
                table.limiters.remove(&oldest);
            }
        }
        let limiter = Arc::new(self.rate.limiter());
        table.limiters.insert(peer, (limiter.clone(), now));
        limiter
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .limiters
            .len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How [`acquire`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tokens {
    /// Both tokens were there at once.
    Ready,
    /// Both tokens taken, after waiting for at least one.
    Waited,
    /// The wait ran out.
    TimedOut,
}

/// Takes one token from `peer`, then one from `global`, waiting as long as needed. Returns
/// whether it had to wait (a bucket was empty), for the rate-limit metrics.
///
/// The peer's own bucket comes first (op-node takes the global token first): a peer flooding
/// requests then queues behind its own limit and takes at most its own rate from the global
/// bucket, instead of draining it while it waits and starving every other peer.
pub async fn take_tokens(
    global: &DefaultDirectRateLimiter,
    peer: &DefaultDirectRateLimiter,
) -> bool {
    take_in_order(&[peer, global]).await
}

/// Takes one token from each of `limiters` in order, waiting as long as needed; whether it
/// waited.
async fn take_in_order(limiters: &[&DefaultDirectRateLimiter]) -> bool {
    let mut waited = false;
    for limiter in limiters {
        // `check` takes the token when there is one; `until_ready` waits for it otherwise.
        if limiter.check().is_err() {
            waited = true;
            limiter.until_ready().await;
        }
    }
    waited
}

/// Waits for one token from `peer`, then one from `global`, for at most `max_wait` in total.
/// Returns false when the wait ran out.
///
/// op-node waits on the global limiter first; then a flooding peer's requests take global tokens
/// while they queue for their own, so one peer drains the global rate every other peer shares.
/// Peer first, a peer takes at most its own rate out of the global one. An honest peer, within
/// its rate, sees no difference.
///
/// `ip`, when given, is taken between the peer's and the global one: several peer ids behind one
/// address then share that address's rate before any of them reaches the global bucket.
pub async fn acquire(
    global: &DefaultDirectRateLimiter,
    peer: &DefaultDirectRateLimiter,
    ip: Option<&DefaultDirectRateLimiter>,
    max_wait: Duration,
) -> Tokens {
    let order: Vec<&DefaultDirectRateLimiter> = match ip {
        Some(ip) => vec![peer, ip, global],
        None => vec![peer, global],
    };
    match tokio::time::timeout(max_wait, take_in_order(&order)).await {
        Ok(true) => Tokens::Waited,
        Ok(false) => Tokens::Ready,
        Err(_) => Tokens::TimedOut,
    }
}

type OpenCounts = Arc<Mutex<HashMap<PeerId, usize>>>;

/// Requests open per peer, at most `per_peer` each. A peer is in the table only while it holds a
/// slot, and the server takes a slot only while holding one of its concurrent-stream permits, so
/// the table never has more entries than the server has streams.
pub struct PeerSlots {
    per_peer: usize,
    open: OpenCounts,
}

/// One open request of a peer; dropping it frees the place.
pub struct PeerSlot {
    peer: PeerId,
    open: OpenCounts,
}

impl PeerSlots {
    /// At most `per_peer` (≥ 1) open requests per peer.
    pub fn new(per_peer: usize) -> Self {
        Self {
            per_peer: per_peer.max(1),
            open: Arc::default(),
        }
    }

    /// A place for one more open request of `peer`, or `None` when it has `per_peer` already.
    pub fn try_take(&self, peer: PeerId) -> Option<PeerSlot> {
        let mut open = lock_counts(&self.open);
        let count = open.entry(peer).or_insert(0);
        if *count >= self.per_peer {
            return None;
        }
        *count += 1;
        Some(PeerSlot {
            peer,
            open: self.open.clone(),
        })
    }

    /// Peers with an open request.
    pub fn len(&self) -> usize {
        lock_counts(&self.open).len()
    }

    /// True when no request is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = lock_counts(&self.open);
        if let Some(count) = open.get_mut(&self.peer) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

fn lock_counts(open: &OpenCounts) -> std::sync::MutexGuard<'_, HashMap<PeerId, usize>> {
    open.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_holds_at_most_its_slots_and_freed_ones_are_forgotten() {
        let slots = PeerSlots::new(2);
        let (a, b) = (PeerId::random(), PeerId::random());
        let first = slots.try_take(a).unwrap();
        let second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none(), "a third is refused");
        assert!(slots.try_take(b).is_some(), "another peer is not affected");
        drop(first);
        let third = slots.try_take(a).unwrap();
        drop((second, third));
        assert!(slots.is_empty(), "no entry without an open request");
    }

    #[tokio::test]
    async fn peer_ids_behind_one_ip_share_its_rate() {
        let rate = Rate {
            per_second: 1,
            burst: 4,
        };
        let global = Rate {
            per_second: 100,
            burst: 100,
        }
        .limiter();
        let ips = IpLimiters::new(rate, 8);
        let peers = PeerLimiters::new(rate, 8);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let wait = Duration::from_millis(50);
        let (a, b) = (peers.get(PeerId::random()), peers.get(PeerId::random()));
        for _ in 0..4 {
            let t = acquire(&global, &a, Some(&ips.get(ip)), wait).await;
            assert_eq!(t, Tokens::Ready);
        }
        // A fresh peer id from the same address finds the address's bucket empty.
        let t = acquire(&global, &b, Some(&ips.get(ip)), wait).await;
        assert_eq!(t, Tokens::TimedOut);
        // From another address it is served.
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        let c = peers.get(PeerId::random());
        let t = acquire(&global, &c, Some(&ips.get(other)), wait).await;
        assert_eq!(t, Tokens::Ready);
        assert_eq!(ips.len(), 2);
    }
}
