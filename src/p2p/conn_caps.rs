//! Hard bounds on inbound connections, right behind the gate in the swarm's behaviours: fresh
//! peer ids cost an attacker nothing, so the node bounds connections in total, per peer, per IP
//! and per subnet, and refuses the excess at once (before the handshake where the bound allows).
//!
//! ```text
//! TCP accept ─► gate (bans, blocks) ─► IpCaps (per IP, per /24 or /64) ─► connection_limits
//!            (pending, established inbound, total, per peer) ─► memory limit ─► protocols
//! ```
//!
//! The totals come from rust-libp2p's `connection_limits` and `memory_connection_limits`
//! behaviours, built by [`libp2p_limits`] and [`memory_limit`]; this module adds what they lack,
//! the per-IP and per-subnet caps ([`IpCounts`], sans-IO). Loopback addresses are exempt from the
//! IP caps, as they are from the colocation penalty: tests and devnets put every node there.
//! Outbound connections are never counted against the IP caps (we choose whom we dial).

use std::collections::HashMap;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::behaviour::{ConnectionClosed, ListenFailure};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use super::ConnectionLimits;
use super::gate::ip_of;

/// Inbound connections above `--p2p.peers.hi`: room for the trimmer (which closes the lowest
/// scored peers past their grace period down to `lo`) to choose, and for new honest peers to
/// replace the worst ones. Beyond it an inbound connection is refused at once.
pub const INBOUND_SLACK: usize = 5;
/// Outbound connections kept free beyond the inbound bound, for static peers and dials of our
/// own (discovery): inbound peers can never take them.
pub const OUTBOUND_RESERVE: usize = 10;
/// Incoming handshakes in flight. Each lasts at most the transport's upgrade timeout (10 s); an
/// attacker holding them all delays new inbound peers, never established ones or our dials.
pub const MAX_PENDING_INCOMING: usize = 32;
/// Connections to one peer: a simultaneous dial in both directions gives two.
pub const MAX_CONNECTIONS_PER_PEER: usize = 2;
/// Inbound connections (pending or established) from one IP: a few nodes behind one NAT.
pub const MAX_INBOUND_PER_IP: usize = 4;
/// Inbound connections from one /24 (IPv4) or /64 (IPv6): a hosting provider's block may hold a
/// few operators' nodes, but not a third of our peers.
pub const MAX_INBOUND_PER_SUBNET: usize = 8;
/// Process memory above which new connections are refused: the node runs at about 45 MiB with a
/// full peer table and 100 KiB blocks (`scripts/bench-propagation.sh`), so 256 MiB means
/// something is wrong, and taking more peers would make it worse.
pub const MAX_PROCESS_MEMORY_BYTES: usize = 256 << 20;

/// rust-libp2p's connection limits for `limits` and `static_peers` static peers.
pub fn libp2p_limits(
    limits: &ConnectionLimits,
    static_peers: usize,
) -> libp2p::connection_limits::ConnectionLimits {
    let as_u32 = |n: usize| Some(u32::try_from(n).unwrap_or(u32::MAX));
    let inbound = limits.hi.saturating_add(INBOUND_SLACK);
    libp2p::connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(as_u32(MAX_PENDING_INCOMING))
        .with_max_established_incoming(as_u32(inbound))
        .with_max_established(as_u32(
            inbound
                .saturating_add(OUTBOUND_RESERVE)
                .saturating_add(static_peers),
        ))
        .with_max_established_per_peer(as_u32(MAX_CONNECTIONS_PER_PEER))
}

/// The memory limit behaviour ([`MAX_PROCESS_MEMORY_BYTES`]).
pub fn memory_limit() -> libp2p::memory_connection_limits::Behaviour {
    libp2p::memory_connection_limits::Behaviour::with_max_bytes(MAX_PROCESS_MEMORY_BYTES)
}

/// Why the IP caps refused a connection.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum IpCapExceeded {
    /// Too many from this IP.
    #[error("{0} already has {MAX_INBOUND_PER_IP} inbound connections")]
    Ip(IpAddr),
    /// Too many from this IP's subnet.
    #[error("the subnet of {0} already has {MAX_INBOUND_PER_SUBNET} inbound connections")]
    Subnet(IpAddr),
}

/// The /24 (IPv4) or /64 (IPv6) holding `ip`, as a comparable key (IPv4-mapped IPv6 as IPv4).
fn subnet_key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (true, u128::from(u32::from(v4) >> 8)),
            None => (false, u128::from(v6) >> 64),
        },
        IpAddr::V4(v4) => (true, u128::from(u32::from(v4) >> 8)),
    }
}

