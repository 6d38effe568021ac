//! `op-gossip devnet`: the README's main command. Flags → [`crate::devnet::DevnetPlan`], then the
//! run, the report file, a summary on stdout, and a non-zero exit if any follower ends without a
//! block (from gossip, or from payload_by_number in the `--late-joiner` and `--drop` scenarios).

use std::path::PathBuf;

use clap::builder::TypedValueParser;

use super::{CliError, parse_duration, parse_size};
use crate::devnet::adversary::{self, AdversaryKind};
use crate::devnet::hostile::{AdversaryPlan, AdversaryReport};
use crate::devnet::{self, DevnetPlan, Topology};

/// Flags of `devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Nodes, the sequencer included.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=200).map(usize::from))]
    pub nodes: usize,
    /// Blocks to publish.
    #[arg(long, default_value_t = 20)]
    pub blocks: u64,
    /// Time between blocks (e.g. 1s, 100ms).
    #[arg(long = "block-time", default_value = "1s", value_parser = parse_duration)]
    pub block_time: std::time::Duration,
    /// Transaction bytes per block (e.g. 10KiB, 100KiB).
    #[arg(long = "block-size", default_value = "10KiB", value_parser = parse_size)]
    pub block_size: usize,
    /// full, ring or `random:<degree>`.
    #[arg(long, default_value = "full")]
    pub topology: Topology,
    /// Seed for random topologies.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write a self-contained HTML report here: summary, latency and spread plots, the
    /// topology formed, per-node figures, and the scenario's story over time.
    #[arg(long = "report-html", value_name = "FILE")]
    pub report_html: Option<PathBuf>,
    /// Keep node data and logs in this directory (default: a temporary directory, removed).
    #[arg(long, value_name = "DIR")]
    pub datadir: Option<PathBuf>,
    /// The last follower starts after this many blocks and must catch up through
    /// payload_by_number.
    #[arg(long = "late-joiner", value_name = "K")]
    pub late_joiner: Option<u64>,
    /// Followers lose this fraction (0..1) of gossip deliveries and must fill the holes.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0, value_parser = super::node::parse_fraction)]
    pub drop: f64,
    /// Add a hostile node once the meshes formed, attacking every node then running:
    /// invalid-sig, invalid-block, equivocate, spam-reqresp or oversize.
    #[arg(long, value_name = "KIND")]
    pub adversary: Option<AdversaryKind>,
    /// The adversary's gossip messages per second (spam-reqresp: requests per second to each
    /// node).
    #[arg(long = "adversary-rate", value_name = "PER_SEC", default_value_t = adversary::DEFAULT_RATE,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(adversary::MAX_RATE)))]
    pub adversary_rate: u32,
    /// Attach the first follower to this execution engine (http://…:8551); the report gives
    /// the blocks it inserted and the engine's final head. Needs --l2.jwt-secret.
    #[arg(long = "l2", value_name = "URL", requires = "l2_jwt_secret")]
    pub l2: Option<String>,
    /// The engine's JWT secret file (32 bytes hex).
    #[arg(long = "l2.jwt-secret", value_name = "FILE", requires = "l2")]
    pub l2_jwt_secret: Option<PathBuf>,
    /// Give every node its own op-reth (this binary, run as `op-reth node --chain dev` on
    /// loopback with its own data directory, ports and JWT secret); the rollup config comes
    /// from the engines' genesis, the sequencer builds on its chain's clock (--block-time in
    /// whole seconds), and the run fails unless every engine ends on the same head.
    #[arg(long = "op-reth", value_name = "PATH",
          conflicts_with_all = ["l2", "late_joiner", "drop", "adversary"])]
    pub op_reth: Option<PathBuf>,
}

