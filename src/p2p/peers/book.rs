//! The peer book: what the node knows about each peer it has met, beyond the swarm's own state:
//! addresses, connection direction and age, identify data (agent, protocol version, protocols),
//! ping latency, and why it was last disconnected. Owned by the event loop (the only writer);
//! the admin RPC and the connection manager read it through the loop.
//!
//! Bounded to [`MAX_KNOWN_PEERS`]: connected peers are always kept; beyond the bound the
//! disconnected peer seen longest ago is forgotten.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::time::Duration;

use libp2p::swarm::ConnectionError;
use libp2p::{Multiaddr, PeerId};

/// Peers remembered at most (op-node keeps a peerstore of every peer met; this is our bound).
/// Enough for several times the connection limit's churn between restarts of interest.
pub const MAX_KNOWN_PEERS: usize = 1_000;
/// Addresses kept per peer (most recent first): a peer advertises a handful.
pub const MAX_ADDRESSES: usize = 8;
/// Protocols kept per peer from identify (op-node's peers list a dozen).
pub const MAX_PROTOCOLS: usize = 64;
/// Longest identify string kept (agent, protocol version); longer ones are cut.
pub const MAX_IDENTIFY_TEXT: usize = 256;

/// Which side opened the connection (op-node's `network.Direction`, as an integer in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

/// Why a peer was (or is being) disconnected: the `disconnectReason` vocabulary of the admin RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The ban monitor found its score below `--p2p.ban.threshold` and banned it.
    ScoreBelowThreshold,
    /// It is banned (operator ban, or a connection from a banned peer was refused).
    Banned,
    /// The operator blocked it, its IP or its subnet.
    Blocked,
    /// The connection manager trimmed it (more than `--p2p.peers.hi` peers).
    TooManyPeers,
    /// The operator disconnected it (`opp2p_disconnectPeer`).
    Operator,
    /// The node is shutting down.
    Shutdown,
    /// The remote side closed the connection or reset it.
    RemoteClosed,
    /// The connection failed with an I/O error.
    IoError,
    /// The remote broke a protocol (muxer or security framing).
    ProtocolError,
    /// No protocol needed the connection any more (idle keep-alive expired).
    IdleTimeout,
    /// We closed it for another reason.
    LocalClose,
}

impl DisconnectReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScoreBelowThreshold => "score_below_threshold",
            Self::Banned => "banned",
            Self::Blocked => "blocked",
            Self::TooManyPeers => "too_many_peers",
            Self::Operator => "operator",
            Self::Shutdown => "shutdown",
            Self::RemoteClosed => "remote_closed",
            Self::IoError => "io_error",
            Self::ProtocolError => "protocol_error",
            Self::IdleTimeout => "idle_timeout",
            Self::LocalClose => "local_close",
        }
    }

    /// The reason a connection closed with `cause` (`None`: we closed it).
    pub fn of_close(cause: Option<&ConnectionError>) -> Self {
        match cause {
            None => Self::LocalClose,
            Some(ConnectionError::KeepAliveTimeout) => Self::IdleTimeout,
            Some(ConnectionError::IO(e)) => match e.kind() {
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe
                | ErrorKind::NotConnected => Self::RemoteClosed,
                ErrorKind::InvalidData | ErrorKind::InvalidInput => Self::ProtocolError,
                _ => Self::IoError,
            },
        }
    }
}

/// One peer.
#[derive(Debug, Clone, Default)]
pub struct PeerRecord {
    /// Known addresses, most recent first (≤ [`MAX_ADDRESSES`]).
    pub addresses: Vec<Multiaddr>,
    /// Open connections.
    pub connections: usize,
    /// Direction of the first open connection.
    pub direction: Option<Direction>,
    /// When the first open connection was established (unix seconds).
    pub connected_since: Option<u64>,
    /// The peer's IP on the first open connection.
    pub remote_ip: Option<std::net::IpAddr>,
    /// Identify agent version ("" until identify ran).
    pub agent_version: String,
    /// Identify protocol version.
    pub protocol_version: String,
    /// Identify protocols (≤ [`MAX_PROTOCOLS`]).
    pub protocols: Vec<String>,
    /// Last ping round trip.
    pub latency: Option<Duration>,
    /// Set when we decided to close the peer and the connections are closing.
    pub disconnecting: Option<DisconnectReason>,
    /// Why the last connection closed (only while disconnected).
    pub disconnect_reason: Option<DisconnectReason>,
    /// Last time anything happened with the peer (unix seconds).
    pub last_seen: u64,
    /// The peer's discovery record (`enr:…`), when discovery found and dialled it.
    pub enr: Option<String>,
    /// The chain id of its record's `opstack` entry (0: unknown), as op-node's `chainID`.
    pub chain_id: u64,
}

