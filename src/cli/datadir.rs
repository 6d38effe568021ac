//! Where `op-gossip node` keeps its data when `--datadir` is not given: one directory per chain
//! under the user's data directory, never the working directory (as reth and lighthouse do).
//!
//! `$XDG_DATA_HOME/op-gossip/<chain>`, or `$HOME/.local/share/op-gossip/<chain>` when
//! `XDG_DATA_HOME` is unset or not absolute (the XDG base-directory spec says to ignore a relative
//! one). `<chain>` is the embedded chain's name (`op-mainnet`, `devnet`, …); a chain file or
//! rollup.json given by path gets `chain-<chain id>`, since its file name says nothing reliable.

use std::path::PathBuf;

use super::{ChainArgs, CliError};
use crate::chain::ChainSpec;
use crate::chain_config::EMBEDDED_CHAINS;

/// The directory name of `chain` under `op-gossip/`.
pub fn chain_dir_name(args: &ChainArgs, chain: &ChainSpec) -> String {
    let embedded = args.rollup_config.is_none()
        && args
            .chain
            .as_deref()
            .is_some_and(|name| EMBEDDED_CHAINS.iter().any(|(n, _)| *n == name));
    if embedded {
        chain.name.clone()
    } else {
        format!("chain-{}", chain.chain_id)
    }
}

/// The default data directory of `chain` (see the module doc).
pub fn default_data_dir(args: &ChainArgs, chain: &ChainSpec) -> Result<PathBuf, CliError> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let base = absolute("XDG_DATA_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local").join("share")))
        .ok_or_else(|| {
            CliError::Usage(
                "no data directory: neither XDG_DATA_HOME nor HOME is set to an absolute path; \
                 give --datadir"
                    .into(),
            )
        })?;
    Ok(base.join("op-gossip").join(chain_dir_name(args, chain)))
}
