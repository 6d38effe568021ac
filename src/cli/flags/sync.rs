//! Gap-filling flags: serving and fetching payload_by_number, the static-only mode, the fill
//! limit and the rate limits, checked into the server's [`ServerConfig`] and the sync client's
//! [`SyncConfig`] (which also need the chain's block time and the store's retention).

use crate::p2p::reqresp::limits::Rate;
use crate::p2p::reqresp::server::ServerConfig;
use crate::sync::SyncConfig;

/// Gap-filling flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// Serve payload_by_number requests from the store.
    #[arg(long = "p2p.sync.req-resp", default_value_t = true, action = clap::ArgAction::Set, env = "OP_NODE_P2P_SYNC_REQ_RESP")]
    pub serve_req_resp: bool,

    /// Fill gaps (restart, late join, lost gossip) by fetching blocks from peers with
    /// payload_by_number. op-node's default is false; ours is true.
    #[arg(long = "syncmode.req-resp", default_value_t = true, action = clap::ArgAction::Set, env = "OP_NODE_SYNCMODE_REQ_RESP")]
    pub sync_req_resp: bool,

    /// Send payload_by_number requests only to static peers.
    #[arg(long = "p2p.sync.onlyreqtostatic", default_value_t = false, action = clap::ArgAction::Set, env = "OP_NODE_P2P_SYNC_ONLYREQTOSTATIC")]
    pub only_req_to_static: bool,

    /// Longest gap filled with payload_by_number; beyond it the head jumps to the newer block.
    #[arg(long = "syncmode.req-resp.max-gap", value_name = "BLOCKS", default_value_t = crate::sync::DEFAULT_MAX_GAP_BLOCKS)]
    pub sync_max_gap: u64,

    /// payload_by_number requests per second, all peers together (server and client).
    #[arg(long = "p2p.sync.global-rate", value_name = "PER_SEC", default_value_t = crate::p2p::reqresp::server::GLOBAL_RATE.per_second, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_global_rate: u32,

    /// Burst of the global payload_by_number limit.
    #[arg(long = "p2p.sync.global-burst", value_name = "N", default_value_t = crate::p2p::reqresp::server::GLOBAL_RATE.burst, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_global_burst: u32,

    /// payload_by_number requests per second per peer (server and client).
    #[arg(long = "p2p.sync.peer-rate", value_name = "PER_SEC", default_value_t = crate::p2p::reqresp::server::PEER_RATE.per_second, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_peer_rate: u32,

    /// Burst of the per-peer payload_by_number limit.
    #[arg(long = "p2p.sync.peer-burst", value_name = "N", default_value_t = crate::p2p::reqresp::server::PEER_RATE.burst, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_peer_burst: u32,
}

impl SyncArgs {
    /// The server's and the sync client's configs (`None`: off) for a chain of `block_time`
    /// seconds and a store keeping `retention` blocks (the fill limit never exceeds it).
    pub fn configs(
        &self,
        block_time: u64,
        retention: u64,
    ) -> (Option<ServerConfig>, Option<SyncConfig>) {
        let global = Rate {
            per_second: self.sync_global_rate,
            burst: self.sync_global_burst,
        };
        let per_peer = Rate {
            per_second: self.sync_peer_rate,
            burst: self.sync_peer_burst,
        };
        (
            self.serve_req_resp.then(|| ServerConfig {
                global,
                per_peer,
                ..ServerConfig::default()
            }),
            self.sync_req_resp.then(|| SyncConfig {
                global,
                per_peer,
                only_static: self.only_req_to_static,
                max_gap: self.sync_max_gap.clamp(1, retention.max(1)),
                ..SyncConfig::for_block_time(block_time)
            }),
        )
    }
}