/// Inbound connections per IP and per subnet (sans-IO). Bounded by the connections it counts:
/// an entry exists only while a connection from it does.
#[derive(Debug, Default)]
pub struct IpCounts {
    per_ip: HashMap<IpAddr, usize>,
    per_subnet: HashMap<(bool, u128), usize>,
    /// The IP each counted connection holds.
    held: HashMap<ConnectionId, IpAddr>,
}

impl IpCounts {
    /// Counts connection `id` from `ip`, or refuses it when `ip` or its subnet is full.
    /// Loopback is admitted without counting.
    pub fn admit(&mut self, id: ConnectionId, ip: IpAddr) -> Result<(), IpCapExceeded> {
        if ip.is_loopback() || self.held.contains_key(&id) {
            return Ok(());
        }
        if self.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_INBOUND_PER_IP {
            return Err(IpCapExceeded::Ip(ip));
        }
        let subnet = subnet_key(ip);
        if self.per_subnet.get(&subnet).copied().unwrap_or(0) >= MAX_INBOUND_PER_SUBNET {
            return Err(IpCapExceeded::Subnet(ip));
        }
        *self.per_ip.entry(ip).or_default() += 1;
        *self.per_subnet.entry(subnet).or_default() += 1;
        self.held.insert(id, ip);
        Ok(())
    }

    /// Forgets connection `id` (closed, or failed before it was established).
    pub fn release(&mut self, id: ConnectionId) {
        let Some(ip) = self.held.remove(&id) else {
            return;
        };
        fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: K) {
            if let Some(n) = map.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
        decrement(&mut self.per_ip, ip);
        decrement(&mut self.per_subnet, subnet_key(ip));
    }

    /// Connections counted.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// True when none is counted.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

/// The per-IP and per-subnet caps as a behaviour.
#[derive(Debug, Default)]
pub struct IpCaps {
    counts: IpCounts,
}

impl NetworkBehaviour for IpCaps {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        match ip_of(remote) {
            Some(ip) => self.counts.admit(id, ip).map_err(ConnectionDenied::new),
            None => Ok(()),
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.counts.release(connection_id);
            }
            // Established connections keep their count until they close; a connection another
            // behaviour denied (pending or at establishment) is reported as a `ListenFailure`.
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::new_unchecked(n)
    }

    #[test]
    fn an_ip_and_a_subnet_are_capped_and_released() {
        let mut counts = IpCounts::default();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for n in 0..MAX_INBOUND_PER_IP {
            counts.admit(id(n), ip).unwrap();
        }
        assert_eq!(counts.admit(id(100), ip), Err(IpCapExceeded::Ip(ip)));
        // Other IPs of the same /24 fill the subnet.
        for n in MAX_INBOUND_PER_IP..MAX_INBOUND_PER_SUBNET {
            let other: IpAddr = format!("203.0.113.{}", 10 + n).parse().unwrap();
            counts.admit(id(n), other).unwrap();
        }
        let neighbour: IpAddr = "203.0.113.200".parse().unwrap();
        assert_eq!(
            counts.admit(id(101), neighbour),
            Err(IpCapExceeded::Subnet(neighbour))
        );
        // Another /24 is unaffected; so is loopback, which is never counted.
        counts
            .admit(id(102), "203.0.114.1".parse().unwrap())
            .unwrap();
        for n in 200..300 {
            counts.admit(id(n), "127.0.0.1".parse().unwrap()).unwrap();
        }
        assert_eq!(counts.len(), MAX_INBOUND_PER_SUBNET + 1);
        // A closed connection frees its place; everything released leaves nothing behind.
        counts.release(id(0));
        counts.admit(id(103), ip).unwrap();
        for n in (1..MAX_INBOUND_PER_SUBNET).chain([102, 103]) {
            counts.release(id(n));
        }
        assert!(counts.is_empty());
        assert!(counts.per_ip.is_empty() && counts.per_subnet.is_empty());
    }

    #[test]
    fn ipv6_is_capped_per_64_and_mapped_ipv4_as_ipv4() {
        let mut counts = IpCounts::default();
        for n in 0..MAX_INBOUND_PER_SUBNET {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", n + 1).parse().unwrap();
            counts.admit(id(n), ip).unwrap();
        }
        let same_64: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert!(matches!(
            counts.admit(id(50), same_64),
            Err(IpCapExceeded::Subnet(_))
        ));
        counts
            .admit(id(51), "2001:db8:1:3::1".parse().unwrap())
            .unwrap();
        let v4: IpAddr = "198.51.100.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:198.51.100.2".parse().unwrap();
        assert_eq!(subnet_key(v4), subnet_key(mapped));
    }
}
