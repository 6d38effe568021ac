//! Snapshots of the network's peer state, answered by the event loop to the admin RPC (through
//! the [`super::NetworkHandle`]): plain data, taken in one go so a reader never sees a
//! half-updated peer.

use libp2p::{Multiaddr, PeerId};

use super::peers::book::{DisconnectReason, PeerRecord};
use super::peers::breakdown::ScoreBreakdown;

/// One peer as the operator sees it.
#[derive(Debug, Clone)]
pub struct PeerView {
    /// The peer.
    pub peer: PeerId,
    /// What the peer book knows.
    pub record: PeerRecord,
    /// Protected from trimming (static peer or `opp2p_protectPeer`).
    pub protected: bool,
    /// Subscribed to the block topic of each version (V1..V4).
    pub block_topics: [bool; 4],
    /// Its score, taken apart (the last scorebook record for a disconnected peer).
    pub score: ScoreBreakdown,
    /// The reason shown, if disconnected or disconnecting.
    pub disconnect_reason: Option<DisconnectReason>,
}

/// This node as the operator sees it.
#[derive(Debug, Clone)]
pub struct SelfView {
    /// Our peer id.
    pub peer: PeerId,
    /// Our listen addresses.
    pub addresses: Vec<Multiaddr>,
    /// Our identify agent version.
    pub agent_version: String,
    /// Our identify protocol version.
    pub protocol_version: String,
    /// The protocols we serve.
    pub protocols: Vec<String>,
}

/// Counts for `opp2p_peerStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Connected peers.
    pub connected: usize,
    /// Connected peers subscribed to each block topic (V1..V4).
    pub block_topics: [usize; 4],
    /// Peers in the peer book.
    pub known: usize,
}
