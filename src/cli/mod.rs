//! Command-line interface: op-node-style flags parsed by clap into each subcommand's inputs.
//!
//! `main.rs` only parses and dispatches here; every subcommand returns a [`CliError`] whose
//! [`CliError::exit_code`] is the process status (2 for usage errors, as clap itself uses).

pub mod bootnode;
pub mod check_message;
pub mod control;
pub mod control_event;
pub mod datadir;
pub mod devnet;
pub mod discovery;
pub mod flags;
pub mod node;

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
    /// Run a node: follow a chain's block gossip (and sequence with --p2p.sequencer.key).
    Node(Box<node::NodeArgs>),
    /// Run a local devnet: one sequencer and N−1 followers on 127.0.0.1, with a report.
    Devnet(devnet::DevnetArgs),
    /// Run a discv5 bootnode only (no gossip), as op-node's `op-bootnode`: for private chains
    /// and devnets. Its ENR is logged and printed on stdout.
    Bootnode(bootnode::BootnodeArgs),
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
    /// The command started but failed (network, store, or a devnet that missed blocks).
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// Process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) => 2,
            Self::Runtime(_) => 1,
        }
    }
}

impl From<ChainConfigError> for CliError {
    fn from(e: ChainConfigError) -> Self {
        Self::Usage(e.to_string())
    }
}

/// Splits `"100KiB"` into the trimmed text, its leading digits and the rest.
fn split_number_unit(text: &str) -> (&str, &str, &str) {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    (text, number, unit)
}

/// Parses an op-node style duration: `60s`, `1m`, `1h`, `500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let (text, number, unit) = split_number_unit(text);
    let bad = || format!("invalid duration {text:?} (e.g. 500ms, 60s, 1m, 1h)");
    let value: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => Some(value),
        "" | "s" => value.checked_mul(1000),
        "m" => value.checked_mul(60_000),
        "h" => value.checked_mul(3_600_000),
        _ => None,
    };
    millis.map(std::time::Duration::from_millis).ok_or_else(bad)
}

/// [`parse_duration`] in whole seconds (rounded down).
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    parse_duration(text).map(|d| d.as_secs())
}

/// Parses a size: `100KiB`, `1MiB`, `512B`, `1000` (bytes), `10KB` (= 10,000 bytes).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let (text, number, unit) = split_number_unit(text);
    let bad = || format!("invalid size {text:?} (e.g. 512B, 100KiB, 1MiB)");
    let value: usize = number.parse().map_err(|_| bad())?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        _ => return Err(bad()),
    };
    value.checked_mul(factor).ok_or_else(bad)
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`); colours only on a terminal, so a
/// log file or journal gets plain text. Lines a peer can cause are capped per call site
/// ([`crate::log_limit::callsite`]); the caller runs its summary task.
pub fn init_tracing() {
    use std::io::IsTerminal;

    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(crate::log_limit::callsite::CallsiteLimit::global())
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .try_init();
}

/// How long the runtime waits for blocking tasks at exit. The stdin reader of the control channel
/// is a blocking read that only returns on input, so dropping the runtime could hang forever.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `fut` on a fresh multi-threaded runtime (`worker_threads` async workers, or one per core
/// when `None`), then shuts the runtime down with a bound.
fn block_on<F: std::future::Future<Output = Result<(), CliError>>>(
    worker_threads: Option<usize>,
    fut: F,
) -> Result<(), CliError> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(fut);
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::CheckMessage(args) => check_message::run(&args, cli.unsafe_block_signer),
        Command::Node(args) => {
            init_tracing();
            block_on(
                args.worker_threads,
                node::run(&args, cli.unsafe_block_signer),
            )
        }
        Command::Devnet(args) => {
            init_tracing();
            block_on(None, devnet::run(&args))
        }
        Command::Bootnode(args) => {
            init_tracing();
            block_on(None, bootnode::run(&args, cli.unsafe_block_signer))
        }
    }
}
