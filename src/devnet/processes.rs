//! The node processes: each devnet node is its own `op-gossip node --control stdio` child on
//! 127.0.0.1. This module starts them with their flags, owns them, writes
//! [`ControlCommand`]s to their stdin, and stops them.
//!
//! ```text
//!  Nodes::spawn(i) ──► op-gossip node (flags, keys in the environment, log to node<i>.log)
//!      stdout lines ──► ControlEvent ──► the collector's channel, tagged i  (super::collect)
//!  Nodes::send(i, command) ──► child stdin (dial, produce, topology, shutdown)
//!  Nodes::stop(which) ──► shutdown, wait for each `exit` event, then kill what still runs
//! ```
//!
//! Every child is killed when `Nodes` is dropped, so a run that fails half-way leaves no
//! process behind.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use super::collect::{Collector, EventSender};
use super::{DEVNET_SEQUENCER_KEY, DEVNET_SIGNER, DevnetError, DevnetPlan, cpu};
use crate::cli::control::ControlCommand;
use crate::cli::control_event::ControlEvent;

/// How long nodes get to exit after `shutdown` before they are killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// After its `exit` event (or the exit timeout), how long a node's process gets to end before
/// it is killed: the event is its last line, so only the runtime's shutdown remains.
const REAP_TIMEOUT: Duration = Duration::from_secs(2);

/// One running node.
struct ChildNode {
    process: Child,
    stdin: ChildStdin,
}

/// The devnet's node processes, by node index (`None`: not started yet, or stopped).
pub(super) struct Nodes {
    children: Vec<Option<ChildNode>>,
    /// Handed to each child's stdout reader; dropped by [`Self::no_more_nodes`].
    events: Option<EventSender>,
}

/// What a node is started with besides the plan.
pub(super) struct NodeSetup<'a> {
    /// The run's directory: the node's datadir and log go there.
    pub(super) dir: &'a Path,
    /// The devnet's rollup.json.
    pub(super) rollup: &'a Path,
    /// The bootnode's ENR (`--topology discovery`); else discovery is off and nodes dial.
    pub(super) bootnode: Option<&'a str>,
}

impl Nodes {
    /// Room for `count` nodes, none running; their events go to `events`.
    pub(super) fn new(count: usize, events: EventSender) -> Self {
        Self {
            children: (0..count).map(|_| None).collect(),
            events: Some(events),
        }
    }

    /// Whether node `i` is running.
    pub(super) fn is_running(&self, i: usize) -> bool {
        self.children.get(i).is_some_and(Option::is_some)
    }

    /// No node will be started any more: once every child's stdout ended, the collector's
    /// channel closes.
    pub(super) fn no_more_nodes(&mut self) {
        self.events = None;
    }

    /// The process id of each running node, in node order.
    pub(super) fn pids(&self) -> Vec<Option<u32>> {
        self.children
            .iter()
            .map(|c| c.as_ref().and_then(|c| c.process.id()))
            .collect()
    }

    /// Starts node `i`; `engine` (URL and JWT secret file) attaches it to an engine (else
    /// `--l2` attaches node 1).
    pub(super) fn spawn(
        &mut self,
        plan: &DevnetPlan,
        setup: &NodeSetup<'_>,
        i: usize,
        engine: Option<(&str, &Path)>,
    ) -> Result<(), DevnetError> {
        let events = self
            .events
            .clone()
            .ok_or_else(|| DevnetError::Run(format!("node {i} started after the last one")))?;
        let slot = self
            .children
            .get_mut(i)
            .ok_or_else(|| DevnetError::Run(format!("no node {i} in this devnet")))?;
        *slot = Some(spawn_node(plan, setup, i, events, engine)?);
        Ok(())
    }

    /// Sends `command` to node `i`.
    pub(super) async fn send(
        &mut self,
        i: usize,
        command: ControlCommand,
    ) -> Result<(), DevnetError> {
        let child = self
            .children
            .get_mut(i)
            .and_then(Option::as_mut)
            .ok_or_else(|| DevnetError::Run(format!("node {i} is not running")))?;
        let line = serde_json::to_string(&command).map_err(|source| DevnetError::Command {
            command: format!("{command:?}"),
            source,
        })? + "\n";
        child
            .stdin
            .write_all(line.as_bytes())
            .await
            .map_err(DevnetError::io("node stdin"))?;
        child
            .stdin
            .flush()
            .await
            .map_err(DevnetError::io("node stdin"))
    }

    /// Asks the sequencer (node 0) for `count` blocks.
    pub(super) async fn produce(
        &mut self,
        count: u64,
        interval_ms: u64,
        block_size: usize,
    ) -> Result<(), DevnetError> {
        if !self.is_running(0) {
            return Err(DevnetError::Run("the sequencer is not running".into()));
        }
        self.send(
            0,
            ControlCommand::Produce {
                count,
                interval_ms,
                block_size,
            },
        )
        .await
    }

