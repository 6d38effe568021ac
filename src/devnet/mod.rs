//! `op-gossip devnet`: one sequencer and N−1 followers, each its own `op-gossip node` process on
//! 127.0.0.1 (so each node's memory is measured on its own), driven over the JSON-lines control
//! channel ([`crate::cli::control`]).
//!
//! Run: write a rollup.json whose genesis is now → start every node on port 0 and read back its
//! address → dial the topology → wait for the meshes → ask the sequencer for the blocks → collect
//! every accept/publish event with its wall-clock time → stop the nodes and read their peak RSS
//! → [`report::DevnetReport`], with the CPU the nodes used while producing ([`cpu`]).
//!
//! While it runs, [`live`] draws the nodes' progress on stderr; at the end each node is asked for
//! its peers and mesh, and the time series go to [`report_html`] beside the JSON report.
//!
//! With `--adversary <kind>` an [`adversary`] joins once the meshes formed, attacks every node
//! running at that moment while the blocks are produced, and is stopped before the nodes;
//! [`hostile`] follows what the nodes say about it and adds the report's `adversary` section.

pub mod adversary;
pub mod bootnode;
pub mod collect;
pub mod cpu;
pub mod hostile;
pub mod live;
pub mod loss;
pub mod op_reth;
pub mod report;
pub mod report_html;
pub mod topology;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::cli::control::ControlCommand;
use crate::cli::control_event::ControlEvent;
use collect::next_event;
use report::{DevnetReport, NodeStats, RunFacts};
pub use topology::Topology;

use crate::clock::{unix_millis, unix_now};

/// The devnet sequencer key: Anvil/Hardhat account #5, the signer in `chains/devnet.toml`.
pub const DEVNET_SEQUENCER_KEY: &str =
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";
/// Its address.
pub const DEVNET_SIGNER: &str = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc";
/// How long nodes get to start and report their address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the topology gets to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Settling time after every node has a peer: four gossipsub heartbeats to build the meshes.
const MESH_SETTLE: Duration = Duration::from_secs(2);
/// Collection continues this long after the last block is published, for stragglers.
const GRACE: Duration = Duration::from_secs(15);
/// `--drop`: at most this many tail blocks after the requested ones (each is lost with the drop
/// probability, so 10 leave a trailing hole with probability drop^10).
const MAX_TAIL_BLOCKS: u32 = 10;
/// `--drop`: time between tail blocks (room for the holes below to be filled first).
const TAIL_INTERVAL: Duration = Duration::from_secs(1);
/// How long nodes get to exit after `shutdown` before they are killed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long nodes get to answer the `topology` request at the end (an answer from memory, so
/// seconds only on a machine overloaded by the run).
const TOPOLOGY_TIMEOUT: Duration = Duration::from_secs(5);
/// Child events buffered for the orchestrator.
const EVENT_QUEUE: usize = 8192;

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
    /// Spawning or talking to a node failed.
    #[error("devnet: {0}")]
    Io(String),
    /// A node did not start, connect or answer in time.
    #[error("devnet: {0}")]
    Timeout(String),
}

struct ChildNode {
    process: Child,
    stdin: ChildStdin,
}

/// Where the run keeps node data and logs: `--datadir`, or a fresh temporary directory.
fn run_dir(plan: &DevnetPlan) -> PathBuf {
    match &plan.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "op-gossip-devnet-{}-{}",
            std::process::id(),
            unix_millis(SystemTime::now())
        )),
    }
}