impl PeerRecord {
    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.connections > 0
    }

    /// The reason shown to the operator: why it is closing, or why it closed.
    pub fn shown_disconnect_reason(&self) -> Option<DisconnectReason> {
        self.disconnecting.or(if self.is_connected() {
            None
        } else {
            self.disconnect_reason
        })
    }
}

/// The book.
#[derive(Debug, Default)]
pub struct PeerBook {
    peers: HashMap<PeerId, PeerRecord>,
}

impl PeerBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection opened (`remote` is the peer's address on it).
    pub fn on_connected(
        &mut self,
        peer: PeerId,
        direction: Direction,
        remote: Multiaddr,
        now: u64,
    ) {
        let record = self.entry(peer, now);
        record.connections += 1;
        if record.connections == 1 {
            record.direction = Some(direction);
            record.connected_since = Some(now);
            record.remote_ip = crate::p2p::gate::ip_of(&remote);
            record.disconnect_reason = None;
            record.disconnecting = None;
        }
        if direction == Direction::Outbound {
            remember_address(record, remote);
        }
    }

    /// A connection closed; `remaining` are still open. Returns the reason recorded when it was
    /// the last one.
    pub fn on_closed(
        &mut self,
        peer: PeerId,
        remaining: usize,
        cause: Option<&ConnectionError>,
        now: u64,
    ) -> Option<DisconnectReason> {
        let record = self.entry(peer, now);
        record.connections = remaining;
        if remaining > 0 {
            return None;
        }
        let reason = record
            .disconnecting
            .take()
            .unwrap_or_else(|| DisconnectReason::of_close(cause));
        record.disconnect_reason = Some(reason);
        record.direction = None;
        record.connected_since = None;
        record.remote_ip = None;
        record.latency = None;
        Some(reason)
    }

    /// We are closing `peer` for `reason` (shown until the connections are gone).
    pub fn mark_disconnecting(&mut self, peer: PeerId, reason: DisconnectReason, now: u64) {
        let record = self.entry(peer, now);
        if record.is_connected() {
            record.disconnecting = Some(reason);
        } else {
            record.disconnect_reason = Some(reason);
        }
    }

    /// Identify data arrived. Its listen addresses are kept only while the peer is connected
    /// and we are not closing it: identify answers on a connection's first streams, so its
    /// report can arrive after `opp2p_disconnectPeer` cleared the addresses, and must not
    /// bring them back.
    pub fn on_identify(&mut self, peer: PeerId, info: &libp2p::identify::Info, now: u64) {
        let record = self.entry(peer, now);
        record.agent_version = cut(&info.agent_version);
        record.protocol_version = cut(&info.protocol_version);
        record.protocols = info
            .protocols
            .iter()
            .take(MAX_PROTOCOLS)
            .map(|p| cut(p.as_ref()))
            .collect();
        if !record.is_connected() || record.disconnecting.is_some() {
            return;
        }
        for addr in info.listen_addrs.iter().take(MAX_ADDRESSES).rev() {
            remember_address(record, addr.clone());
        }
    }

    /// Discovery dialled `peer` from its record: kept for `opp2p_peers` (op-node's peer
    /// metadata). Only a peer already in the book gains it (the dial connected).
    pub fn on_discovered(&mut self, peer: &PeerId, enr: String, chain_id: u64) {
        if let Some(record) = self.peers.get_mut(peer) {
            record.enr = Some(enr);
            record.chain_id = chain_id;
        }
    }

    /// A ping round trip was measured.
    pub fn on_ping(&mut self, peer: PeerId, rtt: Duration, now: u64) {
        self.entry(peer, now).latency = Some(rtt);
    }

    /// Adds `peer` as known but never seen since the start (peers with a scorebook record are
    /// listed after a restart, with their recorded scores).
    pub fn remember(&mut self, peer: PeerId, last_seen: u64) {
        self.entry(peer, last_seen);
    }

    /// Forgets `peer` (`opp2p_disconnectPeer` removes it from the peerstore).
    pub fn remove(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// Clears `peer`'s addresses (`opp2p_disconnectPeer`); the record stays so the operator
    /// still sees why it was disconnected.
    pub fn forget_addresses(&mut self, peer: &PeerId) {
        if let Some(record) = self.peers.get_mut(peer) {
            record.addresses.clear();
        }
    }

    /// One peer.
    pub fn get(&self, peer: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(peer)
    }

    /// Every known peer.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &PeerRecord)> {
        self.peers.iter()
    }

    /// Known peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    fn entry(&mut self, peer: PeerId, now: u64) -> &mut PeerRecord {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_KNOWN_PEERS {
            // Linear over ≤ MAX_KNOWN_PEERS, only when a new peer arrives at a full book.
            if let Some(oldest) = self
                .peers
                .iter()
                .filter(|(_, r)| !r.is_connected())
                .min_by_key(|(_, r)| r.last_seen)
                .map(|(p, _)| *p)
            {
                self.peers.remove(&oldest);
            }
        }
        let record = self.peers.entry(peer).or_default();
        record.last_seen = now;
        record
    }
}

