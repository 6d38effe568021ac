//! The connection gate: the first behaviour of the swarm, so a banned or blocked peer is refused
//! before any protocol runs (op-node's basic + expiry connection gaters, spec §7.3). Inbound
//! connections from a banned or blocked IP or subnet are refused before the handshake; a banned
//! or blocked peer is refused once its id is known (after the noise handshake, or before dialling
//! when the dial names it); an outbound connection to a refused IP is closed as soon as it is up.
//! Counts what it allowed and refused. The gate holds the [`super::PeerManager`], so the state
//! that decides a ban is the state that refuses the next connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use super::PeerManager;
use crate::clock::unix_now;
use crate::p2p::peers::bans::BanList;
use crate::p2p::peers::lists::PeerLists;

/// Why a connection is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is banned.
    #[error("peer {peer} is banned until {until} (unix seconds)")]
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// Ban expiry.
        until: u64,
    },
    /// The IP is banned.
    #[error("address {ip} is banned until {until} (unix seconds)")]
    IpBanned {
        /// The IP.
        ip: IpAddr,
        /// Ban expiry.
        until: u64,
    },
    /// The operator blocked the peer.
    #[error("peer {0} is blocked")]
    PeerBlocked(PeerId),
    /// The operator blocked the IP or a subnet holding it.
    #[error(transparent)]
    IpBlocked(#[from] crate::p2p::peers::lists::IpBlock),
}

impl Refusal {
    /// Whether the refusal comes from a ban (rather than a block).
    pub fn is_ban(&self) -> bool {
        matches!(self, Self::PeerBanned { .. } | Self::IpBanned { .. })
    }
}

/// Who may connect: the ban books and the operator's lists, read on every attempt.
#[derive(Debug, Clone)]
pub struct Admission {
    bans: Arc<BanList>,
    lists: Arc<PeerLists>,
}

impl Admission {
    /// Admission over `bans` and `lists`.
    pub fn new(bans: Arc<BanList>, lists: Arc<PeerLists>) -> Self {
        Self { bans, lists }
    }

    /// Why `peer` (when known) at `ip` (when known) is refused at `now`, if it is.
    pub fn refusal(&self, peer: Option<PeerId>, ip: Option<IpAddr>, now: u64) -> Option<Refusal> {
        if let Some(peer) = peer {
            if self.lists.is_peer_blocked(&peer) {
                return Some(Refusal::PeerBlocked(peer));
            }
            if let Some(until) = self.bans.banned_until(&peer, now) {
                return Some(Refusal::PeerBanned { peer, until });
            }
        }
        let ip = ip?;
        if let Some(why) = self.lists.ip_block(&ip) {
            return Some(Refusal::IpBlocked(why));
        }
        self.bans
            .ip_banned_until(&ip, now)
            .map(|until| Refusal::IpBanned { ip, until })
    }
}

/// The IP of an address, if it has one.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        libp2p::multiaddr::Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Gate counters.
#[derive(Debug, Default)]
pub struct GateStats {
    /// Inbound connections allowed.
    pub accepts_allowed: AtomicU64,
    /// Inbound connections refused.
    pub accepts_refused: AtomicU64,
    /// Outbound dials allowed.
    pub dials_allowed: AtomicU64,
    /// Outbound dials refused.
    pub dials_refused: AtomicU64,
}

/// The gate behaviour, holding the peer manager.
pub struct Gate {
    /// The peer manager, reached by the event loop through the swarm.
    pub manager: PeerManager,
    stats: Arc<GateStats>,
}

impl Gate {
    /// A gate applying `manager`'s admission.
    pub fn new(manager: PeerManager, stats: Arc<GateStats>) -> Self {
        Self { manager, stats }
    }

    /// Refuses a banned or blocked peer or address, counting the refusal and (when `allowed`
    /// is given) the admission.
    fn check(
        &self,
        peer: Option<PeerId>,
        addr: Option<&Multiaddr>,
        allowed: Option<&AtomicU64>,
        refused: &AtomicU64,
    ) -> Result<(), ConnectionDenied> {
        match self.manager.refusal(peer, addr.and_then(ip_of), unix_now()) {
            Some(refusal) => {
                refused.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(?peer, %refusal, "connection refused");
                Err(ConnectionDenied::new(refusal))
            }
            None => {
                if let Some(allowed) = allowed {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        }
    }
}

impl NetworkBehaviour for Gate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = std::convert::Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        // The admission is counted once the peer id is known.
        self.check(None, Some(remote), None, &self.stats.accepts_refused)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let stats = &self.stats;
        self.check(
            Some(peer),
            Some(remote),
            Some(&stats.accepts_allowed),
            &stats.accepts_refused,
        )?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: Option<PeerId>,
        _: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        let stats = &self.stats;
        // A dial by address alone is counted as allowed here and checked again once up.
        self.check(peer, None, Some(&stats.dials_allowed), &stats.dials_refused)?;
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // A dial by address only learns the peer id here, and a dial by peer id only its
        // address; its admission was counted when the dial started.
        self.check(Some(peer), Some(addr), None, &self.stats.dials_refused)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

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
mod tests {
    use super::*;
    use crate::p2p::peers::lists::ListChange;

    #[test]
    fn admission_refuses_banned_and_blocked_peers_ips_and_subnets() {
        let bans = Arc::new(BanList::in_memory());
        let lists = Arc::new(PeerLists::in_memory());
        let admission = Admission::new(bans.clone(), lists.clone());
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/10.1.2.3/tcp/9222".parse().unwrap();
        assert_eq!(admission.refusal(Some(peer), ip_of(&addr), 100), None);

        bans.ban_ip("10.1.2.3".parse().unwrap(), 200);
        assert!(matches!(
            admission.refusal(None, ip_of(&addr), 100),
            Some(Refusal::IpBanned { until: 200, .. })
        ));
        assert_eq!(admission.refusal(None, ip_of(&addr), 200), None, "expired");

        lists
            .apply_now(ListChange::BlockSubnet("10.0.0.0/8".parse().unwrap()))
            .unwrap();
        let refusal = admission.refusal(None, ip_of(&addr), 300).unwrap();
        assert!(!refusal.is_ban());
        assert_eq!(refusal.to_string(), "subnet 10.0.0.0/8 is blocked");

        bans.ban(peer, 400);
        let other: Multiaddr = "/ip6/::1/tcp/1".parse().unwrap();
        assert!(
            admission
                .refusal(Some(peer), ip_of(&other), 300)
                .unwrap()
                .is_ban()
        );
        lists.apply_now(ListChange::BlockPeer(peer)).unwrap();
        assert_eq!(
            admission.refusal(Some(peer), None, 300),
            Some(Refusal::PeerBlocked(peer))
        );
    }
}
