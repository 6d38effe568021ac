//! `op-gossip node`: the long-running node for a real chain or a devnet.
//!
//! Follows by default; with `--p2p.sequencer.key` it also builds, signs and publishes blocks with
//! the embedded producer (block n at `genesis.l2_time + n × block_time`). Logs go to stderr
//! through `tracing` (`RUST_LOG` filters, default `info`). SIGINT/SIGTERM stop it gracefully.
//! `--control stdio` (used by `op-gossip devnet`) adds a JSON-lines control channel: events on
//! stdout, commands on stdin (see [`super::control`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use alloy_primitives::Address;
use libp2p::Multiaddr;

use clap::builder::TypedValueParser;

use super::{ChainArgs, CliError, parse_size};
use crate::node::{NodeConfig, start};
use crate::p2p::keys::{keypair_from_hex, load_or_create};
use crate::p2p::scoring::ScoringLevel;
use crate::p2p::{BanConfig, ConnectionLimits, GossipConfig};
use crate::producer::{Schedule, SequencerConfig};
use crate::store::DEFAULT_RETENTION_BLOCKS;
use crate::validate::ValidatorConfig;
use crate::wire::signature::BlockSigner;

/// Flags of `node` (op-node's names where op-node has the flag).
#[derive(Debug, Clone, clap::Args)]
pub struct NodeArgs {
    /// Which chain to follow.
    #[command(flatten)]
    pub chain: ChainArgs,

    /// Data directory (block store; node key unless --p2p.priv.path is given). Default: one per
    /// chain, `$XDG_DATA_HOME/op-gossip/<chain>` or `~/.local/share/op-gossip/<chain>`.
    #[arg(long, value_name = "DIR", env = "OP_GOSSIP_DATADIR")]
    pub datadir: Option<PathBuf>,

    /// Node key file (hex secp256k1 secret), created on first run (default: `<datadir>/opnode_p2p_priv.txt`).
    #[arg(
        long = "p2p.priv.path",
        value_name = "FILE",
        env = "OP_NODE_P2P_PRIV_PATH"
    )]
    pub priv_path: Option<PathBuf>,

    /// Node key as hex (takes precedence over --p2p.priv.path; prefer the environment variable).
    #[arg(
        long = "p2p.priv.raw",
        value_name = "HEX",
        hide = true,
        env = PRIV_RAW_ENV
    )]
    pub priv_raw: Option<String>,

    /// IP to listen on.
    #[arg(
        long = "p2p.listen.ip",
        default_value = "0.0.0.0",
        env = "OP_NODE_P2P_LISTEN_IP"
    )]
    pub listen_ip: IpAddr,

    /// TCP port to listen on (0 = any free port; the bound address is logged).
    #[arg(
        long = "p2p.listen.tcp",
        default_value_t = 9222,
        env = "OP_NODE_P2P_LISTEN_TCP_PORT"
    )]
    pub listen_tcp: u16,

    /// Static peers: comma-separated multiaddrs ending in `/p2p/<peer id>`; dialled at start and
    /// every minute while disconnected.
    #[arg(
        long = "p2p.static",
        value_name = "MULTIADDRS",
        value_delimiter = ',',
        env = "OP_NODE_P2P_STATIC"
    )]
    pub static_peers: Vec<Multiaddr>,

    /// Sequencer key: a file holding hex (mode 0600), or hex (prefer the environment variable:
    /// the command line is visible in the process list). Sign and publish blocks.
    #[arg(
        long = "p2p.sequencer.key",
        value_name = "FILE|HEX",
        env = SEQUENCER_KEY_ENV
    )]
    pub sequencer_key: Option<String>,

    /// Transaction bytes per produced block (filler transactions after the L1-info deposit).
    #[arg(long = "sequencer.block-size", value_name = "SIZE", default_value = "0", value_parser = parse_size)]
    pub block_size: usize,

    /// Produce only when asked over the control channel (devnet), not on the chain clock.
    #[arg(long = "sequencer.on-request", hide = true)]
    pub on_request: bool,

    /// Gossip mesh and validation window.
    #[command(flatten)]
    pub gossip: super::flags::gossip::GossipArgs,

    /// Gap filling and serving (payload_by_number).
    #[command(flatten)]
    pub sync: super::flags::sync::SyncArgs,

    /// L1 and the execution engine.
    #[command(flatten)]
    pub engine: super::flags::engine::EngineArgs,

    /// Peer scoring, bans and the connection manager.
    #[command(flatten)]
    pub peers: super::flags::peers::PeersArgs,

    /// The admin JSON-RPC.
    #[command(flatten)]
    pub rpc: super::flags::rpc::RpcArgs,

    /// The Prometheus endpoint.
    #[command(flatten)]
    pub metrics: super::flags::metrics::MetricsArgs,

    /// Lose this fraction of gossip deliveries on purpose (0..1), to exercise gap filling
    /// (`op-gossip devnet --drop` sets it on followers). Never set it on a real node.
    #[arg(long = "test.lose-gossip", value_name = "FRACTION", default_value_t = 0.0, value_parser = parse_fraction)]
    pub lose_gossip: f64,

    /// Blocks kept in the store below the head.
    #[arg(long = "store.retention", default_value_t = DEFAULT_RETENTION_BLOCKS)]
    pub retention: u64,

    /// Async worker threads (default: one per core). Store writes and the validation of big
    /// blocks run on a separate blocking pool, so one worker suffices when many nodes share a
    /// machine.
    #[arg(long = "runtime.worker-threads", value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub worker_threads: Option<usize>,

    /// Control channel for orchestration (`stdio`: JSON-lines events on stdout, commands on stdin).
    #[arg(long, value_name = "stdio", hide = true)]
    pub control: Option<String>,

    /// Discovery (discv5).
    #[command(flatten)]
    pub discovery: super::discovery::DiscoveryArgs,
}