fn remember_address(record: &mut PeerRecord, addr: Multiaddr) {
    record.addresses.retain(|a| *a != addr);
    record.addresses.insert(0, addr);
    record.addresses.truncate(MAX_ADDRESSES);
}

fn cut(text: &str) -> String {
    let mut end = text.len().min(MAX_IDENTIFY_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_follow_the_connection_life() {
        let mut book = PeerBook::new();
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        book.on_connected(peer, Direction::Outbound, addr.clone(), 1);
        book.on_connected(peer, Direction::Inbound, addr.clone(), 2);
        assert_eq!(
            book.get(&peer).unwrap().direction,
            Some(Direction::Outbound)
        );
        assert_eq!(book.get(&peer).unwrap().addresses, vec![addr.clone()]);
        book.mark_disconnecting(peer, DisconnectReason::TooManyPeers, 3);
        assert_eq!(
            book.get(&peer).unwrap().shown_disconnect_reason(),
            Some(DisconnectReason::TooManyPeers)
        );
        assert_eq!(book.on_closed(peer, 1, None, 4), None);
        assert_eq!(
            book.on_closed(peer, 0, None, 4),
            Some(DisconnectReason::TooManyPeers)
        );
        // Reconnecting clears the reason; a reset by the remote is remote_closed.
        book.on_connected(peer, Direction::Inbound, addr, 5);
        assert_eq!(book.get(&peer).unwrap().shown_disconnect_reason(), None);
        let reset = ConnectionError::IO(std::io::Error::from(ErrorKind::ConnectionReset));
        assert_eq!(
            book.on_closed(peer, 0, Some(&reset), 6),
            Some(DisconnectReason::RemoteClosed)
        );
    }

    #[test]
    fn identify_from_a_closing_connection_does_not_restore_cleared_addresses() {
        let mut book = PeerBook::new();
        let peer = PeerId::random();
        let dialed: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let listen: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
        let info = libp2p::identify::Info {
            public_key: libp2p::identity::Keypair::generate_ed25519().public(),
            protocol_version: "p".into(),
            agent_version: "a".into(),
            listen_addrs: vec![listen.clone()],
            protocols: vec![],
            observed_addr: dialed.clone(),
            signed_peer_record: None,
        };
        book.on_connected(peer, Direction::Outbound, dialed.clone(), 1);
        book.on_identify(peer, &info, 2);
        assert_eq!(
            book.get(&peer).unwrap().addresses,
            vec![listen.clone(), dialed.clone()]
        );

        // The operator disconnects and forgets; identify's report is still on its way.
        book.mark_disconnecting(peer, DisconnectReason::Operator, 3);
        book.forget_addresses(&peer);
        book.on_identify(peer, &info, 3);
        assert!(book.get(&peer).unwrap().addresses.is_empty());
        book.on_closed(peer, 0, None, 4);
        book.on_identify(peer, &info, 4);
        let record = book.get(&peer).unwrap();
        assert!(record.addresses.is_empty());
        assert_eq!(record.agent_version, "a", "the rest of identify is kept");

        // A new connection learns them again.
        book.on_connected(peer, Direction::Inbound, dialed, 5);
        book.on_identify(peer, &info, 6);
        assert_eq!(book.get(&peer).unwrap().addresses, vec![listen]);
    }

    #[test]
    fn the_book_is_bounded_and_keeps_connected_peers() {
        let mut book = PeerBook::new();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let connected = PeerId::random();
        book.on_connected(connected, Direction::Inbound, addr, 0);
        for i in 0..MAX_KNOWN_PEERS as u64 + 50 {
            book.on_ping(PeerId::random(), Duration::from_millis(1), i + 1);
        }
        assert_eq!(book.len(), MAX_KNOWN_PEERS);
        assert!(book.get(&connected).is_some());
    }
}