/// Runs the plan and returns the report, and the time series the HTML report draws (none for a
/// run on op-reth engines, whose report is the engines' heads).
pub async fn run(plan: &DevnetPlan) -> Result<(DevnetReport, report_html::RunRecord), DevnetError> {
    if let Some(binary) = &plan.op_reth {
        let report = op_reth::run(plan, binary).await?;
        return Ok((report, report_html::RunRecord::default()));
    }
    let io = |e: std::io::Error| DevnetError::Io(e.to_string());
    let dir = run_dir(plan);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let rollup = dir.join("rollup.json");
    let genesis = devnet_genesis_time(unix_now());
    std::fs::write(&rollup, devnet_rollup_json(genesis).to_string()).map_err(io)?;

    let (events_tx, mut events) = mpsc::channel::<(usize, ControlEvent)>(EVENT_QUEUE);
    let mut stats: Vec<NodeStats> = (0..plan.nodes).map(|_| NodeStats::default()).collect();
    let edges = plan.topology.edges(plan.nodes, plan.seed);
    // The late joiner (the last follower) starts after the first phase of production.
    let late = plan.late_joiner.map(|_| plan.nodes - 1);
    let first_phase: Vec<usize> = (0..plan.nodes).filter(|i| Some(*i) != late).collect();
    let mut children: Vec<Option<ChildNode>> = (0..plan.nodes).map(|_| None).collect();
    let boot = match plan.topology {
        Topology::Discovery => Some(bootnode::start(&plan.binary, &rollup, &dir).await?),
        _ => None,
    };
    let boot_enr = boot.as_ref().map(|(_, enr)| enr.as_str());
    // With discovery, each node waits for a few peers of its own finding (3, or all others).
    let min_peers = if boot.is_some() {
        plan.nodes.saturating_sub(1).min(3)
    } else {
        1
    };
    for &i in &first_phase {
        children[i] =
            Some(spawn_node(plan, &dir, &rollup, i, boot_enr, events_tx.clone(), None).await?);
    }
    join(
        &mut events,
        &mut stats,
        &mut children,
        &edges,
        &first_phase,
        min_peers,
    )
    .await?;
    let adversary_stop = tokio_util::sync::CancellationToken::new();
    let adversary = match plan.adversary {
        Some(adv) => {
            let handle = hostile::start(adv, genesis, &mut stats, &first_phase, &adversary_stop)?;
            let since = Instant::now();
            while !hostile::joined_or_late(&handle, since) {
                let tick = Instant::now() + Duration::from_millis(50);
                let _ = next_event(&mut events, &mut stats, tick, "").await;
            }
            Some((adv, handle))
        }
        None => None,
    };

    // 3. Produce and collect.
    let mut live = plan.progress.then(|| live::LiveView::new(plan.blocks));
    let started = Instant::now();
    let cpu_start = cpu::sample(&node_pids(&children));
    let interval_ms = plan.block_time.as_millis() as u64;
    let mut remaining = plan.blocks;
    if let (Some(k), Some(late)) = (plan.late_joiner, late) {
        produce(&mut children, k, interval_ms, plan.block_size).await?;
        let deadline =
            Instant::now() + plan.block_time * u32::try_from(k).unwrap_or(u32::MAX) + GRACE;
        while !stats[0].produced.as_ref().is_some_and(|r| r.is_ok())
            || stats[0].published.len() as u64 != k
        {
            if let Some(Err(e)) = &stats[0].produced {
                return Err(DevnetError::Io(format!("sequencer failed to produce: {e}")));
            }
            next_event(
                &mut events,
                &mut stats,
                deadline,
                "the late joiner's head start",
            )
            .await?;
            if let Some(view) = live.as_mut() {
                view.tick(&stats, false);
            }
        }
        stats[0].produced = None;
        remaining = plan.blocks - k;
        children[late] =
            Some(spawn_node(plan, &dir, &rollup, late, boot_enr, events_tx.clone(), None).await?);
        join(
            &mut events,
            &mut stats,
            &mut children,
            &edges,
            &[late],
            min_peers,
        )
        .await?;
    }
    drop(events_tx);
    produce(&mut children, remaining, interval_ms, plan.block_size).await?;
    let production = plan.block_time * u32::try_from(remaining).unwrap_or(u32::MAX);
    // Catching up from payload_by_number takes (missed blocks / the 20/s client limit) more.
    let catch_up = Duration::from_secs(plan.late_joiner.unwrap_or(0) / 10);
    let deadline = Instant::now() + production + catch_up + GRACE;
    let mut tail_sent = 0;
    let mut last_tail = Instant::now();
    loop {
        // The `produced` line can overtake the last `published` line (two writers on the child's
        // stdout), so completion also needs every requested block seen as published; a failed
        // production ends collection at once.
        let sequencer = &stats[0];
        let all_published = sequencer.published.len() as u64 >= plan.blocks;
        let failed = matches!(sequencer.produced, Some(Err(_)));
        let adversary_settled = adversary
            .as_ref()
            .is_none_or(|(adv, _)| hostile::settled(adv.kind, &stats, &first_phase));
        let done = failed
            || sequencer.produced.is_some()
                && all_published
                && adversary_settled
                && stats.iter().skip(1).all(|s| {
                    stats[0]
                        .published
                        .keys()
                        .filter(|n| **n <= plan.blocks)
                        .all(|n| s.has(*n))
                });
        if done || Instant::now() >= deadline {
            break;
        }
        // A follower that lost the last blocks has nothing signed above them to trust a fetch
        // on: publish a tail block now and then, as a live chain would.
        let produced_ok = matches!(stats[0].produced, Some(Ok(())));
        if plan.drop > 0.0
            && produced_ok
            && all_published
            && tail_sent < MAX_TAIL_BLOCKS
            && last_tail.elapsed() >= TAIL_INTERVAL
        {
            stats[0].produced = None;
            produce(&mut children, 1, interval_ms, plan.block_size).await?;
            tail_sent += 1;
            last_tail = Instant::now();
        }
        let tick = (Instant::now() + Duration::from_millis(250)).min(deadline);
        let _ = next_event(&mut events, &mut stats, tick, "").await;
        if let Some(view) = live.as_mut() {
            view.tick(&stats, false);
        }
    }
    let duration_secs = started.elapsed().as_secs_f64();
    let cpu_end = cpu::sample(&node_pids(&children));
    // The answers also bring in the last head events, so the final table is up to date.
    ask_topology(&mut children, &mut events, &mut stats).await;
    if let Some(view) = live.as_mut() {
        view.tick(&stats, true);
    }
    // 4. Stop everything (the adversary first, so the nodes' exit counters include all it did)
    // and read peak memory.
    let adversary = match adversary {
        Some((adv, handle)) => {
            let peer = handle.peer_id().to_string();
            Some((adv, peer, handle.stop().await))
        }
        None => None,
    };
    for s in stats.iter_mut() {
        s.peers_at_end = Some(s.peers);
    }
    for child in children.iter_mut().flatten() {
        let _ = send(child, ControlCommand::Shutdown).await;
    }
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while stats.iter().any(|s| !s.exited) && Instant::now() < deadline {
        if next_event(&mut events, &mut stats, deadline, "")
            .await
            .is_err()
        {
            break;
        }
    }
    for child in children.iter_mut().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(2), child.process.wait()).await;
        let _ = child.process.start_kill();
    }
    if let Some((mut boot, _)) = boot {
        let _ = boot.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), boot.wait()).await;
    }
    if plan.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Some(Err(e)) = &stats[0].produced {
        return Err(DevnetError::Io(format!("sequencer failed to produce: {e}")));
    }
    let mut report = report::build(
        &stats,
        plan.topology.to_string(),
        RunFacts {
            blocks: plan.blocks,
            block_time_ms: interval_ms,
            block_size_bytes: plan.block_size,
            duration_secs,
            late_joiner_after: plan.late_joiner,
            drop_fraction: plan.drop,
            global_rate: crate::sync::DEFAULT_CLIENT_GLOBAL_RATE,
            peer_rate: crate::sync::DEFAULT_CLIENT_PEER_RATE,
        },
    );
    report.adversary = adversary
        .map(|(adv, peer, counters)| hostile::report(adv, peer, &stats, &first_phase, counters));
    report.cpu = cpu::report(&cpu_start, &cpu_end, report.published);
    let record = report_html::RunRecord::collect(&stats, plan.blocks, &edges);
    Ok((report, record))
}