    /// Asks `which` nodes to shut down and waits for their `exit` events (which carry their
    /// peak memory and counters), at most [`EXIT_TIMEOUT`]; then kills what still runs.
    pub(super) async fn stop(&mut self, which: &[usize], collector: &mut Collector) {
        for &i in which {
            if self.is_running(i) {
                let _ = self.send(i, ControlCommand::Shutdown).await;
            }
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while which
            .iter()
            .any(|&i| collector.stats.get(i).is_some_and(|s| !s.exited))
            && Instant::now() < deadline
        {
            if collector.next(deadline, "").await.is_err() {
                break;
            }
        }
        for &i in which {
            if let Some(mut child) = self.children.get_mut(i).and_then(Option::take) {
                let _ = tokio::time::timeout(REAP_TIMEOUT, child.process.wait()).await;
                let _ = child.process.start_kill();
            }
        }
    }
}

/// Starts node `i`'s process and the task that reads its events.
fn spawn_node(
    plan: &DevnetPlan,
    setup: &NodeSetup<'_>,
    i: usize,
    events: EventSender,
    engine: Option<(&str, &Path)>,
) -> Result<ChildNode, DevnetError> {
    let dir = setup.dir;
    let log = std::fs::File::create(dir.join(format!("node{i}.log")))
        .map_err(DevnetError::io(format!("cannot create node{i}.log")))?;
    let mut cmd = Command::new(&plan.binary);
    cmd.arg("--p2p.unsafe.block.signer")
        .arg(DEVNET_SIGNER)
        .arg("node")
        .arg("--rollup.config")
        .arg(setup.rollup)
        .arg("--datadir")
        .arg(dir.join(format!("node{i}")))
        .args([
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.listen.tcp",
            "0",
            // Every node serves the admin RPC on a free port (its address is in the `listening`
            // event), so an operator can inspect a running devnet, and ban or post blocks on
            // this local network.
            "--rpc.port",
            "0",
            "--rpc.enable-admin",
            "--control",
            "stdio",
        ])
        .arg("--runtime.worker-threads")
        .arg(worker_threads_per_node(plan.nodes).to_string())
        // Keys through the environment, not the command line (visible in the process list;
        // the node warns about that even though these keys are public).
        .env(crate::cli::node::PRIV_RAW_ENV, node_key_hex(i));
    if i == 0 {
        cmd.env(crate::cli::node::SEQUENCER_KEY_ENV, DEVNET_SEQUENCER_KEY);
        if plan.op_reth.is_none() {
            cmd.arg("--sequencer.on-request");
        }
    } else {
        // A follower must not inherit a sequencer key from the devnet's own environment.
        cmd.env_remove(crate::cli::node::SEQUENCER_KEY_ENV);
        if plan.drop > 0.0 {
            cmd.arg("--test.lose-gossip").arg(plan.drop.to_string());
        }
    }
    // Discovery only with a bootnode (`--topology discovery`); the other topologies dial.
    match setup.bootnode {
        Some(enr) => cmd.arg("--p2p.bootnodes").arg(enr),
        None => cmd.arg("--p2p.no-discovery"),
    };
    let engine = engine.or(match (i, &plan.engine) {
        (1, Some((url, secret))) => Some((url.as_str(), secret.as_path())),
        _ => None,
    });
    if let Some((url, secret)) = engine {
        cmd.arg("--l2").arg(url).arg("--l2.jwt-secret").arg(secret);
    }
    cmd.env(
        "RUST_LOG",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::from(log))
    .kill_on_drop(true);
    let mut process = cmd.spawn().map_err(DevnetError::io(format!(
        "cannot start {}",
        plan.binary.display()
    )))?;
    let stdin = process
        .stdin
        .take()
        .ok_or_else(|| DevnetError::Run("no stdin".into()))?;
    let stdout = process
        .stdout
        .take()
        .ok_or_else(|| DevnetError::Run("no stdout".into()))?;
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            // A line that is not an event (a log line on stdout) is skipped.
            if let Ok(event) = serde_json::from_str::<ControlEvent>(&line)
                && events.send((i, event)).await.is_err()
            {
                return;
            }
        }
    });
    Ok(ChildNode { process, stdin })
}

/// Async worker threads for each node: the machine's cores divided among the nodes, at least
/// one. All nodes share one machine, so more threads than cores only adds context switches
/// (measured: 20 nodes on 2 cores use 18% less CPU with one worker each than with two).
fn worker_threads_per_node(nodes: usize) -> usize {
    (cpu::cores() / nodes.max(1)).max(1)
}

/// A deterministic node key for node `i` (distinct, valid secp256k1 scalars).
pub(super) fn node_key_hex(i: usize) -> String {
    let mut secret = [0u8; 32];
    secret[0] = 0x1d;
    secret[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    alloy_primitives::hex::encode(secret)
}