/// Runs the devnet.
pub async fn run(args: &DevnetArgs) -> Result<(), CliError> {
    if args.blocks == 0 {
        return Err(CliError::Usage("--blocks must be at least 1".into()));
    }
    super::node::check_block_size(args.block_size)?;
    if args.block_time.is_zero() {
        return Err(CliError::Usage("--block-time must be positive".into()));
    }
    if let Some(k) = args.late_joiner
        && (k == 0 || k >= args.blocks || args.nodes < 3)
    {
        return Err(CliError::Usage(format!(
            "--late-joiner {k} needs 0 < k < --blocks ({}) and at least 3 nodes",
            args.blocks
        )));
    }
    if args.op_reth.is_some()
        && (args.block_time.subsec_nanos() != 0 || args.block_time.as_secs() == 0)
    {
        return Err(CliError::Usage(format!(
            "--op-reth: --block-time must be whole seconds (an L2 block time), not {:?}",
            args.block_time
        )));
    }
    let binary = std::env::current_exe()
        .map_err(|e| CliError::Runtime(format!("cannot find own binary: {e}")))?;
    let plan = DevnetPlan {
        nodes: args.nodes,
        blocks: args.blocks,
        block_time: args.block_time,
        block_size: args.block_size,
        topology: args.topology,
        seed: args.seed,
        data_dir: args.datadir.clone(),
        binary,
        progress: true,
        late_joiner: args.late_joiner,
        drop: args.drop,
        adversary: args.adversary.map(|kind| AdversaryPlan {
            kind,
            rate: args.adversary_rate,
        }),
        engine: args.l2.clone().zip(args.l2_jwt_secret.clone()),
        op_reth: args.op_reth.clone(),
    };
    match &plan.op_reth {
        Some(path) => eprintln!(
            "devnet: {} nodes ({} topology), {} blocks every {:?} built by op-reth ({})",
            plan.nodes,
            plan.topology,
            plan.blocks,
            plan.block_time,
            path.display()
        ),
        None => eprintln!(
            "devnet: {} nodes ({} topology), {} blocks of {} bytes every {:?}",
            plan.nodes, plan.topology, plan.blocks, plan.block_size, plan.block_time
        ),
    }
    let (report, record) = devnet::run(&plan)
        .await
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    if let Some(path) = &args.report_html {
        devnet::report_html::write(path, &report, &record)
            .map_err(|e| CliError::Runtime(e.to_string()))?;
    }
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| CliError::Runtime(e.to_string()))?;
    if let Some(path) = &args.report {
        std::fs::write(path, format!("{json}\n"))
            .map_err(|e| CliError::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    println!(
        "published {} blocks; delivered to all followers: {}; latency ms p50 {} p95 {} p99 {} max {}; max peak RSS {:.1} MiB",
        report.published,
        report.all_delivered,
        report.latency_ms.p50,
        report.latency_ms.p95,
        report.latency_ms.p99,
        report.latency_ms.max,
        report.max_peak_rss_mib
    );
    if let Some(cpu) = &report.cpu {
        println!(
            "node CPU {:.1} ms per block ({:.1} s over {} processes on {} cores); host steal {:.1} s",
            cpu.node_cpu_ms_per_block,
            cpu.node_cpu_secs,
            report.nodes,
            cpu.cores,
            cpu.host_steal_secs
        );
    }
    for n in report.per_node.iter().skip(1) {
        if n.received < report.published {
            println!(
                "node {} received {}/{} from gossip (head {:?}, all blocks stored: {})",
                n.node, n.received, report.published, n.head, n.has_all_blocks
            );
        }
        if let Some(sync) = &n.sync {
            println!(
                "node {} fetched {} blocks by payload_by_number at {:.1}/s ({:.0}% of the {:.1}/s the limits allow with {} peers){}",
                n.node,
                sync.fetched,
                sync.fetch_rate_per_sec,
                100.0 * sync.fraction_of_bound,
                sync.rate_bound_with_burst_per_sec,
                sync.peers,
                sync.catch_up_secs
                    .map(|s| format!(", caught up in {s:.1} s"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(engines) = &report.engines {
        for head in &engines.heads {
            println!(
                "node {} engine head {} {}",
                head.node, head.number, head.hash
            );
        }
        if !engines.agree {
            return Err(CliError::Runtime("the engines' final heads differ".into()));
        }
        println!("every engine ends on the same head");
        // The first blocks may come before the meshes formed: stored (gossip or fetch) is
        // what counts.
        if !report.all_stored {
            return Err(CliError::Runtime("some followers missed blocks".into()));
        }
        return Ok(());
    }
    // Gossip loss is the point of the scenarios; every block must still end up stored.
    let complete = if args.late_joiner.is_some() || args.drop > 0.0 {
        report.all_stored
    } else {
        report.all_delivered
    };
    if !complete {
        return Err(CliError::Runtime("some followers missed blocks".into()));
    }
    match &report.adversary {
        Some(adv) => adversary_verdict(adv),
        None => Ok(()),
    }
}

/// Prints what the adversary did and fails the run when it was not contained (not banned by
/// every node it reached, or spam not rate limited) or when an honest peer was banned.
fn adversary_verdict(adv: &AdversaryReport) -> Result<(), CliError> {
    let c = &adv.counters;
    println!(
        "adversary {} ({}): sent {} at {}/s, reached {}/{} nodes, banned by {}, refused {} reconnections, rate limited {} times",
        adv.kind,
        adv.peer_id,
        c.sent,
        adv.rate_per_sec,
        adv.reached,
        adv.targets,
        adv.banned_by,
        c.connections_refused,
        c.answers.rate_limited
    );
    for n in adv.per_node.iter().filter(|n| n.targeted) {
        println!(
            "node {}: saw {} of its messages ({} before the ban), banned after {} ms",
            n.node,
            n.seen,
            n.seen_before_ban.map_or("-".into(), |v| v.to_string()),
            n.banned_after_ms.map_or("-".into(), |v| v.to_string()),
        );
    }
    if adv.honest_peers_banned > 0 {
        return Err(CliError::Runtime(format!(
            "{} honest peers were banned",
            adv.honest_peers_banned
        )));
    }
    if !adv.contained {
        let what = if adv.should_be_banned {
            "not banned by every node it reached"
        } else {
            "not rate limited by every node it reached"
        };
        return Err(CliError::Runtime(format!("the adversary was {what}")));
    }
    Ok(())
}