impl NodeArgs {
    /// Validates the flags into a node configuration.
    pub fn to_config(&self, signer_override: Option<Address>) -> Result<NodeConfig, CliError> {
        let chain = Arc::new(self.chain.load(signer_override)?);
        let data_dir = match &self.datadir {
            Some(dir) => dir.clone(),
            None => super::datadir::default_data_dir(&self.chain, &chain)?,
        };
        // The first line an operator sees says where the store is, before any warning below.
        tracing::info!(
            chain = %chain.name,
            chain_id = chain.chain_id,
            store = %data_dir.join(crate::node::STORE_FILE).display(),
            "starting"
        );
        let keypair = match (&self.priv_raw, &self.priv_path) {
            (Some(raw), _) => {
                if !from_env(PRIV_RAW_ENV, raw) {
                    tracing::warn!("{}", argv_key_warning("--p2p.priv.raw", PRIV_RAW_ENV));
                }
                keypair_from_hex(raw, "--p2p.priv.raw")
            }
            (None, Some(path)) => load_or_create(path),
            (None, None) => load_or_create(&data_dir.join("opnode_p2p_priv.txt")),
        }
        .map_err(|e| CliError::Usage(e.to_string()))?;
        let (gossip, validator) = <(GossipConfig, ValidatorConfig)>::try_from(&self.gossip)?;
        let (scoring, ban, limits) =
            <(ScoringLevel, BanConfig, ConnectionLimits)>::try_from(&self.peers)?;
        let rpc = Option::<crate::rpc::RpcConfig>::try_from(&self.rpc)?;
        check_block_size(self.block_size)?;
        let sequencer = match &self.sequencer_key {
            None => None,
            Some(key) => Some(SequencerConfig {
                signer: {
                    let (signer, warnings) =
                        load_sequencer_key(key, from_env(SEQUENCER_KEY_ENV, key))?;
                    for warning in warnings {
                        tracing::warn!("{warning}");
                    }
                    signer
                },
                schedule: if self.on_request {
                    Schedule::OnRequest
                } else {
                    Schedule::ChainTime
                },
                target_tx_bytes: self.block_size,
            }),
        };
        for addr in &self.static_peers {
            if crate::p2p::peer_id_of(addr).is_none() {
                return Err(CliError::Usage(format!(
                    "static peer {addr} has no /p2p/<peer id>"
                )));
            }
        }
        let l1 = self.engine.l1_config(&chain)?;
        let (reqresp_server, sync) = self.sync.configs(chain.block_time, self.retention);
        let discovery = self
            .discovery
            .to_config(&chain, &data_dir, self.listen_ip)?;
        Ok(NodeConfig {
            discovery,
            chain,
            data_dir,
            keypair,
            listen_ip: self.listen_ip,
            listen_port: self.listen_tcp,
            static_peers: self.static_peers.clone(),
            gossip,
            validator,
            retention: self.retention,
            sequencer,
            reqresp_server,
            sync,
            lose_gossip_fraction: self.lose_gossip,
            scoring,
            ban,
            rpc,
            l1,
            engine: self.engine.engine_config()?,
            limits,
            metrics: crate::metrics::MetricsConfig::from(&self.metrics),
        })
    }
}