/// Asks every running node for its peers and mesh (the report's topology), waiting at most
/// [`TOPOLOGY_TIMEOUT`] for the answers; a node that does not answer is drawn without edges.
async fn ask_topology(
    children: &mut [Option<ChildNode>],
    events: &mut mpsc::Receiver<(usize, ControlEvent)>,
    stats: &mut [NodeStats],
) {
    let mut asked = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        if let Some(child) = child
            && send(child, ControlCommand::Topology).await.is_ok()
        {
            asked.push(i);
        }
    }
    let deadline = Instant::now() + TOPOLOGY_TIMEOUT;
    while asked.iter().any(|&i| !stats[i].topology_reported) {
        if next_event(events, stats, deadline, "").await.is_err() {
            break;
        }
    }
}

/// The process id of each running node, in node order.
fn node_pids(children: &[Option<ChildNode>]) -> Vec<Option<u32>> {
    children
        .iter()
        .map(|c| c.as_ref().and_then(|c| c.process.id()))
        .collect()
}

/// Waits for `nodes` to report their addresses, dials every topology edge that touches them
/// (from whichever end is running), waits until each has a peer, and lets the meshes form.
async fn join(
    events: &mut mpsc::Receiver<(usize, ControlEvent)>,
    stats: &mut [NodeStats],
    children: &mut [Option<ChildNode>],
    edges: &[(usize, usize)],
    nodes: &[usize],
    min_peers: usize,
) -> Result<(), DevnetError> {
    let deadline = Instant::now() + START_TIMEOUT;
    while nodes.iter().any(|&i| stats[i].listening.is_none()) {
        next_event(events, stats, deadline, "nodes to start").await?;
    }
    for &(i, j) in edges {
        if !nodes.contains(&i) && !nodes.contains(&j) {
            continue;
        }
        // Both ends must be running; the one that just started dials if the other cannot.
        let (dialer, target) = match (&children[i], &children[j]) {
            (Some(_), Some(_)) if nodes.contains(&i) => (i, j),
            (Some(_), Some(_)) => (j, i),
            _ => continue,
        };
        let addr = stats[target].listening.clone().unwrap_or_default();
        if let Some(child) = children[dialer].as_mut() {
            send(child, ControlCommand::Dial { addr: addr.clone() }).await?;
        }
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while nodes.iter().any(|&i| stats[i].peers < min_peers.max(1)) {
        next_event(events, stats, deadline, "nodes to connect").await?;
    }
    let settle = Instant::now() + MESH_SETTLE;
    while Instant::now() < settle {
        let _ = next_event(events, stats, settle, "").await;
    }
    Ok(())
}

/// Asks the sequencer (node 0) for `count` blocks.
async fn produce(
    children: &mut [Option<ChildNode>],
    count: u64,
    interval_ms: u64,
    block_size: usize,
) -> Result<(), DevnetError> {
    let sequencer = children
        .first_mut()
        .and_then(Option::as_mut)
        .ok_or_else(|| DevnetError::Io("the sequencer is not running".into()))?;
    send(
        sequencer,
        ControlCommand::Produce {
            count,
            interval_ms,
            block_size,
        },
    )
    .await
}

async fn send(child: &mut ChildNode, command: ControlCommand) -> Result<(), DevnetError> {
    let line = serde_json::to_string(&command)
        .map_err(|e| DevnetError::Io(format!("command {command:?}: {e}")))?
        + "\n";
    child
        .stdin
        .write_all(line.as_bytes())
        .await
        .map_err(|e| DevnetError::Io(format!("node stdin: {e}")))?;
    child
        .stdin
        .flush()
        .await
        .map_err(|e| DevnetError::Io(format!("node stdin: {e}")))
}

/// Starts node `i`; `engine` (URL and JWT secret file) attaches it to an engine (else `--l2`
/// attaches node 1).
async fn spawn_node(
    plan: &DevnetPlan,
    dir: &Path,
    rollup: &Path,
    i: usize,
    bootnode: Option<&str>,
    events: mpsc::Sender<(usize, ControlEvent)>,
    engine: Option<(&str, &Path)>,
) -> Result<ChildNode, DevnetError> {
    let log = std::fs::File::create(dir.join(format!("node{i}.log")))
        .map_err(|e| DevnetError::Io(e.to_string()))?;
    let mut cmd = Command::new(&plan.binary);
    cmd.arg("--p2p.unsafe.block.signer")
        .arg(DEVNET_SIGNER)
        .arg("node")
        .arg("--rollup.config")
        .arg(rollup)
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
    match bootnode {
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
    let mut process = cmd
        .spawn()
        .map_err(|e| DevnetError::Io(format!("cannot start {}: {e}", plan.binary.display())))?;
    let stdin = process
        .stdin
        .take()
        .ok_or_else(|| DevnetError::Io("no stdin".into()))?;
    let stdout = process
        .stdout
        .take()
        .ok_or_else(|| DevnetError::Io("no stdout".into()))?;
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
fn node_key_hex(i: usize) -> String {
    let mut secret = [0u8; 32];
    secret[0] = 0x1d;
    secret[24..].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    alloy_primitives::hex::encode(secret)
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
