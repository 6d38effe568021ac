//! The admin RPC's JSON shapes: op-node's `PeerInfo`, `PeerDump` and `PeerStats` exactly as Go's
//! `encoding/json` writes them (spec §9: integers for connectedness and direction, nanoseconds
//! for latency, Go's `net.IPNet` for subnets), so existing op-node tooling reads them unchanged,
//! plus the fields operators asked for (`agentVersion`, `score`, `disconnectReason`,
//! `downscoreReasons`) and our temporary-ban lists.

use std::collections::BTreeMap;

use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

use crate::p2p::peers::book::Direction;
use crate::p2p::peers::scorebook::PeerScores;
use crate::p2p::peers::subnet::Subnet;
use crate::p2p::views::{PeerView, SelfView};
use crate::p2p::with_peer_id;

/// go-libp2p `network.Connectedness`: `NotConnected`.
pub const NOT_CONNECTED: u8 = 0;
/// go-libp2p `network.Connectedness`: `Connected`.
pub const CONNECTED: u8 = 1;

/// op-node `PeerInfo`, extended.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    /// Base58 peer id.
    #[serde(rename = "peerID")]
    pub peer_id: String,
    /// enode id: keccak256 of the uncompressed secp256k1 public key, 64 hex digits, no `0x`
    /// ("" for a peer whose key is not secp256k1).
    #[serde(rename = "nodeID")]
    pub node_id: String,
    /// Identify agent version.
    #[serde(rename = "userAgent")]
    pub user_agent: String,
    /// Identify protocol version.
    #[serde(rename = "protocolVersion")]
    pub protocol_version: String,
    /// Discovery record ("" when the peer was not found by discovery).
    #[serde(rename = "ENR")]
    pub enr: String,
    /// Known addresses, each ending in `/p2p/<id>`.
    pub addresses: Vec<String>,
    /// Identify protocols (`null` when unknown, as Go writes a nil slice).
    pub protocols: Option<Vec<String>>,
    /// 0 not connected, 1 connected.
    pub connectedness: u8,
    /// 0 unknown, 1 inbound, 2 outbound.
    pub direction: u8,
    /// Protected from trimming.
    pub protected: bool,
    /// OP Stack chain id from discovery (0: unknown).
    #[serde(rename = "chainID")]
    pub chain_id: u64,
    /// Last ping round trip in nanoseconds (0: unknown).
    pub latency: i64,
    /// Subscribed to any block topic.
    #[serde(rename = "gossipBlocks")]
    pub gossip_blocks: bool,
    /// op-node's score record.
    pub scores: PeerScores,
    /// Extension: identify agent version (same as `userAgent`).
    #[serde(rename = "agentVersion")]
    pub agent_version: String,
    /// Extension: the gossipsub total (what bans are decided on).
    pub score: f64,
    /// Extension: why the peer is disconnected or disconnecting; absent while connected.
    #[serde(rename = "disconnectReason", skip_serializing_if = "Option::is_none")]
    pub disconnect_reason: Option<&'static str>,
    /// Extension: what currently pulls the score down, worst first; empty when nothing.
    #[serde(rename = "downscoreReasons")]
    pub downscore_reasons: Vec<&'static str>,
}

impl PeerInfo {
    /// A peer's info.
    pub fn of_peer(view: &PeerView) -> Self {
        let r = &view.record;
        Self {
            peer_id: view.peer.to_string(),
            node_id: node_id(&view.peer),
            user_agent: r.agent_version.clone(),
            protocol_version: r.protocol_version.clone(),
            enr: r.enr.clone().unwrap_or_default(),
            addresses: addresses(&r.addresses, view.peer),
            protocols: (!r.protocols.is_empty()).then(|| r.protocols.clone()),
            connectedness: if r.is_connected() {
                CONNECTED
            } else {
                NOT_CONNECTED
            },
            direction: match r.direction {
                None => 0,
                Some(Direction::Inbound) => 1,
                Some(Direction::Outbound) => 2,
            },
            protected: view.protected,
            chain_id: r.chain_id,
            latency: r
                .latency
                .map_or(0, |l| i64::try_from(l.as_nanos()).unwrap_or(i64::MAX)),
            gossip_blocks: view.block_topics.iter().any(|t| *t),
            scores: PeerScores::from(&view.score),
            agent_version: r.agent_version.clone(),
            score: view.score.total,
            disconnect_reason: view.disconnect_reason.map(|d| d.as_str()),
            downscore_reasons: view
                .score
                .downscore_reasons()
                .into_iter()
                .map(|d| d.as_str())
                .collect(),
        }
    }

