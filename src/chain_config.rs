//! Loading a [`ChainSpec`]: the chain files under `chains/` (embedded in the binary, so
//! `--chain op-mainnet` works from any directory), a chain file at a path, or op-node's
//! `rollup.json` as is.
//!
//! Runs once at start-up, before anything touches the network. Every malformed or missing field
//! is reported with the file it came from. Reference: `shared/spec/op-p2p.md` §11.

use std::path::Path;

use alloy_primitives::Address;
use serde::Deserialize;

use crate::chain::{BlockId, ChainSpec, ForkTimes, Genesis};

/// The chain files shipped with the node, by `--chain` name.
pub const EMBEDDED_CHAINS: [(&str, &str); 5] = [
    ("op-mainnet", include_str!("../chains/op-mainnet.toml")),
    ("base-mainnet", include_str!("../chains/base-mainnet.toml")),
    ("op-sepolia", include_str!("../chains/op-sepolia.toml")),
    ("base-sepolia", include_str!("../chains/base-sepolia.toml")),
    ("devnet", include_str!("../chains/devnet.toml")),
];

/// Why a chain could not be loaded.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum ChainConfigError {
    /// Neither a known name nor an existing file.
    #[error("unknown chain {0:?}: expected one of {names} or a path to a chain file (.toml) or rollup.json", names = known_names())]
    Unknown(String),
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The chain file is not valid TOML or misses / mistypes a field.
    // toml's message ends with a newline (it quotes the line at fault): trimmed here.
    #[error("chain file {path}: {}", source.to_string().trim_end())]
    ChainFile {
        path: String,
        source: toml::de::Error,
    },
    /// The rollup.json is not valid JSON or misses / mistypes a field.
    #[error("rollup config {path}: {source}")]
    RollupJson {
        path: String,
        source: serde_json::Error,
    },
    /// The values parse but make no sense.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: InvalidChain },
}

/// Values of a chain that parse but make no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidChain {
    /// Chain id 0.
    #[error("chain id must not be 0")]
    ZeroChainId,
    /// Block time 0.
    #[error("block_time must be at least 1 second")]
    ZeroBlockTime,
    /// Forks out of order.
    #[error(transparent)]
    ForkOrder(#[from] crate::chain::ForkOrderError),
}

fn known_names() -> String {
    EMBEDDED_CHAINS.map(|(n, _)| n).join(", ")
}

/// Resolves `--chain <name|path>`: an embedded name first, then a file (`.json` is read as
/// op-node's rollup.json, anything else as a chain file).
pub fn load_chain(name_or_path: &str) -> Result<ChainSpec, ChainConfigError> {
    if let Some((_, text)) = EMBEDDED_CHAINS.iter().find(|(n, _)| *n == name_or_path) {
        return parse_chain_file(text, &format!("chains/{name_or_path}.toml"));
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        return Err(ChainConfigError::Unknown(name_or_path.to_owned()));
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        load_rollup_json(path)
    } else {
        let text = read(path)?;
        parse_chain_file(&text, &path.display().to_string())
    }
}

/// Loads op-node's rollup.json (`--rollup.config`). It has no signer; the caller sets one from
/// `--p2p.unsafe.block.signer` (or later from L1).
pub fn load_rollup_json(path: &Path) -> Result<ChainSpec, ChainConfigError> {
    let text = read(path)?;
    let name = path
        .file_stem()
        .map_or_else(|| "rollup".to_owned(), |s| s.to_string_lossy().into_owned());
    parse_rollup_json(&text, &name, &path.display().to_string())
}

