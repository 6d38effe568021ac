//! `op-gossip devnet --op-reth <path>`: the devnet with a real execution engine behind every
//! node, so a user tries the engine path with one command and no Docker.
//!
//! ```text
//!  op-reth --chain dev ×N (own datadir, loopback ports, JWT secret; discovery off)
//!     │ block 0 + eth_chainId ──► rollup.json (genesis hash and chain id from the engine,
//!     │                           genesis time now, every fork at 0, --block-time)
//!  op-gossip node i --l2 engine i ── sequencer (node 0) on the chain's clock: its engine builds,
//!                                     followers insert what they receive into theirs
//!  after --blocks: stop the sequencer, wait for every engine to reach its engine's head,
//!  report each engine's head (number, hash); they must all be equal
//! ```
//!
//! The rollup.json's genesis time is the devnet's start, not the dev chain's genesis block
//! timestamp (June 2023): a sequencer on the chain's clock would otherwise start three years
//! behind the wall clock. Block 1 is built at genesis time + block time, and from there every
//! block is its parent plus the block time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use serde::Serialize;
use serde_json::json;
use tokio::process::{Child, Command};

use super::DevnetError;
use super::collect::Collector;
use super::processes::{NodeSetup, Nodes};
use crate::engine::retry::{Retry, RetryConfig};
use crate::engine::{EngineClient, JwtSecret};

/// How long op-reth gets to answer on its authenticated port after it was started (it opens
/// its database and writes the dev genesis on first start; a few seconds on this kind of
/// machine, more while other builds share the CPU).
pub const ENGINE_START_TIMEOUT: Duration = Duration::from_secs(120);
/// After the sequencer stopped, how long the followers' engines get to reach its engine's head.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long op-reth gets to exit after SIGTERM before it is killed.
const ENGINE_EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline of each call to an engine.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One op-reth process.
pub struct OpReth {
    child: Child,
    /// `http://127.0.0.1:<authrpc port>`.
    pub url: String,
    /// Its JWT secret file.
    pub jwt: PathBuf,
    client: EngineClient,
}

/// An engine's head at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct EngineHeadReport {
    /// The node it serves.
    pub node: usize,
    /// Its head number.
    pub number: u64,
    /// Its head hash.
    pub hash: B256,
}

/// The engines' part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EnginesReport {
    /// The genesis hash every engine has (and the rollup.json names).
    pub genesis: B256,
    /// The chain id they report.
    pub chain_id: u64,
    /// Each engine's head, node order.
    pub heads: Vec<EngineHeadReport>,
    /// True when every head is the same block.
    pub agree: bool,
}

/// A free TCP port on 127.0.0.1 (bound, read and released: op-reth takes ports as numbers).
fn free_port() -> Result<u16, DevnetError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(DevnetError::io("no free port"))
}

/// 32 random bytes as hex, from the kernel.
fn random_secret() -> Result<String, DevnetError> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(DevnetError::io("cannot read /dev/urandom"))?;
    Ok(alloy_primitives::hex::encode(bytes))
}

impl OpReth {
    /// Starts op-reth `binary` for node `i` under `dir`, on loopback ports of its own.
    pub fn spawn(binary: &Path, dir: &Path, i: usize) -> Result<Self, DevnetError> {
        let datadir = dir.join(format!("reth{i}"));
        std::fs::create_dir_all(datadir.join("logs")).map_err(DevnetError::io(format!(
            "cannot create {}",
            datadir.display()
        )))?;
        let secret = random_secret()?;
        let jwt = dir.join(format!("reth{i}.jwt"));
        std::fs::write(&jwt, &secret)
            .map_err(DevnetError::io(format!("cannot write {}", jwt.display())))?;
        let (p2p, http, auth) = (free_port()?, free_port()?, free_port()?);
        let log = std::fs::File::create(dir.join(format!("reth{i}.log")))
            .map_err(DevnetError::io(format!("cannot create reth{i}.log")))?;
        let log_err = log
            .try_clone()
            .map_err(DevnetError::io(format!("reth{i}.log")))?;
        let child = Command::new(binary)
            .arg("node")
            .args(["--chain", "dev", "--nat", "none", "-d", "--ipcdisable"])
            .arg("--datadir")
            .arg(&datadir)
            .arg("--log.file.directory")
            .arg(datadir.join("logs"))
            .args(["--addr", "127.0.0.1", "--port", &p2p.to_string()])
            .args([
                "--http",
                "--http.addr",
                "127.0.0.1",
                "--http.port",
                &http.to_string(),
            ])
            .args(["--http.api", "eth,net,web3"])
            .args([
                "--authrpc.addr",
                "127.0.0.1",
                "--authrpc.port",
                &auth.to_string(),
            ])
            .arg("--authrpc.jwtsecret")
            .arg(&jwt)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(DevnetError::io(format!(
                "cannot start {}",
                binary.display()
            )))?;
        let url = format!("http://127.0.0.1:{auth}");
        let secret = JwtSecret::from_hex(&secret).map_err(|e| DevnetError::Setup(e.into()))?;
        let client = EngineClient::new(&url, secret, CALL_TIMEOUT).map_err(|source| {
            DevnetError::Engine {
                url: url.clone(),
                source,
            }
        })?;
        Ok(Self {
            child,
            url,
            jwt,
            client,
        })
    }

