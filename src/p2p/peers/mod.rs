//! What the node knows about its peers beyond the swarm: their application scores (fed by
//! req/resp outcomes). Bans, gating and the gossipsub score push build on this (issue 5).

pub mod app_score;
pub mod bans;
pub mod breakdown;