    /// This node's info (op-node: gossipBlocks true, latency 0).
    pub fn of_self(view: &SelfView) -> Self {
        Self {
            peer_id: view.peer.to_string(),
            node_id: node_id(&view.peer),
            user_agent: view.agent_version.clone(),
            protocol_version: view.protocol_version.clone(),
            enr: String::new(),
            addresses: addresses(&view.addresses, view.peer),
            protocols: Some(view.protocols.clone()),
            connectedness: NOT_CONNECTED,
            direction: 0,
            protected: false,
            chain_id: 0,
            latency: 0,
            gossip_blocks: true,
            scores: PeerScores::default(),
            agent_version: view.agent_version.clone(),
            score: 0.0,
            disconnect_reason: None,
            downscore_reasons: Vec::new(),
        }
    }
}

/// A temporary ban (extension).
#[derive(Debug, Clone, Serialize)]
pub struct TempBan {
    /// The peer id or IP.
    pub id: String,
    /// Expiry, unix seconds.
    pub until: u64,
}

/// op-node `PeerDump`, extended with the temporary bans.
#[derive(Debug, Clone, Serialize)]
pub struct PeerDump {
    /// Connected peers.
    #[serde(rename = "totalConnected")]
    pub total_connected: usize,
    /// Peers by id.
    pub peers: BTreeMap<String, PeerInfo>,
    /// Blocked peers (op-node's gater list).
    #[serde(rename = "bannedPeers")]
    pub banned_peers: Vec<String>,
    /// Blocked IPs.
    #[serde(rename = "bannedIPS")]
    pub banned_ips: Vec<String>,
    /// Blocked subnets.
    #[serde(rename = "bannedSubnets")]
    pub banned_subnets: Vec<Subnet>,
    /// Extension: peers banned for a while (by the monitor or the operator).
    #[serde(rename = "tempBannedPeers")]
    pub temp_banned_peers: Vec<TempBan>,
    /// Extension: IPs banned for a while.
    #[serde(rename = "tempBannedIPs")]
    pub temp_banned_ips: Vec<TempBan>,
}

/// op-node `PeerStats`.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStats {
    /// Connected peers.
    pub connected: usize,
    /// Discovery table size (0 with discovery off).
    pub table: usize,
    /// Connected peers on the V1 blocks topic.
    pub blocks_topic: usize,
    /// … V2.
    pub blocks_topic_v2: usize,
    /// … V3.
    pub blocks_topic_v3: usize,
    /// … V4.
    pub blocks_topic_v4: usize,
    /// Blocked peers (op-node counts its gater's list).
    pub banned: usize,
    /// Peers in the peer book.
    pub known: usize,
}

fn addresses(addrs: &[Multiaddr], peer: PeerId) -> Vec<String> {
    addrs
        .iter()
        .map(|a| with_peer_id(a, peer).to_string())
        .collect()
}

/// The enode id of a secp256k1 peer id ("" for other key types).
pub fn node_id(peer: &PeerId) -> String {
    // Secp256k1 keys are short enough to be inlined in the peer id (identity multihash).
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return String::new();
    }
    libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest())
        .ok()
        .and_then(|k| k.try_into_secp256k1().ok())
        .map(|k| {
            let uncompressed = k.to_bytes_uncompressed();
            // Drop the 0x04 prefix: enode ids hash X ‖ Y.
            let hash = alloy_primitives::keccak256(uncompressed.get(1..).unwrap_or_default());
            alloy_primitives::hex::encode(hash)
        })
        .unwrap_or_default()
}
