//! What the node knows about its peers beyond the swarm: the peer book (identify, latency,
//! disconnect reasons), application scores (req/resp outcomes and REJECTed gossip) and their
//! breakdown, who forwarded how many blocks per height (so a height-limit REJECT is blamed only
//! on an equivocator), the scorebook (snapshots, persisted), temporary bans (peers, IPs) and the
//! operator's lists (blocked peers, IPs, subnets; protected peers). The event loop, the
//! connection gate and the admin RPC read and write these.

pub mod app_score;
pub mod bans;
pub mod book;
pub mod breakdown;
pub mod equivocation;
pub mod lists;
pub mod score_labels;
pub mod scorebook;
pub mod subnet;
