//! The candidate queue and dial scheduler: sans-IO, time passed in.
//!
//! Sits between the lookups and the event loop: records of our chain found by discv5 are
//! [`DialQueue::offer`]ed; [`DialQueue::next_dials`] hands out as many as the target
//! (`--p2p.peers.lo`) and the concurrency bound allow; the event loop's answers come back through
//! [`DialQueue::on_result`]. Every structure is bounded, so a flood of fake records of our chain
//! pointing at dead or hostile addresses costs at most [`MAX_QUEUED`] queued records (at most
//! [`MAX_QUEUED_PER_IP`] per IP, [`MAX_QUEUED_PER_SUBNET`] per /24 or /64), [`MAX_IN_FLIGHT`]
//! dials at once, and one failed dial per IP per backoff period ([`MAX_BACKOFF_ENTRIES`] of each
//! kind remembered; when full the entry closest to expiry goes).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::records::DialTarget;

/// Records waiting to be dialled. op-node buffers 3 found nodes and 10 connection requests;
/// a larger queue lets one lookup's worth of results (discv5 returns up to 16 per query) wait
/// while 4 dials run, and it is still small.
pub const MAX_QUEUED: usize = 64;
/// Queued records per IP: an honest host runs one node, maybe two.
pub const MAX_QUEUED_PER_IP: usize = 2;
/// Queued records per /24 (IPv4) or /64 (IPv6): a flooder with one subnet fills an eighth of the
/// queue at most.
pub const MAX_QUEUED_PER_SUBNET: usize = 8;
/// Dials at once (op-node: 4 connect workers).
pub const MAX_IN_FLIGHT: usize = 4;
/// A dial without an answer after this long counts as failed (op-node: 10 s per dial, 30 s
/// collective timeout).
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(30);
/// First backoff after a failed dial; doubled per failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(60);
/// Longest backoff (an hour, op-node's ban duration: a dead record is retried hourly at most).
pub const BACKOFF_MAX: Duration = Duration::from_secs(60 * 60);
/// Peers and IPs remembered in backoff (each table): 2,048 entries of ~64 bytes.
pub const MAX_BACKOFF_ENTRIES: usize = 2048;

/// What happened to an offered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued for a dial.
    Queued,
    /// Already queued or being dialled.
    Duplicate,
    /// The peer or its IP failed recently.
    BackedOff,
    /// The queue, or its share for this IP or subnet, is full.
    Full,
}

impl Offer {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Duplicate => "duplicate",
            Self::BackedOff => "backed_off",
            Self::Full => "queue_full",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Instant,
}

/// The scheduler's state.
#[derive(Debug, Default)]
pub struct DialQueue {
    queue: VecDeque<DialTarget>,
    queued: HashSet<PeerId>,
    in_flight: HashMap<PeerId, (IpAddr, Instant)>,
    peer_backoff: HashMap<PeerId, Backoff>,
    ip_backoff: HashMap<IpAddr, Backoff>,
}

/// The /24 or /64 an IP belongs to.
fn subnet(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
    }
}

fn backed_off<K: std::hash::Hash + Eq>(map: &HashMap<K, Backoff>, key: &K, now: Instant) -> bool {
    map.get(key).is_some_and(|b| b.until > now)
}

fn record_failure<K: std::hash::Hash + Eq + Copy>(
    map: &mut HashMap<K, Backoff>,
    key: K,
    now: Instant,
) {
    if !map.contains_key(&key) && map.len() >= MAX_BACKOFF_ENTRIES {
        // Full: forget the entry closest to expiry (expired ones first).
        if let Some(victim) = map.iter().min_by_key(|(_, b)| b.until).map(|(k, _)| *k) {
            map.remove(&victim);
        }
    }
    let failures = map.get(&key).map_or(0, |b| b.failures).saturating_add(1);
    let factor = 1u32 << failures.saturating_sub(1).min(6);
    let wait = BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX);
    map.insert(
        key,
        Backoff {
            failures,
            until: now + wait,
        },
    );
}

