//! The scenario: what a devnet run does over time, one step after another. It drives the node
//! processes ([`super::processes`]) with control commands and waits on what they report
//! ([`super::collect`]); [`super::run`] calls the steps in order.
//!
//! ```text
//!  prepare         run directory, rollup.json (genesis a day back), bootnode (discovery)
//!  start_nodes     every node but a late joiner ──► join: addresses, dial the topology, peers,
//!                  MESH_SETTLE for the meshes
//!  start_adversary (--adversary) attack every running node; wait until it joined
//!  produce         (--late-joiner k) k blocks, start and join the late joiner; the rest of the
//!                  blocks; collect until every follower has every block (or the deadline),
//!                  with tail blocks under --drop and, with an adversary, until it is banned
//!  ask_topology    each node's peers and mesh
//!  stop            the adversary, then the nodes (their exit lines: peak RSS, counters)
//!  report          the JSON report and the HTML report's time series
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::adversary::{AdversaryCounters, AdversaryHandle};
use super::collect::Collector;
use super::hostile::{self, AdversaryPlan};
use super::processes::{NodeSetup, Nodes};
use super::report::{self, DevnetReport, RunFacts};
use super::{
    DevnetError, DevnetPlan, Topology, bootnode, cpu, devnet_genesis_time, devnet_rollup_json,
    live, report_html,
};
use crate::cli::control::ControlCommand;
use crate::clock::{unix_millis, unix_now};

/// How long nodes get to start and report their address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the topology gets to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Settling time after every node has a peer: four gossipsub heartbeats to build the meshes.
const MESH_SETTLE: Duration = Duration::from_secs(2);
/// Collection continues this long after the last block is published, for stragglers.
pub(super) const GRACE: Duration = Duration::from_secs(15);
/// `--drop`: at most this many tail blocks after the requested ones (each is lost with the drop
/// probability, so 10 leave a trailing hole with probability drop^10).
const MAX_TAIL_BLOCKS: u32 = 10;
/// `--drop`: time between tail blocks (room for the holes below to be filled first).
const TAIL_INTERVAL: Duration = Duration::from_secs(1);
/// How long nodes get to answer the `topology` request at the end (an answer from memory, so
/// seconds only on a machine overloaded by the run).
const TOPOLOGY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the collection loops wake without an event: to redraw the live view, send a tail
/// block or check the deadline.
const COLLECT_TICK: Duration = Duration::from_millis(250);
/// How often the wait for the adversary to join checks it.
const ADVERSARY_POLL: Duration = Duration::from_millis(50);
/// The rate a late joiner is assumed to catch up at when the deadline is set, in blocks per
/// second: half the sync client's global limit (20/s, [`crate::sync::DEFAULT_CLIENT_GLOBAL_RATE`]),
/// a margin for a machine loaded by the run.
const CATCH_UP_BLOCKS_PER_SEC: u64 = 10;

/// The running adversary and its plan.
struct Adversary {
    plan: AdversaryPlan,
    handle: AdversaryHandle,
}

/// What the adversary did, read when it stopped.
pub(super) struct AdversaryOutcome {
    plan: AdversaryPlan,
    peer: String,
    counters: AdversaryCounters,
}

/// What was measured while the blocks were produced.
pub(super) struct Window {
    duration_secs: f64,
    cpu_start: cpu::CpuSample,
    cpu_end: cpu::CpuSample,
}

/// One devnet run on its way: the plan, the processes, what they reported.
pub(super) struct Scenario<'a> {
    plan: &'a DevnetPlan,
    /// Node data and logs ([`run_dir`]).
    dir: PathBuf,
    /// The devnet's rollup.json, in `dir`.
    rollup: PathBuf,
    /// Its genesis time (unix seconds).
    genesis: u64,
    nodes: Nodes,
    collector: Collector,
    /// The topology's edges, both ends node indices.
    edges: Vec<(usize, usize)>,
    /// `--late-joiner`: the last follower, started after the first phase of production.
    late: Option<usize>,
    /// Every node started at once (all but the late joiner); the adversary's targets.
    first_phase: Vec<usize>,
    /// Peers each node must have before it counts as joined.
    min_peers: usize,
    /// The bootnode process and its ENR (`--topology discovery`).
    boot: Option<(Child, String)>,
    adversary: Option<Adversary>,
    /// The token the adversary's own stop token is a child of (its handle stops it).
    adversary_stop: CancellationToken,
    live: Option<live::LiveView>,
}