/// A fraction in 0..=1.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{s:?} is not a fraction between 0 and 1")),
    }
}

/// A block size the producer can honour: every block must fit one 10 MiB gossip message.
pub fn check_block_size(bytes: usize) -> Result<(), CliError> {
    let max = crate::block_builder::MAX_TARGET_TX_BYTES;
    if bytes > max {
        return Err(CliError::Usage(format!(
            "block size {bytes} B exceeds the {max} B that fit a 10 MiB gossip message"
        )));
    }
    Ok(())
}

/// op-node's environment variable for `--p2p.sequencer.key`.
pub const SEQUENCER_KEY_ENV: &str = "OP_NODE_P2P_SEQUENCER_KEY";
/// op-node's environment variable for `--p2p.priv.raw`.
pub const PRIV_RAW_ENV: &str = "OP_NODE_P2P_PRIV_RAW";

/// Whether `value` came from the environment variable `env` rather than the command line (clap
/// prefers the command line, so a value equal to the variable's is taken to be the variable's).
fn from_env(env: &str, value: &str) -> bool {
    std::env::var(env).is_ok_and(|v| v == value)
}

/// The warning for a secret given as hex on the command line.
pub fn argv_key_warning(flag: &str, env: &str) -> String {
    format!(
        "{flag} is given as hex on the command line, which every local user can read in the \
         process list (ps, /proc/<pid>/cmdline); give a file (mode 0600) or set {env} instead"
    )
}

/// `--p2p.sequencer.key`: hex, or the path of a file holding hex. `from_env`: the value came from
/// [`SEQUENCER_KEY_ENV`]. Returns the signer and the warnings to log: hex on the command line,
/// or a key file that group or others may access.
pub fn load_sequencer_key(
    value: &str,
    from_env: bool,
) -> Result<(BlockSigner, Vec<String>), CliError> {
    let mut warnings = Vec::new();
    if let Ok(signer) = BlockSigner::from_hex(value) {
        if !from_env {
            warnings.push(argv_key_warning("--p2p.sequencer.key", SEQUENCER_KEY_ENV));
        }
        return Ok((signer, warnings));
    }
    let path = std::path::Path::new(value);
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!(
            "--p2p.sequencer.key is neither a hex key nor a readable file ({e})"
        ))
    })?;
    if let Some(warning) = crate::p2p::keys::permission_warning(path) {
        warnings.push(format!("sequencer key: {warning}"));
    }
    let signer = BlockSigner::from_hex(&text)
        .map_err(|e| CliError::Usage(format!("--p2p.sequencer.key file {value}: {e}")))?;
    Ok((signer, warnings))
}