impl DialQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers a record of our chain (the caller has checked the chain, the gate and that the
    /// peer is not connected).
    pub fn offer(&mut self, target: DialTarget, now: Instant) -> Offer {
        if self.queued.contains(&target.peer) || self.in_flight.contains_key(&target.peer) {
            return Offer::Duplicate;
        }
        if backed_off(&self.peer_backoff, &target.peer, now)
            || backed_off(&self.ip_backoff, &target.ip, now)
        {
            return Offer::BackedOff;
        }
        let same_ip = self.queue.iter().filter(|t| t.ip == target.ip).count();
        let net = subnet(target.ip);
        let same_subnet = self.queue.iter().filter(|t| subnet(t.ip) == net).count();
        if self.queue.len() >= MAX_QUEUED
            || same_ip >= MAX_QUEUED_PER_IP
            || same_subnet >= MAX_QUEUED_PER_SUBNET
        {
            return Offer::Full;
        }
        self.queued.insert(target.peer);
        self.queue.push_back(target);
        Offer::Queued
    }

    /// The records to dial now: while fewer than [`MAX_IN_FLIGHT`] dials run and the connected
    /// peers plus the running dials are below `target_peers`. Dials that timed out are counted
    /// as failures first (returned in the second list).
    pub fn next_dials(
        &mut self,
        now: Instant,
        connected: usize,
        target_peers: usize,
    ) -> (Vec<DialTarget>, Vec<PeerId>) {
        let expired: Vec<PeerId> = self
            .in_flight
            .iter()
            .filter(|(_, (_, started))| now.saturating_duration_since(*started) >= DIAL_TIMEOUT)
            .map(|(p, _)| *p)
            .collect();
        for peer in &expired {
            self.on_result(*peer, false, now);
        }
        let mut out = Vec::new();
        while self.in_flight.len() < MAX_IN_FLIGHT
            && connected + self.in_flight.len() < target_peers
        {
            let Some(target) = self.queue.pop_front() else {
                break;
            };
            self.queued.remove(&target.peer);
            // Backed off since it was queued (another record at its IP failed): skip it.
            if backed_off(&self.ip_backoff, &target.ip, now) {
                continue;
            }
            self.in_flight.insert(target.peer, (target.ip, now));
            out.push(target);
        }
        (out, expired)
    }

    /// A dial finished. A failure backs off the peer and its IP; a success clears them.
    pub fn on_result(&mut self, peer: PeerId, ok: bool, now: Instant) {
        let Some((ip, _)) = self.in_flight.remove(&peer) else {
            return;
        };
        if ok {
            self.peer_backoff.remove(&peer);
            self.ip_backoff.remove(&ip);
        } else {
            record_failure(&mut self.peer_backoff, peer, now);
            // Loopback is exempt: on one machine (tests, devnets) many nodes share it.
            if !ip.is_loopback() {
                record_failure(&mut self.ip_backoff, ip, now);
            }
        }
    }

    /// Records waiting.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Dials running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Peers and IPs in backoff (bounded by 2 × [`MAX_BACKOFF_ENTRIES`]).
    pub fn backoff_entries(&self) -> usize {
        self.peer_backoff.len() + self.ip_backoff.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(ip: &str) -> DialTarget {
        let ip: IpAddr = ip.parse().unwrap();
        DialTarget {
            peer: PeerId::random(),
            addr: format!("/ip4/{ip}/tcp/9222").parse().unwrap(),
            ip,
            enr: String::new(),
            chain_id: 10,
        }
    }

    #[test]
    fn dials_up_to_the_target_and_the_concurrency() {
        let now = Instant::now();
        let mut q = DialQueue::new();
        for i in 0..10 {
            assert_eq!(q.offer(target(&format!("10.0.{i}.1")), now), Offer::Queued);
        }
        // 18 connected, target 20: two dials.
        assert_eq!(q.next_dials(now, 18, 20).0.len(), 2);
        // Nobody connected: up to the concurrency bound.
        assert_eq!(q.next_dials(now, 0, 20).0.len(), MAX_IN_FLIGHT - 2);
        assert!(q.next_dials(now, 0, 20).0.is_empty());
        assert_eq!(q.queued(), 6);
    }

    #[test]
    fn duplicates_and_per_ip_and_subnet_bounds() {
        let now = Instant::now();
        let mut q = DialQueue::new();
        let t = target("10.0.0.1");
        assert_eq!(q.offer(t.clone(), now), Offer::Queued);
        assert_eq!(q.offer(t, now), Offer::Duplicate);
        assert_eq!(q.offer(target("10.0.0.1"), now), Offer::Queued);
        assert_eq!(q.offer(target("10.0.0.1"), now), Offer::Full);
        for i in 2..8 {
            assert_eq!(q.offer(target(&format!("10.0.0.{i}")), now), Offer::Queued);
        }
        assert_eq!(q.offer(target("10.0.0.99"), now), Offer::Full);
        assert_eq!(q.offer(target("10.0.1.1"), now), Offer::Queued);
    }

    #[test]
    fn a_flood_of_fake_records_stays_bounded() {
        let now = Instant::now();
        let mut q = DialQueue::new();
        let mut queued = 0;
        for i in 0..100_000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            if q.offer(target(&format!("11.{b}.{c}.{d}")), now) == Offer::Queued {
                queued += 1;
            }
        }
        assert_eq!(queued, MAX_QUEUED);
        // Every dial fails: the backoff tables stay bounded too.
        let mut t = now;
        for _ in 0..2000 {
            let (dials, _) = q.next_dials(t, 0, 20);
            for d in dials {
                q.on_result(d.peer, false, t);
            }
            for i in 0..8u32 {
                let [_, b, c, d] = (i + 7).wrapping_mul(2_654_435_761).to_be_bytes();
                q.offer(target(&format!("12.{b}.{c}.{d}")), t);
            }
            t += Duration::from_millis(10);
        }
        assert!(q.backoff_entries() <= 2 * MAX_BACKOFF_ENTRIES);
        assert!(q.queued() <= MAX_QUEUED && q.in_flight() <= MAX_IN_FLIGHT);
    }

    #[test]
    fn failures_back_off_the_peer_and_ip_and_doubles() {
        let now = Instant::now();
        let mut q = DialQueue::new();
        let t = target("10.0.0.1");
        q.offer(t.clone(), now);
        let (d, _) = q.next_dials(now, 0, 20);
        q.on_result(d[0].peer, false, now);
        assert_eq!(q.offer(t.clone(), now), Offer::BackedOff);
        // Another record at the same IP waits too.
        assert_eq!(q.offer(target("10.0.0.1"), now), Offer::BackedOff);
        let later = now + BACKOFF_BASE;
        assert_eq!(q.offer(t.clone(), later), Offer::Queued);
        let (d, _) = q.next_dials(later, 0, 20);
        q.on_result(d[0].peer, false, later);
        // Second failure: twice as long.
        assert_eq!(q.offer(t.clone(), later + BACKOFF_BASE), Offer::BackedOff);
        assert_eq!(q.offer(t.clone(), later + 2 * BACKOFF_BASE), Offer::Queued);
        let (d, _) = q.next_dials(later + 2 * BACKOFF_BASE, 0, 20);
        q.on_result(d[0].peer, true, later + 2 * BACKOFF_BASE);
        assert_eq!(q.offer(t, later + 2 * BACKOFF_BASE), Offer::Queued);
    }

    #[test]
    fn unanswered_dials_time_out() {
        let now = Instant::now();
        let mut q = DialQueue::new();
        q.offer(target("10.0.0.1"), now);
        let (d, _) = q.next_dials(now, 0, 20);
        assert_eq!(q.in_flight(), 1);
        let (_, expired) = q.next_dials(now + DIAL_TIMEOUT, 0, 20);
        assert_eq!(expired, vec![d[0].peer]);
        assert_eq!(q.in_flight(), 0);
    }
}
