//! `op-gossip bootnode`: discv5 only, no gossip (op-node ships this as `op-bootnode`). For
//! private chains and devnets: nodes given its ENR find each other through it.
//!
//! Its record carries the chain's `opstack` entry and no TCP port (nothing to dial). The ENR is
//! logged at start and on every change, and printed once on stdout so scripts can read it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alloy_primitives::Address;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::discovery::DiscoveryArgs;
use super::{ChainArgs, CliError};
use crate::discovery::metrics::DiscoveryStats;
use crate::discovery::persist::TableStore;
use crate::p2p::keys::{keypair_from_hex, load_or_create};

/// Flags of `bootnode`.
#[derive(Debug, Clone, clap::Args)]
pub struct BootnodeArgs {
    /// Which chain (its id goes in the ENR's `opstack` entry).
    #[command(flatten)]
    pub chain: ChainArgs,

    /// Data directory: the node key and the discovery file live here unless given (without it,
    /// a fresh key each start and nothing persisted).
    #[arg(long, value_name = "DIR")]
    pub datadir: Option<PathBuf>,

    /// Node key file (hex secp256k1 secret), created on first run.
    #[arg(
        long = "p2p.priv.path",
        value_name = "FILE",
        env = "OP_NODE_P2P_PRIV_PATH"
    )]
    pub priv_path: Option<PathBuf>,

    /// Node key as hex (prefer the environment variable).
    #[arg(long = "p2p.priv.raw", value_name = "HEX", hide = true, env = super::node::PRIV_RAW_ENV)]
    pub priv_raw: Option<String>,

    /// IP to listen on (UDP).
    #[arg(
        long = "p2p.listen.ip",
        default_value = "0.0.0.0",
        env = "OP_NODE_P2P_LISTEN_IP"
    )]
    pub listen_ip: IpAddr,

    /// Discovery flags (`--p2p.no-discovery` makes no sense here and is refused).
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
}

/// Runs the bootnode until SIGINT/SIGTERM.
pub async fn run(args: &BootnodeArgs, signer_override: Option<Address>) -> Result<(), CliError> {
    let mut signals = super::node::ShutdownSignals::install();
    if args.discovery.no_discovery {
        return Err(CliError::Usage(
            "a bootnode is discovery: drop --p2p.no-discovery".into(),
        ));
    }
    let chain = args.chain.load(signer_override)?;
    let keypair = match (&args.priv_raw, &args.priv_path, &args.datadir) {
        (Some(raw), _, _) => keypair_from_hex(raw, "--p2p.priv.raw"),
        (None, Some(path), _) => load_or_create(path),
        (None, None, Some(dir)) => load_or_create(&dir.join("opnode_p2p_priv.txt")),
        (None, None, None) => {
            tracing::warn!("no --datadir or key: a fresh identity (and ENR) on every start");
            Ok(libp2p::identity::Keypair::generate_secp256k1())
        }
    }
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let data_dir = args.datadir.clone().unwrap_or_default();
    let mut config = args
        .discovery
        .to_config(&chain, &data_dir, args.listen_ip)?
        .ok_or_else(|| CliError::Usage("discovery is off".into()))?;
    if args.datadir.is_none() && args.discovery.discovery_path.is_none() {
        config.store = TableStore::Memory;
    }
    let shutdown = CancellationToken::new();
    let stats = Arc::new(DiscoveryStats::default());
    let (handle, task) = crate::discovery::start(config, &keypair, None, stats, shutdown.clone())
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let enr = handle
        .local_enr()
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let mut out = tokio::io::stdout();
    let _ = out
        .write_all(format!("{}\n", enr.to_base64()).as_bytes())
        .await;
    let _ = out.flush().await;
    tracing::info!(chain = %chain.name, chain_id = chain.chain_id, udp = %handle.udp_addr(), "bootnode running");
    signals.recv().await;
    shutdown.cancel();
    let _ = task.await;
    Ok(())
}