/// Runs the node until SIGINT/SIGTERM (or a shutdown command on the control channel).
pub async fn run(args: &NodeArgs, signer_override: Option<Address>) -> Result<(), CliError> {
    let mut signals = ShutdownSignals::install();
    let log_summaries = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::log_limit::callsite::report_suppressed(
        crate::log_limit::callsite::global_counts().clone(),
        log_summaries.clone(),
    ));
    let _stop_summaries = log_summaries.drop_guard();
    let config = args.to_config(signer_override)?;
    let chain = config.chain.clone();
    // Go raises it for op-node; a 1,024 default would let peers' sockets starve the RPC,
    // metrics and new peers before the connection limits (p2p::conn_caps) apply.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    if chain.configured_signers().next().is_none() {
        tracing::warn!(
            "no unsafe block signer configured: every gossip block will be ignored (set --p2p.unsafe.block.signer)"
        );
    }
    // Start-up can wait (for an engine that is not up yet): a signal ends the wait.
    let node = tokio::select! {
        started = start(config) => started.map_err(|e| CliError::Runtime(e.to_string()))?,
        () = signals.recv() => {
            tracing::info!("signal received while starting; stopping");
            return Ok(());
        }
    };
    if let Some(head) = node.head() {
        tracing::info!(number = head.number, hash = %head.hash, "resuming from stored head");
    }
    let control = match args.control.as_deref() {
        None => None,
        Some("stdio") => Some(super::control::serve(&node)),
        Some(other) => {
            return Err(CliError::Usage(format!(
                "--control {other}: only `stdio` is supported"
            )));
        }
    };
    let stop_requested = async {
        match control {
            Some(stopped) => {
                let _ = stopped.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = signals.recv() => tracing::info!("signal received, shutting down"),
        () = stop_requested => tracing::info!("shutdown requested"),
    }
    let sync = node.sync_stats().cloned();
    let server = node.server_stats().cloned();
    let engine = node.engine_stats().cloned();
    let discovery = node.discovery().map(|d| d.stats().clone());
    let head = node.head_watch();
    node.shutdown().await;
    // Read after the store writer drained its queue: the head the node stops on.
    let head = *head.borrow();
    super::control::report_exit(
        args.control.is_some(),
        head,
        sync.as_deref(),
        server.as_deref(),
        engine.as_deref(),
        discovery.as_deref(),
    )
    .await;
    Ok(())
}

/// SIGINT and SIGTERM, caught from the moment [`ShutdownSignals::install`] runs: a signal that
/// arrives while the node is still starting stops it gracefully once it is up, instead of
/// killing it with the signal's default action.
pub struct ShutdownSignals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // Both or neither: without handlers, `recv` falls back to tokio's ctrl-c.
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves on the first SIGINT or SIGTERM (also one received before this was awaited).
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly
mod tests {
    use std::net::SocketAddr;

    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// The configuration `node` would run with these flags (a fixed key, the devnet chain).
    fn node_config(flags: &[&str]) -> Result<crate::node::NodeConfig, String> {
        let key = "0x0101010101010101010101010101010101010101010101010101010101010101";
        let mut args = vec![
            "op-gossip",
            "node",
            "--chain",
            "devnet",
            "--p2p.priv.raw",
            key,
        ];
        args.extend_from_slice(flags);
        let Command::Node(node) = Cli::try_parse_from(args).unwrap().command else {
            panic!("not the node subcommand")
        };
        node.to_config(None).map_err(|e| e.to_string())
    }

    /// The metrics endpoint `node` would serve with these flags.
    fn metrics_listen(flags: &[&str]) -> Option<SocketAddr> {
        node_config(flags).unwrap().metrics.listen
    }

    /// The admin RPC `node` would serve with these flags, or the usage error.
    fn rpc_config(flags: &[&str]) -> Result<Option<crate::rpc::RpcConfig>, String> {
        node_config(flags).map(|c| c.rpc)
    }

    #[test]
    fn rpc_flags_keep_admin_methods_off_and_loopback_names_only() {
        let rpc = rpc_config(&[]).unwrap().unwrap();
        assert_eq!(rpc, crate::rpc::RpcConfig::default());
        assert!(!rpc.enable_admin, "op-node's default: off");
        assert_eq!(rpc.vhosts, ["localhost"]);
        assert_eq!(rpc.http, crate::rpc::RPC_HTTP_LIMITS);
        for flag in ["--rpc.enable-admin", "--rpc.enable-admin=true"] {
            assert!(rpc_config(&[flag]).unwrap().unwrap().enable_admin, "{flag}");
        }
        assert!(
            !rpc_config(&["--rpc.enable-admin=false"])
                .unwrap()
                .unwrap()
                .enable_admin
        );
        assert_eq!(
            rpc_config(&["--rpc.vhosts", "a.example,localhost"])
                .unwrap()
                .unwrap()
                .vhosts,
            ["a.example", "localhost"]
        );
        let err = rpc_config(&["--rpc.vhosts", "a b"]).unwrap_err();
        assert!(err.contains("--rpc.vhosts"), "{err}");
        assert_eq!(rpc_config(&["--rpc.disable"]).unwrap(), None);
    }

    #[test]
    fn metrics_flags_follow_op_node() {
        assert_eq!(metrics_listen(&[]), None, "off by default");
        assert_eq!(
            metrics_listen(&["--metrics.enabled"]),
            Some("0.0.0.0:7300".parse().unwrap()),
            "op-node's address and port"
        );
        assert_eq!(
            metrics_listen(&["--metrics.enabled=true"]),
            Some("0.0.0.0:7300".parse().unwrap())
        );
        assert_eq!(
            metrics_listen(&["--metrics.enabled=false", "--metrics.port", "1"]),
            None
        );
        assert_eq!(
            metrics_listen(&[
                "--metrics.enabled",
                "--metrics.addr",
                "127.0.0.1",
                "--metrics.port",
                "0"
            ]),
            Some("127.0.0.1:0".parse().unwrap())
        );
    }
}
