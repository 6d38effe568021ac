//! Command-line interface: op-node-style flags parsed by clap into each subcommand's inputs.
//!
//! `main.rs` only parses and dispatches here; every subcommand returns a [`CliError`] whose
//! [`CliError::exit_code`] is the process status (2 for usage errors, as clap itself uses).

pub mod check_message;

use alloy_primitives::Address;
use clap::{Parser, Subcommand};

use crate::chain::ChainSpec;
use crate::chain_config::{ChainConfigError, load_chain, load_rollup_json, with_signer_override};

/// op-gossip: block-gossip node for OP Stack rollups.
#[derive(Debug, Parser)]
#[command(name = "op-gossip", version, about, long_about = None)]
pub struct Cli {
    /// Unsafe block signer (0x address); sets or overrides the chain's signer in every
    /// subcommand. rollup.json has no signer, so use this with --rollup.config.
    #[arg(
        long = "p2p.unsafe.block.signer",
        global = true,
        value_name = "0xADDR",
        env = "OP_GOSSIP_P2P_UNSAFE_BLOCK_SIGNER"
    )]
    pub unsafe_block_signer: Option<Address>,

    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a captured gossip message and print the verdict and the decoded block as JSON.
    CheckMessage(check_message::CheckMessageArgs),
}

/// Chain selection shared by the subcommands: `--chain <name|path>` or `--rollup.config`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChainArgs {
    /// Chain name (op-mainnet, base-mainnet, op-sepolia, base-sepolia, devnet) or a path to a
    /// chain file (.toml) or op-node rollup.json (.json).
    #[arg(
        long,
        value_name = "NAME|PATH",
        required_unless_present = "rollup_config"
    )]
    pub chain: Option<String>,

    /// op-node rollup.json, loaded as is (takes precedence over --chain).
    #[arg(long = "rollup.config", value_name = "PATH")]
    pub rollup_config: Option<std::path::PathBuf>,
}

impl ChainArgs {
    /// Loads the chain and applies the global signer override.
    pub fn load(&self, signer_override: Option<Address>) -> Result<ChainSpec, ChainConfigError> {
        let spec = match (&self.rollup_config, &self.chain) {
            (Some(path), _) => load_rollup_json(path)?,
            (None, Some(name)) => load_chain(name)?,
            (None, None) => return Err(ChainConfigError::Unknown(String::new())),
        };
        Ok(with_signer_override(spec, signer_override))
    }
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags, unreadable input, or a bad chain config: the user must fix the invocation.
    #[error("{0}")]
    Usage(String),
}

impl CliError {
    /// Process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
        }
    }
}

impl From<ChainConfigError> for CliError {
    fn from(e: ChainConfigError) -> Self {
        Self::Usage(e.to_string())
    }
}

/// Parses an op-node style duration: `60s`, `1m`, `1h`, `500ms`, or a bare number of seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?} (e.g. 60s, 1m, 1h)"))?;
    let secs = match unit {
        "" | "s" => Some(value),
        "ms" => Some(value / 1000),
        "m" => value.checked_mul(60),
        "h" => value.checked_mul(3600),
        _ => None,
    };
    secs.ok_or_else(|| format!("invalid duration {text:?} (e.g. 60s, 1m, 1h)"))
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::CheckMessage(args) => check_message::run(&args, cli.unsafe_block_signer),
    }
}