impl<'a> Scenario<'a> {
    /// Writes the rollup.json and starts the bootnode, if the topology uses one.
    pub(super) async fn prepare(plan: &'a DevnetPlan) -> Result<Self, DevnetError> {
        let dir = run_dir(plan);
        std::fs::create_dir_all(&dir)
            .map_err(DevnetError::io(format!("cannot create {}", dir.display())))?;
        let rollup = dir.join("rollup.json");
        let genesis = devnet_genesis_time(unix_now());
        std::fs::write(&rollup, devnet_rollup_json(genesis).to_string()).map_err(
            DevnetError::io(format!("cannot write {}", rollup.display())),
        )?;
        let (collector, events) = Collector::new(plan.nodes);
        let late = plan.late_joiner.map(|_| plan.nodes - 1);
        let boot = match plan.topology {
            Topology::Discovery => Some(bootnode::start(&plan.binary, &rollup, &dir).await?),
            _ => None,
        };
        // With discovery, each node waits for a few peers of its own finding (3, or all others).
        let min_peers = if boot.is_some() {
            plan.nodes.saturating_sub(1).min(3)
        } else {
            1
        };
        Ok(Self {
            plan,
            nodes: Nodes::new(plan.nodes, events),
            collector,
            edges: plan.topology.edges(plan.nodes, plan.seed),
            first_phase: (0..plan.nodes).filter(|i| Some(*i) != late).collect(),
            late,
            min_peers,
            boot,
            dir,
            rollup,
            genesis,
            adversary: None,
            adversary_stop: CancellationToken::new(),
            live: None,
        })
    }

    /// Starts node `i`.
    fn spawn(&mut self, i: usize) -> Result<(), DevnetError> {
        let setup = NodeSetup {
            dir: &self.dir,
            rollup: &self.rollup,
            bootnode: self.boot.as_ref().map(|(_, enr)| enr.as_str()),
        };
        self.nodes.spawn(self.plan, &setup, i, None)
    }

    /// Starts every node but the late joiner and joins them into the topology.
    pub(super) async fn start_nodes(&mut self) -> Result<(), DevnetError> {
        for i in self.first_phase.clone() {
            self.spawn(i)?;
        }
        join(
            &mut self.nodes,
            &mut self.collector,
            &self.edges,
            &self.first_phase,
            self.min_peers,
        )
        .await
    }

    /// `--adversary`: starts it against every running node and waits until it joined them (or
    /// its join wait passed).
    pub(super) async fn start_adversary(&mut self) -> Result<(), DevnetError> {
        let Some(plan) = self.plan.adversary else {
            return Ok(());
        };
        let handle = hostile::start(
            plan,
            self.genesis,
            &mut self.collector.stats,
            &self.first_phase,
            &self.adversary_stop,
        )?;
        let since = Instant::now();
        while !hostile::joined_or_late(&handle, since) {
            let _ = self
                .collector
                .next(Instant::now() + ADVERSARY_POLL, "")
                .await;
        }
        self.adversary = Some(Adversary { plan, handle });
        Ok(())
    }

    /// Asks the sequencer for the blocks (the late joiner joins after the first k) and collects
    /// until every follower has them all, or the deadline.
    pub(super) async fn produce(&mut self) -> Result<Window, DevnetError> {
        self.live = self
            .plan
            .progress
            .then(|| live::LiveView::new(self.plan.blocks));
        let started = Instant::now();
        let cpu_start = cpu::sample(&self.nodes.pids());
        let remaining = self.late_joiner_phase().await?;
        self.nodes.no_more_nodes();
        self.main_phase(remaining).await?;
        Ok(Window {
            duration_secs: started.elapsed().as_secs_f64(),
            cpu_start,
            cpu_end: cpu::sample(&self.nodes.pids()),
        })
    }

    fn interval_ms(&self) -> u64 {
        self.plan.block_time.as_millis() as u64
    }

    fn tick_live(&mut self, force: bool) {
        if let Some(view) = self.live.as_mut() {
            view.tick(&self.collector.stats, force);
        }
    }

