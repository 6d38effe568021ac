//! `op-gossip devnet`: one sequencer and N−1 followers, each its own `op-gossip node` process on
//! 127.0.0.1 (so each node's memory is measured on its own), driven over the JSON-lines control
//! channel ([`crate::cli::control`]).
//!
//! Where it sits: outside the node, as its operator. The CLI ([`crate::cli::devnet`]) turns the
//! flags into a [`DevnetPlan`]; [`run`] plays it and hands back the report. Three parts, one job
//! each:
//!
//! ```text
//!  scenario (what happens when)      processes (the children)        collect (what they say)
//!  prepare, start_nodes, ──commands──► op-gossip node ×N ──stdout──► ControlEvent ──► NodeStats
//!  start_adversary, produce,          (stdin: dial, produce,              │
//!  ask_topology, stop ◄───────────────── topology, shutdown) ◄─waits on──┘
//!        └──► report::DevnetReport (+ cpu, hostile) and report_html::RunRecord
//! ```
//!
//! Run: write a rollup.json whose genesis is a day back → start every node on port 0 and read
//! back its address → dial the topology → wait for the meshes → ask the sequencer for the blocks
//! → collect every accept/publish event with its wall-clock time → stop the nodes and read their
//! peak RSS → [`report::DevnetReport`], with the CPU the nodes used while producing ([`cpu`]).
//!
//! While it runs, [`live`] draws the nodes' progress on stderr; at the end each node is asked for
//! its peers and mesh, and the time series go to [`report_html`] beside the JSON report.
//!
//! With `--adversary <kind>` an [`adversary`] joins once the meshes formed, attacks every node
//! running at that moment while the blocks are produced, and is stopped before the nodes;
//! [`hostile`] follows what the nodes say about it and adds the report's `adversary` section.
//! With `--op-reth`, [`op_reth`] runs the same processes on real engines instead.

pub mod adversary;
pub mod bootnode;
pub mod collect;
pub mod cpu;
pub mod hostile;
pub mod live;
pub mod loss;
pub mod op_reth;
pub mod processes;
pub mod report;
pub mod report_html;
pub mod scenario;
pub mod topology;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use report::DevnetReport;
use scenario::Scenario;
pub use topology::Topology;

/// The devnet sequencer key: Anvil/Hardhat account #5, the signer in `chains/devnet.toml`.
pub const DEVNET_SEQUENCER_KEY: &str =
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// Its address.
pub const DEVNET_SIGNER: &str = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";

/// What to run.
#[derive(Debug, Clone)]
pub struct DevnetPlan {
    /// Nodes, the sequencer included (≥ 2).
    pub nodes: usize,
    /// Blocks to publish.
    pub blocks: u64,
    /// Time between blocks.
    pub block_time: Duration,
    /// Transaction bytes per block.
    pub block_size: usize,
    /// How nodes connect.
    pub topology: Topology,
    /// Seed for `random:` topologies.
    pub seed: u64,
    /// Where node data and logs go (a fresh temporary directory when `None`).
    pub data_dir: Option<PathBuf>,
    /// The `op-gossip` binary to run for each node.
    pub binary: PathBuf,
    /// Live progress on stderr.
    pub progress: bool,
    /// `--late-joiner k`: the last follower starts after the first k blocks and must catch up.
    pub late_joiner: Option<u64>,
    /// `--drop f`: followers lose this fraction of gossip deliveries and must fill the holes.
    pub drop: f64,
    /// `--adversary`: a hostile node joins after the meshes formed.
    pub adversary: Option<hostile::AdversaryPlan>,
    /// `--l2`, `--l2.jwt-secret`: the first follower inserts into this engine.
    pub engine: Option<(String, PathBuf)>,
    /// `--op-reth`: every node gets its own op-reth (this binary) and the sequencer builds on
    /// its chain's clock ([`op_reth`]).
    pub op_reth: Option<PathBuf>,
}

/// Why the devnet could not run.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// A file, port or process operation failed (`context` says which).
    #[error("devnet: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An op-reth engine did not answer as expected.
    #[error("devnet: op-reth at {url}: {source}")]
    Engine {
        /// The engine's URL.
        url: String,
        /// The failed call.
        source: crate::engine::EngineError,
    },
    /// The devnet's own chain or keys do not load (a bug in the devnet's constants).
    #[error("devnet: {0}")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The adversary could not start.
    #[error("devnet: {0}")]
    Adversary(#[from] adversary::AdversaryError),
    /// A node reported a listen address that does not parse.
    #[error("devnet: adversary: node address {addr}: {source}")]
    Address {
        /// The address as reported.
        addr: String,
        /// Why it does not parse.
        source: libp2p::multiaddr::Error,
    },
    /// A control command could not be encoded.
    #[error("devnet: command {command}: {source}")]
    Command {
        /// The command, as debug text.
        command: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// The run cannot go on: a node missing or exited, engines that disagree, or the sequencer
    /// failed (its error as the node reported it on the control channel, which carries text).
    #[error("devnet: {0}")]
    Run(String),
    /// A node did not start, connect or answer in time (the text says what was awaited).
    #[error("devnet: {0}")]
    Timeout(String),
}

impl DevnetError {
    /// A closure turning an I/O error into [`DevnetError::Io`] with `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Runs the plan and returns the report, and the time series the HTML report draws (none for a
/// run on op-reth engines, whose report is the engines' heads).
pub async fn run(plan: &DevnetPlan) -> Result<(DevnetReport, report_html::RunRecord), DevnetError> {
    if let Some(binary) = &plan.op_reth {
        let report = op_reth::run(plan, binary).await?;
        return Ok((report, report_html::RunRecord::default()));
    }
    let mut scenario = Scenario::prepare(plan).await?;
    scenario.start_nodes().await?;
    scenario.start_adversary().await?;
    let window = scenario.produce().await?;
    scenario.ask_topology().await;
    let adversary = scenario.stop().await;
    scenario.report(window, adversary)
}

/// How far before the start the devnet's genesis lies. The devnet produces blocks on request,
/// faster than its 2 s block time, while payload_by_number servers refuse numbers beyond
/// `genesis + (now − genesis_time) / block_time` (op-node's range check); a genesis one day back
/// leaves room for 43,200 blocks. Block timestamps are the wall clock either way.
pub const DEVNET_GENESIS_AGE_SECS: u64 = 24 * 60 * 60;

/// The devnet genesis time for a run starting at `now`.
pub fn devnet_genesis_time(now: u64) -> u64 {
    now.saturating_sub(DEVNET_GENESIS_AGE_SECS)
}

/// An op-node rollup.json for the devnet chain (id 901, every fork at genesis, genesis `now`).
pub fn devnet_rollup_json(genesis_time: u64) -> Value {
    let zero = format!("0x{}", "0".repeat(64));
    json!({
        "genesis": {
            "l1": {"hash": zero, "number": 0},
            "l2": {"hash": zero, "number": 0},
            "l2_time": genesis_time,
        },
        "block_time": 2,
        "l2_chain_id": 901,
        "regolith_time": 0, "canyon_time": 0, "delta_time": 0, "ecotone_time": 0, "fjord_time": 0,
        "granite_time": 0, "holocene_time": 0, "isthmus_time": 0, "jovian_time": 0,
    })
}