fn read(path: &Path) -> Result<String, ChainConfigError> {
    std::fs::read_to_string(path).map_err(|source| ChainConfigError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// The schema of a `chains/*.toml` file. Unknown keys are errors, so a typo in a fork name is
/// caught instead of silently leaving the fork unscheduled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainFile {
    name: String,
    chain_id: u64,
    block_time: u64,
    #[serde(default)]
    unsafe_block_signers: Vec<Address>,
    l1_system_config_address: Option<Address>,
    /// Discovery bootnodes (spec §8); a custom chain file lists its own or none.
    #[serde(default)]
    bootnodes: Vec<String>,
    genesis: Genesis,
    forks: ForkTimes,
}

/// Parses a chain file's text; `origin` names it in errors.
pub fn parse_chain_file(text: &str, origin: &str) -> Result<ChainSpec, ChainConfigError> {
    let file: ChainFile = toml::from_str(text).map_err(|source| ChainConfigError::ChainFile {
        path: origin.to_owned(),
        source,
    })?;
    validated(
        ChainSpec {
            name: file.name,
            chain_id: file.chain_id,
            block_time: file.block_time,
            genesis: file.genesis,
            forks: file.forks,
            unsafe_block_signers: file.unsafe_block_signers,
            l1_system_config_address: file.l1_system_config_address,
            bootnodes: file.bootnodes,
        },
        origin,
    )
}

/// The fields of op-node's rollup.json that the gossip layer uses (others are ignored).
#[derive(Debug, Deserialize)]
struct RollupJson {
    genesis: RollupGenesis,
    block_time: u64,
    l2_chain_id: u64,
    regolith_time: Option<u64>,
    canyon_time: Option<u64>,
    delta_time: Option<u64>,
    ecotone_time: Option<u64>,
    fjord_time: Option<u64>,
    granite_time: Option<u64>,
    holocene_time: Option<u64>,
    isthmus_time: Option<u64>,
    jovian_time: Option<u64>,
    karst_time: Option<u64>,
    interop_time: Option<u64>,
    l1_system_config_address: Option<Address>,
}

#[derive(Debug, Deserialize)]
struct RollupGenesis {
    l1: BlockId,
    l2: BlockId,
    l2_time: u64,
}

/// Parses rollup.json text; `name` becomes the chain name, `origin` names it in errors.
pub fn parse_rollup_json(
    text: &str,
    name: &str,
    origin: &str,
) -> Result<ChainSpec, ChainConfigError> {
    let r: RollupJson =
        serde_json::from_str(text).map_err(|source| ChainConfigError::RollupJson {
            path: origin.to_owned(),
            source,
        })?;
    validated(
        ChainSpec {
            name: name.to_owned(),
            chain_id: r.l2_chain_id,
            block_time: r.block_time,
            genesis: Genesis {
                l1: r.genesis.l1,
                l2: r.genesis.l2,
                l2_time: r.genesis.l2_time,
            },
            forks: ForkTimes {
                regolith: r.regolith_time,
                canyon: r.canyon_time,
                delta: r.delta_time,
                ecotone: r.ecotone_time,
                fjord: r.fjord_time,
                granite: r.granite_time,
                holocene: r.holocene_time,
                isthmus: r.isthmus_time,
                jovian: r.jovian_time,
                karst: r.karst_time,
                interop: r.interop_time,
            },
            unsafe_block_signers: Vec::new(),
            l1_system_config_address: r.l1_system_config_address.filter(|a| !a.is_zero()),
            // A rollup.json names no bootnodes: its operator gives --p2p.bootnodes.
            bootnodes: Vec::new(),
        },
        origin,
    )
}

fn validated(spec: ChainSpec, origin: &str) -> Result<ChainSpec, ChainConfigError> {
    let invalid = |reason: InvalidChain| ChainConfigError::Invalid {
        path: origin.to_owned(),
        reason,
    };
    if spec.chain_id == 0 {
        return Err(invalid(InvalidChain::ZeroChainId));
    }
    if spec.block_time == 0 {
        return Err(invalid(InvalidChain::ZeroBlockTime));
    }
    spec.forks
        .check_order()
        .map_err(|e| invalid(InvalidChain::ForkOrder(e)))?;
    Ok(spec)
}

/// Applies `--p2p.unsafe.block.signer`: when given, it replaces the chain's signer(s).
pub fn with_signer_override(mut spec: ChainSpec, signer: Option<Address>) -> ChainSpec {
    if let Some(signer) = signer {
        spec.unsafe_block_signers = vec![signer];
    }
    spec
}
