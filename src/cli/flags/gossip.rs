//! Gossip flags: the mesh degrees (op-node's hidden `--p2p.gossip.mesh.*`), flood publishing
//! and the validator's past window (`--p2p.gossip.timestamp.threshold`), checked into the
//! network's [`GossipConfig`] and the validator's [`ValidatorConfig`].

use clap::builder::TypedValueParser;

use crate::cli::{CliError, parse_duration_secs};
use crate::p2p::GossipConfig;
use crate::p2p::gossip::{
    DEFAULT_MESH_D, DEFAULT_MESH_D_HI, DEFAULT_MESH_D_LAZY, DEFAULT_MESH_D_LO,
};
use crate::validate::ValidatorConfig;

/// Gossip flags.
#[derive(Debug, Clone, clap::Args)]
pub struct GossipArgs {
    /// How old a gossip block may be.
    #[arg(long = "p2p.gossip.timestamp.threshold", default_value = "60s", value_parser = parse_duration_secs)]
    pub timestamp_threshold_secs: u64,

    /// Gossip mesh target degree.
    #[arg(long = "p2p.gossip.mesh.d", default_value_t = DEFAULT_MESH_D, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from), hide = true)]
    pub mesh_d: usize,

    /// Gossip mesh low watermark.
    #[arg(long = "p2p.gossip.mesh.lo", default_value_t = DEFAULT_MESH_D_LO, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from), hide = true)]
    pub mesh_lo: usize,

    /// Gossip mesh high watermark.
    #[arg(long = "p2p.gossip.mesh.dhi", default_value_t = DEFAULT_MESH_D_HI, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from), hide = true)]
    pub mesh_dhi: usize,

    /// Gossip lazy degree.
    #[arg(long = "p2p.gossip.mesh.dlazy", default_value_t = DEFAULT_MESH_D_LAZY, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from), hide = true)]
    pub mesh_dlazy: usize,

    /// Publish to all topic peers, not only the mesh.
    #[arg(long = "p2p.gossip.mesh.floodpublish", hide = true)]
    pub flood_publish: bool,
}

impl TryFrom<&GossipArgs> for (GossipConfig, ValidatorConfig) {
    type Error = CliError;

    fn try_from(args: &GossipArgs) -> Result<Self, CliError> {
        if args.mesh_lo > args.mesh_d || args.mesh_d > args.mesh_dhi {
            return Err(CliError::Usage(
                "gossip mesh parameters need lo ≤ d ≤ dhi".into(),
            ));
        }
        Ok((
            GossipConfig {
                mesh_d: args.mesh_d,
                mesh_d_lo: args.mesh_lo,
                mesh_d_hi: args.mesh_dhi,
                mesh_d_lazy: args.mesh_dlazy,
                flood_publish: args.flood_publish,
                ..GossipConfig::default()
            },
            ValidatorConfig {
                past_window_secs: args.timestamp_threshold_secs,
                ..ValidatorConfig::default()
            },
        ))
    }
}