    /// `--late-joiner k`: the first k blocks without the late joiner, then it starts and joins.
    /// Returns the blocks still to produce.
    async fn late_joiner_phase(&mut self) -> Result<u64, DevnetError> {
        let (Some(k), Some(late)) = (self.plan.late_joiner, self.late) else {
            return Ok(self.plan.blocks);
        };
        let plan = self.plan;
        self.nodes
            .produce(k, self.interval_ms(), plan.block_size)
            .await?;
        let deadline =
            Instant::now() + plan.block_time * u32::try_from(k).unwrap_or(u32::MAX) + GRACE;
        loop {
            let sequencer = &self.collector.stats[0];
            if sequencer.produced.as_ref().is_some_and(|r| r.is_ok())
                && sequencer.published.len() as u64 == k
            {
                break;
            }
            if let Some(Err(e)) = &sequencer.produced {
                return Err(DevnetError::Run(format!(
                    "sequencer failed to produce: {e}"
                )));
            }
            self.collector
                .next(deadline, "the late joiner's head start")
                .await?;
            self.tick_live(false);
        }
        self.collector.stats[0].produced = None;
        self.spawn(late)?;
        join(
            &mut self.nodes,
            &mut self.collector,
            &self.edges,
            &[late],
            self.min_peers,
        )
        .await?;
        Ok(plan.blocks - k)
    }

    /// Asks for `remaining` blocks and collects until every follower has every block, the
    /// adversary (if any) settled, or the deadline.
    async fn main_phase(&mut self, remaining: u64) -> Result<(), DevnetError> {
        let plan = self.plan;
        self.nodes
            .produce(remaining, self.interval_ms(), plan.block_size)
            .await?;
        let production = plan.block_time * u32::try_from(remaining).unwrap_or(u32::MAX);
        // Catching up from payload_by_number takes (missed blocks / the client's rate) more.
        let catch_up = Duration::from_secs(plan.late_joiner.unwrap_or(0) / CATCH_UP_BLOCKS_PER_SEC);
        let deadline = Instant::now() + production + catch_up + GRACE;
        let mut tail_sent = 0;
        let mut last_tail = Instant::now();
        loop {
            if self.collected() || Instant::now() >= deadline {
                return Ok(());
            }
            // A follower that lost the last blocks has nothing signed above them to trust a
            // fetch on: publish a tail block now and then, as a live chain would.
            let sequencer = &self.collector.stats[0];
            let produced_ok = matches!(sequencer.produced, Some(Ok(())));
            let all_published = sequencer.published.len() as u64 >= plan.blocks;
            if plan.drop > 0.0
                && produced_ok
                && all_published
                && tail_sent < MAX_TAIL_BLOCKS
                && last_tail.elapsed() >= TAIL_INTERVAL
            {
                self.collector.stats[0].produced = None;
                self.nodes
                    .produce(1, self.interval_ms(), plan.block_size)
                    .await?;
                tail_sent += 1;
                last_tail = Instant::now();
            }
            let tick = (Instant::now() + COLLECT_TICK).min(deadline);
            let _ = self.collector.next(tick, "").await;
            self.tick_live(false);
        }
    }

    /// Whether collection is done: the sequencer failed, or it produced and published every
    /// requested block, every follower has them all and the adversary (if any) is settled.
    fn collected(&self) -> bool {
        let stats = &self.collector.stats;
        let sequencer = &stats[0];
        // The `produced` line can overtake the last `published` line (two writers on the
        // child's stdout), so completion also needs every requested block seen as published.
        let all_published = sequencer.published.len() as u64 >= self.plan.blocks;
        let failed = matches!(sequencer.produced, Some(Err(_)));
        let adversary_settled = self
            .adversary
            .as_ref()
            .is_none_or(|a| hostile::settled(a.plan.kind, stats, &self.first_phase));
        failed
            || sequencer.produced.is_some()
                && all_published
                && adversary_settled
                && stats.iter().skip(1).all(|s| {
                    sequencer
                        .published
                        .keys()
                        .filter(|n| **n <= self.plan.blocks)
                        .all(|n| s.has(*n))
                })
    }

    /// Asks every running node for its peers and mesh (the report's topology), waiting at most
    /// [`TOPOLOGY_TIMEOUT`] for the answers; a node that does not answer is drawn without
    /// edges. The answers also bring in the last head events, so the final table is up to date.
    pub(super) async fn ask_topology(&mut self) {
        let mut asked = Vec::new();
        for i in 0..self.plan.nodes {
            if self.nodes.is_running(i)
                && self.nodes.send(i, ControlCommand::Topology).await.is_ok()
            {
                asked.push(i);
            }
        }
        let deadline = Instant::now() + TOPOLOGY_TIMEOUT;
        while asked
            .iter()
            .any(|&i| !self.collector.stats[i].topology_reported)
        {
            if self.collector.next(deadline, "").await.is_err() {
                break;
            }
        }
        self.tick_live(true);
    }

