//! Peer-management flags (op-node's names): gossipsub scoring, the ban rule and the connection
//! manager's water marks, checked into [`ScoringLevel`], [`BanConfig`] and [`ConnectionLimits`].

use crate::cli::{CliError, parse_duration};
use crate::p2p::scoring::ScoringLevel;
use crate::p2p::{BanConfig, ConnectionLimits};

/// Peer-management flags.
#[derive(Debug, Clone, clap::Args)]
pub struct PeersArgs {
    /// Gossipsub peer scoring: light (op-node's parameters) or none.
    #[arg(
        long = "p2p.scoring",
        value_name = "LEVEL",
        default_value = "light",
        env = "OP_NODE_P2P_SCORING"
    )]
    pub scoring: crate::p2p::scoring::ScoringLevel,

    /// Ban peers whose score falls below --p2p.ban.threshold (static peers are exempt).
    #[arg(long = "p2p.ban.peers", default_value_t = true, action = clap::ArgAction::Set, env = "OP_NODE_P2P_PEER_BANNING")]
    pub ban_peers: bool,

    /// Score below which a peer is banned.
    #[arg(long = "p2p.ban.threshold", default_value_t = crate::p2p::DEFAULT_BAN_THRESHOLD, allow_negative_numbers = true, env = "OP_NODE_P2P_PEER_BANNING_THRESHOLD")]
    pub ban_threshold: f64,

    /// How long a ban lasts (e.g. 1h, 30m).
    #[arg(long = "p2p.ban.duration", default_value = "1h", value_parser = parse_duration, env = "OP_NODE_P2P_PEER_BANNING_DURATION")]
    pub ban_duration: std::time::Duration,

    /// Low water mark: the connection manager trims down to this many peers.
    #[arg(long = "p2p.peers.lo", default_value_t = crate::p2p::DEFAULT_PEERS_LO, env = "OP_NODE_P2P_PEERS_LO")]
    pub peers_lo: usize,

    /// High water mark: above this many peers, the lowest-scored unprotected ones are closed.
    #[arg(long = "p2p.peers.hi", default_value_t = crate::p2p::DEFAULT_PEERS_HI, env = "OP_NODE_P2P_PEERS_HI")]
    pub peers_hi: usize,

    /// A new connection is not trimmed for this long (e.g. 30s).
    #[arg(long = "p2p.peers.grace", default_value = "30s", value_parser = parse_duration, env = "OP_NODE_P2P_PEERS_GRACE")]
    pub peers_grace: std::time::Duration,
}

impl TryFrom<&PeersArgs> for (ScoringLevel, BanConfig, ConnectionLimits) {
    type Error = CliError;

    fn try_from(args: &PeersArgs) -> Result<Self, CliError> {
        if args.peers_lo > args.peers_hi {
            return Err(CliError::Usage(format!(
                "--p2p.peers.lo ({}) must not exceed --p2p.peers.hi ({})",
                args.peers_lo, args.peers_hi
            )));
        }
        Ok((
            args.scoring,
            BanConfig {
                enabled: args.ban_peers,
                threshold: args.ban_threshold,
                duration: args.ban_duration,
            },
            ConnectionLimits {
                lo: args.peers_lo,
                hi: args.peers_hi,
                grace: args.peers_grace,
            },
        ))
    }
}
