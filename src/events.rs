//! What observers of a running node see: one broadcast of [`NodeEvent`]s, fed by the network
//! forwarder (`node::forward`), the store writer ([`crate::store::writer`]) and the producer. A
//! lagging observer loses events, never the node.

use std::time::SystemTime;

use libp2p::{Multiaddr, PeerId};

use crate::store::BlockRef;
use crate::store::writer::BlockSource;
use crate::validate::Verdict;

/// What observers of a node see.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A listen address is bound.
    Listening(Multiaddr),
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer disconnected.
    PeerDisconnected(PeerId),
    /// A peer was banned for its score.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// Its score when banned.
        score: f64,
        /// Ban expiry (unix seconds).
        until: u64,
    },
    /// A gossip message was judged.
    Validated {
        /// Forwarding peer.
        from: PeerId,
        /// Verdict.
        verdict: Verdict,
        /// Reason code (`None` on ACCEPT).
        reason: Option<&'static str>,
    },
    /// A block was accepted from gossip (before it is stored).
    Accepted {
        /// The block.
        id: BlockRef,
        /// Forwarding peer.
        from: PeerId,
        /// When validation finished.
        at: SystemTime,
    },
    /// This node published a block.
    Published {
        /// The block.
        id: BlockRef,
        /// When it was handed to gossipsub.
        at: SystemTime,
    },
    /// A block is durably stored.
    Stored {
        /// The block.
        id: BlockRef,
        /// Its source.
        source: BlockSource,
    },
    /// The unsafe head moved.
    HeadChanged(BlockRef),
}