    /// Waits until the engine answers, then reads its genesis hash and chain id.
    pub async fn genesis(&mut self) -> Result<(B256, u64), DevnetError> {
        let deadline = Instant::now() + ENGINE_START_TIMEOUT;
        let mut retry = Retry::new(RetryConfig::default());
        let genesis = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(DevnetError::Run(format!(
                    "op-reth at {} exited at start ({status}); see its log in the devnet directory",
                    self.url
                )));
            }
            match self.client.block_by_number(0).await {
                Ok(Some(genesis)) => break genesis,
                Ok(None) => return Err(DevnetError::Run(format!("{}: no block 0", self.url))),
                Err(e) if e.is_transient() && Instant::now() < deadline => {
                    tokio::time::sleep(retry.failed("unreachable").0).await;
                }
                Err(e) => {
                    return Err(DevnetError::Timeout(format!(
                        "op-reth at {}: {e}",
                        self.url
                    )));
                }
            }
        };
        let chain_id = self
            .client
            .chain_id()
            .await
            .map_err(|source| DevnetError::Engine {
                url: self.url.clone(),
                source,
            })?
            .ok_or_else(|| DevnetError::Run(format!("{}: no eth_chainId", self.url)))?;
        Ok((genesis.hash, chain_id))
    }

    /// The engine's head.
    pub async fn head(&self) -> Result<crate::engine::EngineHead, DevnetError> {
        self.client
            .latest_block()
            .await
            .map_err(|source| DevnetError::Engine {
                url: self.url.clone(),
                source,
            })
    }

    /// SIGTERM, then SIGKILL if it has not exited in time.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: a plain signal to our own child, whose pid we hold (not yet reaped).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(ENGINE_EXIT_TIMEOUT, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Starts one op-reth per node and checks they share one genesis; returns them with that
/// genesis hash and chain id.
pub async fn start_engines(
    binary: &Path,
    dir: &Path,
    nodes: usize,
) -> Result<(Vec<OpReth>, B256, u64), DevnetError> {
    let mut engines = Vec::with_capacity(nodes);
    for i in 0..nodes {
        engines.push(OpReth::spawn(binary, dir, i)?);
    }
    let mut genesis = None;
    for engine in &mut engines {
        let theirs = engine.genesis().await?;
        match genesis {
            None => genesis = Some(theirs),
            Some(first) if first != theirs => {
                return Err(DevnetError::Run(format!(
                    "the engines disagree on genesis: {first:?} and {theirs:?} at {}",
                    engine.url
                )));
            }
            Some(_) => {}
        }
    }
    let (hash, chain_id) = genesis.ok_or_else(|| DevnetError::Run("no engine started".into()))?;
    Ok((engines, hash, chain_id))
}

/// The rollup.json of a devnet on these engines: their genesis hash and chain id, genesis time
/// `genesis_time`, `block_time` seconds, every fork at genesis (op-reth's dev chain has every
/// fork through Isthmus at genesis and Jovian by timestamp, long past).
pub fn rollup_json(
    genesis: B256,
    chain_id: u64,
    genesis_time: u64,
    block_time: u64,
) -> serde_json::Value {
    let zero = B256::ZERO;
    json!({
        "genesis": {
            "l1": {"hash": zero, "number": 0},
            "l2": {"hash": genesis, "number": 0},
            "l2_time": genesis_time,
        },
        "block_time": block_time,
        "l2_chain_id": chain_id,
        "regolith_time": 0, "canyon_time": 0, "delta_time": 0, "ecotone_time": 0, "fjord_time": 0,
        "granite_time": 0, "holocene_time": 0, "isthmus_time": 0, "jovian_time": 0,
    })
}