    /// Stops the adversary first (so the nodes' exit counters include all it did), then the
    /// nodes and the bootnode, and removes a temporary run directory.
    pub(super) async fn stop(&mut self) -> Option<AdversaryOutcome> {
        let adversary = match self.adversary.take() {
            Some(Adversary { plan, handle }) => {
                let peer = handle.peer_id().to_string();
                Some(AdversaryOutcome {
                    plan,
                    peer,
                    counters: handle.stop().await,
                })
            }
            None => None,
        };
        for s in self.collector.stats.iter_mut() {
            s.peers_at_end = Some(s.peers);
        }
        let all: Vec<usize> = (0..self.plan.nodes).collect();
        self.nodes.stop(&all, &mut self.collector).await;
        if let Some((mut boot, _)) = self.boot.take() {
            let _ = boot.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(2), boot.wait()).await;
        }
        if self.plan.data_dir.is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        adversary
    }

    /// The JSON report, and the time series the HTML report draws; an error if the sequencer
    /// failed to produce.
    pub(super) fn report(
        self,
        window: Window,
        adversary: Option<AdversaryOutcome>,
    ) -> Result<(DevnetReport, report_html::RunRecord), DevnetError> {
        let plan = self.plan;
        let stats = &self.collector.stats;
        if let Some(Err(e)) = &stats[0].produced {
            return Err(DevnetError::Run(format!(
                "sequencer failed to produce: {e}"
            )));
        }
        let mut report = report::build(
            stats,
            plan.topology.to_string(),
            RunFacts {
                blocks: plan.blocks,
                block_time_ms: self.interval_ms(),
                block_size_bytes: plan.block_size,
                duration_secs: window.duration_secs,
                late_joiner_after: plan.late_joiner,
                drop_fraction: plan.drop,
                global_rate: crate::sync::DEFAULT_CLIENT_GLOBAL_RATE,
                peer_rate: crate::sync::DEFAULT_CLIENT_PEER_RATE,
            },
        );
        report.adversary = adversary
            .map(|a| hostile::report(a.plan, a.peer, stats, &self.first_phase, a.counters));
        report.cpu = cpu::report(&window.cpu_start, &window.cpu_end, report.published);
        let record = report_html::RunRecord::collect(stats, plan.blocks, &self.edges);
        Ok((report, record))
    }
}

/// Waits for `joining` to report their addresses, dials every topology edge that touches them
/// (from whichever end is running), waits until each has `min_peers` peers, and lets the
/// meshes form.
pub(super) async fn join(
    nodes: &mut Nodes,
    collector: &mut Collector,
    edges: &[(usize, usize)],
    joining: &[usize],
    min_peers: usize,
) -> Result<(), DevnetError> {
    let deadline = Instant::now() + START_TIMEOUT;
    while joining
        .iter()
        .any(|&i| collector.stats[i].listening.is_none())
    {
        collector.next(deadline, "nodes to start").await?;
    }
    for &(i, j) in edges {
        if !joining.contains(&i) && !joining.contains(&j) {
            continue;
        }
        // Both ends must be running; the one that just started dials if the other cannot.
        let (dialer, target) = match (nodes.is_running(i), nodes.is_running(j)) {
            (true, true) if joining.contains(&i) => (i, j),
            (true, true) => (j, i),
            _ => continue,
        };
        let addr = collector.stats[target]
            .listening
            .clone()
            .unwrap_or_default();
        nodes.send(dialer, ControlCommand::Dial { addr }).await?;
    }
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while joining
        .iter()
        .any(|&i| collector.stats[i].peers < min_peers.max(1))
    {
        collector.next(deadline, "nodes to connect").await?;
    }
    collector.until(Instant::now() + MESH_SETTLE).await;
    Ok(())
}

/// Where the run keeps node data and logs: `--datadir`, or a fresh temporary directory.
pub(super) fn run_dir(plan: &DevnetPlan) -> PathBuf {
    match &plan.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "op-gossip-devnet-{}-{}",
            std::process::id(),
            unix_millis(SystemTime::now())
        )),
    }
}
