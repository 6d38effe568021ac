//! Rate limits of payload_by_number: one global token bucket and one per peer, the per-peer ones
//! kept in a bounded LRU (op-node: 1000 peers) so a swarm of peer ids cannot grow the table.
//!
//! Waiting happens outside any lock: the table lock is held only to fetch (or create) a peer's
//! limiter, then the caller awaits tokens on its own `Arc`.

use std::collections::HashMap;
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

/// Per-peer limiters, least recently used evicted beyond `capacity`.
pub struct PeerLimiters {
    rate: Rate,
    capacity: usize,
    inner: Mutex<PeerTable>,
}

#[derive(Default)]
struct PeerTable {
    clock: u64,
    limiters: HashMap<PeerId, (Arc<DefaultDirectRateLimiter>, u64)>,
}

impl PeerLimiters {
    /// A table of at most `capacity` peers, each limited to `rate`.
    pub fn new(rate: Rate, capacity: usize) -> Self {
        Self {
            rate,
            capacity: capacity.max(1),
            inner: Mutex::new(PeerTable::default()),
        }
    }

    /// The limiter of `peer`, created (bucket full) if unknown.
    pub fn get(&self, peer: PeerId) -> Arc<DefaultDirectRateLimiter> {
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

    /// Peers currently tracked.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .limiters
            .len()
    }

    /// True when no peer is tracked.
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
    let mut waited = false;
    for limiter in [peer, global] {
        // `check` takes the token when there is one; `until_ready` waits for it otherwise.
        if limiter.check().is_err() {
            waited = true;
            limiter.until_ready().await;
        }
    }
    waited
}

/// Waits for one token from `peer`, then one from `global`, for at most `max_wait` in total.
pub async fn acquire(
    global: &DefaultDirectRateLimiter,
    peer: &DefaultDirectRateLimiter,
    max_wait: Duration,
) -> Tokens {
    match tokio::time::timeout(max_wait, take_tokens(global, peer)).await {
        Ok(true) => Tokens::Waited,
        Ok(false) => Tokens::Ready,
        Err(_) => Tokens::TimedOut,
    }
}