/// Each engine's head once they agree (or [`CONVERGE_TIMEOUT`] passed): polls every 250 ms.
pub async fn final_heads(
    engines: &[OpReth],
    genesis: B256,
    chain_id: u64,
) -> Result<EnginesReport, DevnetError> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let mut heads = Vec::with_capacity(engines.len());
        for (node, engine) in engines.iter().enumerate() {
            let head = engine.head().await?;
            heads.push(EngineHeadReport {
                node,
                number: head.number,
                hash: head.hash,
            });
        }
        let agree = heads
            .windows(2)
            .all(|w| w[0].hash == w[1].hash && w[0].number == w[1].number);
        if agree || Instant::now() >= deadline {
            return Ok(EnginesReport {
                genesis,
                chain_id,
                heads,
                agree,
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Time the nodes get between the rollup.json being written and block 1's slot: to start, dial
/// each other and form their meshes (the devnet waits `MESH_SETTLE` after connecting),
/// so followers receive the first blocks by gossip. Blocks published earlier are still fetched by
/// payload_by_number.
pub const GENESIS_DELAY_SECS: u64 = 10;

/// Runs the devnet on op-reth engines (`plan.op_reth`), one per node.
pub async fn run(
    plan: &super::DevnetPlan,
    binary: &Path,
) -> Result<super::report::DevnetReport, DevnetError> {
    use super::report::{self, RunFacts};
    if plan.topology == super::Topology::Discovery {
        return Err(DevnetError::Run(
            "--topology discovery is not supported with --op-reth (the nodes dial)".into(),
        ));
    }
    let dir = super::scenario::run_dir(plan);
    std::fs::create_dir_all(&dir)
        .map_err(DevnetError::io(format!("cannot create {}", dir.display())))?;
    let (engines, genesis, chain_id) = start_engines(binary, &dir, plan.nodes).await?;
    let block_time = plan.block_time.as_secs().max(1);
    let genesis_time = crate::clock::unix_now() + GENESIS_DELAY_SECS;
    let rollup = dir.join("rollup.json");
    std::fs::write(
        &rollup,
        rollup_json(genesis, chain_id, genesis_time, block_time).to_string(),
    )
    .map_err(DevnetError::io(format!(
        "cannot write {}",
        rollup.display()
    )))?;
    if plan.progress {
        eprintln!(
            "devnet: {} op-reth engines up (chain id {chain_id}, genesis {genesis}); logs in {}",
            engines.len(),
            dir.display()
        );
    }
    let (mut collector, events) = Collector::new(plan.nodes);
    let mut nodes = Nodes::new(plan.nodes, events);
    let edges = plan.topology.edges(plan.nodes, plan.seed);
    let all: Vec<usize> = (0..plan.nodes).collect();
    let setup = NodeSetup {
        dir: &dir,
        rollup: &rollup,
        bootnode: None,
    };
    for (i, engine) in engines.iter().enumerate() {
        let engine = Some((engine.url.as_str(), engine.jwt.as_path()));
        nodes.spawn(plan, &setup, i, engine)?;
    }
    nodes.no_more_nodes();
    super::scenario::join(&mut nodes, &mut collector, &edges, &all, 1).await?;

    // The sequencer builds on its chain's clock: wait for the blocks.
    let started = Instant::now();
    let cpu_start = super::cpu::sample(&nodes.pids());
    let slots = u32::try_from(plan.blocks.saturating_add(GENESIS_DELAY_SECS)).unwrap_or(u32::MAX);
    let deadline =
        Instant::now() + Duration::from_secs(block_time) * slots + super::scenario::GRACE;
    let mut live = plan
        .progress
        .then(|| super::live::LiveView::new(plan.blocks));
    while (collector.stats[0].published.len() as u64) < plan.blocks {
        let tick = (Instant::now() + Duration::from_millis(250)).min(deadline);
        if let Err(e) = collector.next(tick, "").await
            && Instant::now() >= deadline
        {
            return Err(DevnetError::Timeout(format!(
                "the sequencer published {} of {} blocks: {e}",
                collector.stats[0].published.len(),
                plan.blocks
            )));
        }
        if let Some(view) = live.as_mut() {
            view.tick(&collector.stats, false);
        }
    }
    if let Some(view) = live.as_mut() {
        view.tick(&collector.stats, true);
    }
    let duration_secs = started.elapsed().as_secs_f64();
    let cpu_end = super::cpu::sample(&nodes.pids());
    // Stop the sequencer first, so no block is built after the heads are read.
    nodes.stop(&[0], &mut collector).await;
    let engines_report = final_heads(&engines, genesis, chain_id).await?;
    let followers: Vec<usize> = (1..plan.nodes).collect();
    nodes.stop(&followers, &mut collector).await;
    for engine in engines {
        engine.stop().await;
    }
    if plan.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let stats = &collector.stats;
    let mut report = report::build(
        stats,
        plan.topology.to_string(),
        RunFacts {
            blocks: plan.blocks,
            block_time_ms: block_time * 1000,
            block_size_bytes: 0,
            duration_secs,
            late_joiner_after: None,
            drop_fraction: 0.0,
            global_rate: crate::sync::DEFAULT_CLIENT_GLOBAL_RATE,
            peer_rate: crate::sync::DEFAULT_CLIENT_PEER_RATE,
        },
    );
    report.cpu = super::cpu::report(&cpu_start, &cpu_end, report.published);
    report.engines = Some(engines_report);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollup_config_names_the_engines_genesis_and_loads() {
        let genesis = B256::repeat_byte(0x68);
        let json = rollup_json(genesis, 1337, 1_800_000_000, 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rollup.json");
        std::fs::write(&path, json.to_string()).unwrap();
        let chain = crate::chain_config::load_rollup_json(&path).unwrap();
        assert_eq!(chain.genesis.l2.hash, genesis);
        assert_eq!(chain.chain_id, 1337);
        assert_eq!(chain.block_time, 1);
        assert_eq!(
            chain.block_version_at(1_800_000_001),
            crate::wire::BlockVersion::V4
        );
    }
}
