//! What the node knows about its peers beyond the swarm: their application scores (fed by
//! req/resp outcomes and REJECTed gossip), who forwarded how many blocks per height (so a
//! height-limit REJECT is blamed only on an equivocator), and the ban book.

pub mod app_score;
pub mod bans;
pub mod equivocation;
