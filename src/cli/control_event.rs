//! The control channel's events: one JSON object per line on `op-gossip node --control stdio`'s
//! stdout, written by [`super::control`] and read by `op-gossip devnet` ([`crate::devnet`]).
//! One serde type for both ends, so a field renamed on one side cannot be silently missed on the
//! other; the wire form (`{"event": "<kind>", …}`) is what the control module's docs describe.

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::engine::driver::EngineCounters;
use crate::p2p::reqresp::server::ServerCounters;
use crate::sync::SyncCounters;

/// One event of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ControlEvent {
    /// The node listens: its dialable address, its head and its admin RPC address.
    Listening {
        /// `/ip4/…/tcp/…/p2p/…`.
        addr: String,
        /// The head's number at start.
        head: Option<u64>,
        /// The admin RPC's address, if served.
        rpc: Option<String>,
    },
    /// The number of connected peers changed.
    Peers {
        /// Connected peers now.
        count: usize,
    },
    /// A block was accepted from gossip.
    Accepted {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// The peer that forwarded it.
        from: String,
        /// When (unix ms).
        at_ms: u64,
    },
    /// This node published a block.
    Published {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// When (unix ms).
        at_ms: u64,
    },
    /// A block fetched by payload_by_number was stored.
    Fetched {
        /// Block number.
        number: u64,
        /// When (unix ms).
        at_ms: u64,
    },
    /// The head moved.
    Head {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// When (unix ms).
        at_ms: u64,
    },
    /// A gossip message was judged other than ACCEPT.
    Judged {
        /// `reject` or `ignore`.
        verdict: String,
        /// The reason code.
        reason: Option<String>,
        /// The peer that forwarded it.
        from: String,
        /// When (unix ms).
        at_ms: u64,
    },
    /// The ban monitor banned a peer.
    Banned {
        /// The peer.
        peer: String,
        /// Its score.
        score: f64,
        /// Ban expiry (unix seconds).
        until: u64,
        /// When (unix ms).
        at_ms: u64,
    },
    /// A `produce` command finished.
    Produced {
        /// Whether every block was published.
        ok: bool,
        /// Why not.
        error: Option<String>,
    },
    /// The answer to `topology`.
    Topology {
        /// Connected peer ids.
        peers: Vec<String>,
        /// Peer ids in our gossipsub mesh.
        mesh: Vec<String>,
    },
    /// With `--l2`: the engine's insertions changed.
    Engine {
        /// Blocks inserted so far.
        inserted: u64,
        /// The engine's head number.
        head: u64,
        /// When (unix ms).
        at_ms: u64,
    },
    /// Events were lost because the channel lagged.
    Lagged {
        /// How many.
        missed: u64,
    },
    /// A command could not be read.
    Error {
        /// Why.
        message: String,
    },
    /// The node stopped (boxed: by far the largest event, and the last).
    Exit(Box<NodeExit>),
}

/// What a node reports when it stops.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeExit {
    /// The head it stopped on.
    pub head: Option<ExitHead>,
    /// Peak resident memory (KiB).
    pub peak_rss_kib: u64,
    /// The sync client's counters.
    pub sync: Option<SyncCounters>,
    /// The payload_by_number server's counters.
    pub server: Option<ServerCounters>,
    /// The engine insertion driver's counters (with `--l2`).
    pub engine: Option<EngineCounters>,
    /// Discovery's counters (without `--p2p.no-discovery`).
    pub discovery: Option<DiscoveryExit>,
}

/// The head a node stopped on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitHead {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

/// Discovery's counters at exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryExit {
    /// Distinct records of our chain found.
    pub discovered: u64,
    /// Records in the table.
    pub table: u64,
}

impl ControlEvent {
    /// The event as one line of JSON (without the newline).
    pub fn line(&self) -> String {
        // Serializing this enum of plain fields cannot fail; an empty object is written if it did.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_keep_their_wire_form_and_read_back() {
        let event = ControlEvent::Accepted {
            number: 7,
            hash: B256::repeat_byte(1),
            from: "peer".into(),
            at_ms: 9,
        };
        let value: serde_json::Value = serde_json::from_str(&event.line()).unwrap();
        assert_eq!(value["event"], "accepted");
        assert_eq!(value["number"], 7);
        assert_eq!(
            serde_json::from_str::<ControlEvent>(&event.line()).unwrap(),
            event
        );
        let exit: ControlEvent = serde_json::from_str(
            r#"{"event":"exit","head":null,"peak_rss_kib":5,"sync":null,"server":null,"engine":null,"discovery":{"discovered":3,"table":4}}"#,
        )
        .unwrap();
        assert!(matches!(
            exit,
            ControlEvent::Exit(e) if e.peak_rss_kib == 5 && e.discovery.is_some_and(|d| d.discovered == 3)
        ));
    }
}
