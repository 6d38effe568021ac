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

use super::{ChainArgs, CliError, parse_duration_secs, parse_size};
use crate::node::{NodeConfig, start};
use crate::p2p::GossipConfig;
use crate::p2p::gossip::{
    DEFAULT_MESH_D, DEFAULT_MESH_D_HI, DEFAULT_MESH_D_LAZY, DEFAULT_MESH_D_LO,
};
use crate::p2p::keys::{keypair_from_hex, load_or_create};
use crate::p2p::reqresp::limits::Rate;
use crate::p2p::reqresp::server::ServerConfig;
use crate::producer::{Schedule, SequencerConfig};
use crate::store::DEFAULT_RETENTION_BLOCKS;
use crate::sync::SyncConfig;
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

    /// Serve payload_by_number requests from the store.
    #[arg(long = "p2p.sync.req-resp", default_value_t = true, action = clap::ArgAction::Set, env = "OP_NODE_P2P_SYNC_REQ_RESP")]
    pub serve_req_resp: bool,

    /// Fill gaps (restart, late join, lost gossip) by fetching blocks from peers with
    /// payload_by_number. op-node's default is false; ours is true.
    #[arg(long = "syncmode.req-resp", default_value_t = true, action = clap::ArgAction::Set, env = "OP_NODE_SYNCMODE_REQ_RESP")]
    pub sync_req_resp: bool,

    /// Send payload_by_number requests only to static peers.
    #[arg(long = "p2p.sync.onlyreqtostatic", default_value_t = false, action = clap::ArgAction::Set, env = "OP_NODE_P2P_SYNC_ONLYREQTOSTATIC")]
    pub only_req_to_static: bool,

    /// Longest gap filled with payload_by_number; beyond it the head jumps to the newer block.
    #[arg(long = "syncmode.req-resp.max-gap", value_name = "BLOCKS", default_value_t = crate::sync::DEFAULT_MAX_GAP_BLOCKS)]
    pub sync_max_gap: u64,

    /// L1 RPC: the unsafe block signer is read from the chain's SystemConfig (and reloaded).
    #[arg(long = "l1", env = "OP_NODE_L1_ETH_RPC")]
    pub l1: Option<String>,

    /// How often the signer is read again from L1 (e.g. 10m).
    #[arg(long = "l1.runtime-config-reload-interval", default_value = "10m", value_parser = super::parse_duration, env = "OP_NODE_L1_RUNTIME_CONFIG_RELOAD_INTERVAL")]
    pub l1_reload: std::time::Duration,

    /// The execution engine's authenticated RPC (http://host:8551): accepted blocks are
    /// inserted into it in order. Needs --l2.jwt-secret.
    #[arg(long = "l2", env = "OP_NODE_L2_ENGINE_RPC", requires = "l2_jwt_secret")]
    pub l2: Option<String>,

    /// File with the engine's JWT secret (32 bytes hex, op-node's format).
    #[arg(
        long = "l2.jwt-secret",
        env = "OP_NODE_L2_ENGINE_AUTH",
        requires = "l2"
    )]
    pub l2_jwt_secret: Option<PathBuf>,

    /// payload_by_number requests per second, all peers together (server and client).
    #[arg(long = "p2p.sync.global-rate", value_name = "PER_SEC", default_value_t = crate::p2p::reqresp::server::GLOBAL_RATE.per_second, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_global_rate: u32,

    /// Burst of the global payload_by_number limit.
    #[arg(long = "p2p.sync.global-burst", value_name = "N", default_value_t = crate::p2p::reqresp::server::GLOBAL_RATE.burst, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_global_burst: u32,

    /// payload_by_number requests per second per peer (server and client).
    #[arg(long = "p2p.sync.peer-rate", value_name = "PER_SEC", default_value_t = crate::p2p::reqresp::server::PEER_RATE.per_second, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_peer_rate: u32,

    /// Burst of the per-peer payload_by_number limit.
    #[arg(long = "p2p.sync.peer-burst", value_name = "N", default_value_t = crate::p2p::reqresp::server::PEER_RATE.burst, value_parser = clap::value_parser!(u32).range(1..))]
    pub sync_peer_burst: u32,

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
    #[arg(long = "p2p.ban.duration", default_value = "1h", value_parser = super::parse_duration, env = "OP_NODE_P2P_PEER_BANNING_DURATION")]
    pub ban_duration: std::time::Duration,

    /// Address of the admin JSON-RPC (opp2p_*).
    #[arg(
        long = "rpc.addr",
        default_value = "127.0.0.1",
        env = "OP_NODE_RPC_ADDR"
    )]
    pub rpc_addr: std::net::IpAddr,

    /// Port of the admin JSON-RPC (0 = any free port; the bound address is logged).
    #[arg(long = "rpc.port", default_value_t = crate::rpc::DEFAULT_RPC_PORT, env = "OP_NODE_RPC_PORT")]
    pub rpc_port: u16,

    /// Do not serve the admin JSON-RPC.
    #[arg(long = "rpc.disable", default_value_t = false)]
    pub rpc_disable: bool,

    /// Also serve the methods that store or sign blocks and ban peers (admin_postUnsafePayload,
    /// opgossip_publishPayload, opgossip_{ban,unban}{Peer,Addr}); off: "method not found".
    #[arg(long = "rpc.enable-admin", env = "OP_NODE_RPC_ENABLE_ADMIN", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub rpc_enable_admin: bool,

    /// Host names the admin RPC answers (comma-separated; `localhost` = localhost, 127.0.0.1 and
    /// `[::1]`; `*` = any); a request with another Host header gets 403.
    #[arg(
        long = "rpc.vhosts",
        value_name = "HOSTS",
        value_delimiter = ',',
        default_value = crate::rpc::DEFAULT_VHOSTS,
        env = "OP_GOSSIP_RPC_VHOSTS"
    )]
    pub rpc_vhosts: Vec<String>,

    /// Low water mark: the connection manager trims down to this many peers.
    #[arg(long = "p2p.peers.lo", default_value_t = crate::p2p::DEFAULT_PEERS_LO, env = "OP_NODE_P2P_PEERS_LO")]
    pub peers_lo: usize,

    /// High water mark: above this many peers, the lowest-scored unprotected ones are closed.
    #[arg(long = "p2p.peers.hi", default_value_t = crate::p2p::DEFAULT_PEERS_HI, env = "OP_NODE_P2P_PEERS_HI")]
    pub peers_hi: usize,

    /// A new connection is not trimmed for this long (e.g. 30s).
    #[arg(long = "p2p.peers.grace", default_value = "30s", value_parser = super::parse_duration, env = "OP_NODE_P2P_PEERS_GRACE")]
    pub peers_grace: std::time::Duration,
    /// Serve Prometheus metrics at http://<metrics.addr>:<metrics.port>/metrics.
    #[arg(long = "metrics.enabled", env = "OP_NODE_METRICS_ENABLED", default_value_t = false, num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub metrics_enabled: bool,

    /// Address of the metrics endpoint (op-node's default: every interface).
    #[arg(
        long = "metrics.addr",
        default_value = "0.0.0.0",
        env = "OP_NODE_METRICS_ADDR"
    )]
    pub metrics_addr: IpAddr,

    /// Port of the metrics endpoint (0 = any free port; the bound address is logged).
    #[arg(long = "metrics.port", default_value_t = crate::metrics::DEFAULT_METRICS_PORT, env = "OP_NODE_METRICS_PORT")]
    pub metrics_port: u16,

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
        if self.mesh_lo > self.mesh_d || self.mesh_d > self.mesh_dhi {
            return Err(CliError::Usage(
                "gossip mesh parameters need lo ≤ d ≤ dhi".into(),
            ));
        }
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
        let global = Rate {
            per_second: self.sync_global_rate,
            burst: self.sync_global_burst,
        };
        let per_peer = Rate {
            per_second: self.sync_peer_rate,
            burst: self.sync_peer_burst,
        };
        if self.peers_lo > self.peers_hi {
            return Err(CliError::Usage(format!(
                "--p2p.peers.lo ({}) must not exceed --p2p.peers.hi ({})",
                self.peers_lo, self.peers_hi
            )));
        }
        let l1 = match &self.l1 {
            Some(url) => Some(crate::l1::L1Config {
                url: url.clone(),
                system_config: chain.l1_system_config_address.ok_or_else(|| {
                    CliError::Usage(format!(
                        "--l1 needs the chain's l1_system_config_address (chain {})",
                        chain.name
                    ))
                })?,
                reload_interval: self.l1_reload,
                start_retry: crate::l1::START_RETRY,
            }),
            None => None,
        };
        crate::rpc::host_filter(&self.rpc_vhosts).map_err(|e| CliError::Usage(e.to_string()))?;
        let block_time = chain.block_time;
        Ok(NodeConfig {
            chain,
            data_dir,
            keypair,
            listen_ip: self.listen_ip,
            listen_port: self.listen_tcp,
            static_peers: self.static_peers.clone(),
            gossip: GossipConfig {
                mesh_d: self.mesh_d,
                mesh_d_lo: self.mesh_lo,
                mesh_d_hi: self.mesh_dhi,
                mesh_d_lazy: self.mesh_dlazy,
                flood_publish: self.flood_publish,
                ..GossipConfig::default()
            },
            validator: ValidatorConfig {
                past_window_secs: self.timestamp_threshold_secs,
                ..ValidatorConfig::default()
            },
            retention: self.retention,
            sequencer,
            reqresp_server: self.serve_req_resp.then(|| ServerConfig {
                global,
                per_peer,
                ..ServerConfig::default()
            }),
            sync: self.sync_req_resp.then(|| SyncConfig {
                global,
                per_peer,
                only_static: self.only_req_to_static,
                max_gap: self.sync_max_gap.clamp(1, self.retention.max(1)),
                ..SyncConfig::for_block_time(block_time)
            }),
            lose_gossip_fraction: self.lose_gossip,
            scoring: self.scoring,
            ban: crate::p2p::BanConfig {
                enabled: self.ban_peers,
                threshold: self.ban_threshold,
                duration: self.ban_duration,
            },
            rpc: (!self.rpc_disable).then_some(crate::rpc::RpcConfig {
                addr: self.rpc_addr,
                port: self.rpc_port,
                enable_admin: self.rpc_enable_admin,
                vhosts: self.rpc_vhosts.clone(),
                http: crate::rpc::RPC_HTTP_LIMITS,
            }),
            l1,
            engine: match (&self.l2, &self.l2_jwt_secret) {
                (Some(url), Some(path)) => Some(crate::engine::EngineConfig {
                    url: url.clone(),
                    jwt_secret: crate::engine::read_jwt_secret(path).map_err(CliError::Usage)?,
                    timeout: crate::engine::client::CALL_TIMEOUT,
                    retry: crate::engine::retry::RetryConfig::default(),
                }),
                _ => None,
            },
            limits: crate::p2p::ConnectionLimits {
                lo: self.peers_lo,
                hi: self.peers_hi,
                grace: self.peers_grace,
            },
            metrics: crate::metrics::MetricsConfig {
                listen: self
                    .metrics_enabled
                    .then(|| std::net::SocketAddr::new(self.metrics_addr, self.metrics_port)),
                ..crate::metrics::MetricsConfig::default()
            },
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
