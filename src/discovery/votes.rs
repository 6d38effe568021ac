//! Our public IP as peers see it, from identify's observed addresses: sans-IO.
//!
//! Sits beside discv5's own endpoint votes (PONGs): behind a NAT, with `--p2p.advertise.ip`
//! unset and a wildcard listen address, the ENR has no usable IP until enough peers agree on one.
//! Each peer has one vote (its latest); an IP wins once [`MIN_VOTES`] distinct peers report it
//! and no other IP has as many. At most [`MAX_VOTERS`] peers are remembered (the oldest vote goes
//! first), so a peer flood costs bounded memory and a handful of peers cannot outvote the rest.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use libp2p::PeerId;

/// Distinct peers that must agree (lighthouse needs 2 for its NAT status; discv5 asks 10 PONGs).
pub const MIN_VOTES: usize = 2;
/// Voters remembered (newest).
pub const MAX_VOTERS: usize = 64;

/// The tally.
#[derive(Debug, Default)]
pub struct IpVotes {
    votes: HashMap<PeerId, IpAddr>,
    order: VecDeque<PeerId>,
}

impl IpVotes {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `peer`'s view of our IP; returns the winner after the vote, if any. Loopback,
    /// unspecified and multicast addresses are not votes.
    pub fn vote(&mut self, peer: PeerId, ip: IpAddr) -> Option<IpAddr> {
        if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
            return self.winner();
        }
        if self.votes.insert(peer, ip).is_none() {
            self.order.push_back(peer);
            if self.order.len() > MAX_VOTERS
                && let Some(old) = self.order.pop_front()
            {
                self.votes.remove(&old);
            }
        }
        self.winner()
    }

    /// The IP most peers report, if at least [`MIN_VOTES`] do and it is not tied.
    pub fn winner(&self) -> Option<IpAddr> {
        let mut counts: HashMap<IpAddr, usize> = HashMap::new();
        for ip in self.votes.values() {
            *counts.entry(*ip).or_default() += 1;
        }
        let best = counts.values().copied().max()?;
        let mut leaders = counts.iter().filter(|(_, n)| **n == best);
        let (ip, _) = leaders.next()?;
        (best >= MIN_VOTES && leaders.next().is_none()).then_some(*ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_agreement_of_distinct_peers() {
        let mut v = IpVotes::new();
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "198.51.100.1".parse().unwrap();
        let p = PeerId::random();
        assert_eq!(v.vote(p, a), None);
        assert_eq!(v.vote(p, a), None, "one peer voting twice is one vote");
        assert_eq!(v.vote(PeerId::random(), a), Some(a));
        assert_eq!(v.vote(PeerId::random(), b), Some(a));
        assert_eq!(v.vote(PeerId::random(), b), None, "a tie has no winner");
        assert_eq!(v.vote(PeerId::random(), "127.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn bounded_voters() {
        let mut v = IpVotes::new();
        for i in 0..10_000u32 {
            v.vote(PeerId::random(), IpAddr::from(i.to_be_bytes()));
        }
        assert!(v.votes.len() <= MAX_VOTERS && v.order.len() <= MAX_VOTERS);
    }
}
