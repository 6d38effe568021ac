//! What goes into the peer manager and what comes out: the operator's changes (admin RPC) in,
//! [`PeerAction`]s out. The event loop carries the actions out in order (gossipsub, the swarm,
//! the ordered record queue and the blocking pool for disk writes); the manager itself never
//! does I/O.

use std::net::IpAddr;

use libp2p::PeerId;

use crate::p2p::peers::book::DisconnectReason;
use crate::p2p::peers::lists::ListChange;
use crate::store::RecordWrite;

/// One thing the event loop must do for the peer manager.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerAction {
    /// Copy `peer`'s application score into gossipsub (its P5 term).
    PushScore {
        /// The peer.
        peer: PeerId,
        /// Its application score.
        score: f64,
    },
    /// Read `peer`'s gossipsub total now (after the pushes before this action) and hand it to
    /// [`super::PeerManager::judge`]: a fault was just charged, so the ban check runs on it at
    /// once rather than at its round-robin turn.
    Judge(PeerId),
    /// `peer` is banned (already in memory: the gate refuses it): close its connections, tell
    /// the node, and persist the ban (the [`Self::Persist`] that follows).
    Banned {
        /// The peer.
        peer: PeerId,
        /// Its score when banned.
        score: f64,
        /// Ban expiry (unix seconds).
        until: u64,
    },
    /// Close every connection to `peer` (marked with `reason` in the peer book already).
    Disconnect {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: DisconnectReason,
    },
    /// Write a ban or list record, off the loop and after every record written before it
    /// ([`crate::p2p::record_queue`]).
    Persist(RecordWrite),
    /// Drop these peers' scorebook records, off the loop (their ban expired: they start afresh).
    ForgetRecords(Vec<PeerId>),
}

/// A change the operator asks for through the admin RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorChange {
    /// Ban a peer until a time (unix seconds).
    BanPeer {
        /// The peer.
        peer: PeerId,
        /// Expiry.
        until: u64,
    },
    /// Lift a peer's ban.
    UnbanPeer(PeerId),
    /// Ban an IP until a time (unix seconds).
    BanIp {
        /// The IP.
        ip: IpAddr,
        /// Expiry.
        until: u64,
    },
    /// Lift an IP's ban.
    UnbanIp(IpAddr),
    /// Change the block or protect lists.
    List(ListChange),
    /// `opp2p_disconnectPeer`: close, forget the peer's addresses, and unblock it (op-node).
    Disconnect(PeerId),
}

impl OperatorChange {
    /// Whether open connections may now be refused by the gate and must be closed.
    pub(super) fn may_refuse(&self) -> bool {
        match self {
            Self::BanPeer { .. } | Self::BanIp { .. } => true,
            Self::List(change) => change.blocks(),
            Self::UnbanPeer(_) | Self::UnbanIp(_) | Self::Disconnect(_) => false,
        }
    }
}
